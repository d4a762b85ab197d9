"""Tools: the ``airflow-mlops`` command and the embedded demo (quick start)."""

from __future__ import annotations
