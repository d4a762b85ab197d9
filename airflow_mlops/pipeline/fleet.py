"""A fleet of specs: find them in a folder tree, decide who owns each name, compile one DAG file per spec.

Airflow's dag-processor parses, times out and reports errors per *file*. So each spec gets its own small
generated DAG file (a "stub") that holds the spec's YAML and compiles only that spec: a broken spec is an
import error of its own file and every other pipeline keeps its DAGs; no file carries more than one spec's
parse time. :class:`~airflow_mlops.pipeline.bundle.PipelineSpecBundle` keeps the stubs in step with the spec
folder; ``airflow-mlops compile-specs`` writes them for deployments that sync a plain DAGs folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPEC_SUFFIXES = (".yaml", ".yml")
MANIFEST = ".airflow-mlops-stubs.json"


@dataclass
class SpecFile:
    path: Path  # absolute
    rel: str  # relative to the spec root, with '/' separators: how messages and the UI name it
    name: str | None  # the spec's `name`, where the YAML parses and has one
    stat: tuple[int, int] = (0, 0)  # (mtime_ns, size) when read
    text: str | None = None  # None: unchanged since the last compile (not read again), or unreadable
    unchanged: bool = False

    def read(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None


@dataclass
class Fleet:
    root: Path
    files: list[SpecFile]
    owner: dict[str, str] = field(default_factory=dict)  # name -> rel of the file that owns it

    def duplicate_of(self, spec: SpecFile) -> str | None:
        """The file that owns this spec's name, if it is another file."""
        if spec.name is None:
            return None
        owner = self.owner.get(spec.name)
        return owner if owner is not None and owner != spec.rel else None


def _quick_name(text: str) -> str | None:
    from airflow_mlops.pipeline.spec import read_yaml

    try:
        raw = read_yaml(text, "")
    except Exception:
        return None
    name = raw.get("name") if isinstance(raw, dict) else None
    return name if isinstance(name, str) else None


def find_specs(root: str | Path) -> list[Path]:
    """Every ``*.yaml`` / ``*.yml`` below ``root`` (sub-folders too), hidden files and folders skipped."""
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
        for f in sorted(filenames):
            if f.endswith(SPEC_SUFFIXES) and not f.startswith("."):
                found.append(Path(dirpath, f))
    return found


def scan(root: str | Path, previous: dict | None = None) -> Fleet:
    """Find every spec under ``root`` and decide which file owns each name.

    A file whose size and modification time are those ``previous`` (the last compile's manifest) recorded is
    not read again: with nothing changed, a scan costs one ``stat`` per spec (workers scan at every task
    start). A name keeps its previous owner while that file still claims it (a newcomer that copies a name is
    the mistake, and must not take the DAGs away from the pipeline that had them); otherwise the first file in
    path order owns it.
    """
    root = Path(root)
    previous = previous or {}
    known = previous.get("files", {})
    files = []
    for path in find_specs(root):
        rel = path.relative_to(root).as_posix()
        try:
            st = path.stat()
        except OSError:
            continue
        stat = (st.st_mtime_ns, st.st_size)
        seen = known.get(rel)
        if seen is not None and tuple(seen["stat"]) == stat:
            files.append(SpecFile(path=path, rel=rel, name=seen["name"], stat=stat, unchanged=True))
            continue
        spec = SpecFile(path=path, rel=rel, name=None, stat=stat)
        spec.text = spec.read()
        spec.name = _quick_name(spec.text) if spec.text is not None else None
        files.append(spec)
    owner = decide_owners([(f.name, f.rel) for f in files], previous.get("owner", {}))
    return Fleet(root=root, files=files, owner=owner)


