"""Data validation: the spec's constraints checked against a window's data.

Every check yields a row (check, column, expected, observed, passed); the failed rows become the message of
the quality-gate error, so the first lines of a failed task's log say exactly what broke.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.errors import DataValidationError
from airflow_mlops.tables import fmt, format_table

if TYPE_CHECKING:
    import pandas as pd

HEADER = ("check", "column", "expected", "observed", "result")


@dataclass
class ValidationReport:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self, check: str, column: str, expected: str, observed: Any, passed: bool, severity: str = "fail"
    ) -> None:
        self.rows.append(
            {
                "check": check,
                "column": column,
                "expected": expected,
                "observed": fmt(observed),
                "passed": passed,
                "severity": severity,
            }
        )

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Failed checks whose severity is ``fail``: these stop the pipeline."""
        return [r for r in self.rows if not r["passed"] and r.get("severity", "fail") == "fail"]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """Failed checks whose severity is ``warn``: logged and reported, the pipeline goes on."""
        return [r for r in self.rows if not r["passed"] and r.get("severity") == "warn"]

    @property
    def passed(self) -> bool:
        return not self.failed

    def table(self, only_failed: bool = False) -> str:
        rows = self.failed if only_failed else self.rows
        return format_table(
            [(r["check"], r["column"], r["expected"], r["observed"], _verdict(r)) for r in rows], HEADER
        )

    def raise_for_failures(self, what: str) -> None:
        if self.passed:
            return
        raise DataValidationError(
            f"data validation failed for {what}: {len(self.failed)} of {len(self.rows)} checks failed\n"
            f"{self.table(only_failed=True)}\n"
            "Fix the data upstream (or the spec's constraints if the data is right), then clear this task.",
            rows=self.failed,
        )


def _verdict(row: dict[str, Any]) -> str:
    if row["passed"]:
        return "PASS"
    return "WARN" if row.get("severity") == "warn" else "FAIL"


def _dtype_matches(series: pd.Series, dtype: str) -> bool:
    from pandas.api import types as t

    if dtype == "integer":
        return t.is_integer_dtype(series)
    if dtype == "float":
        return t.is_float_dtype(series)
    if dtype == "number":
        return t.is_numeric_dtype(series) and not t.is_bool_dtype(series)
    if dtype == "boolean":
        return t.is_bool_dtype(series)
    if dtype == "datetime":
        return t.is_datetime64_any_dtype(series)
    if dtype == "string":
        if t.is_string_dtype(series):
            non_null = series.dropna()
            return bool(non_null.map(lambda v: isinstance(v, str)).all()) if len(non_null) else True
        return False
    raise ValueError(f"unknown dtype {dtype!r}")


