"""The processes Airflow forks tasks from load the libraries a pipeline's tasks import once, so no task pays
for them: the stack's Celery workers before they fork their pool (airflow_mlops.tools.worker), the embedded
default's LocalExecutor before it forks its workers from the scheduler (airflow_mlops.tools.preload)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _fresh(code: str, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` in a fresh interpreter (nothing imported yet); its last line is JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
        env={k: v for k, v in {**os.environ, **(env or {})}.items() if k != "WHYLOGS_NO_ANALYTICS"},
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_worker_config_is_airflows_and_the_preload_waits_for_the_workers_start():
    """Building the Celery app (the scheduler does) imports none of the heavy libraries; Celery's
    ``import_modules`` signal, which only a worker sends at its start, loads every one of them, whylogs
    through the compat module (analytics off, as in a task)."""
    found = _fresh(
        """
import json, os, sys
from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from airflow_mlops.tools.preload import PRELOAD
from airflow_mlops.tools.worker import CELERY_CONFIG
heavy = [m for m in PRELOAD if m in sys.modules]
from celery import Celery
from celery.signals import import_modules
app = Celery("airflow.providers.celery.executors.celery_executor", config_source=CELERY_CONFIG)
built = [m for m in PRELOAD if m in sys.modules]
import_modules.send(sender=app)
print(json.dumps({"same": CELERY_CONFIG == DEFAULT_CELERY_CONFIG, "heavy": heavy, "built": built,
                  "after": [m for m in PRELOAD if m in sys.modules],
                  "analytics_off": os.environ.get("WHYLOGS_NO_ANALYTICS")}))
"""
    )
    assert found["same"]
    assert (found["heavy"], found["built"]) == ([], [])
    assert found["after"] == list(PRELOADED)
    assert found["analytics_off"] == "True"


def test_a_library_that_is_not_installed_is_left_out_and_the_rest_still_load(tmp_path):
    """A worker installed without the training extra has no torch: the preload skips it, loads the rest."""
    (tmp_path / "torch.py").write_text("raise ImportError('No module named torch (this test hides it)')\n")
    found = _fresh(
        "import json; from airflow_mlops.tools.preload import preload; print(json.dumps(preload()))",
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert "torch" not in found
    assert found[:2] == ["numpy", "pandas"]
    assert "mlflow" in found


def test_the_stack_runs_its_workers_with_it():
    from airflow_mlops.tools.stack import Stack

    stack = Stack(home=Path("/nowhere"), secrets={"fernet_key": "k", "api_secret": "a", "jwt_secret": "j", "mlflow_password": "p"})
    assert stack.env()["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == "airflow_mlops.tools.worker.CELERY_CONFIG"


def test_the_embedded_defaults_executor_loads_them_before_it_forks_its_workers(tmp_path):
    """The executor the embedded default names (demo_env) is Airflow's LocalExecutor, and Airflow loads it from
    that name; loading it imports none of the libraries, starting it loads them all, then forks its workers."""
    from airflow_mlops.tools.quickstart import demo_env

    name = demo_env(tmp_path, 18999)["AIRFLOW__CORE__EXECUTOR"]
    found = _fresh(
        """
import json, sys
from airflow.executors.executor_loader import ExecutorLoader
from airflow.executors.local_executor import LocalExecutor
from airflow_mlops.tools.preload import PRELOAD
cls, _ = ExecutorLoader.import_default_executor_cls()
loaded = [m for m in PRELOAD if m in sys.modules]
executor = cls(parallelism=1)
executor.start()
started = [m for m in PRELOAD if m in sys.modules]
workers = len(executor.workers)
executor.end()
print(json.dumps({"local": issubclass(cls, LocalExecutor) and cls.is_local, "loaded": loaded, "started": started,
                  "workers": workers}))
""",
        env={"AIRFLOW__CORE__EXECUTOR": name, "AIRFLOW_HOME": str(tmp_path / "airflow")},
    )
    assert found == {"local": True, "loaded": [], "started": list(PRELOADED), "workers": 1}


def test_an_executor_that_spawns_its_workers_loads_nothing(tmp_path):
    """With ``mp_start_method`` spawn every worker starts a fresh interpreter: loading the libraries in the
    scheduler would only cost it memory."""
    from airflow_mlops.tools.quickstart import demo_env

    found = _fresh(
        """
import json, multiprocessing, sys
multiprocessing.set_start_method("spawn")
from airflow.executors.executor_loader import ExecutorLoader
from airflow_mlops.tools.preload import PRELOAD
cls, _ = ExecutorLoader.import_default_executor_cls()
executor = cls(parallelism=1)
executor.start()
loaded = [m for m in PRELOAD if m in sys.modules]
executor.end()
print(json.dumps(loaded))
""",
        env={"AIRFLOW__CORE__EXECUTOR": demo_env(tmp_path, 18999)["AIRFLOW__CORE__EXECUTOR"],
             "AIRFLOW_HOME": str(tmp_path / "airflow")},
    )  # fmt: skip
    assert found == []


PRELOADED = ("numpy", "pandas", "pyarrow.parquet", "sklearn.metrics", "mlflow", "mlflow.pyfunc", "whylogs", "torch")


def test_the_compose_stack_names_the_same_executor(tmp_path):
    """docker/compose.yaml's Airflow (LocalExecutor on PostgreSQL) runs the executor the embedded default
    runs: Airflow loads it from that name (the image is not built here)."""
    import yaml

    from airflow_mlops.tools.quickstart import demo_env

    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    named = compose["x-airflow"]["environment"]["AIRFLOW__CORE__EXECUTOR"]
    assert named == demo_env(tmp_path, 18999)["AIRFLOW__CORE__EXECUTOR"]
