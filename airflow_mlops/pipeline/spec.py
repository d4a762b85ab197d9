"""The pipeline spec, typed: one YAML file per model, validated into a :class:`PipelineSpec`.

Every section is a pydantic model with ``extra="forbid"``, choices are literals and each model kind's
``params`` are typed too, so the JSON Schema (``airflow-mlops spec-schema``) and the generated reference in
``docs/spec-reference.md`` say exactly what is accepted. Cross-section rules (features vs target, metrics per
task, drift rules per feature, cron expressions) are field validators that read the sections validated before
them, so one run reports every problem at once, each as ``key.path: found X; allowed: Y``.

Only pydantic (which Airflow imports anyway) and PyYAML are imported here: DAG files stay light.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from airflow_mlops.errors import SpecError
from airflow_mlops.model.metrics import DEFAULT_METRIC, LOWER_IS_BETTER, METRICS
from airflow_mlops.model.settings import (  # the model section is the model layer's own settings
    MODEL_KINDS,
    LoraCausalLmModel,
    LoraTextModel,
    ModelSpec,
    TabularModel,
    _model_kind,
)
from airflow_mlops.schema import (
    ColumnName,
    Fraction,
    NonNegativeInt,
    PositiveInt,
    Section,
    allowed_text,
    problem,
)
from airflow_mlops.schema import fail as _fail
from airflow_mlops.schema import shown as _shown

if TYPE_CHECKING:
    from airflow_mlops.data.drift.scores import DriftPolicy

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
CRON_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")

# --------------------------------------------------------------------------------------------------- data


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


class Kubernetes(Section):
    """Where and how a training pod runs (``training.kubernetes``)."""

    image: str = Field("airflow-mlops/trainer:0.1.0", min_length=1, description="trainer image")
    namespace: str = Field("default", min_length=1)
    """namespace of the training pod"""
    gpus: Annotated[int, Field(ge=0)] | Annotated[str, Field(pattern=r"\{\{")] = Field(
        0, description="nvidia.com/gpu limit (an integer, or a Jinja template)"
    )
    cpu: str | int | float | None = Field(None, description="CPU request and limit, e.g. '2' or '500m'")
    memory: str | None = Field(None, description="memory request and limit, e.g. '8Gi'")
    node_selector: dict[str, str] = Field(default_factory=dict)
    """node labels the pod must match (e.g. a GPU node pool)"""
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="key, operator, value, effect"
    )
    affinity: dict[str, Any] = Field(default_factory=dict)
    """Kubernetes affinity of the pod"""
    pod_template_file: str | None = None
    """a pod template the pod starts from"""
    mlflow_token_secret: str | None = Field(None, description="Kubernetes secret holding the MLflow token")
    on_finish_action: Literal["delete_pod", "delete_succeeded_pod", "keep_pod"] = "delete_succeeded_pod"
    """delete_succeeded_pod keeps failed pods for inspection"""
    deferrable: bool | None = Field(None, description="wait for the pod in the triggerer")
    kubernetes_conn_id: str = "kubernetes_default"
    """the Airflow connection to the cluster"""


class Training(Section):
    """The training window and where training runs (``training``)."""

    window_days: PositiveInt = Field(7, description="days of data before the interval end")
    concurrent_windows: PositiveInt = Field(
        1,
        description="windows trained, tested and released at once, backfills included (Airflow's "
        "max_active_tis_per_dag; a backfill's own --max-active-runs does not apply to task concurrency)",
    )
    holdout_fraction: Annotated[float, Field(ge=0.01, le=0.9)] = Field(
        0.2, description="share of rows held out for the model tests"
    )
    seed: NonNegativeInt = Field(42, description="seed of the split and of the trainer")
    executor: Literal["local", "kubernetes"] = Field("local", description="a local subprocess, or a pod")
    kubernetes: Kubernetes | None = Field(None, description="the pod (executor: kubernetes)")

    @model_validator(mode="after")
    def _pod_only_on_kubernetes(self) -> Training:
        if self.kubernetes is not None and self.executor != "kubernetes":
            raise _fail(
                problem("kubernetes", "a kubernetes block", "only with training.executor: kubernetes")
            )
        if self.executor == "kubernetes" and self.kubernetes is None:
            object.__setattr__(self, "kubernetes", Kubernetes())
        return self


class Retries(Section):
    """How Airflow retries the pipelines' tasks (``retries``). Tasks whose failure a retry cannot fix (a quality
    gate, a failed model test, a config error) fail at once whatever is set here."""

    count: NonNegativeInt = Field(
        1, description="retries of a failed task (a lost worker, a broker, database or MLflow outage)"
    )
    delay_seconds: Annotated[float, Field(ge=0)] = Field(60, description="wait before the first retry")
    backoff: Annotated[float, Field(ge=0)] = Field(
        0, description="multiply the wait by this at each further retry (0: the same wait each time; 2: doubled)"
    )
    max_delay_seconds: Annotated[float, Field(ge=0)] | None = Field(None, description="cap of the wait with backoff")


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


class Search(Section):
    """Hyper-parameter search (``search``): trials are mapped training tasks, the best goes on."""

    params: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        description="model.params key -> values to try"
    )
    method: Literal["grid", "random"] = "grid"
    """grid or random"""
    max_trials: Annotated[int, Field(ge=1, le=256)] = 4
    """most trials run"""
    seed: NonNegativeInt = 0
    """seed of the random method"""
    metric: str | None = Field(None, description="default: tests.compare.metric")


# ------------------------------------------------------------------------------------------------- tests

Metric = str


class Compare(Section):
    """Challenger vs champion (``tests.compare``)."""

    metric: Metric | None = Field(None, description="default: roc_auc / rmse / perplexity by task")
    min_improvement: Annotated[float, Field(ge=0)] = 0.0
    """how much better than the champion a challenger must be (improvement), or how much worse it may be (non_inferiority)"""
    mode: Literal["improvement", "non_inferiority"] = "improvement"
    """improvement: better by min_improvement; non_inferiority: no worse than that"""
    relative: bool = False
    """min_improvement is a fraction of the champion's value"""


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


