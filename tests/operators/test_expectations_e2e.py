"""The data contract gates every DAG; distribution expectations gate the scheduled training only.

Before, one ``constraints`` block checked the training window, the retraining window and the monitor's single
day, so a mean bound failed the drift monitor on exactly the days that drifted: no drift report, no
retraining. Now the monitor validates the contract, hands the expectations to its drift report and acts on
the drift; the scheduled training still refuses a window whose distribution broke the expectations.
"""

from __future__ import annotations

import pytest
from helpers import run_dag, xcom

pytestmark = pytest.mark.slow  # trains a champion and runs the monitor through dag.test


def test_the_monitor_reports_and_acts_on_a_moved_distribution_that_training_refuses(test_pipelines):
    train, monitor = test_pipelines.dags["expect_churn__train"], test_pipelines.dags["expect_churn__drift_monitor"]
    _, states = run_dag(train, "2026-01-11")  # a stable window: the expectations hold
    assert states["register_model"] == "success"

    run, states = run_dag(monitor, "2026-01-23")  # a drifted day: monthly_charges' mean moved to ~75
    assert states["profile_partition"] == "success"  # the contract holds, the expectation is reported
    assert (states["detect_drift"], states["trigger_retraining"]) == ("success", "success")
    profiled = xcom("expect_churn__drift_monitor", run.run_id, "profile_partition")
    (broken,) = [e for e in profiled["expectations"] if not e["passed"]]
    assert (broken["check"], broken["column"], broken["severity"]) == ("mean", "monthly_charges", "warn")
    report = xcom("expect_churn__drift_monitor", run.run_id, "detect_drift")
    assert report["status"] == "drift"
    assert [(e["check"], e["column"], e["passed"]) for e in report["expectations"]] == [
        ("mean", "monthly_charges", False)
    ]
    page = open(report["report_html"]).read()
    assert "Distribution expectations" in page
    assert "broken" in page

    _, states = run_dag(train, "2026-01-25")  # a window of drifted days: the expectation gates the training
    assert states["validate_data"] == "failed"
    assert states["train_model"] != "success"


def test_a_unit_error_on_a_minor_feature_is_a_quality_anomaly_beside_the_drift_verdict(test_pipelines, own_data):
    """Drift (does the model need retraining?) is weighed by importance; quality (is this data broken?) is
    not: a x1000 unit error in the declared range is reported beside the drift verdict, whatever it is."""
    import pandas as pd

    train, monitor = test_pipelines.dags["expect_churn__train"], test_pipelines.dags["expect_churn__drift_monitor"]
    _, states = run_dag(train, "2026-01-11")  # stores the metrics of 2026-01-08..10: the history
    assert states["register_model"] == "success"
    part = own_data / "demo_churn" / "date=2026-01-12" / "part-0.parquet"
    frame = pd.read_parquet(part)
    frame.assign(data_usage_gb=frame["data_usage_gb"] * 1000).to_parquet(part)

    run, states = run_dag(monitor, "2026-01-13")
    assert states["profile_partition"] == "success"  # reported, not a gate, in monitoring
    (finding,) = xcom("expect_churn__drift_monitor", run.run_id, "profile_partition", "quality")
    assert (finding["check"], finding["column"], finding["partition"]) == ("quality: scale", "data_usage_gb", "2026-01-12")
    report = xcom("expect_churn__drift_monitor", run.run_id, "detect_drift")
    assert report["quality_status"] == "anomaly"
    assert [(f["check"], f["column"]) for f in report["quality"]] == [("quality: scale", "data_usage_gb")]
    page = open(report["report_html"]).read()
    assert "Data quality (against the partition's history): 1 anomaly(ies)" in page
