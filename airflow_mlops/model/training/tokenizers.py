"""Tokenizers of the text families: a deterministic hashing tokenizer for a base built from a config (no
vocabulary to fetch), and a pretrained base's own tokenizer (local files only), saved beside the adapter so that
scoring and merging tokenise exactly as training did."""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

from airflow_mlops.model.training.lora import local_model_dir

TOKEN_RE = re.compile(r"[a-z0-9']+")
PAD, CLS = 0, 1

TOKENIZER_DIR = "tokenizer"  # a pretrained base's tokenizer, saved beside the adapter
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model")


def tokenize(texts: list[str], vocab_size: int, max_length: int):
    """Hash each lower-cased word into [2, vocab_size); CLS first, padded with 0."""
    import torch

    ids = torch.zeros((len(texts), max_length), dtype=torch.long)
    for row, text in enumerate(texts):
        words = TOKEN_RE.findall(str(text).lower())[: max_length - 1]
        toks = [CLS] + [2 + zlib.crc32(w.encode()) % (vocab_size - 2) for w in words]
        ids[row, : len(toks)] = torch.tensor(toks)
    return ids


class HashingTokenizer:
    """For a base built from a config (random init, no vocabulary): words hashed into the embedding table."""

    kind = "hashing"
    pad_id = PAD

    def __init__(self, vocab_size: int, max_length: int) -> None:
        self.vocab_size, self.max_length = vocab_size, max_length

    def __call__(self, texts: list[str]) -> Any:
        return tokenize(texts, self.vocab_size, self.max_length)

    def save(self, out_dir: Path) -> None:
        """Nothing to save: the hashing is a function of the vocabulary size in the model's metadata."""


class PretrainedTokenizer:
    """A pretrained base's own tokenizer (``AutoTokenizer``, local files only)."""

    kind = "pretrained"

    def __init__(self, directory: str | Path, max_length: int) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        if self.tokenizer.pad_token_id is None:  # causal LMs often have none: pad with end-of-text
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.max_length = max_length

    def __call__(self, texts: list[str]) -> Any:
        encoded = self.tokenizer(
            [str(t) for t in texts], padding="max_length", truncation=True, max_length=self.max_length,
            return_tensors="pt",
        )  # fmt: skip
        return encoded["input_ids"]

    def save(self, out_dir: Path) -> None:
        self.tokenizer.save_pretrained(str(out_dir / TOKENIZER_DIR))


def check_base_tokenizer(params: dict[str, Any]) -> Path | None:
    """The directory of a pretrained base, which must hold the base's tokenizer; ConfigError otherwise (called
    before the MLflow run starts). None for a base built from a config."""
    from airflow_mlops.errors import ConfigError

    if not params.get("base_model_path"):
        return None
    directory = Path(local_model_dir(params["base_model_path"]))
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise ConfigError(
            [
                f"model.params.base_model_path: {params['base_model_path']} holds no tokenizer (none of "
                f"{', '.join(TOKENIZER_FILES)}); a pretrained base is fine-tuned with its own tokenizer: save it "
                "into the same directory (tokenizer.save_pretrained(path))"
            ],
            "model",
        )
    return directory


def base_tokenizer(params: dict[str, Any], vocab_size: int) -> HashingTokenizer | PretrainedTokenizer:
    """The tokenizer a base is fine-tuned with: a pretrained base's own one, or hashing for a config base."""
    from airflow_mlops.errors import ConfigError

    max_length = int(params["max_length"])
    if not params.get("base_model_path"):
        return HashingTokenizer(vocab_size, max_length)
    tokenizer = PretrainedTokenizer(check_base_tokenizer(params), max_length)
    if len(tokenizer.tokenizer) > vocab_size:
        raise ConfigError(
            [
                f"model.params.base_model_path: the tokenizer in {params['base_model_path']} has "
                f"{len(tokenizer.tokenizer)} tokens, the model's embedding table {vocab_size}: they do not belong "
                "together"
            ],
            "model",
        )
    return tokenizer


def saved_tokenizer(directory: Path, meta: dict[str, Any]) -> HashingTokenizer | PretrainedTokenizer:
    """The tokenizer a model was trained with, from its folder (models from before hold the hashing one)."""
    max_length = int(meta["params"]["max_length"])
    if meta.get("tokenizer") == PretrainedTokenizer.kind:
        return PretrainedTokenizer(directory / TOKENIZER_DIR, max_length)
    return HashingTokenizer(int(meta["vocab_size"]), max_length)
