"""The plugin's web app, mounted in the Airflow API server at ``/mlops`` (no extra service).

Every route answers 401 without an Airflow login (the UI's cookie or a Bearer token) and checks the user's
right to read the DAGs of the pipeline it shows:

- ``/mlops/``                                  the MLOps view: every pipeline, its champion and challenger
- ``/mlops/pipelines/<name>``                  versions with aliases and test results, the drift decisions
                                               over time as a chart per feature with its threshold, live
                                               metrics per version, links to every report and MLflow page
- ``/mlops/mlflow/runs/<id>``                   an MLflow run (params, metrics, tags, artifacts) for a local
- ``/mlops/mlflow/runs/<id>/artifacts/<path>``  store that has no MLflow UI; reports open from here
- ``/mlops/mlflow/models/<name>/versions/<v>``
- ``/mlops/reports/<dag>/<run>/<task>/<name>``  a report a task stored (validation), found through the
                                               task's XCom, never through a path in the URL

Pages are server-rendered HTML in Airflow's colours (light and dark), small enough for 100 pipelines: the
index costs one MLflow search; a pipeline page a handful.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from airflow_mlops.links.mlflow import REPORT_XCOM_PREFIX
from airflow_mlops.pages import Group, Link, Tag, render
from airflow_mlops.release.card import CARD_MD

log = logging.getLogger(__name__)


async def _user(request: Request) -> Any:
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPAuthorizationCredentials

    header = request.headers.get("authorization", "")
    credentials = None
    if header.lower().startswith("bearer "):
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=header[7:])
    return await get_user(request, None, credentials)


User = Annotated[Any, Depends(_user)]

app = FastAPI(title="airflow-mlops", docs_url=None, redoc_url=None, openapi_url=None)


def _can_read_dag(user: Any, dag_id: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    return bool(get_auth_manager().is_authorized_dag(method="GET", details=DagDetails(id=dag_id), user=user))


def _pipeline_dag(name: str) -> str:
    """The DAG whose readers may read a pipeline's models: its training DAG (``<name>__train``)."""
    return f"{name}__train"


def _require_pipeline(user: Any, name: str) -> None:
    if not _can_read_dag(user, _pipeline_dag(name)):
        raise HTTPException(status_code=403, detail=f"no read access to the DAGs of pipeline {name}")


def _mlflow() -> Any:
    """A configured MLflow client on the ``mlflow_default`` connection, for one request (a context manager)."""
    from airflow_mlops.hooks.mlflow import MlflowHook

    return MlflowHook().configured()


# -- pages: templates/mlops_*.html, on the shared base layout (airflow_mlops/pages.py) ----------------------


def _page(template: str, title: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, title=title, **context))


def _base(request: Request) -> str:
    """Where this app is mounted (``/mlops``), for links between its pages."""
    return (request.scope.get("root_path") or "/mlops").rstrip("/")


# -- the MLOps view ---------------------------------------------------------------------------------------


STATES = ("failing", "drifting", "awaiting approval", "no champion")


