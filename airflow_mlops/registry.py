"""MLflow tracking and registry: runs found by idempotency key, versions with lineage, aliases (never stages)."""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
RUN_KEY_TAG = "mlops.run_key"
MODEL_SHA_TAG = "mlops.model_sha256"
MODEL_URI_TAG = "mlops.model_uri"
PROFILE_TAG = "mlops.profile_uri"
MAX_TAG = 5000  # MLflow's limit on a tag value is 8000 characters; stay well below


def client(tracking_uri: str | None = None, registry_uri: str | None = None):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)


def experiment_name(pipeline: str) -> str:
    return f"airflow-mlops/{pipeline}"


def default_artifact_root(tracking_uri: str | None) -> str | None:
    """Artifacts of a local ``sqlite:///`` store go beside its database file.

    MLflow's own default for such a store is ``./mlruns`` under whatever the current directory of the
    process happens to be (for a task, the worker's), which scatters models over the machine.
    """
    if not tracking_uri or not tracking_uri.startswith("sqlite:///"):
        return None
    from pathlib import Path

    return (Path(tracking_uri[len("sqlite:///") :]).resolve().parent / "artifacts").as_uri()


def ensure_experiment(c: Any, name: str, artifact_root: str | None = None) -> str:
    """The experiment's id, creating it (with its artifacts under ``artifact_root``) on first use."""
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = f"{artifact_root.rstrip('/')}/{name.replace('/', '_')}" if artifact_root else None
    try:
        return c.create_experiment(name, artifact_location=location)
    except Exception:  # created concurrently by another task
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _run_by_key(c: Any, experiment_id: str, run_key: str, status: str, order: str) -> Any | None:
    runs = c.search_runs(
        [experiment_id],
        filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}' and attributes.status {status}",
        order_by=[f"attributes.start_time {order}"],
        max_results=1,
    )
    return runs[0] if runs else None


def find_run(c: Any, experiment_id: str, run_key: str) -> Any | None:
    """The finished run that the same idempotency key already produced, if any."""
    return _run_by_key(c, experiment_id, run_key, "= 'FINISHED'", "ASC")


def find_unfinished_run(c: Any, experiment_id: str, run_key: str) -> Any | None:
    """The latest run of the same key that did not finish (killed, failed): a retry resumes it."""
    return _run_by_key(c, experiment_id, run_key, "!= 'FINISHED'", "DESC")


def find_version(c: Any, name: str, run_key: str) -> Any | None:
    try:
        versions = c.search_model_versions(f"name = '{name}' and tags.`{RUN_KEY_TAG}` = '{run_key}'")
    except Exception as err:  # registered model does not exist yet
        log.debug("search_model_versions: %s", err)
        return None
    return min(versions, key=lambda v: int(v.version)) if versions else None


