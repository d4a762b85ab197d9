"""Training checkpoints: tensors in safetensors, the rest in JSON, written atomically and hashed.

A checkpoint lives at ``<checkpoint_uri>/`` (local path or fsspec URL): ``state-<step>.safetensors`` and
``checkpoint.json`` (written last, so a checkpoint is complete or absent). Loading verifies the recorded
sha256 before reading; nothing is unpickled.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow_mlops import storage
from airflow_mlops.errors import IntegrityError

log = logging.getLogger("airflow_mlops.trainer")
MANIFEST = "checkpoint.json"


class Checkpointer:
    def __init__(self, uri: str) -> None:
        self.uri = uri

    def save(self, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
        from safetensors.torch import save as save_bytes

        name = f"state-{meta['step']:08d}.safetensors"
        blob = save_bytes({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        digest = storage.write_bytes_atomic(storage.join(self.uri, name), blob)
        previous = self._manifest()
        storage.write_json_atomic(storage.join(self.uri, MANIFEST), {**meta, "file": name, "sha256": digest})
        if previous and previous.get("file") != name:
            self._remove(previous["file"])
        log.info(
            "checkpoint at step %d (epoch %d) -> %s",
            meta["step"],
            meta["epoch"],
            storage.join(self.uri, name),
        )

    def load(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        from safetensors.torch import load as load_bytes

        meta = self._manifest()
        if meta is None:
            return None
        blob = storage.read_bytes(storage.join(self.uri, meta["file"]))
        if storage.sha256_bytes(blob) != meta["sha256"]:
            raise IntegrityError(
                f"checkpoint {storage.join(self.uri, meta['file'])} does not match its recorded sha256: "
                f"delete {self.uri} to start over"
            )
        return load_bytes(blob), meta

    def clear(self) -> None:
        meta = self._manifest()
        if meta is not None:
            self._remove(meta["file"])
            self._remove(MANIFEST)

    def _manifest(self) -> dict[str, Any] | None:
        uri = storage.join(self.uri, MANIFEST)
        return json.loads(storage.read_bytes(uri)) if storage.exists(uri) else None

    def _remove(self, name: str) -> None:
        import fsspec

        fs, path = fsspec.core.url_to_fs(storage.join(self.uri, name))
        if fs.exists(path):
            fs.rm(path)
