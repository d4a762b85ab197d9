"""Where events go: the alert routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from airflow_mlops.schema import Section, problem
from airflow_mlops.schema import fail as _fail

ALERT_EVENTS = (
    "quality_gate_failed", "quality_anomaly", "task_failed", "sensor_timed_out", "drift_found", "retraining_started",
    "retraining_skipped", "model_promoted", "model_rejected", "model_rolled_back", "performance_drift",
)  # fmt: skip
AlertEvent = Literal[
    "quality_gate_failed", "quality_anomaly", "task_failed", "sensor_timed_out", "drift_found", "retraining_started",
    "retraining_skipped", "model_promoted", "model_rejected", "model_rolled_back", "performance_drift",
]  # fmt: skip


class AlertRoute(Section):
    """Where events go (``alerts``: a list of routes), through Airflow's notifiers."""

    kind: Literal["smtp", "slack", "notifier"]
    """smtp: mail through the smtp provider; slack: the slack provider's incoming-webhook notifier; notifier:
    any BaseNotifier class (``notifier``), which reads the alert from the context's ``mlops_alert``"""
    events: list[AlertEvent] = Field(default_factory=lambda: list(ALERT_EVENTS), min_length=1)
    """the events this route gets (default: all)"""
    conn_id: str | None = Field(None, min_length=1, description="smtp: default smtp_default; slack: slack_webhook_default")
    to: list[str] = Field(default_factory=list, description="smtp: the recipients")
    from_email: str | None = Field(None, description="smtp: the sender (default: the connection's)")
    notifier: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$", description="kind notifier: module.Class")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="kind notifier: the class's arguments")

    @model_validator(mode="after")
    def _complete(self) -> AlertRoute:
        if self.kind == "smtp" and not self.to:
            raise _fail(problem("to", [], "a list of mail addresses (kind smtp)"))
        if self.kind == "notifier" and not self.notifier:
            raise _fail(problem("notifier", None, "a BaseNotifier class path such as my_company.alerts.Pager"))
        if self.kind != "notifier" and (self.notifier or self.kwargs):
            raise _fail(problem("notifier", self.notifier or self.kwargs, "only with kind notifier"))
        return self
