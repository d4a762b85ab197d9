"""Batch scoring: canary split, shadow kept apart, atomic idempotent output, safe loading only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from airflow_mlops.errors import DataError, IntegrityError
from airflow_mlops.operations.scoring import Scorer, canary_mask, load_alias, read_metadata, score_partition
from airflow_mlops.release import promotion
from airflow_mlops.tracking import registry

pytestmark = pytest.mark.slow  # trains the models it scores


DATA = Path(os.environ["MLOPS_TEST_DATA"])

FEATURES = {
    "numeric": ["age", "tenure_months", "monthly_charges", "support_calls", "data_usage_gb"],
    "categorical": ["plan", "region", "payment_method"],
}
DAYS = ["2026-01-05", "2026-01-06"]


def _partition(day: str) -> str:
    return str(DATA / "demo_churn" / f"date={day}" / "part-0.parquet")


def _train(tmp_path, key: str, epochs: int) -> dict:
    from airflow_mlops.model.training.trainer import run

    return run({
        "pipeline": "score", "experiment": "airflow-mlops/score", "run_key": key, "artifact_root": None,
        "data": {"uris": [_partition("2026-01-03"), _partition("2026-01-04")], "format": "parquet"},
        "target": "churned", "text": None, "holdout_fraction": 0.2, "seed": 1, "tags": {}, **FEATURES,
        "model": {"kind": "tabular", "task": "classification",
                  "params": {"hidden_units": [8], "epochs": epochs, "batch_size": 256}},
    })  # fmt: skip


@pytest.fixture
def released(mlflow_uri, tmp_path):
    """v1 champion and v2 challenger of model "score", both really trained."""
    c = registry.client()
    for key, epochs, alias in (("one", 2, registry.CHAMPION), ("two", 4, registry.CHALLENGER)):
        t = _train(tmp_path, key, epochs)
        version, _ = registry.register_version(
            c, name="score", model_uri=t["model_uri"], run_id=t["run_id"], run_key=key,
            tags={registry.MODEL_SHA_TAG: t["model_sha256"]},
        )  # fmt: skip
        promotion.promote(c, "score", version.version, alias)
    return c


def test_canary_split_is_within_one_percent_and_stable():
    ids = pd.Series([f"cust-{i:07d}" for i in range(100_000)])
    mask = canary_mask(ids, 0.1, "score")
    assert abs(mask.mean() - 0.1) < 0.01
    assert np.array_equal(mask, canary_mask(ids, 0.1, "score"))  # re-run: the same rows
    # chunking does not matter: each row's assignment depends on its id only
    chunks = np.concatenate(
        [canary_mask(ids[i : i + 7_000], 0.1, "score") for i in range(0, len(ids), 7_000)]
    )
    assert np.array_equal(mask, chunks)
    assert abs(canary_mask(ids, 0.25, "score").mean() - 0.25) < 0.01
    assert not np.array_equal(mask, canary_mask(ids, 0.1, "another-pipeline"))  # salted per pipeline
    assert canary_mask(ids, 0.2, "score")[mask].all()  # nested: raising the fraction keeps the canary rows


def test_canary_and_shadow_scoring(released, tmp_path):
    champion = load_alias(released, "score", registry.CHAMPION)
    challenger = load_alias(released, "score", registry.CHALLENGER)
    uris = [_partition(d) for d in DAYS]
    frame = pd.concat([pd.read_parquet(u) for u in uris], ignore_index=True)
    out = tmp_path / "pred" / "w.parquet"

    result = score_partition(
        uris, data_format="parquet", output_uri=str(out), champion=champion, challenger=challenger, mode="canary",
        fraction=0.2, id_column="customer_id", chunk_rows=700, salt="score",
    )  # fmt: skip
    pred = pd.read_parquet(out)
    assert len(pred) == len(frame) == result["rows"]
    assert pred["customer_id"].tolist() == frame["customer_id"].tolist()
    routed = canary_mask(frame["customer_id"], 0.2, "score")
    assert (pred["model_version"] == np.where(routed, challenger.version, champion.version)).all()
    assert (pred["model_alias"] == np.where(routed, "challenger", "champion")).all()
    assert result["rows_by_model"] == {
        "champion": int((~routed).sum()),
        "challenger": int(routed.sum()),
        "shadow": 0,
    }
    np.testing.assert_allclose(
        pred["score"][routed], challenger.model.predict_proba(frame[routed])[:, 1], rtol=1e-6
    )
    np.testing.assert_allclose(
        pred["score"][~routed], champion.model.predict_proba(frame[~routed])[:, 1], rtol=1e-6
    )
    assert read_metadata(str(out))["challenger_version"] == challenger.version

    shadow_out, shadow_side = tmp_path / "pred2" / "w.parquet", tmp_path / "pred2_shadow" / "w.parquet"
    result = score_partition(
        uris, data_format="parquet", output_uri=str(shadow_out), champion=champion, challenger=challenger,
        mode="shadow", id_column="customer_id", chunk_rows=700, salt="score", shadow_uri=str(shadow_side),
    )  # fmt: skip
    served, side = pd.read_parquet(shadow_out), pd.read_parquet(shadow_side)
    assert set(served["model_alias"]) == {"champion"}  # the served predictions hold the champion's only
    assert set(side["model_alias"]) == {"challenger"}
    assert len(served) == len(side) == len(frame)
    np.testing.assert_allclose(side["score"], challenger.model.predict_proba(frame)[:, 1], rtol=1e-6)


def test_rescoring_the_same_inputs_and_models_reuses_the_file(released, tmp_path):
    champion = load_alias(released, "score", registry.CHAMPION)
    out = tmp_path / "p.parquet"
    inputs = [{"uri": _partition(DAYS[0]), "sha256": "abc"}]
    first = score_partition(
        [_partition(DAYS[0])], data_format="parquet", output_uri=str(out), champion=champion, inputs=inputs
    )
    mtime = out.stat().st_mtime_ns
    again = score_partition(
        [_partition(DAYS[0])], data_format="parquet", output_uri=str(out), champion=champion, inputs=inputs
    )
    assert (first["reused"], again["reused"]) == (False, True)
    assert out.stat().st_mtime_ns == mtime
    by_another_run = score_partition(
        [_partition(DAYS[0])], data_format="parquet", output_uri=str(out), champion=champion, inputs=inputs,
        written_by={"dag_id": "score", "run_id": "manual__again"},
    )  # fmt: skip
    assert by_another_run["reused"]  # who asks does not change the predictions
    changed = [{"uri": _partition(DAYS[0]), "sha256": "def"}]  # new data in the partition: scored again
    assert not score_partition(
        [_partition(DAYS[0])], data_format="parquet", output_uri=str(out), champion=champion, inputs=changed
    )["reused"]


def _no_leftovers(folder) -> list:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("damage", ["empty", "missing_column", "corrupt", "absent"])
def test_bad_input_fails_clearly_and_leaves_no_file(released, tmp_path, damage):
    champion = load_alias(released, "score", registry.CHAMPION)
    src = tmp_path / "in.parquet"
    df = pd.read_parquet(_partition(DAYS[0]))
    if damage == "empty":
        df.iloc[:0].to_parquet(src)
        match = "no rows to score.*empty"
    elif damage == "missing_column":
        df.rename(columns={"monthly_charges": "monthly_charge"}).to_parquet(src)
        match = "missing column.*'monthly_charges' \\(renamed to 'monthly_charge'\\?\\)"
    elif damage == "corrupt":
        src.write_bytes(b"PAR1 this is not parquet")
        match = "cannot read .* as parquet"
    else:
        match = "does not exist"
    out_dir = tmp_path / "out"
    with pytest.raises(DataError, match=match):
        score_partition(
            [str(src)],
            data_format="parquet",
            output_uri=str(out_dir / "p.parquet"),
            champion=champion,
            chunk_rows=500,
        )
    assert _no_leftovers(out_dir) == []


def test_tampered_model_files_are_refused(released, tmp_path):
    import mlflow

    v = released.get_model_version_by_alias("score", "champion")
    local = mlflow.artifacts.download_artifacts(v.source)
    from airflow_mlops.model.artifacts import load_model
    from airflow_mlops.model.format import find_model_dir

    model_dir = find_model_dir(local)
    weights = next(p for p in model_dir.iterdir() if p.suffix == ".safetensors")
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)
    with pytest.raises(IntegrityError, match="does not match its recorded sha256; refusing to load it"):
        load_model(model_dir, v.tags[registry.MODEL_SHA_TAG])


class _Payload:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_malicious_pickle_is_never_executed(mlflow_uri, tmp_path):
    """A version whose model is a pickle (as MLflow's own pyfunc flavour writes) is refused unread."""
    import pickle

    c = registry.client()
    marker = tmp_path / "pwned"
    folder = tmp_path / "evil" / "model"
    folder.mkdir(parents=True)
    (folder / "python_model.pkl").write_bytes(pickle.dumps(_Payload(str(marker))))
    (folder / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n")
    exp = registry.ensure_experiment(c, "airflow-mlops/evil", (tmp_path / "a").as_uri())
    run = c.create_run(exp)
    c.log_artifacts(run.info.run_id, str(folder), "model")
    for sha, expected in ((None, "no recorded mlops.model_sha256"), ("f" * 64, "not an airflow-mlops model")):
        name = f"evil{len(expected)}"
        version, _ = registry.register_version(
            c, name=name, model_uri=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, run_key=name,
            tags={registry.MODEL_SHA_TAG: sha} if sha else {},
        )  # fmt: skip
        promotion.promote(c, name, version.version, registry.CHAMPION)
        with pytest.raises(IntegrityError, match=expected):
            load_alias(c, name, registry.CHAMPION)
    assert not marker.exists()


def test_scorer_output_columns_for_a_regressor():
    class Reg:
        meta = {"task": "regression", "numeric": ["x"], "categorical": []}

        def predict(self, df):
            return df["x"].to_numpy() * 2

    s = Scorer(Reg(), "3", "champion")
    out = s.predict(pd.DataFrame({"x": [1.0, 2.0]}))
    assert list(out) == ["prediction"]
    assert out["prediction"].tolist() == [2.0, 4.0]


class _ThreeClasses:
    """A 3-class classifier on x: class k where x is nearest k (softmax of -distance)."""

    meta = {"task": "classification", "numeric": ["x"], "categorical": [], "classes": [0, 1, 2]}

    def predict_proba(self, df):
        d = -4 * np.abs(df["x"].to_numpy()[:, None] - np.array([0.0, 1.0, 2.0]))
        return np.exp(d) / np.exp(d).sum(axis=1, keepdims=True)


def test_a_multiclass_prediction_file_carries_every_class_and_live_metrics_measure_it():
    """A 3-class model's prediction file: the predicted class, its probability and one proba_<class> column
    per class (no binary score, which read as P(last class) before). Live metrics read them: macro averages,
    per-class metrics and their standard errors, where they failed with 'need binary labels'."""
    from airflow_mlops.operations.live import version_metrics

    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 2.5, 3000)
    out = Scorer(_ThreeClasses(), "7", "champion").predict(pd.DataFrame({"x": x}))
    assert list(out) == ["prediction", "probability", "proba_0", "proba_1", "proba_2"]
    assert np.allclose(out["proba_0"] + out["proba_1"] + out["proba_2"], 1.0)
    first = out["prediction"] == 0
    assert np.allclose(out["probability"][first], out["proba_0"][first])
    truth = np.clip(np.rint(x + rng.normal(0, 0.3, len(x))), 0, 2).astype(int)
    predictions = pd.DataFrame({**out, "model_version": "7", "label": truth})
    found = version_metrics(predictions, None, id_column=None, label_column="label", task="classification")["7"]
    assert found["accuracy"] == pytest.approx(float(np.mean(out["prediction"] == truth)))
    assert 0.5 < found["roc_auc"] <= 1.0
    assert {"recall_class_0", "recall_class_1", "recall_class_2", "f1_class_2"} <= set(found)
    assert all(found[f"se_{m}"] > 0 for m in ("accuracy", "precision", "recall", "f1", "roc_auc"))


def test_a_challenger_with_other_classes_lines_up_with_the_champions_columns():
    class TwoOfThree(_ThreeClasses):
        meta = {**_ThreeClasses.meta, "classes": [0, 2]}

        def predict_proba(self, df):
            return super().predict_proba(df)[:, [0, 2]] / super().predict_proba(df)[:, [0, 2]].sum(axis=1)[:, None]

    out = Scorer(TwoOfThree(), "8", "challenger").predict(pd.DataFrame({"x": [0.0, 2.0]}), classes=[0, 1, 2])
    assert out["proba_1"].tolist() == [0.0, 0.0]  # a class it never saw
    assert out["prediction"].tolist() == [0, 2]


def test_predictions_file_is_complete_parquet_with_the_versions(released, tmp_path):
    champion = load_alias(released, "score", registry.CHAMPION)
    out = tmp_path / "p.parquet"
    score_partition(
        [_partition(DAYS[0])], data_format="parquet", output_uri=str(out), champion=champion, chunk_rows=300
    )
    f = pq.ParquetFile(out)
    assert f.metadata.num_row_groups > 1  # written chunk by chunk
    assert f.schema_arrow.names == [
        "prediction", "probability", "score", "proba_0", "proba_1", "model_version", "model_alias"
    ]
    assert _no_leftovers(tmp_path).count("p.parquet") == 1
    assert not [n for n in _no_leftovers(tmp_path) if ".tmp-" in n]


def test_live_metrics_promote_a_challenger_that_keeps_winning(released, tmp_path):
    from airflow_mlops.operations.live import WINDOWS_TAG, record_window, version_metrics

    c = released
    champion = load_alias(c, "score", registry.CHAMPION)
    challenger = load_alias(c, "score", registry.CHALLENGER)
    decisions = []
    for i, day in enumerate(["2026-01-07", "2026-01-08", "2026-01-07"]):  # the last one re-runs a window
        out, side = tmp_path / f"p{i}.parquet", tmp_path / f"s{i}.parquet"
        score_partition(
            [_partition(day)], data_format="parquet", output_uri=str(out), champion=champion, challenger=challenger,
            mode="shadow", id_column="customer_id", shadow_uri=str(side), salt="score",
        )  # fmt: skip
        predictions = pd.concat([pd.read_parquet(out), pd.read_parquet(side)], ignore_index=True)
        labels = pd.read_parquet(_partition(day))
        per_version = version_metrics(
            predictions, labels, id_column="customer_id", label_column="churned", task="classification"
        )
        assert per_version[champion.version]["rows"] == per_version[challenger.version]["rows"] == len(labels)
        decisions.append(
            record_window(
                c,
                "score",
                window=day,
                per_version=per_version,
                champion=champion.version,
                challenger=challenger.version,
                metric="roc_auc",
                min_improvement=0.0,
                promote_after=2,
                promotion_mode="auto",
            )  # fmt: skip
        )
        if i == 0:
            assert _alias_version(c, "champion") == champion.version  # one win is not enough
    first, second, _ = decisions
    assert (first["won"], first["streak"]) == (True, 1)
    assert first["challenger_value"] > first["champion_value"]
    assert (second["won"], second["streak"], second["promoted"]) == (True, 2, True)
    assert _alias_version(c, "champion") == challenger.version
    history = json.loads(c.get_model_version("score", challenger.version).tags[WINDOWS_TAG])
    assert [w["window"] for w in history] == ["2026-01-07", "2026-01-08"]  # the re-run replaced its entry


def _simulated_windows(rng, accuracy: float, champion_accuracy: float, windows: int, rows: int) -> list[dict]:
    """Live windows as record_window keeps them: both models' accuracy on the same rows, and its error."""
    out = []
    for w in range(windows):
        ch, champ = rng.binomial(rows, accuracy) / rows, rng.binomial(rows, champion_accuracy) / rows
        out.append({
            "window": f"w{w:03d}", "champion": "1", "accuracy": ch, "champion_accuracy": champ, "rows": rows,
            "se": float(np.sqrt(ch * (1 - ch) / rows)), "champion_se": float(np.sqrt(champ * (1 - champ) / rows)),
        })  # fmt: skip
    return out


def test_a_challenger_that_is_no_better_is_promoted_no_more_often_than_the_declared_error_rate():
    """100 simulated challengers exactly as good as the champion, each looked at after every one of 20
    windows (peeking, as the DAG does): promotions stay within the declared 5% (binomial 99% bound: 11).
    "Two wins in a row" promoted nearly every one of them (96 of 100 with these windows)."""
    from airflow_mlops.operations.live import sequential_evidence

    rng = np.random.default_rng(11)
    promoted = lucky = 0
    for _ in range(100):
        history = _simulated_windows(rng, 0.80, 0.80, 20, 400)
        if any(
            sequential_evidence(history[: k + 1], metric="accuracy", min_improvement=0.0, alpha=0.05)["better"]
            for k in range(len(history))
        ):
            promoted += 1
        wins = [w["accuracy"] > w["champion_accuracy"] for w in history]
        lucky += any(a and b for a, b in zip(wins, wins[1:], strict=False))
    assert promoted <= 11
    assert lucky > 50  # what the old rule did with the same windows


def test_non_inferiority_promotes_a_challenger_worse_by_the_margin_no_more_often_than_the_error_rate():
    """``non_inferiority`` with a margin of 0.02 (record_window asks the interval's low end to exceed -0.02):
    100 simulated challengers exactly 0.02 worse, looked at after each of 20 windows, are promoted within the
    declared 5% (binomial 99% bound: 11); 100 as good as the champion are promoted in most runs."""
    from airflow_mlops.operations.live import sequential_evidence

    def promoted(challenger: float, seed: int) -> int:
        rng = np.random.default_rng(seed)
        count = 0
        for _ in range(100):
            history = _simulated_windows(rng, challenger, 0.80, 20, 400)
            count += any(
                sequential_evidence(history[: k + 1], metric="accuracy", min_improvement=-0.02, alpha=0.05)["better"]
                for k in range(len(history))
            )  # fmt: skip
        return count

    assert promoted(0.78, 21) <= 11
    assert promoted(0.80, 22) >= 50


def test_a_clearly_better_challenger_is_found_better_with_its_interval():
    from airflow_mlops.operations.live import sequential_evidence

    rng = np.random.default_rng(12)
    found = sequential_evidence(
        _simulated_windows(rng, 0.86, 0.80, 5, 1000), metric="accuracy", min_improvement=0.0, alpha=0.05
    )
    assert found["better"]
    assert found["low"] < 0.06 < found["high"]  # the interval covers the true difference
    assert found["windows"] == 5
    assert found["rows"] == 5000


def _alias_version(c, alias: str) -> str:
    return str(c.get_model_version_by_alias("score", alias).version)


def test_performance_drift_when_the_champions_live_metric_falls_beyond_tolerance():
    from types import SimpleNamespace

    from airflow_mlops.operations.live import performance_drift

    champion = SimpleNamespace(
        version="4", tags={"mlops.test_metrics": json.dumps({"roc_auc": 0.85, "accuracy": 0.8, "rmse": 1.0})}
    )
    fell = performance_drift(
        champion, {"4": {"roc_auc": 0.77, "se_roc_auc": 0.01}}, metrics=["roc_auc"], tolerance=0.05
    )
    assert (fell["drift"], fell["status"], fell["drifted_features"]) == (True, "drift", ["performance:roc_auc"])
    assert fell["drop"] == pytest.approx(0.08)
    held = performance_drift(champion, {"4": {"roc_auc": 0.82}}, metrics=["roc_auc"], tolerance=0.05)
    assert (held["drift"], held["status"]) == (False, "no_drift")
    worse_error = performance_drift(champion, {"4": {"rmse": 1.2}}, metrics=["rmse"], tolerance=0.1)
    assert worse_error["drift"]  # lower is better: a rise is the drop
    unknown = performance_drift(champion, {"5": {"roc_auc": 0.5}}, metrics=["roc_auc"], tolerance=0.05)
    assert (unknown["drift"], unknown["status"]) == (False, "insufficient_data")


def test_performance_drift_watches_every_declared_metric_with_its_own_tolerance():
    """A threshold shift keeps the ranking (ROC AUC barely moves) but costs accuracy: accuracy decides."""
    from types import SimpleNamespace

    from airflow_mlops.operations.live import performance_drift

    champion = SimpleNamespace(version="4", tags={"mlops.test_metrics": json.dumps({"roc_auc": 0.85, "accuracy": 0.8})})
    live = {"4": {"roc_auc": 0.82, "se_roc_auc": 0.01, "accuracy": 0.67, "se_accuracy": 0.01}}
    both = performance_drift(champion, live, metrics=["roc_auc", "accuracy"], tolerance=0.05)
    assert both["drifted_features"] == ["performance:accuracy"]
    assert (both["metric"], both["metrics"]["roc_auc"]["status"]) == ("accuracy", "ok")
    lenient = performance_drift(
        champion, live, metrics=["roc_auc", "accuracy"], tolerance={"accuracy": 0.2, "roc_auc": 0.05}
    )
    assert lenient["drift"] is False


def test_a_drop_within_the_sample_size_floor_is_not_drift():
    """On a small window the same drop is noise: 3.09 standard errors of the live value must be exceeded."""
    from types import SimpleNamespace

    from airflow_mlops.operations.live import performance_drift

    champion = SimpleNamespace(version="4", tags={"mlops.test_metrics": json.dumps({"accuracy": 0.8})})
    small = performance_drift(champion, {"4": {"accuracy": 0.72, "se_accuracy": 0.04}}, metrics=["accuracy"], tolerance=0.05)
    large = performance_drift(champion, {"4": {"accuracy": 0.72, "se_accuracy": 0.009}}, metrics=["accuracy"], tolerance=0.05)
    assert small["metrics"]["accuracy"]["floor"] == pytest.approx(3.0902 * 0.04)
    assert (small["drift"], large["drift"]) == (False, True)


def test_standard_errors_match_the_spread_of_resampled_metrics():
    import numpy as np

    from airflow_mlops.model.metrics import classification_metrics, standard_errors

    rng = np.random.default_rng(3)
    x = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-2 * x))).astype(int)
    score = 1 / (1 + np.exp(-1.5 * x))

    def metrics(idx):
        return classification_metrics(y[idx], np.column_stack([1 - score[idx], score[idx]]), [0, 1])

    found = standard_errors(y == 1, score, "classification", metrics(np.arange(4000)))
    boot = [metrics(rng.integers(0, 4000, 4000)) for _ in range(200)]
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        spread = float(np.std([b[metric] for b in boot]))
        assert found[metric] == pytest.approx(spread, rel=0.3), metric


