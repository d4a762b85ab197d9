"""Mutual exclusion for alias changes (promotion, rollback) of one registered model.

Two processes changing ``champion`` at once is how a model gets two promotions half-applied, or a rollback
to the wrong version. The lock must hold across processes and machines, must never have two holders, and a
holder that dies (``kill -9``, a lost worker) must not block anyone for long. MLflow has no lock, so the lock
comes from what the deployment already runs, chosen by the MLflow connection:

- **A PostgreSQL database** (the MLflow connection's extra ``lock_uri``, e.g. the tracking server's own
  backend database): a session-level advisory lock, ``pg_try_advisory_lock``. The server guarantees one
  holder; it releases the lock the moment the holder's connection ends, which a killed process's does at
  once (TCP keepalives end a lost machine's connection within about 30 s). Before each alias write the
  holder checks on the same connection that it still holds the lock (fencing: a holder whose connection was
  cut stops before writing).
- **A local MLflow store** (``sqlite:///…``, ``file:…``, a path): an ``fcntl`` lock on a file beside the
  store, which the kernel releases when the holder dies. The store being local, every process that writes it
  runs on this machine.

An MLflow server without ``lock_uri`` cannot be locked safely; promotions then fail with a message that says
to set it (``AIRFLOW_MLOPS_UNSAFE_REGISTRY_LOCK=1`` accepts unlocked alias changes instead, for a single
writer).

A waiter polls with back-off for up to ``wait`` seconds, then fails with one line that names the holder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from airflow_mlops.errors import MlopsError

log = logging.getLogger(__name__)

NAMESPACE = 0x6D6C6F70  # "mlop": the advisory lock's first key, so our locks never collide with others'
UNSAFE_ENV = "AIRFLOW_MLOPS_UNSAFE_REGISTRY_LOCK"


class PromotionBusy(MlopsError):
    """Another process holds the promotion lock of this model (and kept it longer than we waited)."""


class LockLost(MlopsError):
    """The lock was lost before a write (the holder's database connection ended): nothing was written."""


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _key(name: str) -> int:
    """A stable signed 32-bit key for the model name (the advisory lock's second key)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)


def local_store_dir(tracking_uri: str) -> Path | None:
    """The folder of a local MLflow store (where its lock files go), or None for a remote one."""
    from urllib.parse import urlparse

    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri[len("sqlite:///") :]).resolve().parent
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "file":
        return Path(parsed.path).resolve()
    if parsed.scheme == "" and tracking_uri:
        return Path(tracking_uri).resolve()
    return None


@contextlib.contextmanager
def file_lock(path: Path, *, what: str, wait: float) -> Generator[Callable[[], None], None, None]:
    """An ``fcntl`` lock on ``path``; yields a check to call before each write (a file lock cannot be lost)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _poll(lambda: _try_flock(fd, fcntl), what=what, wait=wait, holder=lambda: _read_holder(path))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"owner": _me(), "since": time.time()}).encode(), 0)
        try:
            yield lambda: None
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try_flock(fd: int, fcntl: Any) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_holder(path: Path) -> str:
    try:
        held = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    if not held:
        return "another process"
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(held.get("since", 0))))
    return f"{held.get('owner', 'another process')} (since {since})"


