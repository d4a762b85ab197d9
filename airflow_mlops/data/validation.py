"""Data validation: the spec's constraints checked against a window's data.

Every check yields a row (check, column, expected, observed, passed); the failed rows become the message of
the quality-gate error, so the first lines of a failed task's log say exactly what broke.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.errors import DataValidationError
from airflow_mlops.tables import cut, fmt, format_table

if TYPE_CHECKING:
    import pandas as pd

HEADER = ("check", "column", "partition", "expected", "observed", "rows", "result")
WINDOW = "*"  # the partition column of a check over the whole window
DEFAULT_MAX_DUPLICATE_FRACTION = 0.05
DEFAULT_CLASS_BALANCE = {"max_shift": 0.25, "min_rows": 30}
DEFAULT_PARTITION_MIN_SHARE = 0.2  # a partition with fewer rows than this share of the median is named
EXPECTATION_CHECKS = ("mean", "quantile")  # distribution expectations, not the data contract
MAX_CLASSES = 20  # a target with more distinct values is not a class label


@dataclass
class ValidationReport:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self, check: str, column: str, expected: str, observed: Any, passed: bool, severity: str = "fail",
        *, partition: str = WINDOW, offending: int | None = None, kind: str = "contract",
    ) -> None:  # fmt: skip
        self.rows.append(
            {
                "check": check,
                "column": column,
                "partition": partition,
                "expected": cut(expected),
                "observed": cut(fmt(observed)),
                "rows": offending,
                "passed": passed,
                "severity": severity,
                "kind": kind,
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
    def expectations(self) -> list[dict[str, Any]]:
        """Every distribution expectation (mean, quantile bounds), passed or not: the monitor hands these to
        the drift report instead of stopping on them."""
        return [r for r in self.rows if r.get("kind") == "expectation"]

    @property
    def passed(self) -> bool:
        return not self.failed

    def table(self, only_failed: bool = False) -> str:
        rows = self.failed if only_failed else self.rows
        return format_table(
            [
                (r["check"], r["column"], r.get("partition", WINDOW), r["expected"], r["observed"],
                 "" if r.get("rows") is None else r["rows"], _verdict(r))
                for r in rows
            ],
            HEADER,
        )  # fmt: skip

    def html(self, title: str) -> str:
        """The report as a page (``templates/validation_report.html``): failed checks first, then every check."""
        from airflow_mlops.pages import Row, render

        def rows(found: list[dict[str, Any]]) -> list[Row]:
            return [
                Row((r["check"], r["column"], r.get("partition", WINDOW), r["expected"], r["observed"],
                     "" if r.get("rows") is None else r["rows"], _verdict(r)), "" if r["passed"] else _verdict(r).lower())
                for r in found
            ]  # fmt: skip

        verdict = "passed" if self.passed else f"failed: {len(self.failed)} of {len(self.rows)} checks"
        return render(
            "validation_report.html", title=title, verdict=verdict, header=HEADER,
            failed=rows(self.failed + self.warnings), rows=rows(self.rows),
        )  # fmt: skip

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


def partition_label(uri: str) -> str:
    """The day a partition holds (the last ``YYYY-MM-DD`` in its URI), else its file name."""
    import re

    days = re.findall(r"\d{4}-\d{2}-\d{2}", uri)
    return days[-1] if days else uri.rstrip("/").rsplit("/", 1)[-1]


def _nested_values(values: pd.Series) -> Any:
    """The first nested value (dict, list, set, array) of an object column, or None."""
    from pandas.api.types import infer_dtype

    if values.dtype != object or infer_dtype(values, skipna=True) in ("string", "empty", "bytes"):
        return None
    for v in values:
        if isinstance(v, (dict, list, set, tuple)) or hasattr(v, "__array__"):
            return v
    return None


def validate_frame(
    df: pd.DataFrame,
    constraints: dict[str, Any],
    *,
    features: list[str],
    numeric: list[str],
    target: str | None,
    partitions: list[dict[str, Any]] | None = None,
    window_end: Any = None,
    expectations: str = "fail",
    on_extra_columns: str = "warn",
) -> ValidationReport:
    """Check one in-memory frame: the streaming validator fed a single batch (the same checks, same report)."""
    validator = StreamValidator(
        constraints, features=features, numeric=numeric, target=target, window_end=window_end,
        expectations=expectations, on_extra_columns=on_extra_columns,
    )  # fmt: skip
    validator.update(df)
    return validator.report(partitions)


class _HashSet:
    """Distinct 64-bit hashes, deduplicated as they come (8 bytes per distinct value): :meth:`add` says how
    many of a batch's hashes were seen before, in the batch itself or in an earlier one."""

    def __init__(self, compact_every: int) -> None:
        self.chunks: list[Any] = []  # each sorted and distinct; together disjoint
        self.compact_every = compact_every

    def add(self, hashes: Any) -> int:
        import numpy as np

        distinct = np.unique(hashes)
        repeats = len(hashes) - len(distinct)
        seen = np.zeros(len(distinct), dtype=bool)
        for chunk in self.chunks:
            if len(chunk):
                at = np.minimum(np.searchsorted(chunk, distinct), len(chunk) - 1)
                seen |= chunk[at] == distinct
        self.chunks = _add_hashes(self.chunks, distinct[~seen], self.compact_every)
        return repeats + int(seen.sum())

    def __len__(self) -> int:
        return sum(len(c) for c in self.chunks)


