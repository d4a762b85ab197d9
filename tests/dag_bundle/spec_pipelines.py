"""Airflow DAG loader for airflow-mlops: every pipelines/*.yaml compiles into its DAGs.

The loader imports only the DAG factory; no torch, mlflow, whylogs or pandas is imported at parse time.
"""

from __future__ import annotations

from pathlib import Path

from airflow_mlops.factory import load_pipelines

globals().update(load_pipelines(Path(__file__).parent / "pipelines"))
