"""Artifact storage on any fsspec URL: atomic writes and content hashes.

Every artifact is written under a temporary name and renamed into place, so a reader (or a retry) never sees
half a file; content hashes make artifacts addressable and let loaders refuse tampered files.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import uuid
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


def write_json_atomic(uri: str, obj: Any) -> str:
    return write_bytes_atomic(uri, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri))


def canonical_hash(obj: Any, length: int = 64) -> str:
    """Hash of a JSON-able object that does not depend on key order."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]
