from __future__ import annotations

from importlib.metadata import entry_points


def test_plugin_is_registered_through_the_entry_point():
    from airflow.plugins_manager import get_plugin_info

    (ep,) = [e for e in entry_points(group="airflow.plugins") if e.name == "airflow_mlops"]
    assert ep.value == "airflow_mlops.plugins.mlops:AirflowMlopsPlugin"
    info = {p["name"]: p for p in get_plugin_info()}["airflow_mlops"]
    assert len(info["operator_extra_links"]) == 4


def test_provider_info_declares_the_mlflow_connection_type():
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert "airflow-mlops" in pm.providers
    hook = pm.hooks["mlflow"]
    assert hook.hook_class_name == "airflow_mlops.operators.hooks.MlflowHook"


def test_links_are_named_for_the_ui():
    from airflow_mlops.operators.links import MlflowRunLink, ModelVersionLink
    from airflow_mlops.operators.registry import RegisterModelOperator
    from airflow_mlops.operators.training import TrainModelOperator

    assert (
        [link.name for link in TrainModelOperator.operator_extra_links]
        == [MlflowRunLink.name]
        == ["MLflow run"]
    )
    assert (
        [link.name for link in RegisterModelOperator.operator_extra_links]
        == [ModelVersionLink.name]
        == ["Model version"]
    )


def test_report_links_are_declared_on_the_tasks_that_write_the_reports():
    from airflow_mlops.operators.evaluation import ModelTestOperator
    from airflow_mlops.sensors.drift import DriftSensor

    assert [link.name for link in ModelTestOperator.operator_extra_links] == ["Model test report"]
    assert [link.name for link in DriftSensor.operator_extra_links] == ["Drift report"]
