"""Extra links from Airflow task pages to MLflow and to the reports: one class, "the URL the task pushed to XCom".

A task computes its URL (an MLflow run, a model version, a report) and pushes it to XCom under the link's
``key`` as soon as it knows it, so the button works while the task still runs and after it failed. Airflow 3
then stores the link itself under :attr:`XComUrlLink.xcom_key` when the task ends; the API server only reads
XCom and never runs this code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

RUN_URL_KEY = "mlflow_run_url"
VERSION_URL_KEY = "model_version_url"
TEST_REPORT_URL_KEY = "model_test_report_url"
DRIFT_REPORT_URL_KEY = "drift_report_url"
VALIDATION_REPORT_URL_KEY = "validation_report_url"
# + a report's name: the stored URI of a report a task wrote, read by the plugin's app (never shown to people)
REPORT_XCOM_PREFIX = "mlops_report_"


@attrs.define(frozen=True)
class XComUrlLink(BaseOperatorLink):
    """A button named ``label`` that opens the URL its task pushed to XCom under ``key`` (empty: no button)."""

    label: str
    key: str

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.label

    @property
    def xcom_key(self) -> str:
        # One class serves every link, so the default key (``_link_<class name>``) would be shared: one per URL.
        return f"_link_{self.key}"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        try:
            from airflow.sdk.execution_time.xcom import XCom

            return XCom.get_value(ti_key=ti_key, key=self.key) or ""
        except Exception:  # a link must never break the page or the task
            return ""


MLFLOW_RUN = XComUrlLink("MLflow run", RUN_URL_KEY)
MODEL_VERSION = XComUrlLink("Model version", VERSION_URL_KEY)
MODEL_TEST_REPORT = XComUrlLink("Model test report", TEST_REPORT_URL_KEY)
DRIFT_REPORT = XComUrlLink("Drift report", DRIFT_REPORT_URL_KEY)
VALIDATION_REPORT = XComUrlLink("Validation report", VALIDATION_REPORT_URL_KEY)
ALL_LINKS = (MLFLOW_RUN, MODEL_VERSION, MODEL_TEST_REPORT, DRIFT_REPORT, VALIDATION_REPORT)
