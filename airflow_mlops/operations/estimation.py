"""Estimated performance of a scoring window before its labels arrive (CBPE, :mod:`airflow_mlops.model.estimation`).

The champion's rows of a window's predictions, calibrated with the curve its model tests fitted on the
held-out rows (tag ``mlops.calibration``), give each watched metric's expected value and 95% band. A metric
whose estimate falls further below the tested value than its tolerance, with the whole band below the tested
value, is (estimated) performance drift: reported in the shape of a drift report, so the scoring DAG branches
into the same retraining trigger. Blind to pure concept drift (see the model module); live metrics see it.
Where the window's scores moved from the held-out rows' (``score_shift``'s KS distance above its limit),
a binary model's curve is moved towards the window's rows (the score-noise model kept with the calibration:
:func:`airflow_mlops.model.estimation.estimate_window_metrics`), and the result carries a ``caveat`` saying
so: under covariate shift the score alone cannot tell all that the inputs say.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_mlops.model.metrics import LOWER_IS_BETTER, drop, tolerated_drop

log = logging.getLogger(__name__)


def judge(
    estimates: dict[str, dict[str, float]], tested: dict[str, float | None], tolerance: Any
) -> dict[str, dict[str, Any]]:
    """Per metric: the estimate, its band, the tested value, the drop and whether it is drift (see module)."""
    rows: dict[str, dict[str, Any]] = {}
    for metric, est in estimates.items():
        ref = tested.get(metric)
        allowed = tolerated_drop(tolerance, metric, ref)
        row: dict[str, Any] = {**est, "tested": ref, "tolerance": allowed}
        if ref is None:
            row.update(drop=None, drift=False, status="insufficient_data")
        else:
            fell = drop(metric, ref, est["estimate"])
            # the whole band on the wrong side: even its best end fell below the tested value
            best = est["low"] if metric in LOWER_IS_BETTER else est["high"]
            drifted = allowed is not None and fell > allowed and drop(metric, ref, best) > 0
            row.update(drop=fell, drift=drifted, status="drift" if drifted else "ok")
        rows[metric] = row
    return rows


def estimate_window(
    c: Any,
    model_name: str,
    *,
    predictions_uri: str,
    window_label: str,
    metrics: list[str],
    max_metric_drop: float | str | dict[str, float | str] | None,
    artifact_root: str | None = None,
) -> dict[str, Any]:
    """Estimate the champion's metrics on a scored window (no labels) and decide estimated performance drift.

    Returns the drift-report shape (``drift``, ``status``, ``drifted_features``) with ``metrics`` (per metric:
    estimate, low, high, tested, drop, tolerance, status), ``rows`` and ``champion``; ``status`` is
    ``not_measured`` when the champion has no calibration (registered before it was fitted, or not a
    classifier)."""
    from airflow_mlops.model.estimation import estimate_window_metrics
    from airflow_mlops.operations.live import window_predictions
    from airflow_mlops.operations.scoring import PROBA_PREFIX
    from airflow_mlops.tracking import registry

    champion = registry.get_alias(c, model_name, registry.CHAMPION)
    out: dict[str, Any] = {
        "window": window_label, "champion": str(champion.version) if champion else None, "metrics": {},
        "drift": False, "drifted_features": [], "report_uri": None,
    }  # fmt: skip
    calibration = registry.calibration(champion) if champion is not None else None
    if calibration is None:
        why = "no champion" if champion is None else f"v{champion.version} has no recorded {registry.CALIBRATION_TAG}"
        out.update(status="not_measured", reason=f"{why}: performance is not estimated (live metrics still apply)")
        return out
    frame = window_predictions(predictions_uri, window_label, None)
    rows = frame[frame["model_version"].astype(str) == str(champion.version)]
    if "curves" in calibration:  # multiclass: the champion's probability of each class, in its curves' order
        columns = [f"{PROBA_PREFIX}{c}" for c in calibration["classes"]]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            out.update(status="not_measured", reason=(
                f"the predictions lack {', '.join(missing)} (written before per-class columns existed): "
                "performance is not estimated for this window"
            ))  # fmt: skip
            return out
        scores = rows[columns].to_numpy(dtype=float)
    elif "score" in frame.columns:
        scores = rows["score"].to_numpy(dtype=float)
    else:
        out.update(status="not_measured", reason="the predictions hold no scores (not a classifier)")
        return out
    found = estimate_window_metrics(scores, calibration, metrics=metrics)
    estimates, moved = found["metrics"], found["score_shift"]
    out["score_shift"], out["for_window"] = moved, found["for_window"]
    if moved is not None and moved["ks"] > moved["limit"]:
        redrawn = (
            "the curve was moved half-way to where the score noise measured at test time puts these rows, and "
            "the band reaches both the curve as fitted and moved all the way"
            if found["for_window"] else f"{found['why_not']}, so the estimate may lag by that much"
        )  # fmt: skip
        out["caveat"] = (
            f"the window's scores moved from the held-out rows' v{champion.version} was calibrated on (KS "
            f"{moved['ks']:.3f} > {moved['limit']:.3f}): where the score does not carry all that the inputs say, "
            f"rows with the same score are now more or less often positive than there; {redrawn}; the drift "
            "sensor and, once labels arrive, live metrics tell (docs/concepts.md, 'Where it is blind')"
        )
    tested = {m: registry.tested_metric(champion, m) for m in estimates}
    judged = judge(estimates, tested, max_metric_drop)
    drifted = [m for m, r in judged.items() if r["drift"]]
    out.update(
        metrics=judged, rows=int(len(rows)), drift=bool(drifted),
        status="drift" if drifted else "no_drift", drifted_features=[f"estimated:{m}" for m in drifted],
    )  # fmt: skip
    out["mlflow_run_id"] = _log(c, model_name, window_label, out, artifact_root)
    return out


def estimate_table(result: dict[str, Any]) -> str:
    """The window's estimates as a table, and the result's caveat (if any) on a line under it."""
    from airflow_mlops.tables import fmt, format_table

    table = format_table(
        [
            (m, fmt(r["tested"]), fmt(r["estimate"]), f"{fmt(r['low'])} .. {fmt(r['high'])}", fmt(r["drop"]),
             fmt(r["tolerance"]), r["status"].upper() if r["drift"] else r["status"])
            for m, r in result["metrics"].items()
        ],
        ("metric", "tested", "estimated", "95% band", "drop", "tolerance", "status"),
    )  # fmt: skip
    return table + (f"\ncaveat: {result['caveat']}" if result.get("caveat") else "")


def _log(c: Any, model_name: str, label: str, result: dict[str, Any], artifact_root: str | None) -> str:
    """The window's estimates as one MLflow run in ``airflow-mlops/<model>/estimated`` (re-runs update it)."""
    from airflow_mlops.tracking import registry

    exp = registry.ensure_experiment(c, f"{registry.experiment_name(model_name)}/estimated", artifact_root)
    key = f"estimate:{model_name}:{label}"
    run = registry.find_run(c, exp, key)
    run_id = run.info.run_id if run is not None else c.create_run(
        exp, run_name=f"{model_name} estimate {label}",
        tags={registry.RUN_KEY_TAG: key, "mlops.pipeline": model_name, "mlops.champion": result["champion"]},
    ).info.run_id  # fmt: skip
    for metric, row in result["metrics"].items():
        for part in ("estimate", "low", "high"):
            c.log_metric(run_id, f"v{result['champion']}_{metric}_{part}", float(row[part]))
    if result.get("score_shift") is not None:
        c.log_metric(run_id, f"v{result['champion']}_score_shift_ks", float(result["score_shift"]["ks"]))
    c.set_tag(run_id, "mlops.estimated_status", result["status"])
    if run is None:
        c.set_terminated(run_id)
    return run_id
