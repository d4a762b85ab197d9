"""The airflow-mlops plugin (entry point ``airflow.plugins``): extra links to MLflow and to the reports, and the
MLOps view (a FastAPI app mounted in the API server at ``/mlops``, shown in the UI's navigation)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_mlops.links.mlflow import ALL_LINKS
from airflow_mlops.links.retraining import TriggeredRetrainingLink
from airflow_mlops.utils.timetables import CronUntilTimetable


def _app():
    from airflow_mlops.plugins.app import app

    return app


class AirflowMlopsPlugin(AirflowPlugin):
    name = "airflow_mlops"
    operator_extra_links = [*ALL_LINKS, TriggeredRetrainingLink()]
    timetables = [CronUntilTimetable]  # the generated DAGs' schedule (the scheduler reads it back by name)
    fastapi_apps = [{"app": _app(), "url_prefix": "/mlops", "name": "airflow-mlops"}]
    external_views = [
        {
            "name": "MLOps",
            "href": "/mlops/",
            "url_route": "mlops",
            "destination": "nav",
            "nav_top_level": True,
        },
        {
            "name": "MLOps",
            "href": "/mlops/pipelines/{DAG_ID}",
            "url_route": "mlops-dag",
            "destination": "dag",
        },
    ]
