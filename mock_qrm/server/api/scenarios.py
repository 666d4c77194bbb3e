"""Scenarios (SPEC 9.4): the running state as a scenario file declares it, and a scenario
applied to a running server. `mock-qrm export-config` and the kit's `load_config` call these;
`mock-qrm serve --config` applies its file as the server starts, with the same function."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, create_model

from mock_qrm.contract.models import (
    Envelope,
    ScenarioApplied,
    ScenarioApply,
    ScenarioDocument,
    ScenarioQuery,
)
from mock_qrm.server.api.context import api, service
from mock_qrm.server.api.errors import error_response
from mock_qrm.server.api.routing import parse_body, parse_query, reached, respond
from mock_qrm.server.settings import Settings

TAG = "Scenarios"


def _server_settings() -> type[BaseModel]:
    """Serve's settings by name, each optional and of the type (and bounds) `Settings` takes:
    what a scenario's `server` may hold, so the document says exactly that."""
    fields: dict[str, Any] = {}
    for name, info in Settings.model_fields.items():
        typed = info.annotation
        if info.metadata:  # its bounds (`ge`, `le`, ...)
            typed = Annotated.__class_getitem__((typed, *info.metadata))  # type: ignore[attr-defined]
        flag = f"`--{name.replace('_', '-')}`"
        fields[name] = (typed, Field(None, description=flag, json_schema_extra=_no_default))
    model: type[BaseModel] = create_model(
        "ScenarioServer", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


def _no_default(schema: dict[str, Any]) -> None:
    """Left out, a setting is not compared: no `default: null` for a value that is never null."""
    schema.pop("default", None)


ScenarioServer = _server_settings()
ScenarioBody: type[ScenarioApply] = create_model(
    "ScenarioApply",
    __base__=ScenarioApply,
    __doc__=ScenarioApply.__doc__,
    server=(
        ScenarioServer,
        Field(
            default_factory=ScenarioServer,
            description="Serve's settings by name: each given must be the value the server"
            " runs with (409 otherwise); a server's settings cannot change while it runs",
        ),
    ),
)
"""`ScenarioApply` as the route reads it: `server` checked name by name, type by type."""


@api.route(
    "GET",
    "/_mock/config",
    summary="The running state as a scenario: server settings, webhooks, faults (passwords only"
    " with with_secrets=true, for a caller with the API key, or on loopback without one)",
    tag=TAG,
    query=ScenarioQuery,
    response=Envelope[ScenarioDocument],
    errors=(403,),
)
async def export_scenario(request: web.Request) -> web.Response:
    query = parse_query(request, ScenarioQuery)
    qrm = service(request)
    if query.with_secrets and not qrm.may_see_secrets(request.remote):
        return error_response(
            403,
            "Passwords are shown only to a caller with the API key, or on loopback: start the"
            " server with --api-key and send it, or ask without with_secrets",
        )
    response = respond(Envelope(data=qrm.scenario(with_secrets=query.with_secrets)))
    if query.with_secrets:
        response.headers["Cache-Control"] = "no-store"
    return response


@api.route(
    "POST",
    "/_mock/config",
    summary="Apply a scenario: each webhook created, or updated to match, by name, in order;"
    " each fault added. Checked whole first: a refused scenario changes nothing (409: a name"
    " two webhooks share, settings the server does not run with)",
    tag=TAG,
    body=ScenarioBody,
    response=Envelope[ScenarioApplied],
    errors=(409,),
)
async def apply_scenario(request: web.Request) -> web.Response:
    qrm = service(request)
    body = await parse_body(request, ScenarioBody, qrm.validation_context)
    given = body.model_dump(include={"server"}, exclude_unset=True).get("server", {})
    scenario = ScenarioApply(
        server={name: _plain(value) for name, value in given.items()},
        webhooks=body.webhooks,
        faults=body.faults,
    )
    return respond(Envelope(data=await qrm.apply_scenario(scenario, reached(request))))


def _plain(value: Any) -> Any:
    """A setting's value as given (an API key as its text), for comparing with the running one."""
    secret = getattr(value, "get_secret_value", None)
    return secret() if callable(secret) else value
