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
    """Check one in-memory frame: the streaming validator fed a single batch (the same checks, same report)."""
    validator = StreamValidator(
        constraints, features=features, numeric=numeric, target=target, window_end=window_end
    )
    validator.update(df)
    return validator.report(partitions)


class _Column:
    """What the checks of one column need, accumulated batch by batch (a few numbers and samples each)."""

    SAMPLES = 5

    def __init__(self) -> None:
        self.nulls = 0
        self.dtypes: list[str] = []
        self.dtype_ok = True
        self.numeric_ok = True  # every batch had a numeric dtype
        self.infs = 0
        self.lo: float | None = None
        self.hi: float | None = None
        self.total = 0.0
        self.count = 0
        self.kll: Any = None
        self.not_allowed = 0
        self.not_allowed_seen: set[str] = set()
        self.regex_bad = 0
        self.regex_seen: list[str] = []
        self.hashes: list[Any] = []  # 64-bit hashes of the non-null values of a unique column, deduplicated
        self.non_null = 0
        self.newest: Any = None
        self.unparseable_time = True

    def sample(self, bag: set[str] | list[str], values: Any) -> None:
        for v in values:
            if len(bag) >= self.SAMPLES:
                return
            if isinstance(bag, set):
                bag.add(str(v))
            elif str(v) not in bag:
                bag.append(str(v))


def _distinct_hashes(chunks: list[Any]) -> Any:
    import numpy as np

    if not chunks:
        return np.zeros(0, dtype="uint64")
    merged = np.concatenate(chunks)
    merged.sort()  # in place: one copy of the hashes, not np.unique's three
    keep = np.empty(len(merged), dtype=bool)
    keep[:1] = True
    np.not_equal(merged[1:], merged[:-1], out=keep[1:])
    return merged[keep]


def _add_hashes(chunks: list[Any], new: Any, floor: int) -> list[Any]:
    """Append deduplicated hashes; merge the pending chunks into the first (distinct, sorted) one when they
    outgrow it, so each hash is sorted O(log n) times in all (amortised), not once per batch."""
    chunks.append(new)
    pending = sum(len(c) for c in chunks[1:])
    if pending > max(floor, len(chunks[0])):
        return [_distinct_hashes(chunks)]
    return chunks