# ------------------------------------------------------------------------------------------------- drift


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


# ----------------------------------------------------------------------------------------------- scoring

Schedule = str | None


# a tolerated drop: absolute (0.05) or relative to the tested value ("5%")
Drop = Annotated[float, Field(ge=0)] | Annotated[str, Field(pattern=r"^\d+(\.\d+)?%$")]
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
    """Performance estimated from the champion's calibrated scores before labels arrive (binary classifiers)."""

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


# ------------------------------------------------------------------------------------------------ the spec


# ------------------------------------------------------------------------------------------------ alerts

ALERT_EVENTS = (
    "quality_gate_failed", "quality_anomaly", "task_failed", "sensor_timed_out", "drift_found", "retraining_started",
    "retraining_skipped", "model_promoted", "model_rejected", "model_rolled_back", "performance_drift",
)  # fmt: skip
AlertEvent = Literal[
    "quality_gate_failed", "quality_anomaly", "task_failed", "sensor_timed_out", "drift_found", "retraining_started",
    "retraining_skipped", "model_promoted", "model_rejected", "model_rolled_back", "performance_drift",
]  # fmt: skip


class AlertRoute(Section):
    """Where events go (``alerts``: a list of routes), through Airflow's notifiers."""

    kind: Literal["smtp", "slack", "notifier"]
    """smtp: mail through the smtp provider; slack: the slack provider's incoming-webhook notifier; notifier:
    any BaseNotifier class (``notifier``), which reads the alert from the context's ``mlops_alert``"""
    events: list[AlertEvent] = Field(default_factory=lambda: list(ALERT_EVENTS), min_length=1)
    """the events this route gets (default: all)"""
    conn_id: str | None = Field(None, min_length=1, description="smtp: default smtp_default; slack: slack_webhook_default")
    to: list[str] = Field(default_factory=list, description="smtp: the recipients")
    from_email: str | None = Field(None, description="smtp: the sender (default: the connection's)")
    notifier: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$", description="kind notifier: module.Class")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="kind notifier: the class's arguments")

    @model_validator(mode="after")
    def _complete(self) -> AlertRoute:
        if self.kind == "smtp" and not self.to:
            raise _fail(problem("to", [], "a list of mail addresses (kind smtp)"))
        if self.kind == "notifier" and not self.notifier:
            raise _fail(problem("notifier", None, "a BaseNotifier class path such as my_company.alerts.Pager"))
        if self.kind != "notifier" and (self.notifier or self.kwargs):
            raise _fail(problem("notifier", self.notifier or self.kwargs, "only with kind notifier"))
        return self


