"""Small helpers shared by the adapters: Airflow context in, plain values out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_START = "{{ data_interval_start }}"
DEFAULT_END = "{{ data_interval_end }}"
WINDOW_FIELDS = ("window_start", "window_end")


def airflow_ids(context: Context) -> dict[str, Any]:
    """Where a result came from, for lineage tags: dag, run, task, try and data interval."""
    ti = context["ti"]
    dag_run = context.get("dag_run")
    ids = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "try_number": ti.try_number}
    if dag_run is not None:
        for name in ("data_interval_start", "data_interval_end"):
            value = getattr(dag_run, name, None)
            if value is not None:
                ids[name] = value.isoformat()
    return ids


def with_overrides(model: dict[str, Any], overrides: dict[str, Any] | str | None) -> dict[str, Any]:
    """``model`` with ``params`` overridden for one run (the DAGs' ``model_params`` param, rendered as JSON)."""
    import json

    from airflow_mlops.errors import ConfigError

    if isinstance(overrides, str):
        overrides = overrides.strip()
        if overrides in ("", "None", "null", "{}"):
            return model
        try:
            overrides = json.loads(overrides)
        except ValueError as err:
            raise ConfigError(
                [f'model_params: found {overrides!r}; allowed: a JSON object, e.g. {{"epochs": 5}}'], "model_params"
            ) from err
    if not overrides:
        return model
    if not isinstance(overrides, dict):
        raise ConfigError(
            [f"model_params: found {overrides!r}; allowed: a mapping of model.params keys to values"], "model_params"
        )
    return {**model, "params": {**(model.get("params") or {}), **overrides}}


class NamedOutputs(BaseOperator):
    """For operators that return a dict: each key is also an XCom of its own (Airflow's ``multiple_outputs``),
    so a hand-written DAG reads one result the Airflow way, ``validate.output["profile_uri"]``, as well as
    the whole dict (``validate.output``). Pass ``multiple_outputs=False`` to keep only the whole dict.

    An operator base (not a plain mixin), so Airflow wraps its ``__init__`` like every operator's: subclasses
    without an ``__init__`` of their own still get ``default_args`` and their XComArg dependencies."""

    def __init__(self, *, multiple_outputs: bool = True, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=multiple_outputs, **kwargs)


def explain_window(context: Context, window: Any, days: int | None = None) -> str:
    """One log line: which window this run reads, and why (for manual runs, which are easy to misread).

    A manual run (``airflow dags test DAG DATE``, the UI's trigger form) gets the data interval Airflow infers
    for its logical date: the last whole schedule interval that ends by then. So ``airflow dags test DAG
    2026-01-10`` on a daily DAG reads ``[2026-01-09, 2026-01-10)``, not the 10th.
    """
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None) or ""
    run_type = str(getattr(run_type, "value", run_type))  # a DagRunType, or its string
    span = f"the {days} day(s) that end with the data interval" if days else "the data interval"
    line = f"reading {window.label} ({len(window.days)} day(s)): {span}"
    if run_type == "manual":
        logical = getattr(dag_run, "logical_date", None)
        line += (
            f" of this manual run, which Airflow sets to the last whole schedule interval ending by its logical "
            f"date ({logical.isoformat() if logical else 'none given: now'}); trigger with another logical date "
            "(or backfill) to read another window"
        )
    elif run_type:
        line += f" of this {run_type} run"
    return line


WINDOW_PARAM = "window_end"


def run_type(context: Context) -> str:
    value = getattr(context.get("dag_run"), "run_type", None) or ""
    return str(getattr(value, "value", value))


def resolve_window(
    context: Context, start: Any, end: Any, days: int | None, data_uri: str, manual_window: bool
) -> tuple[Any, str]:
    """The window a task reads, and one log line saying why.

    With ``manual_window`` (the generated training and monitor DAGs' first task), a manual run reads the
    ``window_end`` param given in the trigger form or, without one, its data interval unless that ends after
    the latest partition present, in which case the window ends the day after it
    (:func:`airflow_mlops.data.partitions.manual_window`). Every other run reads its data interval.
    """
    from airflow_mlops.data.partitions import make_window
    from airflow_mlops.data.partitions import manual_window as pick

    if manual_window and run_type(context) == "manual":
        requested = (context.get("params") or {}).get(WINDOW_PARAM)
        window, why = pick(start, end, days, requested, data_uri)
        check_inside_dates(context, window, param=WINDOW_PARAM)
        return window, f"reading {window.label} ({len(window.days)} day(s)), ending at {why}"
    window = make_window(start, end, days)
    check_inside_dates(context, window)
    return window, explain_window(context, window, days)


def window_partitions(context: Context, data_uri: str, window: Any, fix: str) -> list[str]:
    """The window's files. A missing day is a gate (no retry) naming the day on every run type: a manual run
    never waits or moves to another window on its own, and a scheduled run or a backfill does not retry into
    a day that may never come (waiting for late data is the partition sensor's job). ``fix`` says what the
    person can do."""
    from airflow_mlops.data.partitions import partition_uris
    from airflow_mlops.errors import BadDataError, DataError

    try:
        return partition_uris(data_uri, window)
    except DataError as err:
        if run_type(context) == "manual":
            raise BadDataError(f"{err}\nThis manual run reads its own window and never moves to another one: {fix}") from None
        raise BadDataError(
            f"{err}\nA missing day is not retried: load it, then clear this task. To wait for late data, a "
            "partition sensor (the drift monitor's wait_for_partition, data.completeness) waits before anything reads."
        ) from None


def check_inside_dates(context: Context, window: Any, param: str | None = None) -> None:
    """Refuse a run whose window's last day falls outside its DAG's ``start_date``..``end_date``.

    The generated DAGs create their tasks for every run (see ``pipeline.factory``), so a manual run past
    ``end_date`` (the trigger form's default logical date is *now*) reaches this check and fails with one
    line, instead of Airflow's green run without a task. ``param`` names the trigger-form field that picks
    the window, for the fix."""
    import datetime as dt

    from airflow_mlops.errors import RunOutsideDatesError

    dag = context.get("dag")
    first = getattr(dag, "start_date", None)
    # the generated DAGs' schedule ends in their timetable (utils.timetables), a hand-written DAG's at end_date
    last = getattr(getattr(dag, "timetable", None), "end", None) or getattr(dag, "end_date", None)
    if (first is None and last is None) or not window.days:
        return
    day = window.days[-1]
    if last is not None and day > last.date():
        where = f"after {dag.dag_id}'s end date {last.date().isoformat()}"
    elif first is not None and day < first.date():
        where = f"before {dag.dag_id}'s start date {first.date().isoformat()}"
    else:
        return
    lo = first.date().isoformat() if first is not None else "any day"
    hi = (last.date() + dt.timedelta(days=1)).isoformat() if last is not None else "any day"
    if param:
        fix = f"Trigger it with {param} between {lo} and {hi} (the day after the last day to read)"
    else:
        fix = f"Trigger it with a logical date between {lo} and {last.date().isoformat() if last else 'any day'}"
    raise RunOutsideDatesError(
        f"this {run_type(context) or 'DAG'} run's window {window.label} ends {where}: nothing was read\n"
        f"{fix}, or move start_date/end_date in the pipeline's spec."
    )
