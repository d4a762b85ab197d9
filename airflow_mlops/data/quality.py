"""Data quality learned from history: each partition (a day) against the days before it.

The data contract (:mod:`airflow_mlops.data.validation`) says what data may look like; it cannot see wrong
data inside the declared ranges. Every partition validated or profiled leaves one record of its metrics in the
pipeline's store (``<storage>/<pipeline>/quality/<day>.json``): rows, and per column the null fraction, mean,
standard deviation, min, max, distinct count and top-value share, and for a text column its most common
values. Each new partition is checked against the nearest ``history_days`` records that were themselves
clean, with bands that are robust (median and MAD, as Deequ's anomaly strategies) and aware of sample size:

- ``volume``: rows far above or below the usual (a ceiling as well as a floor), on a log scale;
- ``nulls``: a null fraction far above the usual;
- ``scale``: a column's magnitude (root mean square) far from the usual: a unit change, a ×1,000 error;
- ``stuck``: a column that varies in its history holds one value (a stuck sensor, a collapsed category);
- ``new_categories``: a text column's share of values its history never held (a flood of new categories).

With no stored history, the days of the window are checked against each other (leave one out): the first
window bootstraps the history. ``event_time`` (a declared time column) is checked per partition: its values
must fall inside the partition's own day, within a tolerance.

A finding names the check, column, day, metric, the band and the value seen. Where it gates is the caller's
choice: the training path fails on it (as on the contract); monitoring reports and alerts it. Drift stays a
separate question, weighed by the model's importance; quality never is.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.tables import fmt

if TYPE_CHECKING:
    import pandas as pd

CHECKS = ("volume", "nulls", "scale", "stuck", "new_categories")
DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "checks": list(CHECKS),
    "history_days": 30,  # the nearest clean days a partition is compared with
    "min_history": 5,  # fewer reference days: the history checks wait (reported, never a guess)
    "sigmas": 4.0,  # the band's width in robust standard deviations (1.4826 x MAD)
    "volume_factor": 3.0,  # rows within this factor of the usual always pass (weekly seasonality)
    "scale_factor": 3.0,  # a magnitude within this factor of the usual always passes (drift, not units)
    "max_new_category_share": 0.05,  # rows with values the history never held, beyond sampling noise
    "event_time": None,  # {"column": ..., "tolerance_hours": 0, "max_outside_fraction": 0.0}
}
TOP_VALUES = 100  # a text column's values kept per day (for new categories); more distinct: not checked
DISTINCT_CAP = 1000  # distinct values counted per day and column; beyond, "1000+"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def settings(quality: dict[str, Any] | None) -> dict[str, Any]:
    """The spec's ``quality`` section over the defaults."""
    return {**DEFAULTS, **(quality or {})}


def history_uri(storage_uri: str, pipeline: str, day: str) -> str:
    from airflow_mlops import storage

    return storage.join(storage_uri, pipeline, "quality", f"{day}.json")


@dataclass
class _ColumnDay:
    n: int = 0  # non-null values
    nulls: int = 0
    numeric: bool = True
    total: float = 0.0
    squares: float = 0.0
    lo: float | None = None
    hi: float | None = None
    counts: dict[str, int] = field(default_factory=dict)  # value -> rows, up to DISTINCT_CAP values
    capped: bool = False
    out_of_day: int = 0  # event time outside the partition's day
    stamped: int = 0


