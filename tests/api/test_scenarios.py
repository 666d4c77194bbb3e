"""Scenarios over the API (SPEC 9.4): `GET /_mock/config` exports the running state,
`POST /_mock/config` applies one (what the kit's `load_config` and `qrm-tui --config
--server` send). Checked whole first: a refused scenario changes nothing."""

from __future__ import annotations

from typing import Any

from tests.conftest import ClientFactory, service_of
from tests.delivery.helpers import Client

ORDERS = {
    "name": "orders",
    "url": "http://127.0.0.1:9000/qrm",
    "events": ["report.created"],
    "basicAuth": {"username": "qrm", "password": "s3cret"},
    "headers": {"X-Env": "demo"},
}
ARCHIVE = {"name": "archive", "url": "http://127.0.0.1:9001/a", "events": ["report.file_ready"]}
FAULT = {"route": "GET /api/v1/reports/{id}", "status": 503, "times": 2}


async def apply(api: Client, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = await api.post("/_mock/config", json=body)
    assert response.status == status, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def webhooks(api: Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await (await api.get("/api/v1/webhooks")).json())["data"]
    return found


async def test_a_scenario_creates_then_updates_by_name_and_adds_its_faults(api: Client) -> None:
    first = (await apply(api, {"webhooks": [ORDERS, ARCHIVE], "faults": [FAULT]}))["data"]
    assert [w["name"] for w in first["created"]] == ["orders", "archive"]
    assert [f["remaining"] for f in first["faults"]] == [2]

    moved = {**ARCHIVE, "url": "http://127.0.0.1:9002/a", "active": False}
    second = (await apply(api, {"webhooks": [ORDERS, moved]}))["data"]
    assert (second["created"], [w["name"] for w in second["unchanged"]]) == ([], ["orders"])
    [updated] = second["updated"]
    assert (updated["id"], updated["url"], updated["active"]) == (2, moved["url"], False)

    without = {k: v for k, v in ORDERS.items() if k not in ("basicAuth", "headers")}
    third = (await apply(api, {"webhooks": [without]}))["data"]
    assert third["updated"][0]["basicAuth"] is None and third["updated"][0]["headers"] == {}
    assert len(await webhooks(api)) == 2  # declared by name: nothing created twice


async def test_export_shows_the_state_and_passwords_only_when_asked(api: Client) -> None:
    await apply(api, {"webhooks": [ORDERS], "faults": [FAULT]})
    response = await api.get("/_mock/config")
    document = (await response.json())["data"]
    assert document["server"]["time_scale"] == 1 and "db" not in document["server"]
    assert "api_key" not in document["server"] and "port" not in document["server"]
    assert document["webhooks"] == [
        {
            "name": "orders",
            "url": "http://127.0.0.1:9000/qrm",
            "events": ["report.created"],
            "active": True,
            "basicAuth": {"username": "qrm", "password": None},
            "headers": {"X-Env": "demo"},
            "rateLimit": None,
        }
    ]
    assert document["faults"] == [
        {
            "route": "GET /api/v1/reports/{id}",
            "status": 503,
            "delayMs": None,
            "retryAfter": None,
            "reset": False,
            "times": 2,
        }
    ]
    shown = await api.get("/_mock/config", params={"with_secrets": "true"})
    assert shown.headers["Cache-Control"] == "no-store"
    assert (await shown.json())["data"]["webhooks"][0]["basicAuth"]["password"] == "s3cret"


async def test_secrets_need_the_api_key_when_the_server_has_one(server: ClientFactory) -> None:
    api = await server(api_key="k")
    assert (await api.get("/_mock/config", params={"with_secrets": "true"})).status == 401
    keyed = await api.get("/_mock/config", params={"with_secrets": "1"}, headers={"apiKey": "k"})
    assert keyed.status == 200
    qrm = service_of(api)
    assert qrm.may_see_secrets("203.0.113.9")  # the key was checked before the route ran


async def test_without_a_key_secrets_are_for_loopback_only(api: Client) -> None:
    qrm = service_of(api)
    assert qrm.may_see_secrets("127.0.0.1") and qrm.may_see_secrets("::1")
    assert not qrm.may_see_secrets("203.0.113.9") and not qrm.may_see_secrets(None)


async def test_a_refused_scenario_changes_nothing(api: Client) -> None:
    await apply(api, {"webhooks": [ARCHIVE]})
    for _ in range(2):
        response = await api.post("/api/v1/webhooks", json={**ARCHIVE, "name": "twin"})
        assert response.status == 201
    before = await webhooks(api)
    port = api.server.port
    twin = {**ARCHIVE, "name": "twin"}
    body = {
        "webhooks": [
            {**ORDERS, "name": "new one"},
            {**ARCHIVE, "url": "http://127.0.0.1:9009/moved"},
            twin,
            {**ARCHIVE, "name": "itself", "url": f"http://127.0.0.1:{port}/_mock/reset"},
            {**ORDERS, "name": "auth", "headers": {"Authorization": "Bearer x"}},
        ],
        "faults": [FAULT],
    }
    twins = [
        "2 webhooks are named 'twin' (ids 2, 3): remove or rename all but one, so the"
        " scenario knows which to update"
    ]
    refused = await apply(api, body, status=422)
    assert refused["errors"] == {
        "webhooks.2.name": twins,
        "webhooks.3.url": [
            f"127.0.0.1:{port} is this mock QRM server itself: point the webhook at your"
            " receiver (a delivery to the mock's own API would loop)"
        ],
        "webhooks.4.headers.Authorization": [
            "Authorization comes from basic authentication: turn it off to set your own"
        ],
    }
    conflict = await apply(api, {"webhooks": [ORDERS, twin], "faults": [FAULT]}, status=409)
    assert conflict["message"] == "The scenario does not fit this server as it stands"
    assert conflict["errors"] == {"webhooks.1.name": twins}
    assert await webhooks(api) == before
    assert (await (await api.get("/_mock/faults")).json())["data"] == []


async def test_a_name_given_twice_is_one_webhook_declared_then_updated(api: Client) -> None:
    moved = {**ARCHIVE, "url": "http://127.0.0.1:9009/moved"}
    applied = (await apply(api, {"webhooks": [ARCHIVE, moved, moved]}))["data"]
    assert [w["url"] for w in applied["created"]] == [ARCHIVE["url"]]
    assert [w["url"] for w in applied["updated"]] == [moved["url"]]
    assert [w["id"] for w in applied["unchanged"]] == [1]
    assert [(w["name"], w["url"]) for w in await webhooks(api)] == [("archive", moved["url"])]


async def test_settings_cannot_change_on_a_running_server(api: Client) -> None:
    conflict = await apply(
        api, {"server": {"time_scale": 60, "timeout": 2}, "webhooks": [ARCHIVE]}, 409
    )
    assert conflict["errors"] == {
        "server.time_scale": [
            "cannot change while the server runs (it runs with 1.0): start it with this"
            " setting instead"
        ],
    }
    unknown = await apply(api, {"server": {"retrys": 1}}, 422)
    assert unknown["errors"] == {"server.retrys": ["Extra inputs are not permitted"]}
    assert await webhooks(api) == []
    same = await apply(api, {"server": {"time_scale": 1, "timeout": 2.0}, "webhooks": [ARCHIVE]})
    assert [w["name"] for w in same["data"]["created"]] == ["archive"]


async def test_a_scenario_body_is_checked_like_any_other(api: Client) -> None:
    refused = await apply(api, {"webhooks": [{**ARCHIVE, "events": ["report.uploaded"]}]}, 422)
    assert refused["errors"] == {
        "webhooks.0.events": [
            "Unknown event code: report.uploaded; known: report.created, report.file_ready"
        ]
    }
    assert (await apply(api, {"hooks": []}, 422))["errors"] == {
        "hooks": ["Extra inputs are not permitted"]
    }


async def test_the_openapi_document_describes_scenarios_and_tls_details(api: Client) -> None:
    document = await (await api.get("/openapi.json")).json()
    config = document["paths"]["/_mock/config"]
    assert set(config) == {"get", "post"} and "409" in config["post"]["responses"]
    schemas = document["components"]["schemas"]
    server = schemas["ScenarioServer"]
    assert server["additionalProperties"] is False and "time_scale" in server["properties"]
    assert "errorDetail" in schemas["Attempt"]["properties"]
    assert "lastErrorDetail" in schemas["Delivery"]["properties"]
    assert "insecureReceivers" in schemas["Health"]["properties"]
