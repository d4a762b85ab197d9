"""Model metrics (scikit-learn), the names the spec uses, and which of them are better lower."""

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


def roc_auc(y_true: Any, score: Any) -> float | None:
    """Binary ROC AUC (scikit-learn); None when only one class is present, where it is undefined."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y_true).astype(bool)
    if y.all() or not y.any():
        return None
    return float(roc_auc_score(y, np.asarray(score, dtype=float)))


def classification_metrics(y_true: Any, proba: Any, classes: list[Any]) -> dict[str, float]:
    """accuracy, precision, recall, f1 (positive class when binary, macro otherwise) and roc_auc (binary; the
    mean one-vs-rest AUC over the classes present otherwise), all from scikit-learn."""
    import numpy as np
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    idx = {c: i for i, c in enumerate(classes)}
    y_idx = np.array([idx.get(v, -1) for v in np.asarray(y_true)])  # -1: a label the model never saw
    proba = np.asarray(proba)
    pred = proba.argmax(axis=1)
    labels = [1] if len(classes) == 2 else list(range(len(classes)))
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_idx, pred, labels=labels, average="macro", zero_division=0
    )
    out: dict[str, float] = {
        "accuracy": float(accuracy_score(y_idx, pred)),
        "precision": float(precision), "recall": float(recall), "f1": float(f1),
    }  # fmt: skip
    if len(classes) == 2:
        auc = roc_auc(y_idx == 1, proba[:, 1])
    else:
        aucs = [a for k in range(len(classes)) if (a := roc_auc(y_idx == k, proba[:, k])) is not None]
        auc = float(np.mean(aucs)) if aucs else None
    if auc is not None:
        out["roc_auc"] = auc
    return out


def regression_metrics(y_true: Any, pred: Any) -> dict[str, float]:
    """rmse, mae and r2 (scikit-learn; r2 is 0 when the target is constant and not predicted exactly)."""
    import numpy as np
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y = np.asarray(y_true, dtype=float)
    p = np.asarray(pred, dtype=float).reshape(-1)
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, p))),
        "mae": float(mean_absolute_error(y, p)),
        "r2": float(r2_score(y, p, force_finite=True)),
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