class StreamValidator:
    """The spec's constraints checked over a stream of record batches, in bounded memory.

    Each batch updates per-column counters (nulls, inf, min/max, sums, out-of-set and regex misses with a few
    examples, the newest timestamp), a KLL sketch for quantile rules, and 64-bit hashes for the uniqueness
    and duplicate-row checks (deduplicated as they come: 8 bytes per distinct value). Nothing else grows with
    the partition. :meth:`report` gives the same :class:`ValidationReport` as checking the whole frame;
    quantiles come from the sketch (exact up to a few thousand values, rank error ~1% beyond).
    """

    COMPACT_EVERY = 1 << 20  # hashes kept before a deduplication pass

    def __init__(
        self,
        constraints: dict[str, Any],
        *,
        features: list[str],
        numeric: list[str],
        target: str | None,
        window_end: Any = None,
    ) -> None:
        self.constraints = constraints or {}
        self.features = list(features)
        self.numeric = set(numeric)
        self.target = target
        self.window_end = window_end
        self.rules: dict[str, dict[str, Any]] = dict(self.constraints.get("columns") or {})
        self.n = 0
        self.columns_seen: list[str] | None = None
        self.cols: dict[str, _Column] = {}
        self.row_hashes: list[Any] = []
        self.row_hash_count = 0

    def _col(self, name: str) -> _Column:
        if name not in self.cols:
            self.cols[name] = _Column()
        return self.cols[name]

    def update(self, df: pd.DataFrame) -> None:
        import numpy as np
        import pandas as pd
        from pandas.api import types as t

        if self.columns_seen is None:
            self.columns_seen = [str(c) for c in df.columns]
        if df.empty:
            return
        self.n += len(df)
        watched = [*self.features, *([self.target] if self.target else []), *self.rules]
        for name in dict.fromkeys(watched):
            if name not in df.columns:
                continue
            s, c, rule = df[name], self._col(name), self.rules.get(name, {})
            isna = s.isna()
            c.nulls += int(isna.sum())
            is_num = t.is_numeric_dtype(s) and not t.is_bool_dtype(s)
            c.numeric_ok &= is_num
            if str(s.dtype) not in c.dtypes:
                c.dtypes.append(str(s.dtype))
            if rule.get("dtype"):
                c.dtype_ok &= _dtype_matches(s, rule["dtype"])
            values = s[~isna]
            if is_num:
                arr = values.to_numpy(dtype="float64", na_value=np.nan)
                inf = np.isinf(arr)
                c.infs += int(inf.sum())
                finite = arr[~inf]
                if finite.size:
                    lo, hi = float(finite.min()), float(finite.max())
                    c.lo = lo if c.lo is None else min(c.lo, lo)
                    c.hi = hi if c.hi is None else max(c.hi, hi)
                    c.total += float(finite.sum())
                    c.count += int(finite.size)
                    if rule.get("quantiles"):
                        if c.kll is None:
                            import whylogs_sketching as ds

                            c.kll = ds.kll_doubles_sketch(k=256)
                        c.kll.update(finite)
            if rule.get("allowed") is not None:
                bad = values[~values.isin(set(rule["allowed"]))]
                c.not_allowed += len(bad)
                c.sample(c.not_allowed_seen, bad.unique()[:20])
            if rule.get("regex"):
                text = values.astype(str)
                bad = text[~text.str.fullmatch(rule["regex"])]
                c.regex_bad += len(bad)
                c.sample(c.regex_seen, bad.unique()[:20])
            if rule.get("unique"):
                c.non_null += len(values)
                hashes = np.unique(pd.util.hash_pandas_object(values, index=False).to_numpy())
                c.hashes = _add_hashes(c.hashes, hashes, self.COMPACT_EVERY)
            if rule.get("max_age_hours") is not None:
                stamps = pd.to_datetime(values, utc=True, errors="coerce").dropna()
                if not stamps.empty:
                    c.unparseable_time = False
                    newest = stamps.max()
                    c.newest = newest if c.newest is None else max(c.newest, newest)
        if self.constraints.get("max_duplicate_fraction") is not None:
            hashes = pd.util.hash_pandas_object(df, index=False).to_numpy()
            self.row_hash_count += len(hashes)
            self.row_hashes = _add_hashes(self.row_hashes, np.unique(hashes), self.COMPACT_EVERY)

    def report(self, partitions: list[dict[str, Any]] | None = None) -> ValidationReport:
        report = ValidationReport()
        n, constraints = self.n, self.constraints
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

        seen = set(self.columns_seen or [])
        required = [*self.features, *([self.target] if self.target else [])]
        for col in [*required, *[c for c in self.rules if c not in required]]:
            present = col in seen
            report.add("column present", col, "present", "present" if present else "missing", present)
        if n == 0:
            return report

        for col in self.features:
            if col not in seen:
                continue
            c = self.cols[col]
            report.add("not all null", col, f"< {n} nulls", c.nulls, c.nulls < n)
            if col in self.numeric:
                report.add("numeric dtype", col, "number", "/".join(c.dtypes), c.numeric_ok)
                if c.numeric_ok:
                    report.add("finite", col, "0 inf", c.infs, c.infs == 0)
        if self.target and self.target in seen:
            nulls = self.cols[self.target].nulls
            report.add("target not null", self.target, "0 nulls", nulls, nulls == 0)

        max_dup = constraints.get("max_duplicate_fraction")
        if max_dup is not None:
            dup_rows = self.row_hash_count - len(_distinct_hashes(self.row_hashes))
            report.add(
                "duplicate rows", "*", f"<= {fmt(max_dup)} of rows", dup_rows / n, dup_rows / n <= max_dup,
                table_severity,
            )  # fmt: skip

        for col, rule in self.rules.items():
            if col not in seen:
                continue
            c = self.cols[col]
            severity = rule.get("severity") or "fail"

            def add(
                check: str,
                expected: str,
                observed: Any,
                passed: bool,
                col: str = col,
                severity: str = severity,
            ) -> None:
                report.add(check, col, expected, observed, passed, severity)

            if rule.get("dtype"):
                add("dtype", rule["dtype"], "/".join(c.dtypes), c.dtype_ok)
            if rule.get("nullable") is False:
                add("not null", "0 nulls", c.nulls, c.nulls == 0)
            if rule.get("max_null_fraction") is not None:
                frac = c.nulls / n
                add(
                    "null fraction",
                    f"<= {rule['max_null_fraction']}",
                    frac,
                    frac <= rule["max_null_fraction"],
                )
            if rule.get("min") is not None or rule.get("max") is not None:
                if c.numeric_ok:
                    if rule.get("min") is not None:
                        add("min", f">= {fmt(rule['min'])}", c.lo, c.lo is None or c.lo >= rule["min"])
                    if rule.get("max") is not None:
                        add("max", f"<= {fmt(rule['max'])}", c.hi, c.hi is None or c.hi <= rule["max"])
                else:
                    add("range", "a numeric column", "/".join(c.dtypes), False)
            if rule.get("allowed") is not None:
                allowed = set(rule["allowed"])
                shown = ", ".join(map(repr, sorted(c.not_allowed_seen)))
                add(
                    "allowed values", f"in {sorted(map(str, allowed))}",
                    f"{c.not_allowed} other ({shown})" if c.not_allowed else 0, c.not_allowed == 0,
                )  # fmt: skip
            if rule.get("unique"):
                dups = c.non_null - len(_distinct_hashes(c.hashes))
                add("unique", "0 duplicates", dups, dups == 0)
            if rule.get("regex"):
                shown = ", ".join(map(repr, c.regex_seen[:3]))
                add(
                    "regex", f"all match {rule['regex']}",
                    f"{c.regex_bad} do not ({shown})" if c.regex_bad else 0, c.regex_bad == 0,
                )  # fmt: skip
            if rule.get("max_age_hours") is not None:
                add(*_freshness(c.newest, c.unparseable_time, rule["max_age_hours"], self.window_end))
            if rule.get("mean"):
                value = c.total / c.count if c.numeric_ok and c.count else None
                add("mean", _range_text(rule["mean"]), value, _within(value, rule["mean"]))
            for q, bounds in (rule.get("quantiles") or {}).items():
                value = float(c.kll.get_quantile(float(q))) if c.numeric_ok and c.kll is not None else None
                add(f"quantile {q}", _range_text(bounds), value, _within(value, bounds))
        return report