def test_multiclass_standard_errors_match_the_spread_of_resampled_metrics():
    """Macro precision, recall, f1 and one-vs-rest ROC AUC of a 3-class model: each class's error against the
    rest, combined, is within 30% of the spread of 200 bootstrap resamples (accuracy's binomial error too)."""
    import numpy as np

    from airflow_mlops.model.metrics import classification_metrics, multiclass_standard_errors

    rng = np.random.default_rng(4)
    n, classes = 4000, [0, 1, 2]
    logits = rng.normal(size=(n, 3))
    proba = np.exp(1.2 * logits) / np.exp(1.2 * logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=p) for p in proba])

    def metrics(idx):
        return classification_metrics(y[idx], proba[idx], classes)

    found = multiclass_standard_errors(y, proba, classes, metrics(np.arange(n)))
    boot = [metrics(rng.integers(0, n, n)) for _ in range(200)]
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        spread = float(np.std([b[metric] for b in boot]))
        assert found[metric] == pytest.approx(spread, rel=0.3), metric


# -- the data contract before scoring ------------------------------------------------------------------------

DAY = "2026-01-07"


@pytest.fixture
def contract_dags(tmp_path, monkeypatch):
    """The scoring DAGs of tests/dag_bundle/scoring_contract.py on this test's folder."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW_VAR_MLOPS_SCORE_ROOT", str(tmp_path))
    monkeypatch.setenv("MLOPS_TEST_ALERTS", str(tmp_path / "alerts.jsonl"))
    bag = DagBag(str(Path(__file__).resolve().parents[2] / "dag_bundle" / "scoring_contract.py"))
    assert bag.import_errors == {}
    return bag.dags


def _write_day(tmp_path, df: pd.DataFrame) -> Path:
    path = tmp_path / "in" / f"date={DAY}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path)
    return path


@pytest.mark.parametrize("damage", ["text_numbers", "corrupt_page", "not_allowed"])
def test_scoring_refuses_a_partition_that_breaks_the_contract_without_retry_or_file(
    released, contract_dags, tmp_path, damage
):  # fmt: skip
    from helpers import damage_a_data_page, numbers_as_text, recorded_alerts, run_dag

    df = pd.read_parquet(_partition(DAY))
    if damage == "text_numbers":
        path = _write_day(tmp_path, numbers_as_text(df))
        named = "monthly_charges"
    elif damage == "not_allowed":
        path = _write_day(tmp_path, df.assign(plan=df["plan"].where(df.index % 50 != 0, "gold")))
        named = "allowed values  plan"
    else:  # a damaged data page behind an intact footer: the sensor's metadata check passes it
        path = _write_day(tmp_path, df)
        damage_a_data_page(path)
        named = str(path)
    run, states = run_dag(contract_dags["score_contract_fail"], "2026-01-08")
    assert states == {"score": "failed"}
    assert [ti.try_number for ti in run.get_task_instances()] == [1]  # a gate: not retried
    assert _no_leftovers(tmp_path / "out") == []
    (alert,) = recorded_alerts(tmp_path / "alerts.jsonl")
    assert alert["event"] == "quality_gate_failed"
    assert named in alert["text"]
    assert "next: no retry" in alert["text"]


def test_quarantine_sets_bad_rows_aside_scores_the_rest_and_alerts(released, contract_dags, tmp_path):
    from helpers import numbers_as_text, recorded_alerts, run_dag, xcom

    df = pd.read_parquet(_partition(DAY))
    _write_day(tmp_path, numbers_as_text(df))
    run, states = run_dag(contract_dags["score_contract_quarantine"], "2026-01-08")
    assert states == {"score": "success"}
    result = xcom(run.dag_id, run.run_id, "score")
    assert (result["rows"], result["quarantined"]) == (len(df) - 3, 3)
    aside = pd.read_parquet(result["quarantine_uri"])
    assert aside["quarantine_reason"].tolist() == ["numeric dtype monthly_charges"] * 3
    assert aside["monthly_charges"].tolist() == ["15,765.11"] * 3  # as read
    assert len(pd.read_parquet(result["output_uri"])) == len(df) - 3
    written_by = read_metadata(result["output_uri"])["written_by"]  # the run that wrote the predictions
    assert (written_by["dag_id"], written_by["run_id"], written_by["task_id"]) == (run.dag_id, run.run_id, "score")
    (alert,) = recorded_alerts(tmp_path / "alerts.jsonl")
    assert alert["event"] == "quality_anomaly"
    assert alert["text"].splitlines()[0].startswith(f"QUALITY ANOMALY: 3 row(s) of score {DAY} break the data contract")


def test_a_unit_change_inside_the_range_is_scored_and_alerted_as_a_quality_anomaly(released, contract_dags, tmp_path):
    from helpers import recorded_alerts, run_dag

    from airflow_mlops.data.quality import QualityTracker, save_records

    features = [*FEATURES["numeric"], *FEATURES["categorical"]]
    tracker = QualityTracker(features, FEATURES["numeric"], None, [])
    for day in ("2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"):  # the days scored before
        tracker.update(pd.read_parquet(_partition(day)), day)
    save_records(str(tmp_path / "artifacts"), "score", tracker.records(), [])
    df = pd.read_parquet(_partition(DAY))
    _write_day(tmp_path, df.assign(monthly_charges=df["monthly_charges"] * 1000))
    _, states = run_dag(contract_dags["score_contract_fail"], "2026-01-08")
    assert states == {"score": "success"}  # in the declared range (min 0): scored, never weighed away
    (alert,) = recorded_alerts(tmp_path / "alerts.jsonl")
    assert alert["event"] == "quality_anomaly"
    assert f"quality: scale monthly_charges [{DAY}]" in alert["text"]


def test_audit_traces_a_days_predictions_to_versions_runs_tests_and_the_days_verdicts(released, tmp_path):
    """airflow-mlops audit: which version scored the day under which alias (canary: both), the run that
    wrote the file, each version's training run, window, params and release decision as the registry holds
    them, and the day's quality record; a day never scored is an error naming the file (exit 2)."""
    from airflow_mlops import storage
    from airflow_mlops.tools.audit import AuditError, audit, render
    from airflow_mlops.tools.cli import main as cli

    c = released
    champion, challenger = load_alias(c, "score", registry.CHAMPION), load_alias(c, "score", registry.CHALLENGER)
    day = DAYS[0]
    c.set_model_version_tag("score", champion.version, "mlops.window_start", "2025-12-29T00:00:00+00:00")
    c.set_model_version_tag("score", champion.version, "mlops.promotion_decision", "first run: thresholds decide")
    score_partition(
        [_partition(day)], data_format="parquet", output_uri=str(tmp_path / "out" / f"{day}.parquet"),
        champion=champion, challenger=challenger, mode="canary", fraction=0.2, id_column="customer_id", salt="score",
        inputs=[{"uri": _partition(day), "sha256": "f" * 64}],
        written_by={"dag_id": "score__score", "run_id": "scheduled__2026-01-05", "task_id": "score_partition", "try_number": 1},
    )  # fmt: skip
    storage.write_json_atomic(
        str(tmp_path / "store" / "score" / "quality" / f"{day}.json"),
        {"day": day, "rows": 100, "anomalies": [{"check": "quality: scale", "column": "data_usage_gb",
                                                 "observed": 1000.0, "expected": "1.2 .. 9.8"}]},
    )  # fmt: skip
    record = audit(c, "score", day, predictions=str(tmp_path / "out"), storage_uri=str(tmp_path / "store"))
    served = {(s["version"], s["alias"]) for s in record["predictions"]["served"]}
    assert served == {(champion.version, "champion"), (challenger.version, "challenger")}
    assert sum(s["rows"] for s in record["predictions"]["served"]) == record["predictions"]["rows"]
    assert record["predictions"]["written_by"]["run_id"] == "scheduled__2026-01-05"
    first = record["versions"][0]
    registered = c.get_model_version("score", champion.version)
    assert (first["version"], first["run_id"], first["aliases_now"]) == (champion.version, registered.run_id, ["champion"])
    assert first["trained_on"]["start"] == "2025-12-29T00:00:00+00:00"
    assert first["params"] == c.get_run(registered.run_id).data.params
    assert first["release_decision"] == "first run: thresholds decide"
    assert record["quality"]["status"] == "anomalies"
    assert record["drift"]["status"] == "not recorded"
    text = render(record)
    assert f"version {champion.version} (aliases now: champion; MLflow run {registered.run_id})" in text
    assert "written by score__score run scheduled__2026-01-05 task score_partition try 1" in text
    with pytest.raises(AuditError, match=f"no predictions for 2026-01-09 at {tmp_path / 'out'}/2026-01-09.parquet"):
        audit(c, "score", "2026-01-09", predictions=str(tmp_path / "out"))
    args = ["audit", "score", "--day", day, "--predictions", str(tmp_path / "out"), "--storage", str(tmp_path / "store")]
    assert cli([*args, "--format", "json"]) == 0
    assert cli(["audit", "score", "--day", "2026-01-09", "--predictions", str(tmp_path / "out"),
                "--storage", str(tmp_path)]) == 2  # fmt: skip


