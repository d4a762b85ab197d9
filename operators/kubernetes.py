"""KubernetesTrainModelOperator: the same trainer, in a pod on a (GPU) node.

This module imports the cncf-kubernetes provider (and with it the kubernetes client): DAGs that train
locally never import it; the DAG factory imports it only for specs with ``training.executor: kubernetes``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.secret import Secret
from kubernetes.client import models as k8s  # noqa: TID253 - this adapter is the Kubernetes boundary

from airflow_mlops.model.training.config import CONFIG_ENV
from airflow_mlops.operators._common import DEFAULT_END, DEFAULT_START, TrainerConfigMixin
from airflow_mlops.operators._lineage import LineageMixin, training_lineage
from airflow_mlops.operators.hooks import MlflowHook
from airflow_mlops.operators.links import RUN_URL_KEY, MlflowRunLink

if TYPE_CHECKING:
    from airflow.sdk import Context

XCOM_RESULT = "/airflow/xcom/return.json"
DEFAULT_IMAGE = "airflow-mlops/trainer:0.1.0"


def trainer_resources(
    gpus: int | str | None, cpu: str | None, memory: str | None
) -> k8s.V1ResourceRequirements:
    """GPU count as ``nvidia.com/gpu`` in limits *and* requests (Kubernetes requires them equal for
    extended resources; a request alone is silently not a GPU), memory limit equal to its request."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    n_gpus = int(gpus or 0)
    if n_gpus < 0:
        raise ValueError(f"gpus must be >= 0, got {gpus!r}")
    if n_gpus:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(n_gpus)
    if cpu:
        requests["cpu"] = str(cpu)
    if memory:
        requests["memory"] = limits["memory"] = str(memory)
    return k8s.V1ResourceRequirements(requests=requests or None, limits=limits or None)


class KubernetesTrainModelOperator(LineageMixin, TrainerConfigMixin, KubernetesPodOperator):
    """Run the trainer (``python -m airflow_mlops.model.training``) in a pod; same config, same MLflow run.

    The Airflow worker resolves the window's partitions and the idempotency key exactly as
    :class:`~airflow_mlops.operators.training.TrainModelOperator` does and hands the config to the pod in an
    environment variable. The pod writes its result to ``/airflow/xcom/return.json`` for the XCom sidecar;
    its log (progress lines included) streams into the task log. The MLflow token reaches the pod only as a
    Kubernetes secret reference. Pods are deleted when they succeed and kept for inspection when they fail
    (``on_finish_action``).

    :param gpus: GPUs per pod, ``nvidia.com/gpu`` requests and limits (templated).
    :param cpu: CPU request (templated).
    :param memory: memory request and limit (templated).
    :param mlflow_token_secret: name of a Kubernetes secret whose key ``token`` holds the MLflow token.
    :param image: the training image (templated; default ``airflow-mlops/trainer:0.1.0``).

    The other parameters are those of :class:`~airflow_mlops.operators.training.TrainModelOperator` and of
    :class:`~airflow.providers.cncf.kubernetes.operators.pod.KubernetesPodOperator` (``namespace``,
    ``node_selector``, ``tolerations``, ``affinity``, ``pod_template_file``, ``secrets``, ``deferrable``...).
    """

    template_fields: Sequence[str] = (
        *KubernetesPodOperator.template_fields,
        "data_uri", "window_start", "window_end", "validation", "checkpoint_root", "parent_run_id", "model_overrides", "gpus", "cpu", "memory",
    )  # fmt: skip
    operator_extra_links = (MlflowRunLink(),)

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
        window_start: str | None = DEFAULT_START,
        window_end: str = DEFAULT_END,
        window_days: int | None = None,
        checkpoint_root: str | None = None,
        parent_run_id: str | None = None,
        model_overrides: dict[str, Any] | str | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        mlflow_token_secret: str | None = None,
        gpus: int | str = 0,
        cpu: str | None = None,
        memory: str | None = None,
        image: str = DEFAULT_IMAGE,
        on_finish_action: str = "delete_succeeded_pod",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", f"mlops-train-{pipeline}".replace("_", "-"))
        kwargs.setdefault("get_logs", True)
        super().__init__(image=image, on_finish_action=on_finish_action, do_xcom_push=True, **kwargs)
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
        self.mlflow_token_secret = mlflow_token_secret
        self.gpus = gpus
        self.cpu = cpu
        self.memory = memory
        self._trainer_config: dict[str, Any] | None = None

    @cached_property
    def mlflow_hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def training_config(self, context: Context) -> dict[str, Any]:
        return self.trainer_config(context, self.mlflow_hook.artifact_root)

    def build_pod_request_obj(self, context: Context | None = None, *, dry_run: bool = False) -> k8s.V1Pod:
        if context is not None and self._trainer_config is None:
            self._trainer_config = self.training_config(context)
        hook = self.mlflow_hook
        env = {"MLFLOW_TRACKING_URI": hook.tracking_uri, "MLFLOW_REGISTRY_URI": hook.registry_uri,
               "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "PYTHONUNBUFFERED": "1"}  # fmt: skip
        if self._trainer_config is not None:
            env[CONFIG_ENV] = json.dumps(self._trainer_config)
        existing = [e for e in (self.env_vars or []) if getattr(e, "name", None) not in env]
        self.env_vars = [*existing, *(k8s.V1EnvVar(name=k, value=v) for k, v in env.items())]
        self.arguments = ["--result", XCOM_RESULT]
        self.container_resources = trainer_resources(self.gpus, self.cpu, self.memory)
        if self.mlflow_token_secret and not any(
            s.deploy_target == "MLFLOW_TRACKING_TOKEN" for s in self.secrets
        ):
            self.secrets = [
                *self.secrets,
                Secret("env", "MLFLOW_TRACKING_TOKEN", self.mlflow_token_secret, "token"),
            ]
        return super().build_pod_request_obj(context, dry_run=dry_run)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.tracking.registry import run_url

        result = super().execute(context)
        if isinstance(result, dict) and result.get("run_id"):
            url = run_url(self.mlflow_hook.ui_url, result["experiment_id"], result["run_id"])
            context["ti"].xcom_push(key=RUN_URL_KEY, value=url)
            self.log.info(
                "%s MLflow run %s%s",
                "reused" if result.get("reused") else "trained",
                result["run_id"],
                f" ({url})" if url else "",
            )
        return self.remember(result) if isinstance(result, dict) and result.get("model_uri") else result

    def lineage(self, result: dict[str, Any]) -> tuple[list[dict], list[dict]]:
        return training_lineage(self, result)

    def mlflow_namespace(self) -> str:
        from airflow_mlops.tracking.lineage import mlflow_namespace

        return mlflow_namespace(self.mlflow_hook.tracking_uri)
