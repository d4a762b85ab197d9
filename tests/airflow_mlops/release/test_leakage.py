"""Target leakage at test time: a feature that alone gives the target near perfectly fails the model test."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.release.evaluation import TestReport
from airflow_mlops.release.suites import check_leakage, single_feature_score


def _frame(task: str, n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    plan = rng.choice(["a", "b", "c"], n)
    signal = x + (plan == "a") + rng.normal(scale=1.5, size=n)
    y = (signal > 0.3).astype(int) if task == "classification" else signal
    return pd.DataFrame({"x": x, "noise": rng.normal(size=n), "plan": plan, "y": y})


def _model(task: str, numeric: list[str], categorical: list[str]) -> SimpleNamespace:
    return SimpleNamespace(meta={"target": "y", "task": task, "numeric": numeric, "categorical": categorical})


def _failed(report: TestReport) -> list[str]:
    return [r["test"] for r in report.rows if not r["passed"]]


@pytest.mark.parametrize(
    ("task", "leak"),
    [(task, leak) for task in ("classification", "regression") for leak in ("copy", "near_copy", "scaled")]
    + [("classification", "label_as_text")],  # a continuous target as text is one category per row
)
def test_a_feature_that_gives_the_target_fails_the_test_by_name(task, leak):
    df = _frame(task)
    if leak == "copy":
        df["leak"] = df["y"]
    elif leak == "near_copy":  # the target plus a little noise (a post-outcome measurement)
        df["leak"] = df["y"] + np.random.default_rng(1).normal(scale=0.01, size=len(df))
    elif leak == "label_as_text":  # the label as a category: "yes"/"no", or the value as text
        df["leak"] = df["y"].map(lambda v: f"label-{v}")
    else:
        df["leak"] = df["y"] * 1000 - 7
    categorical = ["plan", "leak"] if leak == "label_as_text" else ["plan"]
    numeric = ["x", "noise"] + ([] if leak == "label_as_text" else ["leak"])
    report = TestReport()
    check_leakage(report, _model(task, numeric, categorical), df, {})
    what = "ROC AUC" if task == "classification" else "|correlation|"
    assert _failed(report) == [f"leakage leak: single-feature {what}"]
    assert report.details["leakage"]["leak"] >= 0.99
    assert not report.passed


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_honest_features_pass_with_their_best_score_shown(task):
    report = TestReport()
    check_leakage(report, _model(task, ["x", "noise"], ["plan"]), _frame(task), {})
    assert _failed(report) == []
    (row,) = report.rows
    assert row["test"] == "leakage: best single feature (x)"
    assert 0.3 < report.details["leakage"]["x"] < 0.95


def test_an_allowed_feature_passes_with_its_reason():
    df = _frame("classification").assign(leak=lambda d: d["y"])
    report = TestReport()
    rule = {"allow": {"leak": "the label of the previous month, known at scoring time"}}
    check_leakage(report, _model("classification", ["x", "leak"], []), df, rule)
    assert _failed(report) == []
    assert report.rows[0]["expected"] == "allowed: the label of the previous month, known at scoring time"


def test_a_high_cardinality_id_is_not_leakage():
    """A unique id per row predicts its own rows perfectly; scored on the other half (cross-fit), it is chance."""
    df = _frame("classification").assign(customer=lambda d: [f"c{i}" for i in range(len(d))])
    score = single_feature_score(df, "customer", "y", "classification", categorical=True)
    assert score is not None
    assert score < 0.6
