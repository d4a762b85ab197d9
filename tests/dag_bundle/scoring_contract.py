"""Scoring behind the data contract (tests/airflow_mlops/operations/test_scoring.py): the model "score", its
partitions and outputs under the Variable ``mlops_score_root``; alerts recorded to ``$MLOPS_TEST_ALERTS``."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronDataIntervalTimetable

from airflow_mlops.operators.scoring import BatchScoreOperator
from airflow_mlops.utils.alerts import FailureAlert

ROOT = "{{ var.value.mlops_score_root }}"
NUMERIC = ["age", "tenure_months", "monthly_charges", "support_calls", "data_usage_gb"]
CATEGORICAL = ["plan", "region", "payment_method"]
CONTRACT = {
    "min_rows": 1,
    "columns": {"monthly_charges": {"dtype": "float", "min": 0}, "plan": {"allowed": ["basic", "plus", "pro"]}},
}
ROUTES = [{"kind": "notifier", "notifier": "helpers.RecordingNotifier"}]

for _on_bad_rows in ("fail", "quarantine"):
    with DAG(
        f"score_contract_{_on_bad_rows}", schedule=CronDataIntervalTimetable("@daily", timezone="UTC"), start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False, default_args={"alerts": ROUTES, "on_failure_callback": FailureAlert(ROUTES), "retries": 1,
                      "retry_delay": dt.timedelta(seconds=1)},
    ):  # fmt: skip
        BatchScoreOperator(
            task_id="score", model_name="score", data_uri=ROOT + "/in/date={date}/part-0.parquet",
            output_uri=ROOT + "/out", constraints=CONTRACT, features=NUMERIC + CATEGORICAL, numeric=NUMERIC,
            on_bad_rows=_on_bad_rows, quality={"min_history": 3}, pipeline="score", artifact_uri=ROOT + "/artifacts",
        )  # fmt: skip
