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

    def add(self, check: str, column: str, expected: str, observed: Any, passed: bool) -> None:
        self.rows.append(
            {
                "check": check,
                "column": column,
                "expected": expected,
                "observed": fmt(observed),
                "passed": passed,
            }
        )

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if not r["passed"]]

    @property
    def passed(self) -> bool:
        return not self.failed

    def table(self, only_failed: bool = False) -> str:
        rows = self.failed if only_failed else self.rows
        return format_table(
            [
                (r["check"], r["column"], r["expected"], r["observed"], "PASS" if r["passed"] else "FAIL")
                for r in rows
            ],
            HEADER,
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
    if max_rows:
        report.add("max rows", "*", f"<= {max_rows}", n, n <= max_rows)

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

    for col, rule in columns.items():
        if col not in df.columns:
            continue
        s = df[col]
        nulls = int(s.isna().sum())
        if rule.get("dtype"):
            report.add("dtype", col, rule["dtype"], str(s.dtype), _dtype_matches(s, rule["dtype"]))
        if rule.get("nullable") is False:
            report.add("not null", col, "0 nulls", nulls, nulls == 0)
        if rule.get("max_null_fraction") is not None:
            frac = nulls / n
            report.add(
                "null fraction",
                col,
                f"<= {rule['max_null_fraction']}",
                frac,
                frac <= rule["max_null_fraction"],
            )
        if rule.get("min") is not None or rule.get("max") is not None:
            if t.is_numeric_dtype(s) and not t.is_bool_dtype(s):
                finite = s[~s.isin([math.inf, -math.inf])].dropna()
                lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (None, None)
                if rule.get("min") is not None:
                    report.add("min", col, f">= {fmt(rule['min'])}", lo, lo is None or lo >= rule["min"])
                if rule.get("max") is not None:
                    report.add("max", col, f"<= {fmt(rule['max'])}", hi, hi is None or hi <= rule["max"])
            else:
                report.add("range", col, "a numeric column", str(s.dtype), False)
        if rule.get("allowed") is not None:
            allowed = set(rule["allowed"])
            bad = s.dropna()[~s.dropna().isin(allowed)]
            shown = ", ".join(map(repr, sorted(map(str, bad.unique()))[:5]))
            report.add(
                "allowed values", col, f"in {sorted(map(str, allowed))}",
                f"{len(bad)} other ({shown})" if len(bad) else 0, bad.empty,
            )  # fmt: skip
        if rule.get("unique"):
            dups = int(s.dropna().duplicated().sum())
            report.add("unique", col, "0 duplicates", dups, dups == 0)
    return report
