"""Live metrics: when labels arrive for scored rows, measure each model version on them.

The served predictions (champion, and canary rows of the challenger) and the shadow predictions are joined
with the labels by row id, or carry their label themselves (the scored rows held it); each version gets its
metrics on the rows it scored. The champion's performance drift is watched on every metric the tests declare,
each with its tolerance and a sample-size floor. Every window is recorded on
the challenger (tag ``mlops.live_windows``, one entry per window, so a re-run replaces its own entry); a
challenger whose live evidence says it is better than the champion (``compare_mode`` ``improvement``), or no
worse by more than the margin (``non_inferiority``), is promoted (mode ``auto``) or proposed for approval (tag
``mlops.live_proposal``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow_mlops.errors import BadDataError, DataError
from airflow_mlops.model.metrics import COMPARE_MODES, LOWER_IS_BETTER, drop, tolerated_drop

log = logging.getLogger(__name__)

LABELS_FILE = "__labels_file__"  # which labels partition a row came from (read_labels), for the messages
WINDOWS_TAG = "mlops.live_windows"
PROPOSAL_TAG = "mlops.live_proposal"


def version_metrics(
    predictions: Any, labels: Any | None, *, id_column: str | None, label_column: str, task: str,
    value: dict[str, Any] | None = None,
) -> dict[str, dict[str, float]]:
    """``{version: {metric: value, "se_<metric>": its standard error, "rows": n}}`` for the rows of
    ``predictions`` that have a label: joined from ``labels`` on ``id_column``, or (``labels`` None) carried
    by the predictions themselves in ``label_column``."""
    from airflow_mlops.data.partitions import require_columns
    from airflow_mlops.model.metrics import (
        classification_metrics,
        multiclass_standard_errors,
        per_class_metrics,
        regression_metrics,
        standard_errors,
    )

    if labels is None:
        require_columns(predictions, [label_column], "predictions (labels in the scored rows)")
        joined = predictions[predictions[label_column].notna()]
        where = f"the scored rows' {label_column!r}"
    else:
        extra = [value["column"]] if value and value.get("column") else []
        require_columns(labels, [id_column, label_column, *extra], "labels")
        labels = _unique_labels(_conform_ids(labels, predictions, id_column), id_column, label_column)
        keep = [id_column, label_column, *extra, *([LABELS_FILE] if LABELS_FILE in labels.columns else [])]
        joined = predictions.drop(columns=[label_column, *extra], errors="ignore").merge(
            labels[keep], on=id_column, how="inner"
        )
        joined = joined[joined[label_column].notna()]
        where = f"{len(labels)} labels joined on {id_column!r}"
    if joined.empty:
        raise DataError(
            f"no predicted row has a label yet: {len(predictions)} predictions, {where}. Wait for the labels "
            "(scoring.labels.delay_days) or check the id and label columns"
        )
    otherwise = "in the scored rows" if labels is None else "given"
    joined = joined.assign(**{label_column: _conform_labels(joined, predictions, label_column, task, otherwise)})
    out: dict[str, dict[str, float]] = {}
    for version, rows in joined.groupby("model_version", sort=True):
        y = rows[label_column].to_numpy()
        if task == "classification":
            classes, proba = _class_probabilities(rows, joined[label_column])
            metrics = classification_metrics(y, proba, classes)
            if len(classes) == 2:
                errors = standard_errors(y == classes[1], proba[:, 1], task, metrics)
                if value:
                    worth = row_values(rows, y == classes[1], proba[:, 1] > 0.5, value)
                    metrics["value"], errors["value"] = float(worth.mean()), float(worth.std() / max(len(worth), 1) ** 0.5)
            else:
                if value:
                    raise DataError(
                        f"scoring.labels.value is a cost matrix of a binary classifier's decisions, and these labels hold "
                        f"{len(classes)} classes {classes}: remove the value section or score a binary model"
                    )
                metrics.update(per_class_metrics(y, proba, classes))
                errors = multiclass_standard_errors(y, proba, classes, metrics)
        else:
            prediction = rows["prediction"].to_numpy(dtype=float)
            metrics = regression_metrics(y, prediction)
            errors = standard_errors(y, prediction, task, metrics)
        out[str(version)] = {**metrics, **{f"se_{k}": v for k, v in errors.items()}, "rows": float(len(rows))}
    return out


def read_labels(uris: list[str], fmt: str, columns: list[str]) -> Any:
    """The labels of a window's partitions, each row marked with its file (for the messages)."""
    import pandas as pd

    from airflow_mlops.data.partitions import read_partition, require_columns

    frames = []
    for uri in uris:
        frame = read_partition(uri, fmt)
        require_columns(frame, columns, f"labels {uri}")
        frames.append(frame[columns].assign(**{LABELS_FILE: uri}))
    if not frames:
        raise DataError("no labels partition to read")
    return pd.concat(frames, ignore_index=True)


