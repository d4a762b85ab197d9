"""BatchScoreOperator: the champion scores a data interval's partitions; canary or shadow challenger."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlops.hooks.mlflow import MlflowHook, MlflowMixin
from airflow_mlops.utils.alerts import Alerting
from airflow_mlops.utils.context import (
    DEFAULT_END,
    DEFAULT_START,
    NamedOutputs,
    airflow_ids,
    check_inside_dates,
    explain_window,
    window_partitions,
)
from airflow_mlops.utils.failures import gate
from airflow_mlops.utils.lineage import LineageMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class BatchScoreOperator(MlflowMixin, LineageMixin, NamedOutputs, Alerting):
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
    :param label_column: the scored rows carry their label in this column: it is written beside each
        prediction, where live metrics read it (no labels file, no id join).
    :param carry: further input columns written beside each prediction as read (the business value's
        per-row amount, ``scoring.labels.value.column``).
    :param window_start: window start (templated).
    :param window_end: window end, exclusive (templated).
    :param mlflow_conn_id: MLflow connection.
    :param constraints: the data contract (as ``ValidateDataOperator`` takes it). Set, the partitions are
        checked before any row is scored, with the training path's contract: a broken check is a gate (no retry,
        no prediction file) and an unreadable file is named. ``None``: not checked.
    :param features: the model's feature columns (the contract's "present", "not all null", numeric checks).
    :param numeric: the numeric features.
    :param on_bad_rows: ``fail`` (any broken check is a gate) or ``quarantine``: rows that break a row-level
        check (type, range, allowed values, regex, nulls where not nullable) are set aside in
        ``<output_uri>_quarantine/<window>.parquet`` with their reason, counted in the log and alerted; the
        rest are scored. Checks of the whole partition (a missing column, an empty day) still gate.
    :param quality: the spec's ``quality`` section: each partition against its history, reported and alerted
        (``quality_anomaly``), never a gate here. Needs ``pipeline`` and ``artifact_uri``.
    :param on_extra_columns: ``warn``, ``fail`` or ``ignore`` (as ``ValidateDataOperator``).
    """

    template_fields: Sequence[str] = ("data_uri", "output_uri", "window_start", "window_end", "artifact_uri")
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
        label_column: str | None = None,
        carry: list[str] | None = None,
        window_start: str = DEFAULT_START,
        window_end: str = DEFAULT_END,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        constraints: dict[str, Any] | None = None,
        features: list[str] | None = None,
        numeric: list[str] | None = None,
        on_bad_rows: str = "fail",
        quality: dict[str, Any] | None = None,
        pipeline: str | None = None,
        artifact_uri: str | None = None,
        on_extra_columns: str = "warn",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_bad_rows not in ("fail", "quarantine"):
            raise ValueError(f"{self.task_id}: on_bad_rows={on_bad_rows!r}; use fail or quarantine")
        self.constraints = constraints
        self.features = features or []
        self.numeric = numeric or []
        self.on_bad_rows = on_bad_rows
        self.quality = quality
        self.pipeline = pipeline or model_name
        self.artifact_uri = artifact_uri
        self.on_extra_columns = on_extra_columns
        self.model_name = model_name
        self.data_uri = data_uri
        self.output_uri = output_uri
        self.data_format = data_format
        self.id_column = id_column
        self.mode = mode
        self.fraction = fraction
        self.chunk_rows = chunk_rows
        self.label_column = label_column
        self.carry = list(carry or [])
        self.window_start = window_start
        self.window_end = window_end
        self.mlflow_conn_id = mlflow_conn_id

    def lineage(self, result: dict[str, Any]) -> tuple[list[dict], list[dict]]:
        from airflow_mlops.tracking.lineage import version_dataset

        ns = self.mlflow_namespace()
        versions = [result["champion_version"], result.get("challenger_version")]
        models = [version_dataset(ns, self.model_name, v) for v in versions if v]
        outputs = [
            {"uri": u, "rows": result.get("rows")}
            for u in (result["output_uri"], result.get("shadow_uri"))
            if u
        ]
        return [*result.get("inputs", []), *models], outputs

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_mlops.data.partitions import make_window
        from airflow_mlops.operations.scoring import load_alias, score_partition
        from airflow_mlops.storage import join, sha256_file
        from airflow_mlops.tracking import registry

        with gate(self, context), self.hook.configured() as client:
            window = make_window(self.window_start, self.window_end)
            check_inside_dates(context, window)
            self.log.info("%s", explain_window(context, window))
            uris = window_partitions(
                context, self.data_uri, window, "load the missing day(s), then clear this task (or trigger a run for another day)."
            )  # fmt: skip
            row_filter = self._contract(context, uris, window.label)
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
                inputs=[{"uri": u, "sha256": sha256_file(u)} for u in uris], label_column=self.label_column,
                carry=self.carry, row_filter=row_filter, quarantine_uri=join(f"{base}_quarantine", f"{window.label}.parquet"),
                written_by=airflow_ids(context),
            )  # fmt: skip
        if result.get("quarantined"):
            head = (
                f"{result['quarantined']} row(s) of {self.model_name} {window.label} break the data contract: "
                f"set aside in {result['quarantine_uri']} (column quarantine_reason); {result['rows']} scored"
            )
            self.log.warning("QUARANTINED: %s", head)
            self.alert(context, "quality_anomaly", head + "\nnext: fix the producer, then re-score the rows set aside")
        self.log.info(
            "%s: champion v%s%s -> %s (%s)",
            self.model_name, champion.version,
            f", {self.mode} challenger v{challenger.version}" if challenger else "",
            result["output_uri"], "reused" if result["reused"] else f"{result['rows']} rows",
        )  # fmt: skip
        return self.remember(result)

    def _contract(self, context: Context, uris: list[str], label: str) -> Any:
        """Check the partitions before scoring (the training path's contract and the quality history). Returns
        the row filter for a quarantine, or None; raises a gate when the partitions cannot be scored."""
        if self.constraints is None:
            return None
        from airflow_mlops.data import quality
        from airflow_mlops.data.validation import row_faults, row_level, validate_and_profile

        tracker = None
        if self.quality is not None and self.artifact_uri:
            tracker = quality.QualityTracker(
                self.features, self.numeric, self.quality, quality.load_history(self.artifact_uri, self.pipeline)
            )
        report, _, _ = validate_and_profile(
            uris, self.data_format, self.constraints, features=self.features, numeric=self.numeric, target=None,
            expectations="warn", on_extra_columns=self.on_extra_columns, quality=tracker, quality_severity="warn",
            profile=False, batch_rows=self.chunk_rows,
        )  # fmt: skip
        if tracker is not None:
            findings = [r for r in report.rows if r.get("kind") == "quality"]
            quality.save_records(self.artifact_uri, self.pipeline, tracker.records(), findings)
            anomalies = [r for r in findings if not r["passed"]]
            if anomalies:
                shown = "\n".join(f"  {r['check']} {r['column']} [{r['partition']}]: {r['observed']} (expected {r['expected']})" for r in anomalies)
                self.log.warning("QUALITY ANOMALY: %d finding(s) in %s %s (scoring goes on)\n%s", len(anomalies), self.pipeline, label, shown)
                self.alert(context, "quality_anomaly", f"{len(anomalies)} finding(s) in {self.pipeline} {label} (scoring goes on)\n{shown}")
        rows_only = all(row_level(r, self.constraints) for r in report.failed)
        if report.failed and not (self.on_bad_rows == "quarantine" and rows_only):
            report.raise_for_failures(f"{self.pipeline} scoring window {label}")
        if report.failed:
            constraints, numeric = self.constraints, self.numeric
            return lambda df: row_faults(df, constraints, numeric)
        return None