def decide_owners(claims: list[tuple[str | None, str]], deployed: dict[str, str]) -> dict[str, str]:
    """Which file owns each pipeline name: the one rule of the bundle and of ``validate-spec``.

    ``claims`` are (name, path relative to the spec folder) in path order; ``deployed`` is the owner map of
    the last compile (the manifest). A name keeps its deployed owner while that file still claims it: a
    newcomer that copies a running pipeline's name is the mistake, whatever its path. A name with no deployed
    owner (a fresh deployment, or the owner's file gone) goes to the first file in path order."""
    by_name: dict[str, list[str]] = {}
    for name, rel in claims:
        if name is not None:
            by_name.setdefault(name, []).append(rel)
    return {
        name: deployed.get(name) if deployed.get(name) in rels else rels[0] for name, rels in by_name.items()
    }


def deployed_owners(path: str | Path) -> dict[str, str]:
    """The owner map a running bundle decided (its manifest), for ``validate-spec --deployed``: ``path`` is
    the manifest file or the folder the bundle compiles into (``<bundle storage>/compiled``)."""
    path = Path(path)
    manifest = path / MANIFEST if path.is_dir() else path
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError) as err:
        raise FileNotFoundError(
            f"no deployed manifest at {manifest} ({type(err).__name__}): pass the folder the bundle compiles "
            f"into, or its {MANIFEST}"
        ) from None
    owner = data.get("owner") if isinstance(data, dict) else None
    if not isinstance(owner, dict):
        raise FileNotFoundError(f"{manifest} is not an airflow-mlops bundle manifest (no 'owner' map)")
    return {str(k): str(v) for k, v in owner.items()}


# ------------------------------------------------------------------------------------------------- stubs

STUB = """\
# airflow-mlops pipeline {rel}: its DAGs are compiled from the YAML below.
# Generated by airflow-mlops from the spec folder: edit the YAML there, not this file.
from airflow_mlops.pipeline.loader import {call}

SPEC_FILE = {rel!r}
SPEC_YAML = {yaml}

globals().update({call}(SPEC_YAML, SPEC_FILE{extra}))
"""


def _literal(text: str) -> str:
    """The YAML as a readable Python literal (a raw triple-quoted string where that is exact). The literal
    opens with a newline, so that the YAML starts on a line of its own; the loader drops it."""
    if '"""' not in text and not text.endswith("\\") and "\r" not in text:
        return 'r"""\n' + text + '"""'
    return repr("\n" + text)


def stub_source(spec: SpecFile, text: str | None, owner: str | None) -> str:
    if text is None:
        return STUB.format(rel=spec.rel, yaml="None", call="unreadable_spec", extra="")
    if owner is not None:
        return STUB.format(
            rel=spec.rel, yaml=_literal(text), call="duplicate_name", extra=f", {spec.name!r}, {owner!r}"
        )
    return STUB.format(rel=spec.rel, yaml=_literal(text), call="compile_spec", extra="")


def stub_name(rel: str, taken: set[str]) -> str:
    """``team/churn.yaml`` -> ``team/churn.py`` (``churn_yml.py`` when ``churn.yaml`` is there too)."""
    base, ext = os.path.splitext(rel)
    name = f"{base}.py"
    if name in taken:
        name = f"{base}_{ext.lstrip('.')}.py"
    return name


def _write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text(encoding="utf-8") == text:
            return False  # unchanged: keep the mtime, Airflow parses recently changed files first
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".stub-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return True


