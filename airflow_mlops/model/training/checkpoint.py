"""Training checkpoints: tensors in safetensors, the rest in JSON, written atomically and hashed.

A checkpoint lives at ``<checkpoint_uri>/`` (local path or fsspec URL): ``state-<step>.safetensors`` and
``checkpoint.json`` (written last, so a checkpoint is complete or absent). Loading verifies the recorded
sha256 before reading; nothing is unpickled.

One trainer at a time writes a checkpoint folder (and the MLflow run of the same key): each trainer takes a
lease, ``lease-<token>.json``, created exclusively with a token one above the highest it finds. Before every
write it checks that its token is still the highest; a trainer that finds a newer one (a retry started while
it still ran, on another machine) stops at once, writing nothing more (fencing).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow_mlops import storage
from airflow_mlops.errors import IntegrityError

log = logging.getLogger("airflow_mlops.trainer")
MANIFEST = "checkpoint.json"


LEASE_EXIT_CODE = 75  # EX_TEMPFAIL: this trainer was superseded by a newer one


class Checkpointer:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.token: int | None = None

    def _tokens(self) -> list[int]:
        return sorted(
            int(p.rsplit("lease-", 1)[1].split(".", 1)[0]) for p in storage.glob(storage.join(self.uri, "lease-*.json"))
        )

    def acquire(self, owner: str) -> int:
        """Take the folder: a lease one above the highest token; earlier holders stop at their next write."""
        import time

        for _ in range(1000):
            token = (self._tokens() or [0])[-1] + 1
            record = json.dumps({"owner": owner, "at": time.time()}).encode()
            if storage.create_exclusive(storage.join(self.uri, f"lease-{token:08d}.json"), record):
                self.token = token
                log.info("checkpoint lease %d of %s taken by %s", token, self.uri, owner)
                return token
        raise IntegrityError(f"could not take a checkpoint lease in {self.uri}: too many trainers at once")

    def check(self) -> None:
        """Stop this process, writing nothing more, if a newer trainer took the lease (fencing)."""
        if self.token is None:
            return
        newest = (self._tokens() or [0])[-1]
        if newest != self.token:
            import os

            log.error(
                "another trainer took over %s (lease %d, this one holds %d): stopping without writing anything "
                "more, so the two never write the same checkpoint or MLflow run", self.uri, newest, self.token,
            )  # fmt: skip
            logging.shutdown()
            os._exit(LEASE_EXIT_CODE)  # no clean-up on purpose: the newer trainer owns the run and the folder

    def save(self, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
        from safetensors.torch import save as save_bytes

        self.check()
        name = f"state-{meta['step']:08d}.safetensors"
        blob = save_bytes({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        digest = storage.write_bytes_atomic(storage.join(self.uri, name), blob)
        self.check()
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
        """After the model is logged: remove the checkpoint and the leases (up to this trainer's)."""
        meta = self._manifest()
        if meta is not None:
            self._remove(meta["file"])
            self._remove(MANIFEST)
        for token in self._tokens():
            if self.token is None or token <= self.token:
                self._remove(f"lease-{token:08d}.json")

    def _manifest(self) -> dict[str, Any] | None:
        uri = storage.join(self.uri, MANIFEST)
        return json.loads(storage.read_bytes(uri)) if storage.exists(uri) else None

    def _remove(self, name: str) -> None:
        import fsspec

        fs, path = fsspec.core.url_to_fs(storage.join(self.uri, name))
        if fs.exists(path):
            fs.rm(path)
