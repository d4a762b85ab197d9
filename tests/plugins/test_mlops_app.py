"""The plugin's app inside the real Airflow API app (SimpleAuthManager, the metadata DB, an MLflow store)."""

from __future__ import annotations

import json

import pytest
from helpers import ESCAPED as ESCAPED_NAME
from helpers import HOSTILE as HOSTILE_NAME

pytestmark = pytest.mark.slow

NAME = "viewchurn"


@pytest.fixture
def api(tmp_path, mlflow_uri, monkeypatch):
    """The Airflow API app as ``airflow api-server`` serves it, and a logged-in user's token."""
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": "s3cret-pw"}))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
    # no ui_url: a local store has no MLflow UI, so the links go to the plugin's own MLflow pages
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "extra": {"tracking_uri": mlflow_uri}})
    )
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    purge_cached_app()
    client = TestClient(create_app("all"))
    done = client.post("/auth/token", json={"username": "admin", "password": "s3cret-pw"})
    assert done.status_code in (200, 201), done.text
    yield client, done.json()["access_token"]
    purge_cached_app()


def _models(mlflow_uri: str, artifacts) -> dict:
    """A model with two versions (champion, challenger), each with its model-test report, and three drift
    checks logged the way the drift sensor logs them."""
    from mlflow.tracking import MlflowClient

    from airflow_mlops.operations.monitoring import _log_to_mlflow
    from airflow_mlops.tracking import registry

    c = MlflowClient(mlflow_uri, mlflow_uri)
    exp = registry.ensure_experiment(c, registry.experiment_name(NAME), str(artifacts))
    c.create_registered_model(NAME)
    runs = []
    for i, auc in enumerate((0.81, 0.84)):
        run = c.create_run(exp, run_name=f"{NAME} train 2026-01-0{i + 1}", tags={"mlops.pipeline": NAME})
        c.log_metric(run.info.run_id, "roc_auc", auc)
        c.log_text(run.info.run_id, f"<html><h1>Model tests v{i + 1}</h1></html>", "tests/report.html")
        c.set_terminated(run.info.run_id)
        c.create_model_version(
            NAME, f"{run.info.artifact_uri}/model", run.info.run_id,
            tags={"mlops.tests": "passed", "mlops.test_metrics": json.dumps({"roc_auc": auc}),
                  "mlops.window_start": f"2026-01-0{i + 1}T00:00:00+00:00"},
        )  # fmt: skip
        runs.append(run.info.run_id)
    c.set_registered_model_alias(NAME, registry.CHAMPION, "1")
    c.set_registered_model_alias(NAME, registry.CHALLENGER, "2")
    from airflow_mlops.release import card

    card.publish(c, NAME, "1")
    drift_runs = []
    for day, score in (("2026-01-20", 0.03), ("2026-01-21", 0.04), ("2026-01-22", 0.31)):
        report = {
            "status": "drift" if score > 0.1 else "no_drift", "drift_share": 0.5 if score > 0.1 else 0.0,
            "current_profile": f"/artifacts/{NAME}/profiles/{day}/abc.bin", "champion_version": "1",
            "features": [{"feature": "age", "score": score, "threshold": 0.1}, {"feature": "plan", "score": 0.02, "threshold": 0.08}],
        }  # fmt: skip
        drift_runs.append(_log_to_mlflow(c, NAME, report, f"<html><h1>Drift {day}</h1></html>", None, str(artifacts)))
    return {"runs": runs, "drift_runs": drift_runs}


def test_every_page_needs_a_login(api, mlflow_uri, tmp_path):
    client, _ = api
    made = _models(mlflow_uri, tmp_path / "artifacts")
    for path in ("/mlops/", f"/mlops/pipelines/{NAME}", f"/mlops/mlflow/runs/{made['runs'][0]}",
                 f"/mlops/mlflow/runs/{made['runs'][0]}/artifacts/tests/report.html",
                 f"/mlops/mlflow/models/{NAME}/versions/1", "/mlops/reports/d/r/t/validation"):  # fmt: skip
        assert client.get(path).status_code == 401, path