def test_business_value_is_a_live_metric_with_its_error_and_promotion_can_follow_it():
    """A cost matrix times a per-row amount (revenue at stake): a caught churner saves 80% of its revenue, a
    needless offer costs 5, a missed churner loses it all. Each version's value per labelled row, and its
    standard error; the sequential test promotes on it like on any metric."""
    from airflow_mlops.operations.live import sequential_evidence, version_metrics

    value = {"column": "revenue", "tp": 0.8, "fp": -5.0 / 100, "fn": -1.0, "tn": 0.0}
    predictions = pd.DataFrame({
        "model_version": ["1", "1", "1", "1"], "score": [0.9, 0.8, 0.2, 0.1], "prediction": [1, 1, 0, 0],
        "churned": [1, 0, 1, 0], "revenue": [100.0, 100.0, 50.0, 10.0],
    })  # fmt: skip
    found = version_metrics(predictions, None, id_column=None, label_column="churned", task="classification", value=value)
    worth = [0.8 * 100, -0.05 * 100, -1.0 * 50, 0.0]
    assert found["1"]["value"] == pytest.approx(np.mean(worth))
    assert found["1"]["se_value"] == pytest.approx(np.std(worth) / 2)
    history = [
        {"window": f"w{i}", "champion": "1", "value": 12.0, "champion_value": 5.0, "se": 1.0, "champion_se": 1.0,
         "rows": 2000} for i in range(3)
    ]  # fmt: skip
    assert sequential_evidence(history, metric="value", min_improvement=0.0, tau=0.5)["better"]


