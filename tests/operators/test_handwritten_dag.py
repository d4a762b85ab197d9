"""The same operators in a hand-written Python DAG (tests/dag_bundle/handwritten_churn.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_dag, versions, xcom

BUNDLE = Path(__file__).resolve().parents[1] / "dag_bundle"


@pytest.mark.slow  # runs the hand-written DAG
def test_handwritten_dag_trains_tests_and_registers(mlflow_uri, roots):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(BUNDLE))
    assert bag.import_errors == {}
    run, states = run_dag(bag.dags["handwritten_churn"], "2026-01-10")
    assert set(states.values()) == {"success"}
    (v,) = versions("handwritten_churn")
    assert v.aliases == ["champion"]
    # task.output["key"] works for every result key (multiple_outputs), beside the whole dict
    validated, trained = (xcom("handwritten_churn", run.run_id, t) for t in ("validate", "train"))
    assert xcom("handwritten_churn", run.run_id, "announce") == (
        f"profile {validated['profile_uri']}; MLflow run {trained['run_id']}; registered v{v.version} (champion)"
    )
    assert v.tags["mlops.window_start"].startswith(
        "2026-01-07"
    )  # 3 days ending with the interval [01-09, 01-10)
    assert xcom("handwritten_churn", run.run_id, "validate")["rows"] == 3 * 2000
    waited = xcom("handwritten_churn", run.run_id, "wait_for_data")
    assert (waited["rows"], waited["deferrals"]) == (2000, 0)  # the partition was complete at the first look


def test_the_docs_show_the_tested_file():
    """docs/operators.md shows the hand-written DAG: the same code as this tested file, not a copy that drifts."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "operators.md").read_text()
    shown = docs.split("## A hand-written DAG", 1)[1].split("```python\n", 1)[1].split("\n```", 1)[0]
    source = (root / "tests" / "dag_bundle" / "handwritten_churn.py").read_text()
    assert shown.strip() == source[source.index("import datetime") :].strip()
