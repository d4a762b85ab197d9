"""The data contract's checks: one class per check kind, in a registry (:data:`REGISTRY`, in report order).

A check is built for one scope:

- ``window``: the window as a whole, reported even when it holds no rows (row counts, empty or small
  partitions, columns present, extra columns);
- ``feature``: every feature the spec lists (not all null; numeric dtype and finite values for numeric ones);
- ``target``: the target column (not null, class balance per partition);
- ``table``: every row of the window (duplicate rows);
- ``column``: one column the spec's ``constraints.columns`` gives a rule, when the rule asks for the check
  (``dtype``, ``nullable``, ``max_null_fraction``, ``min``/``max``, ``allowed``, ``unique``, ``regex``,
  ``max_age_hours``, ``mean``, ``quantiles``).

Each check keeps its own counters, updated from every record batch (:meth:`Check.update`: a
:class:`ColumnBatch`, or a :class:`TableBatch` for ``table`` checks), and adds its rows to the report at the
end (:meth:`Check.report`). What several checks of a column read (its nulls and dtypes) is the column's
:class:`ColumnState`, which the validator updates once per batch; the offending rows of each check are
counted per partition (:class:`Partition`), so a failed check names the day(s) holding them.

A new kind of check is a subclass with its ``name`` and ``scope``, an :meth:`~Check.applies` that says
when the spec asks for it, and the :func:`register` decorator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from airflow_mlops.data.validation.report import WINDOW, ValidationReport, partition_label
from airflow_mlops.tables import fmt

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_MAX_DUPLICATE_FRACTION = 0.05
DEFAULT_CLASS_BALANCE = {"max_shift": 0.25, "min_rows": 30}
DEFAULT_PARTITION_MIN_SHARE = 0.2  # a partition with fewer rows than this share of the median is named
MAX_CLASSES = 20  # a target with more distinct values is not a class label
SCOPES = ("window", "feature", "target", "table", "column")  # the report's order
SAMPLES = 5  # offending values shown per check


class Window(Protocol):
    """What the checks read of the window being checked (the :class:`~.stream.StreamValidator`)."""

    constraints: dict[str, Any]
    features: list[str]
    numeric: set[str]
    target: str | None
    rules: dict[str, dict[str, Any]]
    window_end: Any
    expectations: str  # the severity of distribution expectations: fail or warn
    on_extra_columns: str
    table_severity: str
    n: int
    columns_seen: list[str] | None
    cols: dict[str, ColumnState]
    parts: dict[str, Partition]
    extra: dict[str, list[str]]
    files: list[dict[str, Any]] | None

    @property
    def max_duplicate_fraction(self) -> float | None: ...

    def where(self, check: str, column: str) -> tuple[str, int]: ...


@dataclass
class Partition:
    """Per-partition counts: rows, the columns it holds, and the offending rows per (check, column)."""

    rows: int = 0
    columns: frozenset[str] = frozenset()
    offending: dict[tuple[str, str], int] = field(default_factory=dict)

    def count(self, check: str, column: str, n: int) -> None:
        if n:
            self.offending[(check, column)] = self.offending.get((check, column), 0) + int(n)


@dataclass
class ColumnState:
    """What several checks of one column read: its nulls and the dtypes its batches came in."""

    nulls: int = 0
    dtypes: list[str] = field(default_factory=list)
    numeric_ok: bool = True  # every batch had a numeric dtype

    def update(self, batch: ColumnBatch, numeric: bool) -> None:
        nulls = int(batch.isna.sum())
        self.nulls += nulls
        batch.part.count("nulls", batch.name, nulls)
        self.numeric_ok &= batch.is_num
        if str(batch.series.dtype) not in self.dtypes:
            self.dtypes.append(str(batch.series.dtype))
        if numeric and not batch.is_num:  # a column the spec calls numeric
            batch.part.count("numeric dtype", batch.name, len(batch.series))

    @property
    def dtype_text(self) -> str:
        return "/".join(self.dtypes)


class ColumnBatch:
    """One column of one record batch, with what its checks compute from it (each computed once, on demand)."""

    def __init__(self, name: str, series: pd.Series, part: Partition, label: str = WINDOW) -> None:
        self.name, self.series, self.part, self.label = name, series, part, label

    @cached_property
    def isna(self) -> Any:
        return self.series.isna()

    @cached_property
    def values(self) -> pd.Series:
        """The non-null values."""
        return self.series[~self.isna]

    @cached_property
    def is_num(self) -> bool:
        from pandas.api import types as t

        return bool(t.is_numeric_dtype(self.series) and not t.is_bool_dtype(self.series))

    @cached_property
    def _floats(self) -> tuple[Any, Any]:
        import numpy as np

        arr = self.values.to_numpy(dtype="float64", na_value=np.nan)
        inf = np.isinf(arr)
        return arr[~inf], inf

    @property
    def finite(self) -> Any:
        """The finite values as float64 (a numeric column only)."""
        return self._floats[0]

    @property
    def infs(self) -> int:
        return int(self._floats[1].sum())


@dataclass
class TableBatch:
    """A whole record batch: its frame, its partition and its columns without nested values."""

    frame: pd.DataFrame
    part: Partition
    flat: list[str]


class Check:
    """One kind of check, built for one scope (and one column for ``feature``, ``target`` and ``column``)."""

    name: ClassVar[str] = ""
    scope: ClassVar[str] = "column"

    def __init__(self, column: str = WINDOW, rule: dict[str, Any] | None = None) -> None:
        self.column = column
        self.rule = rule or {}

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        """Whether the spec asks for this check on ``column`` (``rule``: its constraints, if any)."""
        return True

    def update(self, batch: Any) -> None:
        """Count what the report needs from one batch (a :class:`ColumnBatch` or :class:`TableBatch`)."""

    def report(self, v: Window, out: ValidationReport) -> None:
        raise NotImplementedError

    @property
    def severity(self) -> str:
        return self.rule.get("severity") or "fail"

    def add(
        self, v: Window, out: ValidationReport, expected: str, observed: Any, passed: bool,
        severity: str | None = None, *, key: str | None = None, check: str | None = None, **kw: Any,
    ) -> None:  # fmt: skip
        """A row of this check; ``key`` (the counted check) names the partitions holding its offending rows."""
        if key is not None and "partition" not in kw:
            kw["partition"], kw["offending"] = v.where(key, self.column)
        out.add(check or self.name, self.column, expected, observed, passed, severity or self.severity, **kw)


REGISTRY: list[type[Check]] = []


def register(cls: type[Check]) -> type[Check]:
    """Add a check kind to the registry (the report lists a scope's checks in registration order)."""
    if cls.scope not in SCOPES or not cls.name:
        raise TypeError(f"{cls.__name__}: a check needs a name and one of the scopes {SCOPES}")
    REGISTRY.append(cls)
    return cls


def build(v: Window) -> list[Check]:
    """The checks the spec asks of this window, in report order: by scope, then column, then registry order."""
    columns = {
        "window": [WINDOW], "feature": v.features, "target": [v.target] if v.target else [], "table": [WINDOW],
        "column": list(v.rules),
    }  # fmt: skip
    built = []
    for scope in SCOPES:
        for column in columns[scope]:
            rule = (v.rules.get(column) or {}) if scope == "column" else {}
            built += [cls(column, rule) for cls in REGISTRY if cls.scope == scope and cls.applies(v, column, rule)]
    return built


def _shown(labels: list[str]) -> str:
    return ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else "")


