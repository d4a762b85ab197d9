from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_mlops.errors import SpecError
from airflow_mlops.pipeline.spec import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[3]
DEMO = yaml.safe_load((ROOT / "dags" / "pipelines" / "demo_churn.yaml").read_text())


def _with(path: str, value):
    raw = yaml.safe_load(yaml.safe_dump(DEMO))
    node = raw
    *parents, leaf = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    if value is KeyError:
        del node[leaf]
    else:
        node[leaf] = value
    return raw


def test_demo_spec_parses():
    spec = parse_spec(DEMO, "demo.yaml")
    assert spec.feature_names == [
        "age", "tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "plan", "region", "payment_method"
    ]  # fmt: skip
    assert spec.constraints.columns["age"].max == 100
    assert spec.thresholds() == {"roc_auc": {"min": 0.70}, "accuracy": {"min": 0.65}}
    assert (spec.training.window_days, spec.retraining.window_days, spec.drift.drift_share) == (14, 3, 0.3)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("model.kind", "xgboost", "model.kind: found 'xgboost'; allowed: tabular | lora_text"),
        ("name", "Bad Name", "name: found 'Bad Name'; allowed: lower-case letters"),
        ("training.window_days", 0, "training.window_days: found 0; allowed: a number >= 1"),
        ("training.holdout_fraction", "lots", "training.holdout_fraction: found 'lots'; allowed: a number"),
        (
            "tests.thresholds.rmse",
            {"max": 1},
            "tests.thresholds.rmse: found 'rmse'; allowed: a classification metric",
        ),
        (
            "constraints.columns.age.dtype",
            "int32",
            "constraints.columns.age.dtype: found 'int32'; allowed: integer | float",
        ),
        (
            "constraints.columns.age.min",
            200,
            "constraints.columns.age.min: found 200; allowed: a value <= max (100)",
        ),
        (
            "schedules.training",
            "every day",
            "schedules.training: found 'every day'; allowed: a cron expression",
        ),
        ("data", KeyError, "data: missing; it is required"),
        ("target", KeyError, "target: missing; it is required"),
        ("drift.sensor.on_timeout", "retry", "drift.sensor.on_timeout: found 'retry'; allowed: skip | fail"),
        (
            "drift.sensor.mode",
            "async",
            "drift.sensor.mode: found 'async'; allowed: deferrable | reschedule | poke",
        ),
        ("data.completeness.min_rows", 0, "data.completeness.min_rows: found 0; allowed: a number >= 1"),
        (
            "data.completeness.markr",
            "_SUCCESS",
            "data.completeness.markr: unknown key (did you mean 'marker'?)",
        ),
        ("modle", {}, "modle: unknown key (did you mean 'model'?)"),
        # YAML's .inf and .nan are numbers, but no threshold, tolerance or setting means them
        ("tests.thresholds.roc_auc", {"min": float("inf")}, "tests.thresholds.roc_auc.min: found inf; allowed: a finite"),
        ("drift.drift_share", float("nan"), "drift.drift_share: found nan; allowed: a finite number"),
        ("tests.compare.min_improvement", float("inf"), "tests.compare.min_improvement: found inf; allowed: a finite"),
        (
            "tests.compare.min_improvement",
            "5 %",
            "tests.compare.min_improvement: found '5 %'; allowed: a number, or a percentage such as '5%'",
        ),
    ],
)
def test_spec_errors_name_key_found_and_allowed(path, value, expected):
    with pytest.raises(SpecError) as err:
        parse_spec(_with(path, value), "pipelines/churn.yaml")
    assert "pipelines/churn.yaml" in str(err.value)
    assert any(p.startswith(expected) for p in err.value.problems), err.value.problems


def test_every_problem_is_reported_at_once():
    raw = _with("model.kind", "xgboost")
    raw["training"]["seed"] = -1
    with pytest.raises(SpecError) as err:
        parse_spec(raw, "x.yaml")
    assert len(err.value.problems) == 2


