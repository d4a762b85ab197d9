"""SqlPartitionOperator: a data interval's rows from a SQL database, through an Airflow connection, written as a
Parquet partition that the rest of the pipeline reads like any other."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_mlops.utils.context import NamedOutputs
from airflow_mlops.utils.failures import gate
from airflow_mlops.utils.lineage import LineageMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class SqlPartitionOperator(LineageMixin, NamedOutputs, BaseOperator):
    """Run ``sql`` (templated on the data interval) through the connection's hook and write the result, in
    chunks of ``chunk_rows`` (bounded memory), to ``output_uri`` — whole or not at all.

    Any connection whose hook is a SQL hook works (``sqlite``, ``postgres``... with their providers
    installed: the ``sql`` extra). Query parameters go in ``parameters``, never formatted into the text.
    An empty result is an error (an empty partition would train and profile nothing), and leaves no file.

    :param conn_id: Airflow connection of the database.
    :param sql: query, or a ``.sql`` file path (templated), e.g. ``... WHERE ts >= '{{ data_interval_start }}'``.
    :param output_uri: the partition to write, e.g. ``.../date={{ ds }}/part-0.parquet`` (templated).
    :param parameters: bound query parameters (templated).
    :param chunk_rows: rows fetched and written at a time.
    """

    template_fields: Sequence[str] = ("sql", "output_uri", "parameters")
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql", "parameters": "json"}
    template_ext: Sequence[str] = (".sql",)
    ui_color = "#e8eefd"

    def __init__(
        self,
        *,
        conn_id: str,
        sql: str,
        output_uri: str,
        parameters: Any = None,
        chunk_rows: int = 50_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.sql = sql
        self.output_uri = output_uri
        self.parameters = parameters
        self.chunk_rows = chunk_rows

    def lineage(self, result: dict[str, Any]) -> tuple[list[dict], list[dict]]:
        from airflow.sdk import BaseHook

        from airflow_mlops.tracking.lineage import sql_table_ids

        conn = BaseHook.get_connection(self.conn_id)
        tables = sql_table_ids(self.sql, conn.conn_type or "", conn.host, conn.port, conn.schema)
        return [{"id": t} for t in tables], [dict(result)]

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.common.sql.hooks.sql import DbApiHook
        from airflow.sdk import BaseHook

        from airflow_mlops.data.partitions import write_frames_atomic
        from airflow_mlops.storage import sha256_file

        hook = BaseHook.get_connection(self.conn_id).get_hook()
        if not isinstance(hook, DbApiHook):
            raise TypeError(
                f"connection {self.conn_id!r} gives a {type(hook).__name__}, not a SQL hook: use a database "
                "connection (sqlite, postgres, ...) and install its provider (pip install 'airflow-mlops[sql]')"
            )
        self.log.info("query on %s:\n%s", self.conn_id, self.sql)
        with gate(self, context):
            frames = hook.get_df_by_chunks(self.sql, parameters=self.parameters, chunksize=self.chunk_rows)
            rows = write_frames_atomic(frames, self.output_uri, what=f"query on {self.conn_id}")
        digest = sha256_file(self.output_uri)
        self.log.info("%d rows -> %s (sha256 %s)", rows, self.output_uri, digest)
        return self.remember({"uri": self.output_uri, "rows": rows, "sha256": digest})
