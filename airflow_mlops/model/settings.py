"""A model's settings, typed: the ``model`` section of a spec and the ``model`` argument of the training
operators are the same thing, checked the same way, before anything trains.

:func:`check_model` validates a ``{"kind", "task", "params"}`` mapping (a hand-written DAG's, or one with a
run's ``model_params`` overrides merged in) and returns it normalised; a problem is a :class:`ConfigError`
naming the key (``model.params.epochs: found 'ten'; allowed: an integer``), which the operators fail on at
once, without a retry and before an MLflow run exists.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from airflow_mlops.errors import ConfigError
from airflow_mlops.schema import ColumnName, NonNegativeInt, PositiveInt, Section, allowed_text, shown

Device = Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")]


class TrainingParams(Section):
    """Settings every model family reads (``model.params``)."""

    epochs: PositiveInt | None = Field(None, description="passes over the training rows")
    batch_size: PositiveInt | None = Field(None, description="rows per optimiser step (per device)")
    learning_rate: Annotated[float, Field(gt=0, le=10)] | None = Field(
        None, description="AdamW learning rate"
    )
    weight_decay: Annotated[float, Field(ge=0)] | None = Field(None, description="AdamW weight decay")
    gradient_accumulation_steps: PositiveInt | None = Field(None, description="micro-batches per step")
    mixed_precision: Literal["none", "bf16"] | None = Field(None, description="bf16 autocast on CUDA")
    checkpoint_every: NonNegativeInt | None = Field(
        None, description="optimiser steps between resumable checkpoints (0: at epoch ends only)"
    )
    device: Device | None = Field(None, description="auto | cpu | cuda | cuda:N")


class TabularParams(TrainingParams):
    """``model.params`` of ``kind: tabular`` (an MLP over scaled numeric and one-hot categorical inputs)."""

    hidden_units: list[PositiveInt] | None = Field(None, description="hidden layer widths, e.g. [64, 32]")
    dropout: Annotated[float, Field(ge=0, lt=1)] | None = Field(None, description="dropout after each layer")
    max_categories: PositiveInt | None = Field(None, description="most one-hot levels per categorical column")


class LoraParams(TrainingParams):
    """``model.params`` of the LoRA kinds (a base model built from a config, or loaded from local files)."""

    base_config: dict[str, Any] | None = Field(
        None, description="transformers config of a randomly initialised base (nothing is downloaded)"
    )
    base_model_path: str | None = Field(
        None, min_length=1, description="a local directory (or URL) holding a pretrained base model"
    )
    max_length: Annotated[int, Field(ge=2)] | None = Field(None, description="tokens per text")
    lora_r: PositiveInt | None = Field(None, description="LoRA rank")
    lora_alpha: PositiveInt | None = Field(None, description="LoRA scaling")
    lora_dropout: Annotated[float, Field(ge=0, lt=1)] | None = Field(None, description="LoRA dropout")
    target_modules: list[ColumnName] | None = Field(None, description="modules that get an adapter")
    modules_to_save: list[ColumnName] | None = Field(
        None,
        description="modules trained in full and saved with the adapter, e.g. [lm_head] for a base built from a config",
    )
    quantization: Literal["none", "4bit"] | None = Field(
        None,
        description="4bit = QLoRA: NF4 base weights with double quantisation and bf16 compute through bitsandbytes (the qlora extra); CUDA only, on a CPU it stops saying so",
    )
    gradient_checkpointing: bool | None = Field(
        None,
        description="recompute activations in the backward pass: less memory, about a third more compute, same result",
    )


class _ModelBase(Section):
    def params_dict(self) -> dict[str, Any]:
        """The params the spec sets (defaults stay the trainer's): this is what the run key hashes."""
        return self.params.model_dump(exclude_unset=True)  # type: ignore[attr-defined]


class TabularModel(_ModelBase):
    kind: Literal["tabular"] = "tabular"
    """a torch MLP over scaled numeric and one-hot categorical columns"""
    task: Literal["classification", "regression"] = "classification"
    """classification or regression"""
    params: TabularParams = Field(default_factory=TabularParams)
    """training settings of the MLP (the trainer's defaults apply to keys left out)"""


class LoraTextModel(_ModelBase):
    kind: Literal["lora_text"]
    """PEFT/LoRA on a transformer sequence classifier"""
    task: Literal["classification"] = Field(
        "classification", description="lora_text fine-tunes a sequence classifier"
    )
    params: LoraParams = Field(default_factory=LoraParams)
    """LoRA settings (the trainer's defaults apply to keys left out)"""


class LoraCausalLmModel(_ModelBase):
    kind: Literal["lora_causal_lm"]
    """PEFT/LoRA fine-tuning of a causal language model on features.text; target may be omitted"""
    task: Literal["language_modeling"] = "language_modeling"
    """language_modeling (metrics perplexity, loss)"""
    params: LoraParams = Field(default_factory=LoraParams)
    """LoRA settings (the trainer's defaults apply to keys left out)"""


MODEL_KINDS = ("tabular", "lora_text", "lora_causal_lm")


def _model_kind(value: Any) -> str | None:
    kind = value.get("kind", "tabular") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in MODEL_KINDS else None


ModelSpec = Annotated[
    Annotated[TabularModel, Tag("tabular")]
    | Annotated[LoraTextModel, Tag("lora_text")]
    | Annotated[LoraCausalLmModel, Tag("lora_causal_lm")],
    Discriminator(
        _model_kind,
        custom_error_type="model_kind",
        custom_error_message="unknown model kind",
    ),
]


class _Wrapped(BaseModel):
    """``model`` as a key, so problems read ``model.params.epochs`` as in a spec."""

    model_config = ConfigDict(extra="forbid", strict=True)
    model: ModelSpec


def _section(kind: str, parts: list[str]) -> type[BaseModel] | None:
    section: Any = {"tabular": TabularModel, "lora_text": LoraTextModel, "lora_causal_lm": LoraCausalLmModel}[kind]
    for part in parts:
        field = section.model_fields.get(part) if section is not None else None
        annotation = field.annotation if field is not None else None
        section = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return section


def check_model(model: Any, where: str = "model") -> dict[str, Any]:
    """``model`` checked as a spec's ``model`` section and normalised to ``{"kind", "task", "params"}`` (params
    as given: the trainer's defaults apply to keys left out). :class:`ConfigError` lists every problem."""
    if not isinstance(model, Mapping):
        raise ConfigError([f"model: found {type(model).__name__}; allowed: a mapping of kind, task and params"], where)
    try:
        checked = _Wrapped.model_validate({"model": dict(model)}).model
    except ValidationError as err:
        kind = _model_kind(model) or "tabular"
        problems = []
        for e in err.errors(include_url=False):
            parts = [str(p) for p in e["loc"][1:] if not isinstance(p, int) and p not in MODEL_KINDS]
            key = ".".join(["model", *parts])
            if e["type"] == "model_kind":
                problems.append(f"model.kind: found {model.get('kind')!r}; allowed: {' | '.join(MODEL_KINDS)}")
            elif e["type"] == "extra_forbidden":
                section = _section(kind, parts[:-1])
                known = sorted(section.model_fields) if section is not None else []
                close = difflib.get_close_matches(parts[-1], known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"{key}: unknown key{hint}; allowed keys: {', '.join(known)}")
            elif e["type"] == "missing":
                problems.append(f"{key}: missing; it is required")
            else:
                problems.append(f"{key}: found {shown(e.get('input'))!r}; allowed: {allowed_text(e)}")
        raise ConfigError(list(dict.fromkeys(problems)), where) from None
    return {"kind": checked.kind, "task": checked.task, "params": checked.params_dict()}
