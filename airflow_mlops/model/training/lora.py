"""LoRA mechanics both text families share: the base saved beside its adapter (weights and architecture), the
adapter attached and trained through the generic loop, QLoRA's 4-bit base on a GPU, a base directory fetched
from an object store, and the adapted model loaded back for inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_mlops.model.training.common import fit, fit_settings, pick_device, seed_everything

BASE_WEIGHTS = "base.safetensors"
BASE_CONFIG = "base_config.json"  # the architecture actually trained, whatever the base came from
ADAPTER_DIR = "adapter"


class _Logits:
    """Callable wrapper so the generic loop can call ``model(ids)``."""

    def __init__(self, peft_model: Any, pad_id: int = 0) -> None:  # 0: the hashing tokenizer's padding
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


def fit_adapter(
    model: Any, wrapped: Any, ids: Any, targets: Any, loss: Any, *, pad_id: int, evaluate: Any, p: dict[str, Any],
    seed: int, device: str, checkpoint: Any, quantized: bool, out_dir: Path,
) -> Any:  # fmt: skip
    """Train the adapter through the generic loop (``evaluate(wrapped)`` after each epoch), then save it as
    safetensors under ``ADAPTER_DIR``; returns the loop's result. Both text families end their training here."""
    def on_epoch(_epoch: int, _loss: float) -> dict[str, float]:
        model.eval()
        return evaluate(wrapped)

    fitted = fit(
        _Logits(model, pad_id), ids, targets, loss, named_params=_trainable(model), on_epoch=on_epoch,
        **fit_settings(p, seed, device, checkpoint),
    )  # fmt: skip
    model.eval()
    if not quantized:  # 4-bit weights stay on the GPU; the adapter is saved from there
        model.to("cpu")
    model.save_pretrained(str(out_dir / ADAPTER_DIR), safe_serialization=True)
    return fitted