def _sample(bag: set[str] | list[str], values: Any) -> None:
    for value in values:
        if len(bag) >= SAMPLES:
            return
        if isinstance(bag, set):
            bag.add(str(value))
        elif str(value) not in bag:
            bag.append(str(value))


# --- the window ---------------------------------------------------------------------------------------------


@register
class EmptyPartitions(Check):
    """A day whose files hold no rows (several part files of which some are empty are a good day)."""

    name, scope = "empty partitions", "window"

    def report(self, v: Window, out: ValidationReport) -> None:
        if not v.files:
            return
        days: dict[str, list[dict[str, Any]]] = {}
        for p in v.files:
            days.setdefault(p.get("partition") or partition_label(p["uri"]), []).append(p)
        empty = [(day, files) for day, files in days.items() if not any(f.get("rows") for f in files)]
        shown = ", ".join(
            day if day == files[0]["uri"].rstrip("/").rsplit("/", 1)[-1]
            else f"{day} ({', '.join(f['uri'].rstrip('/').rsplit('/', 1)[-1] for f in files)})"
            for day, files in empty[:3]
        ) + (", ..." if len(empty) > 3 else "")  # fmt: skip
        out.add("empty partitions", WINDOW, "0", len(empty), not empty, partition=shown or WINDOW, offending=None)


