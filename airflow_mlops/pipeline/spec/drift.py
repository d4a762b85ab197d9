"""The drift sections: per-feature rules, the sensor, retraining."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from airflow_mlops.schema import Fraction, PositiveInt, Section

if TYPE_CHECKING:
    from airflow_mlops.data.drift.scores import DriftPolicy


class NumericDrift(Section):
    metric: Literal["ks", "psi"] = "ks"
    """what decides: ks or psi"""
    ks: Fraction = Field(0.05, description="KS distance above which a numeric feature drifted")
    psi: Annotated[float, Field(ge=0, le=10)] = 0.1
    """bias-corrected PSI threshold, where PSI decides"""


class CategoricalDrift(Section):
    metric: Literal["hellinger", "psi"] = "hellinger"
    """what decides: hellinger or psi"""
    hellinger: Fraction = Field(
        0.05, description="Hellinger distance above which a categorical feature drifted"
    )
    psi: Annotated[float, Field(ge=0, le=10)] = 0.1
    """bias-corrected PSI threshold, where PSI decides"""


class FeatureDrift(Section):
    metric: Literal["ks", "hellinger", "psi"] | None = None
    """the deciding metric of this feature"""
    threshold: Annotated[float, Field(ge=0, le=10)] | None = None
    """the threshold of this feature"""


class SensorSettings(Section):
    mode: Literal["deferrable", "reschedule", "poke"] = "deferrable"
    """how wait_for_partition and detect_drift wait: deferrable (in the triggerer, no worker slot), reschedule or poke"""
    timeout: PositiveInt = Field(3600, description="seconds from the first check")
    poke_interval: PositiveInt = 60
    """seconds between checks"""
    on_timeout: Literal["skip", "fail"] = "skip"
    """skip: sensor and downstream skipped; fail: the task fails, no retry; never applied to real errors"""


class Drift(Section):
    """Drift sensing against the champion's training data (``drift``)."""

    numeric: NumericDrift = Field(default_factory=NumericDrift)
    """numeric features"""
    categorical: CategoricalDrift = Field(default_factory=CategoricalDrift)
    """categorical features"""
    decision: Literal["importance", "share"] = "importance"
    """what makes the data set drift: importance (its drifted features carry at least importance_share of the champion's permutation importance; falls back to drift_share where none is recorded) or share (drift_share of the features drifted)"""
    importance_share: Fraction = Field(
        0.2, description="share of the champion's importance that drifted features must carry"
    )
    drift_share: Fraction = Field(0.3, description="share of drifted features that means drift")
    min_rows: PositiveInt = Field(100, description="fewer rows: insufficient data, no decision")
    sensor: SensorSettings = Field(default_factory=SensorSettings)
    """how the monitor's sensors wait"""
    features: dict[str, FeatureDrift] = Field(
        default_factory=dict, description="per-feature metric/threshold"
    )

    def policy(self) -> DriftPolicy:
        """The drift policy the monitor's sensor decides by: this section without its ``sensor`` settings."""
        from airflow_mlops.data.drift.scores import DriftPolicy

        return DriftPolicy.from_dict(self.model_dump(exclude={"sensor"}))


class Retraining(Section):
    enabled: bool = True
    """build the retraining DAG, and trigger it on drift"""
    window_days: PositiveInt | None = Field(None, description="default: training.window_days")
    cooldown_hours: Annotated[float, Field(ge=0)] = 24.0
    """data time between two drift-triggered retrainings; reports in between wait as pending"""
    consecutive_windows: PositiveInt = 1
    """trigger only after this many back-to-back drifted windows"""
