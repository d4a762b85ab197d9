"""The release cycle end to end on a real MLflow store and real Airflow runs (dag.test).

v1 -> champion; a worse v2 is rejected with the reason in the log and champion stays v1; a better v3 is
promoted; rollback returns champion to v1; re-running v3's interval adds no version; the scoring DAG
serves the champion with a canary; the approval path waits for and honours a person's decision; a token
set on the MLflow connection appears nowhere.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pandas as pd
import pytest
from helpers import pipelines_bag, run_dag, versions, xcom

pytestmark = pytest.mark.slow  # runs the release cycle end to end


SECRET = "tok-E2E-5ecret-9f3a77"
WORSE = {"epochs": 1, "learning_rate": 0.001}
BETTER = {"epochs": 8, "hidden_units": [32, 16]}


@pytest.fixture
def bag(mlflow_uri, roots, monkeypatch):
    conn = {"conn_type": "mlflow", "password": SECRET, "extra": {"tracking_uri": mlflow_uri}}
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps(conn))
    dags = pipelines_bag()
    assert dags.import_errors == {}
    return dags


def _champion(name: str) -> str | None:
    for v in versions(name):
        if "champion" in v.aliases:
            return str(v.version)
    return None


def test_release_cycle_end_to_end(bag, roots, capfd, tmp_path):
    import mlflow

    train = bag.dags["release_churn__train"]

    run1, states = run_dag(train, "2026-01-11", conf={"model_params": None})
    assert states["register_model"] == "success"
    assert _champion("release_churn") == "1"

    run2, states = run_dag(train, "2026-01-18", conf={"model_params": WORSE})
    assert states["register_model"] == "success"
    reg2 = xcom("release_churn__train", run2.run_id, "register_model")
    assert (reg2["version"], reg2["alias"], reg2["promoted"]) == ("2", "challenger", False)
    assert "does not meet the improvement rule" in reg2["reason"]
    assert _champion("release_churn") == "1"
    log = capfd.readouterr().out
    assert "does not meet the improvement rule" in log  # the reason is in the task log
    assert "roc_auc vs champion v1" in log  # with the table of tests

    run3, states = run_dag(train, "2026-01-25", conf={"model_params": BETTER})
    reg3 = xcom("release_churn__train", run3.run_id, "register_model")
    assert (reg3["version"], reg3["alias"], reg3["previous_champion"]) == ("3", "champion", "1")
    report_url = xcom("release_churn__train", run3.run_id, "test_model", key="model_test_report_url")
    from mlflow.tracking import MlflowClient

    run_of_v3 = versions("release_churn")[2].run_id
    # over HTTP: this connection names no MLflow UI, so the plugin's MLflow pages in the API server
    assert report_url == f"http://localhost:8080/mlops/mlflow/runs/{run_of_v3}/artifacts/tests/report.html"
    page = Path(MlflowClient().download_artifacts(run_of_v3, "tests/report.html", str(tmp_path))).read_text()
    assert "Slices by plan" in page
    assert "<svg" in page
    v3 = versions("release_churn")[2]
    assert v3.tags["mlops.tests"] == "passed"
    assert "model tests passed" in v3.description
    assert v3.tags["mlops.window_start"].startswith("2026-01-22")  # lineage: the data it learned from
    assert v3.tags["mlops.data_sha256"]
    assert v3.tags["mlops.profile_uri"]
    importance = json.loads(v3.tags["mlops.feature_importance"])  # measured on its held-out rows at test time
    assert sum(importance.values()) == pytest.approx(1.0, abs=1e-3)
    assert set(importance) <= {"age", "tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "plan",
                               "region", "payment_method"}  # fmt: skip
    assert len(json.loads(v3.tags["mlops.calibration"])["x"]) >= 2

    _, states = run_dag(bag.dags["release_churn__rollback"], conf={"reason": "v3 misbehaves on live traffic"})
    assert states["rollback_champion"] == "success"
    assert _champion("release_churn") == "1"
    assert "v3 misbehaves on live traffic" in versions("release_churn")[2].tags["mlops.rolled_back"]

    rerun, states = run_dag(train, "2026-01-25", conf={"model_params": BETTER})
    assert states["register_model"] == "success"
    again = xcom("release_churn__train", rerun.run_id, "register_model")
    assert (again["version"], again["reused"], again["promoted"]) == ("3", True, False)
    assert len(versions("release_churn")) == 3  # no duplicate version
    assert _champion("release_churn") == "1"  # a rolled-back version does not come back by itself
    assert "rolled back earlier" in again["reason"]  # the re-run reproduces the recorded decision ...
    assert versions("release_churn")[1].aliases == ["challenger"]  # ... and moves no alias
    # a person puts v3 back on canary traffic, on purpose (a re-run never would)
    from airflow_mlops.tools.cli import main

    assert main(["promote", "--model", "release_churn", "--version", "3", "--alias", "challenger",
                 "--reason", "fixed upstream: back to canary"]) == 0  # fmt: skip

    scored, states = run_dag(bag.dags["release_churn__score"], "2026-01-27")
    assert states["score_partition"] == "success"
    result = xcom("release_churn__score", scored.run_id, "score_partition")
    pred = pd.read_parquet(result["output_uri"])
    assert set(pred["model_version"]) == {"1", "3"}  # champion v1, canary to challenger v3
    assert 0.15 < (pred["model_version"] == "3").mean() < 0.25
    assert result["rows_by_model"]["challenger"] == int((pred["model_version"] == "3").sum())
    assert (states["estimate_performance"], states["no_estimated_drift"]) == ("success", "success")
    estimated = xcom("release_churn__score", scored.run_id, "estimate_performance")  # before any label
    assert (estimated["champion"], estimated["status"]) == ("1", "no_drift")
    assert set(estimated["metrics"]) == {"roc_auc"}  # the metrics its tests declare (thresholds and compare)
    for row in estimated["metrics"].values():
        assert row["low"] <= row["estimate"] <= row["high"]

    for day in ("2026-01-27", "2026-01-28"):  # labels arrive: live metrics per version
        if day != "2026-01-27":
            run_dag(bag.dags["release_churn__score"], day)
        live_run, states = run_dag(bag.dags["release_churn__live_metrics"], day)
        assert states["live_metrics"] == "success"
        assert (states["no_performance_drift"], states["trigger_retraining"]) == ("success", "skipped")
    live = xcom("release_churn__live_metrics", live_run.run_id, "live_metrics")
    assert set(live["per_version"]) == {"1", "3"}
    assert live["per_version"]["3"]["roc_auc"] > live["per_version"]["1"]["roc_auc"]
    perf = live["performance"]  # the champion's live roc_auc against what its tests measured
    assert (perf["champion"], perf["status"]) == ("1", "no_drift")
    assert perf["live"] == live["per_version"]["1"]["roc_auc"]
    assert perf["drop"] <= perf["tolerance"]
    assert set(perf["metrics"]) == {"roc_auc"}  # every declared metric is watched
    assert (live["won"], live["streak"], live["proposed"]) == (True, 2, True)
    assert "proposed v3 for promotion, a person decides (it was rolled back" in live["decision"]
    assert _champion("release_churn") == "1"  # the rolled-back v3 is proposed, never promoted again by itself
    proposal = versions("release_churn")[2].tags["mlops.live_proposal"]
    assert "better than champion v1 on live roc_auc: difference +" in proposal  # the test, not a count of wins
    assert live["evidence"]["low"] > 0  # the interval lies above no improvement
    assert live["evidence"]["windows"] == 2
    live_runs = mlflow.search_runs(
        experiment_names=["airflow-mlops/release_churn/live"], output_format="list"
    )
    assert len(live_runs) == 2
    assert {"v1_roc_auc", "v3_roc_auc", "v1_rows"} <= set(live_runs[0].data.metrics)

    _assert_secret_nowhere(capfd.readouterr().out + capfd.readouterr().err)


def _assert_secret_nowhere(log: str) -> None:
    """The connection's token reaches no task log, XCom, rendered field or MLflow param/tag/description."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from mlflow.tracking import MlflowClient
    from sqlalchemy import select

    assert "release_churn" in log
    assert SECRET not in log
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    for path in logs.rglob("*") if logs.exists() else []:
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
    with create_session() as session:
        xcoms = session.scalars(select(XComModel).where(XComModel.dag_id.like("release_churn%"))).all()
        rendered = session.scalars(
            select(RenderedTaskInstanceFields).where(RenderedTaskInstanceFields.dag_id.like("release_churn%"))
        ).all()
        assert xcoms
        assert rendered
        for row in xcoms:
            assert SECRET not in json.dumps(row.value, default=str)
        for row in rendered:
            assert SECRET not in json.dumps(row.rendered_fields, default=str)
    c = MlflowClient()
    for exp in c.search_experiments():
        for run in c.search_runs([exp.experiment_id]):
            assert SECRET not in json.dumps([run.data.params, run.data.tags])
    for v in versions("release_churn"):
        assert SECRET not in json.dumps([v.tags, v.description])


