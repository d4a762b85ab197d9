"""``airflow-mlops audit NAME --day D``: from a day's predictions back to their origin.

Which version scored the day and under which alias, the data, parameters and code that trained it, its tests,
who released it and how, and the day's drift and data-quality verdicts. Everything comes from what the
pipelines already record: the prediction file's metadata (versions, inputs and the Airflow run that wrote
it), the registry version's and its training run's tags and params, the drift monitor's MLflow run of the
day, and the quality record of the day. A missing prediction file or version is an error that names what is
missing; a verdict that was never recorded is shown as such.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_mlops.errors import MlopsError
from airflow_mlops.tables import fmt, format_table


class AuditError(MlopsError):
    """A record the chain needs is missing: the message names it and where it was looked for."""


def predictions_file(predictions: str, day: str) -> str:
    """The day's prediction file: ``predictions`` itself when it is a file, else ``<folder>/<day>.parquet``."""
    from airflow_mlops.storage import exists, join

    uri = predictions if predictions.endswith(".parquet") else join(predictions.rstrip("/"), f"{day}.parquet")
    if not exists(uri):
        raise AuditError(
            f"no predictions for {day} at {uri}: the scoring DAG has not scored that day (or --predictions "
            "names another folder)"
        )
    return uri


def _version(c: Any, name: str, version: str) -> dict[str, Any]:
    """One version's part of the chain, read from its model card (the registry and its training run)."""
    from airflow_mlops.release import card

    try:
        built = card.build(c, name, version)
    except Exception as err:
        raise AuditError(f"{name} version {version}, named by the prediction file, is not in the registry: {err}") from None
    d, t, e = built.training_data, built.training, built.evaluation
    events: dict[str, Any] = {}
    for event in built.release:  # the last of each kind
        events[event.event] = event
    rolled = next((r.detail.removeprefix("rolled back from: ") for r in built.release if r.detail.startswith("rolled back from: ")), None)
    return {
        "version": built.version, "aliases_now": built.aliases, "run_id": t.run_id,
        "trained_on": {"start": d.window_start, "end": d.window_end}, "data_sha256": d.data_sha256,
        "input_uris": d.input_uris, "input_rows": d.rows, "params_hash": t.params_hash, "params": t.params,
        "code_version": t.code_version, "model_sha256": t.model_sha256, "trained_by": t.airflow,
        "tests": e.status, "test_metrics": e.metrics,
        "release_decision": events["decision"].detail if "decision" in events else None,
        "champion_reason": events["champion"].detail if "champion" in events else None,
        "approved_by": events["approval"].by if "approval" in events else None,
        "approved_at": events["approval"].at if "approval" in events else None,
        "override": {"reason": events["override"].detail, "by": events["override"].by} if "override" in events else None,
        "rolled_back": rolled,
    }  # fmt: skip


