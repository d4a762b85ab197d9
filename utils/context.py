"""Small helpers shared by the adapters: Airflow context in, plain values out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_START = "{{ data_interval_start }}"
DEFAULT_END = "{{ data_interval_end }}"
WINDOW_FIELDS = ("window_start", "window_end")


def airflow_ids(context: Context) -> dict[str, Any]:
    """Where a result came from, for lineage tags: dag, run, task, try and data interval."""
    ti = context["ti"]
    dag_run = context.get("dag_run")
    ids = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "try_number": ti.try_number}
    if dag_run is not None:
        for name in ("data_interval_start", "data_interval_end"):
            value = getattr(dag_run, name, None)
            if value is not None:
                ids[name] = value.isoformat()
    return ids


def with_overrides(model: dict[str, Any], overrides: dict[str, Any] | str | None) -> dict[str, Any]:
    """``model`` with ``params`` overridden for one run (the DAGs' ``model_params`` param, rendered as JSON)."""
    import json

    if isinstance(overrides, str):
        overrides = overrides.strip()
        if overrides in ("", "None", "null", "{}"):
            return model
        try:
            overrides = json.loads(overrides)
        except ValueError as err:
            raise ValueError(
                f'model_params must be a JSON object, e.g. {{"epochs": 5}}; got {overrides!r}'
            ) from err
    if not overrides:
        return model
    if not isinstance(overrides, dict):
        raise ValueError(f"model_params must be a mapping of model.params keys to values; got {overrides!r}")
    return {**model, "params": {**(model.get("params") or {}), **overrides}}
