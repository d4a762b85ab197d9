"""MLflow's own loaders check an airflow-mlops model against the version they were asked for.

An MLflow plugin (entry point ``mlflow.artifact_repository``, scheme ``models``): MLflow resolves every
``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` and ``models:/m-<id>`` URI through this repository, so
``mlflow.pyfunc.load_model``, ``mlflow.artifacts.download_artifacts`` and the flavours' own loaders all
download through it. Once the files are down, and before MLflow reads ``MLmodel`` (which names the module it
imports and the ``code/`` folder it puts on ``sys.path``), every file is checked against the hashes recorded
for what was asked for:

- a registry version (``models:/NAME/3``, ``models:/NAME@champion``): that version's ``mlops.model_files``
  tag, never the run that the downloaded ``MLmodel`` names;
- a logged model (``models:/m-<id>``): the tag on the run the tracking server records as its source.

An edited ``MLmodel``, another version's files in this one's place, or an added ``code/`` folder is refused
with :class:`~airflow_mlops.errors.IntegrityError`, and the download is removed. Models without the tag
(other teams' models, or versions registered before it existed) download as MLflow always did.

Not protected: a local folder loaded by path (``mlflow.pyfunc.load_model("/some/dir")``): MLflow reads its
``MLmodel`` first. Load registered models by their ``models:/`` URI.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

# imported only by MLflow itself (its plugin entry point), with MLflow already loaded
from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository  # noqa: TID253

log = logging.getLogger(__name__)


class VerifiedModelsArtifactRepository(ModelsArtifactRepository):
    """MLflow's ``models:/`` repository, with the downloaded files checked against the recorded hashes."""

    def download_artifacts(self, artifact_path: str, dst_path: str | None = None, **kwargs: Any) -> str:
        local = super().download_artifacts(artifact_path, dst_path, **kwargs)
        try:
            expected, what = self._recorded()
            if expected is not None:
                _check(local, artifact_path, expected, what)
        except BaseException:
            if dst_path is None:  # MLflow made the folder: nothing unverified stays behind
                shutil.rmtree(local, ignore_errors=True) if os.path.isdir(local) else _unlink(local)
            raise
        return local

    def _recorded(self) -> tuple[dict[str, str] | None, str]:
        """The recorded file hashes of what this URI names, and how to name it in a message."""
        from mlflow.tracking import MlflowClient

        from airflow_mlops.tracking.registry import model_files

        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        if getattr(self, "is_logged_model_uri", False):
            from mlflow.store.artifact.utils.models import _parse_model_uri

            model_id = _parse_model_uri(self.artifact_uri).model_id
            run_id = client.get_logged_model(model_id).source_run_id
            if not run_id:
                return None, ""
            return model_files(client.get_run(run_id).data.tags), f"logged model {model_id} (run {run_id})"
        name, version = getattr(self, "model_name", None), getattr(self, "model_version", None)
        if not name or version is None:
            return None, ""
        found = client.get_model_version(name, str(version))
        return model_files(found.tags), f"{name} version {version}"


def _check(local: str, artifact_path: str, expected: dict[str, str], what: str) -> None:
    from pathlib import Path

    from airflow_mlops.errors import IntegrityError
    from airflow_mlops.model.format import verify_tree
    from airflow_mlops.storage import sha256_file

    inner = (artifact_path or "").strip("/")
    if not inner or os.path.isdir(local):
        prefix = f"{inner}/" if inner else ""
        wanted = {k[len(prefix) :]: v for k, v in expected.items() if k.startswith(prefix)}
        verify_tree(Path(local), wanted, what)
        return
    if expected.get(inner) != sha256_file(local):  # one file of the model
        raise IntegrityError(f"{inner} of {what} is not the file it recorded; refusing it")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
