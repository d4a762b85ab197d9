"""Every operator and sensor: a renderer only for a templated field, and the JSON-like templated fields (the
XCom results passed between tasks) shown as JSON in the Rendered Template view."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from airflow.sdk import BaseOperator

import airflow_mlops.operators
import airflow_mlops.sensors
from airflow_mlops.utils.lineage import LineageMixin

# templated fields that receive another task's result (a dict) or a JSON document
JSON_LIKE = {"training", "tests", "registration", "approval", "report", "trials", "validation", "model_overrides"}


def _classes() -> list[type]:
    found = {}
    for package in (airflow_mlops.operators, airflow_mlops.sensors):
        for info in pkgutil.iter_modules(package.__path__):
            if info.name == "kubernetes":  # needs the cncf provider's client; checked with the pod tests
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseOperator) and cls.__module__.startswith("airflow_mlops"):
                    found[f"{cls.__module__}.{cls.__name__}"] = cls
    return [found[k] for k in sorted(found)]


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_renderers_name_templated_fields_and_cover_the_json_ones(cls):
    fields = set(cls.template_fields)
    renderers = dict(getattr(cls, "template_fields_renderers", {}))
    assert set(renderers) <= fields, f"{cls.__name__}: renderers for fields that are not templated"
    assert {f for f in fields & JSON_LIKE if renderers.get(f) != "json"} == set()


def test_the_classes_are_found():
    names = {c.__name__ for c in _classes()}
    assert {"TrainModelOperator", "ModelTestOperator", "RegisterModelOperator", "DriftSensor"} <= names


@pytest.mark.parametrize(
    "cls", [c for c in _classes() if issubclass(c, LineageMixin)], ids=lambda c: c.__name__
)
def test_every_operator_with_lineage_says_what_it_read_and_wrote(cls):
    """A mixin order that lets the abstract ``lineage`` win leaves OpenLineage events empty, silently."""
    assert cls.lineage is not LineageMixin.lineage