def _where(rows: Any, otherwise: str = "given") -> str:
    """The labels files that ``rows`` came from (:func:`read_labels`), else ``otherwise``."""
    files = sorted(set(rows[LABELS_FILE])) if LABELS_FILE in rows.columns else []
    if not files:
        return otherwise
    return f"in {files[0]}" + (f" (and {len(files) - 1} more file(s))" if len(files) > 1 else "")


def _examples(values: Any, n: int = 5) -> str:
    from airflow_mlops.tables import cut

    shown = list(dict.fromkeys(values.tolist()))
    return ", ".join(cut(repr(v), 40) for v in shown[:n]) + (f" and {len(shown) - n} more" if len(shown) > n else "")


def _conform_ids(labels: Any, predictions: Any, id_column: str) -> Any:
    """The labels' ids as the predictions' type (ids written as text, or as floats, still join); ids that
    cannot be are a gate naming the file: a join on them would silently find no row."""
    import pandas as pd

    theirs, ours = labels[id_column], predictions[id_column]
    if theirs.dtype == ours.dtype:
        return labels
    if pd.api.types.is_numeric_dtype(ours):
        converted = pd.to_numeric(theirs, errors="coerce")
        bad = theirs.notna() & (converted.isna() | (converted % 1 != 0 if ours.dtype.kind in "iu" else False))
        if bad.any():
            raise BadDataError(
                f"labels {_where(labels[bad])}: {int(bad.sum())} row(s) of {id_column!r} hold "
                f"{_examples(theirs[bad])}, and the predictions' ids are numbers ({ours.dtype}): fix the labels' ids "
                "and clear this task"
            )
        if ours.dtype.kind in "iu" and converted.notna().all():
            converted = converted.astype(ours.dtype)
        return labels.assign(**{id_column: converted})
    as_text = theirs.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    return labels.assign(**{id_column: as_text.where(theirs.notna(), None)})


def _unique_labels(labels: Any, id_column: str, label_column: str) -> Any:
    """One label per id: a row delivered twice counts once (logged); two different labels for one id are a
    gate naming the ids and files (which one is true cannot be known, and a join would count the row twice)."""
    same = labels.duplicated([id_column, label_column])
    if same.any():
        log.warning("labels: %d row(s) repeat an id with the same label; each id counts once", int(same.sum()))
        labels = labels[~same]
    twice = labels.duplicated([id_column], keep=False)
    if twice.any():
        ids = labels.loc[twice, id_column]
        raise BadDataError(
            f"labels {_where(labels[twice])}: {ids.nunique()} id(s) of {id_column!r} have different labels "
            f"({_examples(ids)}): which one is true cannot be known. Fix the labels (one row per id) and clear "
            "this task"
        )
    return labels


