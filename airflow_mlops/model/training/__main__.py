"""``python -m airflow_mlops.model.training --config CONFIG.json --result RESULT.json``

The entry point of the trainer, the same in a local subprocess and in a Kubernetes pod (where the result
goes to ``/airflow/xcom/return.json`` for the XCom sidecar).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading

from airflow_mlops.errors import ConfigError
from airflow_mlops.model.training.config import CONFIG_ENV
from airflow_mlops.storage import read_json, write_json_atomic

PARENT_ENV = "AIRFLOW_MLOPS_PARENT_PID"  # the task process that started this trainer (set by TrainModelOperator)


def _stop(signum: int, _frame: object) -> None:
    """SIGTERM (the task was killed, timed out or its process died): unwind, so the MLflow run is ended as
    FAILED and temporary files are removed; a retry resumes from the last checkpoint."""
    raise SystemExit(128 + signum)


def _watch_parent(parent: int) -> None:
    """Where the kernel cannot tie this process to its parent (not Linux), poll: once the task process is
    gone, stop as if terminated."""
    import time

    while os.getppid() == parent:
        time.sleep(1.0)
    logging.getLogger("airflow_mlops.trainer").error("the task that started this trainer is gone: stopping")
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_mlops.model.training", description=__doc__)
    parser.add_argument(
        "--config",
        help=f"path or URL of the JSON training config (default: the JSON in ${CONFIG_ENV}, as in a pod)",
    )
    parser.add_argument("--result", required=True, help="where to write the JSON result")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout
    )
    for noisy in ("mlflow", "alembic", "urllib3", "git"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _stop)
    if os.environ.get(PARENT_ENV, "").isdigit():
        threading.Thread(target=_watch_parent, args=(int(os.environ[PARENT_ENV]),), daemon=True).start()
    from airflow_mlops.model.training.trainer import run

    try:
        if args.config:
            config = read_json(args.config)
        elif os.environ.get(CONFIG_ENV):
            config = json.loads(os.environ[CONFIG_ENV])
        else:
            parser.error(f"no config: pass --config or set {CONFIG_ENV}")
        result = run(config)
    except ConfigError as err:  # retrying cannot fix it: the task fails at once, saying which key
        logging.getLogger("airflow_mlops.trainer").error("training not started: %s", err)
        return ConfigError.EXIT_CODE
    except Exception as err:
        logging.getLogger("airflow_mlops.trainer").error("training failed: %s: %s", type(err).__name__, err)
        raise
    write_json_atomic(args.result, result)
    print(json.dumps({"result": args.result, "run_id": result["run_id"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
