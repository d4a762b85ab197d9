"""Test set-up: a real Airflow metadata DB (SQLite) and a real MLflow sqlite store per test.

Every ``AIRFLOW__*`` variable is set here, before anything imports Airflow.

``make test`` runs the suite on two pytest-xdist workers (``-n 2 --dist loadfile``). Each worker is a process
with its own session folder, metadata DB and temporary directory (``TMPDIR``: trainers' checkpoints and
temporary folders live there, so workers never share one). A test file is one unit of work, so its module
fixtures are built once; the two files that run ``airflow standalone`` (Airflow's default log-server ports)
are one unit; the longest units (the production stack's faults, then the embedded Airflow) are handed out
first (:func:`pytest_xdist_make_scheduler`).
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
from airflow_mlops.tools.quickstart import THREAD_SETTINGS

ROOT = Path(__file__).resolve().parent.parent
_SESSION = Path(tempfile.mkdtemp(prefix="mlops-tests-"))
if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker: its own temporary directory, for it and its children
    (_SESSION / "tmp").mkdir()
    os.environ["TMPDIR"] = str(_SESSION / "tmp")
    tempfile.tempdir = None
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
    bundle_config(ROOT / "tests" / "dag_bundle" / "models", "test-models"),
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
# One compute thread per process (torch's and scikit-learn's OpenMP, numpy's OpenBLAS), for this process and
# everything it starts (trainers, the stack's and the embedded Airflow's task processes). Two workers, the
# stack's trainers and the embedded Airflow's share two cores: with a pool of threads per core in each, the
# threads of one wait spinning for cores the others hold (measured: three training tests took 74 s and 30 s of
# CPU, 28 s and 19 s with one thread each). A user's own setting is kept.
for _threads in THREAD_SETTINGS:
    os.environ.setdefault(_threads, "1")
(_SESSION / "airflow").mkdir(parents=True, exist_ok=True)

DATA = _SESSION / "data"
os.environ["MLOPS_TEST_DATA"] = str(DATA)  # for test modules: conftest is not imported as a module twice


def _xdist_controller(config: pytest.Config) -> bool:
    """This process hands tests to xdist workers and runs none itself."""
    return not os.environ.get("PYTEST_XDIST_WORKER") and config.getoption("dist", "no") != "no"


def pytest_sessionstart(session: pytest.Session) -> None:
    if _xdist_controller(session.config):
        return
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
# Units of work for xdist that are not one file each, longest first: they start before everything else.
# `airflow standalone` takes Airflow's default log-server ports (8793, 8794): one such file at a time.
UNITS = {
    "tests/stack/test_faults.py": "stack-faults",
    "tests/stack/test_embedded.py": "standalone",
    "tests/ui/test_browser.py": "standalone",
}
FIRST = ["stack-faults", "standalone"]


def _unit(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return UNITS.get(path, path)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    rank = {unit: i for i, unit in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(_unit(item.nodeid), len(rank)))  # stable: files keep their order


@pytest.hookimpl(optionalhook=True)  # a hook of xdist: unknown when it is not loaded (-p no:xdist)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile`` with the units above, handed out in collection order (the longest first).
    (xdist's ``loadgroup`` reads groups from node ids that pytest 9 no longer lets a plugin rename.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    config.option.loadscopereorder = False
    return Units(config, log)


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