def validate_and_profile(
    uris: list[str],
    data_format: str,
    constraints: dict[str, Any],
    *,
    features: list[str],
    numeric: list[str],
    target: str | None,
    window_end: Any = None,
    batch_rows: int = 65_536,
) -> tuple[ValidationReport, list[dict[str, Any]], Any]:
    """Validate and profile the partitions in one streaming pass: (report, files, whylogs profile view).

    Files are read in record batches (one in memory at a time); each file's sha256 and row count are
    recorded for lineage; a file whose columns differ from the first one's is a schema change and fails at
    once, naming what was renamed or dropped.
    """
    import logging

    from airflow_mlops import storage
    from airflow_mlops.data.partitions import iter_record_batches
    from airflow_mlops.data.profiling import profile_schema, track_frame
    from airflow_mlops.data.whylogs_compat import import_whylogs
    from airflow_mlops.errors import BadDataError, DataError

    import_whylogs()
    from whylogs.core import DatasetProfile

    log = logging.getLogger(__name__)
    validator = StreamValidator(
        constraints, features=features, numeric=numeric, target=target, window_end=window_end
    )
    profile = DatasetProfile(schema=profile_schema())
    files: list[dict[str, Any]] = []
    first: tuple[str, set[str]] | None = None
    for uri in uris:
        digest = storage.sha256_file(uri)
        rows = 0
        try:
            for batch in iter_record_batches([uri], data_format, batch_rows):
                df = batch.to_pandas()
                cols = set(map(str, df.columns))
                if first is None:
                    first = (uri, cols)
                elif rows == 0 and cols != first[1]:
                    raise BadDataError(
                        f"partition {uri} differs in schema from {first[0]}: it lacks {sorted(first[1] - cols)} and "
                        f"has extra {sorted(cols - first[1])}. A column was renamed or dropped upstream: fix the "
                        "partition (or the spec, if the change is intended) and clear this task."
                    )
                validator.update(df)
                track_frame(profile, df)
                rows += len(df)
        except BadDataError:
            raise
        except DataError as err:
            raise BadDataError(
                f"cannot read {data_format} partition {uri}: {err.__cause__ or err}. The file is corrupt or not "
                f"{data_format}: re-run the upstream task that writes it, or fix data.format in the spec."
            ) from None
        files.append({"uri": uri, "sha256": digest, "rows": rows})
        log.info("read %s: %d rows, sha256 %s", uri, rows, digest[:12])
    return validator.report(files), files, profile.view()


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


def _freshness(
    newest: Any, unparseable: bool, max_age_hours: float, window_end: Any
) -> tuple[str, str, Any, bool]:
    """The newest timestamp must be at most ``max_age_hours`` older than the window's end."""
    import pandas as pd

    from airflow_mlops.data.partitions import parse_time

    expected = f"newest within {fmt(max_age_hours)} h of the window end"
    if window_end is None:
        return "freshness", expected, "no window end to compare with", False
    if unparseable or newest is None:
        return "freshness", expected, "no parseable timestamp", False
    end = parse_time(window_end, "window_end")
    age = (pd.Timestamp(end) - newest).total_seconds() / 3600
    return "freshness", expected, f"{age:.1f} h old (newest {newest.isoformat()})", age <= max_age_hours


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
