"""Each kind of model test passes and fails on crafted models and data (issue: testing that gates for real)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.errors import ModelTestError
from airflow_mlops.model.metrics import evaluate
from airflow_mlops.release.evaluation import (
    TestReport,
    apply_override,
    raise_for_failures,
    run_checks,
    run_tests,
)

META = {
    "task": "classification",
    "classes": [0, 1],
    "target": "y",
    "numeric": ["x", "z"],
    "categorical": ["g"],
}


class Crafted:
    """A model defined by a scoring function of the frame: P(y=1)."""

    def __init__(self, fn):
        self.fn = fn
        self.meta = dict(META)

    def predict_proba(self, df):
        p = np.clip(np.asarray(self.fn(df), dtype=float), 0, 1)
        return np.column_stack([1 - p, p])

    def predict(self, df):
        return self.predict_proba(df).argmax(axis=1)


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def good(df):
    return sigmoid(3 * df["x"].astype(float).fillna(0.0).to_numpy())


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 4000
    x = rng.normal(size=n)
    df = pd.DataFrame({
        "x": x, "z": rng.normal(size=n),
        "g": rng.choice(["a", "b", "c"], size=n, p=[0.45, 0.45, 0.10]),
    })  # fmt: skip
    df["y"] = (x + rng.normal(0, 0.5, n) > 0).astype(int)
    return df


def _report(model, df, checks, **compare) -> TestReport:
    metrics = evaluate(model, df)
    report = TestReport()
    run_checks(report, model, df, metrics, checks, seed=1)
    return run_tests(
        metrics, thresholds={"roc_auc": {"min": 0.7}}, compare_metric="roc_auc", min_improvement=0.0,
        champion_metrics=None, champion_version=None, report=report, **compare,
    )  # fmt: skip


def _row(report: TestReport, prefix: str) -> dict:
    rows = [r for r in report.rows if r["test"].startswith(prefix)]
    assert len(rows) == 1, report.table()
    return rows[0]


SLICES = {"slices": [{"column": "g", "metric": "roc_auc", "min": 0.6, "min_rows": 30}]}


def test_model_good_overall_but_broken_on_one_slice_is_caught(holdout):
    def unfair(df):  # the right signal everywhere except segment c, where it is inverted
        s = good(df)
        return np.where(df["g"] == "c", 1 - s, s)

    report = _report(Crafted(unfair), holdout, SLICES)
    assert report.metrics["roc_auc"] > 0.75  # fine overall: a metric threshold alone would release it
    row = _row(report, "slices g")
    assert not row["passed"]
    assert "g=c" in row["test"]
    assert float(row["observed"]) < 0.2
    assert not report.passed
    assert not report.promote
    assert "slices g" in report.reason

    fine = _report(Crafted(good), holdout, SLICES)
    assert _row(fine, "slices g")["passed"]
    assert fine.passed
    assert set(fine.details["slices"][0]["values"]) == {"a", "b", "c"}


FAIRNESS = {
    "fairness": [
        {"group": "g", "metric": "demographic_parity_difference", "max": 0.1},
        {"group": "g", "metric": "equal_opportunity_difference", "max": 0.1},
    ]
}


def test_fairness_gaps_between_groups_are_measured_and_gate(holdout):
    def biased(df):  # segment c gets a strong push towards "positive"
        return sigmoid(3 * df["x"].to_numpy() + 3.0 * (df["g"] == "c").to_numpy())

    report = _report(Crafted(biased), holdout, FAIRNESS)
    dp = _row(report, "fairness demographic_parity_difference")
    eo = _row(report, "fairness equal_opportunity_difference")
    assert not dp["passed"]
    assert float(dp["observed"]) > 0.2
    assert not eo["passed"]
    rates = report.details["fairness"][0]["rates"]
    assert rates["c"] > rates["a"] + 0.2

    fair = _report(Crafted(good), holdout, FAIRNESS)
    assert _row(fair, "fairness demographic_parity_difference")["passed"]
    assert _row(fair, "fairness equal_opportunity_difference")["passed"]


def test_model_that_collapses_under_5_percent_missing_values_is_caught(holdout):
    def batch_standardised(df):  # standardises with batch statistics: one NaN poisons every row
        x = df["x"].astype(float).to_numpy()
        z = (x - x.mean()) / x.std()
        return np.nan_to_num(sigmoid(3 * z), nan=0.5)

    checks = {
        "robustness": [{"perturbation": "missing", "fraction": 0.05, "metric": "roc_auc", "max_drop": 0.05}]
    }
    report = _report(Crafted(batch_standardised), holdout, checks)
    row = _row(report, "robustness missing")
    assert not row["passed"]
    assert float(row["observed"]) > 0.3  # roc_auc falls to 0.5
    assert "5% of values" in row["test"]

    imputing = _report(Crafted(good), holdout, checks)  # fills missing values: degrades gracefully
    assert _row(imputing, "robustness missing")["passed"]


def test_noise_and_unseen_categories(holdout):
    def category_lookup(df):  # relies on a category table and gives up on anything it has not seen
        known = df["g"].isin(["a", "b", "c"]).to_numpy()
        return np.where(known, good(df), 0.0)

    checks = {
        "robustness": [
            {"perturbation": "unseen_category", "fraction": 0.2, "metric": "roc_auc", "max_drop": 0.02},
            {"perturbation": "noise", "scale": 0.1, "metric": "roc_auc", "max_drop": 0.05},
        ]
    }
    report = _report(Crafted(category_lookup), holdout, checks)
    assert not _row(report, "robustness unseen_category")["passed"]
    assert _row(report, "robustness noise")["passed"]  # 0.1 sd of noise costs little
    loud = {"robustness": [{"perturbation": "noise", "scale": 2.0, "metric": "roc_auc", "max_drop": 0.05}]}
    assert not _row(_report(Crafted(good), holdout, loud), "robustness noise")["passed"]


def test_text_perturbations_are_seeded_typos_and_case_changes():
    from airflow_mlops.release.suites import perturb

    df = pd.DataFrame({"review": ["great product works well", "terrible support never again"] * 50})
    meta = {"text": "review"}
    typo = perturb(df, meta, "typo", fraction=0.5, scale=0, seed=3)
    assert (
        typo["review"].tolist() == perturb(df, meta, "typo", fraction=0.5, scale=0, seed=3)["review"].tolist()
    )
    changed = (typo["review"] != df["review"]).mean()
    assert 0.5 < changed <= 1.0
    assert sorted("".join(typo["review"])) == sorted("".join(df["review"]))  # letters swapped, none lost
    case = perturb(df, meta, "case", fraction=1.0, scale=0, seed=3)
    assert case["review"].tolist() == [t.upper() for t in df["review"]]


def test_directional_and_invariance_expectations(holdout):
    def wavy(df):  # not monotone in x
        return sigmoid(3 * np.sin(df["x"].to_numpy()))

    rules = {
        "expectations": [
            {
                "feature": "x",
                "direction": "increasing",
                "delta": 0.5,
                "max_violations": 0.01,
                "tolerance": 1e-9,
            },
            {
                "feature": "g",
                "direction": "invariant",
                "value": "a",
                "max_violations": 0.0,
                "tolerance": 1e-9,
            },
        ]
    }
    report = _report(Crafted(wavy), holdout, rules)
    assert not _row(report, "expectation x")["passed"]
    assert _row(report, "expectation g")["passed"]

    def uses_group(df):
        return sigmoid(3 * df["x"].to_numpy() + 0.5 * (df["g"] == "b").to_numpy())

    ok = _report(Crafted(uses_group), holdout, rules)
    assert _row(ok, "expectation x")["passed"]
    assert not _row(ok, "expectation g")["passed"]  # changing g moves the score: not invariant


def test_compare_modes_absolute_relative_and_non_inferiority():
    champion = {"roc_auc": 0.80}

    def decide(value, **kw):
        return run_tests(
            {"roc_auc": value}, thresholds={}, compare_metric="roc_auc", champion_metrics=champion,
            champion_version="1", **kw,
        ).promote  # fmt: skip

    assert decide(0.81, min_improvement=0.005)
    assert not decide(0.803, min_improvement=0.005)
    assert decide(0.81, min_improvement=0.01, relative=True)  # needs 0.808
    assert not decide(0.805, min_improvement=0.01, relative=True)
    assert decide(0.795, min_improvement=0.01, compare_mode="non_inferiority")  # within 0.01 below
    assert not decide(0.785, min_improvement=0.01, compare_mode="non_inferiority")

    first = run_tests(
        {"roc_auc": 0.75}, thresholds={"roc_auc": {"min": 0.7}}, compare_metric="roc_auc", min_improvement=0.0,
        champion_metrics=None, champion_version=None,
    )  # fmt: skip
    assert first.promote
    assert "first run" in first.reason
    assert any("first-run policy" in r["expected"] for r in first.rows)


def test_an_improvement_no_model_can_reach_says_so_and_names_non_inferiority():
    """accuracy 1.0 + 0.005 = 1.005: the absolute rule can never be met; the reason says so and what to use.
    A reachable rule says nothing of the kind."""
    saturated = run_tests(
        {"accuracy": 1.0}, thresholds={}, compare_metric="accuracy", min_improvement=0.005,
        champion_metrics={"accuracy": 1.0}, champion_version="4",
    )  # fmt: skip
    assert not saturated.promote
    assert "No model can reach 1.005: accuracy cannot be above 1" in saturated.reason
    assert "tests.compare.mode: non_inferiority" in saturated.reason
    reachable = run_tests(
        {"accuracy": 0.9}, thresholds={}, compare_metric="accuracy", min_improvement=0.005,
        champion_metrics={"accuracy": 0.95}, champion_version="4",
    )  # fmt: skip
    assert not reachable.promote
    assert "No model can reach" not in reachable.reason


def test_tolerated_drops_are_absolute_or_relative_and_default_by_metric():
    from airflow_mlops.model.metrics import tolerated_drop

    assert tolerated_drop(None, "rmse", 49.0) == pytest.approx(2.45)  # 5% of an RMSE in the target's units
    assert tolerated_drop(None, "roc_auc", 0.8) == 0.05
    assert tolerated_drop("10%", "accuracy", 0.9) == pytest.approx(0.09)
    assert tolerated_drop({"mae": "2%", "r2": 0.1}, "mae", 50.0) == pytest.approx(1.0)
    assert tolerated_drop({"mae": "2%"}, "r2", 0.7) == 0.05  # a metric the mapping does not name
    assert tolerated_drop("5%", "rmse", None) is None  # relative to nothing: not judged


def test_failed_gate_stops_with_a_table_unless_a_person_overrides_with_a_reason(holdout):
    def unfair(df):
        s = good(df)
        return np.where(df["g"] == "c", 1 - s, s)

    report = _report(Crafted(unfair), holdout, SLICES)
    with pytest.raises(ModelTestError) as err:
        raise_for_failures(report, "m run r")
    assert "slices g: worst roc_auc (g=c)" in str(err.value)
    assert "override reason" in str(err.value)

    with pytest.raises(ModelTestError, match="too short"):
        apply_override(report, "ok", "alice")
    apply_override(report, "known issue in segment c, fixed upstream by Monday", "alice")
    raise_for_failures(report, "m run r")  # released: no exception
    assert report.override == {
        "reason": "known issue in segment c, fixed upstream by Monday", "by": "alice",
        "failed_tests": ["slices g: worst roc_auc (g=c)"],
    }  # fmt: skip
    assert report.promote
    assert not report.passed
    assert "released by override (alice" in report.reason

    from airflow_mlops.release.reports import model_test_html

    page = model_test_html(report.as_dict(), "Model tests")
    assert "FAILED, RELEASED BY OVERRIDE" in page
    assert "<svg" in page
    assert "g=c" in page


def test_the_model_test_policy_refuses_another_split_than_the_trainers_before_reading_anything():
    """The policy runs without Airflow (the operator only adapts it): split arguments that disagree with the
    trainer's recorded split are refused, named, before any data or tracking store is touched."""
    from airflow_mlops.release.model_test import ModelTestRequest, run_model_test

    split = {"seed": 7, "fraction": 0.2, "window_start": "2026-01-04T00:00:00+00:00",
             "window_end": "2026-01-18T00:00:00+00:00", "holdout_rows": 10, "holdout_sha256": "0" * 64}  # fmt: skip
    request = ModelTestRequest(
        model_name="m", training={"run_id": "r1", "split": split}, data_uri="/nowhere/{date}.parquet",
        target="y", split_args={"seed": 8, "holdout_fraction": 0.2},
    )  # fmt: skip
    said: list[tuple[bool, str]] = []
    with pytest.raises(ModelTestError, match=r"seed=8 \(the trainer's: 7\).*Leave seed, holdout_fraction"):
        run_model_test(None, request, user=None, ui_url=None, say=lambda ok, text: said.append((ok, text)),
                       on_report_url=said.append)  # fmt: skip
    assert said == []
