"""Hyper-parameter search: mapped trials as MLflow child runs, the best one tested and registered."""

from __future__ import annotations

import pytest
from helpers import pipelines_bag, run_dag, versions, xcom

from airflow_mlops.model.search import expand_trials, select_best

pytestmark = pytest.mark.slow  # runs a search DAG


def test_grid_and_random_expansion():
    space = {"lr": [1, 2, 3], "units": [[8], [16]]}
    grid = expand_trials({"epochs": 2}, space, "grid", 4, 0)
    assert grid == [
        {"epochs": 2, "lr": 1, "units": [8]}, {"epochs": 2, "lr": 1, "units": [16]},
        {"epochs": 2, "lr": 2, "units": [8]}, {"epochs": 2, "lr": 2, "units": [16]},
    ]  # fmt: skip
    drawn = expand_trials({}, space, "random", 3, 7)
    assert len(drawn) == 3
    assert len({str(t) for t in drawn}) == 3
    assert drawn == expand_trials({}, space, "random", 3, 7)


def test_select_best_honours_metric_direction():
    trials = [
        {"run_id": "a", "metrics": {"holdout_rmse": 2.0}},
        {"run_id": "b", "metrics": {"holdout_rmse": 1.0}},
    ]
    assert select_best(trials, "rmse")["run_id"] == "b"
    trials = [
        {"run_id": "a", "metrics": {"holdout_f1": 0.7}},
        {"run_id": "b", "metrics": {"holdout_f1": 0.6}},
    ]
    assert select_best(trials, "f1")["run_id"] == "a"


def test_four_trial_search_makes_four_child_runs_and_registers_the_best(mlflow_uri, roots):
    import mlflow

    bag = pipelines_bag()
    assert bag.import_errors == {}
    run, states = run_dag(bag.dags["search_churn__train"], "2026-01-18")
    assert states["register_model"] == "success"
    assert states["select_best_trial"] == "success"

    parent_id = xcom("search_churn__train", run.run_id, "plan_trials", key="parent_run_id")
    runs = mlflow.search_runs(experiment_names=["airflow-mlops/search_churn"], output_format="list")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]
    assert len(children) == 4
    params = sorted(
        (r.data.params["model.learning_rate"], r.data.params["model.hidden_units"]) for r in children
    )
    assert params == [("0.001", "[32]"), ("0.001", "[8]"), ("0.01", "[32]"), ("0.01", "[8]")]
    best = max(children, key=lambda r: r.data.metrics["holdout_roc_auc"])
    parent = mlflow.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mlops.best_run_id"] == best.info.run_id
    (version,) = versions("search_churn")
    assert version.run_id == best.info.run_id
    assert version.aliases == ["champion"]
