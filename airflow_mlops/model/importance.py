"""Permutation importance: how much of a model's held-out performance each feature carries.

Each feature's column is shuffled (the rest left as they are) and the model scored again on the held-out rows;
the feature's importance is the mean drop of the metric over a few shuffles. Drops are clipped at zero (a
feature whose shuffle does not hurt carries nothing) and normalised to shares that sum to 1, which is what
the drift decision weighs drifted features by (:mod:`airflow_mlops.data.drift.scores`). Computed at test time
on the candidate's held-out rows and stored with the version (tag ``mlops.feature_importance``).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_mlops.model.metrics import drop, evaluate

log = logging.getLogger(__name__)

REPEATS = 3


def model_features(model: Any) -> list[str]:
    """The input columns of a tabular model (empty for other kinds: text models have no per-column inputs)."""
    prep = (getattr(model, "meta", None) or {}).get("preprocessing") or {}
    return [c["column"] for c in (*prep.get("numeric", []), *prep.get("categorical", []))]


def permutation_importance(
    model: Any,
    frame: Any,
    metric: str,
    *,
    features: list[str] | None = None,
    repeats: int = REPEATS,
    seed: int = 0,
) -> dict[str, Any] | None:
    """``{"metric", "baseline", "rows", "drop": {feature: mean drop}, "share": {feature: share}}`` of ``model``
    on ``frame`` (which holds the target), or None when it cannot be measured: no tabular features, a metric
    the model does not produce, or a model that no shuffle hurts (nothing to weigh by)."""
    import numpy as np

    features = list(features if features is not None else model_features(model))
    if not features or frame is None or len(frame) < 2:
        return None
    baseline = evaluate(model, frame).get(metric)
    if baseline is None:
        return None
    rng = np.random.default_rng(seed)
    drops: dict[str, float] = {}
    for feature in features:
        if feature not in frame.columns:
            continue
        shuffled = frame.copy()
        found = []
        for _ in range(repeats):
            shuffled[feature] = frame[feature].to_numpy()[rng.permutation(len(frame))]
            value = evaluate(model, shuffled).get(metric)
            if value is not None:
                found.append(drop(metric, baseline, value))
        drops[feature] = float(np.mean(found)) if found else 0.0
    total = sum(max(d, 0.0) for d in drops.values())
    if total <= 0:
        log.info("permutation importance: no feature's shuffle lowers %s; nothing to weigh drift by", metric)
        return None
    return {
        "metric": metric, "baseline": float(baseline), "rows": int(len(frame)), "repeats": repeats,
        "drop": {f: round(d, 6) for f, d in drops.items()},
        "share": {f: round(max(d, 0.0) / total, 6) for f, d in drops.items()},
    }  # fmt: skip


def importance_table(importance: dict[str, Any]) -> str:
    from airflow_mlops.tables import fmt, format_table

    rows = sorted(importance["share"].items(), key=lambda kv: -kv[1])
    return format_table(
        [(f, fmt(importance["drop"][f]), f"{share * 100:.1f}%") for f, share in rows],
        ("feature", f"{importance['metric']} drop when shuffled", "share"),
    )