def _class_key(value: Any) -> str:
    """A label as the class name in the prediction file's ``proba_<class>`` columns: 1, 1.0 and "1" are 1."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _conform_labels(rows: Any, predictions: Any, label_column: str, task: str, otherwise: str) -> Any:
    """The label column as the metrics read it, or a gate naming the values, the file and what was expected:
    a classifier's labels as its classes (labels read as floats, 1.0, or as text, "1", are its class 1; a
    value that is none of its classes would silently count as a wrong prediction); a regressor's as numbers."""
    import pandas as pd

    from airflow_mlops.operations.scoring import PROBA_PREFIX

    y = rows[label_column]
    if task != "classification":
        number = pd.to_numeric(y, errors="coerce")
        bad = number.isna()
        if bad.any():
            raise BadDataError(
                f"labels {_where(rows[bad], otherwise)}: {int(bad.sum())} row(s) of {label_column!r} are not numbers "
                f"({_examples(y[bad])}) and the model is a regressor: fix the labels and clear this task"
            )
        return number.astype(float)
    keys = y.map(_class_key)
    names = [str(c)[len(PROBA_PREFIX) :] for c in predictions.columns if str(c).startswith(PROBA_PREFIX)]
    if names:
        bad = ~keys.isin(names)
        if bad.any():
            raise BadDataError(
                f"labels {_where(rows[bad], otherwise)}: {int(bad.sum())} row(s) of {label_column!r} hold "
                f"{_examples(y[bad])}, which are not classes of the model (its classes: {', '.join(names)}): fix "
                "the labels (their values or their type) and clear this task"
            )
    return keys


def row_values(rows: Any, actual: Any, predicted: Any, value: dict[str, Any]) -> Any:
    """Each labelled row's worth: its outcome's entry of the cost matrix (``tp``, ``fp``, ``fn``, ``tn``),
    times the row's amount (``value["column"]``) when one is given."""
    import numpy as np

    actual, predicted = np.asarray(actual, dtype=bool), np.asarray(predicted, dtype=bool)
    worth = np.select(
        [actual & predicted, ~actual & predicted, actual & ~predicted],
        [float(value.get("tp", 0)), float(value.get("fp", 0)), float(value.get("fn", 0))],
        default=float(value.get("tn", 0)),
    )
    if value.get("column"):
        amount = rows[value["column"]].to_numpy(dtype=float)
        worth = worth * np.nan_to_num(amount, nan=0.0)
    return worth


def _class_probabilities(rows: Any, labels: Any) -> tuple[list[Any], Any]:
    """The classes and the (rows x classes) probabilities of the scored rows: from the prediction file's
    ``proba_<class>`` columns (any number of classes), or, in files written before they existed, from the
    binary ``score``. A class is matched to its column by its text, so labels read as 2 find ``proba_2``."""
    import numpy as np

    from airflow_mlops.operations.scoring import PROBA_PREFIX

    columns = [c for c in rows.columns if str(c).startswith(PROBA_PREFIX)]
    if columns:
        seen = {str(v): v for v in set(labels.tolist())}
        names = [str(c)[len(PROBA_PREFIX) :] for c in columns]
        classes = [seen.get(n, n) for n in names]
        return classes, rows[columns].to_numpy(dtype=float)
    if "score" not in rows.columns:
        raise DataError("the predictions hold no class probabilities (score or proba_<class> columns)")
    classes = sorted(set(labels.tolist()))
    if len(classes) != 2:
        raise DataError(
            f"these predictions carry one binary score, and the labels hold classes {classes}: score the window "
            "again (the prediction file now has a proba_<class> column per class)"
        )
    score = rows["score"].to_numpy(dtype=float)
    return classes, np.column_stack([1 - score, score])


def _beats(challenger: float, champion: float, metric: str, min_improvement: float) -> bool:
    if metric in LOWER_IS_BETTER:
        return challenger <= champion - min_improvement
    return challenger >= champion + min_improvement


PROMOTION_ALPHA = 0.05  # the declared chance of promoting a challenger that is not better (peeking included)


def mixing_scale(metric: str, champion_value: float | None) -> float:
    """The effect size the sequential test is tuned to find (its mixing scale, fixed before any data): 0.02
    on a bounded metric, 2% of the champion's value on one in the target's or money's units."""
    if (metric in LOWER_IS_BETTER or metric == "value") and champion_value:
        return max(abs(float(champion_value)) * 0.02, 1e-9)
    return 0.02


