"""How ``mlflow.pyfunc.load_model`` serves an airflow-mlops model: a ``loader_module`` flavour.

The MLflow model stores a reference to this module, not code: loading imports the *installed* airflow-mlops
and calls :func:`_load_pyfunc`, so nothing stored with the model is ever executed or unpickled (a model
logged as code, or as a pickle, runs whatever the artifact store holds).

:func:`_load_pyfunc` checks the model before reading any weight:

- the weights against the hashes in ``model.json`` (always);
- ``model.json`` against the sha256 recorded on the MLflow run that logged the model (tag
  ``mlops.model_sha256``; registered versions carry the same tag). A model whose weights *and* metadata
  were changed together is refused. The run is looked up on the current tracking server
  (``MLFLOW_TRACKING_URI``); where it cannot be reached the load fails, saying so, unless
  ``AIRFLOW_MLOPS_VERIFY=local`` accepts the weights-against-``model.json`` check alone (an offline copy).

A registered model loaded by its ``models:/`` URI is checked before this module is even imported: the
``models`` artifact repository (:mod:`airflow_mlops.model.verified`) compares every downloaded file,
``MLmodel`` included, with the hashes recorded on the version asked for. A folder loaded by path is only as
trusted as the folder: MLflow reads its ``MLmodel`` (which names the module to import) before calling this.

Not protected: an attacker who can change both the artifact store and the tags on the tracking server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

VERIFY_ENV = "AIRFLOW_MLOPS_VERIFY"


def recorded_sha256(model_root: Path) -> str | None:
    """The model.json sha256 recorded on the run that logged the model (None: accepted as local-only); where
    that run also records every file's hash (``mlops.model_files``), the whole folder is checked too."""
    import yaml

    from airflow_mlops.errors import IntegrityError
    from airflow_mlops.tracking.registry import MODEL_SHA_TAG

    if os.environ.get(VERIFY_ENV) == "local":
        return None
    mlmodel = yaml.safe_load((model_root / "MLmodel").read_text()) or {}
    run_id = mlmodel.get("run_id")
    if not run_id:
        raise IntegrityError(
            f"{model_root} names no MLflow run, so its recorded hash cannot be checked; set {VERIFY_ENV}=local "
            "to accept the weights-against-model.json check alone"
        )
    from mlflow.tracking import MlflowClient

    try:
        tags = MlflowClient().get_run(run_id).data.tags
    except Exception as err:
        raise IntegrityError(
            f"cannot read the recorded hash of the model of MLflow run {run_id} ({type(err).__name__}: {err}); "
            f"load it where the tracking server is reachable, or set {VERIFY_ENV}=local"
        ) from err
    if not tags.get(MODEL_SHA_TAG):
        raise IntegrityError(f"MLflow run {run_id} records no {MODEL_SHA_TAG}: not an airflow-mlops model run")
    from airflow_mlops.model.format import verify_tree
    from airflow_mlops.tracking.registry import model_files

    files = model_files(tags)
    if files is not None:
        verify_tree(model_root, files, f"MLflow run {run_id}")
    return tags[MODEL_SHA_TAG]


class _Served:
    """What ``mlflow.pyfunc`` wraps: ``predict(frame)``."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return self.model.predict(model_input)


def _load_pyfunc(data_path: str) -> _Served:
    """Called by ``mlflow.pyfunc.load_model`` with the model's data folder."""
    from airflow_mlops.model.artifacts import load_model

    data = Path(data_path)
    root = next((p for p in (data, *data.parents) if (p / "MLmodel").is_file()), None)
    expected = recorded_sha256(root) if root is not None else None
    return _Served(load_model(data, expected))
