"""The scoring sections: batch scoring, labels, business value, estimation, schedules."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from airflow_mlops.pipeline.spec.common import CRON_PRESETS
from airflow_mlops.schema import PERCENT, Fraction, NonNegativeInt, PositiveInt, Section, problem
from airflow_mlops.schema import fail as _fail

Schedule = str | None


# a tolerated drop: absolute (0.05) or relative to the tested value ("5%")
Drop = Annotated[float, Field(ge=0)] | Annotated[str, Field(pattern=PERCENT)]
MetricDrop = Drop | dict[str, Drop] | None


class Value(Section):
    """Business value of a binary classifier's decisions (``scoring.labels.value``): each labelled row is worth
    its outcome's amount, times the row's ``column`` when given (revenue at stake, say); live metrics report
    the mean value per row as the metric ``value``, and ``promote_on: value`` promotes on it."""

    column: str | None = Field(None, min_length=1, description="per-row amount (in the labels, or the scored rows); unset: 1 per row")
    tp: float = Field(0.0, description="worth of a true positive (a positive caught), per amount")
    fp: float = Field(0.0, description="worth of a false positive (a needless action), usually negative")
    fn: float = Field(0.0, description="worth of a false negative (a positive missed), usually negative")
    tn: float = Field(0.0, description="worth of a true negative")


class Labels(Section):
    uri: str | None = Field(
        None, min_length=1,
        description="where labels land ({date} per day), joined on scoring.id_column; unset: the scored rows carry their label",
    )  # fmt: skip
    column: str | None = Field(None, min_length=1, description="default: the target")
    delay_days: NonNegativeInt = 0
    """labels of a day land this many days later"""
    promote_after_windows: PositiveInt = 3
    """the fewest live windows a promotion rests on"""
    promotion_alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    """live promotion: the declared chance of promoting a challenger that is not better; it holds however many windows are looked at (an always-valid confidence sequence on the pooled difference)"""
    promotion_min_rows: NonNegativeInt = 500
    """the fewest labelled challenger rows a live promotion rests on"""
    value: Value | None = None
    """business value: the worth of each decision's outcome (a cost matrix, optionally times a per-row amount); live metrics report it as `value`"""
    promote_on: str | None = None
    """the live metric a challenger is promoted on: default the compare metric; `value` with a value section"""
    metrics: list[str] | None = None
    """metrics watched for performance drift; default: every metric the tests declare (thresholds and compare)"""
    max_metric_drop: MetricDrop = None
    """performance drift: the champion's live metric this far below its tested value: one value or per metric, absolute (0.05) or relative to the tested value ("5%"); unset: 5% for rmse and mae (the target's units), 0.05 for the others. A drop must also exceed the sample-size floor"""


class Estimation(Section):
    """Performance estimated from the champion's calibrated scores before labels arrive (any classifier)."""

    enabled: bool = True
    """estimate each scoring window's metrics (and branch into retraining on an estimated drop)"""
    metrics: list[str] | None = None
    """default: the monitored metrics that can be estimated (accuracy, precision, recall, f1, roc_auc)"""
    max_metric_drop: MetricDrop = None
    """an estimated drop beyond this (and beyond the estimate's 95% band) is performance drift: one value or per metric, absolute (0.05) or relative ("5%"); unset: 0.05"""


class Scoring(Section):
    """Batch scoring with the champion (``scoring``), optionally a canary or shadow challenger."""

    schedule: Schedule = "@daily"
    """cron expression, preset or null"""
    data: str | None = Field(None, min_length=1, description="default: data.uri")
    output: str | None = Field(None, min_length=1, description="default: <storage>/<name>/predictions")
    id_column: str | None = Field(None, min_length=1)
    """row id (canary split, label join)"""
    mode: Literal["champion_only", "canary", "shadow"] = "champion_only"
    """champion_only, canary (a share of rows to the challenger, by a hash of the id) or shadow (the challenger scores every row aside)"""
    fraction: Fraction = 0.1
    """share of rows a canary sends to the challenger"""
    chunk_rows: Annotated[int, Field(ge=100)] = 50_000
    """rows per scoring chunk"""
    on_bad_rows: Literal["fail", "quarantine"] = "fail"
    """the data contract is checked before scoring: fail (a broken check is a gate, no prediction file) or quarantine (rows that break a row-level check are set aside in <output>_quarantine/ with their reason and alerted; the rest are scored)"""
    labels: Labels | None = None
    """labels for live metrics: joined on id_column, or carried by the scored rows"""
    estimation: Estimation = Field(default_factory=Estimation)
    """performance estimation without labels (classifiers)"""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: Schedule) -> Schedule:
        return check_schedule(value)

    @model_validator(mode="after")
    def _ids(self) -> Scoring:
        if self.labels is not None and self.labels.uri is not None and not self.id_column:
            raise _fail(
                (
                    "id_column",
                    "missing; labels at labels.uri are joined to predictions by the row id (or leave labels.uri "
                    "unset when the scored rows carry their label)",
                )
            )
        if self.mode == "canary" and not self.id_column:
            raise _fail(
                (
                    "id_column",
                    "missing; a canary splits rows by a hash of their id, so it needs the id column",
                )
            )
        return self

    @property
    def shadow_uri(self) -> str:
        return f"{(self.output or '').rstrip('/')}_shadow"


class Schedules(Section):
    training: Schedule = Field("@weekly", description="cron expression, preset (@daily) or null")
    drift_monitor: Schedule = Field("@daily", description="cron expression, preset (@daily) or null")

    @field_validator("training", "drift_monitor")
    @classmethod
    def _cron(cls, value: Schedule) -> Schedule:
        return check_schedule(value)


def check_schedule(value: str | None) -> str | None:
    """A preset, a cron expression that Airflow's own cron timetable accepts, or null."""
    if value is None or value == "none":
        return None
    if value.startswith("@"):
        if value not in CRON_PRESETS:
            raise _fail(problem("", value, " | ".join(CRON_PRESETS) + " | a cron expression"))
        return value
    from airflow.exceptions import AirflowTimetableInvalid
    from airflow.timetables.interval import CronDataIntervalTimetable

    try:
        CronDataIntervalTimetable(value, "UTC").validate()
    except (AirflowTimetableInvalid, ValueError, KeyError) as err:
        raise _fail(
            problem(
                "",
                value,
                f"a cron expression Airflow accepts (e.g. '0 3 * * *') or a preset such as @daily: {err}",
            )
        ) from None
    return value
