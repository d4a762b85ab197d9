"""Performance estimated before labels: this project's CBPE beside NannyML's, on the same generated days.

NannyML is not a dependency of airflow-mlops: it runs in a virtualenv of its own, as a worker of this script
(``--nannyml-python``), on the same files:

    python -m venv /tmp/nml && /tmp/nml/bin/pip install nannyml statsmodels
    .venv/bin/python benchmarks/estimation.py --nannyml-python /tmp/nml/bin/python [--seeds 10] [--days 20]
    .venv/bin/python benchmarks/estimation.py --curve-check [--seeds 20]

Cases, each for a binary and a 3-class model (gradient-boosted trees, trained on 6,000 rows; the labelling
rule never changes), at 2,000 and 20,000 rows a day:

- ``no_shift``: every day drawn as the training rows;
- ``covariate_shift``: from the middle day on, two of the inputs move (the rule stays: what estimation sees);
- ``small_holdout``: the covariate shift, with 500 held-out rows to calibrate on instead of 2,000.

Both methods calibrate on the same held-out rows (ours: ``release.evaluation``'s curves; NannyML: ``CBPE``
fitted on them as its reference) and estimate each day as one window. A day's truth is its realised metric
on its labels. Error: mean |estimate - truth|; coverage: days whose truth lies inside the 95% band (ours:
the band it reports; NannyML: value +/- 1.96 sampling errors, its own bounds being +/- 3); CPU: process time
per window of the estimate (ours: ``estimate_window_metrics``, what the estimate task runs: the score shift,
the curves redrawn for the window where the scores moved, the estimates and their band; NannyML: ``estimate``
on the day's frame). Below the table: on how many days the score-shift caveat came up (and the curves were
redrawn), shifted days and the others apart. Everything is pooled over
``--seeds`` (new training, held-out rows and days each): one seed's curve error moves all of its days together
(at 20,000 rows a day it is most of the error), so three seeds ranked the two methods by luck; ten is the
default.

``--curve-check`` (no NannyML needed) asks where the error under the shift comes from: for the binary model,
per region of the held-out scores, the true positive rate of 200,000 rows drawn without and with the shift
beside the rate each calibration gives them (ours as fitted; ours moved for the rows by its score-noise model,
half-way as the estimate does and all the way; and a per-row isotonic fit as NannyML's default calibrator),
and each one's mean signed error of the estimated accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

METRICS = ("roc_auc", "accuracy", "f1")
CASES = {"no_shift": (0.0, 2000), "covariate_shift": (1.0, 2000), "small_holdout": (1.0, 500)}
WEIGHTS = {
    "binary": np.array([[1.6, -1.1, 0.7, 0.0]]),
    "multiclass": np.array([[1.6, -0.4, 0.0, 0.3], [-0.8, 1.4, 0.5, 0.0], [0.0, 0.0, -1.2, -0.6]]),
}
SHIFT = np.array([0.8, -0.6, 0.0, 0.0])  # x0 and x1 move: inputs the rule uses


def draw(task: str, n: int, rng, moved: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Rows and labels from the fixed rule: logistic (binary) or softmax (3 classes) over four inputs."""
    x = rng.normal(0, 1, (n, 4)) + moved * SHIFT
    logits = x @ WEIGHTS[task].T
    if task == "binary":
        return x, (rng.random(n) < 1 / (1 + np.exp(-logits[:, 0]))).astype(int)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return x, (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1)


