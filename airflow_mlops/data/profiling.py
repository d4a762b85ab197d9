"""whylogs profiles: build, store (atomically, content-addressed) and load."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow_mlops import storage
from airflow_mlops.data.whylogs_compat import import_whylogs

if TYPE_CHECKING:
    import pandas as pd
    from whylogs.core import DatasetProfileView

log = logging.getLogger(__name__)


def profile_frame(df: pd.DataFrame) -> DatasetProfileView:
    """The whylogs profile of a frame, by the vectorised path (the same profile ``whylogs.log`` gives)."""
    return profile_stream([df])


def profile_uri(storage_uri: str, pipeline: str, partition: str, content_hash: str) -> str:
    """Profiles live per pipeline and partition; the content hash in the name versions them."""
    return storage.join(storage_uri, pipeline, "profiles", partition, f"profile-{content_hash[:16]}.bin")


def save_profile(view: DatasetProfileView, uri: str, *, replace: bool = False) -> str:
    """Store a profile atomically; an existing profile of the same content is reused as is (``replace``: one
    found unreadable is written again)."""
    if storage.exists(uri) and not replace:
        log.info("profile %s already stored for this content: reusing it", uri)
        return uri
    storage.write_bytes_atomic(uri, view.serialize())
    log.info("stored profile %s", uri)
    return uri


def load_profile(uri: str) -> DatasetProfileView:
    """A stored whylogs profile. A file that is not one (truncated, overwritten, another format) is an input
    error naming it, never a deserialiser's traceback (which the drift CLI's exit status read as drift)."""
    import_whylogs()
    from whylogs.core import DatasetProfileView

    from airflow_mlops.errors import DataError

    data = storage.read_bytes(uri)
    quiet = logging.getLogger("whylogs")  # a torn file makes whylogs log each failed read; the error says it once
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return DatasetProfileView.deserialize(data)
    except Exception as err:  # whylogs raises DeserializationError, or protobuf's and struct's own on a torn file
        raise DataError(
            f"{uri} is not a readable whylogs profile ({type(err).__name__}: {str(err).strip()[:200]}): profile "
            "the data again (airflow-mlops profile, or the pipeline's profile task) or point at a stored .bin"
        ) from None
    finally:
        quiet.setLevel(level)


def stored_or_profiled(uri: str, data_uri: str, data_format: str, batch_rows: int) -> DatasetProfileView:
    """The profile of ``data_uri`` kept at its content-addressed ``uri``: reused where stored, else profiled
    and stored. A stored one that cannot be read (torn, overwritten) is derived data: made again and
    replaced, not failed on (every later window would fail the same way)."""
    from airflow_mlops.errors import DataError

    if storage.exists(uri):
        try:
            view = load_profile(uri)
            log.info("profile of this content already stored: %s", uri)
            return view
        except DataError as err:
            log.warning("%s; profiling the data again", err)
    view = profile_files([data_uri], data_format, batch_rows)
    save_profile(view, uri, replace=True)  # not there, or not readable
    return view


def preprocess(series: pd.Series) -> Any:
    """whylogs' ``PreprocessedColumn`` of ``series``, built with whole-array operations.

    whylogs classifies the values of a column one by one in Python (``Series.apply`` of type checks, and an
    ``isinf`` per float) before it feeds its sketches, which update from whole arrays. Here floats, ints,
    bools and string columns are split with NumPy/pandas vector operations into the same view, so the same
    sketches receive the same values; a column of genuinely mixed Python objects goes through whylogs' own
    splitter.
    """
    import numpy as np
    import pandas as pd
    from pandas.api import types as pdt
    from whylogs.core.preprocessing import NumpyView, PreprocessedColumn

    col = PreprocessedColumn()
    col.original = series
    col.len = len(series)
    dtype = series.dtype
    if pdt.is_float_dtype(dtype) and isinstance(dtype, np.dtype):
        values = series.to_numpy(dtype=np.float64)
        nan = np.isnan(values)
        floats = values[~nan] if nan.any() else values
        col.null_count = col.nan_count = int(nan.sum())
        col.inf_count = int(np.isinf(floats).sum())
        col.numpy = NumpyView(floats=floats)
        return col
    if pdt.is_integer_dtype(dtype) and isinstance(dtype, np.dtype):  # NumPy ints cannot hold a missing value
        col.numpy = NumpyView(ints=series.to_numpy(dtype=np.int64))
        return col
    if pdt.is_bool_dtype(dtype) and isinstance(dtype, np.dtype):
        values = series.to_numpy()
        col.bool_count = len(values)
        col.bool_count_where_true = int(values.sum())
        col.numpy = NumpyView(floats=np.empty(0), ints=np.empty(0, dtype=np.int64))
        return col
    null = series.isna().to_numpy()
    nulls = int(null.sum())
    non_null = series[~null] if nulls else series
    is_string = isinstance(dtype, pd.StringDtype) or (
        pdt.is_object_dtype(dtype) and pdt.infer_dtype(non_null, skipna=False) in ("string", "empty")
    )
    if not is_string:
        if pdt.is_object_dtype(dtype) and _split_objects(col, series, null, nulls):
            return col
        col._pandas_split(series)  # nullable extension types, datetimes, tensors: whylogs' own rules
        return col
    col.null_count = nulls
    if nulls:  # whylogs counts the float NaN among a column's missing values as NaN
        missing = series[null]
        col.nan_count = int(sum(1 for v in missing if isinstance(v, float)))
    if len(non_null):
        col.pandas.strings = non_null.astype(object) if not isinstance(dtype, pd.StringDtype) else non_null
    return col


def _kind(t: type) -> str:
    """How whylogs classifies a value of type ``t`` (its ``_pandas_split`` rules), decided once per type."""
    import decimal

    import numpy as np

    if issubclass(t, (bool, np.bool_)):
        return "bool"
    if issubclass(t, (float, np.floating, decimal.Decimal)):
        return "float"
    if issubclass(t, (int, np.integer)):
        return "int"
    if issubclass(t, str):
        return "str"
    if issubclass(t, (list, np.ndarray)):
        return "tensor"
    return "obj"


def _split_objects(col: Any, series: pd.Series, null: Any, nulls: int) -> bool:
    """Split a column of mixed Python objects by type with one pass over the values (``type``), instead of
    whylogs' six ``apply`` passes; False (the caller falls back) when it holds lists or arrays (tensors)."""
    import numpy as np
    import pandas as pd
    from whylogs.core.preprocessing import NumpyView

    values = series.to_numpy(dtype=object)
    types = pd.Series(values).map(type)
    kinds = {t: _kind(t) for t in types.unique()}
    if "tensor" in kinds.values():
        return False
    names = ("null", "bool", "float", "int", "str", "obj")
    code = types.map({t: names.index(k) for t, k in kinds.items()}).to_numpy(dtype=np.int8)
    if nulls:  # whylogs counts the float NaN among the missing values as NaN
        col.nan_count = int((code[null] == names.index("float")).sum())
        code[null] = 0
    col.null_count = nulls
    floats = values[code == names.index("float")].astype(np.float64)
    col.inf_count = int(np.isinf(floats).sum())
    is_bool = code == names.index("bool")
    col.bool_count = int(is_bool.sum())
    col.bool_count_where_true = int(values[is_bool].astype(bool).sum())
    col.numpy = NumpyView(floats=floats, ints=values[code == names.index("int")].astype(np.int64))
    col.pandas.strings = series[code == names.index("str")]
    col.pandas.tensors = pd.Series([], dtype=object)
    col.pandas.objs = series[code == names.index("obj")]
    return True


