"""Waiting for a complete partition: the storage and Asset rules, the trigger (serialised and run), and the
sensor through dag.test() in deferrable and reschedule mode with both timeout policies."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from helpers import run_dag, xcom

from airflow_mlops.data.completeness import asset_event_covers, check_storage, count_rows
from airflow_mlops.data.partitions import Window

DAY = "2026-01-20"
START, END = f"{DAY}T00:00:00+00:00", "2026-01-21T00:00:00+00:00"


def _write(root: Path, rows: int, day: str = DAY, fmt: str = "parquet") -> Path:
    part = root / f"date={day}" / f"part-0.{fmt}"
    part.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame({"x": range(rows), "s": ["a,b" if i % 2 else "c" for i in range(rows)]})
    df.to_parquet(part) if fmt == "parquet" else df.to_csv(part, index=False)
    return part


def _uri(root: Path, fmt: str = "parquet") -> str:
    return f"{root}/date={{date}}/part-0.{fmt}"


@pytest.fixture(scope="module")
def dagbag_tests():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(Path(__file__).resolve().parents[1] / "dag_bundle" / "partition_waits.py"))
    assert bag.import_errors == {}
    return bag


@pytest.fixture
def wait_root(tmp_path, monkeypatch):
    root = tmp_path / "incoming"
    monkeypatch.setenv("AIRFLOW_VAR_MLOPS_WAIT_ROOT", str(root))
    return root


def test_storage_rules_say_what_is_missing(tmp_path):
    state = check_storage(_uri(tmp_path), "parquet", START, END, min_rows=10, marker="_SUCCESS")
    assert not state.complete
    assert "not found" in state.reason
    assert "date=2026-01-20" in state.reason

    _write(tmp_path, 5)
    state = check_storage(_uri(tmp_path), "parquet", START, END, min_rows=10, marker="_SUCCESS")
    assert not state.complete
    assert state.reason.startswith("marker file(s) not there yet")
    assert "date=2026-01-20/_SUCCESS" in state.reason

    (tmp_path / f"date={DAY}" / "_SUCCESS").touch()
    state = check_storage(_uri(tmp_path), "parquet", START, END, min_rows=10, marker="_SUCCESS")
    assert not state.complete
    assert state.reason == "5 rows so far, fewer than min_rows 10"

    _write(tmp_path, 12)
    state = check_storage(_uri(tmp_path), "parquet", START, END, min_rows=10, marker="_SUCCESS")
    assert state.complete
    assert state.rows == 12


def test_templated_marker_and_csv_row_count(tmp_path):
    part = _write(tmp_path, 7, fmt="csv")
    assert count_rows(str(part), "csv") == 7
    part.write_bytes(part.read_bytes().rstrip(b"\n"))  # no newline after the last line: still 7 rows
    assert count_rows(str(part), "csv") == 7
    marker = f"{tmp_path}/done/{{date}}.ok"
    assert not check_storage(_uri(tmp_path, "csv"), "csv", START, END, marker=marker).complete
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / f"{DAY}.ok").touch()
    assert check_storage(_uri(tmp_path, "csv"), "csv", START, END, marker=marker, min_rows=7).complete


def test_a_file_still_being_written_is_not_complete(tmp_path):
    part = _write(tmp_path, 50)
    part.write_bytes(part.read_bytes()[:100])  # truncated: no footer yet
    state = check_storage(_uri(tmp_path), "parquet", START, END, min_rows=1)
    assert not state.complete
    assert "cannot be read yet" in state.reason
    assert str(part) in state.reason


class _Event:
    def __init__(self, timestamp: str, extra: dict | None = None):
        self.timestamp, self.extra = timestamp, extra


def test_asset_events_cover_the_interval_by_partition_window_or_time():
    window = Window(dt.datetime.fromisoformat(START), dt.datetime.fromisoformat(END))
    late = "2026-01-21T03:00:00+00:00"
    assert asset_event_covers([_Event(late, {"partition": DAY})], window)[0]
    # an event that says it is for another day does not count, however late it came
    assert not asset_event_covers([_Event(late, {"partition": "2026-01-19"})], window)[0]
    assert asset_event_covers([_Event(late, {"window_end": END})], window)[0]
    assert not asset_event_covers([_Event(late, {"data_interval_end": START})], window)[0]
    assert asset_event_covers([_Event(late)], window)[0]  # no interval in extra: emitted after the end
    ready, why = asset_event_covers([_Event("2026-01-20T12:00:00+00:00")], window)
    assert not ready
    assert "among 1 recent" in why


def _run_trigger(trigger):
    """Serialise the trigger, rebuild it from its classpath as the triggerer does, run it to its event."""
    from airflow.sdk._shared.module_loading import import_string

    classpath, kwargs = trigger.serialize()
    rebuilt = import_string(classpath)(**kwargs)

    async def first():
        return await anext(rebuilt.run())

    return classpath, asyncio.run(first()).payload


def _partition_trigger(root: Path, seconds: float, **kw):
    from airflow_mlops.triggers.waiting import PartitionCompleteTrigger

    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()
    return PartitionCompleteTrigger(
        data_uri=_uri(root), data_format="parquet", window_start=START, window_end=END, min_rows=100,
        marker="_SUCCESS", poke_interval=0.05, deadline=deadline, **kw,
    )  # fmt: skip


def test_trigger_fires_when_the_partition_completes(tmp_path, monkeypatch):
    def arrive():
        _write(tmp_path, 150)
        (tmp_path / f"date={DAY}" / "_SUCCESS").touch()

    calls = _after_first_trigger_check(monkeypatch, arrive)
    classpath, event = _run_trigger(_partition_trigger(tmp_path, 20))
    assert classpath == "airflow_mlops.triggers.waiting.PartitionCompleteTrigger"
    assert len(calls) >= 2
    assert not calls[0][0]
    assert event["status"] == "ready"
    assert event["rows"] == 150
    assert event["files"] == [str(tmp_path / f"date={DAY}" / "part-0.parquet")]


def test_trigger_times_out_with_the_reason_and_hands_back_for_rechecks(tmp_path):
    _, event = _run_trigger(_partition_trigger(tmp_path, 0.2))
    assert event["status"] == "timeout"
    assert "not found" in event["reason"]
    _write(tmp_path, 150)
    (tmp_path / f"date={DAY}" / "_SUCCESS").touch()
    # storage is complete, the rest (an Asset) only the task can see: hold, then hand back
    _, event = _run_trigger(_partition_trigger(tmp_path, 20, recheck_after=0.2, hold_ready=True))
    assert event["status"] == "recheck"
    assert "re-checked by the task" in event["reason"]


def _after_first_trigger_check(monkeypatch, then) -> None:
    """Run ``then`` right after the trigger's first check: the data arrives while the sensor is deferred."""
    from airflow_mlops.triggers.waiting import PartitionCompleteTrigger

    original, calls = PartitionCompleteTrigger.check, []

    def check(self):
        result = original(self)
        if not calls:
            then()
        calls.append(result)
        return result

    monkeypatch.setattr(PartitionCompleteTrigger, "check", check)
    return calls


