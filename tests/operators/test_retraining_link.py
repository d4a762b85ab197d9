"""The retraining trigger's "Triggered DAG" button opens the triggered run, and is absent for a held report."""

from __future__ import annotations

import pytest

from airflow_mlops.links.retraining import TriggeredRetrainingLink
from airflow_mlops.operators.retraining import TriggerRetrainingOperator


@pytest.mark.parametrize(("pushed", "expected"), [(None, ""), ("manual__2026-01-23", "/dags/p__retrain/runs/manual__2026-01-23")])
def test_the_button_opens_the_triggered_run_or_is_not_there(monkeypatch, pushed, expected):
    from airflow.sdk.execution_time.xcom import XCom

    asked = []

    def get_value(*, ti_key, key):
        asked.append(key)
        return pushed

    monkeypatch.setattr(XCom, "get_value", get_value)
    op = TriggerRetrainingOperator(
        task_id="trigger_retraining", trigger_dag_id="p__retrain", ledger_uri="l.json", report={}, window_end="x",
    )  # fmt: skip
    (link,) = op.operator_extra_links
    assert isinstance(link, TriggeredRetrainingLink)
    url = link.get_link(op, ti_key=object())
    assert asked == ["trigger_run_id"]
    if expected:
        assert url.endswith(expected)  # under the API server's base_url
    else:
        assert url == ""  # no button (Airflow's own link would open /runs/None)
