"""The compiled demo pipeline, run through dag.test() on a real Airflow DB and a real MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import dag_runs, run_dag, versions, xcom

from airflow_mlops.tracking.registry import CHAMPION

pytestmark = pytest.mark.slow  # runs the generated DAGs end to end (training)


NAME = "demo_churn"
ROOT = Path(__file__).resolve().parents[3]


def _finish_retraining_runs() -> None:
    """dag.test() does not run the DAG runs a trigger creates: mark them done, as the scheduler would."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(DagRun)
            .where(
                DagRun.dag_id == f"{NAME}__retrain",
                DagRun.state.in_([DagRunState.QUEUED, DagRunState.RUNNING]),
            )
            .values(state=DagRunState.SUCCESS)
        )


def _train(dagbag, day="2026-01-18"):
    run, states = run_dag(dagbag.dags[f"{NAME}__train"], day)
    assert states == dict.fromkeys(
        ["validate_data", "train_model", "test_model", "register_model"], "success"
    )
    return run


def test_training_dag_registers_champion_with_lineage(dagbag, mlflow_uri, roots):
    run = _train(dagbag)
    (v,) = versions(NAME)
    assert str(v.version) == "1"
    assert v.aliases == [CHAMPION]
    t = v.tags
    uris = t["mlops.input_uris"].split(",")
    assert len(uris) == 14
    assert uris[0].endswith("date=2026-01-04/part-0.parquet")
    assert uris[-1].endswith("date=2026-01-17/part-0.parquet")
    assert len(t["mlops.input_sha256"].split(",")) == 14
    validation = xcom(f"{NAME}__train", run.run_id, "validate_data")
    assert t["mlops.data_sha256"] == validation["content_hash"]
    assert t["mlops.profile_uri"] == validation["profile_uri"]
    assert validation["profile_uri"].startswith(str(roots["artifacts"]))
    assert validation["rows"] == 14 * 2000
    assert len(t["mlops.params_hash"]) == 16
    assert t["mlops.code_version"].startswith("airflow-mlops==")
    assert t["airflow.dag_id"] == f"{NAME}__train"
    assert t["airflow.run_id"] == run.run_id
    # the interval tags hold the data the version learned from (the window), not the run's schedule interval
    assert t["airflow.data_interval_start"].startswith("2026-01-04")
    assert t["airflow.data_interval_end"].startswith("2026-01-18")
    assert t["mlops.window_start"].startswith("2026-01-04")
    assert len(t["mlops.model_sha256"]) == 64
    assert json.loads(t["mlops.test_metrics"])["roc_auc"] > 0.7
    training = xcom(f"{NAME}__train", run.run_id, "train_model")
    assert xcom(f"{NAME}__train", run.run_id, "train_model", key="mlflow_run_url") == (
        f"http://mlflow.test:5000/#/experiments/{training['experiment_id']}/runs/{training['run_id']}"
    )
    assert xcom(f"{NAME}__train", run.run_id, "register_model", key="model_version_url").endswith(
        f"/#/models/{NAME}/versions/1"
    )


def test_same_interval_twice_leaves_one_version_and_one_run(dagbag, mlflow_uri, roots):
    import mlflow

    first = _train(dagbag)
    a = xcom(f"{NAME}__train", first.run_id, "train_model")  # dag.test() clears it when the date runs again
    second = _train(dagbag)
    assert first.run_id != second.run_id
    assert [str(v.version) for v in versions(NAME)] == ["1"]
    b = xcom(f"{NAME}__train", second.run_id, "train_model")
    assert (a["reused"], b["reused"]) == (False, True)
    assert a["run_id"] == b["run_id"]
    assert xcom(f"{NAME}__train", second.run_id, "register_model")["reused"] is True
    # the re-run reproduces the recorded release decision: no new tests against today's champion
    assert xcom(f"{NAME}__train", second.run_id, "test_model")["reproduced"] is True
    assert xcom(f"{NAME}__train", second.run_id, "register_model")["reproduced"]
    runs = mlflow.search_runs(experiment_names=[f"airflow-mlops/{NAME}"], output_format="list")
    assert len(runs) == 1


