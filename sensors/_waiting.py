"""What every airflow-mlops sensor shares: three ways to wait and one explicit timeout policy.

- ``deferrable=True``: the task checks once in the worker; while the condition does not hold it defers to a
  trigger (serialised, run by Airflow's triggerer), freeing the worker slot, and resumes when the trigger
  fires; it then re-checks in the worker and finishes.
- ``mode="reschedule"``: the task checks, gives its slot back and is rescheduled after ``poke_interval``.
- ``mode="poke"``: the task checks and sleeps in its slot (short waits only).

``timeout`` (seconds, from the first check, across deferrals and reschedules) ends the wait the same way in
every mode, by ``on_timeout``: ``"fail"`` fails the task (no retry: waiting again would not help; clear it to
wait again) or ``"skip"`` skips it and its downstream tasks. Either way the log and the message say what was
still missing. Unlike Airflow's ``soft_fail``, ``on_timeout="skip"`` never hides a real error: a broken check,
bad data or a misconfigured model still fails the task.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout, AirflowSkipException

from airflow_mlops.utils.alerts import Alerting

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

ON_TIMEOUT = ("fail", "skip")
# the triggerer's own timeout backs up the trigger's deadline (which fires first and says what was missing)
_GRACE = dt.timedelta(seconds=60)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WaitingSensor(Alerting, BaseSensorOperator):
    """Base of the sensors; subclasses implement :meth:`check` and :meth:`make_trigger`.

    :param deferrable: wait in the triggerer instead of a worker slot (default: ``[operators]
        default_deferrable``, as Airflow's own sensors).
    :param on_timeout: ``"fail"`` or ``"skip"`` when ``timeout`` passes.
    """

    waiting_for = "the condition"

    def __init__(
        self,
        *,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        on_timeout: str = "fail",
        **kwargs: Any,
    ) -> None:
        if on_timeout not in ON_TIMEOUT:
            raise ValueError(f"on_timeout={on_timeout!r}: use one of {' | '.join(ON_TIMEOUT)}")
        if kwargs.get("soft_fail") or kwargs.get("never_fail"):
            raise ValueError(
                "soft_fail/never_fail would also skip real errors: use on_timeout='skip' to skip on timeout only"
            )
        super().__init__(**kwargs)
        self.deferrable = deferrable
        self.on_timeout = on_timeout
        self._last_reason = "nothing checked yet"
        self.deferrals = 0  # how often this try has waited in the triggerer so far

    # -- what subclasses provide ---------------------------------------------------------------------------
    def check(self, context: Context) -> tuple[bool, str, Any]:
        """(ready, why not / what was found, the task's return value when ready). Runs in the worker."""
        raise NotImplementedError

    def make_trigger(self, context: Context, *, deadline: str, reason: str, deferrals: int) -> BaseTrigger:
        """The trigger to wait on; it must echo ``deadline`` and ``deferrals`` in its event."""
        raise NotImplementedError

    # -- poke / reschedule -----------------------------------------------------------------------------------
    def poke(self, context: Context) -> PokeReturnValue | bool:
        ready, reason, value = self.check(context)
        self._last_reason = reason
        if not ready:
            self.log.info("waiting for %s: %s", self.waiting_for, reason)
            return False
        return PokeReturnValue(is_done=True, xcom_value=value)

    def execute(self, context: Context) -> Any:
        try:
            if not self.deferrable:
                return super().execute(context)
            return self._check_or_defer(context, None, 0)
        except AirflowSensorTimeout:
            self._timed_out(self._last_reason, context)

    # -- deferrable ------------------------------------------------------------------------------------------
    def _check_or_defer(self, context: Context, deadline: str | None, deferrals: int) -> Any:
        self.deferrals = deferrals
        ready, reason, value = self.check(context)
        self._last_reason = reason
        if ready:
            return value
        now = _now()
        until = dt.datetime.fromisoformat(deadline) if deadline else now + dt.timedelta(seconds=self.timeout)
        if now >= until:
            self._timed_out(reason, context)
        self.log.info(
            "waiting for %s in the triggerer until %s (then on_timeout=%s): %s",
            self.waiting_for, until.isoformat(), self.on_timeout, reason,
        )  # fmt: skip
        self.defer(
            trigger=self.make_trigger(
                context, deadline=until.isoformat(), reason=reason, deferrals=deferrals + 1
            ),
            method_name="execute_complete",
            kwargs={"deadline": until.isoformat(), "deferrals": deferrals + 1},
            timeout=until - now + _GRACE,
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, deadline: str = "", deferrals: int = 0
    ) -> Any:
        event = event or {}
        # the event carries the wait's state too (some runners replace the kwargs with the event)
        deadline = event.get("deadline") or deadline
        deferrals = int(event.get("deferrals") or deferrals)
        status = event.get("status")
        if status == "timeout":
            self._timed_out(event.get("reason") or self._last_reason, context)
        if status == "error":
            raise AirflowException(
                f"checking {self.waiting_for} failed in the triggerer: {event.get('reason')}"
            )
        # "ready" or "recheck": the worker confirms (and finishes) or defers again until the same deadline
        return self._check_or_defer(context, deadline or None, deferrals)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout:  # the triggerer's own timeout (the trigger's deadline did not fire)
            # this process has not checked yet: look once more, so the message says what is still missing
            ready, reason, value = self.check(context)
            if ready:
                return value
            self._timed_out(reason, context)

    def _timed_out(self, reason: str, context: Context | None = None) -> None:
        from airflow_mlops.utils.failures import downstream, failure_block

        reason = reason.rstrip(" .:")
        headline = f"timed out after {self.timeout:g}s waiting for {self.waiting_for}: {reason}"
        fix = (
            "once the upstream has delivered, clear this task to wait again (or raise the sensor's timeout in "
            "the spec)"
        )
        if self.on_timeout == "skip":
            block = failure_block(
                headline, next_step="this task and its downstream tasks are skipped (on_timeout=skip) and the run "
                "ends green", fix=fix, skipped=downstream(self),
            ).replace("FAILED: ", "SKIPPED: ", 1)  # fmt: skip
            if not self.alerts:
                block += "\nalert: none sent (no alerts routes): add one to the spec so a missing day reaches a person"
            self.log.warning("%s", block)
            if context is not None:
                self.alert(context, "sensor_timed_out", block)
            raise AirflowSkipException(f"{headline} (on_timeout=skip)")
        block = failure_block(headline, next_step="no retry (on_timeout=fail)", fix=fix, skipped=downstream(self))
        self.log.error("%s", block)
        raise AirflowSensorTimeout(f"{headline} (on_timeout=fail; the fix opens this log)")
