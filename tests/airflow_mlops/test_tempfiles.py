"""Temporary folders a kill -9 left behind are removed by the next process of the same kind."""

from __future__ import annotations

import os
import subprocess
import sys

from airflow_mlops.tempfiles import owned_tempdir, sweep


def test_a_killed_processs_folder_goes_and_a_living_ones_stays(tmp_path, monkeypatch):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid names no process now
    left = tmp_path / f"mlops-train-{dead.pid}-abc123"
    (left / "model_dir").mkdir(parents=True)
    mine = tmp_path / f"mlops-train-{os.getpid()}-def456"
    mine.mkdir()
    other_kind = tmp_path / f"mlops-model-{dead.pid}-ghi789"
    other_kind.mkdir()
    assert sweep("train", str(tmp_path)) == [left]
    assert not left.exists()
    assert mine.exists()
    assert other_kind.exists()

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    left.mkdir()
    with owned_tempdir("train") as tmp:  # the next trainer sweeps first, and names its own after itself
        assert not left.exists()
        assert os.path.basename(tmp).startswith(f"mlops-train-{os.getpid()}-")
    assert not os.path.exists(tmp)
