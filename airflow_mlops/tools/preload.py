"""The libraries a pipeline's tasks import, loaded once in the process Airflow forks its tasks from.

Airflow forks each task from a long-lived process: a Celery worker's pool process
(:mod:`airflow_mlops.tools.worker`), or a LocalExecutor worker, itself forked from the scheduler at its start.
A pipeline's tasks import pandas, pyarrow, MLflow, scikit-learn, whylogs and torch: about 4.6 s of imports
per task on a 2-core machine, before the task reads a row. Loaded in that process first, every task starts
with them. A library that is not installed (a worker without the training extra) is left out; one that fails
to import is logged and left to the task, which then fails with its own error.
"""

from __future__ import annotations

import importlib
import logging

from airflow.executors.local_executor import LocalExecutor as _AirflowLocalExecutor

log = logging.getLogger(__name__)

# what a pipeline's tasks import, in the order they import it (numpy and pandas first: the others use them)
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "sklearn.metrics",
    "mlflow",
    "mlflow.pyfunc",
    "whylogs",  # through airflow_mlops.data.whylogs_compat, as the tasks import it: analytics off, NumPy 2
    "torch",
)


def preload() -> list[str]:
    """Import :data:`PRELOAD`: the modules loaded (those not installed are skipped)."""
    loaded = []
    for name in PRELOAD:
        try:
            if name == "whylogs":
                from airflow_mlops.data.whylogs_compat import import_whylogs

                import_whylogs()
            else:
                importlib.import_module(name)
        except ImportError:
            continue
        except Exception:  # a broken install: the task that needs it says so, not the worker at start
            log.warning("airflow-mlops: could not preload %s for the tasks", name, exc_info=True)
            continue
        loaded.append(name)
    return loaded


class LocalExecutor(_AirflowLocalExecutor):
    """Airflow's LocalExecutor, whose workers start with :data:`PRELOAD` loaded: they are forked from the
    scheduler when the executor starts (and again if one dies), so the libraries are loaded in the scheduler
    just before (only where they are forked: ``mp_start_method`` spawn starts each from a fresh interpreter,
    and nothing is loaded). The embedded default runs it (``AIRFLOW__CORE__EXECUTOR``); a deployment of its own names
    ``airflow_mlops.tools.preload.LocalExecutor`` there instead of ``LocalExecutor``."""

    def start(self) -> None:
        if self.is_mp_using_fork:  # spawned workers start a fresh interpreter: nothing to share with them
            self.log.info("airflow-mlops: preloaded %s for the executor's workers", ", ".join(preload()))
        super().start()
