"""Sensors waiting for a partition: deferrable (the trigger runs inline under dag.test), reschedule, and
the two timeout policies. The data root comes from the Variable ``mlops_wait_root``."""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable

from airflow_mlops.sensors.partition import PartitionCompleteSensor

URI = "{{ var.value.mlops_wait_root }}/date={date}/part-0.parquet"
START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


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
