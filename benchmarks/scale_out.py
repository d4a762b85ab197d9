"""Scale-out on the production stack: N pipelines' training and drift-monitor backfills on one Celery worker vs two.

For each worker count a fresh stack (``airflow-mlops stack``) serves N copies of the demo pipeline (one spec
each, the demo data); every pipeline backfills one training window and then four monitor days. The figure is
the wall time from the first backfill to the last run finished; the ratio is one worker's time over two
workers' (each worker runs ``--concurrency 2``). Run on a machine with enough cores for the second worker to
have any to use: the ratio is bounded by CPUs, not by Airflow.

    .venv/bin/python benchmarks/scale_out.py --pipelines 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def specs(folder: Path, n: int) -> list[str]:
    template = (ROOT / "dags" / "pipelines" / "demo_churn.yaml").read_text()
    names = [f"scale_{i:02d}" for i in range(n)]
    (folder / "pipelines").mkdir(parents=True)
    for name in names:
        text = template.replace("name: demo_churn", f"name: {name}")
        (folder / "pipelines" / f"{name}.yaml").write_text(text)
    return names


def airflow(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(Path(sys.executable).with_name("airflow")), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError((done.stdout + done.stderr)[-2000:])
    return done.stdout


def runs(env: dict[str, str], dag_id: str) -> list[dict]:
    out = airflow(env, "dags", "list-runs", dag_id, "-o", "json")
    line = next(line for line in reversed(out.strip().splitlines()) if line.startswith(("[{", "[]")))
    return json.loads(line)


def backfill(env: dict[str, str], dag_id: str, start: str, end: str) -> None:
    for _ in range(60):
        try:
            airflow(env, "backfill", "create", "--dag-id", dag_id, "--from-date", start, "--to-date", end)
            return
        except RuntimeError as err:
            if "AlreadyRunningBackfill" not in str(err):
                raise
            time.sleep(3)
    raise RuntimeError(f"backfill of {dag_id} never accepted")


def wait_all(env: dict[str, str], dag_ids: dict[str, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = True
        for dag_id, expected in dag_ids.items():
            states = [r["state"] for r in runs(env, dag_id)]
            if len(states) < expected or any(s not in ("success", "failed") for s in states):
                done = False
                break
        if done:
            return
        time.sleep(5)
    raise TimeoutError("runs did not finish")


def measure(workers: int, n: int) -> dict:
    from airflow_mlops.tools import stack as stack_tools
    from airflow_mlops.tools.demo import generate

    with tempfile.TemporaryDirectory(prefix="mlops-scale-") as tmp:
        home = Path(tmp) / "stack"
        dags = Path(tmp) / "dags"
        names = specs(dags, n)
        generate(str(home / "data"))
        stack = stack_tools.start(home, name=f"mlops_scale_{workers}", dags_folder=dags, workers=workers, say=lambda m: None)
        env = {**os.environ, **stack.env()}
        try:
            started = time.monotonic()
            for name in names:
                backfill(env, f"{name}__train", "2026-01-11", "2026-01-11")
            wait_all(env, {f"{name}__train": 1 for name in names}, 3600)
            for name in names:
                backfill(env, f"{name}__drift_monitor", "2026-01-20", "2026-01-23")
            wait_all(env, {f"{name}__drift_monitor": 4 for name in names}, 3600)
            seconds = time.monotonic() - started
            failed = sum(r["state"] == "failed" for name in names for d in ("train", "drift_monitor") for r in runs(env, f"{name}__{d}"))
        finally:
            stack_tools.stop(home, say=lambda m: None)
    return {"workers": workers, "pipelines": n, "seconds": round(seconds, 1), "failed_runs": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipelines", type=int, default=8)
    args = parser.parse_args()
    one = measure(1, args.pipelines)
    two = measure(2, args.pipelines)
    print(json.dumps({
        "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python {platform.python_version()}",
        "one_worker": one, "two_workers": two, "speed_up": round(one["seconds"] / two["seconds"], 2),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
