"""The airflow-mlops plugin (entry point ``airflow.plugins``): extra links to MLflow and to the reports."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_mlops.operators.links import (
    DriftReportLink,
    MlflowRunLink,
    ModelTestReportLink,
    ModelVersionLink,
)


class AirflowMlopsPlugin(AirflowPlugin):
    name = "airflow_mlops"
    operator_extra_links = [MlflowRunLink(), ModelVersionLink(), ModelTestReportLink(), DriftReportLink()]