def get_alias(c: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return c.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def clean_tags(tags: dict[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in tags.items():
        if v is None:
            continue
        s = str(v)
        out[k] = s if len(s) <= MAX_TAG else s[: MAX_TAG - 15] + "...[truncated]"
    return out


def register_version(
    c: Any,
    *,
    name: str,
    model_uri: str,
    run_id: str,
    run_key: str,
    tags: dict[str, Any],
    description: str = "",
) -> tuple[Any, bool]:
    """Register ``model_uri`` under ``name`` unless the run key already has a version. Returns (version, reused)."""
    from mlflow.exceptions import MlflowException

    existing = find_version(c, name, run_key)
    if existing is not None:
        log.info(
            "run key %s already registered as %s version %s: reusing it", run_key, name, existing.version
        )
        return existing, True
    try:
        c.create_registered_model(name, description=f"Managed by airflow-mlops (pipeline {name}).")
    except MlflowException as err:
        if "already exists" not in str(err).lower() and "RESOURCE_ALREADY_EXISTS" not in str(err):
            raise
    all_tags = clean_tags({**tags, RUN_KEY_TAG: run_key})
    version = c.create_model_version(
        name=name, source=model_uri, run_id=run_id, tags=all_tags, description=description
    )
    for _ in range(60):  # file and sqlite stores are READY at once; remote stores may take a moment
        version = c.get_model_version(name, version.version)
        if version.status == "READY":
            break
        time.sleep(1)
    log.info("registered %s version %s from run %s", name, version.version, run_id)
    return version, False


def promote(c: Any, name: str, version: str, alias: str = CHAMPION, reason: str = "") -> str | None:
    """Point ``alias`` at ``version``; record the previous holder on the version for rollback."""
    previous = get_alias(c, name, alias)
    prev_version = str(previous.version) if previous is not None else None
    if prev_version == str(version):
        log.info("%s version %s already holds alias %r", name, version, alias)
        return prev_version
    if prev_version is not None:
        c.set_model_version_tag(name, version, f"mlops.previous_{alias}", prev_version)
    if reason:
        c.set_model_version_tag(name, version, f"mlops.{alias}_reason", reason[:MAX_TAG])
    c.set_registered_model_alias(name, alias, version)
    log.info("alias %r of %s: version %s -> %s", alias, name, prev_version, version)
    return prev_version


def run_url(ui_url: str | None, experiment_id: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}" if ui_url else ""


def version_url(ui_url: str | None, name: str, version: str) -> str:
    return f"{ui_url.rstrip('/')}/#/models/{name}/versions/{version}" if ui_url else ""


def register_and_promote(
    c: Any,
    *,
    name: str,
    training: dict[str, Any],
    tests: dict[str, Any],
    promotion_mode: str = "auto",
    airflow: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Register the trained run (idempotently) with its lineage, then set ``champion`` or ``challenger``."""
    import json

    run = c.get_run(training["run_id"])
    lineage = {k: v for k, v in run.data.tags.items() if k.startswith(("mlops.", "airflow."))}
    metrics = tests.get("metrics") or {}
    tags = {
        **lineage,
        MODEL_SHA_TAG: training["model_sha256"],
        "mlops.tests": "passed" if tests.get("passed") else "failed",
        "mlops.test_metrics": json.dumps({k: round(v, 6) for k, v in metrics.items()}, sort_keys=True),
        "mlops.promotion_decision": tests.get("reason", ""),
        **{f"airflow.register_{k}": v for k, v in (airflow or {}).items() if k in ("dag_id", "run_id")},
    }
    summary = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
    description = f"Tests passed on {run.data.tags.get('mlops.window_start', '?')}..{run.data.tags.get('mlops.window_end', '?')}: {summary}. {tests.get('reason', '')}"
    version, reused = register_version(
        c, name=name, model_uri=training["model_uri"], run_id=training["run_id"], run_key=training["run_key"],
        tags=tags, description=description,
    )  # fmt: skip
    previous = None
    if tests.get("promote") and promotion_mode == "auto":
        previous = promote(c, name, version.version, CHAMPION, tests.get("reason", ""))
        alias, promoted, reason = CHAMPION, True, tests.get("reason", "")
    else:
        current = get_alias(c, name, CHAMPION)
        if current is not None and str(current.version) == str(version.version):
            alias, promoted, reason = CHAMPION, True, "already champion"
        else:
            promote(c, name, version.version, CHALLENGER)
            alias, promoted = CHALLENGER, False
            reason = (
                "passed its tests; promotion.mode is manual: promote with `airflow-mlops promote`"
                if tests.get("promote")
                else tests.get("reason", "")
            )
        c.set_model_version_tag(name, version.version, "mlops.promotion_decision", reason[:MAX_TAG])
    return {
        "name": name,
        "version": str(version.version),
        "run_id": training["run_id"],
        "reused": reused,
        "alias": alias,
        "promoted": promoted,
        "reason": reason,
        "previous_champion": previous,
    }
