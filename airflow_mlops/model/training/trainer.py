"""Train one model from a JSON config and record it as an MLflow run.

The config is everything the run needs (data URIs, columns, model family and params, idempotency key,
lineage tags), so the same call works in a local subprocess and in a Kubernetes pod. A finished run with the
same idempotency key is reused instead of trained again.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from airflow_mlops import __version__
from airflow_mlops.data.partitions import read_window, require_columns, split_holdout, split_record
from airflow_mlops.model import require_train_extra
from airflow_mlops.model.format import write_model_json
from airflow_mlops.model.metrics import evaluate
from airflow_mlops.model.training.checkpoint import Checkpointer
from airflow_mlops.tempfiles import owned_tempdir
from airflow_mlops.tracking import registry

log = logging.getLogger("airflow_mlops.trainer")


def _flatten(prefix: str, obj: Any, out: dict[str, str]) -> dict[str, str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = json.dumps(obj) if isinstance(obj, (list, tuple)) else str(obj)
    return out


def _result(run: Any, reused: bool) -> dict[str, Any]:
    tags = run.data.tags
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "model_uri": tags.get(registry.MODEL_URI_TAG),
        "model_sha256": tags.get(registry.MODEL_SHA_TAG),
        "model_files": registry.model_files(tags),
        "run_key": tags.get(registry.RUN_KEY_TAG),
        "metrics": {k: v for k, v in run.data.metrics.items() if k.startswith("holdout_")},
        # the held-out split, for the model tests to evaluate on exactly these rows (None: an older run)
        "split": json.loads(tags[registry.SPLIT_TAG]) if tags.get(registry.SPLIT_TAG) else None,
        "reused": reused,
    }


def finished_result(c: Any, experiment: str, run_key: str) -> dict[str, Any] | None:
    """The result of the finished run of ``run_key`` as the trainer returned it, read back from MLflow (for a
    pod whose result file could not be read: its pod was deleted before the operator resumed)."""
    exp = c.get_experiment_by_name(experiment)
    found = registry.find_run(c, exp.experiment_id, run_key) if exp is not None else None
    return _result(found, reused=False) if found is not None else None


def run(config: dict[str, Any]) -> dict[str, Any]:
    import warnings

    import mlflow
    from mlflow.entities import Metric, Param

    warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method.*")

    from airflow_mlops.model.settings import check_model

    # before any MLflow call: an invalid model config leaves no run behind (and is not retried)
    config = {**config, "model": check_model(config.get("model"), "trainer config: model")}
    c = registry.client()
    artifact_root = config.get("artifact_root") or registry.default_artifact_root(mlflow.get_tracking_uri())
    exp_id = registry.ensure_experiment(c, config["experiment"], artifact_root)
    run_key = config["run_key"]
    existing = registry.find_run(c, exp_id, run_key)
    if existing is not None:
        log.info("run key %s already trained as MLflow run %s: reusing it", run_key, existing.info.run_id)
        return _result(existing, reused=True)

    kind, task = config["model"]["kind"], config["model"]["task"]
    require_train_extra(kind)
    if kind in ("lora_text", "lora_causal_lm"):  # before the MLflow run: a base without its tokenizer is refused
        from airflow_mlops.model.training.tokenizers import check_base_tokenizer

        check_base_tokenizer(config["model"]["params"])
    features = [*config["numeric"], *config["categorical"], *([config["text"]] if config.get("text") else [])]
    df, files = read_window(config["data"]["uris"], config["data"]["format"], needed=[*features, config["target"]])
    require_columns(df, [*features, config["target"]], "training data")
    train_df, hold_df = split_holdout(df, config["target"], config["holdout_fraction"], config["seed"])
    window = {
        "start": config.get("tags", {}).get("mlops.window_start"), "end": config.get("tags", {}).get("mlops.window_end")
    }  # fmt: skip
    split = split_record(train_df, hold_df, fraction=config["holdout_fraction"], seed=config["seed"], window=window)
    log.info(
        "training %s/%s on %d rows, holding out %d (held-out rows sha256 %s)",
        kind, task, len(train_df), len(hold_df), split["holdout_sha256"][:16],
    )  # fmt: skip

    tags = registry.clean_tags(
        {
            **config.get("tags", {}),
            registry.RUN_KEY_TAG: run_key,
            "mlops.pipeline": config["pipeline"],
            "mlops.code_version": f"airflow-mlops=={__version__}",
            "mlops.model_kind": kind,
        }
    )
    checkpointer = Checkpointer(config.get("checkpoint_uri") or default_checkpoint_uri(run_key))
    checkpointer.acquire(_owner(config))  # from here on, an older trainer of this key stops at its next write
    unfinished = registry.find_unfinished_run(c, exp_id, run_key)
    resume_id = unfinished.info.run_id if unfinished is not None else None
    parent_run_id = tags.pop("mlflow.parentRunId", None)  # MLflow sets this tag itself from parent_run_id
    with mlflow.start_run(
        run_id=resume_id, experiment_id=None if resume_id else exp_id, run_name=config.get("run_name"),
        tags=None if resume_id else tags, parent_run_id=None if resume_id else parent_run_id,
    ) as active:  # fmt: skip
        run_id = active.info.run_id
        log.info(
            "MLflow run %s (experiment %s)%s",
            run_id,
            exp_id,
            " resumed after an interrupted attempt" if resume_id else "",
        )
        mlflow.set_tags(
            {
                **environment_tags(), registry.SPLIT_TAG: json.dumps(split, sort_keys=True),
                **({"mlops.attempts": _attempts(unfinished)} if unfinished else {}),
            }
        )  # fmt: skip
        params = _flatten("", {"model": config["model"]["params"], "holdout_fraction": config["holdout_fraction"],
                               "seed": config["seed"], "train_rows": len(train_df), "holdout_rows": len(hold_df)}, {})  # fmt: skip
        c.log_batch(run_id, params=[Param(k, v[:6000]) for k, v in params.items()])

        def holdout_metrics(model: Any) -> dict[str, float]:
            return {f"holdout_{k}": v for k, v in evaluate(model, hold_df).items()}

        with owned_tempdir("train") as tmp:
            model_dir = Path(tmp) / "model_dir"
            model_dir.mkdir()
            started = time.perf_counter()
            if kind == "tabular":
                from airflow_mlops.model.training import tabular

                meta, fitted = tabular.train(
                    train_df, numeric=list(config["numeric"]), categorical=list(config["categorical"]),
                    target=config["target"], task=task, params=config["model"]["params"], seed=config["seed"],
                    out_dir=model_dir, evaluate=holdout_metrics, checkpoint=checkpointer,
                )  # fmt: skip
            elif kind == "lora_causal_lm":
                from airflow_mlops.model.training import causal_lm

                meta, fitted = causal_lm.train_causal_lm(
                    train_df, text=config["text"], params=config["model"]["params"], seed=config["seed"],
                    out_dir=model_dir, evaluate=holdout_metrics, checkpoint=checkpointer,
                )  # fmt: skip
            else:
                from airflow_mlops.model.training import text

                meta, fitted = text.train(
                    train_df, text=config["text"], target=config["target"], params=config["model"]["params"],
                    seed=config["seed"], out_dir=model_dir, evaluate=holdout_metrics, checkpoint=checkpointer,
                )  # fmt: skip
            history = fitted.history
            if fitted.resumed_from_step is not None:
                mlflow.set_tag("mlops.resumed_from_step", fitted.resumed_from_step)
            seconds = time.perf_counter() - started
            now = int(time.time() * 1000)
            metrics = [
                Metric(k, float(v), now, step) for step, h in enumerate(history, 1) for k, v in h.items()
            ]
            metrics.append(Metric("train_seconds", seconds, now, 0))
            checkpointer.check()  # still this trainer's run: nothing below is written by a superseded one
            for i in range(0, len(metrics), 900):  # log_batch takes at most 1000 metrics per call
                c.log_batch(run_id, metrics=metrics[i : i + 900])
            meta["inputs"] = files
            model_sha = write_model_json(model_dir, meta)
            example, signature = _signature(config, train_df, model_dir, model_sha)
            checkpointer.check()
            # recorded before logging: MLflow loads the model to validate its input example, and the loader
            # checks model.json against this tag
            mlflow.set_tag(registry.MODEL_SHA_TAG, model_sha)
            discard_unfinished_models(c, exp_id, run_id)  # a killed try's half-upload
            try:
                info = mlflow.pyfunc.log_model(
                    name="model",
                    loader_module="airflow_mlops.model.pyfunc",  # a reference to installed code, never stored code
                    data_path=str(model_dir),
                    pip_requirements=[f"airflow-mlops=={__version__}"],
                    signature=signature,
                    input_example=example,
                )
            except BaseException:
                discard_unfinished_models(c, exp_id, run_id)  # e.g. the artifact store is full: no FAILED model stays
                raise
            files = _logged_files(info.model_uri)
            mlflow.set_tags({
                registry.MODEL_SHA_TAG: model_sha, registry.MODEL_FILES_TAG: json.dumps(files, sort_keys=True),
                registry.MODEL_URI_TAG: info.model_uri,
            })  # fmt: skip
            log.info("logged model %s (model.json sha256 %s)", info.model_uri, model_sha)
        checkpointer.clear()
        final = {k: v for k, v in history[-1].items() if k.startswith("holdout_")}
        log.info("final holdout metrics: %s", ", ".join(f"{k}={v:.4f}" for k, v in sorted(final.items())))
    result = _result(c.get_run(run_id), reused=False)
    result["resumed_from_step"] = fitted.resumed_from_step
    return result


def _logged_files(model_uri: str) -> dict[str, str]:
    """The sha256 of every file of the model as MLflow stored it (``MLmodel`` included), read back from the
    artifact store: the registry version records them, and every loader checks them."""
    import mlflow

    from airflow_mlops.model.format import hash_tree
    from airflow_mlops.tempfiles import owned_tempdir

    with owned_tempdir("model") as tmp:
        return hash_tree(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))


def discard_unfinished_models(c: Any, experiment_id: str, run_id: str) -> list[str]:
    """Delete the run's logged models that never became READY: an upload that failed (a full artifact store
    leaves a FAILED one) or was killed (PENDING). Only a READY model is ever registered (its URI is tagged
    after ``log_model`` returns); this keeps the run's model list to what can be loaded. Best effort: a
    tracking server that cannot be reached now leaves them for the next try."""
    from mlflow.entities import LoggedModelStatus

    gone: list[str] = []
    try:
        found = c.search_logged_models(experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}'")
        for model in found:
            if model.status != LoggedModelStatus.READY:
                c.delete_logged_model(model.model_id)
                gone.append(model.model_id)
    except Exception as err:  # never hide the failure that brought us here
        log.warning("could not clear unfinished logged models of run %s: %s: %s", run_id, type(err).__name__, err)
        return gone
    if gone:
        log.info("deleted %d logged model(s) of run %s that never finished uploading: %s", len(gone), run_id, gone)
    return gone


def _signature(config: dict[str, Any], train_df: Any, model_dir: Any, model_sha: str) -> tuple[Any, Any]:
    """Five training rows of the model's input columns (stored as JSON, not pickled) and the signature
    inferred from them and the trained model's predictions on them."""
    import numpy as np
    from mlflow.models import infer_signature

    from airflow_mlops.model.artifacts import load_model

    columns = [
        *config.get("numeric", []),
        *config.get("categorical", []),
        *([config["text"]] if config.get("text") else []),
    ]
    example = train_df[columns].head(5).reset_index(drop=True)
    prediction = np.asarray(load_model(model_dir, model_sha).predict(example))
    return example, infer_signature(example, prediction)


