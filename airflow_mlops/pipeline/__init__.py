"""Declarative pipelines: the typed spec (``spec``), the DAG factory (``factory``) and the fleet machinery
that turns a folder of specs into one Airflow DAG file per spec (``fleet``, ``bundle``, ``loader``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BUNDLE_CLASSPATH = "airflow_mlops.pipeline.bundle.PipelineSpecBundle"


def bundle_config(
    path: str | Path, name: str = "mlops-pipelines", refresh_interval: int | None = None
) -> dict[str, Any]:
    """One entry of ``[dag_processor] dag_bundle_config_list`` that serves the specs under ``path``."""
    kwargs: dict[str, Any] = {"path": str(path)}
    if refresh_interval is not None:
        kwargs["refresh_interval"] = refresh_interval
    return {"name": name, "classpath": BUNDLE_CLASSPATH, "kwargs": kwargs}
