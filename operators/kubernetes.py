"""KubernetesTrainModelOperator: the same trainer, in a pod on a (GPU) node.

This module imports the cncf-kubernetes provider (and with it the kubernetes client): DAGs that train
locally never import it; the DAG factory imports it only for specs with ``training.executor: kubernetes``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.secret import Secret
from kubernetes.client import models as k8s  # noqa: TID253 - this adapter is the Kubernetes boundary

from airflow_mlops.links.mlflow import MLFLOW_RUN, RUN_URL_KEY
from airflow_mlops.model.training.config import CONFIG_ENV
from airflow_mlops.utils.context import NamedOutputs
from airflow_mlops.utils.training import TRAINING_TEMPLATE_FIELDS, TrainingArguments

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


class KubernetesTrainModelOperator(TrainingArguments, NamedOutputs, KubernetesPodOperator):
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

    The other parameters are the training arguments (:class:`~airflow_mlops.utils.training.TrainingArguments`,
    the same as :class:`~airflow_mlops.operators.training.TrainModelOperator`'s) and those of
    :class:`~airflow.providers.cncf.kubernetes.operators.pod.KubernetesPodOperator` (``namespace``,
    ``node_selector``, ``tolerations``, ``affinity``, ``pod_template_file``, ``secrets``, ``deferrable``...).
    """

    template_fields: Sequence[str] = (
        *KubernetesPodOperator.template_fields, *TRAINING_TEMPLATE_FIELDS, "gpus", "cpu", "memory",
    )  # fmt: skip
    operator_extra_links = (MLFLOW_RUN,)

    def __init__(
        self,
        *,
        pipeline: str,
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
        super().__init__(
            pipeline=pipeline, image=image, on_finish_action=on_finish_action, do_xcom_push=True, **kwargs
        )
        self.mlflow_token_secret = mlflow_token_secret
        self.gpus = gpus
        self.cpu = cpu
        self.memory = memory
        self._trainer_config: dict[str, Any] | None = None

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
        from airflow_mlops.utils.failures import gate

        with gate(self, context):  # a config error fails the task at once, before any pod (no retry)
            self._trainer_config = self.training_config(context)
        return self._finish(context, super().execute(context))

    def trigger_reentry(self, context: Context, event: dict[str, Any]) -> Any:
        """Deferrable mode: the pod ran while the task waited in the triggerer. A success event gives the same
        result, link and lineage as the synchronous path; an error event fails the task as the pod operator
        does (and the retry resumes the same MLflow run from its checkpoint)."""
        return self._finish(context, super().trigger_reentry(context, event))

    def _finish(self, context: Context, result: Any) -> dict[str, Any]:
        from airflow_mlops.tracking.registry import run_url

        if not (isinstance(result, dict) and result.get("model_uri")):
            result = self._result_from_mlflow(context)
        url = run_url(self.mlflow_hook.ui_url, result["experiment_id"], result["run_id"])
        context["ti"].xcom_push(key=RUN_URL_KEY, value=url)
        self.log.info(
            "%s MLflow run %s%s", "reused" if result.get("reused") else "trained", result["run_id"],
            f"\nMLflow run: {url}" if url else "",
        )  # fmt: skip
        return self.remember(result)

    def _result_from_mlflow(self, context: Context) -> dict[str, Any]:
        """The pod succeeded but its result could not be read (deleted before the task resumed): the finished
        MLflow run of this window's run key is the result."""
        from airflow.sdk.exceptions import AirflowException

        from airflow_mlops.model.training.trainer import finished_result

        config = self._trainer_config or self.training_config(context)
        with self.mlflow_hook.configured() as client:
            result = finished_result(client, config["experiment"], config["run_key"])
        if result is None:
            raise AirflowException(
                f"the training pod reported success but left no result, and MLflow has no finished run of key "
                f"{config['run_key']} in {config['experiment']}: the pod did not train; see its log above"
            )
        self.log.warning("the pod's result file was gone: result read back from MLflow run %s", result["run_id"])
        return result
