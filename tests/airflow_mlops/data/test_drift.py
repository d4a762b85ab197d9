from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.data.drift.scores import drift_table, score_drift
from airflow_mlops.data.profiling import profile_frame


def _frame(n: int, seed: int, shift: float = 0.0, cat_p=(0.5, 0.3, 0.2)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(shift, 1, n),
            "b": rng.exponential(1, n),
            "c": rng.choice(["x", "y", "z"], n, p=list(cat_p)),
        }
    )


def _score(ref, cur, **kw):
    return score_drift(profile_frame(ref), profile_frame(cur), numeric=["a", "b"], categorical=["c"], **kw)


@pytest.mark.parametrize("n", [500, 20_000, 200_000])
def test_same_distribution_does_not_drift_at_any_size(n):
    report = _score(_frame(n, 1), _frame(n, 2))
    assert report["status"] == "no_drift"
    assert report["drifted_features"] == []


def test_mean_shift_drifts_and_is_ranked_first():
    report = _score(_frame(20_000, 1), _frame(20_000, 2, shift=0.5))
    assert report["drifted_features"] == ["a"]
    assert report["features"][0]["feature"] == "a"
    assert 0.15 < report["features"][0]["score"] < 0.25  # KS of N(0,1) vs N(0.5,1) is 0.197
    assert report["status"] == "drift"  # 1 of 3 features >= 0.3 share


def test_categorical_mix_change_drifts_on_hellinger():
    report = _score(_frame(10_000, 1), _frame(10_000, 2, cat_p=(0.2, 0.3, 0.5)))
    row = next(r for r in report["features"] if r["feature"] == "c")
    assert row["metric"] == "hellinger"
    assert row["drifted"]


def test_new_category_counts_against_the_reference():
    ref = _frame(5_000, 1)
    cur = _frame(5_000, 2)
    cur.loc[:2_000, "c"] = "brand_new"
    row = next(r for r in _score(ref, cur)["features"] if r["feature"] == "c")
    assert row["drifted"]


def test_small_partitions_are_insufficient_data_not_a_guess():
    report = _score(_frame(5_000, 1), _frame(50, 2, shift=3.0), policy={"min_rows": 100})
    assert report["status"] == "insufficient_data"
    assert not report["drift"]
    assert {r["status"] for r in report["features"]} == {"insufficient data"}


def test_floor_grows_for_small_samples():
    report = _score(_frame(300, 1), _frame(300, 2), policy={"numeric": {"ks": 0.01}, "min_rows": 100})
    numeric = [r for r in report["features"] if r["metric"] == "ks"]
    assert all(r["threshold"] > 0.15 for r in numeric)  # 1.95 * sqrt(2/300) = 0.159
    assert not report["drift"]


def test_table_lists_every_feature():
    table = drift_table(_score(_frame(2_000, 1), _frame(2_000, 2, shift=1.0)))
    assert table.splitlines()[2].split()[0] == "a"
    assert len(table.splitlines()) == 2 + 3


def _levels(n: int, seed: int, levels: int, shift: float = 0.0) -> pd.DataFrame:
    """A latent N(shift, 1) cut into ``levels`` equally likely categories."""
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    codes = np.searchsorted(norm.ppf(np.linspace(0, 1, levels + 1)[1:-1]), rng.normal(shift, 1, n))
    return pd.DataFrame({"c": pd.Series([f"l{i}" for i in codes], dtype="str")})


def _cat(ref, cur, **kw):
    return score_drift(profile_frame(ref), profile_frame(cur), numeric=[], categorical=["c"], **kw)


@pytest.mark.parametrize("levels", [50, 1000])
def test_many_levels_do_not_false_alarm_and_a_shift_is_found(levels):
    """Plug-in Hellinger over 1,000 levels scores identical data at 0.16 at 10,000 rows a side: the score is
    bias-corrected, so identical data score about 0 and a 0.2-sd shift of the latent variable drifts."""
    n = 100_000
    same = _cat(_levels(n, 1, levels), _levels(n, 2, levels))
    row = same["features"][0]
    assert same["status"] == "no_drift"
    assert row["score"] < 0.02
    assert row["levels"] >= levels  # every level counted exactly (plus "other" where needed)
    moved = _cat(_levels(n, 1, levels), _levels(n, 3, levels, shift=0.2))
    assert moved["status"] == "drift"
    assert 0.05 < moved["features"][0]["score"] < 0.09  # the 0.2-sd effect is H = 0.070


def test_category_absent_from_the_current_data_counts_as_zero():
    ref = pd.DataFrame({"c": pd.Series(["x"] * 5000 + ["y"] * 5000 + ["gone"] * 2000, dtype="str")})
    cur = pd.DataFrame({"c": pd.Series(["x"] * 6000 + ["y"] * 6000, dtype="str")})
    report = _cat(ref, cur)
    assert report["drifted_features"] == ["c"]


