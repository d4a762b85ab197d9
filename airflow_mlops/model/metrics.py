"""Model metrics in plain NumPy (no scikit-learn needed at run time)."""

from __future__ import annotations

from typing import Any

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LANGUAGE_MODELING_METRICS = ("perplexity", "loss")
LOWER_IS_BETTER = ("rmse", "mae", "perplexity", "loss")
METRICS = {
    "classification": CLASSIFICATION_METRICS,
    "regression": REGRESSION_METRICS,
    "language_modeling": LANGUAGE_MODELING_METRICS,
}
DEFAULT_METRIC = {"classification": "roc_auc", "regression": "rmse", "language_modeling": "perplexity"}


def _average_ranks(x: Any) -> Any:
    import numpy as np

    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    sorted_x = x[order]
    boundaries = np.flatnonzero(np.diff(sorted_x)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(x)]))
    for s, e in zip(starts, ends, strict=False):
        ranks[order[s:e]] = (s + e - 1) / 2 + 1
    return ranks


def roc_auc(y_true: Any, score: Any) -> float | None:
    """Binary ROC AUC (Mann-Whitney U, ties averaged); None when only one class is present."""
    import numpy as np

    y = np.asarray(y_true).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(np.asarray(score, dtype=float))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_metrics(y_true: Any, proba: Any, classes: list[Any]) -> dict[str, float]:
    """accuracy, precision, recall, f1 (positive class when binary, macro otherwise) and roc_auc."""
    import numpy as np

    y = np.asarray(y_true)
    idx = {c: i for i, c in enumerate(classes)}
    y_idx = np.array([idx.get(v, -1) for v in y])
    pred = np.asarray(proba).argmax(axis=1)
    out: dict[str, float] = {"accuracy": float((pred == y_idx).mean())}
    labels = [1] if len(classes) == 2 else list(range(len(classes)))
    precisions, recalls, f1s = [], [], []
    for k in labels:
        tp = float(((pred == k) & (y_idx == k)).sum())
        fp = float(((pred == k) & (y_idx != k)).sum())
        fn = float(((pred != k) & (y_idx == k)).sum())
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        precisions.append(p)
        recalls.append(r)
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    out.update(precision=float(np.mean(precisions)), recall=float(np.mean(recalls)), f1=float(np.mean(f1s)))
    if len(classes) == 2:
        auc = roc_auc(y_idx == 1, np.asarray(proba)[:, 1])
    else:
        aucs = [roc_auc(y_idx == k, np.asarray(proba)[:, k]) for k in range(len(classes))]
        aucs = [a for a in aucs if a is not None]
        auc = float(np.mean(aucs)) if aucs else None
    if auc is not None:
        out["roc_auc"] = auc
    return out


def regression_metrics(y_true: Any, pred: Any) -> dict[str, float]:
    import numpy as np

    y = np.asarray(y_true, dtype=float)
    p = np.asarray(pred, dtype=float).reshape(-1)
    err = p - y
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt((err**2).mean())),
        "mae": float(np.abs(err).mean()),
        "r2": float(1 - (err**2).sum() / ss_tot) if ss_tot else 0.0,
    }


def evaluate(model: Any, df: Any) -> dict[str, float]:
    """Metrics of ``model`` on ``df`` (which holds the target column)."""
    meta = model.meta
    y = df[meta["target"]].to_numpy() if meta["task"] != "language_modeling" else None
    if meta["task"] == "classification":
        return classification_metrics(y, model.predict_proba(df), meta["classes"])
    if meta["task"] == "language_modeling":
        return model.lm_metrics(df)
    return regression_metrics(y, model.predict(df))
