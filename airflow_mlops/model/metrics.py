"""Model metrics (scikit-learn), the names the spec uses, and which of them are better lower."""

from __future__ import annotations

from typing import Any

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LANGUAGE_MODELING_METRICS = ("perplexity", "loss")
LOWER_IS_BETTER = ("rmse", "mae", "perplexity", "loss")
COMPARE_MODES = ("improvement", "non_inferiority")  # tests.compare.mode, read alike by the model tests and live
METRICS = {
    "classification": CLASSIFICATION_METRICS,
    "regression": REGRESSION_METRICS,
    "language_modeling": LANGUAGE_MODELING_METRICS,
}
DEFAULT_METRIC = {"classification": "roc_auc", "regression": "rmse", "language_modeling": "perplexity"}


def drop(metric: str, reference: float, value: float) -> float:
    """How far ``value`` fell below ``reference`` (a rise, for a metric that is better lower)."""
    return (value - reference) if metric in LOWER_IS_BETTER else (reference - value)


# Metrics in the target's units: a drop of 0.05 means nothing on an RMSE of 49, so their default is relative.
DEFAULT_DROP: dict[str, float | str] = {"rmse": "5%", "mae": "5%", "perplexity": "5%", "loss": "5%"}
BOUNDED_ABOVE = {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "roc_auc": 1.0, "r2": 1.0}


def tolerated_drop(
    tolerance: float | str | dict[str, float | str] | None, metric: str, reference: float | None = None
) -> float | None:
    """The drop of ``metric`` a ``max_metric_drop`` setting tolerates: one value or per metric, each absolute
    (``0.05``) or relative to the tested ``reference`` (``"5%"``). Unset (None, or a metric the mapping does
    not name): 5% of the reference for metrics in the target's units (rmse, mae), 0.05 for the bounded ones.
    None where a relative tolerance has no reference to be relative to."""
    value = tolerance.get(metric) if isinstance(tolerance, dict) else tolerance
    if value is None:
        value = DEFAULT_DROP.get(metric, 0.05)
    if isinstance(value, str):
        if reference is None:
            return None
        from airflow_mlops.schema import percent_fraction

        return abs(float(reference)) * percent_fraction(value)
    return float(value)


