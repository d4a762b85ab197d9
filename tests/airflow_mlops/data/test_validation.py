from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.data.validation import validate_frame
from airflow_mlops.errors import DataValidationError

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
    assert lines[1].split() == ["check", "column", "partition", "expected", "observed", "rows", "result"]
    assert lines[3].split()[:3] == ["finite", "x", "*"]
    assert lines[3].split()[-2:] == ["1", "FAIL"]  # one offending row
    assert "allowed values" in lines[4]
    assert "'q'" in lines[4]
    assert lines[4].split()[-2:] == ["2", "FAIL"]


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
    report = validate_frame(
        _df(), rules, features=FEATURES, numeric=["x"], target="y", on_extra_columns="ignore"
    )
    assert [(r["check"], r["column"]) for r in report.warnings] == [("max", "x")]
    assert [(r["check"], r["column"]) for r in report.failed] == [("allowed values", "k")]
    assert "WARN" in report.table()
    with pytest.raises(DataValidationError) as err:
        report.raise_for_failures("w")
    assert "allowed values" in str(err.value)
    assert " max " not in str(err.value)


def test_inferred_constraints_parse_and_hold_on_similar_data_but_not_on_shifted_data(tmp_path):

    import datetime as dt

    from airflow_mlops.data.profiling import profile_frame, save_profile
    from airflow_mlops.data.validation import infer_constraints
    from airflow_mlops.pipeline.spec import parse_spec
    from airflow_mlops.tools.cli import main
    from airflow_mlops.tools.demo import make_day

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


RICH = {
    "min_rows": 10,
    "max_duplicate_fraction": 0.0,
    "columns": {
        "id": {"dtype": "string", "unique": True, "regex": "c[0-9]+"},
        "x": {"dtype": "float", "min": 0, "max": 50, "max_null_fraction": 0.0, "mean": {"min": 0, "max": 10}},
        "k": {"allowed": ["p", "q"], "nullable": False},
        "n": {"quantiles": {"0.5": {"min": 60, "max": 70}, "0.9": {"max": 200}}},
        "ts": {"max_age_hours": 1},
    },
}


