# The two commands of the quick start. Each sets itself up first (scripts/bootstrap is idempotent).
.PHONY: demo test lint bootstrap

bootstrap:
	scripts/bootstrap

demo: bootstrap
	.venv/bin/airflow-mlops demo

test: bootstrap
	.venv/bin/python -m pytest

lint: bootstrap
	.venv/bin/ruff check .
