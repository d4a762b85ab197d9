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

# two workers (pytest-xdist): the stack's and the embedded Airflow's waits overlap the rest; one test file is one
# unit of work (tests/conftest.py); PYTEST_WORKERS=0 runs it in one process. (Three workers were no faster
# here: the two cores are busy throughout, with Airflow's and MLflow's processes besides the tests.)
test: bootstrap
	.venv/bin/python -m pytest -n $${PYTEST_WORKERS:-2} --dist loadfile

# the edit loop: no DAG runs, no training, no Airflow processes (tests marked slow are left out), on the same
# two workers
test-fast: bootstrap
	.venv/bin/python -m pytest -m "not slow" -n $${PYTEST_WORKERS:-2} --dist loadfile

lint: bootstrap
	.venv/bin/ruff check .
