"""Faults on the production stack: Airflow on PostgreSQL with the CeleryExecutor (two workers), an MLflow server.

One stack for the module (databases ``mlops_ci_stack_*``), the fault pipelines of ``tests/stack_dags`` (the demo
pipeline with short trainings and short retry delays). Everything is driven the way an operator would: the
``airflow`` CLI against the stack, MLflow over HTTP with its password, ``kill -9`` of real processes.

A fault lands while a trainer *waits* at a checkpoint, not during a long training: the test-only hold in
``tests/stack/hold`` (a ``sitecustomize`` on the stack's ``PYTHONPATH``, unknown to the package) keeps a
trainer after a checkpoint until the test releases it (:func:`_hold`, :func:`_held`, :func:`_release`). The
stack's heartbeat time-out is 30 s (the default is 300 s): a lost task is retried within about 40 s; a restarted
scheduler adopts the orphaned tasks of the one it replaced within 15 s (the default is 300 s).
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
from helpers import drop_stack_data, runs_in_db, trainers
from helpers import wait_for as _wait

from airflow_mlops.tools.airflow_cli import create_backfill

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
    (home / "hold").mkdir()
    settings = {
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",  # the resumed stack adopts its orphan soon
        # the specs do not change during the tests: parse each file every 2 min, not every 30 s (CPU for the
        # rest of the suite; under dag_stale_not_seen_duration's 10 min, so no DAG goes stale)
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "120",
        "PYTHONPATH": str(ROOT / "tests" / "stack" / "hold"),
        "AIRFLOW_MLOPS_TEST_HOLD": str(home / "hold"),
    }
    saved = dict(os.environ)  # start() exports the stack's environment to this process
    started = stack_tools.start(
        home, name="mlops_ci_stack", dags_folder=ROOT / "tests" / "stack_dags", say=print, settings=settings,
        redis_db=11, port_base=18300,
    )
    try:
        yield started
    finally:
        groups = list(stack_tools.Stack.load(home).groups)  # the supervisor's restarts included
        stack_tools.stop(home, say=print)
        os.environ.clear()
        os.environ.update(saved)
        try:
            assert [g for g in groups if stack_tools._members(g)] == [], "a stack process outlived stop()"
            assert _trainers(started) == []
        finally:
            drop_stack_data(started)


def test_the_tracking_server_starts_without_mlflows_job_runner(stack):
    """The stack's MLflow server runs its API workers only: MLflow 3's GenAI job runner and huey consumers
    (eight more processes, about 27 s of CPU at each start) are off (stack.MLFLOW_SERVER_ENV)."""
    import psutil

    from airflow_mlops.tools import stack as stack_tools

    commands = [" ".join(psutil.Process(pid).cmdline()) for pid in stack_tools._members(_pids(stack)["mlflow"])]
    assert any("uvicorn" in c for c in commands), commands
    assert [c for c in commands if "huey" in c or "_job_runner" in c] == []


def test_each_worker_loads_the_tasks_libraries_once_at_its_start(stack):
    """Every Celery worker of the stack preloads what the pipeline's tasks import before it forks its pool
    (airflow_mlops.tools.worker), so the forked tasks start with them."""
    line = (
        "airflow-mlops: preloaded numpy, pandas, pyarrow.parquet, sklearn.metrics, mlflow, mlflow.pyfunc, whylogs, "
        "torch in the Celery worker"
    )
    for worker in stack.workers:  # the stack is up once its scheduler is healthy, maybe before a worker is
        log = Path(stack.home) / "logs" / f"worker-{worker}.log"
        _wait(f"worker {worker} to start", lambda log=log: "ready." in log.read_text() or line in log.read_text(), 120)
        assert line in log.read_text(), log.read_text()[-3000:]


def _hold(stack, pipeline: str, step: int = 1) -> None:
    """Trainers of ``pipeline`` wait after the first checkpoint at ``step`` or later (until released)."""
    gate = Path(stack.home) / "hold" / pipeline
    gate.with_suffix(".held").unlink(missing_ok=True)
    gate.write_text(str(step))


def _held(stack, pipeline: str, after: int = 0) -> tuple[int, int]:
    """Wait for a trainer of ``pipeline`` to wait at a checkpoint later than step ``after``: (pid, step)."""
    held = Path(stack.home) / "hold" / f"{pipeline}.held"

    def waiting():
        try:
            pid, step = (int(x) for x in held.read_text().split())
        except (OSError, ValueError):
            return None
        return (pid, step) if step > after else None

    return _wait(f"a trainer of {pipeline} to hold at a checkpoint", waiting, 300, every=0.5)


def _release(stack, pipeline: str) -> None:
    (Path(stack.home) / "hold" / pipeline).write_text(str(10**9))


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
    return runs_in_db(stack.airflow_db, dag_id)


def _trainers(stack) -> list:
    """The stack's trainer processes (by the hold folder in their environment), orphans included."""
    return trainers("AIRFLOW_MLOPS_TEST_HOLD", str(Path(stack.home) / "hold"))


