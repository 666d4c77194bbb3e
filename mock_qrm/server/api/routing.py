"""Routes as data: each handler declares its body, query and response models, which
validate requests, serialise responses, and generate `/openapi.json`.
"""

from __future__ import annotations

import json
import re
import sys
import zlib
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.json_schema import models_json_schema

from mock_qrm.contract.catalog import EventCatalog
from mock_qrm.contract.models import EVENT_CODE
from mock_qrm.server.api.errors import BadRequest, error_response, field_errors
from mock_qrm.server.service import FieldErrors, NotFound

M = TypeVar("M", bound=BaseModel)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
"""Methods whose requests may carry a body, so may be refused one over the size limit."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_DEPTH = 64
"""Arrays and objects nested deeper are refused (400): no QRM body comes close, and the
parsers would otherwise give up at depths of their own (json by RecursionError, pydantic at 200)."""
CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
"""The Content-Encodings a body may arrive in besides identity, with their zlib `wbits`."""
_TOO_DEEP = f"Request body is nested too deeply: at most {MAX_DEPTH} levels of arrays and objects"
MAX_DIGITS = sys.get_int_max_str_digits() or 4300
"""A whole number in a body has at most this many digits (Python's int-string limit, 4,300):
no field takes one anywhere near it, and the parser refuses longer ones."""
_TOO_LONG_NUMBER = f"Request body is not valid JSON: a number has more than {MAX_DIGITS:,} digits"
_BODY: ContextVar[bytes | None] = ContextVar("body", default=None)
"""The body of the request being handled, read and decoded once by `_body_checked`."""
ID = "[0-9]+"
"""The route pattern of a numeric id in a path: anything else is no route (404), and `OPTIONS`
on a sibling route (`/webhook-deliveries/redeliver`) does not see the id route's methods."""
MAX_ID = 10**18 - 1
"""The largest id `path_int` reads: 18 digits."""
ID_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_PATH_PARAM = re.compile(r"{(\w+)(?::([^{}]+))?}")


@dataclass(frozen=True, slots=True)
class RouteDoc:
    method: str
    path: str
    summary: str
    tag: str
    status: int = 200
    body: type[BaseModel] | None = None
    body_optional: bool = False
    """The route also takes no body at all (an empty POST)."""
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    response_schema: dict[str, Any] | None = None
    """A schema by hand, for bodies that are QRM's documents rather than our models."""
    body_schema: dict[str, Any] | None = None
    """The request body's schema by hand, where `body` checks more than its model says."""
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Path parameter schemas; one routed as `{name:[0-9]+}` is an id, any other a string."""
    errors: tuple[int, ...] = ()
    content_type: str = "application/json"
    secured: bool = True


@dataclass
class Api:
    routes: web.RouteTableDef = field(default_factory=web.RouteTableDef)
    docs: list[RouteDoc] = field(default_factory=list)

    def route(self, method: str, path: str, **doc: Any) -> Callable[[Handler], Handler]:
        """`path` as aiohttp routes it; the document shows it without the patterns (`{id:[0-9]+}`)."""
        params = {
            name: ID_SCHEMA if pattern == ID else {"type": "string", "pattern": f"^{pattern}$"}
            for name, pattern in _PATH_PARAM.findall(path)
            if pattern
        }
        params.update(doc.pop("path_params", {}))
        documented = _PATH_PARAM.sub(r"{\1}", path)

        def register(handler: Handler) -> Handler:
            self.docs.append(RouteDoc(method=method, path=documented, path_params=params, **doc))
            self.routes.route(method, path)(_body_checked(handler))
            return handler

        return register


def _body_checked(handler: Handler) -> Handler:
    """Every route refuses a body over the limit or in a coding it cannot read, used or not.

    aiohttp enforces `client_max_size` only when the body is read; a route that
    ignores its body (activate, redeliver) would otherwise act on a 100 MiB POST.
    Bodies are decoded here, not by aiohttp (the app sets `auto_decompress=False`),
    which answers a coding it cannot decode (`br`) in plain text, before any middleware.
    """

    async def checked(request: web.Request) -> web.StreamResponse:
        coding = _content_coding(request)
        if coding is not None and coding not in CODINGS:
            return error_response(
                415,
                f"Content-Encoding {coding!r} is not supported: send the body as identity,"
                " gzip or deflate",
            )
        size = request.content_length
        if size is not None and size > request.client_max_size:
            raise web.HTTPRequestEntityTooLarge(max_size=request.client_max_size, actual_size=size)
        if not request.body_exists:
            return await handler(request)
        raw = await request.read()  # a chunked body has no length to check: reading enforces it
        token = _BODY.set(_decoded(raw, coding, request.client_max_size) if coding else raw)
        try:
            return await handler(request)
        finally:
            _BODY.reset(token)

    return checked


def _content_coding(request: web.Request) -> str | None:
    """The body's Content-Encoding, lowercased, less `identity`; `None` when nothing is left.

    Several codings come back as one string (`gzip, br`), which is not one of `CODINGS`.
    """
    named = ",".join(request.headers.getall("Content-Encoding", ())).lower()
    codings = [c for c in (part.strip() for part in named.split(",")) if c not in ("", "identity")]
    return ", ".join(codings) or None


def _decoded(raw: bytes, coding: str, limit: int) -> bytes:
    """`raw` inflated, but never past `limit` (413): a small body must not expand to gigabytes."""
    if not raw:
        return raw
    wbits = CODINGS[coding]
    if coding == "deflate" and raw[0] & 0x0F != 8:
        wbits = -zlib.MAX_WBITS  # raw deflate without the zlib header, as some clients send it
    inflater = zlib.decompressobj(wbits)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"Request body could not be decoded as {coding}: {exc}") from None
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    if not inflater.eof or inflater.unused_data:
        raise BadRequest(
            f"Request body could not be decoded as {coding}: it is cut short or has data after"
            " its end"
        )
    return body


async def body_bytes(request: web.Request) -> bytes:
    """The request's body as sent, decoded from its Content-Encoding (read once)."""
    body = _BODY.get()
    return body if body is not None else await request.read()


async def read_json(request: web.Request) -> Any:
    return json_body(await body_bytes(request))


def json_body(raw: bytes) -> Any:
    """A request body's JSON, or why it is not (400): empty, malformed, nested too deep, or
    holding a number too long to read.

    The one place a client's JSON is parsed: whatever the parser raises is a 400.
    """
    if not raw:
        raise BadRequest("Request body is empty; send a JSON object")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise BadRequest(_TOO_DEEP) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from None
    except ValueError:  # Python's int-string limit (a 5,000-digit number), or any other
        raise BadRequest(_TOO_LONG_NUMBER) from None
    if _deeper_than(data, MAX_DEPTH):
        raise BadRequest(_TOO_DEEP)
    return data


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` deep in a parsed JSON value."""
    pending = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


async def parse_body(
    request: web.Request, model: type[M], context: dict[str, Any] | None = None
) -> M:
    return decoded(await body_bytes(request), model, context)


def decoded(raw: bytes, model: type[M], context: dict[str, Any] | None = None) -> M:
    """A request body as `model`, or why not: 400 (empty, not JSON, nested too deep), 422.

    Every route reads its body through here, and so does the server's in-process port.
    """
    return body_model(json_body(raw), raw, model, context)


def body_model(data: Any, raw: bytes, model: type[M], context: dict[str, Any] | None = None) -> M:
    """A request body (`raw`, and `data` decoded from it) as `model`, or why not (422)."""
    if not isinstance(data, dict):
        raise FieldErrors({"body": ["Request body must be a JSON object"]})
    # Strict JSON semantics: "5" is not a number and 1 is not a boolean. But 10666.0 is the
    # number 10666, an integer to JSON Schema (and to a JavaScript client, which cannot tell).
    if _has_integral_float(data):
        raw = json.dumps(_integral_floats_as_ints(data)).encode()
    return model.model_validate_json(raw, strict=True, context=context)


def _has_integral_float(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and item.is_integer():
            return True
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _integral_floats_as_ints(value: Any) -> Any:
    """`value` with every float that is a whole number (`2.0`, `1e3`) as an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    return value


def parse_query(request: web.Request, model: type[M], context: dict[str, Any] | None = None) -> M:
    query = dict(request.query)
    # Pydantic would also read `1.0`, ` 5` and `5_0` as integers; the document says digits.
    given = [name for name in _integer_params(model) if name in query]
    errors = {name: ["must be a whole number in digits"] for name in given if not _INT(query[name])}
    if errors:
        raise FieldErrors(errors)
    try:
        return model.model_validate(query, context=context)
    except ValidationError as exc:
        raise FieldErrors(field_errors(exc)) from None


_INT = re.compile(r"-?[0-9]+").fullmatch


@cache
def _integer_params(model: type[BaseModel]) -> frozenset[str]:
    """The query parameters `model` documents as integers."""
    properties = model.model_json_schema(by_alias=True).get("properties", {})
    return frozenset(
        name
        for name, prop in properties.items()
        if "integer"
        in {prop.get("type"), *(option.get("type") for option in prop.get("anyOf", []))}
    )


def path_int(request: web.Request, name: str, what: str) -> int:
    """A numeric id from the path; anything that cannot be one is an unknown id (404)."""
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise NotFound(what, raw)
    return int(raw)


def reached(request: web.Request) -> tuple[str, int] | None:
    """The address and port this request reached the server on."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname or len(sockname) < 2:
        return None
    return str(sockname[0]), int(sockname[1])


def respond(model: BaseModel | Any, status: int = 200) -> web.Response:
    if isinstance(model, BaseModel):
        text = model.model_dump_json(by_alias=True)
    else:
        text = json.dumps(model, separators=(",", ":"))
    return web.Response(text=text, status=status, content_type="application/json")


def respond_list(items: list[Any], item_type: Any) -> web.Response:
    adapter: TypeAdapter[Any] = TypeAdapter(list[item_type])
    return web.Response(
        body=b'{"data":' + adapter.dump_json(items, by_alias=True) + b"}",
        content_type="application/json",
    )


# --- OpenAPI -------------------------------------------------------------------


def openapi_document(
    docs: list[RouteDoc],
    extra_models: dict[str, type[BaseModel]],
    event_codes: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `docs`; `event_codes` (the catalog's by default) are the
    `EventCode` enum that request bodies name events by."""
    models: list[tuple[type[BaseModel], Any]] = []
    for doc in docs:
        if doc.body is not None:
            models.append((doc.body, "validation"))
        if doc.response is not None:
            models.append((doc.response, "serialization"))
    models.extend((m, "serialization") for m in extra_models.values())
    from mock_qrm.contract.models import ApiError

    models.append((ApiError, "serialization"))
    keys, defs = models_json_schema(
        list(dict.fromkeys(models)), by_alias=True, ref_template="#/components/schemas/{model}"
    )
    schemas = defs.get("$defs", {})
    codes = sorted(EventCatalog.load().codes if event_codes is None else event_codes)
    schemas["EventCode"] = {
        "type": "string",
        "enum": codes,
        "description": "A code of the event catalog (`GET /api/v1/webhook-events`)",
    }

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return dict(keys[(model, mode)])  # type: ignore[index]

    paths: dict[str, dict[str, Any]] = {}
    for doc in docs:
        operation: dict[str, Any] = {
            "summary": doc.summary,
            "tags": [doc.tag],
            "operationId": _operation_id(doc),
            "responses": {},
        }
        if not doc.secured:
            operation["security"] = []
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": doc.path_params.get(name, {"type": "string"}),
            }
            for name in re.findall(r"{(\w+)}", doc.path)
        ]
        if doc.query is not None:
            query_schema = doc.query.model_json_schema(by_alias=True)
            for name, prop in query_schema.get("properties", {}).items():
                prop.pop("title", None)
                parameters.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": False,
                        "schema": _inline(prop, query_schema),
                    }
                )
        if parameters:
            operation["parameters"] = parameters
        if doc.body is not None:
            body = doc.body_schema or ref(doc.body, "validation")
            operation["requestBody"] = {
                "required": not doc.body_optional,
                "content": {"application/json": {"schema": body}},
            }
        success: dict[str, Any] = {"description": "OK" if doc.status != 201 else "Created"}
        if doc.status != 204:
            schema = doc.response_schema or (
                ref(doc.response, "serialization") if doc.response else {}
            )
            success["content"] = {doc.content_type: {"schema": schema}}
        operation["responses"][str(doc.status)] = success
        error_ref = {"$ref": "#/components/schemas/ApiError"}
        statuses = set(doc.errors)
        if doc.body is not None:
            statuses |= {400, 422}
        if doc.method in BODY_METHODS:
            statuses |= {413, 415}
        if doc.query is not None:
            statuses.add(422)
        if doc.secured:
            statuses.add(401)
        for status in sorted(statuses):
            operation["responses"][str(status)] = {
                "description": _DESCRIPTIONS.get(status, "Error"),
                "content": {"application/json": {"schema": error_ref}},
            }
        paths.setdefault(doc.path, {})[doc.method.lower()] = operation

    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "mock-qrm",
            "version": "1.0",
            "description": "A local stand-in for Inspectorio QRM's reports API and webhooks.",
        },
        "paths": paths,
        "webhooks": {
            "qrmEvent": {
                "post": {
                    "summary": "What QRM POSTs to a webhook's URL for each event",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/WebhookMessage"}
                            }
                        },
                    },
                    "responses": {"200": {"description": "Exactly 200 acknowledges the message"}},
                }
            }
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "apiKey"}},
        },
        "security": [{"ApiKeyAuth": []}],
    }
    result: dict[str, Any] = _catalog_refs(document)
    return result


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or wrong API key or token",
    404: "Not found",
    409: "Not possible in the server's current mode",
    413: "Body larger than 1 MiB",
    415: "Content-Encoding other than identity, gzip or deflate",
    422: "Validation error, with `errors` keyed by field path",
}


def _operation_id(doc: RouteDoc) -> str:
    words = re.sub(r"[{}]", "", doc.path).replace("/api/v1/", "").replace("/_mock/", "mock/")
    return doc.method.lower() + "_" + re.sub(r"[^a-zA-Z0-9]+", "_", words).strip("_")


def _catalog_refs(node: Any) -> Any:
    """`node` with each schema the models marked `EVENT_CODE` a reference to the `EventCode` enum."""
    if isinstance(node, dict):
        if all(node.get(key) == value for key, value in EVENT_CODE.items()):
            return {"$ref": "#/components/schemas/EventCode"}
        return {key: _catalog_refs(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_catalog_refs(item) for item in node]
    return node


def _inline(prop: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Query parameter schemas with their local `$defs` (enums) inlined."""
    text = json.dumps(prop)
    for name, definition in schema.get("$defs", {}).items():
        text = text.replace(json.dumps({"$ref": f"#/$defs/{name}"}), json.dumps(definition))
    result: dict[str, Any] = json.loads(text)
    return result
