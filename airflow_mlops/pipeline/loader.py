"""What a generated DAG file calls: one spec's YAML in, that spec's DAGs out (or its own import error).

Imports only the typed spec and the DAG factory: no torch, mlflow, whylogs, pandas or numpy at parse time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlops.errors import SpecError
from airflow_mlops.pipeline.factory import build_dags
from airflow_mlops.pipeline.spec import PipelineSpec, parse_spec, read_yaml

if TYPE_CHECKING:
    from airflow.sdk import DAG


def load_text(text: str, source: str) -> PipelineSpec:
    # a generated DAG file's literal opens with a newline of its own (fleet._literal): line numbers stay the YAML's
    return parse_spec(read_yaml(text.removeprefix("\n"), source), source)


def compile_spec(text: str, source: str) -> dict[str, DAG]:
    """Validate one spec and build its DAGs; a problem raises :class:`SpecError` naming ``source``."""
    try:
        spec = load_text(text, source)
    except (
        SpecError
    ) as err:  # raised afresh here: the import error's traceback is this frame, not the parser's
        raise SpecError(err.problems, err.source) from None
    return build_dags(spec)


def duplicate_name(text: str, source: str, name: str, owner: str) -> dict[str, Any]:
    """A spec whose ``name`` another file already uses: an import error of this file alone."""
    from airflow_mlops.pipeline.fleet import duplicate_problem

    raise SpecError([duplicate_problem(name, owner)], source)


def unreadable_spec(text: str | None, source: str) -> dict[str, Any]:
    raise SpecError(["(file): cannot be read as UTF-8 text; save the spec as UTF-8"], source)


# Every module that building a spec's DAGs imports (pipeline.factory imports them inside its functions, so that
# this module stays light for the commands that only validate). The Kubernetes operator is left out: its
# provider is an extra, and its client is heavy; a pod-training spec imports it in its own parsing process.
PARSE_MODULES = (
    "airflow.providers.standard.operators.empty",
    "airflow.timetables.interval",
    "airflow_mlops.model.estimation",  # the spec's estimated metrics
    "airflow_mlops.operators.approval",
    "airflow_mlops.operators.drift",
    "airflow_mlops.operators.evaluation",
    "airflow_mlops.operators.registry",
    "airflow_mlops.operators.retraining",
    "airflow_mlops.operators.scoring",
    "airflow_mlops.operators.search",
    "airflow_mlops.operators.training",
    "airflow_mlops.operators.validation",
    "airflow_mlops.sensors.drift",
    "airflow_mlops.sensors.partition",
    "airflow_mlops.utils.alerts",
    "airflow_mlops.utils.timetables",
)


def preload() -> None:
    """Import everything :func:`compile_spec` needs (:data:`PARSE_MODULES`). Called in the dag-processor's
    manager (by the bundle), so the parsing processes it forks start with it loaded: a spec file then costs
    only its own work, as a DAG file of Airflow's stock operators does (Airflow pre-imports those itself)."""
    import importlib

    for module in PARSE_MODULES:
        importlib.import_module(module)


class SpecWarning(UserWarning):
    """A spec left out by :func:`load_folder`; Airflow shows it among the DAG file's import warnings."""


def served_by_bundle(folder: str | Path) -> bool:
    """Whether a configured ``PipelineSpecBundle`` already serves the specs under ``folder``."""
    import json

    from airflow.sdk.configuration import conf

    from airflow_mlops.pipeline import BUNDLE_CLASSPATH

    try:
        bundles = json.loads(conf.get("dag_processor", "dag_bundle_config_list", fallback="[]") or "[]")
    except ValueError:
        return False
    target = Path(folder).resolve()
    for bundle in bundles:
        if isinstance(bundle, dict) and bundle.get("classpath") == BUNDLE_CLASSPATH:
            path = (bundle.get("kwargs") or {}).get("path")
            if path is None:
                path = Path(conf.get("core", "dags_folder")) / "pipelines"
            if Path(path).expanduser().resolve() == target:
                return True
    return False


def load_folder(folder: str | Path) -> dict[str, DAG]:
    """The fallback for an Airflow without the ``PipelineSpecBundle``: every spec under ``folder`` compiled in
    this one DAG file, each on its own, so a broken spec leaves out only its own pipeline (with a
    :class:`SpecWarning` naming the file and every problem) and the others keep their DAGs.

    Where the bundle serves the folder this returns nothing (the bundle's one-file-per-spec is the way for a
    fleet: per-spec import errors and time-outs).
    """
    import warnings

    from airflow_mlops.pipeline.fleet import duplicate_problem, scan

    if served_by_bundle(folder):
        return {}
    fleet = scan(folder)
    dags: dict[str, DAG] = {}
    for spec in fleet.files:
        owner = fleet.duplicate_of(spec)
        try:
            if spec.text is None:
                unreadable_spec(None, spec.rel)
            if owner is not None:
                raise SpecError([duplicate_problem(str(spec.name), owner)], spec.rel)
            dags.update(compile_spec(spec.text, spec.rel))
        except SpecError as err:
            warnings.warn(f"{err}\n(only this pipeline is left out)", SpecWarning, stacklevel=2)
    return dags
