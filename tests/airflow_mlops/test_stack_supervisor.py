"""The stack's supervisor, on a state file and stand-in processes (``sleep``): which components it starts again,
which it leaves alone, what it writes, and that it ends once another one is named. (The real stack's scheduler killed with ``-9`` and started
again by it: tests/stack/test_faults.py.)"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading

import pytest
from helpers import wait_for

from airflow_mlops.tools import stack as stack_tools


def _sleeper() -> int:
    return subprocess.Popen(["sleep", "600"], start_new_session=True).pid


@pytest.fixture
def supervised(tmp_path, monkeypatch):
    """A stack state naming this process as its supervisor, a dead scheduler, a running triggerer and an MLflow
    server taken down on purpose; the supervisor's loop in a thread, with each start a ``sleep`` and its lines
    kept in a list (not stdout: what a thread prints between two phases of a test reaches no capture)."""
    dead = subprocess.Popen(["true"], start_new_session=True)
    dead.wait()
    running = _sleeper()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "scheduler.log").write_text(
        "Traceback (most recent call last):\n  ...\n"
        "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) server closed the connection unexpectedly\n"
        "(Background on this error at: https://sqlalche.me/e/21/e3q8)\n"
    )
    state = stack_tools.Stack(
        home=tmp_path, pids={"supervisor": os.getpid(), "scheduler": dead.pid, "triggerer": running, "mlflow": dead.pid},
        down=["mlflow"],
    )  # fmt: skip
    state.save()
    started: list[tuple[str, int]] = []

    def start(stack, label):  # what _restart spawns, minus Airflow
        pid = _sleeper()
        started.append((label, pid))
        stack.pids[label] = pid
        stack.groups.append(pid)
        stack.save()

    monkeypatch.setattr(stack_tools, "_restart", start)
    said: list[str] = []
    loop = threading.Thread(
        target=stack_tools.supervise, args=(tmp_path,), kwargs={"every": 0.05, "say": said.append}, daemon=True
    )
    loop.start()
    try:
        yield tmp_path, started, running, dead.pid, said
    finally:
        current = stack_tools.Stack.load(tmp_path)
        current.pids["supervisor"] = 1  # another supervisor took over: this one ends
        current.save()
        loop.join(timeout=10)
        for pid in [running] + [pid for _, pid in started]:
            with contextlib.suppress(ProcessLookupError):  # one the test killed already
                os.killpg(pid, signal.SIGKILL)
    assert not loop.is_alive()


def _logged(said: list[str], n: int) -> list[str]:
    """The supervisor's first ``n`` start lines, once it has written them (each follows its start)."""

    def lines() -> list[str]:
        return [ln for ln in list(said) if " exited; " in ln]

    return wait_for(f"{n} start line(s) in the supervisor's log", lambda: len(found := lines()) >= n and found, 10, every=0.05)


def test_a_component_that_exited_is_started_again_and_the_log_says_why(supervised):
    home, started, running, dead, said = supervised
    wait_for("the scheduler to be started again", lambda: started, 10, every=0.05)
    state = stack_tools.Stack.load(home)
    assert started == [("scheduler", state.pids["scheduler"])]
    assert state.pids["triggerer"] == running  # running: left alone
    assert "mlflow" in state.down  # taken down on purpose: left down
    line = _logged(said, 1)[0]
    assert line.split(" ", 1)[1].startswith(f"scheduler (pid {dead}) exited; started again as pid {state.pids['scheduler']}.")
    assert "From its log: sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) server closed" in line


def test_a_component_that_keeps_exiting_waits_longer_each_time(supervised):
    home, started, _, _, said = supervised
    wait_for("the first start", lambda: len(started) == 1, 10, every=0.05)
    os.killpg(started[0][1], signal.SIGKILL)
    wait_for("the second start", lambda: len(started) == 2, 10, every=0.05)
    lines = _logged(said, 2)
    assert [ln.rsplit("(", 1)[1] for ln in lines] == ["next start no sooner than 2 s)", "next start no sooner than 4 s)"]


def test_status_names_what_runs_what_exited_and_what_was_taken_down(tmp_path, capsys):
    """``airflow-mlops stack status``: each component's state, the supervisor's last starts, exit code 1 while
    anything is not running and 0 once everything runs; 2 where there is no stack."""
    assert stack_tools.main(["status", "--home", str(tmp_path / "nowhere")]) == 2
    assert "no stack in" in capsys.readouterr().out
    dead = subprocess.Popen(["true"], start_new_session=True)
    dead.wait()
    sleepers = [_sleeper() for _ in range(3)]
    supervisor, triggerer, next_supervisor = sleepers
    try:
        (tmp_path / "logs").mkdir()
        (tmp_path / "logs" / "supervisor.log").write_text(
            "2026-12-07T18:00:00Z supervising the stack in /x (pid 1)\n"
            "2026-12-07T18:00:02Z scheduler (pid 7) exited; started again as pid 8. From its log: KeyError (next ...)\n"
        )
        state = stack_tools.Stack(
            home=tmp_path, api_port=8280, mlflow_port=5280, down=["mlflow"],
            pids={"supervisor": supervisor, "scheduler": dead.pid, "triggerer": triggerer, "mlflow": dead.pid},
        )  # fmt: skip
        state.save()
        assert stack_tools.main(["status", "--home", str(tmp_path)]) == 1
        out = capsys.readouterr().out
        rows = {ln.split()[0]: ln.split(None, 2)[2] for ln in out.splitlines()[2:6]}
        assert rows == {"supervisor": "running", "scheduler": "exited", "triggerer": "running", "mlflow": "down (on purpose)"}
        assert "not running: scheduler, mlflow" in out
        assert out.rstrip().endswith("scheduler (pid 7) exited; started again as pid 8. From its log: KeyError (next ...)")

        os.killpg(supervisor, signal.SIGKILL)
        state.pids = {"supervisor": supervisor, "triggerer": triggerer}
        state.down = []
        state.save()
        wait_for("the supervisor to be gone", lambda: not stack_tools._alive(supervisor), 10, every=0.05)
        assert stack_tools.main(["status", "--home", str(tmp_path)]) == 1
        assert "the supervisor is not running: a component that exits is not started again" in capsys.readouterr().out

        state.pids = {"triggerer": triggerer, "supervisor": next_supervisor}
        state.save()
        assert stack_tools.main(["status", "--home", str(tmp_path)]) == 0
        assert "not running" not in capsys.readouterr().out
    finally:
        for pid in sleepers:
            with contextlib.suppress(ProcessLookupError):  # the one the test killed
                os.killpg(pid, signal.SIGKILL)
