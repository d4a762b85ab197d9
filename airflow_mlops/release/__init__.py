"""Release: model tests (thresholds, champion vs challenger, suites), their reports, and promotion (policy,
mutual exclusion, rollback)."""

from __future__ import annotations
