"""Release decisions are made once per trained run, and reproduced after that.

A re-run, clear or backfill of a window whose model was already tested and released must not decide again
against *today's* champion: that moved the champion back and forth and rewrote which version a rollback
goes to. So each decision is recorded where it belongs, and read back on the next run:

- the model test report, on the candidate's MLflow run (``tests/report.json``, its sha256 in the run tag
  ``mlops.test_report_sha256``: the tag is written last, so a crash before it leaves no decision);
- the release decision (alias, promoted, previous champion, reason), on the model version (tag
  ``mlops.release_decision``), written after the alias moved.

A new decision happens only on purpose: ``reevaluate_reason`` (at least 10 characters) runs the tests again
and decides again; the reason, who asked and when are recorded on the report and the version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any

from airflow_mlops.errors import IntegrityError
from airflow_mlops.tempfiles import owned_tempdir

log = logging.getLogger(__name__)

REPORT_PATH = "tests/report.json"
REPORT_SHA_TAG = "mlops.test_report_sha256"
DECISION_TAG = "mlops.release_decision"
REEVALUATED_TAG = "mlops.reevaluated"
MIN_REASON = 10


def reevaluation(reason: str | None, by: str | None) -> dict[str, Any] | None:
    """The audit record of a deliberate re-evaluation, or None when none was asked for."""
    reason = (reason or "").strip()
    if not reason:
        return None
    if len(reason) < MIN_REASON:
        from airflow_mlops.errors import ModelTestError

        raise ModelTestError(
            f"reevaluate_reason must say why in at least {MIN_REASON} characters (it is recorded on the report "
            f"and the model version); got {reason!r}"
        )
    return {"reason": reason, "by": by or "unknown", "at": _now()}


def prior_report(
    c: Any, run_id: str, *, reevaluate_reason: str | None, override_reason: str | None, by: str | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Whether a model test decides or reproduces: ``(recorded report, re-evaluation record)``.

    The recorded report comes back (to reproduce) unless a re-evaluation was asked for, or an override is
    given for a recorded failure that was not overridden (releasing it is a decision made on purpose). The
    re-evaluation record is set when the tests must run again on purpose; neither is set on a first test.
    """
    again = reevaluation(reevaluate_reason, by)
    recorded = None if again else recorded_report(c, run_id)
    overriding = (override_reason or "").strip()
    if recorded is not None and overriding and not recorded["passed"] and not recorded.get("override"):
        return None, reevaluation(f"override: {overriding}", by)
    return recorded, again


def report_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def recorded_report(c: Any, run_id: str) -> dict[str, Any] | None:
    """The test report this run's model was decided by, or None if it was never tested to the end.

    The report must match the hash recorded on the run: a changed report is refused, not trusted.
    """
    from pathlib import Path

    sha = c.get_run(run_id).data.tags.get(REPORT_SHA_TAG)
    if not sha:
        return None
    with owned_tempdir("report") as tmp:
        text = Path(c.download_artifacts(run_id, REPORT_PATH, tmp)).read_text()
    if report_sha(text) != sha:
        raise IntegrityError(
            f"the recorded test report of MLflow run {run_id} ({REPORT_PATH}) does not match its hash "
            f"({REPORT_SHA_TAG}): it was changed after the decision. Re-evaluate on purpose "
            "(reevaluate_reason) to decide again"
        )
    return json.loads(text)


def recorded_decision(version: Any) -> dict[str, Any] | None:
    """The release decision recorded on a model version, or None if none was completed."""
    raw = (getattr(version, "tags", None) or {}).get(DECISION_TAG)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        log.warning("unreadable %s tag on version %s: deciding again", DECISION_TAG, version.version)
        return None


def record_decision(c: Any, name: str, version: str, decision: dict[str, Any], airflow: dict | None) -> None:
    """Record the release decision on the version, after the alias moved (last: a crash before it means
    the decision was not completed, and the next run makes it)."""
    from airflow_mlops.tracking.registry import MAX_TAG

    keep = (
        "alias", "promoted", "awaiting_approval", "reason", "previous_champion", "tested_against", "approved_by",
    )  # fmt: skip
    record = {k: decision.get(k) for k in keep}
    record["reason"] = str(record.get("reason") or "")[:1000]
    record["at"] = _now()
    record["by_run"] = {k: v for k, v in (airflow or {}).items() if k in ("dag_id", "run_id")}
    text = json.dumps(record, sort_keys=True)
    if len(text) > MAX_TAG:
        record["reason"] = record["reason"][: max(0, 1000 - (len(text) - MAX_TAG))]
        text = json.dumps(record, sort_keys=True)
    c.set_model_version_tag(name, version, DECISION_TAG, text)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
