"""The stack is a good neighbour: its own databases, Redis database and ports; a failed start leaves nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import drop_stack_data

pytestmark = [pytest.mark.slow, pytest.mark.stack, pytest.mark.timeout(600)]
REDIS = "redis://127.0.0.1:6379"


def _redis(db: int):
    import redis

    return redis.Redis.from_url(f"{REDIS}/{db}")


def test_a_redis_database_of_someone_else_is_refused_and_left_as_it_is(tmp_path):
    """A Redis database that holds keys no stack of this name wrote is not flushed: the start is refused
    before anything runs, naming the database and a free one."""
    from airflow_mlops.tools import stack as stack_tools

    neighbour = _redis(13)
    neighbour.flushdb()
    neighbour.set("their-queue", "precious")
    try:
        with pytest.raises(RuntimeError, match=r"Redis database 13 .* holds 1 key\(s\) that no stack named 'mlops_ci_neighbour' wrote.*--redis-db"):
            stack_tools.start(tmp_path / "home", name="mlops_ci_neighbour", redis_db=13, say=lambda _: None)
        assert neighbour.get("their-queue") == b"precious"
        assert not (tmp_path / "home" / stack_tools.STATE).exists()  # nothing started, nothing to stop
    finally:
        neighbour.flushdb()


def test_a_failed_start_stops_everything_it_started_and_names_the_component(tmp_path):
    """From a folder outside the repository, with its own name, Redis database and ports: the scheduler of
    this stack cannot start (an executor that does not exist); the start fails naming it, and no process of
    the stack is left."""
    import psutil

    from airflow_mlops.tools import stack as stack_tools

    home = tmp_path / "home"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    code = (
        "import sys; from pathlib import Path; from airflow_mlops.tools import stack;"
        f"stack.start(Path({str(home)!r}), name='mlops_ci_failstart', redis_db=12, port_base=18400, timeout=180,"
        " settings={'AIRFLOW__CORE__EXECUTOR': 'no_such_module.NoSuchExecutor'})"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=outside, capture_output=True, text=True, timeout=500)
    state = stack_tools.Stack.load(home)
    drop_stack_data(state)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: stack mlops_ci_failstart did not start: "), done.stderr[-3000:]
    assert "scheduler exited" in last
    assert "Every component it started is stopped" in last
    assert state.pids == {}
    assert state.api_port == 18400
    left = [p for p in psutil.process_iter(["cmdline", "cwd"]) if str(home) in " ".join(p.info.get("cmdline") or [])]
    assert left == []
    assert not Path(outside / "dags").exists()  # nothing was looked for, or written, in the working directory
