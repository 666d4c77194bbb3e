"""QRM's own routes: login, the reports list, one report, and the report's PDF."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from mock_qrm.contract.models import Envelope, LoginForm, LoginResult, ReportQuery
from mock_qrm.server.api.context import api, service
from mock_qrm.server.api.errors import error_response
from mock_qrm.server.api.routing import ID_SCHEMA, parse_body, parse_query, path_int, respond

TAG = "QRM reports"

QRM_DOCUMENT: dict[str, Any] = {
    "type": "object",
    "description": "QRM's ReportResponse, as in Inspectorio's QRM OpenAPI document",
}


def file_url(request: web.Request) -> Callable[[int], str]:
    """Absolute `pdfUrl`s on this server, as the client reached it."""
    base = f"{request.scheme}://{request.host}"
    return lambda report_id: f"{base}/files/reports/{report_id}.pdf"


@api.route(
    "POST",
    "/api/v1/auth/login",
    summary="Log in and get a token (24 h)",
    tag=TAG,
    body=LoginForm,
    response=Envelope[LoginResult],
    errors=(401,),  # with an API key set, a password that is not the key
    secured=False,
)
async def login(request: web.Request) -> web.Response:
    result = service(request).login(await parse_body(request, LoginForm))
    if result is None:
        return error_response(401, "Wrong username or password")
    return respond(Envelope(data=result))


@api.route(
    "GET",
    "/api/v1/reports",
    summary="List reports",
    tag=TAG,
    query=ReportQuery,
    response_schema={
        "type": "object",
        "required": ["data", "limit", "offset", "total"],
        "properties": {
            "data": {"type": "array", "items": QRM_DOCUMENT},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "total": {"type": "integer"},
        },
    },
)
async def list_reports(request: web.Request) -> web.Response:
    query = parse_query(request, ReportQuery)
    page = await service(request).list_reports(query, file_url(request))
    return respond(
        {"data": page.items, "limit": query.limit, "offset": query.offset, "total": page.total}
    )


@api.route(
    "GET",
    "/api/v1/reports/{report_id}",
    summary="One report, by numeric id or inspectionId",
    tag=TAG,
    path_params={
        "report_id": {"anyOf": [ID_SCHEMA, {"type": "string", "format": "uuid"}]},
    },
    errors=(404,),
    response_schema={"type": "object", "required": ["data"], "properties": {"data": QRM_DOCUMENT}},
)
async def get_report(request: web.Request) -> web.Response:
    document = await service(request).get_report(request.match_info["report_id"], file_url(request))
    return respond({"data": document})


@api.route(
    "GET",
    "/files/reports/{report_id:[0-9]+}.pdf",
    summary="The report's PDF, once the file is ready",
    tag=TAG,
    errors=(404,),
    content_type="application/pdf",
    secured=False,
    response_schema={"type": "string", "format": "binary"},
)
async def report_pdf(request: web.Request) -> web.Response:
    report_id = path_int(request, "report_id", "Report file")
    pdf = await service(request).report_pdf(report_id)
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="report-{report_id}.pdf"'},
    )
