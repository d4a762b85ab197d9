"""Performance estimation without labels, after NannyML's confidence-based performance estimation (CBPE).

At test time the candidate's scores on its held-out rows are calibrated against their labels (binned, shrunk
towards a straight line in log-odds, made monotone: a curve of at most ``BINS`` points, with each point's row
count, kept as the version tag ``mlops.calibration``). A multiclass model gets a curve per class, one-vs-rest
as in NannyML, and a row's calibrated class probabilities are normalised to sum to one.

For a scoring window without labels, each row's calibrated probability says how likely each label is; the
metric the window *would* show is then a random variable over those labels. The estimate is its expected
value at the curve; the 95% band comes from ``DRAWS`` draws of the window's labels, each also redrawing the
curve within what the held-out rows could pin down (each knot's doubt from its bin's rows). Rows that share
a calibrated probability (to ``1 / STEPS`` in log-odds) and a predicted class are drawn together, so the cost
of a window does not grow with its rows. Accuracy, precision, recall, F1 and ROC AUC are estimated (macro
averages over the classes for a multiclass model, as the model tests report them).

Covariate shift (inputs move, the labelling rule stays): CBPE assumes P(y | score) does not change, but a
model's score is its rows' true log-odds plus noise, and rows with the same score are then more often positive
the more of the window's rows truly are (the regression to the mean goes to the window's mean;
``benchmarks/estimation.py --curve-check`` measures it). So each curve also keeps a model of its scores' noise
(:func:`fit_noise`), and where a window's scores moved from the held-out rows' (:func:`score_shift`), a
binary model's curve is moved half-way to what the window's rows imply (:func:`for_window`) and the band spans
the curve as fitted and moved all the way (:func:`estimate_window_metrics`, what the estimate task runs).

Where it is blind: pure concept drift (inputs unchanged, labelling rule changed) leaves the scores, and so the
estimate, unchanged: only live metrics on real labels catch it.
"""

from __future__ import annotations

from typing import Any

BINS = 40
BINS_TOTAL = 80  # a multiclass calibration's bins, shared over its classes (one curve each)
MIN_BINS = 5
PRIOR_ROWS = 1.0  # how many rows' worth the straight line counts for in each bin's rate
STEPS = 50  # rows whose calibrated log-odds agree to 1/STEPS share a group (and its probability)
DRAW_BATCH = 400
ROWS_PER_BIN = 50
MIN_ROWS = 100
DRAWS = 400
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
BAND = (2.5, 97.5)
# the score-noise model (see :func:`fit_noise`): true log-odds on GRID, the noise's spread chosen from NOISES
GRID_LIMIT, GRID_POINTS = 9.0, 73
NOISES = tuple(round(0.1 * k, 1) for k in range(1, 21))
HIST_BINS = 80
EM_STEPS = 150
REDRAW_SHARE = 0.5  # how far a window's estimate moves the curve: half-way (see estimate_window_metrics)


