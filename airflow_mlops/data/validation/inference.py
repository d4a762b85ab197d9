"""A constraints block proposed from a reference profile (``airflow-mlops infer-constraints``), for a person to
review before it goes into a spec."""

from __future__ import annotations

import math
from typing import Any


def infer_constraints(
    view: Any, *, slack: float = 0.1, max_levels: int = 50, window_rows: int | None = None,
    range_headroom: float = 1.0,
) -> dict[str, Any]:  # fmt: skip
    """A constraints block proposed from a reference profile, for a person to review before it goes into a
    spec: per column the dtype, nullability (or a null-fraction bound with headroom), a range widened by
    ``range_headroom`` of its span on each side (a sanity bound, not a distribution check), the allowed set
    of a categorical with at most ``max_levels`` values counted exactly (and of a 0/1 flag), uniqueness of a
    column whose values all differ, and bounds on the mean and median ``slack`` of a standard deviation wide.

    ``window_rows`` is the size of the windows the block will check (a day for the drift monitor, where the
    reference is often a week): ``min_rows`` and the mean and median bounds are sized for it, the latter at
    least 5 standard errors of a window that size wide, so stable data of that size passes. (Mean and median
    bounds are distribution expectations: they gate training only; the drift monitor reports them.)"""

    columns: dict[str, Any] = {}
    n_rows = 0
    for name, col in sorted(view.get_columns().items()):
        summary = col.to_summary_dict()
        n = int(summary.get("counts/n", 0))
        n_rows = max(n_rows, n)
        nulls = int(summary.get("counts/null", 0))
        types = {
            t: int(summary.get(f"types/{t}", 0))
            for t in ("integral", "fractional", "boolean", "string", "object")
        }
        rule: dict[str, Any] = {}
        present = {t for t, k in types.items() if k}
        if present == {"integral"}:
            rule["dtype"] = "integer"
        elif present <= {"integral", "fractional"} and present:
            rule["dtype"] = "float" if "fractional" in present else "integer"
        elif present == {"boolean"}:
            rule["dtype"] = "boolean"
        elif present == {"string"}:
            rule["dtype"] = "string"
        if nulls == 0:
            rule["nullable"] = False
        else:
            rule["max_null_fraction"] = round(min(1.0, (nulls / n) * 1.5 + 0.001), 4)
        lo, hi = summary.get("distribution/min"), summary.get("distribution/max")
        levels = _exact_levels(col, n - nulls)
        numeric = rule.get("dtype") in ("integer", "float") and lo is not None
        if rule.get("dtype") == "integer" and levels is not None and len(levels) <= 2:
            rule["allowed"] = sorted(int(float(v)) for v in levels)  # a flag, not a quantity
        elif numeric and math.isfinite(lo) and math.isfinite(hi):
            span = (hi - lo) or abs(hi) or 1.0
            # A range is a sanity bound of the contract (it gates every DAG, the drift monitor's too): wide
            # enough that a shifted distribution stays inside (that is drift, for the monitor to report),
            # narrow enough for a unit or encoding error to break it. Headroom: `range_headroom` of the span,
            # or the tail beyond the 1% / 99% quantiles if that is wider.
            q01, q99 = summary.get("distribution/q_01", lo), summary.get("distribution/q_99", hi)
            low = lo - max(range_headroom * span, q01 - lo)
            rule["min"] = _round(0.0 if lo >= 0 > low else low, rule["dtype"], down=True)  # >= 0 stays so
            rule["max"] = _round(hi + max(range_headroom * span, hi - q99), rule["dtype"], down=False)
            mean, std = summary.get("distribution/mean"), summary.get("distribution/stddev") or 0.0
            checked = max(1, window_rows or n)
            # 5 standard errors of a window of `checked` rows (the median's is ~1.25x the mean's)
            width = max(slack * (std or span), 5 * std / math.sqrt(checked))
            if mean is not None and math.isfinite(mean):
                rule["mean"] = {"min": round(mean - width, 6), "max": round(mean + width, 6)}
            median = summary.get("distribution/median")
            if median is not None and math.isfinite(median):
                half = max(slack * (std or span), 1.25 * 5 * std / math.sqrt(checked))
                rule["quantiles"] = {"0.5": {"min": round(median - half, 6), "max": round(median + half, 6)}}
        if rule.get("dtype") == "string":
            if levels is not None and len(levels) <= max_levels and len(levels) < (n - nulls):
                rule["allowed"] = sorted(levels)
            cardinality = summary.get("cardinality/est")
            if cardinality is not None and n - nulls > 100 and cardinality >= 0.99 * (n - nulls):
                rule["unique"] = True
        columns[name] = rule
    return _plain({"min_rows": max(1, int((window_rows or n_rows) * (1 - 3 * slack))), "columns": columns})


def _plain(obj: Any) -> Any:
    """NumPy scalars to Python numbers, so the block dumps as plain YAML."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return obj.item()
    return obj


def _exact_levels(col: Any, non_null: int) -> list[str] | None:
    """The distinct values of a column, when its frequent-items sketch counted every one exactly."""
    import whylogs_sketching as ds

    metric = col.get_metric("frequent_items")
    if metric is None or non_null <= 0:
        return None
    items = metric.frequent_strings.value.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
    exact = all(lb == ub for _, _, lb, ub in items) and sum(e for _, e, _, _ in items) == non_null
    return [str(i[0]) for i in items] if items and exact else None


def _round(value: float, dtype: str, *, down: bool) -> float | int:
    if dtype == "integer":
        return int(math.floor(value) if down else math.ceil(value))
    return round(value, 6)
