"""Faults on the production stack: Airflow on PostgreSQL with the CeleryExecutor (two workers), an MLflow server.

One stack for the module (databases ``mlops_ci_stack_*``), the fault pipeline ``fault_churn`` (the demo
pipeline with a training long enough to kill mid-way). Everything is driven the way an operator would: the
``airflow`` CLI against the stack, MLflow over HTTP with its password, ``kill -9`` of real processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# each test waits up to 15 min for the stack (two trainings, a restart): longer than the suite's 600 s default
pytestmark = [pytest.mark.slow, pytest.mark.stack, pytest.mark.timeout(1800)]
ROOT = Path(__file__).resolve().parents[2]
TRAIN = "fault_churn__train"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from airflow_mlops.tools import stack as stack_tools
    from airflow_mlops.tools.demo import generate

    home = tmp_path_factory.mktemp("stack")
    generate(str(home / "data"))
    started = stack_tools.start(home, name="mlops_ci_stack", dags_folder=ROOT / "tests" / "stack_dags", say=print)
    try:
        yield started
    finally:
        groups = list(started.groups)
        stack_tools.stop(home, say=print)
        assert [g for g in groups if stack_tools._members(g)] == [], "a stack process outlived stop()"
        assert _trainers() == []


def _env(stack) -> dict[str, str]:
    return {**os.environ, **stack.env()}


def _airflow(stack, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), *args], env=_env(stack), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    if check:
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done.stdout


def _json_out(text: str):
    """The JSON document an airflow CLI command prints after its log lines (which may hold brackets too)."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith(("[{", "[]", "{")):
            return json.loads(line)
    raise AssertionError(f"no JSON in the command's output: {text[-1000:]}")


def _runs(stack, dag_id: str) -> list[dict]:
    return _json_out(_airflow(stack, "dags", "list-runs", dag_id, "-o", "json"))


def _wait(what: str, condition, timeout: float, every: float = 2.0):
    """Poll ``condition`` until it returns something truthy (a state to reach, not an ordering of threads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _trainers() -> list:
    import psutil

    return [
        p for p in psutil.process_iter(["pid", "cmdline"])
        if "airflow_mlops.model.training" in " ".join(p.info.get("cmdline") or [])
    ]  # fmt: skip


def _worker_of(stack, pid: int) -> str:
    """Which of the stack's workers a process runs under."""
    import psutil

    proc = psutil.Process(pid)
    chain = {p.pid for p in proc.parents()}
    for label, worker_pid in stack.pids.items():
        if label.startswith("worker-") and worker_pid in chain:
            return label
    raise AssertionError(f"process {pid} runs under none of the workers {stack.pids}")


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:  # gone already (it died with another component's tree)
        return
    for p in tree:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


def _mlflow(stack):
    from mlflow.tracking import MlflowClient

    os.environ.update({k: v for k, v in stack.env().items() if k.startswith("MLFLOW_TRACKING")})
    return MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)


def _already(stack, dag_id: str, pipeline: str) -> dict[str, set]:
    """What earlier tests of the module left for a DAG and its model: its DAG runs, MLflow runs and versions."""
    c = _mlflow(stack)
    experiments = [e.experiment_id for e in c.search_experiments() if e.name == f"airflow-mlops/{pipeline}"]
    return {
        "dag_runs": {r["run_id"] for r in _runs(stack, dag_id)},
        "mlflow_runs": {r.info.run_id for r in c.search_runs(experiments)} if experiments else set(),
        "versions": {v.version for v in c.search_model_versions(f"name = '{pipeline}'")},
    }


def _one_resumed_run(stack, dag_id: str, pipeline: str, before: dict[str, set]):
    """The new training run ends in success with one new FINISHED MLflow run (the retry resumed it) and one
    new version; ``before`` is what :func:`_already` found before the test started it."""
    (run,) = _wait(
        "the training run to finish",
        lambda: [
            r for r in _runs(stack, dag_id)
            if r["run_id"] not in before["dag_runs"] and r["state"] in ("success", "failed")
        ],
        900,
    )  # fmt: skip
    assert run["state"] == "success"
    c = _mlflow(stack)
    (experiment,) = [e for e in c.search_experiments() if e.name == f"airflow-mlops/{pipeline}"]
    runs = [r for r in c.search_runs([experiment.experiment_id]) if r.info.run_id not in before["mlflow_runs"]]
    assert len(runs) == 1  # the retry resumed the same MLflow run
    assert runs[0].info.status == "FINISHED"
    versions = [v for v in c.search_model_versions(f"name = '{pipeline}'") if v.version not in before["versions"]]
    assert len(versions) == 1
    return c, runs[0]


def test_a_killed_worker_loses_no_training(stack):
    """kill -9 of the Celery worker (and everything under it) while it trains: the task is retried on the
    other worker and resumes from the last checkpoint; one MLflow run, one model version, no orphan trainer."""
    before = _already(stack, TRAIN, "fault_churn")
    _airflow(stack, "backfill", "create", "--dag-id", TRAIN, "--from-date", "2026-01-11", "--to-date", "2026-01-11")
    trainer = _wait("a trainer to start", lambda: _trainers(), 240, every=1.0)[0]
    checkpoints = Path(stack.home) / "artifacts" / "fault_churn" / "checkpoints"
    _wait("a first checkpoint", lambda: list(checkpoints.rglob("checkpoint.json")), 240, every=1.0)
    victim = _worker_of(stack, trainer.pid)
    _kill_tree(stack.pids[victim])
    _wait("the dead worker's trainer to be gone", lambda: not trainer.is_running(), 30, every=0.5)

    _, run = _one_resumed_run(stack, TRAIN, "fault_churn", before)
    assert int(run.data.tags["mlops.resumed_from_step"]) > 0  # from the dead worker's last checkpoint
    assert _trainers() == []


def _backfill(stack, dag_id: str, start: str, end: str) -> None:
    """Airflow runs one backfill per DAG at a time and closes a finished one on a later scheduler loop."""

    def created() -> bool:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), "backfill", "create", "--dag-id", dag_id,
             "--from-date", start, "--to-date", end], env=_env(stack), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        out = done.stdout + done.stderr
        assert done.returncode == 0 or "AlreadyRunningBackfill" in out, out[-3000:]
        return done.returncode == 0

    _wait(f"a backfill of {dag_id} to be accepted", created, 120, every=3)


