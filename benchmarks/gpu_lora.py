"""LoRA fine-tuning throughput and model FLOPs utilisation (MFU) of a ~0.5B-parameter decoder in bf16.

The model is a Qwen2-style decoder built from a config (random init: nothing is downloaded), 0.49B
parameters; LoRA (r=16) on every attention and MLP projection; causal-LM loss on random tokens. Needs a
CUDA GPU; ``--smoke`` runs a tiny config on the CPU only to check that the script works (no numbers).

MFU counts model FLOPs per token as 6N + 12 * layers * hidden * seq (the usual training convention), and
also reports the hardware FLOPs LoRA actually performs (4N: frozen weights get no weight gradient).

    python benchmarks/gpu_lora.py [--batch 8 --seq 2048 --steps 30 --peak-tflops 989]
"""

from __future__ import annotations

import argparse
import json
import time

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}
CONFIG_05B = {
    "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
    "num_attention_heads": 14, "num_key_value_heads": 2, "max_position_embeddings": 4096, "tie_word_embeddings": True,
}  # fmt: skip
CONFIG_SMOKE = {
    "vocab_size": 1024, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256, "tie_word_embeddings": True,
}  # fmt: skip


def main() -> None:
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 dense peak of the GPU")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU: checks the script only")
    args = parser.parse_args()

    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "no CUDA GPU: this benchmark measures GPU throughput (use --smoke to test the script)"
        )
    config = Qwen2Config(**(CONFIG_SMOKE if args.smoke else CONFIG_05B), attn_implementation="sdpa")
    batch, seq, steps, warmup = (
        (2, 64, 3, 1) if args.smoke else (args.batch, args.seq, args.steps, args.warmup)
    )
    torch.manual_seed(0)
    dtype = torch.float32 if args.smoke else torch.bfloat16
    model = Qwen2ForCausalLM(config).to(device=device, dtype=dtype)
    n_params = sum(p.numel() for p in model.parameters())
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(
        model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=16, lora_alpha=32, target_modules=targets)
    )
    if args.gradient_checkpointing:  # saves memory, but recomputation adds FLOPs that MFU does not count
        model.gradient_checkpointing_enable()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(trainable, lr=1e-4)
    tokens = torch.randint(0, config.vocab_size, (batch, seq), device=device)

    def step() -> float:
        loss = model(input_ids=tokens, labels=tokens).loss
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens_per_s = batch * seq * steps / seconds
    flops_per_token = 6 * n_params + 12 * config.num_hidden_layers * config.hidden_size * seq
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    result = {
        "device": name, "parameters": n_params, "trainable": sum(p.numel() for p in trainable), "batch": batch,
        "seq": seq, "steps": steps, "tokens_per_s": round(tokens_per_s, 1),
        "model_tflops": round(tokens_per_s * flops_per_token / 1e12, 2),
        "lora_hardware_tflops": round(tokens_per_s * (4 * n_params) / 1e12, 2),
        "peak_tflops": peak,
        "mfu": round(tokens_per_s * flops_per_token / (peak * 1e12), 4) if peak else None,
        "max_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
    }  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