class _Column:
    """What the checks of one column need, accumulated batch by batch (a few numbers and samples each)."""

    SAMPLES = 5

    def __init__(self, compact_every: int) -> None:
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
        self.distinct = _HashSet(compact_every)  # the non-null values of a unique column
        self.repeated = 0
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


@dataclass
class _Partition:
    """Per-partition counts: rows, target classes, and offending rows per (check, column)."""

    rows: int = 0
    columns: frozenset[str] = frozenset()
    classes: dict[Any, int] = field(default_factory=dict)
    offending: dict[tuple[str, str], int] = field(default_factory=dict)
    dtypes: dict[str, set[str]] = field(default_factory=dict)

    def count(self, check: str, column: str, n: int) -> None:
        if n:
            self.offending[(check, column)] = self.offending.get((check, column), 0) + int(n)


class StreamValidator:
    """The spec's constraints checked over a stream of record batches, in bounded memory, per partition and
    over the window.

    Each batch updates per-column counters (nulls, inf, min/max, sums, out-of-set and regex misses with a few
    examples, the newest timestamp), a KLL sketch for quantile rules, and 64-bit hashes for the uniqueness
    and duplicate-row checks (deduplicated as they come: 8 bytes per distinct value). Each partition (a day)
    keeps its row count, target class counts and the number of offending rows per check, so every failed
    check names the day(s) that hold the bad rows, and checks that a window-wide total would hide run per
    partition: its row count against the window's median, its class balance against the window's, its
    share of duplicate rows, its nulls. Nothing else grows with the partition. :meth:`report` gives the same
    :class:`ValidationReport` as checking the whole frame; quantiles come from the sketch (exact up to a few
    thousand values, rank error ~1% beyond).

    ``expectations`` is the severity of the distribution expectations (mean and quantile bounds): ``fail``
    where they gate (training), ``warn`` where they are only reported (the drift monitor hands them to its
    drift report; a retraining follows drift on purpose). ``on_extra_columns`` (``warn``, ``fail`` or
    ``ignore``) decides what a column the spec does not name does.
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
        expectations: str = "fail",
        on_extra_columns: str = "warn",
    ) -> None:
        self.constraints = constraints or {}
        self.features = list(features)
        self.numeric = set(numeric)
        self.target = target
        self.window_end = window_end
        self.expectations = expectations
        self.on_extra_columns = on_extra_columns
        self.rules: dict[str, dict[str, Any]] = dict(self.constraints.get("columns") or {})
        self.watched = list(dict.fromkeys([*self.features, *([target] if target else []), *self.rules]))
        self.n = 0
        self.columns_seen: list[str] | None = None
        self.cols: dict[str, _Column] = {}
        self.row_hashes = _HashSet(self.COMPACT_EVERY)
        self.row_hash_count = 0
        self.parts: dict[str, _Partition] = {}
        self.extra: dict[str, list[str]] = {}  # column the spec does not name -> partitions holding it
        self.classes_ok = True  # the target looks like a class label (few distinct values)
        self.flat: list[str] = []  # the last batch's columns without nested values

    def _col(self, name: str) -> _Column:
        if name not in self.cols:
            self.cols[name] = _Column(self.COMPACT_EVERY)
        return self.cols[name]

    @property
    def max_duplicate_fraction(self) -> float | None:
        return self.constraints.get("max_duplicate_fraction", DEFAULT_MAX_DUPLICATE_FRACTION)  # None: off

    def update(self, df: pd.DataFrame, partition: str = WINDOW, source: str | None = None) -> None:
        """Add one batch of ``partition`` (a day's label); ``source`` (the file) names it in errors."""
        import numpy as np
        import pandas as pd
        from pandas.api import types as t

        from airflow_mlops.errors import BadDataError

        if self.columns_seen is None:
            self.columns_seen = [str(c) for c in df.columns]
        part = self.parts.setdefault(partition, _Partition())
        if not part.columns:
            part.columns = frozenset(map(str, df.columns))
            for name in part.columns - set(self.watched):
                self.extra.setdefault(name, []).append(partition)
        if df.empty:
            return
        self.n += len(df)
        part.rows += len(df)
        hashed: list[str] = []
        self.flat = hashed
        for name in map(str, df.columns):
            nested = _nested_values(df[name].dropna())
            if nested is None:
                hashed.append(name)
            elif name in self.watched:
                raise BadDataError(
                    f"column {name!r} of {source or partition} holds nested values (e.g. {str(nested)[:60]!r} of "
                    f"type {type(nested).__name__}); the pipeline reads only flat values (numbers, strings, "
                    "booleans, timestamps). Flatten the column upstream (or drop it from the spec), then clear "
                    "this task."
                )
        for name in self.watched:
            if name not in df.columns:
                continue
            s, c, rule = df[name], self._col(name), self.rules.get(name, {})
            isna = s.isna()
            nulls = int(isna.sum())
            c.nulls += nulls
            part.count("nulls", name, nulls)
            is_num = t.is_numeric_dtype(s) and not t.is_bool_dtype(s)
            c.numeric_ok &= is_num
            if str(s.dtype) not in c.dtypes:
                c.dtypes.append(str(s.dtype))
            part.dtypes.setdefault(name, set()).add(str(s.dtype))
            if name in self.numeric and not is_num:
                part.count("numeric dtype", name, len(s))
            if rule.get("dtype"):
                ok = _dtype_matches(s, rule["dtype"])
                c.dtype_ok &= ok
                if not ok:
                    part.count("dtype", name, len(s))
            values = s[~isna]
            if is_num:
                arr = values.to_numpy(dtype="float64", na_value=np.nan)
                inf = np.isinf(arr)
                c.infs += int(inf.sum())
                part.count("finite", name, int(inf.sum()))
                finite = arr[~inf]
                if finite.size:
                    lo, hi = float(finite.min()), float(finite.max())
                    c.lo = lo if c.lo is None else min(c.lo, lo)
                    c.hi = hi if c.hi is None else max(c.hi, hi)
                    c.total += float(finite.sum())
                    c.count += int(finite.size)
                    if rule.get("min") is not None:
                        part.count("min", name, int((finite < rule["min"]).sum()))
                    if rule.get("max") is not None:
                        part.count("max", name, int((finite > rule["max"]).sum()))
                    if rule.get("quantiles"):
                        if c.kll is None:
                            import whylogs_sketching as ds

                            c.kll = ds.kll_doubles_sketch(k=256)
                        c.kll.update(finite)
            if rule.get("allowed") is not None:
                bad = values[~values.isin(set(rule["allowed"]))]
                c.not_allowed += len(bad)
                part.count("allowed values", name, len(bad))
                c.sample(c.not_allowed_seen, bad.unique()[:20])
            if rule.get("regex"):
                text = values.astype(str)
                bad = text[~text.str.fullmatch(rule["regex"])]
                c.regex_bad += len(bad)
                part.count("regex", name, len(bad))
                c.sample(c.regex_seen, bad.unique()[:20])
            if rule.get("unique"):
                repeated = c.distinct.add(pd.util.hash_pandas_object(values, index=False).to_numpy())
                c.repeated += repeated
                part.count("unique", name, repeated)
            if rule.get("max_age_hours") is not None:
                stamps = pd.to_datetime(values, utc=True, errors="coerce").dropna()
                if not stamps.empty:
                    c.unparseable_time = False
                    newest = stamps.max()
                    c.newest = newest if c.newest is None else max(c.newest, newest)
        if self.target and self.target in df.columns and self.classes_ok:
            for value, k in df[self.target].dropna().value_counts().items():
                part.classes[value] = part.classes.get(value, 0) + int(k)
            if len({v for p in self.parts.values() for v in p.classes}) > MAX_CLASSES:
                self.classes_ok = False
        if self.max_duplicate_fraction is not None and hashed:
            hashes = pd.util.hash_pandas_object(df[hashed], index=False).to_numpy()
            self.row_hash_count += len(hashes)
            part.count("duplicate rows", WINDOW, self.row_hashes.add(hashes))

    def _where(self, check: str, column: str) -> tuple[str, int]:
        """The partitions holding a check's offending rows, with their counts, and the total."""
        hits = [
            (label, p.offending[(check, column)])
            for label, p in self.parts.items()
            if (check, column) in p.offending
        ]
        total = sum(k for _, k in hits)
        if not hits:
            return WINDOW, 0
        if len(self.parts) == 1 and hits[0][0] == WINDOW:
            return WINDOW, total
        worst = sorted(hits, key=lambda h: -h[1])
        shown = ", ".join(f"{label} ({k})" for label, k in worst[:3])
        return shown + (f" and {len(worst) - 3} more" if len(worst) > 3 else ""), total

    def report(self, partitions: list[dict[str, Any]] | None = None) -> ValidationReport:
        report = ValidationReport()
        n, constraints = self.n, self.constraints
        table_severity = constraints.get("severity") or "fail"

        def add(check: str, column: str, expected: str, observed: Any, passed: bool, severity: str = "fail",
                key: tuple[str, str] | None = None, **kw: Any) -> None:  # fmt: skip
            if key is not None and "partition" not in kw:
                kw["partition"], kw["offending"] = self._where(*key)
            report.add(check, column, expected, observed, passed, severity, **kw)

        if partitions:
            # a partition is its day: several part files (a Spark writer's part-00000, part-00001...) of which
            # some hold no rows are a good day; it is empty only when all of its files are
            days: dict[str, list[dict[str, Any]]] = {}
            for p in partitions:
                days.setdefault(p.get("partition") or partition_label(p["uri"]), []).append(p)
            empty = [(day, files) for day, files in days.items() if not any(f.get("rows") for f in files)]
            shown = ", ".join(
                day if day == files[0]["uri"].rstrip("/").rsplit("/", 1)[-1]
                else f"{day} ({', '.join(f['uri'].rstrip('/').rsplit('/', 1)[-1] for f in files)})"
                for day, files in empty[:3]
            ) + (", ..." if len(empty) > 3 else "")  # fmt: skip
            report.add(
                "empty partitions", WINDOW, "0", len(empty), not empty,
                partition=shown or WINDOW, offending=None,
            )  # fmt: skip
        min_rows = constraints.get("min_rows") or 1
        report.add("min rows", WINDOW, f">= {min_rows}", n, n >= min_rows)
        max_rows = constraints.get("max_rows")
        if max_rows:
            report.add("max rows", WINDOW, f"<= {max_rows}", n, n <= max_rows, table_severity)
        self._partition_rows(report, table_severity)

        seen = set(self.columns_seen or [])
        required = [*self.features, *([self.target] if self.target else [])]
        for col in [*required, *[c for c in self.rules if c not in required]]:
            lacking = [label for label, p in self.parts.items() if p.columns and col not in p.columns]
            present = col in seen and not lacking
            where = ", ".join(lacking[:3]) + (f" and {len(lacking) - 3} more" if len(lacking) > 3 else "")
            report.add(
                "column present", col, "present", "present" if present else "missing", present,
                partition=where or WINDOW, offending=sum(self.parts[x].rows for x in lacking) if lacking else None,
            )  # fmt: skip
        self._extra_columns(report)
        if n == 0:
            return report

        for col in self.features:
            if col not in seen:
                continue
            c = self.cols[col]
            add("not all null", col, f"< {n} nulls", c.nulls, c.nulls < n, key=("nulls", col))
            for label, p in self.parts.items():  # a day whose column is all null hides in a window's total
                if (
                    label != WINDOW
                    and p.rows
                    and p.offending.get(("nulls", col), 0) == p.rows
                    and c.nulls < n
                ):
                    add(
                        "not all null",
                        col,
                        "some values",
                        f"all {p.rows} null",
                        False,
                        partition=label,
                        offending=p.rows,
                    )
            if col in self.numeric:
                add(
                    "numeric dtype",
                    col,
                    "number",
                    "/".join(c.dtypes),
                    c.numeric_ok,
                    key=("numeric dtype", col),
                )
                if c.numeric_ok:
                    add("finite", col, "0 inf", c.infs, c.infs == 0, key=("finite", col))
        if self.target and self.target in seen:
            nulls = self.cols[self.target].nulls
            add("target not null", self.target, "0 nulls", nulls, nulls == 0, key=("nulls", self.target))
            self._class_balance(report)

        max_dup = self.max_duplicate_fraction
        if max_dup is not None and self.row_hash_count:
            dup_rows = self.row_hash_count - len(self.row_hashes)
            add(
                "duplicate rows", WINDOW, f"<= {fmt(max_dup)} of rows", dup_rows / n, dup_rows / n <= max_dup,
                table_severity, key=("duplicate rows", WINDOW),
            )  # fmt: skip
            for label, p in self.parts.items():
                k = p.offending.get(("duplicate rows", WINDOW), 0)
                if label != WINDOW and p.rows and k / p.rows > max_dup and dup_rows / n <= max_dup:
                    add(
                        "duplicate rows", WINDOW, f"<= {fmt(max_dup)} of the partition's rows", k / p.rows, False,
                        table_severity, partition=label, offending=k,
                    )  # fmt: skip

        for col, rule in self.rules.items():
            if col not in seen:
                continue
            self._column_rules(report, col, rule, n)
        return report

    def _column_rules(self, report: ValidationReport, col: str, rule: dict[str, Any], n: int) -> None:
        c = self.cols[col]
        severity = rule.get("severity") or "fail"

        def add(
            check: str, expected: str, observed: Any, passed: bool, key: str | None = None, **kw: Any
        ) -> None:
            if key is not None:
                kw["partition"], kw["offending"] = self._where(key, col)
            report.add(check, col, expected, observed, passed, kw.pop("severity", severity), **kw)

        if rule.get("dtype"):
            add("dtype", rule["dtype"], "/".join(c.dtypes), c.dtype_ok, key="dtype")
        if rule.get("nullable") is False:
            add("not null", "0 nulls", c.nulls, c.nulls == 0, key="nulls")
        if rule.get("max_null_fraction") is not None:
            limit = rule["max_null_fraction"]
            frac = c.nulls / n
            add("null fraction", f"<= {limit}", frac, frac <= limit, key="nulls")
            for label, p in self.parts.items():  # a bad day inside a window of good ones
                k = p.offending.get(("nulls", col), 0)
                if label != WINDOW and p.rows and k / p.rows > limit and frac <= limit:
                    add("null fraction", f"<= {limit} of the partition's rows", k / p.rows, False,
                        partition=label, offending=k)  # fmt: skip
        if rule.get("min") is not None or rule.get("max") is not None:
            if c.numeric_ok:
                if rule.get("min") is not None:
                    add("min", f">= {fmt(rule['min'])}", c.lo, c.lo is None or c.lo >= rule["min"], key="min")
                if rule.get("max") is not None:
                    add("max", f"<= {fmt(rule['max'])}", c.hi, c.hi is None or c.hi <= rule["max"], key="max")
            else:
                add("range", "a numeric column", "/".join(c.dtypes), False, key="numeric dtype")
        if rule.get("allowed") is not None:
            allowed = set(rule["allowed"])
            shown = ", ".join(map(repr, sorted(c.not_allowed_seen)))
            add(
                "allowed values", f"in {sorted(map(str, allowed))}",
                f"{c.not_allowed} other ({shown})" if c.not_allowed else 0, c.not_allowed == 0, key="allowed values",
            )  # fmt: skip
        if rule.get("unique"):
            add("unique", "0 duplicates", c.repeated, c.repeated == 0, key="unique")
        if rule.get("regex"):
            shown = ", ".join(map(repr, c.regex_seen[:3]))
            add(
                "regex", f"all match {rule['regex']}",
                f"{c.regex_bad} do not ({shown})" if c.regex_bad else 0, c.regex_bad == 0, key="regex",
            )  # fmt: skip
        if rule.get("max_age_hours") is not None:
            add(*_freshness(c.newest, c.unparseable_time, rule["max_age_hours"], self.window_end))
        expectation = {
            "severity": self.expectations if severity == "fail" else severity,
            "kind": "expectation",
        }
        if rule.get("mean"):
            value = c.total / c.count if c.numeric_ok and c.count else None
            add("mean", _range_text(rule["mean"]), value, _within(value, rule["mean"]), **expectation)
        for q, bounds in (rule.get("quantiles") or {}).items():
            value = float(c.kll.get_quantile(float(q))) if c.numeric_ok and c.kll is not None else None
            add(f"quantile {q}", _range_text(bounds), value, _within(value, bounds), **expectation)

    def _partition_rows(self, report: ValidationReport, severity: str) -> None:
        """A partition far smaller than its window's others (a day with 5 rows among days of 2,000) is
        named, even when the window's total passes ``min_rows``; ``partition_min_rows`` sets a fixed floor."""
        import statistics

        sized = [(label, p.rows) for label, p in self.parts.items() if label != WINDOW]
        if not sized:
            return
        fixed = self.constraints.get("partition_min_rows")
        if fixed:
            floor, expected = int(fixed), f">= {fixed}"
        elif len(sized) >= 3:
            median = statistics.median(r for _, r in sized)
            floor = math.ceil(DEFAULT_PARTITION_MIN_SHARE * median)
            expected = (
                f">= {floor} ({DEFAULT_PARTITION_MIN_SHARE:.0%} of the median partition, {fmt(median)})"
            )
        else:
            return
        small = [(label, r) for label, r in sized if 0 < r < floor]  # empty ones are named above
        for label, rows in small:
            report.add(
                "partition rows", WINDOW, expected, rows, False, severity, partition=label, offending=rows
            )
        if not small:
            report.add(
                "partition rows",
                WINDOW,
                expected,
                f"min {min((r for _, r in sized if r), default=0)}",
                True,
            )

    def _class_balance(self, report: ValidationReport) -> None:
        """Each partition's target classes against the window's: a partition with one class where the window
        has several (broken data: a contract check), or a class share further than ``max_shift`` from the
        window's and beyond sampling noise (a shifted distribution: an expectation), is named with its rows."""
        rule = self.constraints.get("class_balance", DEFAULT_CLASS_BALANCE)
        if not rule or not self.classes_ok or self.target is None:
            return
        rule = {**DEFAULT_CLASS_BALANCE, **rule}
        severity = rule.get("severity") or self.constraints.get("severity") or "fail"
        totals: dict[Any, int] = {}
        for p in self.parts.values():
            for v, k in p.classes.items():
                totals[v] = totals.get(v, 0) + k
        n = sum(totals.values())
        if len(totals) < 2 or n == 0:
            return
        share = {v: k / n for v, k in totals.items()}
        expected = f"every class, shares within {fmt(rule['max_shift'])} of the window's"
        bad = 0
        for label, p in self.parts.items():
            rows = sum(p.classes.values())
            if label == WINDOW or rows < rule["min_rows"]:
                continue
            shares = {v: p.classes.get(v, 0) / rows for v in totals}
            if len([v for v, k in p.classes.items() if k]) == 1:
                (only,) = [v for v, k in p.classes.items() if k]
                report.add("class balance", self.target, expected, f"one class only ({only!r})", False,
                           severity, partition=label, offending=rows)  # fmt: skip
                bad += 1
                continue
            for v, s in shares.items():
                gap = abs(s - share[v])
                noise = 5 * math.sqrt(share[v] * (1 - share[v]) / rows)  # a 5-sigma sampling band
                if gap > rule["max_shift"] and gap > noise:
                    # a shifted label share is a distribution property: it gates the scheduled training and
                    # is reported where the pipeline follows drift on purpose (a retraining)
                    report.add(
                        "class balance", self.target, expected, f"class {v!r}: {s:.0%} (window {share[v]:.0%})",
                        False, self.expectations if severity == "fail" else severity, partition=label,
                        offending=int(abs(s - share[v]) * rows), kind="expectation",
                    )  # fmt: skip
                    bad += 1
                    break
        if not bad:
            shown = ", ".join(f"{v!r}: {s:.0%}" for v, s in sorted(share.items(), key=lambda kv: str(kv[0])))
            report.add("class balance", self.target, expected, shown, True)

    def _extra_columns(self, report: ValidationReport) -> None:
        """Columns the spec does not name, one row each with the partitions holding it: producers add
        columns; ``on_extra_columns`` decides (``warn`` by default: reported, ignored by the pipeline)."""
        if self.on_extra_columns == "ignore":
            return
        severity = "fail" if self.on_extra_columns == "fail" else "warn"
        for name in sorted(self.extra):
            where = self.extra[name]
            shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
            rows = sum(self.parts[x].rows for x in where)
            report.add(
                "extra column", name, "named in the spec (data.on_extra_columns)", "not in the spec", False,
                severity, partition=shown, offending=rows,
            )  # fmt: skip


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
    expectations: str = "fail",
    on_extra_columns: str = "warn",
    quality: Any = None,
    quality_severity: str = "fail",
    profile: bool = True,
) -> tuple[ValidationReport, list[dict[str, Any]], Any]:
    """Validate and profile the partitions in one streaming pass: (report, files, whylogs profile view).

    Files are read in record batches (one in memory at a time), each as its own partition (the day in its
    URI); each file's sha256 and row count are recorded for lineage. A partition that lacks a column the spec
    needs fails the ``column present`` check naming the partition (renamed or dropped upstream); a column the
    spec does not name is what ``on_extra_columns`` says (``warn``: reported, the pipeline goes on).
    ``quality`` (a :class:`~airflow_mlops.data.quality.QualityTracker`) sees the same batches; its findings
    join the report as ``quality`` rows of ``quality_severity`` (``fail``: a gate; ``warn``: reported).
    ``profile=False`` (scoring) skips the whylogs profile: the view returned is None.
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
        constraints, features=features, numeric=numeric, target=target, window_end=window_end,
        expectations=expectations, on_extra_columns=on_extra_columns,
    )  # fmt: skip
    view = DatasetProfile(schema=profile_schema()) if profile else None
    files: list[dict[str, Any]] = []
    for uri in uris:
        digest = storage.sha256_file(uri)
        label = partition_label(uri)
        rows = 0
        try:
            for batch in iter_record_batches([uri], data_format, batch_rows):
                df = batch.to_pandas()
                validator.update(df, partition=label, source=uri)
                if quality is not None:
                    quality.update(df, label)
                if view is not None:  # nested values of a column the spec ignores: not profiled
                    track_frame(view, df[validator.flat])
                rows += len(df)
        except BadDataError:
            raise
        except DataError as err:
            raise BadDataError(
                f"cannot read {data_format} partition {uri}: {err.__cause__ or err}. The file is corrupt or not "
                f"{data_format}: re-run the upstream task that writes it, or fix data.format in the spec."
            ) from None
        files.append({"uri": uri, "sha256": digest, "rows": rows, "partition": label})
        log.debug("read %s: %d rows, sha256 %s", uri, rows, digest[:12])
    report = validator.report(files)
    if quality is not None:
        _add_quality(report, quality.check(), quality_severity)
    return report, files, view.view() if view is not None else None


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


def _add_quality(report: ValidationReport, rows: list[dict[str, Any]], severity: str) -> None:
    """The history checks into the report: each finding on its own row (unless the contract already failed
    that column on that day: one problem, one row), the passes one row per check."""
    import re

    failed_here = {
        (r["column"], day) for r in report.failed + report.warnings
        for day in [r["partition"], *re.findall(r"\d{4}-\d{2}-\d{2}", str(r["partition"]))]
    }  # fmt: skip
    passed: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["passed"]:
            passed.setdefault(row["check"], []).append(row)
        elif (row["column"], row["partition"]) not in failed_here:
            report.add(
                row["check"], row["column"], row["expected"], row["observed"], False, severity,
                partition=row["partition"], offending=row["offending"], kind="quality",
            )  # fmt: skip
    for check, ok in passed.items():
        days = sorted({r["partition"] for r in ok})
        columns = sorted({r["column"] for r in ok})
        if len(ok) == 1:
            (r,) = ok
            report.add(check, r["column"], r["expected"], r["observed"], True, partition=r["partition"], kind="quality")
            continue
        report.add(
            check, ", ".join(columns) if len(columns) <= 3 else f"{len(columns)} columns",
            "within its history's band", f"{len(ok)} of {len(ok)} in band", True,
            partition=days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}", kind="quality",
        )  # fmt: skip


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
