"""BatchScoreOperator: the champion scores a data interval's partitions; canary or shadow challenger."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_mlops.operators._common import DEFAULT_END, DEFAULT_START
from airflow_mlops.operators.errors import gate
from airflow_mlops.operators.hooks import MlflowHook

if TYPE_CHECKING:
    from airflow.sdk import Context


class BatchScoreOperator(BaseOperator):
    """Score the partitions of the window with the ``champion`` of ``model_name``.

    Only model files whose hashes match the registry record are loaded, and nothing is unpickled. The
    predictions (with the model version of every row) go to ``<output_uri>/<window>.parquet``, written in
    chunks of ``chunk_rows`` and renamed into place when complete. ``mode``: ``champion_only``; ``canary``
    (a deterministic hash of ``id_column`` sends ``fraction`` of the rows to ``challenger``); ``shadow``
    (``challenger`` also scores every row, into ``<output_uri>_shadow/``, never served). Re-running the same
    window with the same inputs and model versions reuses the file.

    :param model_name: registered model name.
    :param data_uri: partitions (``{date}`` per day; templated).
    :param output_uri: folder of the predictions (templated).
    :param data_format: ``parquet`` or ``csv``.
    :param id_column: row id, written with the predictions; required for ``canary``.
    :param mode: ``champion_only``, ``canary`` or ``shadow``.
    :param fraction: share of rows for the canary.
    :param chunk_rows: rows per chunk (bounds memory).
    :param window_start: window start (templated).
    :param window_end: window end, exclusive (templated).
    :param mlflow_conn_id: MLflow connection.
    """

    template_fields: Sequence[str] = ("data_uri", "output_uri", "window_start", "window_end")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        model_name: str,
        data_uri: str,
        output_uri: str,
        data_format: str = "parquet",
        id_column: str | None = None,
        mode: str = "champion_only",
        fraction: float = 0.1,
        chunk_rows: int = 50_000,
        window_start: str = DEFAULT_START,
        window_end: str = DEFAULT_END,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.data_uri = data_uri
        self.output_uri = output_uri
        self.data_format = data_format
        self.id_column = id_column
        self.mode = mode
        self.fraction = fraction
        self.chunk_rows = chunk_rows
        self.window_start = window_start
        self.window_end = window_end
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_mlops import registry
        from airflow_mlops.data import make_window, partition_uris
        from airflow_mlops.scoring import load_alias, score_partition
        from airflow_mlops.storage import join, sha256_file

        with gate(), self.hook.configured() as client:
            window = make_window(self.window_start, self.window_end)
            uris = partition_uris(self.data_uri, window)
            champion = load_alias(client, self.model_name, registry.CHAMPION)
            if champion is None:
                raise AirflowFailException(
                    f"{self.model_name} has no champion: train it first ({self.model_name}__train) or promote a "
                    "version with `airflow-mlops promote`"
                )
            challenger = None
            if self.mode != "champion_only":
                challenger = load_alias(client, self.model_name, registry.CHALLENGER)
                if challenger is not None and challenger.version == champion.version:
                    challenger = None
            base = self.output_uri.rstrip("/")
            result = score_partition(
                uris, data_format=self.data_format, output_uri=join(base, f"{window.label}.parquet"),
                champion=champion, challenger=challenger, mode=self.mode, fraction=self.fraction,
                id_column=self.id_column, chunk_rows=self.chunk_rows, salt=self.model_name,
                shadow_uri=join(f"{base}_shadow", f"{window.label}.parquet"),
                inputs=[{"uri": u, "sha256": sha256_file(u)} for u in uris],
            )  # fmt: skip
        self.log.info(
            "%s: champion v%s%s -> %s (%s)",
            self.model_name, champion.version,
            f", {self.mode} challenger v{challenger.version}" if challenger else "",
            result["output_uri"], "reused" if result["reused"] else f"{result['rows']} rows",
        )  # fmt: skip
        return result
