"""The fault battery of data_quality.py through Great Expectations: what a suite of static expectations catches.

Same generated days, same faulty days (the random draws are replayed with the same seed). Great Expectations
is not a dependency of airflow-mlops: run this in a virtualenv of its own, with the repository on the path
(data_quality.py's data needs only numpy and pandas):

    python -m venv /tmp/gx && /tmp/gx/bin/pip install great_expectations pandas pyarrow
    /tmp/gx/bin/python benchmarks/data_quality_ge.py [--trials 10] [--seed 0] [--growth 0.03]

The suite is built once from the reference window (days 0-29), as a user would write it for these faults,
with the same factors as the history checks' defaults: rows and column means within 3x of the reference
days' extremes, nulls at most the worst reference day's share plus 1 point (``mostly``), a non-zero
standard deviation, at least two distinct values per category, at most 5% of a category's rows outside the
values seen (``mostly``), and event times inside the partition's own day +/- 1 h, given to each run as suite
parameters (``$PARAMETER``). A fault counts as caught when an expectation that held on every clean day
fails on the faulty day.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data_quality
from data_quality import EVENT, FEATURES, KINDS, NUMERIC, day_frame, faulty_days

CATEGORIES = [c for c in FEATURES if c not in NUMERIC]


def suite_of(gx, reference: list[pd.DataFrame]):
    e = gx.expectations
    rows = [len(df) for df in reference]
    out = [e.ExpectTableRowCountToBeBetween(min_value=int(min(rows) / 3), max_value=int(max(rows) * 3))]
    for col in FEATURES:
        worst = max(float(df[col].isna().mean()) for df in reference)
        out.append(e.ExpectColumnValuesToNotBeNull(column=col, mostly=max(0.0, 1 - worst - 0.01)))
    for col in NUMERIC:
        means = [float(df[col].mean()) for df in reference]
        out.append(e.ExpectColumnMeanToBeBetween(column=col, min_value=min(means) / 3, max_value=max(means) * 3))
        out.append(e.ExpectColumnStdevToBeBetween(column=col, min_value=1e-9))
    for col in CATEGORIES:
        seen = sorted({v for df in reference for v in df[col].dropna().unique()})
        out.append(e.ExpectColumnUniqueValueCountToBeBetween(column=col, min_value=2))
        out.append(e.ExpectColumnValuesToBeInSet(column=col, value_set=seen, mostly=0.95))
    out.append(e.ExpectColumnValuesToBeBetween(
        column=EVENT["column"], min_value={"$PARAMETER": "day_start"}, max_value={"$PARAMETER": "day_end"},
    ))  # fmt: skip
    return out


def main() -> None:
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--growth", type=float, default=0.0, help="rows per day grow by this fraction a day")
    args = parser.parse_args()
    data_quality.GROWTH = args.growth
    rng = np.random.default_rng(args.seed)
    days = [day_frame(i, rng) for i in range(90)]

    context = gx.get_context(mode="ephemeral")
    batch = context.data_sources.add_pandas("days").add_dataframe_asset("day").add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(gx.ExpectationSuite(name="battery"))
    for expectation in suite_of(gx, [df for _, df in days[:30]]):
        suite.add_expectation(expectation)
    run = context.validation_definitions.add(gx.ValidationDefinition(name="battery", data=batch, suite=suite))
    tolerance = pd.Timedelta(hours=EVENT["tolerance_hours"])

    def failed(label: str, df: pd.DataFrame) -> set[str]:
        start = pd.Timestamp(label, tz="UTC")
        result = run.run(
            batch_parameters={"dataframe": df},
            expectation_parameters={"day_start": start - tolerance, "day_end": start + pd.Timedelta(days=1) + tolerance},
        )  # fmt: skip
        return {
            f"{r.expectation_config.type} {r.expectation_config.kwargs.get('column', '*')}"
            for r in result.results
            if not r.success
        }

    failed(*days[29])  # warm-up
    started = time.perf_counter()
    clean = [failed(label, df) for label, df in days[30:]]
    seconds = (time.perf_counter() - started) / 60
    alarmed = set().union(*clean)
    print(f"great_expectations {gx.__version__}: {len(suite.expectations)} expectations, {seconds * 1000:.0f} ms a "
          f"day; false alarms on {sum(bool(c) for c in clean)} of 60 clean days {sorted(alarmed)}")  # fmt: skip
    print("| fault | Great Expectations | failing expectations |")
    print("|---|---|---|")
    for kind in KINDS:
        caught, names = 0, set()
        for _, label, faulty in faulty_days(kind, days, rng, args.trials):
            new = failed(label, faulty) - alarmed
            caught += bool(new)
            names |= new
        print(f"| {kind} | {caught} / {args.trials} | {', '.join(sorted(names)) or '-'} |")


if __name__ == "__main__":
    main()
