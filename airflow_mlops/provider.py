"""Provider metadata for Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from airflow_mlops import __version__


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-mlops",
        "name": "airflow-mlops",
        "description": "The machine-learning lifecycle on Airflow 3: validate, train, test, register, detect drift, retrain.",
        "versions": [__version__],
        "connection-types": [
            {
                "hook-class-name": "airflow_mlops.hooks.mlflow.MlflowHook",
                "connection-type": "mlflow",
            }
        ],
        "triggers": [
            {"integration-name": "airflow-mlops", "python-modules": ["airflow_mlops.triggers.waiting"]}
        ],
        "extra-links": ["airflow_mlops.links.mlflow.XComUrlLink"],
    }
