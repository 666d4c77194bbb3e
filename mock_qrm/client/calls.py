"""Every call of the mock QRM's API as data: method, path, query and JSON body. No I/O.

The async client (`mock_qrm.client.http`) and the blocking one
(`mock_qrm.client.blocking`) send these same calls, so each route, its query
names and its body are written once, here; so are the auth header and the
error shape of an answer. Standard library only: the command line builds a
call and sends it within milliseconds of starting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from mock_qrm.contract.errors import QrmApiError

FEED_PATH = "/api/v1/webhook-feed"


class Call(NamedTuple):
    method: str
    path: str
    query: Mapping[str, str] = {}
    body: Any = None
    """JSON to send, or `None` for no body."""


def auth_headers(api_key: str | None) -> dict[str, str]:
    """What proves the caller may use a server started with an API key."""
    return {"apiKey": api_key} if api_key else {}


def _query(**params: Any) -> dict[str, str]:
    return {name: str(value) for name, value in params.items() if value is not None}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _camel_body(values: Mapping[str, Any]) -> dict[str, Any]:
    return {_camel(name): value for name, value in values.items() if value is not None}


# --- the server ------------------------------------------------------------------


def health() -> Call:
    return Call("GET", "/healthz")


def clock() -> Call:
    return Call("GET", "/_mock/clock")


def advance(seconds: float) -> Call:
    return Call("POST", "/_mock/clock/advance", body={"seconds": seconds})


def reset() -> Call:
    return Call("POST", "/_mock/reset")


# --- scenarios (SPEC 9.4) -------------------------------------------------------------


def scenario(with_secrets: bool = False) -> Call:
    """The running state as a scenario (`ScenarioDocument`); passwords only `with_secrets`."""
    return Call("GET", "/_mock/config", _query(with_secrets="true" if with_secrets else None))


def apply_scenario(body: Mapping[str, Any]) -> Call:
    """A scenario as `ScenarioApply` (camelCase, like every body): webhooks and faults."""
    return Call("POST", "/_mock/config", body=dict(body))


# --- faults on QRM's routes, and the calls receivers made ---------------------------


def add_fault(route: str, **spec: Any) -> Call:
    """`add_fault("GET /api/v1/reports/{id}", status=503, times=2)`; see `FaultSpec`."""
    return Call("POST", "/_mock/faults", body={"route": route, **_camel_body(spec)})


def faults() -> Call:
    return Call("GET", "/_mock/faults")


def remove_fault(fault_id: int) -> Call:
    return Call("DELETE", f"/_mock/faults/{fault_id}")


def clear_faults() -> Call:
    return Call("DELETE", "/_mock/faults")


def api_calls() -> Call:
    return Call("GET", "/_mock/api-calls")


# --- webhooks -------------------------------------------------------------------------


def event_components() -> Call:
    return Call("GET", "/api/v1/webhook-events")


def webhooks() -> Call:
    return Call("GET", "/api/v1/webhooks")


def webhook(webhook_id: int) -> Call:
    return Call("GET", f"/api/v1/webhooks/{webhook_id}")


def webhook_body(
    name: str,
    url: str,
    events: list[str],
    basic_auth: tuple[str, str] | None = None,
    active: bool = True,
    headers: Mapping[str, str] | None = None,
    rate_limit: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`POST /api/v1/webhooks`'s body; `rate_limit` is the API's `{"limit", "period"}`."""
    body: dict[str, Any] = {"name": name, "url": url, "events": events, "active": active}
    if basic_auth is not None:
        body["basicAuth"] = {"username": basic_auth[0], "password": basic_auth[1]}
    if headers:
        body["headers"] = dict(headers)
    if rate_limit is not None:
        body["rateLimit"] = dict(rate_limit)
    return body


def create_webhook(body: Mapping[str, Any]) -> Call:
    return Call("POST", "/api/v1/webhooks", body=dict(body))