def fit_calibration(scores: Any, labels: Any, bins: int = BINS, noise: bool = True) -> dict[str, Any] | None:
    """The calibration of binary ``scores`` (probability of the positive class) on ``labels`` (0/1).

    First a straight line in log-odds (Platt's scaling: the model's overall over- or under-confidence), then
    the rows cut into ``bins`` quantile bins of the score, each bin's positive rate shrunk by one row towards
    that line (a small pure bin does not claim certainty, nor is it pulled to one half: towards one half, the
    near-zero columns of a multiclass model were lifted and its estimates fell by about 0.01), made monotone
    by isotonic regression weighted by the bins' rows. Beyond the end bins the line's slope carries the curve
    on. Kept as ``{"x": mean score per bin, "y": calibrated rate, "n": rows per bin, "rows": n, "slope": the
    line's slope, "noise": the scores' noise (:func:`fit_noise`; with ``noise``)}``; None with fewer than
    ``MIN_ROWS`` rows or a single class."""
    import numpy as np
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels).astype(float)
    keep = np.isfinite(s)
    s, y = s[keep], y[keep]
    if len(s) < MIN_ROWS or y.min() == y.max():
        return None
    z = _logit(s)
    line = LogisticRegression(C=1e4).fit(z[:, None], y.astype(int))
    prior = line.predict_proba(z[:, None])[:, 1]
    bins = int(min(bins, max(len(s) // ROWS_PER_BIN, 2)))
    order = np.argsort(s, kind="stable")
    xs, ys, ws = [], [], []
    for part in np.array_split(order, bins):
        xs.append(float(1 / (1 + np.exp(-z[part].mean()))))  # the bin centre in log-odds
        ys.append((float(y[part].sum()) + PRIOR_ROWS * float(prior[part].mean())) / (len(part) + PRIOR_ROWS))
        ws.append(len(part))
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0).fit(xs, ys, sample_weight=ws).predict(xs)
    return {
        "x": [round(v, 6) for v in xs], "y": [round(float(v), 6) for v in fitted], "n": ws, "rows": int(len(s)),
        "slope": round(float(np.clip(line.coef_[0][0], 0.0, 2.0)), 4), **(fit_noise(s, y) if noise else {}),
    }  # fmt: skip


def _grid() -> Any:
    import numpy as np

    return np.linspace(-GRID_LIMIT, GRID_LIMIT, GRID_POINTS)


def _kernel(z: Any, noise: float) -> Any:
    """Each log-odds score's likelihood under each true log-odds of the grid (Gaussian noise, unnormalised:
    every row of a fit shares the noise)."""
    import numpy as np

    return np.exp(-0.5 * ((np.asarray(z, dtype=float)[:, None] - _grid()[None, :]) / noise) ** 2)


def _prior(z: Any, noise: float, rows: Any = None) -> Any:
    """The distribution of the true log-odds (weights on the grid) whose scores, blurred by ``noise``, look
    most like ``z``'s (log-odds scores; ``rows``: how many rows each stands for, one by default): the
    non-parametric maximum likelihood, by EM over a histogram of the scores (so the cost does not grow with
    the rows)."""
    import numpy as np

    edges = np.linspace(-GRID_LIMIT, GRID_LIMIT, HIST_BINS + 1)
    counts, _ = np.histogram(np.clip(z, -GRID_LIMIT, GRID_LIMIT), edges, weights=rows)
    keep = counts > 0
    centres, w = ((edges[:-1] + edges[1:]) / 2)[keep], counts[keep].astype(float)
    kernel = _kernel(centres, noise)
    g = np.full(GRID_POINTS, 1.0 / GRID_POINTS)
    for _ in range(EM_STEPS):
        joint = kernel * g
        g = (w / np.maximum(joint.sum(axis=1), 1e-300)) @ joint / w.sum()
    return g


def _rate(prior: Any, noise: float, z: Any) -> Any:
    """P(positive | log-odds score ``z``) under the noise model: the mean true rate of the scores' sources."""
    import numpy as np

    joint = _kernel(z, noise) * prior
    return joint @ (1 / (1 + np.exp(-_grid()))) / np.maximum(joint.sum(axis=1), 1e-300)


def fit_noise(scores: Any, labels: Any) -> dict[str, Any]:
    """How noisy the scores are, as a model of the reason calibration is needed at all: a row's log-odds
    score is its true log-odds plus Gaussian noise of spread ``noise``; a row is positive with its true rate.
    An overconfident model's scores regress towards the mean of the true log-odds, by more the noisier they
    are. The spread is the one whose implied P(positive | score) gives the held-out labels the highest
    likelihood (the true log-odds' distribution estimated from the held-out scores for each spread, see
    :func:`_prior`). ``{"noise": spread}``: with the curve's knots and their rows (where the held-out scores
    lay), what :func:`for_window` needs to tell how P(positive | score) moves when a window's true log-odds
    are distributed otherwise."""
    import numpy as np

    z, y = _logit(scores), np.asarray(labels, dtype=float)
    best: tuple[float, float] | None = None
    for noise in NOISES:
        prior = _prior(z, noise)
        p = np.clip(_rate(prior, noise, z), 1e-9, 1 - 1e-9)
        likelihood = float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))
        if best is None or likelihood > best[0]:
            best = (likelihood, noise)
    assert best is not None
    return {"noise": best[1]}


