"""A model card per registry version, kept current by the pipeline that trains, tests and releases it.

Built from what the pipeline records on the version and its training run (nothing is typed in by hand): what
the model is and is for, the data it was trained on (window, files, rows, content hash), how it was trained
(params, code version, model hash), how it tested (metrics, the test table, feature importance, calibration),
every release event (the decision, approvals, overrides, promotions, rollbacks) and its aliases and live
windows now, with its stated limits. Stored with the version, on its training run, as ``model_card/card.md``
(for a person) and ``model_card/card.json`` (schema: ``docs/model-card.schema.json``, from
:class:`ModelCard`), written at registration and again at every promotion, approval and rollback.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from airflow_mlops.tables import fmt, format_table

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]  # the repository (docs/model-card.schema.json)
CARD_MD = "model_card/card.md"
CARD_JSON = "model_card/card.json"
SCHEMA_VERSION = 1


class TrainingData(BaseModel):
    window_start: str | None = Field(None, description="first instant of the training window (ISO)")
    window_end: str | None = Field(None, description="end of the training window, exclusive (ISO)")
    input_uris: list[str] = Field(default_factory=list, description="the partition files read")
    rows: int | None = Field(None, description="rows read")
    data_sha256: str | None = Field(None, description="content hash of the window's data")
    profile_uri: str | None = Field(None, description="the whylogs profile of the window")


class Training(BaseModel):
    run_id: str = Field(description="the MLflow run that trained the model")
    model_kind: str | None = None
    params: dict[str, str] = Field(default_factory=dict, description="the run's params")
    params_hash: str | None = None
    code_version: str | None = Field(None, description="the airflow-mlops version that trained it")
    model_sha256: str | None = Field(None, description="sha256 of model.json (each weight file is hashed in it)")
    model_files: int | None = Field(None, description="files of the logged model whose hashes are recorded")
    airflow: dict[str, str] = Field(default_factory=dict, description="the DAG and run that trained it")


class Evaluation(BaseModel):
    status: str | None = Field(None, description="passed | failed | failed, released by override")
    metrics: dict[str, float] = Field(default_factory=dict, description="held-out metrics of the tests")
    tests: list[list[Any]] = Field(default_factory=list, description="[test, observed, pass|FAIL] rows")
    feature_importance: dict[str, float] | None = None
    calibrated: bool = Field(False, description="a calibration curve is recorded (performance estimation)")


class ReleaseEvent(BaseModel):
    event: str = Field(description="decision | approval | override | champion | challenger | rollback")
    detail: str
    by: str | None = None
    at: str | None = None


class ModelCard(BaseModel):
    """The model card of one registry version (``model_card/card.json``)."""

    schema_version: int = SCHEMA_VERSION
    name: str
    version: str
    description: str | None = Field(None, description="what the model is for (the registered model's description)")
    created: str | None = Field(None, description="when the version was registered (ISO)")
    aliases: list[str] = Field(default_factory=list, description="the aliases the version holds now")
    training_data: TrainingData
    training: Training
    evaluation: Evaluation
    release: list[ReleaseEvent] = Field(default_factory=list, description="every release event, oldest first")
    live_windows: list[dict[str, Any]] = Field(default_factory=list, description="live windows against a champion")
    limits: list[str] = Field(default_factory=list, description="what this model and its monitoring cannot see")


def schema() -> dict[str, Any]:
    return ModelCard.model_json_schema()


def build(c: Any, name: str, version: str) -> ModelCard:
    """The card of ``name`` version ``version``, from the registry and the version's training run."""
    import datetime as dt

    from airflow_mlops.tracking import registry

    v = c.get_model_version(name, str(version))
    tags = dict(v.tags)
    try:
        run = c.get_run(v.run_id)
        params, run_tags = dict(run.data.params), dict(run.data.tags)
    except Exception:  # the run was deleted: the card says what the version still holds
        params, run_tags = {}, {}
    try:
        description = c.get_registered_model(name).description or None
    except Exception:
        description = None
    files = registry.model_files(tags) or registry.model_files(run_tags)
    importance = registry.feature_importance(v)
    events: list[ReleaseEvent] = []
    if tags.get("mlops.promotion_decision"):
        events.append(ReleaseEvent(event="decision", detail=tags["mlops.promotion_decision"]))
    if tags.get("mlops.override_reason"):
        events.append(ReleaseEvent(event="override", detail=tags["mlops.override_reason"], by=tags.get("mlops.override_by")))
    if tags.get("mlops.approved_by"):
        events.append(ReleaseEvent(event="approval", detail="approved for release", by=tags["mlops.approved_by"],
                                   at=tags.get("mlops.approved_at")))  # fmt: skip
    for alias in (registry.CHAMPION, registry.CHALLENGER):
        if tags.get(f"mlops.{alias}_reason"):
            previous = tags.get(f"mlops.previous_{alias}")
            events.append(ReleaseEvent(
                event=alias, detail=tags[f"mlops.{alias}_reason"] + (f" (replacing v{previous})" if previous else ""),
            ))  # fmt: skip
    for key, word in (("mlops.rollback", "rollback to this version"), ("mlops.rolled_back", "rolled back from")):
        if tags.get(key):
            events.append(ReleaseEvent(event="rollback", detail=f"{word}: {tags[key]}"))
    limits = [
        "Performance estimated before labels is blind to concept drift (a change of the labelling rule with "
        "unchanged inputs), and lags under covariate shift where the score does not carry all that the inputs "
        "say (the estimate task warns when the window's scores move); live metrics see both once labels arrive.",
        "Trained on the window above only: values, categories or classes outside it were never seen.",
    ]
    if not tags.get(registry.CALIBRATION_TAG):
        limits.append("No calibration is recorded: performance is not estimated before labels for this version.")
    created = getattr(v, "creation_timestamp", None)
    return ModelCard(
        name=name, version=str(v.version), description=description,
        created=dt.datetime.fromtimestamp(created / 1000, dt.UTC).isoformat() if created else None,
        aliases=sorted(getattr(v, "aliases", []) or []),
        training_data=TrainingData(
            window_start=tags.get("mlops.window_start"), window_end=tags.get("mlops.window_end"),
            input_uris=[u for u in (tags.get("mlops.input_uris") or "").split(",") if u],
            rows=int(tags["mlops.input_rows"]) if tags.get("mlops.input_rows") else None,
            data_sha256=tags.get("mlops.data_sha256"), profile_uri=tags.get("mlops.profile_uri"),
        ),
        training=Training(
            run_id=v.run_id, model_kind=tags.get("mlops.model_kind") or run_tags.get("mlops.model_kind"),
            params=params, params_hash=tags.get("mlops.params_hash"),
            code_version=tags.get("mlops.code_version") or run_tags.get("mlops.code_version"),
            model_sha256=tags.get(registry.MODEL_SHA_TAG), model_files=len(files) if files else None,
            airflow={k.removeprefix("airflow."): val for k, val in tags.items() if k in ("airflow.dag_id", "airflow.run_id")},
        ),
        evaluation=Evaluation(
            status=tags.get("mlops.tests"),
            metrics=json.loads(tags["mlops.test_metrics"]) if tags.get("mlops.test_metrics") else {},
            tests=json.loads(tags["mlops.test_results"]) if tags.get("mlops.test_results") else [],
            feature_importance=importance, calibrated=bool(tags.get(registry.CALIBRATION_TAG)),
        ),
        release=events,
        live_windows=json.loads(tags["mlops.live_windows"]) if tags.get("mlops.live_windows") else [],
        limits=limits,
    )  # fmt: skip