def sequential_evidence(
    history: list[dict[str, Any]], *, metric: str, min_improvement: float, alpha: float = PROMOTION_ALPHA,
    tau: float = 0.02,
) -> dict[str, Any]:
    """How much better the challenger is than the champion on ``metric`` over its live windows, with an
    always-valid (1 - ``alpha``) confidence sequence, so it may be looked at after every window.

    Each window gives the difference of the two live values (sign-turned so that positive is better) and
    its standard error from the two values' own (``sqrt(se_challenger² + se_champion²)``: conservative for
    the shadow mode's shared rows). The windows pool by inverse variance into ``difference`` and its
    ``se``. The interval is the normal mixture confidence sequence (Robbins; Johari et al. 2017, mixing
    scale ``tau``): its error rate holds however many windows are looked at. The challenger is better when
    the interval's low end exceeds ``min_improvement``."""
    import math

    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    weights = diffs = 0.0
    windows = rows = 0
    for w in history:
        ch, champ = w.get(metric), w.get(f"champion_{metric}")
        se_ch, se_champ = w.get("se"), w.get("champion_se")
        if None in (ch, champ, se_ch, se_champ):
            continue  # a window recorded before standard errors were kept: not evidence here
        var = float(se_ch) ** 2 + float(se_champ) ** 2
        if var <= 0:
            continue
        weights += 1.0 / var
        diffs += sign * (float(ch) - float(champ)) / var
        windows += 1
        rows += int(w.get("rows") or 0)
    if not windows:
        return {"windows": 0, "rows": 0, "difference": None, "se": None, "low": None, "high": None, "better": False}
    difference, v = diffs / weights, 1.0 / weights
    t2 = tau * tau
    radius = math.sqrt(v * (v + t2) / t2 * (2 * math.log(1 / alpha) + math.log((v + t2) / v)))
    low, high = difference - radius, difference + radius
    return {
        "windows": windows, "rows": rows, "difference": difference, "se": math.sqrt(v), "low": low, "high": high,
        "alpha": alpha, "better": low > min_improvement,
    }