@app.get("/", response_class=HTMLResponse)
def index(request: Request, user: User, state: str = "", sort: str = "name", page: int = 1, per_page: int = 100) -> HTMLResponse:
    """Every pipeline the user may read, with its state: failing (its DAGs' latest run failed), drifting (its
    latest drift check found drift), awaiting approval (a version waits for a person), no champion. Filter by
    state, sort by name or state, one page at a time. One MLflow search and one metadata-DB query, whatever
    the fleet's size (the states are tags of the registered models)."""
    from airflow_mlops.tracking import registry

    root = _base(request)
    per_page = min(max(per_page, 1), 500)
    with _mlflow() as c:
        models = _all_models(c)
    failing = _failing_pipelines()
    listed = []
    for m in models:
        if not _can_read_dag(user, _pipeline_dag(m.name)):
            continue
        aliases = dict(getattr(m, "aliases", {}) or {})
        tags = dict(getattr(m, "tags", {}) or {})
        states = [s for s, on in (
            ("failing", m.name in failing), ("drifting", tags.get(registry.DRIFT_STATE_TAG) == "drift"),
            ("awaiting approval", bool(tags.get(registry.AWAITING_TAG))), ("no champion", registry.CHAMPION not in aliases),
        ) if on]  # fmt: skip
        listed.append((m, aliases, tags, states))
    counts = {s: sum(s in states for *_, states in listed) for s in STATES}
    if state in STATES:
        listed = [row for row in listed if state in row[3]]
    if sort == "state":
        listed.sort(key=lambda row: (min((STATES.index(s) for s in row[3]), default=len(STATES)), row[0].name))
    else:
        listed.sort(key=lambda row: row[0].name)
    pages = max((len(listed) + per_page - 1) // per_page, 1)
    page = min(max(page, 1), pages)
    rows = []
    for m, aliases, tags, states in listed[(page - 1) * per_page : page * per_page]:
        latest = max((int(v.version) for v in (m.latest_versions or [])), default=None)
        drift = tags.get(registry.DRIFT_STATE_TAG)
        rows.append([
            Link(f"{root}/pipelines/{quote(m.name)}", m.name),
            Group(tuple(Tag(s, f"state {s.replace(' ', '-')}") for s in states)) if states else Tag("ok", "muted"),
            _version_cell(root, m.name, aliases.get(registry.CHAMPION)),
            _version_cell(root, m.name, aliases.get(registry.CHALLENGER)),
            f"v{latest}" if latest else "–",
            f"{drift} ({tags.get(registry.DRIFT_DAY_TAG, '?')})" if drift else "–",
            (m.description or "").splitlines()[0] if m.description else "",
        ])  # fmt: skip

    def link(label: str, **params: Any) -> Any:
        query = {"state": state, "sort": sort, "per_page": per_page, "page": 1, **params}
        return Link(f"{root}/?" + "&".join(f"{k}={quote(str(v))}" for k, v in query.items() if v not in ("", None)), label)

    filters = Group((link("all", state=""), *(link(f"{s} ({counts[s]})", state=s) for s in STATES)), " · ")
    nav: list[Any] = [f"page {page} of {pages}"]
    if page > 1:
        nav.insert(0, link("← previous", page=page - 1))
    if page < pages:
        nav.append(link("next →", page=page + 1))
    return _page(
        "mlops_index.html", "MLOps", rows=rows, filters=filters, total=len(listed), nav=Group(tuple(nav), " · "),
        sorts=Group((link("name", sort="name"), link("state", sort="state")), " | "),
        empty="no registered model yet" if not state else f"no pipeline is {state}",
    )  # fmt: skip


FLEET_TTL = 15.0  # seconds the index reuses the fleet's listing: one MLflow search serves many readers
_fleet: dict[str, Any] = {"key": None, "at": 0.0, "models": []}
_fleet_lock = threading.Lock()


def _all_models(c: Any) -> list[Any]:
    """Every registered model (all pages of the search), with its aliases and state tags.

    Listing 1,000 models from MLflow costs about 200 ms (benchmarks/mlops_view.py), so the API server keeps
    the listing for :data:`FLEET_TTL` seconds: the index shows states at most that old, and each reader's
    request only filters, authorizes and renders. A pipeline's own page always reads MLflow afresh."""
    import time

    key = (getattr(c, "tracking_uri", None), getattr(c, "_registry_uri", None))
    with _fleet_lock:
        if _fleet["key"] == key and time.monotonic() - _fleet["at"] < FLEET_TTL:
            return _fleet["models"]
    out: list[Any] = []
    token = None
    while True:
        found = c.search_registered_models(max_results=1000, page_token=token)
        out += list(found)
        token = getattr(found, "token", None)
        if not token:
            break
    with _fleet_lock:
        _fleet.update(key=key, at=time.monotonic(), models=out)
    return out


def _failing_pipelines() -> set[str]:
    """Pipelines whose DAGs' latest run (any of them) failed: one query over the metadata DB."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import func, select

    try:
        with create_session() as session:
            latest = select(func.max(DagRun.id).label("id")).group_by(DagRun.dag_id).subquery()
            found = session.execute(
                select(DagRun.dag_id).join(latest, DagRun.id == latest.c.id).where(DagRun.state == DagRunState.FAILED)
            ).scalars().all()
    except Exception as err:
        log.warning("failed DAG runs could not be listed: %s", err)
        return set()
    return {dag_id.rsplit("__", 1)[0] for dag_id in found if "__" in dag_id}


def _version_cell(root: str, name: str, version: Any) -> Any:
    if not version:
        return Tag("–", "muted")
    return Link(f"{root}/mlflow/models/{quote(name)}/versions/{version}", f"v{version}")


@app.get("/pipelines/{name}", response_class=HTMLResponse)
def pipeline(request: Request, name: str, user: User) -> HTMLResponse:
    from airflow_mlops.tracking import registry

    if "'" in name or "\\" in name:  # never part of a model name; would break MLflow's filter syntax
        raise HTTPException(status_code=404, detail=f"no pipeline {name}")

    root = _base(request)
    with _mlflow() as c:
        if "__" in name and not c.search_registered_models(f"name = '{name}'"):
            name = name.rsplit("__", 1)[0]  # the DAG tab passes a generated DAG's id: <pipeline>__<kind>
        _require_pipeline(user, name)
        versions = sorted(c.search_model_versions(f"name = '{name}'"), key=lambda v: -int(v.version))
        aliases: dict[str, list[str]] = {}
        try:
            for alias, version in (c.get_registered_model(name).aliases or {}).items():
                aliases.setdefault(str(version), []).append(alias)
        except Exception:
            pass
        drift = _runs(c, f"{registry.experiment_name(name)}/drift", 90)
        live = _runs(c, f"{registry.experiment_name(name)}/live", 30)
    version_rows = []
    for v in versions:
        tags = v.tags or {}
        badges = tuple(Tag(a, f"badge {a}") for a in aliases.get(str(v.version), []))
        tests = tags.get("mlops.tests", "")
        links = [Link(f"{root}/mlflow/models/{quote(name)}/versions/{v.version}", "version")]
        if v.run_id:
            links += [
                Link(f"{root}/mlflow/runs/{v.run_id}", "run"),
                Link(f"{root}/mlflow/runs/{v.run_id}/artifacts/tests/report.html", "test report"),
                Link(f"{root}/mlflow/runs/{v.run_id}/artifacts/{CARD_MD}", "model card"),
            ]
        version_rows.append([
            Group((f"v{v.version}", *badges)), _window(tags), Tag(tests, "pass" if tests == "passed" else "fail") if tests else "",
            _metrics_text(tags.get("mlops.test_metrics")), tags.get("mlops.promotion_decision", "")[:200],
            Group(tuple(links), " · "),
        ])  # fmt: skip
    decisions = []
    for r in drift[:30]:
        status = r.data.tags.get("mlops.drift_status", "")
        decisions.append([
            r.info.run_name or "", Tag(status, "drift" if status == "drift" else ""),
            _drift_measure(r.data.metrics), _retraining_cell(root, status, r.data.tags.get("mlops.retraining")),
            Link(f"{root}/mlflow/runs/{r.info.run_id}/artifacts/drift/report.html", "drift report"),
        ])  # fmt: skip
    pending = [
        [r.info.run_name or "", Link(f"{root}/mlflow/runs/{r.info.run_id}/artifacts/drift/report.html", "open")]
        for r in drift if r.data.tags.get("mlops.drift_status") == "drift"
    ][:10]  # fmt: skip
    return _page(
        "mlops_pipeline.html", f"MLOps: {name}", name=name, back=Link(root + "/", "← MLOps"), versions=version_rows,
        charts=_charts(drift), decisions=decisions, pending=pending, live=[_live_row(r) for r in live[:30]],
        failed=_failed_runs(root, name), alerts=_alerts(root, name),
    )  # fmt: skip


def _retraining_cell(root: str, status: str, outcome: str | None) -> Any:
    """What a drift decision led to: a triggered retraining (linked to its run), held (and why), or pending
    (drift found, the trigger has not decided yet); nothing for no drift."""
    if status != "drift":
        return ""
    if not outcome:
        return Tag("pending", "muted")
    if outcome.startswith("triggered: "):
        dag_id, _, run_id = outcome.removeprefix("triggered: ").partition(" run ")
        base = root.removesuffix("/mlops")
        return Link(f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}", f"triggered {dag_id}")
    return outcome


def _live_row(run: Any) -> list[str]:
    """One labelled window: the compare metric of the champion and the challenger on their own rows, the
    difference with its interval and the promotion verdict, and the champion's performance verdict."""
    tags, metrics = run.data.tags, run.data.metrics
    metric = tags.get("mlops.live_metric", "")
    champion, challenger = tags.get("mlops.live_champion"), tags.get("mlops.live_challenger")

    def cell(version: str | None) -> str:
        value = metrics.get(f"v{version}_{metric}") if version else None
        return f"v{version} {value:.4f}" if value is not None else (f"v{version}" if version else "—")

    rows = metrics.get(f"v{champion}_rows") if champion else None
    status = tags.get("mlops.performance_status", "")
    return [
        (run.info.run_name or "").rsplit(" ", 1)[-1], metric, cell(champion), cell(challenger),
        f"{int(rows)}" if rows is not None else "", tags.get("mlops.live_decision", "")[:300],
        Tag(status, "drift" if status == "drift" else ""),
    ]  # fmt: skip


def _failed_runs(root: str, name: str) -> list[list[str]]:
    """The pipeline's failed DAG runs of the last 30 days, newest first, each with a link to its grid."""
    import datetime as dt

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    try:
        with create_session() as session:
            found = session.execute(
                select(DagRun.dag_id, DagRun.run_id, DagRun.end_date)
                .where(DagRun.dag_id.like(name.replace("_", "\\_") + "\\_\\_%", escape="\\"), DagRun.state == DagRunState.FAILED)
                .where(DagRun.end_date >= since)
                .order_by(DagRun.end_date.desc())
                .limit(30)
            ).all()
    except Exception as err:  # the view still shows the rest
        log.warning("failed runs of %s could not be listed: %s", name, err)
        return []
    base = root.removesuffix("/mlops")
    return [
        [dag_id, run_id, end.isoformat(timespec="seconds") if end else "",
         Link(f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}", "open the run")]
        for dag_id, run_id, end in found
    ]  # fmt: skip


def _alerts(root: str, name: str, limit: int = 50) -> list[list[Any]]:
    """The events of the pipeline's tasks over the last 30 days, newest first: quality anomalies, drift,
    retrainings, releases, failures (each task's XCom ``mlops_alerts``, written whether or not a route sent
    it), each with how many routes delivered it and a link to the task's log."""
    import datetime as dt

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_mlops.utils.alerts import ALERTS_XCOM, EVENT_TITLES

    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    try:
        with create_session() as session:
            found = session.execute(
                select(XComModel.dag_id, XComModel.run_id, XComModel.task_id, XComModel.value)
                .where(XComModel.dag_id.like(name.replace("_", "\\_") + "\\_\\_%", escape="\\"))
                .where(XComModel.key == ALERTS_XCOM, XComModel.timestamp >= since)
                .order_by(XComModel.timestamp.desc())
                .limit(limit)
            ).all()
    except Exception as err:  # the view still shows the rest
        log.warning("alerts of %s could not be listed: %s", name, err)
        return []
    base = root.removesuffix("/mlops")
    rows = []
    for dag_id, run_id, task_id, value in found:
        if isinstance(value, (bytes, str)):
            try:
                value = json.loads(value)
            except ValueError:
                continue
        for a in reversed(value if isinstance(value, list) else []):
            if not isinstance(a, dict):
                continue
            event = str(a.get("event", ""))
            sent = f"sent to {a.get('delivered', 0)} of {a['routes']} route(s)" if a.get("routes") else "no route for it"
            rows.append([
                str(a.get("at", ""))[:19].replace("T", " "),
                Tag(EVENT_TITLES.get(event, event), "drift" if event in ("quality_anomaly", "quality_gate_failed",
                                                                          "task_failed", "drift_found", "performance_drift") else ""),
                f"{dag_id} / {task_id}", str(a.get("headline", ""))[:300], sent,
                Link(f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id)}", "task log"),
            ])  # fmt: skip
    return sorted(rows, key=lambda r: r[0], reverse=True)[:limit]


def _runs(c: Any, experiment: str, limit: int) -> list[Any]:
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return list(c.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=limit))


