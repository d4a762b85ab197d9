"""When drift may start a retraining: one at a time, a cooldown in data time, optionally only after k
consecutive drifted windows of the same kind (data drift, live performance drift, estimated performance drift:
every trigger counts its own streak), and never losing a drift report (pending reports go to the next
retraining).

The state is a small ledger (JSON, any fsspec URL) per pipeline: the reports waiting for a retraining, and
the last trigger. The adapter reads it, asks :func:`decide`, writes it back and triggers (or not).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from airflow_mlops.data.partitions import parse_time


@dataclass
class Decision:
    trigger: bool
    reason: str | None
    pending: list[dict[str, Any]]
    ledger: dict[str, Any] = field(default_factory=dict)


def empty_ledger() -> dict[str, Any]:
    return {"pending": [], "last": None}


def streak(pending: list[dict[str, Any]], step: dt.timedelta | None) -> int:
    """How many of the latest pending reports come from back-to-back windows (``step`` apart)."""
    ends = sorted(parse_time(p["window_end"], "window_end") for p in pending)
    count = 1 if ends else 0
    for later, earlier in zip(reversed(ends[1:]), reversed(ends[:-1]), strict=True):
        if step is None or later - earlier != step:
            break
        count += 1
    return count


def decide(
    ledger: dict[str, Any],
    entry: dict[str, Any],
    *,
    in_flight: int,
    cooldown: dt.timedelta,
    consecutive: int,
    step: dt.timedelta | None,
    retraining: str,
    trigger_run_id: str,
) -> Decision:
    """Add ``entry`` (a drift report's summary: ``window_end``, ``report_uri``, ``drifted_features``,
    ``monitor_run_id``) to the pending reports and decide whether to trigger now. Returns the decision and
    the ledger to write back."""
    pending = [p for p in ledger["pending"] if p["monitor_run_id"] != entry["monitor_run_id"]] + [entry]
    source = entry.get("source", "data")
    same_kind = [p for p in pending if p.get("source", "data") == source]
    last = ledger.get("last")
    end = parse_time(entry["window_end"], "window_end")
    cooling = last is not None and end - parse_time(last["window_end"], "window_end") < cooldown
    if last is not None and last.get("monitor_run_id") == entry["monitor_run_id"]:
        reason = None  # this run already triggered (a retry): let the trigger find its own run
    elif in_flight:
        reason = f"a retraining of {retraining} is already queued or running"
    elif (count := streak(same_kind, step)) < consecutive:
        what = {"data": "drifted", "performance": "performance-drifted", "estimated": "estimated-drop"}.get(source, source)
        reason = f"{count} consecutive {what} window(s); the spec asks for {consecutive}"
    elif cooling:
        reason = (
            f"cooldown: the last retraining was triggered for the window ending {last['window_end']}, less "
            f"than {cooldown} of data before this one"
        )
    else:
        reason = None
    if reason is not None:
        return Decision(False, reason, pending, {**ledger, "pending": pending})
    last = {**entry, "triggered_run_id": trigger_run_id, "reports": len(pending)}
    return Decision(True, None, pending, {**ledger, "pending": [], "last": last})
