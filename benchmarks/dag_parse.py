"""Parse time of every DAG file in dags/ and of the generated file of every shipped spec (dags/pipelines),
against a one-task baseline DAG file, in one run.

Each measurement is a fresh interpreter (as the dag-processor's parsing subprocess would be): import Airflow
first, then time only the DAG file itself, and record which heavy modules it pulled in.

    .venv/bin/python benchmarks/dag_parse.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = [
    "torch",
    "peft",
    "transformers",
    "mlflow",
    "whylogs",
    "pandas",
    "numpy",
    "pyarrow",
    "kubernetes",
    "openlineage",
]
BASELINE = """
from __future__ import annotations
import datetime as dt
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG("baseline", schedule="@daily", start_date=dt.datetime(2026, 1, 1)):
    EmptyOperator(task_id="noop")
"""
# The drift monitor uses the standard TriggerDagRunOperator, whose module imports Airflow's ORM (~170 ms in
# a bare interpreter; the dag-processor has it loaded already). This baseline pays the same import.
BASELINE_TRIGGER = BASELINE.replace(
    "from airflow.providers.standard.operators.empty import EmptyOperator",
    "from airflow.providers.standard.operators.empty import EmptyOperator\n"
    "from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator  # noqa: F401",
)
PROBE = """
import json, runpy, sys, time
t0 = time.perf_counter()
import airflow.sdk  # noqa: F401 - what every DAG file pays once per parsing process
t1 = time.perf_counter()
before = set(sys.modules)
ns = runpy.run_path(sys.argv[1])
t2 = time.perf_counter()
from airflow.sdk import DAG
heavy = sorted({m.split('.')[0] for m in set(sys.modules) - before} & set(json.loads(sys.argv[2])))
print(json.dumps({"airflow_import_s": t1 - t0, "parse_s": t2 - t1, "dags": sum(isinstance(v, DAG) for v in ns.values()), "heavy": heavy}))
"""


def measure(path: Path, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(path), json.dumps(HEAVY)],
            check=True, capture_output=True, text=True, cwd=tempfile.gettempdir(),
        )  # fmt: skip
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "parse_ms": statistics.median(r["parse_s"] for r in runs) * 1000,
        "airflow_import_ms": statistics.median(r["airflow_import_s"] for r in runs) * 1000,
        "dags": runs[0]["dags"],
        "heavy": runs[0]["heavy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "baseline_dag.py").write_text(BASELINE)
        Path(tmp, "baseline_trigger_dag.py").write_text(BASELINE_TRIGGER)
        base = measure(Path(tmp, "baseline_dag.py"), args.repeat)
        base_trigger = measure(Path(tmp, "baseline_trigger_dag.py"), args.repeat)
    print(f"Airflow import (paid once per parsing process): {base['airflow_import_ms']:.0f} ms")
    print(f"baseline A (1 DAG, 1 EmptyOperator):                    parse {base['parse_ms']:.1f} ms")
    print(f"baseline B (A + import of TriggerDagRunOperator):       parse {base_trigger['parse_ms']:.1f} ms")
    print(f"{'file':<24} {'DAGs':>4} {'parse ms':>9} {'x A':>6} {'x B':>6}  heavy imports")
    from airflow_mlops.pipeline.fleet import compile_stubs

    compiled = Path(tempfile.mkdtemp(prefix="dag-parse-"))
    compile_stubs(ROOT / "dags" / "pipelines", compiled)
    for path in [*sorted((ROOT / "dags").glob("*.py")), *sorted(compiled.rglob("*.py"))]:
        m = measure(path, args.repeat)
        heavy = ", ".join(m["heavy"]) or "none"
        print(
            f"{path.name:<24} {m['dags']:>4} {m['parse_ms']:>9.1f} {m['parse_ms'] / base['parse_ms']:>6.1f} "
            f"{m['parse_ms'] / base_trigger['parse_ms']:>6.2f}  {heavy}"
        )


if __name__ == "__main__":
    main()