def test_promote_on_value_needs_a_value_section():
    from airflow_mlops.errors import SpecError
    from airflow_mlops.pipeline.spec import load_spec, parse_spec

    raw = load_spec(Path(__file__).resolve().parents[3] / "tests" / "dag_bundle" / "pipelines" / "release_churn.yaml")
    base = raw.model_dump(mode="json", exclude_none=True)
    base["scoring"]["labels"]["promote_on"] = "value"
    base.pop("source", None)
    with pytest.raises(SpecError, match="scoring.labels.promote_on: found 'value'"):
        parse_spec(base)
    base["scoring"]["labels"]["value"] = {"tp": 1.0, "fp": -0.1}
    assert parse_spec(base).scoring.labels.promote_on == "value"


def test_a_relative_improvement_is_a_share_of_the_champions_live_value(mlflow_uri):
    """``tests.compare.min_improvement: "5%"`` asks a live challenger, like a tested one, for 5% of the
    champion's value, not 0.05 in the metric's units: on an RMSE of 50, a challenger at 48 is clearly better
    by 0.05 but not by 5% (2.5)."""
    from mlflow.tracking import MlflowClient

    from airflow_mlops.operations.live import record_window
    from airflow_mlops.pipeline.spec import parse_spec

    c = MlflowClient()
    c.create_registered_model("rel")
    for _ in range(2):
        c.create_model_version("rel", source="file:///nowhere")
    per_version = {"1": {"rmse": 50.0, "se_rmse": 0.1, "rows": 2000}, "2": {"rmse": 48.0, "se_rmse": 0.1, "rows": 2000}}
    compare = parse_spec(_with_compare(min_improvement="5%")).tests.compare
    args = {"window": "2026-01-07", "per_version": per_version, "champion": "1", "challenger": "2", "metric": "rmse",
            "promote_after": 1, "promotion_mode": "manual"}  # fmt: skip
    relative = record_window(c, "rel", min_improvement=compare.min_improvement, relative=compare.relative, **args)
    assert (relative["won"], relative["evidence"]["better"]) == (False, False)
    assert "not promoted (needs > 2.5 (5% of v1's 50))" in relative["decision"]
    absolute = record_window(c, "rel", min_improvement=0.05, **args)
    assert (absolute["won"], absolute["evidence"]["better"], absolute["proposed"]) == (True, True, True)


