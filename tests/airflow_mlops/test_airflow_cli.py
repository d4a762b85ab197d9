"""The ``airflow`` command as the tools and tests run it against a running embedded Airflow (SQLite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlops.tools import airflow_cli
from airflow_mlops.tools.airflow_cli import AirflowCommandError, create_backfill, run_airflow

FAKE = """#!{python}
import sys
from pathlib import Path

calls = Path({calls!r})
n = int(calls.read_text()) + 1 if calls.exists() else 1
calls.write_text(str(n))
outcomes = {outcomes!r}
rc, err = outcomes[min(n, len(outcomes)) - 1]
print("stdout of try", n)
print(err, file=sys.stderr)
sys.exit(rc)
"""


def _fake_airflow(tmp_path: Path, monkeypatch, outcomes: list[tuple[int, str]]) -> Path:
    """An ``airflow`` that gives the exit codes and error text of ``outcomes`` on its successive calls."""
    calls = tmp_path / "calls"
    script = tmp_path / "airflow"
    script.write_text(FAKE.format(python=sys.executable, calls=str(calls), outcomes=outcomes))
    script.chmod(0o755)
    monkeypatch.setattr(airflow_cli, "bin_path", lambda name: str(script))
    monkeypatch.setattr(airflow_cli, "LOCKED_WAIT", 0.0)  # the tries are counted, not timed
    monkeypatch.setattr(airflow_cli, "BACKFILL_WAIT", 0.0)
    return calls


def test_a_try_that_lost_sqlites_write_lock_is_run_again(tmp_path, monkeypatch):
    locked = (1, "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked")
    calls = _fake_airflow(tmp_path, monkeypatch, [locked, (0, "")])
    log = tmp_path / "log"
    assert run_airflow("variables", "set", "k", "v", log=log) == "stdout of try 2\n"
    assert calls.read_text() == "2"
    assert "database is locked" in log.read_text()  # the lost try is in the log too


def test_any_other_failure_is_raised_at_once_with_the_commands_output(tmp_path, monkeypatch):
    calls = _fake_airflow(tmp_path, monkeypatch, [(1, "airflow.exceptions.DagNotFound: Dag id nope not found")])
    with pytest.raises(AirflowCommandError, match=r"(?s)`airflow dags trigger nope` exited with 1:.*DagNotFound"):
        run_airflow("dags", "trigger", "nope")
    assert calls.read_text() == "1"


def test_a_lock_that_never_frees_gives_up_after_the_attempts(tmp_path, monkeypatch):
    calls = _fake_airflow(tmp_path, monkeypatch, [(1, "database is locked")])
    with pytest.raises(AirflowCommandError, match="database is locked"):
        run_airflow("variables", "set", "k", "v", attempts=2)
    assert calls.read_text() == "2"


def test_a_backfill_waits_for_the_dags_previous_one_to_close(tmp_path, monkeypatch):
    running = (1, "airflow.exceptions.AlreadyRunningBackfill: Another backfill is running for dag demo")
    calls = _fake_airflow(tmp_path, monkeypatch, [running, running, (0, "")])
    create_backfill("demo", "2026-01-18", "2026-01-18", timeout=30)
    assert calls.read_text() == "3"


def test_every_process_of_the_embedded_airflow_waits_for_sqlites_write_lock(tmp_path):
    """The busy timeout reaches Airflow's own engine (the setting is an import path Airflow resolves); the
    stack's PostgreSQL environment does not carry it (psycopg2 would refuse the argument)."""
    from airflow_mlops.tools.quickstart import demo_env
    from airflow_mlops.tools.stack import Stack

    (tmp_path / "airflow").mkdir()
    env = {**os.environ, **demo_env(tmp_path, 18080)}
    probe = "from airflow import settings; print(settings.engine.connect().exec_driver_sql('PRAGMA busy_timeout').scalar())"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(int(airflow_cli.SQLITE_CONNECT_ARGS["timeout"] * 1000))
    stack = Stack(home=tmp_path, api_port=1, mlflow_port=2, secrets=dict.fromkeys(
        ("fernet_key", "api_secret", "jwt_secret", "mlflow_password"), "x"))  # fmt: skip
    assert airflow_cli.SQLITE_CONNECT_ARGS_SETTING[0] not in stack.env()
