"""Live metrics read labels through a contract: a label is one of the model's classes (or a number, for a
regressor), one per id, with ids that join; anything else is a no-retry gate naming the file, never a
metric computed on rows that silently do not match."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_mlops.errors import BadDataError, QualityGateError
from airflow_mlops.operations.live import read_labels, version_metrics

PREDICTIONS = pd.DataFrame({
    "id": [1, 2, 3, 4], "model_version": "1", "prediction": [1, 0, 1, 0], "probability": [0.9, 0.8, 0.7, 0.9],
    "proba_0": [0.1, 0.8, 0.3, 0.9], "proba_1": [0.9, 0.2, 0.7, 0.1],
})  # fmt: skip


def _labels(tmp_path, rows: dict, name: str = "date=2026-01-05") -> list[str]:
    path = tmp_path / name / "part-0.parquet"
    path.parent.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(path)
    return [str(path)]


def _measure(labels, predictions=PREDICTIONS, task="classification") -> dict:
    return version_metrics(predictions, labels, id_column="id", label_column="y", task=task)["1"]


def test_labels_read_as_floats_text_or_text_ids_are_the_models_classes(tmp_path):
    """A label column with an empty row is read as floats (1.0); labels and ids may arrive as text. Each is
    the same class and the same row: before, 1.0 matched no class and every prediction counted as wrong."""
    floats = read_labels(_labels(tmp_path, {"id": [1, 2, 3, 4], "y": [1.0, 0.0, None, 0.0]}), "parquet", ["id", "y"])
    found = _measure(floats)
    assert (found["accuracy"], found["rows"]) == (1.0, 3.0)
    text = pd.DataFrame({"id": ["1", "2", "3", "4"], "y": ["1", "0", "1", "0"]})
    assert _measure(text)["accuracy"] == 1.0
    in_rows = PREDICTIONS.assign(y=[1.0, 0.0, None, None])  # labels carried by the scored rows
    carried = version_metrics(in_rows, None, id_column=None, label_column="y", task="classification")["1"]
    assert (carried["accuracy"], carried["rows"]) == (1.0, 2.0)


def test_a_label_that_is_no_class_of_the_model_is_a_gate_naming_the_file(tmp_path):
    uris = _labels(tmp_path, {"id": [1, 2, 3, 4], "y": ["yes", "no", "yes", "no"]})
    with pytest.raises(BadDataError, match=r"labels in .*date=2026-01-05/part-0.parquet: 4 row\(s\) of 'y' hold "
                       r"'yes', 'no', which are not classes of the model \(its classes: 0, 1\)"):  # fmt: skip
        _measure(read_labels(uris, "parquet", ["id", "y"]))
    assert issubclass(BadDataError, QualityGateError)  # the operator's gate: no retry
    with pytest.raises(BadDataError, match=r"1 row\(s\) of 'y' hold 2, which are not classes"):
        _measure(pd.DataFrame({"id": [1, 2, 3, 4], "y": [1, 0, 2, 0]}))


def test_one_label_per_id_a_repeated_row_counts_once_and_a_contradiction_is_a_gate(tmp_path, caplog):
    repeated = pd.DataFrame({"id": [1, 1, 1, 2, 3, 4], "y": [1, 1, 1, 0, 1, 0]})
    assert _measure(repeated)["rows"] == 4.0  # was 6: the join counted row 1 three times
    assert "2 row(s) repeat an id with the same label" in caplog.text
    first = _labels(tmp_path, {"id": [1, 2], "y": [1, 0]}, "date=2026-01-05")
    second = _labels(tmp_path, {"id": [2, 3, 4], "y": [1, 1, 0]}, "date=2026-01-06")
    with pytest.raises(BadDataError, match=r"labels in .*date=2026-01-05/part-0.parquet \(and 1 more file\(s\)\): "
                       r"1 id\(s\) of 'id' have different labels \(2\)"):  # fmt: skip
        _measure(read_labels(first + second, "parquet", ["id", "y"]))


def test_ids_that_cannot_join_and_a_regressors_text_labels_are_gates(tmp_path):
    uris = _labels(tmp_path, {"id": ["1", "b-2"], "y": [1, 0]})
    with pytest.raises(BadDataError, match=r"1 row\(s\) of 'id' hold 'b-2', and the predictions' ids are numbers"):
        _measure(read_labels(uris, "parquet", ["id", "y"]))
    regressor = pd.DataFrame({"id": [1, 2, 3], "model_version": "1", "prediction": [1.0, 2.0, 3.0]})
    labels = pd.DataFrame({"id": [1, 2, 3], "y": ["15,765.11", "2", "3"]})
    with pytest.raises(BadDataError, match=r"1 row\(s\) of 'y' are not numbers \('15,765.11'\)"):
        _measure(labels, regressor, task="regression")
    assert _measure(labels.assign(y=["1", "2", "3.5"]), regressor, task="regression")["mae"] == pytest.approx(0.5 / 3)


def test_a_labels_file_without_the_label_column_names_the_file(tmp_path):
    from airflow_mlops.errors import DataError

    uris = _labels(tmp_path, {"id": [1, 2], "label": [1, 0]})
    with pytest.raises(DataError, match=r"labels .*date=2026-01-05/part-0.parquet: missing column\(s\) 'y'"):
        read_labels(uris, "parquet", ["id", "y"])