@register
class RowCount(Check):
    """The window's rows: at least ``min_rows`` (1 by default); at most ``max_rows`` where the spec sets it."""

    name, scope = "min rows", "window"

    def report(self, v: Window, out: ValidationReport) -> None:
        min_rows = v.constraints.get("min_rows") or 1
        out.add("min rows", WINDOW, f">= {min_rows}", v.n, v.n >= min_rows)
        max_rows = v.constraints.get("max_rows")
        if max_rows:
            out.add("max rows", WINDOW, f"<= {max_rows}", v.n, v.n <= max_rows, v.table_severity)


@register
class PartitionRows(Check):
    """A partition far smaller than its window's others (a day with 5 rows among days of 2,000) is named,
    even when the window's total passes ``min_rows``; ``partition_min_rows`` sets a fixed floor."""

    name, scope = "partition rows", "window"

    def report(self, v: Window, out: ValidationReport) -> None:
        import statistics

        sized = [(label, p.rows) for label, p in v.parts.items() if label != WINDOW]
        if not sized:
            return
        fixed = v.constraints.get("partition_min_rows")
        if fixed:
            floor, expected = int(fixed), f">= {fixed}"
        elif len(sized) >= 3:
            median = statistics.median(r for _, r in sized)
            floor = math.ceil(DEFAULT_PARTITION_MIN_SHARE * median)
            expected = f">= {floor} ({DEFAULT_PARTITION_MIN_SHARE:.0%} of the median partition, {fmt(median)})"
        else:
            return
        small = [(label, r) for label, r in sized if 0 < r < floor]  # empty ones are named above
        for label, rows in small:
            out.add(self.name, WINDOW, expected, rows, False, v.table_severity, partition=label, offending=rows)
        if not small:
            out.add(self.name, WINDOW, expected, f"min {min((r for _, r in sized if r), default=0)}", True)


@register
class ColumnPresent(Check):
    """Every column the spec needs (features, target, columns with rules) is in every partition: a partition
    that lacks one (renamed or dropped upstream) is named with its rows."""

    name, scope = "column present", "window"

    def report(self, v: Window, out: ValidationReport) -> None:
        seen = set(v.columns_seen or [])
        required = [*v.features, *([v.target] if v.target else [])]
        for col in [*required, *[c for c in v.rules if c not in required]]:
            lacking = [label for label, p in v.parts.items() if p.columns and col not in p.columns]
            present = col in seen and not lacking
            out.add(
                self.name, col, "present", "present" if present else "missing", present,
                partition=_shown(lacking) or WINDOW,
                offending=sum(v.parts[x].rows for x in lacking) if lacking else None,
            )  # fmt: skip


@register
class ExtraColumns(Check):
    """Columns the spec does not name, one row each with the partitions holding it: producers add columns;
    ``on_extra_columns`` decides (``warn`` by default: reported, ignored by the pipeline)."""

    name, scope = "extra column", "window"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return v.on_extra_columns != "ignore"

    def report(self, v: Window, out: ValidationReport) -> None:
        severity = "fail" if v.on_extra_columns == "fail" else "warn"
        for name in sorted(v.extra):
            where = v.extra[name]
            out.add(
                self.name, name, "named in the spec (data.on_extra_columns)", "not in the spec", False, severity,
                partition=_shown(where), offending=sum(v.parts[x].rows for x in where),
            )  # fmt: skip


# --- every feature --------------------------------------------------------------------------------------------


@register
class NotAllNull(Check):
    """A feature has values: over the window, and on each day (a day whose column is all null hides in a
    window's total)."""

    name, scope = "not all null", "feature"

    def report(self, v: Window, out: ValidationReport) -> None:
        nulls, n = v.cols[self.column].nulls, v.n
        self.add(v, out, f"< {n} nulls", nulls, nulls < n, key="nulls")
        if nulls >= n:
            return
        for label, p in v.parts.items():
            if label != WINDOW and p.rows and p.offending.get(("nulls", self.column), 0) == p.rows:
                self.add(v, out, "some values", f"all {p.rows} null", False, partition=label, offending=p.rows)


