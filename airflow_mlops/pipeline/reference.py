"""The spec reference (``docs/spec-reference.md``), generated from the spec's JSON Schema: never kept by hand.

``airflow-mlops spec-schema --markdown --out docs/spec-reference.md`` writes it; a test fails when the
committed file and the typed spec disagree.
"""

from __future__ import annotations

import json
from typing import Any

HEADER = """\
# Pipeline spec reference

Generated from the typed spec (`airflow_mlops/pipeline/spec/`) by
`airflow-mlops spec-schema --markdown`: do not edit by hand. The JSON Schema itself is
[`pipeline-spec.schema.json`](pipeline-spec.schema.json) (`airflow-mlops spec-schema`); point your editor's
YAML language server at it for completion and checks as you type:

```yaml
# yaml-language-server: $schema=../../docs/pipeline-spec.schema.json
```

Every key not listed is an error (with a "did you mean"), and so is a value of the wrong type: numbers are
not read from strings. `airflow-mlops validate-spec FILE_OR_FOLDER...` checks specs exactly as Airflow's
parsing would (cron expressions with Airflow's own parser, duplicate names across files, model params, the
DAGs themselves) and exits non-zero on any problem (`--format json` for CI).

"""


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = {**defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _options(node: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    node = _resolve(node, defs)
    for key in ("anyOf", "oneOf"):
        if key in node:
            out = []
            for option in node[key]:
                out += _options(option, defs)
            return out
    return [node]


def _bounds(node: dict[str, Any]) -> str:
    parts = []
    for key, sign in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if key in node:
            parts.append(f"{sign} {node[key]}")
    if "minLength" in node and node["minLength"] > 0:
        parts.append("non-empty")
    if "pattern" in node:
        parts.append(f"matching `{node['pattern']}`".replace("|", "\\|"))
    return f" ({', '.join(parts)})" if parts else ""


def _type(node: dict[str, Any], defs: dict[str, Any]) -> str:
    shown = []
    for option in _options(node, defs):
        if "enum" in option:
            shown.append(" \\| ".join(f"`{v}`" for v in option["enum"]))
        elif "const" in option:
            shown.append(f"`{option['const']}`")
        elif option.get("type") == "array":
            shown.append(f"list of {_type(option.get('items', {}), defs)}")
        elif option.get("type") == "object" and "properties" in option:
            shown.append("mapping (below)")
        elif option.get("type") == "object":
            extra = option.get("additionalProperties")
            shown.append(f"mapping of {_type(extra, defs)}" if isinstance(extra, dict) else "mapping")
        elif option.get("type") == "null":
            shown.append("null")
        elif "type" in option:
            shown.append(f"{option['type']}{_bounds(option)}")
        else:
            shown.append("any")
    return " or ".join(dict.fromkeys(shown))


def _default(node: dict[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" not in node:
        return "—"
    value = node["default"]
    if value is None or value == {} or value == []:
        return "—"
    return f"`{json.dumps(value)}`"


def _rows(
    node: dict[str, Any], path: str, defs: dict[str, Any], out: list[tuple[str, list]], label: str = ""
) -> None:
    node = _resolve(node, defs)
    rows = []
    nested: list[tuple[str, dict[str, Any], str]] = []
    required = set(node.get("required", ()))
    for key, sub in node.get("properties", {}).items():
        full = f"{path}.{key}" if path else key
        described = _resolve(sub, defs)
        rows.append(
            (f"`{full}`", _type(sub, defs), _default(sub, key in required), described.get("description", ""))
        )
        objects = [o for o in _options(sub, defs) if o.get("type") == "object" and "properties" in o]
        for option in _options(sub, defs):
            if option.get("type") == "object" and "properties" in option:
                kind = option["properties"].get("kind", {})
                kind_label = (
                    kind.get("const") or (kind.get("enum") or [None])[0] if len(objects) > 1 else None
                )
                nested.append((full, option, f" (kind: {kind_label})" if kind_label else ""))
            elif option.get("type") == "object" and isinstance(option.get("additionalProperties"), dict):
                inner = _resolve(option["additionalProperties"], defs)
                if "properties" in inner:
                    nested.append((f"{full}.<key>", inner, ""))
            elif option.get("type") == "array":
                inner = _resolve(option.get("items", {}), defs)
                if "properties" in inner:
                    nested.append((f"{full}[]", inner, ""))
    title = node.get("title", "")
    doc = node.get("description", "")
    out.append(((path or "(top level)") + label, [title, doc, rows]))
    for full, sub, sub_label in nested:
        _rows(sub, full, defs, out, sub_label or label)


def reference_markdown() -> str:
    from airflow_mlops.pipeline.spec import json_schema

    schema = json_schema()
    defs = schema.get("$defs", {})
    sections: list[tuple[str, list]] = []
    _rows(schema, "", defs, sections)
    lines = [HEADER]
    seen = set()
    for path, (_title, doc, rows) in sections:
        if path in seen or not rows:
            continue
        seen.add(path)
        key, _, kind = path.partition(" (")
        lines.append(f"## `{key}`" + (f" ({kind}" if kind else "") + "\n")
        if doc and path != "(top level)":
            lines.append(" ".join(doc.replace("``", "`").split()) + "\n")
        lines.append("| key | type | default | meaning |\n|---|---|---|---|")
        for key, typ, default, desc in rows:
            desc = " ".join(desc.replace("``", "`").split()).replace("|", "\\|")
            lines.append(f"| {key} | {typ} | {default} | {desc} |")
        lines.append("")
    return "\n".join(lines)
