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
