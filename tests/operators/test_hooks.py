from __future__ import annotations

import json

import pytest

from airflow_mlops.hooks.mlflow import MlflowHook


@pytest.mark.parametrize(
    ("conn", "tracking", "ui"),
    [
        # a local store has no MLflow UI: people read it through the plugin's pages in the API server
        ({"conn_type": "mlflow", "extra": {"tracking_uri": "sqlite:////data/m.db"}}, "sqlite:////data/m.db",
         "http://localhost:8080/mlops/mlflow"),
        ({"conn_type": "mlflow", "host": "mlflow.internal", "port": 5000}, "http://mlflow.internal:5000", "http://mlflow.internal:5000"),
        ({"conn_type": "mlflow", "host": "mlflow.example.com", "schema": "https", "extra": {"ui_url": "https://ui.example.com"}},
         "https://mlflow.example.com", "https://ui.example.com"),
    ],
)  # fmt: skip
def test_tracking_uri_and_ui_url_from_the_connection(monkeypatch, conn, tracking, ui):
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_TEST", json.dumps(conn))
    hook = MlflowHook(mlflow_conn_id="mlflow_test")
    assert hook.tracking_uri == tracking
    assert hook.registry_uri == tracking
    assert hook.ui_url == ui


def test_token_goes_only_to_the_environment_and_is_restored(monkeypatch):
    import os

    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_TEST",
        json.dumps({"conn_type": "mlflow", "host": "h", "password": "s3cr3t-token"}),
    )
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    hook = MlflowHook(mlflow_conn_id="mlflow_test")
    assert hook.env()["MLFLOW_TRACKING_TOKEN"] == "s3cr3t-token"
    with hook.configured():
        assert os.environ["MLFLOW_TRACKING_TOKEN"] == "s3cr3t-token"
    assert "MLFLOW_TRACKING_TOKEN" not in os.environ


def test_connection_without_host_or_uri_says_what_to_set(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_TEST", json.dumps({"conn_type": "mlflow"}))
    with pytest.raises(ValueError, match="neither a host nor extra.tracking_uri"):
        _ = MlflowHook(mlflow_conn_id="mlflow_test").tracking_uri


def test_configured_restores_the_mlflow_uris(monkeypatch, tmp_path):
    import mlflow

    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_TEST",
        json.dumps({"conn_type": "mlflow", "extra": {"tracking_uri": "sqlite:////x/a.db"}}),
    )
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'b.db'}")
    mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'b.db'}")
    with MlflowHook(mlflow_conn_id="mlflow_test").configured() as client:
        assert mlflow.get_registry_uri() == "sqlite:////x/a.db"
        assert client._registry_uri == "sqlite:////x/a.db"
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'b.db'}"
    assert mlflow.get_registry_uri() == f"sqlite:///{tmp_path / 'b.db'}"
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def test_two_threads_never_see_each_others_connection(monkeypatch):
    """The triggerer runs the checks of several triggers in threads of one process: while one check uses
    its connection, another connection's check must wait, not switch MLflow's process-wide settings."""
    import os
    import threading

    for name, token in (("MLFLOW_A", "token-a"), ("MLFLOW_B", "token-b")):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{name}", json.dumps({"conn_type": "mlflow", "host": name.lower(), "password": token})
        )
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    b_started, b_entered = threading.Event(), threading.Event()
    seen: dict[str, str | None] = {}

    def second() -> None:
        b_started.set()
        with MlflowHook(mlflow_conn_id="mlflow_b").configured():
            b_entered.set()
            seen["b"] = os.environ.get("MLFLOW_TRACKING_TOKEN")

    with MlflowHook(mlflow_conn_id="mlflow_a").configured():
        thread = threading.Thread(target=second)
        thread.start()
        b_started.wait(5)
        entered_meanwhile = b_entered.wait(1)  # must not happen while this block holds the settings
        seen["a"] = os.environ.get("MLFLOW_TRACKING_TOKEN")
    thread.join(10)
    assert not entered_meanwhile
    assert seen == {"a": "token-a", "b": "token-b"}
    assert "MLFLOW_TRACKING_TOKEN" not in os.environ
