"""Drift between two whylogs profiles: effect sizes with sample-size floors (``scores``) and the report
(``report``). Pure: the monitoring against the champion is in :mod:`airflow_mlops.operations.monitoring`."""

from __future__ import annotations