def _window(tags: dict[str, str]) -> str:
    start, end = tags.get("mlops.window_start", ""), tags.get("mlops.window_end", "")
    return f"{start[:10]} → {end[:10]}" if start else ""


def _metrics_text(raw: str | None) -> str:
    try:
        metrics = json.loads(raw or "{}")
    except ValueError:
        return ""
    return ", ".join(f"{k}={float(v):.3f}" for k, v in sorted(metrics.items()) if isinstance(v, (int, float)))


def _drift_measure(metrics: dict[str, float]) -> str:
    """What a drift decision was measured by: the drifted features' share of the champion's importance (the
    default rule), or the share of drifted features (a champion without recorded importance)."""
    if "drifted_importance" in metrics:
        return f"{metrics['drifted_importance']:.1%} of the champion's importance drifted"
    return f"share {metrics.get('drift_share', 0):.2f} of features drifted"


def _charts(drift_runs: list[Any]) -> list[dict[str, Any]]:
    """One small SVG line chart per feature (drawn by ``mlops_pipeline.html``): its drift score per check
    (oldest left) and its threshold; the axes show the score scale (0 and its top), the first and last day
    checked, a mark where the champion changed (a promotion or a retraining that took over: the scores
    after it compare another model) and one where a check triggered a retraining."""
    runs = list(reversed(drift_runs))
    if not runs:
        return []
    features = sorted({k[len("score_"):] for r in runs for k in r.data.metrics if k.startswith("score_")})
    thresholds = {}
    for r in runs:
        try:
            thresholds.update(json.loads(r.data.tags.get("mlops.drift_thresholds") or "{}"))
        except ValueError:
            pass
    days = [_day_and_champion(r) for r in runs]
    retrainings = [
        tag if (tag := r.data.tags.get("mlops.retraining") or "").startswith("triggered: ") else "" for r in runs
    ]
    w, h, pad = 260, 110, 24
    charts = []
    for feature in features:
        points = [(i, r.data.metrics.get(f"score_{feature}")) for i, r in enumerate(runs)]
        values = [v for _, v in points if v is not None]
        threshold = thresholds.get(feature) or None
        top = max(values + ([threshold] if threshold else []) + [1e-9]) * 1.15

        def xy(i: int, v: float, top: float = top) -> tuple[str, str]:
            x = pad + (w - 2 * pad) * (i / max(len(runs) - 1, 1))
            return f"{x:.1f}", f"{h - pad - (h - 2 * pad) * (v / top):.1f}"

        charts.append({
            "feature": feature, "w": w, "h": h, "pad": pad, "top": f"{top / 1.15:.2f}", "threshold": threshold,
            "threshold_y": xy(0, threshold)[1] if threshold else None,
            "line": " ".join(",".join(xy(i, v)) for i, v in points if v is not None),
            "dots": [{"x": xy(i, v)[0], "y": xy(i, v)[1], "over": bool(threshold and v > threshold),
                      "title": f"{runs[i].info.run_name or ''}: {v:.3f}"} for i, v in points if v is not None],
            "first_day": days[0][0], "last_day": days[-1][0] if len(days) > 1 else "",
            "marks": [{"x": xy(i, 0)[0], "champion": days[i][1], "day": days[i][0]}
                      for i in range(1, len(days)) if days[i][1] and days[i][1] != days[i - 1][1]],
            "retrainings": [{"x": xy(i, 0)[0], "day": days[i][0], "what": outcome.removeprefix("triggered: ")}
                            for i, outcome in enumerate(retrainings) if outcome],
        })  # fmt: skip
    return charts


