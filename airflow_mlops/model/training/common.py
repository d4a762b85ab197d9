"""Pieces shared by the model families: seeding, progress lines, and the training loop with checkpoints."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_mlops.model.training.checkpoint import Checkpointer

log = logging.getLogger("airflow_mlops.trainer")


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"model.params.device={requested!r} but no CUDA GPU is visible to this process")
    return requested


class Progress:
    """Progress lines at a sane rate: at most one every ``every`` seconds, plus the end of each epoch."""

    def __init__(self, total_steps: int, first_step: int = 0, every: float = 5.0) -> None:
        self.total = total_steps
        self.first = first_step
        self.every = every
        self.start = time.perf_counter()
        self.last = 0.0
        self.rows = 0

    def step(self, step: int, epoch: int, epochs: int, loss: float, rows: int, force: bool = False) -> None:
        self.rows += rows
        now = time.perf_counter()
        if not force and now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.start
        rate = self.rows / elapsed if elapsed else 0.0
        done = step - self.first
        eta = (self.total - step) * elapsed / done if done else 0.0
        log.info(
            "epoch %d/%d step %d/%d loss=%.4f rows/s=%.0f elapsed=%.1fs eta=%.1fs",
            epoch, epochs, step, self.total, loss, rate, elapsed, eta,
        )  # fmt: skip

    @property
    def throughput(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.rows / elapsed if elapsed else 0.0


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_step: int | None = None
    steps: int = 0


def _oom_message(batch_size: int, grad_accum: int) -> str:
    return (
        f"GPU out of memory at batch_size={batch_size} (gradient_accumulation_steps={grad_accum}). Lower "
        "model.params.batch_size and raise gradient_accumulation_steps to keep the effective batch, shorten "
        "max_length, lower lora_r, use mixed_precision: bf16, or use QLoRA (quantization: 4bit)."
    )


def fit_settings(
    params: dict[str, Any], seed: int, device: str, checkpoint: Checkpointer | None
) -> dict[str, Any]:
    """The keyword arguments of :func:`fit` that every model family reads from ``model.params``."""
    return {
        "epochs": int(params["epochs"]),
        "batch_size": int(params["batch_size"]),
        "learning_rate": float(params["learning_rate"]),
        "weight_decay": float(params["weight_decay"]),
        "grad_accum": int(params.get("gradient_accumulation_steps", 1)),
        "bf16": params.get("mixed_precision") == "bf16",
        "checkpoint_every": int(params.get("checkpoint_every", 0)),
        "seed": seed,
        "device": device,
        "checkpoint": checkpoint,
    }


def _matches(tensors: dict[str, Any], named_params: dict[str, Any]) -> bool:
    """Whether a checkpoint holds exactly this model's trainable parameters, with the same shapes."""
    saved = {k.removeprefix("param."): v for k, v in tensors.items() if k.startswith("param.")}
    return saved.keys() == named_params.keys() and all(
        tuple(saved[n].shape) == tuple(p.shape) for n, p in named_params.items()
    )


