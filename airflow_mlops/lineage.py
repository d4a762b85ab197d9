"""Idempotency keys and lineage tags (data -> code -> params -> model)."""

from __future__ import annotations

import hashlib
from typing import Any

from airflow_mlops import __version__
from airflow_mlops.data import Window
from airflow_mlops.storage import canonical_hash


def config_hash(training_config: dict[str, Any]) -> str:
    return canonical_hash(training_config, 16)


def run_key(pipeline: str, window: Window, cfg_hash: str) -> str:
    """Same pipeline, same data interval, same config -> same key: a retry or backfill finds its own work."""
    raw = f"{pipeline}|{window.start.isoformat()}|{window.end.isoformat()}|{cfg_hash}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def lineage_tags(
    *,
    pipeline: str,
    window: Window,
    cfg_hash: str,
    inputs: list[dict[str, Any]] | None = None,
    content_hash: str | None = None,
    profile_uri: str | None = None,
    airflow: dict[str, Any] | None = None,
) -> dict[str, Any]:
    tags: dict[str, Any] = {
        "mlops.pipeline": pipeline,
        "mlops.code_version": f"airflow-mlops=={__version__}",
        "mlops.params_hash": cfg_hash,
        "mlops.window_start": window.start.isoformat(),
        "mlops.window_end": window.end.isoformat(),
    }
    if inputs:
        tags["mlops.input_uris"] = ",".join(f["uri"] for f in inputs)
        tags["mlops.input_sha256"] = ",".join(f["sha256"][:16] for f in inputs)
        tags["mlops.input_rows"] = sum(int(f.get("rows", 0)) for f in inputs)
    if content_hash:
        tags["mlops.data_sha256"] = content_hash
    if profile_uri:
        tags["mlops.profile_uri"] = profile_uri
    for k, v in (airflow or {}).items():
        tags[f"airflow.{k}"] = v
    return tags
