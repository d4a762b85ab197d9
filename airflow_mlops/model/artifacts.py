"""Model artifacts: a directory with ``model.json`` and safetensors weights, every file hashed.

``model.json`` lists the sha256 of each weight file; the sha256 of ``model.json`` itself is recorded on the
MLflow run (tag ``mlops.model_sha256``). Loading checks both, so a tampered or swapped file is refused before
anything is deserialised; nothing is ever unpickled.
"""

from __future__ import annotations

import os

from airflow_mlops.errors import IntegrityError
from airflow_mlops.model.format import MODEL_JSON, Model, find_model_dir, verify_model_dir
from airflow_mlops.tempfiles import owned_tempdir


def load_model(directory: str | os.PathLike, expected_sha256: str | None = None) -> Model:
    """Load a verified model directory for inference."""
    directory = find_model_dir(directory)
    meta = verify_model_dir(directory, expected_sha256)
    from airflow_mlops.model import require_train_extra

    require_train_extra(meta["kind"])
    if meta["kind"] == "tabular":
        from airflow_mlops.model.training.tabular import TabularModel

        return TabularModel.load(directory, meta)
    if meta["kind"] == "lora_text":
        from airflow_mlops.model.training.text import TextModel

        return TextModel.load(directory, meta)
    if meta["kind"] == "lora_causal_lm":
        from airflow_mlops.model.training.causal_lm import CausalLMModel

        return CausalLMModel.load(directory, meta)
    if meta["kind"] == "merged_text":
        from airflow_mlops.model.training.text import MergedTextModel

        return MergedTextModel.load(directory, meta)
    raise IntegrityError(f"unknown model kind {meta['kind']!r} in {directory / MODEL_JSON}")


def load_mlflow_model(
    model_uri: str, expected_sha256: str | None, dst: str | None = None, *,
    files: dict[str, str] | None = None, what: str | None = None,
) -> Model:
    """Download an MLflow model (``runs:/``, ``models:/``...) and load it after checking its hashes.

    ``files`` (the registry version's ``mlops.model_files``, for the version asked for) checks every file of
    the download, ``MLmodel`` included, before ``model.json`` and the weights are checked and read;
    ``what`` names that version in the message."""

    import mlflow

    def _load(root: str) -> Model:
        if files is not None:
            from airflow_mlops.model.format import verify_tree

            verify_tree(root, files, what or model_uri)
        return load_model(root, expected_sha256)

    if dst:
        return _load(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=dst))
    # loaded models hold their weights in memory: the download is removed once loaded, never left behind
    with owned_tempdir("model") as tmp:
        return _load(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
