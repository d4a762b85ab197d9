"""Every fault class through the real generated DAGs: training, scoring and the drift monitor.

tests/dag_bundle/pipelines/faults_churn.yaml runs all three daily, so a run at D+1 reads day D everywhere. A
champion is trained on clean days first (its window's metrics are the quality history). Then each fault is
written into its own day, and that day is read by the monitor, the scorer and a training whose window holds it:

- a broken contract (a wrong type, an unreadable file, nested values, a value out of range, a missing column)
  is a gate on every path: the reading task fails on its first try (no retry), nothing is registered, no
  prediction file is written, and the failure is alerted with the file or column named;
- a missing day is the same gate for training and scoring; the monitor's sensor times out, skips and alerts
  ``sensor_timed_out`` (every run type: tests/operators/test_context.py);
- a quality anomaly inside the declared ranges (a unit change, a stuck column, a flood of rows, a null spike,
  new categories, event times of another day) gates training the same way, and is scored and monitored but
  alerted as ``quality_anomaly`` with the check and column named.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import damage_a_data_page, numbers_as_text, recorded_alerts, run_dag, versions, xcom

from airflow_mlops.utils.alerts import ALERTS_XCOM

pytestmark = pytest.mark.slow  # trains a champion, then 39 DAG runs through dag.test

MODEL = "faults_churn"


def _text_numbers(df, path):
    numbers_as_text(df).to_parquet(path)


def _corrupt_page(df, path):
    df.to_parquet(path)
    damage_a_data_page(path)


def _nested(df, path):
    df.assign(payment_method=[[v, v] for v in df["payment_method"]]).to_parquet(path)


def _out_of_range(df, path):
    df.assign(age=df["age"].where(df.index % 40 != 0, 150)).to_parquet(path)


def _missing_column(df, path):
    df.drop(columns=["tenure_months"]).to_parquet(path)


def _missing_day(df, path):
    path.unlink()  # the day never arrived


def _unit(df, path):
    df.assign(data_usage_gb=df["data_usage_gb"] * 1000).to_parquet(path)


def _stuck(df, path):
    df.assign(monthly_charges=float(df["monthly_charges"].iloc[0])).to_parquet(path)


def _flood(df, path):
    copies = [df.assign(customer_id=df["customer_id"].astype(str) + f"-{k}") for k in range(20)]
    pd.concat(copies, ignore_index=True).to_parquet(path)


def _null_spike(df, path):
    rng = np.random.default_rng(0)
    df.assign(tenure_months=df["tenure_months"].astype("Float64").mask(rng.random(len(df)) < 0.3)).to_parquet(path)


def _new_categories(df, path):
    df.assign(region=df["region"].where(df.index % 4 != 0, "north-east")).to_parquet(path)


def _event_time(df, path):
    df.assign(event_date=df["event_date"] + pd.Timedelta(days=2)).to_parquet(path)


CONTRACT = {  # fault: (damage, what the gate's message names, normalised to single spaces)
    "text_numbers": (_text_numbers, "numeric dtype monthly_charges"),
    "corrupt_page": (_corrupt_page, "date={day}/part-0.parquet"),
    "nested": (_nested, "column 'payment_method' of"),
    "out_of_range": (_out_of_range, "max age {day} (50) <= 100 150"),
    "missing_column": (_missing_column, "column present tenure_months {day}"),
    "missing_day": (_missing_day, "date={day}/part-0.parquet"),
}
QUALITY = {  # fault: (damage, the finding: check, column and day)
    "unit": (_unit, "quality: scale data_usage_gb {day}"),
    "stuck": (_stuck, "quality: stuck monthly_charges {day}"),
    "flood": (_flood, "quality: volume * {day}"),
    "null_spike": (_null_spike, "quality: nulls tenure_months {day}"),
    "new_categories": (_new_categories, "quality: new categories region {day}"),
    "event_time": (_event_time, "quality: event time event_date {day}"),
}
FIRST_DAY = 12  # day 2026-01-12 gets the first fault, the next day the next one
READERS = {"monitor": {"wait_for_partition", "profile_partition"}, "score": {"score_partition"}, "train": {"validate_data"}}


def _flat(text: str) -> str:
    return " ".join(text.replace("[", "").replace("]", "").split())


def test_every_fault_class_through_training_scoring_and_monitoring(test_pipelines, own_data, roots, tmp_path, monkeypatch):
    alerts_file = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("MLOPS_TEST_ALERTS", str(alerts_file))
    dags = test_pipelines.dags
    train, monitor, score = (dags[f"{MODEL}__{kind}"] for kind in ("train", "drift_monitor", "score"))
    _, states = run_dag(train, "2026-01-11")  # the champion, on 2026-01-08..10: the quality history
    assert states["register_model"] == "success"
    assert [int(v.version) for v in versions(MODEL)] == [1]
    pristine = tmp_path / "pristine"
    shutil.copytree(own_data / "demo_churn", pristine)
    predictions = Path(roots["artifacts"]) / MODEL / "predictions"
    seen = len(recorded_alerts(alerts_file))

    problems = []
    for n, (fault, (damage, named)) in enumerate({**CONTRACT, **QUALITY}.items()):
        day = f"2026-01-{FIRST_DAY + n:02d}"
        after = f"2026-01-{FIRST_DAY + n + 1:02d}"
        path = own_data / "demo_churn" / f"date={day}" / "part-0.parquet"
        damage(pd.read_parquet(pristine / f"date={day}" / "part-0.parquet"), path)
        named = named.format(day=day)
        gate = fault in CONTRACT
        for name, dag in (("monitor", monitor), ("score", score), ("train", train)):
            run, states = run_dag(dag, after)
            failed = {ti.task_id: ti.try_number for ti in run.get_task_instances() if str(ti.state) == "failed"}
            alerts = recorded_alerts(alerts_file)[seen:]
            seen += len(alerts)
            events = {a["event"]: _flat(a["text"]) for a in alerts}
            listed = {a["event"] for ti in run.get_task_instances()
                      for a in xcom(dag.dag_id, run.run_id, ti.task_id, key=ALERTS_XCOM) or []}  # fmt: skip
            if not set(events) <= listed:  # the pipeline page lists what the tasks recorded
                problems.append(f"{fault} {name}: alerts {sorted(set(events) - listed)} not recorded on their task")
            if fault == "missing_day" and name == "monitor":  # the sensor's timeout: skipped, and a person told
                if failed or states.get("wait_for_partition") != "skipped":
                    problems.append(f"{fault} {name}: {states} (want the wait skipped)")
                if named not in events.get("sensor_timed_out", ""):
                    problems.append(f"{fault} {name}: no sensor_timed_out alert naming {named!r}: {events}")
            elif gate or name == "train":  # a gate: the reading task fails on its first try, alerted with the cause
                (task, tries), *others = failed.items() or [(None, None)]
                if task not in READERS[name] or tries != 1 or others:
                    problems.append(f"{fault} {name}: failed tasks {failed} (want one reader, try 1)")
                if named not in events.get("quality_gate_failed", ""):
                    problems.append(f"{fault} {name}: no quality_gate_failed alert naming {named!r}: {events}")
                if "up_for_retry" in states.values():
                    problems.append(f"{fault} {name}: a retry: {states}")
            else:  # monitored and scored, the anomaly alerted whatever the column's importance
                if failed:
                    problems.append(f"{fault} {name}: failed tasks {failed} (an anomaly is not a gate here)")
                if named not in events.get("quality_anomaly", ""):
                    problems.append(f"{fault} {name}: no quality_anomaly alert naming {named!r}: {events}")
        files = sorted(p.name for p in predictions.rglob(f"*{day}*")) if predictions.exists() else []
        if files != ([] if gate else [f"{day}.parquet"]):
            problems.append(f"{fault}: prediction files {files}")
        if [int(v.version) for v in versions(MODEL)] != [1]:
            problems.append(f"{fault}: versions {[v.version for v in versions(MODEL)]}")
        shutil.copy(pristine / f"date={day}" / "part-0.parquet", path)  # the next fault's window is clean
    assert problems == []
