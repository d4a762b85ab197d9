from __future__ import annotations

import datetime as dt

import pytest

from airflow_mlops.data.partitions import make_window, partition_uris, read_partition, split_holdout
from airflow_mlops.errors import BadDataError, DataError


def test_window_of_days_ending_at_end():
    w = make_window(None, "2026-01-18 00:00:00+00:00", days=14)
    assert w.days[0] == dt.date(2026, 1, 4)
    assert w.days[-1] == dt.date(2026, 1, 17)
    assert w.label == "2026-01-04--2026-01-17"


def test_empty_interval_explains_the_trigger_timetable():
    with pytest.raises(DataError, match="CronDataIntervalTimetable"):
        make_window("2026-01-18", "2026-01-18")


def test_missing_interval_is_explained():
    with pytest.raises(DataError, match="no data interval"):
        make_window(None, "None", days=3)


def test_missing_partitions_are_listed(tmp_path):
    (tmp_path / "2026-01-02.csv").write_text("a\n1\n")
    with pytest.raises(DataError) as err:
        partition_uris(str(tmp_path / "{date}.csv"), make_window("2026-01-01", "2026-01-04"))
    assert "2 of 3 partition(s)" in str(err.value)
    assert "2026-01-01.csv" in str(err.value)
    assert "2026-01-03.csv" in str(err.value)


def test_corrupt_parquet_names_the_file(tmp_path):
    bad = tmp_path / "part.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(BadDataError, match=r"cannot read parquet partition .*part.parquet.*corrupt"):
        read_partition(str(bad), "parquet")


def test_split_is_deterministic_and_disjoint():
    import pandas as pd

    df = pd.DataFrame({"i": range(1000), "y": [0, 1] * 500})
    a_train, a_hold = split_holdout(df, "y", 0.2, 7)
    b_train, b_hold = split_holdout(df, "y", 0.2, 7)
    assert a_hold["i"].tolist() == b_hold["i"].tolist()
    assert len(a_hold) == 200
    assert set(a_hold["i"]).isdisjoint(a_train["i"])