def test_non_inferiority_on_the_live_path_promotes_a_challenger_no_worse_by_more_than_the_margin(mlflow_uri):
    """``tests.compare.mode: non_inferiority`` reads the same on the live path as in the model tests: a
    challenger a little worse than the champion (AUC 0.795 against 0.80, margin 0.01) is no worse by more
    than the margin and is promoted once the interval says so; in improvement mode it is not; one worse by
    more than the margin is not promoted in either."""
    from mlflow.tracking import MlflowClient

    from airflow_mlops.operations.live import record_window
    from airflow_mlops.operators.scoring import LiveMetricsOperator
    from airflow_mlops.pipeline.factory import build_live_metrics_dag
    from airflow_mlops.pipeline.spec import parse_spec

    c = MlflowClient()
    c.create_registered_model("noninf")
    for _ in range(3):
        c.create_model_version("noninf", source="file:///nowhere")

    def window(champion: float, challenger: float, version: str) -> dict:
        return {"1": {"roc_auc": champion, "se_roc_auc": 0.001, "rows": 20000},
                version: {"roc_auc": challenger, "se_roc_auc": 0.001, "rows": 20000}}  # fmt: skip

    compare = parse_spec(_with_compare(min_improvement=0.01, mode="non_inferiority")).tests.compare
    live = build_live_metrics_dag(parse_spec(_with_compare(min_improvement=0.01, mode="non_inferiority")))
    operator = live.get_task("live_metrics")
    assert (operator.compare_mode, operator.min_improvement) == ("non_inferiority", 0.01)  # the spec's DAG asks it
    args = {"window": "2026-01-07", "champion": "1", "metric": "roc_auc", "promote_after": 1, "promotion_mode": "manual",
            "min_improvement": compare.min_improvement}  # fmt: skip
    close = record_window(c, "noninf", per_version=window(0.80, 0.795, "2"), challenger="2", compare_mode=compare.mode, **args)
    assert (close["won"], close["evidence"]["better"], close.get("proposed")) == (True, True, True)
    assert "no worse than champion v1 by more than 0.01 on live roc_auc" in close["decision"]
    improvement = record_window(c, "noninf", per_version=window(0.80, 0.795, "2"), challenger="2", **args)
    assert (improvement["won"], improvement["evidence"]["better"]) == (False, False)
    worse = record_window(c, "noninf", per_version=window(0.80, 0.78, "3"), challenger="3", compare_mode=compare.mode, **args)
    assert (worse["won"], worse["evidence"]["better"]) == (False, False)
    assert "needs > -0.01" in worse["decision"]
    assert "non_inferiority" in worse["decision"]
    with pytest.raises(ValueError, match="compare_mode must be one of improvement, non_inferiority"):
        record_window(c, "noninf", per_version=window(0.80, 0.78, "3"), challenger="3", compare_mode="better", **args)
    with pytest.raises(ValueError, match="live: compare_mode='better'; use improvement or non_inferiority"):
        LiveMetricsOperator(task_id="live", model_name="noninf", predictions_uri="p", labels_uri=None, id_column=None,
                            label_column="y", compare_mode="better")  # fmt: skip