@register
class NumericDtype(Check):
    """A numeric feature came as numbers in every batch."""

    name, scope = "numeric dtype", "feature"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return column in v.numeric

    def report(self, v: Window, out: ValidationReport) -> None:
        state = v.cols[self.column]
        self.add(v, out, "number", state.dtype_text, state.numeric_ok, key="numeric dtype")


@register
class Finite(Check):
    """A numeric feature holds no infinite values (reported when it is numeric at all)."""

    name, scope = "finite", "feature"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return column in v.numeric

    def __init__(self, column: str = WINDOW, rule: dict[str, Any] | None = None) -> None:
        super().__init__(column, rule)
        self.infs = 0

    def update(self, batch: ColumnBatch) -> None:
        if batch.is_num:
            self.infs += batch.infs
            batch.part.count(self.name, self.column, batch.infs)

    def report(self, v: Window, out: ValidationReport) -> None:
        if v.cols[self.column].numeric_ok:
            self.add(v, out, "0 inf", self.infs, self.infs == 0, key=self.name)


# --- the target -----------------------------------------------------------------------------------------------


@register
class TargetNotNull(Check):
    name, scope = "target not null", "target"

    def report(self, v: Window, out: ValidationReport) -> None:
        nulls = v.cols[self.column].nulls
        self.add(v, out, "0 nulls", nulls, nulls == 0, key="nulls")


@register
class ClassBalance(Check):
    """Each partition's target classes against the window's: a partition with one class where the window has
    several (broken data: a contract check), or a class share further than ``max_shift`` from the window's
    and beyond sampling noise (a shifted distribution: an expectation), is named with its rows. Off for a
    target with more than :data:`MAX_CLASSES` values (not a class label) or ``class_balance: null``."""

    name, scope = "class balance", "target"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return bool(v.constraints.get("class_balance", DEFAULT_CLASS_BALANCE))

    def __init__(self, column: str = WINDOW, rule: dict[str, Any] | None = None) -> None:
        super().__init__(column, rule)
        self.classes: dict[str, dict[Any, int]] = {}  # partition -> class -> rows
        self.labels = True  # few distinct values: a class label

    def update(self, batch: ColumnBatch) -> None:
        if not self.labels:
            return
        counts = self.classes.setdefault(batch.label, {})
        for value, k in batch.values.value_counts().items():
            counts[value] = counts.get(value, 0) + int(k)
        if len({value for c in self.classes.values() for value in c}) > MAX_CLASSES:
            self.labels = False

    def report(self, v: Window, out: ValidationReport) -> None:
        if not self.labels:
            return
        rule = {**DEFAULT_CLASS_BALANCE, **v.constraints.get("class_balance", DEFAULT_CLASS_BALANCE)}
        severity = rule.get("severity") or v.constraints.get("severity") or "fail"
        totals: dict[Any, int] = {}
        for counts in self.classes.values():
            for value, k in counts.items():
                totals[value] = totals.get(value, 0) + k
        n = sum(totals.values())
        if len(totals) < 2 or n == 0:
            return
        share = {value: k / n for value, k in totals.items()}
        expected = f"every class, shares within {fmt(rule['max_shift'])} of the window's"
        bad = 0
        for label, counts in self.classes.items():
            rows = sum(counts.values())
            if label == WINDOW or rows < rule["min_rows"]:
                continue
            present = [value for value, k in counts.items() if k]
            if len(present) == 1:
                self.add(v, out, expected, f"one class only ({present[0]!r})", False, severity, partition=label,
                         offending=rows)  # fmt: skip
                bad += 1
                continue
            for value in totals:
                s = counts.get(value, 0) / rows
                gap = abs(s - share[value])
                noise = 5 * math.sqrt(share[value] * (1 - share[value]) / rows)  # a 5-sigma sampling band
                if gap > rule["max_shift"] and gap > noise:
                    # a shifted label share is a distribution property: it gates the scheduled training and
                    # is reported where the pipeline follows drift on purpose (a retraining)
                    self.add(
                        v, out, expected, f"class {value!r}: {s:.0%} (window {share[value]:.0%})", False,
                        v.expectations if severity == "fail" else severity, partition=label,
                        offending=int(gap * rows), kind="expectation",
                    )  # fmt: skip
                    bad += 1
                    break
        if not bad:
            shown = ", ".join(f"{value!r}: {s:.0%}" for value, s in sorted(share.items(), key=lambda kv: str(kv[0])))
            self.add(v, out, expected, shown, True, "fail")


