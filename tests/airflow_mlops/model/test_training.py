"""The trainer itself: real torch (and peft) on tiny models, a real MLflow sqlite store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.model.artifacts import load_mlflow_model
from airflow_mlops.model.format import find_model_dir, verify_model_dir
from airflow_mlops.tracking import registry

pytestmark = pytest.mark.slow  # trains models


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
    from airflow_mlops.model.training.trainer import run

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

    from airflow_mlops.data.partitions import split_holdout
    from airflow_mlops.model.metrics import evaluate

    _, holdout = split_holdout(_reviews(600, 1), "positive", 0.25, 3)
    model = load_mlflow_model(result["model_uri"], result["model_sha256"])
    for name, value in evaluate(model, holdout).items():  # reloaded == as measured during training
        assert value == pytest.approx(result["metrics"][f"holdout_{name}"], abs=1e-12)
    second = load_mlflow_model(result["model_uri"], result["model_sha256"]).predict_proba(holdout)
    assert np.array_equal(model.predict_proba(holdout), second)

    from airflow_mlops.model.artifacts import load_model
    from airflow_mlops.tools.cli import main

    # the CLI's merge-adapter (as docs/development.md shows it), on the logged model
    assert main(["merge-adapter", result["model_uri"], "--sha256", result["model_sha256"],
                 "--out", str(tmp_path / "merged")]) == 0  # fmt: skip
    merged = load_model(tmp_path / "merged")
    assert merged.meta["kind"] == "merged_text"
    np.testing.assert_allclose(merged.predict_proba(holdout), model.predict_proba(holdout), atol=1e-5)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_tabular_model_trains_and_reloads_identically(tmp_path, mlflow_uri, task):
    from airflow_mlops.model.metrics import evaluate
    from airflow_mlops.model.training.trainer import run

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
    from airflow_mlops.data.partitions import split_holdout

    _, holdout = split_holdout(df, "y", 0.25, 3)
    metrics = evaluate(model, holdout)
    for name, value in metrics.items():  # the reloaded model scores exactly as the trainer measured
        assert value == pytest.approx(result["metrics"][f"holdout_{name}"], abs=1e-12)
    if task == "classification":
        assert metrics["roc_auc"] > 0.9
    else:
        assert metrics["rmse"] < 0.4


def test_logged_model_has_a_signature_and_a_json_input_example(tmp_path, mlflow_uri):
    import mlflow
    from mlflow.models import Model

    from airflow_mlops.model.training.trainer import run

    result = run(
        _config(tmp_path, "tabular", _tabular_frame(600), numeric=["x", "z"], categorical=["k"], target="y",
                model={"kind": "tabular", "task": "classification", "params": {"epochs": 1}})
    )  # fmt: skip
    local = Path(mlflow.artifacts.download_artifacts(result["model_uri"], dst_path=str(tmp_path / "m")))
    info = Model.load(str(local))
    assert [c.name for c in info.signature.inputs.inputs] == ["x", "z", "k"]
    assert info.signature.outputs is not None
    example = json.loads((local / info.saved_input_example_info["artifact_path"]).read_text())
    assert example["columns"] == ["x", "z", "k"]
    assert len(example["data"]) == 5
    assert not list(local.rglob("*.pkl"))  # nothing in the model is a pickle


def test_tampered_model_is_refused(tmp_path, mlflow_uri):
    from airflow_mlops.errors import IntegrityError
    from airflow_mlops.model.training.trainer import run

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


def _tabular_frame(n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "k": rng.choice(["a", "b"], n)})
    df["y"] = ((df["x"] + 0.5 * df["z"] + (df["k"] == "a")) + rng.normal(0, 0.7, n) > 0.5).astype(int)
    return df


def _deterministic(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if "per_second" not in k}


def test_same_config_and_data_give_the_same_metrics(tmp_path, mlflow_uri):
    from airflow_mlops.model.training.trainer import run

    params = {"epochs": 4, "hidden_units": [16], "dropout": 0.1, "batch_size": 64}
    model = {"kind": "tabular", "task": "classification", "params": params}
    df = _tabular_frame()
    a = run(
        _config(
            tmp_path,
            "tabular",
            df,
            numeric=["x", "z"],
            categorical=["k"],
            target="y",
            model=model,
            run_key="a",
        )
    )
    b = run(
        _config(
            tmp_path,
            "tabular",
            df,
            numeric=["x", "z"],
            categorical=["k"],
            target="y",
            model=model,
            run_key="b",
        )
    )
    assert a["run_id"] != b["run_id"]
    assert a["metrics"] == b["metrics"]
    c = registry.client()
    history = [[m.value for m in c.get_metric_history(r["run_id"], "train_loss")] for r in (a, b)]
    assert history[0] == history[1]
    tags = c.get_run(a["run_id"]).data.tags
    assert tags["mlops.env.torch"].startswith("2.")
    assert tags["mlops.env.python"].count(".") == 2


def test_killed_run_resumes_from_its_checkpoint_and_ends_as_if_never_interrupted(tmp_path, mlflow_uri):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from airflow_mlops.model.training.trainer import run

    params = {"epochs": 40, "hidden_units": [32], "dropout": 0.2, "batch_size": 32, "checkpoint_every": 5}
    model = {"kind": "tabular", "task": "classification", "params": params}
    df = _tabular_frame()
    ckpt = tmp_path / "ckpt"
    config = _config(tmp_path, "tabular", df, numeric=["x", "z"], categorical=["k"], target="y", model=model,
                     run_key="resume-me", checkpoint_uri=str(ckpt))  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    cmd = [
        sys.executable,
        "-m",
        "airflow_mlops.model.training",
        "--config",
        str(tmp_path / "config.json"),
        "--result",
        str(tmp_path / "r.json"),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ, start_new_session=True
    )
    deadline = time.monotonic() + 120
    manifest = ckpt / "checkpoint.json"
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists() and json.loads(manifest.read_text())["step"] >= 200:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the trainer finished before it could be interrupted"
    saved_step = json.loads(manifest.read_text())["step"]
    assert 200 <= saved_step < 40 * 75  # 2250 training rows / 32 = 71 steps per epoch

    resumed = run(config)  # the retry, in-process
    assert resumed["resumed_from_step"] == saved_step
    c = registry.client()
    assert c.get_run(resumed["run_id"]).data.tags["mlops.resumed_from_step"] == str(saved_step)
    assert not manifest.exists()  # cleared once the model is logged

    fresh = run({**config, "run_key": "never-interrupted", "checkpoint_uri": str(tmp_path / "ckpt2")})
    assert fresh["resumed_from_step"] is None
    assert resumed["metrics"] == fresh["metrics"]


def test_gradient_accumulation_steps_like_the_larger_batch():
    """``gradient_accumulation_steps: 4`` with batches of 8 takes the same optimizer steps, to the same
    weights, as batches of 32 (the loss is averaged over the accumulated batches); without accumulation the
    same batches of 8 end elsewhere. Read from ``model.params`` as every model family reads it."""
    import torch

    from airflow_mlops.model.training.common import fit, fit_settings

    x = torch.randn(128, 3, generator=torch.Generator().manual_seed(1))
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3

    def train(batch_size: int, accumulate: int):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        params = {"epochs": 2, "batch_size": batch_size, "learning_rate": 0.05, "weight_decay": 0.0,
                  "gradient_accumulation_steps": accumulate}  # fmt: skip
        result = fit(
            model, x, y, torch.nn.functional.mse_loss, named_params=dict(model.named_parameters()),
            **fit_settings(params, 3, "cpu", None),
        )  # fmt: skip
        return model, result.steps

    large, large_steps = train(32, 1)
    accumulated, accumulated_steps = train(8, 4)
    small, small_steps = train(8, 1)
    assert (large_steps, accumulated_steps, small_steps) == (8, 8, 32)
    torch.testing.assert_close(accumulated.weight, large.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(accumulated.bias, large.bias, rtol=1e-5, atol=1e-6)
    assert (small.weight - large.weight).abs().max() > 1e-2


def test_qlora_on_cpu_stops_with_a_clear_message(tmp_path, mlflow_uri):
    from airflow_mlops.model.training.trainer import run

    config = _config(
        tmp_path, "lora_text", _reviews(50, 1), text="review", target="positive",
        model={"kind": "lora_text", "task": "classification", "params": {"quantization": "4bit", "device": "cpu"}},
    )  # fmt: skip
    with pytest.raises(RuntimeError, match=r"QLoRA .* needs a CUDA GPU.*training.executor: kubernetes"):
        run(config)


def test_qlora_request_on_a_gpu_asks_for_nf4_weights_on_the_trainers_device():
    import torch

    from airflow_mlops.model.training.lora import quantization_request

    request = quantization_request("cuda:1")  # what from_pretrained receives; no GPU needed to build it
    q = request["quantization_config"]
    assert (q.load_in_4bit, q.load_in_8bit) == (True, False)
    assert (q.bnb_4bit_quant_type, q.bnb_4bit_use_double_quant, q.bnb_4bit_compute_dtype) == (
        "nf4", True, torch.bfloat16,
    )  # fmt: skip
    assert request["dtype"] == torch.bfloat16
    assert request["device_map"] == {"": 1}


def test_qlora_without_bitsandbytes_names_the_package(monkeypatch):
    import importlib.util

    from airflow_mlops.model.training.lora import check_quantization

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a)
    )
    with pytest.raises(RuntimeError, match=r"needs the bitsandbytes package.*docker/training.Dockerfile"):
        check_quantization({"quantization": "4bit"}, "cuda:0")
    with pytest.raises(ValueError, match=r"quantization='8bit'; allowed: none \| 4bit"):
        check_quantization({"quantization": "8bit"}, "cuda:0")


@pytest.mark.parametrize("kind", ["lora_text", "lora_causal_lm"])
def test_gradient_checkpointing_gives_the_same_model(tmp_path, mlflow_uri, kind):
    """Recomputing activations in the backward pass (to save memory) must not change what is learned."""
    from airflow_mlops.model.training.trainer import run

    if kind == "lora_text":
        df, cols = _reviews(200, 1), {"text": "review", "target": "positive"}
        base = {"model_type": "bert", "vocab_size": 256, "hidden_size": 32, "num_hidden_layers": 2,
                "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 32}  # fmt: skip
        task = "classification"
    else:
        df, cols = _sentences(200, 1), {"text": "sentence", "target": "sentence"}
        base = {"model_type": "llama", "vocab_size": 256, "hidden_size": 32, "intermediate_size": 64,
                "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
                "max_position_embeddings": 32}  # fmt: skip
        task = "language_modeling"
    metrics = []
    for checkpointing in (False, True):
        params = {"epochs": 2, "batch_size": 16, "max_length": 16, "base_config": base,
                  "gradient_checkpointing": checkpointing, "modules_to_save": None}  # fmt: skip
        result = run(
            _config(tmp_path, kind, df, run_key=f"gc-{kind}-{checkpointing}-{tmp_path.name}", **cols,
                    model={"kind": kind, "task": task, "params": params})
        )  # fmt: skip
        metrics.append(_deterministic(result["metrics"]))
    assert metrics[0].keys() == metrics[1].keys()
    assert metrics[0]
    for name, value in metrics[0].items():
        assert metrics[1][name] == pytest.approx(value, rel=1e-5, abs=1e-6), name


def _sentences(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    adjectives, nouns, verbs = (
        ["quick", "lazy", "red", "small"],
        ["fox", "dog", "cat", "bird"],
        ["sees", "likes", "chases"],
    )
    rows = [
        f"the {rng.choice(adjectives)} {rng.choice(nouns)} {rng.choice(verbs)} the {rng.choice(nouns)}"
        for _ in range(n)
    ]
    return pd.DataFrame({"sentence": rows})


def test_causal_lm_lora_learns_the_language_and_reloads_exactly(tmp_path, mlflow_uri):
    from airflow_mlops.data.partitions import split_holdout
    from airflow_mlops.model.metrics import evaluate
    from airflow_mlops.model.training.trainer import run

    df = _sentences(400, 2)
    params = {
        "epochs": 3, "batch_size": 16, "max_length": 12, "learning_rate": 0.02,
        "target_modules": ["q_proj", "v_proj"],
        "modules_to_save": ["lm_head"],  # the base is random: its output head must learn too
    }  # fmt: skip
    result = run(
        _config(tmp_path, "lora_causal_lm", df, text="sentence", target="sentence",
                model={"kind": "lora_causal_lm", "task": "language_modeling", "params": params})
    )  # fmt: skip
    c = registry.client()
    perplexity = [m.value for m in c.get_metric_history(result["run_id"], "holdout_perplexity")]
    assert len(perplexity) == 3
    assert perplexity[-1] < perplexity[0]
    assert result["metrics"]["holdout_perplexity"] < 50  # a uniform guess over 2,048 tokens scores 2,048
    model = load_mlflow_model(result["model_uri"], result["model_sha256"])
    assert "adapter/adapter_model.safetensors" in model.meta["files"]
    _, holdout = split_holdout(df, "sentence", 0.25, 3)
    for name, value in evaluate(model, holdout).items():
        assert value == pytest.approx(result["metrics"][f"holdout_{name}"], rel=1e-9)


def test_base_model_from_an_object_store_url(tmp_path, mlflow_uri):
    """A base model directory on object storage (fsspec's in-memory store stands in for s3://)."""
    import fsspec
    from transformers import AutoConfig, AutoModelForCausalLM

    from airflow_mlops.model.training.trainer import run

    cfg = {"vocab_size": 512, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
           "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 64}  # fmt: skip
    AutoModelForCausalLM.from_config(AutoConfig.for_model("llama", **cfg)).save_pretrained(tmp_path / "base")
    from airflow_mlops.tools.textbase import tokenizer

    tokenizer(_sentences(200, 5)["sentence"].tolist()).save_pretrained(tmp_path / "base")  # the base's own
    fs = fsspec.filesystem("memory")
    fs.put(str(tmp_path / "base"), f"/models/{tmp_path.name}/base", recursive=True)
    params = {"base_model_path": f"memory://models/{tmp_path.name}/base", "epochs": 1, "max_length": 12,
              "modules_to_save": ["lm_head"]}  # fmt: skip
    result = run(
        _config(tmp_path, "lora_causal_lm", _sentences(80, 3), text="sentence", target="sentence",
                model={"kind": "lora_causal_lm", "task": "language_modeling", "params": params})
    )  # fmt: skip
    model = load_mlflow_model(result["model_uri"], result["model_sha256"])
    assert model.meta["vocab_size"] == 512
    assert model.meta["tokenizer"] == "pretrained"  # fetched from the object store with the weights
    assert model.lm_metrics(_sentences(20, 4))["perplexity"] > 1


def test_a_checkpoint_of_another_model_under_the_same_key_is_ignored(tmp_path):
    """A stale or foreign checkpoint (other parameters) must not crash or poison a run: it starts over."""
    import torch

    from airflow_mlops.model.training.checkpoint import Checkpointer
    from airflow_mlops.model.training.common import fit

    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    ckpt = Checkpointer(str(tmp_path / "ckpt"))

    def net(width):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.ReLU(), torch.nn.Linear(width, 2))

    other = net(8)
    settings = {"epochs": 1, "batch_size": 16, "learning_rate": 0.01, "seed": 0, "checkpoint": ckpt}
    # leave a checkpoint behind as a killed run would (checkpoint_every=1, not cleared)
    fit(
        other,
        x,
        y,
        torch.nn.CrossEntropyLoss(),
        named_params=dict(other.named_parameters()),
        checkpoint_every=1,
        **settings,
    )
    assert ckpt.load() is not None
    mine = net(16)  # same key, other shapes
    result = fit(
        mine, x, y, torch.nn.CrossEntropyLoss(), named_params=dict(mine.named_parameters()), **settings
    )
    assert result.resumed_from_step is None
    assert len(result.history) == 1


def test_without_the_train_extra_training_says_what_to_install():
    """A component installed without [train] (a scheduler image, say) gets the fix, not an ImportError."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    code = (
        "import sys; sys.path = [p for p in sys.path if 'site-packages' not in p] + [sys.argv[1]]\n"
        "from airflow_mlops.model import require_train_extra\n"
        "require_train_extra('lora_text')\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("airflow_mlops.errors.TrainingError: lora_text models need torch, safetensors, peft, transformers")
    assert "pip install 'airflow-mlops[train]'" in last


def test_a_superseded_trainer_stops_before_writing_a_checkpoint(tmp_path):
    """Fencing: trainer A holds lease 1; a retry's trainer B takes lease 2; A's next write stops A (exit 75)
    with nothing written, so two trainers never share a checkpoint folder or an MLflow run."""
    import subprocess
    import sys

    from airflow_mlops.model.training.checkpoint import LEASE_EXIT_CODE, Checkpointer

    folder = tmp_path / "ckpt"
    code = (
        "import sys, torch\n"
        "from airflow_mlops.model.training.checkpoint import Checkpointer\n"
        "ck = Checkpointer(sys.argv[1]); print(ck.acquire('A'), flush=True)\n"
        "sys.stdin.readline()\n"
        "ck.save({'w': torch.zeros(2)}, {'step': 1, 'epoch': 0})\n"
        "print('wrote', flush=True)\n"
    )
    a = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert a.stdout.readline().strip() == "1"
    b = Checkpointer(str(folder))
    assert b.acquire("B") == 2
    a.stdin.write("go\n")
    a.stdin.flush()
    assert a.wait(60) == LEASE_EXIT_CODE
    assert "wrote" not in a.stdout.read()
    assert not list(folder.glob("state-*"))  # A wrote nothing
    b.check()  # B still holds the newest lease and goes on


def test_mlflows_own_loader_checks_the_recorded_hash_and_runs_no_stored_code(tmp_path, mlflow_uri):
    """mlflow.pyfunc.load_model serves the model through the installed airflow-mlops (a loader module, no
    stored code), and refuses weights changed together with their metadata: model.json no longer matches
    the hash recorded on the run."""
    import shutil
    import tempfile

    import mlflow
    import yaml

    from airflow_mlops.errors import IntegrityError
    from airflow_mlops.model.artifacts import load_mlflow_model
    from airflow_mlops.model.format import MODEL_JSON, find_model_dir, write_model_json
    from airflow_mlops.model.training.trainer import run

    frame = _tabular_frame(600)
    result = run(
        _config(tmp_path, "tabular", frame, numeric=["x", "z"], categorical=["k"], target="y",
                model={"kind": "tabular", "task": "classification", "params": {"epochs": 1}})
    )  # fmt: skip
    served = mlflow.pyfunc.load_model(result["model_uri"])
    assert len(served.predict(frame[["x", "z", "k"]].head(3))) == 3

    local = Path(mlflow.artifacts.download_artifacts(result["model_uri"], dst_path=str(tmp_path / "copy")))
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["loader_module"] == "airflow_mlops.model.pyfunc"
    assert not list(local.rglob("*.py"))
    assert not list(local.rglob("*.pkl"))

    model_dir = find_model_dir(local)
    weights = next(p for p in model_dir.rglob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)
    meta = json.loads((model_dir / MODEL_JSON).read_text())
    write_model_json(model_dir, {k: v for k, v in meta.items() if k not in ("files", "format_version")})
    with pytest.raises(IntegrityError, match=r"not those MLflow run \w+ recorded \(changed: data/model_dir/model"):
        mlflow.pyfunc.load_model(str(local))

    shutil.rmtree(local)
    before = set(Path(tempfile.gettempdir()).glob("mlops-model-*"))
    load_mlflow_model(result["model_uri"], result["model_sha256"])
    assert set(Path(tempfile.gettempdir()).glob("mlops-model-*")) == before  # no download left behind


def test_a_failed_upload_leaves_no_failed_logged_model_and_the_retry_logs_one(tmp_path, mlflow_uri, monkeypatch):
    """A full artifact store fails log_model; MLflow then keeps a FAILED logged model on the run. The
    trainer deletes it, and the retry (the same MLflow run, resumed) logs exactly one READY model."""
    from mlflow.entities import LoggedModelStatus
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
    from mlflow.tracking import MlflowClient

    from airflow_mlops.model.training.trainer import run

    config = _config(tmp_path, "tabular", _tabular_frame(600), numeric=["x", "z"], categorical=["k"], target="y",
                     model={"kind": "tabular", "task": "classification", "params": {"epochs": 1}})  # fmt: skip
    real = LocalArtifactRepository.log_artifacts

    def full(self, local_dir, artifact_path=None):
        if "/models/" in self.artifact_dir:  # the logged model's files, not the run's other artifacts
            raise OSError(28, "No space left on device")
        return real(self, local_dir, artifact_path)

    monkeypatch.setattr(LocalArtifactRepository, "log_artifacts", full)
    with pytest.raises(OSError, match="No space left"):
        run(config)
    c = MlflowClient()
    (experiment,) = [e for e in c.search_experiments() if e.name != "Default"]
    (failed_run,) = c.search_runs([experiment.experiment_id])
    assert list(c.search_logged_models([experiment.experiment_id])) == []

    monkeypatch.setattr(LocalArtifactRepository, "log_artifacts", real)
    result = run(config)
    assert result["run_id"] == failed_run.info.run_id  # the retry resumed the same run
    models = list(c.search_logged_models([experiment.experiment_id]))
    assert [m.status for m in models] == [LoggedModelStatus.READY]


def _registered(tmp_path, name: str, key: str, seed: int = 3) -> tuple[dict, object]:
    """Train a small model and register it as the release step does (the run's mlops.* tags on the version)."""
    from mlflow.tracking import MlflowClient

    from airflow_mlops.model.training.trainer import run

    result = run(
        _config(tmp_path, "tabular", _tabular_frame(600), numeric=["x", "z"], categorical=["k"], target="y",
                run_key=key, seed=seed, model={"kind": "tabular", "task": "classification", "params": {"epochs": 1}})
    )  # fmt: skip
    c = MlflowClient()
    lineage = {k: v for k, v in c.get_run(result["run_id"]).data.tags.items() if k.startswith("mlops.")}
    version, _ = registry.register_version(
        c, name=name, model_uri=result["model_uri"], run_id=result["run_id"], run_key=key, tags=lineage
    )
    return result, version


def _stored(model_uri: str) -> Path:
    """Where the artifact store keeps a logged model's files (a local store here)."""
    from mlflow.tracking import MlflowClient

    location = MlflowClient().get_logged_model(model_uri[len("models:/") :]).artifact_location
    return Path(location.removeprefix("file://"))


def test_mlflows_own_loader_refuses_an_edited_mlmodel_before_importing_its_code(tmp_path, mlflow_uri):
    """MLmodel rewritten to name a loader module shipped in the model's code/ folder: MLflow would import it.
    The models:/ repository checks every file against the version's record first, so nothing runs."""
    import mlflow
    import yaml

    from airflow_mlops.errors import IntegrityError

    result, version = _registered(tmp_path, "tamper", "key-a")
    assert json.loads(version.tags[registry.MODEL_FILES_TAG])["MLmodel"]  # MLmodel itself is recorded
    assert mlflow.pyfunc.load_model("models:/tamper/1") is not None
    stored = _stored(result["model_uri"])
    marker = tmp_path / "stored-code-ran"
    (stored / "code").mkdir()
    (stored / "code" / "evil_loader.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\ndef _load_pyfunc(path):\n    return None\n"
    )
    mlmodel = yaml.safe_load((stored / "MLmodel").read_text())
    mlmodel["flavors"]["python_function"].update(loader_module="evil_loader", code="code")
    (stored / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(IntegrityError, match=r"not those tamper version 1 recorded \(changed: MLmodel; not recorded"):
        mlflow.pyfunc.load_model("models:/tamper/1")
    assert not marker.exists()  # the stored module was never imported


def test_another_versions_files_in_the_champions_place_are_refused_by_every_loader(tmp_path, mlflow_uri):
    """Version 2's files copied over version 1's: their MLmodel names version 2's run, whose own hash they
    match. Every loader checks the version it was asked for, so both MLflow's and the project's refuse."""
    import shutil

    import mlflow
    from mlflow.tracking import MlflowClient

    from airflow_mlops.errors import IntegrityError
    from airflow_mlops.operations.scoring import load_alias

    first, _ = _registered(tmp_path, "swap", "key-1", seed=3)
    second, _ = _registered(tmp_path, "swap", "key-2", seed=4)
    c = MlflowClient()
    c.set_registered_model_alias("swap", registry.CHAMPION, "1")
    assert load_alias(c, "swap", registry.CHAMPION).version == "1"
    target = _stored(first["model_uri"])
    shutil.rmtree(target)
    shutil.copytree(_stored(second["model_uri"]), target)
    with pytest.raises(IntegrityError, match="not those swap version 1 recorded"):
        mlflow.pyfunc.load_model("models:/swap@champion")
    with pytest.raises(IntegrityError, match="not those"):
        load_alias(c, "swap", registry.CHAMPION)
    assert mlflow.pyfunc.load_model("models:/swap/2") is not None  # the untouched version still loads
