"""Tracking: MLflow plumbing (runs found by idempotency key, versions, aliases, URLs) and lineage (datasets
and their content hashes)."""

from __future__ import annotations
