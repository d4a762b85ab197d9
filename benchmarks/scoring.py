"""Batch scoring benchmarks, each against a baseline in the same run.

1. Throughput of the batch scorer (``airflow_mlops.operations.scoring.score_partition``: read the partition as record
   batches, predict, write Parquet with the model version, rename into place) vs calling the same model
   directly on the same rows already in memory (``model.predict_proba(df)``), 400,000 rows (goal >= 0.9x).
2. Peak RSS of a scoring process at 1x (400,000 rows) and 8x (3,200,000 rows) of the same data (goal: flat),
   each in a fresh process; the data file is written by a separate process first. The high-water mark is
   reset after the model is loaded (``/proc/self/clear_refs``), so the peak is that of scoring itself.

The model is the demo churn MLP (5 numeric + 3 categorical features), trained here on generated data.

    .venv/bin/python benchmarks/scoring.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = 400_000
CHUNK = 50_000
REPEATS = 9
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _frame(rows: int, seed: int):
    import pandas as pd

    from airflow_mlops.tools.demo import make_day

    parts, day, made = [], dt.date(2026, 1, 1), 0
    while made < rows:
        n = min(50_000, rows - made)
        df = make_day(day + dt.timedelta(days=len(parts)), n, drifted=False, seed=seed + len(parts))
        df["customer_id"] = [f"c{made + i:09d}" for i in range(n)]
        parts.append(df)
        made += n
    return pd.concat(parts, ignore_index=True)


def _train(root: Path) -> dict:
    from airflow_mlops.model.training.trainer import run

    data = root / "train.parquet"
    _frame(20_000, 99).to_parquet(data)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    return run({
        "pipeline": "bench", "experiment": "airflow-mlops/bench", "run_key": "bench", "artifact_root": None,
        "data": {"uris": [str(data)], "format": "parquet"}, "target": "churned", "text": None,
        "holdout_fraction": 0.2, "seed": 1, "tags": {},
        "numeric": ["age", "tenure_months", "monthly_charges", "support_calls", "data_usage_gb"],
        "categorical": ["plan", "region", "payment_method"],
        "model": {"kind": "tabular", "task": "classification", "params": {"hidden_units": [32, 16], "epochs": 2}},
    })  # fmt: skip


MEMORY_PROBE = r"""
import json, os, sys
from airflow_mlops.model.artifacts import load_mlflow_model
from airflow_mlops.operations.scoring import Scorer, score_partition
os.environ["MLFLOW_TRACKING_URI"] = sys.argv[4]
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
model = load_mlflow_model(sys.argv[2], sys.argv[3])
loaded = status("VmRSS")
process_peak = status("VmHWM")
with open("/proc/self/clear_refs", "w") as fh:  # reset the high-water mark: what follows is scoring alone
    fh.write("5")
result = score_partition([sys.argv[1]], data_format="parquet", output_uri=sys.argv[1] + ".pred.parquet",
                         champion=Scorer(model, "1", "champion"), id_column="customer_id", chunk_rows=int(sys.argv[5]))
print(json.dumps({"peak": status("VmHWM"), "loaded": loaded, "load_peak": process_peak, "rows": result["rows"]}))
"""


def main() -> None:
    from airflow_mlops.model.artifacts import load_mlflow_model
    from airflow_mlops.operations.scoring import Scorer, score_partition

    root = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    trained = _train(root)
    model = load_mlflow_model(trained["model_uri"], trained["model_sha256"])
    df = _frame(ROWS, 1)
    data = root / "score.parquet"
    df.to_parquet(data, row_group_size=CHUNK)

    direct, scorer = [], []
    for i in range(REPEATS):  # interleaved pairs, so load on the machine hits both alike
        start = time.perf_counter()
        model.predict_proba(df)
        direct.append(ROWS / (time.perf_counter() - start))
        start = time.perf_counter()
        score_partition(
            [str(data)], data_format="parquet", output_uri=str(root / f"pred{i}.parquet"),
            champion=Scorer(model, "1", "champion"), id_column="customer_id", chunk_rows=CHUNK,
        )  # fmt: skip
        scorer.append(ROWS / (time.perf_counter() - start))
    d, s = statistics.median(direct), statistics.median(scorer)
    ratios = sorted(b / a for a, b in zip(direct, scorer, strict=True))
    print(f"throughput: direct predict_proba {d:,.0f} rows/s, batch scorer (read + predict + write) {s:,.0f} rows/s; "
          f"median of {REPEATS} paired ratios {statistics.median(ratios):.3f}x (range {ratios[0]:.3f}-{ratios[-1]:.3f}; "
          f"{ROWS:,} rows, chunks of {CHUNK:,})")  # fmt: skip

    mib = 1024 * 1024
    peaks = {}
    for factor in (1, 8):
        path = root / f"x{factor}.parquet"
        subprocess.run(
            [sys.executable, "-c", "import sys, pandas as pd; from benchmarks.scoring import _frame; "
             f"_frame({ROWS * factor}, 1).to_parquet(sys.argv[1], row_group_size={CHUNK})", str(path)],
            check=True, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(path), trained["model_uri"], trained["model_sha256"],
             os.environ["MLFLOW_TRACKING_URI"], str(CHUNK)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        peaks[factor] = json.loads(out.stdout.strip().splitlines()[-1])
        size = path.stat().st_size / mib
        p = peaks[factor]
        print(f"{factor}x ({p['rows']:,} rows, {size:,.0f} MiB Parquet): peak RSS while scoring {p['peak'] / mib:,.0f} MiB "
              f"(RSS with the model loaded {p['loaded'] / mib:,.0f} MiB; peak while importing and loading "
              f"{p['load_peak'] / mib:,.0f} MiB)")  # fmt: skip
    grow = {f: peaks[f]["peak"] - peaks[f]["loaded"] for f in peaks}
    print(f"peak RSS while scoring 8x / 1x: {peaks[8]['peak'] / peaks[1]['peak']:.2f}; memory scoring adds over the "
          f"loaded model: 1x {grow[1] / mib:,.0f} MiB, 8x {grow[8] / mib:,.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
