"""The webhook registry: QRM's Configuration > Webhooks page, as an API."""

from __future__ import annotations

from aiohttp import web

from mock_qrm.contract.models import (
    Envelope,
    EventComponent,
    Page,
    StatsQuery,
    Webhook,
    WebhookCreate,
    WebhookPatch,
    WebhookQuery,
    WebhookStats,
)
from mock_qrm.server.api.context import api, service
from mock_qrm.server.api.routing import (
    body_bytes,
    decoded,
    parse_body,
    parse_query,
    path_int,
    reached,
    respond,
    respond_list,
)
from mock_qrm.server.service import Address, QrmService

TAG = "Webhooks"


@api.route(
    "GET",
    "/api/v1/webhook-events",
    summary="The event catalog, grouped by component",
    tag=TAG,
    response=Envelope[list[EventComponent]],
)
async def list_events(request: web.Request) -> web.Response:
    return respond_list(service(request).event_components(), EventComponent)


@api.route(
    "GET",
    "/api/v1/webhooks",
    summary="List webhooks, oldest first",
    tag=TAG,
    query=WebhookQuery,
    response=Page[Webhook],
)
async def list_webhooks(request: web.Request) -> web.Response:
    query = parse_query(request, WebhookQuery)
    page, total = await service(request).list_webhooks(query.limit, query.offset)
    return respond(Page[Webhook](data=page, limit=query.limit, offset=query.offset, total=total))


@api.route(
    "POST",
    "/api/v1/webhooks",
    summary="Add a webhook (active at once)",
    tag=TAG,
    status=201,
    body=WebhookCreate,
    response=Envelope[Webhook],
)
async def create_webhook(request: web.Request) -> web.Response:
    webhook = await create(service(request), await body_bytes(request), reached(request))
    return respond(Envelope(data=webhook), status=201)


async def create(qrm: QrmService, raw: bytes, reached: Address | None) -> Webhook:
    """The route once its HTTP is read: the body checked, then the webhook made (the port's too)."""
    return await qrm.create_webhook(decoded(raw, WebhookCreate, qrm.validation_context), reached)


@api.route(
    "GET",
    "/api/v1/webhooks/{webhook_id:[0-9]+}",
    summary="Read a webhook",
    tag=TAG,
    response=Envelope[Webhook],
    errors=(404,),
)
async def get_webhook(request: web.Request) -> web.Response:
    return respond(
        Envelope(
            data=await service(request).get_webhook(path_int(request, "webhook_id", "Webhook"))
        )
    )


@api.route(
    "PATCH",
    "/api/v1/webhooks/{webhook_id:[0-9]+}",
    summary="Change any fields; an omitted password keeps the stored one",
    tag=TAG,
    body=WebhookPatch,
    response=Envelope[Webhook],
    errors=(404,),
)
async def update_webhook(request: web.Request) -> web.Response:
    qrm = service(request)
    webhook_id = path_int(request, "webhook_id", "Webhook")
    patch = await parse_body(request, WebhookPatch, qrm.validation_context)
    return respond(Envelope(data=await qrm.update_webhook(webhook_id, patch, reached(request))))


@api.route(
    "DELETE",
    "/api/v1/webhooks/{webhook_id:[0-9]+}",
    summary="Remove a webhook; its delivery history stays",
    tag=TAG,
    status=204,
    errors=(404,),
)
async def delete_webhook(request: web.Request) -> web.Response:
    await service(request).delete_webhook(path_int(request, "webhook_id", "Webhook"))
    return web.Response(status=204)


@api.route(
    "POST",
    "/api/v1/webhooks/{webhook_id:[0-9]+}/activate",
    summary="Activate a webhook",
    tag=TAG,
    response=Envelope[Webhook],
    errors=(404,),
)
async def activate(request: web.Request) -> web.Response:
    webhook = await service(request).set_active(path_int(request, "webhook_id", "Webhook"), True)
    return respond(Envelope(data=webhook))


@api.route(
    "POST",
    "/api/v1/webhooks/{webhook_id:[0-9]+}/deactivate",
    summary="Deactivate a webhook; its pending retries are cancelled",
    tag=TAG,
    response=Envelope[Webhook],
    errors=(404,),
)
async def deactivate(request: web.Request) -> web.Response:
    webhook = await service(request).set_active(path_int(request, "webhook_id", "Webhook"), False)
    return respond(Envelope(data=webhook))


@api.route(
    "GET",
    "/api/v1/webhooks/{webhook_id:[0-9]+}/stats",
    summary="A webhook's delivery statistics from the journal (a removed webhook's too)",
    tag=TAG,
    query=StatsQuery,
    response=Envelope[WebhookStats],
    errors=(404,),
)
async def webhook_stats(request: web.Request) -> web.Response:
    webhook_id = path_int(request, "webhook_id", "Webhook")
    query = parse_query(request, StatsQuery)
    return respond(Envelope(data=await service(request).webhook_stats(webhook_id, query)))
