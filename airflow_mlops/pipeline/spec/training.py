"""The training sections: the split, Kubernetes pods, retries and the hyper-parameter search."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from airflow_mlops.schema import NonNegativeInt, PositiveInt, Section, problem
from airflow_mlops.schema import fail as _fail


class Kubernetes(Section):
    """Where and how a training pod runs (``training.kubernetes``)."""

    image: str = Field("airflow-mlops/trainer:0.1.0", min_length=1, description="trainer image")
    namespace: str = Field("default", min_length=1)
    """namespace of the training pod"""
    gpus: Annotated[int, Field(ge=0)] | Annotated[str, Field(pattern=r"\{\{")] = Field(
        0, description="nvidia.com/gpu limit (an integer, or a Jinja template)"
    )
    cpu: str | int | float | None = Field(None, description="CPU request and limit, e.g. '2' or '500m'")
    memory: str | None = Field(None, description="memory request and limit, e.g. '8Gi'")
    node_selector: dict[str, str] = Field(default_factory=dict)
    """node labels the pod must match (e.g. a GPU node pool)"""
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="key, operator, value, effect"
    )
    affinity: dict[str, Any] = Field(default_factory=dict)
    """Kubernetes affinity of the pod"""
    pod_template_file: str | None = None
    """a pod template the pod starts from"""
    mlflow_token_secret: str | None = Field(None, description="Kubernetes secret holding the MLflow token")
    on_finish_action: Literal["delete_pod", "delete_succeeded_pod", "keep_pod"] = "delete_succeeded_pod"
    """delete_succeeded_pod keeps failed pods for inspection"""
    deferrable: bool | None = Field(None, description="wait for the pod in the triggerer")
    kubernetes_conn_id: str = "kubernetes_default"
    """the Airflow connection to the cluster"""


class Training(Section):
    """The training window and where training runs (``training``)."""

    window_days: PositiveInt = Field(7, description="days of data before the interval end")
    concurrent_windows: PositiveInt = Field(
        1,
        description="windows trained, tested and released at once, backfills included (Airflow's "
        "max_active_tis_per_dag; a backfill's own --max-active-runs does not apply to task concurrency)",
    )
    holdout_fraction: Annotated[float, Field(ge=0.01, le=0.9)] = Field(
        0.2, description="share of rows held out for the model tests"
    )
    seed: NonNegativeInt = Field(42, description="seed of the split and of the trainer")
    executor: Literal["local", "kubernetes"] = Field("local", description="a local subprocess, or a pod")
    kubernetes: Kubernetes | None = Field(None, description="the pod (executor: kubernetes)")

    @model_validator(mode="after")
    def _pod_only_on_kubernetes(self) -> Training:
        if self.kubernetes is not None and self.executor != "kubernetes":
            raise _fail(
                problem("kubernetes", "a kubernetes block", "only with training.executor: kubernetes")
            )
        if self.executor == "kubernetes" and self.kubernetes is None:
            object.__setattr__(self, "kubernetes", Kubernetes())
        return self


class Retries(Section):
    """How Airflow retries the pipelines' tasks (``retries``). Tasks whose failure a retry cannot fix (a quality
    gate, a failed model test, a config error) fail at once whatever is set here."""

    count: NonNegativeInt = Field(
        1, description="retries of a failed task (a lost worker, a broker, database or MLflow outage)"
    )
    delay_seconds: Annotated[float, Field(ge=0)] = Field(60, description="wait before the first retry")
    backoff: Annotated[float, Field(ge=0)] = Field(
        0, description="multiply the wait by this at each further retry (0: the same wait each time; 2: doubled)"
    )
    max_delay_seconds: Annotated[float, Field(ge=0)] | None = Field(None, description="cap of the wait with backoff")


class Search(Section):
    """Hyper-parameter search (``search``): trials are mapped training tasks, the best goes on."""

    params: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        description="model.params key -> values to try"
    )
    method: Literal["grid", "random"] = "grid"
    """grid or random"""
    max_trials: Annotated[int, Field(ge=1, le=256)] = 4
    """most trials run"""
    seed: NonNegativeInt = 0
    """seed of the random method"""
    metric: str | None = Field(None, description="default: tests.compare.metric")
