"""The stack's Celery workers load the libraries a pipeline's tasks import once, before they fork their pool,
so no task pays for them (airflow_mlops.tools.worker)."""

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
from airflow_mlops.tools.worker import CELERY_CONFIG, PRELOAD
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
    assert found["after"] == ["numpy", "pandas", "pyarrow.parquet", "sklearn.metrics", "mlflow", "mlflow.pyfunc",
                              "whylogs", "torch"]  # fmt: skip
    assert found["analytics_off"] == "True"


def test_a_library_that_is_not_installed_is_left_out_and_the_rest_still_load(tmp_path):
    """A worker installed without the training extra has no torch: the preload skips it, loads the rest."""
    (tmp_path / "torch.py").write_text("raise ImportError('No module named torch (this test hides it)')\n")
    found = _fresh(
        "import json; from airflow_mlops.tools.worker import preload; print(json.dumps(preload()))",
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert "torch" not in found
    assert found[:2] == ["numpy", "pandas"]
    assert "mlflow" in found


def test_the_stack_runs_its_workers_with_it():
    from airflow_mlops.tools.stack import Stack

    stack = Stack(home=Path("/nowhere"), secrets={"fernet_key": "k", "api_secret": "a", "jwt_secret": "j", "mlflow_password": "p"})
    assert stack.env()["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == "airflow_mlops.tools.worker.CELERY_CONFIG"
