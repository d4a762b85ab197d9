"""The held-out split is a contract: the training result carries it (seed, fraction, window, fingerprint of
the held-out rows), the model test evaluates on exactly those rows, and refuses where they would include
training rows (another seed, another window, changed data). Before, a hand-written DAG had to repeat the
trainer's seed, fraction and window by hand; with another seed 1,867 of 2,299 "held-out" rows were training
rows, and the log still said "on 2299 held-out rows"."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_dag, xcom

pytestmark = pytest.mark.slow  # trains a model and runs the model test through dag.test

BUNDLE = Path(__file__).resolve().parents[1] / "dag_bundle"


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(BUNDLE / "split_contract.py"))
    assert bag.import_errors == {}
    return bag.dags["split_contract"]


def test_the_model_test_evaluates_on_the_trainers_held_out_rows_or_refuses(mlflow_uri, roots, own_data, capfd):
    dag = _dag()
    run, states = run_dag(dag, "2026-01-10")
    assert states["train"] == "success"
    trained = xcom("split_contract", run.run_id, "train")
    split = trained["split"]
    assert (split["seed"], split["fraction"], split["window_start"][:10], split["window_end"][:10]) == (
        7, 0.2, "2026-01-07", "2026-01-10"
    )
    assert (split["holdout_rows"], split["train_rows"]) == (1200, 4800)

    assert states["test_by_omission"] == "success"
    report = xcom("split_contract", run.run_id, "test_by_omission")
    assert report["holdout"]["sha256"] == split["holdout_sha256"]
    assert report["holdout"]["seen_in_training"] == 0
    assert "none was seen in training" in report["holdout"]["statement"]

    assert states["test_another_seed"] == "failed"
    assert states["test_another_window"] == "failed"
    log = capfd.readouterr().out
    assert f"tested on: 1200 held-out rows (sha256 {split['holdout_sha256'][:16]}), the very rows" in log
    assert "seed=3 (the trainer's: 7)" in log
    assert "window_start='2026-01-05T00:00:00+00:00' (the trainer's: '2026-01-07T00:00:00+00:00')" in log

    # the window's data rewritten after training: the rebuilt held-out rows are not the trainer's
    import pandas as pd

    day = own_data / "demo_churn" / "date=2026-01-08" / "part-0.parquet"
    df = pd.read_parquet(day)
    df.iloc[::-1].to_parquet(day, index=False)  # the same rows in another order move rows across the split
    again, states = run_dag(dag, "2026-01-10", conf={"reevaluate_reason": "test it again on the window's data"})
    assert xcom("split_contract", again.run_id, "train")["reused"] is True
    assert states["test_by_omission"] == "failed"
    assert "are not the ones it held out" in capfd.readouterr().out
