"""Model tests: metric thresholds on held-out data, the candidate against the current champion, and the
slice, fairness, robustness and behavioural checks of :mod:`airflow_mlops.release.suites`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from airflow_mlops.errors import ModelTestError
from airflow_mlops.model.metrics import LOWER_IS_BETTER, evaluate
from airflow_mlops.tables import fmt, format_table

log = logging.getLogger(__name__)


@dataclass
class TestReport:
    __test__ = False  # not a pytest test class

    rows: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] | None = None
    champion_version: str | None = None
    promote: bool = False
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    override: dict[str, Any] | None = None
    reevaluation: dict[str, Any] | None = None
    holdout: dict[str, Any] | None = None  # the rows tested on: count, fingerprint, none seen in training

    @classmethod
    def from_dict(cls, report: dict[str, Any]) -> TestReport:
        """A recorded report (:meth:`as_dict`) back as a report."""
        return cls(
            rows=list(report.get("tests") or []), metrics=dict(report.get("metrics") or {}),
            champion_metrics=report.get("champion_metrics"), champion_version=report.get("champion_version"),
            promote=bool(report.get("promote")), reason=report.get("reason", ""),
            details=dict(report.get("details") or {}), override=report.get("override"),
            reevaluation=report.get("reevaluation"), holdout=report.get("holdout"),
        )  # fmt: skip

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
            "details": self.details, "override": self.override, "reevaluation": self.reevaluation,
            "holdout": self.holdout,
        }  # fmt: skip


def _required(ref: float, lower: bool, mode: str, amount: float, relative: bool) -> tuple[float, str]:
    """The value a candidate must reach against the champion's ``ref``, and how to say it.

    ``improvement``: better by ``amount`` (absolute, or a fraction of ``ref`` when ``relative``);
    ``non_inferiority``: no worse than ``ref`` by more than ``amount``.
    """
    delta = abs(ref) * amount if relative else amount
    sign = -1.0 if mode == "non_inferiority" else 1.0
    required = ref - sign * delta if lower else ref + sign * delta
    how = f"{fmt(amount * 100)}%" if relative else fmt(amount)
    better = "-" if lower else "+"
    op = better if mode == "improvement" else ("+" if better == "-" else "-")
    word = "" if mode == "improvement" else " margin"
    return required, f"{'<=' if lower else '>='} {fmt(required)} (champion {fmt(ref)} {op}{word} {how})"


def run_tests(
    metrics: dict[str, float],
    *,
    thresholds: dict[str, dict[str, float]],
    compare_metric: str,
    min_improvement: float,
    champion_metrics: dict[str, float] | None,
    champion_version: str | None,
    candidate_is_champion: bool = False,
    compare_mode: str = "improvement",
    relative: bool = False,
    report: TestReport | None = None,
) -> TestReport:
    """Thresholds (and the suite's checks already in ``report``) are a gate: a failure stops the release.
    The champion comparison decides promotion; with no champion yet, the first-run policy applies: the
    thresholds alone decide, and the report says so."""
    report = report or TestReport()
    report.metrics, report.champion_metrics, report.champion_version = (
        metrics,
        champion_metrics,
        champion_version,
    )
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
        report.reason = (
            "first run: no champion yet, so the thresholds alone decide; it becomes champion if they pass"
        )
        report.add(
            f"{compare_metric} vs champion",
            "no champion (first-run policy)",
            "first version",
            True,
            gate=False,
        )
    else:
        ref = champion_metrics.get(compare_metric)
        lower = compare_metric in LOWER_IS_BETTER
        required = None
        if value is None or ref is None:
            beats, expected = False, f"{compare_metric} available for both models"
        else:
            required, expected = _required(ref, lower, compare_mode, min_improvement, relative)
            beats = value <= required if lower else value >= required
        report.add(f"{compare_metric} vs champion v{champion_version}", expected, value, beats, gate=False)
        report.promote = beats
        rule = compare_mode.replace("_", "-")
        report.reason = (
            f"{compare_metric} {fmt(value)} vs champion v{champion_version}: meets the {rule} rule ({expected})"
            if beats
            else f"{compare_metric} {fmt(value)} vs champion v{champion_version}: does not meet the {rule} rule "
            f"({expected}); champion stays{_unreachable(compare_metric, required if ref is not None else None)}"
        )
    if not report.passed:
        report.promote = False
        failed = [r for r in report.rows if r["gate"] and not r["passed"]]
        report.reason = "failed: " + "; ".join(
            f"{r['test']} {r['observed']} (expected {r['expected']})" for r in failed
        )
    return report


def _unreachable(metric: str, required: float | None) -> str:
    """Why no candidate can ever meet the rule, where that is so: an absolute improvement on a champion at the
    top of a bounded metric (accuracy 1.0 needs 1.005)."""
    from airflow_mlops.model.metrics import BOUNDED_ABOVE

    if required is None:
        return ""
    top, lower = BOUNDED_ABOVE.get(metric), metric in LOWER_IS_BETTER
    if (top is not None and not lower and required > top) or (lower and required < 0):
        bound = f"above {fmt(top)}" if not lower else "below 0"
        return (
            f". No model can reach {fmt(required)}: {metric} cannot be {bound}. While the champion is this "
            "good, use tests.compare.mode: non_inferiority (promote a candidate no worse than the champion by "
            "min_improvement), or relative: true"
        )
    return ""


def apply_override(report: TestReport, reason: str | None, by: str | None) -> None:
    """Release a model whose gate failed, because a person said so: the reason is required and recorded."""
    if report.passed or not (reason or "").strip():
        return
    if len(reason.strip()) < 10:
        raise ModelTestError(
            f"override reason {reason.strip()!r} is too short: say why this model may be released although its "
            "tests failed (at least 10 characters); it is recorded on the model version"
        )
    failed = [r["test"] for r in report.rows if r["gate"] and not r["passed"]]
    report.override = {"reason": reason.strip(), "by": by or "unknown", "failed_tests": failed}
    report.promote = True
    report.reason = (
        f"released by override ({by or 'unknown'}: {reason.strip()}) although failed: {', '.join(failed)}"
    )
    log.warning("OVERRIDE: tests failed (%s) but %s released the model: %s", ", ".join(failed), by, reason)


def raise_for_failures(report: TestReport, what: str) -> None:
    if report.passed or report.override:
        return
    failed = [r for r in report.rows if r["gate"] and not r["passed"]]
    raise ModelTestError(
        f"model tests failed for {what}: {len(failed)} failed\n{report.table()}\n"
        "The model is not registered. Improve the model or data, revise tests in the spec, or release it "
        "anyway with an override reason (training DAG param override_reason; recorded on the version).",
        rows=failed,
    )


def run_checks(
    report: TestReport, model: Any, holdout: Any, metrics: dict[str, float], checks: dict[str, Any], seed: int
) -> None:
    """The suite's slice, fairness, robustness, expectation and leakage checks (each a gate)."""
    from airflow_mlops.release import suites

    target = model.meta.get("target")
    if checks.get("slices"):
        suites.check_slices(report, model, holdout, checks["slices"])
    if checks.get("fairness"):
        suites.check_fairness(report, model, holdout, target, checks["fairness"])
    if checks.get("robustness"):
        suites.check_robustness(report, model, holdout, checks["robustness"], metrics, seed)
    if checks.get("expectations"):
        suites.check_expectations(report, model, holdout, checks["expectations"])
    if checks.get("leakage") is not None:
        suites.check_leakage(report, model, holdout, checks["leakage"])


def recorded_split(c: Any, training: dict[str, Any]) -> dict[str, Any] | None:
    """The held-out split the candidate trained with: from the training result, else from its run's tag
    (None for a run trained before splits were recorded)."""
    import json

    from airflow_mlops.tracking import registry

    if training.get("split"):
        return dict(training["split"])
    tag = c.get_run(training["run_id"]).data.tags.get(registry.SPLIT_TAG) if training.get("run_id") else None
    return json.loads(tag) if tag else None


def conflicting_split_args(split: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """The model test's own split arguments that disagree with the recorded split (``given`` holds only the
    arguments a DAG actually set)."""
    recorded = {
        "seed": split.get("seed"), "holdout_fraction": split.get("fraction"),
        "window_start": split.get("window_start"), "window_end": split.get("window_end"),
    }  # fmt: skip
    out = []
    for name, value in given.items():
        want = recorded.get(name)
        same = str(value) == str(want) if name.startswith("window") else value == want
        if want is not None and not same:
            out.append(f"{name}={value!r} (the trainer's: {want!r})")
    return out


def verified_holdout(df: Any, target: str, split: dict[str, Any], run_id: str) -> Any:
    """The trainer's held-out rows, rebuilt from its recorded split and checked against its fingerprint;
    :class:`ModelTestError` when they differ (the model would be tested on rows it may have trained on)."""
    from airflow_mlops.data.partitions import row_fingerprint, split_holdout

    train, holdout = split_holdout(df, target, split["fraction"], split["seed"])
    found = row_fingerprint(holdout)
    if found != split["holdout_sha256"]:
        raise ModelTestError(
            f"refusing to test run {run_id}: the held-out rows rebuilt from its window "
            f"{split.get('window_start')} .. {split.get('window_end')} (seed {split['seed']}, fraction "
            f"{split['fraction']}) are not the ones it held out: {len(holdout)} rows with sha256 "
            f"{found[:16]}, recorded {split['holdout_rows']} rows with sha256 {split['holdout_sha256'][:16]}. "
            "The window's data changed since training (rows added, removed, edited or reordered), so some of "
            "these rows may have been training rows. Train the window again (clear train_model), or restore "
            "the data it was trained on."
        )
    return holdout


def holdout_statement(split: dict[str, Any]) -> dict[str, Any]:
    """What the report says about the rows it tested on."""
    return {
        "rows": split["holdout_rows"], "sha256": split["holdout_sha256"], "seed": split["seed"],
        "fraction": split["fraction"], "window_start": split.get("window_start"),
        "window_end": split.get("window_end"), "train_rows": split.get("train_rows"),
        "seen_in_training": 0,
        "statement": f"{split['holdout_rows']} held-out rows (sha256 {split['holdout_sha256'][:16]}), the very "
        "rows the trainer held out: none was seen in training",
    }  # fmt: skip


def test_model(
    c: Any,
    *,
    model_name: str,
    training: dict[str, Any],
    holdout: Any,
    thresholds: dict[str, dict[str, float]],
    compare_metric: str,
    min_improvement: float,
    compare_mode: str,
    relative: bool,
    checks: dict[str, Any] | None,
    seed: int,
) -> TestReport:
    """Evaluate the trained candidate and the current champion on the same held-out rows, then test."""
    from airflow_mlops.model.artifacts import load_mlflow_model
    from airflow_mlops.tracking import registry

    candidate = load_mlflow_model(
        training["model_uri"], training["model_sha256"], files=training.get("model_files"),
        what=f"MLflow run {training['run_id']}",
    )  # fmt: skip
    metrics = evaluate(candidate, holdout)
    log.info("candidate (run %s) on %d held-out rows: %s", training["run_id"], len(holdout), _short(metrics))
    report = TestReport()
    run_checks(report, candidate, holdout, metrics, checks or {}, seed)
    report.details.update(monitoring_reference(candidate, holdout, compare_metric, seed))
    champion = registry.get_alias(c, model_name, registry.CHAMPION)
    champion_metrics = None
    is_champion = champion is not None and champion.run_id == training["run_id"]
    if champion is not None and not is_champion:
        model = load_mlflow_model(
            champion.source, champion.tags.get(registry.MODEL_SHA_TAG), files=registry.model_files(champion.tags),
            what=f"{model_name} version {champion.version}",
        )  # fmt: skip
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
        compare_mode=compare_mode,
        relative=relative,
        report=report,
    )


def monitoring_reference(model: Any, holdout: Any, metric: str, seed: int) -> dict[str, Any]:
    """What monitoring needs from the held-out rows, measured once at test time and kept with the version:
    each feature's permutation importance (drift decisions weigh drifted features by it) and, for a binary
    classifier, the calibration of its probabilities (performance estimation before labels arrive)."""
    from airflow_mlops.model.estimation import fit_calibration, fit_calibrations
    from airflow_mlops.model.importance import importance_table, permutation_importance

    out: dict[str, Any] = {}
    meta = getattr(model, "meta", {}) or {}
    if meta.get("task") == "language_modeling":
        return out
    importance = permutation_importance(model, holdout, metric, seed=seed)
    if importance is not None:
        out["importance"] = importance
        log.info("permutation importance on %d held-out rows:\n%s", importance["rows"], importance_table(importance))
    classes = list(meta.get("classes") or [])
    if meta.get("task") == "classification" and len(classes) >= 2:
        labels = holdout[meta["target"]].to_numpy()
        proba = model.predict_proba(holdout)
        if len(classes) == 2:
            calibration = fit_calibration(proba[:, 1], labels == classes[1])
        else:  # one curve per class, one-vs-rest
            calibration = fit_calibrations(proba, labels, classes)
        if calibration is not None:
            out["calibration"] = calibration
    return out


def report_url(c: Any, run_id: str, ui_url: str | None) -> str:
    """Where people read a run's HTML test report over HTTP (the MLflow UI, or the plugin's MLflow pages)."""
    from airflow_mlops.tracking.registry import artifact_url

    return artifact_url(ui_url, c.get_run(run_id).info.experiment_id, run_id, "tests/report.html")


def log_report(c: Any, run_id: str, report: dict[str, Any], model_name: str, ui_url: str | None) -> str:
    """The test report (JSON, and HTML with charts) as artifacts of the candidate's MLflow run; returns
    where to read the HTML (the MLflow UI when its URL is known, else the artifact's own URI).

    A report decided before (a deliberate re-evaluation) is kept under ``tests/history/``, not overwritten.
    """
    import json

    from airflow_mlops.release.decisions import REPORT_PATH, REPORT_SHA_TAG, recorded_report, report_sha
    from airflow_mlops.release.reports import model_test_html

    earlier_sha = c.get_run(run_id).data.tags.get(REPORT_SHA_TAG)
    if earlier_sha:
        earlier = recorded_report(c, run_id)
        c.log_text(
            run_id, json.dumps(earlier, indent=2, sort_keys=True, default=str),
            f"tests/history/report-{earlier_sha[:12]}.json",
        )  # fmt: skip
    title = f"Model tests: {model_name}, run {run_id}"
    text = json.dumps(report, indent=2, sort_keys=True, default=str)
    c.log_text(run_id, model_test_html(report, title), "tests/report.html")
    c.log_text(run_id, text, REPORT_PATH)
    # last: the decision counts as made (and is reproduced by re-runs) only once the whole report is stored
    c.set_tag(run_id, REPORT_SHA_TAG, report_sha(text))
    return report_url(c, run_id, ui_url)


def _short(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
