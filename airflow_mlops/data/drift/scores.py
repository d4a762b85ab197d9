"""Drift scoring from two whylogs profiles, decided on effect sizes.

Sketch-based p-values flag drift on identical distributions once partitions reach about a million rows, so
decisions here use effect sizes instead: the Kolmogorov-Smirnov distance computed from the KLL sketches for
numeric features, the Hellinger distance over frequent items (with an "other" bucket) for categorical ones.
A sample-size-aware floor keeps small partitions from false-alarming: a feature drifts only when its effect
exceeds both the configured threshold and what sampling noise alone would produce (alpha = 0.001).
PSI is reported beside each score for people used to it. Scoring costs the same at every partition size.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from airflow_mlops.tables import fmt, format_table

if TYPE_CHECKING:
    from whylogs.core import DatasetProfileView

log = logging.getLogger(__name__)

Z_999 = 3.0902  # one-sided normal quantile for alpha = 0.001
Z_9999 = 3.7190  # alpha = 0.0001: sparse tables, where the chi-square approximation's tail is too light
Z_99999 = 4.2649  # alpha = 0.00001: PSI on sparse tables (a category seen on one side only weighs heavily)
SPARSE_ROWS_PER_LEVEL = 30
KS_C_999 = 1.9495  # sqrt(-ln(0.001 / 2) / 2): two-sample KS critical constant for alpha = 0.001
EPS = 1e-4
OTHER = "__other__"
MIN_CELL = 10


@dataclasses.dataclass(frozen=True)
class NumericRule:
    """How numeric features are decided: ``metric`` (``ks`` or ``psi``) and each metric's threshold."""

    metric: Literal["ks", "psi"] = "ks"
    ks: float = 0.05
    psi: float = 0.1


@dataclasses.dataclass(frozen=True)
class CategoricalRule:
    """How categorical features are decided: ``metric`` (``hellinger`` or ``psi``) and the thresholds."""

    metric: Literal["hellinger", "psi"] = "hellinger"
    hellinger: float = 0.05
    psi: float = 0.1


@dataclasses.dataclass(frozen=True)
class FeatureRule:
    """One feature's own metric and/or threshold (unset: its kind's)."""

    metric: Literal["ks", "hellinger", "psi"] | None = None
    threshold: float | None = None


@dataclasses.dataclass(frozen=True)
class DriftPolicy:
    """What counts as drift, one value from the spec's ``drift`` section to the sensor to :func:`score_drift`.

    The names are the spec's: ``numeric.{metric, ks, psi}``, ``categorical.{metric, hellinger, psi}``,
    ``decision``, ``importance_share``, ``drift_share``, ``min_rows`` and ``features.<name>.{metric, threshold}``.

    ``decision: importance`` (the default): the data set drifts when its drifted features together carry at
    least ``importance_share`` of the champion's permutation importance (:mod:`airflow_mlops.model.importance`),
    so one important feature can decide and any number of irrelevant ones cannot. Where the champion has no
    recorded importance (a version registered before it was measured, a text model) the decision falls back
    to ``drift_share`` and the report says so. ``decision: share``: the share of drifted features decides. The
    KS and Hellinger defaults
    (0.05) flag effects of about a 0.15 standard-deviation mean shift: a 0.2-sd shift gives KS 0.080 and
    Hellinger 0.067-0.071. PSI, where it decides, is bias-corrected; its conventional threshold 0.1 means a
    moderate shift (a 0.2-sd mean shift gives a decile PSI of about 0.035).
    """

    numeric: NumericRule = dataclasses.field(default_factory=NumericRule)
    categorical: CategoricalRule = dataclasses.field(default_factory=CategoricalRule)
    decision: Literal["importance", "share"] = "importance"
    importance_share: float = 0.2
    drift_share: float = 0.3
    min_rows: int = 100
    features: Mapping[str, FeatureRule] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, value: DriftPolicy | Mapping[str, Any] | None) -> DriftPolicy:
        """From the spec's ``drift`` mapping (its ``sensor`` settings are ignored); unknown keys raise."""
        if value is None:
            return cls()
        if isinstance(value, DriftPolicy):
            return value

        def build(kind: type, data: Any, where: str) -> Any:
            if isinstance(data, kind):
                return data
            if not isinstance(data, Mapping):
                raise ValueError(f"drift policy {where}: expected a mapping, got {data!r}")
            allowed = {f.name for f in dataclasses.fields(kind)}
            unknown = sorted(set(data) - allowed)
            if unknown:
                raise ValueError(
                    f"drift policy {where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}"
                )
            return kind(**data)

        data = {k: v for k, v in value.items() if k != "sensor"}
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(
                f"drift policy: unknown key(s) {unknown}; allowed: numeric, categorical, decision, "
                "importance_share, drift_share, min_rows, features"
            )
        decision = str(data.get("decision", cls.decision))
        if decision not in ("importance", "share"):
            raise ValueError(f"drift policy decision: {decision!r}; allowed: 'importance', 'share'")
        return cls(
            numeric=build(NumericRule, data.get("numeric", {}), "numeric"),
            categorical=build(CategoricalRule, data.get("categorical", {}), "categorical"),
            decision=decision,  # type: ignore[arg-type]
            importance_share=float(data.get("importance_share", cls.importance_share)),
            drift_share=float(data.get("drift_share", cls.drift_share)),
            min_rows=int(data.get("min_rows", cls.min_rows)),
            features={
                name: build(FeatureRule, rule, f"features.{name}")
                for name, rule in (data.get("features") or {}).items()
            },
        )

    def as_dict(self) -> dict[str, Any]:
        """The spec's shape: what :meth:`from_dict` reads back (for XCom, logs and MLflow params)."""
        return dataclasses.asdict(self)

    def rule(self, feature: str, kind: str) -> tuple[str, float]:
        """The deciding metric and threshold of ``feature`` (``kind``: numeric or categorical)."""
        own = self.features.get(feature) or FeatureRule()
        base = self.numeric if kind == "numeric" else self.categorical
        metric = own.metric or base.metric
        threshold = own.threshold if own.threshold is not None else getattr(base, metric)
        return metric, float(threshold)