def _with_compare(**compare) -> dict:
    import yaml

    raw = yaml.safe_load((Path(__file__).resolve().parents[3] / "dags" / "pipelines" / "demo_churn.yaml").read_text())
    raw["tests"]["compare"].update(compare)
    return raw


def test_a_value_section_on_a_multiclass_target_is_refused_by_the_spec():
    """A cost matrix of decisions is a binary classifier's: where the constraints say the target has three
    classes, validate-spec refuses it with the reason (it failed at the first labelled window before)."""
    import yaml

    from airflow_mlops.errors import SpecError
    from airflow_mlops.pipeline.spec import parse_spec

    raw = yaml.safe_load((Path(__file__).resolve().parents[3] / "tests" / "dag_bundle" / "models" / "multi_plan.yaml").read_text())
    raw["scoring"]["labels"]["value"] = {"tp": 1.0, "fp": -0.1}
    assert parse_spec(raw).scoring.labels.value is not None  # the classes are not declared: left to the labels
    raw.setdefault("constraints", {}).setdefault("columns", {})["plan"] = {"allowed": ["basic", "plus", "pro"]}
    with pytest.raises(SpecError) as err:
        parse_spec(raw, "multi_plan.yaml")
    assert err.value.problems == [
        "scoring.labels.value: found 'a value section'; allowed: a binary classifier (a cost matrix of its "
        "decisions); constraints.columns.plan.allowed gives 3 classes (basic, plus, pro): remove the value "
        "section, or promote on a metric"
    ]