# --- every row ------------------------------------------------------------------------------------------------


@register
class DuplicateRows(Check):
    """Repeated rows (64-bit hashes of the flat columns, deduplicated as they come): over the window, and per
    partition (a day that repeats itself hides in a window of good ones). ``max_duplicate_fraction: null``
    turns it off."""

    name, scope = "duplicate rows", "table"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return v.max_duplicate_fraction is not None

    def __init__(self, column: str = WINDOW, rule: dict[str, Any] | None = None) -> None:
        from airflow_mlops.data.validation.hashes import HashSet

        super().__init__(column, rule)
        self.hashes = HashSet()
        self.count = 0

    def update(self, batch: TableBatch) -> None:
        import pandas as pd

        if batch.flat:
            hashes = pd.util.hash_pandas_object(batch.frame[batch.flat], index=False).to_numpy()
            self.count += len(hashes)
            batch.part.count(self.name, WINDOW, self.hashes.add(hashes))

    def report(self, v: Window, out: ValidationReport) -> None:
        if not self.count:
            return
        limit, n = v.max_duplicate_fraction, v.n
        dup_rows = self.count - len(self.hashes)
        ok = dup_rows / n <= limit
        self.add(v, out, f"<= {fmt(limit)} of rows", dup_rows / n, ok, v.table_severity, key=self.name)
        for label, p in v.parts.items():
            k = p.offending.get((self.name, WINDOW), 0)
            if label != WINDOW and p.rows and k / p.rows > limit and ok:
                self.add(
                    v, out, f"<= {fmt(limit)} of the partition's rows", k / p.rows, False, v.table_severity,
                    partition=label, offending=k,
                )  # fmt: skip


# --- one column's rule ----------------------------------------------------------------------------------------


@register
class Dtype(Check):
    """``dtype``: integer, float, number, boolean, datetime or string, in every batch."""

    name = "dtype"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return bool(rule.get("dtype"))

    def __init__(self, column: str = WINDOW, rule: dict[str, Any] | None = None) -> None:
        super().__init__(column, rule)
        self.ok = True

    def update(self, batch: ColumnBatch) -> None:
        ok = dtype_matches(batch.series, self.rule["dtype"])
        self.ok &= ok
        if not ok:
            batch.part.count(self.name, self.column, len(batch.series))

    def report(self, v: Window, out: ValidationReport) -> None:
        self.add(v, out, self.rule["dtype"], v.cols[self.column].dtype_text, self.ok, key=self.name)


@register
class NotNull(Check):
    """``nullable: false``."""

    name = "not null"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return rule.get("nullable") is False

    def report(self, v: Window, out: ValidationReport) -> None:
        nulls = v.cols[self.column].nulls
        self.add(v, out, "0 nulls", nulls, nulls == 0, key="nulls")


@register
class NullFraction(Check):
    """``max_null_fraction``: over the window, and per partition (a bad day inside a window of good ones)."""

    name = "null fraction"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return rule.get("max_null_fraction") is not None

    def report(self, v: Window, out: ValidationReport) -> None:
        limit = self.rule["max_null_fraction"]
        frac = v.cols[self.column].nulls / v.n
        self.add(v, out, f"<= {limit}", frac, frac <= limit, key="nulls")
        if frac > limit:
            return
        for label, p in v.parts.items():
            k = p.offending.get(("nulls", self.column), 0)
            if label != WINDOW and p.rows and k / p.rows > limit:
                self.add(v, out, f"<= {limit} of the partition's rows", k / p.rows, False, partition=label,
                         offending=k)  # fmt: skip


