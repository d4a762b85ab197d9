"""The trainer's input: one JSON-able dict with everything a run needs, local or in a pod."""

from __future__ import annotations

from typing import Any

from airflow_mlops import storage
from airflow_mlops.data.partitions import Window, partition_uris
from airflow_mlops.tracking.lineage import config_hash, lineage_tags, run_key
from airflow_mlops.tracking.registry import experiment_name

CONFIG_ENV = "AIRFLOW_MLOPS_TRAINER_CONFIG"  # how a pod receives its config


def build_config(
    *,
    pipeline: str,
    window: Window,
    data_uri: str,
    data_format: str,
    target: str,
    model: dict[str, Any],
    numeric: list[str] | None = None,
    categorical: list[str] | None = None,
    text: str | None = None,
    holdout_fraction: float = 0.2,
    seed: int = 42,
    validation: dict[str, Any] | None = None,
    airflow: dict[str, Any] | None = None,
    artifact_root: str | None = None,
    checkpoint_root: str | None = None,
    parent_run_id: str | None = None,
) -> dict[str, Any]:
    """Resolve the window's partitions and derive the idempotency key and lineage tags.

    The key hashes what decides the result (data location and format, columns, model, split, seed), so the
    same window with the same config maps to the same MLflow run and model version.
    """
    decisive = {
        "data_uri": data_uri, "data_format": data_format, "target": target, "numeric": list(numeric or []),
        "categorical": list(categorical or []), "text": text, "model": model,
        "holdout_fraction": holdout_fraction, "seed": seed,
    }  # fmt: skip
    cfg_hash = config_hash(decisive)
    key = run_key(pipeline, window, cfg_hash)
    validation = validation or {}
    tags = lineage_tags(
        pipeline=pipeline, window=window, cfg_hash=cfg_hash, inputs=validation.get("inputs"),
        content_hash=validation.get("content_hash"), profile_uri=validation.get("profile_uri"), airflow=airflow,
    )  # fmt: skip
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id  # a trial of a hyper-parameter search
    return {
        **decisive,
        "pipeline": pipeline,
        "experiment": experiment_name(pipeline),
        "artifact_root": artifact_root,
        "run_key": key,
        # a retry of the same key resumes from here (the trainer's default is a local temp folder)
        "checkpoint_uri": storage.join(checkpoint_root, key) if checkpoint_root else None,
        "run_name": f"{pipeline} train {window.label}",
        "data": {"uris": partition_uris(data_uri, window), "format": data_format},
        "tags": tags,
    }
