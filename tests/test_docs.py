"""Docs tell the truth: program output quoted in README.md and docs/ is what the program prints now.

Each excerpt sits under a ``<!-- excerpt: NAME -->`` marker. The demo's summary is rendered again, by today's
code, from the record a real ``make demo`` run wrote (``docs/examples/demo-summary.json``, copied from
``.demo/summary.json``): a change of the summary's format, or of a decision's wording, fails here until the
record is made again by a real run and the excerpts follow (``scripts/doc_excerpts.py --update``). The
failure block and the sensor's time-out are compared with real runs where they happen (``tests/ui``,
``tests/operators/test_alerts.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import doc_excerpts

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "docs" / "examples" / "demo-summary.json"


def test_the_demo_summary_in_the_docs_is_what_the_program_renders_from_a_real_runs_record():
    from airflow_mlops.tools.quickstart import render_summary

    rendered = render_summary(json.loads(RECORD.read_text()))
    excerpts = doc_excerpts("demo-summary")
    assert {"README.md", "docs/operations.md"} <= set(excerpts)
    for path, block in excerpts.items():
        assert block == rendered, f"{path}: the demo summary is stale: run scripts/doc_excerpts.py --update"


def test_the_record_is_the_one_the_demo_writes():
    """The committed record has what collect_summary records: every DAG of the demo, a run of each, the
    results the summary reads, the versions with their aliases."""
    from airflow_mlops.tools.quickstart import DEMO_DAGS

    record = json.loads(RECORD.read_text())
    assert {r["dag"] for r in record["runs"]} == set(DEMO_DAGS)
    assert all(set(r) == {"dag", "state", "conf", "interval", "results"} for r in record["runs"])
    assert [int(v["version"]) for v in record["versions"]] == list(range(1, len(record["versions"]) + 1))


def test_the_updater_finds_nothing_to_change():
    """scripts/doc_excerpts.py --check: the same comparison as above, as a developer runs it."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "doc_excerpts.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_readme_stays_a_front_door():
    assert len((ROOT / "README.md").read_bytes()) <= 12 * 1024


def test_no_session_talk_in_the_docs_and_results():
    """Results carry their date and commit; who measured them, and when in which sitting, is not a fact."""
    for path in [ROOT / "benchmarks" / "RESULTS.md", *sorted((ROOT / "docs").glob("*.md"))]:
        assert "session" not in path.read_text().lower(), path


def test_the_summary_reads_the_same_whatever_order_its_store_kept_the_keys_in():
    """The stack's record comes from PostgreSQL (jsonb puts shorter keys first), the embedded one's from a JSON
    file (keys sorted): each result's keys reversed, the summary is the same, champion first, v9 before v10."""
    from airflow_mlops.tools.quickstart import render_summary

    record = json.loads(RECORD.read_text())
    rendered = render_summary(record)

    def reverse(value):
        if isinstance(value, dict):
            return {k: reverse(value[k]) for k in reversed(list(value))}
        return [reverse(v) for v in value] if isinstance(value, list) else value

    assert render_summary(reverse(record)) == rendered
    assert "rows: champion 1804, challenger 196 (" in rendered
    live = next(r["results"]["live_metrics"] for r in record["runs"] if r["dag"] == "live_metrics")
    live["per_version"] = {"10": live["per_version"]["3"], "9": live["per_version"]["2"]}
    (line,) = [ln for ln in render_summary(record).splitlines() if "v10 roc_auc" in ln]
    assert line.index("v9 roc_auc") < line.index("v10 roc_auc")