@register
class Range(Check):
    """``min`` and ``max`` over the finite values (a ``range`` failure when the column is not numeric)."""

    name = "range"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return rule.get("min") is not None or rule.get("max") is not None

    def __init__(self, column: str = WINDOW, rule: dict[str, Any] | None = None) -> None:
        super().__init__(column, rule)
        self.lo: float | None = None
        self.hi: float | None = None

    def update(self, batch: ColumnBatch) -> None:
        if not batch.is_num or not batch.finite.size:
            return
        finite = batch.finite
        lo, hi = float(finite.min()), float(finite.max())
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)
        if self.rule.get("min") is not None:
            batch.part.count("min", self.column, int((finite < self.rule["min"]).sum()))
        if self.rule.get("max") is not None:
            batch.part.count("max", self.column, int((finite > self.rule["max"]).sum()))

    def report(self, v: Window, out: ValidationReport) -> None:
        low, high = self.rule.get("min"), self.rule.get("max")
        if not v.cols[self.column].numeric_ok:
            self.add(v, out, "a numeric column", v.cols[self.column].dtype_text, False, key="numeric dtype")
            return
        if low is not None:
            self.add(v, out, f">= {fmt(low)}", self.lo, self.lo is None or self.lo >= low, key="min", check="min")
        if high is not None:
            self.add(v, out, f"<= {fmt(high)}", self.hi, self.hi is None or self.hi <= high, key="max", check="max")


@register
class AllowedValues(Check):
    """``allowed``: every value in the set (a few of the others are shown)."""

    name = "allowed values"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return rule.get("allowed") is not None

    def __init__(self, column: str = WINDOW, rule: dict[str, Any] | None = None) -> None:
        super().__init__(column, rule)
        self.allowed = set(self.rule["allowed"])
        self.bad = 0
        self.seen: set[str] = set()

    def update(self, batch: ColumnBatch) -> None:
        bad = batch.values[~batch.values.isin(self.allowed)]
        self.bad += len(bad)
        batch.part.count(self.name, self.column, len(bad))
        _sample(self.seen, bad.unique()[:20])

    def report(self, v: Window, out: ValidationReport) -> None:
        shown = ", ".join(map(repr, sorted(self.seen)))
        self.add(
            v, out, f"in {sorted(map(str, self.allowed))}", f"{self.bad} other ({shown})" if self.bad else 0,
            self.bad == 0, key=self.name,
        )  # fmt: skip


@register
class Unique(Check):
    """``unique``: no non-null value twice (64-bit hashes, 8 bytes per distinct value)."""

    name = "unique"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return bool(rule.get("unique"))

    def __init__(self, column: str = WINDOW, rule: dict[str, Any] | None = None) -> None:
        from airflow_mlops.data.validation.hashes import HashSet

        super().__init__(column, rule)
        self.distinct = HashSet()
        self.repeated = 0

    def update(self, batch: ColumnBatch) -> None:
        import pandas as pd

        repeated = self.distinct.add(pd.util.hash_pandas_object(batch.values, index=False).to_numpy())
        self.repeated += repeated
        batch.part.count(self.name, self.column, repeated)

    def report(self, v: Window, out: ValidationReport) -> None:
        self.add(v, out, "0 duplicates", self.repeated, self.repeated == 0, key=self.name)


@register
class Regex(Check):
    """``regex``: every non-null value, as text, matches in full (a few of the others are shown)."""

    name = "regex"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return bool(rule.get("regex"))

    def __init__(self, column: str = WINDOW, rule: dict[str, Any] | None = None) -> None:
        super().__init__(column, rule)
        self.bad = 0
        self.seen: list[str] = []

    def update(self, batch: ColumnBatch) -> None:
        text = batch.values.astype(str)
        bad = text[~text.str.fullmatch(self.rule["regex"])]
        self.bad += len(bad)
        batch.part.count(self.name, self.column, len(bad))
        _sample(self.seen, bad.unique()[:20])

    def report(self, v: Window, out: ValidationReport) -> None:
        shown = ", ".join(map(repr, self.seen[:3]))
        self.add(
            v, out, f"all match {self.rule['regex']}", f"{self.bad} do not ({shown})" if self.bad else 0,
            self.bad == 0, key=self.name,
        )  # fmt: skip


