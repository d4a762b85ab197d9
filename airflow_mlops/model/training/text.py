"""PEFT/LoRA fine-tuning of a transformer sequence classifier.

The base model is built from a config (``model.params.base_config``, random init: nothing is downloaded) or
loaded from a local directory (``model.params.base_model_path``). A pretrained base is fine-tuned with its own
tokenizer (``AutoTokenizer`` from the same directory, local files only), saved beside the adapter so that
scoring and merging tokenise exactly as training did: token ids mean what the pretrained weights learned. A
base built from a config has no vocabulary, so its text is tokenised by a deterministic hashing tokenizer
(nothing to fetch). The adapter (and the trained classifier head) is saved by peft as safetensors; the base
weights beside it, so the model reloads bit for bit.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

from airflow_mlops.model.training.checkpoint import Checkpointer
from airflow_mlops.model.training.common import FitResult, fit, fit_settings, pick_device, seed_everything

BASE_WEIGHTS = "base.safetensors"
BASE_CONFIG = "base_config.json"  # the architecture actually trained, whatever the base came from
ADAPTER_DIR = "adapter"
TOKEN_RE = re.compile(r"[a-z0-9']+")
PAD, CLS = 0, 1
DEFAULTS: dict[str, Any] = {
    "base_config": {
        "model_type": "bert", "vocab_size": 2048, "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 128, "max_position_embeddings": 128,
    },
    "max_length": 32, "epochs": 3, "batch_size": 32, "learning_rate": 5e-3, "weight_decay": 0.0,
    "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["query", "value"],
}  # fmt: skip


TOKENIZER_DIR = "tokenizer"  # a pretrained base's tokenizer, saved beside the adapter
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model")


def tokenize(texts: list[str], vocab_size: int, max_length: int):
    """Hash each lower-cased word into [2, vocab_size); CLS first, padded with 0."""
    import torch

    ids = torch.zeros((len(texts), max_length), dtype=torch.long)
    for row, text in enumerate(texts):
        words = TOKEN_RE.findall(str(text).lower())[: max_length - 1]
        toks = [CLS] + [2 + zlib.crc32(w.encode()) % (vocab_size - 2) for w in words]
        ids[row, : len(toks)] = torch.tensor(toks)
    return ids


class HashingTokenizer:
    """For a base built from a config (random init, no vocabulary): words hashed into the embedding table."""

    kind = "hashing"
    pad_id = PAD

    def __init__(self, vocab_size: int, max_length: int) -> None:
        self.vocab_size, self.max_length = vocab_size, max_length

    def __call__(self, texts: list[str]) -> Any:
        return tokenize(texts, self.vocab_size, self.max_length)

    def save(self, out_dir: Path) -> None:
        """Nothing to save: the hashing is a function of the vocabulary size in the model's metadata."""


class PretrainedTokenizer:
    """A pretrained base's own tokenizer (``AutoTokenizer``, local files only)."""

    kind = "pretrained"

    def __init__(self, directory: str | Path, max_length: int) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        if self.tokenizer.pad_token_id is None:  # causal LMs often have none: pad with end-of-text
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.max_length = max_length

    def __call__(self, texts: list[str]) -> Any:
        encoded = self.tokenizer(
            [str(t) for t in texts], padding="max_length", truncation=True, max_length=self.max_length,
            return_tensors="pt",
        )  # fmt: skip
        return encoded["input_ids"]

    def save(self, out_dir: Path) -> None:
        self.tokenizer.save_pretrained(str(out_dir / TOKENIZER_DIR))


def check_base_tokenizer(params: dict[str, Any]) -> Path | None:
    """The directory of a pretrained base, which must hold the base's tokenizer; ConfigError otherwise (called
    before the MLflow run starts). None for a base built from a config."""
    from airflow_mlops.errors import ConfigError

    if not params.get("base_model_path"):
        return None
    directory = Path(local_model_dir(params["base_model_path"]))
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise ConfigError(
            [
                f"model.params.base_model_path: {params['base_model_path']} holds no tokenizer (none of "
                f"{', '.join(TOKENIZER_FILES)}); a pretrained base is fine-tuned with its own tokenizer: save it "
                "into the same directory (tokenizer.save_pretrained(path))"
            ],
            "model",
        )
    return directory


