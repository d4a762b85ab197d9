from __future__ import annotations

import pytest

from airflow_mlops.sensors.drift import DriftSensor


class _TI:
    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


pytestmark = pytest.mark.slow  # runs DAGs and triggers against a real MLflow registry


def _sensor(uri: str) -> DriftSensor:
    return DriftSensor(task_id="d", model_name="nobody", current_profile_uri=uri, numeric=["x"])


def test_waits_for_the_current_profile(tmp_path, mlflow_uri):
    assert _sensor(str(tmp_path / "missing.bin")).poke({"ti": _TI()}) is False


def test_waits_for_a_champion(tmp_path, mlflow_uri):
    import pandas as pd

    from airflow_mlops.data.profiling import profile_frame, save_profile

    uri = save_profile(profile_frame(pd.DataFrame({"x": [1.0, 2.0]})), str(tmp_path / "p.bin"))
    assert _sensor(uri).poke({"ti": _TI()}) is False


def _profile(tmp_path) -> str:
    import pandas as pd

    from airflow_mlops.data.profiling import profile_frame, save_profile

    return save_profile(profile_frame(pd.DataFrame({"x": [1.0, 2.0]})), str(tmp_path / "p.bin"))


def _version(name: str, tags: dict | None = None) -> str:
    """A registered version with the ``champion`` alias (a bare one, as another tool would register it)."""
    from mlflow.tracking import MlflowClient

    c = MlflowClient()
    c.create_registered_model(name)
    run = c.create_run(c.create_experiment(f"e-{name}"))
    v = c.create_model_version(
        name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags=tags
    )
    c.set_registered_model_alias(name, "champion", v.version)
    return str(v.version)


def _drift_trigger(profile_uri: str, seconds: float, model: str = "churn"):
    import datetime as dt

    from airflow_mlops.triggers.waiting import DriftReadyTrigger

    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()
    return DriftReadyTrigger(
        profile_uri=profile_uri, model_name=model, mlflow_conn_id="mlflow_default", poke_interval=0.05,
        deadline=deadline, deferrals=2,
    )  # fmt: skip


def _run(trigger):
    import asyncio

    from airflow.sdk._shared.module_loading import import_string

    classpath, kwargs = trigger.serialize()
    assert "tracking_uri" not in str(kwargs)  # the connection is resolved in the triggerer, not stored

    async def first():
        return await anext(import_string(classpath)(**kwargs).run())

    return asyncio.run(first()).payload


def test_drift_trigger_waits_for_profile_then_champion(tmp_path, mlflow_uri):
    import threading

    missing = _run(_drift_trigger(str(tmp_path / "later.bin"), 0.2))
    assert missing["status"] == "timeout"
    assert missing["reason"] == f"the current profile {tmp_path / 'later.bin'} is not there yet"
    assert missing["deferrals"] == 2  # the wait's state travels with the event

    uri = _profile(tmp_path)
    assert "has no 'champion' version yet" in _run(_drift_trigger(uri, 0.2))["reason"]
    threading.Timer(0.3, _version, args=("churn",)).start()
    ready = _run(_drift_trigger(uri, 30))
    assert ready["status"] == "ready"
    assert ready["champion_version"] == "1"


def test_deferrable_drift_sensor_defers_with_its_trigger(tmp_path, mlflow_uri):
    from airflow.sdk.exceptions import TaskDeferred

    sensor = DriftSensor(
        task_id="d", model_name="nobody", current_profile_uri=_profile(tmp_path), numeric=["x"],
        deferrable=True, on_timeout="skip", timeout=120, poke_interval=5,
    )  # fmt: skip
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"ti": _TI()})
    trigger = deferred.value.trigger
    assert type(trigger).__name__ == "DriftReadyTrigger"
    assert (trigger.model_name, trigger.poke_interval, trigger.deferrals) == ("nobody", 5.0, 1)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.kwargs["deadline"] == trigger.deadline


def test_skip_on_timeout_does_not_hide_a_broken_reference(tmp_path, mlflow_uri):
    from airflow_mlops.utils.failures import IntegrityCheckFailed

    _version("untagged")  # a champion registered outside airflow-mlops: no training profile to compare with
    sensor = DriftSensor(
        task_id="d", model_name="untagged", current_profile_uri=_profile(tmp_path), numeric=["x"],
        deferrable=True, on_timeout="skip",
    )  # fmt: skip
    with pytest.raises(IntegrityCheckFailed, match="has no mlops.profile_uri tag"):
        sensor.execute({"ti": _TI()})


def test_deferred_drift_sensor_resumes_on_the_trigger_event_and_decides(tmp_path, mlflow_uri):
    """execute defers; the trigger (serialised, rebuilt, run) fires once a champion exists; execute_complete
    with the event scores drift and returns the report."""
    import threading

    import numpy as np
    import pandas as pd
    from airflow.sdk._shared.module_loading import import_string
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_mlops.data.profiling import profile_frame, save_profile

    rng = np.random.default_rng(0)
    ref = save_profile(profile_frame(pd.DataFrame({"x": rng.normal(0, 1, 5000)})), str(tmp_path / "ref.bin"))
    cur = save_profile(profile_frame(pd.DataFrame({"x": rng.normal(1, 1, 5000)})), str(tmp_path / "cur.bin"))
    sensor = DriftSensor(
        task_id="d", model_name="churn", current_profile_uri=cur, numeric=["x"], deferrable=True,
        on_timeout="fail", timeout=60, poke_interval=0.05,
    )  # fmt: skip
    ti = _TI()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"ti": ti})
    classpath, kwargs = deferred.value.trigger.serialize()
    threading.Timer(0.3, _version, args=("churn", {"mlops.profile_uri": ref})).start()

    async def first():
        return await anext(import_string(classpath)(**kwargs).run())

    import asyncio

    event = asyncio.run(first()).payload
    assert event["status"] == "ready"
    report = sensor.resume_execution(
        "execute_complete", {"event": event, **deferred.value.kwargs}, {"ti": ti}
    )
    assert report["status"] == "drift"
    assert report["drifted_features"] == ["x"]
    assert report["champion_version"] == "1"
    # the report logged with the drift run, opened over HTTP in the connection's MLflow UI
    assert ti.pushed["drift_report_url"].endswith(f"/runs/{report['mlflow_run_id']}/artifacts/drift/report.html")
    assert ti.pushed["drift_report_url"].startswith("http://")
