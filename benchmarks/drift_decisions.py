"""Drift decisions that matter: which rule calls for retraining, when, and how often for nothing.

Synthetic cases are built here (nothing read from disk). Nine features: numeric x0..x5, categorical c0..c2. The
label follows a logistic rule on x0 (strong), x1 (medium), c0 (medium) and x2 (weak); x3, x4, x5, c1 and c2
are irrelevant. A reference week (7 days) trains the champion (scikit-learn logistic regression behind the
project's model protocol) on 80% of its rows; its held-out 20% give, as at test time in the pipelines, the
tested metrics, the permutation importance (``model.importance``) and the score calibration
(``model.estimation``); the reference profile is the week's profile (``data.profiling``).

Then 30 daily decisions per case, the change (if any) from day 10:

- ``stable``: nothing changes;
- ``covariate_important``: x0 shifts by +0.5 sd and x5 (irrelevant) by +0.5 sd: 2 of 9 features, the issue's
  miss of the share rule;
- ``covariate_harmful``: x0's spread shrinks to 0.35 sd: the rows crowd around the decision boundary, the
  model is right less often (a covariate shift that costs performance, which estimation should see first);
- ``covariate_irrelevant``: x3, x4, x5 shift by +0.6 sd and c1's mix moves: 4 of 9 features, none the model
  uses: no retraining is wanted;
- ``concept``: the inputs stay; the labelling rule's intercept moves by -2.0 (a threshold shift: the ranking
  holds, accuracy falls).

Rules, each the project's own code: ``share`` (``score_drift``, ``decision: share``, drift_share 0.3),
``importance`` (``score_drift``, ``decision: importance``, importance_share 0.2), ``estimated`` (CBPE on the
champion's scores as the estimate task runs it, ``model.estimation.estimate_window_metrics``, judged by
``operations.estimation.judge``, roc_auc, accuracy and f1, tolerance 0.05) and ``live``
(labels on the day's rows, ``operations.live.performance_drift``, the same metrics, tolerance 0.05 above
the sample-size floor). Reported per case and rule: false alarms (alarms before day 10, or on any day where
no retraining is wanted) and the detection delay (first alarm day - 10) where a change hurts. Performance
estimation: estimated vs realised metric per day (mean absolute error, coverage of the 95% band).

    .venv/bin/python benchmarks/drift_decisions.py [--quick]
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")
NUMERIC = [f"x{i}" for i in range(6)]
CATEGORICAL = ["c0", "c1", "c2"]
DAYS, CHANGE = 30, 10
METRICS = ["roc_auc", "accuracy", "f1"]
CASES = ("stable", "covariate_important", "covariate_harmful", "covariate_irrelevant", "concept")
WANTED = {
    "stable": False, "covariate_important": True, "covariate_harmful": True, "covariate_irrelevant": False,
    "concept": True,
}  # fmt: skip


def make_day(n: int, seed: int, case: str, changed: bool):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    shift = {f: 0.0 for f in NUMERIC}
    c1_p = [0.5, 0.3, 0.2]
    bias = 0.0
    if changed and case == "covariate_important":
        shift["x0"], shift["x5"] = 0.5, 0.5
    scale_x0 = 0.35 if changed and case == "covariate_harmful" else 1.0
    if changed and case == "covariate_irrelevant":
        shift.update(x3=0.6, x4=0.6, x5=0.6)
        c1_p = [0.25, 0.3, 0.45]
    if changed and case == "concept":
        bias = -2.0
    frame = pd.DataFrame({f: rng.normal(shift[f], scale_x0 if f == "x0" else 1, n) for f in NUMERIC})
    frame["c0"] = rng.choice(["a", "b", "c"], n, p=[0.4, 0.35, 0.25])
    frame["c1"] = rng.choice(["u", "v", "w"], n, p=c1_p)
    frame["c2"] = rng.choice(["p", "q"], n, p=[0.6, 0.4])
    logit = 1.6 * frame["x0"] + 0.8 * frame["x1"] + 0.2 * frame["x2"] + np.where(frame["c0"] == "a", 0.9, 0.0) - 0.3
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-(logit + bias)))).astype(int)
    return frame


class Champion:
    """A scikit-learn logistic regression behind the project's model protocol (meta, predict_proba)."""

    def __init__(self, train):
        from sklearn.linear_model import LogisticRegression

        self.meta = {
            "task": "classification", "target": "y", "classes": [0, 1], "kind": "tabular",
            "preprocessing": {"numeric": [{"column": c} for c in NUMERIC], "categorical": [{"column": c} for c in CATEGORICAL]},
        }  # fmt: skip
        self.levels = {c: sorted(train[c].unique()) for c in CATEGORICAL}
        self.model = LogisticRegression(max_iter=1000).fit(self._x(train), train["y"])

    def _x(self, frame):
        import numpy as np

        parts = [frame[NUMERIC].to_numpy(dtype=float)]
        for c, levels in self.levels.items():
            parts.append(np.column_stack([(frame[c] == v).to_numpy(dtype=float) for v in levels[1:]]))
        return np.hstack(parts)

    def predict_proba(self, frame):
        return self.model.predict_proba(self._x(frame))