def _pids(stack) -> dict[str, int]:
    """The stack's components now: the supervisor records the ones it starts again in the state."""
    from airflow_mlops.tools import stack as stack_tools

    return stack_tools.Stack.load(Path(stack.home)).pids


def _worker_of(stack, pid: int) -> str:
    """Which of the stack's workers a process runs under."""
    import psutil

    proc = psutil.Process(pid)
    chain = {p.pid for p in proc.parents()}
    pids = _pids(stack)
    for label, worker_pid in pids.items():
        if label.startswith("worker-") and worker_pid in chain:
            return label
    raise AssertionError(f"process {pid} runs under none of the workers {pids}")


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


def test_a_killed_worker_then_a_stalled_broker_lose_no_training(stack):
    """kill -9 of the Celery worker (and everything under it) while it trains: the task is retried on the
    other worker and resumes from the last checkpoint. Then Redis is paused for 30 s (CLIENT PAUSE, every
    command) as the resumed trainer finishes, so the scheduler sends test_model into the stalled broker: each
    send times out and is sent again (the stack's celery task_publish_max_retries; Airflow's default gave up
    after about 7 s and failed the task), so test_model runs in its first try. One MLflow run, one model
    version, no orphan trainer."""
    import urllib.parse

    import redis

    before = _already(stack, TRAIN, "fault_churn")
    _hold(stack, "fault_churn")
    _airflow(stack, "backfill", "create", "--dag-id", TRAIN, "--from-date", "2026-01-11", "--to-date", "2026-01-11")
    pid, step = _held(stack, "fault_churn")
    trainer = psutil_process(pid)
    victim = _worker_of(stack, pid)
    _kill_tree(_pids(stack)[victim])
    _wait("the dead worker's trainer to be gone", lambda: not trainer.is_running(), 30, every=0.5)
    _hold(stack, "fault_churn", step + 1)  # the retry resumes, and waits at its next checkpoint
    _held(stack, "fault_churn", after=step)
    redis.Redis.from_url(stack.redis).execute_command("CLIENT", "PAUSE", 30000, "ALL")
    paused_at = time.time()
    _release(stack, "fault_churn")

    _, run = _one_resumed_run(stack, TRAIN, "fault_churn", before)
    assert time.time() - paused_at > 30  # the window lived through the whole pause
    assert int(run.data.tags["mlops.resumed_from_step"]) == step  # from the dead worker's last checkpoint
    (dag_run,) = [r for r in _runs(stack, TRAIN) if r["run_id"] not in before["dag_runs"]]
    test_model = _api(stack, "GET", f"/api/v2/dags/{TRAIN}/dagRuns/{urllib.parse.quote(dag_run['run_id'])}/taskInstances/test_model")
    assert (test_model["state"], test_model["try_number"]) == ("success", 1)  # sent again, never failed
    assert _trainers(stack) == []


def psutil_process(pid: int):
    import psutil

    return psutil.Process(pid)


def _backfill(stack, dag_id: str, start: str, end: str) -> None:
    """Airflow runs one backfill per DAG at a time and closes a finished one on a later scheduler loop."""
    create_backfill(dag_id, start, end, env=_env(stack), timeout=120)


def _states(stack, dag_id: str) -> list[str]:
    return [r["state"] for r in _runs(stack, dag_id)]


def _running_tasks(stack, dag_id: str) -> list[str]:
    out = []
    for run in _runs(stack, dag_id):
        tis = _json_out(_airflow(stack, "tasks", "states-for-dag-run", dag_id, run["run_id"], "-o", "json"))
        out += [t["task_id"] for t in tis if t.get("state") == "running"]
    return out


