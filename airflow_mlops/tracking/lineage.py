"""Idempotency keys and lineage tags (data -> code -> params -> model)."""

from __future__ import annotations

import hashlib
from typing import Any

from airflow_mlops import __version__
from airflow_mlops.data.partitions import Window
from airflow_mlops.storage import canonical_hash


def config_hash(training_config: dict[str, Any]) -> str:
    return canonical_hash(training_config, 16)


def run_key(pipeline: str, window: Window, cfg_hash: str) -> str:
    """Same pipeline, same data interval, same config -> same key: a retry or backfill finds its own work."""
    raw = f"{pipeline}|{window.start.isoformat()}|{window.end.isoformat()}|{cfg_hash}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def lineage_tags(
    *,
    pipeline: str,
    window: Window,
    cfg_hash: str,
    inputs: list[dict[str, Any]] | None = None,
    content_hash: str | None = None,
    profile_uri: str | None = None,
    airflow: dict[str, Any] | None = None,
) -> dict[str, Any]:
    tags: dict[str, Any] = {
        "mlops.pipeline": pipeline,
        "mlops.code_version": f"airflow-mlops=={__version__}",
        "mlops.params_hash": cfg_hash,
        "mlops.window_start": window.start.isoformat(),
        "mlops.window_end": window.end.isoformat(),
    }
    if inputs:
        tags["mlops.input_uris"] = ",".join(f["uri"] for f in inputs)
        tags["mlops.input_sha256"] = ",".join(f["sha256"][:16] for f in inputs)
        tags["mlops.input_rows"] = sum(int(f.get("rows", 0)) for f in inputs)
    if content_hash:
        tags["mlops.data_sha256"] = content_hash
    if profile_uri:
        tags["mlops.profile_uri"] = profile_uri
    for k, v in (airflow or {}).items():
        tags[f"airflow.{k}"] = v
    if airflow:
        # the data this version was made from: a triggered run's own interval is only when it was triggered
        tags["airflow.data_interval_start"] = window.start.isoformat()
        tags["airflow.data_interval_end"] = window.end.isoformat()
    return tags


# -- OpenLineage dataset names (https://openlineage.io/docs/spec/naming) ---------------------------------------


def dataset_id(uri: str) -> tuple[str, str]:
    """(namespace, name) of a file or an object-store URL: ``file`` + absolute path, ``s3://bucket`` + key."""
    import os

    if uri.startswith("file://"):
        return "file", uri[len("file://") :]
    if "://" not in uri:
        return "file", os.path.abspath(uri)
    scheme, rest = uri.split("://", 1)
    scheme = {"s3a": "s3", "s3n": "s3", "gcs": "gs"}.get(scheme, scheme)
    bucket, _, key = rest.partition("/")
    return f"{scheme}://{bucket}", key or "/"


def mlflow_namespace(tracking_uri: str) -> str:
    """The namespace of MLflow models and versions: ``mlflow+`` the tracking URI, without credentials."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(tracking_uri)
    if not (parts.username or parts.password):
        return "mlflow+" + tracking_uri
    host = parts.hostname or ""
    return "mlflow+" + urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))


def model_dataset(namespace: str, model_uri: str) -> dict[str, Any]:
    """A model artifact (``runs:/...``, ``models:/m-...``) or a version (``models:/<name>/<version>``)."""
    return {"id": (namespace, model_uri)}


def version_dataset(namespace: str, name: str, version: Any) -> dict[str, Any]:
    """A registered model version, ``models:/<name>/<version>``, versioned by its number."""
    return {"id": (namespace, f"models:/{name}/{version}"), "version": str(version)}


def sql_table_ids(
    sql: str, conn_type: str, host: str | None, port: int | None, database: str | None
) -> list[tuple[str, str]]:
    """(namespace, name) of the tables a query reads, parsed with ``openlineage_sql``.

    PostgreSQL: ``postgres://host:port`` and ``database.schema.table``; SQLite: ``sqlite://<file>`` and the table.
    """
    from openlineage_sql import parse

    dialect = {"postgres": "postgres", "postgresql": "postgres", "sqlite": "sqlite", "mysql": "mysql"}.get(
        conn_type, "generic"
    )
    meta = parse([sql], dialect=dialect)
    if meta is None:
        return []
    out = []
    for table in meta.in_tables:
        if conn_type == "sqlite":
            out.append((f"sqlite://{host or ''}", table.name))
        else:
            scheme = {"postgresql": "postgres"}.get(conn_type, conn_type)
            schema = table.schema or ("public" if scheme == "postgres" else None)
            name = ".".join(p for p in (table.database or database, schema, table.name) if p)
            out.append(
                (
                    f"{scheme}://{host}:{port or 5432}"
                    if scheme == "postgres"
                    else f"{scheme}://{host}:{port}",
                    name,
                )
            )
    return out
