"""A 3-class classifier and a regressor, each written as a spec (tests/dag_bundle/models), through their
generated DAGs on a real MLflow store and real Airflow runs (dag.test): training and release, batch scoring,
performance estimated before labels (the classifier; the regressor's scoring DAG has no such task) and live
metrics once the labels are there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_dag, spec_dagbag, versions, xcom

pytestmark = pytest.mark.slow  # trains and scores through the generated DAGs

MODELS = Path(__file__).resolve().parents[1] / "dag_bundle" / "models"
PLANS = ["basic", "plus", "pro"]
DAY = "2026-01-19"  # scored, then labelled: before the demo data's drift (from the 22nd)


@pytest.fixture
def bag(mlflow_uri, roots, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "extra": {"tracking_uri": mlflow_uri}}))
    dags = spec_dagbag("test-models", MODELS)
    assert dags.import_errors == {}
    return dags


def test_a_three_class_model_is_trained_scored_estimated_and_measured_live(bag, capfd):
    _, states = run_dag(bag.dags["multi_plan__train"], "2026-01-11")
    assert states["register_model"] == "success"
    (v1,) = versions("multi_plan")
    assert "champion" in v1.aliases
    calibration = json.loads(v1.tags["mlops.calibration"])  # a curve per class, one-vs-rest
    assert calibration["classes"] == PLANS
    assert len(calibration["curves"]) == 3

    scored, states = run_dag(bag.dags["multi_plan__score"], DAY)
    assert (states["score_partition"], states["estimate_performance"]) == ("success", "success")
    pred = pd.read_parquet(xcom("multi_plan__score", scored.run_id, "score_partition")["output_uri"])
    proba = pred[[f"proba_{c}" for c in PLANS]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (pred["prediction"] == np.array(PLANS)[proba.argmax(axis=1)]).all()
    np.testing.assert_allclose(pred["probability"], proba.max(axis=1))
    assert "score" not in pred.columns  # the binary column: not for three classes

    estimated = xcom("multi_plan__score", scored.run_id, "estimate_performance")  # before any label
    assert (estimated["champion"], estimated["status"]) == ("1", "no_drift")
    assert set(estimated["metrics"]) == {"accuracy", "f1", "roc_auc"}
    # scored rows drawn as the held-out ones: their scores did not move, so no caveat
    assert estimated["score_shift"]["ks"] <= estimated["score_shift"]["limit"]
    assert "caveat" not in estimated

    live_run, states = run_dag(bag.dags["multi_plan__live_metrics"], DAY)
    assert (states["live_metrics"], states["no_performance_drift"]) == ("success", "success")
    live = xcom("multi_plan__live_metrics", live_run.run_id, "live_metrics")
    measured = live["per_version"]["1"]
    assert measured["rows"] == len(pred)
    assert {f"f1_class_{c}" for c in PLANS} <= set(measured)
    for metric, row in estimated["metrics"].items():  # the labels land inside the band estimated without them
        assert row["low"] <= measured[metric] <= row["high"], (metric, row, measured[metric])
    assert live["performance"]["status"] == "no_drift"

    capfd.readouterr()
    drifted, states = run_dag(bag.dags["multi_plan__score"], "2026-01-25")  # after the demo's price rise
    assert states["estimate_performance"] == "success"
    moved = xcom("multi_plan__score", drifted.run_id, "estimate_performance")
    assert moved["score_shift"]["ks"] > moved["score_shift"]["limit"]  # its scores left the held-out rows'
    assert moved["caveat"].startswith("the window's scores moved from the held-out rows' v1 was calibrated on")
    assert moved["for_window"] is False  # a multiclass model's curves stay as fitted, and the caveat says so
    assert "a multiclass model's one-vs-rest curves are not redrawn, so the estimate may lag" in moved["caveat"]
    # the task's log: its warning, the table and the caveat on the line under it
    log = capfd.readouterr().out
    assert re.search(r"\[warning\s*\] ESTIMATED PERFORMANCE DRIFT: champion v1 of multi_plan on 2026-01-24", log), log[-3000:]
    assert f"\ncaveat: {moved['caveat']}\n" in log


def test_a_regressor_is_trained_scored_and_measured_live(bag):
    _, states = run_dag(bag.dags["charges_reg__train"], "2026-01-11")
    assert states["register_model"] == "success"
    (v1,) = versions("charges_reg")
    assert "champion" in v1.aliases
    assert "mlops.calibration" not in v1.tags  # estimation is for classifiers
    tested = json.loads(v1.tags["mlops.test_metrics"])
    assert tested["rmse"] < 20

    scored, states = run_dag(bag.dags["charges_reg__score"], DAY)
    assert states["score_partition"] == "success"
    assert "estimate_performance" not in states
    pred = pd.read_parquet(xcom("charges_reg__score", scored.run_id, "score_partition")["output_uri"])
    assert pred["prediction"].dtype == np.float64
    assert not {"probability", "score"} & set(pred.columns)

    live_run, states = run_dag(bag.dags["charges_reg__live_metrics"], DAY)
    assert (states["live_metrics"], states["no_performance_drift"]) == ("success", "success")
    live = xcom("charges_reg__live_metrics", live_run.run_id, "live_metrics")
    measured = live["per_version"]["1"]
    assert {"rmse", "mae", "r2"} <= set(measured)
    assert measured["rmse"] < 20
    assert live["performance"]["status"] == "no_drift"
