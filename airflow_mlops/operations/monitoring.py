"""Drift monitoring against the champion: find the reference profile through the registry, score the current
profile against it (the pure scores are in :mod:`airflow_mlops.data.drift.scores`), store the report beside
the profile and log it to MLflow."""

from __future__ import annotations

import logging
from typing import Any

from airflow_mlops.data.drift.scores import DriftPolicy, drift_table, score_drift, summary_line

log = logging.getLogger(__name__)


def waiting_reason(c: Any, model_name: str, current_uri: str) -> str | None:
    """Why drift cannot be scored yet (no current profile, no champion to take the reference from), or None."""
    from airflow_mlops import storage
    from airflow_mlops.tracking import registry

    if not current_uri or not storage.exists(current_uri):
        return f"the current profile {current_uri or '(none)'} is not there yet"
    if registry.get_alias(c, model_name, registry.CHAMPION) is None:
        return f"{model_name} has no {registry.CHAMPION!r} version yet, so there is no reference profile"
    return None


def check_against_champion(
    c: Any,
    *,
    model_name: str,
    current_uri: str,
    numeric: list[str],
    categorical: list[str],
    policy: DriftPolicy | dict[str, Any] | None = None,
    artifact_root: str | None = None,
    expectations: list[dict[str, Any]] | None = None,
    quality: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """Score the current profile against the champion's training profile; None while there is nothing to
    compare yet (no current profile, no champion). The report is stored as JSON beside the current profile.

    ``expectations`` are the validation rows of the data contract's distribution expectations on the current
    data (mean and quantile bounds): they are part of the report (and its page), never a reason to stop.
    ``quality`` are the partition's findings against its own history (:mod:`airflow_mlops.data.quality`): the
    second verdict, beside drift's and never weighed by importance.
    """
    from airflow_mlops import storage
    from airflow_mlops.errors import IntegrityError
    from airflow_mlops.tracking import registry

    reason = waiting_reason(c, model_name, current_uri)
    if reason is not None:
        log.info("waiting: %s", reason)
        return None
    champion = registry.get_alias(c, model_name, registry.CHAMPION)
    reference = champion.tags.get(registry.PROFILE_TAG)
    if not reference:
        raise IntegrityError(
            f"{model_name} v{champion.version} has no {registry.PROFILE_TAG} tag: it was not registered by "
            "airflow-mlops, so its training data has no reference profile; register a version trained by a "
            "pipeline (or set the tag to the profile of its training data)"
        )
    from airflow_mlops.data.drift.report import render_html, render_png
    from airflow_mlops.data.profiling import load_profile

    ref_view, cur_view = load_profile(reference), load_profile(current_uri)
    report = score_drift(
        ref_view, cur_view, numeric=numeric, categorical=categorical, policy=policy,
        importance=registry.feature_importance(champion),
    )  # fmt: skip
    report.update(
        reference_profile=reference,
        current_profile=current_uri,
        champion_version=str(champion.version),
        expectations=list(expectations or []),
        quality=list(quality or []),
        quality_status="anomaly" if quality else "ok",
    )
    base = current_uri.rsplit(".", 1)[0] + f"-drift-v{champion.version}"
    png = render_png(ref_view, cur_view, report)
    report["report_uri"] = base + ".json"
    report["report_html"] = base + ".html"
    report["report_png"] = base + ".png" if png else None
    if png:
        storage.write_bytes_atomic(base + ".png", png)
    title = f"Drift of {model_name}: current data vs the training data of champion v{champion.version}"
    page = render_html(report, png, title)
    storage.write_bytes_atomic(report["report_html"], page.encode())
    storage.write_json_atomic(report["report_uri"], report)
    report["mlflow_run_id"] = _log_to_mlflow(c, model_name, report, page, png, artifact_root)
    broken = [e for e in report["expectations"] if not e.get("passed")]
    log.info(
        "%s vs champion v%s; data quality: %s\n%s%s",
        summary_line(report),
        champion.version,
        quality_line(report["quality"]),
        drift_table(report),
        "".join(
            f"\nexpectation broken: {e['check']} of {e['column']} is {e['observed']} (expected {e['expected']})"
            for e in broken
        ),
    )
    return report


def quality_line(findings: list[dict[str, Any]]) -> str:
    """The quality verdict beside drift's: ``ok`` or the findings (check, column, day)."""
    if not findings:
        return "ok (every check against the partition's history passed)"
    shown = ", ".join(f"{f['check'].removeprefix('quality: ')} {f['column']} {f['partition']}" for f in findings[:3])
    return f"{len(findings)} anomaly(ies): {shown}" + (", ..." if len(findings) > 3 else "")


def _log_to_mlflow(
    c: Any, model_name: str, report: dict[str, Any], page: str, png: bytes | None, artifact_root: str | None
) -> str:
    """One MLflow run per (current profile, champion) in ``airflow-mlops/<model>/drift``: the scores as
    metrics, the report (JSON, HTML, PNG) as artifacts. A re-run of the same comparison finds its run."""
    import json
    import os
    import tempfile

    from airflow_mlops.data.validation import partition_label
    from airflow_mlops.tracking import registry

    exp = registry.ensure_experiment(c, f"{registry.experiment_name(model_name)}/drift", artifact_root)
    key = f"drift:{report['current_profile']}:v{report['champion_version']}"
    found = registry.find_run(c, exp, key)
    day = partition_label(report["current_profile"])
    try:  # the model's drift state follows its latest day checked (a backfill of older days leaves it)
        latest = c.get_registered_model(model_name).tags.get(registry.DRIFT_DAY_TAG)
    except Exception:
        latest = None
    if latest is None or day >= latest:
        registry.set_model_state(c, model_name, {registry.DRIFT_STATE_TAG: report["status"], registry.DRIFT_DAY_TAG: day})
    if found is not None:
        return found.info.run_id
    run = c.create_run(
        exp,
        run_name=f"{model_name} drift {partition_label(report['current_profile'])} vs v{report['champion_version']}",
        tags={
            registry.RUN_KEY_TAG: key, "mlops.drift_status": report["status"], "mlops.pipeline": model_name,
            # each feature's deciding threshold (with its sample-size floor): the MLOps view draws it
            "mlops.drift_thresholds": json.dumps(
                {r["feature"]: round(float(r["threshold"]), 4) for r in report["features"] if r.get("threshold") is not None}
            )[: registry.MAX_TAG],
        },
    )
    run_id = run.info.run_id
    c.log_metric(run_id, "drift_share", float(report["drift_share"]))
    if report.get("drifted_importance") is not None:
        c.log_metric(run_id, "drifted_importance", float(report["drifted_importance"]))
    for row in report["features"]:
        if row.get("score") is not None:
            c.log_metric(run_id, f"score_{row['feature']}", float(row["score"]))
    c.log_text(run_id, json.dumps(report, indent=2, sort_keys=True, default=str), "drift/report.json")
    c.log_text(run_id, page, "drift/report.html")
    if png:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "top_features.png")
            with open(path, "wb") as fh:
                fh.write(png)
            c.log_artifact(run_id, path, "drift")
    c.set_terminated(run_id)
    return run_id
