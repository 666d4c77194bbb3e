"""Hostile input never reaches a 500 (SPEC.md section 9.2, issue 28): what a client sees.

Numbers too long for Python's int parser, control characters in free text, an
`apiKey` header that is not UTF-8, and the bounds on what the server keeps.
The HTTP server's own refusals (a header line over the limit, ...) are in
tests/test_serving.py, which speaks raw bytes to a real socket.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from mock_qrm.server.api.context import api as routes
from tests.api.test_errors import qrm_error
from tests.conftest import WEBHOOK

Client = TestClient[Any, Any]
JSON = {"Content-Type": "application/json"}
KEY = "k"
HUGE = "1" + "0" * 5000
"""A JSON number of 5,001 digits: past Python's int-string limit (4,300)."""


async def _webhook(api: Client, headers: dict[str, str] | None = None) -> int:
    response = await api.post("/api/v1/webhooks", json=WEBHOOK, headers=headers)
    assert response.status == 201, await response.text()
    webhook_id: int = (await response.json())["data"]["id"]
    return webhook_id


async def names(api: Client, headers: dict[str, str] | None = None) -> list[str]:
    response = await api.get("/api/v1/webhooks", headers=headers)
    assert response.status == 200, await response.text()
    return [w["name"] for w in (await response.json())["data"]]


# -- a number too long to read is 400 on every route that reads a JSON body

BODY_ROUTES = sorted(
    {(doc.method, doc.path) for doc in routes.docs if doc.body is not None}
    | {("POST", "/_mock/reset")}  # no documented body, but one sent must be JSON
)


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=[f"{m} {p}" for m, p in BODY_ROUTES])
@pytest.mark.parametrize("where", ["top", "nested"])
async def test_a_number_too_long_to_read_is_400_on_every_json_body(
    server: Any, method: str, path: str, where: str
) -> None:
    api = await server(api_key=KEY)
    webhook_id = await _webhook(api, {"apiKey": KEY})
    raw = f'{{"name": {HUGE}}}' if where == "top" else f'{{"overrides": {{"a": [{HUGE}]}}}}'
    response = await api.request(
        method,
        path.replace("{webhook_id}", str(webhook_id)),
        data=raw,
        headers={**JSON, "apiKey": KEY},
    )
    error = await qrm_error(response, 400)
    assert error["message"] == (
        "Request body is not valid JSON: a number has more than 4,300 digits"
    )
    assert await names(api, {"apiKey": KEY}) == [WEBHOOK["name"]]


async def test_a_long_number_the_parser_reads_is_a_field_error_not_a_crash(api: Client) -> None:
    """4,300 digits parse: the field's own rule refuses the value (422), nothing breaks."""
    raw = '{"webhookId": 1' + "0" * 4299 + "}"
    response = await api.post("/api/v1/webhook-deliveries/redeliver", data=raw, headers=JSON)
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {"webhookId"}
