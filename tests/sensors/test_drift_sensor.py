from __future__ import annotations

import pytest

from airflow_mlops.sensors.drift import DriftSensor


class _TI:
    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def _sensor(uri: str) -> DriftSensor:
    return DriftSensor(task_id="d", model_name="nobody", current_profile_uri=uri, numeric=["x"])


def test_waits_for_the_current_profile(tmp_path, mlflow_uri):
    assert _sensor(str(tmp_path / "missing.bin")).poke({"ti": _TI()}) is False


def test_waits_for_a_champion(tmp_path, mlflow_uri):
    import pandas as pd

    from airflow_mlops.profiling import profile_frame, save_profile

    uri = save_profile(profile_frame(pd.DataFrame({"x": [1.0, 2.0]})), str(tmp_path / "p.bin"))
    assert _sensor(uri).poke({"ti": _TI()}) is False


@pytest.mark.parametrize("field", ["model_name", "current_profile_uri"])
def test_templated_fields(field):
    assert field in DriftSensor.template_fields