def _owner(config: dict[str, Any]) -> str:
    import os
    import socket

    airflow = config.get("airflow") or {}
    attempt = f" try {airflow['try_number']}" if airflow.get("try_number") else ""
    return f"{socket.gethostname()}:{os.getpid()}{attempt}"


def default_checkpoint_uri(run_key: str) -> str:
    """Checkpoints survive a retry on the same machine; pass checkpoint_uri (object storage) for pods."""
    import os

    return os.path.join(tempfile.gettempdir(), "airflow-mlops-checkpoints", run_key)


def environment_tags() -> dict[str, str]:
    """What produced the model: Python, key packages, and the image digest when running in a pod."""
    import os
    import platform
    from importlib.metadata import PackageNotFoundError, version

    tags = {"mlops.env.python": platform.python_version(), "mlops.env.platform": platform.platform()}
    for package in ("torch", "peft", "transformers", "mlflow", "pandas", "numpy", "safetensors"):
        try:
            tags[f"mlops.env.{package}"] = version(package)
        except PackageNotFoundError:
            continue
    if os.environ.get("AIRFLOW_MLOPS_IMAGE_DIGEST"):
        tags["mlops.env.image_digest"] = os.environ["AIRFLOW_MLOPS_IMAGE_DIGEST"]
    return tags


def _attempts(run: Any) -> str:
    return str(int(run.data.tags.get("mlops.attempts", "1")) + 1)
