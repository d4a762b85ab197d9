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

from pathlib import Path
from typing import Any

from airflow_mlops.model.training.checkpoint import Checkpointer
from airflow_mlops.model.training.common import FitResult
from airflow_mlops.model.training.lora import _adapt, _load_adapted, _settings, fit_adapter, local_model_dir
from airflow_mlops.model.training.tokenizers import (
    HashingTokenizer,
    PretrainedTokenizer,
    base_tokenizer,
    saved_tokenizer,
)

DEFAULTS: dict[str, Any] = {
    "base_config": {
        "model_type": "bert", "vocab_size": 2048, "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 128, "max_position_embeddings": 128,
    },
    "max_length": 32, "epochs": 3, "batch_size": 32, "learning_rate": 5e-3, "weight_decay": 0.0,
    "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["query", "value"],
}  # fmt: skip


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
    fitted = fit_adapter(
        model, TextModel(model, meta, tokenizer), ids, y, torch.nn.CrossEntropyLoss(), pad_id=tokenizer.pad_id,
        evaluate=evaluate, p=p, seed=seed, device=device, checkpoint=checkpoint, quantized=quantized, out_dir=out_dir,
    )  # fmt: skip
    return meta, fitted


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
