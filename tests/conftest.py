"""Test set-up: a real Airflow metadata DB (SQLite) and a real MLflow sqlite store per test.

Every ``AIRFLOW__*`` variable is set here, before anything imports Airflow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from airflow_mlops.pipeline import bundle_config

ROOT = Path(__file__).resolve().parent.parent
_SESSION = Path(tempfile.mkdtemp(prefix="mlops-tests-"))
BUNDLES = [
    {
        "name": "dags-folder",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(ROOT / "dags")},
    },
    {
        "name": "test-dags",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(ROOT / "tests" / "dag_bundle")},
    },
    bundle_config(ROOT / "dags" / "pipelines", "mlops-pipelines"),
    bundle_config(ROOT / "tests" / "dag_bundle" / "pipelines", "test-pipelines"),
]
os.environ.update(
    {
        "AIRFLOW_HOME": str(_SESSION / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_SESSION / 'airflow' / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(BUNDLES),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(_SESSION / "dag_bundles"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "WHYLOGS_NO_ANALYTICS": "True",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "GIT_PYTHON_REFRESH": "quiet",
    }
)
(_SESSION / "airflow").mkdir(parents=True, exist_ok=True)

DATA = _SESSION / "data"
os.environ["MLOPS_TEST_DATA"] = str(DATA)  # for test modules: conftest is not imported as a module twice


def pytest_sessionstart(session: pytest.Session) -> None:
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    from airflow_mlops.tools.demo import generate

    generate(str(DATA))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION, ignore_errors=True)


@pytest.fixture
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh MLflow sqlite store, wired as the mlflow_default connection and for the client."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    conn = {"conn_type": "mlflow", "extra": {"tracking_uri": uri, "ui_url": "http://mlflow.test:5000"}}
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps(conn))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Data root (the shared demo data) and a fresh artifact root, as the Airflow Variables the specs use."""
    artifacts = tmp_path / "artifacts"
    monkeypatch.setenv("AIRFLOW_VAR_MLOPS_DATA_ROOT", str(DATA))
    monkeypatch.setenv("AIRFLOW_VAR_MLOPS_ARTIFACT_ROOT", str(artifacts))
    return {"data": DATA, "artifacts": artifacts}


@pytest.fixture
def own_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the demo data that a test may damage."""
    dst = tmp_path / "data"
    shutil.copytree(DATA, dst)
    monkeypatch.setenv("AIRFLOW_VAR_MLOPS_DATA_ROOT", str(dst))
    return dst


@pytest.fixture(scope="session")
def dagbag():
    """The shipped specs (dags/pipelines), compiled and parsed as the dag-processor does."""
    from helpers import spec_dagbag

    return spec_dagbag("mlops-pipelines", ROOT / "dags" / "pipelines")


SLOW_FIXTURES = {"dagbag_tests", "bag"}  # the test runs DAGs through dag.test()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def test_pipelines(mlflow_uri: str, roots: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    """The DAGs of the test specs (tests/dag_bundle/pipelines), with mlflow_default on this test's store."""
    from helpers import pipelines_bag

    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "extra": {"tracking_uri": mlflow_uri}})
    )
    dags = pipelines_bag()
    assert dags.import_errors == {}
    return dags
