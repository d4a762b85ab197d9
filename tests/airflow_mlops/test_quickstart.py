"""The embedded default's and the stack's environment (compute threads shared among the tasks run at once) and
ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from airflow_mlops.tools.quickstart import TASKS_AT_ONCE, THREAD_SETTINGS, demo_env, free_port


@pytest.fixture
def cores(monkeypatch):
    """A 16-core machine with none of the thread settings set (the test suite sets them: tests/conftest.py)."""
    for name in THREAD_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))


def _stack_env(tmp_path) -> dict[str, str]:
    from airflow_mlops.tools.stack import Stack

    secrets = dict.fromkeys(("fernet_key", "api_secret", "jwt_secret", "mlflow_password"), "x")
    return Stack(home=tmp_path, api_port=1, mlflow_port=2, secrets=secrets).env()


def test_the_tasks_run_at_once_share_the_cores(tmp_path, cores):
    env = demo_env(tmp_path, 18080)
    assert env["AIRFLOW__CORE__PARALLELISM"] == str(TASKS_AT_ONCE) == "4"
    assert {name: env[name] for name in THREAD_SETTINGS} == dict.fromkeys(THREAD_SETTINGS, "4")  # 16 cores / 4
    stack = _stack_env(tmp_path)  # two workers of two tasks each
    assert stack["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "2"
    assert {name: stack[name] for name in THREAD_SETTINGS} == dict.fromkeys(THREAD_SETTINGS, "4")


def test_a_machine_with_fewer_cores_than_tasks_gives_each_one_thread(tmp_path, cores, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert demo_env(tmp_path, 18080)["OMP_NUM_THREADS"] == "1"


def test_the_users_own_thread_setting_is_kept(tmp_path, cores, monkeypatch):
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    env = {**os.environ, **demo_env(tmp_path, 18080)}
    assert [env.get(name) for name in THREAD_SETTINGS] == [None, None, "3"]
    assert not set(THREAD_SETTINGS) & set(_stack_env(tmp_path))


@pytest.mark.slow
def test_a_trainer_started_with_the_embedded_environment_uses_that_many_threads(tmp_path, cores, monkeypatch):
    """With four cores for four tasks, one thread each: torch's pool and every BLAS/OpenMP pool numpy and
    scikit-learn load (each would start one per core of this machine, 2 or more, without the setting)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)))
    env = {**os.environ, **demo_env(tmp_path, 18080)}
    probe = (
        "import json, torch, sklearn.ensemble; from threadpoolctl import threadpool_info; "
        "print(json.dumps([torch.get_num_threads(), sorted({p['num_threads'] for p in threadpool_info()})]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [1, [1]]


def _listener() -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def test_a_port_whose_server_just_stopped_is_free_again_and_a_listened_one_is_taken():
    """A server that closed its connections first (as one does when it stops) leaves them in TIME_WAIT for a
    minute: a server can listen there again at once, so the port is free for the stack; one that something
    listens on is named as taken."""
    from airflow_mlops.tools.stack import _ports_free

    server = _listener()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server's side closes first: its end of the connection waits in TIME_WAIT
    client.close()
    server.close()
    assert _ports_free(port, 1) == [port]
    assert free_port(port) == port
    with _listener() as busy:
        taken = busy.getsockname()[1]
        with pytest.raises(RuntimeError, match=rf"port {taken} \(of {taken}\.\.{taken}, the stack's ports\) is taken"):
            _ports_free(taken, 1)
        assert free_port(taken) != taken
