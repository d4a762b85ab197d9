"""Fresh virtualenvs that hold exactly one install set (``airflow-mlops``, ``airflow-mlops[train]``, ...).

pip would install, for ``pip install -c constraints/tested.txt ".[train]"``, the closure of the project's
requirements under those extras, with their markers evaluated on this machine, at the tested versions. This
module computes that closure from the installed distributions' own metadata (the development environment was
installed from the same constraints) and builds a new virtualenv whose ``site-packages`` links exactly those
distributions' files: a requirement missing from ``pyproject.toml`` is missing there too, and an import of it
fails as it would on a worker installed by the README. No network, a few seconds per environment.

A folder that only included distributions own is linked whole; a folder shared with left-out ones (Airflow's
``airflow/providers``, the ``google`` namespace) is made and its entries linked one by one.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from collections import defaultdict
from importlib import metadata
from pathlib import Path, PurePosixPath

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "airflow-mlops"


def _site() -> Path:
    """This environment's site-packages (not the working tree's metadata that ``sys.path`` may also show)."""
    return Path(sysconfig.get_paths()["purelib"])


def _installed() -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions(path=[str(_site())]):
        found.setdefault(canonicalize_name(dist.metadata["Name"]), dist)
    return found


def closure(extras: list[str], root: str = PROJECT) -> dict[str, str]:
    """Canonical name -> version of every distribution ``root[extras]`` installs on this machine."""
    installed = _installed()
    wanted: dict[str, set[str]] = {}
    todo: list[tuple[str, frozenset[str]]] = [(canonicalize_name(root), frozenset(extras))]
    missing: list[str] = []
    while todo:
        name, asked = todo.pop()
        known = wanted.get(name)
        if known is not None and asked <= known:
            continue
        wanted[name] = (known or set()) | asked
        dist = installed.get(name)
        if dist is None:
            missing.append(name)
            continue
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in sorted(wanted[name])] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    if missing:
        raise LookupError(f"{root}{sorted(extras)} needs distributions this environment lacks: {sorted(missing)}")
    return {name: installed[name].version for name in sorted(wanted)}


def _files(dist: metadata.Distribution) -> list[PurePosixPath]:
    """A distribution's files inside site-packages (its RECORD), as relative paths."""
    out = []
    for f in dist.files or []:
        parts = PurePosixPath(str(f)).parts
        if parts and parts[0] != ".." and "__pycache__" not in parts:
            out.append(PurePosixPath(*parts))
    return out


def build(dest: Path, names: set[str]) -> Path:
    """A virtualenv at ``dest`` holding the distributions ``names`` (canonical) of this environment; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    (target,) = (dest / "lib").glob("python3.*/site-packages")
    installed = _installed()
    site = _site()
    owners: dict[PurePosixPath, set[str]] = defaultdict(set)  # a path (file or folder) -> who owns files in it
    for name, dist in installed.items():
        for path in _files(dist):
            for depth in range(1, len(path.parts) + 1):
                owners[PurePosixPath(*path.parts[:depth])].add(name)
    children: dict[PurePosixPath, set[PurePosixPath]] = defaultdict(set)
    for path in owners:
        children[path.parent].add(path)

    def place(path: PurePosixPath) -> None:
        who = owners[path]
        if not who & names:
            return
        if who <= names or not (site / path).is_dir():
            (target / path).symlink_to(site / path)
            return
        (target / path).mkdir()
        for child in sorted(children[path]):
            place(child)

    for top in sorted(children[PurePosixPath(".")]):
        place(top)
    for name in names:  # the console scripts, as pip writes them
        for ep in installed[name].entry_points.select(group="console_scripts"):
            module, _, attr = ep.value.partition(":")
            script = dest / "bin" / ep.name
            script.write_text(
                f"#!{dest / 'bin' / 'python'}\nimport sys\nfrom {module} import {attr.split('.')[0]}\n"
                f"sys.exit({attr}())\n"
            )
            script.chmod(0o755)
    return dest / "bin" / "python"


def environment(dest: Path, extras: list[str]) -> Path:
    """A fresh virtualenv holding ``airflow-mlops[extras]`` and nothing else; its python."""
    return build(dest, set(closure(extras)))
