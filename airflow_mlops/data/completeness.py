"""Is a data interval's partition complete? Row count, marker file and upstream-Asset rules.

A partition that exists may still be growing: an upstream load writes files one by one, or appends. Each
rule below says "complete" only when the upstream has finished; all configured rules must hold:

- ``min_rows``: the window's files together hold at least this many rows (Parquet: the footers only; CSV:
  the lines are counted, streaming);
- ``marker``: a marker file exists. A bare name (``_SUCCESS``) is looked for beside each partition file; a
  path or URL may carry ``{date}`` (each day of the window) like the data URI;
- ``asset``: the upstream Asset has an event for this interval. An event's ``extra`` may say which
  interval it is for (``partition`` = a day, or ``window_end``/``data_interval_end``); an event without
  those counts when it was emitted at or after the end of the interval.

Every check is cheap, reads no data and never raises for a partition that is not there yet: it answers
:class:`Completeness` with the reason, which the sensor logs and puts in its timeout message.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_mlops.data.partitions import Window, parse_time, partition_uris
from airflow_mlops.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completeness:
    complete: bool
    reason: str
    rows: int | None = None
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"complete": self.complete, "reason": self.reason, "rows": self.rows, "files": self.files}


def marker_uris(marker: str, files: list[str], window: Window) -> list[str]:
    """Where the marker files of a window are: beside each partition file, or a templated path."""
    if "/" not in marker and "://" not in marker and "{date}" not in marker:
        dirs = sorted({f.rsplit("/", 1)[0] if "/" in f else "." for f in files})
        return [posixpath.join(d, marker) for d in dirs]
    if "{date}" in marker:
        return [marker.replace("{date}", d.isoformat()) for d in window.days]
    return [marker]


def count_rows(uri: str, data_format: str) -> int:
    """Rows in one file without reading its data: Parquet footers; CSV lines (streamed) minus the header (a
    quoted field with a line break counts as two lines: a completeness check, not a validation)."""
    from airflow_mlops.storage import CHUNK, _fs

    fs, path = _fs(uri)
    with fs.open(path, "rb") as fh:
        if data_format == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(fh).metadata.num_rows)
        lines, last = 0, b"\n"
        while chunk := fh.read(CHUNK):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
        lines += last != b"\n"  # a last line without a newline
        return max(lines - 1, 0)


def verify_pages(files: list[str], data_format: str, batch_rows: int = 65_536) -> None:
    """Read every data page of ``files`` (Parquet; bounded memory, nothing kept) and raise
    :class:`~airflow_mlops.errors.BadDataError` naming the first file whose footer is intact but whose data
    cannot be read: a damaged file, not one still being written (that one has no footer yet). CSV files were
    read whole by the row count already."""
    if data_format != "parquet":
        return
    import pyarrow.parquet as pq

    from airflow_mlops.errors import BadDataError
    from airflow_mlops.storage import _fs

    for uri in files:
        fs, path = _fs(uri)
        try:
            with fs.open(path, "rb") as fh:
                for _ in pq.ParquetFile(fh).iter_batches(batch_size=batch_rows):
                    pass
        except Exception as err:
            raise BadDataError(
                f"{uri}: its footer is intact but a data page cannot be read ({type(err).__name__}: {err}): the "
                "file is damaged, not still being written\nWrite the partition again upstream, then clear this task."
            ) from None


def check_storage(
    data_uri: str,
    data_format: str,
    window_start: Any,
    window_end: Any,
    *,
    min_rows: int | None = None,
    marker: str | None = None,
) -> Completeness:
    """The storage rules (partition files present, marker files, row count) for ``[start, end)``."""
    from airflow_mlops import storage

    window = Window(parse_time(window_start, "window_start"), parse_time(window_end, "window_end"))
    try:
        files = partition_uris(data_uri, window)
    except DataError as err:
        return Completeness(False, str(err).split("\n")[0].rstrip(":") + ": " + ", ".join(_missing(str(err))))
    if marker:
        missing = [m for m in marker_uris(marker, files, window) if not storage.exists(m)]
        if missing:
            return Completeness(False, f"marker file(s) not there yet: {', '.join(missing[:5])}", files=files)
    rows = None
    if min_rows:
        rows = 0
        for uri in files:
            try:
                rows += count_rows(uri, data_format)
            except Exception as err:  # a file still being written reads as corrupt: not complete yet
                return Completeness(
                    False, f"{uri} cannot be read yet ({type(err).__name__}: {err})", files=files
                )
        if rows < min_rows:
            return Completeness(False, f"{rows} rows so far, fewer than min_rows {min_rows}", rows, files)
    return Completeness(
        True, f"{len(files)} file(s)" + (f", {rows} rows" if rows is not None else ""), rows, files
    )


def _missing(message: str) -> list[str]:
    return [line.strip() for line in message.split("\n")[1:] if line.strip() and not line.startswith("Check")]


def _event_window(extra: dict[str, Any]) -> tuple[dt.datetime | None, str | None]:
    end = extra.get("window_end") or extra.get("data_interval_end")
    partition = extra.get("partition")
    try:
        return (parse_time(end, "window_end") if end else None), (str(partition) if partition else None)
    except DataError:
        return None, str(partition) if partition else None


def asset_event_covers(events: Iterable[Any], window: Window) -> tuple[bool, str]:
    """Whether one of ``events`` (with ``timestamp`` and ``extra``) is for this window (see module doc)."""
    seen = 0
    days = {d.isoformat() for d in window.days} | {window.label}
    for event in events:
        seen += 1
        end, partition = _event_window(dict(getattr(event, "extra", None) or {}))
        if partition is not None:
            if partition in days:
                return True, f"event of {event.timestamp} is for partition {partition}"
            continue
        if end is not None:
            if end >= window.end:
                return True, f"event of {event.timestamp} covers up to {end.isoformat()}"
            continue
        stamp = parse_time(event.timestamp, "event timestamp")
        if stamp >= window.end:
            return True, f"event emitted at {stamp.isoformat()}, after the interval ended"
    return False, f"no event for [{window.start.isoformat()}, {window.end.isoformat()}) among {seen} recent"