def validate_frame(
    df: pd.DataFrame,
    constraints: dict[str, Any],
    *,
    features: list[str],
    numeric: list[str],
    target: str | None,
    partitions: list[dict[str, Any]] | None = None,
    window_end: Any = None,
) -> ValidationReport:
    """Check ``df`` against the constraints; implicit checks guard what training relies on: no empty
    partition, every feature and the target present, no all-null feature, no null target, no inf in numeric
    features.
    """
    from pandas.api import types as t

    report = ValidationReport()
    n = len(df)
    if partitions:
        empty = [p["uri"] for p in partitions if not p.get("rows")]
        shown = ", ".join(empty[:3]) + (", ..." if len(empty) > 3 else "")
        report.add("empty partitions", "*", "0", f"{len(empty)} ({shown})" if empty else 0, not empty)
    min_rows = constraints.get("min_rows") or 1
    report.add("min rows", "*", f">= {min_rows}", n, n >= min_rows)
    max_rows = constraints.get("max_rows")
    table_severity = constraints.get("severity") or "fail"
    if max_rows:
        report.add("max rows", "*", f"<= {max_rows}", n, n <= max_rows, table_severity)

    columns: dict[str, dict[str, Any]] = dict(constraints.get("columns") or {})
    required = [*features, *([target] if target else [])]
    for col in [*required, *[c for c in columns if c not in required]]:
        present = col in df.columns
        report.add("column present", col, "present", "present" if present else "missing", present)
    if n == 0:
        return report

    for col in features:
        if col not in df.columns:
            continue
        nulls = int(df[col].isna().sum())
        report.add("not all null", col, f"< {n} nulls", nulls, nulls < n)
        if col in numeric:
            is_num = t.is_numeric_dtype(df[col]) and not t.is_bool_dtype(df[col])
            report.add("numeric dtype", col, "number", str(df[col].dtype), is_num)
            if is_num:
                infs = int(df[col].isin([math.inf, -math.inf]).sum())
                report.add("finite", col, "0 inf", infs, infs == 0)
    if target and target in df.columns:
        nulls = int(df[target].isna().sum())
        report.add("target not null", target, "0 nulls", nulls, nulls == 0)

    max_dup = constraints.get("max_duplicate_fraction")
    if max_dup is not None:
        dup_rows = int(df.duplicated().sum())
        report.add(
            "duplicate rows",
            "*",
            f"<= {fmt(max_dup)} of rows",
            dup_rows / n,
            dup_rows / n <= max_dup,
            table_severity,
        )

    for col, rule in columns.items():
        if col not in df.columns:
            continue
        s = df[col]
        nulls = int(s.isna().sum())
        severity = rule.get("severity") or "fail"

        def add(
            check: str, expected: str, observed: Any, passed: bool, col: str = col, severity: str = severity
        ) -> None:
            report.add(check, col, expected, observed, passed, severity)

        if rule.get("dtype"):
            add("dtype", rule["dtype"], str(s.dtype), _dtype_matches(s, rule["dtype"]))
        if rule.get("nullable") is False:
            add("not null", "0 nulls", nulls, nulls == 0)
        if rule.get("max_null_fraction") is not None:
            frac = nulls / n
            add("null fraction", f"<= {rule['max_null_fraction']}", frac, frac <= rule["max_null_fraction"])
        if rule.get("min") is not None or rule.get("max") is not None:
            if t.is_numeric_dtype(s) and not t.is_bool_dtype(s):
                finite = s[~s.isin([math.inf, -math.inf])].dropna()
                lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (None, None)
                if rule.get("min") is not None:
                    add("min", f">= {fmt(rule['min'])}", lo, lo is None or lo >= rule["min"])
                if rule.get("max") is not None:
                    add("max", f"<= {fmt(rule['max'])}", hi, hi is None or hi <= rule["max"])
            else:
                add("range", "a numeric column", str(s.dtype), False)
        if rule.get("allowed") is not None:
            allowed = set(rule["allowed"])
            bad = s.dropna()[~s.dropna().isin(allowed)]
            shown = ", ".join(map(repr, sorted(map(str, bad.unique()))[:5]))
            add(
                "allowed values",
                f"in {sorted(map(str, allowed))}",
                f"{len(bad)} other ({shown})" if len(bad) else 0,
                bad.empty,
            )
        if rule.get("unique"):
            dups = int(s.dropna().duplicated().sum())
            add("unique", "0 duplicates", dups, dups == 0)
        if rule.get("regex"):
            values = s.dropna().astype(str)
            bad = values[~values.str.fullmatch(rule["regex"])]
            shown = ", ".join(map(repr, bad.unique()[:3].tolist()))
            add(
                "regex",
                f"all match {rule['regex']}",
                f"{len(bad)} do not ({shown})" if len(bad) else 0,
                bad.empty,
            )
        if rule.get("max_age_hours") is not None:
            add(*_freshness(s, rule["max_age_hours"], window_end))
        stats = _numeric(s) if (rule.get("mean") or rule.get("quantiles")) else None
        if rule.get("mean"):
            value = float(stats.mean()) if stats is not None and len(stats) else None
            add("mean", _range_text(rule["mean"]), value, _within(value, rule["mean"]))
        for q, bounds in (rule.get("quantiles") or {}).items():
            value = float(stats.quantile(float(q))) if stats is not None and len(stats) else None
            add(f"quantile {q}", _range_text(bounds), value, _within(value, bounds))
    return report