def record_window(
    c: Any,
    name: str,
    *,
    window: str,
    per_version: dict[str, dict[str, float]],
    champion: str,
    challenger: str | None,
    metric: str,
    min_improvement: float,
    promote_after: int,
    promotion_mode: str,
    alpha: float = PROMOTION_ALPHA,
    min_rows: int = 0,
    relative: bool = False,
    compare_mode: str = "improvement",
) -> dict[str, Any]:
    """Record one window's comparison on the challenger; promote (or propose) it once the evidence over its
    windows against this champion says it is better (:func:`sequential_evidence`, error rate ``alpha``),
    with at least ``promote_after`` windows and ``min_rows`` labelled challenger rows behind it.
    ``relative``: ``min_improvement`` is a fraction of the champion's live value in the window (as the model
    tests read ``tests.compare.relative``), not an amount in the metric's units. ``compare_mode`` as the
    model tests read ``tests.compare.mode``: ``improvement`` needs the interval's low end above the margin,
    ``non_inferiority`` above minus the margin (no worse than the champion by more than it)."""
    if compare_mode not in COMPARE_MODES:
        raise ValueError(f"compare_mode must be one of {', '.join(COMPARE_MODES)}; got {compare_mode!r}")
    from airflow_mlops.release import promotion
    from airflow_mlops.tracking import registry

    result: dict[str, Any] = {
        "window": window,
        "champion": champion,
        "challenger": challenger,
        "metric": metric,
    }
    champ = per_version.get(champion, {}).get(metric)
    result["champion_value"] = champ
    if challenger is None or challenger not in per_version or champ is None:
        result["decision"] = "no challenger predictions with labels in this window: nothing to compare"
        return result
    value = per_version[challenger].get(metric)
    result["challenger_value"] = value
    margin = abs(float(champ)) * min_improvement if relative else min_improvement
    bar = -margin if compare_mode == "non_inferiority" else margin  # what the difference must exceed
    won = value is not None and _beats(value, champ, metric, bar)
    version = c.get_model_version(name, challenger)
    history = [w for w in json.loads(version.tags.get(WINDOWS_TAG) or "[]") if w["window"] != window]

    def rounded(x: Any) -> Any:
        return round(float(x), 6) if x is not None else None

    history.append({
        "window": window, "champion": champion, "won": won, metric: rounded(value), f"champion_{metric}": rounded(champ),
        "se": rounded(per_version[challenger].get(f"se_{metric}")),
        "champion_se": rounded(per_version[champion].get(f"se_{metric}")),
        "rows": int(per_version[challenger].get("rows") or 0),
    })  # fmt: skip
    history.sort(key=lambda w: w["window"])
    history = history[-30:]
    c.set_model_version_tag(name, challenger, WINDOWS_TAG, json.dumps(history)[: registry.MAX_TAG])
    streak = 0
    for w in reversed(history):  # consecutive wins against the current champion, latest first
        if not w["won"] or w["champion"] != champion:
            break
        streak += 1
    against = [w for w in history if w["champion"] == champion]
    evidence = sequential_evidence(
        against, metric=metric, min_improvement=bar, alpha=alpha,
        tau=mixing_scale(metric, champ),
    )  # fmt: skip
    result.update(won=won, streak=streak, evidence=evidence)
    shown = (
        f"{evidence['difference']:+.4f} [{evidence['low']:+.4f}, {evidence['high']:+.4f}] over "
        f"{evidence['windows']} window(s)"
        if evidence["difference"] is not None
        else "no window with standard errors yet"
    )
    result["interval"] = shown
    enough = evidence["windows"] >= promote_after and evidence["rows"] >= min_rows
    if not (evidence["better"] and enough):
        need = (
            f"> {bar:.4g}" + (f" ({min_improvement * 100:g}% of v{champion}'s {champ:.4g})" if relative else "")
            + (" (non_inferiority: no worse than the champion by more than the margin)" if compare_mode == "non_inferiority" else "")
            if not evidence["better"]
            else f"{promote_after} windows, {min_rows} rows"
        )
        result["decision"] = f"v{challenger} - v{champion}: {shown}; not promoted (needs {need})"
        return result
    verdict = (
        f"no worse than champion v{champion} by more than {margin:.4g}"
        if compare_mode == "non_inferiority" else f"better than champion v{champion}"
    )
    reason = (
        f"{verdict} on live {metric}: difference {shown}, {100 * (1 - alpha):g}% "
        f"interval (latest {value:.4f} vs {champ:.4f})"
    )
    rolled_back = version.tags.get("mlops.rolled_back")
    if promotion_mode == "auto" and not rolled_back:
        promoted, _ = promotion.promote_champion(
            c, name, challenger, metric=metric, tested_against=champion, reason=f"live metrics: {reason}"
        )
        result["decision"] = (
            f"promoted v{challenger}: {reason}" if promoted else "not promoted: champion changed"
        )
        result["promoted"] = promoted
    else:
        c.set_model_version_tag(name, challenger, PROPOSAL_TAG, reason[: registry.MAX_TAG])
        why = f"it was rolled back ({rolled_back})" if rolled_back else f"promotion.mode is {promotion_mode}"
        result["decision"] = f"proposed v{challenger} for promotion, a person decides ({why}): {reason}"
        result["proposed"] = True
    log.warning("%s: %s", name, result["decision"])
    return result


