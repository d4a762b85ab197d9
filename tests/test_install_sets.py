"""Each install set the README names works on its own, in a fresh virtualenv that holds exactly that set
(:mod:`install_sets`): the scheduler side (``airflow-mlops``), a worker (``airflow-mlops[train]``) and the
production stack (``airflow-mlops[train,celery]``). Each loads every entry point the project declares and runs
what its machines run: the scheduler parses the specs into DAGs without torch; the stack's MLflow tracking
server (basic auth) serves; a worker registers and promotes against it under the PostgreSQL promotion lock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from install_sets import closure, environment

from airflow_mlops.tools.quickstart import free_port
from airflow_mlops.tools.stack import MLFLOW_SERVER_ENV

pytestmark = pytest.mark.slow  # builds three virtualenvs and starts an MLflow server

ROOT = Path(__file__).resolve().parents[1]
SCHEDULER, WORKER, STACK = [], ["train"], ["train", "celery"]
LOCK_DB = "postgresql://127.0.0.1:5432/test"  # the machine's PostgreSQL (the promotion lock's lock_uri)
PASSWORD = "install-sets-admin"
DECLARED = [  # pyproject's entry points, each loaded in every set
    "airflow.plugins:airflow_mlops", "apache_airflow_provider:provider_info", "console_scripts:airflow-mlops",
    "mlflow.artifact_repository:models",
]  # fmt: skip

ENTRY_POINTS = """
import json, sys
from importlib import metadata
loaded = {f"{ep.group}:{ep.name}": ep.load() for ep in metadata.distribution("airflow-mlops").entry_points}
info = loaded["apache_airflow_provider:provider_info"]()
plugin = loaded["airflow.plugins:airflow_mlops"]
entry_points = {"loaded": sorted(loaded), "provider": info["package-name"], "plugin": plugin.name}
"""


def _run(python: Path, code: str, env: dict[str, str] | None = None, timeout: float = 300) -> dict:
    """Run ``code`` in the fresh environment (away from the repository, so only what is installed imports);
    its last line of output is JSON."""
    done = subprocess.run(
        [str(python), "-c", code], cwd=python.parent.parent, capture_output=True, text=True, timeout=timeout,
        env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **(env or {})},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_scheduler_set_holds_no_training_stack_and_parses_the_specs(tmp_path):
    """``pip install airflow-mlops`` (scheduler, API server, triggerer, dag-processor): no torch, no Kubernetes
    provider, no Celery; every entry point loads; the shipped specs compile and parse into their DAGs."""
    names = closure(SCHEDULER)
    assert {"torch", "peft", "transformers", "apache-airflow-providers-cncf-kubernetes", "celery"} & set(names) == set()
    python = environment(tmp_path / "venv", SCHEDULER)
    home = tmp_path / "airflow"
    parsed = _run(python, ENTRY_POINTS + f"""
import sys
from airflow.dag_processing.dagbag import DagBag
from airflow_mlops.pipeline.bundle import PipelineSpecBundle
bundle = PipelineSpecBundle(name="mlops-pipelines", path={str(ROOT / "dags" / "pipelines")!r})
bundle.initialize()
bag = DagBag(str(bundle.path), bundle_path=bundle.path, bundle_name="mlops-pipelines")
from airflow_mlops.tools.cli import main
code = main(["validate-spec", {str(ROOT / "dags" / "pipelines")!r}])
print(json.dumps({{"dags": sorted(bag.dag_ids), "errors": {{k: v[-300:] for k, v in bag.import_errors.items()}},
                  "validate": code, "torch": "torch" in sys.modules, "entry_points": entry_points}}))
