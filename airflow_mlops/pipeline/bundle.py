"""``PipelineSpecBundle``: a folder of pipeline specs as an Airflow 3 DAG bundle, one DAG file per spec.

Configure it once (``[dag_processor] dag_bundle_config_list``)::

    {"name": "mlops-pipelines",
     "classpath": "airflow_mlops.pipeline.bundle.PipelineSpecBundle",
     "kwargs": {"path": "/opt/airflow/dags/pipelines", "refresh_interval": 60}}

The dag-processor and every worker call :meth:`initialize` / :meth:`refresh`, which compile the specs under
``path`` (sub-folders too: a team can own one) into one small DAG file each under the bundle's own storage
folder. Airflow then parses, times out and reports import errors per spec: a broken spec shows as its own
import error (``airflow dags list-import-errors``, the UI) and every other pipeline keeps its DAGs.
"""

from __future__ import annotations

import logging
from pathlib import Path

from airflow.dag_processing.bundles.base import BaseDagBundle

from airflow_mlops.pipeline.fleet import compile_stubs

log = logging.getLogger(__name__)


class PipelineSpecBundle(BaseDagBundle):
    """A DAG bundle compiled from pipeline specs.

    :param path: the spec folder (``*.yaml`` / ``*.yml``, sub-folders allowed); default
        ``<dags_folder>/pipelines``
    :param preload: import the factory and the operators in the process that owns the bundle (the
        dag-processor's manager), so each forked parsing process starts with them loaded
    """

    supports_versioning = False

    def __init__(self, *, path: str | None = None, preload: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        if path is None:
            from airflow import settings

            path = str(Path(settings.DAGS_FOLDER) / "pipelines")
        self.spec_root = Path(path).expanduser()
        self.preload = preload

    @property
    def path(self) -> Path:
        return self.base_dir / "compiled"

    def get_current_version(self) -> None:
        return None

    def _compile(self) -> None:
        with self.lock():
            changed = compile_stubs(self.spec_root, self.path)
        log.info("Pipeline specs under %s: %s", self.spec_root, changed)

    def initialize(self) -> None:
        self._compile()
        if self.preload:
            from airflow_mlops.pipeline.loader import preload

            preload()
        super().initialize()

    def refresh(self) -> None:
        self._compile()
