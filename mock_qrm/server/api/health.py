"""Liveness (never behind the API key) and the OpenAPI document."""

from __future__ import annotations

from functools import cache
from typing import Any

from aiohttp import web

from mock_qrm.contract.models import FeedFrame, Health, WebhookMessage
from mock_qrm.server.api.context import api, service
from mock_qrm.server.api.routing import openapi_document, respond

TAG = "Health"


@api.route(
    "GET",
    "/healthz",
    summary="Liveness: dispatcher alive, queue depth, oldest overdue attempt",
    tag=TAG,
    response=Health,
    secured=False,
    errors=(503,),
)
async def healthz(request: web.Request) -> web.Response:
    health = await service(request).checked_health()
    return respond(health, status=503 if health.unavailable else 200)


@api.route(
    "GET",
    "/openapi.json",
    summary="This document",
    tag=TAG,
    secured=False,
    response_schema={"type": "object"},
)
async def openapi(request: web.Request) -> web.Response:
    return respond(_document())


@cache
def _document() -> dict[str, Any]:
    return openapi_document(api.docs, {"WebhookMessage": WebhookMessage, "FeedFrame": FeedFrame})
