"""The ``airflow-mlops`` command."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_mlops.pipeline.spec import PipelineSpec


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.stack == "celery":
        from airflow_mlops.tools.stack import run_stack_demo

        return run_stack_demo(
            Path(args.home if args.home != ".demo" else ".demo-stack"), name=args.name, redis_db=args.redis_db,
            port_base=args.port_base, dags_folder=args.dags_folder,
        )  # fmt: skip
    from airflow_mlops.tools.quickstart import run_demo

    return run_demo(Path(args.home), keep=args.keep)


def _cmd_stack(args: argparse.Namespace) -> int:
    from airflow_mlops.tools.stack import main as stack_main

    argv = [args.action, "--home", args.home, "--name", args.name, "--redis-db", str(args.redis_db)]
    argv += ["--port-base", str(args.port_base)] if args.port_base is not None else []
    argv += ["--dags-folder", str(args.dags_folder)] if args.dags_folder is not None else []
    argv += ["--fresh"] if args.fresh else []
    return stack_main(argv)


def _cmd_ui(args: argparse.Namespace) -> int:
    import os
    import subprocess

    from airflow_mlops.tools.quickstart import _bin, demo_env, stop_process_tree
    from airflow_mlops.tools.stack import MLFLOW_SERVER_ENV

    home = Path(args.home).resolve()
    if not (home / "airflow" / "airflow.db").exists():
        print(f"no demo state under {home}: run `airflow-mlops demo --home {home}` first", file=sys.stderr)
        return 2
    os.environ.update(demo_env(home, args.port, args.mlflow_port))
    procs = [
        subprocess.Popen([_bin("airflow"), "standalone"], start_new_session=True),
        subprocess.Popen(
            [
                _bin("mlflow"),
                "ui",
                "--backend-store-uri",
                os.environ["MLFLOW_TRACKING_URI"],
                "--port",
                str(args.mlflow_port),
            ],
            start_new_session=True,
            env={**os.environ, **MLFLOW_SERVER_ENV},
        ),
    ]
    print(
        f"Airflow UI: http://localhost:{args.port} (user admin; password in "
        f"{home / 'airflow' / 'simple_auth_manager_passwords.json.generated'})\n"
        f"MLflow UI:  http://127.0.0.1:{args.mlflow_port}\nCtrl-C stops both."
    )
    try:
        procs[0].wait()
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            stop_process_tree(p)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from airflow_mlops.tools.demo import generate

    drift = None if args.no_drift else dt.date.fromisoformat(args.drift_from)
    files = generate(
        args.out, dt.date.fromisoformat(args.start), args.days, drift, args.rows_per_day, args.seed
    )
    print(f"wrote {len(files)} partitions under {args.out}")
    return 0


def _cmd_validate_spec(args: argparse.Namespace) -> int:
    from airflow_mlops.pipeline.fleet import check

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"validate-spec: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    deployed = None
    if args.deployed:
        from airflow_mlops.pipeline.fleet import deployed_owners

        try:
            deployed = deployed_owners(args.deployed)
        except FileNotFoundError as err:
            print(f"validate-spec: {err}", file=sys.stderr)
            return 2
    reports = check(args.paths, deployed)
    if not reports:
        print(f"validate-spec: no *.yaml / *.yml spec under {', '.join(args.paths)}", file=sys.stderr)
        return 2
    bad = [r for r in reports if not r.ok]
    if args.format == "json":
        print(json.dumps({"ok": not bad, "files": [r.as_dict() for r in reports]}, indent=2))
    else:
        for r in reports:
            if r.ok:
                print(f"{r.file}: ok ({', '.join(r.dag_ids)})")
                for w in r.warnings:
                    print(f"warning: {r.file}: {w}", file=sys.stderr)
            else:
                lines = "\n".join(f"  - {p}" for p in r.problems)
                print(f"invalid pipeline spec {r.file}:\n{lines}", file=sys.stderr)
        print(f"{len(reports) - len(bad)} valid, {len(bad)} invalid", file=sys.stderr)
    return 1 if bad else 0


def _cmd_spec_schema(args: argparse.Namespace) -> int:
    from airflow_mlops.pipeline.reference import reference_markdown
    from airflow_mlops.pipeline.spec import json_schema

    text = reference_markdown() if args.markdown else json.dumps(json_schema(), indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text, end="")
    return 0


def _cmd_compile_specs(args: argparse.Namespace) -> int:
    from airflow_mlops.pipeline.fleet import compile_stubs

    changed = compile_stubs(args.specs, args.out)
    print(json.dumps(changed))
    return 0


def _cmd_infer_constraints(args: argparse.Namespace) -> int:
    import yaml

    from airflow_mlops.data.profiling import load_profile, profile_files
    from airflow_mlops.data.validation import infer_constraints

    source = args.source
    if source.endswith(".bin"):
        view = load_profile(source)
    else:
        view = profile_files([source], "csv" if source.endswith(".csv") else "parquet")
    block = {
        "constraints": infer_constraints(
            view, slack=args.slack, max_levels=args.max_levels, window_rows=args.window_rows,
            range_headroom=args.range_headroom,
        )  # fmt: skip
    }
    text = yaml.safe_dump(block, sort_keys=False, default_flow_style=None, width=110)
    sized = f"windows of {args.window_rows} rows" if args.window_rows else "windows the size of the source"
    print(
        f"# proposed from {source} by airflow-mlops infer-constraints for {sized}: review before use.\n"
        "# mean and quantiles are distribution expectations: they gate training only; the drift monitor reports\n"
        f"# them in its drift report.\n{text}",
        end="",
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from airflow_mlops.model.training.__main__ import main

    return main([*(["--config", args.config] if args.config else []), "--result", args.result])


def _cmd_merge_adapter(args: argparse.Namespace) -> int:
    from airflow_mlops.model.artifacts import load_mlflow_model
    from airflow_mlops.model.training.text import TextModel, merge_adapter

    model = load_mlflow_model(args.model_uri, args.sha256)
    if not isinstance(model, TextModel):
        print(
            f"{args.model_uri} is a {model.meta['kind']} model: only LoRA models have an adapter",
            file=sys.stderr,
        )
        return 2
    print(f"merged model written to {merge_adapter(model, Path(args.out))}")
    return 0


def _cmd_promote(args: argparse.Namespace) -> int:
    from airflow_mlops.errors import MlopsError
    from airflow_mlops.release import promotion
    from airflow_mlops.tracking import registry

    c = registry.existing_client()
    try:
        with promotion.promotion_lock(c, args.model, wait=args.wait) as check:
            previous = promotion.promote(
                c, args.model, args.version, args.alias, reason=f"by hand: {args.reason}", check=check
            )
    except MlopsError as err:
        print(f"promote refused: {err}", file=sys.stderr)
        return 2
    print(
        json.dumps({"model": args.model, "alias": args.alias, "version": args.version, "previous": previous})
    )
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    import getpass

    from airflow_mlops.errors import MlopsError
    from airflow_mlops.release import promotion
    from airflow_mlops.tracking import registry

    try:
        result = promotion.rollback(
            registry.existing_client(), args.model, reason=args.reason, by=args.by or getpass.getuser(),
            to_version=args.to_version, wait=args.wait,
        )  # fmt: skip
    except (ValueError, MlopsError) as err:
        print(f"rollback refused: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    """Exit 0 with the chain, 2 when a record it needs is missing (one line, no traceback)."""
    import os

    from airflow_mlops.errors import SpecError
    from airflow_mlops.tools.audit import AuditError, audit, render, render_uri

    if args.home:
        from airflow_mlops.tools.quickstart import demo_env

        env = demo_env(Path(args.home).resolve(), 8080)
        os.environ.update({k: v for k, v in env.items() if k.startswith(("MLFLOW_", "AIRFLOW_VAR_"))})
    try:
        predictions, storage_uri = args.predictions, args.storage
        if predictions is None or storage_uri is None:
            spec = _spec_named(args.model, args.spec)
            if predictions is None:
                if spec.scoring is None:
                    raise AuditError(f"{spec.source} has no scoring section: pass --predictions")
                predictions = render_uri(spec.scoring.output)
            storage_uri = storage_uri or render_uri(spec.storage.uri)
        from airflow_mlops.tracking import registry

        record = audit(registry.existing_client(), args.model, args.day, predictions=predictions, storage_uri=storage_uri)
    except (AuditError, SpecError) as err:
        print(f"audit: {err}", file=sys.stderr)
        return 2
    print(json.dumps(record, indent=2, default=str) if args.format == "json" else render(record))
    return 0


def _cmd_model_card(args: argparse.Namespace) -> int:
    from airflow_mlops.release import card

    if args.schema:
        print(json.dumps(card.schema(), indent=2))
        return 0
    if not (args.model and args.version):
        print("model-card: give MODEL and VERSION (or --schema)", file=sys.stderr)
        return 2
    from airflow_mlops.tracking import registry

    try:
        built = card.build(registry.existing_client(), args.model, args.version)
    except Exception as err:  # a missing model or version: one line
        print(f"model-card: {args.model} version {args.version}: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    print(built.model_dump_json(indent=2) if args.format == "json" else card.markdown(built))
    return 0


def _spec_named(name: str, path: str | None) -> PipelineSpec:
    """The spec of pipeline ``name``: ``path``, or the one named so in the shipped dags folder's pipelines."""
    from airflow_mlops.pipeline.fleet import find_specs
    from airflow_mlops.pipeline.spec import load_spec
    from airflow_mlops.tools.audit import AuditError
    from airflow_mlops.tools.quickstart import repo_dags_folder

    if path:
        return load_spec(Path(path))
    folder = repo_dags_folder() / "pipelines"
    for found in find_specs(folder):
        spec = load_spec(found)
        if spec.name == name:
            return spec
    raise AuditError(f"no spec named {name!r} under {folder}: pass --spec FILE (or --predictions and --storage)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airflow-mlops", description="The ML lifecycle on Apache Airflow 3."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the demo pipeline end to end on the embedded default")
    p.add_argument(
        "--home", default=".demo", help="folder for all demo state (default: ./.demo, wiped first)"
    )
    p.add_argument(
        "--keep", action="store_true", help="keep existing state in --home instead of starting fresh"
    )
    p.add_argument(
        "--stack", choices=("embedded", "celery"), default="embedded",
        help="embedded: SQLite + LocalExecutor + a local MLflow store (default); celery: the production stack "
        "(PostgreSQL, CeleryExecutor with Redis, two workers, an MLflow server), started and stopped for the run",
    )  # fmt: skip
    from airflow_mlops.tools.stack import add_options

    add_options(p, "mlops_demo_stack")  # with --stack celery
    p.set_defaults(func=_cmd_demo)

    from airflow_mlops.tools.stack import ACTIONS, ACTIONS_HELP

    p = sub.add_parser(
        "stack", help="start, stop or check the production stack (PostgreSQL, Celery + Redis, MLflow server)"
    )
    p.add_argument("action", choices=ACTIONS, help=ACTIONS_HELP)
    p.add_argument("--home", default=".stack", help="folder of the stack's state and logs")
    add_options(p, "mlops_stack")
    p.add_argument("--fresh", action="store_true", help="start over on empty databases")
    p.set_defaults(func=_cmd_stack)

    p = sub.add_parser(
        "ui",
        help="start the Airflow UI (with the plugin and shipped DAGs) and the MLflow UI on the demo state",
    )
    p.add_argument("--home", default=".demo")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--mlflow-port", type=int, default=5000)
    p.set_defaults(func=_cmd_ui)

    p = sub.add_parser("generate-data", help="write the demo data set (daily Parquet partitions)")
    p.add_argument("--out", required=True)
    p.add_argument("--start", default="2026-01-01")
    p.add_argument("--days", type=int, default=31)
    p.add_argument("--drift-from", default="2026-01-22")
    p.add_argument("--no-drift", action="store_true")
    p.add_argument("--rows-per-day", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser(
        "validate-spec",
        help="check spec files and folders as Airflow's parsing would (exit 0: all valid, 1: some invalid)",
    )
    p.add_argument("paths", nargs="+", help="spec files, or folders searched for *.yaml / *.yml")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument(
        "--deployed", metavar="PATH",
        help="the running bundle's manifest (the folder it compiles into, or its .airflow-mlops-stubs.json): "
        "a name stays with the file that owns it there, so a newcomer copying it is the one blamed",
    )  # fmt: skip
    p.set_defaults(func=_cmd_validate_spec)

    p = sub.add_parser(
        "model-card", help="a version's model card as the pipeline keeps it (Markdown, JSON, or --schema)"
    )
    p.add_argument("model", nargs="?")
    p.add_argument("version", nargs="?")
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.add_argument("--schema", action="store_true", help="print the card's JSON Schema instead")
    p.set_defaults(func=_cmd_model_card)

    p = sub.add_parser(
        "audit",
        help="from a day's predictions to their origin: version and alias, training data and params, tests, "
        "who released it, the day's drift and quality (exit 2: a record is missing)",
    )
    p.add_argument("model", help="the pipeline (registered model) name")
    p.add_argument("--day", required=True, help="the scored day, YYYY-MM-DD")
    p.add_argument("--predictions", help="the prediction file, or the scoring output folder (default: the spec's)")
    p.add_argument("--storage", help="the pipeline's storage, for the quality record (default: the spec's)")
    p.add_argument("--spec", help="the pipeline's spec file (default: found by name in the dags folder)")
    p.add_argument("--home", help="the demo's folder (.demo): its MLflow store and Variables")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("spec-schema", help="print the spec's JSON Schema (or, --markdown, its reference)")
    p.add_argument("--markdown", action="store_true", help="the spec reference in Markdown instead")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.set_defaults(func=_cmd_spec_schema)

    p = sub.add_parser(
        "compile-specs",
        help="write one DAG file per spec into a DAGs folder (where the PipelineSpecBundle cannot be configured)",
    )
    p.add_argument("specs", help="the spec folder")
    p.add_argument("out", help="a folder inside the DAGs folder, owned by this command")
    p.set_defaults(func=_cmd_compile_specs)

    p = sub.add_parser(
        "infer-constraints", help="propose a constraints block from a stored profile (.bin) or a data file"
    )
    p.add_argument("source", help="a stored profile (.bin), or a Parquet/CSV file to profile")
    p.add_argument(
        "--slack", type=float, default=0.1,
        help="width of the mean and median bounds in standard deviations, and of min_rows' headroom (0.1)",
    )  # fmt: skip
    p.add_argument(
        "--range-headroom", type=float, default=1.0,
        help="room beyond the observed range, as a fraction of its span on each side (1.0)",
    )  # fmt: skip
    p.add_argument("--max-levels", type=int, default=50, help="largest allowed set to propose (50)")
    p.add_argument(
        "--window-rows", type=int, default=None,
        help="rows of the windows the block will check, e.g. a day's for the drift monitor when the source is a "
        "week (default: the source's rows): min_rows, mean and median bounds are sized for them",
    )  # fmt: skip
    p.set_defaults(func=_cmd_infer_constraints)

    p = sub.add_parser("train", help="run the trainer (what TrainModelOperator and training pods run)")
    p.add_argument("--config", help="JSON config (default: $AIRFLOW_MLOPS_TRAINER_CONFIG)")
    p.add_argument("--result", required=True)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "merge-adapter",
        help="fold a LoRA model's adapter into its base weights (checked against the recorded hash first)",
    )
    p.add_argument("model_uri", help="runs:/..., models:/NAME/VERSION or models:/NAME@ALIAS (MLFLOW_TRACKING_URI)")
    p.add_argument("--sha256", required=True, help="the model's recorded model.json hash (tag mlops.model_sha256)")
    p.add_argument("--out", required=True, help="folder for the merged model")
    p.set_defaults(func=_cmd_merge_adapter)

    p = sub.add_parser(
        "promote", help="point an alias (default champion) at a model version (MLFLOW_TRACKING_URI)"
    )
    p.add_argument("--model", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--alias", default="champion")
    p.add_argument("--reason", required=True)
    p.add_argument(
        "--wait", type=float, default=60.0,
        help="seconds to wait for another promotion or rollback of this model to finish (default 60)",
    )  # fmt: skip
    p.set_defaults(func=_cmd_promote)

    p = sub.add_parser(
        "rollback",
        help="move champion back to the version it replaced, recording who and why (MLFLOW_TRACKING_URI)",
    )
    p.add_argument("--model", required=True)
    p.add_argument("--reason", required=True, help="why (at least 10 characters; recorded on both versions)")
    p.add_argument("--to-version", help="version to return to (default: the previous champion)")
    p.add_argument("--by", help="who (default: the login name)")
    p.add_argument(
        "--wait", type=float, default=60.0,
        help="seconds to wait for another promotion or rollback of this model to finish (default 60)",
    )  # fmt: skip
    p.set_defaults(func=_cmd_rollback)

    from airflow_mlops.tools.drift_cli import add_commands

    add_commands(sub)  # profile, drift: the monitor's profile and decision outside Airflow

    args = parser.parse_args(argv)
    import logging

    # MLflow's own INFO lines (store set-up, migrations) would bury the one line a command prints
    for noisy in ("mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.func is _cmd_train:  # the trainer (and its pods) keep their own exit codes and full tracebacks
        return args.func(args)
    from airflow_mlops.errors import MlopsError

    try:
        return args.func(args)
    except (MlopsError, OSError) as err:  # bad input, named by the error: no traceback, and never a command's 1
        print(f"airflow-mlops {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
