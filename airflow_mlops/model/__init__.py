"""Model: the trainer process and its model families, the on-disk model format and its verified loading,
metrics and hyper-parameter search."""

from __future__ import annotations
