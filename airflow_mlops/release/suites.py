"""The model test kinds beyond thresholds: slices, fairness, robustness and behavioural expectations.

Each check evaluates the model on the held-out rows (or a perturbed copy of them) and adds rows to the
:class:`~airflow_mlops.release.evaluation.TestReport` (test, expected, observed, pass/fail) plus the numbers behind
them to ``report.details`` for the HTML report. Every perturbation is seeded: the same model and data give
the same verdict on every run.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_mlops.errors import ModelTestError
from airflow_mlops.model.metrics import LOWER_IS_BETTER
from airflow_mlops.tables import fmt

log = logging.getLogger(__name__)

UNSEEN = "__unseen_category__"


def _metric(model: Any, df: Any, metric: str) -> float | None:
    from airflow_mlops.model.metrics import evaluate

    return evaluate(model, df).get(metric)


def score(model: Any, df: Any) -> Any:
    """One number per row whose direction means something: P(positive) for a binary classifier, the
    prediction for a regressor."""
    import numpy as np

    meta = model.meta
    if meta["task"] == "classification":
        if len(meta["classes"]) != 2:
            raise ModelTestError(
                "fairness and directional tests need a binary classifier (or a regressor); this model has "
                f"{len(meta['classes'])} classes. Remove tests.fairness / tests.expectations for it."
            )
        return np.asarray(model.predict_proba(df))[:, 1]
    return np.asarray(model.predict(df), dtype=float).reshape(-1)


def _groups(df: Any, column: str, bins: int | None) -> Any:
    """Group labels of a column: its values, or quantile bins of a numeric column when ``bins`` is set."""
    import pandas as pd

    if column not in df.columns:
        raise ModelTestError(
            f"test column {column!r} is not in the held-out data (columns: {', '.join(map(str, df.columns))}); "
            "fix tests.slices / tests.fairness in the spec"
        )
    values = df[column]
    if bins:
        return pd.qcut(values.astype(float), q=bins, duplicates="drop").astype(str)
    return values.astype(object).where(values.notna(), "<missing>").astype(str)


def check_slices(report: Any, model: Any, df: Any, slices: list[dict[str, Any]]) -> None:
    """Per-segment metrics; the worst segment must reach ``min`` (``max`` for an error metric)."""
    for s in slices:
        column, metric, min_rows = s["column"], s["metric"], int(s.get("min_rows", 30))
        groups = _groups(df, column, s.get("bins"))
        values: dict[str, float] = {}
        skipped: list[str] = []
        for name, part in df.groupby(groups, sort=True, observed=True):
            value = _metric(model, part, metric) if len(part) >= min_rows else None
            if value is None:
                skipped.append(str(name))
            else:
                values[str(name)] = value
        report.details.setdefault("slices", []).append(
            {"column": column, "metric": metric, "values": values, "skipped": skipped}
        )
        if not values:
            report.add(f"slices {column}: worst {metric}", f"segments of >= {min_rows} rows", "none", False)
            continue
        lower = metric in LOWER_IS_BETTER
        worst = (max if lower else min)(values, key=values.get)
        bound = s.get("max") if lower else s.get("min")
        ok = values[worst] <= bound if lower else values[worst] >= bound
        report.add(
            f"slices {column}: worst {metric} ({column}={worst})", f"{'<=' if lower else '>='} {fmt(bound)}",
            values[worst], ok,
        )  # fmt: skip


def fairness_gap(model: Any, df: Any, target: str, group: Any, metric: str) -> tuple[float, dict[str, float]]:
    """(max - min over groups, per-group rate) for demographic parity (rate of positive predictions) or equal
    opportunity (true-positive rate: positive predictions among the rows whose label is positive)."""
    import numpy as np

    positive = model.meta["classes"][1]
    predicted = score(model, df) >= 0.5
    rates: dict[str, float] = {}
    for name in sorted(set(group)):
        mask = np.asarray(group == name)
        if metric == "equal_opportunity_difference":
            mask = mask & np.asarray(df[target] == positive)
        if mask.sum():
            rates[name] = float(predicted[mask].mean())
    if len(rates) < 2:
        return 0.0, rates
    return max(rates.values()) - min(rates.values()), rates


def check_fairness(report: Any, model: Any, df: Any, target: str, rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        group = _groups(df, rule["group"], rule.get("bins"))
        gap, rates = fairness_gap(model, df, target, group, rule["metric"])
        report.details.setdefault("fairness", []).append({**rule, "gap": gap, "rates": rates})
        report.add(
            f"fairness {rule['metric']} across {rule['group']}",
            f"<= {fmt(rule['max'])}",
            gap,
            gap <= rule["max"],
        )


def perturb(df: Any, meta: dict[str, Any], kind: str, *, fraction: float, scale: float, seed: int) -> Any:
    """A perturbed copy of the features: Gaussian noise of ``scale`` standard deviations on numeric
    columns, ``fraction`` of cells set missing, ``fraction`` of categorical values replaced by one never
    seen in training, or (text) ``fraction`` of words with two letters swapped / the case changed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = df.copy()
    numeric = list(meta.get("numeric") or [])
    categorical = list(meta.get("categorical") or [])
    text = meta.get("text")
    n = len(out)
    if kind == "noise":
        for col in numeric:
            v = out[col].astype(float).to_numpy(copy=True)
            std = float(np.nanstd(v[np.isfinite(v)])) if np.isfinite(v).any() else 0.0
            out[col] = v + rng.normal(0.0, scale * std, n)
    elif kind == "missing":
        for col in numeric + categorical + ([text] if text else []):
            mask = rng.random(n) < fraction
            out[col] = (
                out[col]
                .astype(float if col in numeric else object)
                .mask(mask, np.nan if col in numeric else None)
            )
    elif kind == "unseen_category":
        for col in categorical:
            mask = rng.random(n) < fraction
            out[col] = out[col].astype(object).mask(mask, UNSEEN)
    elif kind in ("typo", "case"):
        if not text:
            raise ModelTestError(
                f"robustness perturbation {kind!r} needs a text model; this one has no text column"
            )
        out[text] = [_perturb_text(str(t), kind, fraction, rng) for t in out[text]]
    else:  # the spec parser allows only the kinds above
        raise ValueError(kind)
    return out


