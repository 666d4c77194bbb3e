"""The QRM-compatible routes answer what Inspectorio's published OpenAPI document describes.

They check against the routes and schemas kept from it in tests/conformance/qrm_schemas.json,
so they run in any clone.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.api.test_errors import qrm_error
from tests.conformance.reference import reference_document, validate_response, validate_schema

Client = TestClient[Any, Any]
Server = Callable[..., Awaitable[Client]]

REPORTS = "/api/v1/reports"
REPORT = "/api/v1/reports/{report_id}"
LOGIN = "/api/v1/auth/login"
KEY = "k"


async def json_of(api: Client, method: str, path: str, status: int, **kwargs: Any) -> Any:
    response = await api.request(method, path, **kwargs)
    assert response.status == status, (await response.text())[:500]
    return await response.json()


# -- success bodies


async def test_login_matches_the_reference(api: Client) -> None:
    body = await json_of(
        api, "POST", LOGIN, 200, json={"username": "dev@example.com", "password": "secret"}
    )
    validate_response(LOGIN, "post", 200, body)
    validate_schema("AuthResponse", body["data"])


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"limit": "100"},
        {"limit": "1", "offset": "3"},
        {"order": "created_date:asc"},
        {"status": "completed"},
        {"created_from": "2000-01-01T00:00:00Z", "created_to": "2100-01-01T00:00:00Z"},
    ],
    ids=["default", "limit-100", "paged", "ascending", "status", "created-range"],
)
async def test_report_list_matches_the_reference(server: Server, query: dict[str, str]) -> None:
    api = await server(seed_reports=20)
    body = await json_of(api, "GET", REPORTS, 200, params=query)
    assert body["data"], "an empty page would prove little"
    validate_response(REPORTS, "get", 200, body)


async def test_report_list_with_unready_files_matches_the_reference(api: Client) -> None:
    await json_of(api, "POST", "/_mock/reports", 201, json={})
    body = await json_of(api, "GET", REPORTS, 200)
    assert any("pdfUrl" not in item for item in body["data"])
    validate_response(REPORTS, "get", 200, body)


async def test_every_seeded_report_detail_matches_the_reference(server: Server) -> None:
    api = await server(seed_reports=20)
    listing = await json_of(api, "GET", REPORTS, 200, params={"limit": "200"})
    for item in listing["data"]:
        body = await json_of(api, "GET", f"{REPORTS}/{item['id']}", 200)
        validate_response(REPORT, "get", 200, body)
        by_uuid = await json_of(api, "GET", f"{REPORTS}/{item['inspectionId']}", 200)
        assert by_uuid == body


async def test_uploaded_report_detail_matches_the_reference_before_and_after_its_file(
    api: Client,
) -> None:
    uploaded = await json_of(
        api, "POST", "/_mock/reports", 201, json={"overrides": {"status": "in-progress"}}
    )
    path = f"{REPORTS}/{uploaded['data']['resourceId']}"
    before = await json_of(api, "GET", path, 200)
    assert "pdfUrl" not in before["data"]["inspectionGeneral"]
    validate_response(REPORT, "get", 200, before)

    await json_of(api, "POST", "/_mock/clock/advance", 200, json={"seconds": 5})
    after = await json_of(api, "GET", path, 200)
    assert after["data"]["inspectionGeneral"]["pdfUrl"]
    validate_response(REPORT, "get", 200, after)


# -- error bodies


async def test_400_matches_the_reference(api: Client) -> None:
    response = await api.post(LOGIN, data=b"{", headers={"Content-Type": "application/json"})
    validate_response(LOGIN, "post", 400, await qrm_error(response, 400))


async def test_401_matches_the_reference(server: Server) -> None:
    api = await server(api_key=KEY)
    response = await api.get(REPORTS)
    validate_response(REPORTS, "get", 401, await qrm_error(response, 401))
    response = await api.get(f"{REPORTS}/12301", headers={"apiKey": "wrong"})
    validate_response(REPORT, "get", 401, await qrm_error(response, 401))
    response = await api.post(LOGIN, json={"username": "dev", "password": "wrong"})
    validate_response(LOGIN, "post", 401, await qrm_error(response, 401))


async def test_404_matches_the_reference_error_shape(api: Client) -> None:
    # The reference documents no 404 for reports (SPEC.md, Details 2): the body is
    # checked against BadRequestApiError, the `{errorCode, message}` shape its other
    # errors share, since there is no 404 response to validate against.
    for report_id in ("99999", "00000000-0000-0000-0000-000000000000"):
        response = await api.get(f"{REPORTS}/{report_id}")
        validate_schema("BadRequestApiError", await qrm_error(response, 404))


@pytest.mark.parametrize(
    ("path", "template", "params"),
    [
        (REPORTS, REPORTS, {"limit": "0"}),
        (REPORTS, REPORTS, {"limit": "201"}),
        (REPORTS, REPORTS, {"status": "lost"}),
        (REPORTS, REPORTS, {"created_from": "last tuesday"}),
    ],
    ids=["limit-0", "limit-201", "status", "created-from"],
)
async def test_422_on_the_list_matches_the_reference(
    api: Client, path: str, template: str, params: dict[str, str]
) -> None:
    response = await api.get(path, params=params)
    validate_response(template, "get", 422, await qrm_error(response, 422))


async def test_422_on_login_matches_the_reference(api: Client) -> None:
    response = await api.post(LOGIN, json={"username": "", "password": ""})
    body = await qrm_error(response, 422)
    validate_response(LOGIN, "post", 422, body)
    validate_schema("ValidateApiError", body)


# -- limit=200: the reference's list schema and its parameter disagree


def test_reference_caps_list_limit_at_100_but_its_parameter_allows_200() -> None:
    """The disagreement the next two tests handle; if the reference fixes it, revisit them."""
    document = reference_document()
    schema_limit = document["components"]["schemas"]["ReportListResponse"]["properties"]["limit"]
    parameter = next(
        p for p in document["paths"][REPORTS]["get"]["parameters"] if p["name"] == "limit"
    )
    assert schema_limit["maximum"] == 100
    assert parameter["schema"]["maximum"] == 200


async def test_limit_200_page_breaks_only_the_reference_list_cap_of_100(server: Server) -> None:
    api = await server(seed_reports=20)
    body = await json_of(api, "GET", REPORTS, 200, params={"limit": "200"})
    assert body["limit"] == 200
    with pytest.raises(AssertionError) as failure:
        validate_response(REPORTS, "get", 200, body)
    message = str(failure.value)
    assert "1 error(s)" in message
    assert "$.limit:" in message


async def test_limit_200_page_matches_the_list_schema_with_its_maximum_relaxed_to_200(
    server: Server,
) -> None:
    api = await server(seed_reports=20)
    body = await json_of(api, "GET", REPORTS, 200, params={"limit": "200"})
    assert body["limit"] == 200
    assert len(body["data"]) == 20
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in _relaxed_list_validator().iter_errors(body)
    ]
    assert errors == []


def _relaxed_list_validator() -> Any:
    """ReportListResponse with `limit.maximum` raised from 100 to the parameter's 200."""
    document = copy.deepcopy(reference_document())
    limit = document["components"]["schemas"]["ReportListResponse"]["properties"]["limit"]
    limit["maximum"] = 200
    uri = "urn:inspectorio:qrm-openapi:limit-200"
    resource: Resource[Any] = Resource.from_contents(document, default_specification=DRAFT4)
    return OAS30Validator(
        {"$ref": f"{uri}#/components/schemas/ReportListResponse"},
        registry=Registry().with_resource(uri, resource),
        format_checker=oas30_format_checker,
    )
