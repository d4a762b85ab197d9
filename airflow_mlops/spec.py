"""The pipeline spec: one YAML file per model, validated into a :class:`PipelineSpec`.

Every problem is reported at once, each naming the file, the key, what was found and what is allowed, so a
malformed spec shows up as one readable import error in the Airflow UI instead of a stack trace.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airflow_mlops.errors import SpecError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DTYPES = ("integer", "float", "number", "string", "boolean", "datetime")
MODEL_KINDS = ("tabular", "lora_text", "lora_causal_lm")
TASKS = ("classification", "regression", "language_modeling")
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LANGUAGE_MODELING_METRICS = ("perplexity", "loss")
LOWER_IS_BETTER = ("rmse", "mae", "perplexity", "loss")
EXECUTORS = ("local", "kubernetes")
ON_FINISH = ("delete_pod", "delete_succeeded_pod", "keep_pod")
KUBERNETES_KEYS = (
    "image", "namespace", "gpus", "cpu", "memory", "node_selector", "tolerations", "affinity",
    "pod_template_file", "mlflow_token_secret", "on_finish_action", "deferrable", "kubernetes_conn_id",
)  # fmt: skip
PROMOTION_MODES = ("auto", "manual", "approval")
COMPARE_MODES = ("improvement", "non_inferiority")
FAIRNESS_METRICS = ("demographic_parity_difference", "equal_opportunity_difference")
PERTURBATIONS = ("noise", "missing", "unseen_category", "typo", "case")
DIRECTIONS = ("increasing", "decreasing", "invariant")
SCORING_MODES = ("champion_only", "canary", "shadow")
ON_TIMEOUT = ("skip", "fail")
SENSOR_MODES = ("deferrable", "reschedule", "poke")
NUMERIC_DRIFT_METRICS = ("ks", "psi")
CATEGORICAL_DRIFT_METRICS = ("hellinger", "psi")
COLUMN_KEYS = (
    "dtype", "nullable", "max_null_fraction", "min", "max", "allowed", "unique", "regex", "max_age_hours", "mean",
    "quantiles", "severity",
)  # fmt: skip
SEVERITIES = ("fail", "warn")

TOP_KEYS = {
    "name", "description", "owner", "tags", "start_date", "end_date", "catchup", "schedules", "data",
    "storage", "target", "features", "constraints", "model", "training", "search", "tests", "promotion", "drift",
    "retraining", "scoring",
}  # fmt: skip
SEARCH_METHODS = ("grid", "random")


@dataclass(frozen=True)
class ColumnConstraint:
    dtype: str | None = None
    nullable: bool = True
    max_null_fraction: float | None = None
    min: float | None = None
    max: float | None = None
    allowed: tuple | None = None
    unique: bool = False
    regex: str | None = None
    max_age_hours: float | None = None
    mean: dict[str, float] | None = None
    quantiles: dict[str, dict[str, float]] | None = None
    severity: str = "fail"


@dataclass(frozen=True)
class Constraints:
    min_rows: int = 1
    max_rows: int | None = None
    columns: dict[str, ColumnConstraint] = field(default_factory=dict)
    max_duplicate_fraction: float | None = None
    severity: str = "fail"


@dataclass(frozen=True)
class ModelSpec:
    kind: str = "tabular"
    task: str = "classification"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftSpec:
    numeric_ks: float = 0.05
    categorical_hellinger: float = 0.05
    numeric_metric: str = "ks"
    categorical_metric: str = "hellinger"
    numeric_psi: float = 0.1
    categorical_psi: float = 0.1
    drift_share: float = 0.3
    min_rows: int = 100
    timeout: int = 3600
    poke_interval: int = 60
    on_timeout: str = "skip"
    mode: str = "deferrable"
    features: dict[str, dict[str, Any]] = field(default_factory=dict)

    def feature_rules(
        self, numeric: tuple[str, ...], categorical: tuple[str, ...]
    ) -> dict[str, dict[str, Any]]:
        """Per-feature metric and threshold, the kind's defaults filled in (numeric and categorical PSI
        thresholds may differ, so a PSI threshold is always explicit per feature)."""
        rules: dict[str, dict[str, Any]] = {}
        for names, metric, psi in (
            (numeric, self.numeric_metric, self.numeric_psi),
            (categorical, self.categorical_metric, self.categorical_psi),
        ):
            for name in names:
                rule = {"metric": metric, **self.features.get(name, {})}
                if rule["metric"] == "psi" and "threshold" not in rule:
                    rule["threshold"] = psi
                rules[name] = rule
        return rules


@dataclass(frozen=True)
class CompletenessSpec:
    """When a partition is complete (``data.completeness``): all given rules must hold."""

    min_rows: int | None = None
    marker: str | None = None
    asset: str | None = None


@dataclass(frozen=True)
class SearchSpec:
    """Hyper-parameter search (``search:``): trials are mapped training tasks, the best goes on."""

    space: dict[str, list[Any]]
    method: str = "grid"
    max_trials: int = 4
    seed: int = 0
    metric: str = "roc_auc"


@dataclass(frozen=True)
class ScoringSpec:
    """Batch scoring with the champion (``scoring:``), optionally a canary or shadow challenger."""

    schedule: str | None = "@daily"
    data_uri: str = ""
    output_uri: str = ""
    id_column: str | None = None
    mode: str = "champion_only"
    fraction: float = 0.1
    chunk_rows: int = 50_000
    labels_uri: str | None = None
    label_column: str = ""
    labels_delay_days: int = 0
    promote_after_windows: int = 3
    max_metric_drop: float = 0.05

    @property
    def shadow_uri(self) -> str:
        return f"{self.output_uri.rstrip('/')}_shadow"


@dataclass(frozen=True)
class KubernetesSpec:
    """Where and how a training pod runs (``training.kubernetes``)."""

    image: str = "airflow-mlops/trainer:0.1.0"
    namespace: str = "default"
    gpus: int = 0
    cpu: str | None = None
    memory: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    affinity: dict[str, Any] = field(default_factory=dict)
    pod_template_file: str | None = None
    mlflow_token_secret: str | None = None
    on_finish_action: str = "delete_succeeded_pod"
    deferrable: bool | None = None
    kubernetes_conn_id: str = "kubernetes_default"


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    source: str
    description: str
    owner: str
    tags: tuple[str, ...]
    start_date: dt.date
    end_date: dt.date | None
    catchup: bool
    training_schedule: str | None
    monitor_schedule: str | None
    data_uri: str
    data_format: str
    completeness: CompletenessSpec
    storage_uri: str
    target: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    text: str | None
    constraints: Constraints
    model: ModelSpec
    window_days: int
    holdout_fraction: float
    seed: int
    executor: str
    kubernetes: KubernetesSpec | None
    search: SearchSpec | None
    thresholds: dict[str, dict[str, float]]
    compare_metric: str
    min_improvement: float
    promotion_mode: str
    drift: DriftSpec
    retraining_enabled: bool
    retraining_window_days: int
    retraining_cooldown_hours: float = 24.0
    retraining_consecutive_windows: int = 1
    compare_mode: str = "improvement"
    compare_relative: bool = False
    checks: dict[str, Any] = field(default_factory=dict)
    approval_timeout_hours: float = 72.0
    scoring: ScoringSpec | None = None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical, *([self.text] if self.text else [])]

    @property
    def model_name(self) -> str:
        return self.name

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
    def dag_ids(self) -> list[str]:
        """Every DAG this spec compiles into."""
        ids = [self.training_dag_id, self.monitor_dag_id, self.rollback_dag_id]
        if self.retraining_enabled:
            ids.append(self.retraining_dag_id)
        if self.scoring is not None:
            ids.append(self.scoring_dag_id)
        if self.scoring is not None and self.scoring.labels_uri:
            ids.append(self.live_metrics_dag_id)
        return ids

    @property
    def live_metrics_dag_id(self) -> str:
        return f"{self.name}__live_metrics"

    @property
    def scoring_dag_id(self) -> str:
        return f"{self.name}__score"

    @property
    def rollback_dag_id(self) -> str:
        return f"{self.name}__rollback"

    def constraints_dict(self) -> dict[str, Any]:
        return {
            "min_rows": self.constraints.min_rows,
            "max_rows": self.constraints.max_rows,
            "max_duplicate_fraction": self.constraints.max_duplicate_fraction,
            "severity": self.constraints.severity,
            "columns": {k: asdict(v) for k, v in self.constraints.columns.items()},
        }


class _Checker:
    """Collects every problem of a spec instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def add(self, key: str, found: Any, allowed: str) -> None:
        self.problems.append(f"{key}: found {found!r}; allowed: {allowed}")

    def unknown_keys(self, prefix: str, mapping: dict, known: set | tuple) -> None:
        for key in mapping:
            if key not in known:
                close = difflib.get_close_matches(str(key), list(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.problems.append(
                    f"{prefix}{key}: unknown key{hint}; allowed keys: {', '.join(sorted(known))}"
                )

    def mapping(self, value: Any, key: str, required: bool = False) -> dict:
        if value is None:
            if required:
                self.problems.append(f"{key}: missing; it is required (a mapping)")
            return {}
        if not isinstance(value, dict):
            self.add(key, value, "a mapping")
            return {}
        return value

    def string(self, value: Any, key: str, required: bool = False, default: str | None = None) -> str | None:
        if value is None:
            if required:
                self.problems.append(f"{key}: missing; it is required (a string)")
            return default
        if not isinstance(value, str) or not value.strip():
            self.add(key, value, "a non-empty string")
            return default
        return value

    def choice(self, value: Any, key: str, choices: tuple, default: str) -> str:
        if value is None:
            return default
        if value not in choices:
            self.add(key, value, " | ".join(choices))
            return default
        return value

    def number(
        self, value: Any, key: str, default: float | None, lo: float | None = None, hi: float | None = None,
        integer: bool = False,
    ) -> Any:  # fmt: skip
        if value is None:
            return default
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type:
            self.add(key, value, "an integer" if integer else "a number")
            return default
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.add(key, value, f"a number in [{lo}, {hi}]" if hi is not None else f"a number >= {lo}")
            return default
        return value

    def boolean(self, value: Any, key: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add(key, value, "true | false")
            return default
        return value

    def date(self, value: Any, key: str, required: bool = False) -> dt.date | None:
        if value is None:
            if required:
                self.problems.append(f"{key}: missing; it is required (a date, YYYY-MM-DD)")
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.add(key, value, "a date, YYYY-MM-DD")
            return None

    def names(self, value: Any, key: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.add(key, value, "a list of column names")
            return ()
        return tuple(value)


def parse_spec(raw: Any, source: str = "<spec>") -> PipelineSpec:
    """Validate a loaded YAML document into a spec; raise :class:`SpecError` listing every problem."""
    c = _Checker(source)
    if not isinstance(raw, dict):
        raise SpecError([f"(top level): found {type(raw).__name__}; allowed: a mapping of keys"], source)
    c.unknown_keys("", raw, TOP_KEYS)

    name = c.string(raw.get("name"), "name", required=True) or "invalid"
    if name != "invalid" and not NAME_RE.match(name):
        c.add("name", name, "lower-case letters, digits and '_', starting with a letter (max 63)")

    schedules = c.mapping(raw.get("schedules"), "schedules")
    c.unknown_keys("schedules.", schedules, {"training", "drift_monitor"})
    data = c.mapping(raw.get("data"), "data", required=True)
    c.unknown_keys("data.", data, {"uri", "format", "completeness"})
    data_uri = c.string(data.get("uri"), "data.uri", required=True) or ""
    data_format = c.choice(data.get("format"), "data.format", ("parquet", "csv"), "parquet")
    complete = c.mapping(data.get("completeness"), "data.completeness")
    c.unknown_keys("data.completeness.", complete, {"min_rows", "marker", "asset"})
    completeness = CompletenessSpec(
        min_rows=c.number(complete.get("min_rows"), "data.completeness.min_rows", None, 1, integer=True),
        marker=c.string(complete.get("marker"), "data.completeness.marker"),
        asset=c.string(complete.get("asset"), "data.completeness.asset"),
    )
    storage = c.mapping(raw.get("storage"), "storage", required=True)
    c.unknown_keys("storage.", storage, {"uri"})
    storage_uri = c.string(storage.get("uri"), "storage.uri", required=True) or ""

    model_raw = c.mapping(raw.get("model"), "model", required=True)
    c.unknown_keys("model.", model_raw, {"kind", "task", "params"})
    kind = c.choice(model_raw.get("kind"), "model.kind", MODEL_KINDS, "tabular")
    default_task = "language_modeling" if kind == "lora_causal_lm" else "classification"
    task = c.choice(model_raw.get("task"), "model.task", TASKS, default_task)
    if kind == "lora_text" and task != "classification":
        c.add("model.task", task, "classification (lora_text fine-tunes a sequence classifier)")
    if (kind == "lora_causal_lm") != (task == "language_modeling"):
        c.add("model.task", task, "language_modeling with kind lora_causal_lm, and only with it")
    params = c.mapping(model_raw.get("params"), "model.params")

    feats = c.mapping(raw.get("features"), "features", required=True)
    c.unknown_keys("features.", feats, {"numeric", "categorical", "text"})
    numeric = c.names(feats.get("numeric"), "features.numeric")
    categorical = c.names(feats.get("categorical"), "features.categorical")
    text = c.string(feats.get("text"), "features.text")
    if kind == "lora_causal_lm":  # a language model learns its text column: that column is its target
        target = c.string(raw.get("target"), "target", default=text) or ""
        if text and target != text:
            c.add("target", target, f"the text column ({text!r}) or nothing, for a language model")
    else:
        target = c.string(raw.get("target"), "target", required=True) or ""
    if kind == "tabular" and not (numeric or categorical):
        c.problems.append("features: a tabular model needs features.numeric and/or features.categorical")
    if kind in ("lora_text", "lora_causal_lm") and not text:
        c.problems.append(f"features.text: missing; a {kind} model needs the name of its text column")
    all_feats = [*numeric, *categorical, *([text] if text else [])]
    for dup in sorted({f for f in all_feats if all_feats.count(f) > 1}):
        c.add("features", dup, "each column in one feature list only")
    if target and target in all_feats and kind != "lora_causal_lm":
        c.add("target", target, "a column that is not also a feature")

    cons_raw = c.mapping(raw.get("constraints"), "constraints")
    c.unknown_keys(
        "constraints.", cons_raw, {"min_rows", "max_rows", "columns", "max_duplicate_fraction", "severity"}
    )
    columns: dict[str, ColumnConstraint] = {}
    for col, spec in c.mapping(cons_raw.get("columns"), "constraints.columns").items():
        key = f"constraints.columns.{col}"
        spec = c.mapping(spec, key)
        c.unknown_keys(f"{key}.", spec, COLUMN_KEYS)
        allowed = spec.get("allowed")
        if allowed is not None and not isinstance(allowed, list):
            c.add(f"{key}.allowed", allowed, "a list of values")
            allowed = None
        lo = c.number(spec.get("min"), f"{key}.min", None)
        hi = c.number(spec.get("max"), f"{key}.max", None)
        if lo is not None and hi is not None and lo > hi:
            c.add(f"{key}.min", lo, f"a value <= max ({hi})")
        columns[col] = ColumnConstraint(
            dtype=c.choice(spec.get("dtype"), f"{key}.dtype", DTYPES, None),
            nullable=c.boolean(spec.get("nullable"), f"{key}.nullable", True),
            max_null_fraction=c.number(spec.get("max_null_fraction"), f"{key}.max_null_fraction", None, 0, 1),
            min=lo,
            max=hi,
            allowed=tuple(allowed) if allowed is not None else None,
            unique=c.boolean(spec.get("unique"), f"{key}.unique", False),
            regex=_regex(c, spec.get("regex"), f"{key}.regex"),
            max_age_hours=c.number(spec.get("max_age_hours"), f"{key}.max_age_hours", None, 0),
            mean=_bounds(c, spec.get("mean"), f"{key}.mean"),
            quantiles={
                str(q): b
                for q, b in (
                    (q, _bounds(c, v, f"{key}.quantiles.{q}"))
                    for q, v in c.mapping(spec.get("quantiles"), f"{key}.quantiles").items()
                )
                if b is not None and _quantile_key(c, q, f"{key}.quantiles")
            }
            or None,
            severity=c.choice(spec.get("severity"), f"{key}.severity", SEVERITIES, "fail"),
        )
    constraints = Constraints(
        min_rows=c.number(cons_raw.get("min_rows"), "constraints.min_rows", 1, 1, integer=True),
        max_rows=c.number(cons_raw.get("max_rows"), "constraints.max_rows", None, 1, integer=True),
        columns=columns,
        max_duplicate_fraction=c.number(
            cons_raw.get("max_duplicate_fraction"), "constraints.max_duplicate_fraction", None, 0, 1
        ),
        severity=c.choice(cons_raw.get("severity"), "constraints.severity", SEVERITIES, "fail"),
    )

    training = c.mapping(raw.get("training"), "training")
    c.unknown_keys(
        "training.", training, {"window_days", "holdout_fraction", "seed", "executor", "kubernetes"}
    )
    executor = c.choice(training.get("executor"), "training.executor", EXECUTORS, "local")
    kubernetes = _kubernetes(c, training.get("kubernetes"), executor)
    tests = c.mapping(raw.get("tests"), "tests")
    c.unknown_keys(
        "tests.", tests, {"thresholds", "compare", "slices", "fairness", "robustness", "expectations"}
    )
    metrics_ok = {
        "classification": CLASSIFICATION_METRICS, "regression": REGRESSION_METRICS,
        "language_modeling": LANGUAGE_MODELING_METRICS,
    }[task]  # fmt: skip
    thresholds: dict[str, dict[str, float]] = {}
    for metric, bounds in c.mapping(tests.get("thresholds"), "tests.thresholds").items():
        key = f"tests.thresholds.{metric}"
        if metric not in metrics_ok:
            c.add(key, metric, f"a {task} metric: {', '.join(metrics_ok)}")
            continue
        if isinstance(bounds, (int, float)) and not isinstance(bounds, bool):
            bounds = {"max" if metric in LOWER_IS_BETTER else "min": bounds}
        bounds = c.mapping(bounds, key)
        c.unknown_keys(f"{key}.", bounds, {"min", "max"})
        thresholds[metric] = {
            b: c.number(bounds.get(b), f"{key}.{b}", None) for b in ("min", "max") if b in bounds
        }
    compare = c.mapping(tests.get("compare"), "tests.compare")
    c.unknown_keys("tests.compare.", compare, {"metric", "min_improvement", "mode", "relative"})
    default_metric = {"classification": "roc_auc", "regression": "rmse", "language_modeling": "perplexity"}[
        task
    ]
    compare_metric = c.choice(compare.get("metric"), "tests.compare.metric", metrics_ok, default_metric)

    checks = _checks(c, tests, metrics_ok, compare_metric, task, categorical)
    promotion = c.mapping(raw.get("promotion"), "promotion")
    c.unknown_keys("promotion.", promotion, {"mode", "approval_timeout_hours"})
    scoring = _scoring(c, raw.get("scoring"), data_uri, storage_uri, name, target)

    drift_raw = c.mapping(raw.get("drift"), "drift")
    c.unknown_keys(
        "drift.", drift_raw, {"numeric", "categorical", "drift_share", "min_rows", "sensor", "features"}
    )
    per_feature: dict[str, dict[str, Any]] = {}
    for feature, rule in c.mapping(drift_raw.get("features"), "drift.features").items():
        key = f"drift.features.{feature}"
        rule = c.mapping(rule, key)
        c.unknown_keys(f"{key}.", rule, {"threshold", "metric"})
        if feature not in (*numeric, *categorical):
            c.add(key, feature, "a numeric or categorical feature of this spec")
        metrics = NUMERIC_DRIFT_METRICS if feature in numeric else CATEGORICAL_DRIFT_METRICS
        per_feature[feature] = {
            k: v
            for k, v in {
                "threshold": c.number(rule.get("threshold"), f"{key}.threshold", None, 0, 10),
                "metric": c.choice(rule.get("metric"), f"{key}.metric", metrics, None),
            }.items()
            if v is not None
        }
    dnum = c.mapping(drift_raw.get("numeric"), "drift.numeric")
    c.unknown_keys("drift.numeric.", dnum, {"ks", "psi", "metric"})
    dcat = c.mapping(drift_raw.get("categorical"), "drift.categorical")
    c.unknown_keys("drift.categorical.", dcat, {"hellinger", "psi", "metric"})
    psi_numeric = c.number(dnum.get("psi"), "drift.numeric.psi", 0.1, 0, 10)
    psi_categorical = c.number(dcat.get("psi"), "drift.categorical.psi", 0.1, 0, 10)
    sensor = c.mapping(drift_raw.get("sensor"), "drift.sensor")
    c.unknown_keys("drift.sensor.", sensor, {"timeout", "poke_interval", "on_timeout", "mode"})
    drift = DriftSpec(
        numeric_ks=c.number(dnum.get("ks"), "drift.numeric.ks", 0.05, 0, 1),
        categorical_hellinger=c.number(dcat.get("hellinger"), "drift.categorical.hellinger", 0.05, 0, 1),
        numeric_metric=c.choice(dnum.get("metric"), "drift.numeric.metric", NUMERIC_DRIFT_METRICS, "ks"),
        categorical_metric=c.choice(
            dcat.get("metric"), "drift.categorical.metric", CATEGORICAL_DRIFT_METRICS, "hellinger"
        ),
        numeric_psi=psi_numeric,
        categorical_psi=psi_categorical,
        features=per_feature,
        drift_share=c.number(drift_raw.get("drift_share"), "drift.drift_share", 0.3, 0, 1),
        min_rows=c.number(drift_raw.get("min_rows"), "drift.min_rows", 100, 1, integer=True),
        timeout=c.number(sensor.get("timeout"), "drift.sensor.timeout", 3600, 1, integer=True),
        poke_interval=c.number(
            sensor.get("poke_interval"), "drift.sensor.poke_interval", 60, 1, integer=True
        ),
        on_timeout=c.choice(sensor.get("on_timeout"), "drift.sensor.on_timeout", ON_TIMEOUT, "skip"),
        mode=c.choice(sensor.get("mode"), "drift.sensor.mode", SENSOR_MODES, "deferrable"),
    )
    retraining = c.mapping(raw.get("retraining"), "retraining")
    c.unknown_keys(
        "retraining.", retraining, {"enabled", "window_days", "cooldown_hours", "consecutive_windows"}
    )
    window_days = c.number(training.get("window_days"), "training.window_days", 7, 1, integer=True)

    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        c.add("tags", tags, "a list of strings")
        tags = []
    start_date = c.date(raw.get("start_date"), "start_date", required=True)
    end_date = c.date(raw.get("end_date"), "end_date")
    if start_date and end_date and end_date < start_date:
        c.add("end_date", str(end_date), f"a date on or after start_date ({start_date})")

    spec = PipelineSpec(
        name=name,
        source=source,
        description=c.string(raw.get("description"), "description", default="") or "",
        owner=c.string(raw.get("owner"), "owner", default="airflow") or "airflow",
        tags=tuple(tags),
        start_date=start_date or dt.date(2000, 1, 1),
        end_date=end_date,
        catchup=c.boolean(raw.get("catchup"), "catchup", False),
        training_schedule=_schedule(c, schedules.get("training", "@weekly"), "schedules.training"),
        monitor_schedule=_schedule(c, schedules.get("drift_monitor", "@daily"), "schedules.drift_monitor"),
        data_uri=data_uri,
        data_format=data_format,
        completeness=completeness,
        storage_uri=storage_uri,
        target=target,
        numeric=numeric,
        categorical=categorical,
        text=text,
        constraints=constraints,
        model=ModelSpec(kind=kind, task=task, params=dict(params)),
        window_days=window_days,
        holdout_fraction=c.number(
            training.get("holdout_fraction"), "training.holdout_fraction", 0.2, 0.01, 0.9
        ),
        seed=c.number(training.get("seed"), "training.seed", 42, 0, integer=True),
        executor=executor,
        kubernetes=kubernetes,
        search=_search(c, raw.get("search"), metrics_ok, compare_metric),
        thresholds=thresholds,
        compare_metric=compare_metric,
        min_improvement=c.number(compare.get("min_improvement"), "tests.compare.min_improvement", 0.0, 0),
        promotion_mode=c.choice(promotion.get("mode"), "promotion.mode", PROMOTION_MODES, "auto"),
        compare_mode=c.choice(compare.get("mode"), "tests.compare.mode", COMPARE_MODES, "improvement"),
        compare_relative=c.boolean(compare.get("relative"), "tests.compare.relative", False),
        checks=checks,
        approval_timeout_hours=c.number(
            promotion.get("approval_timeout_hours"), "promotion.approval_timeout_hours", 72.0, 0.01
        ),
        scoring=scoring,
        drift=drift,
        retraining_enabled=c.boolean(retraining.get("enabled"), "retraining.enabled", True),
        retraining_window_days=c.number(
            retraining.get("window_days"), "retraining.window_days", window_days, 1, integer=True
        ),
        retraining_cooldown_hours=c.number(
            retraining.get("cooldown_hours"), "retraining.cooldown_hours", 24.0, 0
        ),
        retraining_consecutive_windows=c.number(
            retraining.get("consecutive_windows"), "retraining.consecutive_windows", 1, 1, integer=True
        ),
        raw=raw,
    )
    if c.problems:
        raise SpecError(c.problems, source)
    return spec


def _regex(c: _Checker, value: Any, key: str) -> str | None:
    if value is None:
        return None
    try:
        re.compile(str(value))
    except re.error as err:
        c.add(key, value, f"a valid regular expression ({err})")
        return None
    return str(value)


def _bounds(c: _Checker, value: Any, key: str) -> dict[str, float] | None:
    """``{min: x, max: y}`` (either may be left out)."""
    if value is None:
        return None
    raw = c.mapping(value, key)
    c.unknown_keys(f"{key}.", raw, {"min", "max"})
    out = {b: c.number(raw.get(b), f"{key}.{b}", None) for b in ("min", "max") if raw.get(b) is not None}
    if (
        "min" in out
        and "max" in out
        and out["min"] is not None
        and out["max"] is not None
        and out["min"] > out["max"]
    ):
        c.add(f"{key}.min", out["min"], f"a value <= max ({out['max']})")
    return out or None


def _quantile_key(c: _Checker, q: Any, key: str) -> bool:
    try:
        ok = 0 < float(q) < 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        c.add(f"{key}.{q}", q, "a quantile between 0 and 1, e.g. 0.5")
    return ok


def _rules(c: _Checker, value: Any, key: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        c.add(key, value, "a list of mappings")
        return []
    return value


def _checks(
    c: _Checker, tests: dict, metrics_ok: tuple, compare_metric: str, task: str, categorical: tuple
) -> dict[str, Any]:
    """tests.slices / fairness / robustness / expectations, validated and with their defaults filled in."""
    out: dict[str, Any] = {}
    slices = []
    for i, r in enumerate(_rules(c, tests.get("slices"), "tests.slices")):
        k = f"tests.slices[{i}]"
        c.unknown_keys(f"{k}.", r, {"column", "metric", "min", "max", "min_rows", "bins"})
        metric = c.choice(r.get("metric"), f"{k}.metric", metrics_ok, compare_metric)
        bound = "max" if metric in LOWER_IS_BETTER else "min"
        if r.get(bound) is None:
            c.problems.append(f"{k}.{bound}: missing; the floor the worst segment's {metric} must reach")
        slices.append({
            "column": c.string(r.get("column"), f"{k}.column", required=True), "metric": metric,
            bound: c.number(r.get(bound), f"{k}.{bound}", None),
            "min_rows": c.number(r.get("min_rows"), f"{k}.min_rows", 30, 1, integer=True),
            "bins": c.number(r.get("bins"), f"{k}.bins", None, 2, integer=True),
        })  # fmt: skip
    fairness = []
    for i, r in enumerate(_rules(c, tests.get("fairness"), "tests.fairness")):
        k = f"tests.fairness[{i}]"
        c.unknown_keys(f"{k}.", r, {"group", "metric", "max", "bins"})
        if task != "classification":
            c.add(k, r, "fairness gaps for classification models only (use tests.slices for others)")
        if r.get("metric") is None or r.get("max") is None:
            c.problems.append(
                f"{k}: needs metric ({' | '.join(FAIRNESS_METRICS)}) and max (the largest gap allowed)"
            )
        fairness.append({
            "group": c.string(r.get("group"), f"{k}.group", required=True),
            "metric": c.choice(r.get("metric"), f"{k}.metric", FAIRNESS_METRICS, FAIRNESS_METRICS[0]),
            "max": c.number(r.get("max"), f"{k}.max", 0.1, 0, 1),
            "bins": c.number(r.get("bins"), f"{k}.bins", None, 2, integer=True),
        })  # fmt: skip
    robustness = []
    for i, r in enumerate(_rules(c, tests.get("robustness"), "tests.robustness")):
        k = f"tests.robustness[{i}]"
        c.unknown_keys(f"{k}.", r, {"perturbation", "fraction", "scale", "metric", "max_drop"})
        kind = c.choice(r.get("perturbation"), f"{k}.perturbation", PERTURBATIONS, "")
        if r.get("perturbation") is None:
            c.problems.append(f"{k}.perturbation: missing; one of {' | '.join(PERTURBATIONS)}")
        if kind == "unseen_category" and not categorical:
            c.add(
                f"{k}.perturbation",
                kind,
                "a perturbation for this model's features (it has no categorical feature)",
            )
        if r.get("max_drop") is None:
            c.problems.append(f"{k}.max_drop: missing; the largest metric drop the perturbation may cause")
        robustness.append({
            "perturbation": kind, "metric": c.choice(r.get("metric"), f"{k}.metric", metrics_ok, compare_metric),
            "fraction": c.number(r.get("fraction"), f"{k}.fraction", 0.05, 0, 1),
            "scale": c.number(r.get("scale"), f"{k}.scale", 0.1, 0),
            "max_drop": c.number(r.get("max_drop"), f"{k}.max_drop", 0.0, 0),
        })  # fmt: skip
    expectations = []
    for i, r in enumerate(_rules(c, tests.get("expectations"), "tests.expectations")):
        k = f"tests.expectations[{i}]"
        c.unknown_keys(f"{k}.", r, {"feature", "direction", "delta", "value", "tolerance", "max_violations"})
        rule = {
            "feature": c.string(r.get("feature"), f"{k}.feature", required=True),
            "direction": c.choice(r.get("direction"), f"{k}.direction", DIRECTIONS, "invariant"),
            "tolerance": c.number(r.get("tolerance"), f"{k}.tolerance", 1e-6, 0),
            "max_violations": c.number(r.get("max_violations"), f"{k}.max_violations", 0.0, 0, 1),
        }
        if "value" in r:
            rule["value"] = r["value"]
        else:
            rule["delta"] = c.number(r.get("delta"), f"{k}.delta", 1.0)
        expectations.append(rule)
    for name, rules in (
        ("slices", slices),
        ("fairness", fairness),
        ("robustness", robustness),
        ("expectations", expectations),
    ):
        if rules:
            out[name] = rules
    return out


def _scoring(
    c: _Checker, value: Any, data_uri: str, storage_uri: str, name: str, target: str
) -> ScoringSpec | None:
    if value is None:
        return None
    raw = c.mapping(value, "scoring")
    c.unknown_keys(
        "scoring.",
        raw,
        {"schedule", "data", "output", "id_column", "mode", "fraction", "chunk_rows", "labels"},
    )
    labels = c.mapping(raw.get("labels"), "scoring.labels")
    c.unknown_keys(
        "scoring.labels.", labels, {"uri", "column", "delay_days", "promote_after_windows", "max_metric_drop"}
    )
    if labels and not raw.get("id_column"):
        c.problems.append("scoring.id_column: missing; labels are joined to predictions by the row id")
    mode = c.choice(raw.get("mode"), "scoring.mode", SCORING_MODES, "champion_only")
    id_column = c.string(raw.get("id_column"), "scoring.id_column")
    if mode == "canary" and not id_column:
        c.problems.append(
            "scoring.id_column: missing; a canary splits rows by a hash of their id, so it needs the id column"
        )
    return ScoringSpec(
        schedule=_schedule(c, raw.get("schedule", "@daily"), "scoring.schedule"),
        data_uri=c.string(raw.get("data"), "scoring.data", default=data_uri) or data_uri,
        output_uri=c.string(
            raw.get("output"), "scoring.output", default=f"{storage_uri.rstrip('/')}/{name}/predictions"
        )
        or "",
        id_column=id_column,
        mode=mode,
        fraction=c.number(raw.get("fraction"), "scoring.fraction", 0.1, 0, 1),
        chunk_rows=c.number(raw.get("chunk_rows"), "scoring.chunk_rows", 50_000, 100, integer=True),
        labels_uri=c.string(labels.get("uri"), "scoring.labels.uri", required=bool(labels)),
        label_column=c.string(labels.get("column"), "scoring.labels.column", default=target) or target,
        labels_delay_days=c.number(labels.get("delay_days"), "scoring.labels.delay_days", 0, 0, integer=True),
        promote_after_windows=c.number(
            labels.get("promote_after_windows"), "scoring.labels.promote_after_windows", 3, 1, integer=True
        ),
        max_metric_drop=c.number(labels.get("max_metric_drop"), "scoring.labels.max_metric_drop", 0.05, 0),
    )


def _search(c: _Checker, value: Any, metrics_ok: tuple, default_metric: str) -> SearchSpec | None:
    if value is None:
        return None
    s = c.mapping(value, "search")
    c.unknown_keys("search.", s, {"method", "max_trials", "seed", "metric", "params"})
    space = c.mapping(s.get("params"), "search.params", required=True)
    for key, values in space.items():
        if not isinstance(values, list) or not values:
            c.add(f"search.params.{key}", values, "a non-empty list of values to try")
    return SearchSpec(
        space={k: v for k, v in space.items() if isinstance(v, list) and v},
        method=c.choice(s.get("method"), "search.method", SEARCH_METHODS, "grid"),
        max_trials=c.number(s.get("max_trials"), "search.max_trials", 4, 1, 256, integer=True),
        seed=c.number(s.get("seed"), "search.seed", 0, 0, integer=True),
        metric=c.choice(s.get("metric"), "search.metric", metrics_ok, default_metric),
    )


def _kubernetes(c: _Checker, value: Any, executor: str) -> KubernetesSpec | None:
    if value is not None and executor != "kubernetes":
        c.add("training.kubernetes", "a kubernetes block", "only with training.executor: kubernetes")
    if executor != "kubernetes":
        return None
    k = c.mapping(value, "training.kubernetes")
    c.unknown_keys("training.kubernetes.", k, KUBERNETES_KEYS)
    tolerations = k.get("tolerations") or []
    if not isinstance(tolerations, list) or not all(isinstance(t, dict) for t in tolerations):
        c.add(
            "training.kubernetes.tolerations",
            tolerations,
            "a list of mappings (key, operator, value, effect)",
        )
        tolerations = []
    node_selector = c.mapping(k.get("node_selector"), "training.kubernetes.node_selector")
    gpus = k.get("gpus", 0)
    if not (isinstance(gpus, int) and not isinstance(gpus, bool) and gpus >= 0) and not (
        isinstance(gpus, str) and "{{" in gpus
    ):
        c.add("training.kubernetes.gpus", gpus, "an integer >= 0 or a Jinja template")
        gpus = 0
    deferrable = k.get("deferrable")
    if deferrable is not None and not isinstance(deferrable, bool):
        c.add("training.kubernetes.deferrable", deferrable, "true | false")
        deferrable = None
    return KubernetesSpec(
        image=c.string(k.get("image"), "training.kubernetes.image", default=KubernetesSpec.image)
        or KubernetesSpec.image,
        namespace=c.string(k.get("namespace"), "training.kubernetes.namespace", default="default")
        or "default",
        gpus=gpus,
        cpu=None if k.get("cpu") is None else str(k["cpu"]),
        memory=None if k.get("memory") is None else str(k["memory"]),
        node_selector={str(a): str(b) for a, b in node_selector.items()},
        tolerations=tuple(tolerations),
        affinity=c.mapping(k.get("affinity"), "training.kubernetes.affinity"),
        pod_template_file=c.string(k.get("pod_template_file"), "training.kubernetes.pod_template_file"),
        mlflow_token_secret=c.string(k.get("mlflow_token_secret"), "training.kubernetes.mlflow_token_secret"),
        on_finish_action=c.choice(
            k.get("on_finish_action"),
            "training.kubernetes.on_finish_action",
            ON_FINISH,
            "delete_succeeded_pod",
        ),
        deferrable=deferrable,
        kubernetes_conn_id=c.string(
            k.get("kubernetes_conn_id"),
            "training.kubernetes.kubernetes_conn_id",
            default="kubernetes_default",
        )
        or "kubernetes_default",
    )


def _schedule(c: _Checker, value: Any, key: str) -> str | None:
    if value is None or value == "none":
        return None
    if not isinstance(value, str):
        c.add(key, value, "a cron expression, a preset such as @daily, or null")
        return None
    if value.startswith("@"):
        presets = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
        if value not in presets:
            c.add(key, value, " | ".join(presets) + " | a cron expression")
        return value
    if len(value.split()) not in (5, 6):
        c.add(key, value, "a cron expression with 5 fields (e.g. '0 3 * * *') or a preset such as @daily")
    return value


def load_spec(path: str | Path) -> PipelineSpec:
    """Read and validate one YAML spec file."""
    import yaml  # PyYAML is light and a dependency of Airflow itself

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError(
            [f"(YAML syntax){where}: {problem}; fix the YAML so that it parses"], str(path)
        ) from None
    except OSError as err:
        raise SpecError([f"(file): cannot be read: {err}"], str(path)) from None
    return parse_spec(raw, str(path))