class PipelineSpec(Section):
    """One model's pipelines. Fields are validated in this order, and the later ones may read the earlier
    (target reads features and model; tests read the model's task; drift reads features)."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="lower-case letters, digits and '_' (max 63): "
        "the model's registered name and the prefix of its DAG ids",
    )
    description: str = Field("", description="one line shown in the DAG list")
    owner: str = Field("airflow", min_length=1)
    """owner of the DAGs"""
    tags: list[str] = Field(default_factory=list)
    """extra DAG tags (every DAG also gets airflow-mlops, the name and its kind)"""
    start_date: dt.date = Field(strict=False, description="YYYY-MM-DD")
    end_date: dt.date | None = Field(None, strict=False, description="YYYY-MM-DD (inclusive)")
    catchup: bool = False
    """catch up on missed intervals"""
    schedules: Schedules = Field(default_factory=Schedules)
    """when the scheduled DAGs run"""
    data: Data
    storage: Storage
    features: Features
    model: ModelSpec = Field(default_factory=TabularModel)
    """the model family, its task and its training settings"""
    target: str | None = Field(
        None, min_length=1, validate_default=True, description="the label column (a language model: its text)"
    )
    constraints: Constraints = Field(default_factory=Constraints)
    quality: Quality = Field(default_factory=Quality)
    """data quality learned from each partition's history"""
    training: Training = Field(default_factory=Training)
    retries: Retries = Field(default_factory=Retries)
    """how failed tasks are retried"""
    search: Search | None = None
    """hyper-parameter search: trials are mapped training tasks, the best is tested and registered"""
    tests: Tests = Field(default_factory=Tests, validate_default=True)
    promotion: Promotion = Field(default_factory=Promotion)
    """how a version that passed its tests becomes the champion"""
    drift: Drift = Field(default_factory=Drift)
    retraining: Retraining = Field(default_factory=Retraining, validate_default=True)
    """the retraining DAG, triggered by drift or by hand"""
    scoring: Scoring | None = None
    """batch scoring with the champion, optionally a canary or shadow challenger, and live metrics"""
    alerts: list[AlertRoute] = Field(default_factory=list)
    """routes for events that need a person: gate failures, sensor time-outs, drift, retraining, promotions"""

    source: str = Field("<spec>", exclude=True, description="(set by the loader) the spec file")

    @field_validator("end_date")
    @classmethod
    def _after_start(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("start_date")
        if value is not None and start is not None and value < start:
            raise _fail(problem("", str(value), f"a date on or after start_date ({start})"))
        return value

    @field_validator("features")
    @classmethod
    def _some_features(cls, value: Features) -> Features:
        if not value.names:
            raise _fail(("", "none given; list numeric, categorical and/or text columns"))
        return value

    @field_validator("target")
    @classmethod
    def _target(cls, value: str | None, info: ValidationInfo) -> str | None:
        features, model = info.data.get("features"), info.data.get("model")
        if features is None or model is None:
            return value
        out: list[str] = []
        if (
            model.kind == "lora_causal_lm"
        ):  # a language model learns its text column: that column is its target
            if value is not None and features.text and value != features.text:
                out.append(
                    problem(
                        "target",
                        value,
                        f"the text column ({features.text!r}) or nothing, for a language model",
                    )
                )
            value = value or features.text
        elif value is None:
            out.append(("target", "missing; it is required (the label column)"))
        elif value in features.names:
            out.append(problem("target", value, "a column that is not also a feature"))
        if model.kind == "tabular" and not (features.numeric or features.categorical):
            out.append(("features", "a tabular model needs features.numeric and/or features.categorical"))
        if model.kind != "tabular" and not features.text:
            out.append(("features.text", f"missing; a {model.kind} model needs the name of its text column"))
        if out:
            raise _fail(*out, absolute=True)
        return value

    @field_validator("tests")
    @classmethod
    def _metrics_of_the_task(cls, value: Tests, info: ValidationInfo) -> Tests:
        model, features = info.data.get("model"), info.data.get("features")
        if model is None:
            return value
        task = model.task
        ok = METRICS[task]
        out: list[str] = []
        allowed = f"a {task} metric: {', '.join(ok)}"
        for metric in value.thresholds:
            if metric not in ok:
                out.append(problem(f"tests.thresholds.{metric}", metric, allowed))
        compare = value.compare.metric or DEFAULT_METRIC[task]
        if compare not in ok:
            out.append(problem("tests.compare.metric", compare, " | ".join(ok)))
        for group in ("slices", "robustness"):
            for i, rule in enumerate(getattr(value, group)):
                if rule.metric is not None and rule.metric not in ok:
                    out.append(problem(f"tests.{group}[{i}].metric", rule.metric, " | ".join(ok)))
        for i, rule in enumerate(value.slices):
            metric = rule.metric or compare
            bound = "max" if metric in LOWER_IS_BETTER else "min"
            if getattr(rule, bound) is None:
                out.append(
                    (
                        f"tests.slices[{i}].{bound}",
                        f"missing; the floor the worst segment's {metric} must reach",
                    )
                )
        for i, _rule in enumerate(value.fairness):
            if task != "classification":
                out.append(
                    (
                        f"tests.fairness[{i}]",
                        "fairness gaps for classification models only (use tests.slices)",
                    )
                )
        for i, rule in enumerate(value.robustness):
            if rule.perturbation == "unseen_category" and features is not None and not features.categorical:
                out.append(
                    problem(
                        f"tests.robustness[{i}].perturbation",
                        rule.perturbation,
                        "a perturbation for this model's features (it has no categorical feature)",
                    )
                )
        if out:
            raise _fail(*out, absolute=True)
        return value.model_copy(update={"compare": value.compare.model_copy(update={"metric": compare})})

    @field_validator("search")
    @classmethod
    def _search_metric(cls, value: Search | None, info: ValidationInfo) -> Search | None:
        model, tests = info.data.get("model"), info.data.get("tests")
        if value is None or model is None:
            return value
        default = tests.compare.metric if tests is not None else DEFAULT_METRIC[model.task]
        metric = value.metric or default
        if metric not in METRICS[model.task]:
            raise _fail(problem("search.metric", metric, " | ".join(METRICS[model.task])), absolute=True)
        return value.model_copy(update={"metric": metric})

    @field_validator("drift")
    @classmethod
    def _drift_features(cls, value: Drift, info: ValidationInfo) -> Drift:
        features = info.data.get("features")
        if features is None:
            return value
        out = []
        for name, rule in value.features.items():
            if name in features.numeric:
                kinds = ("ks", "psi")
            elif name in features.categorical:
                kinds = ("hellinger", "psi")
            else:
                out.append(
                    problem(f"drift.features.{name}", name, "a numeric or categorical feature of this spec")
                )
                continue
            if rule.metric is not None and rule.metric not in kinds:
                out.append(problem(f"drift.features.{name}.metric", rule.metric, " | ".join(kinds)))
        if out:
            raise _fail(*out, absolute=True)
        return value

    @field_validator("retraining")
    @classmethod
    def _retraining_window(cls, value: Retraining, info: ValidationInfo) -> Retraining:
        training = info.data.get("training")
        if value.window_days is None and training is not None:
            return value.model_copy(update={"window_days": training.window_days})
        return value

    @field_validator("scoring")
    @classmethod
    def _scoring_defaults(cls, value: Scoring | None, info: ValidationInfo) -> Scoring | None:
        if value is None:
            return None
        data, storage, name = info.data.get("data"), info.data.get("storage"), info.data.get("name")
        update: dict[str, Any] = {}
        if value.data is None and data is not None:
            update["data"] = data.uri
        if value.output is None and storage is not None and name is not None:
            update["output"] = f"{storage.uri.rstrip('/')}/{name}/predictions"
        if value.labels is not None and value.labels.column is None:
            target = info.data.get("target")
            update["labels"] = value.labels.model_copy(update={"column": target})
        model = info.data.get("model")
        if model is not None:
            _check_watched_metrics(value, model.task)
        return value.model_copy(update=update) if update else value

    # ----- derived names: what the DAG factory and the CLI read

    @property
    def model_name(self) -> str:
        return self.name

    @property
    def feature_names(self) -> list[str]:
        return self.features.names

    @property
    def training_dag_id(self) -> str:
        return f"{self.name}__train"

    @property
    def monitor_dag_id(self) -> str:
        return f"{self.name}__drift_monitor"

    @property
    def retraining_dag_id(self) -> str:
        return f"{self.name}__retrain"

    @property
    def rollback_dag_id(self) -> str:
        return f"{self.name}__rollback"

    @property
    def scoring_dag_id(self) -> str:
        return f"{self.name}__score"

    @property
    def live_metrics_dag_id(self) -> str:
        return f"{self.name}__live_metrics"

    @property
    def dag_ids(self) -> list[str]:
        """Every DAG this spec compiles into."""
        ids = [self.training_dag_id, self.monitor_dag_id, self.rollback_dag_id]
        if self.retraining.enabled:
            ids.append(self.retraining_dag_id)
        if self.scoring is not None:
            ids.append(self.scoring_dag_id)
            if self.scoring.labels is not None:
                ids.append(self.live_metrics_dag_id)
        return ids

    @property
    def compare_metric(self) -> str:
        return self.tests.compare.metric or DEFAULT_METRIC[self.model.task]

    @property
    def declared_metrics(self) -> list[str]:
        """Every metric the tests declare: the compare metric first, then the thresholds' metrics."""
        return list(dict.fromkeys([self.compare_metric, *self.tests.thresholds]))

    @property
    def live_metrics(self) -> list[str]:
        """What live metrics watch for performance drift (``scoring.labels.metrics``, default: declared)."""
        labels = self.scoring.labels if self.scoring else None
        return list(labels.metrics) if labels is not None and labels.metrics else self.declared_metrics

    @property
    def estimated_metrics(self) -> list[str]:
        """What performance estimation reports for a binary classifier (empty when it does not apply)."""
        from airflow_mlops.model.estimation import ESTIMATED_METRICS

        if self.scoring is None or not self.scoring.estimation.enabled or self.model.task != "classification":
            return []
        wanted = self.scoring.estimation.metrics or self.declared_metrics
        return [m for m in wanted if m in ESTIMATED_METRICS]

    def thresholds(self) -> dict[str, dict[str, float]]:
        """``tests.thresholds`` with bare numbers spelled out as ``{min: x}`` (``{max: x}`` if lower is better)."""
        out: dict[str, dict[str, float]] = {}
        for metric, bounds in self.tests.thresholds.items():
            if isinstance(bounds, Bounds):
                out[metric] = bounds.model_dump(exclude_none=True)
            else:
                out[metric] = {"max" if metric in LOWER_IS_BETTER else "min": bounds}
        return out

    def checks(self) -> dict[str, Any]:
        """Slices, fairness, robustness and expectations as the model-test core reads them."""
        compare = self.compare_metric
        out: dict[str, Any] = {}
        if self.tests.slices:
            out["slices"] = [
                {**r.model_dump(exclude_none=True), "metric": r.metric or compare} for r in self.tests.slices
            ]
        if self.tests.fairness:
            out["fairness"] = [r.model_dump() for r in self.tests.fairness]
        if self.tests.robustness:
            out["robustness"] = [
                {**r.model_dump(), "metric": r.metric or compare} for r in self.tests.robustness
            ]
        if self.tests.expectations:
            rules = []
            for r in self.tests.expectations:
                rule = r.model_dump(exclude={"value", "delta"})
                if "value" in r.model_fields_set:
                    rule["value"] = r.value
                else:
                    rule["delta"] = 1.0 if r.delta is None else r.delta
                rules.append(rule)
            out["expectations"] = rules
        if self.tests.leakage.enabled:
            out["leakage"] = self.tests.leakage.model_dump(exclude={"enabled"})
        return out

    def constraints_dict(self) -> dict[str, Any]:
        """The constraints block as the validation core reads it (every column key present)."""
        c = self.constraints
        return {
            "min_rows": c.min_rows, "max_rows": c.max_rows, "max_duplicate_fraction": c.max_duplicate_fraction,
            "severity": c.severity, "partition_min_rows": c.partition_min_rows,
            "class_balance": (
                c.class_balance.model_dump(exclude={"enabled"})
                if c.class_balance.enabled and self.model.task == "classification" else None
            ),
            "columns": {
                name: {
                    **col.model_dump(exclude={"mean", "quantiles"}),
                    "mean": col.mean.model_dump(exclude_none=True) if col.mean else None,
                    "quantiles": {q: b.model_dump(exclude_none=True) for q, b in col.quantiles.items()}
                    if col.quantiles else None,
                }
                for name, col in c.columns.items()
            },
        }  # fmt: skip


def _check_watched_metrics(scoring: Scoring, task: str) -> None:
    """The metrics live metrics and estimation watch, and the keys of their per-metric drops, are the task's."""
    from airflow_mlops.model.estimation import ESTIMATED_METRICS

    ok = METRICS[task]
    out: list[tuple[str, str]] = []
    groups = [("estimation", scoring.estimation, ESTIMATED_METRICS if task == "classification" else ())]
    if scoring.labels is not None:
        groups.insert(0, ("labels", scoring.labels, ok))
        promote_on = scoring.labels.promote_on
        allowed_on = [*ok, *(["value"] if scoring.labels.value is not None else [])]
        if promote_on is not None and promote_on not in allowed_on:
            out.append(problem("scoring.labels.promote_on", promote_on, " | ".join(allowed_on)
                               + ("" if scoring.labels.value else " (value needs scoring.labels.value)")))  # fmt: skip
        if scoring.labels.value is not None and task != "classification":
            out.append(problem("scoring.labels.value", "a value section", "only with task: classification (a cost matrix of its decisions)"))
    for name, section, allowed in groups:
        for metric in section.metrics or []:
            if metric not in allowed:
                out.append(problem(f"scoring.{name}.metrics", metric, " | ".join(allowed) or "none for this task"))
        if isinstance(section.max_metric_drop, dict):
            for metric in section.max_metric_drop:
                if metric not in ok:
                    out.append(problem(f"scoring.{name}.max_metric_drop.{metric}", metric, " | ".join(ok)))
    if out:
        raise _fail(*out, absolute=True)


# ------------------------------------------------------------------------------------------ errors, loading

_BRANCH = re.compile(
    r"^(int|str|float|bool|constrained-(int|str|float|bytes)"
    r"|(list|dict|function-after|function-before|function-wrap|function-plain|lax-or-strict|json-or-python"
    r"|nullable|tagged-union|union)\[.*\])$"
)


def _is_branch(part: Any) -> bool:
    """pydantic's names for the branches of ``X | Y`` fields, which are no keys of the spec."""
    return isinstance(part, str) and (bool(_BRANCH.match(part)) or part in _SECTION_NAMES)


def _key(loc: tuple[Any, ...]) -> str:
    """``('tests', 'slices', 0, 'metric')`` -> ``tests.slices[0].metric``; union tags and type branches are
    dropped (``model.tabular.params`` -> ``model.params``)."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        if (i and loc[i - 1] == "model" and part in MODEL_KINDS) or _is_branch(part):
            continue
        out += f".{part}" if out else str(part)
    return out or "(top level)"


def _allowed(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    if err["type"] == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
        return "lower-case letters, digits and '_', starting with a letter (max 63)"
    return allowed_text(err)


def _did_you_mean(model: type[BaseModel] | None, key: str) -> str:
    import difflib

    if model is None:
        return ""
    known = sorted(model.model_fields)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{hint}; allowed keys: {', '.join(k for k in known if k != 'source')}"


def _section_at(loc: tuple[Any, ...], raw: Any) -> type[BaseModel] | None:
    """The section model that a location points into (for unknown-key hints)."""
    model: Any = PipelineSpec
    """the model family, its task and its training settings"""
    node = raw
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            model = _item_model(model)
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if part in MODEL_KINDS:
            continue
        if model is PipelineSpec and part == "model":
            kind = _model_kind(node.get("model", {}) if isinstance(node, dict) else {}) or "tabular"
            model = {
                "tabular": TabularModel,
                "lora_text": LoraTextModel,
                "lora_causal_lm": LoraCausalLmModel,
            }[kind]
            node = node.get(part) if isinstance(node, dict) else None
            continue
        field = (
            model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        )
        node = node.get(part) if isinstance(node, dict) else None
        model = _annotation_model(field.annotation) if field is not None else _item_model(model)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _annotation_model(annotation: Any) -> Any:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _annotation_model(arg)
        if found is not None:
            return ("dict", found) if typing.get_origin(annotation) is dict else found
    return None


def _item_model(model: Any) -> Any:
    if isinstance(model, tuple):  # a dict of sections: the key was the item
        return model[1]
    return model


def problems_of(err: ValidationError, raw: Any) -> list[str]:
    """Readable problem lines, one per pydantic error (a cross-section error may carry several)."""
    import json

    out: list[str] = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        key = _key(loc)
        if e["type"] == "spec_problem":
            for sub, text in json.loads(e["ctx"]["problems"]):
                if e["ctx"]["absolute"]:
                    full = sub
                elif not sub:
                    full = key
                else:
                    full = sub if key == "(top level)" else f"{key}.{sub}"
                out.append(f"{full}: {text}")
        elif e["type"] == "model_kind":
            found = e["input"].get("kind") if isinstance(e["input"], dict) else e["input"]
            out.append(f"{key}.kind: found {found!r}; allowed: {' | '.join(MODEL_KINDS)}")
        elif e["type"] == "extra_forbidden":
            out.append(f"{key}: unknown key{_did_you_mean(_section_at(loc, raw), str(loc[-1]))}")
        elif e["type"] == "missing":
            out.append(f"{key}: missing; it is required")
        else:
            head = f"{key}: found {_shown(e.get('input'))!r}; allowed: "
            merged = next((i for i, p in enumerate(out) if p.startswith(head)), None)
            if merged is None:  # one line per key: the branches of `X | Y` are alternatives
                out.append(head + _allowed(e))
            elif _allowed(e) not in out[merged]:
                out[merged] += f", or {_allowed(e)}"
    seen: set[str] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


def parse_spec(raw: Any, source: str = "<spec>") -> PipelineSpec:
    """Validate a loaded YAML document into a spec; raise :class:`SpecError` listing every problem."""
    if raw is None:
        raise SpecError(
            ["(top level): the file is empty; allowed: a mapping of keys (name, data, storage, ...)"], source
        )
    if not isinstance(raw, dict):
        raise SpecError([f"(top level): found {type(raw).__name__}; allowed: a mapping of keys"], source)
    try:
        spec = PipelineSpec.model_validate({**raw, "source": source})
    except ValidationError as err:
        raise SpecError(problems_of(err, raw), source) from None
    return spec


_LOADER: Any = None


def _loader() -> Any:
    """libyaml's C loader where PyYAML has it (several times faster than the pure-Python one), refusing a key
    that appears twice in one mapping (PyYAML would keep the last one silently)."""
    global _LOADER
    if _LOADER is None:
        import yaml  # PyYAML is light and a dependency of Airflow itself

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class UniqueKeyLoader(base):  # type: ignore[misc, valid-type]
            def construct_mapping(self, node: Any, deep: bool = False) -> Any:
                if isinstance(node, yaml.MappingNode):
                    self.flatten_mapping(node)
                    seen: dict[Any, int] = {}
                    for key_node, _ in node.value:
                        key = self.construct_object(key_node, deep=True)
                        try:
                            first = seen.setdefault(key, key_node.start_mark.line + 1)
                        except TypeError:  # an unhashable key: the spec's own checks name it
                            continue
                        if first != key_node.start_mark.line + 1:
                            raise yaml.constructor.ConstructorError(
                                None, None, f"key {key!r} appears twice (first at line {first})",
                                key_node.start_mark,
                            )  # fmt: skip
                return super().construct_mapping(node, deep)

        _LOADER = UniqueKeyLoader
    return _LOADER


def read_yaml(text: str, source: str) -> Any:
    """Parse a spec's YAML; a syntax error (or a key given twice) names its line and column."""
    import yaml

    try:
        return yaml.load(text, Loader=_loader())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        found = getattr(err, "problem", None) or str(err)
        raise SpecError([f"(YAML syntax){where}: {found}; fix the YAML so that it parses"], source) from None


def load_spec(path: str | Path, source: str | None = None) -> PipelineSpec:
    """Read and validate one YAML spec file (``source``: how messages name it, default the path)."""
    path = Path(path)
    source = source or str(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecError([f"(file): cannot be read: {err}"], source) from None
    return parse_spec(read_yaml(text, source), source)


def _subclasses(cls: type) -> set[type]:
    return {cls}.union(*(_subclasses(sub) for sub in cls.__subclasses__()))


_SECTION_NAMES = {c.__name__ for c in _subclasses(Section)}


def json_schema() -> dict[str, Any]:
    """The spec's JSON Schema (draft 2020-12), for editors and for spec repositories' CI."""
    schema = PipelineSpec.model_json_schema(mode="validation")
    schema["properties"].pop("source", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://airflow-mlops.dev/schemas/pipeline-spec.json"
    schema["title"] = "airflow-mlops pipeline spec"
    return schema