def _respond(dag_id: str, option: str, user: str, stop: threading.Event, seen: dict) -> None:
    """What the Required Actions page does: answer a task waiting for input, through the HITL API route. Before
    answering, it records what the run looks like while it waits (``seen``), for the caller to assert."""
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    class User:
        def get_id(self) -> str:
            return user

        def get_name(self) -> str:
            return user

    while not stop.is_set():
        with create_session() as session:
            ti = session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.task_id == "approve_release",
                    TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                )  # fmt: skip
            ).first()
            if ti is not None:
                promote = session.scalars(
                    select(TaskInstance).where(
                        TaskInstance.dag_id == dag_id,
                        TaskInstance.run_id == ti.run_id,
                        TaskInstance.task_id == "promote_model",
                    )  # fmt: skip
                ).first()
                seen.update(promote_model=promote.state if promote else None, champion=_champion(
                    dag_id.removesuffix("__train")))  # fmt: skip
                update_hitl_detail(
                    dag_id=dag_id, dag_run_id=ti.run_id, task_id="approve_release",
                    update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[option], params_input={}),
                    user=User(), session=session,
                )  # fmt: skip
                return
        stop.wait(0.5)  # poll the run's state


def _run_with_answer(dag, day: str, option: str, user: str):
    stop, seen = threading.Event(), {}
    responder = threading.Thread(target=_respond, args=(dag.dag_id, option, user, stop, seen), daemon=True)
    responder.start()
    try:
        run, states = run_dag(dag, day, conf={"model_params": None})
    finally:
        stop.set()
        responder.join(10)
    return run, states, seen


def test_approval_path_waits_for_and_honours_the_decision(bag):
    dag = bag.dags["approval_churn__train"]

    run, states, waiting = _run_with_answer(dag, "2026-01-11", "Reject", "carol")
    # while it waited for a person, nothing downstream ran and nobody was champion
    assert waiting == {"promote_model": None, "champion": None}
    assert states["approve_release"] == "success"
    assert states["promote_model"] == "skipped"
    (v1,) = versions("approval_churn")
    assert v1.aliases == ["challenger"]
    assert "awaiting approval" in v1.tags["mlops.promotion_decision"]
    assert _champion("approval_churn") is None

    run, states, waiting = _run_with_answer(dag, "2026-01-18", "Approve", "alice")
    assert waiting == {"promote_model": None, "champion": None}  # v2 waits; still no champion
    assert states["promote_model"] == "success"
    promoted = xcom("approval_churn__train", run.run_id, "promote_model")
    assert (promoted["version"], promoted["promoted"], promoted["approved_by"]) == ("2", True, "alice")
    assert _champion("approval_churn") == "2"
    assert versions("approval_churn")[1].tags["mlops.approved_by"] == "alice"
