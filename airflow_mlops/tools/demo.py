"""Demo data: daily Parquet partitions of a customer-churn problem, with drift injected from a known date.

From ``drift_from`` on, a price rise moves monthly charges up, the plan mix moves toward "basic", support
calls rise, and churn becomes more sensitive to price: covariate *and* concept drift, so a model retrained on
recent data beats the old champion there.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow_mlops import storage

log = logging.getLogger(__name__)

DEMO_START = dt.date(2026, 1, 1)
DEMO_DAYS = 31
DEMO_DRIFT_FROM = dt.date(2026, 1, 22)
PLANS = ["basic", "plus", "pro"]
REGIONS = ["north", "south", "east", "west", "central"]
PAYMENTS = ["card", "bank_transfer", "paypal", "invoice"]


def make_day(day: dt.date, rows: int, drifted: bool, seed: int = 0) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng([seed, day.toordinal()])
    plan_p = [0.55, 0.3, 0.15] if drifted else [0.35, 0.4, 0.25]
    plan = rng.choice(PLANS, size=rows, p=plan_p)
    region = rng.choice(REGIONS, size=rows, p=[0.25, 0.2, 0.2, 0.2, 0.15])
    payment = rng.choice(PAYMENTS, size=rows, p=[0.45, 0.25, 0.2, 0.1])
    age = np.clip(rng.normal(42, 13, rows), 18, 90).round().astype("int64")
    tenure = np.clip(rng.gamma(2.0, 12.0, rows), 0, 72).round().astype("int64")
    base = np.select([plan == "basic", plan == "plus"], [35.0, 65.0], 95.0)
    charges = base + rng.normal(0, 8, rows) + (22.0 if drifted else 0.0)
    calls = rng.poisson(2.6 if drifted else 1.4, rows).astype("int64")
    usage = np.round(rng.lognormal(2.3, 0.6, rows), 2)
    price_weight = 0.065 if drifted else 0.015
    logit = (
        -1.2
        + price_weight * (charges - 60)
        + 0.45 * (calls - 1.5)
        - 0.045 * (tenure - 24)
        - 0.01 * (age - 42)
        + np.where(payment == "invoice", 0.6, 0.0)
        - np.where(plan == "pro", 0.5, 0.0)
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    ids = [f"{day:%Y%m%d}-{i:06d}" for i in range(rows)]
    return pd.DataFrame(
        {
            "customer_id": ids,
            "event_date": pd.Timestamp(day),
            "age": age,
            "tenure_months": tenure,
            "monthly_charges": np.round(charges, 2),
            "support_calls": calls,
            "data_usage_gb": usage,
            "plan": plan,
            "region": region,
            "payment_method": payment,
            "churned": churned,
        }
    )


def partition_path(root: str, day: dt.date, dataset: str = "demo_churn") -> str:
    return storage.join(root, dataset, f"date={day.isoformat()}", "part-0.parquet")


def generate(
    root: str,
    start: dt.date = DEMO_START,
    days: int = DEMO_DAYS,
    drift_from: dt.date | None = DEMO_DRIFT_FROM,
    rows_per_day: int = 2000,
    seed: int = 0,
    dataset: str = "demo_churn",
) -> list[str]:
    """Write one Parquet file per day (atomically); existing identical files are rewritten identically."""
    import io

    written = []
    for i in range(days):
        day = start + dt.timedelta(days=i)
        df = make_day(day, rows_per_day, drifted=drift_from is not None and day >= drift_from, seed=seed)
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        uri = partition_path(root, day, dataset)
        storage.write_bytes_atomic(uri, buf.getvalue())
        written.append(uri)
    log.info("wrote %d daily partitions under %s", len(written), root)
    return written
