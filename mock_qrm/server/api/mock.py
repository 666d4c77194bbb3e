"""Simulation and test control: uploads, events, the clock, reset."""

from __future__ import annotations

from aiohttp import web

from mock_qrm.contract.models import (
    ClockAdvance,
    ClockState,
    EmitEvent,
    EmittedEvent,
    Envelope,
    Page,
    PageQuery,
    ReportRow,
    UploadedReport,
    UploadReport,
)
from mock_qrm.server.api.context import api, service
from mock_qrm.server.api.routing import parse_body, parse_query, read_json, respond
from mock_qrm.server.reports.generator import override_schema

TAG = "Simulation"


@api.route(
    "POST",
    "/_mock/reports",
    summary="An inspector uploads a report: report.created now, report.file_ready later",
    tag=TAG,
    status=201,
    body=UploadReport,
    body_optional=True,
    body_schema={
        "type": "object",
        "properties": {"overrides": override_schema()},
        "additionalProperties": False,
    },
    response=Envelope[UploadedReport],
)
async def upload_report(request: web.Request) -> web.Response:
    # An empty body is a plain upload; a body, if sent, must be valid.
    spec = await parse_body(request, UploadReport) if request.body_exists else UploadReport()
    uploaded = await service(request).upload_report(spec.overrides)
    return respond(Envelope(data=uploaded), status=201)


@api.route(
    "GET",
    "/_mock/reports",
    summary="Reports as the TUI lists them, newest first",
    tag=TAG,
    query=PageQuery,
    response=Page[ReportRow],
)
async def report_rows(request: web.Request) -> web.Response:
    query = parse_query(request, PageQuery)
    rows, total = await service(request).report_rows(query.limit, query.offset)
    return respond(Page[ReportRow](data=rows, limit=query.limit, offset=query.offset, total=total))


@api.route(
    "POST",
    "/_mock/events",
    summary="Emit any catalog event for an existing report",
    tag=TAG,
    status=201,
    body=EmitEvent,
    response=Envelope[EmittedEvent],
    errors=(404,),
)
async def emit_event(request: web.Request) -> web.Response:
    spec = await parse_body(request, EmitEvent)
    emitted = await service(request).emit_event(spec.event_code, spec.resource_id)
    return respond(Envelope(data=emitted), status=201)


@api.route(
    "GET", "/_mock/clock", summary="The server's clock", tag=TAG, response=Envelope[ClockState]
)
async def clock(request: web.Request) -> web.Response:
    return respond(Envelope(data=service(request).clock_state()))


@api.route(
    "POST",
    "/_mock/clock/advance",
    summary="Move a manual clock; returns once everything now due has been started",
    tag=TAG,
    body=ClockAdvance,
    response=Envelope[ClockState],
    errors=(409,),
)
async def advance(request: web.Request) -> web.Response:
    spec = await parse_body(request, ClockAdvance)
    return respond(Envelope(data=await service(request).advance(spec.seconds)))


@api.route(
    "POST",
    "/_mock/reset",
    summary="Back to the seeded state: no webhooks, no journal",
    tag=TAG,
    status=204,
)
async def reset(request: web.Request) -> web.Response:
    if request.body_exists:
        await read_json(request)
    await service(request).reset()
    return web.Response(status=204)