def _feed(column: Any, view: Any) -> None:
    """``ColumnProfile._process_extracted_column``, with repeated strings counted once.

    The frequent-items and cardinality sketches get each distinct string once (with its count as the weight
    of the frequent-items update; a HyperLogLog ignores repeats): the same sketch state as one update per
    value, with far fewer calls. Every other metric sees the whole view.
    """
    import copy

    from whylogs.core.metrics.metrics import CardinalityMetric, FrequentItemsMetric

    strings = view.pandas.strings
    counts = strings.value_counts(sort=False) if strings is not None and len(strings) > 256 else None
    if counts is not None and len(counts) * 4 > len(strings):
        counts = None  # mostly distinct strings: nothing to gain
    rest = None
    if counts is not None:
        rest = copy.copy(view)
        rest.pandas = copy.copy(view.pandas)
        rest.pandas.strings = None
    for metric in column._metrics.values():
        if counts is not None and isinstance(metric, FrequentItemsMetric):
            res = metric.columnar_update(rest)
            sketch, size = metric.frequent_strings.value, metric.max_frequent_item_size
            for value, n in counts.items():
                sketch.update(str(value)[0:size], int(n))
            res = type(res)(successes=res.successes + len(strings), failures=res.failures)
        elif counts is not None and isinstance(metric, CardinalityMetric):
            res = metric.columnar_update(rest)
            metric.hll.value.update_str_list([str(v) for v in counts.index])
            res = type(res)(successes=res.successes + len(strings), failures=res.failures)
        else:
            res = metric.columnar_update(view)
        column._failure_count += res.failures
        column._success_count += res.successes


def track_frame(profile: Any, df: pd.DataFrame) -> None:
    """Add the rows of ``df`` to ``profile`` (a whylogs ``DatasetProfile``), column by column, vectorised."""
    if df.empty:
        return
    if profile._schema.resolve(pandas=df):
        new = tuple(c for c in profile._schema.get_col_names() if c not in profile._columns)
        profile._initialize_new_columns(new)
    for name in df.columns:
        _feed(profile._columns[name], preprocess(df[name]))


