# GPU training image: the CUDA build of torch, peft, transformers and the airflow-mlops trainer.
# The entry point is the same trainer TrainModelOperator runs locally:
#   python -m airflow_mlops.model.training --config <json> --result /airflow/xcom/return.json
# Build from the repository root:  docker build -f docker/training.Dockerfile -t airflow-mlops/trainer:0.1.0 .
#
# One list of versions: every package comes from constraints/tested.txt (the versions the suite runs on), and
# torch is the version scripts/bootstrap installs (on Linux the default index serves its CUDA build, with the
# CUDA libraries as wheels: no CUDA base image needed; the NVIDIA container runtime provides the driver).
FROM python:3.11-slim

ARG TORCH_SPEC=torch==2.13.0
ENV PYTHONUNBUFFERED=1 \
    WHYLOGS_NO_ANALYTICS=True \
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false \
    HF_HUB_OFFLINE=1

COPY constraints/tested.txt /tmp/tested.txt
RUN pip install --no-cache-dir "$TORCH_SPEC"
# What the trainer imports, by name only (tests/test_packaging.py keeps this list equal to pyproject's core and
# [train] dependencies, less Airflow). bitsandbytes (QLoRA) and s3fs are not in the tested set: they need a GPU
# and an object store that the test machines do not have.
RUN pip install --no-cache-dir -c /tmp/tested.txt \
        peft transformers safetensors \
        mlflow whylogs whylogs-sketching pandas pyarrow numpy fsspec pendulum pyyaml pydantic \
        scikit-learn scipy matplotlib psutil tenacity psycopg2-binary jinja2 \
        bitsandbytes s3fs

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
RUN pip install --no-cache-dir --no-deps /src && rm -rf /src /tmp/tested.txt

RUN useradd --create-home --uid 50000 trainer && mkdir -p /airflow/xcom && chown trainer /airflow/xcom
USER trainer
WORKDIR /home/trainer
ENTRYPOINT ["python", "-m", "airflow_mlops.model.training"]
