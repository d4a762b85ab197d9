"""Live metrics: when labels arrive for scored rows, measure each model version on them.

The served predictions (champion, and canary rows of the challenger) and the shadow predictions are joined
with the labels by row id; each version gets its metric on the rows it scored. Every window is recorded on
the challenger (tag ``mlops.live_windows``, one entry per window, so a re-run replaces its own entry); a
challenger that beats the champion in the last ``promote_after`` windows in a row is promoted (mode
``auto``) or proposed for approval (tag ``mlops.live_proposal``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow_mlops.errors import DataError
from airflow_mlops.model.metrics import LOWER_IS_BETTER

log = logging.getLogger(__name__)

WINDOWS_TAG = "mlops.live_windows"
PROPOSAL_TAG = "mlops.live_proposal"


def version_metrics(
    predictions: Any, labels: Any, *, id_column: str, label_column: str, task: str
) -> dict[str, dict[str, float]]:
    """``{version: {metric: value, "rows": n}}`` for the rows of ``predictions`` that have a label."""
    from airflow_mlops.data.partitions import require_columns
    from airflow_mlops.model.metrics import classification_metrics, regression_metrics

    require_columns(labels, [id_column, label_column], "labels")
    joined = predictions.merge(labels[[id_column, label_column]], on=id_column, how="inner")
    if joined.empty:
        raise DataError(
            f"no predicted row has a label yet: {len(predictions)} predictions, {len(labels)} labels, joined on "
            f"{id_column!r}. Wait for the labels (scoring.labels.delay_days) or check the id column"
        )
    out: dict[str, dict[str, float]] = {}
    for version, rows in joined.groupby("model_version", sort=True):
        y = rows[label_column].to_numpy()
        if task == "classification":
            import numpy as np

            classes = sorted(set(joined[label_column].tolist()))
            if len(classes) != 2:
                raise DataError(f"live metrics need binary labels for a classifier; found classes {classes}")
            score = rows["score"].to_numpy(dtype=float)
            metrics = classification_metrics(y, np.column_stack([1 - score, score]), classes)
        else:
            metrics = regression_metrics(y, rows["prediction"].to_numpy(dtype=float))
        out[str(version)] = {**metrics, "rows": float(len(rows))}
    return out


def _beats(challenger: float, champion: float, metric: str, min_improvement: float) -> bool:
    if metric in LOWER_IS_BETTER:
        return challenger <= champion - min_improvement
    return challenger >= champion + min_improvement


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
) -> dict[str, Any]:
    """Record one window's comparison on the challenger; promote or propose it after enough wins in a row."""
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
    won = value is not None and _beats(value, champ, metric, min_improvement)
    version = c.get_model_version(name, challenger)
    history = [w for w in json.loads(version.tags.get(WINDOWS_TAG) or "[]") if w["window"] != window]
    history.append(
        {"window": window, "champion": champion, "won": won, metric: value, f"champion_{metric}": champ}
    )
    history.sort(key=lambda w: w["window"])
    history = history[-50:]
    c.set_model_version_tag(name, challenger, WINDOWS_TAG, json.dumps(history)[: registry.MAX_TAG])
    streak = 0
    for w in reversed(history):  # consecutive wins against the current champion, latest first
        if not w["won"] or w["champion"] != champion:
            break
        streak += 1
    result.update(won=won, streak=streak)
    if streak < promote_after:
        result["decision"] = (
            f"challenger v{challenger} {'won' if won else 'lost'}: {streak}/{promote_after} wins in a row"
        )
        return result
    reason = (
        f"won {streak} consecutive live windows against champion v{champion} on {metric} "
        f"(latest {value:.4f} vs {champ:.4f})"
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
    champion: Any, per_version: dict[str, dict[str, float]], *, metric: str, tolerance: float
) -> dict[str, Any]:
    """Performance (concept) drift: the champion's live ``metric`` against the value its model tests measured
    (tag ``mlops.test_metrics``). A drop beyond ``tolerance`` is drift, reported in the same shape as a data
    drift report (``drift``, ``status``, ``drifted_features``) so it feeds the same branch."""
    from airflow_mlops.tracking import registry

    tested = registry.tested_metric(champion, metric)
    live = per_version.get(str(champion.version), {}).get(metric)
    out: dict[str, Any] = {
        "metric": metric, "tested": tested, "live": live, "tolerance": tolerance, "champion": str(champion.version),
    }  # fmt: skip
    if tested is None or live is None:
        out.update(drift=False, status="insufficient_data", drop=None, drifted_features=[])
        return out
    drop = (live - tested) if metric in LOWER_IS_BETTER else (tested - live)
    drifted = drop > tolerance
    out.update(
        drop=drop, drift=drifted, status="drift" if drifted else "no_drift",
        drifted_features=[f"performance:{metric}"] if drifted else [],
    )  # fmt: skip
    return out


def window_predictions(predictions_uri: str, window_label: str, id_column: str) -> Any:
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
    return frame.drop_duplicates([id_column, "model_version"]) if exists(shadow) else frame


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
    labels_uri: str,
    data_format: str,
    id_column: str,
    label_column: str,
    metric: str,
    min_improvement: float,
    promote_after: int,
    promotion_mode: str,
    max_metric_drop: float,
    artifact_root: str | None = None,
) -> dict[str, Any]:
    """One labelled window, start to end: each version's live metrics (logged to MLflow), the challenger's
    record and promotion decision (:func:`record_window`), and the champion's performance drift.

    Returns the decision with the performance verdict on top (``drift``, ``status``, ``drifted_features``:
    the shape of a data drift report, so it feeds the same branch) and one ``summary`` line per version.
    """
    from airflow_mlops.data.partitions import partition_uris, read_window
    from airflow_mlops.tracking import registry

    predictions = window_predictions(predictions_uri, window.label, id_column)
    labels, _ = read_window(partition_uris(labels_uri, window), data_format)
    task = "classification" if "score" in predictions.columns else "regression"
    per_version = version_metrics(
        predictions, labels, id_column=id_column, label_column=label_column, task=task
    )
    log_window(c, model_name, window.label, per_version, artifact_root)
    champion = registry.get_alias(c, model_name, registry.CHAMPION)
    if champion is None:
        raise DataError(
            f"{model_name} has no {registry.CHAMPION!r} version: live metrics compare versions against the "
            "champion; promote a version first (airflow-mlops promote)"
        )
    challenger = registry.get_alias(c, model_name, registry.CHALLENGER)
    result = record_window(
        c, model_name, window=window.label, per_version=per_version, champion=str(champion.version),
        challenger=str(challenger.version) if challenger else None, metric=metric,
        min_improvement=min_improvement, promote_after=promote_after, promotion_mode=promotion_mode,
    )  # fmt: skip
    performance = performance_drift(champion, per_version, metric=metric, tolerance=max_metric_drop)
    summary = [
        f"v{v}: {metric}={m.get(metric, float('nan')):.4f} on {int(m['rows'])} rows" for v, m in per_version.items()
    ]
    return {
        **result, "per_version": per_version, "performance": performance, "drift": performance["drift"],
        "status": performance["status"], "drifted_features": performance["drifted_features"],
        "report_uri": None, "window": window.label, "summary": summary,
    }  # fmt: skip
