"""What handlers reach through the application: the service and the route registry."""

from __future__ import annotations

from aiohttp import web

from mock_qrm.server.api.routing import Api
from mock_qrm.server.service import QrmService

SERVICE = web.AppKey("service", QrmService)

api = Api()
"""Every route of the server, registered by the handler modules at import."""


def service(request: web.Request) -> QrmService:
    return request.app[SERVICE]