def ks_floor(n: float, m: float, sketch_error: float = 0.0) -> float:
    """What sampling noise alone gives (alpha = 0.001), plus what the two KLL sketches can be off by."""
    return KS_C_999 * math.sqrt((n + m) / (n * m)) + sketch_error


def _kll_error(kll: Any) -> float:
    """The sketch's normalised rank error (99% confidence); 0 while it still holds every value."""
    return float(kll.normalized_rank_error(False)) if kll.is_estimation_mode() else 0.0


@functools.lru_cache(maxsize=4096)
def _chi2_quantile(levels: int, z: float = Z_999) -> float:
    """Upper quantile of a chi-square with (levels - 1) degrees of freedom, at the tail probability of the
    normal quantile ``z`` (``z`` = 3.09: alpha = 0.001)."""
    from scipy.stats import chi2, norm

    return float(chi2.isf(norm.sf(z), max(levels - 1, 1)))


def _hellinger_floor(n: float, m: float, levels: int) -> float:
    """Noise floor of the bias-corrected Hellinger distance (alpha = 0.001).

    Under no drift 8 * n_eff * H^2 follows a chi-square with (levels - 1) degrees of freedom, so the plug-in
    H^2 is biased upwards by (levels - 1) / (8 n_eff): at 1,000 levels and 10,000 rows a side, identical data
    score H = 0.16. The score used is H^2 minus that bias; its floor is the chi-square quantile minus its mean.
    """
    n_eff = n * m / (n + m)
    # with few rows per category (both sides together) the distance's tail is heavier than the chi-square's
    z = Z_9999 if (n + m) / max(levels, 1) < SPARSE_ROWS_PER_LEVEL else Z_999
    return math.sqrt(max(_chi2_quantile(levels, z) - (levels - 1), 0.0) / (8 * n_eff))


def _hellinger_corrected(h: float, n: float, m: float, levels: int) -> float:
    n_eff = n * m / (n + m)
    return math.sqrt(max(h * h - (levels - 1) / (8 * n_eff), 0.0))


def _psi_bias(n: float, m: float, bins: int) -> float:
    """What PSI is on average with no drift at all: (bins - 1) (1/n + 1/m) (n PSI is about chi-square)."""
    return max(bins - 1, 0) * (1 / n + 1 / m)


def _psi_floor(n: float, m: float, bins: int, sketch_error: float = 0.0) -> float:
    """Noise floor of the bias-corrected PSI (alpha = 0.001), plus what the sketches' rank error can move the
    bin shares by (numeric features: each bin edge is off by at most the sum of the two rank errors)."""
    z = Z_99999 if (n + m) / max(bins, 1) < SPARSE_ROWS_PER_LEVEL else Z_999
    noise = max(_chi2_quantile(bins, z) - (bins - 1), 0.0) * (1 / n + 1 / m)
    # a bin share off by up to 2 * sketch_error (two edges) adds up to bins * (2 e)^2 / (1 / bins) to the sum
    return noise + bins * bins * (2 * sketch_error) ** 2


