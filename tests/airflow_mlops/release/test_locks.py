"""The promotion lock under contention and crashes, on both backends: an fcntl lock beside a local MLflow
store, and a PostgreSQL advisory lock (the machine's server, database ``test``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from airflow_mlops.errors import MlopsError
from airflow_mlops.release import locks

pytestmark = pytest.mark.slow  # processes fight over the lock
PG = os.environ.get("MLOPS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["file", "postgres"])
def backend(request, tmp_path):
    """(tracking URI, lock URI) of one backend."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    if request.param == "file":
        return store, None
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        psycopg2.connect(PG, connect_timeout=5).close()
    except psycopg2.Error as err:  # the machine runs PostgreSQL; say so plainly where it does not
        pytest.fail(f"PostgreSQL at {PG} is needed for the advisory-lock tests: {err}")
    return "http://mlflow.invalid:5000", PG


HOLDER = textwrap.dedent(
    """
    import json, os, sys, time
    from airflow_mlops.release import locks
    tracking, lock_uri, name, log, rounds = sys.argv[1], sys.argv[2] or None, sys.argv[3], sys.argv[4], int(sys.argv[5])
    for i in range(rounds):
        with locks.promotion_lock(tracking, name, lock_uri=lock_uri, wait=120) as check:
            with open(log, "a") as f:
                f.write(json.dumps({"pid": os.getpid(), "event": "enter"}) + "\\n")
            check()
            with open(log, "a") as f:
                f.write(json.dumps({"pid": os.getpid(), "event": "exit"}) + "\\n")
    """
)


def test_two_processes_never_hold_the_lock_together(backend, tmp_path):
    tracking, lock_uri = backend
    log = tmp_path / "log.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", HOLDER, tracking, lock_uri or "", "reg", str(log), "40"])
        for _ in range(2)
    ]
    assert [p.wait(300) for p in procs] == [0, 0]  # no crash on contention
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(events) == 2 * 2 * 40
    for enter, leave in zip(events[::2], events[1::2], strict=True):  # strictly enter/exit pairs: one holder
        assert (enter["event"], leave["event"], enter["pid"]) == ("enter", "exit", leave["pid"])


KEEPER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from airflow_mlops.release import locks
    with locks.promotion_lock(sys.argv[1], "reg", lock_uri=sys.argv[2] or None, wait=10):
        Path(sys.argv[3]).write_text("held")
        time.sleep(600)
    """
)


def test_a_killed_holder_does_not_block_the_next_one(backend, tmp_path):
    """kill -9 of the holder: the next process gets the lock as soon as the holder is gone, not after a TTL."""
    tracking, lock_uri = backend
    held = tmp_path / "held"
    keeper = subprocess.Popen([sys.executable, "-c", KEEPER, tracking, lock_uri or "", str(held)])
    try:
        for _ in range(600):
            if held.exists() or keeper.poll() is not None:
                break
            time.sleep(0.1)  # polling for a state the other process reaches
        assert held.read_text() == "held"
        with pytest.raises(locks.PromotionBusy, match=r"the champion of reg is locked by .*; waited 1 s"):
            with locks.promotion_lock(tracking, "reg", lock_uri=lock_uri, wait=1):
                pass
        os.kill(keeper.pid, signal.SIGKILL)
        keeper.wait(30)
        with locks.promotion_lock(tracking, "reg", lock_uri=lock_uri, wait=60) as check:
            check()
    finally:
        if keeper.poll() is None:
            keeper.kill()


def test_a_remote_store_without_a_lock_database_is_refused_with_the_fix(monkeypatch):
    monkeypatch.delenv(locks.UNSAFE_ENV, raising=False)
    with pytest.raises(MlopsError, match=r'extra "lock_uri"'):
        with locks.promotion_lock("https://mlflow.example.com", "reg"):
            pass


def test_the_lock_is_reentrant_within_a_thread(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with locks.promotion_lock(store, "reg", wait=1) as outer:
        with locks.promotion_lock(store, "reg", wait=1) as inner:  # would wait for itself otherwise
            assert inner is outer
    assert Path(tmp_path / ".mlops-locks").is_dir()


def test_a_busy_promotion_from_the_cli_prints_one_line_and_fails(mlflow_uri, capsys):
    from airflow_mlops.tools.cli import main
    from airflow_mlops.tracking import registry

    registry.client()  # the registry exists (the CLI names one that does not, and creates none)
    capsys.readouterr()  # MLflow's lines as it sets the store up

    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with locks.promotion_lock(mlflow_uri, "reg", wait=5):
            held.set()
            done.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        code = main(["promote", "--model", "reg", "--version", "1", "--reason", "by hand", "--wait", "1"])
    finally:
        done.set()
        holder.join(30)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert err.startswith("promote refused: the champion of reg is locked by ")
