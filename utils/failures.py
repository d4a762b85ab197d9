"""Failures first: a failing task's log opens with what failed, what happens next, the fix and the links.

Quality gates fail without retries (retrying does not fix bad data or a weak model). :func:`gate` turns the
core's errors into Airflow's: it logs the failure block (:func:`failure_block`) where the task fails, and raises
an exception whose message is one line, so the table is printed once and Airflow's own last line says what
failed. Operators keep their logging before a verdict to a few lines, so the block lands within the first
lines of the log; the full tables follow it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.errors import ConfigError, IntegrityError, QualityGateError, SpecError

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context

FAILURE_XCOM = "mlops_failure"  # the block, for the alert that follows the failure


class QualityGateFailed(AirflowFailException):
    """A data-validation or model-test gate failed; ``block`` holds the failed checks, the fix and the links."""

    def __init__(self, message: str, block: str = "", rows: list[dict] | None = None) -> None:
        super().__init__(message)
        self.block = block or message
        self.rows = rows or []


class IntegrityCheckFailed(AirflowFailException):
    """An artifact did not match its recorded hash."""

    def __init__(self, message: str, block: str = "") -> None:
        super().__init__(message)
        self.block = block or message


class ConfigFailed(AirflowFailException):
    """A spec or model setting is wrong: the same run fails the same way until it is fixed."""

    def __init__(self, message: str, block: str = "") -> None:
        super().__init__(message)
        self.block = block or message


def downstream(task: BaseOperator | None) -> list[str]:
    """The tasks that will not run because this one failed (all of its downstream tasks)."""
    try:
        if task is None or not task.has_dag():
            return []
        ids = task.get_flat_relative_ids(upstream=False)
        return [t for t in task.dag.task_ids if t in ids]  # in the DAG's order
    except Exception:  # a task outside a DAG, a mock
        return []


def pushed_links(task: BaseOperator | None, context: Context | None) -> dict[str, str]:
    """The links the task pushed so far (its extra links' XComs), by label."""
    if task is None or context is None:
        return {}
    out = {}
    for link in getattr(task, "operator_extra_links", ()) or ():
        key = getattr(link, "key", None)
        if not key:
            continue
        try:
            url = context["ti"].xcom_pull(task_ids=context["ti"].task_id, key=key)
        except Exception:
            url = None
        if url:
            out[link.label] = url
    return out


def failure_block(
    headline: str, detail: str = "", *, next_step: str, fix: str = "", links: dict[str, str] | None = None,
    skipped: list[str] | None = None,
) -> str:  # fmt: skip
    """The first lines of a failing (or alerting) task's log: what, the failed rows, next, fix, links."""
    lines = [f"FAILED: {headline}"]
    if detail.strip():
        lines.append(detail.rstrip())
    nxt = next_step + (f"; not run: {', '.join(skipped)}" if skipped else "")
    lines.append(f"next: {nxt}")
    if fix:
        fix = fix.removeprefix("Fix ")
        lines.append(f"fix: {fix[:1].lower()}{fix[1:]}")
    for label, url in (links or {}).items():
        lines.append(f"{label}: {url}")
    return "\n".join(lines)


def split_message(message: str) -> tuple[str, str, str]:
    """A core error message as (headline, detail, fix): its first line, the middle (a table), and its last
    paragraph when that says what to do."""
    lines = message.strip().splitlines() or [""]
    headline, rest = lines[0], lines[1:]
    fix = ""
    if len(rest) > 1 and not rest[-1].startswith((" ", "|", "-", "+")):
        fix = rest.pop()
    return headline, "\n".join(rest), fix


def _tries(task: BaseOperator | None, context: Context | None) -> str:
    ti = context.get("ti") if context else None
    try_number = getattr(ti, "try_number", None)
    retries = getattr(task, "retries", None)
    if try_number is None or retries is None:
        return ""
    return f" (try {try_number} of {int(retries) + 1})"


def _log_block(task: BaseOperator | None, context: Context | None, block: str) -> None:
    if task is not None:
        task.log.error("%s", block)
    if context is not None:
        with contextlib.suppress(Exception):
            context["ti"].xcom_push(key=FAILURE_XCOM, value=block)


@contextlib.contextmanager
def gate(task: BaseOperator | None = None, context: Context | None = None) -> Generator[None, None, None]:
    """Errors a retry cannot fix fail the task at once (no retry); with ``task`` and ``context`` the failure
    block is logged where it happens and the raised exception's message is its one-line headline."""
    try:
        yield
    except QualityGateError as err:
        headline, detail, fix = split_message(str(err))
        block = failure_block(
            headline, detail, next_step=f"no retry{_tries(task, context)}: a quality gate (the same input fails the same way)",
            fix=fix, links=pushed_links(task, context), skipped=downstream(task),
        )  # fmt: skip
        _log_block(task, context, block)
        raise QualityGateFailed(_short(err, headline, task), block, rows=err.rows) from None
    except IntegrityError as err:
        headline, detail, fix = split_message(str(err))
        block = failure_block(
            headline, detail, next_step="no retry: a stored artifact does not match its recorded hash",
            fix=fix or "find out who changed the artifact; restore it or train again", skipped=downstream(task),
        )  # fmt: skip
        _log_block(task, context, block)
        raise IntegrityCheckFailed(_short(err, headline, task), block) from None
    except (SpecError, ConfigError) as err:  # a retry would fail the same way
        headline, detail, fix = split_message(str(err))
        block = failure_block(
            headline, detail, next_step="no retry: a setting is wrong (nothing was started)", fix=fix,
            skipped=downstream(task),
        )  # fmt: skip
        _log_block(task, context, block)
        raise ConfigFailed(_short(err, headline, task), block) from None


def _short(err: Exception, headline: str, task: BaseOperator | None) -> str:
    """The exception's own message: the headline and where the rest is (logged above), or without a task to
    log to, the whole message."""
    return str(err) if task is None else f"{headline} (the failed checks, the fix and the links open this log)"
