"""Helpers for running DAGs with dag.test() and reading what they left behind."""

from __future__ import annotations

import datetime as dt
from typing import Any

# A user-supplied name that would be markup if a page did not escape it, and how an escaped page shows it
HOSTILE = "<script>alert('x')</script>\"'"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&#34;&#39;"


def wait_for(what: str, condition: Any, timeout: float, every: float = 2.0) -> Any:
    """Poll ``condition`` until it returns something truthy (a state to reach, not an ordering of threads)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def runs_in_db(db_url: str, dag_id: str) -> list[dict]:
    """A DAG's runs (run_id, state, dates; oldest first) read from a running Airflow's metadata DB, where
    ``airflow dags list-runs`` reads them, without starting a Python process that imports Airflow (2-3 s of
    CPU per poll, every few seconds, while the tests wait for runs). Works while the API server is down."""
    import sqlalchemy as sa

    args = {"timeout": 30} if db_url.startswith("sqlite") else {"connect_timeout": 10}
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool, connect_args=args)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT run_id, state, logical_date, start_date, end_date FROM dag_run WHERE dag_id = :dag_id "
                    "ORDER BY id"
                ),
                {"dag_id": dag_id},
            )
            return [dict(r._mapping) for r in rows]
    finally:
        engine.dispose()


def trainers(variable: str, value: str) -> list:
    """The live trainer processes whose environment has ``variable`` set to ``value``: one test's own (the
    suite runs on two workers, and other tests train too). A killed trainer whose parent died too can linger
    as a zombie until init reaps it, and does not count."""
    import psutil

    def ours(p: psutil.Process) -> bool:
        try:
            return p.environ().get(variable) == value
        except psutil.Error:
            return False

    return [
        p for p in psutil.process_iter(["pid", "cmdline", "status"])
        if "airflow_mlops.model.training" in " ".join(p.info.get("cmdline") or [])
        and p.info.get("status") != psutil.STATUS_ZOMBIE and ours(p)
    ]  # fmt: skip


def drop_stack_data(stack: Any) -> None:
    """What a test's stack keeps after ``stack stop`` (for a user to resume it): its PostgreSQL databases and
    its Redis database. Dropped at the end of the test, so the suite leaves the services as it found them."""
    import psycopg2
    import redis

    conn = psycopg2.connect(f"{stack.pg}/postgres", connect_timeout=10)
    conn.autocommit = True
    with conn.cursor() as cur:
        for db in stack.databases:
            cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    conn.close()
    redis.Redis.from_url(f"{stack.redis}/{stack.redis_db}").flushdb()


def utc(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)


def banned_imports() -> list[str]:
    """The modules no DAG file may import at parse time: ruff's banned-module-level-imports, the one list."""
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    return config["tool"]["ruff"]["lint"]["flake8-tidy-imports"]["banned-module-level-imports"]


def spec_dagbag(name: str, spec_root: Any) -> Any:
    """A folder of specs as Airflow parses it: compiled by the bundle, one DAG file per spec."""
    from airflow.dag_processing.dagbag import DagBag

    from airflow_mlops.pipeline.bundle import PipelineSpecBundle

    bundle = PipelineSpecBundle(name=name, path=str(spec_root))
    bundle.initialize()
    return DagBag(str(bundle.path), bundle_path=bundle.path, bundle_name=name)


def pipelines_bag() -> Any:
    """tests/dag_bundle/pipelines, the test specs (bundle "test-pipelines")."""
    from pathlib import Path

    return spec_dagbag("test-pipelines", Path(__file__).resolve().parent / "dag_bundle" / "pipelines")


def run_dag(
    dag: Any, logical_date: str | None = None, conf: dict | None = None
) -> tuple[Any, dict[str, str]]:
    """Run one DAG run in-process; return the run and {task_id: state}."""
    run = dag.test(logical_date=utc(logical_date) if logical_date else None, run_conf=conf)
    return run, {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def xcom(dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
    from airflow_mlops.tools.quickstart import xcom_value

    return xcom_value(dag_id, run_id, task_id, key)


def dag_runs(dag_id: str) -> list[Any]:
    from airflow_mlops.tools.quickstart import dag_runs as runs

    return runs(dag_id)


def versions(name: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    c = MlflowClient()
    try:
        found = c.search_model_versions(f"name = '{name}'")
    except Exception:
        return []
    return [c.get_model_version(name, v.version) for v in sorted(found, key=lambda v: int(v.version))]


def doc_excerpts(name: str) -> dict[str, str]:
    """Program output quoted in README.md and docs/*.md under ``<!-- excerpt: NAME -->`` (the fenced block right
    after the marker), by file: the tests compare each with what the program prints now."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(rf"<!-- excerpt: {re.escape(name)} -->\n```[a-z]*\n(.*?)\n```", re.S)
    found = {}
    for path in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for block in pattern.findall(path.read_text()):
            found[str(path.relative_to(root))] = block
    assert found, f"no excerpt {name!r} in README.md or docs/"
    return found


class RecordingNotifier:
    """An alert route of kind ``notifier`` for tests: each alert it gets (``context["mlops_alert"]``) is appended
    to ``path`` (default: ``$MLOPS_TEST_ALERTS``) as one JSON line."""

    def __init__(self, path: str | None = None) -> None:
        import os

        self.path = path or os.environ["MLOPS_TEST_ALERTS"]

    def notify(self, context: dict) -> None:
        import json

        with open(self.path, "a") as fh:
            fh.write(json.dumps(context["mlops_alert"]) + "\n")


def recorded_alerts(path: Any) -> list[dict]:
    import json
    from pathlib import Path

    file = Path(path)
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []


def numbers_as_text(df: Any, column: str = "monthly_charges") -> Any:
    """``column`` as text, as a CSV-fed upstream writes it; three rows with a thousands separator."""
    text = df[column].map(lambda v: f"{v:.2f}")
    text.iloc[[3, 10, 20]] = "15,765.11"
    return df.assign(**{column: text})


def damage_a_data_page(path: Any) -> None:
    """Zero a stretch of a Parquet file's first data page, its footer intact (metadata checks still pass)."""
    raw = bytearray(path.read_bytes())
    raw[200:4000] = bytes(3800)
    path.write_bytes(bytes(raw))
