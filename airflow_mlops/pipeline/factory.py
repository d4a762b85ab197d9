"""The DAG factory: each pipeline spec compiles into training, drift-monitor, retraining, rollback and (with a
``scoring:`` block) scoring DAGs.

This is the one module of the package that imports the adapters (dags/ -> factory -> adapters -> core). It
imports no heavy library: DAG files that call it parse in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from airflow_mlops.errors import SpecError
from airflow_mlops.pipeline.spec import PipelineSpec

if TYPE_CHECKING:
    from airflow.sdk import DAG

log = logging.getLogger(__name__)

# A run triggered without a logical date (the UI's form can leave it empty) has no data interval at all: the
# first task then decides the window (manual_window), so the template must render, empty.
INTERVAL_START = "{{ data_interval_start | default('') }}"
TRAIN_WINDOW_END = INTERVAL_END = "{{ data_interval_end | default('') }}"
# The first task decides the window once (a manual run's window_end param, or the latest partition); every
# task after it reads that decision, so a partition landing mid-run never splits a run across two windows.
VALIDATED_WINDOW_END = "{{ ti.xcom_pull(task_ids='validate_data', key='window')['end'] }}"
SENSED_WINDOW_START = "{{ ti.xcom_pull(task_ids='wait_for_partition', key='window')['start'] }}"
SENSED_WINDOW_END = "{{ ti.xcom_pull(task_ids='wait_for_partition', key='window')['end'] }}"
# Triggered runs have no data interval: the end comes from the conf (drift) or is the time of the trigger.
RETRAIN_WINDOW_END = "{{ params.window_end or dag_run.run_after.isoformat() }}"


def _dt(d: dt.date | None) -> dt.datetime | None:
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC) if d else None


def _timetable(expression: str | None, end: dt.datetime | None = None) -> Any:
    """A cron schedule *with data intervals*: Airflow 3's default for cron strings is a trigger timetable
    whose runs have an empty interval, and every partition here is addressed by its data interval. Scheduled
    runs stop after ``end`` (the spec's ``end_date``), which the DAG itself does not carry: see
    :mod:`airflow_mlops.utils.timetables`."""
    if expression is None or expression == "@once":
        return expression
    from airflow_mlops.utils.timetables import CronUntilTimetable

    return CronUntilTimetable(expression, timezone="UTC", end=end)


SCHEDULED = {
    "training": "trains",
    "retraining": "retrains",
    "drift-monitor": "checks drift",
    "scoring": "scores",
}


_WHAT = {
    "training": "validates the window's data, trains, tests and registers the model, promotes it",
    "retraining": "trains again on the recent window when drift is found (or by hand); promotes only a better model",
    "drift-monitor": "profiles each new partition and compares it with the champion's training data",
    "rollback": "returns the champion alias to an earlier version (by hand, with a reason)",
    "scoring": "scores each partition with the champion (and the challenger, canary or shadow)",
    "live-metrics": "measures the models on labelled rows and watches for performance drift",
}


def _schedule_text(spec: PipelineSpec, kind: str) -> str:
    if kind == "training":
        return spec.schedules.training or "by hand"
    if kind == "drift-monitor":
        return spec.schedules.drift_monitor or "by hand"
    if kind in ("scoring", "live-metrics") and spec.scoring is not None:
        return spec.scoring.schedule or "by hand"
    return "triggered" if kind == "retraining" else "by hand"


def _dag_kwargs(spec: PipelineSpec, kind: str) -> dict[str, Any]:
    from airflow_mlops.utils.alerts import FailureAlert

    model = f"{spec.model.kind} {spec.model.task} model"
    r = spec.retries
    default_args: dict[str, Any] = {
        "owner": spec.owner, "retries": r.count, "retry_delay": dt.timedelta(seconds=r.delay_seconds),
        "retry_exponential_backoff": r.backoff,
        **({"max_retry_delay": dt.timedelta(seconds=r.max_delay_seconds)} if r.max_delay_seconds is not None else {}),
    }  # fmt: skip
    if spec.alerts:
        routes = [r.model_dump() for r in spec.alerts]
        default_args["alerts"] = routes  # every airflow-mlops operator and sensor takes it (utils.alerts)
        default_args["on_failure_callback"] = FailureAlert(routes)
    return {
        "start_date": _dt(spec.start_date),
        # the schedule stops at the spec's end_date (_timetable); a DAG end_date would drop the tasks of a
        # manual run past it, leaving a green run with no task
        "end_date": None,
        "catchup": spec.catchup,
        "tags": ["airflow-mlops", spec.name, kind, *spec.tags],
        "default_args": default_args,
        # one line in the DAG list: the model, the schedule and what the DAG does
        "description": f"{spec.name} ({model}, {_schedule_text(spec, kind)}): {_WHAT[kind]}",
        # The spec file by its path inside the spec folder (never a machine's absolute path); the Code tab
        # shows the YAML itself.
        "doc_md": f"**{spec.name}** ({kind}) {spec.description}\n\nSpec: `{spec.source}`",
    }


def _training_tasks(
    spec: PipelineSpec, window_end: str, window_days: int, *, retraining: bool = False
) -> None:
    """validate_data >> train_model >> test_model >> register_model, inside the current DAG context."""
    from airflow_mlops.operators.evaluation import ModelTestOperator
    from airflow_mlops.operators.registry import RegisterModelOperator
    from airflow_mlops.operators.validation import ValidateDataOperator

    window = {"window_start": None, "window_end": window_end, "window_days": window_days}
    validated = {**window, "window_end": VALIDATED_WINDOW_END}  # downstream: the window validate_data read
    validate = ValidateDataOperator(
        task_id="validate_data", pipeline=spec.name, data_uri=spec.data.uri, data_format=spec.data.format,
        artifact_uri=spec.storage.uri, features=spec.feature_names, numeric=list(spec.features.numeric),
        target=spec.target, constraints=spec.constraints_dict(), on_extra_columns=spec.data.on_extra_columns,
        # distribution expectations gate the scheduled training; a retraining follows drift on purpose
        expectations="warn" if retraining else "fail", manual_window=not retraining, **window,
        quality=spec.quality.model_dump(), quality_severity="fail",
    )  # fmt: skip
    window = validated
    if spec.search is None:
        train = _train_operator(spec, validate.output, window)
        validate >> train
        trained = train.output
    else:
        from airflow_mlops.operators.search import PARENT_RUN_KEY, PlanTrialsOperator, SelectBestTrialOperator

        plan = PlanTrialsOperator(
            task_id="plan_trials", pipeline=spec.name, model=_model(spec), space=spec.search.params,
            method=spec.search.method, max_trials=spec.search.max_trials, seed=spec.search.seed, **window,
        )  # fmt: skip
        # map_indexes=-1: from a mapped trial, pull the (unmapped) planner's value, not the same-index one
        parent = f"{{{{ ti.xcom_pull(task_ids='plan_trials', key='{PARENT_RUN_KEY}', map_indexes=-1) }}}}"
        trials = _train_operator(spec, validate.output, window, parent_run_id=parent, expand_over=plan.output)
        best = SelectBestTrialOperator(
            task_id="select_best_trial", trials=trials.output, metric=spec.search.metric, parent_run_id=parent
        )
        validate >> plan >> trials >> best
        trained = best.output
    test = ModelTestOperator(
        task_id="test_model", model_name=spec.model_name, training=trained, data_uri=spec.data.uri,
        data_format=spec.data.format, target=spec.target, thresholds=spec.thresholds(),
        compare_metric=spec.compare_metric, min_improvement=spec.tests.compare.min_improvement,
        compare_mode=spec.tests.compare.mode, relative=spec.tests.compare.relative, checks=spec.checks(),
        override_reason=OVERRIDE_REASON, reevaluate_reason=REEVALUATE_REASON,
        holdout_fraction=spec.training.holdout_fraction,
        seed=spec.training.seed, max_active_tis_per_dag=spec.training.concurrent_windows, **window,
    )  # fmt: skip
    register = RegisterModelOperator(
        task_id="register_model", model_name=spec.model_name, training=trained, tests=test.output,
        promotion_mode=spec.promotion.mode, compare_metric=spec.compare_metric,
        max_active_tis_per_dag=spec.training.concurrent_windows,
    )  # fmt: skip
    test >> register
    if spec.promotion.mode == "approval":
        from airflow_mlops.operators.approval import ReleaseApprovalOperator
        from airflow_mlops.operators.registry import PromoteModelOperator

        approve = ReleaseApprovalOperator(
            task_id="approve_release", model_name=spec.model_name, registration=register.output,
            tests=test.output, response_timeout=dt.timedelta(hours=spec.promotion.approval_timeout_hours),
        )  # fmt: skip
        promote = PromoteModelOperator(
            task_id="promote_model", model_name=spec.model_name, registration=register.output,
            tests=test.output, approval=approve.output, compare_metric=spec.compare_metric,
        )  # fmt: skip
        register >> approve >> promote


# .get: a DAG assembled by hand (or an older serialised run) may not declare these params
OVERRIDE_REASON = "{{ params.get('override_reason') or '' }}"
REEVALUATE_REASON = "{{ params.get('reevaluate_reason') or '' }}"
MODEL_OVERRIDES = "{{ (params.get('model_params') or {}) | tojson }}"


def _override_param() -> dict[str, Any]:
    """Run params of the training DAGs: hyper-parameters for this run, and the audited release override."""
    from airflow.sdk import Param

    return {
        "model_params": Param(
            None, type=["null", "object"],
            description="override model.params for this run, e.g. {\"epochs\": 20} (part of the run's key)",
        ),
        "override_reason": Param(
            None, type=["null", "string"],
            description="release even if the model tests fail: say why (recorded on the model version)",
        ),
        "reevaluate_reason": Param(
            None, type=["null", "string"],
            description="test and decide the release again although this window was decided before: say why "
            "(recorded); without it a re-run reproduces the recorded decision",
        ),
    }  # fmt: skip


def _window_param(days: int | None, what: str) -> dict[str, Any]:
    """The trigger form's window for a manual run of a scheduled DAG (scheduled runs and backfills ignore it)."""
    from airflow.sdk import Param

    span = f"the {days} day(s)" if days else "one data interval (a day for a daily schedule)"
    return {
        "window_end": Param(
            None, type=["null", "string"], format="date", title="Window end (manual runs)",
            description=f"{what}: the window is {span} before this date (it is the first day *not* "
            "read). Empty: the run's data interval, or, when that ends after the last day with data (the form's "
            "default logical date is now), the day after the latest partition. Scheduled runs and backfills "
            "always read their data interval.",
        ),
    }  # fmt: skip


def _model(spec: PipelineSpec) -> dict[str, Any]:
    return {"kind": spec.model.kind, "task": spec.model.task, "params": spec.model.params_dict()}


def _train_operator(
    spec: PipelineSpec, validation: Any, window: dict[str, Any], parent_run_id: str | None = None,
    expand_over: Any = None,
) -> Any:  # fmt: skip
    """The training task: local or in a pod; mapped over the trials' model configs when searching."""
    common = {
        "task_id": "train_model", "pipeline": spec.name, "data_uri": spec.data.uri, "data_format": spec.data.format,
        "target": spec.target, "numeric": list(spec.features.numeric), "categorical": list(spec.features.categorical),
        "text": spec.features.text, "holdout_fraction": spec.training.holdout_fraction, "seed": spec.training.seed,
        "validation": validation, "checkpoint_root": f"{spec.storage.uri.rstrip('/')}/{spec.name}/checkpoints",
        "parent_run_id": parent_run_id, "model_overrides": MODEL_OVERRIDES, **window,
    }  # fmt: skip
    if expand_over is None:
        common["max_active_tis_per_dag"] = spec.training.concurrent_windows
    if spec.training.executor == "kubernetes" and spec.training.kubernetes is not None:
        # Imported only here: the provider pulls in the kubernetes client, which local pipelines never need.
        try:
            from airflow_mlops.operators.kubernetes import KubernetesTrainModelOperator
        except ImportError as err:
            raise SpecError(
                [f"training.executor: found 'kubernetes', but this installation cannot build pods ({err}); "
                 "allowed: 'local', or install the extra on the dag-processor and the workers: "
                 "pip install 'airflow-mlops[kubernetes]'"], spec.source,
            ) from None  # fmt: skip

        k = spec.training.kubernetes
        extra = {"deferrable": k.deferrable} if k.deferrable is not None else {}
        cls, kwargs = KubernetesTrainModelOperator, dict(
            **common, image=k.image, namespace=k.namespace, gpus=k.gpus, cpu=k.cpu, memory=k.memory,
            node_selector=k.node_selector or None, tolerations=list(k.tolerations) or None,
            affinity=k.affinity or None, pod_template_file=k.pod_template_file,
            mlflow_token_secret=k.mlflow_token_secret, on_finish_action=k.on_finish_action,
            kubernetes_conn_id=k.kubernetes_conn_id, **extra,
        )  # fmt: skip
    else:
        from airflow_mlops.operators.training import TrainModelOperator

        cls, kwargs = TrainModelOperator, common
    if expand_over is None:
        return cls(**kwargs, model=_model(spec))
    return cls.partial(**kwargs).expand(model=expand_over)


def build_training_dag(spec: PipelineSpec) -> DAG:
    from airflow.sdk import DAG

    with DAG(
        spec.training_dag_id,
        schedule=_timetable(spec.schedules.training, _dt(spec.end_date)),
        max_active_runs=1,
        params={**_window_param(spec.training.window_days, "Training window"), **_override_param()},
        **_dag_kwargs(spec, "training"),
    ) as dag:
        _training_tasks(spec, TRAIN_WINDOW_END, spec.training.window_days)
    return dag


def build_retraining_dag(spec: PipelineSpec) -> DAG:
    from airflow.sdk import DAG, Param

    kwargs = _dag_kwargs(spec, "retraining")
    kwargs["doc_md"] += (
        f"\n\nTriggered by `{spec.monitor_dag_id}` on drift (conf: `window_end`, `drift_report`), or by hand. "
        f"Trains on the {spec.retraining.window_days} days before `window_end`; the new version must beat "
        "the champion to be promoted."
    )
    with DAG(
        spec.retraining_dag_id,
        schedule=None,
        max_active_runs=1,
        params={
            "window_end": Param(
                None, type=["null", "string"], description="end of the training window (exclusive), ISO date"
            ),
            "drift_report": Param(
                None, type=["null", "object"], description="drift report that triggered this run"
            ),
            **_override_param(),
        },
        **kwargs,
    ) as dag:
        _training_tasks(
            spec,
            RETRAIN_WINDOW_END,
            spec.retraining.window_days or spec.training.window_days,
            retraining=True,
        )
    return dag


def build_monitor_dag(spec: PipelineSpec) -> DAG:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, Asset

    from airflow_mlops.operators.drift import DriftBranchOperator
    from airflow_mlops.operators.validation import ValidateDataOperator
    from airflow_mlops.sensors.drift import DriftSensor
    from airflow_mlops.sensors.partition import PartitionCompleteSensor

    d = spec.drift
    s = d.sensor
    waiting = {
        "poke_interval": s.poke_interval, "timeout": s.timeout, "on_timeout": s.on_timeout,
        "deferrable": s.mode == "deferrable", "mode": "poke" if s.mode == "poke" else "reschedule",
    }  # fmt: skip
    drift_asset = Asset(name=f"{spec.name}.drift", uri=f"airflow-mlops://{spec.name}/drift")
    with DAG(
        spec.monitor_dag_id,
        schedule=_timetable(spec.schedules.drift_monitor, _dt(spec.end_date)),
        max_active_runs=4,
        params=_window_param(None, "What to check for drift"),
        **_dag_kwargs(spec, "drift-monitor"),
    ) as dag:
        done = spec.data.completeness
        wait = PartitionCompleteSensor(
            task_id="wait_for_partition", data_uri=spec.data.uri, data_format=spec.data.format,
            min_rows=done.min_rows, marker=done.marker, asset=done.asset, manual_window=True,
            verify_pages=done.verify_pages,
            window_start=INTERVAL_START, window_end=INTERVAL_END, **waiting,
        )  # fmt: skip
        profile = ValidateDataOperator(
            task_id="profile_partition", pipeline=spec.name, data_uri=spec.data.uri, data_format=spec.data.format,
            window_start=SENSED_WINDOW_START, window_end=SENSED_WINDOW_END,
            artifact_uri=spec.storage.uri, features=spec.feature_names, numeric=list(spec.features.numeric),
            target=None, constraints=spec.constraints_dict(), on_extra_columns=spec.data.on_extra_columns,
            expectations="warn",  # a day whose distribution moved is drift to report, not a gate
            quality=spec.quality.model_dump(), quality_severity="warn",  # reported and alerted, never weighed
        )  # fmt: skip
        sensor = DriftSensor(
            task_id="detect_drift", model_name=spec.model_name,
            current_profile_uri="{{ ti.xcom_pull(task_ids='profile_partition')['profile_uri'] }}",
            numeric=list(spec.features.numeric), categorical=list(spec.features.categorical),
            policy=d.policy(), expectations_task_id=profile.task_id,
            **waiting,
        )  # fmt: skip
        no_drift = EmptyOperator(task_id="no_drift")
        if spec.retraining.enabled:
            from airflow_mlops.operators.retraining import TriggerRetrainingOperator

            trigger_retraining = TriggerRetrainingOperator(
                task_id="trigger_retraining",
                trigger_dag_id=spec.retraining_dag_id,
                trigger_run_id="drift__{{ run_id }}",
                ledger_uri=_ledger_uri(spec),
                report=sensor.output,
                window_end="{{ data_interval_end.isoformat() }}",
                cooldown=dt.timedelta(hours=spec.retraining.cooldown_hours),
                consecutive=spec.retraining.consecutive_windows,
                outlets=[drift_asset],
            )
            on_drift = trigger_retraining
        else:
            drift_detected = EmptyOperator(task_id="drift_detected", outlets=[drift_asset])
            on_drift = drift_detected
        branch = DriftBranchOperator(
            task_id="branch_on_drift", report=sensor.output, drift_task_id=on_drift.task_id,
            no_drift_task_id=no_drift.task_id,
        )  # fmt: skip
        wait >> profile >> sensor >> branch >> [on_drift, no_drift]
    return dag


def build_rollback_dag(spec: PipelineSpec) -> DAG:
    """Triggered by hand with a reason: ``champion`` goes back to the version it replaced."""
    from airflow.sdk import DAG, Param

    from airflow_mlops.operators.registry import RollbackOperator

    kwargs = _dag_kwargs(spec, "rollback")
    kwargs["doc_md"] += (
        "\n\nTrigger with a `reason` to move the `champion` alias back to the version it replaced (or to "
        "`to_version`). Who and why are recorded on both versions."
    )
    kwargs["default_args"] = {**kwargs["default_args"], "retries": 0}
    with DAG(
        spec.rollback_dag_id,
        schedule=None,
        max_active_runs=1,
        params={
            "reason": Param("", type="string", minLength=10, description="why roll back (recorded)"),
            "to_version": Param(
                None, type=["null", "string"], description="version to return to (default: previous)"
            ),
        },
        **kwargs,
    ) as dag:
        RollbackOperator(
            task_id="rollback_champion", model_name=spec.model_name, reason="{{ params.reason }}",
            to_version="{{ params.to_version or '' }}",
        )  # fmt: skip
    return dag


def build_scoring_dag(spec: PipelineSpec) -> DAG:
    """Scheduled batch scoring of each data interval with the champion (canary/shadow per the spec)."""
    from airflow.sdk import DAG

    from airflow_mlops.operators.scoring import BatchScoreOperator

    sc = spec.scoring
    if sc is None:
        raise ValueError(f"{spec.source}: a scoring DAG needs a scoring block")
    in_rows = sc.labels is not None and sc.labels.uri is None  # the scored rows carry their label
    with DAG(
        spec.scoring_dag_id,
        schedule=_timetable(sc.schedule, _dt(spec.end_date)),
        max_active_runs=4,
        **_dag_kwargs(spec, "scoring"),
    ) as dag:
        score = BatchScoreOperator(
            task_id="score_partition", model_name=spec.model_name, data_uri=sc.data, output_uri=sc.output,
            data_format=spec.data.format, id_column=sc.id_column, mode=sc.mode, fraction=sc.fraction,
            chunk_rows=sc.chunk_rows, label_column=sc.labels.column if in_rows else None,
            carry=[sc.labels.value.column] if in_rows and sc.labels.value and sc.labels.value.column else None,
            # the training path's contract before any row is scored, and the quality history (alerted)
            constraints=_scoring_constraints(spec, sc.labels.column if in_rows else None),
            features=spec.feature_names, numeric=list(spec.features.numeric), on_bad_rows=sc.on_bad_rows, on_extra_columns=spec.data.on_extra_columns,
            quality=spec.quality.model_dump(), pipeline=spec.name, artifact_uri=spec.storage.uri,
        )  # fmt: skip
        if spec.estimated_metrics:  # a binary classifier: estimate each window before its labels arrive
            from airflow_mlops.operators.scoring import EstimatePerformanceOperator

            estimate = EstimatePerformanceOperator(
                task_id="estimate_performance", model_name=spec.model_name, predictions_uri=sc.output,
                metrics=spec.estimated_metrics, max_metric_drop=sc.estimation.max_metric_drop,
            )  # fmt: skip
            score >> estimate
            if spec.retraining.enabled:
                _retraining_branch(spec, estimate, "estimated", "no_estimated_drift")
    return dag


def _retraining_branch(spec: PipelineSpec, report: Any, source: str, no_drift_task_id: str) -> None:
    """``report >> branch >> [trigger_retraining, <no drift>]`` in the current DAG: a performance verdict
    (live or estimated) feeds the same retraining trigger, ledger, cooldown and consecutive windows as data
    drift; ``source`` keeps each kind's consecutive windows apart."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import Asset

    from airflow_mlops.operators.drift import DriftBranchOperator
    from airflow_mlops.operators.retraining import TriggerRetrainingOperator

    trigger = TriggerRetrainingOperator(
        task_id="trigger_retraining", trigger_dag_id=spec.retraining_dag_id,
        trigger_run_id=f"{source}__{{{{ run_id }}}}", ledger_uri=_ledger_uri(spec), report=report.output,
        window_end="{{ data_interval_end.isoformat() }}",
        cooldown=dt.timedelta(hours=spec.retraining.cooldown_hours),
        consecutive=spec.retraining.consecutive_windows, source=source,
        outlets=[Asset(name=f"{spec.name}.drift", uri=f"airflow-mlops://{spec.name}/drift")],
    )  # fmt: skip
    no_drift = EmptyOperator(task_id=no_drift_task_id)
    branch = DriftBranchOperator(
        task_id=f"branch_on_{source}", report=report.output, drift_task_id=trigger.task_id,
        no_drift_task_id=no_drift.task_id,
    )  # fmt: skip
    report >> branch >> [trigger, no_drift]


def build_live_metrics_dag(spec: PipelineSpec) -> DAG:
    """When labels arrive: live metrics per model version; a challenger that keeps winning is promoted."""
    from airflow.sdk import DAG

    from airflow_mlops.operators.scoring import LiveMetricsOperator

    sc = spec.scoring
    if sc is None or sc.labels is None:
        raise ValueError(f"{spec.source}: live metrics need scoring.labels")
    labels = sc.labels
    kwargs = _dag_kwargs(spec, "live-metrics")
    end = _dt(spec.end_date)
    if end is not None and labels.delay_days:  # labels of the last window come later
        end += dt.timedelta(days=labels.delay_days)
    with DAG(spec.live_metrics_dag_id, schedule=_timetable(sc.schedule, end), max_active_runs=1, **kwargs) as dag:
        live = LiveMetricsOperator(
            task_id="live_metrics", model_name=spec.model_name, predictions_uri=sc.output,
            labels_uri=labels.uri, id_column=sc.id_column, label_column=labels.column or spec.target,
            metric=spec.compare_metric, metrics=spec.live_metrics, min_improvement=spec.tests.compare.min_improvement,
            relative=spec.tests.compare.relative, compare_mode=spec.tests.compare.mode,
            promote_after=labels.promote_after_windows, promotion_mode=spec.promotion.mode,
            promotion_alpha=labels.promotion_alpha, promotion_min_rows=labels.promotion_min_rows,
            value=labels.value.model_dump() if labels.value else None, promote_on=labels.promote_on,
            labels_delay_days=labels.delay_days, data_format=spec.data.format,
            max_metric_drop=labels.max_metric_drop,
        )  # fmt: skip
        if spec.retraining.enabled:  # performance drift feeds the same retraining trigger as data drift
            _retraining_branch(spec, live, "performance", "no_performance_drift")
    return dag


def _ledger_uri(spec: PipelineSpec) -> str:
    return f"{spec.storage.uri.rstrip('/')}/{spec.name}/retraining/ledger.json"


def build_dags(spec: PipelineSpec) -> dict[str, DAG]:
    dags = [build_training_dag(spec), build_monitor_dag(spec), build_rollback_dag(spec)]
    if spec.retraining.enabled:
        dags.append(build_retraining_dag(spec))
    if spec.scoring is not None:
        dags.append(build_scoring_dag(spec))
        if spec.scoring.labels is not None:
            dags.append(build_live_metrics_dag(spec))
    return {d.dag_id: d for d in dags}


def _scoring_constraints(spec: PipelineSpec, label_column: str | None) -> dict[str, Any]:
    """The contract as scoring checks it: rows to score carry no label, so the target's rule applies only
    where the scored rows carry it."""
    constraints = spec.constraints_dict()
    if spec.target and spec.target != label_column:
        constraints["columns"] = {k: v for k, v in constraints["columns"].items() if k != spec.target}
    return constraints