def base_tokenizer(params: dict[str, Any], vocab_size: int) -> HashingTokenizer | PretrainedTokenizer:
    """The tokenizer a base is fine-tuned with: a pretrained base's own one, or hashing for a config base."""
    from airflow_mlops.errors import ConfigError

    max_length = int(params["max_length"])
    if not params.get("base_model_path"):
        return HashingTokenizer(vocab_size, max_length)
    tokenizer = PretrainedTokenizer(check_base_tokenizer(params), max_length)
    if len(tokenizer.tokenizer) > vocab_size:
        raise ConfigError(
            [
                f"model.params.base_model_path: the tokenizer in {params['base_model_path']} has "
                f"{len(tokenizer.tokenizer)} tokens, the model's embedding table {vocab_size}: they do not belong "
                "together"
            ],
            "model",
        )
    return tokenizer


def saved_tokenizer(directory: Path, meta: dict[str, Any]) -> HashingTokenizer | PretrainedTokenizer:
    """The tokenizer a model was trained with, from its folder (models from before hold the hashing one)."""
    max_length = int(meta["params"]["max_length"])
    if meta.get("tokenizer") == PretrainedTokenizer.kind:
        return PretrainedTokenizer(directory / TOKENIZER_DIR, max_length)
    return HashingTokenizer(int(meta["vocab_size"]), max_length)


class _Logits:
    """Callable wrapper so the generic loop can call ``model(ids)``."""

    def __init__(self, peft_model: Any, pad_id: int = PAD) -> None:
        self.peft_model = peft_model
        self.pad_id = pad_id

    def __call__(self, ids: Any) -> Any:
        return self.peft_model(input_ids=ids, attention_mask=(ids != self.pad_id).long()).logits.float()

    def train(self) -> None:
        self.peft_model.train()

    def eval(self) -> None:
        self.peft_model.eval()


def _save_config(model: Any, out_dir: Path) -> None:
    import json

    (out_dir / BASE_CONFIG).write_text(json.dumps(model.config.to_dict(), sort_keys=True, default=str))


def _config_from(directory: Path, **overrides: Any) -> Any:
    import json

    from transformers import AutoConfig

    cfg = json.loads((directory / BASE_CONFIG).read_text())
    return AutoConfig.for_model(cfg.pop("model_type"), **{**cfg, **overrides})


def _load_adapted(directory: Path, auto_class: Any) -> Any:
    """Base architecture from its saved config, base weights, then the peft adapter: ready for inference."""
    from peft import PeftModel
    from safetensors.torch import load_file

    base = auto_class.from_config(_config_from(directory))
    base.load_state_dict(load_file(str(directory / BASE_WEIGHTS)))
    model = PeftModel.from_pretrained(base, str(directory / ADAPTER_DIR))
    model.eval()
    return model


def _trainable(model: Any) -> dict[str, Any]:
    return {n: q for n, q in model.named_parameters() if q.requires_grad}


def local_model_dir(uri: str) -> str:
    """A base model directory given as a local path or any fsspec URL (s3://, gs://, ...): object-store
    copies are fetched once into the temp folder (per URL and content: a base changed in place is fetched
    again); nothing is ever fetched from a model hub."""
    import hashlib
    import os
    import tempfile

    import fsspec

    if "://" not in uri or uri.startswith("file://"):
        return uri.removeprefix("file://")
    import json

    fs, path = fsspec.core.url_to_fs(uri)
    # the copy is named by the URL and what is there now (names, sizes, versions): a changed base is fetched again
    listing = sorted(
        (name, info.get("size"), str(info.get("ETag") or info.get("mtime") or info.get("LastModified") or info.get("created")))
        for name, info in fs.find(path, detail=True).items()
    )  # fmt: skip
    signature = hashlib.sha256(json.dumps([uri, listing], default=str).encode()).hexdigest()[:16]
    local = os.path.join(tempfile.gettempdir(), "airflow-mlops-models", signature)
    if not os.path.isdir(local):
        tmp = f"{local}.tmp-{os.getpid()}"
        fs.get(path.rstrip("/") + "/", tmp, recursive=True)
        os.replace(tmp, local)
    return local