""", env={"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
          "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"})  # fmt: skip
    assert parsed["errors"] == {}
    assert "demo_churn__train" in parsed["dags"]
    assert len(parsed["dags"]) >= 5
    assert parsed["validate"] == 0
    assert parsed["torch"] is False
    assert parsed["entry_points"] == {"loaded": DECLARED, "provider": "airflow-mlops", "plugin": "airflow_mlops"}


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """The stack set's MLflow tracking server (basic auth, proxied artifacts), run from its fresh virtualenv."""
    where = tmp_path_factory.mktemp("stack-set")
    python = environment(where / "venv", STACK)
    port = free_port(18600)
    config = where / "basic_auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{where / 'auth.db'}\nadmin_username = admin\nadmin_password = {PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    log = (where / "mlflow.log").open("w")
    server = subprocess.Popen(
        [str(python.parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{where / 'mlflow.db'}", "--serve-artifacts",
         "--artifacts-destination", str(where / "artifacts"), "--app-name", "basic-auth", "--workers", "1"],
        cwd=where, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, **MLFLOW_SERVER_ENV, "MLFLOW_AUTH_CONFIG_PATH": str(config),
             "MLFLOW_FLASK_SERVER_SECRET_KEY": "x" * 32},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        from helpers import wait_for

        def up() -> bool:
            assert server.poll() is None, (where / "mlflow.log").read_text()[-3000:]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        wait_for("the stack set's MLflow server", up, timeout=120, every=1)
        yield {"url": url, "python": python}
    finally:
        os.killpg(server.pid, 9)
        server.wait()


def test_the_stack_set_serves_tracking_and_loads_the_celery_executor(tracking_server):
    """``airflow-mlops[train,celery]`` (``airflow-mlops stack``): the tracking server with basic auth answers
    (refusing an anonymous write), the Celery executor and the stack command load."""
    out = _run(tracking_server["python"], ENTRY_POINTS + f"""
import urllib.request, urllib.error
from airflow.providers.celery.executors.celery_executor import CeleryExecutor
from airflow_mlops.tools import stack
req = urllib.request.Request({tracking_server["url"] + "/api/2.0/mlflow/experiments/create"!r},
                             data=b'{{"name": "anonymous"}}', headers={{"Content-Type": "application/json"}})
try:
    urllib.request.urlopen(req, timeout=30)
    status = 200
except urllib.error.HTTPError as err:
    status = err.code
print(json.dumps({{"anonymous_write": status, "executor": CeleryExecutor.__name__, "stack": stack.__name__,
                  "entry_points": entry_points["loaded"]}}))
""")  # fmt: skip
    assert out == {
        "anonymous_write": 401, "executor": "CeleryExecutor", "stack": "airflow_mlops.tools.stack",
        "entry_points": DECLARED,
    }  # fmt: skip


def test_a_worker_installed_with_train_alone_trains_registers_and_promotes(tracking_server, tmp_path):
    """``airflow-mlops[train]``: the training stack imports (torch, peft, transformers), and a trained run is
    registered and promoted against the tracking server under the PostgreSQL advisory lock (``lock_uri``): the
    promotion needs psycopg2, which the worker set must bring itself."""
    names = closure(WORKER)
    assert {"torch", "peft", "psycopg2-binary"} <= set(names)
    assert "celery" not in names
    python = environment(tmp_path / "venv", WORKER)
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text("{}")
    out = _run(python, ENTRY_POINTS + f"""
import peft, torch, transformers
from airflow_mlops.model.training import causal_lm, lora, text, trainer
from mlflow import MlflowClient
from airflow_mlops.release import promotion
from airflow_mlops.tracking import registry
c = MlflowClient({tracking_server["url"]!r})
exp = registry.ensure_experiment(c, "airflow-mlops/worker-set")
run = c.create_run(exp, tags={{registry.RUN_KEY_TAG: "k1", "mlops.window_start": "2026-01-01"}})
c.log_artifacts(run.info.run_id, {str(model)!r}, "model")
c.set_terminated(run.info.run_id)
training = {{"run_id": run.info.run_id, "model_uri": f"runs:/{{run.info.run_id}}/model", "model_sha256": "0" * 64,
            "run_key": "k1"}}
tests = {{"passed": True, "promote": True, "reason": "roc_auc 0.8", "metrics": {{"roc_auc": 0.8}},
         "champion_version": None, "tests": []}}
result = promotion.register_and_promote(c, name="worker-set", training=training, tests=tests)
champion = registry.get_alias(c, "worker-set", registry.CHAMPION)
print(json.dumps({{"alias": result["alias"], "champion": str(champion.version), "psycopg2": "psycopg2" in sys.modules,
                  "celery": "celery" in sys.modules, "entry_points": entry_points["loaded"]}}))
""", env={"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": PASSWORD,
          "AIRFLOW_MLOPS_LOCK_URI": LOCK_DB, "AIRFLOW_MLOPS_UNSAFE_REGISTRY_LOCK": ""})  # fmt: skip
    assert out == {"alias": "champion", "champion": "1", "psycopg2": True, "celery": False, "entry_points": DECLARED}
