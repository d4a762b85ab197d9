"""The airflow-mlops plugin (entry point ``airflow.plugins``): extra links to MLflow and to the reports."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_mlops.links.mlflow import ALL_LINKS


class AirflowMlopsPlugin(AirflowPlugin):
    name = "airflow_mlops"
    operator_extra_links = list(ALL_LINKS)
