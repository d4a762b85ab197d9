"""Sensors waiting for a partition: deferrable (the trigger runs inline under dag.test), reschedule, and
the two timeout policies. The data root comes from the Variable ``mlops_wait_root``."""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable

from airflow_mlops.sensors.partition import PartitionCompleteSensor

URI = "{{ var.value.mlops_wait_root }}/date={date}/part-0.parquet"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _dag(dag_id: str, **sensor: object) -> DAG:
    with DAG(
        dag_id, schedule=CronDataIntervalTimetable("@daily", timezone="UTC"), start_date=START, catchup=False
    ) as dag:
        wait = PartitionCompleteSensor(task_id="wait", data_uri=URI, poke_interval=0.2, **sensor)
        wait >> EmptyOperator(task_id="downstream")
    return dag


deferrable = _dag("wait_deferrable", deferrable=True, timeout=30, min_rows=100, marker="_SUCCESS")
rescheduled = _dag("wait_reschedule", mode="reschedule", timeout=30, min_rows=100, marker="_SUCCESS")
times_out_skip = _dag("wait_timeout_skip", deferrable=True, timeout=1, on_timeout="skip", marker="_SUCCESS")
times_out_fail = _dag("wait_timeout_fail", deferrable=True, timeout=1, on_timeout="fail", marker="_SUCCESS")
on_asset = _dag("wait_asset", deferrable=True, timeout=30, asset="upstream_events")

with DAG("publish_upstream_events", schedule=None, start_date=START, catchup=False):

    def _publish(*, outlet_events, params, **_: object) -> None:
        outlet_events[Asset(name="upstream_events")].extra = {"partition": params["partition"]}

    from airflow.providers.standard.operators.python import PythonOperator

    PythonOperator(
        task_id="publish", python_callable=_publish, outlets=[Asset(name="upstream_events")],
        params={"partition": "2026-01-20"},
    )  # fmt: skip


# Alerts (tests/operators/test_alerts.py): a missing day skipped by the sensor, and a failed quality gate, both
# routed to mail and a webhook through the connections alerts_smtp and alerts_slack.
from airflow_mlops.operators.validation import ValidateDataOperator  # noqa: E402
from airflow_mlops.utils.alerts import FailureAlert  # noqa: E402

ROUTES = [
    {"kind": "smtp", "to": ["oncall@example.com"], "from_email": "airflow@example.com", "conn_id": "alerts_smtp"},
    {"kind": "slack", "conn_id": "alerts_slack"},
]
ALERTING = {"alerts": ROUTES, "on_failure_callback": FailureAlert(ROUTES), "retries": 1}

with DAG(
    "alert_missing_day", schedule=CronDataIntervalTimetable("@daily", timezone="UTC"), start_date=START,
    catchup=False, default_args=ALERTING,
):  # fmt: skip
    PartitionCompleteSensor(
        task_id="wait", data_uri=URI, poke_interval=0.2, deferrable=True, timeout=1, on_timeout="skip"
    ) >> EmptyOperator(task_id="downstream")

with DAG(
    "alert_quality_gate", schedule=CronDataIntervalTimetable("@daily", timezone="UTC"), start_date=START,
    catchup=False, default_args=ALERTING,
):  # fmt: skip
    ValidateDataOperator(
        task_id="validate", pipeline="alerted", data_uri=URI, artifact_uri="{{ var.value.mlops_wait_root }}/artifacts",
        features=["x"], numeric=["x"], constraints={"min_rows": 1, "columns": {"x": {"max": 5}}},
    ) >> EmptyOperator(task_id="train")

# Data quality learned from history (tests/operators/test_alerts.py): the monitoring path reports and alerts a
# day that breaks its history (quality_anomaly) and goes on; the training path gates on the same finding.
for _dag_id, _severity in (("alert_quality_anomaly", "warn"), ("gate_quality_anomaly", "fail")):
    with DAG(
        _dag_id, schedule=CronDataIntervalTimetable("@daily", timezone="UTC"), start_date=START,
        catchup=False, default_args=ALERTING,
    ):  # fmt: skip
        ValidateDataOperator(
            task_id="validate", pipeline=_dag_id, data_uri=URI, window_days=1,
            artifact_uri="{{ var.value.mlops_wait_root }}/artifacts", features=["x", "y"], numeric=["x", "y"],
            constraints={"min_rows": 1, "columns": {"x": {"min": 0, "max": 1e6}}},  # a x1000 error is in range
            quality={"min_history": 3}, quality_severity=_severity,
        ) >> EmptyOperator(task_id="downstream")
