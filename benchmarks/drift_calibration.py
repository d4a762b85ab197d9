"""Drift calibration: false alarms on identical distributions and detection of a 0.2-sd mean shift.

For n = 1,000 .. 1,000,000 rows per side, a reference and a current sample are profiled (the profiles the
pipelines store) and compared, one feature per decision, with three rules side by side in the same run:

- airflow-mlops: ``drift.score_drift`` with the default thresholds (KS 0.05, bias-corrected Hellinger 0.05)
  and its sample-size- and sketch-aware floors;
- airflow-mlops with PSI deciding (policy ``numeric.metric`` / ``categorical.metric`` ``psi``, threshold 0.02:
  bias-corrected, above its own sample-size- and sketch-aware floor);
- exact tests on the raw rows at p < 0.05: ``scipy.stats.ks_2samp`` (numeric), ``chi2_contingency`` on the
  exact counts (categorical);
- whylogs' default drift rule on the same profiles (``calculate_drift_scores``: KS from the KLL sketches,
  chi-square on frequent items; "DRIFT" when p < 0.05).

Numeric feature: N(0, 1) vs N(0, 1) (false alarms) and vs N(0.2, 1) (detection). Categorical with 5, 50 and
1,000 levels: a latent N(0, 1) cut at its quantiles into equally likely levels, shifted by 0.2 sd likewise.
Goals: false-alarm rate <= 1% per decision at every n; detection >= 95% at n >= 10,000; scoring time per
column flat in n.

    .venv/bin/python benchmarks/drift_calibration.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import types

os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")
SIZES = (1_000, 10_000, 100_000, 1_000_000)
TRIALS = {1_000: 200, 10_000: 200, 100_000: 60, 1_000_000: 20}
SHIFT = 0.2
PSI_THRESHOLD = 0.02


def _whylogs_rule():
    """whylogs' drift scores live in ``whylogs.viz``, which imports IPython for notebook display only."""

    class _Stub(types.ModuleType):
        def __getattr__(self, name: str):
            if name.startswith("__"):
                raise AttributeError(name)
            return type(name, (), {})

    for name in ("IPython", "IPython.core", "IPython.core.display", "IPython.display"):
        sys.modules.setdefault(name, _Stub(name))
    from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores

    def drifted(current, reference, column: str) -> bool:
        score = calculate_drift_scores(
            target_view=current, reference_view=reference, with_thresholds=True
        ).get(column)
        return bool(score) and score["drift_category"] == "DRIFT"

    return drifted


def _sample(rng, kind: str, levels: int, n: int, shift: float):
    import numpy as np
    import pandas as pd
    from scipy.stats import norm

    latent = rng.normal(shift, 1.0, n)
    if kind == "numeric":
        return latent
    codes = np.searchsorted(norm.ppf(np.linspace(0, 1, levels + 1)[1:-1]), latent)
    return pd.Series(np.array([f"l{i}" for i in range(levels)], dtype=object)[codes], dtype="str")


def run(kind: str, levels: int, n: int, trials: int, rng, whylogs_drifted) -> dict:
    import numpy as np
    import pandas as pd
    from scipy.stats import chi2_contingency, ks_2samp

    from airflow_mlops.data.drift.scores import score_drift
    from airflow_mlops.data.profiling import profile_stream

    feature = {"numeric": [], "categorical": []}
    feature[kind if kind == "numeric" else "categorical"] = ["x"]
    alarms = {"ours": 0, "psi": 0, "exact": 0, "whylogs": 0}
    hits = {"ours": 0, "psi": 0, "exact": 0, "whylogs": 0}
    seconds = []

    def exact(a, b) -> bool:
        if kind == "numeric":
            return ks_2samp(a, b).pvalue < 0.05
        counts = pd.concat([a.value_counts(), b.value_counts()], axis=1).fillna(0).to_numpy()
        return chi2_contingency(counts.T)[1] < 0.05

    for _ in range(trials):
        ref = _sample(rng, kind, levels, n, 0.0)
        same = _sample(rng, kind, levels, n, 0.0)
        moved = _sample(rng, kind, levels, n, SHIFT)
        views = [profile_stream([pd.DataFrame({"x": v})]) for v in (ref, same, moved)]
        for label, current, raw, tally in (
            ("same", views[1], same, alarms),
            ("moved", views[2], moved, hits),
        ):
            start = time.perf_counter()
            report = score_drift(views[0], current, **feature, policy={"min_rows": 100})
            if label == "same":
                seconds.append(time.perf_counter() - start)
            tally["ours"] += report["drift"]
            psi_policy = {"metric": "psi", "psi": PSI_THRESHOLD}
            psi = score_drift(
                views[0], current, **feature,
                policy={"min_rows": 100, "numeric": psi_policy, "categorical": psi_policy},
            )  # fmt: skip
            tally["psi"] += psi["drift"]
            tally["exact"] += exact(ref, raw)
            tally["whylogs"] += whylogs_drifted(current, views[0], "x")
    del np
    return {
        "false_alarms": {k: v / trials for k, v in alarms.items()},
        "detection": {k: v / trials for k, v in hits.items()},
        "ms_per_column": 1000 * statistics.median(seconds),
        "trials": trials,
    }


def main() -> None:
    import numpy as np

    quick = "--quick" in sys.argv
    sizes = SIZES[:2] if quick else SIZES
    rng = np.random.default_rng(2026)
    whylogs_drifted = _whylogs_rule()
    print(
        "feature          n          trials  false alarms: ours / psi / exact / whylogs   detection (0.2 sd): ours / psi / exact / whylogs   scoring"
    )
    for kind, levels in (("numeric", 0), ("categorical", 5), ("categorical", 50), ("categorical", 1000)):
        for n in sizes:
            trials = max(10, TRIALS[n] // (5 if quick else 1))
            r = run(kind, levels, n, trials, rng, whylogs_drifted)
            fa, det = r["false_alarms"], r["detection"]
            name = "numeric" if kind == "numeric" else f"categorical/{levels}"
            print(f"{name:16s} {n:>9,}  {trials:>6}  {fa['ours']:>6.1%} / {fa['psi']:>6.1%} / {fa['exact']:>6.1%} / {fa['whylogs']:>6.1%}"
                  f"            {det['ours']:>6.1%} / {det['psi']:>6.1%} / {det['exact']:>6.1%} / {det['whylogs']:>6.1%}"
                  f"                 {r['ms_per_column']:.2f} ms", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
