"""The Airflow UI in a real browser (Playwright on Debian's chromium) against a real ``airflow standalone``
(scheduler, dag-processor, triggerer, API server) over a demo state: a trained champion, a drift check on a
drifted day, and a training window whose validation failed. Screenshots go to the test's output folder.

What on-call does: log in, open the failed validation's log (the failed check is in its first lines), open each
extra link (MLflow run, model version, model-test report, drift report, validation report: HTTP 200 with the
expected content), and open the MLOps view (the versions, the drift chart). Readers of one team (FAB roles with
DAG-level rights, on a second API server: standalone forces the simple auth manager) open their own pipeline's
pages and get 403 on another team's."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from helpers import doc_excerpts, runs_in_db, wait_for

from airflow_mlops.tools.airflow_cli import create_backfill, run_airflow

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

PIPELINE = "demo_churn"
PASSWORD = "on-call-pw"
BAD_DAY = "2026-01-20"
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
# Readers of one team each (FAB roles with DAG-level rights): the churn team reads demo_churn's DAGs, the fraud
# team only its own DAG (a hand-written one in the DAGs folder: it has no model).
TEAMS = {
    "churn": ("churn-reader", "churn-pw", [f"{PIPELINE}__train", f"{PIPELINE}__drift_monitor"]),
    "fraud": ("fraud-reader", "fraud-pw", ["fraud__train"]),
}
OTHER_TEAM_DAG = """
import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("fraud__train", schedule=None, start_date=dt.datetime(2026, 1, 1)):
    EmptyOperator(task_id="train")
