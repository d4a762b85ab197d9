"""Artifact storage on any fsspec URL: atomic writes and content hashes.

Every artifact is written under a temporary name and renamed into place, so a reader (or a retry) never sees
half a file; content hashes make artifacts addressable and let loaders refuse tampered files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import uuid
from collections.abc import Generator
from typing import Any

CHUNK = 1 << 20


def _fs(uri: str):
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def join(base: str, *parts: str) -> str:
    if "://" in base:
        return posixpath.join(base.rstrip("/"), *parts)
    return os.path.join(base, *parts)


def exists(uri: str) -> bool:
    fs, path = _fs(uri)
    return fs.exists(path)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(uri: str) -> str:
    fs, path = _fs(uri)
    digest = hashlib.sha256()
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_bytes(uri: str) -> bytes:
    fs, path = _fs(uri)
    with fs.open(path, "rb") as fh:
        return fh.read()


def write_bytes_atomic(uri: str, data: bytes) -> str:
    """Write ``data`` to ``uri`` so that the file appears whole or not at all. Returns its sha256."""
    fs, path = _fs(uri)
    parent = posixpath.dirname(path) if "://" in uri else os.path.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        with fs.open(tmp, "wb") as fh:
            fh.write(data)
        fs.mv(tmp, path)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise
    return sha256_bytes(data)


def create_exclusive(uri: str, data: bytes) -> bool:
    """Create ``uri`` holding ``data`` only if it does not exist yet; False if it does. Atomic on local disks
    (``O_EXCL``) and on filesystems that support mode ``xb``; elsewhere a check-then-write."""
    fs, path = _fs(uri)
    parent = posixpath.dirname(path) if "://" in uri else os.path.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    if "://" not in uri or uri.startswith("file://"):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return True
    try:
        with fs.open(path, "xb") as fh:
            fh.write(data)
        return True
    except FileExistsError:
        return False
    except (ValueError, NotImplementedError):  # no exclusive mode here
        if fs.exists(path):
            return False
        with fs.open(path, "wb") as fh:
            fh.write(data)
        return True


def glob(uri_pattern: str) -> list[str]:
    """The paths matching a glob pattern (local paths or fsspec URLs), sorted."""
    fs, path = _fs(uri_pattern)
    protocol = uri_pattern.split("://", 1)[0] + "://" if "://" in uri_pattern else ""
    return sorted(p if not protocol or p.startswith(protocol) else protocol + p for p in fs.glob(path))


def write_json_atomic(uri: str, obj: Any) -> str:
    return write_bytes_atomic(uri, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri))


def canonical_hash(obj: Any, length: int = 64) -> str:
    """Hash of a JSON-able object that does not depend on key order."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


@contextlib.contextmanager
def machine_lock(path: str | os.PathLike) -> Generator[None, None, None]:
    """Block until this process holds an exclusive ``fcntl`` lock on ``path`` (created if missing): one holder
    per machine at a time, released by the kernel when the holder ends, however it ends."""
    import fcntl

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