def compile_stubs(spec_root: str | Path, out: str | Path) -> dict[str, int]:
    """Make ``out`` hold exactly one DAG file per spec under ``spec_root``; return what changed.

    Safe to run again and again (unchanged stubs are not rewritten) and from several processes (each file is
    replaced atomically); stubs whose spec is gone are removed.
    """
    spec_root, out = Path(spec_root), Path(out)
    if not spec_root.is_dir():
        # Never compile "no specs" from a folder that is not there (an unmounted volume, a typo): that would
        # remove every generated file, and Airflow would deactivate every pipeline's DAGs.
        raise FileNotFoundError(
            f"spec folder {spec_root} does not exist or is not a folder: the generated DAG files are left as "
            "they are; fix the bundle's path (or mount the folder)"
        )
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    try:
        previous = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        previous = {}
    fleet = scan(spec_root, previous)
    known = previous.get("files", {})
    taken: set[str] = set()
    files: dict[str, dict] = {}
    written = 0
    for spec in fleet.files:
        name = stub_name(spec.rel, taken)
        taken.add(name)
        owner = fleet.duplicate_of(spec)
        seen = known.get(spec.rel, {})
        fresh = spec.unchanged and seen.get("stub") == name and seen.get("dup_of") == owner
        if not (fresh and (out / name).exists()):
            text = spec.text if not spec.unchanged else spec.read()
            written += _write_if_changed(out / name, stub_source(spec, text, owner))
        files[spec.rel] = {"stat": list(spec.stat), "name": spec.name, "stub": name, "dup_of": owner}
    removed = 0
    for path in sorted(out.rglob("*.py"), reverse=True):
        if path.relative_to(out).as_posix() not in taken:
            path.unlink(missing_ok=True)
            removed += 1
    for d in sorted((p for p in out.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    manifest = {"owner": fleet.owner, "files": files}
    _write_if_changed(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
    return {"specs": len(fleet.files), "written": written, "removed": removed}


# ---------------------------------------------------------------------------------------- validate-spec


@dataclass
class Report:
    """What ``airflow-mlops validate-spec`` says of one file: the problems that parsing it would raise."""

    file: str
    name: str | None = None
    dag_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # valid, but cannot work as written

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "ok": self.ok,
            "name": self.name,
            "dag_ids": self.dag_ids,
            "problems": self.problems,
            "warnings": self.warnings,
        }


def duplicate_problem(name: str, owner: str) -> str:
    return (
        f"name: found {name!r}, which {owner} already uses; allowed: a name no other spec uses "
        "(rename this pipeline, or delete one of the two files)"
    )


def check(paths: list[str | Path], deployed: dict[str, str] | None = None) -> list[Report]:
    """Check spec files and folders exactly as parsing would: the typed spec, duplicate names across
    everything given, and building and validating the DAGs.

    Duplicate names follow the bundle's rule (:func:`decide_owners`): with ``deployed`` (the running bundle's
    owner map, ``--deployed``) a name stays with the file that owns it there, so the newcomer is blamed;
    without it, as on a fresh deployment, the first file in path order owns the name. A folder's files are
    matched to the manifest by their path inside that folder, as the bundle records them."""
    from airflow_mlops.errors import SpecError
    from airflow_mlops.pipeline.factory import build_dags
    from airflow_mlops.pipeline.spec import load_spec

    files: list[tuple[Path, str, str]] = []  # (path, as shown, path inside the spec folder)
    for p in map(Path, paths):
        found = [(f, f.relative_to(p).as_posix()) for f in find_specs(p)] if p.is_dir() else [(p, p.name)]
        taken = {rel for _f, _s, rel in files}
        files += [(f, str(f), rel if rel not in taken else str(f)) for f, rel in found]
    reports: list[Report] = []
    specs: list[Any] = []
    for path, shown, _rel in files:
        report = Report(file=shown)
        reports.append(report)
        try:
            specs.append(load_spec(path, shown))
        except SpecError as err:
            specs.append(None)
            report.problems = list(err.problems)
            if path.is_file():
                report.name = _quick_name(path.read_text(encoding="utf-8", errors="replace"))
            continue
        report.name = specs[-1].name
        report.warnings = specs[-1].warnings()
    owner = decide_owners([(r.name, rel) for r, (_p, _s, rel) in zip(reports, files, strict=True)], deployed or {})
    shown_of = {rel: shown for _p, shown, rel in files}
    for report, spec, (_path, _shown, rel) in zip(reports, specs, files, strict=True):
        if report.name is not None and owner.get(report.name) != rel:
            report.problems.append(duplicate_problem(report.name, shown_of[owner[report.name]]))
            continue
        if spec is None:
            continue
        try:
            dags = build_dags(spec)
            for dag in dags.values():
                dag.validate()
                dag.check_cycle()
        except Exception as err:  # whatever Airflow would raise while parsing: the same words
            report.problems.append(f"(DAG build): {type(err).__name__}: {err}")
            continue
        report.dag_ids = list(dags)
    return reports
