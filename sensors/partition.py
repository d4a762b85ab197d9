"""PartitionCompleteSensor: wait until the data interval's partition is complete before anything reads it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlops.sensors._waiting import WaitingSensor
from airflow_mlops.utils.context import DEFAULT_END, DEFAULT_START, resolve_window
from airflow_mlops.utils.failures import gate

WINDOW_XCOM = "window"

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger


class PartitionCompleteSensor(WaitingSensor):
    """Wait until the partition of ``[window_start, window_end)`` is complete: its files exist and every
    configured rule holds (see :mod:`airflow_mlops.data.completeness`):

    - ``min_rows``: the files hold at least this many rows (Parquet footers / CSV lines; no data is read);
    - ``marker``: marker file(s), e.g. ``_SUCCESS`` beside each partition file, or a path with ``{date}``;
    - ``asset``: the upstream Asset (by name) has an event for this interval. Asset events are visible to the
      task only, so in deferrable mode the trigger hands back every ``poke_interval`` for the task to look.

    Deferrable (``deferrable=True``, the pipelines' default), reschedule or poke mode; ``timeout`` and
    ``on_timeout`` (fail | skip) as in :class:`~airflow_mlops.sensors._waiting.WaitingSensor`. Returns
    ``{"files": [...], "rows": n | None, "reason": ..., "deferrals": times it waited in the triggerer}``.

    :param data_uri: the data URI template (``{date}`` = each day of the window; templated).
    :param data_format: ``parquet`` or ``csv``.
    :param window_start: start of the interval (templated; default the run's data interval).
    :param window_end: end of the interval (templated; default the run's data interval).
    :param manual_window: a manual run waits for the window that ends at the ``window_end`` param of the
        trigger form or, without one, at its data interval unless that ends after the latest partition present
        (then at the day after it). The window waited for is pushed as XCom ``window`` (``start``, ``end``)
        for the tasks downstream; it is decided once per try (kept across deferrals). The generated monitor
        DAGs set it.
    :param verify_pages: once the partition looks complete, read every data page of its Parquet files (in the
        worker, never the triggerer; bounded memory): a file whose footer is intact but whose data is damaged
        fails the task at once, naming it, instead of passing the day on.
    """

    template_fields: Sequence[str] = ("data_uri", "window_start", "window_end", "marker")
    ui_color = "#e8f4ff"
    waiting_for = "the partition to be complete"

    def __init__(
        self,
        *,
        data_uri: str,
        data_format: str = "parquet",
        window_start: str = DEFAULT_START,
        window_end: str = DEFAULT_END,
        min_rows: int | None = None,
        marker: str | None = None,
        asset: str | None = None,
        manual_window: bool = False,
        verify_pages: bool = True,
        **kwargs: Any,
    ) -> None:
        if asset:
            from airflow.sdk import Asset

            kwargs["inlets"] = [*(kwargs.get("inlets") or []), Asset(name=asset)]
        super().__init__(**kwargs)
        self.manual_window = manual_window
        self.verify_pages = verify_pages
        self._settled = False
        self.data_uri = data_uri
        self.data_format = data_format
        self.window_start = window_start
        self.window_end = window_end
        self.min_rows = min_rows
        self.marker = marker
        self.asset = asset

    def _asset_ready(self, context: Context) -> tuple[bool, str]:
        from airflow.sdk import Asset

        from airflow_mlops.data.completeness import asset_event_covers
        from airflow_mlops.data.partitions import Window, parse_time

        window = Window(
            parse_time(self.window_start, "window_start"), parse_time(self.window_end, "window_end")
        )
        recent = context["inlet_events"][Asset(name=self.asset)].after(window.start.isoformat())
        ready, why = asset_event_covers(recent.ascending(False).limit(100), window)
        return ready, f"asset {self.asset!r}: {why}"

    def _settle_window(self, context: Context) -> None:
        """Decide the window once per try (see ``manual_window``) and push it for the tasks downstream."""
        if self._settled or not self.manual_window:
            return
        self._settled = True
        ti = context["ti"]
        kept = ti.xcom_pull(task_ids=ti.task_id, key=WINDOW_XCOM)
        if kept:  # resumed after a deferral: the window decided before it
            self.window_start, self.window_end = kept["start"], kept["end"]
            return
        with gate(self, context):  # a window outside the DAG's dates fails at once, in one line
            window, why = resolve_window(
                context, self.window_start, self.window_end, None, self.data_uri, self.manual_window
            )  # fmt: skip
        self.window_start, self.window_end = window.as_dict()["start"], window.as_dict()["end"]
        self.log.info("%s", why)
        ti.xcom_push(key=WINDOW_XCOM, value=window.as_dict())

    def check(self, context: Context) -> tuple[bool, str, Any]:
        from airflow_mlops.data.completeness import check_storage

        self._settle_window(context)

        state = check_storage(
            self.data_uri, self.data_format, self.window_start, self.window_end,
            min_rows=self.min_rows, marker=self.marker,
        )  # fmt: skip
        if not state.complete:
            return False, state.reason, None
        if self.verify_pages:
            from airflow_mlops.data.completeness import verify_pages

            with gate(self, context):  # damaged, not late: waiting cannot help
                verify_pages(state.files, self.data_format)
        reason = state.reason
        if self.asset:
            ready, why = self._asset_ready(context)
            if not ready:
                return False, why, None
            reason = f"{reason}; {why}"
        self.log.info("partition complete: %s", reason)
        return (
            True,
            reason,
            {"files": state.files, "rows": state.rows, "reason": reason, "deferrals": self.deferrals},
        )

    def make_trigger(self, context: Context, *, deadline: str, reason: str, deferrals: int) -> BaseTrigger:
        from airflow_mlops.triggers.waiting import PartitionCompleteTrigger

        return PartitionCompleteTrigger(
            data_uri=self.data_uri, data_format=self.data_format, window_start=self.window_start,
            window_end=self.window_end, min_rows=self.min_rows, marker=self.marker,
            poke_interval=self.poke_interval, deadline=deadline, deferrals=deferrals,
            recheck_after=self.poke_interval if self.asset else None,
            hold_ready=bool(self.asset) and reason.startswith(f"asset {self.asset!r}"),
        )  # fmt: skip
