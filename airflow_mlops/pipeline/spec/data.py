"""The data sections: where the partitions are, which columns, their contract and quality checks."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from airflow_mlops.schema import ColumnName, Fraction, PositiveInt, Section, problem
from airflow_mlops.schema import fail as _fail
from airflow_mlops.schema import shown as _shown


class Completeness(Section):
    """When a partition counts as complete (``data.completeness``); every rule given must hold."""

    min_rows: PositiveInt | None = Field(None, description="at least this many rows (read from file footers)")
    marker: str | None = Field(
        None,
        min_length=1,
        description="a marker file: a bare name beside each partition, or a path with {date}",
    )
    asset: str | None = Field(
        None, min_length=1, description="an upstream Asset (by name) that must have an event for the interval"
    )
    verify_pages: bool = Field(
        True, description="once complete, read every Parquet data page: a damaged file fails the wait, named"
    )


class Data(Section):
    """Where the partitions are (``data``)."""

    uri: str = Field(
        min_length=1,
        description="partition URI; {date} stands for each day of the window, Jinja (e.g. "
        "{{ var.value.mlops_data_root }}) is rendered at run time",
    )
    format: Literal["parquet", "csv"] = Field("parquet", description="file format of the partitions")
    completeness: Completeness = Field(
        default_factory=Completeness, description="when a partition is complete"
    )
    on_extra_columns: Literal["warn", "fail", "ignore"] = Field(
        "warn",
        description="a column the spec does not name: warn (logged, the pipeline goes on), fail or ignore",
    )


class Storage(Section):
    """Where profiles, reports, checkpoints and predictions go (``storage``)."""

    uri: str = Field(min_length=1, description="artifact root (local path or any fsspec URL such as s3://)")


class Features(Section):
    """Model inputs by kind (``features``)."""

    numeric: list[ColumnName] = Field(default_factory=list, description="numeric input columns")
    categorical: list[ColumnName] = Field(default_factory=list, description="categorical input columns")
    text: ColumnName | None = Field(None, description="the text column (LoRA model kinds)")

    @property
    def names(self) -> list[str]:
        return [*self.numeric, *self.categorical, *([self.text] if self.text else [])]

    @model_validator(mode="after")
    def _each_column_once(self) -> Features:
        names = self.names
        dups = sorted({f for f in names if names.count(f) > 1})
        if dups:
            raise _fail(*(problem("", d, "each column in one feature list only") for d in dups))
        return self


class Bounds(Section):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise _fail(problem("min", self.min, f"a value <= max ({_shown(self.max)})"))
        return self


Dtype = Literal["integer", "float", "number", "string", "boolean", "datetime"]
Severity = Literal["fail", "warn"]


class ColumnConstraint(Section):
    """Rules for one column (``constraints.columns.<column>``)."""

    dtype: Dtype | None = Field(None, description="expected type")
    nullable: bool = Field(True, description="false: no null allowed")
    max_null_fraction: Fraction | None = Field(None, description="largest share of nulls allowed")
    min: float | None = Field(None, description="smallest value allowed")
    max: float | None = Field(None, description="largest value allowed")
    allowed: list[Any] | None = Field(None, description="the only values allowed")
    unique: bool = Field(False, description="no value twice in the window")
    regex: str | None = Field(None, description="every value must match this regular expression")
    """every non-null value must match in full"""
    max_age_hours: Annotated[float, Field(ge=0)] | None = Field(
        None, description="freshness: the newest timestamp is at most this old at the window end"
    )
    mean: Bounds | None = Field(None, description="bounds on the column mean")
    quantiles: dict[str, Bounds] | None = Field(
        None, description="bounds per quantile, e.g. {'0.5': {min: 1}}"
    )
    severity: Severity = Field("fail", description="warn: report only")
    """fail: stops the pipeline; warn: logged and reported in the task's XCom `warnings`"""

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise _fail(problem("", value, f"a valid regular expression ({err})")) from None
        return value

    @field_validator("quantiles")
    @classmethod
    def _quantile_keys(cls, value: dict[str, Bounds] | None) -> dict[str, Bounds] | None:
        bad = []
        for q in value or {}:
            try:
                ok = 0 < float(q) < 1
            except ValueError:
                ok = False
            if not ok:
                bad.append(problem(q, q, "a quantile between 0 and 1, e.g. 0.5"))
        if bad:
            raise _fail(*bad)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ColumnConstraint:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise _fail(problem("min", self.min, f"a value <= max ({_shown(self.max)})"))
        return self


