"""The ``airflow`` command, as the tools (and the tests) run it against an Airflow that is running.

The embedded default keeps Airflow's metadata in SQLite, which allows one writer at a time. A command that
writes while the scheduler, the dag-processor or the API server holds the write lock waits up to
:data:`SQLITE_CONNECT_ARGS`' busy timeout (every process of the embedded Airflow gets it through
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS``: Python's default is 5 s), and if it still loses that race
("database is locked": Airflow rolls the command back, a partial backfill included) :func:`run_airflow`
runs it again.

This module is imported by Airflow's settings (for the connect arguments): it imports nothing at module level
beyond the standard library.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: SQLite's busy timeout, in seconds, for every process of the embedded Airflow (see the module's docstring)
SQLITE_CONNECT_ARGS: dict[str, object] = {"timeout": 30}
#: the setting that hands :data:`SQLITE_CONNECT_ARGS` to Airflow (only for a SQLite metadata DB)
SQLITE_CONNECT_ARGS_SETTING = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", f"{__name__}.SQLITE_CONNECT_ARGS")

#: seconds before the second try of a command that lost the lock (then 2 more each time), and between the
#: tries of a backfill while the DAG's previous one is open
LOCKED_WAIT = 2.0
BACKFILL_WAIT = 3.0
LOCKED = "database is locked"
BACKFILL_RUNNING = "AlreadyRunningBackfill"


class AirflowCommandError(subprocess.CalledProcessError):
    """An ``airflow`` command failed: its message ends with the command's last output lines."""

    def __str__(self) -> str:
        tail = (self.output or "").strip()[-3000:]
        return f"`airflow {' '.join(self.cmd[1:])}` exited with {self.returncode}:\n{tail}"


def bin_path(name: str) -> str:
    """A console script of this interpreter's environment (``airflow``, ``mlflow``), else from ``PATH``."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def run_airflow(
    *args: str, env: dict[str, str] | None = None, log: Path | None = None, attempts: int = 6, timeout: float = 300
) -> str:
    """Run ``airflow *args`` and return its standard output; its output (both streams) is appended to ``log``.

    A try that lost SQLite's write lock ("database is locked") is run again after 2, 4, 6 ... seconds, up to
    ``attempts`` tries. Any other failure raises :class:`AirflowCommandError` at once.
    """
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_incrementing

    command = [bin_path("airflow"), *args]

    def once() -> str:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if log is not None:
            with log.open("a") as fh:
                fh.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise AirflowCommandError(done.returncode, command, done.stdout + done.stderr)
        return done.stdout

    def locked(err: BaseException) -> bool:
        return isinstance(err, AirflowCommandError) and LOCKED in (err.output or "")

    return Retrying(
        stop=stop_after_attempt(attempts), wait=wait_incrementing(start=LOCKED_WAIT, increment=LOCKED_WAIT), retry=retry_if_exception(locked),
        reraise=True,
    )(once)  # fmt: skip


def create_backfill(
    dag_id: str, start: str, end: str, *, env: dict[str, str] | None = None, log: Path | None = None,
    timeout: float = 180,
) -> None:  # fmt: skip
    """Create a backfill of ``dag_id`` over [start, end] once the DAG's previous backfill is closed.

    Airflow allows one backfill at a time per DAG and closes a finished one on a later scheduler loop: while
    it answers ``AlreadyRunningBackfill`` the command is tried again every 3 s, for up to ``timeout`` seconds.
    """
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

    def busy(err: BaseException) -> bool:
        return isinstance(err, AirflowCommandError) and BACKFILL_RUNNING in (err.output or "")

    Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(BACKFILL_WAIT), retry=retry_if_exception(busy), reraise=True)(
        run_airflow, "backfill", "create", "--dag-id", dag_id, "--from-date", start, "--to-date", end, env=env, log=log
    )