FREQUENT_ITEMS_LG_MAX_K = 11  # up to ~1,500 distinct values counted exactly (whylogs' default, 10: ~750)


def profile_schema() -> Any:
    """The whylogs schema of every airflow-mlops profile: whylogs' defaults, with a frequent-items sketch large
    enough to count categoricals of up to ~1,500 levels exactly (drift on categories needs their counts)."""
    import_whylogs()
    from whylogs.core.metrics.metrics import MetricConfig
    from whylogs.core.schema import DatasetSchema

    return DatasetSchema(default_configs=MetricConfig(fi_lg_max_k=FREQUENT_ITEMS_LG_MAX_K))


def profile_stream(frames: Any) -> DatasetProfileView:
    """One profile of a stream of frames (record batches of a partition): memory holds one batch at a time."""
    import_whylogs()
    from whylogs.core import DatasetProfile

    profile = DatasetProfile(schema=profile_schema())
    for df in frames:
        track_frame(profile, df)
    return profile.view()


def profile_files(uris: list[str], data_format: str, batch_rows: int = 65_536) -> DatasetProfileView:
    """Profile partitions streamed from disk or object storage in record batches."""
    from airflow_mlops.data.partitions import iter_record_batches

    return profile_stream(b.to_pandas() for b in iter_record_batches(uris, data_format, batch_rows))


EXACT_KEYS = (
    "counts/n", "counts/null", "counts/nan", "counts/inf", "types/integral", "types/fractional", "types/boolean",
    "types/string", "types/object", "types/tensor", "distribution/n", "distribution/min", "distribution/max",
    "ints/min", "ints/max",
)  # fmt: skip


def profile_differences(
    a: DatasetProfileView, b: DatasetProfileView, *, rank_error: float = 0.02
) -> list[str]:
    """Where two profiles of the same data disagree: counts, types, min and max exactly; mean to 1e-9
    relative; quantiles within ``rank_error`` of each other in rank; the same frequent items."""
    import math

    problems: list[str] = []
    cols_a, cols_b = set(a.get_columns()), set(b.get_columns())
    if cols_a != cols_b:
        return [f"columns differ: {sorted(cols_a ^ cols_b)}"]
    for name in sorted(cols_a):
        sa, sb = a.get_column(name).to_summary_dict(), b.get_column(name).to_summary_dict()
        for key in EXACT_KEYS:
            va, vb = sa.get(key), sb.get(key)
            same = va == vb or (
                isinstance(va, float) and isinstance(vb, float) and math.isnan(va) and math.isnan(vb)
            )
            if not same:
                problems.append(f"{name} {key}: {va} != {vb}")
        ma, mb = sa.get("distribution/mean"), sb.get("distribution/mean")
        if ma is not None and mb is not None and not _close(ma, mb):
            problems.append(f"{name} distribution/mean: {ma} != {mb}")
        qa = [sa.get(f"distribution/q_{q}") for q in (10, 25, 50, 75, 90)]
        qb = [sb.get(f"distribution/q_{q}") for q in (10, 25, 50, 75, 90)]
        ranks = _ranks(a, name, qb)
        for q, r, x, y in zip((0.10, 0.25, 0.50, 0.75, 0.90), ranks, qa, qb, strict=True):
            # equal values need no check; otherwise q must lie within the value's rank span (a value taken by
            # many rows spans from P(X < v) to P(X <= v)), give or take the sketch's error
            if x != y and r is not None and not (r[0] - rank_error <= q <= r[1] + rank_error):
                problems.append(
                    f"{name} quantile {q}: the other profile's value has rank {r[0]:.4f}..{r[1]:.4f} here"
                )
        fa = {i.value for i in sa.get("frequent_items/frequent_strings") or []}
        fb = {i.value for i in sb.get("frequent_items/frequent_strings") or []}
        if fa != fb:
            problems.append(f"{name} frequent items differ: {sorted(fa ^ fb)[:5]}")
    return problems


def _close(x: float, y: float) -> bool:
    import math

    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def _ranks(
    view: DatasetProfileView, name: str, values: list[float | None]
) -> list[tuple[float, float] | None]:
    """The normalised rank span of each value in the column's KLL sketch: (P(X < v), P(X <= v))."""
    import math

    metric = view.get_column(name).get_metric("distribution")
    if metric is None or metric.kll.value.is_empty():
        return [None for _ in values]
    sketch = metric.kll.value
    return [
        None
        if v is None
        else (float(sketch.get_cdf([v])[0]), float(sketch.get_cdf([math.nextafter(v, math.inf)])[0]))
        for v in values
    ]


def shard_profile_uri(storage_uri: str, pipeline: str, file_sha256: str) -> str:
    """Where the profile of one partition file is kept: named by the file's content."""
    return storage.join(storage_uri, pipeline, "profiles", "shards", f"{file_sha256[:32]}.bin")
