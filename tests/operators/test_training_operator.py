from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_mlops.operators.training import TrainModelOperator


class _SlowTrainer(TrainModelOperator):
    """The trainer replaced by a process that prints a line and then hangs (what on_kill must stop)."""

    def trainer_command(self, config_path: Path, result_path: Path) -> list[str]:
        code = "import time, sys; print('step 1/1000', flush=True); time.sleep(600)"
        return [sys.executable, "-c", code]


def _op(**kw) -> TrainModelOperator:
    return _SlowTrainer(task_id="t", pipeline="p", data_uri="x", target="y", model={"kind": "tabular"}, **kw)


def test_on_kill_stops_the_trainer_process(tmp_path, mlflow_uri):
    op = _op()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            op._run_trainer(tmp_path / "c.json", tmp_path / "r.json")
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while op._process is None and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = op._process.pid
    time.sleep(0.5)
    started = time.monotonic()
    op.on_kill()
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert time.monotonic() - started < 15
    assert isinstance(errors[0], AirflowException)
    assert "exited with code -15" in str(errors[0])
    assert "step 1/1000" in str(errors[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_constructor_is_trivial_and_templated_fields_are_declared():
    op = TrainModelOperator(task_id="t", pipeline="p", data_uri="{{ ds }}", target="y", model={})
    assert op.data_uri == "{{ ds }}"
    assert set(TrainModelOperator.template_fields) == {
        "data_uri",
        "window_start",
        "window_end",
        "validation",
        "checkpoint_root",
        "parent_run_id",
    }
