"""DriftSensor: wait for the current partition's profile and a champion, then score drift."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlops.data.drift.scores import DriftPolicy, summary_line
from airflow_mlops.hooks.mlflow import MlflowHook, MlflowMixin
from airflow_mlops.links.mlflow import DRIFT_REPORT, DRIFT_REPORT_URL_KEY
from airflow_mlops.sensors._waiting import WaitingSensor
from airflow_mlops.utils.context import NamedOutputs
from airflow_mlops.utils.failures import gate
from airflow_mlops.utils.lineage import LineageMixin

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

REPORT_URL_KEY = DRIFT_REPORT_URL_KEY


class DriftSensor(MlflowMixin, LineageMixin, NamedOutputs, WaitingSensor):
    """Compare the current partition's profile with the reference profile of the champion's training data.

    Waits until the current profile exists and the model has a ``champion`` (deferrable through
    :class:`~airflow_mlops.triggers.waiting.DriftReadyTrigger`, or in reschedule/poke mode; ``timeout`` and
    ``on_timeout`` as in :class:`~airflow_mlops.sensors._waiting.WaitingSensor`);
    then scores every feature on effect sizes (KS distance for numeric, Hellinger for categorical, or PSI
    for either where chosen; each above a sample-size-aware floor), logs the per-feature table sorted by effect, stores the report (JSON,
    and an HTML page with a PNG of the most drifted features) beside the current profile, logs it to MLflow
    (experiment ``airflow-mlops/<model>/drift``), links it from the task ("Drift report") and returns it.
    Drift is decided by the share of drifted features.

    :param model_name: registered model whose ``champion`` gives the reference profile.
    :param current_profile_uri: profile of the new partition (templated).
    :param numeric: numeric features to compare.
    :param categorical: categorical features to compare.
    :param policy: what counts as drift: a :class:`~airflow_mlops.data.drift.scores.DriftPolicy` or the
        mapping of a spec's ``drift`` section, with the same names (``{"numeric": {"metric": "ks", "ks":
        0.05}, "categorical": {"hellinger": 0.05}, "drift_share": 0.3, "min_rows": 100, "features": {"age":
        {"metric": "psi", "threshold": 0.2}}}``); omitted keys take the defaults.
    :param expectations_task_id: the task that validated the current partition (with ``expectations="warn"``):
        its distribution expectations (mean and quantile bounds of the data contract) become a section of the
        drift report, so a day whose distribution moved is reported as drift instead of stopping the monitor.
    :param mlflow_conn_id: MLflow connection.
    """

    template_fields: Sequence[str] = ("model_name", "current_profile_uri")
    ui_color = "#fff4e0"
    waiting_for = "the current profile and a champion"
    operator_extra_links = (DRIFT_REPORT,)

    def __init__(
        self,
        *,
        model_name: str,
        current_profile_uri: str,
        numeric: list[str] | None = None,
        categorical: list[str] | None = None,
        policy: DriftPolicy | dict[str, Any] | None = None,
        expectations_task_id: str | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.expectations_task_id = expectations_task_id
        self.model_name = model_name
        self.current_profile_uri = current_profile_uri
        self.numeric = numeric
        self.categorical = categorical
        # checked when the DAG is parsed: a typo in a key is an import error, not a failed run
        self.policy = DriftPolicy.from_dict(policy)
        self.mlflow_conn_id = mlflow_conn_id

    def check(self, context: Context) -> tuple[bool, str, Any]:
        from airflow_mlops.operations.monitoring import check_against_champion, waiting_reason
        from airflow_mlops.tracking.registry import artifact_url

        with gate(self, context), self.hook.configured() as client:
            reason = waiting_reason(client, self.model_name, self.current_profile_uri)
            if reason is not None:
                return False, reason, None
            expectations = quality = None
            if self.expectations_task_id:
                expectations = context["ti"].xcom_pull(task_ids=self.expectations_task_id, key="expectations")
                quality = context["ti"].xcom_pull(task_ids=self.expectations_task_id, key="quality")
            report = check_against_champion(
                client, model_name=self.model_name, current_uri=self.current_profile_uri,
                numeric=self.numeric or [], categorical=self.categorical or [], policy=self.policy,
                artifact_root=self.hook.artifact_root, expectations=expectations, quality=quality,
            )  # fmt: skip
            if report is None:  # the champion went away between the two calls
                return False, "the champion changed while scoring; checking again", None
            url = artifact_url(
                self.hook.ui_url, client.get_run(report["mlflow_run_id"]).info.experiment_id,
                report["mlflow_run_id"], "drift/report.html",
            )  # fmt: skip
        report["report_url"] = url
        context["ti"].xcom_push(key=REPORT_URL_KEY, value=url)
        self.log.info("drift report: %s", url)
        if report.get("drift"):
            self.alert(
                context, "drift_found",
                f"drift in {self.model_name} vs champion v{report['champion_version']}: {summary_line(report)}\n"
                "next: the monitor triggers a retraining unless cooldown or consecutive windows hold it",
                {"drift report": url},
            )  # fmt: skip
        return True, report["status"], self.remember(report)

    def lineage(self, result: dict[str, Any]) -> tuple[list[dict], list[dict]]:
        profiles = [{"uri": result["reference_profile"]}, {"uri": result["current_profile"]}]
        reports = [{"uri": result[k]} for k in ("report_uri", "report_html", "report_png") if result.get(k)]
        return profiles, reports

    def make_trigger(self, context: Context, *, deadline: str, reason: str, deferrals: int) -> BaseTrigger:
        from airflow_mlops.triggers.waiting import DriftReadyTrigger

        return DriftReadyTrigger(
            profile_uri=self.current_profile_uri, model_name=self.model_name, mlflow_conn_id=self.mlflow_conn_id,
            poke_interval=self.poke_interval, deadline=deadline, deferrals=deferrals,
        )  # fmt: skip
