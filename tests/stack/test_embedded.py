"""The embedded default (``airflow standalone``, LocalExecutor, SQLite), as the quick start and many users run
it, crashed whole and started again mid-training: the run finishes.

Every process of ``airflow standalone`` is killed with ``-9`` while the trainer waits at a checkpoint (the
test-only hold of ``tests/stack/hold``), then standalone is started again. Standalone starts its parts at once,
so the scheduler may queue the retry before the API server listens. The test makes that race certain: the
restarted API server is held for ``API_DOWN_S`` (the same hold), long enough for the retries to be queued and
started while it is down. With ``demo_env``'s execution-API retries the task waits for it instead of failing
(Airflow's default gives up after 5 attempts over about 31 s: every try fails and so does the run). The retry
resumes the same MLflow run from its checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import runs_in_db, trainers
from helpers import wait_for as _wait

from airflow_mlops.tools.airflow_cli import create_backfill, run_airflow

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
ROOT = Path(__file__).resolve().parents[2]
PIPELINE = "fault_restart"
# the restarted API server's outage: the lost try is failed 20 s after its last heartbeat and retried 5 s later
# (twice: the spec's retries); without the execution-API retries both retries fail well inside this outage
API_DOWN_S = 120
DAG_ID = f"{PIPELINE}__train"


def _trainers(home: Path) -> list:
    """This test's trainer processes, by their AIRFLOW_HOME."""
    return trainers("AIRFLOW_HOME", str(home / "airflow"))


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant, whatever session or group they moved to: a crash."""
    import psutil

    root = psutil.Process(pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


def _airflow(env: dict[str, str], *args: str) -> str:
    return run_airflow(*args, env=env)  # a try that lost SQLite's write lock to the scheduler is run again


def _runs(env: dict[str, str]) -> list[dict]:
    return runs_in_db(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], DAG_ID)


def _standalone(env: dict[str, str], home: Path, port: int) -> subprocess.Popen:
    log = (home / "standalone.log").open("a")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("airflow")), "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    log.close()

    def healthy() -> bool:
        assert proc.poll() is None, (home / "standalone.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5) as resp:
                return json.load(resp).get("scheduler", {}).get("status") == "healthy"
        except (OSError, ValueError):
            return False

    _wait("airflow standalone to be healthy", healthy, 300)
    return proc


def test_a_crash_of_the_whole_embedded_airflow_mid_training_finishes_the_run(tmp_path):
    from mlflow.tracking import MlflowClient

    from airflow_mlops.tools.demo import generate
    from airflow_mlops.tools.quickstart import demo_env, free_port, stop_process_tree

    home, hold = tmp_path, tmp_path / "hold"
    hold.mkdir()
    (home / "airflow").mkdir()
    (home / "mlflow").mkdir()
    generate(str(home / "data"))
    port = free_port(18480)
    env = {
        **os.environ, **demo_env(home, port, dags_folder=ROOT / "tests" / "stack_dags"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        # what the fault needs to be quick; the crash recovery itself is demo_env's
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
        "PYTHONPATH": str(ROOT / "tests" / "stack" / "hold"),
        "AIRFLOW_MLOPS_TEST_HOLD": str(hold),
    }  # fmt: skip
    _airflow(env, "db", "migrate")
    _airflow(env, "dags", "reserialize")
    (hold / PIPELINE).write_text("1")  # the trainer waits after its first checkpoint
    proc = _standalone(env, home, port)
    try:
        create_backfill(DAG_ID, "2026-01-20", "2026-01-20", env=env)
        pid, step = _wait(
            "the trainer to hold at a checkpoint",
            lambda: tuple(int(x) for x in (hold / f"{PIPELINE}.held").read_text().split())
            if (hold / f"{PIPELINE}.held").exists() else None,
            600, every=0.5,
        )  # fmt: skip
        assert [p.pid for p in _trainers(home)] == [pid]  # the held trainer is this test's, and found
        _kill_tree(proc.pid)  # every standalone process at once (tasks run in sessions of their own)
        proc.wait(30)
        _wait("the trainer to die with its task", lambda: not _trainers(home), 30, every=0.5)
        (hold / PIPELINE).write_text(str(10**9))  # the retry trains on
        (hold / "api-server").write_text(str(time.time() + API_DOWN_S))  # the API server comes back late
        restarted = (home / "standalone.log").stat().st_size
        proc = _standalone(env, home, port)
        (run,) = _wait(
            "the training run to finish", lambda: [r for r in _runs(env) if r["state"] in ("success", "failed")], 900
        )
        assert run["state"] == "success", (home / "standalone.log").read_text()[-3000:]
        # a retry was started while the API server was down, and waited for it past Airflow's default 5 calls
        after = (home / "standalone.log").read_bytes()[restarted:].decode(errors="replace")
        calls = [int(n) for n in re.findall(r"Client\.request', this is the (\d+)(?:st|nd|rd|th) time calling it", after)]
        assert max(calls, default=0) > 5, after[-3000:]
        # the scheduler loaded the tasks' libraries before it forked the executor's workers (tools.preload)
        assert "airflow-mlops: preloaded numpy, pandas" in after
    finally:
        stop_process_tree(proc)
    c = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"])  # not the process-wide one
    (experiment,) = [e for e in c.search_experiments() if e.name == f"airflow-mlops/{PIPELINE}"]
    (mlflow_run,) = c.search_runs([experiment.experiment_id])  # the retry resumed the same MLflow run
    assert mlflow_run.info.status == "FINISHED"
    assert int(mlflow_run.data.tags["mlops.resumed_from_step"]) == step
    assert len(c.search_model_versions(f"name = '{PIPELINE}'")) == 1
    assert _trainers(home) == []
