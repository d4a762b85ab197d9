"""A partition read from SQLite and from the machine's PostgreSQL through Airflow connections."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from helpers import run_dag, xcom

pytestmark = pytest.mark.slow  # runs DAGs against databases


BUNDLE = Path(__file__).resolve().parents[1] / "dag_bundle"


def _events() -> pd.DataFrame:
    ts = pd.date_range("2026-01-04 00:00", "2026-01-06 23:00", freq="15min")
    return pd.DataFrame({
        "id": range(len(ts)), "ts": ts.strftime("%Y-%m-%d %H:%M:%S"),
        "amount": [float(i % 17) for i in range(len(ts))],
        "kind": pd.Series([("a", "b", None)[i % 3] for i in range(len(ts))], dtype=object),
    })  # fmt: skip


@pytest.fixture
def databases(tmp_path, monkeypatch):
    events = _events()
    db = tmp_path / "events.db"
    with sqlite3.connect(db) as con:
        events.to_sql("events", con, index=False)
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SQLITE", json.dumps({"conn_type": "sqlite", "host": str(db)}))

    import psycopg2

    with psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test") as con, con.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS mlops_test_events")
        cur.execute(
            "CREATE TABLE mlops_test_events (id int, ts timestamp, amount double precision, kind text)"
        )
        cur.executemany(
            "INSERT INTO mlops_test_events VALUES (%s, %s, %s, %s)",
            [
                (i, t, a, k if isinstance(k, str) else None)
                for i, t, a, k in events.itertuples(index=False, name=None)
            ],
        )
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    yield events
    with psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test") as con, con.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS mlops_test_events")


def test_one_days_rows_from_sqlite_and_postgres(databases, roots):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(BUNDLE))
    assert bag.import_errors == {}
    run, states = run_dag(bag.dags["sql_partitions"], "2026-01-06")  # interval [2026-01-05, 2026-01-06)
    assert states == {"from_sqlite": "success", "from_postgres": "success"}
    expected = databases[databases["ts"].str.startswith("2026-01-05")].reset_index(drop=True)
    for engine in ("sqlite", "postgres"):
        result = xcom("sql_partitions", run.run_id, f"from_{engine}")
        part = pd.read_parquet(result["uri"])
        assert result["uri"].endswith(f"/sql/{engine}/date=2026-01-05/part-0.parquet")
        assert result["rows"] == len(part) == 96
        assert part["id"].tolist() == expected["id"].tolist()
        assert part["amount"].tolist() == expected["amount"].tolist()
        assert part["kind"].isna().sum() == expected["kind"].isna().sum()
        assert not [p for p in Path(result["uri"]).parent.iterdir() if ".tmp-" in p.name]


def test_an_empty_interval_fails_and_writes_nothing(databases, roots):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(str(BUNDLE)).dags["sql_partitions"]
    _, states = run_dag(dag, "2026-01-10")  # no rows on 2026-01-09
    assert states == {"from_sqlite": "failed", "from_postgres": "failed"}
    for engine in ("sqlite", "postgres"):
        folder = roots["artifacts"] / "sql" / engine / "date=2026-01-09"
        assert not (folder.exists() and list(folder.iterdir()))  # no file, not even a partial one