def roc_auc(y_true: Any, score: Any) -> float | None:
    """Binary ROC AUC (scikit-learn); None when only one class is present, where it is undefined."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y_true).astype(bool)
    if y.all() or not y.any():
        return None
    return float(roc_auc_score(y, np.asarray(score, dtype=float)))


def occurring(y_idx: Any, pred: Any, k: int) -> list[int]:
    """The classes (indices below ``k``) a macro average runs over: those in the labels or the predictions
    (scikit-learn's own default). A class with neither has no precision, recall or F1 in these rows; counted
    as 0 it lowered every macro average by 1/k in a window where a rare class did not come up (a false
    performance drift)."""
    import numpy as np

    seen = np.zeros(k, dtype=bool)
    for values in (y_idx, pred):
        v = np.asarray(values)
        seen[v[(v >= 0) & (v < k)]] = True
    return [i for i in range(k) if seen[i]] or list(range(k))


def classification_metrics(y_true: Any, proba: Any, classes: list[Any]) -> dict[str, float]:
    """accuracy, precision, recall, f1 (positive class when binary; otherwise macro averages over the classes
    that occur in the labels or the predictions, :func:`occurring`) and roc_auc (binary; the mean one-vs-rest
    AUC over the classes present otherwise), all from scikit-learn."""
    import numpy as np
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    idx = {c: i for i, c in enumerate(classes)}
    y_idx = np.array([idx.get(v, -1) for v in np.asarray(y_true)])  # -1: a label the model never saw
    proba = np.asarray(proba)
    pred = proba.argmax(axis=1)
    labels = [1] if len(classes) == 2 else occurring(y_idx, pred, len(classes))
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


def standard_errors(y_true: Any, output: Any, task: str, metrics: dict[str, float]) -> dict[str, float]:
    """The sampling standard error of each metric in ``metrics`` measured on these rows (binary
    classification: ``output`` is the positive class's score; regression: the prediction). Proportions use
    the binomial error over the rows they count, ROC AUC Hanley and McNeil's, regression errors the spread of
    the row errors. Live metrics take a drop as real only beyond a multiple of it."""
    import numpy as np

    out: dict[str, float] = {}
    if task == "classification":
        y = np.asarray(y_true).astype(bool)
        pred = np.asarray(output, dtype=float) > 0.5
        n, n1 = len(y), int(y.sum())
        tp, pp = int((y & pred).sum()), int(pred.sum())
        counts = {"accuracy": n, "precision": pp, "recall": n1}
        for metric, rows in counts.items():
            if metric in metrics:
                value = metrics[metric]
                out[metric] = float(np.sqrt(max(value * (1 - value), 0.0) / max(rows, 1)))
        if "f1" in metrics:  # the delta method over the rows' (TP, FP, FN, TN) counts
            wrong = (pp - tp) + (n1 - tp)
            out["f1"] = float(np.sqrt(4 * tp * wrong * (tp + wrong)) / max(2 * tp + wrong, 1) ** 2)
        if "roc_auc" in metrics:
            a, n0 = metrics["roc_auc"], n - n1
            q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
            var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / max(n1 * n0, 1)
            out["roc_auc"] = float(np.sqrt(max(var, 0.0)))
        return out
    y = np.asarray(y_true, dtype=float)
    e = np.asarray(output, dtype=float).reshape(-1) - y
    n = max(len(e), 1)
    se_mse = float(np.std(e * e) / np.sqrt(n))
    if "rmse" in metrics:
        out["rmse"] = se_mse / (2 * metrics["rmse"]) if metrics["rmse"] > 0 else 0.0
    if "mae" in metrics:
        out["mae"] = float(np.std(np.abs(e)) / np.sqrt(n))
    if "r2" in metrics:
        var = float(np.var(y))
        out["r2"] = se_mse / var if var > 0 else 0.0
    return out


def per_class_metrics(y_true: Any, proba: Any, classes: list[Any]) -> dict[str, float]:
    """Each class's precision, recall and f1 (one class against the rest, on the predicted class), named
    ``<metric>_class_<class>``: what a macro average hides. A class that occurs neither in the labels nor in
    the predictions has none (:func:`occurring`)."""
    import numpy as np
    from sklearn.metrics import precision_recall_fscore_support

    idx = {c: i for i, c in enumerate(classes)}
    y_idx = np.array([idx.get(v, -1) for v in np.asarray(y_true)])
    pred = np.asarray(proba).argmax(axis=1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_idx, pred, labels=list(range(len(classes))), average=None, zero_division=0
    )
    out: dict[str, float] = {}
    for i in occurring(y_idx, pred, len(classes)):
        c = classes[i]
        out.update({f"precision_class_{c}": float(precision[i]), f"recall_class_{c}": float(recall[i]),
                    f"f1_class_{c}": float(f1[i])})  # fmt: skip
    return out


def multiclass_standard_errors(
    y_true: Any, proba: Any, classes: list[Any], metrics: dict[str, float]
) -> dict[str, float]:
    """The sampling standard errors of a multiclass model's metrics: accuracy's binomial error, and for the
    macro averages (precision, recall, f1, one-vs-rest ROC AUC) each class's error as :func:`standard_errors`
    gives it for one class against the rest, combined as the error of a mean of K independent terms."""
    import numpy as np

    idx = {c: i for i, c in enumerate(classes)}
    y_idx = np.array([idx.get(v, -1) for v in np.asarray(y_true)])
    proba = np.asarray(proba, dtype=float)
    pred = proba.argmax(axis=1)
    out: dict[str, float] = {}
    if "accuracy" in metrics:
        a = metrics["accuracy"]
        out["accuracy"] = float(np.sqrt(max(a * (1 - a), 0.0) / max(len(y_idx), 1)))
    per: dict[str, list[float]] = {"precision": [], "recall": [], "f1": [], "roc_auc": []}
    for k in occurring(y_idx, pred, len(classes)):  # the classes the macro averages run over
        yk, pk = y_idx == k, pred == k
        tp, pp, n1 = int((yk & pk).sum()), int(pk.sum()), int(yk.sum())
        one = {"precision": tp / pp if pp else 0.0, "recall": tp / n1 if n1 else 0.0}
        one["f1"] = 2 * tp / max(pp + n1, 1)
        auc = roc_auc(yk, proba[:, k])
        if auc is not None:
            one["roc_auc"] = auc
        # standard_errors' binary formulas on this class against the rest (its prediction: argmax == k)
        errors = standard_errors(yk, pk.astype(float), "classification", one)
        if "roc_auc" in one:
            errors["roc_auc"] = standard_errors(yk, proba[:, k], "classification", {"roc_auc": auc})["roc_auc"]
        for metric in per:
            if metric in errors:
                per[metric].append(errors[metric])
    for metric, values in per.items():
        if metric in metrics and values:
            out[metric] = float(np.sqrt(np.sum(np.square(values))) / len(values))
    return out
