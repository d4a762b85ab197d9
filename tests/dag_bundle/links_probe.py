"""A task that pushes two of the four link URLs: what the buttons of its task page then hold."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, BaseOperator

from airflow_mlops.links.mlflow import ALL_LINKS, DRIFT_REPORT, MLFLOW_RUN


class PushesTwoUrls(BaseOperator):
    operator_extra_links = ALL_LINKS

    def execute(self, context):
        context["ti"].xcom_push(key=MLFLOW_RUN.key, value="http://mlflow.example/#/runs/1")
        context["ti"].xcom_push(key=DRIFT_REPORT.key, value="http://reports.example/drift.html")


with DAG("links_probe", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
    PushesTwoUrls(task_id="t")
