"""Extra links from Airflow task pages to MLflow. The task computes the URL and pushes it to XCom early."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

RUN_URL_KEY = "mlflow_run_url"
VERSION_URL_KEY = "model_version_url"
TEST_REPORT_URL_KEY = "model_test_report_url"
DRIFT_REPORT_URL_KEY = "drift_report_url"


def _xcom_url(ti_key: TaskInstanceKey, key: str) -> str:
    try:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(ti_key=ti_key, key=key) or ""
    except Exception:  # a link must never break the page
        return ""


class MlflowRunLink(BaseOperatorLink):
    name = "MLflow run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return _xcom_url(ti_key, RUN_URL_KEY)


class ModelVersionLink(BaseOperatorLink):
    name = "Model version"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return _xcom_url(ti_key, VERSION_URL_KEY)


class ModelTestReportLink(BaseOperatorLink):
    name = "Model test report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return _xcom_url(ti_key, TEST_REPORT_URL_KEY)


class DriftReportLink(BaseOperatorLink):
    name = "Drift report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return _xcom_url(ti_key, DRIFT_REPORT_URL_KEY)