def test_yaml_syntax_error_names_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: [unclosed\n")
    with pytest.raises(SpecError, match=r"bad.yaml.*\n.*YAML syntax.*line 3"):
        load_spec(bad)


def test_target_cannot_be_a_feature():
    raw = _with("target", "age")
    with pytest.raises(SpecError, match="target: found 'age'; allowed: a column that is not also a feature"):
        parse_spec(raw)


def test_causal_lm_spec_needs_no_target():
    raw = _with("model", {"kind": "lora_causal_lm", "params": {"epochs": 1}})
    raw["features"] = {"text": "note"}
    del raw["target"]
    raw["tests"] = {"thresholds": {"perplexity": 30}, "compare": {"metric": "perplexity"}}
    spec = parse_spec(raw)
    assert (spec.target, spec.model.task, spec.compare_metric) == ("note", "language_modeling", "perplexity")
    assert spec.thresholds() == {"perplexity": {"max": 30}}


def test_monitor_waits_for_a_complete_partition_as_the_spec_says(tmp_path):
    from airflow_mlops.pipeline.factory import build_monitor_dag

    raw = _with("data.completeness", {"min_rows": 500, "marker": "_SUCCESS", "asset": "raw_churn"})
    raw["drift"]["sensor"] = {"mode": "reschedule", "timeout": 900, "poke_interval": 30, "on_timeout": "fail"}
    dag = build_monitor_dag(parse_spec(raw))
    wait, detect = dag.get_task("wait_for_partition"), dag.get_task("detect_drift")
    assert [t.task_id for t in wait.downstream_list] == ["profile_partition"]
    assert (wait.min_rows, wait.marker, wait.asset) == (500, "_SUCCESS", "raw_churn")
    assert [a.name for a in wait.inlets] == ["raw_churn"]
    for sensor in (wait, detect):
        assert (sensor.deferrable, sensor.mode, sensor.on_timeout) == (False, "reschedule", "fail")
        assert (sensor.timeout, sensor.poke_interval) == (900, 30)
        assert not sensor.soft_fail

    default = build_monitor_dag(parse_spec(_with("data.completeness", {"min_rows": 10})))
    assert default.get_task("wait_for_partition").deferrable is True
    assert default.get_task("detect_drift").on_timeout == "skip"


def test_drift_metrics_per_kind_and_feature():
    raw = _with("drift.numeric", {"metric": "psi", "psi": 0.2})
    raw["drift"]["features"] = {"plan": {"metric": "psi"}, "age": {"threshold": 0.08, "metric": "ks"}}
    spec = parse_spec(raw)
    policy = spec.drift.policy()
    assert policy.rule("monthly_charges", "numeric") == ("psi", 0.2)
    assert policy.rule("age", "numeric") == ("ks", 0.08)
    assert policy.rule("plan", "categorical") == ("psi", 0.1)  # the categorical PSI default
    assert policy.rule("region", "categorical") == ("hellinger", spec.drift.categorical.hellinger)
    # the policy the monitor DAG's sensor decides by is the spec's, one value from spec to sensor
    from airflow_mlops.pipeline.factory import build_monitor_dag

    assert build_monitor_dag(spec).get_task("detect_drift").policy == policy
    with pytest.raises(SpecError, match=r"drift.features.age.metric: found 'hellinger'; allowed: ks \| psi"):
        parse_spec(_with("drift.features", {"age": {"metric": "hellinger"}}))


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    bad = tmp_path / "twice.yaml"
    bad.write_text("name: twice\nmodel: {kind: tabular}\ndata: {uri: x}\nmodel: {kind: lora_text}\n")
    with pytest.raises(SpecError, match=r"line 4, column 1: key 'model' appears twice \(first at line 2\)"):
        load_spec(bad)


def test_training_windows_run_one_at_a_time_even_in_a_backfill():
    """A backfill has its own max_active_runs (default 10), not the DAG's: the tasks that train, test and
    release carry max_active_tis_per_dag, which the scheduler applies to backfill runs too."""
    from airflow_mlops.pipeline.factory import build_training_dag

    dag = build_training_dag(parse_spec(_with("training.concurrent_windows", 1)))
    assert {t: dag.get_task(t).max_active_tis_per_dag for t in ("train_model", "test_model", "register_model")} == {
        "train_model": 1, "test_model": 1, "register_model": 1,
    }
    two = build_training_dag(parse_spec(_with("training.concurrent_windows", 2)))
    assert two.get_task("train_model").max_active_tis_per_dag == 2


def test_expectations_gate_the_scheduled_training_only_and_the_contract_gates_every_dag():
    """A mean or quantile bound stops the scheduled training; the retraining (which follows drift) logs it,
    and the drift monitor hands it to its drift report."""
    from airflow_mlops.pipeline.factory import build_monitor_dag, build_retraining_dag, build_training_dag

    spec = parse_spec(DEMO)
    validate = {
        "training": build_training_dag(spec).get_task("validate_data"),
        "retraining": build_retraining_dag(spec).get_task("validate_data"),
        "monitor": build_monitor_dag(spec).get_task("profile_partition"),
    }
    assert {k: t.expectations for k, t in validate.items()} == {
        "training": "fail", "retraining": "warn", "monitor": "warn",
    }  # fmt: skip
    assert all(t.constraints == spec.constraints_dict() for t in validate.values())  # one contract for all
    assert build_monitor_dag(spec).get_task("detect_drift").expectations_task_id == "profile_partition"


def test_partition_checks_are_on_by_default_and_can_be_tuned():
    c = parse_spec(DEMO).constraints_dict()
    assert c["max_duplicate_fraction"] == 0.05
    assert c["class_balance"] == {"max_shift": 0.25, "min_rows": 30, "severity": None}
    off = parse_spec(_with("constraints.class_balance", {"enabled": False})).constraints_dict()
    assert off["class_balance"] is None
    assert parse_spec(_with("constraints.max_duplicate_fraction", None)).constraints_dict()["max_duplicate_fraction"] is None
    assert parse_spec(_with("data.on_extra_columns", "ignore")).data.on_extra_columns == "ignore"
    with pytest.raises(SpecError, match=r"data.on_extra_columns: found 'drop'"):
        parse_spec(_with("data.on_extra_columns", "drop"))


def test_a_tolerated_drop_is_a_number_or_a_percentage():
    from airflow_mlops.pipeline.spec import parse_spec

    spec = parse_spec(_with("scoring.labels.max_metric_drop", {"roc_auc": "5%", "accuracy": 0.02}))
    assert spec.scoring.labels.max_metric_drop == {"roc_auc": "5%", "accuracy": 0.02}
    with pytest.raises(SpecError, match=r"scoring.labels.max_metric_drop"):
        parse_spec(_with("scoring.labels.max_metric_drop", "5 percent"))


def test_an_improvement_is_absolute_or_a_percentage_of_the_champion():
    """``min_improvement: "2.5%"`` reads as 0.025 relative (the one form every reader of the section sees), as
    ``max_metric_drop`` takes percentages; a percentage with ``relative: false`` contradicts itself."""
    compare = parse_spec(_with("tests.compare.min_improvement", "2.5%")).tests.compare
    assert (compare.min_improvement, compare.relative) == (0.025, True)
    compare = parse_spec(_with("tests.compare.min_improvement", 0.025)).tests.compare
    assert (compare.min_improvement, compare.relative) == (0.025, False)
    raw = _with("tests.compare.min_improvement", "1%")
    raw["tests"]["compare"]["relative"] = False
    with pytest.raises(SpecError) as err:
        parse_spec(raw, "x.yaml")
    assert err.value.problems == ["tests.compare.relative: found False; allowed: true or unset: min_improvement 1% is relative"]
