"""Promotion policy and its mutual exclusion: which version holds ``champion``, promotion and rollback with
their reasons recorded on the versions. The MLflow plumbing is in :mod:`airflow_mlops.tracking.registry`."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Generator
from typing import Any

from airflow_mlops.tracking import registry

log = logging.getLogger(__name__)


def promote(c: Any, name: str, version: str, alias: str = registry.CHAMPION, reason: str = "") -> str | None:
    """Point ``alias`` at ``version``; record the previous holder on the version for rollback."""
    previous = registry.get_alias(c, name, alias)
    prev_version = str(previous.version) if previous is not None else None
    if prev_version == str(version):
        log.info("%s version %s already holds alias %r", name, version, alias)
        return prev_version
    if prev_version is not None:
        c.set_model_version_tag(name, version, f"mlops.previous_{alias}", prev_version)
    if reason:
        c.set_model_version_tag(name, version, f"mlops.{alias}_reason", reason[: registry.MAX_TAG])
    c.set_registered_model_alias(name, alias, version)
    log.info("alias %r of %s: version %s -> %s", alias, name, prev_version, version)
    return prev_version


def _better(a: float | None, b: float | None, metric: str) -> bool:
    from airflow_mlops.model.metrics import LOWER_IS_BETTER

    if a is None:
        return False
    if b is None:
        return True
    return a < b if metric in LOWER_IS_BETTER else a > b


LOCK_SUFFIX = "__promotion_lock"


@contextlib.contextmanager
def promotion_lock(
    c: Any, name: str, *, owner: str = "", ttl: float = 600.0, wait: float = 300.0
) -> Generator[None, None, None]:
    """Mutual exclusion for alias changes of ``name``, through the registry itself.

    MLflow has no compare-and-set on aliases, but creating a registered model is atomic (names are unique),
    so the lock is a registered model ``<name>__promotion_lock`` that exists while one promotion or
    rollback runs, whichever process or machine it runs on. A lock older than ``ttl`` seconds (its holder
    died) is broken.
    """
    import json
    import os
    import socket

    from mlflow.exceptions import MlflowException

    lock = f"{name}{LOCK_SUFFIX}"
    me = owner or f"{socket.gethostname()}:{os.getpid()}"
    deadline = time.monotonic() + wait
    while True:
        try:
            c.create_registered_model(
                lock, description=json.dumps({"owner": me, "at": time.time()}),
                tags={"mlops.lock": f"promotion of {name} in progress"},
            )  # fmt: skip
            break
        except MlflowException as err:
            if "already exists" not in str(err).lower() and "RESOURCE_ALREADY_EXISTS" not in str(err):
                raise
        try:
            held = json.loads(c.get_registered_model(lock).description or "{}")
        except (MlflowException, ValueError):
            held = {}
        if held and time.time() - float(held.get("at", 0)) > ttl:
            log.warning("breaking the stale promotion lock of %s held by %s", name, held.get("owner"))
            with contextlib.suppress(MlflowException):
                c.delete_registered_model(lock)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the champion of {name} is being changed by {held.get('owner', 'another process')} (lock {lock}); "
                f"retry later, or delete registered model {lock} if that process died"
            )
        time.sleep(0.2)
    try:
        yield
    finally:
        with contextlib.suppress(MlflowException):
            c.delete_registered_model(lock)


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
    with promotion_lock(c, name):
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
                promote(c, name, version, registry.CHALLENGER)
                c.set_model_version_tag(
                    name, version, "mlops.promotion_decision",
                    f"not promoted: version {holder.version} became champion meanwhile with a better tested {metric}",
                )  # fmt: skip
                return False, None
        return True, promote(c, name, version, registry.CHAMPION, reason)


def rollback(c: Any, name: str, *, reason: str, by: str, to_version: str | None = None) -> dict[str, Any]:
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
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    record = f"{now} by {by}: {reason.strip()}"
    with promotion_lock(c, name):
        if str(registry.get_alias(c, name, registry.CHAMPION).version) != str(current.version):
            raise IntegrityError(f"the champion of {name} changed while rolling back; look again and retry")
        c.set_model_version_tag(name, str(current.version), "mlops.rolled_back", record[: registry.MAX_TAG])
        c.set_model_version_tag(name, str(target), "mlops.rollback_from", str(current.version))
        c.set_model_version_tag(name, str(target), "mlops.rollback", record[: registry.MAX_TAG])
        c.set_registered_model_alias(name, registry.CHAMPION, str(target))
    log.warning("ROLLBACK of %s: champion version %s -> %s (%s)", name, current.version, target, record)
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
    previous, awaiting = None, False
    current = registry.get_alias(c, name, registry.CHAMPION)
    if current is not None and str(current.version) == str(version.version):
        alias, promoted, reason = registry.CHAMPION, True, "already champion"
    elif tests.get("promote") and version.tags.get("mlops.rolled_back"):
        # a version taken out of service by a rollback does not come back by itself on a re-run
        promote(c, name, version.version, registry.CHALLENGER)
        alias, promoted = registry.CHALLENGER, False
        reason = (
            f"rolled back earlier ({version.tags['mlops.rolled_back']}): not promoted again automatically; "
            "promote it by hand (airflow-mlops promote) if it should serve again"
        )
    elif tests.get("promote") and promotion_mode == "auto":
        promoted, previous = promote_champion(
            c, name, str(version.version), metric=compare_metric or _first_metric(metrics),
            tested_against=tests.get("champion_version"), reason=tests.get("reason", ""),
        )  # fmt: skip
        alias = registry.CHAMPION if promoted else registry.CHALLENGER
        reason = (
            tests.get("reason", "") if promoted else "another version became champion meanwhile and is better"
        )
    else:
        promote(c, name, version.version, registry.CHALLENGER)
        alias, promoted = registry.CHALLENGER, False
        if tests.get("promote") and promotion_mode == "approval":
            awaiting = True
            reason = "passed its tests; awaiting approval (the approve_release task of this run)"
        elif tests.get("promote"):
            reason = "passed its tests; promotion.mode is manual: promote with `airflow-mlops promote`"
        else:
            reason = tests.get("reason", "")
        c.set_model_version_tag(name, version.version, "mlops.promotion_decision", reason[: registry.MAX_TAG])
    return {
        "name": name,
        "version": str(version.version),
        "run_id": training["run_id"],
        "reused": reused,
        "alias": alias,
        "promoted": promoted,
        "awaiting_approval": awaiting,
        "reason": reason,
        "previous_champion": previous,
        "metrics": metrics,
    }


def _first_metric(metrics: dict[str, float]) -> str:
    return sorted(metrics)[0] if metrics else ""
