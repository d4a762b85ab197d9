"""Sharded profiling through dynamic task mapping: the merged profile is the profile of the whole window."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from helpers import run_dag, xcom

from airflow_mlops.data.profiling import load_profile, profile_differences, profile_schema
from airflow_mlops.data.whylogs_compat import import_whylogs

pytestmark = pytest.mark.slow  # runs a DAG


BUNDLE = Path(__file__).resolve().parents[1] / "dag_bundle"


def test_mapped_shards_merge_into_the_window_profile(roots):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(BUNDLE))
    assert bag.import_errors == {}
    dag = bag.dags["sharded_profile"]
    run, _ = run_dag(dag, "2026-01-10")
    tis = {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    assert [k for k in tis if k[0] == "profile_partition"] == [("profile_partition", i) for i in range(3)]
    assert set(tis.values()) == {"success"}

    merged = xcom("sharded_profile", run.run_id, "merge_profiles")
    days = ["2026-01-07", "2026-01-08", "2026-01-09"]
    assert [Path(i["uri"]).parent.name for i in merged["inputs"]] == [f"date={d}" for d in days]
    frames = [pd.read_parquet(roots["data"] / "demo_churn" / f"date={d}" / "part-0.parquet") for d in days]
    whole = import_whylogs().log(pandas=pd.concat(frames, ignore_index=True), schema=profile_schema()).view()
    assert merged["rows"] == sum(len(f) for f in frames)
    assert profile_differences(whole, load_profile(merged["profile_uri"])) == []
    assert "/profiles/2026-01-07--2026-01-09/" in merged["profile_uri"]

    shard_files = sorted((roots["artifacts"] / "sharded" / "profiles" / "shards").iterdir())
    stamps = [p.stat().st_mtime_ns for p in shard_files]
    again, _ = run_dag(dag, "2026-01-10")  # re-run: the shard profiles of the same content are reused
    assert xcom("sharded_profile", again.run_id, "merge_profiles")["profile_uri"] == merged["profile_uri"]
    assert [p.stat().st_mtime_ns for p in shard_files] == stamps

    # a stored shard profile torn (a disk, a hand edit): the next run profiles that day again instead of failing
    shard_files[1].write_bytes(shard_files[1].read_bytes()[:300])
    healed, _ = run_dag(dag, "2026-01-10")
    assert str(healed.get_task_instance("merge_profiles").state) == "success"
    rewritten = load_profile(str(shard_files[1]))  # readable again, and a whole day's profile
    days_views = [import_whylogs().log(pandas=f, schema=profile_schema()).view() for f in frames]
    assert [profile_differences(v, rewritten) == [] for v in days_views].count(True) == 1
    merged_again = xcom("sharded_profile", healed.run_id, "merge_profiles")
    assert profile_differences(whole, load_profile(merged_again["profile_uri"])) == []
