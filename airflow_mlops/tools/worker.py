"""The Celery workers' configuration: Airflow's own, plus the libraries a pipeline's tasks import, loaded once
per worker instead of once per task.

Airflow runs each task in a process forked from the Celery worker's pool process, and Airflow preloads its
own expensive modules in the worker for that reason (its ``import_modules`` handler). A pipeline's tasks import
pandas, pyarrow, MLflow, scikit-learn and whylogs (and torch to test a tabular model): about 4.6 s of
imports per task on a 2-core machine, before the task reads a row. Loaded here, in the worker before it
forks its pool, every task starts with them (:mod:`airflow_mlops.tools.preload`).

``airflow-mlops stack`` sets it; a deployment of its own sets
``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=airflow_mlops.tools.worker.CELERY_CONFIG`` on its workers (and
scheduler: the same Celery app). A library that is not installed (a worker without the training extra) is
left out; one that fails to import is logged and left to the task, which then fails with its own error.
"""

from __future__ import annotations

import logging

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import import_modules

from airflow_mlops.tools.preload import preload

log = logging.getLogger(__name__)


@import_modules.connect
def _on_import_modules(*args: object, **kwargs: object) -> None:
    """Celery sends ``import_modules`` once, in the worker's main process at start, before it forks its pool
    (Airflow's own preload is a handler of it too); the scheduler, which builds the same app, never does."""
    log.info("airflow-mlops: preloaded %s in the Celery worker", ", ".join(preload()))


CELERY_CONFIG = DEFAULT_CELERY_CONFIG  # Airflow's: importing this module from it is what adds the preload
