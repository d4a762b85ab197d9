# Airflow 3.3.2 with airflow-mlops installed (operators, sensors, plugin, provider metadata).
# Build from the repository root:  docker build -f docker/airflow.Dockerfile -t airflow-mlops/airflow:0.1.0 .
FROM apache/airflow:3.3.2-python3.11

# The CPU build of torch keeps the image small: training at scale runs in the GPU training image.
RUN pip install --no-cache-dir "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu

COPY --chown=airflow:root pyproject.toml README.md /opt/airflow-mlops/
COPY --chown=airflow:root constraints /opt/airflow-mlops/constraints
COPY --chown=airflow:root airflow_mlops /opt/airflow-mlops/airflow_mlops
COPY --chown=airflow:root operators /opt/airflow-mlops/operators
COPY --chown=airflow:root sensors /opt/airflow-mlops/sensors
COPY --chown=airflow:root plugins /opt/airflow-mlops/plugins
COPY --chown=airflow:root hooks /opt/airflow-mlops/hooks
COPY --chown=airflow:root links /opt/airflow-mlops/links
COPY --chown=airflow:root triggers /opt/airflow-mlops/triggers
COPY --chown=airflow:root utils /opt/airflow-mlops/utils
RUN pip install --no-cache-dir -c /opt/airflow-mlops/constraints/tested.txt "/opt/airflow-mlops[train,kubernetes]"

# The shipped pipeline specs; mount your own dags/ (hand-written DAGs, pipelines/ of specs) over this.
COPY --chown=airflow:root dags /opt/airflow/dags
# Hand-written DAG files from dags/, and one generated DAG file per spec under dags/pipelines (sub-folders too).
ENV WHYLOGS_NO_ANALYTICS=True \
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false \
    AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST='[{"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}}, {"name": "mlops-pipelines", "classpath": "airflow_mlops.pipeline.bundle.PipelineSpecBundle", "kwargs": {"path": "/opt/airflow/dags/pipelines", "refresh_interval": 60}}]'
