"""DriftBranchOperator: follow the drift report into retraining, or not."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseBranchOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class DriftBranchOperator(BaseBranchOperator):
    """Branch on a drift report: ``drift_task_id`` when it says drift, ``no_drift_task_id`` otherwise.

    :param report: the :class:`~airflow_mlops.sensors.drift.DriftSensor` result (templated).
    :param drift_task_id: task(s) to follow on drift (e.g. the retraining trigger).
    :param no_drift_task_id: task(s) to follow otherwise.
    """

    template_fields: Sequence[str] = ("report",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"report": "json"}

    def __init__(
        self,
        *,
        report: dict[str, Any],
        drift_task_id: str | Iterable[str],
        no_drift_task_id: str | Iterable[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.report = report
        self.drift_task_id = drift_task_id
        self.no_drift_task_id = no_drift_task_id

    def choose_branch(self, context: Context) -> str | Iterable[str]:
        report = self.report or {}
        if report.get("drift"):
            self.log.info(
                "drift in %s: following %s", ", ".join(report.get("drifted_features", [])), self.drift_task_id
            )
            return self.drift_task_id
        self.log.info("no drift (%s): following %s", report.get("status", "no report"), self.no_drift_task_id)
        return self.no_drift_task_id
