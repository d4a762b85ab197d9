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


@pytest.mark.parametrize(
    ("constraints", "df", "expected"),
    [
        ({"columns": {"id": {"regex": "[a-z]"}}}, _df(id=["a", "b", "C7", "d"]), {("regex", "id")}),
        ({"columns": {"x": {"mean": {"min": 3.0}}}}, _df(), {("mean", "x")}),
        ({"columns": {"x": {"quantiles": {"0.5": {"max": 2.0}}}}}, _df(), {("quantile 0.5", "x")}),
        (
            {"max_duplicate_fraction": 0.1},
            _df(id=["a", "a", "c", "d"], x=[1.0, 1.0, 3, 4], y=[0, 0, 0, 1], k=["p", "p", "p", "q"]),
            {("duplicate rows", "*")},
        ),
    ],
)
def test_extended_vocabulary_fails_on_its_own_problem(constraints, df, expected):
    assert _failed(df, constraints)[0] == expected
    assert _failed(_df(), {k: v for k, v in constraints.items() if k == "max_duplicate_fraction"})[0] == set()


def test_freshness_of_a_timestamp_column_against_the_window_end():
    df = _df(ts=pd.to_datetime(["2026-01-01 10:00", "2026-01-01 20:00", "2026-01-01 22:00", None], utc=True))
    rule = {"columns": {"ts": {"max_age_hours": 6}}}
    fresh = validate_frame(df, rule, features=FEATURES, numeric=["x"], target="y", window_end="2026-01-02")
    assert fresh.passed
    stale = validate_frame(
        df, rule, features=FEATURES, numeric=["x"], target="y", window_end="2026-01-02 06:00"
    )
    (row,) = stale.failed
    assert (row["check"], row["column"]) == ("freshness", "ts")
    assert row["observed"].startswith("8.0 h old")


def test_severity_warn_reports_without_stopping():
    rules = {"columns": {"x": {"max": 3.0, "severity": "warn"}, "k": {"allowed": ["p"]}}}
    report = validate_frame(_df(), rules, features=FEATURES, numeric=["x"], target="y")
    assert [(r["check"], r["column"]) for r in report.warnings] == [("max", "x")]
    assert [(r["check"], r["column"]) for r in report.failed] == [("allowed values", "k")]
    assert "WARN" in report.table()
    with pytest.raises(DataValidationError) as err:
        report.raise_for_failures("w")
    assert "allowed values" in str(err.value)
    assert " max " not in str(err.value)


def test_inferred_constraints_parse_and_hold_on_similar_data_but_not_on_shifted_data(tmp_path):

    import datetime as dt

    from airflow_mlops.cli import main
    from airflow_mlops.demo import make_day
    from airflow_mlops.profiling import profile_frame, save_profile
    from airflow_mlops.spec import parse_spec
    from airflow_mlops.validation import infer_constraints

    reference = make_day(dt.date(2026, 1, 3), 5000, drifted=False)
    proposed = infer_constraints(profile_frame(reference))
    cols = proposed["columns"]
    assert cols["customer_id"] == {"dtype": "string", "nullable": False, "unique": True}
    assert cols["plan"]["allowed"] == ["basic", "plus", "pro"]
    assert cols["churned"]["allowed"] == [0, 1]
    assert cols["age"]["min"] >= 0
    assert "mean" in cols["age"]

    spec = {
        "name": "inferred", "start_date": "2026-01-01", "data": {"uri": "/d/{date}.parquet"}, "storage": {"uri": "/s"},
        "target": "churned", "features": {"numeric": ["age", "monthly_charges"], "categorical": ["plan"]},
        "constraints": proposed, "model": {"kind": "tabular"},
    }  # fmt: skip
    parsed = parse_spec(spec).constraints_dict()  # the proposal is a valid constraints block

    def check(df):
        return validate_frame(
            df, parsed, features=["age", "monthly_charges", "plan"], numeric=["age"], target="churned"
        )

    assert check(make_day(dt.date(2026, 1, 4), 5000, drifted=False)).passed
    drifted = check(make_day(dt.date(2026, 1, 24), 5000, drifted=True))
    assert ("mean", "monthly_charges") in {(r["check"], r["column"]) for r in drifted.failed}

    stored = save_profile(profile_frame(reference), str(tmp_path / "ref.bin"))
    assert main(["infer-constraints", stored]) == 0
