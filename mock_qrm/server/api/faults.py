"""Faults on QRM's own routes, and the calls receivers made to them (SPEC 8.4).

A receiver answers the webhook, then calls back `GET /api/v1/reports/{id}`;
real QRM sometimes answers that slowly, with 5xx or 429. These routes tell the
mock to, and show whether the receiver called back at all.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from mock_qrm.contract.models import ApiCall, Envelope, Fault, FaultSpec
from mock_qrm.contract.timefmt import from_ms
from mock_qrm.server.api.context import SERVICE, api, service
from mock_qrm.server.api.errors import Handler, error_response
from mock_qrm.server.api.routing import parse_body, path_int, respond, respond_list
from mock_qrm.server.domain.faults import FaultBook
from mock_qrm.serving import drop_connection, unsendable

TAG = "Simulation"

_ROUTES = {
    ("POST", "/api/v1/auth/login"): "POST /api/v1/auth/login",
    ("GET", "/api/v1/reports"): "GET /api/v1/reports",
    ("GET", "/api/v1/reports/{report_id}"): "GET /api/v1/reports/{id}",
    ("GET", "/files/reports/{report_id}.pdf"): "GET /files/reports/{id}.pdf",
}
_FAULT = "mock_qrm.fault"  # a plain key: web.RequestKey needs aiohttp 3.14


def qrm_route(request: web.Request) -> str | None:
    """`GET /api/v1/reports/{id}` for a call to one of QRM's own routes, else `None`."""
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return None
    return _ROUTES.get((request.method, resource.canonical))


@web.middleware
async def record_calls(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: every call to a QRM route is kept with the status it got (auth failures too)."""
    if qrm_route(request) is None:
        return await handler(request)
    response = await handler(request)
    qrm = request.app[SERVICE]
    fault: Fault | None = request.get(_FAULT)
    status = None if fault is not None and fault.reset else response.status
    qrm.faults.record(
        from_ms(round(qrm.clock.now() * 1000)), request.method, request.path_qs, status, fault
    )
    return response


async def _delay(book: FaultBook, fault: Fault) -> None:
    """Wait the fault's delay, unless it is removed, cleared or reset meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (fault.delay_ms or 0) / 1000
    while not book.lifted(fault) and (left := deadline - loop.time()) > 0:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(left):
                await book.lifting.wait()


@web.middleware
async def apply_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Innermost (after the key is checked): the first fault on the route, if any, applies."""
    route = qrm_route(request)
    book = request.app[SERVICE].faults
    fault = None if route is None else book.take(route)
    if fault is None:
        return await handler(request)
    request[_FAULT] = fault
    if fault.delay_ms:
        await _delay(book, fault)
    if fault.reset:
        drop_connection(request.transport, reset=True)
        return unsendable()
    if fault.status is not None:
        response: web.StreamResponse = error_response(
            fault.status, f"Injected fault {fault.id} on {route}: {fault.status}"
        )
    else:
        response = await handler(request)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)
    return response


@api.route(
    "POST",
    "/_mock/faults",
    summary="Make one of QRM's routes fail, slow down or drop the connection",
    tag=TAG,
    status=201,
    body=FaultSpec,
    response=Envelope[Fault],
    errors=(409,),
)
async def add_fault(request: web.Request) -> web.Response:
    spec = await parse_body(request, FaultSpec)
    return respond(Envelope(data=service(request).faults.add(spec)), status=201)


@api.route(
    "GET",
    "/_mock/faults",
    summary="Active faults, in the order they apply",
    tag=TAG,
    response=Envelope[list[Fault]],
)
async def list_faults(request: web.Request) -> web.Response:
    return respond_list(service(request).faults.list(), Fault)


@api.route(
    "DELETE",
    "/_mock/faults/{fault_id:[0-9]+}",
    summary="Remove one fault",
    tag=TAG,
    status=204,
    errors=(404,),
)
async def remove_fault(request: web.Request) -> web.Response:
    service(request).faults.remove(path_int(request, "fault_id", "Fault"))
    return web.Response(status=204)


@api.route("DELETE", "/_mock/faults", summary="Remove every fault", tag=TAG, status=204)
async def clear_faults(request: web.Request) -> web.Response:
    service(request).faults.clear_faults()
    return web.Response(status=204)


@api.route(
    "GET",
    "/_mock/api-calls",
    summary="The last 1,000 calls to QRM's routes, oldest first: did the receiver call back?",
    tag=TAG,
    response=Envelope[list[ApiCall]],
)
async def api_calls(request: web.Request) -> web.Response:
    return respond_list(list(service(request).faults.calls), ApiCall)
