"""The shipped specs (pipelines/*.yaml) for an Airflow whose DAGs folder is this folder.

With the PipelineSpecBundle configured for pipelines/ (the quick start, the Docker image; see
docs/pipelines.md) this file defines nothing: the bundle gives each spec a DAG file of its own. Without it,
this file compiles every spec, each on its own: a broken spec leaves out only its own pipeline, with an
import warning that names the file and every problem.
"""

from __future__ import annotations

from pathlib import Path

from airflow_mlops.pipeline.loader import load_folder

globals().update(load_folder(Path(__file__).parent / "pipelines"))
