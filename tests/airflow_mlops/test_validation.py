from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.errors import DataValidationError
from airflow_mlops.validation import validate_frame

FEATURES = ["x", "k"]


def _df(**over):
    base = {
        "id": ["a", "b", "c", "d"],
        "x": [1.0, 2.0, 3.0, 4.0],
        "k": ["p", "q", "p", "q"],
        "y": [0, 1, 0, 1],
    }
    base.update(over)
    return pd.DataFrame(base)


def _failed(df, constraints=None):
    report = validate_frame(df, constraints or {}, features=FEATURES, numeric=["x"], target="y")
    return {(r["check"], r["column"]) for r in report.failed}, report


def test_clean_frame_passes():
    failed, report = _failed(_df(), {"min_rows": 4, "columns": {"id": {"unique": True, "dtype": "string"}}})
    assert failed == set()
    assert report.passed


@pytest.mark.parametrize(
    ("df", "constraints", "expected"),
    [
        (_df().iloc[:0], {}, {("min rows", "*")}),
        (_df().drop(columns=["x"]), {}, {("column present", "x")}),
        (_df(x=[np.nan] * 4), {}, {("not all null", "x")}),
        (_df(x=[1.0, np.inf, 2.0, 3.0]), {}, {("finite", "x")}),
        (_df(x=["1", "2", "3", "4"]), {}, {("numeric dtype", "x")}),
        (_df(y=[0, None, 1, 1]), {}, {("target not null", "y")}),
        (_df(), {"columns": {"x": {"max": 3}}}, {("max", "x")}),
        (_df(), {"columns": {"k": {"allowed": ["p"]}}}, {("allowed values", "k")}),
        (_df(id=["a", "a", "b", "c"]), {"columns": {"id": {"unique": True}}}, {("unique", "id")}),
        (
            _df(x=[1.0, None, 3.0, 4.0]),
            {"columns": {"x": {"max_null_fraction": 0.1}}},
            {("null fraction", "x")},
        ),
        (_df(), {"columns": {"x": {"dtype": "integer"}}}, {("dtype", "x")}),
    ],
    ids=[
        "empty",
        "missing-column",
        "all-nan",
        "inf",
        "wrong-dtype",
        "null-target",
        "max",
        "allowed",
        "unique",
        "nulls",
        "dtype",
    ],
)
def test_each_check_fails_on_its_own_problem(df, constraints, expected):
    failed, _ = _failed(df, constraints)
    assert failed == expected


def test_error_message_is_a_table_of_failed_checks():
    _, report = _failed(_df(x=[1.0, np.inf, 2.0, 3.0]), {"columns": {"k": {"allowed": ["p"]}}})
    with pytest.raises(DataValidationError) as err:
        report.raise_for_failures("churn window 2026-01-20")
    lines = str(err.value).splitlines()
    assert lines[0].startswith("data validation failed for churn window 2026-01-20: 2 of ")
    assert lines[1].split() == ["check", "column", "expected", "observed", "result"]
    assert lines[3].split()[:2] == ["finite", "x"]
    assert lines[3].endswith("FAIL")
    assert "allowed values" in lines[4]
    assert "'q'" in lines[4]
    assert lines[4].endswith("FAIL")
