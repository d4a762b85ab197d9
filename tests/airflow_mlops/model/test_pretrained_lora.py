"""LoRA on a pretrained base uses the base's own tokenizer, saved beside the adapter.

Before, text was always tokenised by the project's hashing tokenizer, whose ids mean nothing in a pretrained
vocabulary: fine-tuning could not use what the base had learned. The base here is pretrained on this machine
(``airflow_mlops.tools.textbase``: a WordPiece tokenizer trained on shipped text, a small BERT pre-trained
with masked-language modelling); the held-out task labels adjectives the fine-tuning never saw, which only
the base's pre-training knows."""

from __future__ import annotations

import pytest

from airflow_mlops.tools import textbase

pytestmark = pytest.mark.slow  # pre-trains a small BERT and fine-tunes it


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("pretrained") / "base"
    info = textbase.build(path)
    return path, info


def _config(tmp_path, name: str, params: dict) -> dict:
    path = tmp_path / f"{name}.parquet"
    textbase.labelled(400, seen=True, seed=1).to_parquet(path)
    return {
        "pipeline": name, "experiment": f"airflow-mlops/{name}", "run_key": f"key-{name}",
        "data": {"uris": [str(path)], "format": "parquet"}, "holdout_fraction": 0.25, "seed": 3, "tags": {},
        "numeric": [], "categorical": [], "text": "review", "target": "positive",
        "model": {"kind": "lora_text", "task": "classification", "params": {
            "epochs": 20, "batch_size": 32, "learning_rate": 5e-3, "max_length": 16,
            "target_modules": ["query", "key", "value", "dense"], **params}},
    }  # fmt: skip


def _accuracy(model, df) -> float:
    return float((model.predict(df) == df["positive"].to_numpy()).mean())


def test_a_pretrained_base_fine_tuned_with_its_own_tokenizer_beats_random_init(tmp_path, mlflow_uri, base):
    from airflow_mlops.model.artifacts import load_mlflow_model
    from airflow_mlops.model.training.text import MergedTextModel, merge_adapter
    from airflow_mlops.model.training.trainer import run

    path, info = base
    random_init = {"base_config": {**textbase.BERT, "vocab_size": info["vocab"]}}  # the same architecture
    results = {
        "pretrained": run(_config(tmp_path, "pretrained", {"base_model_path": str(path)})),
        "random": run(_config(tmp_path, "random", random_init)),
    }
    unseen = textbase.labelled(400, seen=False, seed=2)  # adjectives the fine-tuning never labelled
    models = {k: load_mlflow_model(r["model_uri"], r["model_sha256"]) for k, r in results.items()}
    accuracy = {k: _accuracy(m, unseen) for k, m in models.items()}
    assert accuracy["pretrained"] >= accuracy["random"] + 0.2, accuracy
    assert accuracy["pretrained"] >= 0.6, accuracy

    pretrained = models["pretrained"]
    assert pretrained.meta["tokenizer"] == "pretrained"
    assert models["random"].meta["tokenizer"] == "hashing"  # a base built from a config has no vocabulary
    ids = pretrained.tokenizer(["the soup was superb"])[0].tolist()
    vocab = pretrained.tokenizer.tokenizer
    assert vocab.convert_ids_to_tokens(ids[:6]) == ["[CLS]", "the", "soup", "was", "superb", "[SEP]"]

    merged = MergedTextModel.load(merge_adapter(pretrained, tmp_path / "merged"), pretrained.meta)
    assert (merged.predict(unseen) == pretrained.predict(unseen)).all()  # merging keeps the tokenizer


def test_a_pretrained_base_without_its_tokenizer_is_refused_before_any_run(tmp_path, mlflow_uri, base):
    import shutil

    from mlflow.tracking import MlflowClient

    from airflow_mlops.errors import ConfigError
    from airflow_mlops.model.training.trainer import run

    path, _ = base
    bare = tmp_path / "bare"
    shutil.copytree(path, bare, ignore=shutil.ignore_patterns("tokenizer*", "vocab.txt", "special_tokens_map.json"))
    with pytest.raises(ConfigError, match=r"base_model_path: .*bare holds no tokenizer"):
        run(_config(tmp_path, "bare", {"base_model_path": str(bare)}))
    assert not [r for e in MlflowClient().search_experiments() for r in MlflowClient().search_runs([e.experiment_id])]
