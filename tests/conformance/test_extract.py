"""The kept QRM schemas are exactly what `extract` takes from Inspectorio's document."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.conformance.extract import KEPT_PATH, REFERENCE_PATH, extract, render

REFRESH = "python -m tests.conformance.extract > tests/conformance/qrm_schemas.json"


def kept() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(KEPT_PATH.read_text(encoding="utf-8"))
    return document


def test_kept_schemas_are_a_fresh_extraction_of_the_reference() -> None:
    if not REFERENCE_PATH.is_file():
        pytest.skip(
            f"reference OpenAPI document not found at {REFERENCE_PATH}, so the kept schemas "
            "cannot be compared with it (set QRM_REFERENCE_OPENAPI to its path)"
        )
    reference = json.loads(REFERENCE_PATH.read_text(encoding="utf-8"))
    fresh = extract(reference)
    assert kept() == fresh, f"the reference changed; refresh with `{REFRESH}`"
    assert KEPT_PATH.read_text(encoding="utf-8") == render(fresh), f"reformat with `{REFRESH}`"


def test_kept_schemas_are_closed_prose_free_and_canonical() -> None:
    # Extraction would drop any prose left, and fail on a `$ref` to a schema not kept.
    document = kept()
    assert extract(document) == document
    assert KEPT_PATH.read_text(encoding="utf-8") == render(document)


def test_extraction_drops_prose_and_unreached_schemas_but_keeps_fields_named_like_prose() -> None:
    document = kept()
    source = copy.deepcopy(document)
    source["info"] = {"title": "Inspectorio Quality Risk Management API", "version": "v1"}
    login = source["paths"]["/api/v1/auth/login"]["post"]
    login.update(summary="Login", description="Login", deprecated=True, tags=["AUTH"])
    login["responses"]["200"]["description"] = "OK"
    listing = source["paths"]["/api/v1/reports"]["get"]
    listing["parameters"][0]["description"] = "Style ID of items included in reports"
    listing["parameters"][0]["schema"]["example"] = "Style_1"
    schemas = source["components"]["schemas"]
    schemas["AuthResponse"]["properties"]["token"].update(description="Token", example="eyJ0")
    schemas["AuthResponse"].update(title="Auth", **{"x-internal": True})
    schemas["Unreached"] = {"description": "a schema no kept route uses", "type": "object"}

    assert extract(source) == document
    photo = document["components"]["schemas"]["InspectionDefectListPhoto"]
    assert "description" in photo["properties"]
