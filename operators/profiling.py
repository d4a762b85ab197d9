"""Sharded profiling: one mapped task per partition file, then one merge (Airflow is the distributed engine).

partitions = WindowPartitionsOperator(task_id="partitions", data_uri=DATA)
shards = ProfilePartitionOperator.partial(task_id="profile", pipeline="p", artifact_uri=ROOT).expand(
    data_uri=partitions.output
)
MergeProfilesOperator(task_id="merge", pipeline="p", artifact_uri=ROOT, shards=shards.output)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_mlops.utils.context import DEFAULT_END, DEFAULT_START, NamedOutputs, explain_window
from airflow_mlops.utils.lineage import LineageMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class WindowPartitionsOperator(BaseOperator):
    """The partition URIs of the window (``{date}`` per day), to map the shard tasks over.

    :param data_uri: partitions template (templated).
    :param window_start: window start (templated).
    :param window_end: window end, exclusive (templated).
    :param window_days: when set, the window is the ``window_days`` days ending at ``window_end``.
    """

    template_fields: Sequence[str] = ("data_uri", "window_start", "window_end")

    def __init__(
        self,
        *,
        data_uri: str,
        window_start: str | None = DEFAULT_START,
        window_end: str = DEFAULT_END,
        window_days: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_uri = data_uri
        self.window_start = window_start
        self.window_end = window_end
        self.window_days = window_days

    def execute(self, context: Context) -> list[str]:
        from airflow_mlops.data.partitions import make_window
        from airflow_mlops.utils.context import window_partitions

        uris = window_partitions(
            context, self.data_uri, make_window(self.window_start, self.window_end, self.window_days),
            "load the missing day(s), then clear this task.",
        )  # fmt: skip
        self.log.info("%d partition(s) to profile:\n  %s", len(uris), "\n  ".join(uris))
        return uris


class ProfilePartitionOperator(LineageMixin, NamedOutputs, BaseOperator):
    """Profile one partition file, streamed in record batches (bounded memory), and store the profile.

    The profile is stored under ``<artifact_uri>/<pipeline>/profiles/shards/<sha256 of the file>.bin``: a
    retry or a re-run of the same content reuses it.

    :param pipeline: pipeline name.
    :param data_uri: one partition file (templated; usually mapped).
    :param artifact_uri: storage root (templated).
    :param data_format: ``parquet`` or ``csv``.
    :param batch_rows: rows per record batch.
    """

    template_fields: Sequence[str] = ("data_uri", "artifact_uri")

    def __init__(
        self,
        *,
        pipeline: str,
        data_uri: str,
        artifact_uri: str,
        data_format: str = "parquet",
        batch_rows: int = 65_536,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.data_uri = data_uri
        self.artifact_uri = artifact_uri
        self.data_format = data_format
        self.batch_rows = batch_rows

    def lineage(self, result: dict[str, Any]) -> tuple[list[dict], list[dict]]:
        data = {"uri": result["uri"], "sha256": result["sha256"], "rows": result["rows"]}
        return [data], [{"uri": result["profile_uri"], "version": result["sha256"], "rows": result["rows"]}]

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.data.profiling import shard_profile_uri, stored_or_profiled
        from airflow_mlops.storage import sha256_file

        digest = sha256_file(self.data_uri)
        uri = shard_profile_uri(self.artifact_uri, self.pipeline, digest)
        view = stored_or_profiled(uri, self.data_uri, self.data_format, self.batch_rows)
        rows = _rows(view)
        self.log.info("%s: %d rows, profile %s", self.data_uri, rows, uri)
        return self.remember({"uri": self.data_uri, "sha256": digest, "rows": rows, "profile_uri": uri})


class MergeProfilesOperator(LineageMixin, NamedOutputs, BaseOperator):
    """Merge the shard profiles of a window into one, stored where the window's profile lives.

    :param pipeline: pipeline name.
    :param shards: the :class:`ProfilePartitionOperator` results (templated; a mapped task's XCom).
    :param artifact_uri: storage root (templated).
    :param window_start: window start (templated), for the profile's place.
    :param window_end: window end (templated).
    :param window_days: as for the shards' window.
    """

    template_fields: Sequence[str] = ("shards", "artifact_uri", "window_start", "window_end")

    def __init__(
        self,
        *,
        pipeline: str,
        shards: Any,
        artifact_uri: str,
        window_start: str | None = DEFAULT_START,
        window_end: str = DEFAULT_END,
        window_days: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.shards = shards
        self.artifact_uri = artifact_uri
        self.window_start = window_start
        self.window_end = window_end
        self.window_days = window_days

    def lineage(self, result: dict[str, Any]) -> tuple[list[dict], list[dict]]:
        shards = [{"uri": s["profile_uri"], "version": s["sha256"], "rows": s["rows"]} for s in self.shards]
        return shards, [
            {"uri": result["profile_uri"], "version": result["content_hash"], "rows": result["rows"]}
        ]

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.data.partitions import content_hash, make_window
        from airflow_mlops.data.profiling import load_profile, profile_uri, save_profile

        shards = sorted(list(self.shards), key=lambda s: s["uri"])
        if not shards:
            raise ValueError("no shard profiles to merge: the window has no partitions")
        merged = load_profile(shards[0]["profile_uri"])
        for shard in shards[1:]:
            merged = merged.merge(load_profile(shard["profile_uri"]))
        window = make_window(self.window_start, self.window_end, self.window_days)
        self.log.info("%s", explain_window(context, window, self.window_days))
        digest = content_hash(shards)
        uri = save_profile(merged, profile_uri(self.artifact_uri, self.pipeline, window.label, digest))
        rows = _rows(merged)
        self.log.info("merged %d shard profiles (%d rows) -> %s", len(shards), rows, uri)
        return self.remember({
            "profile_uri": uri, "rows": rows, "content_hash": digest, "window": window.as_dict(),
            "inputs": [{k: s[k] for k in ("uri", "sha256", "rows")} for s in shards],
        })  # fmt: skip


def _rows(view: Any) -> int:
    columns = view.get_columns()
    if not columns:
        return 0
    first = next(iter(columns.values()))
    return int(first.to_summary_dict().get("counts/n", 0))
