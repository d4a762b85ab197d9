"""MLflow plumbing: a registered version is used only once the registry says it is READY."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_mlops.errors import MlopsError
from airflow_mlops.tracking.registry import wait_until_ready


class RemoteRegistry:
    """The answers of a remote registry that copies models in the background, in order (a sqlite store is
    READY at once, so it cannot show them); the last answer repeats."""

    def __init__(self, *statuses: str) -> None:
        self.statuses = list(statuses)
        self.calls: list[tuple[str, str]] = []

    def get_model_version(self, name: str, version: str):
        self.calls.append((name, version))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        message = "copy of the artifacts failed" if status == "FAILED_REGISTRATION" else ""
        return SimpleNamespace(version=version, status=status, status_message=message)


def test_a_pending_version_is_polled_until_ready():
    c = RemoteRegistry("PENDING_REGISTRATION", "PENDING_REGISTRATION", "READY")
    assert wait_until_ready(c, "churn", "3", timeout=60).status == "READY"
    assert c.calls == [("churn", "3")] * 3


def test_a_version_still_pending_at_the_deadline_stops_the_task():
    c = RemoteRegistry("PENDING_REGISTRATION")
    with pytest.raises(MlopsError, match="churn version 3 is still PENDING_REGISTRATION after 0 s"):
        wait_until_ready(c, "churn", "3", timeout=0.01)
    assert len(c.calls) >= 1


def test_a_failed_registration_says_why_and_is_never_used():
    c = RemoteRegistry("FAILED_REGISTRATION")
    with pytest.raises(MlopsError, match="registration ended FAILED_REGISTRATION: copy of the artifacts failed"):
        wait_until_ready(c, "churn", "3", timeout=60)
    assert c.calls == [("churn", "3")]


@pytest.mark.slow
def test_trainers_starting_at_once_on_a_new_store_all_get_it(tmp_path):
    """A backfill starts several trainers on a store nobody created yet: MLflow's migrations run once, under
    the set-up lock beside the database, and every process gets a working store."""
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    (tmp_path / "new").mkdir()
    go = tmp_path / "go"
    code = (
        "import sys, time\nfrom pathlib import Path\n"
        "from airflow_mlops.tracking import registry\n"
        "while not Path(sys.argv[2]).exists(): time.sleep(0.01)\n"
        "c = registry.client(sys.argv[1], sys.argv[1])\n"
        "c.search_experiments(); c.search_registered_models()\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, uri, str(go)], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    go.write_text("go")  # all four start creating the store at the same moment
    outcomes = [(p.wait(180), p.stderr.read()[-500:]) for p in procs]
    assert [code for code, _ in outcomes] == [0, 0, 0, 0], outcomes
