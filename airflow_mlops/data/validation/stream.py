"""The streaming validator: the spec's constraints checked over a window's record batches in one pass and
bounded memory (:class:`StreamValidator`), one frame (:func:`validate_frame`), or a window's files read,
validated and profiled together (:func:`validate_and_profile`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.data.validation import checks
from airflow_mlops.data.validation.checks import (
    DEFAULT_MAX_DUPLICATE_FRACTION,
    ColumnBatch,
    ColumnState,
    Partition,
    TableBatch,
)
from airflow_mlops.data.validation.report import WINDOW, ValidationReport, partition_label

if TYPE_CHECKING:
    import pandas as pd


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


class StreamValidator:
    """The spec's constraints checked over a stream of record batches, in bounded memory, per partition and
    over the window.

    The checks are the registry's (:mod:`~airflow_mlops.data.validation.checks`: one class per kind), built
    for what the spec asks. Each batch updates every column's shared state (nulls, dtypes) and each check's
    own counters (inf, min/max, sums, out-of-set and regex misses with a few examples, the newest timestamp,
    a KLL sketch for quantile rules, 64-bit hashes for the uniqueness and duplicate-row checks: 8 bytes per
    distinct value). Each partition (a day) keeps its row count, its columns and the number of offending rows
    per check, so every failed check names the day(s) that hold the bad rows, and checks that a window-wide
    total would hide run per partition: its row count against the window's median, its class balance against
    the window's, its share of duplicate rows, its nulls. Nothing else grows with the partition.
    :meth:`report` gives the same :class:`ValidationReport` as checking the whole frame.

    ``expectations`` is the severity of the distribution expectations (mean and quantile bounds, a shifted
    class balance): ``fail`` where they gate (training), ``warn`` where they are only reported (the drift
    monitor hands them to its drift report; a retraining follows drift on purpose). ``on_extra_columns``
    (``warn``, ``fail`` or ``ignore``) decides what a column the spec does not name does.
    """

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
        self.table_severity = self.constraints.get("severity") or "fail"
        self.rules: dict[str, dict[str, Any]] = dict(self.constraints.get("columns") or {})
        self.watched = list(dict.fromkeys([*self.features, *([target] if target else []), *self.rules]))
        self.n = 0
        self.columns_seen: list[str] | None = None
        self.cols: dict[str, ColumnState] = {}
        self.parts: dict[str, Partition] = {}
        self.extra: dict[str, list[str]] = {}  # column the spec does not name -> partitions holding it
        self.files: list[dict[str, Any]] | None = None  # the files read (for the empty-partition check)
        self.flat: list[str] = []  # the last batch's columns without nested values
        self.checks = checks.build(self)
        self._by_column: dict[str, list[checks.Check]] = {}
        for check in self.checks:
            if check.scope in ("feature", "target", "column"):
                self._by_column.setdefault(check.column, []).append(check)
        self._table = [c for c in self.checks if c.scope == "table"]

    @property
    def max_duplicate_fraction(self) -> float | None:
        return self.constraints.get("max_duplicate_fraction", DEFAULT_MAX_DUPLICATE_FRACTION)  # None: off

    def update(self, df: pd.DataFrame, partition: str = WINDOW, source: str | None = None) -> None:
        """Add one batch of ``partition`` (a day's label); ``source`` (the file) names it in errors."""
        from airflow_mlops.errors import BadDataError

        if self.columns_seen is None:
            self.columns_seen = [str(c) for c in df.columns]
        part = self.parts.setdefault(partition, Partition())
        if not part.columns:
            part.columns = frozenset(map(str, df.columns))
            for name in part.columns - set(self.watched):
                self.extra.setdefault(name, []).append(partition)
        if df.empty:
            return
        self.n += len(df)
        part.rows += len(df)
        flat: list[str] = []
        self.flat = flat
        for name in map(str, df.columns):
            nested = _nested_values(df[name].dropna())
            if nested is None:
                flat.append(name)
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
            batch = ColumnBatch(name, df[name], part, partition)
            self.cols.setdefault(name, ColumnState()).update(batch, numeric=name in self.numeric)
            for check in self._by_column.get(name, ()):
                check.update(batch)
        table = TableBatch(df, part, flat)
        for check in self._table:
            check.update(table)

    def where(self, check: str, column: str) -> tuple[str, int]:
        """The partitions holding a check's offending rows (the worst three, with their counts), and the total."""
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
        """Every check's rows, in the registry's order; ``partitions`` (the files read, with their rows) adds
        the empty-partition check. Checks of the window's rows and columns need rows; a column's checks need
        the column."""
        report = ValidationReport()
        self.files = partitions
        seen = set(self.columns_seen or [])
        for check in self.checks:
            if check.scope != "window" and (self.n == 0 or (check.column != WINDOW and check.column not in seen)):
                continue
            check.report(self, report)
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
