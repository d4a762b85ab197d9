"""Sharded profiling of a window: one mapped task per partition file, then one merge."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronDataIntervalTimetable

from airflow_mlops.operators.profiling import (
    MergeProfilesOperator,
    ProfilePartitionOperator,
    WindowPartitionsOperator,
)

DATA = "{{ var.value.mlops_data_root }}/demo_churn/date={date}/part-0.parquet"
ROOT = "{{ var.value.mlops_artifact_root }}"

with DAG(
    "sharded_profile",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
):
    window = {"window_start": None, "window_end": "{{ data_interval_end }}", "window_days": 3}
    partitions = WindowPartitionsOperator(task_id="partitions", data_uri=DATA, **window)
    shards = ProfilePartitionOperator.partial(
        task_id="profile_partition", pipeline="sharded", artifact_uri=ROOT, batch_rows=500
    ).expand(data_uri=partitions.output)
    MergeProfilesOperator(
        task_id="merge_profiles", pipeline="sharded", artifact_uri=ROOT, shards=shards.output, **window
    )
