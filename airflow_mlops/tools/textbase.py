"""A tiny pretrained text base, built on this machine: nothing comes from a model hub.

Tests and ``benchmarks/lora_pretrained.py`` need a *pretrained* transformer with its own tokenizer to show
that LoRA fine-tuning uses what the base learned. This module ships the text (a generated corpus of short
reviews), builds a WordPiece tokenizer for it with the ``tokenizers`` library, pre-trains a small BERT on it
with masked-language modelling, and saves both with ``save_pretrained`` into one directory, as a real
pretrained base is shipped.

The corpus is built so that pre-training teaches something the fine-tuning task needs: in the unlabelled
reviews each adjective appears with the verbs of its polarity ("the soup was superb and i loved it"), so
masked-language modelling places positive and negative adjectives apart. The labelled task ("the soup was
superb" -> positive) trains on some adjectives and is tested on others that it never labels: only a model
that learned the adjectives' meaning in pre-training can get those right.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

POSITIVE = [
    "great", "excellent", "wonderful", "superb", "lovely", "fantastic", "delightful", "brilliant",
    "pleasant", "terrific", "splendid", "marvelous",
]  # fmt: skip
NEGATIVE = [
    "awful", "terrible", "horrible", "dreadful", "poor", "disappointing", "lousy", "miserable",
    "atrocious", "abysmal", "unpleasant", "appalling",
]  # fmt: skip
NOUNS = ["soup", "service", "room", "film", "book", "meal", "hotel", "concert", "phone", "coffee", "staff", "show"]
POS_VERBS = ["loved", "enjoyed", "adored", "recommend", "liked", "praised"]
NEG_VERBS = ["hated", "regretted", "disliked", "returned", "avoided", "resented"]
SEEN = 10  # adjectives of each polarity the labelled task trains on; the other 2 are only tested

BERT = {
    "model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
    "intermediate_size": 64, "max_position_embeddings": 64,
}  # fmt: skip


def corpus(n: int = 6000, seed: int = 0) -> list[str]:
    """Unlabelled reviews: every adjective with verbs of its polarity."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        positive = rng.random() < 0.5
        adj = rng.choice(POSITIVE if positive else NEGATIVE)
        verb = rng.choice(POS_VERBS if positive else NEG_VERBS)
        noun = rng.choice(NOUNS)
        out.append(
            rng.choice([
                f"the {noun} was {adj} and i {verb} it",
                f"i {verb} the {noun} , it was {adj}",
                f"a {adj} {noun} , we {verb} it",
                f"what a {adj} {noun} , i {verb} every minute",
            ])
        )  # fmt: skip
    return out


def labelled(n: int, *, seen: bool, seed: int) -> Any:
    """The fine-tuning task: ``the <noun> was <adj>`` -> positive (1) or not (0), no verb to give it away;
    ``seen`` draws the adjectives the task trains on, else the ones it never labels."""
    import pandas as pd

    rng = random.Random(seed)
    pos = POSITIVE[:SEEN] if seen else POSITIVE[SEEN:]
    neg = NEGATIVE[:SEEN] if seen else NEGATIVE[SEEN:]
    rows = []
    for _ in range(n):
        label = int(rng.random() < 0.5)
        adj = rng.choice(pos if label else neg)
        rows.append({"review": f"the {rng.choice(NOUNS)} was {adj}", "positive": label})
    return pd.DataFrame(rows)


def tokenizer(texts: list[str], vocab_size: int = 300) -> Any:
    """A WordPiece tokenizer for ``texts``, as a transformers fast tokenizer.

    The vocabulary is built here, not by ``tokenizers``' WordPiece trainer: its merges break ties in hash
    order, so two builds on the same texts gave different ids (and, now and then, a different vocabulary and a
    pre-training that did not transfer). Here it is the special tokens, every character alone and as a
    continuation (``##x``, so an unknown word still splits), then the most frequent words (ties by spelling):
    the same texts always give the same ids."""
    from collections import Counter

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer, splitter = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = Counter(w for t in texts for w, _ in splitter.pre_tokenize_str(normalizer.normalize_str(t)))
    chars = sorted({c for w in words for c in w})
    vocab = special + chars + [f"##{c}" for c in chars]
    vocab += [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if w not in vocab]
    vocab = vocab[:vocab_size]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizer, splitter
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return BertTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]",
    )  # fmt: skip


def build(
    out: Path, *, pretrain_epochs: int = 60, texts: int = 2000, seed: int = 0, architecture: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Pre-train a small BERT (masked-language modelling) with its own tokenizer on :func:`corpus` and save
    both into ``out`` (``save_pretrained``); return what was done (steps, final MLM loss, seconds)."""
    import time

    import torch
    from transformers import AutoConfig, BertForMaskedLM, BertModel, DataCollatorForLanguageModeling

    from airflow_mlops.model.training.common import seed_everything

    started = time.process_time()
    seed_everything(seed)  # deterministic kernels too: a parallel embedding backward sums in any order
    arch = {**BERT, **(architecture or {})}
    texts_ = corpus(texts, seed=seed)
    tok = tokenizer(texts_)
    config = AutoConfig.for_model(
        arch["model_type"], vocab_size=len(tok), pad_token_id=tok.pad_token_id,
        **{k: v for k, v in arch.items() if k != "model_type"},
    )  # fmt: skip
    model = BertForMaskedLM(config)
    collate = DataCollatorForLanguageModeling(tok, mlm_probability=0.15)
    encoded = [tok(t, truncation=True, max_length=32) for t in texts_]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    steps, loss = 0, float("nan")
    for _ in range(pretrain_epochs):
        order = torch.randperm(len(encoded), generator=generator).tolist()
        for start in range(0, len(order), 64):
            batch = collate([encoded[i] for i in order[start : start + 64]])
            out_ = model(**batch)
            out_.loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            steps, loss = steps + 1, float(out_.loss)
    out.mkdir(parents=True, exist_ok=True)
    # The encoder is what a classifier starts from. Masked-language modelling trains no pooler (BERT's came
    # from next-sentence prediction), so the base ships an identity one, tanh([CLS]): a random frozen pooler
    # would saturate and hide what the encoder learned.
    encoder = BertModel(config, add_pooling_layer=True)
    encoder.load_state_dict(model.bert.state_dict(), strict=False)
    with torch.no_grad():
        encoder.pooler.dense.weight.copy_(torch.eye(config.hidden_size))
        encoder.pooler.dense.bias.zero_()
    encoder.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    return {"steps": steps, "mlm_loss": loss, "cpu_seconds": time.process_time() - started, "vocab": len(tok)}
