"""The vectorised streaming profiler gives the profile whylogs gives, which whylogs reads, merges and compares."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.data.profiling import (
    load_profile,
    profile_differences,
    profile_files,
    profile_schema,
    profile_stream,
    save_profile,
)
from airflow_mlops.data.whylogs_compat import import_whylogs


def _mixed(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    f = rng.normal(50, 10, n)
    f[rng.random(n) < 0.05] = np.nan
    f[rng.random(n) < 0.01] = np.inf
    f[rng.random(n) < 0.01] = -np.inf
    s = pd.Series(rng.choice(["basic", "plus", "pro", "ultra"], n), dtype="str")
    s[rng.random(n) < 0.03] = None
    obj = pd.Series(rng.choice(["x", "y", "z"], n), dtype=object)
    obj[rng.random(n) < 0.02] = None
    obj[rng.random(n) < 0.02] = np.nan
    kinds = ["a", 1, 0.5, True, False, np.int64(7), np.float32(2.5), float("inf")]
    mixed = pd.Series([kinds[i % 8] if i % 8 else f"s{i % 50}" for i in range(n)], dtype=object)
    mixed[rng.random(n) < 0.02] = None
    return pd.DataFrame({
        "f": f, "i": rng.integers(0, 1000, n), "s": s, "obj": obj, "mixed": mixed,
        "b": rng.random(n) < 0.3, "big": rng.integers(0, 10**6, n).astype(np.int64),
    })  # fmt: skip


def test_vectorised_profile_agrees_with_whylogs_log():
    why = import_whylogs()
    df = _mixed(20_000, 1)
    reference = why.log(pandas=df, schema=profile_schema()).view()
    ours = profile_stream([df.iloc[i : i + 3_000] for i in range(0, len(df), 3_000)])  # 7 batches
    assert profile_differences(reference, ours) == []
    summary = ours.get_column("f").to_summary_dict()
    assert summary["counts/n"] == 20_000
    assert summary["counts/null"] == summary["counts/nan"] == int(np.isnan(df["f"]).sum())
    assert summary["counts/inf"] == int(np.isinf(df["f"]).sum())
    assert ours.get_column("s").to_summary_dict()["counts/null"] == int(df["s"].isna().sum())


def test_the_comparison_catches_a_difference():
    why = import_whylogs()
    df = _mixed(5_000, 2)
    changed = df.copy()
    changed.loc[:10, "f"] = np.nan
    diffs = profile_differences(why.log(pandas=df, schema=profile_schema()).view(), profile_stream([changed]))
    assert any(d.startswith("f counts/null") for d in diffs)


def test_streamed_from_files_stored_merged_and_read_back(tmp_path):
    why = import_whylogs()
    parts = [_mixed(4_000, seed) for seed in (3, 4)]
    uris = []
    for i, part in enumerate(parts):
        path = tmp_path / f"p{i}.parquet"
        part.drop(columns=["mixed"]).to_parquet(
            path, row_group_size=1_000
        )  # Parquet needs one type per column
        uris.append(str(path))
    streamed = profile_files(uris, "parquet", batch_rows=700)
    whole = why.log(
        pandas=pd.concat([pd.read_parquet(u) for u in uris], ignore_index=True), schema=profile_schema()
    ).view()
    assert profile_differences(whole, streamed) == []

    # sharded: one profile per file, merged, is the profile of the whole
    merged = profile_files(uris[:1], "parquet").merge(profile_files(uris[1:], "parquet"))
    assert profile_differences(whole, merged) == []
    stored = save_profile(merged, str(tmp_path / "profiles" / "p.bin"))
    assert profile_differences(whole, load_profile(stored)) == []


@pytest.mark.parametrize("fmt", ["csv"])
def test_csv_is_streamed_too(tmp_path, fmt):
    why = import_whylogs()
    df = _mixed(3_000, 5).drop(columns=["mixed", "obj"])
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    reference = why.log(pandas=pd.read_csv(path), schema=profile_schema()).view()
    ours = profile_files([str(path)], fmt, batch_rows=500)
    assert ours.get_column("i").to_summary_dict()["counts/n"] == 3_000
    assert profile_differences(reference, ours) == []