"""


def _airflow(env: dict[str, str], *args: str) -> str:
    return run_airflow(*args, env=env)  # a try that lost SQLite's write lock to the scheduler is run again


def _runs(env: dict[str, str], dag_id: str) -> list[dict]:
    return runs_in_db(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], dag_id)


def _wait(what: str, condition, timeout: float):
    return wait_for(what, condition, timeout, every=3)


def _finished(env: dict[str, str], dag_id: str, n: int) -> list[dict]:
    runs = _runs(env, dag_id)
    return runs if len(runs) >= n and all(r["state"] in ("success", "failed") for r in runs) else []


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """``airflow standalone`` on the embedded default with the demo data, after: one training week (champion
    v1), the drift monitor on a drifted day, and a training window whose validation fails on a damaged day."""
    from airflow_mlops.tools.demo import generate
    from airflow_mlops.tools.quickstart import (
        TRAIN_FROM,
        demo_env,
        free_port,
        repo_dags_folder,
        stop_process_tree,
    )

    home = tmp_path_factory.mktemp("ui")
    port = free_port(18180)  # not 8793/8794: the log servers of the scheduler and triggerer
    dags = home / "dags"
    shutil.copytree(repo_dags_folder(), dags, ignore=shutil.ignore_patterns("__pycache__"))
    (dags / "fraud_team.py").write_text(OTHER_TEAM_DAG)
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": PASSWORD}))
    env = {
        **os.environ, **demo_env(home, port, dags_folder=dags),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__HOST": "127.0.0.1",
    }  # fmt: skip
    fab = {**env, "AIRFLOW__CORE__AUTH_MANAGER": FAB}  # standalone forces the simple auth manager: see fab_server
    (home / "airflow").mkdir(exist_ok=True)
    (home / "mlflow").mkdir(exist_ok=True)
    generate(str(home / "data"))
    _airflow(env, "db", "migrate")
    _airflow(env, "dags", "reserialize")
    # the FAB auth manager's users and roles in the same metadata DB: a reader per team, rights per DAG
    _airflow(fab, "fab-db", "migrate")
    _airflow(fab, "sync-perm", "--include-dags")  # a resource per DAG, for the roles below
    for team, (user, password, dag_ids) in TEAMS.items():
        _airflow(fab, "roles", "create", f"team_{team}")
        _airflow(fab, "roles", "add-perms", f"team_{team}", "-r", *[f"DAG:{d}" for d in dag_ids], "-a", "can_read")
        _airflow(fab, "users", "create", "-u", user, "-p", password, "-r", f"team_{team}", "-e", f"{user}@example.com",
                 "-f", team, "-l", "reader")  # fmt: skip
    log = (home / "standalone.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("airflow")), "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://localhost:{port}"

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=5) as resp:
                    return json.load(resp).get("scheduler", {}).get("status") == "healthy"
            except (OSError, ValueError):
                return False

        _wait("Airflow to be healthy", healthy, 240)
        train, monitor = f"{PIPELINE}__train", f"{PIPELINE}__drift_monitor"
        create_backfill(train, TRAIN_FROM, TRAIN_FROM, env=env)
        (good,) = _wait("the training week", lambda: _finished(env, train, 1), 600)
        assert good["state"] == "success"
        create_backfill(monitor, "2026-01-23", "2026-01-23", env=env)
        (drifted,) = _wait("the drift check", lambda: _finished(env, monitor, 1), 600)
        assert drifted["state"] == "success"
        part = home / "data" / PIPELINE / f"date={BAD_DAY}" / "part-0.parquet"
        pd.read_parquet(part).assign(monthly_charges=float("nan")).to_parquet(part)
        create_backfill(train, "2026-01-18", "2026-01-18", env=env)  # once the first backfill is closed
        runs = _wait("the damaged window", lambda: _finished(env, train, 2), 600)
        (bad,) = [r for r in runs if r["run_id"] != good["run_id"]]
        assert bad["state"] == "failed"
        yield {"base": base, "env": env, "fab": fab, "home": home, "good": good, "bad": bad, "drifted": drifted}
    finally:
        stop_process_tree(proc)
        log.close()


@pytest.fixture(scope="module")
def browser(demo, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    shots = tmp_path_factory.mktemp("screenshots")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=["--no-sandbox"])
        page = chromium.new_page(viewport={"width": 1400, "height": 900})
        page.goto(demo["base"] + "/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "login" not in url, timeout=60_000)
        yield page, shots
        chromium.close()


def _login(page, base: str, user: str, password: str) -> None:
    """The FAB auth manager's login form, as a person fills it; it sets the session Airflow's UI and API read."""
    page.goto(base + "/auth/login/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("form[name=login] [type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)


def _task_path(dag_id: str, run_id: str, task_id: str) -> str:
    from urllib.parse import quote

    return f"/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}"


def test_a_failed_validations_log_opens_with_the_failed_check(demo, browser):
    page, shots = browser
    run_id = demo["bad"]["run_id"]
    page.goto(demo["base"] + _task_path(f"{PIPELINE}__train", run_id, "validate_data"))
    failed = page.get_by_text("FAILED: data validation failed").first
    failed.wait_for(timeout=60_000)
    # the log view follows the end of the log: back to its top, where on-call starts reading
    page.evaluate("document.querySelectorAll('*').forEach(e => { if (e.scrollHeight > e.clientHeight) e.scrollTop = 0 })")
    from playwright.sync_api import expect

    expect(failed).to_be_in_viewport()
    page.screenshot(path=str(shots / "failed-validation-log.png"), full_page=True)

    # the same log through the API the UI reads: the block comes right after Airflow's own preamble
    response = page.request.get(
        f"{demo['base']}/api/v2/dags/{PIPELINE}__train/dagRuns/{run_id}/taskInstances/validate_data/logs/1",
        headers={"Accept": "application/json"},
    )  # fmt: skip
    assert response.status == 200
    lines = []
    for entry in response.json()["content"]:
        lines += str(entry.get("event", "")).splitlines() if isinstance(entry, dict) else str(entry).splitlines()
    preamble_end = max(i for i, line in enumerate(lines) if "::endgroup::" in line and i < _first(lines, "FAILED:"))
    opening = lines[preamble_end + 1 : preamble_end + 16]
    assert opening[0].startswith("FAILED: data validation failed for demo_churn window")
    assert any(" ".join(line.split()).startswith(f"null fraction monthly_charges {BAD_DAY}") for line in opening)
    assert any(line.startswith("next: no retry") for line in opening)
    assert any(line.startswith("fix: ") for line in opening)
    assert any(line.startswith("Validation report: http://") for line in opening)
    # the README quotes this block: it is the one on-call reads here (this server's port aside)
    end = _first(opening, "Validation report: ")
    block = "\n".join(re.sub(r" \[airflow\.task[^\]]*\] loc=\S+$", "", line) for line in opening[: end + 1])
    for path, excerpt in doc_excerpts("failure-block").items():
        quoted = re.sub(r"http://localhost:\d+/", f"{demo['base']}/", excerpt)
        assert block == quoted, f"{path}: the failure-block excerpt is stale"


def _first(lines: list[str], text: str) -> int:
    return next(i for i, line in enumerate(lines) if text in line)


@pytest.mark.parametrize(
    ("kind", "task", "label", "expected"),
    [
        ("good", "train_model", "MLflow run", "MLflow run demo_churn train"),
        ("good", "register_model", "Model version", "demo_churn version 1"),
        ("good", "test_model", "Model test report", "Model tests"),
        ("drifted", "detect_drift", "Drift report", "Drift of demo_churn"),
        ("bad", "validate_data", "Validation report", "Validation failed"),
    ],
)  # fmt: skip
def test_each_extra_link_opens_over_http(demo, browser, kind, task, label, expected):
    page, shots = browser
    dag_id = f"{PIPELINE}__drift_monitor" if kind == "drifted" else f"{PIPELINE}__train"
    page.goto(demo["base"] + _task_path(dag_id, demo[kind]["run_id"], task) + "/details")
    link = page.get_by_role("link", name=label).or_(page.get_by_role("button", name=label)).first
    link.wait_for(timeout=60_000)
    html = link.evaluate("e => e.outerHTML")
    pages = len(page.context.pages)
    link.click()
    _wait(f"the {label} link to open ({html})", lambda: len(page.context.pages) > pages or not page.url.startswith(demo["base"] + "/dags/"), 30)
    tab = page.context.pages[-1]
    tab.wait_for_load_state()
    assert tab.url.startswith("http://"), tab.url
    response = page.request.get(tab.url)
    assert response.status == 200, (tab.url, response.status)
    assert expected in tab.content()
    tab.screenshot(path=str(shots / f"link-{task}.png"), full_page=True)
    if tab is not page:
        tab.close()


def test_the_mlops_view_shows_versions_and_the_drift_chart(demo, browser):
    page, shots = browser
    page.goto(demo["base"] + "/plugin/mlops")
    frame = page.frame_locator("iframe")
    frame.get_by_role("link", name=PIPELINE).click()
    frame.get_by_text("Model versions").wait_for(timeout=60_000)
    assert frame.locator("span.badge.champion").count() >= 1
    assert frame.locator("figure[data-feature=monthly_charges] svg polyline").count() == 1
    assert frame.get_by_text(f"{PIPELINE} drift 2026-01-23 vs v1").count() >= 1
    # the events of the pipeline's tasks (this demo has no alert route: recorded all the same), each with its log
    alerts = frame.locator("h2:has-text('Alerts and quality anomalies') + table")
    assert alerts.get_by_text("drift found", exact=True).count() >= 1
    assert alerts.get_by_text("model promoted", exact=True).count() >= 1
    logs = alerts.locator("a", has_text="task log").evaluate_all("links => links.map(a => a.href)")
    assert any(f"/dags/{PIPELINE}__drift_monitor/runs/" in h and h.endswith("/tasks/detect_drift") for h in logs), logs
    page.screenshot(path=str(shots / "mlops-view.png"), full_page=True)


HOSTILE = (
    "<html><head><title>stored</title></head><body><h1 id=h>stored page</h1>"
    "<script>document.title = 'ran'; fetch('/api/v2/dags').then(r => r.text())"
    ".then(t => { document.getElementById('h').textContent = 'read ' + t.length; })</script></body></html>"
)


def test_a_hostile_html_artifact_never_runs_script_with_the_readers_session(demo, browser):
    """A page stored in a run (here in the place of the champion's model-test report, and under another name)
    opens in the browser without its script running: the plugin serves it sandboxed, and a page that is not
    one of the project's reports downloads instead of rendering."""
    from mlflow.tracking import MlflowClient

    page, shots = browser
    uri = demo["env"]["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # not the process-wide URIs other tests set
    run_id = client.get_model_version(PIPELINE, "1").run_id
    client.log_text(run_id, HOSTILE, "tests/report.html")  # someone with write access to the run's artifacts
    client.log_text(run_id, HOSTILE, "notes/evil.html")
    base = f"{demo['base']}/mlops/mlflow/runs/{run_id}/artifacts"

    page.goto(f"{base}/tests/report.html")
    page.get_by_text("stored page").wait_for(timeout=30_000)  # rendered, and its script never ran:
    assert page.title() == "stored"
    assert page.locator("#h").text_content() == "stored page"
    page.screenshot(path=str(shots / "hostile-report.png"))
    from playwright.sync_api import Error as PlaywrightError

    with page.expect_download() as download:
        with pytest.raises(PlaywrightError, match="ERR_ABORTED|Download is starting"):
            page.goto(f"{base}/notes/evil.html")  # a navigation that turns into a download ends it
    assert download.value.suggested_filename == "evil.html"
    assert page.title() != "ran"


@pytest.fixture
def fab_server(demo):
    """An Airflow API server with the FAB auth manager on the demo's metadata DB and MLflow store (``airflow
    standalone`` forces the simple auth manager, which has no DAG-level rights); its base URL."""
    from airflow_mlops.tools.quickstart import free_port, stop_process_tree

    port = free_port(18280)
    env = {**demo["fab"], "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": f"http://localhost:{port}"}
    log = (demo["home"] / "fab-api-server.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("airflow")), "api-server", "--port", str(port)], env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://localhost:{port}"

    def up() -> bool:
        assert proc.poll() is None, (demo["home"] / "fab-api-server.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=5):
                return True
        except (OSError, ValueError):
            return False

    try:
        _wait("the FAB API server", up, 120)
        yield base
    finally:
        stop_process_tree(proc)
        log.close()


def test_a_teams_reader_opens_its_card_pipeline_page_and_index_and_gets_403_on_another_teams(demo, browser, fab_server):
    """DAG-level rights (FAB roles): the churn team's reader opens the fleet index, demo_churn's pipeline page and
    model card; the fraud team's reader does not see demo_churn in the index and gets 403 on each of its pages,
    its model version, training run, artifacts and task reports, as on Airflow's own DAG API."""
    from mlflow.tracking import MlflowClient

    page, shots = browser
    uri = demo["env"]["MLFLOW_TRACKING_URI"]
    run_id = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(PIPELINE, "1").run_id
    base, bad = fab_server, demo["bad"]["run_id"]
    from urllib.parse import quote

    pages = {  # each page of demo_churn, and what it shows its readers
        "/mlops/": f"{PIPELINE}",
        f"/mlops/pipelines/{PIPELINE}": "Model versions",
        f"/mlops/mlflow/models/{PIPELINE}/versions/1": "model card",
        f"/mlops/mlflow/runs/{run_id}/artifacts/model_card/card.md": f"# Model card: {PIPELINE} version 1",
        f"/mlops/mlflow/runs/{run_id}": f"MLflow run {PIPELINE} train",
        f"/mlops/reports/{PIPELINE}__train/{quote(bad, safe='')}/validate_data/validation": "Validation failed",
    }
    seen = {}
    for team, (user, password, _) in TEAMS.items():
        context = page.context.browser.new_context(viewport={"width": 1400, "height": 900})
        reader = context.new_page()
        _login(reader, base, user, password)
        for path in pages:
            response = reader.goto(base + path)
            seen[team, path] = (response.status, reader.content())
            reader.screenshot(path=str(shots / f"{team}-{path.strip('/').replace('/', '_')[:60] or 'index'}.png"))
        seen[team, "api"] = (reader.request.get(f"{base}/api/v2/dags/{PIPELINE}__train").status, "")
        context.close()

    for path, shown in pages.items():
        status, content = seen["churn", path]
        assert (status, shown in content) == (200, True), (path, status)
    assert seen["churn", "api"][0] == 200
    status, content = seen["fraud", "/mlops/"]
    assert status == 200  # the index opens, without the other team's pipeline
    assert f">{PIPELINE}<" not in content
    for path in list(pages)[1:]:
        assert seen["fraud", path][0] == 403, (path, seen["fraud", path][0])
    assert seen["fraud", "api"][0] == 403
