"""The model-test sections: the champion rule, slices, fairness, robustness, expectations, leakage, promotion."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from airflow_mlops.pipeline.spec.data import Bounds
from airflow_mlops.schema import (
    PERCENT,
    ColumnName,
    Fraction,
    PositiveInt,
    Section,
    fail,
    percent_fraction,
    problem,
)

Metric = str


class Compare(Section):
    """Challenger vs champion (``tests.compare``)."""

    metric: Metric | None = Field(None, description="default: roc_auc / rmse / perplexity by task")
    min_improvement: Annotated[float, Field(ge=0)] | Annotated[str, Field(pattern=PERCENT)] = 0.0
    """how much better than the champion a challenger must be (improvement), or how much worse it may be (non_inferiority): absolute (0.005), or relative to the champion's value ("1%", the same as relative: true with 0.01)"""
    mode: Literal["improvement", "non_inferiority"] = "improvement"
    """improvement: better by min_improvement; non_inferiority: no worse than that"""
    relative: bool = False
    """min_improvement is a fraction of the champion's value (implied by a percentage)"""

    @model_validator(mode="after")
    def _percent(self) -> Compare:
        """A percentage is a relative amount: kept as its fraction with ``relative`` set, so every reader of
        the section sees one form."""
        if isinstance(self.min_improvement, str):
            if "relative" in self.model_fields_set and not self.relative:
                raise fail(
                    problem("relative", False, f"true or unset: min_improvement {self.min_improvement} is relative")
                )
            object.__setattr__(self, "min_improvement", percent_fraction(self.min_improvement))
            object.__setattr__(self, "relative", True)
        return self


class SliceRule(Section):
    column: ColumnName
    """the worst segment of this column (quantile bins for a numeric one) must reach the floor"""
    metric: Metric | None = None
    """default: tests.compare.metric"""
    min: float | None = None
    """floor of the worst segment (higher-is-better metrics)"""
    max: float | None = None
    """ceiling of the worst segment (lower-is-better metrics)"""
    min_rows: PositiveInt = 30
    """smaller segments are listed as too small, not tested"""
    bins: Annotated[int, Field(ge=2)] | None = None
    """quantile bins of a numeric column"""


class FairnessRule(Section):
    group: ColumnName
    """the column whose groups are compared"""
    metric: Literal["demographic_parity_difference", "equal_opportunity_difference"]
    """the gap measured between groups"""
    max: Fraction = Field(description="the largest gap allowed")
    bins: Annotated[int, Field(ge=2)] | None = None
    """quantile bins of a numeric group column"""


class RobustnessRule(Section):
    perturbation: Literal["noise", "missing", "unseen_category", "typo", "case"]
    """what is done to the held-out rows"""
    max_drop: Annotated[float, Field(ge=0)] = Field(
        description="largest metric drop the perturbation may cause"
    )
    fraction: Fraction = 0.05
    """share of values perturbed"""
    scale: Annotated[float, Field(ge=0)] = 0.1
    """standard deviations of noise"""
    metric: Metric | None = None
    """default: tests.compare.metric"""


class ExpectationRule(Section):
    feature: ColumnName
    """the feature changed"""
    direction: Literal["increasing", "decreasing", "invariant"] = "invariant"
    """how the score must move"""
    delta: float | None = None
    """change the feature by this much (default 1)"""
    value: Any = None
    """or set it to this value"""
    tolerance: Annotated[float, Field(ge=0)] = 1e-6
    """moves smaller than this do not count"""
    max_violations: Fraction = 0.0
    """share of rows allowed to move the wrong way"""


class Leakage(Section):
    """Target leakage (``tests.leakage``): a feature that alone gives the target near perfectly fails the test."""

    enabled: bool = True
    max_score: Annotated[float, Field(gt=0.5, le=1)] = Field(
        0.99, description="a single feature's ROC AUC (classification) or |correlation| (regression) at or above this is leakage"
    )
    allow: dict[str, Annotated[str, Field(min_length=3)]] = Field(
        default_factory=dict, description="feature -> the reason it may be this close to the target"
    )


class Tests(Section):
    """Model tests (``tests``): a failed test stops the release and says why."""

    thresholds: dict[Metric, Bounds | float] = Field(
        default_factory=dict,
        description="metric -> {min, max} (a bare number is the floor, or the ceiling "
        "of a lower-is-better metric)",
    )
    compare: Compare = Field(default_factory=Compare)
    """challenger vs champion"""
    slices: list[SliceRule] = Field(default_factory=list)
    """the worst segment of a column must reach a floor"""
    fairness: list[FairnessRule] = Field(default_factory=list)
    """largest gap allowed between groups (classification)"""
    robustness: list[RobustnessRule] = Field(default_factory=list)
    """largest metric drop under a perturbation"""
    expectations: list[ExpectationRule] = Field(default_factory=list)
    """the score must move as expected when a feature changes"""
    leakage: Leakage = Field(default_factory=Leakage)
    """a feature that alone gives the target (identical, |corr| or ROC AUC >= 0.99) fails the test"""


class Promotion(Section):
    mode: Literal["auto", "manual", "approval"] = "auto"
    """auto: promote when the tests allow; manual: register as challenger, promote with `airflow-mlops promote`; approval: a person decides in the run"""
    approval_timeout_hours: Annotated[float, Field(ge=0.01)] = 72.0
    """how long an approval waits; then Reject applies"""