def _perturb_text(text: str, kind: str, fraction: float, rng: Any) -> str:
    words = text.split(" ")
    for i, word in enumerate(words):
        if rng.random() >= fraction:
            continue
        if kind == "case":
            words[i] = word.upper() if word.islower() else word.lower()
        elif len(word) > 1:
            j = int(rng.integers(0, len(word) - 1))
            words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    return " ".join(words)


def check_robustness(
    report: Any, model: Any, df: Any, rules: list[dict[str, Any]], base_metrics: dict[str, float], seed: int
) -> None:
    for i, rule in enumerate(rules):
        kind, metric = rule["perturbation"], rule["metric"]
        perturbed = perturb(
            df, model.meta, kind, fraction=float(rule.get("fraction", 0.05)), scale=float(rule.get("scale", 0.1)),
            seed=seed + i,
        )  # fmt: skip
        before, after = base_metrics.get(metric), _metric(model, perturbed, metric)
        if before is None or after is None:
            report.add(f"robustness {kind}: {metric} drop", "metric available", "n/a", False)
            continue
        drop = (after - before) if metric in LOWER_IS_BETTER else (before - after)
        report.details.setdefault("robustness", []).append(
            {**rule, "before": before, "after": after, "drop": drop}
        )
        label = f"robustness {kind} ({_describe(rule)}): {metric} drop"
        report.add(label, f"<= {fmt(rule['max_drop'])}", drop, drop <= rule["max_drop"])


def _describe(rule: dict[str, Any]) -> str:
    if rule["perturbation"] == "noise":
        return f"{rule.get('scale', 0.1)} sd"
    return f"{float(rule.get('fraction', 0.05)):.0%} of values"


def check_expectations(report: Any, model: Any, df: Any, rules: list[dict[str, Any]]) -> None:
    """Directional expectations (raising a feature must not move the score the other way) and invariance
    (changing it must not move the score by more than ``tolerance``)."""
    import numpy as np

    base = score(model, df)
    for rule in rules:
        feature, direction = rule["feature"], rule["direction"]
        if feature not in df.columns:
            raise ModelTestError(f"tests.expectations: feature {feature!r} is not in the held-out data")
        changed = df.copy()
        if "value" in rule:  # set every row to one value (e.g. a categorical that must not matter)
            changed[feature] = rule["value"]
        else:
            changed[feature] = changed[feature].astype(float) + float(rule.get("delta", 1.0))
        delta = score(model, changed) - base
        tol = float(rule.get("tolerance", 1e-6))
        if direction == "increasing":
            bad = delta < -tol
        elif direction == "decreasing":
            bad = delta > tol
        else:
            bad = np.abs(delta) > tol
        share = float(bad.mean()) if len(bad) else 0.0
        report.details.setdefault("expectations", []).append(
            {**rule, "violations": share, "mean_change": float(delta.mean()) if len(delta) else 0.0}
        )
        change = f"= {rule['value']!r}" if "value" in rule else f"+ {rule.get('delta', 1.0)}"
        report.add(
            f"expectation {feature} {change}: score {direction}", f"violations <= {fmt(rule.get('max_violations', 0.0))}",
            share, share <= float(rule.get("max_violations", 0.0)),
        )  # fmt: skip


