"""The arguments every training operator takes, declared once: the local subprocess and the Kubernetes pod
build the same trainer config (same run key) from them."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_mlops.hooks.mlflow import MlflowHook
from airflow_mlops.utils.context import (
    DEFAULT_END,
    DEFAULT_START,
    airflow_ids,
    explain_window,
    with_overrides,
)
from airflow_mlops.utils.lineage import LineageMixin, training_lineage

if TYPE_CHECKING:
    from airflow.sdk import Context

TRAINING_TEMPLATE_FIELDS = (
    "data_uri", "window_start", "window_end", "validation", "checkpoint_root", "parent_run_id", "model_overrides",
)  # fmt: skip
TRAINING_TEMPLATE_RENDERERS = {"validation": "json", "model_overrides": "json"}


class TrainingArguments(LineageMixin, BaseOperator):
    """The base both training operators derive from: takes the training arguments, passes the rest on (to
    ``BaseOperator``, or to ``KubernetesPodOperator`` for the pod). An operator like Airflow's own, so
    ``default_args``, ``.partial()``/``.expand()`` and the required-argument checks see these arguments.

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
    :param model_overrides: ``model.params`` overridden for this run, a mapping or its JSON (templated).
    :param mlflow_conn_id: MLflow connection.
    """

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
        if isinstance(model, dict):  # checked when the DAG is parsed: a wrong key is an import error naming it
            from airflow_mlops.model.settings import check_model

            model = check_model(model, f"model of task {self.task_id!r}")
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

    @cached_property
    def mlflow_hook(self) -> MlflowHook:
        """As :class:`~airflow_mlops.hooks.mlflow.MlflowMixin`'s ``hook``, by another name: the pod operator's
        ``hook`` is Kubernetes'."""
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def training_config(self, context: Context) -> dict[str, Any]:
        """The trainer config, the same for a subprocess and a pod (same run key)."""
        from airflow_mlops.data.partitions import make_window
        from airflow_mlops.model.settings import check_model
        from airflow_mlops.model.training.config import build_config

        # the run's model_params merged in and checked before anything trains: a ConfigError fails the task
        # at once (no retry, no MLflow run)
        model = check_model(
            with_overrides(self.model, self.model_overrides), f"model of task {self.task_id!r} (with model_params)"
        )  # fmt: skip
        window = make_window(self.window_start, self.window_end, self.window_days)
        self.log.info("%s", explain_window(context, window, self.window_days))
        return build_config(
            pipeline=self.pipeline, window=window,
            data_uri=self.data_uri, data_format=self.data_format, target=self.target,
            model=model,
            numeric=self.numeric, categorical=self.categorical, text=self.text,
            holdout_fraction=self.holdout_fraction, seed=self.seed, validation=self.validation,
            airflow=airflow_ids(context), checkpoint_root=self.checkpoint_root,
            parent_run_id=self.parent_run_id or None, artifact_root=self.mlflow_hook.artifact_root,
        )  # fmt: skip

    def mlflow_namespace(self) -> str:
        from airflow_mlops.tracking.lineage import mlflow_namespace

        return mlflow_namespace(self.mlflow_hook.tracking_uri)

    def lineage(self, result: dict[str, Any]) -> tuple[list[dict], list[dict]]:
        return training_lineage(self, result)
