"""The trainer itself: real torch (and peft) on tiny models, a real MLflow sqlite store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlops import registry
from airflow_mlops.modeling import find_model_dir, load_mlflow_model, verify_model_dir

POS = ["great", "love", "excellent", "fast", "helpful", "perfect"]
NEG = ["awful", "hate", "broken", "slow", "useless", "refund"]
FILLER = ["the", "app", "service", "was", "and", "it", "really", "today", "support", "order"]


def _reviews(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        label = int(rng.random() < 0.5)
        words = list(rng.choice(FILLER, 6)) + list(rng.choice(POS if label else NEG, 2))
        rng.shuffle(words)
        rows.append({"review": " ".join(words), "positive": label})
    return pd.DataFrame(rows)


def _config(tmp_path, kind: str, df: pd.DataFrame, **over) -> dict:
    path = tmp_path / f"{kind}.parquet"
    df.to_parquet(path)
    base = {
        "pipeline": f"t_{kind}", "experiment": f"airflow-mlops/t_{kind}", "run_key": f"key-{kind}",
        "data": {"uris": [str(path)], "format": "parquet"}, "holdout_fraction": 0.25, "seed": 3, "tags": {},
        "numeric": [], "categorical": [], "text": None,
    }  # fmt: skip
    return {**base, **over}


def test_lora_fine_tuning_saves_hashed_adapter_and_logs_metrics(tmp_path, mlflow_uri):
    from airflow_mlops.training.trainer import run

    params = {
        "epochs": 4, "batch_size": 32, "learning_rate": 0.01, "lora_r": 4, "max_length": 16,
        "base_config": {"model_type": "bert", "vocab_size": 512, "hidden_size": 32, "num_hidden_layers": 1,
                        "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 32},
    }  # fmt: skip
    config = _config(
        tmp_path, "lora_text", _reviews(600, 1), text="review", target="positive",
        model={"kind": "lora_text", "task": "classification", "params": params},
    )  # fmt: skip
    result = run(config)

    c = registry.client()
    mlrun = c.get_run(result["run_id"])
    assert mlrun.info.status == "FINISHED"
    # artifacts beside the sqlite store, not in ./mlruns of whatever directory the process runs in
    assert mlrun.info.artifact_uri.startswith((tmp_path / "artifacts").as_uri())
    assert not (Path.cwd() / "mlruns").exists()
    assert result["metrics"]["holdout_accuracy"] > 0.8
    history = c.get_metric_history(result["run_id"], "train_loss")
    assert [m.step for m in history] == [1, 2, 3, 4]
    assert history[-1].value < history[0].value
    assert mlrun.data.params["model.lora_r"] == "4"

    import mlflow

    local = mlflow.artifacts.download_artifacts(result["model_uri"], dst_path=str(tmp_path / "dl"))
    model_dir = find_model_dir(local)
    meta = verify_model_dir(model_dir, result["model_sha256"])
    assert "adapter/adapter_model.safetensors" in meta["files"]
    assert (model_dir / "adapter" / "adapter_model.safetensors").stat().st_size > 0
    assert meta["trainable_parameters"] < meta["total_parameters"] / 5

    holdout = _reviews(50, 9)
    first = load_mlflow_model(result["model_uri"], result["model_sha256"]).predict_proba(holdout)
    second = load_mlflow_model(result["model_uri"], result["model_sha256"]).predict_proba(holdout)
    assert np.array_equal(first, second)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_tabular_model_trains_and_reloads_identically(tmp_path, mlflow_uri, task):
    from airflow_mlops.evaluation import evaluate
    from airflow_mlops.training.trainer import run

    rng = np.random.default_rng(0)
    n = 2000
    df = pd.DataFrame({"x": rng.normal(size=n), "k": rng.choice(["a", "b", "c"], n)})
    signal = 2 * df["x"] + (df["k"] == "a") * 1.5
    df["y"] = (
        (signal + rng.normal(0, 0.5, n) > 0.5).astype(int)
        if task == "classification"
        else signal + rng.normal(0, 0.1, n)
    )
    config = _config(
        tmp_path, task, df, numeric=["x"], categorical=["k"], target="y",
        model={"kind": "tabular", "task": task, "params": {"epochs": 40, "hidden_units": [16], "batch_size": 64}},
    )  # fmt: skip
    result = run(config)
    model = load_mlflow_model(result["model_uri"], result["model_sha256"])
    from airflow_mlops.data import split_holdout

    _, holdout = split_holdout(df, "y", 0.25, 3)
    metrics = evaluate(model, holdout)
    for name, value in metrics.items():  # the reloaded model scores exactly as the trainer measured
        assert value == pytest.approx(result["metrics"][f"holdout_{name}"], abs=1e-12)
    if task == "classification":
        assert metrics["roc_auc"] > 0.9
    else:
        assert metrics["rmse"] < 0.4


def test_tampered_model_is_refused(tmp_path, mlflow_uri):
    from airflow_mlops.errors import IntegrityError
    from airflow_mlops.training.trainer import run

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=400)})
    df["y"] = (df["x"] > 0).astype(int)
    result = run(
        _config(
            tmp_path,
            "tabular",
            df,
            numeric=["x"],
            target="y",
            model={"kind": "tabular", "task": "classification", "params": {"epochs": 1}},
        )
    )
    import mlflow

    local = mlflow.artifacts.download_artifacts(result["model_uri"], dst_path=str(tmp_path / "dl"))
    weights = find_model_dir(local) / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(IntegrityError, match="does not match its recorded sha256"):
        verify_model_dir(find_model_dir(local), result["model_sha256"])
    with pytest.raises(IntegrityError, match="registry recorded"):
        verify_model_dir(find_model_dir(local), "0" * 64)
