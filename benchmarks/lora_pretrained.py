"""LoRA on a pretrained base vs the same architecture from random init, on a held-out text task.

The base is pre-trained on this machine (``airflow_mlops.tools.textbase``: a WordPiece tokenizer trained on
shipped text, a small BERT pre-trained with masked-language modelling; nothing from a model hub). The task,
"the <noun> was <adjective>" -> positive or not, is fine-tuned on 10 adjectives of each polarity and tested on
2 others it never labels: only what the base learned in pre-training can tell those apart.

Three fine-tunings through the project's trainer, same data, same epochs and seed:

- ``pretrained``: the pretrained base with its own tokenizer (what ``model.params.base_model_path`` does now);
- ``pretrained, hashing tokenizer``: the same base fed the project's hashing tokenizer (what it did before):
  the ids mean nothing in the base's vocabulary;
- ``random init``: the same architecture built from a config.

Reports accuracy on the unseen adjectives (and on seen ones), per seed, and the CPU seconds of each run.

    python benchmarks/lora_pretrained.py [--seeds 0 1 2 3 4] [--epochs 20]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path
from unittest import mock


def _fine_tune(base: Path | None, vocab: int, epochs: int, seed: int, hashing: bool = False) -> dict:
    from airflow_mlops.model.training import text
    from airflow_mlops.tools import textbase

    params = {
        "epochs": epochs, "batch_size": 32, "learning_rate": 5e-3, "max_length": 16,
        "target_modules": ["query", "key", "value", "dense"],  # LoRA on every projection of the encoder
    }  # fmt: skip
    if base is not None:
        params["base_model_path"] = str(base)
    else:
        params["base_config"] = {**textbase.BERT, "vocab_size": vocab}
    train = textbase.labelled(400, seen=True, seed=1)
    out = Path(tempfile.mkdtemp(prefix="lora-bench-"))
    patch = (  # the behaviour before: every base fed the hashing tokenizer
        mock.patch.object(text, "base_tokenizer", lambda p, v: text.HashingTokenizer(v, int(p["max_length"])))
        if hashing
        else contextlib.nullcontext()
    )
    started = time.process_time()
    with patch:
        meta, _ = text.train(
            train, text="review", target="positive", params=params, seed=seed, out_dir=out, evaluate=lambda m: {}
        )
        model = text.TextModel.load(out, meta)  # with the tokenizer it was trained with
    cpu = time.process_time() - started
    unseen = textbase.labelled(400, seen=False, seed=2)
    seen = textbase.labelled(400, seen=True, seed=5)
    return {
        "unseen_accuracy": float((model.predict(unseen) == unseen["positive"].to_numpy()).mean()),
        "seen_accuracy": float((model.predict(seen) == seen["positive"].to_numpy()).mean()),
        "cpu_seconds": round(cpu, 1),
    }


def main() -> None:
    from airflow_mlops.tools import textbase

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="pre-training and fine-tuning seeds")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        base = Path(tempfile.mkdtemp(prefix="lora-base-")) / "base"
        built = textbase.build(base, seed=seed)
        for name, kw in (
            ("pretrained", {"base": base}),
            ("pretrained, hashing tokenizer", {"base": base, "hashing": True}),
            ("random init", {"base": None}),
        ):
            result = _fine_tune(vocab=built["vocab"], epochs=args.epochs, seed=seed, **kw)
            rows.append({"seed": seed, "run": name, "pretrain_cpu_seconds": round(built["cpu_seconds"], 1), **result})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| seed | run | unseen adjectives | seen adjectives | fine-tuning CPU s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['run']} | {r['unseen_accuracy']:.3f} | {r['seen_accuracy']:.3f} | {r['cpu_seconds']} |")
    print("\n| run | mean unseen accuracy | min | max |")
    print("|---|---|---|---|")
    for name in dict.fromkeys(r["run"] for r in rows):
        acc = [r["unseen_accuracy"] for r in rows if r["run"] == name]
        print(f"| {name} | {sum(acc) / len(acc):.3f} | {min(acc):.3f} | {max(acc):.3f} |")


if __name__ == "__main__":
    main()