def test_drift_monitor_triggers_retraining_only_on_drift(dagbag, mlflow_uri, roots):
    _train(dagbag)
    _finish_retraining_runs()
    monitor = dagbag.dags[f"{NAME}__drift_monitor"]
    before = {r.run_id for r in dag_runs(f"{NAME}__retrain")}

    calm, states = run_dag(monitor, "2026-01-21")  # partition 2026-01-20: before the injected drift
    assert states["wait_for_partition"] == "success"
    waited = xcom(monitor.dag_id, calm.run_id, "wait_for_partition")
    assert (waited["rows"], waited["reason"]) == (2000, "1 file(s), 2000 rows")  # data.completeness.min_rows
    assert states["no_drift"] == "success"
    assert states["trigger_retraining"] == "skipped"
    report = xcom(monitor.dag_id, calm.run_id, "detect_drift")
    assert report["status"] == "no_drift"
    assert report["champion_version"] == "1"
    assert {r.run_id for r in dag_runs(f"{NAME}__retrain")} == before

    drifted, states = run_dag(monitor, "2026-01-23")  # partition 2026-01-22: drifted
    assert states["trigger_retraining"] == "success"
    assert states["no_drift"] == "skipped"
    report = xcom(monitor.dag_id, drifted.run_id, "detect_drift")
    assert report["drift"] is True
    assert {"monthly_charges", "plan"} <= set(report["drifted_features"])
    new = [r for r in dag_runs(f"{NAME}__retrain") if r.run_id not in before]
    assert [r.run_id for r in new] == [f"drift__{drifted.run_id}"]
    assert new[0].conf["drift_report"]["drifted_features"] == report["drifted_features"]
    assert new[0].conf["window_end"].startswith("2026-01-23")

    # the report people look at: HTML with a PNG of the most drifted features, stored and in MLflow, linked
    page = Path(report["report_html"]).read_text()
    assert "monthly_charges" in page
    assert "data:image/png;base64," in page
    assert Path(report["report_png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    link = xcom(monitor.dag_id, drifted.run_id, "detect_drift", key="drift_report_url")
    import mlflow

    experiment = mlflow.MlflowClient().get_run(report["mlflow_run_id"]).info.experiment_id
    # over HTTP: the report logged with the drift run, in the connection's MLflow UI (never a worker's path)
    assert link == f"http://mlflow.test:5000/#/experiments/{experiment}/runs/{report['mlflow_run_id']}/artifacts/drift/report.html"

    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(report["mlflow_run_id"], "drift")}
    assert artifacts == {"drift/report.json", "drift/report.html", "drift/top_features.png"}


def test_retraining_beats_champion_and_is_promoted(dagbag, mlflow_uri, roots):
    _train(dagbag)
    run, states = run_dag(dagbag.dags[f"{NAME}__retrain"], conf={"window_end": "2026-01-23T00:00:00+00:00"})
    assert states["register_model"] == "success"
    result = xcom(f"{NAME}__retrain", run.run_id, "register_model")
    assert (result["version"], result["alias"], result["previous_champion"]) == ("2", CHAMPION, "1")
    tests = xcom(f"{NAME}__retrain", run.run_id, "test_model")
    assert tests["metrics"]["roc_auc"] >= tests["champion_metrics"]["roc_auc"] + 0.005
    v2 = versions(NAME)[1]
    assert v2.tags["mlops.previous_champion"] == "1"
    assert v2.tags["mlops.window_start"].startswith("2026-01-20")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("empty", "empty partitions * 2026-01-10 (part-0.parquet) 0 1 FAIL"),  # the day and its file(s)
        # the renamed column: missing in the one partition that lacks it (its new name is only a warning)
        ("missing_column", "column present monthly_charges 2026-01-10 present missing 2000 FAIL"),
        ("all_nan", "null fraction monthly_charges 2026-01-10 (2000) <= 0.01 0.07143 2000 FAIL"),
        ("corrupt", "cannot read parquet partition"),
    ],
)
def test_bad_input_fails_validation_and_registers_nothing(
    dagbag, mlflow_uri, roots, own_data, damage, message
):
    import pandas as pd
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_mlops.operators.validation import ValidateDataOperator
    from airflow_mlops.pipeline.spec import load_spec

    part = own_data / "demo_churn" / "date=2026-01-10" / "part-0.parquet"
    df = pd.read_parquet(part)
    if damage == "empty":
        df.iloc[:0].to_parquet(part)
    elif damage == "missing_column":
        df.rename(columns={"monthly_charges": "monthly_charge"}).to_parquet(part)
    elif damage == "all_nan":
        df.assign(monthly_charges=float("nan")).to_parquet(part)
    else:
        part.write_bytes(part.read_bytes()[: len(part.read_bytes()) // 2])

    run, states = run_dag(dagbag.dags[f"{NAME}__train"], "2026-01-18")
    assert str(run.state) == "failed"
    assert states["validate_data"] == "failed"
    assert states["train_model"] == "upstream_failed"
    assert versions(NAME) == []
    assert not (roots["artifacts"] / NAME / "profiles").exists()

    # The same operator, outside the scheduler, shows the message on-call reads (and it is not retried).
    spec = load_spec(ROOT / "dags" / "pipelines" / "demo_churn.yaml")
    op = ValidateDataOperator(
        task_id="v", pipeline=NAME, data_uri=f"{own_data}/demo_churn/date={{date}}/part-0.parquet",
        artifact_uri=str(roots["artifacts"]), features=spec.feature_names, numeric=list(spec.features.numeric), target=spec.target,
        constraints=spec.constraints_dict(), window_start=None, window_end="2026-01-18", window_days=14,
    )  # fmt: skip
    with pytest.raises(AirflowFailException) as err:
        op.execute({})
    assert " ".join(message.split()) in " ".join(err.value.block.split())
    assert err.value.block.startswith("FAILED: ")
    assert "next: no retry" in err.value.block


def test_drifted_partitions_in_a_row_start_one_retraining_and_lose_no_report(dagbag, mlflow_uri, roots):
    """Three drifted days: the first triggers; the next two find it still queued and become pending; once it
    is done and the cooldown (24 h of data) has passed, the next drift triggers one retraining that carries
    every pending report."""
    _train(dagbag)
    _finish_retraining_runs()
    monitor = dagbag.dags[f"{NAME}__drift_monitor"]
    before = {r.run_id for r in dag_runs(f"{NAME}__retrain")}
    results = []
    for day in ("2026-01-23", "2026-01-24", "2026-01-25"):
        run, states = run_dag(monitor, day)
        assert states["trigger_retraining"] == "success"
        results.append((run, xcom(monitor.dag_id, run.run_id, "trigger_retraining")))
    new = [r for r in dag_runs(f"{NAME}__retrain") if r.run_id not in before]
    assert [r.run_id for r in new] == [f"drift__{results[0][0].run_id}"]  # one retraining, not three
    assert [res["triggered"] for _, res in results[1:]] == [False, False]
    assert "already queued or running" in results[1][1]["reason"]
    # each drift report's MLflow run says what it led to (the MLOps view shows it beside the decision)
    import mlflow

    outcomes = [
        mlflow.MlflowClient().get_run(xcom(monitor.dag_id, r.run_id, "detect_drift")["mlflow_run_id"]).data.tags.get(
            "mlops.retraining"
        )
        for r, _ in results
    ]  # fmt: skip
    assert outcomes[0] == f"triggered: {NAME}__retrain run drift__{results[0][0].run_id}"
    assert outcomes[1].startswith("held: ")
    assert "already queued or running" in outcomes[1]

    ledger = json.loads((roots["artifacts"] / NAME / "retraining" / "ledger.json").read_text())
    assert [p["monitor_run_id"] for p in ledger["pending"]] == [results[1][0].run_id, results[2][0].run_id]

    _finish_retraining_runs()  # the retraining finished; the next drifted day is 24 h of data later
    run, _ = run_dag(monitor, "2026-01-26")
    new = [r for r in dag_runs(f"{NAME}__retrain") if r.run_id not in before]
    assert len(new) == 2
    conf = next(r for r in new if r.run_id == f"drift__{run.run_id}").conf
    assert [p["monitor_run_id"] for p in conf["drift_reports"]] == [
        results[1][0].run_id, results[2][0].run_id, run.run_id,
    ]  # fmt: skip
    assert all(Path(p["report_uri"]).is_file() for p in conf["drift_reports"])
    assert json.loads((roots["artifacts"] / NAME / "retraining" / "ledger.json").read_text())["pending"] == []


def test_consecutive_windows_rule_counts_back_to_back_drifted_windows():
    import datetime as dt

    from airflow_mlops.operations.retraining import decide, empty_ledger, streak

    day = dt.timedelta(days=1)

    def pending(*days):
        return [{"window_end": f"2026-01-{d:02d}T00:00:00+00:00", "monitor_run_id": f"m{d}"} for d in days]

    assert streak(pending(10), day) == 1
    assert streak(pending(8, 9, 10), day) == 3
    assert streak(pending(5, 9, 10), day) == 2  # a calm window between 5 and 9 breaks the streak
    assert streak(pending(), day) == 0

    ledger = empty_ledger()
    rules = {
        "in_flight": 0,
        "cooldown": day,
        "consecutive": 2,
        "step": day,
        "retraining": "r",
        "trigger_run_id": "t",
    }
    first = decide(ledger, pending(9)[0], **rules)
    assert (first.trigger, first.reason) == (False, "1 consecutive drifted window(s); the spec asks for 2")
    second = decide(first.ledger, pending(10)[0], **rules)
    assert second.trigger
    assert [p["monitor_run_id"] for p in second.pending] == ["m9", "m10"]
    assert second.ledger["pending"] == []
    late = {"window_end": "2026-01-10T12:00:00+00:00", "monitor_run_id": "late"}
    cooling = decide(second.ledger, late, **(rules | {"consecutive": 1}))  # 12 h of data after the last
    assert not cooling.trigger
    assert cooling.reason.startswith("cooldown: the last retraining was triggered for the window ending")
    busy = decide(empty_ledger(), late, **(rules | {"consecutive": 1, "in_flight": 1}))
    assert busy.reason == "a retraining of r is already queued or running"