def _base_model(params: dict[str, Any], num_labels: int):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    if params.get("base_model_path"):
        return AutoModelForSequenceClassification.from_pretrained(
            local_model_dir(params["base_model_path"]), num_labels=num_labels, local_files_only=True
        )
    cfg = dict(params["base_config"])
    model_type = cfg.pop("model_type", "bert")
    config = AutoConfig.for_model(model_type, num_labels=num_labels, **cfg)
    return AutoModelForSequenceClassification.from_config(config)


class TextModel:
    def __init__(self, model: Any, meta: dict[str, Any], tokenizer: Any = None) -> None:
        self.model = model
        self.meta = meta
        self.tokenizer = tokenizer or HashingTokenizer(int(meta["vocab_size"]), int(meta["params"]["max_length"]))

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> TextModel:
        from transformers import AutoModelForSequenceClassification

        return cls(_load_adapted(directory, AutoModelForSequenceClassification), meta, saved_tokenizer(directory, meta))

    def _ids(self, df: Any):
        return self.tokenizer(df[self.meta["text"]].tolist())

    def predict_proba(self, df: Any) -> Any:
        import torch

        ids = self._ids(df)
        device = next(self.model.parameters()).device
        out = []
        with torch.no_grad():
            for s in range(0, len(ids), 256):
                chunk = ids[s : s + 256].to(device)
                mask = (chunk != self.tokenizer.pad_id).long()
                logits = self.model(input_ids=chunk, attention_mask=mask).logits
                out.append(torch.softmax(logits.float(), dim=1).cpu())
        return torch.cat(out).numpy() if out else torch.zeros((0, len(self.meta["classes"]))).numpy()

    def predict(self, df: Any) -> Any:
        import numpy as np

        return np.array(self.meta["classes"], dtype=object)[self.predict_proba(df).argmax(axis=1)]


def train(
    train_df: Any,
    *,
    text: str,
    target: str,
    params: dict[str, Any],
    seed: int,
    out_dir: Path,
    evaluate: Any,
    checkpoint: Checkpointer | None = None,
) -> tuple[dict[str, Any], FitResult]:
    import numpy as np
    import torch
    from peft import TaskType
    from transformers import AutoModelForSequenceClassification

    p, device = _settings(params, DEFAULTS, seed)
    classes = sorted(train_df[target].dropna().unique().tolist())
    if len(classes) < 2:
        raise ValueError(f"target {target!r} has a single class {classes}: a classifier needs at least two")
    base = _base_model(p, len(classes))
    tokenizer = base_tokenizer(p, int(base.config.vocab_size))
    model, vocab_size, quantized = _adapt(
        base, p, device, AutoModelForSequenceClassification, TaskType.SEQ_CLS, out_dir
    )
    tokenizer.save(out_dir)
    n_trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    n_total = sum(q.numel() for q in model.parameters())

    index = {c: i for i, c in enumerate(classes)}
    ids = tokenizer(train_df[text].tolist())
    y = torch.tensor(train_df[target].map(index).to_numpy(dtype=np.int64))

    meta: dict[str, Any] = {
        "kind": "lora_text", "task": "classification", "text": text, "target": target, "params": p,
        "classes": [c.item() if hasattr(c, "item") else c for c in classes], "vocab_size": vocab_size,
        "tokenizer": tokenizer.kind, "trainable_parameters": n_trainable, "total_parameters": n_total,
    }  # fmt: skip
    wrapper = _Logits(model, tokenizer.pad_id)
    wrapped = TextModel(model, meta, tokenizer)

    def on_epoch(_epoch: int, _loss: float) -> dict[str, float]:
        model.eval()
        return evaluate(wrapped)

    fitted = fit(
        wrapper, ids, y, torch.nn.CrossEntropyLoss(), named_params=_trainable(model), on_epoch=on_epoch,
        **fit_settings(p, seed, device, checkpoint),
    )  # fmt: skip
    model.eval()
    if not quantized:  # 4-bit weights stay on the GPU; the adapter is saved from there
        model.to("cpu")
    model.save_pretrained(str(out_dir / ADAPTER_DIR), safe_serialization=True)
    return meta, fitted


