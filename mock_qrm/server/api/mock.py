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
from mock_qrm.server.api.routing import (
    body_bytes,
    decoded,
    parse_body,
    parse_query,
    read_json,
    respond,
)
from mock_qrm.server.reports.overrides import override_schema
from mock_qrm.server.service import QrmService

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
    raw = await body_bytes(request) if request.body_exists else None
    return respond(Envelope(data=await upload(service(request), raw)), status=201)


async def upload(qrm: QrmService, raw: bytes | None) -> UploadedReport:
    """The route once its HTTP is read (the port's too): no body is a plain upload; a body,
    if sent, must be valid."""
    spec = UploadReport() if raw is None else decoded(raw, UploadReport)
    return await qrm.upload_report(spec.overrides)


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
