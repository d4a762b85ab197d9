"""A fleet of pipelines: N generated specs vs hand-written DAG files of the same shape, in one run.

For N in (1, 100, 1000) it writes N varied specs and, for each, a hand-written Python DAG file that builds the
same DAGs with the same operators and arguments (what a data engineer would write without the spec). The
specs are compiled by the PipelineSpecBundle's compiler (one DAG file per spec), then the two kinds of file are
parsed and serialised alternately in this process, as the dag-processor's parsing processes do: parse CPU,
serialise CPU and serialised bytes, per DAG and per pipeline, and their ratios.

Then the real ``airflow dag-processor`` runs once over the 1,000-spec folder with Airflow's default time-outs
and parsing processes (SQLite metadata DB): DAGs in the database, import errors, time per file.

    .venv/bin/python benchmarks/fleet.py [--sizes 1 100 1000] [--no-processor]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "dags" / "pipelines" / "demo_churn.yaml"
HEAVY = ["torch", "peft", "transformers", "mlflow", "whylogs", "pandas", "numpy"]
CRONS = ["@daily", "@weekly", "0 3 * * *", "30 2 * * 1", "0 */6 * * *", "15 4 * * 1-5", "0 0 1 * *"]


def varied_spec(i: int, twin_shapes_only: bool = False) -> dict:
    """Spec number ``i`` of a varied fleet: kinds, tasks, schedules, optional blocks and teams all vary.

    ``twin_shapes_only`` leaves out the shapes :func:`handwritten_source` does not write (search, pods)."""
    import yaml

    rng = random.Random(i)
    raw = yaml.safe_load(DEMO.read_text())
    raw.update(
        name=f"fleet_{i:04d}", owner=f"team_{i % 10}", tags=[f"team_{i % 10}"], description=f"pipeline {i}"
    )
    raw.pop("end_date", None)
    raw["schedules"] = {"training": rng.choice(CRONS), "drift_monitor": rng.choice(CRONS[:4])}
    numeric = raw["features"]["numeric"][: rng.randint(2, 5)]
    categorical = raw["features"]["categorical"][: rng.randint(0, 3)]
    raw["features"] = {"numeric": numeric, "categorical": categorical}
    raw["constraints"]["columns"] = {
        k: v for k, v in raw["constraints"]["columns"].items() if k in (*numeric, *categorical, "churned")
    }
    raw["drift"]["numeric"] = {"ks": round(rng.uniform(0.05, 0.2), 3)}
    if i % 5 == 1:  # regression
        raw["model"] = {"kind": "tabular", "task": "regression", "params": {"epochs": rng.randint(3, 30)}}
        raw["target"] = "monthly_charges"
        raw["features"]["numeric"] = [n for n in numeric if n != "monthly_charges"] or ["age"]
        raw["constraints"]["columns"].pop("monthly_charges", None)
        raw["tests"] = {"thresholds": {"rmse": {"max": 50}}, "compare": {"metric": "rmse"}}
        raw["scoring"].pop("labels", None)
    elif i % 7 == 2:  # a LoRA text classifier
        raw["model"] = {"kind": "lora_text", "params": {"epochs": 2, "lora_r": rng.choice([4, 8, 16])}}
        raw["features"] = {"text": "note"}
        raw["constraints"] = {"min_rows": 100}
        raw["drift"].pop("numeric", None)
    else:
        raw["model"]["params"] = {"hidden_units": [rng.choice([16, 32, 64])], "epochs": rng.randint(3, 30)}
    if i % 4 == 3:
        raw["retraining"] = {"enabled": False}
    if i % 3 == 0:
        raw.pop("scoring")
    elif i % 3 == 1 and "labels" in raw["scoring"]:
        raw["scoring"].pop("labels")
    if i % 9 == 4:
        raw["promotion"] = {"mode": "approval", "approval_timeout_hours": 24}
    if not twin_shapes_only and i % 13 == 5:
        raw["search"] = {"params": {"epochs": [5, 10], "hidden_units": [[16], [32]]}, "max_trials": 4}
    if not twin_shapes_only and i % 17 == 6:
        raw["training"].update(executor="kubernetes", kubernetes={"gpus": 1, "memory": "8Gi"})
    return raw


def handwritten_source(spec) -> str:
    """A hand-written DAG file that builds the same DAGs as ``spec`` (same operators, same arguments)."""
    from airflow_mlops.pipeline.factory import (
        MODEL_OVERRIDES,
        OVERRIDE_REASON,
        REEVALUATE_REASON,
        RETRAIN_WINDOW_END,
        TRAIN_WINDOW_END,
        _dag_kwargs,
        _ledger_uri,
    )

    r = repr
    kinds = ["training", "drift-monitor", "rollback"] + (["retraining"] if spec.retraining.enabled else [])
    if spec.scoring is not None:
        kinds.append("scoring")
        if spec.scoring.labels is not None:
            kinds.append("live-metrics")
    common = {k: v for k, v in _dag_kwargs(spec, "training").items() if k not in ("tags", "description", "doc_md")}
    model = {"kind": spec.model.kind, "task": spec.model.task, "params": spec.model.params_dict()}
    lines = [
        '"""Hand-written twin of a generated pipeline (benchmarks/fleet.py)."""',
        "import datetime",
        "import datetime as dt",
        "from airflow.sdk import DAG, Asset, Param, CronDataIntervalTimetable",
        "from airflow.providers.standard.operators.empty import EmptyOperator",
        "from airflow_mlops.operators.drift import DriftBranchOperator",
        "from airflow_mlops.operators.evaluation import ModelTestOperator",
        "from airflow_mlops.operators.registry import PromoteModelOperator, RegisterModelOperator, RollbackOperator",
        "from airflow_mlops.operators.approval import ReleaseApprovalOperator",
        "from airflow_mlops.operators.retraining import TriggerRetrainingOperator",
        "from airflow_mlops.operators.scoring import BatchScoreOperator, LiveMetricsOperator",
        "from airflow_mlops.operators.training import TrainModelOperator",
        "from airflow_mlops.operators.validation import ValidateDataOperator",
        "from airflow_mlops.sensors.drift import DriftSensor",
        "from airflow_mlops.sensors.partition import PartitionCompleteSensor",
        f"NAME = {r(spec.name)}",
        f"DATA = {r(spec.data.uri)}",
        f"COMMON = dict(start_date={r(common['start_date'])}, end_date={r(common['end_date'])}, "
        f"catchup={r(common['catchup'])}, default_args={r(common['default_args'])})",
        f"NUMERIC = {r(list(spec.features.numeric))}",
        f"FEATURES = {r(spec.feature_names)}",
        f"CONSTRAINTS = {r(spec.constraints_dict())}",
        "OVERRIDES = {'model_params': Param(None, type=['null', 'object']), "
        "'override_reason': Param(None, type=['null', 'string'])}",
        "",
        "def training(dag_id, schedule, window_end, window_days, params, end_date):",
        f"    with DAG(dag_id, schedule=schedule, max_active_runs=1, params=params, tags={r(['airflow-mlops', spec.name])},"
        " **{**COMMON, 'end_date': end_date}) as dag:",
        "        window = {'window_start': None, 'window_end': window_end, 'window_days': window_days}",
        "        validate = ValidateDataOperator(task_id='validate_data', pipeline=NAME, data_uri=DATA, "
        f"data_format={r(spec.data.format)}, artifact_uri={r(spec.storage.uri)}, features=FEATURES, numeric=NUMERIC, "
        f"target={r(spec.target)}, constraints=CONSTRAINTS, **window)",
        "        train = TrainModelOperator(task_id='train_model', pipeline=NAME, data_uri=DATA, "
        f"data_format={r(spec.data.format)}, target={r(spec.target)}, numeric=NUMERIC, "
        f"categorical={r(list(spec.features.categorical))}, text={r(spec.features.text)}, "
        f"holdout_fraction={r(spec.training.holdout_fraction)}, seed={r(spec.training.seed)}, validation=validate.output, "
        f"checkpoint_root={r(spec.storage.uri.rstrip('/') + '/' + spec.name + '/checkpoints')}, parent_run_id=None, "
        f"model_overrides={r(MODEL_OVERRIDES)}, model={r(model)}, "
        f"max_active_tis_per_dag={spec.training.concurrent_windows}, **window)",
        "        validate >> train",
        "        test = ModelTestOperator(task_id='test_model', model_name=NAME, training=train.output, data_uri=DATA, "
        f"data_format={r(spec.data.format)}, target={r(spec.target)}, thresholds={r(spec.thresholds())}, "
        f"compare_metric={r(spec.compare_metric)}, min_improvement={r(spec.tests.compare.min_improvement)}, "
        f"compare_mode={r(spec.tests.compare.mode)}, relative={r(spec.tests.compare.relative)}, checks={r(spec.checks())}, "
        f"override_reason={r(OVERRIDE_REASON)}, reevaluate_reason={r(REEVALUATE_REASON)}, holdout_fraction={r(spec.training.holdout_fraction)}, "
        f"seed={r(spec.training.seed)}, max_active_tis_per_dag={spec.training.concurrent_windows}, **window)",
        "        register = RegisterModelOperator(task_id='register_model', model_name=NAME, training=train.output, "
        f"tests=test.output, promotion_mode={r(spec.promotion.mode)}, compare_metric={r(spec.compare_metric)}, "
        f"max_active_tis_per_dag={spec.training.concurrent_windows})",
        "        test >> register",
    ]
    if spec.promotion.mode == "approval":
        lines += [
            "        approve = ReleaseApprovalOperator(task_id='approve_release', model_name=NAME, "
            "registration=register.output, tests=test.output, "
            f"response_timeout=dt.timedelta(hours={spec.promotion.approval_timeout_hours}))",
            "        promote = PromoteModelOperator(task_id='promote_model', model_name=NAME, "
            "registration=register.output, tests=test.output, approval=approve.output, "
            f"compare_metric={r(spec.compare_metric)})",
            "        register >> approve >> promote",
        ]
    lines += [
        "    return dag",
        "",
        f"train = training(NAME + '__train', {_schedule_src(spec.schedules.training)}, {r(TRAIN_WINDOW_END)}, "
        f"{spec.training.window_days}, OVERRIDES, COMMON['end_date'])",
    ]
    if spec.retraining.enabled:
        lines.append(
            f"retrain = training(NAME + '__retrain', None, {r(RETRAIN_WINDOW_END)}, {spec.retraining.window_days}, "
            "{'window_end': Param(None, type=['null', 'string']), 'drift_report': Param(None, type=['null', 'object']),"
            " **OVERRIDES}, None)"
        )
    d, s = spec.drift, spec.drift.sensor
    waiting = (
        f"poke_interval={s.poke_interval}, timeout={s.timeout}, on_timeout={r(s.on_timeout)}, "
        f"deferrable={s.mode == 'deferrable'}, mode={r('poke' if s.mode == 'poke' else 'reschedule')}"
    )
    c = spec.data.completeness
    lines += [
        f"with DAG(NAME + '__drift_monitor', schedule={_schedule_src(spec.schedules.drift_monitor)}, max_active_runs=4, "
        f"tags={r(['airflow-mlops', spec.name])}, **COMMON):",
        f"    wait = PartitionCompleteSensor(task_id='wait_for_partition', data_uri=DATA, data_format={r(spec.data.format)}, "
        f"min_rows={r(c.min_rows)}, marker={r(c.marker)}, asset={r(c.asset)}, {waiting})",
        "    profile = ValidateDataOperator(task_id='profile_partition', pipeline=NAME, data_uri=DATA, "
        f"data_format={r(spec.data.format)}, artifact_uri={r(spec.storage.uri)}, features=FEATURES, numeric=NUMERIC, "
        "target=None, constraints=CONSTRAINTS)",
        "    sensor = DriftSensor(task_id='detect_drift', model_name=NAME, "
        "current_profile_uri=\"{{ ti.xcom_pull(task_ids='profile_partition')['profile_uri'] }}\", "
        f"numeric=NUMERIC, categorical={r(list(spec.features.categorical))}, "
        f"policy={r(d.policy().as_dict())}, {waiting})",
        "    no_drift = EmptyOperator(task_id='no_drift')",
        "    asset = Asset(name=NAME + '.drift', uri='airflow-mlops://' + NAME + '/drift')",
    ]
    if spec.retraining.enabled:
        lines.append(
            "    on_drift = TriggerRetrainingOperator(task_id='trigger_retraining', trigger_dag_id=NAME + '__retrain', "
            f"trigger_run_id='drift__{{{{ run_id }}}}', ledger_uri={r(_ledger_uri(spec))}, report=sensor.output, "
            "window_end='{{ data_interval_end.isoformat() }}', "
            f"cooldown=dt.timedelta(hours={spec.retraining.cooldown_hours}), "
            f"consecutive={spec.retraining.consecutive_windows}, outlets=[asset])"
        )
    else:
        lines.append("    on_drift = EmptyOperator(task_id='drift_detected', outlets=[asset])")
    lines += [
        "    branch = DriftBranchOperator(task_id='branch_on_drift', report=sensor.output, "
        "drift_task_id=on_drift.task_id, no_drift_task_id=no_drift.task_id)",
        "    wait >> profile >> sensor >> branch >> [on_drift, no_drift]",
        "with DAG(NAME + '__rollback', schedule=None, max_active_runs=1, params={'reason': Param('', type='string', "
        "minLength=10), 'to_version': Param(None, type=['null', 'string'])}, "
        f"tags={r(['airflow-mlops', spec.name])}, **{{**COMMON, 'end_date': None, "
        "'default_args': {**COMMON['default_args'], 'retries': 0}}):",
        "    RollbackOperator(task_id='rollback_champion', model_name=NAME, reason='{{ params.reason }}', "
        "to_version=\"{{ params.to_version or '' }}\")",
    ]
    sc = spec.scoring
    if sc is not None:
        lines += [
            f"with DAG(NAME + '__score', schedule={_schedule_src(sc.schedule)}, max_active_runs=4, "
            f"tags={r(['airflow-mlops', spec.name])}, **COMMON):",
            f"    score = BatchScoreOperator(task_id='score_partition', model_name=NAME, data_uri={r(sc.data)}, "
            f"output_uri={r(sc.output)}, data_format={r(spec.data.format)}, id_column={r(sc.id_column)}, "
            f"mode={r(sc.mode)}, fraction={sc.fraction}, chunk_rows={sc.chunk_rows})",
        ]
        if spec.estimated_metrics:
            lines += [
                "    from airflow_mlops.operators.scoring import EstimatePerformanceOperator",
                "    estimate = EstimatePerformanceOperator(task_id='estimate_performance', model_name=NAME, "
                f"predictions_uri={r(sc.output)}, metrics={r(spec.estimated_metrics)}, "
                f"max_metric_drop={r(sc.estimation.max_metric_drop)})",
                "    score >> estimate",
            ]
            if spec.retraining.enabled:
                lines += [
                    "    trigger = TriggerRetrainingOperator(task_id='trigger_retraining', "
                    "trigger_dag_id=NAME + '__retrain', trigger_run_id='estimated__{{ run_id }}', "
                    f"ledger_uri={r(_ledger_uri(spec))}, report=estimate.output, "
                    "window_end='{{ data_interval_end.isoformat() }}', "
                    f"cooldown=dt.timedelta(hours={spec.retraining.cooldown_hours}), "
                    f"consecutive={spec.retraining.consecutive_windows}, source='estimated', "
                    "outlets=[Asset(name=NAME + '.drift', uri='airflow-mlops://' + NAME + '/drift')])",
                    "    quiet = EmptyOperator(task_id='no_estimated_drift')",
                    "    branch = DriftBranchOperator(task_id='branch_on_estimated', report=estimate.output, "
                    "drift_task_id=trigger.task_id, no_drift_task_id=quiet.task_id)",
                    "    estimate >> branch >> [trigger, quiet]",
                ]
        if sc.labels is not None:
            lb = sc.labels
            lines += [
                f"with DAG(NAME + '__live_metrics', schedule={_schedule_src(sc.schedule)}, max_active_runs=1, "
                f"tags={r(['airflow-mlops', spec.name])}, **COMMON):",
                f"    live = LiveMetricsOperator(task_id='live_metrics', model_name=NAME, predictions_uri={r(sc.output)}, "
                f"labels_uri={r(lb.uri)}, id_column={r(sc.id_column or '')}, label_column={r(lb.column)}, "
                f"metric={r(spec.compare_metric)}, min_improvement={spec.tests.compare.min_improvement}, "
                f"promote_after={lb.promote_after_windows}, promotion_mode={r(spec.promotion.mode)}, "
                f"labels_delay_days={lb.delay_days}, data_format={r(spec.data.format)}, max_metric_drop={lb.max_metric_drop})",
            ]
            if spec.retraining.enabled:
                lines += [
                    "    trigger = TriggerRetrainingOperator(task_id='trigger_retraining', "
                    "trigger_dag_id=NAME + '__retrain', trigger_run_id='performance__{{ run_id }}', "
                    f"ledger_uri={r(_ledger_uri(spec))}, report=live.output, "
                    "window_end='{{ data_interval_end.isoformat() }}', "
                    f"cooldown=dt.timedelta(hours={spec.retraining.cooldown_hours}), "
                    "outlets=[Asset(name=NAME + '.drift', uri='airflow-mlops://' + NAME + '/drift')])",
                    "    quiet = EmptyOperator(task_id='no_performance_drift')",
                    "    branch = DriftBranchOperator(task_id='branch_on_performance', report=live.output, "
                    "drift_task_id=trigger.task_id, no_drift_task_id=quiet.task_id)",
                    "    live >> branch >> [trigger, quiet]",
                ]
    return "\n".join(lines) + "\n"


STOCK_HEAD = '''"""Stock-operator twin of a generated pipeline (benchmarks/fleet.py): the same DAGs, task ids, dependencies,
schedules, retries and templated arguments, written with Airflow's own operators. Each task's callable names the
project step it stands for and imports the project only when it runs (no project import at parse time, as a
careful hand-writer does). A parse-cost baseline: the benchmark parses these files, it does not run them."""
import datetime as dt
from airflow.sdk import DAG, Asset, Param
from airflow.timetables.interval import CronDataIntervalTimetable
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.providers.standard.sensors.python import PythonSensor


def step(kind, arguments):
    """Run the project step ``kind`` (module:class) with the task's templated arguments, imported here."""
    import importlib

    from airflow.sdk import get_current_context

    module, _, name = kind.partition(":")
    context = get_current_context()
    return getattr(importlib.import_module(module), name)(task_id=context["ti"].task_id, **arguments).execute(context)