def update_webhook(webhook_id: int, changes: Mapping[str, Any]) -> Call:
    """A partial update with the API's field names (`name`, `basicAuth`, `rateLimit`, ...)."""
    return Call("PATCH", f"/api/v1/webhooks/{webhook_id}", body=dict(changes))


def delete_webhook(webhook_id: int) -> Call:
    return Call("DELETE", f"/api/v1/webhooks/{webhook_id}")


def set_active(webhook_id: int, active: bool) -> Call:
    action = "activate" if active else "deactivate"
    return Call("POST", f"/api/v1/webhooks/{webhook_id}/{action}")


def webhook_stats(webhook_id: int, since: str | None = None, per_minute: int = 0) -> Call:
    """A webhook's figures from the journal; `since` an ISO 8601 time, `per_minute` the last N
    minutes one by one."""
    return Call(
        "GET",
        f"/api/v1/webhooks/{webhook_id}/stats",
        _query(since=since, per_minute=per_minute or None),
    )


# --- reports and events -------------------------------------------------------------------


def upload_body(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """`POST /_mock/reports`'s body: `inspectionGeneral` fields to set."""
    return {"overrides": dict(overrides)} if overrides else {}


def upload_report(overrides: Mapping[str, Any] | None = None) -> Call:
    return Call("POST", "/_mock/reports", body=upload_body(overrides))


def emit_event(event_code: str, resource_id: int) -> Call:
    return Call("POST", "/_mock/events", body={"eventCode": event_code, "resourceId": resource_id})


def report_rows(limit: int = 50, offset: int = 0) -> Call:
    return Call("GET", "/_mock/reports", _query(limit=limit, offset=offset))


def report(report_id: int | str) -> Call:
    """QRM's report document, as `GET /api/v1/reports/{id}` returns it."""
    return Call("GET", f"/api/v1/reports/{report_id}")


# --- deliveries ----------------------------------------------------------------------------


def deliveries(
    *,
    webhook_id: int | None = None,
    status: str | None = None,
    event_code: str | None = None,
    resource_id: int | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Call:
    """The journal, newest first, filtered; `since`/`until` are ISO 8601 times."""
    return Call(
        "GET",
        "/api/v1/webhook-deliveries",
        _query(
            webhook_id=webhook_id,
            status=status,
            event_code=event_code,
            resource_id=resource_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        ),
    )


def delivery(delivery_id: int) -> Call:
    return Call("GET", f"/api/v1/webhook-deliveries/{delivery_id}")


def redeliver(delivery_id: int) -> Call:
    return Call("POST", f"/api/v1/webhook-deliveries/{delivery_id}/redeliver")


def redeliver_matching(**filters: Any) -> Call:
    """A manual attempt for every delivery matching `status`, `webhook_id`, `event_code`, ..."""
    return Call("POST", "/api/v1/webhook-deliveries/redeliver", body=_camel_body(filters))


# --- answers --------------------------------------------------------------------------------


def refusal(status: int, text: str) -> QrmApiError:
    """An answer of 400 or more as the error it carries, in QRM's shape.

    A body that is not that shape (a proxy's page, not a mock-qrm server at all)
    still becomes one line a person can act on, never HTML.
    """
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("errorCode"), str) and isinstance(body.get("message"), str):
            errors = body.get("errors")
            return QrmApiError(
                status,
                body["errorCode"],
                body["message"],
                errors if isinstance(errors, dict) else None,
                body,
            )
        if status == 503 and body.get("status") == "degraded":  # a degraded /healthz
            reason = body.get("reason") or "degraded"
            return QrmApiError(status, "Unavailable", str(reason), None, body)
    said = "" if text.lstrip().startswith("<") else " ".join(text.split())[:200]  # no HTML
    return QrmApiError(
        status,
        "Generic",
        f"the server answered HTTP {status}{': ' + said if said else ''}"
        " (is it a mock-qrm server?)",
        None,
        body,
    )
