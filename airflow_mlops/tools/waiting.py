"""Waiting for something to happen (a server up, runs finished, processes gone), with tenacity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def poll(check: Callable[[], Any], *, timeout: float, every: float, what: str, last: Callable[[], str] | None = None) -> Any:
    """Call ``check`` every ``every`` seconds until it returns a truthy value, and return that value.

    An exception raised by ``check`` ends the wait at once (a component that exited: waiting longer cannot
    help). After ``timeout`` seconds: :class:`TimeoutError` "``what`` within N s", with ``last()`` (what was
    seen last) where given.
    """
    from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

    def give_up(_state: Any) -> None:
        seen = last() if last is not None else ""
        raise TimeoutError(f"{what} within {timeout:.0f} s" + (f" (last: {seen})" if seen else ""))

    return Retrying(
        stop=stop_after_delay(timeout), wait=wait_fixed(every), retry=retry_if_result(lambda result: not result),
        retry_error_callback=give_up, reraise=True,
    )(check)  # fmt: skip