def fit(
    model: Any,
    inputs: Any,
    targets: Any,
    loss_fn: Callable[[Any, Any], Any],
    *,
    named_params: dict[str, Any],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    weight_decay: float = 0.0,
    grad_accum: int = 1,
    device: str = "cpu",
    bf16: bool = False,
    on_epoch: Callable[[int, float], dict[str, float]] | None = None,
    checkpoint: Checkpointer | None = None,
    checkpoint_every: int = 0,
) -> FitResult:
    """AdamW over shuffled mini-batches (a new seeded permutation each epoch).

    With a ``checkpoint``, the state (trainable weights, optimizer, RNG, position in the epoch, history) is
    saved every ``checkpoint_every`` optimizer steps and at the end of every epoch; a run that finds a
    checkpoint resumes from it and produces the same result as one that was never interrupted.
    """
    import torch

    names = list(named_params)
    params = [named_params[n] for n in names]
    optim = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    n = len(inputs)
    batches_per_epoch = (n + batch_size - 1) // batch_size
    steps_per_epoch = (batches_per_epoch + grad_accum - 1) // grad_accum
    result = FitResult()
    start_epoch, skip_batches, step = 1, 0, 0
    resumed_sums = (0.0, 0)

    loaded = checkpoint.load() if checkpoint is not None else None
    if loaded is not None and not _matches(loaded[0], named_params):
        log.warning(
            "the checkpoint found for this run key does not fit this model (other parameters or shapes): "
            "ignoring it and starting from scratch"
        )
        loaded = None
    if loaded is not None:
        tensors, meta = loaded
        with torch.no_grad():
            for name in names:
                named_params[name].copy_(tensors[f"param.{name}"])
        optim_state = {"state": {}, "param_groups": optim.state_dict()["param_groups"]}
        for i, name in enumerate(names):
            keys = [k for k in tensors if k.startswith(f"optim.{name}.")]
            if keys:
                optim_state["state"][i] = {k.rsplit(".", 1)[1]: tensors[k] for k in keys}
        optim.load_state_dict(optim_state)
        torch.set_rng_state(tensors["rng.torch"])
        gen.set_state(tensors["rng.epoch_start"])
        start_epoch, skip_batches, step = meta["epoch"], meta["batch_in_epoch"], meta["step"]
        resumed_sums = (meta["epoch_loss_sum"], meta["epoch_rows"])
        result.history = meta["history"]
        result.resumed_from_step = step
        log.info("resuming from checkpoint at step %d (epoch %d, batch %d)", step, start_epoch, skip_batches)

    def save(
        epoch: int, batch_in_epoch: int, epoch_start_state: Any, sums: tuple[float, int] = (0.0, 0)
    ) -> None:
        if checkpoint is None:
            return
        tensors = {f"param.{name}": named_params[name] for name in names}
        for i, name in enumerate(names):
            for key, value in optim.state_dict()["state"].get(i, {}).items():
                tensors[f"optim.{name}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.epoch_start"] = epoch_start_state
        meta = {
            "epoch": epoch, "batch_in_epoch": batch_in_epoch, "step": step, "history": result.history,
            "epoch_loss_sum": sums[0], "epoch_rows": sums[1],
        }  # fmt: skip
        checkpoint.save(tensors, meta)

    progress = Progress(epochs * steps_per_epoch, first_step=step)
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if bf16 and device.startswith("cuda")
        else None
    )
    for epoch in range(start_epoch, epochs + 1):
        epoch_start_state = gen.get_state()
        order = torch.randperm(n, generator=gen)
        model.train()
        total, count = resumed_sums if epoch == start_epoch else (0.0, 0)
        optim.zero_grad(set_to_none=True)
        for b in range(batches_per_epoch):
            if epoch == start_epoch and b < skip_batches:
                continue
            idx = order[b * batch_size : (b + 1) * batch_size]
            x, y = inputs[idx], targets[idx]
            if device != "cpu":
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            try:
                if autocast is not None:
                    with autocast:
                        loss = loss_fn(model(x), y)
                else:
                    loss = loss_fn(model(x), y)
                (loss / grad_accum if grad_accum > 1 else loss).backward()
            except torch.cuda.OutOfMemoryError as err:
                raise RuntimeError(_oom_message(batch_size, grad_accum)) from err
            value = loss.item()  # one host sync per batch, as any loop that reports its loss
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"loss became {value} at epoch {epoch} step {step + 1}: lower model.params.learning_rate "
                    "or check the input for extreme values"
                )
            total += value * len(y)
            count += len(y)
            if (b + 1) % grad_accum and b + 1 != batches_per_epoch:
                continue
            optim.step()
            optim.zero_grad(set_to_none=True)
            step += 1
            progress.step(step, epoch, epochs, value, len(y) * grad_accum)
            if checkpoint_every and step % checkpoint_every == 0 and b + 1 < batches_per_epoch:
                save(epoch, b + 1, epoch_start_state, (total, count))
        epoch_loss = total / max(count, 1)
        progress.step(step, epoch, epochs, epoch_loss, 0, force=True)
        metrics = {"train_loss": epoch_loss, "rows_per_second": progress.throughput}
        if on_epoch is not None:
            metrics.update(on_epoch(epoch, epoch_loss))
        result.history.append(metrics)
        save(epoch + 1, 0, gen.get_state())
    result.steps = step
    return result
