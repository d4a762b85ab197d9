"""The MLflow connection (conn type ``mlflow``, default ``mlflow_default``).

Fields: ``host`` (+ ``schema`` http/https, ``port``) for a tracking server, or extra ``tracking_uri`` for any
MLflow URI (``sqlite:////abs/path/mlflow.db``); extra ``registry_uri`` (defaults to the tracking URI); extra
``artifact_root`` for new experiments' artifacts (default: beside a sqlite store's file); extra ``ui_url`` for
links from the Airflow UI; extra ``lock_uri``, a PostgreSQL URL every worker reaches, where promotions take
their lock (required with a tracking server; see :mod:`airflow_mlops.release.locks`); ``password`` holds a
token, or with ``login`` the basic-auth password (never logged, never put in XCom).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Generator
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

_ENV = (
    "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD", "AIRFLOW_MLOPS_LOCK_URI",
)  # fmt: skip
# MLflow reads its URIs and token from process-wide state (the environment, module globals). One block at a
# time may set them: in the triggerer, checks of two triggers run in threads of one process and would
# otherwise see each other's connection.
_PROCESS_STATE = threading.RLock()


class MlflowHook(BaseHook):
    """Reads the MLflow connection and hands out configured clients.

    :param mlflow_conn_id: Airflow connection of type ``mlflow``.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.mlflow_conn_id = mlflow_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": [],
            "relabeling": {"password": "Password or token", "host": "Tracking server host"},
            "placeholders": {
                "host": "mlflow.example.com",
                "schema": "https",
                "extra": '{"tracking_uri": "sqlite:////data/mlflow.db", "ui_url": "http://localhost:5000"}',
            },
        }

    @cached_property
    def connection(self):
        return self.get_connection(self.mlflow_conn_id)

    @cached_property
    def _extra(self) -> dict[str, Any]:
        return self.connection.extra_dejson or {}

    @property
    def tracking_uri(self) -> str:
        if self._extra.get("tracking_uri"):
            return str(self._extra["tracking_uri"])
        conn = self.connection
        if not conn.host:
            raise ValueError(
                f"connection {self.mlflow_conn_id!r} has neither a host nor extra.tracking_uri: "
                'set one, e.g. extra {"tracking_uri": "sqlite:////abs/path/mlflow.db"}'
            )
        if "://" in conn.host:
            return conn.host
        port = f":{conn.port}" if conn.port else ""
        return f"{conn.schema or 'http'}://{conn.host}{port}"

    @property
    def registry_uri(self) -> str:
        return str(self._extra.get("registry_uri") or self.tracking_uri)

    @property
    def artifact_root(self) -> str | None:
        """Where new experiments keep artifacts: extra ``artifact_root``, else beside a sqlite store's file."""
        from airflow_mlops.tracking.registry import default_artifact_root

        return str(self._extra.get("artifact_root") or "") or default_artifact_root(self.tracking_uri)

    @property
    def ui_url(self) -> str:
        """Where people read MLflow over HTTP: extra ``ui_url``, else the tracking server, else (a local
        store, no MLflow UI) the plugin's MLflow pages in the Airflow API server, behind Airflow's login."""
        if self._extra.get("ui_url"):
            return str(self._extra["ui_url"])
        uri = self.tracking_uri
        if uri.startswith(("http://", "https://")):
            return uri
        from airflow_mlops.tracking.registry import plugin_mlflow_base

        return plugin_mlflow_base()

    def env(self) -> dict[str, str]:
        """Environment for a trainer process; the token travels only here, never on a command line."""
        env = {"MLFLOW_TRACKING_URI": self.tracking_uri, "MLFLOW_REGISTRY_URI": self.registry_uri}
        if self.connection.login:  # basic auth (mlflow server --app-name basic-auth)
            env["MLFLOW_TRACKING_USERNAME"] = self.connection.login
            env["MLFLOW_TRACKING_PASSWORD"] = self.connection.password or ""
        elif self.connection.password:  # a bearer token
            env["MLFLOW_TRACKING_TOKEN"] = self.connection.password
        if self._extra.get("lock_uri"):
            # where promotions lock (airflow_mlops.release.locks); like the token, never logged or in XCom
            env["AIRFLOW_MLOPS_LOCK_URI"] = str(self._extra["lock_uri"])
        return env

    @contextlib.contextmanager
    def configured(self) -> Generator[Any, None, None]:
        """Yield an ``MlflowClient`` with this connection's URIs and token, restoring the environment after.

        Blocks of different threads never overlap (a process-wide lock): a second thread waits until the
        first has restored what it changed.
        """
        with _PROCESS_STATE:
            yield from self._configured()

    def _configured(self) -> Generator[Any, None, None]:
        saved = {k: os.environ.get(k) for k in _ENV}
        os.environ.update(self.env())
        import mlflow
        from mlflow.tracking._model_registry import utils as registry_state
        from mlflow.tracking._tracking_service import utils as tracking_state

        from airflow_mlops.tracking import registry

        # Restore exactly what was set (None = "follow the environment"); the public getters resolve defaults.
        previous = (
            getattr(tracking_state, "_tracking_uri", None),
            getattr(registry_state, "_registry_uri", None),
        )
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        try:
            yield registry.client(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        finally:
            tracking_state._tracking_uri, registry_state._registry_uri = previous
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def test_connection(self) -> tuple[bool, str]:
        try:
            with self.configured() as client:
                client.search_experiments(max_results=1)
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        return True, f"MLflow at {self.tracking_uri} answered"


class MlflowMixin:
    """The MLflow connection of an operator or a sensor: its ``mlflow_conn_id`` and one :class:`MlflowHook` per
    task instance (``self.hook``; ``with self.hook.configured() as client`` for a client on that connection)."""

    mlflow_conn_id: str = MlflowHook.default_conn_name

    @cached_property
    def hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)
