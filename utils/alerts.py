"""Alerts: events that need a person, delivered through Airflow's notifiers.

A pipeline's ``alerts`` (a list of routes, see :class:`~airflow_mlops.pipeline.spec.AlertRoute`) reaches every
task of its DAGs through ``default_args["alerts"]``: the operators and sensors of this package take it (the
:class:`Alerting` base) and send what they decide (drift found, retraining started or skipped, a model promoted,
rejected or rolled back, a sensor that timed out and skipped, performance drift); the DAGs'
``on_failure_callback`` (:class:`FailureAlert`) sends a task's final failure (a quality gate, or any other).

Each message opens with the same first lines as the task's log (what, next, fix, the links) and names the
DAG, run and task with a link to the task in the Airflow UI. Routes: ``smtp`` (the smtp provider's
``SmtpNotifier``), ``slack`` (the slack provider's ``SlackWebhookNotifier``), or ``notifier`` (any
``BaseNotifier`` class; it finds the alert as ``context["mlops_alert"]``: ``event``, ``subject``, ``text``,
``links``). A route that cannot deliver is logged and never fails the task.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

ALERTS_XCOM = "mlops_alerts"  # a task instance's events: [{event, headline, delivered, routes, at}]
_RECORDED: dict[tuple, list[dict[str, Any]]] = {}  # per task try, in the process that runs it

EVENT_TITLES = {
    "quality_gate_failed": "quality gate failed",
    "quality_anomaly": "quality anomaly",
    "task_failed": "task failed",
    "sensor_timed_out": "data never came: skipped",
    "drift_found": "drift found",
    "retraining_started": "retraining started",
    "retraining_skipped": "retraining skipped",
    "model_promoted": "model promoted",
    "model_rejected": "model rejected",
    "model_rolled_back": "model rolled back",
    "performance_drift": "performance drift",
}


def _route(route: Any) -> dict[str, Any]:
    return route.model_dump() if hasattr(route, "model_dump") else dict(route)


def task_url(context: Mapping[str, Any]) -> str:
    """The task instance's page in the Airflow UI."""
    from urllib.parse import quote

    from airflow_mlops.tracking.registry import airflow_base_url

    ti = context.get("ti")
    if ti is None:
        return ""
    return f"{airflow_base_url()}/dags/{quote(ti.dag_id)}/runs/{quote(ti.run_id, safe='')}/tasks/{quote(ti.task_id)}"


