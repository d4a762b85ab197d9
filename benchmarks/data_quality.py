"""Data quality learned from history: detection per fault kind, false alarms on clean days, and the extra cost
of the history checks against whylogs profiling of the same partitions, in one run.

Generated data (no demo data): 60 clean days of a sensor table (temperature, pressure, amount, a plan
category, a region category, an event time), each day 1,500-2,500 rows with a weekly volume pattern. Then
each fault kind is injected on `--trials` random days (a fresh copy each time) and the day is checked against
the 30 days before it, as the pipeline checks a new partition:

stuck (one value), volume_up (20x rows), volume_down (1/20 of the rows), unit (x1000), nulls (30% nulls),
new_categories (20% of a category's values never seen), collapsed (one category), event_time (the day's
events stamped a day later).

    .venv/bin/python benchmarks/data_quality.py [--trials 10] [--seed 0] [--scale 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
import pandas as pd

FEATURES = ["temperature", "pressure", "amount", "plan", "region"]
NUMERIC = ["temperature", "pressure", "amount"]
EVENT = {"column": "event_ts", "tolerance_hours": 1}
START = dt.date(2026, 1, 1)
KINDS = ["stuck", "volume_up", "volume_down", "unit", "nulls", "new_categories", "collapsed", "event_time"]
EXPECTED = {
    "stuck": ("quality: stuck", "temperature"), "volume_up": ("quality: volume", "*"),
    "volume_down": ("quality: volume", "*"), "unit": ("quality: scale", "amount"),
    "nulls": ("quality: nulls", "pressure"), "new_categories": ("quality: new categories", "region"),
    "collapsed": ("quality: stuck", "plan"), "event_time": ("quality: event time", "event_ts"),
}  # fmt: skip


SCALE = 1  # --scale: rows per day x this


def day_frame(i: int, rng: np.random.Generator, rows: int | None = None) -> tuple[str, pd.DataFrame]:
    day = START + dt.timedelta(days=i)
    weekly = 0.7 if day.weekday() >= 5 else 1.0
    n = rows or int(rng.integers(1500, 2500) * weekly * SCALE)
    stamps = pd.Timestamp(day, tz="UTC") + pd.to_timedelta(rng.uniform(0, 86_399, n), unit="s")
    drift = 1 + 0.002 * i  # a slow, legitimate drift of the magnitudes
    return day.isoformat(), pd.DataFrame({
        "temperature": rng.normal(20 * drift, 3, n), "pressure": rng.normal(1013, 8, n),
        "amount": rng.lognormal(3, 0.6, n) * drift,
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1]),
        "region": rng.choice(["north", "south", "east", "west", "central"], n),
        "event_ts": stamps,
    })  # fmt: skip


def inject(kind: str, label: str, df: pd.DataFrame, rng: np.random.Generator, i: int) -> pd.DataFrame:
    df = df.copy()
    if kind == "stuck":
        df["temperature"] = float(df["temperature"].iloc[0])
    elif kind == "volume_up":
        df = pd.concat([day_frame(i, rng, rows=len(df) * 20)[1]])
    elif kind == "volume_down":
        df = df.iloc[: max(len(df) // 20, 10)]
    elif kind == "unit":
        df["amount"] *= 1000
    elif kind == "nulls":
        df.loc[rng.random(len(df)) < 0.3, "pressure"] = np.nan
    elif kind == "new_categories":
        df.loc[rng.random(len(df)) < 0.2, "region"] = rng.choice(["north-east", "n/a", "NORTH"], 1)[0]
    elif kind == "collapsed":
        df["plan"] = "basic"
    elif kind == "event_time":
        df["event_ts"] += pd.Timedelta(days=1)
    return df


def check(label: str, df: pd.DataFrame, history: list[dict]) -> tuple[list[tuple[str, str]], float]:
    from airflow_mlops.data.quality import QualityTracker

    started = time.perf_counter()
    tracker = QualityTracker(FEATURES, NUMERIC, {"event_time": EVENT}, history)
    tracker.update(df, label)
    found = [(r["check"], r["column"]) for r in tracker.check() if not r["passed"]]
    return found, time.perf_counter() - started


def profile_seconds(df: pd.DataFrame) -> float:
    from airflow_mlops.data.profiling import profile_schema, track_frame
    from airflow_mlops.data.whylogs_compat import import_whylogs

    import_whylogs()
    from whylogs.core import DatasetProfile

    started = time.perf_counter()
    profile = DatasetProfile(schema=profile_schema())
    track_frame(profile, df)
    profile.view()
    return time.perf_counter() - started


def main() -> None:
    from airflow_mlops.data.quality import QualityTracker

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10, help="random days per fault kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=1, help="rows per day x this (1: 1,500-2,500)")
    args = parser.parse_args()
    global SCALE
    SCALE = args.scale
    rng = np.random.default_rng(args.seed)
    days = [day_frame(i, rng) for i in range(90)]
    records: dict[str, dict] = {}
    tracker = QualityTracker(FEATURES, NUMERIC, {"event_time": EVENT}, [])
    for label, df in days:
        tracker.update(df, label)
    for label, record in tracker.records().items():
        records[label] = {**record, "anomalies": []}
    labels = [label for label, _ in days]

    def history(i: int) -> list[dict]:
        return [records[labels[j]] for j in range(max(0, i - 30), i)]

    # false alarms: days 30..89 (60 clean days), each against the 30 before it
    false_alarms, check_s, profile_s = [], 0.0, 0.0
    for i in range(30, 90):
        label, df = days[i]
        found, seconds = check(label, df, history(i))
        check_s += seconds
        profile_s += profile_seconds(df)
        false_alarms += [(label, *f) for f in found]
    print(f"clean days: 60, false alarms: {len(false_alarms)} {false_alarms}")
    print(f"cost: history checks {check_s / 60 * 1000:.1f} ms per day, whylogs profiling {profile_s / 60 * 1000:.1f} ms "
          f"per day: {check_s / profile_s:.1%} of profiling")  # fmt: skip

    print("| fault | expected finding | detected | other findings |")
    print("|---|---|---|---|")
    for kind in KINDS:
        hits, others = 0, []
        for i in rng.choice(np.arange(30, 90), args.trials, replace=False):
            label, df = days[int(i)]
            found, _ = check(label, inject(kind, label, df, rng, int(i)), history(int(i)))
            hits += EXPECTED[kind] in found
            others += [f for f in found if f != EXPECTED[kind]]
        check_name, column = EXPECTED[kind]
        shown = ", ".join(sorted({f"{c} {col}" for c, col in others})) or "-"
        print(f"| {kind} | {check_name} {column} | {hits} / {args.trials} | {shown} |")


if __name__ == "__main__":
    main()