def test_deferrable_sensor_defers_resumes_and_finishes(dagbag_tests, wait_root, monkeypatch):
    def arrive():
        _write(wait_root, 120)
        (wait_root / f"date={DAY}" / "_SUCCESS").touch()

    _after_first_trigger_check(monkeypatch, arrive)
    run, states = run_dag(dagbag_tests.dags["wait_deferrable"], "2026-01-21")
    assert states == {"wait": "success", "downstream": "success"}
    result = xcom("wait_deferrable", run.run_id, "wait")
    assert result["deferrals"] == 1  # waited once in the (inline) triggerer, then finished in the worker
    assert result["rows"] == 120
    assert result["reason"] == "1 file(s), 120 rows"


def test_reschedule_mode_waits_too(dagbag_tests, wait_root, monkeypatch):
    """The partition is not there at the first check: the sensor gives its slot back, checks again, and goes on
    once the upstream has delivered (right after that first check: no sleep decides the order)."""
    from airflow_mlops.data import completeness

    real, seen = completeness.check_storage, []

    def check_then_deliver(*args, **kwargs):
        state = real(*args, **kwargs)
        seen.append(state.complete)
        if len(seen) == 1:
            _write(wait_root, 120)
            (wait_root / f"date={DAY}" / "_SUCCESS").touch()
        return state

    monkeypatch.setattr(completeness, "check_storage", check_then_deliver)
    run, states = run_dag(dagbag_tests.dags["wait_reschedule"], "2026-01-21")
    assert seen[0] is False
    assert seen[-1] is True
    assert dagbag_tests.dags["wait_reschedule"].get_task("wait").mode == "reschedule"
    assert states == {"wait": "success", "downstream": "success"}
    assert xcom("wait_reschedule", run.run_id, "wait")["rows"] == 120
    # it gave its slot back once (a reschedule recorded, in the same try), not a failure and a retry
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalar(select(TaskInstance).where(
            TaskInstance.dag_id == "wait_reschedule", TaskInstance.run_id == run.run_id, TaskInstance.task_id == "wait",
        ))  # fmt: skip
        reschedules = session.scalars(select(TaskReschedule).where(TaskReschedule.ti_id == ti.id)).all()
        assert (len(reschedules), ti.try_number) == (1, 1)


def test_timeout_skip_skips_the_run_and_says_why(dagbag_tests, wait_root, capfd):
    _write(wait_root, 10)  # there, but no marker
    _, states = run_dag(dagbag_tests.dags["wait_timeout_skip"], "2026-01-21")
    assert states == {"wait": "skipped", "downstream": "skipped"}
    log = capfd.readouterr().out
    assert "timed out after 1s waiting for the partition to be complete: marker file(s) not there yet" in log
    assert "on_timeout=skip" in log


def test_timeout_fail_fails_and_says_why(dagbag_tests, wait_root, capfd):
    _write(wait_root, 10)
    _, states = run_dag(dagbag_tests.dags["wait_timeout_fail"], "2026-01-21")
    assert states["wait"] == "failed"
    assert states["downstream"] == "upstream_failed"
    log = capfd.readouterr().out
    assert "timed out after 1s waiting for the partition to be complete: marker file(s) not there yet" in log
    assert "fix: once the upstream has delivered, clear this task to wait again" in log


