"""Temporary folders that a ``kill -9`` cannot leave behind for good.

Each folder is named after the process that made it (``mlops-<kind>-<pid>-<random>``). A process that is
killed cannot remove its own, so the next one of the same kind removes every folder whose process is gone
before it makes its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def sweep(kind: str, root: str | None = None) -> list[Path]:
    """Remove the ``mlops-<kind>-<pid>-*`` folders of processes that no longer run; return them."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob(f"mlops-{kind}-*"):
        parts = path.name.split("-")
        if len(parts) >= 4 and parts[2].isdigit() and path.is_dir() and not _alive(int(parts[2])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def owned_tempdir(kind: str) -> Generator[str, None, None]:
    """A temporary folder of this process, removed when the block ends (and by the next one if killed)."""
    sweep(kind)
    with tempfile.TemporaryDirectory(prefix=f"mlops-{kind}-{os.getpid()}-") as tmp:
        yield tmp