def test_the_view_lists_versions_aliases_tests_and_a_drift_chart_per_feature(api, mlflow_uri, tmp_path):
    client, token = api
    made = _models(mlflow_uri, tmp_path / "artifacts")
    auth = {"Authorization": f"Bearer {token}"}

    index = client.get("/mlops/", headers=auth)
    assert index.status_code == 200
    assert f"/mlops/pipelines/{NAME}" in index.text
    assert f"/mlops/mlflow/models/{NAME}/versions/1" in index.text  # the champion's cell

    page = client.get(f"/mlops/pipelines/{NAME}", headers=auth)
    assert page.status_code == 200
    assert "champion</span>" in page.text
    assert "challenger</span>" in page.text
    assert "roc_auc=0.840" in page.text
    assert page.text.count("<figure data-feature=") == 2  # age and plan
    assert "threshold 0.1" in page.text  # the age chart draws its threshold
    assert f"{NAME} drift 2026-01-22 vs v1" in page.text  # drift runs are named by pipeline, kind and day
    assert client.get(f"/mlops/pipelines/{NAME}__train", headers=auth).text == page.text  # the DAG tab's URL

    report = client.get(f"/mlops/mlflow/runs/{made['drift_runs'][-1]}/artifacts/drift/report.html", headers=auth)
    assert report.status_code == 200
    assert "Drift 2026-01-22" in report.text
    assert report.headers["content-type"].startswith("text/html")
    tests = client.get(f"/mlops/mlflow/runs/{made['runs'][1]}/artifacts/tests/report.html", headers=auth)
    assert tests.status_code == 200
    assert "Model tests v2" in tests.text
    # the model card is one click away: linked from the version's row, and it opens as text
    card_link = f"/mlops/mlflow/runs/{made['runs'][0]}/artifacts/model_card/card.md"
    assert card_link in page.text
    card = client.get(card_link, headers=auth)
    assert (card.status_code, card.headers["content-type"]) == (200, "text/plain; charset=utf-8")
    assert card.text.startswith(f"# Model card: {NAME} version 1")
    run = client.get(f"/mlops/mlflow/runs/{made['runs'][1]}", headers=auth)
    assert run.status_code == 200
    assert "roc_auc" in run.text
    assert "tests/report.html" in run.text
    version = client.get(f"/mlops/mlflow/models/{NAME}/versions/2", headers=auth)
    assert version.status_code == 200
    assert "challenger" in version.text

    assert client.get(f"/mlops/mlflow/runs/{made['runs'][1]}/artifacts/nothing.html", headers=auth).status_code == 404
    assert client.get(f"/mlops/mlflow/runs/{made['runs'][1]}/artifacts/../x", headers=auth).status_code in (400, 404)
    assert client.get(f"/mlops/mlflow/models/{NAME}/versions/9", headers=auth).status_code == 404


HOSTILE = "<html><body><h1>hi</h1><script>document.title = 'ran'</script></body></html>"


