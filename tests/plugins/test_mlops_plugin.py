from __future__ import annotations

from importlib.metadata import entry_points

import pytest


def test_plugin_is_registered_through_the_entry_point():
    from airflow.plugins_manager import get_plugin_info

    (ep,) = [e for e in entry_points(group="airflow.plugins") if e.name == "airflow_mlops"]
    assert ep.value == "airflow_mlops.plugins.mlops:AirflowMlopsPlugin"
    from airflow.plugins_manager import get_fastapi_plugins

    info = {p["name"]: p for p in get_plugin_info()}["airflow_mlops"]
    # every link the package's operators use is registered: the five report links and the retraining trigger's
    assert len(info["operator_extra_links"]) == 6
    assert any("TriggeredRetrainingLink" in str(link) for link in info["operator_extra_links"])
    (mounted,) = [a for a in get_fastapi_plugins()[0] if a["name"] == "airflow-mlops"]
    assert mounted["url_prefix"] == "/mlops"
    assert {v["url_route"]: v["href"] for v in info["external_views"]} == {
        "mlops": "/mlops/", "mlops-dag": "/mlops/pipelines/{DAG_ID}",
    }


def test_provider_info_declares_the_mlflow_connection_type():
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert "airflow-mlops" in pm.providers
    hook = pm.hooks["mlflow"]
    assert hook.hook_class_name == "airflow_mlops.hooks.mlflow.MlflowHook"


def test_each_link_has_its_own_xcom_key_in_the_serialized_dag():
    """One link class serves four buttons: each must be stored under its own key, or they overwrite each other."""
    from airflow.serialization.serialized_objects import OperatorSerialization

    from airflow_mlops.links.mlflow import ALL_LINKS
    from airflow_mlops.operators.evaluation import ModelTestOperator
    from airflow_mlops.operators.registry import RegisterModelOperator
    from airflow_mlops.operators.training import TrainModelOperator
    from airflow_mlops.operators.validation import ValidateDataOperator
    from airflow_mlops.sensors.drift import DriftSensor

    encoded = OperatorSerialization._serialize_operator_extra_links(ALL_LINKS)
    assert len(set(encoded.values())) == len(ALL_LINKS) == len(encoded)
    by_operator = {
        op.__name__: OperatorSerialization._serialize_operator_extra_links(op.operator_extra_links)
        for op in (TrainModelOperator, RegisterModelOperator, ModelTestOperator, DriftSensor, ValidateDataOperator)
    }
    assert by_operator == {
        "TrainModelOperator": {"MLflow run": "_link_mlflow_run_url"},
        "RegisterModelOperator": {"Model version": "_link_model_version_url"},
        "ModelTestOperator": {"Model test report": "_link_model_test_report_url"},
        "DriftSensor": {"Drift report": "_link_drift_report_url"},
        "ValidateDataOperator": {"Validation report": "_link_validation_report_url"},
    }


@pytest.mark.slow
def test_a_task_run_stores_each_link_from_the_url_it_pushed():
    """A real task run: the URL pushed under a link's key becomes that button's link; no URL, no button."""
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    from airflow_mlops.links.mlflow import ALL_LINKS, DRIFT_REPORT, MLFLOW_RUN
    from tests.helpers import run_dag, xcom

    bag = DagBag(str(Path(__file__).resolve().parents[1] / "dag_bundle" / "links_probe.py"))
    run, states = run_dag(bag.dags["links_probe"])
    assert states == {"t": "success"}
    stored = {link: xcom("links_probe", run.run_id, "t", key=link.xcom_key) for link in ALL_LINKS}
    assert stored.pop(MLFLOW_RUN) == "http://mlflow.example/#/runs/1"
    assert stored.pop(DRIFT_REPORT) == "http://reports.example/drift.html"
    assert set(stored.values()) <= {"", None}
