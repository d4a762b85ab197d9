"""Alerts through Airflow's notifiers, delivered to a real SMTP server (aiosmtpd) and a local webhook receiver
(the slack provider's webhook notifier posts to it), both started by the tests."""

from __future__ import annotations

import email
import json
import re
import socket
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from helpers import doc_excerpts, run_dag, xcom

from airflow_mlops.pipeline.spec import ALERT_EVENTS
from airflow_mlops.utils.alerts import ALERTS_XCOM, EVENT_TITLES, send


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mailbox():
    """A real SMTP server on a free port; its messages, parsed."""
    from aiosmtpd.controller import Controller

    received: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(email.message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller.port, received
    controller.stop()


@pytest.fixture
def webhook():
    """A local HTTP receiver standing in for Slack's incoming webhook; the JSON bodies it got."""
    received: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], received
    server.shutdown()


@pytest.fixture
def routes(mailbox, webhook, monkeypatch):
    smtp_port, _ = mailbox
    hook_port, _ = webhook
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port, "login": "", "password": "",
        "extra": {"disable_tls": True, "disable_ssl": True},
    }))  # fmt: skip
    # the webhook notifier posts to <schema>://<host>/<password>
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SLACK", json.dumps({
        "conn_type": "slackwebhook", "host": f"127.0.0.1:{hook_port}/services", "schema": "http", "password": "T0/B0/x",
    }))  # fmt: skip
    return [
        {"kind": "smtp", "to": ["oncall@example.com"], "from_email": "airflow@example.com", "conn_id": "alerts_smtp"},
        {"kind": "slack", "conn_id": "alerts_slack"},
    ]


def _body(message) -> str:
    import html

    part = message.get_body(preferencelist=("html", "plain"))
    text = part.get_content()
    return html.unescape(text.split("<pre", 1)[-1].split(">", 1)[-1].rsplit("</pre>", 1)[0])


def test_each_event_kind_sends_one_message_with_its_first_line(routes, mailbox, webhook):
    _, mails = mailbox
    _, posts = webhook
    ti = SimpleNamespace(dag_id="churn__drift_monitor", run_id="scheduled__2026-01-22T00:00:00+00:00", task_id="t")
    for event in ALERT_EVENTS:
        delivered = send(routes, event, {"ti": ti}, f"FAILED: what happened for {event}\nnext: what follows",
                         {"report": "http://airflow.example/mlops/r"})  # fmt: skip
        assert delivered == 2
    assert len(mails) == len(posts) == len(ALERT_EVENTS)
    for event, mail, (path, post) in zip(ALERT_EVENTS, mails, posts, strict=True):
        first = f"{EVENT_TITLES[event].upper()}: what happened for {event}"
        assert mail["Subject"] == f"[airflow-mlops] {EVENT_TITLES[event]}: churn__drift_monitor / t"
        assert mail["To"] == "oncall@example.com"
        assert _body(mail).splitlines()[0] == first
        assert post["text"].splitlines()[0] == first
        assert path == "/services/T0/B0/x"
        assert "report: http://airflow.example/mlops/r" in post["text"]
        # the task's page in the Airflow UI, over http
        assert "task log: http://" in post["text"]
        assert "/dags/churn__drift_monitor/runs/" in post["text"]


def test_a_route_takes_only_its_events_and_one_that_cannot_deliver_never_raises(routes, mailbox, monkeypatch):
    _, mails = mailbox
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="t")
    only_drift = [{**routes[0], "events": ["drift_found"]}]
    assert send(only_drift, "model_promoted", {"ti": ti}, "x") == 0
    assert send(only_drift, "drift_found", {"ti": ti}, "x") == 1
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": _free_port()}))
    assert send(only_drift, "drift_found", {"ti": ti}, "x") == 0  # logged, not raised
    assert len(mails) == 1


def test_every_event_is_recorded_on_its_task_for_the_mlops_view_sent_or_not(routes, mailbox):
    """The pipeline page lists a task's events from its XCom: each one, with how many routes took it (an event
    no route takes, such as a quality anomaly in a pipeline without alerts, is listed too)."""
    pushed = []
    ti = SimpleNamespace(dag_id="d", run_id="recorded", task_id="t", map_index=-1, try_number=1,
                         xcom_push=lambda key, value: pushed.append((key, [dict(v) for v in value])))  # fmt: skip
    only_drift = [{**routes[0], "events": ["drift_found"]}]
    assert send(only_drift, "drift_found", {"ti": ti}, "2 features drifted\nnext: a retraining") == 1
    assert send(only_drift, "quality_anomaly", {"ti": ti}, "rows 310 [2026-01-20] (expected 1,800 .. 2,200)") == 0
    key, records = pushed[-1]
    assert key == ALERTS_XCOM
    assert [(r["event"], r["delivered"], r["routes"]) for r in records] == [("drift_found", 1, 1), ("quality_anomaly", 0, 0)]
    assert [r["headline"] for r in records] == [
        "DRIFT FOUND: 2 features drifted", "QUALITY ANOMALY: rows 310 [2026-01-20] (expected 1,800 .. 2,200)",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def alert_dags():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(Path(__file__).resolve().parents[1] / "dag_bundle" / "partition_waits.py"))
    assert bag.import_errors == {}
    return bag


