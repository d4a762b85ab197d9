"""``python -m airflow_mlops.model.training --config CONFIG.json --result RESULT.json``

The entry point of the trainer, the same in a local subprocess and in a Kubernetes pod (where the result
goes to ``/airflow/xcom/return.json`` for the XCom sidecar).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from airflow_mlops.model.training.config import CONFIG_ENV
from airflow_mlops.storage import read_json, write_json_atomic


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
    from airflow_mlops.model.training.trainer import run

    try:
        if args.config:
            config = read_json(args.config)
        elif os.environ.get(CONFIG_ENV):
            config = json.loads(os.environ[CONFIG_ENV])
        else:
            parser.error(f"no config: pass --config or set {CONFIG_ENV}")
        result = run(config)
    except Exception as err:
        logging.getLogger("airflow_mlops.trainer").error("training failed: %s: %s", type(err).__name__, err)
        raise
    write_json_atomic(args.result, result)
    print(json.dumps({"result": args.result, "run_id": result["run_id"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