def test_the_scheduler_killed_mid_backfill_is_started_again_and_finishes_it(stack):
    """kill -9 of the scheduler while a backfill runs: the stack's supervisor starts it again (its log says
    which process ended and which replaced it), every run of the backfill completes, and ``stack status``
    then finds every component running, with that start last in its list."""
    from airflow_mlops.tools import stack as stack_tools

    monitor = "fault_churn__drift_monitor"
    _backfill(stack, monitor, "2026-01-20", "2026-01-21")
    _wait("a monitor task to run", lambda: _running_tasks(stack, monitor), 300)
    killed = _pids(stack)["scheduler"]
    os.kill(killed, signal.SIGKILL)
    new = _wait("the supervisor to start the scheduler again", lambda: (p := _pids(stack)["scheduler"]) != killed and p, 60)
    log = (Path(stack.home) / "logs" / "supervisor.log").read_text()
    assert f"scheduler (pid {killed}) exited; started again as pid {new}." in log
    states = _wait(
        "the backfill to finish",
        lambda: (s := _states(stack, monitor)) and len(s) == 2 and all(x in ("success", "failed") for x in s) and s,
        900,
    )
    assert states == ["success", "success"]
    code, text = stack_tools.status(Path(stack.home))  # what `airflow-mlops stack status` prints
    assert code == 0, text
    assert f"scheduler (pid {killed}) exited; started again as pid {new}." in text.splitlines()[-1]


def test_database_connections_terminated_mid_run_do_not_fail_it(stack):
    """pg_terminate_backend of every Airflow connection while runs are active: the runs complete. (A component
    caught in a transaction exits -- the scheduler and the triggerer do -- and the supervisor starts it again;
    without it, a CI run saw the stack run no task again.)"""
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
    """The tracking server killed while a trainer waits at a checkpoint, the trainer released at once, the
    server started again 30 s later: the trainer's end-of-training calls (its metrics, its model) are sent
    during the outage and retried with back-off, then the registration; the window ends with one run and one
    new version."""
    from airflow_mlops.tools import stack as stack_tools

    c = _mlflow(stack)
    _hold(stack, "fault_churn")
    _backfill(stack, TRAIN, "2026-01-18", "2026-01-18")
    pid, _ = _held(stack, "fault_churn")
    stack_tools.stop_component(stack, "mlflow")  # kill -9 of its process group; the supervisor leaves it down
    down_at = time.time()
    _release(stack, "fault_churn")
    time.sleep(30)  # the outage itself, not an ordering
    up_at = time.time()
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
    (window_run,) = [r for r in found if r.data.tags["mlops.window_end"].startswith("2026-01-25")]
    assert window_run.info.status == "FINISHED"
    # the trainer went on during the outage: it stamped its metrics while the server was down, and they
    # arrived (MLflow's client retried them) -- the outage was ridden out, not waited out before the call
    (stamp,) = {m.timestamp for m in c.get_metric_history(window_run.info.run_id, "train_seconds")}
    assert down_at * 1000 < stamp < up_at * 1000
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


def test_the_api_server_then_the_whole_stack_restarted_mid_training_lose_nothing(stack):
    """The API server killed while a trainer waits at a checkpoint and started again 15 s later: the same
    trainer goes on to its next checkpoint. Then every component of the stack killed at once and started
    again (``stack start`` on its home): the orphaned task is retried, the retry resumes the same MLflow run
    from the last checkpoint, and the window ends with one FINISHED run, one version, no run left RUNNING
    and no trainer left behind. (Last in the module: it replaces every process of the stack.)"""
    from airflow_mlops.tools import stack as stack_tools

    dag_id = "fault_restart__train"
    before = _already(stack, dag_id, "fault_restart")  # nothing yet, unless the module is run again on its stack
    _hold(stack, "fault_restart")
    _backfill(stack, dag_id, "2026-01-20", "2026-01-20")
    pid, first = _held(stack, "fault_restart")
    trainer = psutil_process(pid)

    stack_tools.stop_component(stack, "api-server")
    time.sleep(15)  # the outage itself, not an ordering
    stack_tools.restart(stack, "api-server")
    _hold(stack, "fault_restart", first + 1)  # on to the next checkpoint, and wait there
    pid_later, crashed_at = _held(stack, "fault_restart", after=first)
    assert pid_later == pid  # the task and its trainer rode out the API server's absence
    assert trainer.is_running()

    pids = _pids(stack)
    _kill_tree(pids.pop("supervisor"))  # the whole machine's Airflow and MLflow at once, its supervisor first
    for component in pids.values():
        _kill_tree(component)
    _wait("the trainer to die with its task", lambda: not _trainers(stack), 30, every=0.5)
    _release(stack, "fault_restart")
    stack.__dict__.update(stack_tools.resume(Path(stack.home), say=print).__dict__)

    c, run = _one_resumed_run(stack, dag_id, "fault_restart", before)
    assert int(run.data.tags["mlops.resumed_from_step"]) == crashed_at > first
    everything = c.search_runs([e.experiment_id for e in c.search_experiments()])
    assert [r.info.run_name for r in everything if r.info.status == "RUNNING"] == []
    assert _trainers(stack) == []