class ClassBalance(Section):
    """The target's classes per partition (``constraints.class_balance``; classification models only)."""

    enabled: bool = Field(True, description="false: no class-balance check")
    max_shift: Annotated[float, Field(gt=0, le=1)] = Field(
        0.25, description="largest gap between a class's share in a partition and in the window"
    )
    min_rows: PositiveInt = Field(30, description="partitions with fewer labelled rows are not judged")
    severity: Severity | None = Field(None, description="fail | warn (default: constraints.severity)")


class Constraints(Section):
    """The data contract checked on every window and, where a window total would hide a bad day, on every
    partition (``constraints``). Column ``mean`` and ``quantiles`` bounds are distribution expectations:
    they gate the scheduled training only; the drift monitor reports them in its drift report, and a
    retraining (which follows drift on purpose) logs them as warnings."""

    min_rows: PositiveInt = Field(1, description="fewest rows a window may have")
    max_rows: PositiveInt | None = Field(None, description="most rows a window may have")
    partition_min_rows: PositiveInt | None = Field(
        None,
        description="fewest rows a partition may have (default: 20% of the median partition of the window, "
        "with at least 3 partitions)",
    )
    columns: dict[str, ColumnConstraint] = Field(default_factory=dict, description="rules per column")
    max_duplicate_fraction: Fraction | None = Field(
        0.05,
        description="largest share of duplicate rows, in the window and in each partition (null: no check)",
    )
    class_balance: ClassBalance = Field(
        default_factory=ClassBalance, description="per partition: the target's classes against the window's"
    )
    severity: Severity = Field("fail", description="default severity of the window-level rules")
    """severity of the window-level rules (fail | warn)"""


class EventTime(Section):
    """A time column whose values must fall inside their partition's own day (``quality.event_time``)."""

    column: str = Field(min_length=1, description="the event-time column (timestamps or ISO strings)")
    tolerance_hours: Annotated[float, Field(ge=0)] = Field(0, description="how far past the day's edges is fine")
    max_outside_fraction: Annotated[float, Field(ge=0, le=1)] = Field(
        0, description="the share of a day's rows that may lie outside it"
    )


QualityCheck = Literal["volume", "nulls", "scale", "stuck", "new_categories"]


class Quality(Section):
    """Data quality learned from history (``quality``): each partition against its own nearest clean days.
    The training path gates on a finding; monitoring reports it and alerts ``quality_anomaly``."""

    enabled: bool = True
    checks: list[QualityCheck] = Field(
        default_factory=lambda: ["volume", "nulls", "scale", "stuck", "new_categories"],
        description="volume (rows: floor and ceiling), nulls (spikes), scale (unit changes), stuck (one value), "
        "new_categories (a flood of values never seen)",
    )
    history_days: Annotated[int, Field(ge=3, le=365)] = Field(30, description="the nearest clean days compared with")
    min_history: Annotated[int, Field(ge=3)] = Field(5, description="fewer clean days: the checks wait (reported)")
    sigmas: Annotated[float, Field(gt=0)] = Field(4.0, description="band width in robust standard deviations")
    volume_factor: Annotated[float, Field(ge=1)] = Field(3.0, description="rows within this factor always pass")
    scale_factor: Annotated[float, Field(ge=1)] = Field(3.0, description="a magnitude within this factor always passes")
    max_new_category_share: Annotated[float, Field(ge=0, le=1)] = Field(
        0.05, description="the share of rows with values the history never held"
    )
    event_time: EventTime | None = None
    """a time column checked against each partition's own day"""
