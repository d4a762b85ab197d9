"""The whole spec: :class:`PipelineSpec`, its sections in validation order and the rules across them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from airflow_mlops.model.metrics import DEFAULT_METRIC, LOWER_IS_BETTER, METRICS
from airflow_mlops.model.settings import (  # the model section is the model layer's own settings
    ModelSpec,
    TabularModel,
)
from airflow_mlops.pipeline.spec.alerts import AlertRoute
from airflow_mlops.pipeline.spec.common import NAME_PATTERN
from airflow_mlops.pipeline.spec.data import Bounds, Constraints, Data, Features, Quality, Storage
from airflow_mlops.pipeline.spec.drift import Drift, Retraining
from airflow_mlops.pipeline.spec.scoring import Schedules, Scoring
from airflow_mlops.pipeline.spec.testing import Promotion, Tests
from airflow_mlops.pipeline.spec.training import Retries, Search, Training
from airflow_mlops.schema import Section, problem
from airflow_mlops.schema import fail as _fail


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
        _check_binary_value(value, info.data.get("constraints"), info.data.get("target"))
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
        """What performance estimation reports for a classifier (empty when it does not apply)."""
        from airflow_mlops.model.estimation import ESTIMATED_METRICS

        if self.scoring is None or not self.scoring.estimation.enabled or self.model.task != "classification":
            return []
        wanted = self.scoring.estimation.metrics or self.declared_metrics
        return [m for m in wanted if m in ESTIMATED_METRICS]

    def warnings(self) -> list[str]:
        """What is valid but cannot work as written (``validate-spec`` prints these; the spec still loads): an
        improvement rule on a metric bounded at 1 that the thresholds put out of reach (a champion must reach
        the threshold, and a challenger must beat that by ``min_improvement``)."""
        from airflow_mlops.model.metrics import BOUNDED_ABOVE

        out = []
        compare, metric = self.tests.compare, self.compare_metric
        top = BOUNDED_ABOVE.get(metric)
        if compare.mode == "improvement" and top is not None and compare.min_improvement > 0:
            floor = self.thresholds().get(metric, {}).get("min", 0.0)
            needed = floor * (1 + compare.min_improvement) if compare.relative else floor + compare.min_improvement
            if needed > top:
                out.append(
                    f"tests.compare: {metric} is at most {top:g}; a champion passes its threshold at {floor:g} and "
                    "a challenger must then beat it by "
                    f"{f'{compare.min_improvement * 100:g}%' if compare.relative else f'{compare.min_improvement:g}'}"
                    f", at least {needed:.4g}, which no model reaches. "
                    "Use mode: non_inferiority (promote a challenger no worse than the champion by min_improvement), "
                    "or a smaller min_improvement"
                )
        return out

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


def _check_binary_value(scoring: Scoring, constraints: Constraints | None, target: str | None) -> None:
    """A value section is a binary classifier's cost matrix: refused here, not at the first labelled window,
    where the constraints already say the target has more than two classes."""
    labels = scoring.labels
    column = constraints.columns.get(target) if constraints is not None and target else None
    classes = sorted({str(v) for v in column.allowed or []}) if column is not None else []
    if labels is not None and labels.value is not None and len(classes) > 2:
        raise _fail(
            problem(
                "scoring.labels.value", "a value section",
                f"a binary classifier (a cost matrix of its decisions); constraints.columns.{target}.allowed "
                f"gives {len(classes)} classes ({', '.join(classes)}): remove the value section, or promote on a "
                "metric",
            ),
            absolute=True,
        )  # fmt: skip


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