def check_quantization(params: dict[str, Any], device: str) -> None:
    """QLoRA (4-bit base weights) needs CUDA and bitsandbytes; say so before any work is done."""
    quantization = params.get("quantization") or "none"
    if quantization == "none":
        return
    if quantization != "4bit":
        raise ValueError(f"model.params.quantization={quantization!r}; allowed: none | 4bit (QLoRA)")
    if not device.startswith("cuda"):
        raise RuntimeError(
            "QLoRA (model.params.quantization: 4bit) needs a CUDA GPU, and this trainer runs on the CPU. "
            "Train with training.executor: kubernetes and training.kubernetes.gpus >= 1, or set "
            "quantization: none to fine-tune with plain LoRA on the CPU."
        )
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise RuntimeError(
            "QLoRA (model.params.quantization: 4bit) needs the bitsandbytes package in the training image: "
            "use the image built from docker/training.Dockerfile, or pip install 'bitsandbytes>=0.45'."
        )


def quantization_request(device: str) -> dict[str, Any]:
    """The keyword arguments ``from_pretrained`` gets for QLoRA: NF4 base weights, double quantisation, bf16
    compute, the whole model on the trainer's GPU."""
    import torch
    from transformers import BitsAndBytesConfig

    index = int(device.split(":", 1)[1]) if ":" in device else 0
    return {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        ),
        "dtype": torch.bfloat16,
        "device_map": {"": index},
    }  # fmt: skip


def _ready_for_training(base: Any, params: dict[str, Any], device: str, auto_class: Any) -> Any:
    """The base model the adapter trains on: moved to the device, or (QLoRA) reloaded with 4-bit weights on the
    GPU; gradient checkpointing when ``gradient_checkpointing: true`` (activations recomputed in the backward
    pass instead of kept: less memory for about a third more compute)."""
    import tempfile

    checkpointing = bool(params.get("gradient_checkpointing", False))
    if (params.get("quantization") or "none") == "4bit":
        from peft import prepare_model_for_kbit_training

        with tempfile.TemporaryDirectory() as tmp:  # full-precision base -> 4-bit on the GPU
            base.save_pretrained(tmp, safe_serialization=True)
            base = auto_class.from_pretrained(tmp, local_files_only=True, **quantization_request(device))
        return prepare_model_for_kbit_training(base, use_gradient_checkpointing=checkpointing)
    if checkpointing:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        base.config.use_cache = False
    return base.to(device)


def _settings(params: dict[str, Any], defaults: dict[str, Any], seed: int) -> tuple[dict[str, Any], str]:
    """The family's parameters over its defaults (``base_config`` merged key by key), seeded, on a device
    that can run them (QLoRA checked before any work)."""
    p = {**defaults, **params}
    p["base_config"] = {**defaults["base_config"], **(params.get("base_config") or {})}
    seed_everything(seed)
    device = pick_device(str(p.get("device", "auto")))
    check_quantization(p, device)
    return p, device