def _numeric(s: pd.Series) -> pd.Series | None:
    from pandas.api import types as t

    if not t.is_numeric_dtype(s) or t.is_bool_dtype(s):
        return None
    return s[~s.isin([math.inf, -math.inf])].dropna().astype(float)


def _range_text(bounds: dict[str, float]) -> str:
    parts = [
        f">= {fmt(bounds['min'])}" if bounds.get("min") is not None else "",
        f"<= {fmt(bounds['max'])}" if bounds.get("max") is not None else "",
    ]
    return " and ".join(p for p in parts if p)


def _within(value: float | None, bounds: dict[str, float]) -> bool:
    if value is None:
        return False
    return (bounds.get("min") is None or value >= bounds["min"]) and (
        bounds.get("max") is None or value <= bounds["max"]
    )


def _freshness(s: pd.Series, max_age_hours: float, window_end: Any) -> tuple[str, str, Any, bool]:
    """The newest timestamp must be at most ``max_age_hours`` older than the window's end."""
    import pandas as pd

    from airflow_mlops.data import parse_time

    expected = f"newest within {fmt(max_age_hours)} h of the window end"
    if window_end is None:
        return "freshness", expected, "no window end to compare with", False
    stamps = pd.to_datetime(s, utc=True, errors="coerce").dropna()
    if stamps.empty:
        return "freshness", expected, "no parseable timestamp", False
    end = parse_time(window_end, "window_end")
    age = (pd.Timestamp(end) - stamps.max()).total_seconds() / 3600
    return "freshness", expected, f"{age:.1f} h old (newest {stamps.max().isoformat()})", age <= max_age_hours


def infer_constraints(view: Any, *, slack: float = 0.1, max_levels: int = 50) -> dict[str, Any]:
    """A constraints block proposed from a reference profile, for a person to review before it goes into a
    spec: per column the dtype, nullability (or a null-fraction bound with headroom), a range widened by
    ``slack`` of its span, the allowed set of a categorical with at most ``max_levels`` values counted
    exactly, uniqueness of a column whose values all differ, and bounds on the mean and median."""

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
        if rule.get("dtype") == "integer" and levels is not None and len(levels) <= 10:
            rule["allowed"] = sorted(int(float(v)) for v in levels)  # a code or a flag, not a quantity
        elif numeric and math.isfinite(lo) and math.isfinite(hi):
            span = (hi - lo) or abs(hi) or 1.0
            # headroom: slack of the span, or the tail beyond the 1% / 99% quantiles if that is wider (a
            # heavy tail's next maximum lands well past this one)
            q01, q99 = summary.get("distribution/q_01", lo), summary.get("distribution/q_99", hi)
            low = lo - max(slack * span, q01 - lo)
            rule["min"] = _round(0.0 if lo >= 0 > low else low, rule["dtype"], down=True)  # >= 0 stays so
            rule["max"] = _round(hi + max(slack * span, hi - q99), rule["dtype"], down=False)
            mean, std = summary.get("distribution/mean"), summary.get("distribution/stddev") or 0.0
            width = slack * (std or span)
            if mean is not None and math.isfinite(mean):
                rule["mean"] = {"min": round(mean - width, 6), "max": round(mean + width, 6)}
            median = summary.get("distribution/median")
            if median is not None and math.isfinite(median):
                rule["quantiles"] = {
                    "0.5": {"min": round(median - width, 6), "max": round(median + width, 6)}
                }
        if rule.get("dtype") == "string":
            if levels is not None and len(levels) <= max_levels and len(levels) < (n - nulls):
                rule["allowed"] = sorted(levels)
            cardinality = summary.get("cardinality/est")
            if cardinality is not None and n - nulls > 100 and cardinality >= 0.99 * (n - nulls):
                rule["unique"] = True
        columns[name] = rule
    return _plain({"min_rows": max(1, int(n_rows * (1 - 3 * slack))), "columns": columns})


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
