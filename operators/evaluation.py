"""ModelTestOperator: the candidate against thresholds and against the current champion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_mlops.hooks.mlflow import MlflowHook, MlflowMixin
from airflow_mlops.links.mlflow import MODEL_TEST_REPORT, TEST_REPORT_URL_KEY
from airflow_mlops.utils.context import DEFAULT_END, DEFAULT_START, NamedOutputs, explain_window
from airflow_mlops.utils.failures import gate
from airflow_mlops.utils.lineage import LineageMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class ModelTestOperator(MlflowMixin, LineageMixin, NamedOutputs, BaseOperator):
    """Evaluate the trained candidate on the held-out rows of its window, with the champion on the same rows.

    Metric thresholds and the ``checks`` (slices, fairness, robustness, expectations: see
    :mod:`airflow_mlops.release.suites`) are a gate: a failure stops the release (no retry) and the log shows the
    table of tests. The champion comparison (``compare_mode``: ``improvement`` by ``min_improvement``, or
    ``non_inferiority`` within it; absolute or ``relative``) decides promotion; a candidate that does not
    meet it is still registered, as ``challenger``, with the reason recorded. The report (JSON and HTML with
    charts) is logged to the candidate's MLflow run and linked from the task ("Model test report").

    A person can release a model whose tests failed by giving ``override_reason`` (the training DAGs expose
    it as a run param): the release goes on, and the reason and the user who triggered the run are recorded
    in the report and on the model version.

    :param model_name: registered model name.
    :param training: the :class:`TrainModelOperator` result (its XCom; templated).
    :param data_uri: partitions, as given to the trainer (templated).
    :param target: label column.
    :param thresholds: ``{metric: {"min": x} | {"max": x}}``.
    :param compare_metric: metric compared with the champion.
    :param min_improvement: how much better than the champion a candidate must be.
    :param data_format: ``parquet`` or ``csv``.
    :param holdout_fraction: leave unset: the split (seed, fraction, window and the held-out rows'
        fingerprint) comes with the training result, and the test evaluates on exactly the rows the trainer
        held out, refusing if they changed. Set, it must match the trainer's (else the test refuses); it is
        used only for a run trained before splits were recorded.
    :param seed: as ``holdout_fraction``.
    :param window_start: as ``holdout_fraction`` (templated).
    :param window_end: as ``holdout_fraction``, exclusive (templated).
    :param window_days: when set, the window is the ``window_days`` days ending at ``window_end``.
    :param compare_mode: ``improvement`` or ``non_inferiority``.
    :param relative: ``min_improvement`` is a fraction of the champion's value.
    :param checks: ``{"slices": [...], "fairness": [...], "robustness": [...], "expectations": [...],
        "leakage": {"max_score": 0.99, "allow": {feature: reason}}}``. Leakage is checked unless ``checks``
        sets ``"leakage": None``: a feature that alone gives the target fails the test, named.
    :param override_reason: release even if the gate fails; at least 10 characters (templated).
    :param reevaluate_reason: test again and decide again although this run's model was already tested: why,
        at least 10 characters (templated; recorded on the report and the model version). Without it, a
        re-run, clear or backfill reproduces the recorded report instead of testing against today's champion.
    :param mlflow_conn_id: MLflow connection.
    """

    template_fields: Sequence[str] = (
        "training", "data_uri", "window_start", "window_end", "override_reason", "reevaluate_reason",
    )  # fmt: skip
    template_fields_renderers: ClassVar[dict[str, str]] = {"training": "json"}
    operator_extra_links = (MODEL_TEST_REPORT,)
    ui_color = "#eef8e8"

    def __init__(
        self,
        *,
        model_name: str,
        training: dict[str, Any],
        data_uri: str,
        target: str,
        thresholds: dict[str, dict[str, float]] | None = None,
        compare_metric: str = "roc_auc",
        min_improvement: float = 0.0,
        data_format: str = "parquet",
        holdout_fraction: float | None = None,
        seed: int | None = None,
        window_start: str = DEFAULT_START,
        window_end: str = DEFAULT_END,
        window_days: int | None = None,
        compare_mode: str = "improvement",
        relative: bool = False,
        checks: dict[str, Any] | None = None,
        override_reason: str | None = None,
        reevaluate_reason: str | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.training = training
        self.data_uri = data_uri
        self.target = target
        self.thresholds = thresholds
        self.compare_metric = compare_metric
        self.min_improvement = min_improvement
        self.data_format = data_format
        self.holdout_fraction = holdout_fraction
        self.seed = seed
        self.window_start = window_start
        self.window_end = window_end
        self.window_days = window_days
        # whether a DAG set the window (rendering replaces the defaults, so this is decided here)
        self._window_given = window_days is not None or window_start != DEFAULT_START or window_end != DEFAULT_END
        self.compare_mode = compare_mode
        self.relative = relative
        self.checks = {"leakage": {}, **(checks or {})}  # target leakage is checked unless turned off
        self.override_reason = override_reason
        self.reevaluate_reason = reevaluate_reason
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.release.model_test import ModelTestRequest, run_model_test

        # Failures first: a failed verdict's full table is logged after the failure block (gate), not before it
        later: list[str] = []

        def say(passed: bool, text: str) -> None:
            if passed:
                self.log.info("%s", text)
            else:
                later.append(text)

        try:
            with gate(self, context), self.hook.configured() as client:
                request = ModelTestRequest(
                    model_name=self.model_name, training=self.training, data_uri=self.data_uri, target=self.target,
                    data_format=self.data_format, thresholds=self.thresholds or {}, compare_metric=self.compare_metric,
                    min_improvement=self.min_improvement, compare_mode=self.compare_mode, relative=self.relative,
                    checks=self.checks, override_reason=self.override_reason, reevaluate_reason=self.reevaluate_reason,
                    split_args=self._split_args(), window_start=self.window_start, window_end=self.window_end,
                    window_days=self.window_days, seed=self.seed, holdout_fraction=self.holdout_fraction,
                )  # fmt: skip
                result = run_model_test(
                    client, request, user=getattr(context.get("dag_run"), "triggering_user_name", None),
                    ui_url=self.hook.ui_url, say=say,
                    on_report_url=lambda url: context["ti"].xcom_push(key=TEST_REPORT_URL_KEY, value=url),
                    explain_window=lambda window: self.log.info("%s", explain_window(context, window, self.window_days)),
                )  # fmt: skip
        finally:
            for text in later:
                self.log.info("%s", text)
        return self.remember(result)

    def _split_args(self) -> dict[str, Any]:
        """The split arguments this task was actually given (to compare with the trainer's)."""
        given: dict[str, Any] = {}
        if self.seed is not None:
            given["seed"] = self.seed
        if self.holdout_fraction is not None:
            given["holdout_fraction"] = self.holdout_fraction
        if self._window_given:
            from airflow_mlops.data.partitions import make_window

            window = make_window(self.window_start, self.window_end, self.window_days)
            given["window_start"], given["window_end"] = window.start.isoformat(), window.end.isoformat()
        return given

    def lineage(self, result: dict[str, Any]) -> tuple[list[dict], list[dict]]:
        from airflow_mlops.tracking.lineage import model_dataset, version_dataset

        ns = self.mlflow_namespace()
        models = [{**model_dataset(ns, self.training["model_uri"]), "version": self.training["run_id"]}]
        if result.get("champion_version"):
            models.append(version_dataset(ns, self.model_name, result["champion_version"]))
        report = model_dataset(ns, f"runs:/{self.training['run_id']}/tests/report.json")
        return [*result.get("inputs", []), *models], [report]
