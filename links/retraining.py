"""The retraining trigger's button: it opens the run it triggered, and is not there when none was."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

TRIGGERED_RUN_KEY = "trigger_run_id"  # pushed by TriggerDagRunOperator once it has created the run


@attrs.define(frozen=True)
class TriggeredRetrainingLink(BaseOperatorLink):
    """"Triggered DAG" for a retraining trigger: the triggered run's page; empty (no button) when the drift
    report was held (cooldown, a retraining in flight, consecutive windows), where Airflow's own link would
    open ``/runs/None``."""

    name = "Triggered DAG"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        try:
            from airflow.sdk.execution_time.xcom import XCom

            run_id = XCom.get_value(ti_key=ti_key, key=TRIGGERED_RUN_KEY)
            if not run_id:
                return ""
            from airflow.utils.helpers import build_airflow_dagrun_url

            return build_airflow_dagrun_url(dag_id=operator.trigger_dag_id, run_id=run_id)
        except Exception:  # a link must never break the page or the task
            return ""