def build(task: str, case: str, rows: int, days: int, seed: int) -> dict:
    """A trained model's held-out rows and ``days`` scored days: probabilities, predictions and labels."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    moved, holdout_rows = CASES[case]
    rng = np.random.default_rng([seed, rows, list(CASES).index(case), len(task)])
    x, y = draw(task, 6000, rng)
    model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, random_state=seed).fit(x, y)
    hx, hy = draw(task, holdout_rows, rng)
    out = {"classes": [int(c) for c in model.classes_], "holdout": (model.predict_proba(hx), hy), "days": []}
    for day in range(days):
        dx, dy = draw(task, rows, rng, moved if day >= days // 2 else 0.0)
        out["days"].append((model.predict_proba(dx), dy))
    return out


def frame(proba: np.ndarray, y: np.ndarray, classes: list[int]) -> pd.DataFrame:
    df = pd.DataFrame({f"proba_{c}": proba[:, i] for i, c in enumerate(classes)})
    df["y_pred"] = np.asarray(classes)[proba.argmax(axis=1)]
    df["y_true"] = y
    return df


def curve_check(seeds: int) -> None:
    """See the module: the calibrations' rates against the truth by region of the held-out scores."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.isotonic import IsotonicRegression

    from airflow_mlops.model.estimation import calibrate, fit_calibration, for_window

    regions = [(0, 0.01), (0.01, 0.1), (0.1, 0.9), (0.9, 0.99), (0.99, 1)]
    table: dict = {}
    for seed in range(seeds):
        rng = np.random.default_rng([seed, 777])
        model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, random_state=seed).fit(
            *draw("binary", 6000, rng)
        )
        hx, hy = draw("binary", 2000, rng)
        held = model.predict_proba(hx)[:, 1]
        curve = fit_calibration(held, hy)
        isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(held, hy)
        cuts = np.quantile(held, [lo for lo, _ in regions[1:]])
        for case, moved in (("no_shift", 0.0), ("covariate_shift", 1.0)):
            x, y = draw("binary", 200_000, rng, moved)
            s = model.predict_proba(x)[:, 1]
            region = np.searchsorted(cuts, s)
            half, whole = for_window(curve, s, (0.5, 1.0))
            rates = {
                "ours": calibrate(curve, s), "half": calibrate(half, s), "whole": calibrate(whole, s),
                "isotonic": isotonic.predict(s),
            }  # fmt: skip
            for i in range(len(regions)):
                cell = table.setdefault((case, i), {"share": [], "truth": [], **{who: [] for who in rates}})
                inside = region == i
                cell["share"].append(inside.mean())
                if inside.any():
                    cell["truth"].append(y[inside].mean())
                    for who, p in rates.items():
                        cell[who].append(p[inside].mean())
            truth = np.mean((s > 0.5) == y)
            for who, p in rates.items():
                estimate = np.mean(np.where(s > 0.5, p, 1 - p))
                table.setdefault((case, who), []).append(estimate - truth)
    print(
        "| case | held-out score region | share of rows | true rate | ours | ours, moved half-way | all the way | "
        "isotonic |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for case in ("no_shift", "covariate_shift"):
        for i, (lo, hi) in enumerate(regions):
            c = table[(case, i)]
            print(
                f"| {case} | {lo:.0%}-{hi:.0%} | {np.mean(c['share']):.3f} | {np.mean(c['truth']):.4f} | "
                f"{np.mean(c['ours']):.4f} | {np.mean(c['half']):.4f} | {np.mean(c['whole']):.4f} | "
                f"{np.mean(c['isotonic']):.4f} |"
            )
    for case in ("no_shift", "covariate_shift"):
        bias = {who: np.mean(table[(case, who)]) for who in ("ours", "half", "whole", "isotonic")}
        print(
            f"\n{case}: accuracy's mean signed error, ours {bias['ours']:+.4f}, moved half-way {bias['half']:+.4f}, "
            f"all the way {bias['whole']:+.4f}, isotonic {bias['isotonic']:+.4f}"
        )
    print(f"\n{seeds} seeds, 2,000 held-out rows and 200,000 rows per case each")


def ours(data: dict) -> list[dict]:
    from airflow_mlops.model.estimation import estimate_window_metrics, fit_calibration, fit_calibrations

    classes = data["classes"]
    hp, hy = data["holdout"]
    binary = len(classes) == 2
    calibration = fit_calibration(hp[:, 1], hy == classes[1]) if binary else fit_calibrations(hp, hy, classes)
    out = []
    for day, (proba, _) in enumerate(data["days"]):
        started = time.process_time()  # what the estimate task computes
        found = estimate_window_metrics(proba[:, 1] if binary else proba, calibration, metrics=METRICS, seed=day)
        cpu = time.process_time() - started
        est, moved = found["metrics"], found["score_shift"]
        out.append(
            {m: (est[m]["estimate"], est[m]["low"], est[m]["high"]) for m in METRICS}
            | {"cpu": cpu, "caveat": moved["ks"] > moved["limit"]}
        )
    return out


def nannyml_worker(folder: Path) -> None:
    """Run inside NannyML's virtualenv: every case's reference and days from ``folder``, results back as JSON."""
    import warnings

    import nannyml as nml

    warnings.filterwarnings("ignore")
    results = {}
    for ref_file in sorted(folder.glob("*__reference.parquet")):
        name = ref_file.name.removesuffix("__reference.parquet")
        reference = pd.read_parquet(ref_file)
        days = pd.read_parquet(folder / f"{name}__days.parquet")
        probas = [c for c in reference.columns if c.startswith("proba_")]
        binary = len(probas) == 2
        rows = int((days["day"] == 0).sum())
        cbpe = nml.CBPE(
            y_pred_proba=probas[1] if binary else {c.removeprefix("proba_"): c for c in probas},
            y_pred="y_pred", y_true="y_true", metrics=list(METRICS), chunk_size=rows,
            problem_type="classification_binary" if binary else "classification_multiclass",
        )  # fmt: skip
        if not binary:  # NannyML matches the class names of y_pred_proba's keys with the labels' values
            for df in (reference, days):
                df["y_pred"], df["y_true"] = df["y_pred"].astype(str), df["y_true"].astype(str)
        cbpe.fit(reference)
        out = []
        for day in sorted(days["day"].unique()):
            current = days[days["day"] == day].drop(columns=["day"]).reset_index(drop=True)
            started = time.process_time()
            res = cbpe.estimate(current).filter(period="analysis").to_df()
            cpu = time.process_time() - started
            row = {"cpu": cpu}
            for m in METRICS:
                value, se = float(res[(m, "value")].iloc[0]), float(res[(m, "sampling_error")].iloc[0])
                row[m] = (value, value - 1.96 * se, value + 1.96 * se)
            out.append(row)
        results[name] = out
    (folder / "nannyml.json").write_text(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nannyml-python", help="a Python with nannyml installed (its own virtualenv)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--curve-check", action="store_true", help="where the error under the shift comes from")
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--sizes", default="2000,20000")
    parser.add_argument("--tasks", default=",".join(WEIGHTS), help="binary, multiclass or both")
    parser.add_argument("--nannyml-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.nannyml_worker:
        nannyml_worker(Path(args.nannyml_worker))
        return
    if args.curve_check:
        curve_check(args.seeds)
        return
    from airflow_mlops.model.metrics import classification_metrics

    sizes = [int(s) for s in args.sizes.split(",")]
    tasks = args.tasks.split(",")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        found: dict[str, dict] = {}
        for task in tasks:
            for rows in sizes:
                for case in CASES:
                    for seed in range(args.seeds):
                        data = build(task, case, rows, args.days, seed)
                        name = f"{task}__{rows}__{case}__{seed}"
                        truth = [classification_metrics(y, p, data["classes"]) for p, y in data["days"]]
                        found[name] = {"truth": truth, "ours": ours(data)}
                        frame(*data["holdout"], data["classes"]).to_parquet(folder / f"{name}__reference.parquet")
                        pd.concat(
                            [frame(p, y, data["classes"]).assign(day=d) for d, (p, y) in enumerate(data["days"])],
                            ignore_index=True,
                        ).to_parquet(folder / f"{name}__days.parquet")
        theirs = {}
        if args.nannyml_python:
            env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}  # no telemetry (and no network here)
            subprocess.run(
                [args.nannyml_python, __file__, "--nannyml-worker", str(folder)], check=True, cwd=folder, env=env
            )  # fmt: skip
            theirs = json.loads((folder / "nannyml.json").read_text())
    print(
        "| model | rows/day | case | metric | error, ours / NannyML | 95% band coverage, ours / NannyML | "
        "CPU ms per window, ours / NannyML |"
    )
    print("|---|---|---|---|---|---|---|")
    for task in tasks:
        for rows in sizes:
            for case in CASES:
                names = [f"{task}__{rows}__{case}__{s}" for s in range(args.seeds)]
                for m in METRICS:
                    cells = []
                    for who in ("ours", "nannyml"):
                        err, cov, cpu, n = [], 0, [], 0
                        for name in names:
                            rows_of = found[name]["ours"] if who == "ours" else theirs.get(name)
                            if rows_of is None:
                                continue
                            for truth, est in zip(found[name]["truth"], rows_of, strict=True):
                                value, low, high = est[m]
                                err.append(abs(value - truth[m]))
                                cov += low <= truth[m] <= high
                                cpu.append(est["cpu"])
                                n += 1
                        cells.append((np.mean(err), cov, n, np.mean(cpu) * 1000) if n else None)
                    a, b = cells
                    fmt_err = f"{a[0]:.4f} / " + (f"{b[0]:.4f}" if b else "-")
                    fmt_cov = f"{a[1]}/{a[2]} / " + (f"{b[1]}/{b[2]}" if b else "-")
                    fmt_cpu = f"{a[3]:.1f} / " + (f"{b[3]:.1f}" if b else "-")
                    print(f"| {task} | {rows:,} | {case} | {m} | {fmt_err} | {fmt_cov} | {fmt_cpu} |")
    flagged = {True: [0, 0], False: [0, 0]}  # shifted day or not: [days with the caveat, days]
    for name, found_ in found.items():
        shifted = CASES[name.split("__")[2]][0] > 0
        for day, row in enumerate(found_["ours"]):
            key = shifted and day >= args.days // 2
            flagged[key][0] += row["caveat"]
            flagged[key][1] += 1
    print(
        f"\nscore-shift caveat: {flagged[True][0]} of {flagged[True][1]} shifted days, "
        f"{flagged[False][0]} of {flagged[False][1]} others"
    )
    print(f"\n{args.seeds} seeds x {args.days} days per line; {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
