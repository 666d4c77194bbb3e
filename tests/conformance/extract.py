"""Extract, from Inspectorio's published QRM OpenAPI document, what the conformance checks need.

The full document (750 kB, mostly prose) lives outside the checkout; the routes
the mock imitates and every schema they reach are kept in `qrm_schemas.json`
beside this module, so the checks run in any clone. Refresh the kept file with

    python -m tests.conformance.extract [PATH_TO_REFERENCE] > tests/conformance/qrm_schemas.json

The output is deterministic (sorted keys, two-space indent), so a refresh shows
in `git diff` only what Inspectorio changed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_DEFAULT_PATH = Path(__file__).parents[3] / "shared" / "reference" / "inspectorio-qrm-openapi.json"
REFERENCE_PATH = Path(os.environ.get("QRM_REFERENCE_OPENAPI") or _DEFAULT_PATH)
KEPT_PATH = Path(__file__).with_name("qrm_schemas.json")

# The QRM routes the mock serves; their parameters, bodies and responses are kept.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "/api/v1/auth/login": ("post",),
    "/api/v1/reports": ("get",),
    "/api/v1/reports/{report_id}": ("get",),
}
# Schemas the tests name directly; kept even if a revision stops reaching them from OPERATIONS.
SCHEMAS = (
    "AuthResponse",
    "BadRequestApiError",
    "ReportListResponse",
    "ReportResponse",
    "ValidateApiError",
)

# Annotations no validator reads: prose, samples and markers for documentation tools.
_PROSE = frozenset(
    {"description", "summary", "example", "examples", "title", "externalDocs", "deprecated", "xml"}
)
_SUBSCHEMA = frozenset({"items", "additionalProperties", "not"})
_SUBSCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf"})


def extract(document: dict[str, Any]) -> dict[str, Any]:
    """The kept document: OPERATIONS and SCHEMAS from `document`, prose stripped, refs closed."""
    paths = {
        template: {method: _operation(document["paths"][template][method]) for method in methods}
        for template, methods in OPERATIONS.items()
    }
    components: dict[str, dict[str, Any]] = {"schemas": {}}
    pending = [f"#/components/schemas/{name}" for name in SCHEMAS]
    pending += _refs(paths)
    while pending:
        ref = pending.pop()
        kind, name = _component(ref)
        if name in components.setdefault(kind, {}):
            continue
        kept = _COMPONENT_KINDS[kind](document["components"][kind][name])
        components[kind][name] = kept
        pending += _refs(kept)
    return {"openapi": document["openapi"], "paths": paths, "components": components}


def render(kept: dict[str, Any]) -> str:
    """The kept document as the text of `qrm_schemas.json`."""
    return json.dumps(kept, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _operation(operation: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    if "parameters" in operation:
        kept["parameters"] = [_parameter(p) for p in operation["parameters"]]
    if "requestBody" in operation:
        kept["requestBody"] = _request_body(operation["requestBody"])
    kept["responses"] = {
        status: _response(response) for status, response in operation["responses"].items()
    }
    return kept


def _parameter(parameter: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in parameter:
        return {"$ref": parameter["$ref"]}
    kept = {k: v for k, v in parameter.items() if k not in _PROSE and not k.startswith("x-")}
    if "schema" in kept:
        kept["schema"] = _schema(kept["schema"])
    if "content" in kept:
        kept["content"] = _content(kept["content"])
    return kept


def _request_body(body: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in body:
        return {"$ref": body["$ref"]}
    kept: dict[str, Any] = {"content": _content(body.get("content", {}))}
    if "required" in body:
        kept["required"] = body["required"]
    return kept


def _response(response: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in response:
        return {"$ref": response["$ref"]}
    return {"content": _content(response.get("content", {}))}


def _content(content: dict[str, Any]) -> dict[str, Any]:
    return {
        media_type: {"schema": _schema(media["schema"])} if "schema" in media else {}
        for media_type, media in content.items()
    }


def _schema(schema: Any) -> Any:
    """`schema` without prose; keys under `properties` are field names, so they all stay."""
    if not isinstance(schema, dict):
        return schema  # `additionalProperties: true`
    kept: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _PROSE or key.startswith("x-"):
            continue
        if key == "properties":
            kept[key] = {name: _schema(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA:
            kept[key] = _schema(value)
        elif key in _SUBSCHEMA_LISTS:
            kept[key] = [_schema(sub) for sub in value]
        else:
            kept[key] = value  # type, format, enum, required, nullable, $ref, discriminator...
    return kept


_COMPONENT_KINDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "schemas": _schema,
    "parameters": _parameter,
    "requestBodies": _request_body,
    "responses": _response,
}


def _component(ref: str) -> tuple[str, str]:
    prefix, _, rest = ref.partition("#/components/")
    kind, _, name = rest.partition("/")
    if prefix or kind not in _COMPONENT_KINDS or not name or "/" in name:
        raise ValueError(f"cannot keep {ref!r}: only refs to whole local components are followed")
    return kind, name.replace("~1", "/").replace("~0", "~")


def _refs(node: Any) -> Iterator[str]:
    """Every `$ref` under `node`, and every schema a discriminator maps to."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            elif key == "discriminator" and isinstance(value, dict):
                yield from value.get("mapping", {}).values()
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.conformance.extract",
        description="Print the kept QRM schemas extracted from Inspectorio's OpenAPI document.",
    )
    parser.add_argument(
        "reference",
        nargs="?",
        type=Path,
        default=REFERENCE_PATH,
        help=f"the published document (default: $QRM_REFERENCE_OPENAPI or {_DEFAULT_PATH})",
    )
    args = parser.parse_args(argv)
    with open(args.reference, encoding="utf-8") as fh:
        document = json.load(fh)
    sys.stdout.write(render(extract(document)))


if __name__ == "__main__":
    main()