def performance_drift(
    champion: Any,
    per_version: dict[str, dict[str, float]],
    *,
    metrics: list[str],
    tolerance: Any,
) -> dict[str, Any]:
    """Performance (concept) drift: the champion's live value of each watched metric against the value its
    model tests measured (tag ``mlops.test_metrics``). A metric drifts when its drop exceeds both its
    tolerance (``tolerance``: one value, or per metric) and the sample-size floor (3.09 standard errors of
    the live value: alpha 0.001, so a small window's noise is never a drop). Reported in the shape of a data
    drift report (``drift``, ``status``, ``drifted_features``) so it feeds the same retraining branch."""
    from airflow_mlops.data.drift.scores import Z_999
    from airflow_mlops.tracking import registry

    live = per_version.get(str(champion.version), {})
    rows: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        tested, value = registry.tested_metric(champion, metric), live.get(metric)
        allowed = tolerated_drop(tolerance, metric, tested)
        row: dict[str, Any] = {"tested": tested, "live": value, "tolerance": allowed, "rows": live.get("rows")}
        if tested is None or value is None:
            row.update(drop=None, floor=None, drift=False, status="insufficient_data")
        else:
            fell = drop(metric, tested, value)
            floor = Z_999 * float(live.get(f"se_{metric}", 0.0))
            drifted = allowed is not None and fell > allowed and fell > floor
            row.update(drop=fell, floor=floor, drift=drifted, status="drift" if drifted else "ok")
        rows[metric] = row
    drifted = [m for m, r in rows.items() if r["drift"]]
    measured = [m for m, r in rows.items() if r["drop"] is not None]
    lead = drifted[0] if drifted else (measured[0] if measured else (metrics[0] if metrics else None))
    first = rows.get(lead, {})
    return {
        "champion": str(champion.version), "metrics": rows, "drift": bool(drifted),
        "status": "drift" if drifted else ("no_drift" if measured else "insufficient_data"),
        "drifted_features": [f"performance:{m}" for m in drifted],
        # the leading metric (the first drifted one, else the first measured) in the flat shape of one metric
        "metric": lead, "tested": first.get("tested"), "live": first.get("live"), "drop": first.get("drop"),
        "tolerance": first.get("tolerance"),
    }  # fmt: skip


def performance_table(performance: dict[str, Any]) -> str:
    from airflow_mlops.tables import fmt, format_table

    return format_table(
        [
            (m, fmt(r["tested"]), fmt(r["live"]), fmt(r["drop"]), fmt(r["tolerance"]), fmt(r["floor"]),
             fmt(r["rows"]), r["status"].upper() if r["drift"] else r["status"])
            for m, r in performance["metrics"].items()
        ],
        ("metric", "tested", "live", "drop", "tolerance", "noise floor", "rows", "status"),
    )  # fmt: skip


def window_predictions(predictions_uri: str, window_label: str, id_column: str | None) -> Any:
    """The served predictions of a window and, when there are any, its shadow predictions, as one frame
    (a row scored by the same version twice, as a canary row is in both files, counts once)."""
    import pandas as pd

    from airflow_mlops.storage import exists, join

    base = predictions_uri.rstrip("/")
    served, shadow = join(base, f"{window_label}.parquet"), join(f"{base}_shadow", f"{window_label}.parquet")
    if not exists(served):
        raise FileNotFoundError(
            f"no predictions for {window_label} at {served}: run the scoring DAG for that interval first"
        )
    frame = pd.concat([pd.read_parquet(u) for u in (served, shadow) if exists(u)], ignore_index=True)
    # without an id there is no canary (the only way a row is scored twice by the same version)
    return frame.drop_duplicates([id_column, "model_version"]) if exists(shadow) and id_column else frame


def log_window(
    c: Any, model_name: str, label: str, per_version: dict[str, dict[str, float]], artifact_root: str | None
) -> str:
    """Per-version live metrics of a window as one MLflow run in ``airflow-mlops/<model>/live`` (a re-run of
    the window updates its run). Returns the run id."""
    from airflow_mlops.tracking import registry

    exp = registry.ensure_experiment(c, f"{registry.experiment_name(model_name)}/live", artifact_root)
    key = f"live:{model_name}:{label}"
    run = registry.find_run(c, exp, key)
    run_id = run.info.run_id if run is not None else c.create_run(
        exp, run_name=f"{model_name} live {label}", tags={registry.RUN_KEY_TAG: key}
    ).info.run_id  # fmt: skip
    for version, metrics in per_version.items():
        for name, value in metrics.items():
            c.log_metric(run_id, f"v{version}_{name}", float(value))
    if run is None:
        c.set_terminated(run_id)
    return run_id