@register
class Freshness(Check):
    """``max_age_hours``: the newest timestamp is at most that much older than the window's end."""

    name = "freshness"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return rule.get("max_age_hours") is not None

    def __init__(self, column: str = WINDOW, rule: dict[str, Any] | None = None) -> None:
        super().__init__(column, rule)
        self.newest: Any = None

    def update(self, batch: ColumnBatch) -> None:
        import pandas as pd

        stamps = pd.to_datetime(batch.values, utc=True, errors="coerce").dropna()
        if not stamps.empty:
            newest = stamps.max()
            self.newest = newest if self.newest is None else max(self.newest, newest)

    def report(self, v: Window, out: ValidationReport) -> None:
        import pandas as pd

        from airflow_mlops.data.partitions import parse_time

        hours = self.rule["max_age_hours"]
        expected = f"newest within {fmt(hours)} h of the window end"
        if v.window_end is None:
            self.add(v, out, expected, "no window end to compare with", False)
        elif self.newest is None:
            self.add(v, out, expected, "no parseable timestamp", False)
        else:
            age = (pd.Timestamp(parse_time(v.window_end, "window_end")) - self.newest).total_seconds() / 3600
            self.add(v, out, expected, f"{age:.1f} h old (newest {self.newest.isoformat()})", age <= hours)


class Expectation(Check):
    """A distribution expectation (not the data contract): it gates where ``expectations`` is ``fail``
    (training) and is only reported where it is ``warn`` (the drift monitor hands it to its drift report)."""

    def add_expectation(self, v: Window, out: ValidationReport, check: str, bounds: dict[str, float],
                        value: float | None) -> None:  # fmt: skip
        severity = v.expectations if self.severity == "fail" else self.severity
        self.add(v, out, range_text(bounds), value, within(value, bounds), severity, check=check, kind="expectation")


@register
class Mean(Expectation):
    """``mean: {min, max}`` of the finite values."""

    name = "mean"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return bool(rule.get("mean"))

    def __init__(self, column: str = WINDOW, rule: dict[str, Any] | None = None) -> None:
        super().__init__(column, rule)
        self.total, self.count = 0.0, 0

    def update(self, batch: ColumnBatch) -> None:
        if batch.is_num:
            self.total += float(batch.finite.sum())
            self.count += int(batch.finite.size)

    def report(self, v: Window, out: ValidationReport) -> None:
        value = self.total / self.count if v.cols[self.column].numeric_ok and self.count else None
        self.add_expectation(v, out, self.name, self.rule["mean"], value)


@register
class Quantiles(Expectation):
    """``quantiles: {q: {min, max}}`` from a KLL sketch (exact up to a few thousand values, ~1% rank error
    beyond)."""

    name = "quantile"

    @classmethod
    def applies(cls, v: Window, column: str, rule: dict[str, Any]) -> bool:
        return bool(rule.get("quantiles"))

    def __init__(self, column: str = WINDOW, rule: dict[str, Any] | None = None) -> None:
        super().__init__(column, rule)
        self.kll: Any = None

    def update(self, batch: ColumnBatch) -> None:
        if not batch.is_num or not batch.finite.size:
            return
        if self.kll is None:
            import whylogs_sketching as ds

            self.kll = ds.kll_doubles_sketch(k=256)
        self.kll.update(batch.finite)

    def report(self, v: Window, out: ValidationReport) -> None:
        numeric = v.cols[self.column].numeric_ok and self.kll is not None
        for q, bounds in self.rule["quantiles"].items():
            value = float(self.kll.get_quantile(float(q))) if numeric else None
            self.add_expectation(v, out, f"quantile {q}", bounds, value)


def dtype_matches(series: pd.Series, dtype: str) -> bool:
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


def range_text(bounds: dict[str, float]) -> str:
    parts = [
        f">= {fmt(bounds['min'])}" if bounds.get("min") is not None else "",
        f"<= {fmt(bounds['max'])}" if bounds.get("max") is not None else "",
    ]
    return " and ".join(p for p in parts if p)


def within(value: float | None, bounds: dict[str, float]) -> bool:
    if value is None:
        return False
    return (bounds.get("min") is None or value >= bounds["min"]) and (
        bounds.get("max") is None or value <= bounds["max"]
    )
