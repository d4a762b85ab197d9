"""A test-only hold for the stack's trainers: a fault lands while a trainer waits, not during a long training.

The stack tests put this folder on the components' ``PYTHONPATH`` and name a hold folder in
``AIRFLOW_MLOPS_TEST_HOLD``; nothing in the package knows of it, so no production path can hold. Python imports
``sitecustomize`` at the start of every process, the trainers' too (``python -m airflow_mlops.model.training``):
when the trainer's checkpoint module is imported, its ``Checkpointer.save`` is wrapped so that, after a
checkpoint is written, the trainer waits while ``<hold folder>/<pipeline>`` holds a step at or below the
checkpoint's. The test writes the step to hold at, reads where a trainer waits from
``<hold folder>/<pipeline>.held`` (``pid step``), and writes a larger step (or removes the file) to release it.

The API server can be held too: while ``<hold folder>/api-server`` holds a time (epoch seconds) still to come,
an ``airflow api-server`` process waits before it serves (an API server that is slow to come back after a
crash, while the scheduler already runs tasks).
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import time
from pathlib import Path

ENV = "AIRFLOW_MLOPS_TEST_HOLD"
TARGET = "airflow_mlops.model.training.checkpoint"
API_TARGET = "airflow.cli.commands.api_server_command"  # imported by the api-server command only


def _gate(uri: str) -> Path | None:
    """The hold file of the pipeline whose checkpoint folder ``uri`` is (``.../<pipeline>/checkpoints/...``)."""
    parts = uri.replace("\\", "/").split("/")
    if "checkpoints" not in parts:
        return None
    index = parts.index("checkpoints")
    return Path(os.environ[ENV]) / parts[index - 1] if index else None


def _hold(uri: str, step: int) -> None:
    gate = _gate(uri)
    if gate is None:
        return
    while True:
        try:
            allowed = int(gate.read_text())
        except (OSError, ValueError):
            return  # no hold for this pipeline (or it was removed)
        if step < allowed:
            return
        held = gate.with_suffix(".held")
        tmp = held.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(f"{os.getpid()} {step}")
        tmp.replace(held)
        time.sleep(0.2)


def _patch(module) -> None:
    save = module.Checkpointer.save

    def held_save(self, tensors, meta):
        save(self, tensors, meta)
        _hold(self.uri, int(meta["step"]))

    module.Checkpointer.save = held_save


def _hold_api_server(module) -> None:
    gate = Path(os.environ[ENV]) / "api-server"
    try:
        until = float(gate.read_text())
    except (OSError, ValueError):
        return
    while time.time() < until:
        time.sleep(0.5)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in (TARGET, API_TARGET):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = loader.exec_module

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                exec_module(module)
                (_patch if name == TARGET else _hold_api_server)(module)

        spec.loader = _Loader()
        return spec


if os.environ.get(ENV):
    sys.meta_path.insert(0, _Finder())
