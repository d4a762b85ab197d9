"""TriggerRetrainingOperator: drift starts at most one retraining at a time, respects a cooldown, loses no
drift report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

from airflow_mlops.links.retraining import TriggeredRetrainingLink
from airflow_mlops.utils.alerts import Alerting

if TYPE_CHECKING:
    from airflow.sdk import Context


RETRAINING_TAG = "mlops.retraining"  # on a drift report's MLflow run: triggered, or held and why


class TriggerRetrainingOperator(Alerting, TriggerDagRunOperator):
    """Trigger the retraining DAG on drift, unless a retraining is already queued or running, or the last
    one was triggered less than ``cooldown`` ago (in data time: the windows' ends).

    Every drift report is kept: a report that does not trigger is added to the pipeline's retraining ledger
    (``<ledger_uri>``, JSON) as pending, and the next retraining receives all pending reports in its conf
    (``drift_reports``) with the latest one as ``drift_report``. The task also emits the drift Asset event
    with the report in its extra, whether it triggers or not. Run it with ``max_active_tis_per_dag=1`` (the
    factory does) so two monitor runs never decide at the same time.

    :param ledger_uri: where the ledger lives (templated; any fsspec URL).
    :param report: the drift report (templated; the sensor's XCom).
    :param window_end: end of the drifted window (templated): the new training window ends here.
    :param cooldown: minimum data time between two retrainings.
    :param consecutive: trigger only once this many consecutive windows have drifted (1: the first drift);
        until then the reports wait as pending. Windows are consecutive when each ends one data interval after
        the previous one.
    :param source: what kind of trigger this is (``data``, ``performance`` or ``estimated``): each kind counts
        its own consecutive windows.
    """

    # no "Triggered DAG" button for a held report (Airflow's own would open /runs/None)
    operator_extra_links = (TriggeredRetrainingLink(),)
    template_fields: Sequence[str] = (
        *TriggerDagRunOperator.template_fields,
        "ledger_uri",
        "report",
        "window_end",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **TriggerDagRunOperator.template_fields_renderers,
        "report": "json",
    }

    def __init__(
        self,
        *,
        ledger_uri: str,
        report: Any,
        window_end: str,
        cooldown: dt.timedelta = dt.timedelta(hours=24),
        consecutive: int = 1,
        source: str = "data",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("skip_when_already_exists", True)
        kwargs.setdefault("wait_for_completion", False)
        kwargs.setdefault("max_active_tis_per_dag", 1)
        super().__init__(**kwargs)
        self.ledger_uri = ledger_uri
        self.report = report
        self.window_end = window_end
        self.cooldown = cooldown
        self.consecutive = consecutive
        self.source = source

    def execute(self, context: Context) -> Any:
        from airflow_mlops.operations.retraining import decide, empty_ledger
        from airflow_mlops.storage import exists, read_json, write_json_atomic

        ledger = read_json(self.ledger_uri) if exists(self.ledger_uri) else empty_ledger()
        report = self.report or {}
        entry = {
            "window_end": str(self.window_end), "report_uri": report.get("report_uri"),
            "drifted_features": report.get("drifted_features", []), "monitor_run_id": context["ti"].run_id,
            "source": self.source,
        }  # fmt: skip
        self._emit_asset_event(context, entry)
        dag_run = context.get("dag_run")
        start, end = (
            getattr(dag_run, "data_interval_start", None),
            getattr(dag_run, "data_interval_end", None),
        )
        decision = decide(
            ledger, entry, in_flight=context["ti"].get_dr_count(dag_id=self.trigger_dag_id, states=["queued", "running"]),
            cooldown=self.cooldown, consecutive=self.consecutive,
            step=(end - start) if start is not None and end is not None else None,
            retraining=self.trigger_dag_id, trigger_run_id=str(self.trigger_run_id),
        )  # fmt: skip
        write_json_atomic(self.ledger_uri, decision.ledger)
        if decision.trigger:
            self._mark_report(report, f"triggered: {self.trigger_dag_id} run {self.trigger_run_id}")
        else:
            self._mark_report(report, f"held: {decision.reason} ({len(decision.pending)} report(s) pending)")
        if not decision.trigger:
            self.log.warning(
                "drift detected (%s) but no retraining triggered: %s. The report is kept as pending (%d pending): "
                "the next retraining receives it.", ", ".join(entry["drifted_features"]), decision.reason,
                len(decision.pending),
            )  # fmt: skip
            self.alert(
                context, "retraining_skipped",
                f"drift on {', '.join(entry['drifted_features']) or 'the data'} for {self.window_end}: no retraining, "
                f"{decision.reason}\nnext: the report waits as pending ({len(decision.pending)} pending); the next "
                "retraining receives it",
                {"drift report": report.get("report_url") or ""},
            )  # fmt: skip
            return {"triggered": False, "reason": decision.reason, "pending": len(decision.pending)}
        self.conf = {
            "window_end": str(self.window_end),
            "drift_report": report,
            "drift_reports": decision.pending,
        }
        self.log.info(
            "triggering %s (run %s) with %d drift report(s)",
            self.trigger_dag_id, self.trigger_run_id, len(decision.pending),
        )  # fmt: skip
        self.alert(
            context, "retraining_started",
            f"drift on {', '.join(entry['drifted_features']) or 'the data'} for {self.window_end}: retraining "
            f"{self.trigger_dag_id} (run {self.trigger_run_id}) with {len(decision.pending)} drift report(s)",
            {"drift report": report.get("report_url") or ""},
        )  # fmt: skip
        return super().execute(context)

    def _mark_report(self, report: dict[str, Any], outcome: str) -> None:
        """The outcome on the drift report's MLflow run (tag ``mlops.retraining``), so the MLOps view can say
        of every decision whether it triggered a retraining, was held and why, or is still pending. A
        courtesy: the decision stands whether or not it can be written."""
        run_id = report.get("mlflow_run_id")
        if not run_id:
            return
        try:
            from airflow_mlops.hooks.mlflow import MlflowHook
            from airflow_mlops.tracking import registry

            with MlflowHook().configured() as client:
                client.set_tag(run_id, RETRAINING_TAG, outcome[: registry.MAX_TAG])
        except Exception as err:
            self.log.warning("could not record the retraining outcome on MLflow run %s: %s", run_id, err)

    def _emit_asset_event(self, context: Context, entry: dict[str, Any]) -> None:
        events = context.get("outlet_events")
        if events is None:
            return
        for asset in self.outlets or []:
            try:
                events[asset].extra = {k: v for k, v in entry.items() if v is not None}
            except Exception:  # an event's extra is a courtesy: never fail the decision on it
                self.log.debug("could not set the extra of %s", asset, exc_info=True)
