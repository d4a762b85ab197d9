"""Wall time of the README's first command (`airflow-mlops demo`) on this machine, from a fresh home.

The demo prints a timestamp on every step; the time until Airflow reports healthy is the fixed cost of
starting the embedded default, the rest is the pipeline itself (training, drift monitor, retraining).

    .venv/bin/python benchmarks/quickstart.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    cli = Path(sys.executable).with_name("airflow-mlops")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = subprocess.run(
            [str(cli), "demo", "--home", str(Path(tmp, "demo"))], capture_output=True, text=True, check=True
        )
        wall = time.perf_counter() - start
    steps = re.findall(r"^\[\s*([\d.]+)s\] (.*)$", out.stdout, flags=re.M)
    up = next(float(t) for t, msg in steps if msg.startswith("Airflow is up"))
    print(
        f"airflow-mlops demo: {wall:.1f} s wall; Airflow healthy after {up:.1f} s; pipeline {wall - up:.1f} s"
    )
    for t, msg in steps:
        print(f"  [{float(t):6.1f}s] {msg}")
    summary = out.stdout[out.stdout.index("Airflow runs:") :].split("Explore it:")[0]
    print(summary)


if __name__ == "__main__":
    main()