def _drift(c: Any, name: str, day: str) -> dict[str, Any]:
    from airflow_mlops.tracking import registry

    exp = c.get_experiment_by_name(f"{registry.experiment_name(name)}/drift")
    runs = (
        c.search_runs([exp.experiment_id], filter_string=f"attributes.run_name LIKE '% drift {day} vs %'")
        if exp is not None
        else []
    )
    if not runs:
        return {"status": "not recorded", "why": f"no drift monitor run for {day} in {registry.experiment_name(name)}/drift"}
    run = max(runs, key=lambda r: r.info.start_time or 0)
    return {"status": run.data.tags.get("mlops.drift_status", "unknown"), "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "drifted_importance": run.data.metrics.get("drifted_importance"), "drift_share": run.data.metrics.get("drift_share")}  # fmt: skip


def _quality(storage_uri: str | None, name: str, day: str) -> dict[str, Any]:
    from airflow_mlops import storage
    from airflow_mlops.data.quality import history_uri

    if not storage_uri:
        return {"status": "not recorded", "why": "no storage given (--storage, or the spec's storage.uri)"}
    uri = history_uri(storage_uri, name, day)
    if not storage.exists(uri):
        return {"status": "not recorded", "why": f"no quality record at {uri}"}
    record = json.loads(storage.read_bytes(uri))
    anomalies = record.get("anomalies") or []
    return {"status": "anomalies" if anomalies else "ok", "uri": uri, "rows": record.get("rows"),
            "anomalies": [f"{a.get('check')} {a.get('column')}: {a.get('observed')} (expected {a.get('expected')})" for a in anomalies]}  # fmt: skip


def audit(c: Any, name: str, day: str, *, predictions: str, storage_uri: str | None = None) -> dict[str, Any]:
    """The chain of one day's predictions of pipeline ``name`` (see the module)."""
    import pandas as pd

    from airflow_mlops.operations.scoring import read_metadata

    uri = predictions_file(predictions, day)
    meta = read_metadata(uri)
    if meta is None:
        raise AuditError(f"{uri} carries no airflow-mlops scoring metadata: it was not written by the scoring DAG")
    frame = pd.read_parquet(uri, columns=["model_version", "model_alias"])
    counts = frame.groupby(["model_version", "model_alias"], sort=True).size()
    served = [{"version": str(v), "alias": str(a), "rows": int(n)} for (v, a), n in counts.items()]
    shadow = None
    if meta.get("mode") == "shadow":
        from airflow_mlops.storage import exists, join

        side = join(f"{predictions.rstrip('/')}_shadow", f"{day}.parquet") if not predictions.endswith(".parquet") else None
        if side and exists(side):
            shadow = {"uri": side, "version": str(meta.get("challenger_version")), "rows": len(pd.read_parquet(side, columns=["model_version"]))}
    versions = list(dict.fromkeys([*(s["version"] for s in served), *([shadow["version"]] if shadow else [])]))
    return {
        "pipeline": name, "day": day,
        "predictions": {"uri": uri, "rows": len(frame), "mode": meta.get("mode"), "served": served, "shadow": shadow,
                        "written_by": meta.get("written_by"), "inputs": meta.get("inputs") or []},
        "versions": [_version(c, name, v) for v in versions],
        "drift": _drift(c, name, day),
        "quality": _quality(storage_uri, name, day),
    }  # fmt: skip


def _days(start: str | None, end: str | None) -> str:
    """A window [start, end) as its first and last day, as the demo's summary shows it."""
    import datetime as dt

    if not start or not end:
        return f"{start or '?'} .. {end or '?'} (window not recorded)"
    last = dt.datetime.fromisoformat(end) - dt.timedelta(microseconds=1)
    return f"{start[:10]}..{last.date().isoformat()}"


def render(record: dict[str, Any]) -> str:
    """The audit as a person reads it: one block per question."""
    p = record["predictions"]
    lines = [f"audit of {record['pipeline']} on {record['day']}", ""]
    by = p.get("written_by") or {}
    lines.append(
        f"predictions: {p['uri']} ({p['rows']} rows, mode {p['mode']}); written by "
        + (f"{by.get('dag_id')} run {by.get('run_id')} task {by.get('task_id')} try {by.get('try_number')}" if by else "an unrecorded run")
    )  # fmt: skip
    rows = [(s["version"], s["alias"], s["rows"]) for s in p["served"]]
    if p.get("shadow"):
        rows.append((p["shadow"]["version"], "shadow", p["shadow"]["rows"]))
    lines += [format_table(rows, ("version", "served as", "rows")), ""]
    for i in p["inputs"]:
        lines.append(f"input: {i.get('uri')} sha256 {str(i.get('sha256'))[:16]}")
    for v in record["versions"]:
        t = v["trained_on"]
        lines += [
            "",
            f"version {v['version']} (aliases now: {', '.join(v['aliases_now']) or 'none'}; MLflow run {v['run_id']})",
            f"  trained on: {_days(t['start'], t['end'])}, {v['input_rows'] or '?'} rows, data sha256 "
            f"{str(v['data_sha256'])[:16]}, params hash {v['params_hash']}, {v['code_version']}",
            f"  trained by: {v['trained_by'].get('dag_id', '?')} run {v['trained_by'].get('run_id', '?')}",
            "  params: " + ", ".join(f"{k}={val}" for k, val in sorted(v["params"].items())),
            f"  tests: {v['tests']}; " + ", ".join(f"{k}={fmt(val)}" for k, val in sorted(v["test_metrics"].items())),
            f"  release: {v['release_decision']}",
        ]
        if v["champion_reason"]:
            lines.append(f"  made champion: {v['champion_reason']}")
        if v["approved_by"]:
            lines.append(f"  approved by: {v['approved_by']} at {v['approved_at']}")
        if v["override"]:
            lines.append(f"  released by override: {v['override']['by']}: {v['override']['reason']}")
        if v["rolled_back"]:
            lines.append(f"  rolled back: {v['rolled_back']}")
    d, q = record["drift"], record["quality"]
    lines += ["", f"drift that day: {d['status']}" + (f" ({d['run_name']}, MLflow run {d['run_id']})" if d.get("run_id") else f" ({d.get('why')})")]
    lines.append(f"data quality that day: {q['status']}" + (f" ({q['rows']} rows, {q['uri']})" if q.get("uri") else f" ({q.get('why')})"))
    lines += [f"  {a}" for a in q.get("anomalies", [])]
    return "\n".join(lines)


def render_uri(template: str) -> str:
    """A spec URI with its ``{{ var.value.NAME }}`` filled from the environment (``AIRFLOW_VAR_NAME``), as
    Airflow would fill it from that Variable; any other template cannot be filled outside a run."""
    import os
    import re

    def var(match: re.Match[str]) -> str:
        name = match.group(1)
        value = os.environ.get(f"AIRFLOW_VAR_{name.upper()}")
        if value is None:
            raise AuditError(
                f"{template}: the Airflow Variable {name} is not set here (AIRFLOW_VAR_{name.upper()}); "
                "pass --predictions and --storage, or --home for the demo"
            )
        return value

    out = re.sub(r"\{\{\s*var\.value\.(\w+)\s*\}\}", var, template)
    if "{{" in out:
        raise AuditError(f"{template}: templated beyond Variables; pass --predictions and --storage explicitly")
    return out
