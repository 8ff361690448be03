"""The HTTP/JSON gateway (aiohttp): routes from the contract, the same servicers as gRPC.

A request is bound to the RPC's request message from the path (``{name=providers/*}``), the
query string (``?as_of.year=2025&page_size=10``, dotted field paths, repeated fields by
repeating the key) and, for ``body: "*"``, the JSON body, all in the proto JSON mapping. The
servicer runs with a context whose ``abort_with_status`` raises, so its ``google.rpc.Status``
becomes the AIP-193 JSON error body with the matching HTTP status. Server-streaming RPCs
answer newline-delimited JSON, one ``{"result": ...}`` (or a final ``{"error": ...}``) per
line; the client-streaming ``ImportGraph`` takes a JSON array of its request messages.

Query conveniences beyond the dotted paths: a ``google.type.Date`` as one ISO date
(``?as_of=2025-03-01``) and enum values by their short name (``?format=csv``). A report is
downloadable as a plain file (``GET /v1/reports:download?...`` or ``alt=media`` on
``POST /v1/reports:generate``). Host, CORS, gzip and 401 challenges: http_policy.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import grpc
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from sovrisk.models.errors import FieldViolation
from sovrisk.service import errors, metrics, tracing
from sovrisk.service.auth import TokenAuthenticator
from sovrisk.service.gateway import docs_ui
from sovrisk.service.gateway.http_policy import (
    HttpPolicy,
    add_challenge,
    add_cors_headers,
    is_preflight,
    maybe_gzip,
    preflight_response,
)
from sovrisk.service.gateway.openapi import DATE, enum_aliases, message_of, openapi_document
from sovrisk.service.gateway.routes import MEDIA_ROUTES, Route, routes_of
from sovrisk.service.interceptors import caller_principal, read_token_refusal
from sovrisk.service.request_context import owner_of, set_request_owner
from sovrisk.service.response_cache import Encoded, ResponseCache, accept_encoded

log = logging.getLogger("sovrisk.gateway")

#: google.rpc.Code -> HTTP status (the mapping of google/rpc/code.proto).
HTTP_STATUS: dict[int, int] = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}
NDJSON = "application/x-ndjson"
#: A stream's headers go out after this many seconds without a first message, and a blank
#: keep-alive line after this many seconds of silence.
HEADERS_AFTER = 1.0
KEEPALIVE_SECONDS = 15.0
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
#: Characters kept in a download's file name (it goes into a quoted header parameter).
_UNSAFE_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_KEEP_DETAILS = (
    error_details_pb2.BadRequest,
    error_details_pb2.ErrorInfo,
    error_details_pb2.ResourceInfo,
)
# The detail types must be in the default pool for MessageToDict(Any); importing them does it.
assert _KEEP_DETAILS


class ClientGone(Exception):
    """The client closed the connection while a stream was being written."""


class GatewayAbort(grpc.aio.AbortError):  # type: ignore[misc]
    """A servicer aborted: carries the ``google.rpc.Status`` it aborted with (an AbortError,
    as gRPC's own abort is, so the servicers' error mapping lets it pass)."""

    def __init__(self, status: status_pb2.Status) -> None:
        self.status = status
        super().__init__(status.message)


def _rich(status: grpc.Status) -> status_pb2.Status:
    for key, value in status.trailing_metadata or ():
        if key == rpc_status.GRPC_DETAILS_METADATA_KEY:
            return status_pb2.Status.FromString(value)
    return status_pb2.Status(code=status.code.value[0], message=status.details or "")


class GatewayContext:
    """What the servicers use of ``grpc.aio.ServicerContext``: metadata and abort."""

    def __init__(self, metadata: Sequence[tuple[str, str]]) -> None:
        self._metadata = tuple(metadata)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    async def abort_with_status(self, status: grpc.Status) -> None:
        raise GatewayAbort(_rich(status))

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise GatewayAbort(status_pb2.Status(code=code.value[0], message=details))


def _log_path(request: web.BaseRequest) -> str:
    """The path as it was sent (percent-encoded, so a ``%0A`` cannot forge a log line), cut
    to 200 characters."""
    return request.raw_path[:200]


def error_body(status: status_pb2.Status) -> dict[str, Any]:
    """The AIP-193 JSON error: ``{"error": {code, message, status, details}}``."""
    return {
        "error": {
            "code": HTTP_STATUS.get(status.code, 500),
            "message": status.message,
            "status": code_pb2.Code.Name(status.code),
            "details": [json_format.MessageToDict(d) for d in status.details],
        }
    }


def _error_response(status: status_pb2.Status) -> web.Response:
    return web.json_response(error_body(status), status=HTTP_STATUS.get(status.code, 500))


def _bad_request(field: str, value: str, why: str) -> GatewayAbort:
    return GatewayAbort(_rich(errors.invalid_argument([FieldViolation(field, value, why)])))


#: Base64 as proto3 JSON writes bytes: the standard or the URL-safe alphabet, padded or not.
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def _check_bytes(descriptor: Any, value: Mapping[str, Any], path: str) -> None:
    """Refuse a ``bytes`` field that is not base64: protobuf's JSON parser decodes leniently
    (``"!!!"`` became empty bytes, an import chunk silently lost its data)."""
    for key, item in value.items():
        field = _field(descriptor, key)
        if field is None or item is None:
            continue  # unknown fields: the parser names them
        where = f"{path}.{field.name}"
        items = item if field.is_repeated and isinstance(item, list) else [item]
        for element in items:
            if field.type == field.TYPE_BYTES and isinstance(element, str):
                body = element.rstrip("=")
                if not _BASE64.fullmatch(element) or len(body) % 4 == 1:
                    raise _bad_request(where, element[:100], "is not base64")
            elif field.type == field.TYPE_MESSAGE and isinstance(element, dict):
                _check_bytes(field.message_type, element, where)


def _field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    by_name = descriptor.fields_by_name.get(name)
    if by_name is not None:
        return by_name
    return next((f for f in descriptor.fields if f.json_name == name), None)


def _query_tree(descriptor: Descriptor, query: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """``{"as_of.year": ["2025"]}`` -> ``{"as_of": {"year": "2025"}}`` checked against the
    request message (unknown fields, a non-repeated field given twice, bad booleans)."""
    tree: dict[str, Any] = {}
    for key, values in query.items():
        node: dict[str, Any] = tree
        target: Descriptor = descriptor
        parts = key.split(".")
        for depth, part in enumerate(parts):
            field = _field(target, part)
            if field is None:
                raise _bad_request(key, values[0], "unknown query parameter")
            last = depth == len(parts) - 1
            if not last:
                if field.type != FieldDescriptor.TYPE_MESSAGE or _is_repeated(field):
                    raise _bad_request(key, values[0], f"'{part}' has no sub-fields")
                node = node.setdefault(field.name, {})
                target = message_of(field)
                continue
            if field.type == FieldDescriptor.TYPE_MESSAGE and message_of(field).full_name == DATE:
                if any(k.startswith(key + ".") for k in query):
                    raise _bad_request(key, values[0], "give the date or its fields, not both")
                if len(values) > 1:
                    raise _bad_request(key, ",".join(values), "is not repeated: give it once")
                node[field.name] = _date(key, values[0])
                continue
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                raise _bad_request(key, values[0], "give the message's fields (dotted paths)")
            converted = [_scalar(field, key, v) for v in values]
            if _is_repeated(field):
                node[field.name] = converted
            elif len(converted) > 1:
                raise _bad_request(key, ",".join(values), "is not repeated: give it once")
            else:
                node[field.name] = converted[0]
    return tree


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _date(key: str, value: str) -> dict[str, int]:
    """``2025-03-01`` as google.type.Date's JSON (only the full ISO form: a partial date is
    given by its dotted fields)."""
    try:
        if not _ISO_DATE.match(value):
            raise ValueError(value)
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise _bad_request(key, value, "must be an ISO date (YYYY-MM-DD)") from None
    return {"year": day.year, "month": day.month, "day": day.day}


def _scalar(field: FieldDescriptor, key: str, value: str) -> Any:
    if field.type == FieldDescriptor.TYPE_BOOL:
        if value not in ("true", "false"):
            raise _bad_request(key, value, "must be true or false")
        return value == "true"
    if field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        return enum_aliases(field.enum_type).get(value, value)
    return value  # proto JSON accepts numbers and enum names as strings


def _set_dotted(tree: dict[str, Any], dotted: str, value: str) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[last] = value


class Gateway:
    """Routes HTTP requests to servicer methods (``{service full name: servicer}``)."""

    def __init__(
        self,
        servicers: Mapping[str, object],
        routes: Sequence[Route],
        auth: TokenAuthenticator | None = None,
    ) -> None:
        self.servicers = servicers
        self.routes = routes
        self.auth = auth  # names the caller in the log and for per-caller limits

    def _cached_json(self, route: Route, response: Encoded) -> bytes:
        responses: ResponseCache = self.servicers[route.service].responses  # type: ignore[attr-defined]
        output = cast(type[Message], _message_class(route.method.output_type))

        def build() -> bytes:
            as_dict = json_format.MessageToDict(output.FromString(response.data))
            return json.dumps(as_dict).encode()

        return responses.json(response.key, build)

    def match(self, verb: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.verb != verb:
                continue
            m = route.pattern.match(path)
            if m is not None:
                values = {route.path_fields[int(k[1:])]: v for k, v in m.groupdict().items()}
                return route, values
        return None

    async def _request(
        self, route: Route, path_values: Mapping[str, str], request: web.Request
    ) -> Message | list[Message]:
        cls = cast(type[Message], _message_class(route.method.input_type))
        body = await request.read() if route.body else b""
        if route.client_streaming:
            try:
                items = json.loads(body or b"[]")
            except (ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
                raise _bad_request("body", "", f"is not JSON: {str(exc)[:200]}") from None
            if not isinstance(items, list):
                raise _bad_request("body", "", "must be a JSON array of request messages")
            out: list[Message] = []
            for k, item in enumerate(items):
                if not isinstance(item, dict):
                    raise _bad_request(f"body[{k}]", str(item)[:100], "must be a JSON object")
                _check_bytes(cls.DESCRIPTOR, item, f"body[{k}]")
                try:
                    out.append(json_format.ParseDict(item, cls()))
                except (json_format.ParseError, RecursionError) as exc:
                    raise _bad_request(f"body[{k}]", "", str(exc)[:300]) from None
            return out
        message = cls()
        if body:
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
                raise _bad_request("body", "", f"is not JSON: {str(exc)[:200]}") from None
            if not isinstance(parsed, dict):
                raise _bad_request("body", str(parsed)[:100], "must be a JSON object")
            _check_bytes(message.DESCRIPTOR, parsed, "body")
            try:
                json_format.ParseDict(parsed, message)
            except (json_format.ParseError, RecursionError) as exc:
                raise _bad_request("body", "", str(exc)[:300]) from None
        query = {k: request.query.getall(k) for k in request.query if not _is_alt(route, k)}
        tree = _query_tree(route.method.input_type, query) if query else {}
        for dotted, value in path_values.items():
            _set_dotted(tree, dotted, value)
        if tree:
            try:
                json_format.ParseDict(tree, message)
            except json_format.ParseError as exc:
                raise _bad_request("query", request.query_string, str(exc)) from exc
        return message

    async def _download(self, items: AsyncIterator[Message]) -> web.Response:
        """The stream's last ``report`` as the response body: a plain file download."""
        report: Any = None
        async for item in items:
            if item.HasField("report"):
                report = item.report  # type: ignore[attr-defined]
        if report is None:
            raise GatewayAbort(
                status_pb2.Status(code=code_pb2.INTERNAL, message="the stream ended without a file")
            )
        name = _UNSAFE_FILE_NAME.sub("_", report.file_name) or "download"
        headers = {
            "Content-Type": report.content_type or "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{name}"',
        }
        return web.Response(body=report.content, headers=headers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        found = self.match(request.method, request.path)
        if found is None:
            status = status_pb2.Status(
                code=code_pb2.NOT_FOUND,
                message=f"no route for {request.method} {errors.clip(request.path)}",
            )
            return _error_response(status)
        route, path_values = found
        metadata = [("authorization", v) for v in request.headers.getall("Authorization", [])]
        context = cast(Any, GatewayContext(metadata))
        method = getattr(self.servicers[route.service], route.method.name)
        principal = caller_principal(self.auth, metadata)
        set_request_owner(owner_of(principal, request.remote or ""))
        accept_encoded()  # a cached response comes back as bytes: its JSON is cached too
        code = "OK"
        metrics.IN_FLIGHT.labels("http").inc()
        try:
            message = await self._request(route, path_values, request)
            if _wants_media(route, request):
                assert isinstance(message, Message)
                return await self._download(method(message, context))
            if route.server_streaming:
                return await self._stream(request, method(message, context))
            if route.client_streaming:
                assert isinstance(message, list)
                response = await method(_aiter(message), context)
            else:
                response = await method(message, context)
            if isinstance(response, Encoded):  # a cached response: its JSON is cached too
                return web.Response(
                    body=self._cached_json(route, response), content_type="application/json"
                )
            return web.json_response(json_format.MessageToDict(response))
        except GatewayAbort as exc:
            code = code_pb2.Code.Name(exc.status.code)
            return _error_response(exc.status)
        except ClientGone:
            code = "CANCELLED"
            return web.Response(status=499)  # never sent: the connection is gone
        except web.HTTPException as exc:  # aiohttp's own (body over the limit: 413): JSON
            code = str(exc.status)
            raise
        except Exception:
            code = "INTERNAL"
            log.exception("gateway %s %s failed", request.method, _log_path(request))
            return _error_response(
                status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")
            )
        finally:
            seconds = time.perf_counter() - started
            rpc_method = f"/{route.service}/{route.method.name}"
            tracing.name_http_span(request.method, route.template, rpc_method, code)
            log.info(
                "http %s %s rpc=%s principal=%s code=%s ms=%.1f",
                request.method,
                _log_path(request),
                route.method.name,
                principal or "-",
                code,
                1000 * seconds,
                extra={
                    "transport": "http",
                    "principal": principal or "-",
                    "method": f"/{route.service}/{route.method.name}",
                    "code": code,
                    "ms": round(1000 * seconds, 1),
                    "path": _log_path(request),
                },
            )
            # the gRPC label of the same method, so one query covers both transports
            metrics.record_request("http", f"/{route.service}/{route.method.name}", code, seconds)
            metrics.IN_FLIGHT.labels("http").dec()

    async def _stream(
        self, request: web.Request, items: AsyncIterator[Message]
    ) -> web.StreamResponse:
        """NDJSON, one ``{"result": ...}`` per message. A request the servicer rejects at once
        gets a plain error response; otherwise the headers go out within HEADERS_AFTER
        seconds even if no message has come yet (a watch may wait hours for one), and a blank
        keep-alive line every KEEPALIVE_SECONDS of silence, so proxies and clients can tell
        a quiet stream from a dead one."""
        response: web.StreamResponse | None = None
        iterator = aiter(items)
        pending: asyncio.Future[Message] | None = None

        async def prepared() -> web.StreamResponse:
            nonlocal response
            if response is None:
                response = web.StreamResponse(headers={"Content-Type": NDJSON})
                await response.prepare(request)
            return response

        try:
            wait = HEADERS_AFTER
            while True:
                pending = pending or asyncio.ensure_future(anext(iterator))
                done, _ = await asyncio.wait({pending}, timeout=wait)
                if not done:  # quiet: the headers now, later a keep-alive line
                    if response is None:
                        await prepared()
                    else:
                        await response.write(b"\n")
                    wait = KEEPALIVE_SECONDS
                    continue
                finished, pending = pending, None
                try:
                    item = finished.result()
                except StopAsyncIteration:
                    break
                line = json.dumps({"result": json_format.MessageToDict(item)})
                await (await prepared()).write(line.encode() + b"\n")
                wait = KEEPALIVE_SECONDS
        except GatewayAbort as exc:
            if response is None:  # nothing sent yet: a plain error response
                raise
            await response.write(json.dumps(error_body(exc.status)).encode() + b"\n")
        except ConnectionError:  # the client went away: nobody to answer, nothing to log
            raise ClientGone from None
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
            # Closing the servicer's generator stops the work behind the stream (a simulation
            # checks should_stop between batches; a watch unsubscribes) instead of running on
            # for nobody.
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()
        await (await prepared()).write_eof()
        assert response is not None
        return response


def _is_alt(route: Route, key: str) -> bool:
    """``alt`` is the gateway's, not a request field, on routes that can answer a file."""
    return key == "alt" and route.method.full_name in MEDIA_ROUTES


def _wants_media(route: Route, request: web.Request) -> bool:
    if route.media:
        return True
    if route.method.full_name not in MEDIA_ROUTES or "alt" not in request.query:
        return False
    alt = request.query.getall("alt")
    if alt not in (["json"], ["media"]):
        raise _bad_request("alt", ",".join(alt), "must be json or media")
    return alt == ["media"]


async def _aiter(items: Sequence[Message]) -> AsyncIterator[Message]:
    for item in items:
        yield item


def _message_class(descriptor: Descriptor) -> type:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own refusals (no route, wrong method, body too large) as AIP-193 JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {
            404: code_pb2.NOT_FOUND,
            405: code_pb2.UNIMPLEMENTED,
            413: code_pb2.RESOURCE_EXHAUSTED,
        }.get(exc.status, code_pb2.INVALID_ARGUMENT if exc.status < 500 else code_pb2.INTERNAL)
        body = error_body(status_pb2.Status(code=code, message=exc.reason))
        body["error"]["code"] = exc.status  # the HTTP status this answer really has
        return web.json_response(body, status=exc.status)


#: Methods a browser may send cross-origin without consequence (they change nothing here).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _same_or_allowed(policy: HttpPolicy, request: web.Request) -> bool:
    """No Origin (not a browser's cross-origin request), the gateway's own origin (its
    /docs page), or an allowed one."""
    origin = request.headers.get("Origin")
    if origin is None or policy.origin_allowed(origin):
        return True
    own = f"{request.scheme}://{request.headers.get('Host', '')}".lower()
    return origin.strip().rstrip("/").lower() == own


def _policy_middlewares(policy: HttpPolicy) -> list[Any]:
    """Outermost first: the Host check, then CORS preflights, then gzip of the final body."""

    @web.middleware
    async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if not policy.host_allowed(host):
            # Refused before any routing: a rebinding page must learn nothing from the API.
            error = _bad_request("Host", host or "", "is not a name this gateway answers to")
            response = _error_response(error.status)
            response.set_status(400, "Host not allowed")
            return response
        return await handler(request)

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_preflight(request):
            origin = request.headers.get("Origin")
            if request.method not in SAFE_METHODS and not _same_or_allowed(policy, request):
                # A "simple" cross-origin POST (text/plain, a form) is sent without a
                # preflight: CORS would only hide the answer, after the work was done.
                status = status_pb2.Status(
                    code=code_pb2.PERMISSION_DENIED,
                    message=f"cross-origin requests from {origin!r} are not allowed",
                )
                return _error_response(status)
            return await handler(request)
        origin = request.headers["Origin"]
        if policy.origin_allowed(origin):
            return preflight_response(request)
        status = status_pb2.Status(
            code=code_pb2.PERMISSION_DENIED,
            message=f"cross-origin requests from {origin!r} are not allowed",
        )
        return _error_response(status)

    @web.middleware
    async def gzip(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        maybe_gzip(request, response)
        return response

    return [check_host, preflight, gzip]


def _read_token_middleware(auth: TokenAuthenticator) -> Any:
    """``--require-read-token``: every ``/v1/`` route needs a valid bearer token of any role
    (401 with the AIP-193 body; ``add_challenge`` adds ``WWW-Authenticate: Bearer``). Runs
    after the Host and CORS checks, so an allowed preflight (which carries no credentials)
    is still answered; /healthz, /openapi.json and /docs stay open."""

    @web.middleware
    async def read_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        metadata = [("authorization", v) for v in request.headers.getall("Authorization", [])]
        refusal = read_token_refusal(auth, metadata)
        if refusal is None:
            return await handler(request)
        status = _rich(refusal)
        log.info(  # the token (if any) is never logged
            "http %s %s code=%s",
            request.method,
            _log_path(request),
            code_pb2.Code.Name(status.code),
            extra={
                "transport": "http",
                "code": code_pb2.Code.Name(status.code),
                "path": _log_path(request),
            },
        )
        return _error_response(status)

    return read_token


def build_app(
    servicers: Mapping[str, object],
    services: Sequence[Any],
    *,
    cors_origins: Sequence[str] = (),
    allowed_hosts: Sequence[str] | None = None,
    read_auth: TokenAuthenticator | None = None,
    auth: TokenAuthenticator | None = None,
) -> web.Application:
    """The aiohttp application: the API routes, ``/openapi.json``, ``/docs`` and ``/healthz``.

    ``cors_origins``: browser origins (``https://app.example``, ``*`` for any) that may call
    the API; none (the default) sends no CORS headers and refuses preflights.
    ``allowed_hosts``: the Host names answered (any port; ``*`` for any); None answers any
    (``start_gateway`` narrows it to loopback names when bound to loopback).
    ``read_auth``: require a valid bearer token of any role on every API route.
    ``auth``: names each request's principal in the log and for per-caller limits.
    """
    routes = routes_of(services)
    gateway = Gateway(servicers, routes, auth)
    document = openapi_document(routes)
    policy = HttpPolicy.of(cors_origins, allowed_hosts)
    app = web.Application(
        client_max_size=64 * 1024 * 1024,
        middlewares=[
            *_policy_middlewares(policy),
            *([_read_token_middleware(read_auth)] if read_auth is not None else []),
            _json_errors,
        ],
    )

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        add_cors_headers(policy, request, response)
        add_challenge(request, response)

    app.on_response_prepare.append(on_prepare)

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(document)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "SERVING"})

    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    docs_ui.add_routes(app)
    app.router.add_route("*", r"/v1/{tail:[\s\S]*}", gateway.handle)
    return app