@contextlib.contextmanager
def advisory_lock(lock_uri: str, *, name: str, what: str, wait: float) -> Generator[Callable[[], None], None, None]:
    """A PostgreSQL session advisory lock; yields a check that fails (LockLost) if the session ended."""
    import psycopg2

    conn = psycopg2.connect(
        _dsn(lock_uri), application_name=f"airflow-mlops lock {name}"[:63], connect_timeout=10,
        keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
    )  # fmt: skip
    conn.autocommit = True
    key = _key(name)
    try:
        with conn.cursor() as cur:

            def take() -> bool:
                cur.execute("SELECT pg_try_advisory_lock(%s, %s)", (NAMESPACE, key))
                return bool(cur.fetchone()[0])

            def holder() -> str:
                cur.execute(
                    "SELECT a.application_name, a.client_addr, a.pid, a.backend_start FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.classid = %s::oid AND l.objid = %s::oid",
                    (NAMESPACE & 0xFFFFFFFF, key & 0xFFFFFFFF),
                )
                row = cur.fetchone()
                return f"backend {row[2]} from {row[1] or 'local'} (since {row[3]:%Y-%m-%dT%H:%M:%S%z})" if row else "another process"

            _poll(take, what=what, wait=wait, holder=holder)

            def still_held() -> None:
                try:
                    cur.execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND pid = pg_backend_pid() AND classid = %s::oid AND objid = %s::oid",
                        (NAMESPACE & 0xFFFFFFFF, key & 0xFFFFFFFF),
                    )
                    held = cur.fetchone()[0] == 1
                except psycopg2.Error as err:
                    raise LockLost(f"the lock for {what} was lost ({err.__class__.__name__}): nothing written") from err
                if not held:
                    raise LockLost(f"the lock for {what} is no longer held: nothing written")

            try:
                yield still_held
            finally:
                with contextlib.suppress(psycopg2.Error):
                    cur.execute("SELECT pg_advisory_unlock(%s, %s)", (NAMESPACE, key))
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def _dsn(uri: str) -> str:
    """A libpq URL from a SQLAlchemy-style one (``postgresql+psycopg2://`` -> ``postgresql://``)."""
    scheme, sep, rest = uri.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def _poll(take: Callable[[], bool], *, what: str, wait: float, holder: Callable[[], str]) -> None:
    """Try ``take`` until it succeeds, backing off from 0.05 s to 2 s; after ``wait`` s raise PromotionBusy."""
    deadline = time.monotonic() + wait
    delay, announced = 0.05, False
    while not take():
        if time.monotonic() >= deadline:
            raise PromotionBusy(
                f"{what} is locked by {holder()}; waited {wait:.0f} s. Retry later: the lock is released as "
                "soon as that process ends"
            )
        if not announced:
            log.info("waiting for the lock of %s, held by %s", what, holder())
            announced = True
        time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, 2.0)


_held = threading.local()


@contextlib.contextmanager
def promotion_lock(
    tracking_uri: str, name: str, *, lock_uri: str | None = None, wait: float = 300.0
) -> Generator[Callable[[], None], None, None]:
    """Hold the lock for alias changes of ``name``; yields ``check()``, to call right before each write.

    Re-entrant within a thread: a promotion that calls another locked step holds the lock once.
    """
    held: dict[tuple[str, str], Callable[[], None]] = _held.__dict__.setdefault("locks", {})
    key = (lock_uri or tracking_uri, name)
    if key in held:
        yield held[key]
        return
    with _acquire(tracking_uri, name, lock_uri=lock_uri, wait=wait) as check:
        held[key] = check
        try:
            yield check
        finally:
            del held[key]


@contextlib.contextmanager
def _acquire(
    tracking_uri: str, name: str, *, lock_uri: str | None, wait: float
) -> Generator[Callable[[], None], None, None]:
    what = f"the champion of {name}"
    if lock_uri:
        with advisory_lock(lock_uri, name=name, what=what, wait=wait) as check:
            yield check
        return
    folder = local_store_dir(tracking_uri)
    if folder is not None:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        path = folder / ".mlops-locks" / f"{safe}-{_key(name) & 0xFFFFFFFF:08x}.promotion.lock"
        with file_lock(path, what=what, wait=wait) as check:
            yield check
        return
    if os.environ.get(UNSAFE_ENV) == "1":
        log.warning("%s=1: changing the aliases of %s without a lock", UNSAFE_ENV, name)
        yield lambda: None
        return
    raise MlopsError(
        f"cannot lock {what}: the MLflow tracking URI {tracking_uri} is remote and the MLflow connection has no "
        'extra "lock_uri". Set it to a PostgreSQL database every worker reaches (e.g. the tracking server\'s '
        f'backend store: {{"lock_uri": "postgresql://user@db:5432/mlflow"}}), or set {UNSAFE_ENV}=1 if only one '
        "process ever changes aliases"
    )