class LiveMetricsOperator(MlflowMixin, NamedOutputs, Alerting):
    """When labels arrive for a scored window: each model version's metric on its own rows.

    Joins the window's predictions (and shadow predictions) with the labels by ``id_column`` (or reads the
    label the scored rows carried, when ``labels_uri`` is unset), logs the per-version metrics to MLflow (experiment ``airflow-mlops/<model>/live``, one run per window, re-runs
    update it), and records the comparison on the challenger. A challenger is promoted
    (``promotion_mode="auto"``) or proposed for approval (tag ``mlops.live_proposal``) once its difference
    from the champion over its windows, with an always-valid confidence sequence at error rate
    ``promotion_alpha`` (it may be looked at after every window), lies above ``min_improvement``, with at
    least ``promote_after`` windows and ``promotion_min_rows`` labelled challenger rows behind it (with
    ``compare_mode="non_inferiority"``: above minus ``min_improvement``, no worse than the champion by more).

    :param model_name: registered model name.
    :param predictions_uri: the scoring output folder (templated).
    :param labels_uri: label partitions (``{date}`` per day; templated); None: the predictions carry the
        label (scored with ``label_column``).
    :param id_column: row id shared by predictions and labels (required with ``labels_uri``).
    :param label_column: label column.
    :param metric: metric compared (challenger vs champion) and watched for performance drift.
    :param metrics: further metrics watched for performance drift (the spec: every metric its tests declare).
    :param min_improvement: margin the challenger must win by (``improvement``), or may lose by at most
        (``non_inferiority``).
    :param compare_mode: ``improvement`` or ``non_inferiority``, as the spec's ``tests.compare.mode``.
    :param relative: ``min_improvement`` is a fraction of the champion's live value (as ``tests.compare``'s
        ``relative``, or a percentage there), not an amount in the metric's units.
    :param promote_after: the fewest windows a promotion rests on.
    :param promotion_alpha: the declared chance of promoting a challenger that is not better.
    :param promotion_min_rows: the fewest labelled challenger rows a promotion rests on.
    :param value: business value of a binary classifier's decisions: ``{"tp", "fp", "fn", "tn"}`` worths and
        an optional per-row amount ``column``; reported as the live metric ``value`` (mean per labelled row).
    :param promote_on: the live metric promotion follows (default ``metric``; ``value`` with ``value``).
    :param promotion_mode: ``auto`` promotes; ``manual``/``approval`` propose.
    :param labels_delay_days: labels for a window arrive this many days after it: measure the window that
        ended that many days before this run's interval.
    :param max_metric_drop: performance drift when the champion's live value of a watched metric falls more
        than this (one value, or per metric) below the value its model tests measured, and more than its
        sample-size floor (the result's ``drift``; the DAG branches into retraining on it).
    :param data_format: ``parquet`` or ``csv`` (labels).
    """

    template_fields: Sequence[str] = ("predictions_uri", "labels_uri", "window_start", "window_end")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        model_name: str,
        predictions_uri: str,
        labels_uri: str | None,
        id_column: str | None,
        label_column: str,
        metric: str = "roc_auc",
        metrics: list[str] | None = None,
        min_improvement: float = 0.0,
        relative: bool = False,
        compare_mode: str = "improvement",
        promote_after: int = 3,
        promotion_mode: str = "auto",
        promotion_alpha: float = 0.05,
        promotion_min_rows: int = 0,
        value: dict[str, Any] | None = None,
        promote_on: str | None = None,
        labels_delay_days: int = 0,
        max_metric_drop: float | str | dict[str, float | str] | None = None,
        data_format: str = "parquet",
        window_start: str = DEFAULT_START,
        window_end: str = DEFAULT_END,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        from airflow_mlops.model.metrics import COMPARE_MODES

        if compare_mode not in COMPARE_MODES:
            raise ValueError(f"{kwargs.get('task_id')}: compare_mode={compare_mode!r}; use {' or '.join(COMPARE_MODES)}")
        super().__init__(**kwargs)
        self.model_name = model_name
        self.predictions_uri = predictions_uri
        self.labels_uri = labels_uri
        self.id_column = id_column
        self.label_column = label_column
        self.metric = metric
        self.metrics = list(metrics or [])
        self.min_improvement = min_improvement
        self.relative = relative
        self.compare_mode = compare_mode
        self.promote_after = promote_after
        self.promotion_mode = promotion_mode
        self.promotion_alpha = promotion_alpha
        self.promotion_min_rows = promotion_min_rows
        self.value = value
        self.promote_on = promote_on
        self.labels_delay_days = labels_delay_days
        self.max_metric_drop = max_metric_drop
        self.data_format = data_format
        self.window_start = window_start
        self.window_end = window_end
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        import datetime as dt

        from airflow_mlops.data.partitions import make_window, parse_time
        from airflow_mlops.operations.live import measure_live_window

        shift = dt.timedelta(days=self.labels_delay_days)
        start = parse_time(self.window_start, "window_start") - shift
        window = make_window(start, parse_time(self.window_end, "window_end") - shift)
        with gate(self, context), self.hook.configured() as client:
            check_inside_dates(context, make_window(self.window_start, self.window_end))  # the DAG's own dates
            result = measure_live_window(
                client, self.model_name, window=window, predictions_uri=self.predictions_uri,
                labels_uri=self.labels_uri, data_format=self.data_format, id_column=self.id_column,
                label_column=self.label_column, metric=self.metric, min_improvement=self.min_improvement,
                promote_after=self.promote_after, promotion_mode=self.promotion_mode,
                alpha=self.promotion_alpha, min_rows=self.promotion_min_rows, value=self.value,
                promote_on=self.promote_on, relative=self.relative, compare_mode=self.compare_mode,
                max_metric_drop=self.max_metric_drop, metrics=self.metrics, artifact_root=self.hook.artifact_root,
            )  # fmt: skip
        from airflow_mlops.operations.live import performance_table

        performance = result["performance"]
        table = performance_table(performance)
        if performance["drift"]:
            headline = (
                f"PERFORMANCE DRIFT: champion v{performance['champion']} of {self.model_name} on {window.label}: "
                + ", ".join(
                    f"{m} {r['live']:.4f} vs {r['tested']:.4f} tested (drop {r['drop']:.4f} > {r['tolerance']})"
                    for m, r in performance["metrics"].items() if r["drift"]
                )
            )  # fmt: skip
            self.log.warning(
                "%s\n%s\nnext: the retraining branch follows (cooldown and consecutive windows apply)",
                headline, table,
            )  # fmt: skip
            self.alert(
                context, "performance_drift",
                f"{headline}\n{table}\nnext: the retraining branch follows (cooldown and consecutive windows apply)",
            )  # fmt: skip
        else:
            self.log.info("performance of champion v%s on %s:\n%s", performance["champion"], window.label, table)
        self.log.info(
            "live metrics for %s, %s:\n  %s\n%s",
            self.model_name, window.label, "\n  ".join(result["summary"]), result["decision"],
        )  # fmt: skip
        return result


