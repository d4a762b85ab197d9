"""The model-test task's policy, whatever runs it: which rows the candidate is tested on, whether a decision
made before is reproduced or made again, a person's override, the report's record, and the gate.

:class:`~airflow_mlops.operators.evaluation.ModelTestOperator` is its Airflow adapter: it passes what the task
was given and where to say things (the task log, the report link), and turns a failure into Airflow's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_mlops.errors import ModelTestError

log = logging.getLogger(__name__)


@dataclass
class ModelTestRequest:
    """What one model test was asked: the candidate (its training result), the data, the tests and the rule."""

    model_name: str
    training: dict[str, Any]
    data_uri: str
    target: str
    data_format: str = "parquet"
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    compare_metric: str = "roc_auc"
    min_improvement: float = 0.0
    compare_mode: str = "improvement"
    relative: bool = False
    checks: dict[str, Any] = field(default_factory=dict)
    override_reason: str | None = None
    reevaluate_reason: str | None = None
    #: the split arguments the task was actually given (compared with the trainer's recorded split)
    split_args: dict[str, Any] = field(default_factory=dict)
    #: for a run trained before splits were recorded: the window and split to test on
    window_start: str | None = None
    window_end: str | None = None
    window_days: int | None = None
    seed: int | None = None
    holdout_fraction: float | None = None

    @property
    def run_id(self) -> str:
        return self.training["run_id"]


Say = Callable[[bool, str], None]  # (passed, text): what the task log shows, failures first


def run_model_test(
    c: Any,
    request: ModelTestRequest,
    *,
    user: str | None,
    ui_url: str | None,
    say: Say,
    on_report_url: Callable[[str], None],
    explain_window: Callable[[Any], None] = lambda window: None,
) -> dict[str, Any]:
    """Test the candidate and decide its promotion; returns the report (``reproduced``: a decision made before,
    reproduced; ``inputs``: the files read). Raises :class:`ModelTestError` for a failed gate (no override) or a
    refused split: a quality gate, not worth a retry.

    - The candidate is tested on exactly the rows its trainer held out (the recorded split, checked against
      its fingerprint); split arguments that disagree with it are refused.
    - A model tested before reproduces its recorded decision (a re-run, clear or backfill moves nothing) unless
      ``reevaluate_reason`` says why to decide again.
    - ``override_reason`` releases a model whose tests failed, recorded with the user.
    """
    from airflow_mlops.data.partitions import make_window, partition_uris, read_window, split_holdout
    from airflow_mlops.release.decisions import prior_report
    from airflow_mlops.release.evaluation import (
        TestReport,
        apply_override,
        conflicting_split_args,
        holdout_statement,
        log_report,
        raise_for_failures,
        recorded_split,
        report_url,
        test_model,
        verified_holdout,
    )

    run_id, what = request.run_id, f"{request.model_name} run {request.run_id}"
    split = recorded_split(c, request.training)
    conflicts = conflicting_split_args(split, request.split_args) if split is not None else []
    if conflicts:  # a misconfigured task, whether or not the decision was made before
        raise ModelTestError(
            f"refusing to test run {run_id} on another split than it trained with: {'; '.join(conflicts)}. The "
            "held-out rows would include training rows. Leave seed, holdout_fraction and the window unset on "
            "ModelTestOperator: it reads them from the training result."
        )
    recorded, again = prior_report(
        c, run_id, reevaluate_reason=request.reevaluate_reason, override_reason=request.override_reason, by=user
    )
    if recorded is not None:
        report = TestReport.from_dict(recorded)
        say(
            report.passed,
            f"model tests for run {run_id} were decided before: {'PASSED' if report.passed else 'FAILED'} against "
            f"champion v{report.champion_version}; reproducing that decision (to decide again on purpose, trigger "
            f"with reevaluate_reason)\n{report.table()}\npromotion: {report.reason}",
        )  # fmt: skip
        on_report_url(report_url(c, run_id, ui_url))
        raise_for_failures(report, what)
        return {**recorded, "reproduced": True, "inputs": []}
    if split is None:  # a run trained before splits were recorded: the task's arguments say it
        window = make_window(request.window_start, request.window_end, request.window_days)
        explain_window(window)
        seed = 42 if request.seed is None else request.seed
        fraction = request.holdout_fraction or 0.2
        log.warning(
            "run %s recorded no held-out split (trained by an older airflow-mlops): splitting %s with seed %s and "
            "fraction %s as given", run_id, window.label, seed, fraction,
        )  # fmt: skip
        df, files = read_window(partition_uris(request.data_uri, window), request.data_format)
        _, holdout = split_holdout(df, request.target, fraction, seed)
        statement = None
    else:
        window = make_window(split["window_start"], split["window_end"])
        say(True, f"testing on the trainer's held-out split of {window.label}: {split['holdout_rows']} rows, seed "
                  f"{split['seed']}, fraction {split['fraction']}, sha256 {split['holdout_sha256'][:16]}")  # fmt: skip
        df, files = read_window(partition_uris(request.data_uri, window), request.data_format)
        holdout = verified_holdout(df, request.target, split, run_id)
        seed, statement = split["seed"], holdout_statement(split)
    report = test_model(
        c, model_name=request.model_name, training=request.training, holdout=holdout,
        thresholds=request.thresholds, compare_metric=request.compare_metric,
        min_improvement=request.min_improvement, compare_mode=request.compare_mode, relative=request.relative,
        checks=request.checks, seed=seed,
    )  # fmt: skip
    report.holdout = statement
    apply_override(report, request.override_reason, user)
    report.reevaluation = again
    tested_on = statement["statement"] if statement else f"{len(holdout)} rows split by the task's own arguments"
    say(
        report.passed,
        f"model tests for run {run_id}: {'PASSED' if report.passed else 'FAILED'}\n{report.table()}\n"
        f"promotion: {report.reason}\ntested on: {tested_on}"
        + (f"\nre-evaluated on purpose by {again['by']}: {again['reason']}" if again else ""),
    )  # fmt: skip
    url = log_report(c, run_id, report.as_dict(), request.model_name, ui_url)
    if url:
        on_report_url(url)
    raise_for_failures(report, what)
    return {**report.as_dict(), "reproduced": False, "inputs": files}
