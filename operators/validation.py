"""ValidateDataOperator: stream a window's partitions, check the constraints, store a whylogs profile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlops.links.mlflow import REPORT_XCOM_PREFIX, VALIDATION_REPORT, VALIDATION_REPORT_URL_KEY
from airflow_mlops.utils.alerts import Alerting
from airflow_mlops.utils.context import DEFAULT_END, DEFAULT_START, NamedOutputs, resolve_window
from airflow_mlops.utils.failures import gate
from airflow_mlops.utils.lineage import LineageMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class ValidateDataOperator(LineageMixin, NamedOutputs, Alerting):
    """Validate and profile the partitions of the run's data interval (or of a window of days ending at it).

    Fails without retry (a quality gate) when a constraint breaks; the error message and the first lines of
    the log are a table of the failed checks. The profile is written atomically under ``artifact_uri`` and
    named by the content hash of the input, so a re-run of the same data reuses it.

    :param pipeline: pipeline name; profiles are stored per pipeline and partition.
    :param data_uri: file URI or fsspec URL of the partitions; ``{date}`` stands for each day (templated).
    :param artifact_uri: root for profiles (templated).
    :param features: feature columns (must be present, not all null; numeric ones finite).
    :param numeric: the numeric features.
    :param target: the label column (must be present and never null), or None where labels are not expected.
    :param constraints: ``{"min_rows": int, "max_rows": int, "columns": {col: {dtype, nullable,
        max_null_fraction, min, max, allowed, unique}}}``.
    :param data_format: ``parquet`` or ``csv``.
    :param window_start: start of the window (templated; default the data interval start).
    :param window_end: end of the window, exclusive (templated; default the data interval end).
    :param window_days: when set, the window is the ``window_days`` days ending at ``window_end``.
    :param manual_window: a manual run reads the ``window_end`` param given in the trigger form, or, without
        one, its data interval unless that ends after the latest partition present (then the window ends the
        day after it); the window read is in the result (``window``) for the tasks downstream. The generated
        training DAGs set it; other runs always read their data interval.
    :param expectations: what a broken distribution expectation (a column's ``mean`` or ``quantiles``
        bounds) does: ``fail`` (a gate: the scheduled training), ``warn`` (reported and returned under
        ``expectations``: the drift monitor hands them to its drift report; a retraining follows drift).
    :param on_extra_columns: a column the constraints, features and target do not name: ``warn`` (logged,
        the pipeline goes on), ``fail`` or ``ignore``.
    :param quality: the spec's ``quality`` section (see :mod:`airflow_mlops.data.quality`): each partition
        is checked against its own history (volume, nulls, scale, stuck columns, new categories, event time);
        its metrics are stored under ``artifact_uri`` for the partitions after it. ``None``: the defaults.
    :param quality_severity: what a quality finding does: ``fail`` (a gate, as the contract: the training
        path) or ``warn`` (reported, returned under ``quality`` and alerted as ``quality_anomaly``, whatever
        the column's importance: monitoring).
    :param batch_rows: rows per record batch: validation and profiling stream the partitions batch by batch,
        so memory does not grow with the window (see :class:`~airflow_mlops.data.validation.StreamValidator`).
    """

    template_fields: Sequence[str] = ("data_uri", "artifact_uri", "window_start", "window_end")
    ui_color = "#e8f4fd"
    operator_extra_links = (VALIDATION_REPORT,)

    def __init__(
        self,
        *,
        pipeline: str,
        data_uri: str,
        artifact_uri: str,
        features: list[str],
        numeric: list[str] | None = None,
        target: str | None = None,
        constraints: dict[str, Any] | None = None,
        data_format: str = "parquet",
        window_start: str = DEFAULT_START,
        window_end: str = DEFAULT_END,
        window_days: int | None = None,
        batch_rows: int = 65_536,
        expectations: str = "fail",
        on_extra_columns: str = "warn",
        manual_window: bool = False,
        quality: dict[str, Any] | None = None,
        quality_severity: str = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, value, allowed in (
            ("expectations", expectations, ("fail", "warn")),
            ("quality_severity", quality_severity, ("fail", "warn")),
            ("on_extra_columns", on_extra_columns, ("warn", "fail", "ignore")),
        ):
            if value not in allowed:
                raise ValueError(f"{self.task_id}: {name}={value!r}; use one of {', '.join(allowed)}")
        self.expectations = expectations
        self.quality = quality
        self.quality_severity = quality_severity
        self.on_extra_columns = on_extra_columns
        self.batch_rows = batch_rows
        self.pipeline = pipeline
        self.data_uri = data_uri
        self.artifact_uri = artifact_uri
        self.features = features
        self.numeric = numeric
        self.target = target
        self.constraints = constraints
        self.data_format = data_format
        self.window_start = window_start
        self.window_end = window_end
        self.window_days = window_days
        self.manual_window = manual_window

    def lineage(self, result: dict[str, Any]) -> tuple[list[dict], list[dict]]:
        profile = {"uri": result["profile_uri"], "version": result["content_hash"], "rows": result["rows"]}
        return list(result["inputs"]), [profile]

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.data import quality
        from airflow_mlops.data.partitions import content_hash
        from airflow_mlops.data.profiling import profile_uri, save_profile
        from airflow_mlops.data.validation import validate_and_profile

        # Failures first: nothing is logged before the verdict, so a failure's block (gate) opens the log;
        # the window, the inputs and the full table follow it (or, on success, come in this order).
        notes: list[str] = []
        try:
            with gate(self, context):
                window, why = resolve_window(
                    context, self.window_start, self.window_end, self.window_days, self.data_uri, self.manual_window
                )  # fmt: skip
                notes.append(why)
                uris = self._partitions(context, window)
                tracker = quality.QualityTracker(
                    self.features, self.numeric or [], self.quality,
                    quality.load_history(self.artifact_uri, self.pipeline),
                )  # fmt: skip
                report, files, view = validate_and_profile(
                    uris, self.data_format, self.constraints or {}, features=self.features, numeric=self.numeric or [],
                    target=self.target, window_end=window.end, batch_rows=self.batch_rows,
                    expectations=self.expectations, on_extra_columns=self.on_extra_columns,
                    quality=tracker, quality_severity=self.quality_severity,
                )  # fmt: skip
                findings = [r for r in report.rows if r.get("kind") == "quality"]
                quality.save_records(self.artifact_uri, self.pipeline, tracker.records(), findings)
                rows = sum(f["rows"] for f in files)
                digest = content_hash(files)
                notes.append(
                    f"window {window.label}: {len(files)} partition(s), {rows} rows, streamed in batches of "
                    f"{self.batch_rows} rows; inputs: " + ", ".join(f"{f['uri']} ({f['rows']})" for f in files)
                )
                self._store_report(context, report, window.label, digest)
                notes.append(f"validation of {window.label} ({rows} rows):\n{report.table()}")
                if report.warnings:
                    notes.append(
                        f"{len(report.warnings)} check(s) failed with severity warn (the pipeline goes on):\n"
                        + "\n".join(f"  {r['check']} {r['column']} [{r.get('partition', 'window')}]: {r['observed']} (expected {r['expected']})" for r in report.warnings)
                    )  # fmt: skip
                report.raise_for_failures(f"{self.pipeline} window {window.label}")
                uri = save_profile(view, profile_uri(self.artifact_uri, self.pipeline, window.label, digest))
        finally:
            for note in notes:
                self.log.info("%s", note)
        self.log.info("profile: %s (content sha256 %s)", uri, digest)
        anomalies = [r for r in report.warnings if r.get("kind") == "quality"]
        if anomalies:
            self._alert_anomalies(context, anomalies, window.label)
        return self.remember(
            {
                "profile_uri": uri,
                "rows": rows,
                "warnings": report.warnings,
                "quality": anomalies,
                "expectations": report.expectations,
                "content_hash": digest,
                "inputs": files,
                "window": window.as_dict(),
            }
        )

    def _partitions(self, context: Context, window: Any) -> list[str]:
        """The window's files (:func:`~airflow_mlops.utils.context.window_partitions`): a missing day is a gate
        naming the day on every run type."""
        from airflow_mlops.utils.context import window_partitions

        fix = "load the missing day(s), then clear this task."
        if self.manual_window:
            fix = "load the missing day(s), or trigger again with window_end (the day after the last day to read) in the form."
        return window_partitions(context, self.data_uri, window, fix)

    def _alert_anomalies(self, context: Context, anomalies: list[dict[str, Any]], label: str) -> None:
        """Quality anomalies where they do not gate (monitoring): logged first and sent as ``quality_anomaly``;
        the drift decision, weighed by importance, is a separate verdict."""
        from airflow_mlops.tables import format_table

        head = f"{len(anomalies)} finding(s) in {self.pipeline} {label} (the pipeline goes on)"
        table = format_table(
            [[r["check"], r["column"], r["partition"], r["expected"], r["observed"]] for r in anomalies],
            ["check", "column", "day", "expected", "observed"],
        )
        nxt = "next: check the producer of the named column and day; quality is never weighed by importance"
        self.log.warning("QUALITY ANOMALY: %s\n%s\n%s", head, table, nxt)
        self.alert(context, "quality_anomaly", f"{head}\n{table}\n{nxt}")

    def _store_report(self, context: Context, report: Any, label: str, digest: str) -> None:
        """The report as a page beside the profiles, linked ("Validation report") through the plugin's app."""
        from urllib.parse import quote

        from airflow_mlops import storage
        from airflow_mlops.tracking.registry import PLUGIN_PREFIX, airflow_base_url

        uri = storage.join(self.artifact_uri, self.pipeline, "validation", f"{label}-{digest[:16]}.html")
        storage.write_bytes_atomic(uri, report.html(f"Validation of {self.pipeline}, window {label}").encode())
        ti = context.get("ti")
        if ti is None:  # called outside a task (a test, a notebook): the report is stored, nothing is linked
            return
        ti.xcom_push(key=REPORT_XCOM_PREFIX + "validation", value=uri)
        url = f"{airflow_base_url()}{PLUGIN_PREFIX}/reports/{quote(ti.dag_id)}/{quote(ti.run_id, safe='')}/{quote(ti.task_id)}/validation"
        ti.xcom_push(key=VALIDATION_REPORT_URL_KEY, value=url)
