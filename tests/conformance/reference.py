"""Validate bodies against the QRM schemas kept from Inspectorio's published OpenAPI document.

`qrm_schemas.json` holds the routes and schemas these checks need, extracted by
`extract.py` from the copy of the document beside the checkout (see README.md
here), so the checks run in any clone. A missing kept file fails; it never skips.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.conformance.extract import KEPT_PATH

# The document has no `$id`; give it one so `#/...` refs resolve inside it.
_BASE_URI = "urn:inspectorio:qrm-openapi"


@cache
def reference_document() -> dict[str, Any]:
    """The kept document: the reference's QRM routes and schemas, without their prose."""
    with open(KEPT_PATH, encoding="utf-8") as fh:
        document: dict[str, Any] = json.load(fh)
    return document


@cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(
        reference_document(), default_specification=DRAFT4
    )
    registry: Registry[Any] = Registry().with_resource(_BASE_URI, resource)
    return registry


@cache
def _validator(pointer: str) -> Any:
    return OAS30Validator(
        {"$ref": f"{_BASE_URI}#{pointer}"},
        registry=_registry(),
        format_checker=oas30_format_checker,
    )


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _check(pointer: str, instance: Any, what: str) -> None:
    validator = _validator(pointer)
    errors = sorted(validator.iter_errors(instance), key=_error_sort_key)
    if errors:
        lines = [f"{what}: {len(errors)} error(s) against the reference"]
        lines += [f"  {_location(e)}: {e.message}" for e in errors]
        raise AssertionError("\n".join(lines))


def _error_sort_key(error: ValidationError) -> tuple[str, str]:
    return (_location(error), error.message)


def _location(error: ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return "$" + path


def validate_schema(schema_name: str, instance: Any) -> None:
    """Assert `instance` matches `components/schemas/<schema_name>` (OpenAPI 3.0 rules)."""
    schemas = reference_document()["components"]["schemas"]
    if schema_name not in schemas:
        raise AssertionError(f"the reference has no schema named {schema_name!r}")
    _check(f"/components/schemas/{_escape(schema_name)}", instance, schema_name)


def validate_response(path: str, method: str, status: int, body: Any) -> None:
    """Assert `body` matches the reference's JSON response schema for this route and status.

    `path` may be the template (`/api/v1/reports/{report_id}`) or a concrete
    path (`/api/v1/reports/12301`); a status the reference does not document
    fails, since the test would otherwise pass without checking anything.
    """
    paths = reference_document()["paths"]
    template = _match_template(paths, path)
    operation = paths[template].get(method.lower())
    if operation is None:
        raise AssertionError(f"the reference documents no {method.upper()} {template}")
    responses = operation.get("responses", {})
    key = str(status) if str(status) in responses else "default"
    if key not in responses:
        documented = ", ".join(sorted(responses))
        raise AssertionError(
            f"the reference documents no {status} for {method.upper()} {template} "
            f"(documented: {documented})"
        )
    content = responses[key].get("content", {})
    if "application/json" not in content or "schema" not in content["application/json"]:
        raise AssertionError(
            f"the reference gives no JSON schema for {status} on {method.upper()} {template}"
        )
    pointer = "/".join(
        [
            "/paths",
            _escape(template),
            method.lower(),
            "responses",
            key,
            "content",
            _escape("application/json"),
            "schema",
        ]
    )
    _check(pointer, body, f"{method.upper()} {template} -> {status}")


def _match_template(paths: dict[str, Any], path: str) -> str:
    if path in paths:
        return path
    for template in paths:
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return template
    raise AssertionError(f"the reference documents no path matching {path!r}")
