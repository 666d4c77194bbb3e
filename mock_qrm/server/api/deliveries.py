"""The delivery journal, redelivery, and the live feed."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSMsgType, web

from mock_qrm.contract.models import (
    Attempt,
    BulkRedeliverResult,
    Delivery,
    DeliveryDetail,
    DeliveryFilter,
    DeliveryQuery,
    Envelope,
    Page,
)
from mock_qrm.server.api.context import api, service
from mock_qrm.server.api.routing import parse_body, parse_query, path_int, respond
from mock_qrm.server.delivery.feed import Subscription
from mock_qrm.server.service import FieldErrors

TAG = "Deliveries"
HEARTBEAT = 15.0


@api.route(
    "GET",
    "/api/v1/webhook-deliveries",
    summary="The journal, newest first",
    tag=TAG,
    query=DeliveryQuery,
    response=Page[Delivery],
)
async def list_deliveries(request: web.Request) -> web.Response:
    qrm = service(request)
    query = parse_query(request, DeliveryQuery, qrm.validation_context)
    items, total = await qrm.list_deliveries(query.filter(), query.limit, query.offset)
    return respond(Page[Delivery](data=items, limit=query.limit, offset=query.offset, total=total))


@api.route(
    "GET",
    "/api/v1/webhook-deliveries/{delivery_id:[0-9]+}",
    summary="One delivery with every attempt",
    tag=TAG,
    response=Envelope[DeliveryDetail],
    errors=(404,),
)
async def get_delivery(request: web.Request) -> web.Response:
    detail = await service(request).get_delivery(path_int(request, "delivery_id", "Delivery"))
    return respond(Envelope(data=detail))


@api.route(
    "POST",
    "/api/v1/webhook-deliveries/{delivery_id:[0-9]+}/redeliver",
    summary="One manual attempt with the same messageId; answers with that attempt",
    tag=TAG,
    response=Envelope[Attempt],
    errors=(404, 409, 429),
)
async def redeliver(request: web.Request) -> web.Response:
    attempt = await service(request).redeliver(path_int(request, "delivery_id", "Delivery"))
    return respond(Envelope(data=attempt))


@api.route(
    "POST",
    "/api/v1/webhook-deliveries/redeliver",
    summary="A manual attempt for every delivery matching the filter",
    tag=TAG,
    body=DeliveryFilter,
    response=Envelope[BulkRedeliverResult],
)
async def redeliver_matching(request: web.Request) -> web.Response:
    qrm = service(request)
    flt = await parse_body(request, DeliveryFilter, qrm.validation_context)
    count = await qrm.redeliver_matching(flt)
    return respond(Envelope(data=BulkRedeliverResult(count=count)))


@api.route(
    "GET",
    "/api/v1/webhook-feed",
    summary="WebSocket: every delivery, webhook and report change, numbered by seq",
    tag=TAG,
    errors=(400,),
    response_schema={"type": "string", "description": "WebSocket upgrade"},
    status=101,
)
async def feed(request: web.Request) -> web.StreamResponse:
    qrm = service(request)
    # Checked before the upgrade: once it is a WebSocket, a refusal can no longer be a 422.
    after = request.query.get("after_seq")
    if after is not None and not (after.isascii() and after.isdigit() and len(after) <= 18):
        raise FieldErrors({"after_seq": ["after_seq must be a non-negative integer"]})
    boot = request.query.get("boot_id")
    if boot is not None and not (boot.isascii() and boot.isalnum() and len(boot) <= 64):
        raise FieldErrors({"boot_id": ["boot_id must be 1 to 64 letters and digits"]})
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=64 * 1024)
    await ws.prepare(request)
    connection = qrm.feed.connect(None if after is None else int(after), boot)
    subscription = connection.subscription
    try:
        for opening in connection.opening:
            await ws.send_str(opening.text())
        reader = asyncio.create_task(_drain(ws, subscription))
        try:
            while not ws.closed:
                # asyncio.timeout, not wait_for: no task per frame.
                try:
                    async with asyncio.timeout(HEARTBEAT):
                        frame = await connection.next()
                except TimeoutError:
                    await ws.send_json({"type": "heartbeat", "seq": qrm.feed.seq})
                    continue
                if frame is None:  # fell behind: the client reconnects with after_seq
                    break
                async with asyncio.timeout(HEARTBEAT):
                    await ws.send_str(frame.text())
        finally:
            reader.cancel()
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        connection.close()
        with contextlib.suppress(Exception):
            await ws.close()
    return ws


async def _drain(ws: web.WebSocketResponse, subscription: Subscription) -> None:
    """Read what the client sends (pings, pongs, close); when it goes, stop its subscription."""
    try:
        async for message in ws:
            if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
    finally:
        subscription.drop()