def _part(i: int, rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(i)
    df = pd.DataFrame({
        "id": [f"c{i * rows + j}" for j in range(rows)],
        "x": rng.uniform(0, 20, rows),
        "k": rng.choice(["p", "q"], rows),
        "n": rng.integers(0, 200, rows),
        "ts": pd.date_range(f"2026-01-0{i + 1}", periods=rows, freq="10min", tz="UTC"),
        "y": rng.integers(0, 2, rows),
    })  # fmt: skip
    return df


def _damaged() -> list[pd.DataFrame]:
    parts = [_part(i) for i in range(3)]
    parts[2].loc[5, "id"] = parts[0].loc[40, "id"]  # a duplicate id two files apart
    parts[2].loc[6] = parts[1].loc[7]  # a duplicate row, across files
    parts[1].loc[3, ["x", "k"]] = [np.nan, "r"]  # a null and a value out of the set
    parts[1].loc[4, "id"] = "customer-9"  # does not match the regex
    parts[0].loc[0, "x"] = 99.0  # above max
    return parts


def test_streaming_validation_matches_the_whole_frame_across_files_and_batches(tmp_path):
    from airflow_mlops.data.validation import validate_and_profile

    parts = _damaged()
    uris = []
    for i, part in enumerate(parts):
        uris.append(str(tmp_path / f"part-{i}.parquet"))
        part.to_parquet(uris[-1])
    whole = pd.concat(parts, ignore_index=True)
    kwargs = {
        "features": FEATURES,
        "numeric": ["x"],
        "target": "y",
        "window_end": "2026-01-04T00:00:00+00:00",
    }
    expected = validate_frame(whole, RICH, **kwargs, partitions=[{"uri": u, "rows": 60} for u in uris])
    report, files, view = validate_and_profile(
        uris, "parquet", RICH, batch_rows=25, **kwargs
    )  # 3 batches a file

    def window_level(rows):  # what a window-wide check concluded, wherever its offending rows are
        return [{k: r[k] for k in ("check", "column", "expected", "observed", "passed")} for r in rows]

    per_partition = {"partition rows"}  # checks that only a stream of several partitions has
    assert window_level(r for r in report.rows if r["check"] not in per_partition) == window_level(
        expected.rows
    )
    where = {(r["check"], r["column"]): (r["partition"], r["rows"]) for r in report.failed}
    assert where[("max", "x")] == ("part-0.parquet (1)", 1)
    assert where[("allowed values", "k")] == ("part-1.parquet (1)", 1)
    assert where[("unique", "id")] == ("part-2.parquet (2)", 2)
    assert where[("duplicate rows", "*")] == ("part-2.parquet (1)", 1)
    failed = {(r["check"], r["column"]): r["observed"] for r in report.failed}
    assert failed == {
        ("max", "x"): "99",
        ("null fraction", "x"): "0.005556",
        ("mean", "x"): "10.83",  # the 99 pulls it above 10
        ("allowed values", "k"): "1 other ('r')",
        ("unique", "id"): "2",  # the id copied from file 0, and the id of the copied row
        ("regex", "id"): "1 do not ('customer-9')",
        ("duplicate rows", "*"): "0.005556",
        ("quantile 0.5", "n"): failed[("quantile 0.5", "n")],  # ~100 (uniform 0-200): outside [60, 70]
        ("freshness", "ts"): "14.2 h old (newest 2026-01-03T09:50:00+00:00)",
    }
    assert 80 <= float(failed[("quantile 0.5", "n")]) <= 120
    assert [f["rows"] for f in files] == [60, 60, 60]
    assert view.get_column("x").to_summary_dict()["counts/n"] == 180


def test_streaming_validation_names_a_schema_change_a_corrupt_and_an_empty_file(tmp_path):
    from airflow_mlops.data.validation import validate_and_profile
    from airflow_mlops.errors import BadDataError

    kwargs = {"features": FEATURES, "numeric": ["x"], "target": "y"}
    good, renamed = tmp_path / "a.parquet", tmp_path / "b.parquet"
    _part(0).to_parquet(good)
    _part(1).rename(columns={"x": "x_value"}).to_parquet(renamed)
    report, _, _ = validate_and_profile([str(good), str(renamed)], "parquet", {}, **kwargs)
    # the renamed column: a failed contract check naming the partition that lacks it; the new name: a warning
    assert [(r["check"], r["column"], r["partition"], r["rows"]) for r in report.failed] == [
        ("column present", "x", "b.parquet", 60)
    ]
    assert [(r["check"], r["column"], r["partition"]) for r in report.warnings] == [
        ("extra column", "id", "a.parquet, b.parquet"),  # the spec ({}) names no id, n or ts
        ("extra column", "n", "a.parquet, b.parquet"),
        ("extra column", "ts", "a.parquet, b.parquet"),
        ("extra column", "x_value", "b.parquet"),
    ]

    corrupt = tmp_path / "c.parquet"
    corrupt.write_bytes(good.read_bytes()[:300])
    with pytest.raises(BadDataError, match=r"cannot read parquet partition .*c.parquet.*corrupt"):
        validate_and_profile([str(good), str(corrupt)], "parquet", {}, **kwargs)

    empty = tmp_path / "d.parquet"
    _part(2).iloc[:0].to_parquet(empty)
    report, files, _ = validate_and_profile([str(good), str(empty)], "parquet", {}, **kwargs)
    assert [(r["check"], r["observed"], r["partition"]) for r in report.failed] == [
        ("empty partitions", "1", "d.parquet")
    ]


def test_a_day_of_several_part_files_is_empty_only_when_all_of_them_are(tmp_path):
    """A Spark writer's day: a full part-00000 and a 0-row part-00001 of the same schema is a good day; a day
    whose every part file is empty fails, naming the day and its files."""
    from airflow_mlops.data.validation import validate_and_profile

    kwargs = {"features": FEATURES, "numeric": ["x"], "target": "y"}
    good_day, empty_day = tmp_path / "date=2026-01-10", tmp_path / "date=2026-01-11"
    good_day.mkdir()
    empty_day.mkdir()
    _part(0).to_parquet(good_day / "part-00000.parquet")
    _part(0).iloc[:0].to_parquet(good_day / "part-00001.parquet")
    _part(1).iloc[:0].to_parquet(empty_day / "part-00000.parquet")
    _part(1).iloc[:0].to_parquet(empty_day / "part-00001.parquet")
    good = [str(good_day / "part-00000.parquet"), str(good_day / "part-00001.parquet")]
    report, files, _ = validate_and_profile(good, "parquet", {}, **kwargs)
    assert report.failed == []
    assert [f["rows"] for f in files] == [60, 0]
    both = [*good, str(empty_day / "part-00000.parquet"), str(empty_day / "part-00001.parquet")]
    report, _, _ = validate_and_profile(both, "parquet", {}, **kwargs)
    assert [(r["check"], r["observed"], r["partition"]) for r in report.failed] == [
        ("empty partitions", "1", "2026-01-11 (part-00000.parquet, part-00001.parquet)")
    ]


def test_inferred_constraints_hold_for_the_window_size_they_will_check():
    """Proposed from a week, checked on single days (the drift monitor): min_rows and the mean and median
    bounds are sized for a day, so every stable day passes; a drifted day breaks the expectations only, which
    stop training but not the monitor."""
    import datetime as dt

    from airflow_mlops.data.profiling import profile_frame
    from airflow_mlops.data.validation import infer_constraints
    from airflow_mlops.tools.demo import make_day

    week = pd.concat([make_day(dt.date(2026, 1, d), 2000, drifted=False) for d in range(1, 8)], ignore_index=True)
    kwargs = {"features": ["age", "monthly_charges", "support_calls", "plan"], "numeric": ["age", "monthly_charges", "support_calls"], "target": "churned"}  # fmt: skip

    def check(constraints, day, **kw):
        return validate_frame(make_day(day, 2000, drifted=day >= dt.date(2026, 1, 22)), constraints, **kwargs, **kw)

    sized = infer_constraints(profile_frame(week), window_rows=2000)
    for d in range(8, 22):  # two stable weeks the proposal never saw
        report = check(sized, dt.date(2026, 1, d))
        assert report.failed == [], (d, report.table(only_failed=True))
    as_before = infer_constraints(profile_frame(week))  # sized for a week: a day has too few rows
    assert ("min rows", "*") in {(r["check"], r["column"]) for r in check(as_before, dt.date(2026, 1, 9)).failed}

    drifted = dt.date(2026, 1, 24)
    monitor = check(sized, drifted, expectations="warn")
    assert monitor.passed  # the contract holds: the monitor goes on to score drift
    assert ("mean", "monthly_charges") in {(r["check"], r["column"]) for r in monitor.expectations if not r["passed"]}
    training = check(sized, drifted)
    assert ("mean", "monthly_charges") in {(r["check"], r["column"]) for r in training.failed}


def test_a_long_value_is_cut_in_the_table_and_the_message():
    """A failing row's 10,000-character value shows as its first 80 characters and its length."""
    long_value = "x" * 10_000
    df = pd.DataFrame({"plan": ["basic"] * 5 + [long_value]})
    report = validate_frame(df, {"columns": {"plan": {"allowed": ["basic", "plus"]}}}, features=["plan"], numeric=[], target=None)
    with pytest.raises(DataValidationError) as err:
        report.raise_for_failures("a window")
    message = str(err.value)
    assert "x" * 60 in message
    assert "x" * 100 not in message
    assert "… (10,0" in message  # how long the value was
    assert max(len(line) for line in message.splitlines()) < 400


# one value per column rule of the spec, each asking for its check
RULE_SAMPLES = {
    "dtype": "float", "nullable": False, "max_null_fraction": 0.1, "min": 0, "max": 10, "allowed": [1.0],
    "unique": True, "regex": r"\d", "max_age_hours": 24, "mean": {"min": 0}, "quantiles": {"0.5": {"min": 0}},
}  # fmt: skip


def test_every_column_rule_of_the_spec_builds_a_registered_check_that_reports_it():
    """Each key of ``constraints.columns.<column>`` (the spec's ColumnConstraint) is read by a check kind of the
    registry, and that check's row is in the report: a rule the spec accepts is never silently unchecked.
    A new rule key without a check (or without a sample here) fails this test."""
    from airflow_mlops.data.validation import REGISTRY, StreamValidator
    from airflow_mlops.pipeline.spec.data import ColumnConstraint

    keys = set(ColumnConstraint.model_fields) - {"severity"}
    assert keys == set(RULE_SAMPLES)
    for key in sorted(keys):
        validator = StreamValidator(
            {"columns": {"x": {key: RULE_SAMPLES[key]}}}, features=[], numeric=[], target=None, window_end="2026-01-02"
        )
        built = [type(c) for c in validator.checks if c.scope == "column"]
        assert len(built) == 1, (key, built)
        assert built[0] in REGISTRY
        validator.update(pd.DataFrame({"x": [1.0, 2.0]}))
        rows = [r for r in validator.report().rows if r["column"] == "x" and r["check"] != "column present"]
        assert rows, key
        assert {r["check"].split(" ")[0] for r in rows} <= {built[0].name.split(" ")[0], "min", "max"}


def test_a_check_kind_registered_by_a_user_runs_on_every_feature_and_reports_its_rows():
    """The registry is the extension point: a subclass of Check with a name and a scope, registered, is built
    for every feature and its rows (the offending day named) join the report and its gate."""
    from airflow_mlops.data.validation import REGISTRY, Check, StreamValidator, register

    @register
    class NoNegativeZero(Check):
        name, scope = "no negative zero", "feature"

        def __init__(self, column, rule=None):
            super().__init__(column, rule)
            self.found = 0

        def update(self, batch):
            if batch.is_num:
                bad = int((np.signbit(batch.finite) & (batch.finite == 0)).sum())
                self.found += bad
                batch.part.count(self.name, self.column, bad)

        def report(self, v, out):
            self.add(v, out, "0", self.found, self.found == 0, key=self.name)

    try:
        validator = StreamValidator({}, features=["x"], numeric=["x"], target=None)
        validator.update(pd.DataFrame({"x": [1.0, 2.0]}), partition="2026-01-01")
        validator.update(pd.DataFrame({"x": [-0.0, 3.0]}), partition="2026-01-02")
        report = validator.report()
    finally:
        REGISTRY.remove(NoNegativeZero)
    (row,) = [r for r in report.rows if r["check"] == "no negative zero"]
    assert (row["passed"], row["partition"], row["rows"]) == (False, "2026-01-02 (1)", 1)
    assert row in report.failed
