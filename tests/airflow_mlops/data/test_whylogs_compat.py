"""Pins the whylogs 1.6.4 + NumPy 2 behaviour that the compatibility module works around, in fresh processes
(this one has long imported whylogs through the compat module)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

PROFILE = "import pandas as pd; view = why.log(pandas=pd.DataFrame({'s': ['a', 'b']})).view()"


def _fresh(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WHYLOGS_NO_ANALYTICS"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


@pytest.mark.skipif(
    int(np.__version__.split(".")[0]) < 2, reason="the shim is for NumPy 2; NumPy 1 has unicode_"
)
@pytest.mark.slow  # fresh interpreters
def test_whylogs_fails_on_numpy_2_without_the_compat_module():
    done = _fresh(f"import whylogs as why; {PROFILE}")
    assert done.returncode != 0
    assert (
        "unicode_" in done.stderr
    )  # the reason the compat module exists; if whylogs is fixed, drop the shim


@pytest.mark.slow  # fresh interpreters
def test_the_compat_module_makes_whylogs_profile_and_turns_analytics_off():
    done = _fresh(
        "import json, os, numpy as np; from airflow_mlops.data.whylogs_compat import import_whylogs; "
        f"why = import_whylogs(); {PROFILE}; "
        "print(json.dumps([os.environ.get('WHYLOGS_NO_ANALYTICS'), np.unicode_ is np.str_, "
        "view.get_column('s').get_metric('counts').to_summary_dict()['n']]))"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["True", True, 2]


def test_import_whylogs_profiles_serialises_and_merges():
    import pandas as pd

    from airflow_mlops.data.whylogs_compat import import_whylogs

    why = import_whylogs()
    df = pd.DataFrame({"x": [1.0, np.nan, np.inf, 4.0], "s": ["a", "b", None, "a"]})
    view = why.log(pandas=df).view()
    counts = view.get_column("x").get_metric("counts").to_summary_dict()
    assert (counts["n"], counts["nan"], counts["inf"]) == (4, 1, 1)
    from whylogs.core import DatasetProfileView

    merged = DatasetProfileView.deserialize(view.serialize()).merge(view)
    assert merged.get_column("s").get_metric("counts").to_summary_dict()["n"] == 8