def for_window(curve: dict[str, Any], scores: Any, shares: tuple[float, ...] = (1.0,)) -> list[dict[str, Any]]:
    """The curve as the window's rows would have drawn it, under the noise model of :func:`fit_noise`: the
    window's true log-odds are estimated from its scores (:func:`_prior`, the noise as on the held-out rows),
    the held-out rows' from the curve's knots (each bin's rows at its knot), and each knot moves, in log-odds,
    by how much P(positive | score) at the knot differs between the two, times each of ``shares`` (one curve
    per share). Where the window's rows come from where the held-out rows' did, nothing moves; under
    covariate shift, a score between the bulk of the old rows and that of the new ones now more often comes
    from the new (the regression to the mean goes to the window's mean). A curve recorded without the model
    (before it existed) gives an empty list."""
    import numpy as np

    rows = curve.get("n") or []
    if not curve.get("noise") or len(rows) != len(curve["x"]) or sum(rows) <= 0:
        return []
    noise = float(curve["noise"])
    z = _logit(np.asarray(scores, dtype=float))
    knots = _logit(curve["x"])
    held = _prior(knots, noise, np.asarray(rows, dtype=float))
    now, then = (np.clip(_rate(p, noise, knots), 1e-6, 1 - 1e-6) for p in (_prior(z, noise), held))
    fitted, change = _logit(np.clip(curve["y"], 1e-6, 1 - 1e-6)), _logit(now) - _logit(then)
    return [
        {**curve, "y": [round(float(v), 6) for v in 1 / (1 + np.exp(-(fitted + share * change)))]} for share in shares
    ]