def measure_live_window(
    c: Any,
    model_name: str,
    *,
    window: Any,
    predictions_uri: str,
    labels_uri: str | None,
    data_format: str,
    id_column: str | None,
    label_column: str,
    metric: str,
    min_improvement: float,
    promote_after: int,
    promotion_mode: str,
    max_metric_drop: float | str | dict[str, float | str] | None,
    metrics: list[str] | None = None,
    artifact_root: str | None = None,
    alpha: float = PROMOTION_ALPHA,
    min_rows: int = 0,
    value: dict[str, Any] | None = None,
    promote_on: str | None = None,
    relative: bool = False,
    compare_mode: str = "improvement",
) -> dict[str, Any]:
    """One labelled window, start to end: each version's live metrics (logged to MLflow), the challenger's
    record and promotion decision (:func:`record_window`), and the champion's performance drift.

    Returns the decision with the performance verdict on top (``drift``, ``status``, ``drifted_features``:
    the shape of a data drift report, so it feeds the same branch) and one ``summary`` line per version.
    """
    from airflow_mlops.data.partitions import partition_uris
    from airflow_mlops.tracking import registry

    predictions = window_predictions(predictions_uri, window.label, id_column)
    extra = [value["column"]] if value and value.get("column") else []
    labels = (
        read_labels(partition_uris(labels_uri, window), data_format, [id_column, label_column, *extra])
        if labels_uri else None
    )  # fmt: skip
    classifier = "score" in predictions.columns or "probability" in predictions.columns
    task = "classification" if classifier else "regression"
    per_version = version_metrics(
        predictions, labels, id_column=id_column, label_column=label_column, task=task, value=value
    )
    live_run = log_window(c, model_name, window.label, per_version, artifact_root)
    champion = registry.get_alias(c, model_name, registry.CHAMPION)
    if champion is None:
        raise DataError(
            f"{model_name} has no {registry.CHAMPION!r} version: live metrics compare versions against the "
            "champion; promote a version first (airflow-mlops promote)"
        )
    challenger = registry.get_alias(c, model_name, registry.CHALLENGER)
    result = record_window(
        c, model_name, window=window.label, per_version=per_version, champion=str(champion.version),
        challenger=str(challenger.version) if challenger else None, metric=promote_on or metric,
        min_improvement=min_improvement, promote_after=promote_after, promotion_mode=promotion_mode,
        alpha=alpha, min_rows=min_rows, relative=relative, compare_mode=compare_mode,
    )  # fmt: skip
    watched = list(dict.fromkeys([metric, *(metrics or [])]))
    performance = performance_drift(champion, per_version, metrics=watched, tolerance=max_metric_drop)
    # the window's verdicts on its run, for the MLOps view's one row per window
    c.set_tag(live_run, "mlops.live_metric", metric)
    c.set_tag(live_run, "mlops.live_champion", str(champion.version))
    if challenger is not None:
        c.set_tag(live_run, "mlops.live_challenger", str(challenger.version))
    c.set_tag(live_run, "mlops.live_decision", str(result.get("decision", ""))[: registry.MAX_TAG])
    c.set_tag(live_run, "mlops.performance_status", str(performance.get("status", "")))
    summary = [
        f"v{v}: " + ", ".join(f"{k}={m[k]:.4f}" for k in watched if k in m) + f" on {int(m['rows'])} rows"
        for v, m in per_version.items()
    ]
    return {
        **result, "per_version": per_version, "performance": performance, "drift": performance["drift"],
        "status": performance["status"], "drifted_features": performance["drifted_features"],
        "report_uri": None, "window": window.label, "summary": summary,
    }  # fmt: skip
