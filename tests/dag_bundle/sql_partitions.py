"""A day's rows from SQL databases (SQLite and PostgreSQL) through Airflow connections, as Parquet partitions."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronDataIntervalTimetable

from airflow_mlops.operators.sql import SqlPartitionOperator

QUERY = """
SELECT id, ts, amount, kind FROM {table}
WHERE ts >= '{{{{ data_interval_start.strftime('%Y-%m-%d %H:%M:%S') }}}}'
  AND ts < '{{{{ data_interval_end.strftime('%Y-%m-%d %H:%M:%S') }}}}'
ORDER BY id
"""
OUT = "{{{{ var.value.mlops_artifact_root }}}}/sql/{engine}/date={{{{ data_interval_start.strftime('%Y-%m-%d') }}}}/part-0.parquet"

with DAG(
    "sql_partitions",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
):
    SqlPartitionOperator(
        task_id="from_sqlite", conn_id="mlops_sqlite", sql=QUERY.format(table="events"),
        output_uri=OUT.format(engine="sqlite"), chunk_rows=70,
    )  # fmt: skip
    SqlPartitionOperator(
        task_id="from_postgres", conn_id="mlops_postgres", sql=QUERY.format(table="mlops_test_events"),
        output_uri=OUT.format(engine="postgres"), chunk_rows=70,
    )  # fmt: skip
