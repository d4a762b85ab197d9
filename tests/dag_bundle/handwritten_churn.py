"""A hand-written Airflow DAG that uses the airflow-mlops operators directly (docs/operators.md shows it too)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronDataIntervalTimetable, task

from airflow_mlops.operators.evaluation import ModelTestOperator
from airflow_mlops.operators.registry import RegisterModelOperator
from airflow_mlops.operators.training import TrainModelOperator
from airflow_mlops.operators.validation import ValidateDataOperator
from airflow_mlops.sensors.partition import PartitionCompleteSensor

DATA = "{{ var.value.mlops_data_root }}/demo_churn/date={date}/part-0.parquet"
NUMERIC = ["age", "tenure_months", "monthly_charges", "support_calls", "data_usage_gb"]
CATEGORICAL = ["plan", "region", "payment_method"]

with DAG(
    "handwritten_churn",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["airflow-mlops", "example"],
):
    # The interval's partition must be complete (here: at least 1,000 rows) before anything reads it; the
    # sensor waits in the triggerer, and fails after 6 hours saying what was still missing.
    wait = PartitionCompleteSensor(
        task_id="wait_for_data", data_uri=DATA, min_rows=1000, deferrable=True, poke_interval=120,
        timeout=6 * 3600, on_timeout="fail",
    )  # fmt: skip
    # Each run trains on the 3 days that end with its data interval.
    window = {"window_start": None, "window_end": "{{ data_interval_end }}", "window_days": 3}
    validate = ValidateDataOperator(
        task_id="validate",
        pipeline="handwritten_churn",
        data_uri=DATA,
        artifact_uri="{{ var.value.mlops_artifact_root }}",
        features=NUMERIC + CATEGORICAL,
        numeric=NUMERIC,
        target="churned",
        constraints={"min_rows": 1000, "columns": {"customer_id": {"unique": True}, "age": {"min": 18}}},
        **window,
    )
    train = TrainModelOperator(
        task_id="train",
        pipeline="handwritten_churn",
        data_uri=DATA,
        target="churned",
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        model={"kind": "tabular", "task": "classification", "params": {"epochs": 3, "hidden_units": [16]}},
        validation=validate.output,
        **window,
    )
    test = ModelTestOperator(
        task_id="test",
        model_name="handwritten_churn",
        training=train.output,
        data_uri=DATA,
        target="churned",
        thresholds={"roc_auc": {"min": 0.6}},
        **window,
    )
    register = RegisterModelOperator(
        task_id="register", model_name="handwritten_churn", training=train.output, tests=test.output
    )
    wait >> validate

    # One result of a task, the Airflow way: every key of an operator's result is also an XCom of its own.
    @task
    def announce(profile: str, mlflow_run: str, version: str, alias: str | None) -> str:
        return f"profile {profile}; MLflow run {mlflow_run}; registered v{version} ({alias or 'no alias'})"

    announce(validate.output["profile_uri"], train.output["run_id"], register.output["version"], register.output["alias"])
