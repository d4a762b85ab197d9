"""How fast the plugin's MLOps view answers with 100 pipelines, against Airflow's own DAG list in the same API app.

Builds an MLflow sqlite store with N registered models (3 versions each, champion and challenger aliases, 10
drift checks each logged as the drift sensor logs them) and N DAGs serialised in a fresh Airflow metadata DB,
then times, in one Airflow API app (SimpleAuthManager, logged in):

- baseline: ``GET /api/v2/dags?limit=100`` (the UI's DAG list)
- ``GET /mlops/?per_page=100`` (the fleet index: a page of 100 pipelines with their state, champion and
  challenger, out of all of them) and ``GET /mlops/?state=drifting&per_page=100`` (filtered by state), with
  the fleet's listing cached (``FLEET_TTL``), and the first, cold, as after the cache expired
- ``GET /mlops/pipelines/<name>`` (one pipeline: versions, drift charts, decisions, live metrics)

Run: ``.venv/bin/python benchmarks/mlops_view.py [--pipelines 100] [--repeat 20] [--checks 10]``. Prints median ms and the
ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--checks", type=int, default=10, help="drift checks logged per pipeline")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mlops-view-bench-"))
    dags = home / "dags"
    dags.mkdir()
    lines = ["import datetime as dt", "from airflow.sdk import DAG", "from airflow.providers.standard.operators.empty import EmptyOperator"]
    for i in range(args.pipelines):
        lines.append(
            f"with DAG('p{i:03d}__train', schedule=None, start_date=dt.datetime(2026, 1, 1)):\n    EmptyOperator(task_id='t')"
        )
    (dags / "fleet.py").write_text("\n".join(lines) + "\n")
    store = f"sqlite:///{home / 'mlflow.db'}"
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": "bench-pw"}))
    os.environ.update({
        "AIRFLOW_HOME": str(home / "airflow"), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "extra": {"tracking_uri": store}}),
        "WHYLOGS_NO_ANALYTICS": "True", "GIT_PYTHON_REFRESH": "quiet",
    })  # fmt: skip
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True)
    subprocess.run([airflow, "dags", "reserialize"], check=True, capture_output=True)

    from mlflow.tracking import MlflowClient

    from airflow_mlops.operations.monitoring import _log_to_mlflow
    from airflow_mlops.tracking import registry

    c = MlflowClient(store, store)
    started = time.perf_counter()
    for i in range(args.pipelines):
        name = f"p{i:03d}"
        exp = registry.ensure_experiment(c, registry.experiment_name(name), str(home / "artifacts"))
        c.create_registered_model(name)
        for v in range(3):
            run = c.create_run(exp, run_name=f"{name} train w{v}", tags={"mlops.pipeline": name})
            c.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id,
                                   tags={"mlops.tests": "passed", "mlops.test_metrics": json.dumps({"roc_auc": 0.8 + v / 100})})  # fmt: skip
        c.set_registered_model_alias(name, registry.CHAMPION, "2")
        c.set_registered_model_alias(name, registry.CHALLENGER, "3")
        for day in range(args.checks):
            features = [{"feature": f"f{k}", "score": 0.01 * (k + day), "threshold": 0.1} for k in range(8)]
            status = "drift" if i % 10 == 0 and day == args.checks - 1 else "no_drift"
            report = {"status": status, "drift_share": 0.0, "current_profile": f"/p/{name}/2026-01-{day + 1:02d}.bin",
                      "champion_version": "2", "features": features}  # fmt: skip
            _log_to_mlflow(c, name, report, "<html></html>", None, str(home / "artifacts"))
    print(f"built {args.pipelines} pipelines in {time.perf_counter() - started:.0f} s")

    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    client = TestClient(create_app("all"))
    token = client.post("/auth/token", json={"username": "admin", "password": "bench-pw"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    from airflow_mlops.plugins import app as view

    def timed(path: str, cold: bool = False) -> float:
        times = []
        for _ in range(args.repeat):
            if cold:  # the listing's cache expired: this request lists the fleet from MLflow
                view._fleet["at"] = 0.0
            t = time.perf_counter()
            response = client.get(path, headers=auth)
            times.append(time.perf_counter() - t)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
        return statistics.median(times) * 1000

    baseline = timed("/api/v2/dags?limit=100")
    index = timed("/mlops/?per_page=100")
    drifting = timed("/mlops/?state=drifting&per_page=100")
    cold = timed("/mlops/?per_page=100", cold=True)
    page = timed("/mlops/pipelines/p050")
    print(f"GET /api/v2/dags?limit=100 (baseline):        {baseline:7.1f} ms")
    print(f"GET /mlops/?per_page=100 ({args.pipelines} pipelines): {index:7.1f} ms  ({index / baseline:.2f}x the baseline)")
    print(f"GET /mlops/?state=drifting&per_page=100:     {drifting:7.1f} ms  ({drifting / baseline:.2f}x the baseline)")
    print(f"GET /mlops/?per_page=100, listing expired:   {cold:7.1f} ms  ({cold / baseline:.2f}x the baseline)")
    print(f"GET /mlops/pipelines/p050:                   {page:7.1f} ms  ({page / baseline:.2f}x the baseline)")


if __name__ == "__main__":
    main()
