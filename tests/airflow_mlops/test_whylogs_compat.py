"""Pins the whylogs 1.6.4 + NumPy 2 behaviour that the compatibility module works around."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np


def test_numpy_2_has_no_unicode_alias_in_a_fresh_process():
    code = "import numpy as np; print(np.__version__.split('.')[0], hasattr(np, 'unicode_'))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    if out[0] == "2":
        assert (
            out[1] == "False"
        )  # the reason the compat module exists; if NumPy brings it back, drop the shim


def test_import_whylogs_profiles_serialises_and_merges():
    import pandas as pd

    from airflow_mlops.whylogs_compat import import_whylogs

    why = import_whylogs()
    assert os.environ["WHYLOGS_NO_ANALYTICS"] == "True"
    df = pd.DataFrame({"x": [1.0, np.nan, np.inf, 4.0], "s": ["a", "b", None, "a"]})
    view = why.log(pandas=df).view()
    counts = view.get_column("x").get_metric("counts").to_summary_dict()
    assert (counts["n"], counts["nan"], counts["inf"]) == (4, 1, 1)
    from whylogs.core import DatasetProfileView

    merged = DatasetProfileView.deserialize(view.serialize()).merge(view)
    assert merged.get_column("s").get_metric("counts").to_summary_dict()["n"] == 8