def test_per_feature_thresholds_override_the_default():
    ref, cur = _frame(20_000, 1), _frame(20_000, 2, shift=0.2)  # KS 0.080, well above the floor (~0.046)
    loose = _score(ref, cur, policy={"numeric": {"ks": 0.03}})
    assert "a" in loose["drifted_features"]
    strict = _score(ref, cur, policy={"numeric": {"ks": 0.03}, "features": {"a": {"threshold": 0.2}}})
    assert "a" not in strict["drifted_features"]
    assert next(r for r in strict["features"] if r["feature"] == "a")["threshold"] == 0.2


@pytest.mark.parametrize("n", [2_000, 200_000])
def test_psi_decides_when_chosen_without_false_alarms(n):
    """PSI as the deciding metric: bias-corrected, above its own floor; identical data stay quiet at any
    size, a 0.5-sd mean shift (decile PSI ~0.23) drifts at the conventional 0.1."""
    same = _score(_frame(n, 1), _frame(n, 2), policy={"numeric": {"metric": "psi"}, "categorical": {"metric": "psi"}})
    assert same["status"] == "no_drift"
    assert {r["metric"] for r in same["features"]} == {"psi"}
    for row in same["features"]:
        assert row["score"] < row["threshold"]
        assert row["threshold"] >= 0.1
    moved = _score(_frame(n, 1), _frame(n, 2, shift=0.5), policy={"numeric": {"metric": "psi"}})
    row = next(r for r in moved["features"] if r["feature"] == "a")
    assert row["metric"] == "psi"
    assert row["drifted"]
    assert 0.15 < row["score"] < 0.35


def test_psi_over_1000_levels_is_bias_corrected():
    n = 10_000  # 10 rows per level a side: raw PSI of identical data is about (L - 1)(1/n + 1/m) = 0.2
    same = _cat(_levels(n, 1, 1000), _levels(n, 2, 1000), policy={"categorical": {"metric": "psi"}})
    row = same["features"][0]
    assert row["psi"] > 0.1  # raw: would alarm at the conventional threshold
    assert row["score"] < row["threshold"]
    assert same["status"] == "no_drift"


def test_per_feature_metric_and_a_new_category_under_psi():
    ref = pd.DataFrame({"c": pd.Series(["x"] * 5000 + ["y"] * 5000, dtype="str")})
    cur = pd.DataFrame({"c": pd.Series(["x"] * 4000 + ["y"] * 4000 + ["new"] * 2000, dtype="str")})
    report = _cat(ref, cur, policy={"features": {"c": {"metric": "psi", "threshold": 0.25}}})
    row = report["features"][0]
    assert (row["metric"], row["threshold"], row["drifted"]) == ("psi", 0.25, True)


def test_an_all_nan_column_is_insufficient_data_and_a_constant_one_is_compared():
    n = 5_000
    ref = pd.DataFrame({"a": np.full(n, 5.0), "b": np.random.default_rng(1).normal(0, 1, n)})
    nan = pd.DataFrame({"a": np.full(n, 5.0), "b": np.full(n, np.nan)})
    report = score_drift(profile_frame(ref), profile_frame(nan), numeric=["a", "b"], categorical=[])
    rows = {r["feature"]: r for r in report["features"]}
    assert (rows["b"]["status"], rows["b"]["n_current"]) == ("insufficient data", 0)
    assert (rows["a"]["status"], rows["a"]["score"]) == ("ok", 0.0)  # the same constant: no drift, no crash
    moved = pd.DataFrame({"a": np.full(n, 6.0), "b": np.random.default_rng(2).normal(0, 1, n)})
    report = score_drift(profile_frame(ref), profile_frame(moved), numeric=["a", "b"], categorical=[])
    rows = {r["feature"]: r for r in report["features"]}
    assert (rows["a"]["status"], rows["a"]["score"]) == ("drift", 1.0)  # another constant: all mass moved
    assert rows["b"]["status"] == "ok"


def test_the_policy_reads_the_specs_names_and_refuses_unknown_keys():
    from airflow_mlops.data.drift.scores import CategoricalRule, DriftPolicy, FeatureRule, NumericRule

    policy = DriftPolicy.from_dict(
        {"numeric": {"metric": "psi", "psi": 0.2}, "categorical": {"hellinger": 0.07}, "drift_share": 0.5,
         "features": {"age": {"metric": "ks", "threshold": 0.08}, "plan": {"metric": "psi"}},
         "sensor": {"mode": "poke"}}
    )  # fmt: skip
    assert policy.numeric == NumericRule(metric="psi", psi=0.2)
    assert policy.categorical == CategoricalRule(hellinger=0.07)
    assert policy.features["plan"] == FeatureRule(metric="psi")
    assert policy.rule("income", "numeric") == ("psi", 0.2)
    assert policy.rule("age", "numeric") == ("ks", 0.08)
    assert policy.rule("plan", "categorical") == ("psi", 0.1)  # the categorical PSI default
    assert policy.rule("region", "categorical") == ("hellinger", 0.07)
    assert DriftPolicy.from_dict(policy.as_dict()) == policy
    with pytest.raises(ValueError, match=r"numeric: unknown key\(s\) \['ks_threshold'\]; allowed: \['ks', 'metric', 'psi'\]"):
        DriftPolicy.from_dict({"numeric": {"ks_threshold": 0.1}})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['feature_thresholds'\]"):
        DriftPolicy.from_dict({"feature_thresholds": {}})
