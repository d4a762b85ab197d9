"""Hyper-parameter search: expand a ``search:`` block into trials, pick the best trial by a metric.

Trials run as mapped training tasks (Airflow is the distributed engine); each is an MLflow child run of one
parent run per search, which records the space, the trials and the winner.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
from typing import Any

from airflow_mlops.model.metrics import LOWER_IS_BETTER
from airflow_mlops.storage import canonical_hash
from airflow_mlops.tables import fmt, format_table
from airflow_mlops.tracking import registry

log = logging.getLogger(__name__)
PARENT_TAG = "mlflow.parentRunId"
SEARCH_KEY_TAG = "mlops.search_key"


def expand_trials(
    base_params: dict[str, Any], space: dict[str, list[Any]], method: str, max_trials: int, seed: int
) -> list[dict[str, Any]]:
    """Trial params: grid (in key order, first ``max_trials``) or random (``max_trials`` distinct draws)."""
    keys = sorted(space)
    grid = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(space[k] for k in keys))]
    if method == "random" and len(grid) > max_trials:
        grid = random.Random(seed).sample(grid, max_trials)
    return [{**base_params, **combo} for combo in grid[:max_trials]]


def start_parent_run(
    c: Any,
    *,
    experiment: str,
    search_key: str,
    name: str,
    space: dict,
    trials: list[dict],
    artifact_root: str | None = None,
) -> str:
    """The parent run of a search; a re-run of the same search finds it instead of making another."""
    exp_id = registry.ensure_experiment(c, experiment, artifact_root)
    found = c.search_runs([exp_id], filter_string=f"tags.`{SEARCH_KEY_TAG}` = '{search_key}'", max_results=1)
    if found:
        return found[0].info.run_id
    run = c.create_run(exp_id, run_name=name, tags={SEARCH_KEY_TAG: search_key, "mlops.search": "parent"})
    c.log_param(run.info.run_id, "search.space", json.dumps(space, sort_keys=True)[:6000])
    c.log_param(run.info.run_id, "search.trials", len(trials))
    return run.info.run_id


def search_key(run_scope: str, space: dict[str, Any], method: str, max_trials: int, seed: int) -> str:
    return canonical_hash(
        {"scope": run_scope, "space": space, "method": method, "max": max_trials, "seed": seed}, 24
    )


def select_best(results: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """The trial with the best held-out ``metric`` (lowest for error metrics); ties go to the first trial."""
    key = f"holdout_{metric}"
    scored = [r for r in results if r and key in r.get("metrics", {})]
    if not scored:
        raise ValueError(f"no trial reported {key}: cannot pick a best trial")
    lower = metric in LOWER_IS_BETTER
    best = min(scored, key=lambda r: r["metrics"][key] if lower else -r["metrics"][key])
    rows = [
        (i, r["run_id"], fmt(r["metrics"][key]), "BEST" if r is best else "") for i, r in enumerate(scored)
    ]
    log.info(
        "search by %s (%s is better):\n%s",
        key,
        "lower" if lower else "higher",
        format_table(rows, ("trial", "run", metric, "")),
    )
    return best


def finish_parent_run(c: Any, parent_run_id: str, best: dict[str, Any], metric: str) -> None:
    c.set_tag(parent_run_id, "mlops.best_run_id", best["run_id"])
    value = best["metrics"].get(f"holdout_{metric}")
    if value is not None:
        c.log_metric(parent_run_id, f"best_holdout_{metric}", value)
    if c.get_run(parent_run_id).info.status != "FINISHED":
        c.set_terminated(parent_run_id, "FINISHED")
