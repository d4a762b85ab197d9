"""airflow-mlops: the machine-learning lifecycle on Apache Airflow 3.

The core (this package) holds every decision and imports neither Airflow adapters nor heavy libraries at
module level; the adapters live in :mod:`airflow_mlops.operators`, :mod:`airflow_mlops.sensors` and
:mod:`airflow_mlops.plugins`.
"""

from __future__ import annotations

__version__ = "0.1.0"
