"""Reading a spec: YAML in, a validated :class:`PipelineSpec` out, pydantic's errors as one readable line per problem."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from airflow_mlops.errors import SpecError
from airflow_mlops.model.settings import (  # the model section is the model layer's own settings
    MODEL_KINDS,
    LoraCausalLmModel,
    LoraTextModel,
    TabularModel,
    _model_kind,
)
from airflow_mlops.pipeline.spec.common import NAME_PATTERN
from airflow_mlops.pipeline.spec.pipeline import PipelineSpec
from airflow_mlops.schema import PERCENT, Section, allowed_text
from airflow_mlops.schema import shown as _shown

_BRANCH = re.compile(
    r"^(int|str|float|bool|constrained-(int|str|float|bytes)"
    r"|(list|dict|function-after|function-before|function-wrap|function-plain|lax-or-strict|json-or-python"
    r"|nullable|tagged-union|union)\[.*\])$"
)


def _is_branch(part: Any) -> bool:
    """pydantic's names for the branches of ``X | Y`` fields, which are no keys of the spec."""
    return isinstance(part, str) and (bool(_BRANCH.match(part)) or part in _SECTION_NAMES)


def _key(loc: tuple[Any, ...]) -> str:
    """``('tests', 'slices', 0, 'metric')`` -> ``tests.slices[0].metric``; union tags and type branches are
    dropped (``model.tabular.params`` -> ``model.params``)."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        if (i and loc[i - 1] == "model" and part in MODEL_KINDS) or _is_branch(part):
            continue
        out += f".{part}" if out else str(part)
    return out or "(top level)"


def _allowed(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    if err["type"] == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
        return "lower-case letters, digits and '_', starting with a letter (max 63)"
    if err["type"] == "string_pattern_mismatch" and ctx.get("pattern") == PERCENT:
        return "a percentage such as '5%' or '0.5%'"
    return allowed_text(err)


def _did_you_mean(model: type[BaseModel] | None, key: str) -> str:
    import difflib

    if model is None:
        return ""
    known = sorted(model.model_fields)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{hint}; allowed keys: {', '.join(k for k in known if k != 'source')}"


def _section_at(loc: tuple[Any, ...], raw: Any) -> type[BaseModel] | None:
    """The section model that a location points into (for unknown-key hints)."""
    model: Any = PipelineSpec
    """the model family, its task and its training settings"""
    node = raw
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            model = _item_model(model)
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if part in MODEL_KINDS:
            continue
        if model is PipelineSpec and part == "model":
            kind = _model_kind(node.get("model", {}) if isinstance(node, dict) else {}) or "tabular"
            model = {
                "tabular": TabularModel,
                "lora_text": LoraTextModel,
                "lora_causal_lm": LoraCausalLmModel,
            }[kind]
            node = node.get(part) if isinstance(node, dict) else None
            continue
        field = (
            model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        )
        node = node.get(part) if isinstance(node, dict) else None
        model = _annotation_model(field.annotation) if field is not None else _item_model(model)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _annotation_model(annotation: Any) -> Any:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _annotation_model(arg)
        if found is not None:
            return ("dict", found) if typing.get_origin(annotation) is dict else found
    return None


def _item_model(model: Any) -> Any:
    if isinstance(model, tuple):  # a dict of sections: the key was the item
        return model[1]
    return model


def _own_problems(e: dict[str, Any], key: str, loc: tuple[Any, ...], raw: Any) -> list[str]:
    """A cross-section rule's problems (raised by the spec's own validators), each under its own key."""
    import json

    out = []
    for sub, text in json.loads(e["ctx"]["problems"]):
        if e["ctx"]["absolute"]:
            full = sub
        elif not sub:
            full = key
        else:
            full = sub if key == "(top level)" else f"{key}.{sub}"
        out.append(f"{full}: {text}")
    return out


def _model_kind_problem(e: dict[str, Any], key: str, loc: tuple[Any, ...], raw: Any) -> list[str]:
    found = e["input"].get("kind") if isinstance(e["input"], dict) else e["input"]
    return [f"{key}.kind: found {found!r}; allowed: {' | '.join(MODEL_KINDS)}"]


#: pydantic's error types worded as the spec's (``key: ...``); any other type reads ``key: found X; allowed: Y``
WORDING: dict[str, Any] = {
    "spec_problem": _own_problems,
    "model_kind": _model_kind_problem,
    "extra_forbidden": lambda e, key, loc, raw: [f"{key}: unknown key{_did_you_mean(_section_at(loc, raw), str(loc[-1]))}"],
    "missing": lambda e, key, loc, raw: [f"{key}: missing; it is required"],
}


def problems_of(err: ValidationError, raw: Any) -> list[str]:
    """Readable problem lines, one per pydantic error (a cross-section error may carry several): the types of
    :data:`WORDING` as worded there, any other as ``key: found X; allowed: Y``, the branches of an ``X | Y``
    field joined on one line."""
    out: list[str] = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        key = _key(loc)
        if e["type"] in WORDING:
            out += WORDING[e["type"]](e, key, loc, raw)
            continue
        head = f"{key}: found {_shown(e.get('input'))!r}; allowed: "
        merged = next((i for i, p in enumerate(out) if p.startswith(head)), None)
        if merged is None:  # one line per key: the branches of `X | Y` are alternatives
            out.append(head + _allowed(e))
        elif _allowed(e) not in out[merged]:
            out[merged] += f", or {_allowed(e)}"
    seen: set[str] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


def parse_spec(raw: Any, source: str = "<spec>") -> PipelineSpec:
    """Validate a loaded YAML document into a spec; raise :class:`SpecError` listing every problem."""
    if raw is None:
        raise SpecError(
            ["(top level): the file is empty; allowed: a mapping of keys (name, data, storage, ...)"], source
        )
    if not isinstance(raw, dict):
        raise SpecError([f"(top level): found {type(raw).__name__}; allowed: a mapping of keys"], source)
    try:
        spec = PipelineSpec.model_validate({**raw, "source": source})
    except ValidationError as err:
        raise SpecError(problems_of(err, raw), source) from None
    return spec


_LOADER: Any = None


def _loader() -> Any:
    """libyaml's C loader where PyYAML has it (several times faster than the pure-Python one), refusing a key
    that appears twice in one mapping (PyYAML would keep the last one silently)."""
    global _LOADER
    if _LOADER is None:
        import yaml  # PyYAML is light and a dependency of Airflow itself

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class UniqueKeyLoader(base):  # type: ignore[misc, valid-type]
            def construct_mapping(self, node: Any, deep: bool = False) -> Any:
                if isinstance(node, yaml.MappingNode):
                    self.flatten_mapping(node)
                    seen: dict[Any, int] = {}
                    for key_node, _ in node.value:
                        key = self.construct_object(key_node, deep=True)
                        try:
                            first = seen.setdefault(key, key_node.start_mark.line + 1)
                        except TypeError:  # an unhashable key: the spec's own checks name it
                            continue
                        if first != key_node.start_mark.line + 1:
                            raise yaml.constructor.ConstructorError(
                                None, None, f"key {key!r} appears twice (first at line {first})",
                                key_node.start_mark,
                            )  # fmt: skip
                return super().construct_mapping(node, deep)

        _LOADER = UniqueKeyLoader
    return _LOADER


def read_yaml(text: str, source: str) -> Any:
    """Parse a spec's YAML; a syntax error (or a key given twice) names its line and column."""
    import yaml

    try:
        return yaml.load(text, Loader=_loader())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        found = getattr(err, "problem", None) or str(err)
        raise SpecError([f"(YAML syntax){where}: {found}; fix the YAML so that it parses"], source) from None


def load_spec(path: str | Path, source: str | None = None) -> PipelineSpec:
    """Read and validate one YAML spec file (``source``: how messages name it, default the path)."""
    path = Path(path)
    source = source or str(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecError([f"(file): cannot be read: {err}"], source) from None
    return parse_spec(read_yaml(text, source), source)


def _subclasses(cls: type) -> set[type]:
    return {cls}.union(*(_subclasses(sub) for sub in cls.__subclasses__()))


_SECTION_NAMES = {c.__name__ for c in _subclasses(Section)}


def json_schema() -> dict[str, Any]:
    """The spec's JSON Schema (draft 2020-12), for editors and for spec repositories' CI."""
    schema = PipelineSpec.model_json_schema(mode="validation")
    schema["properties"].pop("source", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://airflow-mlops.dev/schemas/pipeline-spec.json"
    schema["title"] = "airflow-mlops pipeline spec"
    return schema