def _psi(p: list[float], q: list[float]) -> float:
    total = 0.0
    for a, b in zip(p, q, strict=False):
        a, b = max(a, EPS), max(b, EPS)
        total += (b - a) * math.log(b / a)
    return total


def _numeric_scores(ref_kll: Any, cur_kll: Any) -> tuple[float, float, int]:
    """KS distance, decile PSI and the number of PSI bins between two KLL sketches, from at most ~200 CDF
    evaluations."""
    grid = [i / 100 for i in range(1, 100)]
    points = sorted({*ref_kll.get_quantiles(grid), *cur_kll.get_quantiles(grid)})
    points = [p for p in points if math.isfinite(p)]
    if not points:
        return 0.0, 0.0, 1
    cdf_r = ref_kll.get_cdf(points)[:-1]
    cdf_c = cur_kll.get_cdf(points)[:-1]
    ks = max(abs(a - b) for a, b in zip(cdf_r, cdf_c, strict=False))
    edges = sorted({p for p in ref_kll.get_quantiles([i / 10 for i in range(1, 10)]) if math.isfinite(p)})
    if not edges:
        return ks, 0.0, 1
    r = [0.0, *ref_kll.get_cdf(edges)[:-1], 1.0]
    c = [0.0, *cur_kll.get_cdf(edges)[:-1], 1.0]
    ref_p = [r[i + 1] - r[i] for i in range(len(r) - 1)]
    cur_p = [c[i + 1] - c[i] for i in range(len(c) - 1)]
    return ks, _psi(ref_p, cur_p), len(ref_p)


def frequent_items(view: DatasetProfileView, column: str) -> tuple[dict[str, float], bool, float] | None:
    """(reliable counts, whether the sketch counted every value exactly, non-null count) of a categorical.

    An item is reliable when the sketch's error is at most half its estimate; a saturated sketch's small
    items are not, and comparing them would compare sketch noise.
    """
    from airflow_mlops.data.whylogs_compat import import_whylogs

    import_whylogs()
    import whylogs_sketching as ds

    col = view.get_column(column)
    if col is None or "frequent_items" not in col.get_metric_names():
        return None
    counts = col.get_metric("counts").to_summary_dict()
    n = float(counts["n"] - counts.get("null", 0))
    sketch = col.get_metric("frequent_items").frequent_strings.value
    found = sketch.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
    exact = all(lb == ub for _, _, lb, ub in found) and abs(sum(est for _, est, _, _ in found) - n) < 0.5
    reliable = {str(item): float(est) for item, est, lb, ub in found if ub - lb <= 0.5 * est}
    return reliable, exact, n


def categorical_scores(
    ref: tuple[dict[str, float], bool, float], cur: tuple[dict[str, float], bool, float]
) -> tuple[float, float, int, dict[str, tuple[float, float]]]:
    """Hellinger distance (plug-in), PSI and the number of levels over the categories both sides can speak
    for, plus an "other" bucket. A category absent on one side counts as 0 there only if that side's sketch
    is exact (it would have seen it); a category new on one side is compared the same way."""
    (ref_items, ref_exact, n_ref), (cur_items, cur_exact, n_cur) = ref, cur
    keys = sorted(
        {k for k in ref_items if k in cur_items or cur_exact}
        | {k for k in cur_items if k in ref_items or ref_exact}
    )
    table = {k: (ref_items.get(k, 0.0), cur_items.get(k, 0.0)) for k in keys}
    # sparse categories (fewer than MIN_CELL rows on both sides together) go to "other": the chi-square
    # behaviour of the distance, which the floor relies on, needs cells with a few rows each
    table = {k: v for k, v in table.items() if v[0] + v[1] >= MIN_CELL}
    rest = (n_ref - sum(a for a, _ in table.values()), n_cur - sum(b for _, b in table.values()))
    if rest[0] > 0.5 or rest[1] > 0.5:
        table[OTHER] = (max(rest[0], 0.0), max(rest[1], 0.0))
    rt, ct = (sum(a for a, _ in table.values()) or 1.0), (sum(b for _, b in table.values()) or 1.0)
    p = [a / rt for a, _ in table.values()]
    q = [b / ct for _, b in table.values()]
    hellinger = math.sqrt(
        max(0.0, 0.5 * sum((math.sqrt(a) - math.sqrt(b)) ** 2 for a, b in zip(p, q, strict=True)))
    )
    return hellinger, _psi(p, q), len(table), table