def _logit(v: Any) -> Any:
    import numpy as np

    v = np.clip(np.asarray(v, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(v / (1 - v))


def calibrate(calibration: dict[str, Any], scores: Any) -> Any:
    """Calibrated probabilities of ``scores``: linear between the knots in log-odds (where a model's
    miscalibration is close to straight, unlike in probabilities); beyond the end knots, on at the
    calibration's ``slope`` (a curve recorded without one stays flat there, as it was fitted)."""
    import numpy as np

    z, kx = _logit(scores), _logit(calibration["x"])
    slope = float(calibration.get("slope", 0.0))
    inside = np.interp(z, kx, _logit(calibration["y"]))
    z = inside + slope * (np.minimum(z - kx[0], 0) + np.maximum(z - kx[-1], 0))
    return 1 / (1 + np.exp(-z))


def fit_calibrations(proba: Any, labels: Any, classes: list[Any]) -> dict[str, Any] | None:
    """A multiclass model's calibration, one-vs-rest as NannyML's CBPE does: for each class, the curve of its
    probability column (``proba``: rows x classes, in ``classes``' order) on whether the label is that class,
    with ``BINS_TOTAL`` bins shared over the classes (so the tag stays small). ``{"classes": [...], "curves":
    [curve per class], "rows": n}``; None where a class has too few rows, or no rows of its own, to fit."""
    import numpy as np

    p = np.asarray(proba, dtype=float)
    y = np.asarray(labels)
    bins = max(MIN_BINS, BINS_TOTAL // len(classes))
    curves = []
    for k, cls in enumerate(classes):
        curve = fit_calibration(p[:, k], y == cls, bins=bins, noise=False)  # not moved: estimate_window_metrics
        if curve is None:
            return None
        curves.append(curve)
    return {"classes": [str(c) for c in classes], "curves": curves, "rows": int(len(y))}


def score_shift(calibration: dict[str, Any], scores: Any) -> dict[str, float] | None:
    """How far a window's scores moved from the held-out rows' the calibration was fitted on, as a
    Kolmogorov-Smirnov distance: at each knot of the curve the held-out rows' CDF lies within its bin's
    (``n`` rows; the knot is inside the bin's scores), and the window's within what it has below and at the
    knot; the distance is the widest gap between the two (a lower bound of KS, free of tied scores). For a
    multiclass model the largest over its classes' curves. ``{"ks", "limit"}``: above ``limit`` (the drift
    sensor's default KS threshold for a numeric input, or KS's noise for these row counts at alpha 0.001
    where that is more: :func:`airflow_mlops.data.drift.scores.ks_floor`) the window leans on parts of the
    curve the held-out rows weighed less; where the score does not carry all that the inputs say, rows with
    the same score are then more (or less) often positive than on those rows, and the estimate lags (see the
    module). None without per-bin row counts or rows."""
    import numpy as np

    from airflow_mlops.data.drift.scores import NumericRule, ks_floor

    s = np.asarray(scores, dtype=float)
    multi = "curves" in calibration
    s = s[np.isfinite(s).all(axis=1)] if multi else s[np.isfinite(s)]
    curves = calibration["curves"] if multi else [calibration]
    columns = [s[:, k] for k in range(len(curves))] if multi else [s]
    gaps, held_rows = [], []
    for curve, column in zip(curves, columns, strict=True):
        held = np.asarray(curve.get("n") or [], dtype=float)
        if len(column) == 0 or len(held) != len(curve["x"]) or held.sum() <= 0:
            return None
        cum = np.cumsum(held) / held.sum()
        below, upto = cum - held / held.sum(), cum  # the held-out CDF at each knot lies in [below, upto]
        knots, ordered = _logit(curve["x"]), np.sort(_logit(column))
        w_below = np.searchsorted(ordered, knots, side="left") / len(ordered)
        w_upto = np.searchsorted(ordered, knots, side="right") / len(ordered)
        gaps.append(float(np.maximum(np.maximum(below - w_upto, w_below - upto), 0.0).max()))
        held_rows.append(float(held.sum()))
    limit = max(NumericRule().ks, ks_floor(min(held_rows), len(s)))
    return {"ks": round(max(gaps), 4), "limit": round(float(limit), 4)}


def _place(curve: dict[str, Any], scores: Any) -> tuple[Any, Any]:
    """Each score's place on the curve, in log-odds: its left knot ``j`` and weight ``t`` towards the next
    (flat beyond the end knots)."""
    import numpy as np

    kx = _logit(curve["x"])
    z = np.clip(_logit(scores), kx[0], kx[-1])
    if len(kx) == 1:
        return np.zeros(len(z), dtype=int), np.zeros(len(z))
    j = np.clip(np.searchsorted(kx, z, side="right") - 1, 0, len(kx) - 2)
    span = kx[j + 1] - kx[j]
    t = np.where(span > 0, (z - kx[j]) / np.where(span > 0, span, 1), 0.0)
    return j, t


class _Groups:
    """One class's rows (one-vs-rest), grouped by what the estimate needs of them: whether the model predicted
    the class, and the row's calibrated probability (its log-odds to ``1 / STEPS``). A group's rows share one
    probability, so a draw of the window's labels is one binomial per group, and the rank sum of its positives
    (for ROC AUC) their count times the group's rank weighted by probability: the cost of a draw does not
    grow with the window's rows."""

    def __init__(self, curve: dict[str, Any], score: Any, predicted: Any, expected: Any) -> None:
        import numpy as np
        from scipy.special import polygamma
        from scipy.stats import rankdata

        level = np.rint(_logit(expected) * STEPS).astype(np.int64)
        level -= level.min()
        key = level * 2 + predicted.astype(np.int64)
        uniq, inverse, sizes = np.unique(key, return_inverse=True, return_counts=True)
        self.m = sizes.astype(float)
        weight = np.bincount(inverse, weights=expected)
        self.p = weight / self.m  # the rows' calibrated probability
        ranks = rankdata(score)
        self.rank = np.where(
            weight > 0, np.bincount(inverse, weights=expected * ranks) / np.where(weight > 0, weight, 1),
            np.bincount(inverse, weights=ranks) / self.m,
        )  # fmt: skip
        self.predicted = (uniq % 2).astype(bool)
        # the group's place on the curve (for redrawing it): where its rows' mean score falls
        self.j, self.t = _place(curve, 1 / (1 + np.exp(-np.bincount(inverse, weights=_logit(score)) / self.m)))
        ky = np.asarray(curve["y"], dtype=float)
        counts = np.asarray(curve.get("n") or [curve.get("rows", 1000) / len(ky)] * len(ky), dtype=float)
        self.knots = len(ky)
        # each knot's doubt in log-odds, as its bin's rows allow: the spread of the log-odds of Jeffreys' Beta
        # (a pure bin of 50 rows keeps about two log-odds of doubt, where a binomial error around its rate
        # kept none and the band missed overconfident models' true rates)
        self.sd = np.sqrt(polygamma(1, ky * counts + 0.5) + polygamma(1, (1 - ky) * counts + 0.5))
        self.n_predicted = float(self.m[self.predicted].sum())

    def expected(self) -> dict[str, Any]:
        """What a draw gives on average, at the curve itself: the estimate (as NannyML's CBPE computes it)."""
        return self._counts((self.m * self.p)[None, :])

    def _counts(self, x: Any) -> dict[str, Any]:
        """Per draw (a row of ``x``: positives per group): positives, true positives and their rank sum."""
        return {"pos": x.sum(axis=1), "tp": x[:, self.predicted].sum(axis=1), "ranks": x @ self.rank}

    def draw(self, rng: Any, k: int, normals: Any = None) -> dict[str, Any]:
        """``k`` draws of the window's labels: per draw, positives, true positives and the positives' rank sum.
        Each draw also redraws the curve within its sampling error (each knot's rate from its bin's rows), and
        moves every group's probability by that draw's change of the curve at the group's place."""
        import numpy as np

        j1 = np.minimum(self.j + 1, self.knots - 1)
        normals = rng.standard_normal((k, self.knots)) if normals is None else normals[:, : self.knots]
        moved = self.sd * normals
        shift = moved[:, self.j] * (1 - self.t) + moved[:, j1] * self.t
        p = 1 / (1 + np.exp(-(_logit(self.p) + shift)))
        return self._counts(rng.binomial(self.m.astype(np.int64), p).astype(float))


def _binary_metrics(d: dict[str, Any], n_predicted: float, n: int) -> dict[str, Any]:
    """Each metric per draw, for the positive class's draws ``d`` (see :meth:`_Groups.draw`)."""
    import numpy as np

    pos, tp = d["pos"], d["tp"]
    fp, fn = n_predicted - tp, pos - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "accuracy": (tp + (n - n_predicted - fn)) / n,
            "precision": np.where(n_predicted > 0, tp / max(n_predicted, 1), 0.0),
            "recall": np.where(pos > 0, tp / np.maximum(pos, 1), 0.0),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0),
            # Mann-Whitney: the rank sum of the positives, over every positive-negative pair
            "roc_auc": np.where(
                (pos > 0) & (pos < n), (d["ranks"] - pos * (pos + 1) / 2) / np.maximum(pos * (n - pos), 1), np.nan
            ),
        }


def _combine(drawn: list[dict[str, Any]], groups: list[_Groups], n: int, multi: bool) -> dict[str, Any]:
    """Each metric per draw, from each class's draws (the positive class's only, for a binary model)."""
    import numpy as np

    per_class = [_binary_metrics(d, g.n_predicted, n) for d, g in zip(drawn, groups, strict=True)]
    if not multi:
        return per_class[0]
    auc = np.stack([v["roc_auc"] for v in per_class])
    present = np.isfinite(auc).sum(axis=0)  # one-vs-rest AUC over the classes a draw holds
    # precision, recall and F1 average over the classes that occur in a draw's labels or the predictions, as
    # the metrics on real labels do (airflow_mlops.model.metrics.occurring); at the curve itself (expected,
    # not whole, counts) a class occurs where it is predicted or expected at least half a row
    occurs = np.stack([(d["pos"] >= 0.5) | (g.n_predicted > 0) for d, g in zip(drawn, groups, strict=True)])
    occurs = occurs.astype(float)
    count = np.maximum(occurs.sum(axis=0), 1)
    return {
        # the classes' predicted rows are disjoint: accuracy is their true positives over the rows
        "accuracy": sum(d["tp"] for d in drawn) / n,
        **{m: np.sum([v[m] for v in per_class] * occurs, axis=0) / count for m in ("precision", "recall", "f1")},
        "roc_auc": np.where(present > 0, np.nansum(np.nan_to_num(auc), axis=0) / np.maximum(present, 1), np.nan),
    }


def estimate_metrics(
    scores: Any,
    calibration: dict[str, Any],
    *,
    metrics: tuple[str, ...] | list[str] = ESTIMATED_METRICS,
    draws: int = DRAWS,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """``{metric: {"estimate", "low", "high"}}`` of a window from its scores alone (see the module).

    ``scores``: a binary model's probabilities of the positive class, with a binary calibration
    (:func:`fit_calibration`); or a multiclass model's probabilities (rows x classes, in the calibration's
    class order) with :func:`fit_calibrations`' calibration. Multiclass metrics are those the model tests
    report: accuracy, and precision, recall, F1 and one-vs-rest ROC AUC as macro averages over the classes.
    With ``draws`` 0, the estimates alone (``{"estimate"}``, no band)."""
    import numpy as np

    wanted = [m for m in metrics if m in ESTIMATED_METRICS]
    s = np.asarray(scores, dtype=float)
    multi = "curves" in calibration
    s = s[np.isfinite(s).all(axis=1)] if multi else s[np.isfinite(s)]
    n = len(s)
    if n == 0 or not wanted:
        return {}
    if multi:
        curves = calibration["curves"]
        expected = np.column_stack([calibrate(c, s[:, k]) for k, c in enumerate(curves)])
        expected = expected / expected.sum(axis=1, keepdims=True)  # one-vs-rest rates, as one distribution
        best = s.argmax(axis=1)
        groups = [_Groups(c, s[:, k], best == k, expected[:, k]) for k, c in enumerate(curves)]
    else:
        groups = [_Groups(calibration, s, s > 0.5, calibrate(calibration, s))]
    centre = _combine([g.expected() for g in groups], groups, n, multi)
    if draws <= 0:  # the estimates alone
        return {m: {"estimate": float(centre[m][0])} for m in wanted if np.isfinite(centre[m][0])}
    rng = np.random.default_rng(seed)
    found: dict[str, list[Any]] = {m: [] for m in wanted}
    done = 0
    while done < draws:
        k = min(DRAW_BATCH, draws - done)
        # a multiclass model's curves share their draws knot by knot (from its least to its most confident
        # bin): their errors come from the same held-out rows, and drawn apart they averaged out of the macro
        # metrics' band (tests: 102 of 120 covered drawn apart, 112 shared)
        shared = rng.standard_normal((k, max(g.knots for g in groups))) if multi else None
        values = _combine([g.draw(rng, k, shared) for g in groups], groups, n, multi)
        for m in wanted:
            found[m].append(np.asarray(values[m], dtype=float))
        done += k
    out = {}
    for m, parts in found.items():
        v = np.concatenate(parts)
        v = v[np.isfinite(v)]
        if len(v):
            low, high = np.percentile(v, BAND)
            estimate = float(centre[m][0]) if np.isfinite(centre[m][0]) else float(v.mean())
            out[m] = {"estimate": estimate, "low": float(min(low, estimate)), "high": float(max(high, estimate))}
    return out


def estimate_window_metrics(
    scores: Any,
    calibration: dict[str, Any],
    *,
    metrics: tuple[str, ...] | list[str] = ESTIMATED_METRICS,
    draws: int = DRAWS,
    seed: int = 0,
) -> dict[str, Any]:
    """What a window's estimate is, as the estimate task computes it: ``{"metrics": {metric: {"estimate",
    "low", "high"}}, "score_shift": {"ks", "limit"} or None, "for_window": bool, "why_not": str or None}``.

    Where a binary model's scores moved from the held-out rows' (:func:`score_shift` beyond its limit), two
    assumptions about P(positive | score) bracket the window: unchanged (CBPE's; measured to fall short under
    covariate shift) and moved as far as the score noise implies (:func:`for_window`; measured to overshoot
    by about as much, as if all of the curve's regression to the mean were noise: part of it is the model's
    fixed distortion, which a shift does not move, and the held-out rows cannot tell the two apart). The
    estimate is then the curve moved half-way (``REDRAW_SHARE``), and its band spans both ends' (each end's
    estimate with the band's own reach below and above it; ``benchmarks/estimation.py``). A multiclass
    model's curves are not redrawn: each one-vs-rest curve moved on its own and the classes normalised, its
    accuracy overshot where the fitted curves had no bias to speak of (``why_not`` says so, as it says when a
    curve has no noise model). Elsewhere it is :func:`estimate_metrics`'."""
    import numpy as np

    s = np.asarray(scores, dtype=float)
    multi = "curves" in calibration
    s = s[np.isfinite(s).all(axis=1)] if multi else s[np.isfinite(s)]
    moved = score_shift(calibration, s) if len(s) else None
    why_not = None
    if moved is None or moved["ks"] <= moved["limit"]:
        window = calibration
    elif multi:
        window, why_not = calibration, "a multiclass model's one-vs-rest curves are not redrawn"
    elif not (redrawn := for_window(calibration, s, (REDRAW_SHARE, 1.0))):
        window, why_not = calibration, "the calibration has no score-noise model (registered before it existed)"
    else:
        window = redrawn[0]
    estimates = estimate_metrics(s, window, metrics=metrics, draws=draws, seed=seed)
    if window is not calibration and draws > 0:  # the band spans both ends' bands: as fitted, moved all the way
        ends = [estimate_metrics(s, c, metrics=metrics, draws=0) for c in (calibration, redrawn[1])]
        for metric, row in estimates.items():
            values = [end[metric]["estimate"] for end in ends if metric in end]
            below, above = row["estimate"] - row["low"], row["high"] - row["estimate"]
            row["low"] = max(0.0, min([row["low"], *(v - below for v in values)]))
            row["high"] = min(1.0, max([row["high"], *(v + above for v in values)]))
    return {"metrics": estimates, "score_shift": moved, "for_window": window is not calibration, "why_not": why_not}