@pytest.mark.slow
def test_a_missing_day_skipped_by_the_sensor_reaches_a_person(alert_dags, routes, mailbox, webhook, tmp_path, monkeypatch, capfd):
    """on_timeout: skip ends the run green; the time-out is an alert all the same (every route gets it)."""
    monkeypatch.setenv("AIRFLOW_VAR_MLOPS_WAIT_ROOT", str(tmp_path / "incoming"))
    _, states = run_dag(alert_dags.dags["alert_missing_day"], "2026-01-21")
    assert states == {"wait": "skipped", "downstream": "skipped"}
    (mail,), ((_, post),) = mailbox[1], webhook[1]
    first = _body(mail).splitlines()[0]
    assert first.startswith("DATA NEVER CAME: SKIPPED: timed out after 1s waiting for the partition to be complete: ")
    assert "not found: " in first  # names the missing file
    assert "not found::" not in first
    assert post["text"].splitlines()[0] == first
    assert "not run: downstream" in post["text"]
    # docs/operations.md quotes this block: it is the one the task logged (this test's folder aside)
    logged = capfd.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(logged) if "SKIPPED: timed out" in line)
    block = [re.sub(r"^.*?(SKIPPED: )", r"\1", logged[start]), *logged[start + 1 : start + 3]]
    block[-1] = re.sub(r" \[airflow\.task[^\]]*\] loc=\S+$", "", block[-1])  # the log record's own suffix
    for path, excerpt in doc_excerpts("sensor-skip").items():
        quoted = re.sub(r"/\S+/incoming/", f"{tmp_path}/incoming/", excerpt)
        assert "\n".join(block) == quoted, f"{path}: the sensor-skip excerpt is stale"


@pytest.mark.slow
def test_a_failed_quality_gate_opens_its_log_and_its_alert_with_the_failed_checks(
    alert_dags, routes, mailbox, webhook, tmp_path, monkeypatch, capfd
):  # fmt: skip
    root = tmp_path / "incoming"
    monkeypatch.setenv("AIRFLOW_VAR_MLOPS_WAIT_ROOT", str(root))
    part = root / "date=2026-01-20" / "part-0.parquet"
    part.parent.mkdir(parents=True)
    pd.DataFrame({"x": range(40)}).to_parquet(part)  # 34 rows above max 5 (6..39)
    capfd.readouterr()
    _, states = run_dag(alert_dags.dags["alert_quality_gate"], "2026-01-21")
    assert states == {"validate": "failed", "train": "upstream_failed"}

    log = capfd.readouterr().out.splitlines()
    task_lines = [line for line in log if "FAILED: data validation failed" in line]
    assert len(task_lines) == 1  # the block, once
    start = log.index(task_lines[0])
    opening = "\n".join(log[start : start + 15])
    # the failed check, its column, its day with its offending rows, what was expected and found
    assert "max x 2026-01-20 (34) <= 5 39 34 FAIL" in " ".join(opening.split())
    assert "next: no retry" in opening
    assert "not run: train" in opening
    assert "fix: the data upstream (or the spec's constraints if the data is right), then clear this task" in opening
    assert "Validation report: http://" in opening  # the link, over http, to the plugin's report route
    # the failed-only table in the block, then the full table after it: the row twice, the block once
    assert sum(" ".join(line.split()).startswith("max x 2026-01-20 (34)") for line in log) == 2

    (mail,), ((_, post),) = mailbox[1], webhook[1]  # one alert per route: the final failure, not each try
    body = _body(mail)
    assert body.splitlines()[0].startswith("QUALITY GATE FAILED: data validation failed for alerted window 2026-01-20")
    assert "Validation report: http://" in body
    assert "/mlops/reports/alert_quality_gate/" in body
    assert post["text"] == body


