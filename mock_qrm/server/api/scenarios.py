"""Scenarios (SPEC 9.4): the running state as a scenario file declares it, and a scenario
applied to a running server. `mock-qrm export-config` and the kit's `load_config` call these;
`mock-qrm serve --config` applies its file as the server starts, with the same function."""

from __future__ import annotations

from aiohttp import web

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

TAG = "Scenarios"


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
    summary="Apply a scenario: each webhook created, or updated to match, by name; each fault"
    " added; settings must be those the server runs with. Checked whole first: a refused"
    " scenario changes nothing",
    tag=TAG,
    body=ScenarioApply,
    response=Envelope[ScenarioApplied],
)
async def apply_scenario(request: web.Request) -> web.Response:
    qrm = service(request)
    scenario = await parse_body(request, ScenarioApply, qrm.validation_context)
    return respond(Envelope(data=await qrm.apply_scenario(scenario, reached(request))))
