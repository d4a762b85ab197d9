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


class _Given:
    """A value no constructor would make up: an ``is`` check proves it was stored as given."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<given {self.name}>"


def _arguments(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword arguments of the class and of every base up to BaseOperator (an operator passes the rest on
    to its base: TriggerDagRunOperator's, ApprovalOperator's...)."""
    out: dict[str, inspect.Parameter] = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass) and issubclass(klass, BaseOperator) and klass is not BaseOperator:
            out.update(inspect.signature(vars(klass)["__init__"]).parameters)
    # ApprovalOperator sets HITLOperator's options itself and refuses them from its caller
    return {n: p for n, p in out.items() if p.kind is p.KEYWORD_ONLY and n != "options"}


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_constructors_store_templated_arguments_as_given(cls):
    """A templated argument is rendered at run time: the constructor stores it untouched (no transformation,
    no I/O), under the attribute that ``template_fields`` names. Every templated field is a constructor
    argument of the same name."""
    arguments = _arguments(cls)
    required = {n: _Given(n) for n, p in arguments.items() if p.default is p.empty}
    templated = {f: _Given(f) for f in cls.template_fields}
    assert set(templated) <= set(arguments), f"{cls.__name__}: templated fields without an argument"
    op = cls(task_id="t", **{**required, **templated})
    assert {f: getattr(op, f) for f in templated} == templated
    assert all(getattr(op, f) is v for f, v in templated.items())


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_templated_fields_render_from_the_run(cls):
    """Each templated field renders from the run's context (here a run param), whatever its neighbours."""
    from airflow.sdk.definitions._internal.templater import SandboxedEnvironment

    required = {n: f"value-{n}" for n, p in _arguments(cls).items() if p.default is p.empty}
    op = cls(task_id="t", **{**required, **{f: "{{ params.day }}/" + f for f in cls.template_fields}})
    op.render_template_fields({"params": {"day": "2026-01-18"}}, SandboxedEnvironment())
    assert {f: getattr(op, f) for f in cls.template_fields} == {f: f"2026-01-18/{f}" for f in cls.template_fields}
