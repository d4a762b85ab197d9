"""Exceptions of the core. Adapters translate the quality-gate ones into non-retryable task failures."""

from __future__ import annotations


class MlopsError(Exception):
    """Base class of every error raised by airflow-mlops."""


class SpecError(MlopsError):
    """A pipeline spec is malformed: the message names the file, the key, what was found and what is allowed."""

    def __init__(self, problems: list[str], source: str = "<spec>") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid pipeline spec {source}:\n{lines}")


class ConfigError(MlopsError, ValueError):
    """An operator's or trainer's configuration is invalid (a hand-written DAG's ``model``, a run's
    ``model_params``): retrying cannot fix it. The message names each key, what was found and what is allowed."""

    EXIT_CODE = 78  # EX_CONFIG: how the trainer process says it refused its config (nothing was started)

    def __init__(self, problems: list[str], where: str = "configuration") -> None:
        self.problems = problems
        self.where = where
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid {where}:\n{lines}\nFix the DAG (or the run's params), then trigger it again.")


class RunOutsideDatesError(ConfigError):
    """A run asks for a window outside its DAG's ``start_date``..``end_date`` (the spec's dates): a retry would
    ask for the same window. The message is one line and the fix."""

    def __init__(self, message: str) -> None:
        self.problems = [message]
        self.where = "run"
        MlopsError.__init__(self, message)


class DataError(MlopsError):
    """Input data cannot be read or is unusable (missing partition, corrupt file, empty window)."""


class QualityGateError(MlopsError):
    """A quality gate (data validation, model tests) failed. Retrying does not help: fix the input."""

    def __init__(self, message: str, rows: list[dict] | None = None) -> None:
        self.rows = rows or []
        super().__init__(message)


class BadDataError(QualityGateError):
    """Input exists but is unusable (corrupt file, schemas that differ between partitions)."""


class DataValidationError(QualityGateError):
    """The data of a window broke one or more constraints of the spec."""


class ModelTestError(QualityGateError):
    """A candidate model failed its tests."""


class IntegrityError(MlopsError):
    """An artifact's content does not match the hash recorded when the pipeline wrote it."""


class TrainingError(MlopsError):
    """The trainer failed; the message carries the tail of its log."""
