"""Trainer benchmarks, each against a baseline in the same run.

1. Throughput of the trainer's loop (``airflow_mlops.model.training.common.fit``) vs a plain hand-written torch
   loop, same MLP, same data, same batches (goal: >= 0.95x).
2. Peak memory of LoRA vs full fine-tuning of the same transformer classifier (goal: <= 0.5x), each in a
   fresh process, measured as peak RSS and as the growth of RSS over the loaded model, for two sizes of
   BERT-style encoder (random init): 8 layers x 768 (80.8M parameters) and BERT-large (24 x 1024, 334.8M);
   3 optimizer steps of 8 x 64 tokens. Each size is measured without and with gradient checkpointing
   (``gradient_checkpointing: true``, the same setting on both sides of a comparison).

    .venv/bin/python benchmarks/training.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

ROWS, FEATURES, BATCH, EPOCHS = 200_000, 32, 512, 2


def _data():
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(ROWS, FEATURES, generator=g)
    y = (x[:, :4].sum(dim=1) > 0).long()
    return x, y


def _net():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 2),
    )


def plain_loop(x, y) -> float:
    import torch

    net = _net()
    optim = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(EPOCHS):
        net.train()
        order = torch.randperm(ROWS, generator=gen)
        for s in range(0, ROWS, BATCH):
            idx = order[s : s + BATCH]
            optim.zero_grad(set_to_none=True)
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            optim.step()
            loss.item()
    return ROWS * EPOCHS / (time.perf_counter() - start)


def trainer_loop(x, y) -> float:
    import torch

    from airflow_mlops.model.training.common import fit

    net = _net()
    start = time.perf_counter()
    fit(
        net, x, y, torch.nn.CrossEntropyLoss(), named_params=dict(net.named_parameters()), epochs=EPOCHS,
        batch_size=BATCH, learning_rate=1e-3, seed=0,
    )  # fmt: skip
    return ROWS * EPOCHS / (time.perf_counter() - start)


MEMORY_PROBE = r"""
import json, resource, sys, psutil, torch
from transformers import AutoModelForSequenceClassification
from airflow_mlops.model.training.lora import _ready_for_training
from airflow_mlops.model.training.text import _base_model
from airflow_mlops.model.training.common import fit
mode, checkpointing, size = sys.argv[1], sys.argv[2] == "gc", sys.argv[3]
torch.manual_seed(0)
shapes = {"base8": (768, 8, 12, 3072), "large": (1024, 24, 16, 4096)}[size]
params = {"base_config": {"model_type": "bert", "vocab_size": 30522, "hidden_size": shapes[0],
          "num_hidden_layers": shapes[1], "num_attention_heads": shapes[2], "intermediate_size": shapes[3],
          "max_position_embeddings": 128}}
model = _ready_for_training(_base_model(params, 2), {"gradient_checkpointing": checkpointing}, "cpu",
                            AutoModelForSequenceClassification)
if mode == "lora":
    from peft import LoraConfig, TaskType, get_peft_model
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, target_modules=["query", "value"]))
named = {n: p for n, p in model.named_parameters() if p.requires_grad}
ids = torch.randint(2, 30522, (24, 64), generator=torch.Generator().manual_seed(0))
labels = torch.randint(0, 2, (24,))
class Logits:
    def __call__(self, x): return model(input_ids=x).logits
    def train(self): model.train()
    def eval(self): model.eval()
loaded = psutil.Process().memory_info().rss
fit(Logits(), ids, labels, torch.nn.CrossEntropyLoss(), named_params=named, epochs=1, batch_size=8, learning_rate=1e-4, seed=0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak": peak, "loaded": loaded, "trainable": sum(p.numel() for p in named.values()),
                  "total": sum(p.numel() for p in model.parameters())}))
"""


def memory(mode: str, checkpointing: str, size: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, mode, checkpointing, size],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    x, y = _data()
    plain, ours = [], []
    for _ in range(3):  # interleaved, so drift in machine load hits both alike
        plain.append(plain_loop(x, y))
        ours.append(trainer_loop(x, y))
    p, o = statistics.median(plain), statistics.median(ours)
    print(f"throughput: plain loop {p:,.0f} rows/s, trainer {o:,.0f} rows/s -> {o / p:.3f}x (median of 3, "
          f"{ROWS:,} rows x {FEATURES} features, batch {BATCH}, {EPOCHS} epochs, {torch.get_num_threads()} threads)")  # fmt: skip

    mib = 1024 * 1024
    # same settings on both sides of each comparison; 3 optimizer steps of 8 x 64 tokens each
    for size in ("base8", "large"):
        for checkpointing in ("plain", "gc"):
            full, lora = memory("full", checkpointing, size), memory("lora", checkpointing, size)
            label = f"{size}, {'with' if checkpointing == 'gc' else 'without'} gradient checkpointing"
            grow_full, grow_lora = full["peak"] - full["loaded"], lora["peak"] - lora["loaded"]
            print(f"[{label}] {full['total'] / 1e6:.1f}M parameters (LoRA trains {lora['trainable'] / 1e6:.3f}M): "
                  f"peak RSS full {full['peak'] / mib:,.0f} MiB, LoRA {lora['peak'] / mib:,.0f} MiB -> "
                  f"{lora['peak'] / full['peak']:.2f}x; training memory (peak - loaded model) full "
                  f"{grow_full / mib:,.0f} MiB, LoRA {grow_lora / mib:,.0f} MiB -> {grow_lora / grow_full:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
