"""The on-disk model format: ``model.json`` (kind, metadata, the sha256 of every file) and its checks."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

from airflow_mlops.errors import IntegrityError
from airflow_mlops.storage import sha256_bytes, sha256_file

MODEL_JSON = "model.json"
FORMAT_VERSION = 1


class Model(Protocol):
    meta: dict[str, Any]

    def predict(self, df: Any) -> Any: ...

    def predict_proba(self, df: Any) -> Any: ...


def write_model_json(directory: str | os.PathLike, meta: dict[str, Any]) -> str:
    """Hash every weight file of ``directory`` into ``meta`` and write ``model.json``; return its sha256."""
    directory = Path(directory)
    files = sorted(
        str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file() and p.name != MODEL_JSON
    )
    meta = {
        **meta,
        "format_version": FORMAT_VERSION,
        "files": {f: sha256_file(str(directory / f)) for f in files},
    }
    blob = json.dumps(meta, indent=2, sort_keys=True).encode()
    (directory / MODEL_JSON).write_bytes(blob)
    return sha256_bytes(blob)


def find_model_dir(root: str | os.PathLike) -> Path:
    """The directory holding ``model.json`` below ``root`` (an MLflow model download)."""
    root = Path(root)
    if (root / MODEL_JSON).is_file():
        return root
    found = sorted(root.rglob(MODEL_JSON))
    if not found:
        raise IntegrityError(f"no {MODEL_JSON} under {root}: this is not an airflow-mlops model")
    return found[0].parent


def verify_model_dir(directory: str | os.PathLike, expected_sha256: str | None) -> dict[str, Any]:
    directory = Path(directory)
    blob = (directory / MODEL_JSON).read_bytes()
    actual = sha256_bytes(blob)
    if expected_sha256 is not None and actual != expected_sha256:
        raise IntegrityError(
            f"{directory / MODEL_JSON} has sha256 {actual} but the registry recorded {expected_sha256}: "
            "the model was modified after training; refusing to load it"
        )
    meta = json.loads(blob)
    for name, digest in meta.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            raise IntegrityError(f"model file {path} listed in {MODEL_JSON} is missing")
        if sha256_file(str(path)) != digest:
            raise IntegrityError(f"model file {path} does not match its recorded sha256; refusing to load it")
    return meta


# Files MLflow itself adds on the caller's side when it downloads a registered model (never stored).
DOWNLOAD_ONLY = frozenset({"registered_model_meta"})


def hash_tree(root: str | os.PathLike) -> dict[str, str]:
    """The sha256 of every file of a logged MLflow model, by its path inside the model (``MLmodel``
    included): what the registry version records (tag ``mlops.model_files``) and every loader checks."""
    root = Path(root)
    return {
        p.relative_to(root).as_posix(): sha256_file(str(p))
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).as_posix() not in DOWNLOAD_ONLY
    }


def verify_tree(root: str | os.PathLike, expected: dict[str, str], what: str) -> None:
    """Refuse a downloaded model whose files are not exactly those ``what`` (e.g. ``churn version 3``)
    recorded: a file changed (an edited ``MLmodel``, another version's weights), missing, or added (a
    ``code/`` folder). Checked before MLflow reads ``MLmodel`` or anything is imported or deserialised."""
    actual = hash_tree(root)
    changed = sorted(f for f in expected.keys() & actual.keys() if expected[f] != actual[f])
    missing = sorted(expected.keys() - actual.keys())
    added = sorted(actual.keys() - expected.keys())
    if not (changed or missing or added):
        return
    found = "; ".join(
        f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
        for label, names in (("changed", changed), ("missing", missing), ("not recorded", added))
        if names
    )
    raise IntegrityError(
        f"the model files at {root} are not those {what} recorded ({found}); refusing to load them\n"
        "Nothing was imported or deserialised. Find out who changed the artifact store; restore the files, or "
        "register a new version."
    )
