"""The typed-settings base every section of a spec (and a model's own settings) is built on: unknown keys
are errors, values are never coerced from strings, and problems read ``key: found X; allowed: Y``.

Only pydantic (which Airflow imports anyway) is imported here.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
PERCENT = r"^\d+(\.\d+)?%$"  # a relative amount: "5%", "0.5%"
ColumnName = Annotated[str, Field(min_length=1)]


def percent_fraction(text: str) -> float:
    """A :data:`PERCENT` amount as a fraction: ``"5%"`` -> 0.05."""
    return float(text.strip().rstrip("%")) / 100


def shown(value: Any) -> Any:
    """2.0 shows as 2: YAML said 2, strict float fields store it as 2.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def problem(key: str, found: Any, allowed: str) -> tuple[str, str]:
    return key, f"found {shown(found)!r}; allowed: {allowed}"


def fail(*problems: tuple[str, str], absolute: bool = False) -> PydanticCustomError:
    """An error carrying (key, text) problems. Keys are relative to where the validator sits, or, for the
    cross-section rules of :class:`PipelineSpec` (``absolute``), whole key paths."""
    import json

    return PydanticCustomError(
        "spec_problem",
        "{problems}",
        {"problems": json.dumps([list(p) for p in problems]), "absolute": absolute},
    )


class Section(BaseModel):
    """Base of every section: unknown keys are errors; numbers, booleans and lists are not coerced from
    strings (``epochs: "ten"`` and ``epochs: "10"`` are both wrong)."""

    # .inf and .nan are YAML numbers, but no threshold, tolerance or count is meant by them: refused everywhere
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True, allow_inf_nan=False
    )


ALLOWED = {  # what a pydantic error type allows, in the words of a spec problem
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "finite_number": "a finite number (not .inf or .nan)",
    "bool_type": "true | false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
    "date_type": "a date, YYYY-MM-DD",
    "date_from_datetime_parsing": "a date, YYYY-MM-DD",
    "date_parsing": "a date, YYYY-MM-DD",
    "date_from_datetime_inexact": "a date, YYYY-MM-DD",
}


def allowed_text(err: dict[str, Any]) -> str:
    """What a pydantic error's field allows, in a spec problem's words."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "literal_error":
        return str(ctx.get("expected", "")).replace("', '", " | ").replace("' or '", " | ").replace("'", "")
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return f"a number {'>=' if kind == 'greater_than_equal' else '>'} {bound}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return f"a number {'<=' if kind == 'less_than_equal' else '<'} {bound}"
    if kind == "string_pattern_mismatch":
        return f"a string matching {ctx.get('pattern')}"
    if kind in ("string_too_short", "too_short"):
        return "a non-empty value"
    return ALLOWED.get(kind, err["msg"])