def _day_and_champion(run: Any) -> tuple[str, str]:
    """A drift run's day and the champion it compared with, from its name (``<name> drift <day> vs v<N>``)."""
    name = run.info.run_name or ""
    head, _, champion = name.rpartition(" vs ")
    return head.rsplit(" ", 1)[-1], champion


# -- MLflow pages for a store without an MLflow UI ---------------------------------------------------------


def _run_pipeline(c: Any, run: Any) -> str:
    """The pipeline a run belongs to: its tag, else its experiment's name (``airflow-mlops/<pipeline>/...``)."""
    if run.data.tags.get("mlops.pipeline"):
        return run.data.tags["mlops.pipeline"]
    return c.get_experiment(run.info.experiment_id).name.removeprefix("airflow-mlops/").split("/", 1)[0]


@app.get("/mlflow/runs/{run_id}", response_class=HTMLResponse)
def mlflow_run(request: Request, run_id: str, user: User) -> HTMLResponse:
    root = _base(request)
    with _mlflow() as c:
        run = _get_run(c, run_id)
        _require_pipeline(user, _run_pipeline(c, run))
        artifacts = _list_artifacts(c, run_id)

    def rows(d: dict[str, Any]) -> list[list[str]]:
        return [[k, str(v)] for k, v in sorted(d.items())]

    files = [[Link(f"{root}/mlflow/runs/{run_id}/artifacts/{quote(p)}", p), str(size or "")] for p, size in artifacts]
    return _page(
        "mlops_run.html", f"MLflow run {run_id}", run_name=run.info.run_name or run_id, run_id=run_id,
        status=run.info.status, metrics=rows(run.data.metrics), params=rows(run.data.params), files=files,
        tags=rows({k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.log-model")}),
    )  # fmt: skip


def _get_run(c: Any, run_id: str) -> Any:
    try:
        return c.get_run(run_id)
    except Exception as err:
        raise HTTPException(status_code=404, detail=f"no MLflow run {run_id}") from err


def _list_artifacts(c: Any, run_id: str, path: str | None = None, depth: int = 0) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    for f in c.list_artifacts(run_id, path):
        if f.is_dir and depth < 3:
            out += _list_artifacts(c, run_id, f.path, depth + 1)
        elif not f.is_dir:
            out.append((f.path, f.file_size))
    return out[:500]


_TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json", ".png": "image/png",
          ".txt": "text/plain; charset=utf-8", ".yaml": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8"}  # fmt: skip
# The HTML reports this project writes into MLflow runs: the only run artifacts rendered as pages.
PROJECT_REPORTS = frozenset({"tests/report.html", "drift/report.html"})
# A served artifact never runs script in the Airflow UI's origin: ``sandbox`` gives the page an opaque origin
# with scripts, forms and pop-ups off (so a stored page cannot use the reader's Airflow session), and
# ``nosniff`` stops a browser from guessing a type the header does not say.
_ARTIFACT_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
_INLINE = {"application/json", "image/png", "text/plain; charset=utf-8"}


def _media_type(path: str) -> str:
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
    return _TYPES.get(suffix, "application/octet-stream")


def _artifact_response(data: bytes, path: str, *, report: bool) -> Response:
    """A stored file as the browser may safely take it: a project report renders as HTML, plain data (JSON,
    PNG, text) shows inline, anything else (another HTML page, SVG, an unknown type) downloads."""
    from urllib.parse import quote as quote_name

    media = _media_type(path)
    headers = dict(_ARTIFACT_HEADERS)
    if not (report and media.startswith("text/html")) and media not in _INLINE:
        media = "application/octet-stream"
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote_name(path.rsplit('/', 1)[-1])}"
    return Response(content=data, media_type=media, headers=headers)


@app.get("/mlflow/runs/{run_id}/artifacts/{path:path}")
def mlflow_artifact(run_id: str, path: str, user: User) -> Response:
    import shutil
    import tempfile
    from pathlib import Path

    if ".." in path.split("/"):
        raise HTTPException(status_code=400, detail="artifact paths are relative to the run")
    with _mlflow() as c:
        run = _get_run(c, run_id)
        _require_pipeline(user, _run_pipeline(c, run))
        folder = tempfile.mkdtemp(prefix="mlops-artifact-")
        try:
            local = c.download_artifacts(run_id, path, folder)
            if Path(local).is_dir():
                raise HTTPException(status_code=404, detail=f"{path} is a folder of run {run_id}")
            data = Path(local).read_bytes()
        except HTTPException:
            raise
        except Exception as err:
            raise HTTPException(status_code=404, detail=f"run {run_id} has no artifact {path}") from err
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return _artifact_response(data, path, report=path in PROJECT_REPORTS)


@app.get("/mlflow/models/{name}/versions/{version}", response_class=HTMLResponse)
def mlflow_version(request: Request, name: str, version: str, user: User) -> HTMLResponse:
    _require_pipeline(user, name)
    root = _base(request)
    with _mlflow() as c:
        try:
            v = c.get_model_version(name, version)
            aliases = [a for a, n in (c.get_registered_model(name).aliases or {}).items() if str(n) == str(version)]
        except Exception as err:
            raise HTTPException(status_code=404, detail=f"no version {version} of model {name}") from err
    links = [Link(f"{root}/pipelines/{quote(name)}", "pipeline")]
    if v.run_id:
        links += [Link(f"{root}/mlflow/runs/{v.run_id}", "training run"),
                  Link(f"{root}/mlflow/runs/{v.run_id}/artifacts/tests/report.html", "model test report"),
                  Link(f"{root}/mlflow/runs/{v.run_id}/artifacts/{CARD_MD}", "model card")]  # fmt: skip
    return _page(
        "mlops_version.html", f"{name} v{version}", name=name, version=str(version), status=str(v.status),
        badges=Group(tuple(Tag(a, f"badge {a}") for a in aliases)), links=Group(tuple(links), " · "),
        tags=[[k, str(val)] for k, val in sorted((v.tags or {}).items())],
    )  # fmt: skip


# -- reports stored by tasks ---------------------------------------------------------------------------------


@app.get("/reports/{dag_id}/{run_id}/{task_id}/{name}")
def task_report(dag_id: str, run_id: str, task_id: str, name: str, user: User) -> Response:
    """A report a task stored (its URI is in the task's XCom ``mlops_report_<name>``), for readers of the DAG."""
    if not _can_read_dag(user, dag_id):
        raise HTTPException(status_code=403, detail=f"no read access to DAG {dag_id}")
    uri = _report_uri(dag_id, run_id, task_id, name)
    if not uri:
        raise HTTPException(status_code=404, detail=f"{task_id} of {dag_id} run {run_id} stored no {name} report")
    from airflow_mlops import storage

    try:
        data = storage.read_bytes(uri)
    except (FileNotFoundError, OSError) as err:
        raise HTTPException(status_code=404, detail=f"the {name} report of {task_id} is gone from its store") from err
    return _artifact_response(data, uri, report=True)  # its URI came from the task's own XCom


def _report_uri(dag_id: str, run_id: str, task_id: str, name: str) -> str | None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel.value)
            .filter(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.task_id == task_id,
                XComModel.key == REPORT_XCOM_PREFIX + name, XComModel.map_index == -1,
            )
            .first()
        )  # fmt: skip
    if row is None:
        return None
    value = row[0]
    if isinstance(value, (bytes, str)):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    return value if isinstance(value, str) else None
