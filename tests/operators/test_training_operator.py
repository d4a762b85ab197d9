from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_mlops.operators.training import TrainModelOperator

pytestmark = pytest.mark.slow  # starts trainer processes


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


def test_model_params_of_a_run_override_the_spec_and_change_the_key(tmp_path):
    from airflow_mlops.utils.context import with_overrides

    model = {"kind": "tabular", "params": {"epochs": 3, "hidden_units": [16]}}
    assert with_overrides(model, '{"epochs": 9}')["params"] == {"epochs": 9, "hidden_units": [16]}
    assert with_overrides(model, "{}") is model
    assert with_overrides(model, None) is model
    with pytest.raises(ValueError, match="model_params: found 'epochs=9'; allowed: a JSON object"):
        with_overrides(model, "epochs=9")
    with pytest.raises(ValueError, match="mapping of model.params keys"):
        with_overrides(model, "[1, 2]")

    from airflow_mlops.data.partitions import make_window
    from airflow_mlops.model.training.config import build_config

    window = make_window("2026-01-01", "2026-01-03")
    for day in ("2026-01-01", "2026-01-02"):
        (tmp_path / f"{day}.parquet").write_bytes(b"")

    def key(m):
        return build_config(pipeline="p", window=window, data_uri=str(tmp_path / "{date}.parquet"), data_format="parquet",
                            target="y", model=m)["run_key"]  # fmt: skip

    assert key(with_overrides(model, '{"epochs": 9}')) != key(model)
    assert key(with_overrides(model, '{"epochs": 3}')) == key(model)  # same params: same run, reused


TASK_PROCESS = """
import sys
from pathlib import Path

from airflow_mlops.operators.training import TrainModelOperator

TRAINER = '''
import os, signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
def stop(*_):
    out.joinpath("terminated").write_text("yes")
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
out.joinpath("trainer.pid").write_text(str(os.getpid()))
time.sleep(600)
'''


class Hanging(TrainModelOperator):
    def trainer_command(self, config_path, result_path):
        return [sys.executable, "-c", TRAINER, sys.argv[1]]


op = Hanging(task_id="t", pipeline="p", data_uri="x", target="y", model={"kind": "tabular"})
op._run_trainer(Path(sys.argv[1]) / "c.json", Path(sys.argv[1]) / "r.json")
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_killed_task_takes_its_trainer_with_it(tmp_path, mlflow_uri):
    """kill -9 of the task process (no on_kill runs): the trainer, in its own session, still gets SIGTERM
    from the kernel and stops, cleaning up; it never trains on beside the retry's trainer."""
    import signal
    import subprocess

    task = subprocess.Popen([sys.executable, "-c", TASK_PROCESS, str(tmp_path)])
    pid_file = tmp_path / "trainer.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() and task.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the trainer to start
    assert pid_file.exists(), f"the trainer did not start (task exited with {task.poll()})"
    trainer = int(pid_file.read_text())
    os.kill(task.pid, signal.SIGKILL)
    task.wait(30)
    deadline = time.monotonic() + 30
    while not _gone(trainer) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the trainer to exit
    assert _gone(trainer), "the trainer outlived its task"
    assert (tmp_path / "terminated").read_text() == "yes"  # it was told to stop, so it could end its MLflow run
