"""DAG integrity: every shipped DAG loads, every shipped spec compiles, nothing heavy is imported at parse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import banned_imports

from airflow_mlops.tools.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
HEAVY = banned_imports()


def test_shipped_dags_load_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"demo_churn__train", "demo_churn__drift_monitor", "demo_churn__retrain"} <= set(dagbag.dag_ids)


def test_training_dag_shape(dagbag):
    dag = dagbag.dags["demo_churn__train"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "validate_data",
        "train_model",
        "test_model",
        "register_model",
    ]
    assert dag.max_active_runs == 1
    monitor = dagbag.dags["demo_churn__drift_monitor"]
    assert monitor.get_task("branch_on_drift").downstream_task_ids == {"trigger_retraining", "no_drift"}


@pytest.mark.parametrize("spec", sorted((ROOT / "dags" / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_spec_is_valid(spec):
    from airflow_mlops.pipeline.spec import load_spec

    assert load_spec(spec).name == spec.stem
    assert cli(["validate-spec", str(spec)]) == 0


def test_shipped_spec_compiles_without_heavy_imports(tmp_path):
    """Compiled and parsed in a fresh interpreter: this test process has long imported pandas itself."""
    code = (
        "import json, sys; from airflow_mlops.pipeline.fleet import compile_stubs;"
        "from airflow.dag_processing.dagbag import DagBag;"
        f"compile_stubs({str(ROOT / 'dags' / 'pipelines')!r}, {str(tmp_path)!r}); bag = DagBag({str(tmp_path)!r});"
        "assert not bag.import_errors and bag.dag_ids, bag.import_errors;"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_without_the_bundle_the_dags_folder_still_loads_every_valid_spec(tmp_path):
    """An Airflow pointed at dags/ without the PipelineSpecBundle: the fallback loader compiles each spec on
    its own; a broken one is left out with a warning naming it, and the others keep their DAGs."""
    import shutil

    from airflow.dag_processing.dagbag import DagBag

    dags = tmp_path / "dags"
    shutil.copytree(ROOT / "dags", dags)
    good = (dags / "pipelines" / "demo_churn.yaml").read_text()
    (dags / "pipelines" / "broken.yaml").write_text(good.replace("name: demo_churn", "name: broken").replace(
        "epochs: 12", "epochs: twelve"))  # fmt: skip
    bag = DagBag(str(dags))
    assert bag.import_errors == {}
    assert {"demo_churn__train", "demo_churn__drift_monitor", "demo_churn__retrain"} <= set(bag.dag_ids)
    assert not any(d.startswith("broken") for d in bag.dag_ids)
    (warning,) = bag.captured_warnings[str(dags / "mlops_pipelines.py")]
    assert "invalid pipeline spec broken.yaml" in warning
    assert "model.params.epochs: found 'twelve'; allowed: an integer" in warning


def test_where_the_bundle_serves_the_specs_the_dags_folder_defines_none(dagbag):
    """The tests configure the PipelineSpecBundle for dags/pipelines, as the quick start does: no DAG twice."""
    from airflow.dag_processing.dagbag import DagBag

    assert dagbag.dag_ids  # the bundle's files
    assert DagBag(str(ROOT / "dags")).dag_ids == []


def test_the_demo_and_the_stack_find_the_shipped_dags_from_any_folder(tmp_path):
    """The embedded demo and the stack take their DAGs folder from the installed package, never the working
    directory: from an empty folder (with a decoy dags/ in it) they still get the repository's."""
    (tmp_path / "dags").mkdir()
    code = (
        "import json; from pathlib import Path; from airflow_mlops.tools.quickstart import demo_env;"
        "env = demo_env(Path('home'), 8080); print(json.dumps(env['AIRFLOW__CORE__DAGS_FOLDER']))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True, text=True)
    folder = Path(json.loads(out.stdout.strip().splitlines()[-1]))
    assert folder == (ROOT / "dags").resolve()
    assert (folder / "pipelines" / "demo_churn.yaml").is_file()
