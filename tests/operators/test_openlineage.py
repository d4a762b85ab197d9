"""OpenLineage: the operators' input and output datasets, emitted by the real OpenLineage listener."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlops.storage import sha256_file
from airflow_mlops.tracking.lineage import dataset_id, mlflow_namespace, sql_table_ids

pytestmark = pytest.mark.slow  # runs a DAG under the OpenLineage listener


def test_dataset_names_follow_the_openlineage_naming_spec(tmp_path):
    assert dataset_id("s3://bucket/data/date=2026-01-01/part-0.parquet") == (
        "s3://bucket",
        "data/date=2026-01-01/part-0.parquet",
    )
    assert dataset_id("s3a://bucket/x.parquet") == ("s3://bucket", "x.parquet")
    assert dataset_id("gcs://b/p/q.csv") == ("gs://b", "p/q.csv")
    assert dataset_id(str(tmp_path / "a.parquet")) == ("file", str(tmp_path / "a.parquet"))
    assert dataset_id(f"file://{tmp_path}/a.parquet") == ("file", f"{tmp_path}/a.parquet")
    assert mlflow_namespace("sqlite:////data/mlflow.db") == "mlflow+sqlite:////data/mlflow.db"
    assert (
        mlflow_namespace("https://user:secret@mlflow.example.com:5000")
        == "mlflow+https://mlflow.example.com:5000"
    )


def test_sql_sources_name_their_tables():
    sql = (
        "SELECT id, amount FROM events e JOIN shop.customers c ON c.id = e.customer WHERE ts >= '2026-01-05'"
    )
    assert sql_table_ids(sql, "postgres", "db.internal", 5433, "analytics") == [
        ("postgres://db.internal:5433", "analytics.public.events"),
        ("postgres://db.internal:5433", "analytics.shop.customers"),
    ]
    assert sql_table_ids("SELECT * FROM events", "sqlite", "/data/events.db", None, None) == [
        ("sqlite:///data/events.db", "events")
    ]


def _events(path: Path) -> dict[str, dict]:
    """The COMPLETE event of each task, by task id."""
    out = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        name = event["job"]["name"]
        if event["eventType"] == "COMPLETE" and "." in name:
            out[name.split(".", 1)[1]] = event
    return out


def _ids(datasets: list[dict]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


@pytest.mark.timeout(600)
def test_lineage_runs_from_partition_to_profile_to_model_version(roots, mlflow_uri, tmp_path):
    """The training DAG under the real OpenLineage listener (file transport), through `airflow dags test`."""
    events_file = tmp_path / "openlineage.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "mlops-tests",
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    done = subprocess.run(
        [airflow, "dags", "test", "demo_churn__train", "2026-01-18"], env=env, timeout=540,
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    events = _events(events_file)
    validate, train, register = events["validate_data"], events["train_model"], events["register_model"]

    # data partitions -> profile: each partition with its content hash as version and its row count
    partitions = validate["inputs"]
    assert len(partitions) == 14
    first = roots["data"] / "demo_churn" / "date=2026-01-04" / "part-0.parquet"
    assert (partitions[0]["namespace"], partitions[0]["name"]) == ("file", str(first))
    assert partitions[0]["facets"]["version"]["datasetVersion"] == sha256_file(str(first))
    assert partitions[0]["inputFacets"]["dataQualityMetrics"]["rowCount"] == 2000
    (profile,) = validate["outputs"]
    assert profile["name"].startswith(str(roots["artifacts"]))
    assert profile["name"].endswith(".bin")
    assert profile["outputFacets"]["outputStatistics"]["rowCount"] == 14 * 2000

    # partitions + profile -> the trained model (an MLflow logged model)
    assert _ids(train["inputs"]) == _ids(partitions) + _ids([profile])
    (model,) = train["outputs"]
    assert model["namespace"] == f"mlflow+{mlflow_uri}"
    assert model["name"].startswith("models:/m-")

    # the held-out rows of the same partitions + the candidate -> the model test report
    tested = events["test_model"]
    assert _ids(tested["inputs"]) == _ids(partitions) + _ids([model])
    assert _ids(tested["outputs"]) == [
        (f"mlflow+{mlflow_uri}", f"runs:/{model['facets']['version']['datasetVersion']}/tests/report.json")
    ]

    # the trained model -> the registered version
    assert _ids(register["inputs"]) == _ids([model])
    assert _ids(register["outputs"]) == [(f"mlflow+{mlflow_uri}", "models:/demo_churn/1")]


def test_scoring_drift_and_sql_tasks_report_their_datasets(monkeypatch, mlflow_uri, tmp_path):
    from airflow_mlops.operators.scoring import BatchScoreOperator
    from airflow_mlops.operators.sql import SqlPartitionOperator
    from airflow_mlops.sensors.drift import DriftSensor

    score = BatchScoreOperator(task_id="s", model_name="churn", data_uri="x", output_uri="y")
    score.remember({
        "inputs": [{"uri": "s3://lake/d/part-0.parquet", "sha256": "ab"}], "champion_version": "3",
        "challenger_version": "4", "output_uri": "s3://lake/p/2026-01-26.parquet", "shadow_uri": None, "rows": 9,
    })  # fmt: skip
    lineage = score.get_openlineage_facets_on_complete(None)
    ns = f"mlflow+{mlflow_uri}"
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("s3://lake", "d/part-0.parquet"), (ns, "models:/churn/3"), (ns, "models:/churn/4"),
    ]  # fmt: skip
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("s3://lake", "p/2026-01-26.parquet")]
    assert lineage.outputs[0].outputFacets["outputStatistics"].rowCount == 9

    drift = DriftSensor(task_id="d", model_name="churn", current_profile_uri="c")
    drift.remember({
        "reference_profile": "s3://a/ref.bin", "current_profile": "s3://a/cur.bin", "report_uri": "s3://a/cur-drift-v3.json",
        "report_html": "s3://a/cur-drift-v3.html", "report_png": None,
    })  # fmt: skip
    lineage = drift.get_openlineage_facets_on_complete(None)
    assert [d.name for d in lineage.inputs] == ["ref.bin", "cur.bin"]
    assert [d.name for d in lineage.outputs] == ["cur-drift-v3.json", "cur-drift-v3.html"]

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://etl@warehouse:5432/analytics")
    sql = SqlPartitionOperator(
        task_id="q", conn_id="warehouse", sql="SELECT * FROM sales.orders", output_uri="o"
    )
    sql.remember({"uri": str(tmp_path / "o.parquet"), "rows": 5, "sha256": "cd"})
    lineage = sql.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("postgres://warehouse:5432", "analytics.sales.orders")
    ]
    assert lineage.outputs[0].facets["version"].datasetVersion == "cd"
    # a task that has not run reports nothing rather than failing
    assert (
        SqlPartitionOperator(task_id="r", conn_id="warehouse", sql="x", output_uri="o")
        .get_openlineage_facets_on_complete(None)
        .inputs
        == []
    )
