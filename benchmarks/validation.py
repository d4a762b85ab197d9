"""Validation memory: streaming validation + profiling vs reading the window into pandas, same run.

Peak RSS of a fresh process validating (every constraint kind of the spec: dtype, nulls, range, allowed set,
regex, uniqueness, duplicate rows, mean and quantile bounds) and profiling Parquet partitions at 1x, 4x and
16x the data, two ways:

- streaming: ``airflow_mlops.data.validation.validate_and_profile`` (record batches of 65,536 rows);
- baseline: the window read into one DataFrame (``read_window``), then ``validate_frame`` and
  ``profile_frame`` on it (how validation worked before it streamed).

Goal: streaming flat (within 1.3x from 1x to 16x) apart from the uniqueness and duplicate-row hashes (8
bytes per distinct value or row: exact checks need them), shown by a third run without those two checks;
the baseline grows with the data.

    .venv/bin/python benchmarks/validation.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE_ROWS = 250_000
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")

WRITE = r"""
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
sys.path.insert(0, sys.argv[3])
from benchmarks.profiling import frame
path, rows = sys.argv[1], int(sys.argv[2])
writer = None
for i, start in enumerate(range(0, rows, 200_000)):
    n = min(200_000, rows - start)
    df = frame("numeric", n, i).join(frame("string", n, i))
    df.insert(0, "id", [f"row-{start + j}" for j in range(n)])
    table = pa.Table.from_pandas(df, preserve_index=False)
    writer = writer or pq.ParquetWriter(path, table.schema)
    writer.write_table(table, row_group_size=65_536)
writer.close()
"""

CONSTRAINTS = {
    "min_rows": 1,
    "max_duplicate_fraction": 0.01,
    "columns": {
        "id": {"dtype": "string", "unique": True, "regex": r"row-\d+", "nullable": False},
        "amount": {"dtype": "float", "max_null_fraction": 0.1, "min": -1e9, "max": 1e9, "mean": {"min": 90, "max": 110},
                   "quantiles": {"0.5": {"min": 95, "max": 105}}},
        "count": {"dtype": "integer", "min": 0, "max": 500},
        "city": {"dtype": "string", "allowed": [f"city_{i}" for i in range(60)], "max_null_fraction": 0.05},
        "plan": {"allowed": ["basic", "plus", "pro"], "regex": "[a-z]+"},
    },
}  # fmt: skip

RUN = r"""
import json, sys, time
constraints = json.loads(sys.argv[3])
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
import pandas, whylogs, pyarrow.parquet  # imported before the baseline figure, as both ways need them
from airflow_mlops.data.validation import validate_and_profile, validate_frame
from airflow_mlops.data.profiling import profile_frame
from airflow_mlops.data.partitions import read_window
from airflow_mlops.data.whylogs_compat import import_whylogs
import_whylogs()
idle = hwm()
start = time.perf_counter()
kw = dict(features=["amount", "count", "city"], numeric=["amount", "count"], target=None)
if sys.argv[1] == "streaming-no-hashes":  # the same without the two checks whose memory grows
    constraints.pop("max_duplicate_fraction")
    constraints["columns"]["id"].pop("unique")
if sys.argv[1].startswith("streaming"):
    report, files, view = validate_and_profile([sys.argv[2]], "parquet", constraints, **kw)
else:
    df, files = read_window([sys.argv[2]], "parquet")
    report, view = validate_frame(df, constraints, partitions=files, **kw), profile_frame(df)
failed = sorted(f"{r['check']} {r['column']}" for r in report.failed)
print(json.dumps({"peak": hwm(), "idle": idle, "rows": sum(f["rows"] for f in files), "failed": failed,
                  "seconds": time.perf_counter() - start}))
"""


def _run(way: str, path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", RUN, way, str(path), json.dumps(CONSTRAINTS)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-validation-"))
    mib = 1024 * 1024
    results: dict[str, dict[int, dict]] = {"streaming": {}, "streaming-no-hashes": {}, "baseline": {}}
    for factor in (1, 4, 16):
        path = root / f"x{factor}.parquet"
        subprocess.run(
            [sys.executable, "-c", WRITE, str(path), str(BASE_ROWS * factor), str(ROOT)], check=True
        )
        for way in results:
            results[way][factor] = r = _run(way, path)
            hashes = (
                0 if way.endswith("no-hashes") else (8 * 2 * r["rows"]) / mib
            )  # id + row hash, all distinct
            print(
                f"{way:19s} {r['rows']:>10,} rows ({factor:>2}x): peak RSS {r['peak'] / mib:,.0f} MiB "
                f"(above imports {(r['peak'] - r['idle']) / mib:,.0f} MiB; of it uniqueness/duplicate hashes "
                f"~{hashes:,.0f} MiB) in {r['seconds']:.1f} s; failed checks: {r['failed'] or 'none'}"
            )
        path.unlink()
    for way, by in results.items():
        print(
            f"{way}: peak RSS 16x / 1x = {by[16]['peak'] / by[1]['peak']:.2f}, 4x / 1x = {by[4]['peak'] / by[1]['peak']:.2f}"
        )
    s, b = results["streaming"][16], results["baseline"][16]
    print(
        f"at 16x: streaming peak = {s['peak'] / b['peak']:.2f}x the baseline's; same failed checks: {s['failed'] == b['failed']}"
    )


if __name__ == "__main__":
    main()
