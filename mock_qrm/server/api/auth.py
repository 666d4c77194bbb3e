"""The API key: open on loopback by default; with a key, every API route needs it."""

from __future__ import annotations

from aiohttp import web

from mock_qrm.server.api.context import SERVICE
from mock_qrm.server.api.errors import Handler, error_response

PROTECTED = ("/api/v1/", "/_mock/")
OPEN = frozenset({"/api/v1/auth/login"})


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith(PROTECTED) and path not in OPEN:
        qrm = request.app[SERVICE]
        if not qrm.authorised(request.headers.get("apiKey"), request.headers.get("token")):
            return error_response(
                401, "Missing or wrong API key: send the apiKey header or a login token"
            )
    return await handler(request)
