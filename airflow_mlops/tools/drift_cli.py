"""``airflow-mlops profile`` and ``airflow-mlops drift``: the monitor's profile and decision outside Airflow.

``profile`` streams data files (Parquet or CSV, local paths or fsspec URLs) into one whylogs profile and stores
it, as ``profile_partition`` does. ``drift`` compares two stored profiles (or data files, profiled on the fly)
with the same scoring, policy and table as the drift sensor: the policy and features come from a pipeline spec
(``--spec``) or from ``--numeric`` / ``--categorical`` with the default policy. ``--format json`` prints the
report as JSON; ``--html`` writes the same page the sensor stores. The exit status says the decision: 0 no
drift, 1 drift (for scripts), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


def _view(source: str, data_format: str | None) -> Any:
    from airflow_mlops.data.profiling import load_profile, profile_files

    if source.endswith(".bin"):
        return load_profile(source)
    fmt = data_format or ("csv" if source.endswith(".csv") else "parquet")
    return profile_files([source], fmt)


def cmd_profile(args: argparse.Namespace) -> int:
    from airflow_mlops.data.profiling import profile_files, save_profile

    fmt = args.format or ("csv" if all(f.endswith(".csv") for f in args.files) else "parquet")
    view = profile_files(list(args.files), fmt)
    uri = save_profile(view, args.out)
    rows = max((int(c.get_metric("counts").n.value) for c in view.get_columns().values() if c.get_metric("counts")), default=0)
    print(f"profiled {len(args.files)} file(s), {rows} rows, {len(view.get_columns())} columns -> {uri}")
    return 0


def _importance(source: str | None) -> dict[str, float] | None:
    """Feature importance shares: a JSON object inline, a JSON file, or ``models:/<name>@<alias>`` (the
    version's recorded ``mlops.feature_importance``, from the tracking server in MLFLOW_TRACKING_URI)."""
    if not source:
        return None
    if source.startswith("models:/"):
        import mlflow
        from mlflow.exceptions import MlflowException

        from airflow_mlops.tracking import registry

        name, _, ref = source[len("models:/"):].partition("@")
        if not ref and "/" not in name:
            raise ValueError("expected models:/NAME@ALIAS or models:/NAME/VERSION")
        c = registry.existing_client()  # a DataError where no registry is there (none is created)
        try:
            version = c.get_model_version_by_alias(name, ref) if ref else c.get_model_version(*name.split("/", 1))
        except MlflowException as err:  # no such model, alias or version (or no tracking server there)
            first = str(err.message if hasattr(err, "message") else err).strip().splitlines()[0]
            raise ValueError(f"not found in the registry at {mlflow.get_registry_uri()}: {first}") from None
        found = registry.feature_importance(version)
        if found is None:
            raise ValueError(f"{name} v{version.version} has no recorded {registry.IMPORTANCE_TAG}")
        return found
    text = source if source.lstrip().startswith(("{", "[")) else open(source).read()
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object of feature -> importance share")
    bad = {
        k: v for k, v in value.items()
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0
    }  # fmt: skip
    if bad:
        shown = ", ".join(f"{k}: {json.dumps(v)}" for k, v in list(bad.items())[:3])
        raise ValueError(f"importance shares are numbers of at least 0; not {shown}")
    return {str(k): float(v) for k, v in value.items()}


def _one_line(err: BaseException) -> str:
    """An error's message as one line (a spec error lists its problems on the lines under its first)."""
    text = " ".join(part.strip(" -") for part in str(err).splitlines() if part.strip(" -"))
    return text or type(err).__name__


def _feature_problem(numeric: list[str], categorical: list[str], views: dict[str, Any], sources: dict) -> str | None:
    """Why the features cannot be compared as asked (named twice, missing from a side, no rows), or None."""
    both = sorted(set(numeric) & set(categorical))
    if both:
        return f"{', '.join(both)}: named both numeric and categorical; name each feature once"
    for side, view in views.items():
        held = set(view.get_columns())
        if not held:
            return f"the {side} {sources[side]} holds no rows to compare"
        missing = [f for f in [*numeric, *categorical] if f not in held]
        if missing:
            return (
                f"{', '.join(missing)}: not in the {side} {sources[side]} (its columns: "
                f"{', '.join(sorted(held))}); check the feature names"
            )
    return None


def cmd_drift(args: argparse.Namespace) -> int:
    from airflow_mlops.data.drift.scores import drift_table, score_drift, summary_line

    if args.spec:
        from airflow_mlops.errors import SpecError
        from airflow_mlops.pipeline.spec import load_spec

        try:
            spec = load_spec(args.spec)
        except (OSError, SpecError) as err:
            print(f"drift: --spec {args.spec}: {_one_line(err)}", file=sys.stderr)
            return 2
        numeric, categorical, policy = list(spec.features.numeric), list(spec.features.categorical), spec.drift.policy()
    else:
        numeric, categorical, policy = list(args.numeric or []), list(args.categorical or []), None
    if not numeric and not categorical:
        print("drift: name the features: --spec PIPELINE.yaml, or --numeric/--categorical", file=sys.stderr)
        return 2
    from airflow_mlops.errors import DataError

    try:
        importance = _importance(args.importance)
    except (OSError, ValueError, DataError) as err:
        print(f"drift: --importance {args.importance}: {err}", file=sys.stderr)
        return 2
    if importance is not None and not any(importance.get(f, 0.0) > 0 for f in [*numeric, *categorical]):
        print(
            f"drift: --importance {args.importance}: gives none of the monitored features "
            f"({', '.join([*numeric, *categorical])}) a share above 0; it holds "
            f"{', '.join(f'{k} {v:g}' for k, v in sorted(importance.items())) or 'nothing'}",
            file=sys.stderr,
        )
        return 2
    views = []
    for what, source in (("reference", args.reference), ("current", args.current)):
        try:
            views.append(_view(source, args.data_format))
        except (OSError, DataError, ValueError) as err:
            print(f"drift: {what} {source}: {_one_line(err)}", file=sys.stderr)
            return 2
    reference, current = views
    sources = {"reference": args.reference, "current": args.current}
    problem = _feature_problem(numeric, categorical, {"reference": reference, "current": current}, sources)
    if problem:
        print(f"drift: {problem}", file=sys.stderr)
        return 2
    try:
        report = score_drift(
            reference, current, numeric=numeric, categorical=categorical, policy=policy, importance=importance
        )
    except DataError as err:  # a feature's values cannot be scored as declared
        print(f"drift: {_one_line(err)}", file=sys.stderr)
        return 2
    report.update(reference_profile=args.reference, current_profile=args.current)
    if args.html:
        from airflow_mlops import storage
        from airflow_mlops.data.drift.report import render_html, render_png

        png = render_png(reference, current, report)
        page = render_html(report, png, f"Drift: {args.current} vs {args.reference}")
        storage.write_bytes_atomic(args.html, page.encode())
        report["report_html"] = args.html
    if args.output == "json":
        print(json.dumps(report, indent=2, sort_keys=True, default=str))
    else:
        print(f"{summary_line(report)}\n{drift_table(report)}" + (f"\nreport: {args.html}" if args.html else ""))
    return 1 if report.get("drift") else 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("profile", help="profile data files into one stored whylogs profile (as profile_partition)")
    p.add_argument("files", nargs="+", help="Parquet or CSV files (local paths or fsspec URLs)")
    p.add_argument("--out", required=True, help="where to store the profile (.bin; a path or an fsspec URL)")
    p.add_argument("--format", choices=("parquet", "csv"), default=None, help="default: from the file names")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser(
        "drift", help="decide drift between two profiles (or data files) as the drift sensor does; exit 1 on drift"
    )
    p.add_argument("reference", help="the reference: a stored profile (.bin) or a data file")
    p.add_argument("current", help="the current data: a stored profile (.bin) or a data file")
    p.add_argument("--spec", help="a pipeline spec: its features and its drift section decide (as its monitor)")
    p.add_argument("--numeric", nargs="*", help="numeric features (without --spec; the default policy)")
    p.add_argument("--categorical", nargs="*", help="categorical features (without --spec)")
    p.add_argument("--format", dest="output", choices=("table", "json"), default="table", help="output (table)")
    p.add_argument("--data-format", choices=("parquet", "csv"), default=None, help="of data files given")
    p.add_argument("--html", help="also write the drift report page here")
    p.add_argument(
        "--importance",
        help="the champion's feature importance, for the importance decision (the default rule): a JSON object, "
        "a JSON file, or models:/NAME@champion; without it the decision falls back to drift_share",
    )
    p.set_defaults(func=cmd_drift)
