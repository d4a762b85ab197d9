"""Row-level contract faults: which failed checks single rows fail, and per row the first rule it breaks (what
``scoring.on_bad_rows: quarantine`` sets aside and writes to the quarantine file)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

ROW_CHECKS = frozenset({"not null", "min", "max", "allowed values", "regex", "numeric dtype", "finite", "range"})
"""The contract's checks that a single row can fail: ``scoring.on_bad_rows: quarantine`` sets such rows aside."""


def row_level(row: dict[str, Any], constraints: dict[str, Any]) -> bool:
    """Whether a failed check is one that single rows fail (a quarantine can set them aside): the checks in
    :data:`ROW_CHECKS`, and a numeric ``dtype`` (a number read as text converts row by row)."""
    if row["check"] in ROW_CHECKS:
        return True
    rule = ((constraints or {}).get("columns") or {}).get(row["column"]) or {}
    return row["check"] == "dtype" and rule.get("dtype") in ("float", "number", "integer")


def row_faults(df: pd.DataFrame, constraints: dict[str, Any], numeric: list[str]) -> pd.Series:
    """Per row, the first contract rule it breaks (``"min amount"``), or None: what a quarantine file says.
    A numeric column read as text (``'15,765.11'``) is converted in place; a value that is not a number is a
    fault of its row only."""
    import numpy as np
    import pandas as pd
    from pandas.api import types as t

    reasons = pd.Series([None] * len(df), index=df.index, dtype=object)

    def mark(mask: Any, reason: str) -> None:
        mask = pd.Series(mask, index=df.index).fillna(False).astype(bool) & reasons.isna()
        reasons[mask] = reason

    rules = (constraints or {}).get("columns") or {}
    numeric_rules = [
        c for c, r in rules.items()
        if r.get("min") is not None or r.get("max") is not None or r.get("dtype") in ("float", "number", "integer")
    ]  # fmt: skip
    for col in dict.fromkeys([*numeric, *numeric_rules]):
        if col in df.columns and not (t.is_numeric_dtype(df[col]) and not t.is_bool_dtype(df[col])):
            raw = df[col]
            df[col] = pd.to_numeric(raw, errors="coerce")
            mark(raw.notna() & df[col].isna(), f"numeric dtype {col}")
    for col in numeric:
        if col in df.columns:
            mark(np.isinf(df[col].to_numpy(dtype="float64", na_value=np.nan)), f"finite {col}")
    for col, rule in rules.items():
        if col not in df.columns:
            continue
        values = df[col]
        if rule.get("nullable") is False:
            mark(values.isna(), f"not null {col}")
        if rule.get("min") is not None and t.is_numeric_dtype(values):
            mark(values < rule["min"], f"min {col}")
        if rule.get("max") is not None and t.is_numeric_dtype(values):
            mark(values > rule["max"], f"max {col}")
        if rule.get("allowed") is not None:
            mark(values.notna() & ~values.isin(set(rule["allowed"])), f"allowed values {col}")
        if rule.get("regex"):
            mark(values.notna() & ~values.astype(str).str.fullmatch(rule["regex"]), f"regex {col}")
    return reasons
