"""Quality gates fail without retries: retrying does not fix bad data or a weak model."""

from __future__ import annotations

import contextlib
from collections.abc import Generator

from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.errors import ConfigError, IntegrityError, QualityGateError, SpecError


class QualityGateFailed(AirflowFailException):
    """A data-validation or model-test gate failed; the message holds the table of failed checks."""


class IntegrityCheckFailed(AirflowFailException):
    """An artifact did not match its recorded hash."""


@contextlib.contextmanager
def gate() -> Generator[None, None, None]:
    try:
        yield
    except QualityGateError as err:
        raise QualityGateFailed(str(err)) from err
    except IntegrityError as err:
        raise IntegrityCheckFailed(str(err)) from err
    except (SpecError, ConfigError) as err:  # a retry would fail the same way
        raise AirflowFailException(str(err)) from err