def _adapt(
    base: Any, p: dict[str, Any], device: str, auto_class: Any, task_type: Any, out_dir: Path
) -> tuple[Any, int, bool]:
    """Save the base (weights and architecture), wrap it with the LoRA adapter, place it on the device.
    Returns (peft model, vocabulary size, whether the base is 4-bit)."""
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file

    vocab_size = int(base.config.vocab_size)
    save_file({k: v.contiguous() for k, v in base.state_dict().items()}, str(out_dir / BASE_WEIGHTS))
    _save_config(base, out_dir)
    lora = LoraConfig(
        task_type=task_type, r=int(p["lora_r"]), lora_alpha=int(p["lora_alpha"]),
        lora_dropout=float(p["lora_dropout"]), target_modules=list(p["target_modules"]),
        # fully trained modules saved beside the adapter, e.g. the output head of a base built from a config
        modules_to_save=list(p["modules_to_save"]) if p.get("modules_to_save") else None,
    )  # fmt: skip
    model = get_peft_model(_ready_for_training(base, p, device, auto_class), lora)
    quantized = _is_quantized(model)
    if not quantized:
        model.to(device)
    return model, vocab_size, quantized


def _is_quantized(model: Any) -> bool:
    return bool(
        getattr(model, "is_loaded_in_4bit", False) or getattr(model.base_model, "is_loaded_in_4bit", False)
    )


MERGED_WEIGHTS = "merged.safetensors"
MERGED_CONFIG = "merged_config.json"


def merge_adapter(model: TextModel, out_dir: Path) -> Path:
    """Fold the LoRA adapter into the base weights: one plain transformers model, no peft needed to serve it.

    Writes ``merged.safetensors`` and ``merged_config.json`` (and a ``model.json`` with their hashes) to
    ``out_dir``; returns it.
    """
    import json

    from safetensors.torch import save_file

    from airflow_mlops.model.format import write_model_json

    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(model.tokenizer, PretrainedTokenizer):  # the merged model tokenises as the adapter did
        model.tokenizer.save(out_dir)
    merged = model.model.merge_and_unload()
    save_file({k: v.contiguous() for k, v in merged.state_dict().items()}, str(out_dir / MERGED_WEIGHTS))
    (out_dir / MERGED_CONFIG).write_text(json.dumps(merged.config.to_dict(), sort_keys=True, default=str))
    write_model_json(out_dir, {**model.meta, "kind": "merged_text"})
    return out_dir


class MergedTextModel(TextModel):
    """A merged model: the same tokenizer and classes, a plain transformers classifier."""

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> MergedTextModel:
        import json

        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModelForSequenceClassification

        cfg = json.loads((directory / MERGED_CONFIG).read_text())
        config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
        model = AutoModelForSequenceClassification.from_config(config)
        model.load_state_dict(load_file(str(directory / MERGED_WEIGHTS)))
        model.eval()
        return cls(model, meta, saved_tokenizer(directory, meta))


LM_DEFAULTS: dict[str, Any] = {
    "base_config": {
        "model_type": "llama", "vocab_size": 2048, "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 128,
    },
    "max_length": 32, "epochs": 3, "batch_size": 16, "learning_rate": 5e-3, "weight_decay": 0.0,
    "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"],
}  # fmt: skip


def _causal_base(params: dict[str, Any]):
    from transformers import AutoConfig, AutoModelForCausalLM

    if params.get("base_model_path"):
        return AutoModelForCausalLM.from_pretrained(
            local_model_dir(params["base_model_path"]), local_files_only=True
        )
    cfg = dict(params["base_config"])
    return AutoModelForCausalLM.from_config(AutoConfig.for_model(cfg.pop("model_type", "llama"), **cfg))


def lm_loss(logits: Any, ids: Any, pad_id: int = PAD) -> Any:
    """Next-token cross-entropy, padding ignored."""
    import torch

    labels = ids[:, 1:].clone()
    labels[labels == pad_id] = -100
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
    )