# -- target leakage ------------------------------------------------------------------------------------------


def _auc(score: Any, positive: Any) -> float | None:
    """ROC AUC of ``score`` for the boolean ``positive`` (Mann-Whitney, ties averaged); None if one class."""
    import numpy as np
    import pandas as pd

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = pd.Series(np.asarray(score, dtype="float64")).rank(method="average").to_numpy()
    return float((ranks[np.asarray(positive, dtype=bool)].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _cross_fit(values: Any, target: Any) -> Any:
    """A categorical feature's per-category mean of ``target``, learnt on one half and applied to the other
    (and back): what the category alone predicts, without scoring its own rows."""
    import numpy as np
    import pandas as pd

    keys = values.astype(str).to_numpy()
    y = np.asarray(target, dtype="float64")
    half = np.arange(len(keys)) % 2 == 0
    out = np.full(len(keys), np.nan)
    for learn, apply in ((half, ~half), (~half, half)):
        means = pd.Series(y[learn]).groupby(keys[learn]).mean()
        out[apply] = pd.Series(keys[apply]).map(means).to_numpy(dtype="float64")
    return np.where(np.isnan(out), np.nanmean(y), out)


def single_feature_score(df: Any, feature: str, target: str, task: str, categorical: bool) -> float | None:
    """How well ``feature`` alone gives the target, 0..1: 1.0 when it equals the target; else the best
    one-vs-rest ROC AUC (classification, folded: 0.5 is chance) or |correlation| (regression)."""
    import numpy as np

    data = df[[feature, target]].dropna()
    if len(data) < 20:
        return None
    x, y = data[feature], data[target]
    if (x.astype(str).to_numpy() == y.astype(str).to_numpy()).all():
        return 1.0
    if task == "classification":
        best = None
        for cls in y.unique()[:20]:
            positive = (y == cls).to_numpy()
            score = _cross_fit(x, positive) if categorical else x.to_numpy(dtype="float64")
            auc = _auc(score, positive)
            if auc is not None:
                best = max(best or 0.0, auc, 1 - auc)
        return best
    yy = y.to_numpy(dtype="float64")
    xx = _cross_fit(x, yy) if categorical else x.to_numpy(dtype="float64")
    if np.std(xx) == 0 or np.std(yy) == 0:
        return None
    return float(abs(np.corrcoef(xx, yy)[0, 1]))


def check_leakage(report: Any, model: Any, df: Any, rule: dict[str, Any]) -> None:
    """Target leakage: a feature that alone gives the target near perfectly (identical, |corr| or ROC AUC at
    or above ``max_score``) fails the model test, named, unless ``allow`` gives it a reason."""
    meta = model.meta
    target, task = meta.get("target"), meta.get("task")
    if not target or target not in df.columns or task not in ("classification", "regression"):
        return
    limit, allow = float(rule.get("max_score", 0.99)), dict(rule.get("allow") or {})
    scores: dict[str, float] = {}
    categorical = set(meta.get("categorical") or [])
    for feature in [*(meta.get("numeric") or []), *(meta.get("categorical") or [])]:
        if feature in df.columns and feature != target:
            value = single_feature_score(df, feature, target, task, feature in categorical)
            if value is not None:
                scores[feature] = value
    report.details["leakage"] = {f: round(v, 4) for f, v in sorted(scores.items(), key=lambda kv: -kv[1])}
    what = "ROC AUC" if task == "classification" else "|correlation|"
    leaking = [f for f, v in scores.items() if v >= limit]
    for feature in leaking:
        if feature in allow:
            report.add(f"leakage {feature}: single-feature {what}", f"allowed: {allow[feature]}", scores[feature], True)
        else:
            report.add(
                f"leakage {feature}: single-feature {what}",
                f"< {fmt(limit)} (a feature this close to the target is leakage: drop it, or allow it in "
                "tests.leakage.allow with a reason)", scores[feature], False,
            )  # fmt: skip
    if scores and not leaking:
        top = max(scores, key=scores.get)
        report.add(f"leakage: best single feature ({top})", f"< {fmt(limit)}", scores[top], True)