class QualityTracker:
    """Per partition and column metrics over a stream of batches (bounded: a capped value count per text
    column), then the history checks. ``history`` holds the stored records of other days."""

    def __init__(
        self, columns: list[str], numeric: list[str], quality: dict[str, Any] | None, history: list[dict[str, Any]]
    ) -> None:
        self.settings = settings(quality)
        event = self.settings.get("event_time") or {}
        self.time_column: str | None = event.get("column")
        self.columns = [c for c in dict.fromkeys(columns) if c != self.time_column]
        self.numeric = set(numeric)
        self.history = [h for h in history if _DAY.match(str(h.get("day", "")))]
        self.days: dict[str, dict[str, Any]] = {}  # label -> {"rows": n, "cols": {name: _ColumnDay}}
        self._wanted = set(self.columns)
        self._bounds: dict[str, tuple[Any, Any]] = {}
        self._table: tuple[list[dict[str, Any]], dict[tuple[str, str], list[float]]] | None = None

    def update(self, df: pd.DataFrame, partition: str) -> None:
        import numpy as np
        from pandas.api import types as t

        day = self.days.setdefault(partition, {"rows": 0, "cols": {}})
        day["rows"] += len(df)
        if not len(df):
            return
        wanted = self._wanted
        for name, s in df.items():  # by position: no column lookups on a fresh frame's index
            if name == self.time_column:
                if _DAY.match(partition):
                    self._event_time(s, partition)
                continue
            if name not in wanted:
                continue
            c = day["cols"].get(name)
            if c is None:
                c = day["cols"][name] = _ColumnDay(numeric=name in self.numeric)
            if c.numeric and (s.dtype.kind in "iuf" or (t.is_numeric_dtype(s) and not t.is_bool_dtype(s))):
                arr = s.to_numpy(dtype="float64", na_value=np.nan)
                missing = int(np.isnan(arr).sum())
                c.nulls += missing
                c.n += len(arr) - missing
                finite = np.isfinite(arr)
                if not finite.all():
                    arr = arr[finite]
                if arr.size:
                    lo, hi = float(arr.min()), float(arr.max())
                    c.total += float(arr.sum())
                    c.squares += float(np.dot(arr, arr))
                    c.lo = lo if c.lo is None else min(c.lo, lo)
                    c.hi = hi if c.hi is None else max(c.hi, hi)
                    if not c.capped and c.lo == c.hi:  # still one value: keep counting it
                        c.counts = {fmt(c.lo): c.n}
                    elif c.lo != c.hi:
                        c.counts, c.capped = {}, True  # a numeric column's distinct values: not needed
                continue
            c.numeric = False
            counts, missing = _value_counts(s)
            c.nulls += missing
            c.n += len(s) - missing
            if c.capped:
                continue
            for key, k in counts.items():
                c.counts[key] = c.counts.get(key, 0) + k
            if len(c.counts) > DISTINCT_CAP:
                c.capped = True
                c.counts = dict(sorted(c.counts.items(), key=lambda kv: -kv[1])[:TOP_VALUES])

    def _event_time(self, values: Any, partition: str) -> None:
        import numpy as np
        import pandas as pd

        c = self.days[partition]["cols"].setdefault(self.time_column, _ColumnDay(numeric=False))
        if getattr(values.dtype, "kind", "O") != "M":
            values = pd.to_datetime(values, utc=True, errors="coerce")
        stamps = values.to_numpy(dtype="datetime64[ns]")  # UTC (a naive time is read as UTC)
        start, end = self._day_bounds(partition)
        outside = np.flatnonzero((stamps < start) | (stamps >= end))  # NaT is neither: not counted
        c.stamped += len(stamps) - int(np.count_nonzero(np.isnat(stamps)))
        c.out_of_day += len(outside)
        if len(outside) and not c.counts:
            c.counts = {str(pd.Timestamp(stamps[outside[0]], tz="UTC")): 1}  # one example for the message

    def _day_bounds(self, partition: str) -> tuple[Any, Any]:
        """The UTC instants a partition's event times must fall within: its day, widened by the tolerance."""
        import pandas as pd

        bounds = self._bounds.get(partition)
        if bounds is None:
            tolerance = pd.Timedelta(hours=float(self.settings["event_time"].get("tolerance_hours") or 0))
            day = pd.Timestamp(partition)
            bounds = self._bounds[partition] = (
                (day - tolerance).to_datetime64(), (day + pd.Timedelta(days=1) + tolerance).to_datetime64(),
            )  # fmt: skip
        return bounds

    # -- records ----------------------------------------------------------------------------------------------

    def records(self) -> dict[str, dict[str, Any]]:
        """Each partition's metrics as stored (JSON), by day."""
        out = {}
        for label, day in self.days.items():
            cols = {}
            for name, c in day["cols"].items():
                if name == self.time_column:
                    continue
                rows = c.n + c.nulls
                metric: dict[str, Any] = {"null_fraction": c.nulls / rows if rows else None}
                if c.numeric and c.n:
                    mean = c.total / c.n
                    metric.update(
                        mean=mean, std=math.sqrt(max(c.squares / c.n - mean * mean, 0.0)), min=c.lo, max=c.hi,
                        rms=math.sqrt(c.squares / c.n),
                    )  # fmt: skip
                if not c.capped and c.counts:
                    top = max(c.counts.values())
                    metric.update(distinct=len(c.counts), top_share=top / c.n if c.n else None)
                    if not c.numeric:
                        metric["values"] = dict(sorted(c.counts.items(), key=lambda kv: -kv[1])[:TOP_VALUES])
                else:
                    metric.update(distinct=f"{DISTINCT_CAP}+" if not c.numeric else None, top_share=None)
                cols[name] = metric
            out[label] = {"day": label, "rows": day["rows"], "columns": cols}
        return out

    # -- checks -----------------------------------------------------------------------------------------------

    def check(self) -> list[dict[str, Any]]:
        """Findings and passes: one row per (check, column, day) that ran, or one row saying why none could."""
        records = self.records()
        rows: list[dict[str, Any]] = []
        s = self.settings
        if not s.get("enabled", True):
            return rows
        for label, record in sorted(records.items()):
            if self.time_column and label in self.days:
                rows += self._event_time_rows(label)
            if not _DAY.match(label):
                continue
            reference = self._reference(label, records)
            if len(reference) < int(s["min_history"]):
                rows.append(_row(
                    "quality history", "*", label, f">= {s['min_history']} clean days to compare with",
                    f"{len(reference)} day(s)", True,
                ))  # fmt: skip
                continue
            for check in s["checks"]:
                rows += getattr(self, f"_{check}")(label, record, reference)
        return rows

    def _reference(self, label: str, records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """The nearest clean days other than ``label``: stored history (not the window's own days, whose
        stored record may be a previous run's) and the window's other days (leave one out)."""
        own = dict(records)
        candidates = [h for h in self.history if h["day"] not in own and not h.get("anomalies")]
        candidates += [r for day, r in own.items() if day != label and _DAY.match(day)]
        keep = int(self.settings["history_days"])
        if len(candidates) <= keep:
            return candidates  # all of them: which are nearest does not matter
        at = dt.date.fromisoformat(label)
        candidates.sort(key=lambda r: (abs((dt.date.fromisoformat(r["day"]) - at).days), r["day"]))
        return candidates[:keep]

    def _series(self, ref: list[dict[str, Any]], column: str, metric: str) -> list[float]:
        """The finite values of ``metric`` for ``column`` over the reference days (one pass over them for every
        column and metric, kept while the same reference is asked about)."""
        cached = self._table
        if cached is None or cached[0] is not ref:
            table: dict[tuple[str, str], list[float]] = {}
            for r in ref:
                for name, m in r["columns"].items():
                    for key in ("null_fraction", "rms"):
                        value = m.get(key)
                        if isinstance(value, (int, float)) and math.isfinite(value):
                            table.setdefault((name, key), []).append(float(value))
            cached = self._table = (ref, table)
        return cached[1].get((column, metric), [])

    def _volume(self, label: str, record: dict[str, Any], ref: list[dict[str, Any]]) -> list[dict[str, Any]]:
        points = [(_ordinal(r["day"]), math.log(r["rows"])) for r in ref if r.get("rows")]
        if len(points) < int(self.settings["min_history"]) or not record["rows"]:
            return []  # an empty day is the contract's (empty partitions)
        usual, spread, slope = _trended(points, _ordinal(label))
        width = self.settings["sigmas"] * spread + math.log(self.settings["volume_factor"])
        lo, hi = math.exp(usual - width), math.exp(usual + width)
        x = record["rows"]
        trend = f", trend {math.exp(slope) - 1:+.1%} a day" if abs(slope) >= 0.005 else ""
        return [_row("quality: volume", "*", label,
                     f"rows {fmt(round(lo))}..{fmt(round(hi))} (usual {fmt(round(math.exp(usual)))}{trend})",
                     x, lo <= x <= hi, metric="rows")]  # fmt: skip

    def _nulls(self, label: str, record: dict[str, Any], ref: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for name, m in record["columns"].items():
            x = m.get("null_fraction")
            past = self._series(ref, name, "null_fraction")
            if x is None or len(past) < int(self.settings["min_history"]):
                continue
            med, spread = _robust(past)
            n = max(record["rows"], 1)
            noise = math.sqrt(max(med, 1 / n) * (1 - med) / n)
            hi = min(1.0, med + self.settings["sigmas"] * (spread + noise) + 0.01)
            out.append(_row("quality: nulls", name, label, f"null fraction <= {hi:.3f} (usual {med:.3f})", x, x <= hi,
                            metric="null_fraction"))  # fmt: skip
        return out

    def _scale(self, label: str, record: dict[str, Any], ref: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for name, m in record["columns"].items():
            x = m.get("rms")
            past = [v for v in self._series(ref, name, "rms") if v > 0]
            if not x or len(past) < int(self.settings["min_history"]):
                continue
            med, spread = _robust([math.log(v) for v in past])
            width = self.settings["sigmas"] * spread + math.log(self.settings["scale_factor"])
            lo, hi = math.exp(med - width), math.exp(med + width)
            out.append(_row(
                "quality: scale", name, label, f"magnitude (rms) {fmt(lo)}..{fmt(hi)} (usual {fmt(math.exp(med))})",
                x, lo <= x <= hi, metric="rms",
            ))  # fmt: skip
        return out

    def _stuck(self, label: str, record: dict[str, Any], ref: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for name, m in record["columns"].items():
            if m.get("distinct") != 1 or record["rows"] < 10:
                continue
            varied = [r for r in ref if _varied(r["columns"].get(name))]
            if len(varied) * 2 < len(ref) or len(varied) < int(self.settings["min_history"]):
                continue  # a column that is often constant may be constant today
            value = next(iter(m.get("values") or {}), fmt(m.get("min")))
            out.append(_row("quality: stuck", name, label, "varies (as on every usual day)",
                            f"one value ({value!r})",
                            False, metric="distinct"))  # fmt: skip
        return out

    def _new_categories(self, label: str, record: dict[str, Any], ref: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for name, m in record["columns"].items():
            values = m.get("values")
            past = [r["columns"].get(name) or {} for r in ref]
            if not values or any(not p.get("values") or len(p["values"]) >= TOP_VALUES for p in past):
                continue  # a text column with many values: categories are not its shape
            if len(past) < int(self.settings["min_history"]):
                continue
            seen = {v for p in past for v in p["values"]}
            n = sum(values.values())
            new = {v: k for v, k in values.items() if v not in seen}
            share = sum(new.values()) / n if n else 0.0
            limit = self.settings["max_new_category_share"] + self.settings["sigmas"] * math.sqrt(0.01 / max(n, 1))
            shown = ", ".join(repr(v) for v in sorted(new, key=lambda v: -new[v])[:3])
            out.append(_row(
                "quality: new categories", name, label, f"<= {limit:.1%} of rows with values never seen",
                f"{share:.1%} ({shown})" if new else "0%", share <= limit, metric="values",
                offending=sum(new.values()) or None,
            ))  # fmt: skip
        return out

    def _event_time_rows(self, label: str) -> list[dict[str, Any]]:
        c = self.days[label]["cols"].get(self.time_column)
        event = self.settings["event_time"]
        if c is None or not c.stamped:
            return []
        limit = float(event.get("max_outside_fraction") or 0.0)
        share = c.out_of_day / c.stamped
        tol = float(event.get("tolerance_hours") or 0)
        example = next(iter(c.counts), "")
        return [_row(
            "quality: event time", self.time_column, label,
            f"inside {label}" + (f" +/- {fmt(tol)} h" if tol else "") + (f" (<= {limit:.1%} outside)" if limit else ""),
            f"{c.out_of_day} of {c.stamped} outside (e.g. {example})" if c.out_of_day else "all inside",
            share <= limit, metric="event_time", offending=c.out_of_day or None,
        )]  # fmt: skip


def _value_counts(s: Any) -> tuple[dict[str, int], int]:
    """A text column's ``{value: rows}`` and its nulls; Arrow's count where the column is Arrow-backed text
    (pandas' default string type), pandas' otherwise."""
    from pandas.api import types as t

    if t.is_string_dtype(s.dtype) and hasattr(s.array, "__arrow_array__"):
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(s.array)
        counted = pc.value_counts(arr)
        pairs = zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True)
        return {str(v): int(k) for v, k in pairs if v is not None}, arr.null_count
    counts = s.value_counts(dropna=True)
    return {str(v): int(k) for v, k in counts.items()}, len(s) - int(counts.sum())


def _row(check: str, column: str, day: str, expected: str, observed: Any, passed: bool, *, metric: str = "",
         offending: int | None = None) -> dict[str, Any]:  # fmt: skip
    return {"check": check, "column": column, "partition": day, "expected": expected, "observed": observed,
            "passed": bool(passed), "metric": metric, "offending": offending}  # fmt: skip


def _robust(values: list[float]) -> tuple[float, float]:
    """(median, robust standard deviation: 1.4826 x the median absolute deviation)."""
    import statistics

    med = statistics.median(values)
    return med, 1.4826 * statistics.median(abs(v - med) for v in values)


def _ordinal(day: str) -> int:
    return dt.date.fromisoformat(day).toordinal()


TREND_MIN_DAYS = 10  # fewer reference days: no trend (a level and its spread)


def _trended(points: list[tuple[int, float]], at: int) -> tuple[float, float, float]:
    """(the level expected on day ``at``, the robust spread around the trend, the trend per day) of a series of
    (day, value): a robust linear trend (the slope between the medians of the older and the newer half, a rate of
    change as in Deequ's strategies), so that a steadily growing volume is neither an alarm nor a band so wide
    that a collapse passes. With fewer than :data:`TREND_MIN_DAYS` days, the median and its spread."""
    import statistics

    if len(points) < TREND_MIN_DAYS:
        med, spread = _robust([v for _, v in points])
        return med, spread, 0.0
    pts = sorted(points)
    half = len(pts) // 2
    old, new = pts[:half], pts[-half:]
    run = statistics.median(d for d, _ in new) - statistics.median(d for d, _ in old)
    slope = (statistics.median(v for _, v in new) - statistics.median(v for _, v in old)) / run if run else 0.0
    center = statistics.median(d for d, _ in pts)
    level, spread = _robust([v - slope * (d - center) for d, v in pts])
    return level + slope * (at - center), spread, slope


def _varied(m: dict[str, Any] | None) -> bool:
    if not m:
        return False
    if m.get("std") is not None:
        return m["std"] > 0
    return m.get("distinct") != 1


def load_history(storage_uri: str, pipeline: str) -> list[dict[str, Any]]:
    """Every stored record of the pipeline (unreadable ones are skipped: a record is a cache of metrics)."""
    from airflow_mlops import storage

    out = []
    for uri in sorted(storage.glob(storage.join(storage_uri, pipeline, "quality", "*.json"))):
        try:
            out.append(json.loads(storage.read_bytes(uri)))
        except (OSError, ValueError):
            continue
    return out


def save_records(storage_uri: str, pipeline: str, records: dict[str, dict[str, Any]], findings: list[dict[str, Any]]) -> None:
    """Store each day's record (atomically; a re-run of the day replaces it), marking the checks it failed so
    that a broken day never becomes another day's reference."""
    from airflow_mlops import storage

    for day, record in records.items():
        if not _DAY.match(day):
            continue
        failed = [f"{f['check']} {f['column']}" for f in findings if f["partition"] == day and not f["passed"]]
        storage.write_json_atomic(history_uri(storage_uri, pipeline, day), {**record, "anomalies": failed})
