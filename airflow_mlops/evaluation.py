"""Model tests: metric thresholds on held-out data and the candidate against the current champion."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from airflow_mlops.errors import ModelTestError
from airflow_mlops.metrics import classification_metrics, regression_metrics
from airflow_mlops.spec import LOWER_IS_BETTER
from airflow_mlops.tables import fmt, format_table

log = logging.getLogger(__name__)


def evaluate(model: Any, df: Any) -> dict[str, float]:
    """Metrics of ``model`` on ``df`` (which holds the target column)."""
    meta = model.meta
    y = df[meta["target"]].to_numpy() if meta["task"] != "language_modeling" else None
    if meta["task"] == "classification":
        return classification_metrics(y, model.predict_proba(df), meta["classes"])
    if meta["task"] == "language_modeling":
        return model.lm_metrics(df)
    return regression_metrics(y, model.predict(df))


@dataclass
class TestReport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] | None = None
    champion_version: str | None = None
    promote: bool = False
    reason: str = ""

    def add(self, test: str, expected: str, observed: Any, passed: bool, gate: bool = True) -> None:
        self.rows.append(
            {"test": test, "expected": expected, "observed": fmt(observed), "passed": passed, "gate": gate}
        )

    @property
    def passed(self) -> bool:
        return all(r["passed"] for r in self.rows if r["gate"])

    def table(self) -> str:
        return format_table(
            [
                (
                    r["test"],
                    r["expected"],
                    r["observed"],
                    ("PASS" if r["passed"] else "FAIL") + ("" if r["gate"] else " (promotion)"),
                )
                for r in self.rows
            ],
            ("test", "expected", "observed", "result"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "promote": self.promote, "reason": self.reason, "metrics": self.metrics,
            "champion_metrics": self.champion_metrics, "champion_version": self.champion_version, "tests": self.rows,
        }  # fmt: skip


def run_tests(
    metrics: dict[str, float],
    *,
    thresholds: dict[str, dict[str, float]],
    compare_metric: str,
    min_improvement: float,
    champion_metrics: dict[str, float] | None,
    champion_version: str | None,
    candidate_is_champion: bool = False,
) -> TestReport:
    """Thresholds are a gate (a failure stops the release); the champion comparison decides promotion."""
    report = TestReport(metrics=metrics, champion_metrics=champion_metrics, champion_version=champion_version)
    for metric, bounds in sorted(thresholds.items()):
        value = metrics.get(metric)
        for bound, limit in bounds.items():
            ok = value is not None and (value >= limit if bound == "min" else value <= limit)
            report.add(metric, f"{'>=' if bound == 'min' else '<='} {fmt(limit)}", value, ok)

    value = metrics.get(compare_metric)
    if candidate_is_champion:
        report.promote = True
        report.reason = f"this model is already champion (version {champion_version})"
    elif champion_metrics is None:
        report.promote = True
        report.reason = "no champion yet: the first version that passes its thresholds becomes champion"
        report.add(f"{compare_metric} vs champion", "no champion", "first version", True, gate=False)
    else:
        ref = champion_metrics.get(compare_metric)
        lower = compare_metric in LOWER_IS_BETTER
        if value is None or ref is None:
            beats = False
            expected = f"{compare_metric} available for both models"
        elif lower:
            beats = value <= ref - min_improvement
            expected = f"<= {fmt(ref)} - {fmt(min_improvement)} (champion v{champion_version})"
        else:
            beats = value >= ref + min_improvement
            expected = f">= {fmt(ref)} + {fmt(min_improvement)} (champion v{champion_version})"
        report.add(f"{compare_metric} vs champion", expected, value, beats, gate=False)
        report.promote = beats
        report.reason = (
            f"{compare_metric} {fmt(value)} beats champion v{champion_version} ({fmt(ref)}) by the required {fmt(min_improvement)}"
            if beats
            else f"{compare_metric} {fmt(value)} does not beat champion v{champion_version} ({fmt(ref)}) by {fmt(min_improvement)}: champion stays"
        )
    if not report.passed:
        report.promote = False
        failed = [r for r in report.rows if r["gate"] and not r["passed"]]
        report.reason = "failed: " + "; ".join(
            f"{r['test']} {r['observed']} (expected {r['expected']})" for r in failed
        )
    return report


def raise_for_failures(report: TestReport, what: str) -> None:
    if report.passed:
        return
    failed = [r for r in report.rows if r["gate"] and not r["passed"]]
    raise ModelTestError(
        f"model tests failed for {what}: {len(failed)} failed\n{report.table()}\n"
        "The model is not registered. Improve the model or data, or revise tests.thresholds in the spec.",
        rows=failed,
    )


def test_model(
    c: Any,
    *,
    model_name: str,
    training: dict[str, Any],
    holdout: Any,
    thresholds: dict[str, dict[str, float]],
    compare_metric: str,
    min_improvement: float,
) -> TestReport:
    """Evaluate the trained candidate and the current champion on the same held-out rows, then test."""
    from airflow_mlops import registry
    from airflow_mlops.modeling import load_mlflow_model

    candidate = load_mlflow_model(training["model_uri"], training["model_sha256"])
    metrics = evaluate(candidate, holdout)
    log.info("candidate (run %s) on %d held-out rows: %s", training["run_id"], len(holdout), _short(metrics))
    champion = registry.get_alias(c, model_name, registry.CHAMPION)
    champion_metrics = None
    is_champion = champion is not None and champion.run_id == training["run_id"]
    if champion is not None and not is_champion:
        model = load_mlflow_model(champion.source, champion.tags.get(registry.MODEL_SHA_TAG))
        champion_metrics = evaluate(model, holdout)
        log.info(
            "champion %s v%s on the same rows: %s", model_name, champion.version, _short(champion_metrics)
        )
    return run_tests(
        metrics,
        thresholds=thresholds,
        compare_metric=compare_metric,
        min_improvement=min_improvement,
        champion_metrics=champion_metrics,
        champion_version=str(champion.version) if champion is not None else None,
        candidate_is_champion=is_champion,
    )


def _short(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
