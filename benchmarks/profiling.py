"""Profiling benchmarks, each against baselines in the same run.

1. Throughput of the vectorised profiler (``airflow_mlops.data.profiling.profile_stream``, batches of 65,536
   rows) vs plain ``whylogs.log(DataFrame)`` (goal >= 5x) and vs ``pandas.DataFrame.describe``, on numeric,
   string and mixed columns with nulls, NaN and inf; and the equivalence of the two profiles (counts,
   null/NaN/inf counts, types, min/max exactly; quantiles within the sketch's rank error; the same frequent
   items).
2. Peak RSS of a fresh process profiling Parquet partitions streamed from disk at 1x, 4x and 16x the data
   (goal: flat, within 1.3x from 1x to 16x); the files are written by other processes first.
3. Sharded profiling: 4 files profiled as 4 shards by 2 worker processes at a time vs 1 (what 2 Airflow
   workers running the mapped shard tasks do), then merged (goal >= 1.7x).

    .venv/bin/python benchmarks/profiling.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = 400_000
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")


def frame(kind: str, rows: int, seed: int):
    """numeric: floats with NaN and +-inf, ints; string: categories with missing values; mixed: objects of
    several types (ints, floats, strings, None) in one column, plus a numeric and a string column."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    f = rng.normal(100, 15, rows)
    f[rng.random(rows) < 0.05] = np.nan
    f[rng.random(rows) < 0.005] = np.inf
    f[rng.random(rows) < 0.005] = -np.inf
    numeric = {"amount": f, "count": rng.integers(0, 500, rows), "score": rng.random(rows)}
    cats = pd.Series(rng.choice([f"city_{i}" for i in range(60)], rows), dtype="str")
    cats[rng.random(rows) < 0.03] = None
    string = {"city": cats, "plan": pd.Series(rng.choice(["basic", "plus", "pro"], rows), dtype="str")}
    if kind == "numeric":
        return pd.DataFrame(numeric)
    if kind == "string":
        return pd.DataFrame(string)
    codes = rng.integers(0, 4, rows)
    mixed = pd.Series(np.where(codes == 0, "n/a", "x"), dtype=object)
    mixed[codes == 1] = rng.integers(0, 100, int((codes == 1).sum())).tolist()
    mixed[codes == 2] = rng.random(int((codes == 2).sum())).tolist()
    mixed[codes == 3] = None
    return pd.DataFrame({"amount": f, "city": cats, "mixed": mixed})


def throughput(kind: str) -> dict:
    from airflow_mlops.data.profiling import profile_differences, profile_schema, profile_stream
    from airflow_mlops.data.whylogs_compat import import_whylogs

    why = import_whylogs()
    df = frame(kind, ROWS, 1)
    batches = [df.iloc[i : i + 65_536] for i in range(0, len(df), 65_536)]
    timings: dict[str, list[float]] = {"whylogs.log": [], "vectorised": [], "describe": []}
    for _ in range(3):  # interleaved
        start = time.perf_counter()
        reference = why.log(pandas=df, schema=profile_schema()).view()
        timings["whylogs.log"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ours = profile_stream(batches)
        timings["vectorised"].append(time.perf_counter() - start)
        start = time.perf_counter()
        df.describe(include="all")
        timings["describe"].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in timings.items()}
    return {
        "kind": kind, "columns": list(df.columns), "rows_per_s": {k: ROWS / v for k, v in med.items()},
        "speedup_vs_whylogs": med["whylogs.log"] / med["vectorised"],
        "vs_describe": med["describe"] / med["vectorised"],
        "differences": profile_differences(reference, ours),
    }  # fmt: skip


