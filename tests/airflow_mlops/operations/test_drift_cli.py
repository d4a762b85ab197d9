"""``airflow-mlops profile`` and ``airflow-mlops drift``: the monitor's decision reproduced outside Airflow."""

from __future__ import annotations

import json
import os
from pathlib import Path

from airflow_mlops.tools.cli import main

DATA = Path(os.environ["MLOPS_TEST_DATA"]) / "demo_churn"
SPEC = Path(__file__).resolve().parents[3] / "dags" / "pipelines" / "demo_churn.yaml"


def _day(day: str) -> str:
    return str(DATA / f"date={day}" / "part-0.parquet")


def test_profile_then_drift_gives_the_sensors_decision_table_json_and_page(tmp_path, capsys):
    from airflow_mlops.data.drift.scores import score_drift
    from airflow_mlops.data.profiling import load_profile
    from airflow_mlops.pipeline.spec import load_spec

    reference = tmp_path / "ref.bin"
    assert main(["profile", *(_day(f"2026-01-{d}") for d in (14, 15, 16, 17)), "--out", str(reference)]) == 0
    assert "profiled 4 file(s), 8000 rows" in capsys.readouterr().out
    current = tmp_path / "cur.bin"
    assert main(["profile", _day("2026-01-23"), "--out", str(current)]) == 0
    capsys.readouterr()

    page = tmp_path / "report.html"
    assert main(["drift", str(reference), str(current), "--spec", str(SPEC), "--html", str(page)]) == 1  # drift
    table = capsys.readouterr().out
    assert table.startswith("DRIFT: 3 of 8 features drifted")
    first = table.splitlines()[3].split()  # the most drifted feature first (scores come from sketches)
    assert (first[0], first[-1]) == ("support_calls", "DRIFT")
    assert "data:image/png;base64," in page.read_text()

    assert main(["drift", str(reference), str(current), "--spec", str(SPEC), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    spec = load_spec(SPEC)
    # the same decision as the sensor's core call on the same profiles and the spec's policy
    expected = score_drift(
        load_profile(str(reference)), load_profile(str(current)), numeric=list(spec.features.numeric),
        categorical=list(spec.features.categorical), policy=spec.drift.policy(),
    )  # fmt: skip
    assert report["drifted_features"] == expected["drifted_features"] == ["monthly_charges", "support_calls", "plan"]
    assert report["drift_share"] == expected["drift_share"]


def test_drift_on_unchanged_days_exits_0_and_data_files_are_profiled_on_the_fly(capsys):
    code = main(["drift", _day("2026-01-15"), _day("2026-01-16"), "--numeric", "age", "tenure_months",
                 "--categorical", "plan"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("NO_DRIFT: 0 of 3 features drifted")


def test_drift_without_features_is_a_usage_error(capsys):
    assert main(["drift", _day("2026-01-15"), _day("2026-01-16")]) == 2
    assert "--spec PIPELINE.yaml, or --numeric/--categorical" in capsys.readouterr().err


def test_drift_weighs_drifted_features_by_the_given_importance(tmp_path, capsys):
    """The January 23rd shift moves monthly_charges, support_calls and plan: drift when they carry the model's
    importance, no drift (and exit 0) when the importance says the model does not use them."""
    args = ["drift", _day("2026-01-16"), _day("2026-01-23"), "--spec", str(SPEC), "--format", "json"]
    used = {"monthly_charges": 0.4, "support_calls": 0.3, "tenure_months": 0.3}
    assert main([*args, "--importance", json.dumps(used)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["decided_by"], report["drifted_importance"]) == ("importance", 0.7)
    unused = tmp_path / "importance.json"
    unused.write_text(json.dumps({"age": 0.5, "tenure_months": 0.5}))
    assert main([*args, "--importance", str(unused)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["status"], report["drifted_importance"]) == ("no_drift", 0.0)
    assert set(report["drifted_features"]) >= {"monthly_charges", "support_calls"}  # reported all the same
    assert main([*args, "--importance", "[1, 2]"]) == 2
    assert "expected a JSON object" in capsys.readouterr().err


def test_exit_codes_are_a_contract_a_bad_input_is_2_never_drift(tmp_path, capsys, mlflow_uri):
    """0 no drift, 1 drift, 2 a usage or input error: one line, no traceback, for a model, alias, file or
    feature that is not there. A typo never reads as drift."""
    from mlflow.tracking import MlflowClient

    args = ["drift", _day("2026-01-16"), _day("2026-01-23"), "--spec", str(SPEC)]
    MlflowClient().create_registered_model("known")
    capsys.readouterr()  # the store's own set-up lines
    cases = {
        "models:/nobody@champion": "--importance models:/nobody@champion: not found in the registry",
        "models:/known@champion": "--importance models:/known@champion: not found in the registry",
        "models:/known": "expected models:/NAME@ALIAS or models:/NAME/VERSION",
        str(tmp_path / "missing.json"): "missing.json: [Errno 2]",
        json.dumps({"not_a_feature": 1.0}): "gives none of the monitored features (age, ",
        json.dumps({"age": 0, "plan": 0.0, "not_a_feature": 1}): "gives none of the monitored features (age, ",
        json.dumps({"age": -0.5, "plan": 1.5}): "importance shares are numbers of at least 0; not age: -0.5",
        '{"age": NaN}': "importance shares are numbers of at least 0; not age: NaN",
        json.dumps({"age": True}): "importance shares are numbers of at least 0; not age: true",
    }
    for importance, said in cases.items():
        assert main([*args, "--importance", importance]) == 2, importance
        err = capsys.readouterr().err
        assert said in err
        assert len(err.strip().splitlines()) == 1, err  # one line, no traceback
    assert main(["drift", str(tmp_path / "nope.parquet"), _day("2026-01-23"), "--spec", str(SPEC)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"drift: reference {tmp_path / 'nope.parquet'}: ")
    assert len(err.strip().splitlines()) == 1
    assert main([*args[:3], "--spec", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"--spec {tmp_path / 'nope.yaml'}: " in err
    assert "No such file or directory" in err  # the cause, not only the spec's name
    assert len(err.strip().splitlines()) == 1


def test_a_feature_that_is_not_there_or_not_numeric_is_an_input_error_not_a_crash(tmp_path, capsys):
    """A feature missing from either side, named both numeric and categorical, or monitored as numeric while
    its values are text (whylogs keeps no numeric sketch of it: its quantiles crashed the process) exits 2
    with one line naming it and the fix; never 0 with a 'missing' row, never a crash."""
    import pandas as pd

    text = tmp_path / "text.parquet"
    pd.read_parquet(_day("2026-01-16")).assign(age=lambda f: f["age"].astype(str)).to_parquet(text)
    cases = {
        ("--numeric", "age", "agee"): f"agee: not in the reference {_day('2026-01-15')} (its columns: ",
        ("--numeric", "age", "--categorical", "age"): "age: named both numeric and categorical",
        ("--numeric", "age", "__current__"): "feature 'age' is monitored as numeric, but the current profile "
        "holds no numeric values in it (values by type: 2000 string): list it as categorical",
    }  # fmt: skip
    for features, said in cases.items():
        current = str(text) if "__current__" in features else _day("2026-01-16")
        picked = [f for f in features if f != "__current__"]
        assert main(["drift", _day("2026-01-15"), current, *picked]) == 2, features
        err = capsys.readouterr().err
        assert err.startswith("drift: "), err
        assert said in err, err
        assert len(err.strip().splitlines()) == 1, err


def test_a_registry_that_is_not_there_is_named_and_not_created(tmp_path, monkeypatch, capsys):
    """models:/ against a tracking store that does not exist says so (exit 2), and leaves no empty store
    behind (MLflow's client would create one, then report the model as not found)."""
    store = tmp_path / "nothing-here.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    args = ["drift", _day("2026-01-16"), _day("2026-01-23"), "--spec", str(SPEC)]
    assert main([*args, "--importance", "models:/churn@champion"]) == 2
    err = capsys.readouterr().err
    assert f"no registry at sqlite:///{store}: set MLFLOW_TRACKING_URI" in err
    assert not store.exists()
    # every command that reads the registry: the same line, exit 2, nothing created
    for args in (
        ["model-card", "churn", "1"], ["promote", "--model", "churn", "--version", "1", "--reason", "r"],
        ["rollback", "--model", "churn", "--reason", "r"], ["audit", "churn", "--day", "2026-01-16", "--predictions", str(tmp_path), "--storage", str(tmp_path)],
    ):  # fmt: skip
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert f"no registry at sqlite:///{store}: set MLFLOW_TRACKING_URI" in err, err
        assert len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_profile_or_file_that_cannot_be_compared_is_an_input_error(tmp_path, capsys):
    """A stored profile that is not one (overwritten, or torn mid-write) and a data file with a header and no
    rows exit 2 with one line naming the file: the torn profile gave a traceback and exit 1, read as drift."""
    stored = tmp_path / "day.bin"
    assert main(["profile", _day("2026-01-16"), "--out", str(stored)]) == 0
    (tmp_path / "torn.bin").write_bytes(stored.read_bytes()[:300])
    (tmp_path / "text.bin").write_text("not a profile")
    (tmp_path / "header.csv").write_text("age,plan\n")
    capsys.readouterr()
    cases = {
        "torn.bin": "torn.bin is not a readable whylogs profile (DeserializationError",
        "text.bin": "text.bin is not a readable whylogs profile (DeserializationError",
        "header.csv": "header.csv holds no rows to compare",
    }
    for name, said in cases.items():
        assert main(["drift", str(stored), str(tmp_path / name), "--numeric", "age"]) == 2, name
        err = capsys.readouterr().err
        assert said in err, err
        assert len(err.strip().splitlines()) == 1, err


def test_every_command_reports_bad_input_in_one_line_with_exit_2(tmp_path, capsys):
    """Not only drift: a command whose input is missing or unreadable (a DataError, an OSError) prints one
    line naming the command and the input, exit 2; it printed a traceback and exited 1."""
    torn = tmp_path / "torn.bin"
    assert main(["profile", _day("2026-01-16"), "--out", str(torn)]) == 0
    torn.write_bytes(torn.read_bytes()[:300])
    capsys.readouterr()
    cases = [
        (["profile", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "x.bin")], "airflow-mlops profile: partition "),
        (["infer-constraints", str(tmp_path / "nope.csv")], "airflow-mlops infer-constraints: partition "),
        (["infer-constraints", str(torn)], "torn.bin is not a readable whylogs profile"),
    ]
    for args, said in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert said in err, err
        assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.bin").exists()
