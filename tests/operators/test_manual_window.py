"""Scheduling from the UI: a manual run of a scheduled training or monitor DAG reads the window given in the
trigger form, or the latest partition, never an interval "ending now" where there is no data. The first task
decides the window once; the tasks after it read that decision."""

from __future__ import annotations

import pytest
from helpers import pipelines_bag, run_dag, xcom

pytestmark = pytest.mark.slow  # runs generated DAGs' first tasks through dag.test

LAST_DAY_END = "2026-02-01T00:00:00+00:00"  # the shared demo data ends on 2026-01-31


def _first(dag, *task_ids):
    return dag.partial_subset(list(task_ids), include_downstream=False, include_upstream=False)


def test_a_manual_training_run_without_a_date_reads_the_latest_partitions(test_pipelines):
    train = test_pipelines.dags["release_churn__train"]
    run, states = run_dag(_first(train, "validate_data"))  # the form's default: logical date now
    assert states["validate_data"] == "success"
    window = xcom(train.dag_id, run.run_id, "validate_data")["window"]
    assert window == {"start": "2026-01-29T00:00:00+00:00", "end": LAST_DAY_END}  # training.window_days: 3


def test_the_trigger_forms_window_end_wins_and_a_dated_manual_run_keeps_its_interval(test_pipelines):
    train = test_pipelines.dags["release_churn__train"]
    run, _ = run_dag(_first(train, "validate_data"), "2026-01-12")  # `airflow dags test DAG 2026-01-12`
    assert xcom(train.dag_id, run.run_id, "validate_data")["window"]["end"] == "2026-01-11T00:00:00+00:00"
    # (in this order: dag.test writes a run's conf into the in-process DAG's params)
    run, _ = run_dag(_first(train, "validate_data"), conf={"window_end": "2026-01-20"})
    assert xcom(train.dag_id, run.run_id, "validate_data")["window"]["end"] == "2026-01-20T00:00:00+00:00"


def test_a_manual_monitor_run_checks_the_latest_day_and_profiles_that_day(test_pipelines):
    monitor = test_pipelines.dags["release_churn__drift_monitor"]
    run, states = run_dag(_first(monitor, "wait_for_partition", "profile_partition"))
    assert (states["wait_for_partition"], states["profile_partition"]) == ("success", "success")
    sensed = xcom(monitor.dag_id, run.run_id, "wait_for_partition", key="window")
    assert sensed == {"start": "2026-01-31T00:00:00+00:00", "end": LAST_DAY_END}
    assert xcom(monitor.dag_id, run.run_id, "profile_partition")["window"] == sensed


def test_the_tasks_after_the_first_read_its_window():
    """Rendered templates: train, test and the monitor's profile take the first task's decision."""
    from airflow_mlops.pipeline.factory import SENSED_WINDOW_END, VALIDATED_WINDOW_END

    dags = pipelines_bag().dags
    train = dags["release_churn__train"]
    assert {train.get_task(t).window_end for t in ("train_model", "test_model")} == {VALIDATED_WINDOW_END}
    assert train.get_task("validate_data").manual_window is True
    assert dags["release_churn__retrain"].get_task("validate_data").manual_window is False  # its conf decides
    assert dags["release_churn__drift_monitor"].get_task("profile_partition").window_end == SENSED_WINDOW_END
    param = train.params.get_param("window_end")
    assert (param.value, param.schema["format"]) == (None, "date")
    assert "latest partition" in param.description


def test_a_manual_run_whose_window_lacks_a_day_is_refused_naming_it_never_moved(test_pipelines, own_data):
    """The last day of the run's own window is missing: before, the window quietly moved to the day before
    (an earlier window trained); now the run is refused, once, naming the day and how to pick another."""
    import shutil

    for day in range(24, 32):  # the data now ends on 2026-01-23
        shutil.rmtree(own_data / "demo_churn" / f"date=2026-01-{day}")
    train = test_pipelines.dags["release_churn__train"]
    # weekly: the window is the 3 days ending 2026-01-25; its last day, 2026-01-24, is missing
    run, states = run_dag(_first(train, "validate_data"), "2026-01-26")
    assert states["validate_data"] == "failed"
    (ti,) = run.get_task_instances()
    assert ti.try_number == 1  # a gate: retrying cannot make the day appear in this run's window
    from airflow_mlops.utils.failures import FAILURE_XCOM

    block = xcom(train.dag_id, run.run_id, "validate_data", key=FAILURE_XCOM)
    assert "date=2026-01-24" in block
    assert "never moves to another one" in block


AFTER_END = "2026-12-01"  # the trigger form's default logical date is now, long after the spec's end_date


def test_a_manual_run_after_end_date_gets_its_tasks_and_reads_the_window_it_asks_for(test_pipelines):
    """Airflow creates no task for a run whose logical date is past a task's end_date: the run was green and
    empty. The generated tasks carry no dates of their own, so the run reads the form's window."""
    train = test_pipelines.dags["release_churn__train"]
    run, states = run_dag(_first(train, "validate_data"), AFTER_END, conf={"window_end": "2026-01-20"})
    assert states == {"validate_data": "success"}
    assert xcom(train.dag_id, run.run_id, "validate_data")["window"]["end"] == "2026-01-20T00:00:00+00:00"


def test_a_manual_window_outside_the_specs_dates_is_refused_in_one_line(test_pipelines):
    from airflow_mlops.utils.failures import FAILURE_XCOM

    train = test_pipelines.dags["release_churn__train"]
    run, states = run_dag(_first(train, "validate_data"), AFTER_END, conf={"window_end": "2026-03-01"})
    assert states == {"validate_data": "failed"}
    (ti,) = run.get_task_instances()
    assert ti.try_number == 1  # no retry: the same window would be asked for again
    block = xcom(train.dag_id, run.run_id, "validate_data", key=FAILURE_XCOM)
    assert "window 2026-02-26--2026-02-28 ends after release_churn__train's end date 2026-01-31" in block
    assert "window_end between 2026-01-01 and 2026-02-01" in block


@pytest.mark.parametrize(
    ("dag", "task"), [("release_churn__score", "score_partition"), ("release_churn__live_metrics", "live_metrics")]
)
def test_a_manual_scoring_or_live_run_past_end_date_is_refused_not_green(test_pipelines, dag, task):
    from airflow_mlops.utils.failures import FAILURE_XCOM

    built = test_pipelines.dags[dag]
    run, states = run_dag(_first(built, task), AFTER_END)
    assert states == {task: "failed"}
    block = xcom(dag, run.run_id, task, key=FAILURE_XCOM)
    assert f"ends after {dag}'s end date" in block
    assert "Trigger it with a logical date between 2026-01-01 and" in block
