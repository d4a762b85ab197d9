# The two commands of the quick start. Each sets itself up first (scripts/bootstrap is idempotent).
.PHONY: demo demo-cluster stack-stop test test-fast lint bootstrap

bootstrap:
	scripts/bootstrap

demo: bootstrap
	.venv/bin/airflow-mlops demo

# the same demo through the production stack (PostgreSQL, CeleryExecutor + Redis, MLflow server), then stopped
demo-cluster: bootstrap
	.venv/bin/airflow-mlops demo --stack celery

stack-stop: bootstrap
	.venv/bin/airflow-mlops stack stop --home .stack

test: bootstrap
	.venv/bin/python -m pytest

# the edit loop: no DAG runs, no training, no Airflow processes (tests marked slow are left out)
test-fast: bootstrap
	.venv/bin/python -m pytest -m "not slow"

lint: bootstrap
	.venv/bin/ruff check .