class EstimatePerformanceOperator(MlflowMixin, NamedOutputs, Alerting):
    """The champion's metrics on a scored window, estimated from its calibrated scores before any label
    arrives (confidence-based performance estimation, :mod:`airflow_mlops.operations.estimation`).

    Returns a drift-report-shaped result: ``drift`` when a metric's estimate falls further below its tested
    value than ``max_metric_drop`` with its whole 95% band below it; the scoring DAG branches into retraining
    on it. Blind to pure concept drift (the inputs, and so the scores, unchanged): live metrics catch that.

    :param model_name: registered model name.
    :param predictions_uri: the scoring output folder (templated).
    :param metrics: metrics to estimate (accuracy, precision, recall, f1, roc_auc).
    :param max_metric_drop: tolerated estimated drop (one value, or per metric).
    """

    template_fields: Sequence[str] = ("predictions_uri", "window_start", "window_end")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        model_name: str,
        predictions_uri: str,
        metrics: list[str],
        max_metric_drop: float | str | dict[str, float | str] | None = None,
        window_start: str = DEFAULT_START,
        window_end: str = DEFAULT_END,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.predictions_uri = predictions_uri
        self.metrics = metrics
        self.max_metric_drop = max_metric_drop
        self.window_start = window_start
        self.window_end = window_end
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.data.partitions import make_window
        from airflow_mlops.operations.estimation import estimate_table, estimate_window

        window = make_window(self.window_start, self.window_end)
        with gate(self, context), self.hook.configured() as client:
            result = estimate_window(
                client, self.model_name, predictions_uri=self.predictions_uri, window_label=window.label,
                metrics=self.metrics, max_metric_drop=self.max_metric_drop, artifact_root=self.hook.artifact_root,
            )  # fmt: skip
        if result["status"] == "not_measured":
            self.log.info("%s, %s: %s", self.model_name, window.label, result["reason"])
            return result
        table = estimate_table(result)
        if result["drift"]:
            headline = (
                f"ESTIMATED PERFORMANCE DRIFT: champion v{result['champion']} of {self.model_name} on {window.label} "
                f"({result['rows']} rows, no labels yet): "
                + ", ".join(
                    f"{m} estimated {r['estimate']:.4f} ({r['low']:.4f} .. {r['high']:.4f}) vs {r['tested']:.4f} tested"
                    for m, r in result["metrics"].items() if r["drift"]
                )
            )  # fmt: skip
            nxt = "next: the retraining branch follows (cooldown and consecutive windows apply)"
            self.log.warning("%s\n%s\n%s", headline, table, nxt)
            self.alert(context, "performance_drift", f"{headline}\n{table}\n{nxt}")
        else:  # a caveat (the scores moved) is worth a look even without a drop
            (self.log.warning if result.get("caveat") else self.log.info)(
                "estimated performance of champion v%s on %s (%d rows, no labels):\n%s",
                result["champion"], window.label, result["rows"], table,
            )  # fmt: skip
        return result
