"""The generated DAGs' schedule ends at the spec's end_date in their timetable, not on the DAG: the tasks of a
manual run past it exist (and refuse the window, see tests/operators/test_manual_window.py), while the
scheduler still stops there."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airflow_mlops.pipeline.factory import build_dags
from airflow_mlops.pipeline.spec import load_spec

ROOT = Path(__file__).resolve().parents[3]
UTC = dt.UTC


def _serialized(dag):
    """The DAG as the scheduler reads it back (custom timetables are found through the plugin)."""
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


def _scheduled(dag) -> list[dt.date]:
    """Every run the scheduler would create catching up from start_date (the DAG's own restriction, with
    catch-up on: the demo turns it off, which would leave nothing to schedule now)."""
    from airflow.timetables.base import TimeRestriction

    restriction = TimeRestriction(dag._time_restriction.earliest, dag._time_restriction.latest, catchup=True)
    days, last = [], None
    for _ in range(400):
        info = dag.timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None:
            return days
        days.append(info.logical_date.date())
        last = info.data_interval
    raise AssertionError("the schedule never ends")


def test_the_schedule_stops_at_the_specs_end_date_read_back_by_the_scheduler():
    spec = load_spec(ROOT / "dags" / "pipelines" / "demo_churn.yaml")
    dags = build_dags(spec)
    monitor = _serialized(dags[spec.monitor_dag_id])
    assert type(monitor.timetable).__name__ == "CronUntilTimetable"
    assert monitor.timetable.end == dt.datetime(2026, 1, 31, tzinfo=UTC)
    days = _scheduled(monitor)
    assert (days[0], days[-1], len(days)) == (dt.date(2026, 1, 1), dt.date(2026, 1, 31), 31)
    assert monitor.timetable.summary == "0 0 * * * until 2026-01-31"


def test_no_generated_task_carries_a_date_past_which_airflow_would_drop_it():
    spec = load_spec(ROOT / "dags" / "pipelines" / "demo_churn.yaml")
    for dag in map(_serialized, build_dags(spec).values()):
        assert dag.end_date is None, dag.dag_id
        assert {t.end_date for t in dag.tasks} == {None}, dag.dag_id
