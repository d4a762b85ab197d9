"""TrainModelOperator: run the trainer as a local subprocess, the same entry point a pod uses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_mlops.errors import ConfigError
from airflow_mlops.links.mlflow import MLFLOW_RUN, RUN_URL_KEY
from airflow_mlops.tempfiles import owned_tempdir
from airflow_mlops.utils.context import NamedOutputs
from airflow_mlops.utils.failures import gate
from airflow_mlops.utils.training import (
    TRAINING_TEMPLATE_FIELDS,
    TRAINING_TEMPLATE_RENDERERS,
    TrainingArguments,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class TrainModelOperator(NamedOutputs, TrainingArguments):
    """Train a model on the window's partitions and record it as an MLflow run.

    The trainer (``python -m airflow_mlops.model.training``) runs as a subprocess whose output streams into this
    task's log; ``on_kill`` and task timeouts stop it cleanly. A run with the same idempotency key
    (pipeline, window, training config) that already finished is reused, so retries and backfills never
    train twice.

    The arguments are those of :class:`~airflow_mlops.utils.training.TrainingArguments` (``pipeline``,
    ``data_uri``, ``target``, ``model``, the feature columns, the window...) and of ``BaseOperator``.

    XCom: ``return_value`` = ``{"run_id", "experiment_id", "model_uri", "metrics", "reused", "window",
    "params_hash", "inputs", ...}``; ``mlflow_run_url`` (the "MLflow run" button).
    """

    template_fields: Sequence[str] = TRAINING_TEMPLATE_FIELDS
    template_fields_renderers: ClassVar[dict[str, str]] = TRAINING_TEMPLATE_RENDERERS
    operator_extra_links = (MLFLOW_RUN,)
    ui_color = "#fdf0e8"

    _process: subprocess.Popen | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.tracking.registry import run_url

        with gate(self, context):
            config = self.training_config(context)
        self.log.info(
            "training %s, run key %s, %d partition(s)",
            self.pipeline,
            config["run_key"],
            len(config["data"]["uris"]),
        )
        with owned_tempdir("train") as tmp:
            config_path, result_path = Path(tmp, "config.json"), Path(tmp, "result.json")
            config_path.write_text(json.dumps(config))
            self._run_trainer(config_path, result_path)
            result = json.loads(result_path.read_text())
        url = run_url(self.mlflow_hook.ui_url, result["experiment_id"], result["run_id"])
        context["ti"].xcom_push(key=RUN_URL_KEY, value=url)
        self.log.info(
            "%s MLflow run %s, model %s%s",
            "reused" if result["reused"] else "trained", result["run_id"], result["model_uri"], f"\nMLflow run: {url}" if url else "",
        )  # fmt: skip
        result["window"] = {
            "start": config["tags"]["mlops.window_start"],
            "end": config["tags"]["mlops.window_end"],
        }
        result["params_hash"] = config["tags"]["mlops.params_hash"]
        result["inputs"] = list(config["data"]["uris"])
        return self.remember(result)

    def trainer_command(self, config_path: Path, result_path: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "airflow_mlops.model.training",
            "--config",
            str(config_path),
            "--result",
            str(result_path),
        ]

    def _run_trainer(self, config_path: Path, result_path: Path) -> None:
        env = {
            **os.environ,
            **self.mlflow_hook.env(),
            "PYTHONUNBUFFERED": "1",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
        tail: deque[str] = deque(maxlen=30)
        env["AIRFLOW_MLOPS_PARENT_PID"] = str(os.getpid())
        self._process = subprocess.Popen(
            self.trainer_command(config_path, result_path),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        try:
            for line in self._process.stdout or ():
                line = line.rstrip()
                tail.append(line)
                self.log.info("trainer | %s", line)
            code = self._process.wait()
        finally:
            # execution_timeout (or any error) interrupts the loop above: never leave the trainer running.
            self.on_kill()
            self._process = None
        if code == ConfigError.EXIT_CODE:  # nothing started; a retry would fail the same way
            raise AirflowFailException("the trainer refused its config:\n" + "\n".join(tail))
        if code != 0:
            raise AirflowException(f"trainer exited with code {code}; last lines:\n" + "\n".join(tail))

    def on_kill(self) -> None:
        proc = self._process
        if proc is None or proc.poll() is not None:
            return
        self.log.info("stopping trainer process group %d", proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _die_with_parent() -> None:
    """In the trainer, before it starts (Linux): SIGTERM when the task process dies, whatever kills it
    (``kill -9``, the worker's loss), so no trainer outlives its task. Its own session keeps it out of
    signals meant for the task's process group; ``on_kill`` still stops it on a normal kill or time-out."""
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
