"""DAG integrity: every shipped DAG loads, every shipped spec compiles, nothing heavy is imported at parse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["torch", "peft", "transformers", "mlflow", "whylogs", "pandas", "numpy", "pyarrow", "kubernetes"]


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
    from airflow_mlops.spec import load_spec

    assert load_spec(spec).name == spec.stem


def test_loader_imports_no_heavy_module():
    """Checked in a fresh interpreter: this test process has long imported pandas itself."""
    code = (
        "import json, runpy, sys; runpy.run_path(sys.argv[1]);"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "dags" / "mlops_pipelines.py")],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_malformed_spec_is_an_import_error_naming_file_and_key(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "pipelines").mkdir()
    (tmp_path / "loader.py").write_text((ROOT / "dags" / "mlops_pipelines.py").read_text())
    good = (ROOT / "dags" / "pipelines" / "demo_churn.yaml").read_text()
    (tmp_path / "pipelines" / "broken.yaml").write_text(
        good.replace("name: demo_churn", "name: broken").replace("kind: tabular", "kind: xgboost")
    )
    bag = DagBag(str(tmp_path))
    ((path, message),) = bag.import_errors.items()
    assert path.endswith("loader.py")
    assert "broken.yaml" in message
    assert "model.kind: found 'xgboost'; allowed: tabular | lora_text" in message
    assert bag.dag_ids == []