def message(event: str, context: Mapping[str, Any], first_lines: str, links: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(subject, text) of an alert: the event and where, then the first lines and every link."""
    ti = context.get("ti")
    where = f"{ti.dag_id} / {ti.task_id}" if ti is not None else "airflow-mlops"
    headline = first_lines.strip().splitlines()[0] if first_lines.strip() else EVENT_TITLES.get(event, event)
    subject = f"[airflow-mlops] {EVENT_TITLES.get(event, event)}: {where}"
    for prefix in ("FAILED: ", "SKIPPED: "):
        headline = headline.removeprefix(prefix)
    lines = [f"{EVENT_TITLES.get(event, event).upper()}: {headline}"]
    rest = first_lines.strip().splitlines()[1:]
    lines += rest
    all_links = dict(links or {})
    if ti is not None:
        all_links.setdefault("task log", task_url(context))
        lines.append(f"run: {ti.run_id}")
    shown = "\n".join(lines)
    for label, url in all_links.items():
        if url and url not in shown:
            lines.append(f"{label}: {url}")
    return subject, "\n".join(lines)


def _notifier(route: dict[str, Any], subject: str, text: str) -> Any:
    kind = route["kind"]
    if kind == "smtp":
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        from airflow_mlops.pages import render

        body = render("alert_mail.html", title=subject, text=text)
        return SmtpNotifier(
            to=list(route.get("to") or []), from_email=route.get("from_email"), subject=subject, html_content=body,
            smtp_conn_id=route.get("conn_id") or "smtp_default",
        )  # fmt: skip
    if kind == "slack":
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        return SlackWebhookNotifier(
            slack_webhook_conn_id=route.get("conn_id") or "slack_webhook_default", text=text, unfurl_links=False
        )
    import importlib

    module, _, name = str(route["notifier"]).rpartition(".")
    return getattr(importlib.import_module(module), name)(**(route.get("kwargs") or {}))


def send(
    routes: list[Any] | None, event: str, context: Mapping[str, Any], first_lines: str,
    links: Mapping[str, str] | None = None,
) -> int:  # fmt: skip
    """Send one event to every route that takes it, and record it on the task instance (the pipeline page's
    list of alerts); returns how many routes delivered it. Never raises."""
    wanted = [r for r in map(_route, routes or []) if event in (r.get("events") or EVENT_TITLES)]
    try:
        subject, text = message(event, context, first_lines, links)
    except Exception as err:  # a context without a full task instance: nothing to send or record
        log.warning("alert %s not sent: its message could not be built: %s: %s", event, type(err).__name__, err)
        return 0
    alert_context = {**dict(context), "mlops_alert": {"event": event, "subject": subject, "text": text, "links": dict(links or {})}}
    delivered = 0
    for route in wanted:
        try:
            # notify() directly: the text is final, and must not be rendered as a Jinja template
            _notifier(route, subject, text).notify(alert_context)
            delivered += 1
        except Exception as err:  # an alert must never fail the task or hide its own error
            log.warning("alert %s to %s route not delivered: %s: %s", event, route["kind"], type(err).__name__, err)
    if delivered:
        log.info("alert %s sent to %d route(s)", event, delivered)
    _record(context, event, text, delivered, len(wanted))
    return delivered


def _record(context: Mapping[str, Any], event: str, text: str, delivered: int, routes: int) -> None:
    """Every event of the task instance, sent or not (a pipeline may have no route for it), as its XCom
    :data:`ALERTS_XCOM`: the MLOps view's pipeline page lists them with a link to the task's log. A courtesy:
    never fails the task."""
    import datetime as dt

    ti = context.get("ti")
    if ti is None:
        return
    try:
        key = tuple(getattr(ti, a, None) for a in ("dag_id", "run_id", "task_id", "map_index", "try_number"))
        if key not in _RECORDED:  # a process runs one task try at a time: keep only this one's
            _RECORDED.clear()
        records = _RECORDED.setdefault(key, [])  # this try's events so far: the XCom holds them all
        records.append({
            "event": event, "headline": text.splitlines()[0][:300] if text else event, "delivered": delivered,
            "routes": routes, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        })  # fmt: skip
        ti.xcom_push(key=ALERTS_XCOM, value=records)
    except Exception as err:
        log.warning("alert %s not recorded for the MLOps view: %s: %s", event, type(err).__name__, err)


class Alerting(BaseOperator):
    """For operators that decide something a person must hear of: ``alerts`` (the pipeline's routes, usually
    through ``default_args``) and :meth:`alert`."""

    def __init__(self, *, alerts: list[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alerts = [_route(r) for r in alerts or []]

    def alert(self, context: Context, event: str, first_lines: str, links: Mapping[str, str] | None = None) -> int:
        return send(self.alerts, event, context, first_lines, links)


class FailureAlert:
    """A task's ``on_failure_callback``: its final failure as ``quality_gate_failed`` (a gate) or
    ``task_failed``, with the failure block the task logged (or the exception) as the first lines."""

    def __init__(self, routes: list[Any]) -> None:
        self.routes = [_route(r) for r in routes]

    def __call__(self, context: Context) -> None:
        from airflow_mlops.utils.failures import FAILURE_XCOM, pushed_links

        err = context.get("exception")
        block = getattr(err, "block", None)
        if block is None:
            try:
                block = context["ti"].xcom_pull(task_ids=context["ti"].task_id, key=FAILURE_XCOM)
            except Exception:
                block = None
        event = "quality_gate_failed" if type(err).__name__ == "QualityGateFailed" else "task_failed"
        first = block or f"FAILED: {type(err).__name__ if err else 'the task'}: {err or 'see the task log'}"
        send(self.routes, event, context, first, pushed_links(context.get("task"), context))
