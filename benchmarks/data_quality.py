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
GROWTH = 0.0  # --growth: rows per day grow by this fraction a day (a business that grows)


def day_frame(i: int, rng: np.random.Generator, rows: int | None = None) -> tuple[str, pd.DataFrame]:
    day = START + dt.timedelta(days=i)
    weekly = 0.7 if day.weekday() >= 5 else 1.0
    n = rows or int(rng.integers(1500, 2500) * weekly * SCALE * (1 + GROWTH) ** i)
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


def faulty_days(kind: str, days: list[tuple[str, pd.DataFrame]], rng: np.random.Generator, trials: int):
    """(index, day, faulty frame) for ``trials`` random days of 30..89 with ``kind`` injected; the order of the
    random draws is part of the battery (data_quality_ge.py replays it with the same seed)."""
    for i in rng.choice(np.arange(30, 90), trials, replace=False):
        label, df = days[int(i)]
        yield int(i), label, inject(kind, label, df, rng, int(i))


def check(label: str, df: pd.DataFrame, history: list[dict]) -> tuple[list[tuple[str, str]], float]:
    from airflow_mlops.data.quality import QualityTracker

    started = time.perf_counter()
    tracker = QualityTracker(FEATURES, NUMERIC, {"event_time": EVENT}, history)
    tracker.update(df, label)
    found = [(r["check"], r["column"]) for r in tracker.check() if not r["passed"]]
    return found, time.perf_counter() - started


def profile(df: pd.DataFrame) -> tuple[float, object]:
    """(seconds, view): the whylogs profile of one partition, as the pipeline makes it."""
    from airflow_mlops.data.profiling import profile_schema, track_frame
    from airflow_mlops.data.whylogs_compat import import_whylogs

    import_whylogs()
    from whylogs.core import DatasetProfile

    started = time.perf_counter()
    prof = DatasetProfile(schema=profile_schema())
    track_frame(prof, df)
    view = prof.view()
    return time.perf_counter() - started, view


# -- the same days through whylogs' constraints -----------------------------------------------------------------
# Two suites, each built once from the reference window (days 0-29) and applied to each day's profile:
# "generated": whylogs' own generate_constraints_from_reference_profile on the merged reference profile;
# "by hand": the factories a user would pick for each fault kind, bounded by the reference days' extremes with
# the same factors as the history checks' defaults (rows and magnitudes within 3x, nulls +1 point). Static
# bounds: whylogs constraints have no notion of a history that moves with the days.


def whylogs_suites(reference: list[pd.DataFrame], views: list) -> dict[str, list]:
    from whylogs.core.constraints.factories import (
        distinct_number_in_range,
        frequent_strings_in_reference_set,
        mean_between_range,
        null_percentage_below_number,
        stddev_between_range,
    )
    from whylogs.core.constraints.metric_constraints import MetricConstraint, MetricsSelector
    from whylogs.experimental.constraints_generation import generate_constraints_from_reference_profile

    merged = views[0]
    for view in views[1:]:
        merged = merged.merge(view)
    rows = [len(df) for df in reference]
    lo_rows, hi_rows = min(rows) / 3, max(rows) * 3
    hand = [MetricConstraint(
        name=f"rows {lo_rows:.0f}..{hi_rows:.0f}", condition=lambda m: lo_rows <= m.n.value <= hi_rows,
        metric_selector=MetricsSelector(column_name=NUMERIC[0], metric_name="counts"),
    )]  # fmt: skip
    for col in FEATURES:
        worst = max(float(df[col].isna().mean()) for df in reference)
        hand.append(null_percentage_below_number(col, worst + 0.01))
    for col in NUMERIC:
        means = [float(df[col].mean()) for df in reference]
        hand.append(mean_between_range(col, min(means) / 3, max(means) * 3))
        hand.append(stddev_between_range(col, 1e-9, float("inf")))
    for col in FEATURES[len(NUMERIC):]:
        hand.append(distinct_number_in_range(col, 2, float("inf")))
        hand.append(frequent_strings_in_reference_set(col, {v for df in reference for v in df[col].dropna().unique()}))
    return {"generated": generate_constraints_from_reference_profile(merged, included_columns=FEATURES),
            "by hand": hand}  # fmt: skip


def failed_constraints(suite: list, view: object) -> list[str]:
    from whylogs.core.constraints import ConstraintsBuilder

    constraints = ConstraintsBuilder(dataset_profile_view=view).add_constraints(list(suite)).build()
    return [r.name for r in constraints.generate_constraints_report() if r.failed]