'''


def stock_source(spec) -> str:
    """A DAG file with stock Airflow operators (PythonOperator, BranchPythonOperator, PythonSensor,
    EmptyOperator) that builds the DAGs ``spec`` compiles to: every DAG's id, schedule, dates, params, default
    arguments and tags, and every task's id, upstream tasks, retries, concurrency, outlets, sensor timing and
    templated arguments (an upstream task's output as ``{{ ti.xcom_pull(...) }}``)."""
    from airflow.sdk import BaseSensorOperator
    from airflow.sdk.definitions.xcom_arg import XComArg

    from airflow_mlops.pipeline.factory import build_dags

    r = repr

    def literal(value):
        if isinstance(value, XComArg):
            return r("{{ ti.xcom_pull(task_ids=" + repr(value.operator.task_id) + ") }}")
        if isinstance(value, (str, int, float, bool, type(None))):
            return r(value)
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(literal(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{r(str(k))}: {literal(v)}" for k, v in value.items()) + "}"
        if isinstance(value, dt.timedelta):
            return f"dt.timedelta(seconds={value.total_seconds()!r})"
        return None  # not a plain value (ArgNotSet and the like): left out

    lines = [STOCK_HEAD]
    for dag_id, dag in build_dags(spec).items():
        expression = getattr(dag.timetable, "_expression", None)
        schedule = f"CronDataIntervalTimetable({expression!r}, timezone='UTC')" if expression else "None"
        params = ", ".join(
            f"{r(k)}: Param({literal(p.value)}, type={literal(p.schema.get('type'))})"
            for k, p in ((k, dag.params.get_param(k)) for k in dag.params.keys())
        )  # fmt: skip
        default_args = ", ".join(f"{r(k)}: {literal(v)}" for k, v in dag.default_args.items() if literal(v) is not None)
        lines += [
            f"with DAG({r(dag_id)}, schedule={schedule}, start_date=dt.datetime.fromisoformat({r(dag.start_date.isoformat())}), "
            f"end_date={'dt.datetime.fromisoformat(' + r(dag.end_date.isoformat()) + ')' if dag.end_date else 'None'}, "
            f"catchup={dag.catchup!r}, max_active_runs={dag.max_active_runs}, tags={sorted(dag.tags)!r}, "
            f"description={r(dag.description)}, params={{{params}}}, default_args={{{default_args}}}):",
            "    t = {}",
        ]
        for task in dag.topological_sort():
            kind = type(task).__name__
            args = {
                f: literal(getattr(task, f)) for f in task.template_fields
                if not f.startswith("_") and literal(getattr(task, f)) is not None
            }  # fmt: skip
            kwargs = ", ".join(f"{r(k)}: {v}" for k, v in args.items())
            common = f"task_id={r(task.task_id)}, retries={task.retries}"
            if task.max_active_tis_per_dag is not None:
                common += f", max_active_tis_per_dag={task.max_active_tis_per_dag}"
            if task.outlets:
                common += ", outlets=[" + ", ".join(f"Asset(name={a.name!r}, uri={a.uri!r})" for a in task.outlets) + "]"
            core = f"{type(task).__module__}:{kind}"
            if kind == "EmptyOperator":
                op = f"EmptyOperator({common})"
            elif isinstance(task, BaseSensorOperator):
                op = (f"PythonSensor({common}, python_callable=step, op_kwargs={{'kind': {core!r}, 'arguments': {{{kwargs}}}}}, "
                      f"poke_interval={task.poke_interval!r}, timeout={task.timeout!r}, mode={task.mode!r})")  # fmt: skip
            elif "Branch" in kind:
                op = f"BranchPythonOperator({common}, python_callable=step, op_kwargs={{'kind': {core!r}, 'arguments': {{{kwargs}}}}})"
            else:
                op = f"PythonOperator({common}, python_callable=step, op_kwargs={{'kind': {core!r}, 'arguments': {{{kwargs}}}}})"
            lines.append(f"    t[{r(task.task_id)}] = {op}")
            for up in sorted(task.upstream_task_ids):
                lines.append(f"    t[{r(up)}] >> t[{r(task.task_id)}]")
    return "\n".join(lines) + "\n"


def _schedule_src(expression: str | None) -> str:
    if expression is None or expression == "@once":
        return repr(expression)
    return f"CronDataIntervalTimetable({expression!r}, timezone='UTC')"


def write_fleet(n: int, folder: Path, twin_shapes_only: bool) -> tuple[Path, Path]:
    """``folder/specs/team_k/*.yaml`` (teams own sub-folders); when twins are asked, ``folder/hand/*.py`` (this
    project's operators) and ``folder/stock/*.py`` (Airflow's stock operators)."""
    import yaml

    from airflow_mlops.pipeline.spec import parse_spec

    specs, hand = folder / "specs", folder / "hand"
    for i in range(n):
        raw = varied_spec(i, twin_shapes_only)
        path = specs / f"team_{i % 10}" / f"{raw['name']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        if twin_shapes_only:
            hand.mkdir(parents=True, exist_ok=True)
            spec = parse_spec(raw, path.relative_to(specs).as_posix())
            (hand / f"{raw['name']}.py").write_text(handwritten_source(spec))
            (folder / "stock").mkdir(exist_ok=True)
            (folder / "stock" / f"{raw['name']}.py").write_text(stock_source(spec))
    return specs, hand


def _parse_and_serialise(bag, path: Path) -> tuple[float, float, int, int, float]:
    from airflow.serialization.serialized_objects import DagSerialization

    before = set(bag.dags)
    t0 = time.process_time()
    w0 = time.perf_counter()
    found = bag.process_file(str(path), only_if_updated=False)
    parse_cpu = time.process_time() - t0
    wall = time.perf_counter() - w0
    if bag.import_errors:
        raise RuntimeError(f"{path}: {bag.import_errors}")
    t1 = time.process_time()
    size = sum(len(json.dumps(DagSerialization.to_dict(dag))) for dag in found)
    ser_cpu = time.process_time() - t1
    for dag_id in set(bag.dags) - before:
        del bag.dags[dag_id]  # keep the bag small: each file is measured alone, as a parsing process would
    return parse_cpu, ser_cpu, size, len(found), wall


def compare(n: int) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    from airflow_mlops.pipeline.fleet import compile_stubs

    with tempfile.TemporaryDirectory() as tmp:
        specs, hand = write_fleet(n, Path(tmp), twin_shapes_only=True)
        stubs = Path(tmp) / "compiled"
        compile_stubs(specs, stubs)
        gen_files = sorted(stubs.rglob("*.py"))
        hand_files = sorted(hand.glob("*.py"))
        stock_files = sorted((Path(tmp) / "stock").glob("*.py"))
        bags = {k: DagBag(str(Path(tmp) / "empty"), collect_dags=False) for k in ("gen", "hand", "stock")}
        # warm-up (imports, as the dag-processor's manager has them before it forks): not measured
        _parse_and_serialise(bags["gen"], gen_files[0])
        _parse_and_serialise(bags["hand"], hand_files[0])
        _parse_and_serialise(bags["stock"], stock_files[0])
        totals = {k: [0.0, 0.0, 0, 0] for k in bags}
        walls = []
        for g, h, st in zip(gen_files, hand_files, stock_files, strict=True):  # interleaved
            for kind, path in (("gen", g), ("hand", h), ("stock", st)):
                p, s, b, d, w = _parse_and_serialise(bags[kind], path)
                t = totals[kind]
                t[0] += p
                t[1] += s
                t[2] += b
                t[3] += d
                if kind == "gen":
                    walls.append(w)
    out = {"n": n}
    for kind, (p, s, b, d) in totals.items():
        out[kind] = {"dags": d, "parse_ms_per_dag": 1000 * p / d, "serialise_ms_per_dag": 1000 * s / d,
                     "bytes_per_dag": b / d, "parse_serialise_ms_per_pipeline": 1000 * (p + s) / n}  # fmt: skip
    g, h = out["gen"], out["hand"]
    out["ratio_parse_serialise_per_dag"] = (g["parse_ms_per_dag"] + g["serialise_ms_per_dag"]) / (
        h["parse_ms_per_dag"] + h["serialise_ms_per_dag"]
    )
    out["ratio_bytes_per_dag"] = g["bytes_per_dag"] / h["bytes_per_dag"]
    out["ratio_per_pipeline"] = g["parse_serialise_ms_per_pipeline"] / h["parse_serialise_ms_per_pipeline"]
    out["ratio_per_pipeline_vs_stock"] = (
        g["parse_serialise_ms_per_pipeline"] / out["stock"]["parse_serialise_ms_per_pipeline"]
    )
    out["max_file_parse_s"] = max(walls)
    out["median_file_parse_s"] = statistics.median(walls)
    return out


def heavy_imports(n: int, heavy: list[str] = HEAVY) -> list[str]:
    """Compile and parse a fleet in a fresh interpreter; which heavy modules did it import?"""
    code = f"""
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, {str(ROOT / "benchmarks")!r})
import fleet
from airflow_mlops.pipeline.fleet import compile_stubs
from airflow.dag_processing.dagbag import DagBag
tmp = Path(tempfile.mkdtemp())
specs, _ = fleet.write_fleet({n}, tmp, twin_shapes_only=False)
compile_stubs(specs, tmp / "compiled")
bag = DagBag(str(tmp / "compiled"))
assert not bag.import_errors, bag.import_errors
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def processor_env(tmp: Path, bundles: list[dict]) -> dict[str, str]:
    """The environment of a throw-away Airflow (SQLite under ``tmp``) that serves ``bundles``; every other
    setting is Airflow's default (parsing processes, time-outs)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(tmp / "home"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp / 'home' / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(tmp / "bundles"),
        "WHYLOGS_NO_ANALYTICS": "True",
    }


def real_dag_processor(
    n: int, files: str = "specs", twin_shapes_only: bool = False, timeout: float = 3600, preload: bool = True
) -> dict:
    """Run ``airflow dag-processor`` once over ``n`` specs (``files="specs"``), or their twins written with this
    project's operators (``"hand"``) or with Airflow's stock operators (``"stock"``), with Airflow's default
    time-outs and parsing processes."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        specs, _ = write_fleet(n, tmp / "fleet", twin_shapes_only=files != "specs" or twin_shapes_only)
        if files != "specs":
            bundles = [{"name": "fleet", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                        "kwargs": {"path": str(tmp / "fleet" / files)}}]  # fmt: skip
        else:
            bundles = [{"name": "fleet", "classpath": "airflow_mlops.pipeline.bundle.PipelineSpecBundle",
                        "kwargs": {"path": str(specs), "preload": preload}}]  # fmt: skip
        env = processor_env(tmp, bundles)
        airflow = str(Path(sys.executable).with_name("airflow"))
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        t0 = time.perf_counter()
        with (tmp / "processor.log").open("w") as log:
            done = subprocess.run(
                [airflow, "dag-processor", "--num-runs", "1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                timeout=timeout,
            )  # fmt: skip
        wall = time.perf_counter() - t0
        probe = """
import json
from sqlalchemy import func, select
from airflow.models.dag import DagModel
from airflow.models.errors import ParseImportError
from airflow.models.dagbag import DagPriorityParsingRequest
from airflow.models.serialized_dag import SerializedDagModel
from airflow.utils.session import create_session
with create_session() as s:
    print(json.dumps({
        "dags": s.scalar(select(func.count()).select_from(DagModel).where(DagModel.is_stale.is_(False))),
        "serialized": s.scalar(select(func.count()).select_from(SerializedDagModel)),
        "import_errors": s.scalar(select(func.count()).select_from(ParseImportError)),
    }))
"""
        counts = json.loads(
            subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True)
            .stdout.strip().splitlines()[-1]
        )  # fmt: skip
        text = (tmp / "processor.log").read_text()
        durations = _file_durations(text)
        return {
            "files": files, "n": n, "exit_code": done.returncode,
            "wall_s": wall, **counts,
            "files_timed": len(durations), "max_file_s": max(durations, default=float("nan")),
            "median_file_s": statistics.median(durations) if durations else float("nan"),
            "p90_file_s": statistics.quantiles(durations, n=10)[-1] if len(durations) > 1 else float("nan"),
            "timeouts_in_log": text.count("timed out") + text.count("import timeout"),
        }  # fmt: skip


def _file_durations(log: str) -> list[float]:
    """Each file's "Last Duration" from the last 'DAG File Processing Stats' table the processor printed: from
    the start of the file's parsing process until the manager collected its result (an upper bound of the
    parse itself, which also waits for the manager to store other files' DAGs)."""
    table = log.rsplit("DAG File Processing Stats", 1)[-1].splitlines()
    header = next((i for i, line in enumerate(table) if "Last Duration" in line), None)
    if header is None:
        return []
    start = table[header].index("Last Duration")
    end = table[header].index("Last Run At") if "Last Run At" in table[header] else None
    out = []
    for line in table[header + 2 :]:
        if not line.strip() or line[:4].isdigit():  # the table ends at a blank or a (timestamped) log line
            break
        cell = line[start:end].strip()
        try:
            out.append(float(cell.removesuffix("s")))
        except ValueError:
            continue  # a file not parsed yet
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--no-processor", action="store_true")
    parser.add_argument("--no-compare", action="store_true", help="only the real dag-processor run")
    parser.add_argument("--processor-n", type=int, default=1000)
    parser.add_argument(
        "--no-preload", action="store_true", help="the bundle does not preload the factory's modules (a comparison)"
    )
    parser.add_argument(
        "--processor-baseline", action="store_true",
        help="also the twins: this project's operators, and Airflow's stock operators (the ratio's baseline)",
    )  # fmt: skip
    args = parser.parse_args()
    from airflow.configuration import conf

    timeout = conf.getfloat("core", "dagbag_import_timeout")
    print(f"dagbag_import_timeout {timeout:.0f} s: 10% is {timeout / 10:.1f} s")
    print(f"{'N':>5} {'DAGs gen/hand':>14} {'parse ms/DAG':>14} {'serialise ms/DAG':>17} {'bytes/DAG':>13} "
          f"{'x parse+ser/DAG':>15} {'x bytes':>8} {'x /pipeline':>11} {'x /pipeline vs stock':>20} "
          f"{'max file s':>10}")  # fmt: skip
    for n in args.sizes if not args.no_compare else []:
        r = compare(n)
        g, h = r["gen"], r["hand"]
        print(
            f"{n:>5} {g['dags']:>6}/{h['dags']:<7} {g['parse_ms_per_dag']:>6.2f}/{h['parse_ms_per_dag']:<7.2f} "
            f"{g['serialise_ms_per_dag']:>8.2f}/{h['serialise_ms_per_dag']:<8.2f} "
            f"{g['bytes_per_dag']:>6.0f}/{h['bytes_per_dag']:<6.0f} {r['ratio_parse_serialise_per_dag']:>15.2f} "
            f"{r['ratio_bytes_per_dag']:>8.2f} {r['ratio_per_pipeline']:>11.2f} "
            f"{r['ratio_per_pipeline_vs_stock']:>20.2f} {r['max_file_parse_s']:>10.3f}"
        )
    if not args.no_compare:
        print(
            f"heavy modules imported while compiling and parsing 1,000 specs: {heavy_imports(1000) or 'none'}"
        )
    if not args.no_processor:
        runs = {"specs": real_dag_processor(
            args.processor_n, twin_shapes_only=args.processor_baseline, preload=not args.no_preload
        )}  # fmt: skip
        print(json.dumps(runs["specs"]))
        if args.processor_baseline:
            for files in ("hand", "stock"):
                runs[files] = real_dag_processor(args.processor_n, files=files)
                print(json.dumps(runs[files]))
            for files in ("hand", "stock"):
                print(
                    f"generated / {files}: wall {runs['specs']['wall_s'] / runs[files]['wall_s']:.2f}x, "
                    f"median file {runs['specs']['median_file_s'] / runs[files]['median_file_s']:.2f}x"
                )


if __name__ == "__main__":
    main()
