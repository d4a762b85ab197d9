"""Promotion policy and its mutual exclusion: which version holds ``champion``, promotion and rollback with
their reasons recorded on the versions. The MLflow plumbing is in :mod:`airflow_mlops.tracking.registry`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Generator
from typing import Any

from airflow_mlops.release import card, decisions
from airflow_mlops.tracking import registry

log = logging.getLogger(__name__)


def promote(
    c: Any, name: str, version: str, alias: str = registry.CHAMPION, reason: str = "",
    check: Callable[[], None] | None = None,
) -> str | None:  # fmt: skip
    """Point ``alias`` at ``version``; record the previous holder on the version for rollback. Call it under
    :func:`promotion_lock` and pass its ``check``, run right before the writes."""
    previous = registry.get_alias(c, name, alias)
    prev_version = str(previous.version) if previous is not None else None
    if prev_version == str(version):
        log.info("%s version %s already holds alias %r", name, version, alias)
        return prev_version
    if check is not None:
        check()
    if prev_version is not None:
        c.set_model_version_tag(name, version, f"mlops.previous_{alias}", prev_version)
    if reason:
        c.set_model_version_tag(name, version, f"mlops.{alias}_reason", reason[: registry.MAX_TAG])
    c.set_registered_model_alias(name, alias, version)
    log.info("alias %r of %s: version %s -> %s", alias, name, prev_version, version)
    card.publish(c, name, version)
    if prev_version is not None:
        card.publish(c, name, prev_version)  # its aliases changed too
    return prev_version


def _better(a: float | None, b: float | None, metric: str) -> bool:
    from airflow_mlops.model.metrics import LOWER_IS_BETTER

    if a is None:
        return False
    if b is None:
        return True
    return a < b if metric in LOWER_IS_BETTER else a > b


LOCK_URI_ENV = "AIRFLOW_MLOPS_LOCK_URI"  # the MLflow connection's extra lock_uri, as the hook exports it


@contextlib.contextmanager
def promotion_lock(c: Any, name: str, *, wait: float = 300.0) -> Generator[Callable[[], None], None, None]:
    """Hold the lock for alias changes of ``name`` (:mod:`airflow_mlops.release.locks`); yields the check to
    call right before each write. Re-entrant within a thread."""
    import os

    from airflow_mlops.release.locks import promotion_lock as lock

    registry_uri = str(getattr(c, "_registry_uri", None) or c.tracking_uri)
    with lock(registry_uri, name, lock_uri=os.environ.get(LOCK_URI_ENV) or None, wait=wait) as check:
        yield check


def promote_champion(
    c: Any,
    name: str,
    version: str,
    *,
    metric: str,
    tested_against: str | None,
    reason: str,
) -> tuple[bool, str | None]:
    """Make ``version`` champion, under the promotion lock; safe against other promotions at the same time.

    The model tests compared this version with the champion of that moment (``tested_against``). If another
    version became champion since, the two are compared by the ``metric`` each measured in its own tests and
    the alias moves only if this one is better; otherwise it becomes ``challenger``. So two promotions racing
    end with the better model as champion and nothing half-set. Returns (promoted, previous champion).
    """
    with promotion_lock(c, name) as check:
        holder = registry.get_alias(c, name, registry.CHAMPION)
        if holder is not None and str(holder.version) == str(version):
            return True, None
        if holder is not None and str(holder.version) != str(tested_against or ""):
            mine = registry.tested_metric(c.get_model_version(name, version), metric)
            theirs = registry.tested_metric(holder, metric)
            if not _better(mine, theirs, metric):
                log.info(
                    "%s version %s became champion meanwhile with %s %s (this version: %s): it stays champion",
                    name, holder.version, metric, theirs, mine,
                )  # fmt: skip
                promote(c, name, version, registry.CHALLENGER, check=check)
                c.set_model_version_tag(
                    name, version, "mlops.promotion_decision",
                    f"not promoted: version {holder.version} became champion meanwhile with a better tested {metric}",
                )  # fmt: skip
                return False, None
        return True, promote(c, name, version, registry.CHAMPION, reason, check=check)


def rollback(
    c: Any, name: str, *, reason: str, by: str, to_version: str | None = None, wait: float = 300.0
) -> dict[str, Any]:
    """Move ``champion`` back to the version it replaced (or to ``to_version``), recording who and why."""
    import datetime as dt

    from airflow_mlops.errors import IntegrityError

    if len((reason or "").strip()) < 10:
        raise ValueError(
            "a rollback needs a reason of at least 10 characters; it is recorded on both versions"
        )
    current = registry.get_alias(c, name, registry.CHAMPION)
    if current is None:
        raise IntegrityError(f"{name} has no champion: nothing to roll back")
    target = to_version or current.tags.get(f"mlops.previous_{registry.CHAMPION}")
    if not target:
        raise IntegrityError(
            f"{name} version {current.version} has no recorded previous champion: pass the version to roll "
            "back to (airflow-mlops rollback --to-version N, or the rollback DAG's to_version param)"
        )
    if str(target) == str(current.version):
        raise IntegrityError(f"version {target} is already champion of {name}")
    c.get_model_version(name, str(target))  # raises if the version does not exist
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    record = f"{now} by {by}: {reason.strip()}"
    with promotion_lock(c, name, wait=wait) as check:
        if str(registry.get_alias(c, name, registry.CHAMPION).version) != str(current.version):
            raise IntegrityError(f"the champion of {name} changed while rolling back; look again and retry")
        check()
        c.set_model_version_tag(name, str(current.version), "mlops.rolled_back", record[: registry.MAX_TAG])
        c.set_model_version_tag(name, str(target), "mlops.rollback_from", str(current.version))
        c.set_model_version_tag(name, str(target), "mlops.rollback", record[: registry.MAX_TAG])
        c.set_registered_model_alias(name, registry.CHAMPION, str(target))
        # a re-run of the rolled-back version's window reproduces this, not its old promotion
        decisions.record_decision(
            c, name, str(current.version),
            {"alias": None, "promoted": False, "previous_champion": None,
             "reason": f"rolled back earlier ({record}): not promoted again automatically; promote it by hand "
                       "(airflow-mlops promote) if it should serve again"},
            None,
        )  # fmt: skip
    log.warning("ROLLBACK of %s: champion version %s -> %s (%s)", name, current.version, target, record)
    card.publish(c, name, str(current.version))
    card.publish(c, name, str(target))
    return {
        "name": name,
        "from_version": str(current.version),
        "to_version": str(target),
        "by": by,
        "reason": reason.strip(),
        "at": now,
    }


def register_and_promote(
    c: Any,
    *,
    name: str,
    training: dict[str, Any],
    tests: dict[str, Any],
    promotion_mode: str = "auto",
    airflow: dict[str, Any] | None = None,
    compare_metric: str | None = None,
) -> dict[str, Any]:
    """Register the trained run (idempotently) with its lineage, then set ``champion`` or ``challenger``.

    ``promotion_mode``: ``auto`` promotes a version the tests say to promote; ``manual`` and ``approval``
    make it ``challenger`` and leave the decision to a person (``approval``: the DAG's approval task).
    """
    import json

    run = c.get_run(training["run_id"])
    lineage = {k: v for k, v in run.data.tags.items() if k.startswith(("mlops.", "airflow."))}
    metrics = tests.get("metrics") or {}
    override = tests.get("override")
    tags = {
        **lineage,
        registry.MODEL_SHA_TAG: training["model_sha256"],
        "mlops.tests": "passed"
        if tests.get("passed")
        else ("failed, released by override" if override else "failed"),
        "mlops.test_metrics": json.dumps({k: round(v, 6) for k, v in metrics.items()}, sort_keys=True),
        "mlops.test_results": json.dumps(
            [[r["test"], r["observed"], "pass" if r["passed"] else "FAIL"] for r in tests.get("tests", [])]
        ),
        "mlops.promotion_decision": tests.get("reason", ""),
        **registry.monitoring_tags(tests.get("details") or {}),
        **(
            {"mlops.override_reason": override["reason"], "mlops.override_by": override["by"]}
            if override
            else {}
        ),
        **{f"airflow.register_{k}": v for k, v in (airflow or {}).items() if k in ("dag_id", "run_id")},
    }
    summary = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
    n_tests = len([r for r in tests.get("tests", []) if r.get("gate", True)])
    verdict = (
        "passed"
        if tests.get("passed")
        else f"FAILED but released by override ({override['by']}: {override['reason']})"
        if override
        else "failed"
    )
    description = (
        f"{n_tests} model tests {verdict} on {run.data.tags.get('mlops.window_start', '?')}.."
        f"{run.data.tags.get('mlops.window_end', '?')}: {summary}. {tests.get('reason', '')}"
    )
    version, reused = registry.register_version(
        c, name=name, model_uri=training["model_uri"], run_id=training["run_id"], run_key=training["run_key"],
        tags=tags, description=description,
    )  # fmt: skip
    result = {"name": name, "version": str(version.version), "run_id": training["run_id"], "reused": reused,
              "metrics": metrics}  # fmt: skip
    recorded = decisions.recorded_decision(version)
    if recorded is not None and not tests.get("reevaluation"):
        # decided before (a re-run, clear or backfill of the same window): reproduce it, move nothing
        log.info(
            "%s version %s: release decided at %s (%s); reproducing that decision, aliases untouched",
            name, version.version, recorded.get("at"), recorded.get("alias"),
        )  # fmt: skip
        return {
            **result, "alias": recorded.get("alias"), "promoted": bool(recorded.get("promoted")),
            "awaiting_approval": bool(recorded.get("awaiting_approval")), "reason": recorded.get("reason", ""),
            "previous_champion": recorded.get("previous_champion"), "reproduced": recorded.get("at"),
        }  # fmt: skip
    with promotion_lock(c, name) as check:
        decision = _decide(
            c, name, version, tests=tests, promotion_mode=promotion_mode, check=check,
            metric=compare_metric or _first_metric(metrics),
        )  # fmt: skip
        check()
        decisions.record_decision(
            c, name, str(version.version), {**decision, "tested_against": tests.get("champion_version")}, airflow
        )
    if tests.get("reevaluation"):
        ev = tests["reevaluation"]
        c.set_model_version_tag(
            name, version.version, decisions.REEVALUATED_TAG,
            f"{ev['at']} by {ev['by']}: {ev['reason']}"[: registry.MAX_TAG],
        )  # fmt: skip
    if decision.get("awaiting_approval"):
        registry.set_model_state(c, name, {registry.AWAITING_TAG: str(version.version)})
    card.publish(c, name, str(version.version))  # registered: its card, whatever was decided
    return {**result, **decision, "reproduced": None}


def _decide(
    c: Any, name: str, version: Any, *, tests: dict[str, Any], promotion_mode: str, metric: str,
    check: Callable[[], None],
) -> dict[str, Any]:  # fmt: skip
    """Which alias a newly tested version gets (called under the promotion lock)."""
    previous, awaiting = None, False
    current = registry.get_alias(c, name, registry.CHAMPION)
    if current is not None and str(current.version) == str(version.version):
        alias, promoted, reason = registry.CHAMPION, True, "already champion"
    elif tests.get("promote") and version.tags.get("mlops.rolled_back"):
        # a version taken out of service by a rollback does not come back by itself on a re-run
        promote(c, name, version.version, registry.CHALLENGER, check=check)
        alias, promoted = registry.CHALLENGER, False
        reason = (
            f"rolled back earlier ({version.tags['mlops.rolled_back']}): not promoted again automatically; "
            "promote it by hand (airflow-mlops promote) if it should serve again"
        )
    elif tests.get("promote") and promotion_mode == "auto":
        promoted, previous = promote_champion(
            c, name, str(version.version), metric=metric, tested_against=tests.get("champion_version"),
            reason=tests.get("reason", ""),
        )  # fmt: skip
        alias = registry.CHAMPION if promoted else registry.CHALLENGER
        reason = (
            tests.get("reason", "") if promoted else "another version became champion meanwhile and is better"
        )
    else:
        promote(c, name, version.version, registry.CHALLENGER, check=check)
        alias, promoted = registry.CHALLENGER, False
        if tests.get("promote") and promotion_mode == "approval":
            awaiting = True
            reason = "passed its tests; awaiting approval (the approve_release task of this run)"
        elif tests.get("promote"):
            reason = "passed its tests; promotion.mode is manual: promote with `airflow-mlops promote`"
        else:
            reason = tests.get("reason", "")
        check()
        c.set_model_version_tag(name, version.version, "mlops.promotion_decision", reason[: registry.MAX_TAG])
    return {
        "alias": alias, "promoted": promoted, "awaiting_approval": awaiting, "reason": reason,
        "previous_champion": previous,
    }  # fmt: skip


def promote_approved(
    c: Any, name: str, version: str, *, by: str, at: str, metric: str, tested_against: str | None, reason: str,
    airflow: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """After a person approved the release: make ``version`` champion (or challenger, if a better version
    became champion meanwhile), once. A re-run of the approval reproduces the recorded outcome."""
    recorded = decisions.recorded_decision(c.get_model_version(name, version))
    if recorded is not None and recorded.get("approved_by"):
        log.info(
            "%s version %s: approval by %s decided at %s; reproducing it, aliases untouched",
            name, version, recorded["approved_by"], recorded.get("at"),
        )  # fmt: skip
        return {
            "version": str(version), "promoted": bool(recorded.get("promoted")),
            "approved_by": recorded["approved_by"], "previous_champion": recorded.get("previous_champion"),
            "reproduced": recorded.get("at"),
        }  # fmt: skip
    with promotion_lock(c, name) as check:
        check()
        c.set_model_version_tag(name, version, "mlops.approved_by", str(by)[: registry.MAX_TAG])
        c.set_model_version_tag(name, version, "mlops.approved_at", str(at))
        promoted, previous = promote_champion(
            c, name, version, metric=metric, tested_against=tested_against, reason=f"approved by {by}; {reason}"
        )
        decision = {
            "alias": registry.CHAMPION if promoted else registry.CHALLENGER, "promoted": promoted,
            "awaiting_approval": False, "previous_champion": previous, "approved_by": str(by),
            "tested_against": tested_against,
            "reason": f"approved by {by}" + ("" if promoted else "; a better version became champion meanwhile"),
        }  # fmt: skip
        check()
        decisions.record_decision(c, name, str(version), decision, airflow)
    try:
        waiting = c.get_registered_model(name).tags.get(registry.AWAITING_TAG)
    except Exception:
        waiting = None
    if waiting == str(version):
        registry.set_model_state(c, name, {registry.AWAITING_TAG: None})
    card.publish(c, name, str(version))
    return {"version": str(version), "promoted": promoted, "approved_by": str(by), "previous_champion": previous,
            "reproduced": None}  # fmt: skip


def _first_metric(metrics: dict[str, float]) -> str:
    return sorted(metrics)[0] if metrics else ""
