"""The trainer: one entry point (``python -m airflow_mlops.model.training``) for a local subprocess or a pod."""

from __future__ import annotations