def _states(stack, dag_id: str) -> list[str]:
    return [r["state"] for r in _runs(stack, dag_id)]


def _running_tasks(stack, dag_id: str) -> list[str]:
    out = []
    for run in _runs(stack, dag_id):
        tis = _json_out(_airflow(stack, "tasks", "states-for-dag-run", dag_id, run["run_id"], "-o", "json"))
        out += [t["task_id"] for t in tis if t.get("state") == "running"]
    return out


def test_the_scheduler_killed_and_restarted_mid_backfill_finishes_it(stack):
    """kill -9 of the scheduler while a backfill runs, then a restart: every run of the backfill completes."""
    from airflow_mlops.tools import stack as stack_tools

    monitor = "fault_churn__drift_monitor"
    _backfill(stack, monitor, "2026-01-20", "2026-01-21")
    _wait("a monitor task to run", lambda: _running_tasks(stack, monitor), 300)
    os.kill(stack.pids["scheduler"], signal.SIGKILL)
    stack_tools.restart(stack, "scheduler")
    states = _wait(
        "the backfill to finish",
        lambda: (s := _states(stack, monitor)) and len(s) == 2 and all(x in ("success", "failed") for x in s) and s,
        900,
    )
    assert states == ["success", "success"]


def test_database_connections_terminated_mid_run_do_not_fail_it(stack):
    """pg_terminate_backend of every Airflow connection while runs are active: the runs complete."""
    import psycopg2

    monitor = "fault_churn__drift_monitor"
    _backfill(stack, monitor, "2026-01-22", "2026-01-23")
    _wait("a monitor task to run", lambda: _running_tasks(stack, monitor), 300)
    conn = psycopg2.connect(f"{stack.pg}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (f"{stack.name}_airflow",),
        )
        terminated = cur.fetchone()[0]
    conn.close()
    assert terminated > 0
    states = _wait(
        "the runs to finish",
        lambda: (s := _states(stack, monitor)) and len(s) == 4 and all(x in ("success", "failed") for x in s) and s,
        900,
    )
    assert states == ["success"] * 4


def test_the_mlflow_server_down_for_30_seconds_is_ridden_out(stack):
    """The tracking server killed while a trainer runs and started again 30 s later: the trainer's and the
    registration's calls are retried with back-off; the window ends with one run and one new version."""
    from airflow_mlops.tools import stack as stack_tools

    c = _mlflow(stack)
    _backfill(stack, TRAIN, "2026-01-18", "2026-01-18")
    _wait("a trainer to start", lambda: _trainers(), 300, every=1.0)
    _kill_tree(stack.pids["mlflow"])
    time.sleep(30)  # the outage itself, not an ordering
    stack_tools.restart(stack, "mlflow")
    runs = _wait(
        "the second training window to finish",
        lambda: (r := [x for x in _runs(stack, TRAIN) if "2026-01-25" in x["run_id"]])
        and r[0]["state"] in ("success", "failed") and r,
        900,
    )
    assert runs[0]["state"] == "success"
    (experiment,) = [e for e in c.search_experiments() if e.name == "airflow-mlops/fault_churn"]
    found = c.search_runs([experiment.experiment_id])
    keys = [r.data.tags["mlops.run_key"] for r in found]
    assert len(keys) == len(set(keys))  # one MLflow run per window, none duplicated by a retry
    assert [r.info.status for r in found if r.data.tags["mlops.window_end"].startswith("2026-01-25")] == ["FINISHED"]
    window = [
        v for v in c.search_model_versions("name = 'fault_churn'")
        if v.tags.get("mlops.window_end", "").startswith("2026-01-25")
    ]  # fmt: skip
    assert len(window) == 1  # one version for the window, none duplicated by a retried registration