def markdown(card: ModelCard) -> str:
    """The card for a person."""
    d, t, e = card.training_data, card.training, card.evaluation
    lines = [
        f"# Model card: {card.name} version {card.version}",
        "",
        card.description or "_No description: set the registered model's description (the spec's `description`)._",
        "",
        f"- **Aliases now:** {', '.join(card.aliases) or 'none'}",
        f"- **Registered:** {card.created or 'unknown'}",
        f"- **Kind:** {t.model_kind or 'unknown'}",
        "",
        "## Training data",
        "",
        f"- **Window:** {d.window_start or '?'} to {d.window_end or '?'} (end exclusive)",
        f"- **Rows:** {d.rows if d.rows is not None else 'unknown'}; **content sha256:** `{d.data_sha256 or 'unknown'}`",
        *(f"- `{u}`" for u in d.input_uris),
        "",
        "## Training",
        "",
        f"- **MLflow run:** `{t.run_id}`; **trained by:** {t.airflow.get('dag_id', '?')} run {t.airflow.get('run_id', '?')}",
        f"- **Code:** {t.code_version or 'unknown'}; **params hash:** `{t.params_hash or 'unknown'}`",
        f"- **Model:** model.json sha256 `{t.model_sha256 or 'unknown'}`, {t.model_files or 'no'} file hashes recorded",
        "",
        format_table(sorted(t.params.items()), ("param", "value")) if t.params else "_No params recorded._",
        "",
        "## Evaluation",
        "",
        f"**Tests:** {e.status or 'not recorded'}",
        "",
        format_table([(m, fmt(v)) for m, v in sorted(e.metrics.items())], ("metric", "held-out value"))
        if e.metrics else "_No metrics recorded._",
        "",
    ]  # fmt: skip
    if e.tests:
        lines += [format_table([tuple(map(str, r)) for r in e.tests], ("test", "observed", "result")), ""]
    if e.feature_importance:
        top = sorted(e.feature_importance.items(), key=lambda kv: -kv[1])
        lines += ["**Feature importance** (share of the metric's drop when shuffled):", "",
                  format_table([(f, f"{100 * s:.1f}%") for f, s in top], ("feature", "importance")), ""]  # fmt: skip
    lines.append(f"**Calibration:** {'recorded' if e.calibrated else 'none'}")
    lines += ["", "## Release history", ""]
    lines += [f"- **{r.event}**{f' by {r.by}' if r.by else ''}{f' at {r.at}' if r.at else ''}: {r.detail}" for r in card.release]
    if not card.release:
        lines.append("_No release event recorded._")
    if card.live_windows:
        lines += ["", "## Live windows", ""]
        lines.append(format_table(
            [(w.get("window"), f"v{w.get('champion')}", "won" if w.get("won") else "lost") for w in card.live_windows],
            ("window", "against", "result"),
        ))  # fmt: skip
    lines += ["", "## Limits", "", *(f"- {x}" for x in card.limits), ""]
    return "\n".join(lines)


def publish(c: Any, name: str, version: str | int) -> ModelCard | None:
    """Write the card of ``version`` with its training run (Markdown and JSON), replacing the last one. Never
    fails a release: a card that cannot be written is logged, and the next event writes it again."""
    try:
        card = build(c, name, str(version))
        c.log_text(card.training.run_id, markdown(card), CARD_MD)
        c.log_text(card.training.run_id, card.model_dump_json(indent=2), CARD_JSON)
        log.info("model card of %s version %s written (%s)", name, version, CARD_MD)
        return card
    except Exception as err:
        log.warning("could not write the model card of %s version %s: %s: %s", name, version, type(err).__name__, err)
        return None
