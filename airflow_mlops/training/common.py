"""Pieces shared by the model families: seeding, progress lines, the training loop."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("airflow_mlops.trainer")


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


class Progress:
    """Progress lines at a sane rate: at most one every ``every`` seconds, plus the end of each epoch."""

    def __init__(self, total_steps: int, every: float = 5.0) -> None:
        self.total = total_steps
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
        eta = (self.total - step) * elapsed / step if step else 0.0
        log.info(
            "epoch %d/%d step %d/%d loss=%.4f rows/s=%.0f elapsed=%.1fs eta=%.1fs",
            epoch, epochs, step, self.total, loss, rate, elapsed, eta,
        )  # fmt: skip

    @property
    def throughput(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.rows / elapsed if elapsed else 0.0


def shuffled_batches(inputs: Any, targets: Any, batch_size: int, seed: int) -> Callable[[int], Any]:
    """``batches(epoch)`` for :func:`fit`: a new seeded permutation every epoch."""
    import torch

    gen = torch.Generator().manual_seed(seed)

    def batches(_epoch: int):
        order = torch.randperm(len(inputs), generator=gen)
        for s in range(0, len(inputs), batch_size):
            idx = order[s : s + batch_size]
            yield inputs[idx], targets[idx]

    return batches


def fit(
    model: Any,
    batches: Callable[[int], Any],
    loss_fn: Callable[[Any, Any], Any],
    *,
    params: list[Any],
    epochs: int,
    steps_per_epoch: int,
    learning_rate: float,
    weight_decay: float = 0.0,
    on_epoch: Callable[[int, float], dict[str, float]] | None = None,
) -> list[dict[str, float]]:
    """A plain AdamW loop; ``batches(epoch)`` yields (inputs, targets). Returns per-epoch metric dicts."""
    import torch

    optim = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    progress = Progress(epochs * steps_per_epoch)
    history = []
    step = 0
    for epoch in range(1, epochs + 1):
        model.train()
        total, count = 0.0, 0
        for inputs, targets in batches(epoch):
            optim.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs), targets)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at epoch {epoch} step {step + 1}: lower model.params.learning_rate "
                    "or check the input for extreme values"
                )
            loss.backward()
            optim.step()
            step += 1
            n = len(targets)
            total += loss.item() * n
            count += n
            progress.step(step, epoch, epochs, loss.item(), n)
        epoch_loss = total / max(count, 1)
        progress.step(step, epoch, epochs, epoch_loss, 0, force=True)
        metrics = {"train_loss": epoch_loss, "rows_per_second": progress.throughput}
        if on_epoch is not None:
            metrics.update(on_epoch(epoch, epoch_loss))
        history.append(metrics)
    return history