def _api(stack, method: str, path: str, body: dict | None = None) -> dict:
    """The stack's REST API as the UI calls it: a token for the admin user (Airflow's simple auth manager,
    its generated password), then JSON."""
    import urllib.request

    base = f"http://127.0.0.1:{stack.api_port}"
    passwords = json.loads((Path(stack.home) / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())

    def call(verb: str, url: str, payload: dict | None, token: str | None = None) -> dict:
        request = urllib.request.Request(url, method=verb, data=json.dumps(payload).encode() if payload is not None else None)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"{}")

    token = call("POST", f"{base}/auth/token", {"username": "admin", "password": passwords["admin"]})["access_token"]
    return call(method, f"{base}{path}", body, token)


def test_a_backfill_from_the_ui_trains_its_windows_one_at_a_time(stack):
    """A backfill of two training windows created as the UI's backfill dialog does (POST /api/v2/backfills
    with the dialog's defaults: 10 active runs, reprocess none) behaves as the CLI's: with
    ``training.concurrent_windows: 1`` (the default) the scheduler runs both DAG runs, but never two trainings
    at once (two workers were free for it)."""
    dag_id = "fault_backfill__train"  # short trainings: the point is their order, not their length
    created = _api(stack, "POST", "/api/v2/backfills", {
        "dag_id": dag_id, "from_date": "2026-01-22T00:00:00Z", "to_date": "2026-01-23T00:00:00Z",
        "run_backwards": False, "dag_run_conf": {}, "reprocess_behavior": "none", "max_active_runs": 10,
    })  # fmt: skip
    assert created["max_active_runs"] == 10  # the DAG's own max_active_runs does not bound a backfill
    runs = _wait(  # the DAG's only runs
        "both windows to finish",
        lambda: (r := _runs(stack, dag_id)) and len(r) == 2 and all(x["state"] in ("success", "failed") for x in r) and r,
        900,
    )  # fmt: skip
    assert [r["state"] for r in runs] == ["success", "success"]
    spans = []
    for run in runs:
        tis = _json_out(_airflow(stack, "tasks", "states-for-dag-run", dag_id, run["run_id"], "-o", "json"))
        (train,) = [t for t in tis if t["task_id"] == "train_model"]
        spans.append((train["start_date"], train["end_date"]))
    first, second = sorted(spans)
    assert first[1] <= second[0], f"the two trainings overlapped: {spans}"


def _checkpoint_step(folder: Path) -> int:
    """The step of the newest complete checkpoint in a folder (0 before the first)."""
    manifests = list(folder.rglob("checkpoint.json"))
    return max((json.loads(m.read_text())["step"] for m in manifests), default=0)


def test_the_api_server_then_the_whole_stack_restarted_mid_training_lose_nothing(stack):
    """The API server killed mid-training and started again 15 s later: the same trainer goes on. Then every
    component of the stack killed at once and started again (``stack start`` on its home): the orphaned task
    is retried, the retry resumes the same MLflow run from the last checkpoint, and the window ends with one
    FINISHED run, one version, no run left RUNNING and no trainer left behind. (Last in the module: it
    replaces every process of the stack.)"""
    from airflow_mlops.tools import stack as stack_tools

    dag_id = "fault_restart__train"
    checkpoints = Path(stack.home) / "artifacts" / "fault_restart" / "checkpoints"
    before = _already(stack, dag_id, "fault_restart")  # nothing yet, unless the module is run again on its stack
    _backfill(stack, dag_id, "2026-01-20", "2026-01-20")
    trainer = _wait("a trainer to start", lambda: _trainers(), 300, every=1.0)[0]
    first = _wait("a first checkpoint", lambda: _checkpoint_step(checkpoints), 300, every=1.0)

    _kill_tree(stack.pids["api-server"])
    time.sleep(15)  # the outage itself, not an ordering
    stack_tools.restart(stack, "api-server")
    _wait("a later checkpoint", lambda: _checkpoint_step(checkpoints) > first, 300, every=1.0)
    assert trainer.is_running()  # the task and its trainer rode out the API server's absence

    for pid in stack.pids.values():  # the whole machine's Airflow and MLflow at once
        _kill_tree(pid)
    _wait("the trainer to die with its task", lambda: not _trainers(), 30, every=0.5)
    crashed_at = _checkpoint_step(checkpoints)
    stack.__dict__.update(stack_tools.resume(Path(stack.home), say=print).__dict__)

    c, run = _one_resumed_run(stack, dag_id, "fault_restart", before)
    assert int(run.data.tags["mlops.resumed_from_step"]) == crashed_at > first
    everything = c.search_runs([e.experiment_id for e in c.search_experiments()])
    assert [r.info.run_name for r in everything if r.info.status == "RUNNING"] == []
    assert _trainers() == []
