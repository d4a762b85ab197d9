"""MLflow tracking and registry: runs found by idempotency key, versions with lineage, aliases (never stages)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
RUN_KEY_TAG = "mlops.run_key"
MODEL_SHA_TAG = "mlops.model_sha256"
# the sha256 of every file of the logged model, MLmodel included (JSON {path: sha256}); on the run, and
# copied onto the registry version, which is what loaders check against
MODEL_FILES_TAG = "mlops.model_files"
SPLIT_TAG = "mlops.split"  # the held-out split a run trained with: seed, fraction, window, fingerprint
MODEL_URI_TAG = "mlops.model_uri"
PROFILE_TAG = "mlops.profile_uri"
MAX_TAG = 5000  # MLflow's limit on a tag value is 8000 characters; stay well below


def existing_client():
    """:func:`client` for a command that reads the registry: a local SQLite store that is not there (the
    tracking store or the registry's) is named (a DataError), not created empty (MLflow would make one, and
    the model would then be 'not found')."""
    import os

    import mlflow

    from airflow_mlops.errors import DataError

    for uri in dict.fromkeys([str(mlflow.get_tracking_uri()), str(mlflow.get_registry_uri())]):
        if uri.startswith("sqlite:///") and not os.path.exists(uri.removeprefix("sqlite:///")):
            raise DataError(f"no registry at {uri}: set MLFLOW_TRACKING_URI to the pipeline's tracking server or store")
    return client()


def client(tracking_uri: str | None = None, registry_uri: str | None = None):
    """An ``MlflowClient``. For a local SQLite store, creating it (which creates or migrates the database on
    first use) holds a lock beside the database file: trainers that start at once on a new store would
    otherwise race through MLflow's migrations (``duplicate column name``)."""
    import contextlib

    import mlflow
    from mlflow.tracking import MlflowClient

    from airflow_mlops.storage import machine_lock

    uri = tracking_uri or mlflow.get_tracking_uri()
    setup = (
        machine_lock(uri[len("sqlite:///") :] + ".setup-lock")
        if str(uri).startswith("sqlite:///")
        else contextlib.nullcontext()
    )
    with setup:
        c = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
        c._get_registry_client()  # the registry store of the same database, also set up under the lock
    return c


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
    # an MLflow 3 logged model (models:/m-...) is named by its id; a tracking server requires it
    model_id = model_uri[len("models:/") :] if model_uri.startswith("models:/m-") else None
    try:
        version = c.create_model_version(
            name=name, source=model_uri, run_id=run_id, tags=all_tags, description=description, model_id=model_id
        )
    except MlflowException:
        # the server may have created it before the answer was lost (the client retries on its own too)
        version = find_version(c, name, run_key)
        if version is None:
            raise
        log.warning("registration of run key %s answered with an error, but version %s exists: using it",
                    run_key, version.version)  # fmt: skip
    kept = _drop_duplicates(c, name, run_key, keep=str(version.version))
    version = wait_until_ready(c, name, kept)
    log.info("registered %s version %s from run %s", name, version.version, run_id)
    return version, False


def _drop_duplicates(c: Any, name: str, run_key: str, keep: str) -> str:
    """One version per run key: a request retried after the server had already created the version leaves a
    second one, which is deleted (it was created a moment ago by this same registration and never used)."""
    try:
        found = c.search_model_versions(f"name = '{name}' and tags.`{RUN_KEY_TAG}` = '{run_key}'")
    except Exception as err:  # the search is a safeguard; registration itself succeeded
        log.warning("could not look for duplicate versions of run key %s: %s", run_key, err)
        return keep
    first = min((int(v.version) for v in found), default=int(keep))
    for v in found:
        if int(v.version) != first:
            log.warning("deleting duplicate %s version %s of run key %s (version %s is kept)", name, v.version, run_key, first)
            c.delete_model_version(name, str(v.version))
    return str(first)


def wait_until_ready(c: Any, name: str, version: str, timeout: float = 300.0) -> Any:
    """The version once the registry says READY (file and sqlite stores are at once; a remote store may take a
    while, so it is polled with back-off). A failed registration, or one still pending after ``timeout``
    seconds, raises: nothing goes on with a version that is not READY."""
    from tenacity import Retrying, retry_if_result, stop_after_delay, wait_exponential

    from airflow_mlops.errors import MlopsError

    current = Retrying(
        retry=retry_if_result(lambda v: v.status == "PENDING_REGISTRATION"),
        stop=stop_after_delay(timeout), wait=wait_exponential(multiplier=0.5, max=10),
        retry_error_callback=lambda state: state.outcome.result(),  # the last answer, still pending
    )(c.get_model_version, name, version)  # fmt: skip
    if current.status == "PENDING_REGISTRATION":
        raise MlopsError(
            f"{name} version {version} is still PENDING_REGISTRATION after {timeout:.0f} s: the registry has "
            "not finished copying the model; look at the MLflow server, then clear this task"
        )
    if current.status != "READY":
        raise MlopsError(
            f"{name} version {version} registration ended {current.status}"
            f"{': ' + current.status_message if getattr(current, 'status_message', None) else ''}; "
            "nothing was promoted. Fix the cause in the MLflow server, delete the version, then clear this task"
        )
    return current


