"""Triggers of the deferrable sensors: they wait in Airflow's triggerer, not in a worker slot.

Each polls a cheap, blocking check in a thread (so the triggerer's event loop never blocks), logs why it is
still waiting when that changes, and fires exactly one event: ``{"status": "ready", ...}`` when the condition
holds, ``{"status": "timeout", "reason": ...}`` at its deadline (so a timeout says what was missing), or
``{"status": "recheck"}`` after ``recheck_after`` seconds when part of the condition can only be checked by
the task itself (an upstream Asset's events are not visible from the triggerer).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _PollingTrigger(BaseTrigger):
    """Shared polling loop: ``check()`` returns (ready, reason, payload)."""

    def __init__(
        self,
        *,
        poke_interval: float,
        deadline: str,
        recheck_after: float | None = None,
        hold_ready: bool = False,
        deferrals: int = 0,
    ) -> None:
        super().__init__()
        self.poke_interval = float(poke_interval)
        self.deadline = deadline
        self.recheck_after = recheck_after
        # the task found this trigger's part ready and waits on a part only it can check: do not fire at once
        self.hold_ready = hold_ready
        self.deferrals = (
            deferrals  # echoed in the event, with the deadline: the task's wait state travels along
        )

    def _common(self) -> dict[str, Any]:
        return {
            "poke_interval": self.poke_interval, "deadline": self.deadline, "recheck_after": self.recheck_after,
            "hold_ready": self.hold_ready, "deferrals": self.deferrals,
        }  # fmt: skip

    def check(self) -> tuple[bool, str, dict[str, Any]]:
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for event in self._poll():
            event.payload.update(deadline=self.deadline, deferrals=self.deferrals)
            yield event

    async def _poll(self) -> AsyncIterator[TriggerEvent]:
        deadline = dt.datetime.fromisoformat(self.deadline)
        recheck_at = _now() + dt.timedelta(seconds=self.recheck_after) if self.recheck_after else None
        last_reason = None
        while True:
            try:
                ready, reason, payload = await asyncio.to_thread(self.check)
            except Exception as err:  # a broken check must end the wait with its message, not loop forever
                yield TriggerEvent({"status": "error", "reason": f"{type(err).__name__}: {err}"})
                return
            if ready and not self.hold_ready:
                self.log.info("ready: %s", reason)
                yield TriggerEvent({"status": "ready", "reason": reason, **payload})
                return
            if ready:
                reason = f"{reason}; the rest is re-checked by the task every {self.recheck_after:g}s"
            if reason != last_reason:
                self.log.info("waiting: %s", reason)
                last_reason = reason
            now = _now()
            if now >= deadline:
                yield TriggerEvent({"status": "timeout", "reason": reason})
                return
            if recheck_at is not None and now >= recheck_at:
                yield TriggerEvent({"status": "recheck", "reason": reason})
                return
            await asyncio.sleep(max(min(self.poke_interval, (deadline - now).total_seconds()), 0.01))


class PartitionCompleteTrigger(_PollingTrigger):
    """Fires when the partition of ``[window_start, window_end)`` is complete on storage (files present, marker
    files, at least ``min_rows`` rows; see :mod:`airflow_mlops.data.completeness`)."""

    def __init__(
        self,
        *,
        data_uri: str,
        data_format: str,
        window_start: str,
        window_end: str,
        min_rows: int | None,
        marker: str | None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.data_uri = data_uri
        self.data_format = data_format
        self.window_start = window_start
        self.window_end = window_end
        self.min_rows = min_rows
        self.marker = marker

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "data_uri": self.data_uri, "data_format": self.data_format, "window_start": self.window_start,
                "window_end": self.window_end, "min_rows": self.min_rows, "marker": self.marker, **self._common(),
            },
        )  # fmt: skip

    def check(self) -> tuple[bool, str, dict[str, Any]]:
        from airflow_mlops.data.completeness import check_storage

        state = check_storage(
            self.data_uri, self.data_format, self.window_start, self.window_end,
            min_rows=self.min_rows, marker=self.marker,
        )  # fmt: skip
        return state.complete, state.reason, {"rows": state.rows, "files": state.files}


class DriftReadyTrigger(_PollingTrigger):
    """Fires when the current profile exists and the registered model has a ``champion`` (the reference).

    The MLflow connection is resolved here, in the triggerer (never passed in the trigger's arguments).
    """

    def __init__(self, *, profile_uri: str, model_name: str, mlflow_conn_id: str, **common: Any) -> None:
        super().__init__(**common)
        self.profile_uri = profile_uri
        self.model_name = model_name
        self.mlflow_conn_id = mlflow_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "profile_uri": self.profile_uri, "model_name": self.model_name,
                "mlflow_conn_id": self.mlflow_conn_id, **self._common(),
            },
        )  # fmt: skip

    def check(self) -> tuple[bool, str, dict[str, Any]]:
        from airflow_mlops.hooks.mlflow import MlflowHook
        from airflow_mlops.operations.monitoring import waiting_reason
        from airflow_mlops.tracking import registry

        with MlflowHook(mlflow_conn_id=self.mlflow_conn_id).configured() as client:
            reason = waiting_reason(client, self.model_name, self.profile_uri)
            if reason is not None:
                return False, reason, {}
            version = str(registry.get_alias(client, self.model_name, registry.CHAMPION).version)
        return (
            True,
            f"the current profile is there; {self.model_name} champion is v{version}",
            {"champion_version": version},
        )