class CausalLMModel:
    """A LoRA-adapted causal language model; ``predict`` gives each row's mean next-token loss."""

    def __init__(self, model: Any, meta: dict[str, Any], tokenizer: Any = None) -> None:
        self.model = model
        self.meta = meta
        self.tokenizer = tokenizer or HashingTokenizer(int(meta["vocab_size"]), int(meta["params"]["max_length"]))

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> CausalLMModel:
        from transformers import AutoModelForCausalLM

        return cls(_load_adapted(directory, AutoModelForCausalLM), meta, saved_tokenizer(directory, meta))

    def _token_losses(self, df: Any) -> tuple[Any, Any]:
        import torch

        ids = self.tokenizer(df[self.meta["text"]].tolist())
        pad = self.tokenizer.pad_id
        device = next(self.model.parameters()).device
        sums, counts = [], []
        with torch.no_grad():
            for s in range(0, len(ids), 128):
                chunk = ids[s : s + 128].to(device)
                logits = self.model(input_ids=chunk, attention_mask=(chunk != pad).long()).logits.float()
                labels = chunk[:, 1:]
                mask = labels != pad
                losses = torch.nn.functional.cross_entropy(
                    logits[:, :-1].transpose(1, 2), labels, reduction="none"
                )  # fmt: skip
                sums.append((losses * mask).sum(dim=1).cpu())
                counts.append(mask.sum(dim=1).cpu())
        return torch.cat(sums).double(), torch.cat(counts).double()

    def lm_metrics(self, df: Any) -> dict[str, float]:
        import math

        sums, counts = self._token_losses(df)
        loss = float(sums.sum() / counts.sum().clamp(min=1))
        return {"loss": loss, "perplexity": math.exp(loss)}

    def predict(self, df: Any) -> Any:
        sums, counts = self._token_losses(df)
        return (sums / counts.clamp(min=1)).numpy()

    def predict_proba(self, df: Any) -> Any:
        raise TypeError("a language model has no class probabilities: use predict (mean token loss per row)")


def train_causal_lm(
    train_df: Any,
    *,
    text: str,
    params: dict[str, Any],
    seed: int,
    out_dir: Path,
    evaluate: Any,
    checkpoint: Checkpointer | None = None,
) -> tuple[dict[str, Any], FitResult]:
    """LoRA fine-tuning of a causal LM on a text column (next-token loss)."""
    import functools

    from peft import TaskType
    from transformers import AutoModelForCausalLM

    p, device = _settings(params, LM_DEFAULTS, seed)
    base = _causal_base(p)
    tokenizer = base_tokenizer(p, int(base.config.vocab_size))
    model, vocab_size, quantized = _adapt(base, p, device, AutoModelForCausalLM, TaskType.CAUSAL_LM, out_dir)
    tokenizer.save(out_dir)
    ids = tokenizer(train_df[text].tolist())
    meta: dict[str, Any] = {
        "kind": "lora_causal_lm", "task": "language_modeling", "text": text, "target": text, "params": p,
        "vocab_size": vocab_size, "tokenizer": tokenizer.kind,
        "trainable_parameters": sum(q.numel() for q in model.parameters() if q.requires_grad),
        "total_parameters": sum(q.numel() for q in model.parameters()),
    }  # fmt: skip
    wrapped = CausalLMModel(model, meta, tokenizer)

    def on_epoch(_epoch: int, _loss: float) -> dict[str, float]:
        model.eval()
        return evaluate(wrapped)

    fitted = fit(
        _Logits(model, tokenizer.pad_id), ids, ids, functools.partial(lm_loss, pad_id=tokenizer.pad_id),
        named_params=_trainable(model), on_epoch=on_epoch,
        **fit_settings(p, seed, device, checkpoint),
    )  # fmt: skip
    model.eval()
    if not quantized:  # 4-bit weights stay on the GPU; the adapter is saved from there
        model.to("cpu")
    model.save_pretrained(str(out_dir / ADAPTER_DIR), safe_serialization=True)
    return meta, fitted