def _numeric_sketch(view: DatasetProfileView, feature: str, side: str) -> Any:
    """The numeric feature's KLL sketch in one profile. A column whose values are not numbers (text declared a
    numeric feature) leaves it empty; its quantiles are not defined (whylogs' sketch crashes the process on
    them), so that is an input error naming the feature, its values' types and the fix."""
    from airflow_mlops.errors import DataError

    column = view.get_column(feature)
    metric = column.get_metric("distribution") if column is not None else None
    kll = metric.kll.value if metric is not None else None
    if kll is None or kll.is_empty():
        types = column.get_metric("types").to_summary_dict() if column is not None and column.get_metric("types") else {}
        held = ", ".join(f"{n} {kind}" for kind, n in types.items() if n) or "none"
        raise DataError(
            f"feature {feature!r} is monitored as numeric, but the {side} profile holds no numeric values in it "
            f"(values by type: {held}): list it as categorical (the spec's features.categorical, or "
            "--categorical), or fix the column's type where it is written"
        )
    return kll


def _count(view: DatasetProfileView, column: str) -> int:
    col = view.get_column(column)
    if col is None:
        return 0
    counts = col.get_metric("counts").to_summary_dict()
    return int(counts["n"] - counts.get("null", 0))  # whylogs counts NaN among the nulls (and again as nan)


