"""Data validation: the spec's constraints checked against a window's data.

Every check yields a row (check, column, partition, expected, observed, offending rows, result); the failed
rows become the message of the quality-gate error, so the first lines of a failed task's log say exactly what
broke. The package's rooms:

- :mod:`~airflow_mlops.data.validation.report`: the report, its table, page and error;
- :mod:`~airflow_mlops.data.validation.checks`: one class per check kind, in a registry (report order);
- :mod:`~airflow_mlops.data.validation.stream`: the one-pass validator over record batches, and the window's
  files read, validated and profiled together;
- :mod:`~airflow_mlops.data.validation.rows`: the faults of single rows (scoring's quarantine);
- :mod:`~airflow_mlops.data.validation.inference`: a constraints block proposed from a reference profile.
"""
from __future__ import annotations

from airflow_mlops.data.validation.checks import (
    REGISTRY,
    Check,
    register,
)
from airflow_mlops.data.validation.inference import infer_constraints
from airflow_mlops.data.validation.report import HEADER, WINDOW, ValidationReport, partition_label
from airflow_mlops.data.validation.rows import ROW_CHECKS, row_faults, row_level
from airflow_mlops.data.validation.stream import (
    StreamValidator,
    validate_and_profile,
    validate_frame,
)

__all__ = [
    "HEADER", "REGISTRY", "ROW_CHECKS", "WINDOW", "Check", "StreamValidator",
    "ValidationReport", "infer_constraints", "partition_label", "register", "row_faults", "row_level",
    "validate_and_profile", "validate_frame",
]  # fmt: skip
