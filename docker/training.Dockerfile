# GPU training image: CUDA build of torch, peft, transformers and the airflow-mlops trainer.
# The entry point is the same trainer TrainModelOperator runs locally:
#   python -m airflow_mlops.model.training --config <json> --result /airflow/xcom/return.json
# Build from the repository root:  docker build -f docker/training.Dockerfile -t airflow-mlops/trainer:0.1.0 .
FROM pytorch/pytorch:2.7.1-cuda12.6-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    WHYLOGS_NO_ANALYTICS=True \
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false \
    HF_HUB_OFFLINE=1

COPY docker/trainer-requirements.txt /tmp/trainer-requirements.txt
RUN pip install --no-cache-dir -r /tmp/trainer-requirements.txt

# The trainer needs the core only, not Airflow: install the package without its Airflow dependencies.
COPY pyproject.toml README.md /src/
COPY airflow_mlops /src/airflow_mlops
COPY operators /src/operators
COPY sensors /src/sensors
COPY plugins /src/plugins
COPY hooks /src/hooks
COPY links /src/links
COPY triggers /src/triggers
COPY utils /src/utils
RUN pip install --no-cache-dir --no-deps /src && rm -rf /src

RUN useradd --create-home --uid 50000 trainer && mkdir -p /airflow/xcom && chown trainer /airflow/xcom
USER trainer
WORKDIR /home/trainer
ENTRYPOINT ["python", "-m", "airflow_mlops.model.training"]
