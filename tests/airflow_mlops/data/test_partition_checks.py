"""Per-partition checks: one bad day inside a window of good ones is named, with its offending rows."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from airflow_mlops.data.validation import validate_and_profile
from airflow_mlops.errors import BadDataError, QualityGateError
from airflow_mlops.tools.demo import make_day

START = dt.date(2026, 1, 5)
NUMERIC = ["age", "tenure_months", "monthly_charges", "support_calls", "data_usage_gb"]
FEATURES = [*NUMERIC, "plan", "region", "payment_method"]
CONTRACT = {
    "min_rows": 500,
    "columns": {"customer_id": {"dtype": "string", "unique": True}, "event_date": {"dtype": "datetime"}},
}


def _window(tmp_path, bad_day: int | None = None, damage=None, days: int = 7, rows: int = 400) -> list[str]:
    uris = []
    for i in range(days):
        day = START + dt.timedelta(days=i)
        df = make_day(day, rows, drifted=False)
        if i == bad_day:
            df = damage(df)
        path = tmp_path / f"date={day.isoformat()}" / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(path, index=False)
        uris.append(str(path))
    return uris


def _check(tmp_path, damage, constraints=CONTRACT, **kw):
    uris = _window(tmp_path, 3, damage)
    report, _, _ = validate_and_profile(
        uris, "parquet", constraints, features=FEATURES, numeric=NUMERIC, target="churned", **kw
    )  # fmt: skip
    return report


BAD_DAY = (START + dt.timedelta(days=3)).isoformat()


def test_a_good_window_passes_every_partition_check(tmp_path):
    report = _check(tmp_path, lambda df: df)
    assert report.failed == []
    assert report.warnings == []
    checks = {r["check"] for r in report.rows}
    assert {"partition rows", "class balance", "duplicate rows"} <= checks  # on by default


@pytest.mark.parametrize(
    ("damage", "check", "column", "offending"),
    [
        (lambda df: df.assign(churned=0), "class balance", "churned", 400),
        (lambda df: df.head(5), "partition rows", "*", 5),
        (lambda df: pd.concat([df, df.head(200)]), "duplicate rows", "*", 200),
        (lambda df: df.assign(data_usage_gb=None), "not all null", "data_usage_gb", 400),
    ],
    ids=["one-class", "five-rows", "repeats-half", "all-null-day"],
)
def test_one_bad_day_in_a_window_of_good_days_is_named(tmp_path, damage, check, column, offending):
    """Each of these passed as a window (and trained a champion) before the checks ran per partition."""
    report = _check(tmp_path, damage)
    failed = [(r["check"], r["column"], r["partition"], r["rows"]) for r in report.failed]
    assert any(c == check and col == column and BAD_DAY in part for c, col, part, _ in failed), failed
    assert [rows for c, col, part, rows in failed if c == check and part.startswith(BAD_DAY)] == [offending]
    for r in report.failed:  # only the bad day is named
        assert r["partition"] in (BAD_DAY, "*") or r["partition"].startswith(BAD_DAY), r


def test_a_class_share_far_from_the_window_is_named(tmp_path):
    def skew(df):
        churned = df[df.churned == 1]
        return pd.concat([churned] * 4 + [df[df.churned == 0].head(50)], ignore_index=True).assign(
            customer_id=lambda d: [f"skew-{i}" for i in range(len(d))]
        )

    report = _check(tmp_path, skew)
    (row,) = [r for r in report.failed if r["check"] == "class balance"]
    assert row["partition"] == BAD_DAY
    assert row["observed"].startswith("class ")
    assert row["kind"] == "expectation"  # a shifted share gates training; a retraining (after drift) warns
    retraining = _check(tmp_path / "again", skew, expectations="warn")
    assert retraining.passed
    assert [(r["check"], r["partition"]) for r in retraining.warnings] == [("class balance", BAD_DAY)]


def test_window_checks_say_which_day_holds_the_bad_rows(tmp_path):
    constraints = {**CONTRACT, "columns": {**CONTRACT["columns"], "age": {"min": 18, "max": 100}}}
    report = _check(tmp_path, lambda df: df.assign(age=df.age.where(df.index >= 7, 130)), constraints)
    (row,) = [r for r in report.failed if r["check"] == "max"]
    assert (row["column"], row["partition"], row["rows"]) == ("age", f"{BAD_DAY} (7)", 7)
    assert f"{BAD_DAY} (7)" in report.table(only_failed=True)


def test_a_null_share_within_the_window_but_not_within_its_day_is_named(tmp_path):
    constraints = {
        **CONTRACT,
        "columns": {**CONTRACT["columns"], "monthly_charges": {"max_null_fraction": 0.05}},
    }
    # 30% of one day's values missing: 1.7% over the week passes, the day does not
    report = _check(
        tmp_path, lambda df: df.assign(monthly_charges=df.monthly_charges.where(df.index >= 120)), constraints
    )
    (row,) = [r for r in report.failed if r["check"] == "null fraction"]
    assert (row["partition"], row["rows"]) == (BAD_DAY, 120)


def test_nested_values_are_a_gate_failure_naming_column_and_file(tmp_path):
    with pytest.raises(BadDataError) as err:
        _check(tmp_path, lambda df: df.assign(plan=[{"name": p} for p in df.plan]))
    assert isinstance(err.value, QualityGateError)  # not retried: the adapters fail the task at once
    message = str(err.value)
    assert "'plan'" in message
    assert f"date={BAD_DAY}/part-0.parquet" in message
    assert "Flatten the column upstream" in message


def test_a_nested_column_the_spec_does_not_read_is_only_an_extra_column(tmp_path):
    report = _check(tmp_path, lambda df: df.assign(payload=[{"k": 1}] * len(df)))
    assert report.failed == []
    assert [(r["check"], r["column"], r["partition"]) for r in report.warnings] == [
        ("extra column", "payload", BAD_DAY)
    ]


@pytest.mark.parametrize("mode", ["warn", "fail", "ignore"])
def test_an_added_column_is_what_on_extra_columns_says(tmp_path, mode):
    report = _check(tmp_path, lambda df: df.assign(loyalty_tier="gold"), on_extra_columns=mode)
    extra = [
        (r["column"], r["partition"], r["severity"]) for r in report.rows if r["check"] == "extra column"
    ]
    if mode == "ignore":
        assert extra == []
        assert report.passed
    else:
        assert extra == [("loyalty_tier", BAD_DAY, mode)]
        assert report.passed is (mode == "warn")


def test_a_dropped_column_stays_a_hard_failure_naming_the_partition(tmp_path):
    report = _check(tmp_path, lambda df: df.rename(columns={"tenure_months": "tenure"}))
    assert [(r["check"], r["column"], r["partition"]) for r in report.failed] == [
        ("column present", "tenure_months", BAD_DAY)
    ]
    assert [(r["check"], r["column"]) for r in report.warnings] == [("extra column", "tenure")]


def test_a_column_new_in_some_partitions_is_left_out_and_a_needed_one_missing_is_named(tmp_path, caplog):
    """on_extra_columns: warn end to end: validate_data reports a new column, and every later task reads the
    window without it (the trainer and the model test read the same columns, so the held-out rows' fingerprint
    matches). A column the pipeline needs that a partition lacks stops the task, naming that partition."""
    import logging

    import pandas as pd

    from airflow_mlops.data.partitions import read_window
    from airflow_mlops.errors import BadDataError

    day1, day2 = tmp_path / "d1.parquet", tmp_path / "d2.parquet"
    pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}).to_parquet(day1)
    pd.DataFrame({"x": [3.0], "y": [1], "surprise": ["new"]}).to_parquet(day2)
    with caplog.at_level(logging.WARNING):
        df, files = read_window([str(day1), str(day2)], "parquet", needed=["x", "y"])
    assert list(df.columns) == ["x", "y"]
    assert len(df) == 3
    assert [f["rows"] for f in files] == [2, 1]
    assert "left out column(s) ['surprise']: only 1 of 2 partition(s) have them" in caplog.text
    pd.DataFrame({"y": [1]}).to_parquet(day2)
    with pytest.raises(BadDataError, match=r"partition .*d2.parquet differs in schema from .*d1.parquet: it lacks \['x'\]"):
        read_window([str(day1), str(day2)], "parquet", needed=["x", "y"])