def main() -> None:
    from airflow_mlops.data.quality import QualityTracker

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10, help="random days per fault kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=1, help="rows per day x this (1: 1,500-2,500)")
    parser.add_argument("--growth", type=float, default=0.0, help="rows per day grow by this fraction a day")
    parser.add_argument("--no-timing", action="store_true", help="detection only (skip the cost passes)")
    parser.add_argument("--ours-only", action="store_true", help="with --no-timing: skip whylogs' constraints")
    args = parser.parse_args()
    global SCALE, GROWTH
    SCALE, GROWTH = args.scale, args.growth
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
    suites = {} if args.no_timing and args.ours_only else whylogs_suites(
        [df for _, df in days[:30]], [profile(df)[1] for _, df in days[:30]]
    )  # fmt: skip
    false_alarms: list[tuple[str, str, str]] = []
    suite_alarms: dict[str, list[str]] = {name: [] for name in suites}
    for i in range(30, 90):
        label, df = days[i]
        found, _ = check(label, df, history(i))
        false_alarms += [(label, *f) for f in found]
        view = profile(df)[1] if suites else None
        for name, suite in suites.items():
            suite_alarms[name] += [f"{label} {c}" for c in failed_constraints(suite, view)]
    print(f"clean days: 60, false alarms: {len(false_alarms)} {false_alarms}")
    for name, alarms in suite_alarms.items():
        days_alarmed = len({a[:10] for a in alarms})
        kinds = sorted({a[11:] for a in alarms})
        print(f"whylogs constraints ({name}, {len(suites[name])} constraints): false alarms on {days_alarmed} of 60 "
              f"clean days; failing: {kinds[:6]}{' ...' if len(kinds) > 6 else ''}")  # fmt: skip

    # cost: per clean day, in the pipeline's order on one fresh frame (as a batch is read): the data contract
    # (not timed: it runs with or without the history checks), the history checks, the whylogs profile; three
    # passes after a warm-up pass, the median of each day's three
    from airflow_mlops.data.validation import StreamValidator

    if args.no_timing:
        return _faults(args, days, rng, history, suites, suite_alarms)
    check_s, profile_s = np.zeros((3, 60)), np.zeros((3, 60))
    for p in range(4):
        for k, i in enumerate(range(30, 90)):
            label, df = days[i]
            fresh = df.copy(deep=True)
            StreamValidator({}, features=FEATURES, numeric=NUMERIC, target=None).update(fresh, partition=label, source=label)
            c = check(label, fresh, history(i))[1]
            pr = profile(fresh)[0]
            if p:
                check_s[p - 1, k], profile_s[p - 1, k] = c, pr
    check_s, profile_s = np.median(check_s, axis=0), np.median(profile_s, axis=0)
    print(f"cost: history checks {check_s.mean() * 1000:.2f} ms per day, whylogs profiling "
          f"{profile_s.mean() * 1000:.1f} ms per day: {check_s.sum() / profile_s.sum():.1%} of profiling "
          f"(per day: median {np.median(check_s / profile_s):.1%}, max {np.max(check_s / profile_s):.1%})")  # fmt: skip

    _faults(args, days, rng, history, suites, suite_alarms)


def _faults(args, days, rng, history, suites, suite_alarms) -> None:
    clean_failures = {name: {a[11:] for a in alarms} for name, alarms in suite_alarms.items()}
    print("| fault | expected finding | detected | other findings | whylogs generated | whylogs by hand |")
    print("|---|---|---|---|---|---|")
    for kind in KINDS:
        hits, others = 0, []
        caught = {name: 0 for name in suites}
        for i, label, faulty in faulty_days(kind, days, rng, args.trials):
            found, _ = check(label, faulty, history(i))
            hits += EXPECTED[kind] in found
            others += [f for f in found if f != EXPECTED[kind]]
            view = profile(faulty)[1] if suites else None
            for name, suite in suites.items():  # caught: a constraint that no clean day failed fails here
                caught[name] += bool(set(failed_constraints(suite, view)) - clean_failures[name])
        check_name, column = EXPECTED[kind]
        shown = ", ".join(sorted({f"{c} {col}" for c, col in others})) or "-"
        theirs = " | ".join(f"{caught[name]} / {args.trials}" for name in suites) or "- | -"
        print(f"| {kind} | {check_name} {column} | {hits} / {args.trials} | {shown} | {theirs} |")


if __name__ == "__main__":
    main()
