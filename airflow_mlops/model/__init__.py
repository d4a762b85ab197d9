"""Model: the trainer process and its model families, the on-disk model format and its verified loading,
metrics and hyper-parameter search."""

from __future__ import annotations

TRAIN_EXTRA = {"tabular": ("torch", "safetensors"), "text": ("torch", "safetensors", "peft", "transformers")}


def require_train_extra(kind: str) -> None:
    """Fail with the fix when this process lacks what training or loading a ``kind`` model needs.

    torch, peft and transformers are airflow-mlops's ``[train]`` extra: the workers (and training images)
    need it; the scheduler, API server, dag-processor and triggerer never import it.
    """
    from importlib.util import find_spec

    from airflow_mlops.errors import TrainingError

    family = "tabular" if kind == "tabular" else "text"
    missing = [module for module in TRAIN_EXTRA[family] if find_spec(module) is None]
    if missing:
        raise TrainingError(
            f"{kind} models need {', '.join(missing)}, which this Python environment lacks: install "
            "airflow-mlops with its training extra where tasks train or score, "
            "pip install 'airflow-mlops[train]' (the workers and training images; not the scheduler, "
            "API server, dag-processor or triggerer)"
        )