def run(n: int, quick: bool) -> dict:
    import numpy as np
    import pandas as pd

    from airflow_mlops.data.drift.scores import score_drift
    from airflow_mlops.data.partitions import split_holdout
    from airflow_mlops.data.profiling import profile_frame
    from airflow_mlops.model.estimation import estimate_window_metrics, fit_calibration
    from airflow_mlops.model.importance import permutation_importance
    from airflow_mlops.model.metrics import classification_metrics, evaluate
    from airflow_mlops.operations.estimation import judge
    from airflow_mlops.operations.live import performance_drift, version_metrics

    week = pd.concat([make_day(n, 1000 + d, "stable", False) for d in range(7)], ignore_index=True)
    train, holdout = split_holdout(week, "y", 0.2, 7)
    champion = Champion(train)
    tested = evaluate(champion, holdout)
    importance = permutation_importance(champion, holdout, "roc_auc", seed=7)
    calibration = fit_calibration(champion.predict_proba(holdout)[:, 1], holdout["y"].to_numpy())
    reference = profile_frame(week.drop(columns=["y"]))
    version = type("V", (), {"version": "1", "tags": {"mlops.test_metrics": __import__("json").dumps(tested)}})()
    out = {"n": n, "tested": tested, "importance": importance["share"], "cases": {}}
    days = range(0, DAYS, 3) if quick else range(DAYS)
    for case in CASES:
        alarms = {r: [] for r in ("share", "importance", "estimated", "live")}
        estimation = {m: {"errors": [], "covered": 0, "days": 0} for m in METRICS}
        for day in days:
            frame = make_day(n, 50_000 + 1000 * CASES.index(case) + day, case, day >= CHANGE)
            current = profile_frame(frame.drop(columns=["y"]))
            for rule in ("share", "importance"):
                report = score_drift(
                    reference, current, numeric=NUMERIC, categorical=CATEGORICAL,
                    policy={"decision": rule, "numeric": {"ks": 0.05}, "categorical": {"hellinger": 0.05}},
                    importance=importance["share"],
                )  # fmt: skip
                if report["drift"]:
                    alarms[rule].append(day)
            scores = champion.predict_proba(frame)[:, 1]
            estimates = estimate_window_metrics(scores, calibration, metrics=METRICS, seed=day)["metrics"]
            realised = classification_metrics(frame["y"].to_numpy(), np.column_stack([1 - scores, scores]), [0, 1])
            for m in METRICS:
                e = estimation[m]
                e["errors"].append(abs(estimates[m]["estimate"] - realised[m]))
                e["covered"] += estimates[m]["low"] <= realised[m] <= estimates[m]["high"]
                e["days"] += 1
            if any(r["drift"] for r in judge(estimates, tested, 0.05).values()):
                alarms["estimated"].append(day)
            predictions = pd.DataFrame({"score": scores, "model_version": "1", "y": frame["y"]})
            per_version = version_metrics(predictions, None, id_column=None, label_column="y", task="classification")
            if performance_drift(version, per_version, metrics=METRICS, tolerance=0.05)["drift"]:
                alarms["live"].append(day)
        result = {}
        for rule, found in alarms.items():
            false = [d for d in found if d < CHANGE or not WANTED[case]]
            first = min((d for d in found if d >= CHANGE), default=None)
            result[rule] = {
                "false_alarms": len(false), "decisions": len(list(days)),
                "delay": (first - CHANGE) if (WANTED[case] and first is not None) else None,
                "caught": first is not None if WANTED[case] else None,
            }  # fmt: skip
        result["estimation"] = {
            m: {"mae": float(np.mean(e["errors"])), "coverage": e["covered"] / e["days"]} for m, e in estimation.items()
        }
        out["cases"][case] = result
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    sizes = (2_000,) if quick else (2_000, 20_000)
    started = time.perf_counter()
    for n in sizes:
        r = run(n, quick)
        share = ", ".join(f"{k} {v * 100:.0f}%" for k, v in sorted(r["importance"].items(), key=lambda kv: -kv[1]))
        print(f"\n### {n:,} rows a day (champion tested: roc_auc {r['tested']['roc_auc']:.3f}, accuracy "
              f"{r['tested']['accuracy']:.3f}; importance: {share})\n")  # fmt: skip
        print("| case | rule | false alarms | detection delay (days) |")
        print("|---|---|---|---|")
        for case, res in r["cases"].items():
            for rule in ("share", "importance", "estimated", "live"):
                x = res[rule]
                delay = "-" if not WANTED[case] else ("missed" if x["delay"] is None else str(x["delay"]))
                print(f"| {case} | {rule} | {x['false_alarms']} / {x['decisions']} | {delay} |")
        print("\n| case | metric | estimate MAE | 95% band coverage |")
        print("|---|---|---|---|")
        for case, res in r["cases"].items():
            for m, e in res["estimation"].items():
                print(f"| {case} | {m} | {e['mae']:.4f} | {e['coverage'] * 100:.0f}% |")
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
