"""TrainModelOperator: run the trainer as a local subprocess, the same entry point a pod uses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from airflow_mlops.operators._common import DEFAULT_END, DEFAULT_START, TrainerConfigMixin
from airflow_mlops.operators._lineage import LineageMixin, training_lineage
from airflow_mlops.operators.errors import gate
from airflow_mlops.operators.hooks import MlflowHook
from airflow_mlops.operators.links import RUN_URL_KEY, MlflowRunLink

if TYPE_CHECKING:
    from airflow.sdk import Context


class TrainModelOperator(LineageMixin, TrainerConfigMixin, BaseOperator):
    """Train a model on the window's partitions and record it as an MLflow run.

    The trainer (``python -m airflow_mlops.model.training``) runs as a subprocess whose output streams into this
    task's log; ``on_kill`` and task timeouts stop it cleanly. A run with the same idempotency key
    (pipeline, window, training config) that already finished is reused, so retries and backfills never
    train twice.

    :param pipeline: pipeline name (MLflow experiment ``airflow-mlops/<pipeline>``).
    :param data_uri: partitions, ``{date}`` for each day (templated).
    :param target: label column.
    :param model: ``{"kind": "tabular" | "lora_text", "task": "classification" | "regression", "params": {...}}``.
    :param numeric: numeric feature columns.
    :param categorical: categorical feature columns.
    :param text: text column (``lora_text`` models).
    :param data_format: ``parquet`` or ``csv``.
    :param holdout_fraction: share of rows held out for evaluation.
    :param seed: seed for the split and the training.
    :param validation: result of the upstream :class:`ValidateDataOperator` (its XCom), for lineage (templated).
    :param window_start: window start (templated; default the data interval start).
    :param window_end: window end, exclusive (templated; default the data interval end).
    :param window_days: when set, the window is the ``window_days`` days ending at ``window_end``.
    :param checkpoint_root: where checkpoints go, per idempotency key (templated); a retry resumes from the
        last one. Default: a folder in the worker's temp directory (object storage for pods).
    :param parent_run_id: MLflow parent run when this is a trial of a search (templated).
    :param mlflow_conn_id: MLflow connection.
    """

    template_fields: Sequence[str] = (
        "data_uri",
        "window_start",
        "window_end",
        "validation",
        "checkpoint_root",
        "parent_run_id",
        "model_overrides",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"validation": "json", "model_overrides": "json"}
    operator_extra_links = (MlflowRunLink(),)
    ui_color = "#fdf0e8"

    def __init__(
        self,
        *,
        pipeline: str,
        data_uri: str,
        target: str,
        model: dict[str, Any],
        numeric: list[str] | None = None,
        categorical: list[str] | None = None,
        text: str | None = None,
        data_format: str = "parquet",
        holdout_fraction: float = 0.2,
        seed: int = 42,
        validation: dict[str, Any] | None = None,
        window_start: str = DEFAULT_START,
        window_end: str = DEFAULT_END,
        window_days: int | None = None,
        checkpoint_root: str | None = None,
        parent_run_id: str | None = None,
        model_overrides: dict[str, Any] | str | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.data_uri = data_uri
        self.target = target
        self.model = model
        self.numeric = numeric
        self.categorical = categorical
        self.text = text
        self.data_format = data_format
        self.holdout_fraction = holdout_fraction
        self.seed = seed
        self.validation = validation
        self.window_start = window_start
        self.window_end = window_end
        self.window_days = window_days
        self.checkpoint_root = checkpoint_root
        self.parent_run_id = parent_run_id
        self.model_overrides = model_overrides
        self.mlflow_conn_id = mlflow_conn_id
        self._process: subprocess.Popen | None = None

    @cached_property
    def hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def training_config(self, context: Context) -> dict[str, Any]:
        return self.trainer_config(context, self.hook.artifact_root)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.tracking.registry import run_url

        with gate():
            config = self.training_config(context)
        self.log.info(
            "training %s, run key %s, %d partition(s)",
            self.pipeline,
            config["run_key"],
            len(config["data"]["uris"]),
        )
        with tempfile.TemporaryDirectory(prefix="mlops-train-") as tmp:
            config_path, result_path = Path(tmp, "config.json"), Path(tmp, "result.json")
            config_path.write_text(json.dumps(config))
            self._run_trainer(config_path, result_path)
            result = json.loads(result_path.read_text())
        url = run_url(self.hook.ui_url, result["experiment_id"], result["run_id"])
        context["ti"].xcom_push(key=RUN_URL_KEY, value=url)
        self.log.info(
            "%s MLflow run %s, model %s%s",
            "reused" if result["reused"] else "trained", result["run_id"], result["model_uri"], f" ({url})" if url else "",
        )  # fmt: skip
        result["window"] = {
            "start": config["tags"]["mlops.window_start"],
            "end": config["tags"]["mlops.window_end"],
        }
        result["params_hash"] = config["tags"]["mlops.params_hash"]
        result["inputs"] = list(config["data"]["uris"])
        return self.remember(result)

    def lineage(self, result: dict[str, Any]) -> tuple[list[dict], list[dict]]:
        return training_lineage(self, result)

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
            **self.hook.env(),
            "PYTHONUNBUFFERED": "1",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
        tail: deque[str] = deque(maxlen=30)
        self._process = subprocess.Popen(
            self.trainer_command(config_path, result_path),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
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