WRITE = r"""
import sys, pyarrow as pa, pyarrow.parquet as pq
sys.path.insert(0, sys.argv[3])
from benchmarks.profiling import frame
path, rows = sys.argv[1], int(sys.argv[2])
writer = None
for i, start in enumerate(range(0, rows, 200_000)):
    df = frame("numeric", min(200_000, rows - start), i).join(frame("string", min(200_000, rows - start), i))
    table = pa.Table.from_pandas(df, preserve_index=False)
    writer = writer or pq.ParquetWriter(path, table.schema)
    writer.write_table(table, row_group_size=65_536)
writer.close()
"""

PROFILE = r"""
import json, sys, time
from airflow_mlops.data.profiling import profile_files, save_profile
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
start = time.perf_counter()
view = profile_files(sys.argv[1].split(","), "parquet")
if len(sys.argv) > 2:
    save_profile(view, sys.argv[2])
n = view.get_column("amount").to_summary_dict()["counts/n"]
print(json.dumps({"peak": hwm(), "rows": n, "seconds": time.perf_counter() - start}))
"""


def _write(path: Path, rows: int) -> None:
    subprocess.run([sys.executable, "-c", WRITE, str(path), str(rows), str(ROOT)], check=True, cwd=ROOT)


def _profile(uris: list[Path], out: Path | None = None) -> dict:
    args = [sys.executable, "-c", PROFILE, ",".join(map(str, uris))] + ([str(out)] if out else [])
    done = subprocess.run(args, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory(root: Path) -> dict[int, dict]:
    base = 250_000
    out = {}
    for factor in (1, 4, 16):
        path = root / f"x{factor}.parquet"
        _write(path, base * factor)
        out[factor] = _profile([path])
    return out


def sharded(root: Path) -> dict:
    from concurrent.futures import ThreadPoolExecutor  # threads only wait on the worker processes

    from airflow_mlops.data.profiling import load_profile

    shards = []
    for i in range(4):
        path = root / f"shard{i}.parquet"
        _write(path, 1_000_000)
        shards.append(path)
    result = {}
    for workers in (1, 2):
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda s, w=workers: _profile([s], root / f"{s.stem}.w{w}.bin"), shards))
        merged = load_profile(str(root / f"shard0.w{workers}.bin"))
        for s in shards[1:]:
            merged = merged.merge(load_profile(str(root / f"{s.stem}.w{workers}.bin")))
        result[workers] = time.perf_counter() - start
        result[f"rows_{workers}"] = merged.get_column("amount").to_summary_dict()["counts/n"]
    return result


def main() -> None:
    for kind in ("numeric", "string", "mixed"):
        r = throughput(kind)
        rps = r["rows_per_s"]
        print(f"{kind:8s} {', '.join(r['columns'])}: whylogs.log {rps['whylogs.log']:,.0f} rows/s, vectorised "
              f"{rps['vectorised']:,.0f} rows/s ({r['speedup_vs_whylogs']:.1f}x), DataFrame.describe "
              f"{rps['describe']:,.0f} rows/s (vectorised profile = {r['vs_describe']:.2f}x describe); "
              f"profiles {'agree' if not r['differences'] else 'DIFFER: ' + '; '.join(r['differences'])}")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="bench-profiling-"))
    mem = memory(root)
    mib = 1024 * 1024
    for factor, m in mem.items():
        print(
            f"peak RSS streaming {m['rows']:,} rows ({factor}x): {m['peak'] / mib:,.0f} MiB in {m['seconds']:.1f} s"
        )
    print(
        f"peak RSS 16x / 1x: {mem[16]['peak'] / mem[1]['peak']:.2f}; 4x / 1x: {mem[4]['peak'] / mem[1]['peak']:.2f}"
    )
    sh = sharded(root)
    print(f"sharded, 4 shards x 1,000,000 rows, profiled then merged: 1 worker {sh[1]:.1f} s, 2 workers {sh[2]:.1f} s "
          f"-> {sh[1] / sh[2]:.2f}x (rows in the merged profile: {sh['rows_1']:,} / {sh['rows_2']:,})")  # fmt: skip


if __name__ == "__main__":
    main()
