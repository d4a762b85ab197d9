"""What a task says about the window it reads: manual runs are the ones people misread."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from airflow.utils.types import DagRunType

from airflow_mlops.data.partitions import make_window
from airflow_mlops.utils.context import explain_window

UTC = dt.UTC


def _context(run_type: DagRunType, logical: dt.datetime | None) -> dict:
    return {"dag_run": SimpleNamespace(run_type=run_type, logical_date=logical)}


def test_a_manual_run_says_it_reads_the_interval_that_ended_by_its_logical_date():
    window = make_window(dt.datetime(2026, 1, 9, tzinfo=UTC), dt.datetime(2026, 1, 10, tzinfo=UTC))
    line = explain_window(_context(DagRunType.MANUAL, dt.datetime(2026, 1, 10, tzinfo=UTC)), window)
    assert line.startswith("reading 2026-01-09 (1 day(s)): the data interval of this manual run")
    assert "ending by its logical date (2026-01-10T00:00:00+00:00)" in line
    assert "trigger with another logical date" in line


def test_a_scheduled_run_with_window_days_names_its_span():
    window = make_window(None, dt.datetime(2026, 1, 10, tzinfo=UTC), days=3)
    line = explain_window(_context(DagRunType.SCHEDULED, None), window, 3)
    assert line == (
        "reading 2026-01-07--2026-01-09 (3 day(s)): the 3 day(s) that end with the data interval of this "
        "scheduled run"
    )


@pytest.mark.parametrize(
    ("run_type", "says"),
    [
        (DagRunType.SCHEDULED, "A missing day is not retried: load it, then clear this task"),
        (DagRunType.BACKFILL_JOB, "A missing day is not retried: load it, then clear this task"),
        (DagRunType.MANUAL, "This manual run reads its own window and never moves to another one: load it"),
    ],
)
def test_a_missing_day_is_a_gate_naming_it_on_every_run_type(tmp_path, run_type, says):
    """Scheduled, backfill and manual runs alike: no retry (a QualityGateError fails the task at once), the day's
    file named; the reading operators (validation, scoring, profiling) all list their window this way."""
    from airflow_mlops.errors import BadDataError
    from airflow_mlops.utils.context import window_partitions

    for day in ("2026-01-07", "2026-01-09"):
        (tmp_path / f"date={day}").mkdir()
        (tmp_path / f"date={day}" / "part-0.parquet").write_bytes(b"")
    window = make_window(None, dt.datetime(2026, 1, 10, tzinfo=UTC), days=3)
    with pytest.raises(BadDataError) as err:
        window_partitions(_context(run_type, None), str(tmp_path / "date={date}" / "part-0.parquet"), window, "load it")
    message = str(err.value)
    assert f"{tmp_path}/date=2026-01-08/part-0.parquet" in message
    assert "date=2026-01-07" not in message  # only the missing day is named
    assert says in message
