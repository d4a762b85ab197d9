"""The split contract (tests/operators/test_split_contract.py): one training, three model tests of it."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_mlops.operators.evaluation import ModelTestOperator
from airflow_mlops.operators.training import TrainModelOperator

DATA = "{{ var.value.mlops_data_root }}/demo_churn/date={date}/part-0.parquet"
NUMERIC = ["age", "tenure_months", "monthly_charges", "support_calls", "data_usage_gb"]
WINDOW = {"window_start": None, "window_end": "{{ data_interval_end }}", "window_days": 3}

with DAG(
    "split_contract", schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), catchup=False,
):  # fmt: skip
    train = TrainModelOperator(
        task_id="train", pipeline="split_contract", data_uri=DATA, target="churned", numeric=NUMERIC,
        categorical=["plan"], model={"kind": "tabular", "params": {"epochs": 2, "hidden_units": [8]}},
        seed=7, holdout_fraction=0.2, **WINDOW,
    )  # fmt: skip
    common = {"model_name": "split_contract", "training": train.output, "data_uri": DATA, "target": "churned"}
    train >> [
        # by omission: no seed, fraction or window, all read from the training result
        ModelTestOperator(
            task_id="test_by_omission", reevaluate_reason="{{ dag_run.conf.get('reevaluate_reason', '') }}", **common
        ),
        ModelTestOperator(task_id="test_another_seed", seed=3, **common, **WINDOW),
        ModelTestOperator(
            task_id="test_another_window", window_start=None, window_end="{{ data_interval_end }}", window_days=5,
            **common,
        ),  # fmt: skip
    ]