# The plugin's own MLflow pages (airflow_mlops.plugins.app), for a local store that has no MLflow UI
PLUGIN_PREFIX = "/mlops"
PLUGIN_MLFLOW = f"{PLUGIN_PREFIX}/mlflow"


def airflow_base_url() -> str:
    """The Airflow API server as people reach it (``[api] base_url``), without a trailing slash."""
    try:
        from airflow.configuration import conf

        base = conf.get("api", "base_url", fallback="") or ""
    except Exception:  # outside Airflow (a notebook): links are built from the tracking server alone
        base = ""
    return (base or "http://localhost:8080").rstrip("/")


def plugin_mlflow_base() -> str:
    return airflow_base_url() + PLUGIN_MLFLOW


def _plugin(ui_url: str) -> bool:
    return ui_url.rstrip("/").endswith(PLUGIN_MLFLOW)


def run_url(ui_url: str | None, experiment_id: str, run_id: str) -> str:
    if not ui_url:
        return ""
    base = ui_url.rstrip("/")
    return f"{base}/runs/{run_id}" if _plugin(base) else f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def version_url(ui_url: str | None, name: str, version: str) -> str:
    if not ui_url:
        return ""
    from urllib.parse import quote

    base = ui_url.rstrip("/")
    return f"{base}/models/{quote(name)}/versions/{version}" if _plugin(base) else f"{base}/#/models/{name}/versions/{version}"


def artifact_url(ui_url: str | None, experiment_id: str, run_id: str, path: str) -> str:
    """An artifact of a run, opened over HTTP: the MLflow UI's artifact page, or the plugin's file route."""
    if not ui_url:
        return ""
    base = ui_url.rstrip("/")
    if _plugin(base):
        return f"{base}/runs/{run_id}/artifacts/{path}"
    return f"{run_url(base, experiment_id, run_id)}/artifacts/{path}"


def tested_metric(version: Any, metric: str) -> float | None:
    """The value of ``metric`` measured by the version's own model tests (tag ``mlops.test_metrics``)."""
    import json

    try:
        value = json.loads(version.tags.get("mlops.test_metrics") or "{}").get(metric)
    except ValueError:
        return None
    return float(value) if value is not None else None


IMPORTANCE_TAG = "mlops.feature_importance"
CALIBRATION_TAG = "mlops.calibration"


def monitoring_tags(details: dict[str, Any]) -> dict[str, str]:
    """The version tags monitoring reads, from a test report's details: each feature's importance share
    (drift decisions) and the score calibration (performance estimation). Omitted when not measured."""
    import json

    tags = {}
    if details.get("importance"):
        shares = sorted(details["importance"]["share"].items(), key=lambda kv: -kv[1])
        while shares and len(text := json.dumps(dict(shares), sort_keys=True)) > MAX_TAG:
            shares = shares[: len(shares) * 9 // 10]  # very wide models: the most important features fit
        if shares:
            tags[IMPORTANCE_TAG] = text
    if details.get("calibration"):
        text = json.dumps(details["calibration"], sort_keys=True)
        if len(text) <= MAX_TAG:  # a truncated curve would not parse: leave it out rather than store half
            tags[CALIBRATION_TAG] = text
    return tags


def _json_tag(version: Any, tag: str) -> Any:
    import json

    try:
        return json.loads(version.tags.get(tag) or "null")
    except ValueError:
        return None


def feature_importance(version: Any) -> dict[str, float] | None:
    """The importance share of each feature, measured by the version's model tests (None if not measured)."""
    value = _json_tag(version, IMPORTANCE_TAG)
    return {str(k): float(v) for k, v in value.items()} if isinstance(value, dict) and value else None


def calibration(version: Any) -> dict[str, Any] | None:
    """The calibration of the version's scores on its held-out rows (None if not measured)."""
    value = _json_tag(version, CALIBRATION_TAG)
    return value if isinstance(value, dict) and (value.get("x") or value.get("curves")) else None


def model_files(tags: dict[str, str]) -> dict[str, str] | None:
    """The recorded file hashes (:data:`MODEL_FILES_TAG`) of a run's or a version's tags, or None where
    none were recorded (a version registered before they were)."""
    import json

    raw = tags.get(MODEL_FILES_TAG)
    if not raw:
        return None
    files = json.loads(raw)
    return files if isinstance(files, dict) else None


# Pipeline states on the registered model itself, so that one search lists a whole fleet with them.
DRIFT_STATE_TAG = "mlops.drift_status"  # the latest drift check's status ("drift" | "no_drift" | ...)
DRIFT_DAY_TAG = "mlops.drift_day"  # the day that check looked at
AWAITING_TAG = "mlops.awaiting_approval"  # the version that waits for a person's approval


def set_model_state(c: Any, name: str, tags: dict[str, str | None]) -> None:
    """Set (or, for None, remove) pipeline-state tags on the registered model. A courtesy for the fleet
    index: never fails the step that calls it."""
    for key, value in tags.items():
        try:
            if value is None:
                c.delete_registered_model_tag(name, key)
            else:
                c.set_registered_model_tag(name, key, str(value)[:MAX_TAG])
        except Exception as err:
            log.debug("could not set %s on %s: %s", key, name, err)
