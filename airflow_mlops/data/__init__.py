"""Data: reading a window's partitions, validating them (the data contract), profiling them with whylogs,
deciding when a partition is complete, and scoring drift between two profiles."""

from __future__ import annotations
