"""Data quality learned from history: each day against its nearest clean days, whatever the declared ranges."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.data.quality import QualityTracker, load_history, save_records

FEATURES = ["temperature", "amount", "plan"]
NUMERIC = ["temperature", "amount"]
START = dt.date(2026, 3, 1)


def _day(i: int, rows: int | None = None, seed: int | None = None) -> tuple[str, pd.DataFrame]:
    day = START + dt.timedelta(days=i)
    rng = np.random.default_rng(seed if seed is not None else i)
    n = rows if rows is not None else int(rng.integers(900, 1100))
    stamps = pd.Timestamp(day, tz="UTC") + pd.to_timedelta(rng.uniform(0, 86_399, n), unit="s")
    return day.isoformat(), pd.DataFrame({
        "temperature": rng.normal(50, 5, n), "amount": rng.lognormal(3, 0.5, n),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]), "event_ts": stamps,
    })  # fmt: skip


def _history(days: int = 14) -> list[dict]:
    tracker = QualityTracker(FEATURES, NUMERIC, None, [])
    for i in range(days):
        tracker.update(*reversed(_day(i)))
    return list(tracker.records().values())


def _check(label: str, df: pd.DataFrame, history: list[dict], **quality) -> list[dict]:
    tracker = QualityTracker(FEATURES, NUMERIC, quality or None, history)
    tracker.update(df, label)
    return tracker.check()


def _failed(rows: list[dict]) -> list[tuple[str, str, str]]:
    return [(r["check"], r["column"], r["partition"]) for r in rows if not r["passed"]]


def test_clean_days_pass_every_check_against_their_history():
    history = _history()
    for i in range(14, 30):  # 16 new clean days, one at a time
        label, df = _day(i)
        rows = _check(label, df, history)
        assert {r["check"] for r in rows} >= {"quality: volume", "quality: nulls", "quality: scale"}
        assert _failed(rows) == [], (label, [r for r in rows if not r["passed"]])


@pytest.mark.parametrize(
    ("fault", "check", "column"),
    [
        ("stuck sensor", "quality: stuck", "temperature"),
        ("20x the rows", "quality: volume", "*"),
        ("a twentieth of the rows", "quality: volume", "*"),
        ("unit change x1000", "quality: scale", "amount"),
        ("null spike", "quality: nulls", "temperature"),
        ("new categories", "quality: new categories", "plan"),
        ("one category only", "quality: stuck", "plan"),
    ],
)  # fmt: skip
def test_each_fault_inside_the_declared_ranges_is_named_with_its_day_band_and_value(fault, check, column):
    label, df = _day(20)
    rng = np.random.default_rng(0)
    if fault == "stuck sensor":
        df["temperature"] = 48.5
    elif fault == "20x the rows":
        label, df = _day(20, rows=20_000)
    elif fault == "a twentieth of the rows":
        label, df = _day(20, rows=50)
    elif fault == "unit change x1000":
        df["amount"] *= 1000
    elif fault == "null spike":
        df.loc[rng.random(len(df)) < 0.3, "temperature"] = np.nan
    elif fault == "new categories":
        df.loc[rng.random(len(df)) < 0.2, "plan"] = "trial"
    elif fault == "one category only":
        df["plan"] = "basic"
    rows = _check(label, df, _history())
    assert _failed(rows) == [(check, column, label)]
    (row,) = [r for r in rows if not r["passed"]]
    assert "usual" in row["expected"] or "never seen" in row["expected"] or "varies" in row["expected"], row
    assert row["observed"] not in ("", None)


def test_event_times_outside_their_own_day_are_named_per_partition():
    label, df = _day(20)
    df.loc[: len(df) // 2, "event_ts"] -= pd.Timedelta(days=2)  # half the rows belong to another day
    rows = _check(label, df, _history(), event_time={"column": "event_ts", "tolerance_hours": 1})
    assert _failed(rows) == [("quality: event time", "event_ts", label)]
    (row,) = [r for r in rows if not r["passed"]]
    assert row["observed"].startswith(f"{len(df) // 2 + 1} of {len(df)} outside")
    assert row["expected"] == f"inside {label} +/- 1 h"
    clean_label, clean = _day(21)
    assert _failed(_check(clean_label, clean, _history(), event_time={"column": "event_ts"})) == []
    clean["event_ts"] -= pd.Timedelta(minutes=30)  # late events just past midnight: within the tolerance
    assert _failed(_check(clean_label, clean, _history(), event_time={"column": "event_ts", "tolerance_hours": 1})) == []
    assert _failed(_check(clean_label, clean, _history(), event_time={"column": "event_ts"}))


def test_without_history_the_first_window_checks_its_days_against_each_other():
    tracker = QualityTracker(FEATURES, NUMERIC, None, [])
    for i in range(7):
        label, df = _day(i)
        if i == 3:
            df["amount"] *= 1000
        tracker.update(df, label)
    assert _failed(tracker.check()) == [("quality: scale", "amount", "2026-03-04")]


def test_too_little_history_waits_and_says_so():
    rows = _check(*_day(20), _history(days=3))
    assert [(r["check"], r["passed"], r["observed"]) for r in rows] == [("quality history", True, "3 day(s)")]


def test_a_stored_broken_day_is_never_another_days_reference(tmp_path):
    root = str(tmp_path)
    history = {r["day"]: r for r in _history(days=6)}
    label, broken = _day(6)
    broken["amount"] *= 1000
    tracker = QualityTracker(FEATURES, NUMERIC, None, list(history.values()))
    tracker.update(broken, label)
    findings = tracker.check()
    save_records(root, "p", {**history, **tracker.records()}, findings)
    stored = {r["day"]: r for r in load_history(root, "p")}
    assert stored[label]["anomalies"] == ["quality: scale amount"]
    assert all(not stored[d]["anomalies"] for d in history)
    # the next day is checked against the six clean days only (the broken day would widen the band)
    next_label, next_day = _day(7)
    after = QualityTracker(FEATURES, NUMERIC, {"min_history": 7}, list(stored.values()))
    after.update(next_day, next_label)
    assert [r["observed"] for r in after.check()] == ["6 day(s)"]


@pytest.mark.parametrize(
    ("plan", "stamps"),
    [
        ("object", "naive"),  # numpy objects; event times without a zone are read as UTC
        ("category", "text"),  # pandas categories; ISO text with its offset
        ("string[python]", "other_zone"),  # Python-backed strings; a zone other than UTC
    ],
)
def test_a_days_record_is_the_same_whatever_the_columns_storage(plan, stamps):
    """Arrow-backed text (pandas' default) is counted by Arrow, other text by pandas; event times are compared
    in UTC whatever their type: the record and the findings do not depend on how the reader typed a column."""
    label, df = _day(20)
    df.loc[df.index[::7], "plan"] = None
    df.loc[df.index[:40], "event_ts"] -= pd.Timedelta(days=1)
    event = {"event_time": {"column": "event_ts"}}

    def record(frame):
        tracker = QualityTracker(FEATURES, NUMERIC, event, _history())
        tracker.update(frame, label)
        return tracker.records()[label], _failed(tracker.check()), tracker.check()[0]["observed"]

    other = df.assign(plan=df["plan"].astype(plan))
    if stamps == "naive":
        other["event_ts"] = df["event_ts"].dt.tz_localize(None)
    elif stamps == "text":
        other["event_ts"] = df["event_ts"].dt.tz_convert("Asia/Kolkata").map(pd.Timestamp.isoformat)
    else:
        other["event_ts"] = df["event_ts"].dt.tz_convert("America/New_York")
    expected = record(df)
    assert expected[0]["columns"]["plan"]["null_fraction"] == pytest.approx(len(df.index[::7]) / len(df))
    assert expected[1] == [("quality: event time", "event_ts", label), ("quality: nulls", "plan", label)]
    assert expected[2].startswith(f"40 of {len(df)} outside")
    assert record(other) == expected


def test_a_steadily_growing_volume_is_followed_and_a_collapse_below_its_trend_is_named():
    """Rows that grow 4% a day for 20 days: the band follows the trend (a flat band over the same days is so
    wide that a day at 1/12 of its expected rows would pass, which this test checks too)."""
    from airflow_mlops.data import quality

    tracker = QualityTracker(FEATURES, NUMERIC, None, [])
    for i in range(20):
        tracker.update(*reversed(_day(i, rows=round(1000 * 1.04**i))))
    history = list(tracker.records().values())
    expected = round(1000 * 1.04**20)
    label, usual = _day(20, rows=expected)
    assert _failed(_check(label, usual, history)) == []
    label, collapsed = _day(20, rows=expected // 12)
    (row,) = [r for r in _check(label, collapsed, history) if r["check"] == "quality: volume"]
    assert not row["passed"]
    assert "trend +4.0% a day" in row["expected"]
    usual_shown = int(row["expected"].split("(usual ")[1].split(",")[0])
    assert usual_shown == pytest.approx(expected, rel=0.1)  # today's level on the trend, not the window's median
    points = [(quality._ordinal(r["day"]), np.log(r["rows"])) for r in history]
    flat_level, flat_spread = quality._robust([v for _, v in points])
    width = 4.0 * flat_spread + np.log(3.0)
    assert np.exp(flat_level - width) <= expected // 12  # without the trend, the collapse is inside the band


@pytest.mark.parametrize("growth", [0.0, 0.03])
def test_the_benchmarks_fault_battery_is_caught_without_false_alarms(growth):
    """benchmarks/data_quality.py, two random days per fault kind (the whole battery is in RESULTS.md): no
    finding on the 60 clean days, and every kind found on every faulty day, steady or growing volume."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[3] / "benchmarks" / "data_quality.py"
    out = subprocess.run(
        [sys.executable, str(script), "--trials", "2", "--seed", "3", "--growth", str(growth), "--no-timing", "--ours-only"],
        check=True, capture_output=True, text=True,
    ).stdout.splitlines()  # fmt: skip
    assert out[0] == "clean days: 60, false alarms: 0 []"
    table = [line.split("|") for line in out if line.startswith("| ") and "/" in line]
    assert [(cells[1].strip(), cells[3].strip()) for cells in table] == [
        (kind, "2 / 2") for kind in ("stuck", "volume_up", "volume_down", "unit", "nulls", "new_categories", "collapsed", "event_time")
    ]