def _days(root: Path, broken: str) -> None:
    """Five days of x ~ 50 (y ~ 10); on ``broken``, x in thousands (a unit change, inside the declared range)."""
    import numpy as np

    for i in range(16, 21):
        day = f"2026-01-{i}"
        rng = np.random.default_rng(i)
        frame = pd.DataFrame({"x": rng.normal(50, 5, 500).clip(0), "y": rng.normal(10, 1, 500)})
        if day == broken:
            frame["x"] *= 1000
        (root / f"date={day}").mkdir(parents=True)
        frame.to_parquet(root / f"date={day}" / "part-0.parquet")


@pytest.mark.slow
def test_a_day_that_breaks_its_history_is_alerted_in_monitoring_and_gates_training(
    alert_dags, routes, mailbox, webhook, tmp_path, monkeypatch
):  # fmt: skip
    """A x1000 unit change inside the declared range: the day is checked against the days before it (each run
    stores its day's metrics), named with column, day, band and value; monitoring goes on and alerts
    quality_anomaly, training fails on it without retry."""
    root = tmp_path / "incoming"
    monkeypatch.setenv("AIRFLOW_VAR_MLOPS_WAIT_ROOT", str(root))
    _days(root, broken="2026-01-20")
    for dag_id in ("alert_quality_anomaly", "gate_quality_anomaly"):
        for day in ("2026-01-17", "2026-01-18", "2026-01-19", "2026-01-20"):  # the history, then the new day
            _, states = run_dag(alert_dags.dags[dag_id], day)
            assert states == {"validate": "success", "downstream": "success"}, (dag_id, day)
    run, states = run_dag(alert_dags.dags["alert_quality_anomaly"], "2026-01-21")
    assert states == {"validate": "success", "downstream": "success"}
    (finding,) = xcom("alert_quality_anomaly", run.run_id, "validate")["quality"]
    assert (finding["check"], finding["column"], finding["partition"]) == ("quality: scale", "x", "2026-01-20")
    assert finding["expected"].startswith("magnitude (rms) ")
    assert "(usual 50." in finding["expected"]
    assert float(finding["observed"]) > 40_000
    (mail,), ((_, post),) = mailbox[1], webhook[1]
    body = _body(mail)
    assert body.splitlines()[0].startswith("QUALITY ANOMALY: 1 finding(s) in alert_quality_anomaly 2026-01-20")
    assert "quality: scale x 2026-01-20 magnitude (rms)" in " ".join(body.split())
    assert post["text"] == body

    _, states = run_dag(alert_dags.dags["gate_quality_anomaly"], "2026-01-21")
    assert states == {"validate": "failed", "downstream": "upstream_failed"}
    (gate_mail,) = mailbox[1][1:]
    gate = _body(gate_mail)
    assert gate.splitlines()[0].startswith("QUALITY GATE FAILED: data validation failed for gate_quality_anomaly")
    assert "quality: scale" in gate
    assert "next: no retry" in gate


def test_a_specs_alerts_reach_every_task_of_its_dags(tmp_path):
    """The spec's routes go to every airflow-mlops operator and sensor (through default_args) and every task
    gets the failure callback; a spec without alerts adds neither."""
    import yaml

    from airflow_mlops.pipeline.factory import build_dags
    from airflow_mlops.pipeline.spec import load_spec
    from airflow_mlops.utils.alerts import Alerting, FailureAlert

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "dags" / "pipelines" / "demo_churn.yaml").read_text())
    raw.pop("alerts", None)
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({**raw, "name": "plain"}))
    raw["alerts"] = [{"kind": "slack", "conn_id": "alerts_slack"}, {"kind": "smtp", "to": ["oncall@example.com"]}]
    alerted = tmp_path / "alerted.yaml"
    alerted.write_text(yaml.safe_dump({**raw, "name": "alerted"}))

    deciding = set()
    for dag in build_dags(load_spec(alerted)).values():
        for task in dag.tasks:
            callbacks = task.on_failure_callback if isinstance(task.on_failure_callback, list) else [task.on_failure_callback]
            assert any(isinstance(c, FailureAlert) for c in callbacks), task.task_id
            if isinstance(task, Alerting):
                assert [r["kind"] for r in task.alerts] == ["slack", "smtp"]
                deciding.add(type(task).__name__)
    # the tasks that decide what a person must hear of
    assert {"DriftSensor", "PartitionCompleteSensor", "TriggerRetrainingOperator", "RegisterModelOperator",
            "RollbackOperator", "LiveMetricsOperator"} <= deciding  # fmt: skip
    for dag in build_dags(load_spec(plain)).values():
        for task in dag.tasks:
            assert not task.on_failure_callback
            assert getattr(task, "alerts", []) == []