def test_a_served_artifact_cannot_run_script_in_the_ui_origin(api, mlflow_uri, tmp_path):
    """Every artifact carries ``CSP: sandbox`` and ``nosniff``; only the project's reports render as HTML, any
    other HTML page (or SVG, or an unknown type) downloads; JSON and text show inline."""
    from mlflow.tracking import MlflowClient

    client, token = api
    made = _models(mlflow_uri, tmp_path / "artifacts")
    run_id = made["runs"][1]
    c = MlflowClient()
    c.log_text(run_id, HOSTILE, "notes/evil.html")
    c.log_text(run_id, "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "notes/evil.svg")
    c.log_text(run_id, '{"a": 1}', "notes/data.json")
    auth = {"Authorization": f"Bearer {token}"}
    get = lambda path: client.get(f"/mlops/mlflow/runs/{run_id}/artifacts/{path}", headers=auth)  # noqa: E731

    for path in ("tests/report.html", "notes/evil.html", "notes/evil.svg", "notes/data.json"):
        served = get(path)
        assert served.status_code == 200, path
        assert served.headers["content-security-policy"] == "sandbox", path
        assert served.headers["x-content-type-options"] == "nosniff", path
    report = get("tests/report.html")
    assert report.headers["content-type"].startswith("text/html")
    assert "content-disposition" not in report.headers
    for path, name in (("notes/evil.html", "evil.html"), ("notes/evil.svg", "evil.svg")):
        served = get(path)
        assert served.headers["content-type"] == "application/octet-stream", path
        assert served.headers["content-disposition"] == f"attachment; filename*=UTF-8''{name}", path
    data = get("notes/data.json")
    assert data.headers["content-type"] == "application/json"
    assert "content-disposition" not in data.headers


def test_a_task_report_is_found_through_the_tasks_xcom_only(api, tmp_path):
    """The report route reads the URI the task stored; a run without one is a 404, never a path lookup."""
    client, token = api
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/mlops/reports/some_dag/run1/validate/validation", headers=auth).status_code == 404


def test_the_pipeline_page_gives_on_call_axes_champion_marks_live_verdicts_and_failed_runs(api, mlflow_uri, tmp_path):
    """Drift charts carry their scale, first and last day and a mark where the champion changed; live metrics
    are one row per window (champion vs challenger, the decision with its interval, the performance verdict);
    the pipeline's failed DAG runs are listed with a link to each."""
    import datetime as dt

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType
    from mlflow.tracking import MlflowClient

    from airflow_mlops.operations.monitoring import _log_to_mlflow
    from airflow_mlops.tracking import registry

    client, token = api
    auth = {"Authorization": f"Bearer {token}"}
    made = _models(mlflow_uri, tmp_path / "artifacts")
    c = MlflowClient(mlflow_uri, mlflow_uri)
    report = {
        "status": "drift", "drift_share": 0.5, "current_profile": f"/artifacts/{NAME}/profiles/2026-01-23/x.bin",
        "champion_version": "2", "features": [{"feature": "age", "score": 0.32, "threshold": 0.1}],
    }  # fmt: skip
    held = _log_to_mlflow(c, NAME, report, "<html></html>", None, str(tmp_path / "artifacts"))
    c.set_tag(made["drift_runs"][-1], "mlops.retraining", f"triggered: {NAME}__retrain run drift__scheduled__2026-01-22")
    c.set_tag(held, "mlops.retraining", "held: a retraining is already queued or running (2 report(s) pending)")
    live = registry.ensure_experiment(c, f"{registry.experiment_name(NAME)}/live", str(tmp_path / "artifacts"))
    run = c.create_run(live, run_name=f"{NAME} live 2026-01-26")
    for key, value in (("v1_roc_auc", 0.8133), ("v2_roc_auc", 0.8384), ("v1_rows", 1804.0)):
        c.log_metric(run.info.run_id, key, value)
    for key, value in (("mlops.live_metric", "roc_auc"), ("mlops.live_champion", "1"), ("mlops.live_challenger", "2"),
                       ("mlops.live_decision", "v2 - v1: +0.0251 [-0.1157, +0.1660] over 1 window(s); not promoted"),
                       ("mlops.performance_status", "ok")):  # fmt: skip
        c.set_tag(run.info.run_id, key, value)
    ended = dt.datetime.now(dt.UTC)
    with create_session() as session:
        session.add(DagRun(dag_id=f"{NAME}__train", run_id="manual__broken", run_type=DagRunType.MANUAL,
                           state=DagRunState.FAILED, start_date=ended, logical_date=ended))  # fmt: skip
        session.add(DagRun(dag_id=f"{NAME}x__train", run_id="manual__other", run_type=DagRunType.MANUAL,
                           state=DagRunState.FAILED, start_date=ended, logical_date=ended))  # fmt: skip
    with create_session() as session:
        for r in session.query(DagRun).filter(DagRun.run_id.in_(["manual__broken", "manual__other"])):
            r.end_date = ended

    page = client.get(f"/mlops/pipelines/{NAME}", headers=auth).text
    assert ">2026-01-20</text>" in page  # the first day checked
    assert ">2026-01-23</text>" in page  # and the last
    assert "<title>champion v2 from 2026-01-23</title>" in page
    # the check that triggered a retraining is marked once on every feature's chart (the held one is not)
    charts = page.count("<figure data-feature=")
    assert charts == 2  # age and plan
    assert page.count(f"<title>retraining triggered on 2026-01-22: {NAME}__retrain run drift__scheduled__2026-01-22</title>") == charts
    assert page.count('data-mark="retraining"') == charts
    assert "<td>2026-01-26</td><td>roc_auc</td><td>v1 0.8133</td><td>v2 0.8384</td><td>1804</td>" in page
    assert "+0.0251 [-0.1157, +0.1660] over 1 window(s); not promoted" in page
    assert f"/dags/{NAME}__train/runs/manual__broken" in page
    # every drift decision says what it led to: triggered (linked to the run), held and why
    assert f'href="/dags/{NAME}__retrain/runs/drift__scheduled__2026-01-22"' in page
    assert "held: a retraining is already queued or running (2 report(s) pending)" in page
    assert "manual__other" not in page  # another pipeline's run


def test_every_page_shows_hostile_names_as_text(api, mlflow_uri, tmp_path):
    """Names and values that come from users (a description, a run's name, params and tags, a version's tags,
    a drift run's held reason and day, a live decision) are escaped by the templates on every page."""
    from mlflow.tracking import MlflowClient

    from airflow_mlops.tracking import registry

    client, token = api
    auth = {"Authorization": f"Bearer {token}"}
    made = _models(mlflow_uri, tmp_path / "artifacts")
    c = MlflowClient(mlflow_uri, mlflow_uri)
    c.update_registered_model(NAME, description=HOSTILE_NAME)
    c.set_model_version_tag(NAME, "1", "mlops.promotion_decision", HOSTILE_NAME)
    c.set_model_version_tag(NAME, "1", "note", HOSTILE_NAME)
    train = made["runs"][0]
    c.set_tag(train, "mlflow.runName", HOSTILE_NAME)
    c.log_param(train, "comment", HOSTILE_NAME)
    drifted = made["drift_runs"][-1]
    c.set_tag(drifted, "mlops.retraining", f"held: {HOSTILE_NAME}")
    c.set_tag(drifted, "mlflow.runName", f"{NAME} drift {HOSTILE_NAME} vs v{HOSTILE_NAME}")
    live = registry.ensure_experiment(c, f"{registry.experiment_name(NAME)}/live", str(tmp_path / "artifacts"))
    run = c.create_run(live, run_name=f"{NAME} live {HOSTILE_NAME}")
    c.set_tag(run.info.run_id, "mlops.live_decision", HOSTILE_NAME)

    pages = {
        "index": (client.get("/mlops/", headers=auth).text, 1),  # the description
        # decision, held reason, drift run's name (decision row, pending row, two dots' titles), its day on the
        # axis and in the champion mark, the champion mark, the live window and decision
        "pipeline": (client.get(f"/mlops/pipelines/{NAME}", headers=auth).text, 10),
        "run": (client.get(f"/mlops/mlflow/runs/{train}", headers=auth).text, 3),  # name, param, tag
        "version": (client.get(f"/mlops/mlflow/models/{NAME}/versions/1", headers=auth).text, 2),  # two tags
    }
    for name, (page, times) in pages.items():
        assert "<script" not in page, name
        assert page.count(ESCAPED_NAME) >= times, (name, page.count(ESCAPED_NAME))


def test_the_fleet_index_filters_by_state_sorts_and_pages(api, mlflow_uri, tmp_path):
    """States come from the registered models' tags and one metadata-DB query: failing (the latest run of one
    of its DAGs failed), drifting (its latest drift check), awaiting approval, no champion."""
    import datetime as dt

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType
    from mlflow.tracking import MlflowClient

    from airflow_mlops.operations.monitoring import _log_to_mlflow
    from airflow_mlops.tracking import registry

    client, token = api
    auth = {"Authorization": f"Bearer {token}"}
    c = MlflowClient(mlflow_uri, mlflow_uri)
    for name in ("fa", "fb", "fc", "fd", "fe"):
        c.create_registered_model(name)
        exp = registry.ensure_experiment(c, registry.experiment_name(name), str(tmp_path / "artifacts"))
        run = c.create_run(exp)
        c.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id)
        if name != "fd":
            c.set_registered_model_alias(name, registry.CHAMPION, "1")
    report = {"status": "drift", "drift_share": 0.5, "current_profile": "/p/fb/2026-01-22.bin", "champion_version": "1",
              "features": [{"feature": "x", "score": 0.3, "threshold": 0.1}]}  # fmt: skip
    _log_to_mlflow(c, "fb", report, "<html></html>", None, str(tmp_path / "artifacts"))
    older = {**report, "status": "no_drift", "current_profile": "/p/fb/2026-01-20.bin"}
    _log_to_mlflow(c, "fb", older, "<html></html>", None, str(tmp_path / "artifacts"))  # a backfilled older day
    registry.set_model_state(c, "fc", {registry.AWAITING_TAG: "1"})
    now = dt.datetime.now(dt.UTC)
    with create_session() as session:
        for i, (dag_id, state) in enumerate((("fa__train", DagRunState.SUCCESS), ("fa__train", DagRunState.FAILED),
                                             ("fe__score", DagRunState.FAILED), ("fe__score", DagRunState.SUCCESS))):  # fmt: skip
            session.add(DagRun(dag_id=dag_id, run_id=f"manual__{i}", run_type=DagRunType.MANUAL, state=state,
                               logical_date=now + dt.timedelta(minutes=i)))  # fmt: skip

    def names(**params):
        query = "&".join(f"{k}={v}" for k, v in params.items())
        page = client.get(f"/mlops/?{query}", headers=auth)
        assert page.status_code == 200
        return [n for n in ("fa", "fb", "fc", "fd", "fe") if f">{n}</a>" in page.text], page.text

    assert names(state="failing")[0] == ["fa"]  # fe failed once, then succeeded
    assert names(state="drifting")[0] == ["fb"]  # its latest day drifted; the older backfilled day did not move it
    assert names(state="awaiting%20approval")[0] == ["fc"]
    assert names(state="no%20champion")[0] == ["fd"]
    listed, text = names()
    assert listed == ["fa", "fb", "fc", "fd", "fe"]
    assert "failing (1)" in text
    assert "drift (2026-01-22)" in text
    first, text = names(sort="state", per_page=2)
    assert first == ["fa", "fb"]  # failing first, then drifting
    assert "page 1 of 3" in text
    assert names(sort="state", per_page=2, page=3)[0] == ["fe"]
