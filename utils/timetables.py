"""The generated DAGs' schedule: cron data intervals that stop at the spec's ``end_date``.

Why not the DAG's own ``end_date``: Airflow copies it onto every task and creates no task instance for a run
whose logical date lies past it. A manual run from the trigger form, whose default logical date is *now*,
was then a green run with no task at all. The schedule's end lives here instead, so every run gets its
tasks, and the first task refuses, in one line, a window outside the spec's dates
(``utils.context.check_inside_dates``). Registered with Airflow by the plugin (``plugins/mlops.py``), as
custom timetables must be for the scheduler to read them back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.timetables.base import TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable


class CronUntilTimetable(CronDataIntervalTimetable):
    """``CronDataIntervalTimetable`` whose scheduled runs stop after ``end`` (inclusive, like ``end_date``).

    Manual runs and backfills are not bounded here: the tasks check their window against :attr:`end`."""

    def __init__(self, cron: str, timezone: Any, end: dt.datetime | None = None) -> None:
        super().__init__(cron, timezone)
        self.end = end

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> CronUntilTimetable:
        from airflow._shared.timezones.timezone import parse_timezone

        end = dt.datetime.fromisoformat(data["end"]) if data.get("end") else None
        return cls(data["expression"], parse_timezone(data["timezone"]), end)

    def serialize(self) -> dict[str, Any]:
        return {**super().serialize(), "end": self.end.isoformat() if self.end else None}

    def __eq__(self, other: object) -> bool:
        return super().__eq__(other) is True and self.end == getattr(other, "end", None)

    def __hash__(self) -> int:
        return hash((self._expression, self._timezone, self.end))

    @property
    def summary(self) -> str:
        return f"{self._expression} until {self.end.date().isoformat()}" if self.end else self._expression

    def next_dagrun_info(self, *, last_automated_data_interval: Any, restriction: TimeRestriction) -> Any:
        if self.end is not None and (restriction.latest is None or restriction.latest > self.end):
            restriction = TimeRestriction(restriction.earliest, self.end, restriction.catchup)
        return super().next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval, restriction=restriction
        )