def score_drift(
    reference: DatasetProfileView,
    current: DatasetProfileView,
    *,
    numeric: list[str],
    categorical: list[str],
    policy: DriftPolicy | Mapping[str, Any] | None = None,
    importance: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Compare ``current`` with ``reference`` per feature under ``policy`` (:class:`DriftPolicy`; default:
    its defaults). With ``policy.decision`` ``importance`` and the champion's ``importance`` (feature ->
    share of its permutation importance), the data set drifts when its drifted features carry at least
    ``policy.importance_share`` of it; otherwise when the share of drifted features reaches
    ``policy.drift_share``. Features with fewer than ``policy.min_rows`` values on either side are "insufficient data" and take no
    part in the decision. Each feature's metric (KS or PSI for numeric, Hellinger or PSI for categorical)
    must exceed both its threshold and its sample-size-aware noise floor.
    """
    policy = DriftPolicy.from_dict(policy)
    drift_share, min_rows = policy.drift_share, policy.min_rows
    rows: list[dict[str, Any]] = []
    for feature, kind in [*((f, "numeric") for f in numeric), *((f, "categorical") for f in categorical)]:
        n_ref, n_cur = _count(reference, feature), _count(current, feature)
        row: dict[str, Any] = {"feature": feature, "type": kind, "n_reference": n_ref, "n_current": n_cur}
        if current.get_column(feature) is None or reference.get_column(feature) is None:
            side = "current" if current.get_column(feature) is None else "reference"
            row.update(
                status=f"missing in {side} profile", metric=None, score=None, threshold=None, drifted=False
            )
            rows.append(row)
            continue
        if min(n_ref, n_cur) < min_rows:
            row.update(status="insufficient data", metric=None, score=None, threshold=None, drifted=False)
            rows.append(row)
            continue
        items = None
        if kind == "categorical":
            ref_i, cur_i = frequent_items(reference, feature), frequent_items(current, feature)
            items = (ref_i, cur_i) if ref_i and cur_i else None
        metric, limit = policy.rule(feature, kind)
        if items is not None:
            n, m = items[0][2], items[1][2]
            raw, psi, levels, _ = categorical_scores(*items)
            if metric == "psi":
                score = max(psi - _psi_bias(n, m, levels), 0.0)
                threshold = max(limit, _psi_floor(n, m, levels))
                row.update(metric="psi", score=score, psi=psi, threshold=threshold, levels=levels)
            else:
                score = _hellinger_corrected(raw, n, m, levels)
                threshold = max(limit, _hellinger_floor(n, m, levels))
                row.update(metric="hellinger", score=score, psi=psi, threshold=threshold, levels=levels)
        else:
            ref_kll = _numeric_sketch(reference, feature, "reference")
            cur_kll = _numeric_sketch(current, feature, "current")
            ks, psi, bins = _numeric_scores(ref_kll, cur_kll)
            sketch_error = _kll_error(ref_kll) + _kll_error(cur_kll)
            if metric == "psi":
                score = max(psi - _psi_bias(n_ref, n_cur, bins), 0.0)
                threshold = max(limit, _psi_floor(n_ref, n_cur, bins, sketch_error))
                row.update(metric="psi", score=score, psi=psi, threshold=threshold, ks=ks)
            else:
                threshold = max(limit, ks_floor(n_ref, n_cur, sketch_error))
                row.update(metric="ks", score=ks, psi=psi, threshold=threshold)
        row["drifted"] = row["score"] > row["threshold"]
        row["status"] = "drift" if row["drifted"] else "ok"
        rows.append(row)

    scored = [r for r in rows if r["score"] is not None]
    drifted = [r for r in scored if r["drifted"]]
    share = len(drifted) / len(scored) if scored else 0.0
    weights = _importance_weights(importance, [r["feature"] for r in rows])
    for row in rows:
        row["importance"] = weights.get(row["feature"]) if weights else None
    carried = sum(weights.get(r["feature"], 0.0) for r in drifted) if weights else None
    rule, note = policy.decision, None
    if rule == "importance" and not weights:
        rule = "share"
        note = (
            "the champion's recorded feature importance gives none of the monitored features a share above 0: "
            "decided by drift_share instead"
            if importance
            else "the champion has no recorded feature importance: decided by drift_share instead"
        )
    if not scored:
        status = "insufficient_data"
    elif rule == "importance":
        status = "drift" if drifted and carried >= policy.importance_share - 1e-12 else "no_drift"
    else:
        status = "drift" if share >= drift_share and drifted else "no_drift"
    rows.sort(key=lambda r: -(r["score"] / r["threshold"]) if r["score"] is not None else 1.0)
    return {
        "status": status,
        "drift": status == "drift",
        "drifted_features": [r["feature"] for r in drifted],
        "drift_share": share,
        "drift_share_threshold": drift_share,
        "decided_by": rule,
        "decision_note": note,
        "drifted_importance": carried,
        "importance_share_threshold": policy.importance_share,
        "policy": policy.as_dict(),
        "features": rows,
    }


def _importance_weights(importance: Mapping[str, float] | None, features: list[str]) -> dict[str, float]:
    """The monitored features' importance shares (renormalised over them), or {} when nothing carries any."""
    if not importance:
        return {}
    weights = {f: max(float(importance.get(f) or 0.0), 0.0) for f in features}
    total = sum(weights.values())
    return {f: w / total for f, w in weights.items()} if total > 0 else {}


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def drift_table(report: dict[str, Any]) -> str:
    return format_table(
        [
            (
                r["feature"], r["type"], r.get("metric") or "-", fmt(r.get("score")), fmt(r.get("threshold")),
                fmt(r.get("psi")), _share(r.get("importance")), r["n_reference"], r["n_current"],
                r["status"].upper() if r["drifted"] else r["status"],
            )
            for r in report["features"]
        ],
        ("feature", "type", "metric", "score", "threshold", "psi", "importance", "n_ref", "n_cur", "status"),
    )  # fmt: skip


def summary_line(report: dict[str, Any]) -> str:
    scored = [r for r in report["features"] if r["score"] is not None]
    head = f"{report['status'].upper()}: {len(report['drifted_features'])} of {len(scored)} features drifted"
    if report.get("decided_by") == "importance":
        rule = (
            f"carrying {_share(report['drifted_importance'])} of the champion's importance, threshold "
            f"{_share(report['importance_share_threshold'])}"
        )
    else:
        rule = f"share {report['drift_share']:.2f}, threshold {report['drift_share_threshold']:.2f}"
        if report.get("decision_note"):
            rule += f"; {report['decision_note']}"
    return f"{head} ({rule})" + (f": {', '.join(report['drifted_features'])}" if report["drifted_features"] else "")


def detect(
    reference_uri: str,
    current_uri: str,
    *,
    numeric: list[str],
    categorical: list[str],
    policy: DriftPolicy | Mapping[str, Any] | None = None,
    importance: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Load two stored profiles and score drift between them (as :func:`score_drift`)."""
    from airflow_mlops.data.profiling import load_profile

    report = score_drift(
        load_profile(reference_uri), load_profile(current_uri), numeric=numeric, categorical=categorical,
        policy=policy, importance=importance,
    )  # fmt: skip
    report.update(reference_profile=reference_uri, current_profile=current_uri)
    return report
