"""PEFT/LoRA fine-tuning of a causal language model on a text column (next-token loss); ``predict`` gives each
row's mean token loss, and the model tests report loss and perplexity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_mlops.model.training.checkpoint import Checkpointer
from airflow_mlops.model.training.common import FitResult
from airflow_mlops.model.training.lora import _adapt, _load_adapted, _settings, fit_adapter, local_model_dir
from airflow_mlops.model.training.tokenizers import PAD, HashingTokenizer, base_tokenizer, saved_tokenizer

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
    fitted = fit_adapter(
        model, CausalLMModel(model, meta, tokenizer), ids, ids, functools.partial(lm_loss, pad_id=tokenizer.pad_id),
        pad_id=tokenizer.pad_id, evaluate=evaluate, p=p, seed=seed, device=device, checkpoint=checkpoint,
        quantized=quantized, out_dir=out_dir,
    )  # fmt: skip
    return meta, fitted
