"""The embedded default, end to end: Airflow (SQLite + LocalExecutor) and MLflow (sqlite store) on this machine.

``airflow-mlops demo`` generates the demo data, starts ``airflow standalone``, backfills the demo pipeline's
training DAG over its first window and its drift monitor over the days around the injected drift, waits
for the retraining runs that drift triggers, prints a summary and stops every process it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from airflow_mlops.tools.airflow_cli import SQLITE_CONNECT_ARGS_SETTING, run_airflow
from airflow_mlops.tools.airflow_cli import bin_path as _bin

PIPELINE = "demo_churn"
TRAIN_FROM = "2026-01-11"  # the weekly interval [2026-01-11, 2026-01-18): window 2026-01-04 .. 2026-01-17
MONITOR_FROM, MONITOR_TO = "2026-01-20", "2026-01-23"  # partitions 20..23; drift is injected from the 22nd
RETRAIN_BY_HAND = "2026-01-24"  # by hand, for the pending drift report: the window ending 01-24 (21..23)
SCORE_FROM, SCORE_TO = "2026-01-26", "2026-01-27"  # daily intervals: partitions 25 and 26
FINISHED = {"success", "failed"}


def repo_dags_folder() -> Path:
    """The shipped DAGs folder (``dags/``: the loader and ``pipelines/*.yaml``), installed as the package
    ``airflow_mlops.dags``: the same folder from any working directory, in an editable install or a wheel."""
    import importlib.util

    spec = importlib.util.find_spec("airflow_mlops.dags")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    found = [Path(f) for f in folders if (Path(f) / "pipelines").is_dir()]
    if not found:
        raise FileNotFoundError(
            "the shipped DAGs folder (airflow_mlops.dags, with pipelines/) is not installed: reinstall "
            "airflow-mlops, or pass the folder explicitly (--dags-folder)"
        )
    return found[0].resolve()


def bindable(port: int) -> bool:
    """Whether a server could listen on ``port`` now. As a server binds (``SO_REUSEADDR``, which uvicorn,
    gunicorn and ``http.server`` set): a port whose last server just stopped keeps its closed connections in
    TIME_WAIT for a minute, and a plain bind was refused there ("port 18300 is taken" on a stack started right
    after another stopped); a port something listens on is refused either way."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(preferred: int) -> int:
    """``preferred`` where a server could listen on it, else a port the system picks."""
    if bindable(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TASKS_AT_ONCE = 4  # the embedded default's parallelism (the stack: its workers times their concurrency)
THREAD_SETTINGS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_settings(tasks_at_once: int = TASKS_AT_ONCE) -> dict[str, str]:
    """Compute threads per task process (torch's and scikit-learn's OpenMP, numpy's BLAS), so that the tasks
    running at once share this machine's cores instead of each starting a thread per core: trainings side by
    side with a pool of threads per core each spend their time waiting for cores the others hold (measured on 2
    cores: three trainings, 74 s with a thread per core each, 28 s with one). Empty where one of them is set
    already: the user's choice is kept."""
    if any(name in os.environ for name in THREAD_SETTINGS):
        return {}
    threads = str(max(1, len(os.sched_getaffinity(0)) // tasks_at_once))
    return dict.fromkeys(THREAD_SETTINGS, threads)


def demo_env(
    home: Path, api_port: int, mlflow_port: int = 5000, dags_folder: Path | None = None
) -> dict[str, str]:
    """Every setting of the embedded default, as environment variables (set before Airflow is imported)."""
    from airflow_mlops.pipeline import bundle_config

    dags = str((dags_folder or repo_dags_folder()).resolve())
    bundles = [
        # hand-written DAG files
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": dags},
        },
        # the YAML specs: one generated DAG file per spec, so a broken spec breaks only its own pipeline
        bundle_config(Path(dags) / "pipelines", refresh_interval=30),
    ]
    mlflow_db = home / "mlflow" / "mlflow.db"
    return {
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow' / 'airflow.db'}",
        # a writer waits up to 30 s for SQLite's one write lock (default 5 s: on a busy machine the scheduler's
        # loop held it longer, and a CLI command failed with "database is locked")
        SQLITE_CONNECT_ARGS_SETTING[0]: SQLITE_CONNECT_ARGS_SETTING[1],
        # Airflow's LocalExecutor, its workers forked with the tasks' libraries loaded (tools.preload)
        "AIRFLOW__CORE__EXECUTOR": "airflow_mlops.tools.preload.LocalExecutor",
        # the default (32 worker processes) is far too many for 2 cores
        "AIRFLOW__CORE__PARALLELISM": str(TASKS_AT_ONCE),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": dags,
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "airflow" / "dag_bundles"),
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{api_port}/execution/",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        # After a crash of the whole Airflow (standalone starts its parts at once), the scheduler queues the
        # retry of a killed task before the API server listens again: the task's first call to the execution
        # API was refused and the try failed (default: 5 attempts over about 31 s). These let a task wait for
        # an API server that is still starting, for several minutes.
        "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "20",
        "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN": "1",
        "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX": "20",
        # a task whose process died with the rest (kill -9, a crash) is failed, and retried, after this long
        # without a heartbeat (default 300 s), and a restarted scheduler adopts or resets the tasks of the
        # executor it replaced at this interval (default 300 s)
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "60",
        "AIRFLOW_VAR_MLOPS_DATA_ROOT": str(home / "data"),
        "AIRFLOW_VAR_MLOPS_ARTIFACT_ROOT": str(home / "artifacts"),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(
            {
                "conn_type": "mlflow",
                # no ui_url: the embedded default runs no MLflow UI; links open the plugin's MLflow pages in
                # the Airflow API server (behind its login)
                "extra": {"tracking_uri": f"sqlite:///{mlflow_db}"},
            }
        ),
        "MLFLOW_TRACKING_URI": f"sqlite:///{mlflow_db}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "WHYLOGS_NO_ANALYTICS": "True",
        "GIT_PYTHON_REFRESH": "quiet",
        **thread_settings(),
        # airflow standalone starts its components as `airflow ...` from PATH: use this environment's.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }


def stop_process_tree(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the whole tree (standalone leaves scheduler workers behind otherwise), then SIGKILL."""
    import psutil

    try:
        parent = psutil.Process(proc.pid)
        tree = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=grace)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=5)


def _wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    from airflow_mlops.tools.waiting import poll

    url = f"http://localhost:{port}/api/v2/monitor/health"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"airflow standalone exited with code {proc.returncode}")
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(url, timeout=5) as resp:
                return json.load(resp).get("scheduler", {}).get("status") == "healthy"
        return False

    poll(healthy, timeout=timeout, every=2, what=f"Airflow was not healthy at {url}")


def dag_runs(dag_id: str) -> list[Any]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id)).all()
        session.expunge_all()
        return list(runs)


def xcom_value(dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run_id,
                XComModel.task_id == task_id,
                XComModel.key == key,
            )  # fmt: skip
        ).first()
        return XComModel.deserialize_value(row) if row is not None else None


def _wait_runs(dag_ids: list[str], expected: dict[str, int], timeout: float, say: Any) -> None:
    """Wait until each DAG has at least ``expected`` runs and none is still queued or running."""
    from airflow_mlops.tools.waiting import poll

    shown = [""]

    def finished() -> bool:
        states = {d: [str(r.state) for r in dag_runs(d)] for d in dag_ids}
        line = "  ".join(f"{d}: {sum(s in FINISHED for s in st)}/{len(st)} done" for d, st in states.items())
        if line != shown[0]:
            say(f"  {line}")
            shown[0] = line
        if not all(len(states[d]) >= expected.get(d, 0) and all(s in FINISHED for s in states[d]) for d in dag_ids):
            return False
        failed = {d: sum(s == "failed" for s in st) for d, st in states.items() if "failed" in st}
        if failed:
            raise RuntimeError(
                f"demo runs failed: {failed}; the failing task's log is under {os.environ.get('AIRFLOW_HOME')}/logs"
            )
        return True

    poll(finished, timeout=timeout, every=3, what="runs did not finish", last=lambda: shown[0])


def _days(start: str | None, end: str | None) -> str:
    """A window [start, end) as its first and last day."""
    import datetime as dt

    if not start or not end:
        return "-"
    last = dt.datetime.fromisoformat(end) - dt.timedelta(microseconds=1)
    return f"{start[:10]}..{last.date().isoformat()}"


DEMO_DAGS = ("train", "drift_monitor", "retrain", "score", "live_metrics")
SUMMARY_RECORD = "summary.json"  # in the demo's home: what the summary is rendered from


def collect_summary() -> dict[str, Any]:
    """What the demo's summary shows, as recorded by the runs themselves: each DAG run's interval, state, conf
    and the results (XComs) the summary reads, and each model version's tags and aliases. JSON-serialisable:
    the demo writes it beside its state, and docs/examples keeps the one the README's excerpt comes from."""
    from airflow_mlops.tracking import registry

    reads = {
        "score": ["score_partition"], "live_metrics": ["live_metrics"],
        "drift_monitor": ["detect_drift", "trigger_retraining"], "train": ["register_model"], "retrain": ["register_model"],
    }  # fmt: skip
    runs = []
    for kind in DEMO_DAGS:
        dag_id = f"{PIPELINE}__{kind}"
        for r in dag_runs(dag_id):
            runs.append({
                "dag": kind, "state": str(r.state), "conf": r.conf or {},
                "interval": [r.data_interval_start.isoformat(), r.data_interval_end.isoformat()]
                if r.data_interval_start else None,
                "results": {task: xcom_value(dag_id, r.run_id, task) for task in reads[kind]},
            })  # fmt: skip
    c = registry.client()
    found = c.search_model_versions(f"name = '{PIPELINE}'")
    # search results do not carry aliases: read each version
    versions = [c.get_model_version(PIPELINE, v.version) for v in sorted(found, key=lambda v: int(v.version))]
    keep = ("mlops.window_start", "mlops.window_end", "mlops.test_metrics", "mlops.promotion_decision")
    return {
        "pipeline": PIPELINE,
        "runs": runs,
        "versions": [
            {"version": v.version, "aliases": sorted(v.aliases), "tags": {k: v.tags[k] for k in keep if k in v.tags}}
            for v in versions
        ],
    }


ROLES = ("champion", "challenger", "shadow")


def _by_role(counts: dict[str, int]) -> list[tuple[str, int]]:
    """A scoring run's rows per role, champion first: the record's key order is its store's (a JSON file sorts
    them, PostgreSQL's jsonb puts the shorter first), and the summary reads the same from either."""
    return sorted(counts.items(), key=lambda kv: ROLES.index(kv[0]) if kv[0] in ROLES else len(ROLES))


def _outcome(run: dict[str, Any]) -> tuple[str, str]:
    """A run's interval and outcome, as the summary's table shows them."""
    from airflow_mlops.data.drift.scores import summary_line

    kind, results, conf = run["dag"], run["results"], run["conf"]
    interval = "-"
    if run["interval"]:
        start, end = (r[:10] for r in run["interval"])
        interval = f"{start}..{end}"
    if kind == "score":
        res = results["score_partition"]
        return interval, (
            f"{res['rows']} rows: " + ", ".join(f"{k} {v}" for k, v in _by_role(res["rows_by_model"]) if v)
            + f" (champion v{res['champion_version']}, challenger v{res['challenger_version']})"
            if res else "not scored"
        )  # fmt: skip
    if kind == "live_metrics":
        res = results["live_metrics"]
        if not res:
            return interval, "no live metrics"
        versions = sorted(res["per_version"].items(), key=lambda vm: int(vm[0]))  # v9 before v10, from any store
        return interval, ", ".join(f"v{v} roc_auc {m['roc_auc']:.4f}" for v, m in versions) + f": {res['decision']}"
    if kind == "drift_monitor":
        report = results["detect_drift"]
        outcome = summary_line(report) if report else "no report"
        trigger = results["trigger_retraining"] if report and report.get("drift") else None
        if trigger is not None:
            outcome += (
                f" -> retraining not triggered ({trigger['reason']}; report kept as pending)"
                if isinstance(trigger, dict) and trigger.get("triggered") is False
                else " -> retraining triggered"
            )  # fmt: skip
        return interval, outcome
    reg = results["register_model"]
    if kind == "retrain":
        interval = "window end " + str(conf.get("window_end", "?"))[:10]
    outcome = f"v{reg['version']} -> {reg['alias']}: {reg['reason']}" if reg else "not registered"
    reports = conf.get("drift_reports") if kind == "retrain" else None
    if reports:
        outcome = f"on {len(reports)} drift report(s): {outcome}"
    return interval, outcome


def render_summary(record: dict[str, Any]) -> str:
    """The tables of the demo's summary, from :func:`collect_summary`'s record."""
    from airflow_mlops.tables import format_table

    rows = [
        (run["dag"], interval, run["state"], outcome) for run in record["runs"] for interval, outcome in [_outcome(run)]
    ]
    vrows = [
        (
            f"v{v['version']}", ", ".join(v["aliases"]) or "-",
            _days(v["tags"].get("mlops.window_start"), v["tags"].get("mlops.window_end")),
            json.loads(v["tags"].get("mlops.test_metrics", "{}")).get("roc_auc", "-"),
            v["tags"].get("mlops.promotion_decision", ""),
        )  # fmt: skip
        for v in record["versions"]
    ]
    return "\n".join([
        "Airflow runs:", format_table(rows, ("dag", "interval", "state", "outcome")), "",
        f"MLflow model versions of {record['pipeline']!r}:",
        format_table(vrows, ("version", "aliases", "trained on", "roc_auc", "decision")),
    ])  # fmt: skip


def summary(home: Path, explore: list[str] | None = None) -> str:
    """The demo's closing summary; its record is kept as ``<home>/summary.json``."""
    record = collect_summary()
    (home / SUMMARY_RECORD).write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
    lines = ["", "=" * 78, "airflow-mlops demo: summary", "=" * 78, render_summary(record), ""]
    lines += [
        "Explore it:",
        *(explore or [
            f"  Airflow UI (shipped DAGs + plugin): airflow-mlops ui --home {home}   then open http://localhost:8080",
            f"  MLflow UI only:                     mlflow ui --backend-store-uri sqlite:///{home / 'mlflow' / 'mlflow.db'} --port 5000",
            f"  Logs of every task:                 {home / 'airflow' / 'logs'}",
        ]),
    ]  # fmt: skip
    return "\n".join(lines)


def drive_demo(log: Path, timeout: float, say: Any) -> None:
    """The demo pipeline's story, through whatever Airflow is running (embedded or the Celery stack)."""
    say(f"training: backfill {PIPELINE}__train for the week starting {TRAIN_FROM}")
    run_airflow("backfill", "create", "--dag-id", f"{PIPELINE}__train", "--from-date", TRAIN_FROM, "--to-date", TRAIN_FROM, log=log)
    _wait_runs([f"{PIPELINE}__train"], {f"{PIPELINE}__train": 1}, timeout, say)
    say(f"drift monitoring: backfill {PIPELINE}__drift_monitor for {MONITOR_FROM} .. {MONITOR_TO}")
    run_airflow(
        "backfill", "create", "--dag-id", f"{PIPELINE}__drift_monitor", "--from-date", MONITOR_FROM,
        "--to-date", MONITOR_TO, "--max-active-runs", "1", log=log,
    )  # fmt: skip
    n_monitor = 4
    _wait_runs([f"{PIPELINE}__drift_monitor"], {f"{PIPELINE}__drift_monitor": n_monitor}, timeout, say)
    say("waiting for the retraining runs that drift triggered")
    _wait_runs([f"{PIPELINE}__retrain"], {}, timeout, say)
    say(f"an engineer retrains by hand on the days before {RETRAIN_BY_HAND} (the pending report's data)")
    run_airflow(
        "dags", "trigger", f"{PIPELINE}__retrain", "--run-id", f"manual__{RETRAIN_BY_HAND}",
        "--conf", json.dumps({"window_end": f"{RETRAIN_BY_HAND}T00:00:00+00:00"}), log=log,
    )  # fmt: skip
    _wait_runs([f"{PIPELINE}__retrain"], {f"{PIPELINE}__retrain": 2}, timeout, say)
    for kind in ("score", "live_metrics"):
        what = "batch scoring with the champion (10% canary to the challenger)" if kind == "score" else (
            "live metrics per model version, as labels arrive"
        )  # fmt: skip
        say(f"{what}: backfill {PIPELINE}__{kind} for {SCORE_FROM} .. {SCORE_TO}")
        run_airflow(
            "backfill", "create", "--dag-id", f"{PIPELINE}__{kind}", "--from-date", SCORE_FROM,
            "--to-date", SCORE_TO, "--max-active-runs", "1", log=log,
        )  # fmt: skip
        _wait_runs([f"{PIPELINE}__{kind}"], {f"{PIPELINE}__{kind}": 2}, timeout, say)


def run_demo(home: Path, keep: bool = False, timeout: float = 1500) -> int:
    home = home.resolve()
    started = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {msg}", flush=True)

    if home.exists() and not keep:
        shutil.rmtree(home)
    (home / "airflow").mkdir(parents=True, exist_ok=True)
    (home / "mlflow").mkdir(parents=True, exist_ok=True)
    port = free_port(8080)
    os.environ.update(demo_env(home, port))
    log = home / "setup.log"

    from airflow_mlops.tools.demo import DEMO_DRIFT_FROM, generate

    files = generate(str(home / "data"))
    say(
        f"generated {len(files)} daily partitions under {home / 'data'} (drift injected from {DEMO_DRIFT_FROM})"
    )
    say("initialising the Airflow metadata DB (SQLite) and serialising the shipped DAGs")
    run_airflow("db", "migrate", log=log)
    run_airflow("dags", "reserialize", log=log)
    say(
        f"starting airflow standalone (LocalExecutor, parallelism 4, API on port {port}); log: {home / 'standalone.log'}"
    )
    with (home / "standalone.log").open("w") as out:
        proc = subprocess.Popen(
            [_bin("airflow"), "standalone"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_healthy(port, proc)
        say("Airflow is up")
        drive_demo(log, timeout, say)
        text = summary(home)
    finally:
        say("stopping Airflow")
        stop_process_tree(proc)
    print(text)
    say("done; no process left running")
    return 0
