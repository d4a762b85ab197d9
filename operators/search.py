"""Hyper-parameter search as mapped tasks: plan the trials, train each (mapped), select the best."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_mlops.hooks.mlflow import MlflowHook, MlflowMixin
from airflow_mlops.utils.context import DEFAULT_END, DEFAULT_START, NamedOutputs

if TYPE_CHECKING:
    from airflow.sdk import Context

PARENT_RUN_KEY = "parent_run_id"


class PlanTrialsOperator(MlflowMixin, BaseOperator):
    """Expand a search space into trial model configs (the XCom a mapped training task expands over) and
    open the search's MLflow parent run (pushed as XCom ``parent_run_id``).

    :param pipeline: pipeline name.
    :param model: the base ``{"kind", "task", "params"}``; each trial overrides some params.
    :param space: ``{param: [values...]}``.
    :param method: ``grid`` or ``random``.
    :param max_trials: trial budget.
    :param seed: seed of the random draw.
    :param window_start: window start (templated).
    :param window_end: window end (templated).
    :param window_days: when set, the window is the ``window_days`` days ending at ``window_end``.
    :param mlflow_conn_id: MLflow connection.
    """

    template_fields: Sequence[str] = ("window_start", "window_end")

    def __init__(
        self,
        *,
        pipeline: str,
        model: dict[str, Any],
        space: dict[str, list[Any]],
        method: str = "grid",
        max_trials: int = 4,
        seed: int = 0,
        window_start: str | None = DEFAULT_START,
        window_end: str = DEFAULT_END,
        window_days: int | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.model = model
        self.space = space
        self.method = method
        self.max_trials = max_trials
        self.seed = seed
        self.window_start = window_start
        self.window_end = window_end
        self.window_days = window_days
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow_mlops.data.partitions import make_window
        from airflow_mlops.model.search import expand_trials, search_key, start_parent_run
        from airflow_mlops.tracking.registry import experiment_name

        window = make_window(self.window_start, self.window_end, self.window_days)
        trials = expand_trials(
            self.model.get("params", {}), self.space, self.method, self.max_trials, self.seed
        )
        key = search_key(f"{self.pipeline}|{window.start.isoformat()}|{window.end.isoformat()}", self.space,
                         self.method, self.max_trials, self.seed)  # fmt: skip
        with self.hook.configured() as client:
            parent = start_parent_run(
                client, experiment=experiment_name(self.pipeline), search_key=key,
                name=f"{self.pipeline} search {window.label}", space=self.space, trials=trials,
                artifact_root=self.hook.artifact_root,
            )  # fmt: skip
        context["ti"].xcom_push(key=PARENT_RUN_KEY, value=parent)
        self.log.info("%s search: %d trial(s) under MLflow parent run %s", self.method, len(trials), parent)
        return [{**self.model, "params": params} for params in trials]


class SelectBestTrialOperator(MlflowMixin, NamedOutputs, BaseOperator):
    """Pick the trial with the best held-out metric; its training result goes on to testing and registration.

    :param trials: the mapped training task's results (templated).
    :param metric: metric to rank by (lower is better for rmse and mae).
    :param parent_run_id: the search's MLflow parent run, closed with the winner recorded (templated).
    :param mlflow_conn_id: MLflow connection.
    """

    template_fields: Sequence[str] = ("trials", "parent_run_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"trials": "json"}

    def __init__(
        self,
        *,
        trials: Any,
        metric: str,
        parent_run_id: str | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.trials = trials
        self.metric = metric
        self.parent_run_id = parent_run_id
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.model.search import finish_parent_run, select_best

        best = select_best(list(self.trials), self.metric)
        if self.parent_run_id:
            with self.hook.configured() as client:
                finish_parent_run(client, self.parent_run_id, best, self.metric)
        return best