def test_upstream_asset_event_is_required_and_read_from_the_task(dagbag_tests, wait_root, monkeypatch):
    # the upstream announced partition 2026-01-20 through its Asset; the file lands while the sensor waits
    _, states = run_dag(dagbag_tests.dags["publish_upstream_events"])
    assert states == {"publish": "success"}
    _after_first_trigger_check(monkeypatch, lambda: _write(wait_root, 10))
    run, states = run_dag(dagbag_tests.dags["wait_asset"], "2026-01-21")
    assert states == {"wait": "success", "downstream": "success"}
    result = xcom("wait_asset", run.run_id, "wait")
    assert result["reason"].startswith("1 file(s); asset 'upstream_events': event of ")
    assert result["reason"].endswith("is for partition 2026-01-20")
    assert result["deferrals"] == 1


def test_an_asset_event_for_another_day_does_not_count(dagbag_tests, wait_root):
    from airflow_mlops.sensors.partition import PartitionCompleteSensor

    _write(wait_root, 10)
    sensor = PartitionCompleteSensor(
        task_id="w", data_uri=_uri(wait_root), asset="upstream_events", window_start=START, window_end=END
    )

    class _Events(list):
        def after(self, _):
            return self

        ascending = limit = lambda self, *_: self

    context = {
        "inlet_events": {
            sensor.inlets[0]: _Events([_Event("2026-01-21T05:00:00+00:00", {"partition": "2026-01-21"})])
        }
    }
    ready, reason, _ = sensor.check(context)
    assert not ready
    assert (
        reason
        == "asset 'upstream_events': no event for [2026-01-20T00:00:00+00:00, 2026-01-21T00:00:00+00:00) among 1 recent"
    )
    trigger = sensor.make_trigger(context, deadline=END, reason=reason, deferrals=1)
    assert trigger.hold_ready  # storage is complete: the trigger must not fire at once, only hand back


def test_skip_policy_never_hides_a_real_error():
    from airflow.sdk.exceptions import AirflowSkipException

    from airflow_mlops.sensors.partition import PartitionCompleteSensor

    with pytest.raises(ValueError, match="use on_timeout='skip'"):
        PartitionCompleteSensor(task_id="w", data_uri="x", soft_fail=True)
    sensor = PartitionCompleteSensor(task_id="w", data_uri="x", on_timeout="skip", timeout=5)
    with pytest.raises(AirflowSkipException, match="timed out after 5s waiting for the partition"):
        sensor.execute_complete({}, event={"status": "timeout", "reason": "no marker"})
    from airflow.sdk.exceptions import AirflowException

    with pytest.raises(AirflowException, match="failed in the triggerer: OSError: denied") as err:
        sensor.execute_complete({}, event={"status": "error", "reason": "OSError: denied"})
    assert not isinstance(err.value, AirflowSkipException)


@pytest.mark.slow  # fresh interpreters: the default is read when the sensor module is imported, as Airflow's own
@pytest.mark.parametrize(("setting", "expected"), [("True", True), ("False", False)])
def test_deferrable_follows_airflows_default_deferrable(setting, expected):
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json; from airflow_mlops.sensors.partition import PartitionCompleteSensor as P; "
        "from airflow_mlops.sensors.drift import DriftSensor as D; "
        "print(json.dumps([P(task_id='w', data_uri='x').deferrable, "
        "D(task_id='d', model_name='m', current_profile_uri='p', numeric=['a'], categorical=[]).deferrable, "
        "P(task_id='v', data_uri='x', deferrable=not " + setting + ").deferrable]))"
    )
    env = {**os.environ, "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": setting}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [expected, expected, not expected]


def test_a_damaged_page_behind_an_intact_footer_fails_the_wait_at_once_naming_the_file(dagbag_tests, wait_root):
    """The footer reads (rows, marker: complete), but a data page is damaged: before, the sensor passed the
    day on; now it reads the pages in the worker and fails without a retry, naming the file."""
    from airflow_mlops.utils.failures import FAILURE_XCOM

    part = _write(wait_root, 20_000)
    (wait_root / f"date={DAY}" / "_SUCCESS").touch()
    assert check_storage(str(wait_root) + "/date={date}/part-0.parquet", "parquet", START, END, min_rows=100).complete
    raw = bytearray(part.read_bytes())
    raw[200:4000] = bytes(3800)
    part.write_bytes(bytes(raw))
    assert count_rows(str(part), "parquet") == 20_000  # the footer still reads
    run, states = run_dag(dagbag_tests.dags["wait_deferrable"], "2026-01-21")
    assert states == {"wait": "failed", "downstream": "upstream_failed"}
    assert [ti.try_number for ti in run.get_task_instances() if ti.task_id == "wait"] == [1]
    block = xcom("wait_deferrable", run.run_id, "wait", key=FAILURE_XCOM)
    assert f"{part}: its footer is intact but a data page cannot be read" in block
