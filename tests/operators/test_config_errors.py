"""A configuration error is not retried, names its key, and leaves no MLflow run or artifact behind.

Before, ``epochs: "ten"`` in a hand-written DAG (or in a run's ``model_params``) reached the trainer, failed
inside it, was retried, and left a FAILED MLflow run; a model without ``task`` died on ``KeyError: 'task'``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from airflow_mlops.errors import ConfigError
from airflow_mlops.model.settings import check_model


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        ({"kind": "tabular", "params": {"epochs": "ten"}}, "model.params.epochs: found 'ten'; allowed: an integer"),
        ({"kind": "tabular", "params": {"epoch": 3}}, "model.params.epoch: unknown key (did you mean 'epochs'?)"),
        ({"kind": "tabular", "task": "ranking"}, "model.task: found 'ranking'; allowed: classification | regression"),
        ({"kind": "xgboost"}, "model.kind: found 'xgboost'; allowed: tabular | lora_text | lora_causal_lm"),
        ({"kind": "lora_text", "params": {"lora_r": 0}}, "model.params.lora_r: found 0; allowed: a number >= 1"),
    ],
)
def test_a_model_config_is_checked_as_the_spec_checks_it(model, problem):
    with pytest.raises(ConfigError) as err:
        check_model(model, "model of task 'train'")
    assert problem in str(err.value)
    assert str(err.value).startswith("invalid model of task 'train':")


def test_a_checked_model_is_normalised_with_the_kinds_default_task():
    assert check_model({"kind": "tabular", "params": {"epochs": 3}}) == {
        "kind": "tabular", "task": "classification", "params": {"epochs": 3},
    }  # fmt: skip


def test_a_hand_written_dag_with_a_wrong_key_fails_when_it_is_parsed():
    from airflow_mlops.operators.training import TrainModelOperator

    with pytest.raises(ConfigError, match=r"model.params.epochs: found 'ten'"):
        TrainModelOperator(
            task_id="train", pipeline="p", data_uri="x", target="y", model={"kind": "tabular", "params": {"epochs": "ten"}}
        )  # fmt: skip


@pytest.mark.slow  # starts the trainer process
def test_the_trainer_refuses_a_bad_config_before_any_mlflow_call(tmp_path, mlflow_uri):
    from mlflow.tracking import MlflowClient

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": {"kind": "tabular", "params": {"epochs": "ten"}}, "run_key": "k"}))
    done = subprocess.run(
        [sys.executable, "-m", "airflow_mlops.model.training", "--config", str(config), "--result", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == ConfigError.EXIT_CODE, done.stdout + done.stderr
    assert "model.params.epochs: found 'ten'" in done.stdout
    assert [e.name for e in MlflowClient().search_experiments()] == ["Default"]  # nothing was created


@pytest.mark.slow  # runs the training DAG through dag.test
def test_a_runs_bad_model_params_fail_the_training_once_and_leave_no_run(mlflow_uri, roots, capfd):
    from helpers import pipelines_bag, run_dag
    from mlflow.tracking import MlflowClient

    bag = pipelines_bag()
    run, states = run_dag(bag.dags["release_churn__train"], "2026-01-11", conf={"model_params": {"epochs": "ten"}})
    assert states["validate_data"] == "success"
    assert states["train_model"] == "failed"  # not up_for_retry: a retry would fail the same way
    (ti,) = [t for t in run.get_task_instances() if t.task_id == "train_model"]
    assert ti.try_number == 1
    assert "model.params.epochs: found 'ten'; allowed: an integer" in capfd.readouterr().out
    experiments = [e.name for e in MlflowClient().search_experiments()]
    assert "airflow-mlops/release_churn" not in experiments  # no MLflow run, not even a FAILED one
