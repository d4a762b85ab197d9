"""airflow_mlops.tools.waiting.poll: the one way the tools wait (servers up, runs finished, processes gone)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_mlops.tools.waiting import poll


def test_poll_returns_the_first_truthy_value_after_asking_again():
    answers = iter([None, False, 0, "ready"])
    calls = []

    def check():
        calls.append(1)
        return next(answers)

    assert poll(check, timeout=5, every=0.01, what="never") == "ready"
    assert len(calls) == 4


def test_poll_gives_up_after_its_timeout_naming_what_and_the_last_thing_seen():
    with pytest.raises(TimeoutError, match=r"^the API server did not come up within 0 s \(last: connection refused\)$"):
        poll(lambda: False, timeout=0.05, every=0.01, what="the API server did not come up", last=lambda: "connection refused")


def test_an_error_in_the_check_ends_the_wait_at_once():
    calls = []

    def check():
        calls.append(1)
        raise RuntimeError("airflow standalone exited with code 1")

    with pytest.raises(RuntimeError, match="exited with code 1"):
        poll(check, timeout=30, every=0.01, what="never")
    assert len(calls) == 1


def test_a_stopped_process_group_leaves_no_process():
    """tools.stack._stop_group: SIGTERM, then SIGKILL after the grace for a member that ignores SIGTERM."""
    import os

    from airflow_mlops.tools.stack import _members, _stop_group

    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", stubborn], start_new_session=True, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "up\n"  # the SIGTERM handler is in place
    group = os.getpgid(proc.pid)
    _stop_group(group, grace=0.5)
    proc.wait(timeout=5)
    assert proc.returncode == -9  # killed: it ignored SIGTERM
    assert _members(group) == []
