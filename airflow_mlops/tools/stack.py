"""The production stack on one machine: Airflow on PostgreSQL with the CeleryExecutor (Redis as broker), two
Celery workers, a standalone dag-processor, a triggerer and the API server as separate processes, and an
MLflow tracking server (PostgreSQL backend store, proxied artifact store, basic auth) that the
``mlflow_default`` connection reaches over HTTP.

``airflow-mlops stack start`` starts it (fresh databases named after ``--name``; started again in a home where
it ran before, it resumes on its databases unless ``--fresh``), ``airflow-mlops stack stop`` stops every
process it started (recorded in ``<home>/stack.json``), and ``airflow-mlops demo --stack celery``
starts it, drives the demo pipeline through it, prints the embedded demo's summary and stops it.
PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) are expected to run already.

A supervisor (its own process, ``<home>/logs/supervisor.log``) starts again any component that exits, as
systemd's ``Restart=always`` or a Kubernetes container restart would: Airflow's scheduler and triggerer exit on a
database error in the middle of a transaction (a PostgreSQL restart or fail-over, ``pg_terminate_backend``),
and without it the stack ran no task again. A component taken down on purpose (:func:`stop_component`) stays
down until :func:`restart`. ``airflow-mlops stack status`` says what runs and what the supervisor last started.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_mlops.tools.airflow_cli import SQLITE_CONNECT_ARGS_SETTING, run_airflow
from airflow_mlops.tools.quickstart import _bin, bindable, demo_env, free_port, thread_settings

WORKERS = ("w1", "w2")
WORKER_CONCURRENCY = 2  # tasks each Celery worker runs at once
#: MLflow 3's server also starts a job runner and seven huey consumers for its GenAI jobs (trace roll-ups,
#: prompt optimisation): measured here, 38 s of CPU in its first minute with them and 12 s without (13
#: processes and 5). Tracking and the model registry use none of them.
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
STATE = "stack.json"
LOCK = "stack.lock"  # held while the state and the processes it names change (the supervisor, restart, stop)
SUPERVISOR = "supervisor"
#: the supervisor looks at every component this often; a component that exits again within STEADY seconds of
#: its last start waits twice as long as the last time before the next start (RESTART_DELAY up to RESTART_MAX)
SUPERVISE_EVERY = 2.0
RESTART_DELAY, RESTART_MAX, STEADY = 2.0, 60.0, 120.0


@dataclass
class Stack:
    """Where the stack lives and what it is called: one ``home`` folder, databases ``<name>_airflow`` and
    ``<name>_mlflow``, Redis database ``redis_db``."""

    home: Path
    name: str = "mlops_stack"
    pg: str = "postgresql://postgres@127.0.0.1:5432"
    redis: str = "redis://127.0.0.1:6379"
    redis_db: int = 5
    api_port: int = 0
    mlflow_port: int = 0
    # the other ports the components listen on (0: Airflow's defaults, 8974 and 8794; worker log servers
    # take their own from 8793 up)
    health_port: int = 0
    trigger_log_port: int = 0
    worker_log_ports: list[int] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    groups: list[int] = field(default_factory=list)  # every process group started, restarts included
    dags_folder: str | None = None
    workers: list[str] = field(default_factory=lambda: list(WORKERS))
    # more environment for every component, over the stack's own (Airflow settings such as
    # AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT); kept in the state, so a restart applies it too
    settings: dict[str, str] = field(default_factory=dict)
    # components taken down on purpose (stop_component): the supervisor leaves them down until restart()
    down: list[str] = field(default_factory=list)

    @property
    def databases(self) -> tuple[str, str, str]:
        """The stack's PostgreSQL databases: Airflow's metadata, MLflow's store and MLflow's users."""
        return f"{self.name}_airflow", f"{self.name}_mlflow", f"{self.name}_mlflow_auth"

    @property
    def airflow_db(self) -> str:
        return f"{self.pg}/{self.databases[0]}"

    @property
    def mlflow_db(self) -> str:
        return f"{self.pg}/{self.databases[1]}"

    @property
    def mlflow_auth_db(self) -> str:
        """The tracking server's users and permissions (basic auth): recreated with the stack, like its store
        (a start makes a new admin password; a user table kept from an earlier start refused it)."""
        return f"{self.pg}/{self.databases[2]}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    def save(self) -> None:
        state = {k: getattr(self, k) for k in ("name", "pg", "redis", "redis_db", "api_port", "mlflow_port",
                                               "health_port", "trigger_log_port", "worker_log_ports",
                                               "secrets", "pids", "groups", "dags_folder", "workers", "settings",
                                               "down")}  # fmt: skip
        path = self.home / STATE
        partial = path.with_name(f".{STATE}.{os.getpid()}")  # read by the supervisor at any time: never half
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(json.dumps(state, indent=2))  # 0600: it holds the stack's passwords and keys
        partial.replace(path)

    @classmethod
    def load(cls, home: Path) -> Stack:
        state = json.loads((home / STATE).read_text())
        return cls(home=home, **state)

    def env(self) -> dict[str, str]:
        """Every component's environment: the embedded default's, with the production parts swapped in."""
        s = self.secrets
        env = demo_env(self.home, self.api_port, self.mlflow_port, Path(self.dags_folder) if self.dags_folder else None)
        pg_airflow = self.airflow_db.replace("postgresql://", "postgresql+psycopg2://", 1)
        env.pop(SQLITE_CONNECT_ARGS_SETTING[0])  # SQLite's busy timeout: not an argument psycopg2 takes
        env.update({
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_airflow,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": f"{self.redis}/{self.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.airflow_db,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            # Airflow's Celery configuration, with the libraries every task imports loaded once per worker
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "airflow_mlops.tools.worker.CELERY_CONFIG",
            # the cores shared among the tasks every worker of this machine runs at once
            **thread_settings(len(self.workers) * WORKER_CONCURRENCY),
            # a send into a stalled broker times out (operation_timeout, 1 s) and is sent again on the next
            # scheduler loop this many times before the task is failed: Airflow's 3 gave up after about 7 s,
            # failing a task that a 30-s Redis pause had only delayed
            "AIRFLOW__CELERY__TASK_PUBLISH_MAX_RETRIES": "60",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__FERNET_KEY": s["fernet_key"],
            "AIRFLOW__API__SECRET_KEY": s["api_secret"],
            "AIRFLOW__API_AUTH__JWT_SECRET": s["jwt_secret"],
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airflow_mlops.tools.stack.hostname",
            # (the heartbeat time-out, orphan adoption and execution-API retries come from demo_env: measured
            # here, Airflow's 300 s defaults held a resumed stack's orphaned training for 5 min)
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({
                "conn_type": "mlflow", "host": "127.0.0.1", "port": self.mlflow_port, "schema": "http",
                "login": "admin", "password": s["mlflow_password"],
                "extra": {"ui_url": self.mlflow_url, "lock_uri": self.mlflow_db},
            }),
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MLFLOW_TRACKING_USERNAME": "admin",
            "MLFLOW_TRACKING_PASSWORD": s["mlflow_password"],
            "AIRFLOW_MLOPS_LOCK_URI": self.mlflow_db,
        })  # fmt: skip
        if self.health_port:
            env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"] = str(self.health_port)
        if self.trigger_log_port:
            env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(self.trigger_log_port)
        env.update(self.settings)
        return env


def hostname() -> str:
    """``[core] hostname_callable`` of the stack: the host name plus the worker's name, so the two workers
    on one machine are told apart in the task instances (and in which log server serves a task's log)."""
    import socket

    worker = os.environ.get("AIRFLOW_MLOPS_WORKER")
    return f"{socket.getfqdn()}-{worker}" if worker else socket.getfqdn()


def _recreate_databases(stack: Stack) -> None:
    import psycopg2

    conn = psycopg2.connect(f"{stack.pg}/postgres", connect_timeout=10)
    conn.autocommit = True
    with conn.cursor() as cur:
        for db in stack.databases:
            cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{db}"')
    conn.close()


REDIS_OWNER = "airflow-mlops:stack"  # the key that says which stack a Redis database belongs to


def _claim_redis(stack: Stack) -> None:
    """Queued tasks of an earlier stack must not reach this one's workers: empty the stack's Redis database,
    but only one that is empty or that a stack of this name claimed before (its ``airflow-mlops:stack`` key).
    A database holding anything else belongs to someone else: refuse, naming a free one."""
    import redis

    client = redis.Redis.from_url(f"{stack.redis}/{stack.redis_db}")
    owner = client.get(REDIS_OWNER)
    size = client.dbsize()
    if size and (owner or b"").decode() != stack.name:
        free = [
            db for db in range(16) if db != stack.redis_db and not redis.Redis.from_url(f"{stack.redis}/{db}").dbsize()
        ]  # fmt: skip
        raise RuntimeError(
            f"Redis database {stack.redis_db} at {stack.redis} holds {size} key(s) that no stack named "
            f"{stack.name!r} wrote{f' (it belongs to stack {owner.decode()!r})' if owner else ''}: it is left "
            f"as it is. Choose another with --redis-db{f' (empty now: {free[0]})' if free else ''}."
        )
    client.flushdb()
    client.set(REDIS_OWNER, stack.name)


def _auth_config(stack: Stack) -> Path:
    path = stack.home / "mlflow" / "basic_auth.ini"
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {stack.mlflow_auth_db}\n"
        "admin_username = admin\n"
        f"admin_password = {stack.secrets['mlflow_password']}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    path.chmod(0o600)
    return path


def _spawn_mlflow(stack: Stack) -> None:
    env = {
        **os.environ, **stack.env(), **MLFLOW_SERVER_ENV,
        "MLFLOW_AUTH_CONFIG_PATH": str(stack.home / "mlflow" / "basic_auth.ini"),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": stack.secrets["api_secret"],
    }  # fmt: skip
    _spawn(stack, "mlflow", [
        _bin("mlflow"), "server", "--host", "127.0.0.1", "--port", str(stack.mlflow_port),
        "--backend-store-uri", stack.mlflow_db, "--serve-artifacts",
        "--artifacts-destination", str(stack.home / "mlflow" / "artifacts"), "--app-name", "basic-auth",
        "--workers", "2",
    ], env)  # fmt: skip


def _log(home: Path, label: str) -> Path:
    """A component's log (the supervisor's too): ``<home>/logs/<label>.log``."""
    return home / "logs" / f"{label}.log"


def _tail(path: Path, size: int = 65536) -> list[str]:
    """The non-blank lines of a log's last ``size`` bytes (a long-running component's log grows without
    bound); none when there is no log."""
    if not path.exists():
        return []
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return [ln for ln in handle.read().decode(errors="replace").splitlines() if ln.strip()]


def _up(home: Path, again: str = "") -> str:
    return f"the stack is up{again}; its supervisor starts again any component that exits ({_log(home, SUPERVISOR)})"


def _spawn(stack: Stack, label: str, argv: list[str], env: dict[str, str]) -> None:
    log = _log(stack.home, label).open("a")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stack.pids[label] = proc.pid
    stack.groups.append(proc.pid)
    stack.save()


def _wait_http(
    url: str, what: str, timeout: float, check: Any = None, auth: tuple[str, str] | None = None, alive: Any = None,
) -> None:  # fmt: skip
    """Poll ``url`` every second until it answers (and ``check`` accepts the body); ``alive`` returns why to give
    up early (a component that exited), or ''."""
    import base64

    from airflow_mlops.tools.waiting import poll

    last = [""]

    def up() -> bool:
        dead = alive() if alive is not None else ""
        if dead:
            raise RuntimeError(f"{what} did not come up at {url}: {dead}")
        request = urllib.request.Request(url)
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                body = resp.read()
        except (OSError, ValueError) as err:
            last[0] = str(err)
            return False
        if check is None or check(body):
            return True
        last[0] = body[:200].decode(errors="replace")
        return False

    poll(up, timeout=timeout, every=1, what=f"{what} did not come up at {url}", last=lambda: last[0])


def _scheduler_healthy(body: bytes) -> bool:
    health = json.loads(body)
    return all(
        health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler", "dag_processor", "triggerer")
    )


def start(
    home: Path, *, name: str = "mlops_stack", say: Any = print, timeout: float = 240, dags_folder: Path | None = None,
    workers: int = len(WORKERS), settings: dict[str, str] | None = None, redis_db: int = 5,
    port_base: int | None = None,
) -> Stack:
    """Fresh databases, then every component; returns when the API reports all of them healthy.

    ``name`` prefixes the PostgreSQL databases; ``redis_db`` is the broker's Redis database (claimed, never
    taken from another owner); ``port_base`` puts every port the stack listens on at ``port_base`` and up (API
    server, MLflow server, scheduler health check, triggerer and worker log servers), else each is the first
    free one from Airflow's and MLflow's usual ports. A start that fails stops everything it started and says
    which component failed and why."""
    home = home.resolve()
    if (home / STATE).exists():
        with contextlib.suppress(Exception):
            stop(home, say=say)
    for sub in ("logs", "mlflow", "airflow"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    from cryptography.fernet import Fernet

    names = [f"w{i + 1}" for i in range(workers)]
    if port_base is not None:
        ports = _ports_free(port_base, 5 + workers)
    else:
        ports = [free_port(8280), free_port(5280), free_port(8974), free_port(8794)]
        ports += [free_port(8793 + 10 * i) for i in range(workers)]
    stack = Stack(
        home=home, name=name, api_port=ports[0], mlflow_port=ports[1], health_port=ports[2], trigger_log_port=ports[3],
        worker_log_ports=ports[4 : 4 + workers], redis_db=redis_db, workers=names,
        dags_folder=str(dags_folder.resolve()) if dags_folder else None, settings=dict(settings or {}),
        secrets={"fernet_key": Fernet.generate_key().decode(), "api_secret": secrets.token_hex(16),
                 "jwt_secret": secrets.token_hex(32), "mlflow_password": secrets.token_urlsafe(16)},
    )  # fmt: skip
    say(f"PostgreSQL databases {', '.join(stack.databases)} (fresh), Redis db {stack.redis_db}")
    _claim_redis(stack)  # before anything is started or recorded: a refused database leaves nothing to stop
    stack.save()
    try:
        _recreate_databases(stack)
        env = {**os.environ, **stack.env()}
        (home / "mlflow" / "artifacts").mkdir(exist_ok=True)
        _auth_config(stack)
        say(f"MLflow tracking server on {stack.mlflow_url} (PostgreSQL store, proxied artifacts, basic auth)")
        _spawn_mlflow(stack)
        os.environ.update(stack.env())
        log = home / "logs" / "setup.log"
        say("Airflow metadata database: migrate")
        run_airflow("db", "migrate", log=log)
        say(f"Airflow: api-server (:{stack.api_port}), scheduler, dag-processor, triggerer, workers {', '.join(names)}")
        _spawn(stack, "api-server", [_bin("airflow"), "api-server", "--port", str(stack.api_port)], env)
        for component in ("scheduler", "dag-processor", "triggerer"):
            _spawn(stack, component, [_bin("airflow"), component], env)
        _spawn_workers(stack, env, names)
        _wait_up(stack, timeout)
        _spawn_supervisor(stack, env)
    except BaseException as err:
        failed = _failed_components(stack)
        say(f"the stack did not start ({failed or err}): stopping everything it started")
        stop(home, say=say)
        raise RuntimeError(
            f"stack {name} did not start: {failed or err}. Every component it started is stopped; the logs "
            f"are in {home / 'logs'}"
        ) from err
    say(_up(home))
    return stack


def _ports_free(base: int, count: int) -> list[int]:
    """``count`` ports from ``base``, each of them free now (a taken one is named, not skipped)."""
    ports = list(range(base, base + count))
    for port in ports:
        if not bindable(port):
            raise RuntimeError(
                f"port {port} (of {base}..{base + count - 1}, the stack's ports) is taken: choose another --port-base"
            )
    return ports


def _wait_up(stack: Stack, timeout: float) -> None:
    _wait_http(
        f"{stack.mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1", "the MLflow server", timeout,
        auth=("admin", stack.secrets["mlflow_password"]), alive=lambda: _failed_components(stack),
    )  # fmt: skip
    _wait_http(
        f"http://127.0.0.1:{stack.api_port}/api/v2/monitor/health", "Airflow", timeout, _scheduler_healthy,
        alive=lambda: _failed_components(stack),
    )  # fmt: skip


def _failed_components(stack: Stack) -> str:
    """The components that exited, each with the last line of its log: '' while all of them run."""
    dead = []
    for label, pid in stack.pids.items():
        if _members(pid):
            continue
        dead.append(f"{label} exited ({_last_line(stack, label)})")
    return "; ".join(dead)


def resume(home: Path, *, say: Any = print, timeout: float = 240) -> Stack:
    """Start a stopped (or crashed) stack again on its databases, queues and folders, as they were.

    Components come up in dependency order: the MLflow server, then the API server (the workers' tasks and
    the scheduler talk to it: a task started before it listens fails on ``Connection refused`` and spends a
    retry), then the scheduler, dag-processor and triggerer, then the workers. A task orphaned by the crash
    is failed by the scheduler once its heartbeat is older than the timeout and retried; its trainer resumes
    the same MLflow run from the last checkpoint.
    """
    home = home.resolve()
    stop(home, say=lambda _: None, grace=5.0)  # whatever survived the crash goes first: two schedulers would fight
    stack = Stack.load(home)
    env = {**os.environ, **stack.env()}
    say(f"MLflow tracking server on {stack.mlflow_url} (databases kept)")
    _spawn_mlflow(stack)
    _wait_http(
        f"{stack.mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1", "the MLflow server", timeout,
        auth=("admin", stack.secrets["mlflow_password"]),
    )  # fmt: skip
    _spawn(stack, "api-server", [_bin("airflow"), "api-server", "--port", str(stack.api_port)], env)
    _wait_http(f"http://127.0.0.1:{stack.api_port}/api/v2/monitor/health", "the Airflow API server", timeout)
    for component in ("scheduler", "dag-processor", "triggerer"):
        _spawn(stack, component, [_bin("airflow"), component], env)
    _spawn_workers(stack, env, stack.workers)
    _wait_http(f"http://127.0.0.1:{stack.api_port}/api/v2/monitor/health", "Airflow", timeout, _scheduler_healthy)
    _spawn_supervisor(stack, env)
    say(_up(home, " again"))
    return stack


def _spawn_workers(stack: Stack, env: dict[str, str], names: list[str]) -> None:
    for i, worker in enumerate(names):
        port = stack.worker_log_ports[i] if i < len(stack.worker_log_ports) else free_port(8793 + 10 * i)
        worker_env = {**env, "AIRFLOW_MLOPS_WORKER": worker, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port)}
        pidfile = stack.home / f"worker-{worker}.pid"
        pidfile.unlink(missing_ok=True)  # a crashed worker's pid file would stop the new one from starting
        _spawn(stack, f"worker-{worker}", [
            _bin("airflow"), "celery", "worker", "--celery-hostname", f"{worker}@%h",
            "--pid", str(pidfile), "--concurrency", str(WORKER_CONCURRENCY),
        ], worker_env)  # fmt: skip


def restart(stack: Stack, label: str) -> None:
    """Start one component again: the scheduler, the API server, a worker (``worker-w1``)... one taken down by
    :func:`stop_component` included (the supervisor looks after it again from then on).

    Whatever the crashed component left in its process group is stopped first, as a supervisor (systemd's
    control group, a Kubernetes container restart) would: a ``kill -9`` of the scheduler alone leaves its
    forked health-check server alive, holding its port ("Address already in use" for the new one) and a
    copy of the database connection of the transaction it was in. The new scheduler picks runs with ``SKIP
    LOCKED``: seen here, two backfill runs the killed scheduler was handling were not scheduled again for
    25 min, until the leftover was gone. ``stack`` is brought up to date with the state on disk."""
    with _locked(stack.home):
        current = Stack.load(stack.home)
        _restart(current, label)
    stack.__dict__.update(current.__dict__)


def stop_component(stack: Stack, label: str, sig: int = signal.SIGKILL) -> None:
    """Take one component down on purpose (a maintenance window, an outage drill): its whole process group gets
    ``sig`` (SIGKILL by default: an abrupt outage), and the supervisor leaves it down until :func:`restart`."""
    with _locked(stack.home):
        current = Stack.load(stack.home)
        if label not in current.pids:
            raise ValueError(f"the stack has no component {label!r} (it has {', '.join(current.pids)})")
        if label not in current.down:
            current.down.append(label)
            current.save()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(current.pids[label], sig)
        from airflow_mlops.tools.waiting import poll

        poll(lambda: not _members(current.pids[label]), timeout=30, every=0.2, what=f"{label} did not stop")
    stack.__dict__.update(current.__dict__)


@contextlib.contextmanager
def _locked(home: Path) -> Any:
    import fcntl

    with (home / LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _restart(stack: Stack, label: str) -> None:
    """:func:`restart` on the state as loaded, with the lock held."""
    old = stack.pids.get(label)
    if old is not None and _members(old):
        _stop_group(old, 5.0)
    if label in stack.down:
        stack.down.remove(label)
    env = {**os.environ, **stack.env()}
    if label == "mlflow":
        _spawn_mlflow(stack)
    elif label == "api-server":
        _spawn(stack, label, [_bin("airflow"), "api-server", "--port", str(stack.api_port)], env)
    elif label in ("scheduler", "dag-processor", "triggerer"):
        _spawn(stack, label, [_bin("airflow"), label], env)
    elif label.startswith("worker-") and label.removeprefix("worker-") in stack.workers:
        _spawn_workers(stack, env, [label.removeprefix("worker-")])
    else:
        raise ValueError(f"cannot restart {label!r}")


def _alive(pid: int) -> bool:
    """Whether a component's main process (the leader of its process group) still runs."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE and os.getpgid(pid) == pid
    except (psutil.NoSuchProcess, ProcessLookupError):
        return False


def _spawn_supervisor(stack: Stack, env: dict[str, str]) -> None:
    _spawn(stack, SUPERVISOR, [_bin("airflow-mlops"), "stack", "supervise", "--home", str(stack.home)], env)


def supervise(home: Path, *, every: float = SUPERVISE_EVERY, say: Any = None) -> None:
    """The stack's supervisor (``start`` and ``resume`` run it as a process of its own): every ``every`` seconds,
    each component whose main process is gone, and that was not taken down on purpose, is started again, with
    whatever it left in its process group stopped first. One line per start in ``logs/supervisor.log``: which
    component, its old and new process, and the last line of its log (why it ended). A component that keeps
    exiting is started again after 2, 4, 8 ... 60 s. The supervisor ends when the stack is stopped or replaced
    (the state no longer names it). Its lines go to ``say`` (stdout, flushed, when not given)."""
    home = home.resolve()
    born = time.monotonic()
    delay: dict[str, float] = {}
    started: dict[str, float] = {}
    next_try: dict[str, float] = {}

    emit = say or functools.partial(print, flush=True)

    def note(msg: str) -> None:
        emit(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {msg}")

    note(f"supervising the stack in {home} (pid {os.getpid()})")
    while True:
        with contextlib.suppress(ChildProcessError):  # the components it started and that ended: reaped
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        with _locked(home):
            stack = Stack.load(home)
            mine = stack.pids.get(SUPERVISOR)
            if mine != os.getpid() and (mine is not None or time.monotonic() - born > 30):
                note("the stack was stopped or started again without this supervisor: done")
                return
            for label, pid in list(stack.pids.items()):
                now = time.monotonic()
                if label == SUPERVISOR or label in stack.down or _alive(pid) or now < next_try.get(label, 0.0):
                    continue
                why = _last_line(stack, label)
                _restart(stack, label)
                recent = now - started.get(label, -STEADY) < STEADY
                delay[label] = min(2 * delay.get(label, RESTART_DELAY), RESTART_MAX) if recent else RESTART_DELAY
                started[label], next_try[label] = now, now + delay[label]
                note(
                    f"{label} (pid {pid}) exited; started again as pid {stack.pids[label]}. From its log: {why} "
                    f"(next start no sooner than {delay[label]:.0f} s)"
                )  # fmt: skip
        time.sleep(every)


def _last_line(stack: Stack, label: str) -> str:
    """Why a component ended, from its log: the last exception line of its last 200 lines (a traceback's
    ``sqlalchemy.exc.OperationalError: ...``, not the link SQLAlchemy prints under it), else its last line."""
    import re

    lines = _tail(_log(stack.home, label))
    for line in reversed(lines[-200:]):
        if re.match(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", line):
            return line[:300]
    return lines[-1][:300] if lines else "no log"


def stop(home: Path, *, say: Any = print, grace: float = 30.0) -> None:
    """Stop every process the stack started: workers first (they finish what they run), the API server last.

    Each component was started as the leader of its own process group, and its children (Celery's pool,
    the task supervisors, the scheduler's executor processes) stay in that group: the whole group is
    signalled, SIGTERM first, SIGKILL after ``grace`` seconds. (Process titles are rewritten by Airflow and
    Celery, so neither names nor environments identify them reliably; groups do.)
    """
    home = home.resolve()
    with _locked(home):  # the supervisor is never half-way through a start now
        stack = Stack.load(home)
        if SUPERVISOR in stack.pids:  # first: it would start again what is stopped next
            _stop_group(stack.pids.pop(SUPERVISOR), 5.0)
        order = sorted(stack.pids, key=lambda k: (k == "api-server", k == "mlflow", not k.startswith("worker")))
        for label in order:
            _stop_group(stack.pids[label], grace)
        for group in stack.groups:  # what a component killed and restarted left behind
            _stop_group(group, 5.0)
        stack.pids, stack.groups, stack.down = {}, [], []
        stack.save()
    say("stack stopped: no process left running")


def _members(group: int) -> list[int]:
    import psutil

    members = []
    for pid in psutil.pids():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == group and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                members.append(pid)
    return members


def _stop_group(group: int, grace: float) -> None:
    """SIGTERM a process group, SIGKILL what is left after ``grace`` seconds, and wait (10 s at most) until
    none of its processes is left."""
    from airflow_mlops.tools.waiting import poll

    def gone() -> bool:
        return not _members(group)

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        poll(gone, timeout=grace, every=0.5, what=f"process group {group} did not stop")
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        poll(gone, timeout=10, every=0.2, what=f"process group {group} did not stop")


def status(home: Path, *, recent: int = 5) -> tuple[int, str]:
    """What ``airflow-mlops stack status`` prints, and its exit code: each component with its process and
    whether it runs, was taken down on purpose (``stop_component``: left down until ``restart``) or exited;
    whether the supervisor runs; its last ``recent`` starts (``logs/supervisor.log``). 0: every component and
    the supervisor run; 1: something does not (the text says what, and the command that starts it again); 2:
    no stack in ``home``."""
    from airflow_mlops.tables import format_table

    home = home.resolve()
    if not (home / STATE).exists():
        return 2, f"no stack in {home} (no {STATE}): airflow-mlops stack start --home {home} starts one"
    stack = Stack.load(home)
    if not stack.pids:
        return 1, f"the stack in {home} is stopped: airflow-mlops stack start --home {home} starts it again"
    rows, bad = [], []
    for label, pid in stack.pids.items():
        state = "running" if _alive(pid) else "down (on purpose)" if label in stack.down else "exited"
        rows.append((label, str(pid), state))
        if state != "running":
            bad.append(label)
    lines = [format_table(rows, ("component", "pid", "state")), "",
             f"Airflow: http://127.0.0.1:{stack.api_port}   MLflow: {stack.mlflow_url}"]  # fmt: skip
    if SUPERVISOR in bad:
        lines.append(
            "the supervisor is not running: a component that exits is not started again; "
            f"airflow-mlops stack start --home {home} starts it again (with any component that is not running)"
        )
    elif bad:
        lines.append(
            f"not running: {', '.join(bad)} (the supervisor starts again what exited within seconds; what was taken "
            f"down on purpose stays down until airflow-mlops stack start --home {home})"
        )
    starts = [ln for ln in _tail(_log(home, SUPERVISOR)) if " exited; " in ln]
    if starts:
        lines += ["", f"last starts by the supervisor ({_log(home, SUPERVISOR)}):", *starts[-recent:]]
    return (1 if bad else 0), "\n".join(lines)


def run_stack_demo(
    home: Path, *, name: str = "mlops_demo_stack", timeout: float = 1800, redis_db: int = 5,
    port_base: int | None = None, dags_folder: Path | None = None,
) -> int:  # fmt: skip
    """``airflow-mlops demo --stack celery``: the embedded demo's story, through the production stack."""
    from airflow_mlops.tools.demo import DEMO_DRIFT_FROM, generate
    from airflow_mlops.tools.quickstart import drive_demo, summary

    home = home.resolve()
    started = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {msg}", flush=True)

    if home.exists():
        with contextlib.suppress(Exception):
            stop(home, say=say)
        shutil.rmtree(home)
    home.mkdir(parents=True)
    files = generate(str(home / "data"))
    say(f"generated {len(files)} daily partitions under {home / 'data'} (drift injected from {DEMO_DRIFT_FROM})")
    try:
        stack = start(home, name=name, say=say, redis_db=redis_db, port_base=port_base, dags_folder=dags_folder)
        drive_demo(home / "logs" / "setup.log", timeout, say)
        text = summary(home, explore=[
            f"  Airflow UI:  http://127.0.0.1:{stack.api_port} (start it again: airflow-mlops stack start --home {home})",
            f"  MLflow UI:   {stack.mlflow_url} (user admin; the password is in {home / STATE})",
            f"  Task logs:   {home / 'airflow' / 'logs'}; component logs: {home / 'logs'}",
        ])  # fmt: skip
    finally:
        say("stopping the stack")
        stop(home, say=say)
    print(text)
    return 0


ACTIONS = ("start", "stop", "status", "supervise")
ACTIONS_HELP = (
    "status: each component and the supervisor, running, exited or taken down (exit code 0 when all run, 1 when "
    "not, 2 without a stack); supervise: start again any component that exits (start runs it in the background; "
    "its log: <home>/logs/supervisor.log)"
)


def add_options(parser: Any, name: str) -> None:
    """What keeps a stack apart from its neighbours on one machine (``stack start``, ``demo --stack celery``)."""
    parser.add_argument("--name", default=name, help=f"prefix of its PostgreSQL databases (default {name})")
    parser.add_argument(
        "--redis-db", type=int, default=5,
        help="its Redis database (default 5); one that holds another owner's keys is refused, never flushed",
    )  # fmt: skip
    parser.add_argument(
        "--port-base", type=int,
        help="its ports, from this one up (API, MLflow, scheduler health, triggerer and worker log servers); "
        "default: the first free ones from 8280, 5280, 8974, 8794 and 8793",
    )  # fmt: skip
    parser.add_argument(
        "--dags-folder", type=Path, help="the DAGs folder (default: the shipped one, from the installed package)"
    )


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="airflow-mlops stack", description=__doc__)
    parser.add_argument("action", choices=ACTIONS, help=ACTIONS_HELP)
    parser.add_argument("--home", default=".stack")
    add_options(parser, "mlops_stack")
    parser.add_argument(
        "--fresh", action="store_true",
        help="start over on empty databases (the default starts a stack that ran in --home again, as it was)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.action == "start":
        home = Path(args.home)
        if (home / STATE).exists() and not args.fresh:
            print(f"starting the stack in {home} again on its databases (--fresh starts over)")
            stack = resume(home)
        else:
            stack = start(
                home, name=args.name, redis_db=args.redis_db, port_base=args.port_base, dags_folder=args.dags_folder
            )
        print(json.dumps({"airflow": f"http://127.0.0.1:{stack.api_port}", "mlflow": stack.mlflow_url,
                          "state": str(stack.home / STATE)}))  # fmt: skip
        return 0
    if args.action == "status":
        code, text = status(Path(args.home))
        print(text)
        return code
    if args.action == "supervise":
        supervise(Path(args.home))
        return 0
    stop(Path(args.home))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
