"""Server interceptors: one structured log line and the request metrics per RPC; bearer
tokens for reads (``--require-read-token``)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import Any

import grpc
from grpc.aio import ServerInterceptor

from sovrisk.service import errors, metrics, tracing
from sovrisk.service.auth import AuthError, TokenAuthenticator, TokensUnavailable, Unauthenticated
from sovrisk.service.request_context import owner_of, set_request_owner
from sovrisk.service.response_cache import accept_encoded, passthrough_serializer

log = logging.getLogger("sovrisk.requests")


def caller_principal(
    auth: TokenAuthenticator | None, metadata: Sequence[tuple[str, str | bytes]] | None
) -> str | None:
    """The principal of the request's bearer token, or None (no token, an unknown one, or an
    unreadable token file): who to name in the log and count heavy jobs against. Never the
    token itself."""
    if auth is None:
        return None
    try:
        return auth.authenticate(metadata).name
    except AuthError:
        return None


def _log(call: _Call, context: grpc.aio.ServicerContext, outcome: BaseException | None) -> None:
    # A call that was cancelled (the client went away, the server is stopping) may already be
    # freed by gRPC: touching its context then crashes the process (seen as a segfault in
    # context.peer()/code() when a cancelled stream's generator is closed). So the peer is read
    # when the call starts, and a cancelled call's context is not read at all.
    number: int | None = None
    if isinstance(outcome, (GeneratorExit, asyncio.CancelledError)):
        name, number = "CANCELLED", grpc.StatusCode.CANCELLED.value[0]
    else:
        code = context.code() if hasattr(context, "code") else None
        if code is not None and code != grpc.StatusCode.OK:
            name, number = code.name, code.value[0]
        else:
            name = "ERROR" if outcome is not None else "OK"
    tracing.record_rpc_code(name, number)  # on the request's span (tracing on), before the log
    seconds = time.perf_counter() - call.start
    principal = call.principal or "-"
    fields = {
        "transport": "grpc",
        "method": call.method,
        "code": name,
        "ms": round(1000 * seconds, 1),
        "principal": principal,
    }
    log.info(
        "rpc method=%s peer=%s principal=%s code=%s ms=%.1f",
        call.method,
        call.peer,
        principal,
        name,
        1000 * seconds,
        extra={**fields, "peer": call.peer},
    )
    metrics.record_request("grpc", call.method, name, seconds)
    metrics.IN_FLIGHT.labels("grpc").dec()


class _Call:
    """One call's identity, read when it starts (see :func:`_log` for why)."""

    def __init__(
        self, method: str, context: grpc.aio.ServicerContext, auth: TokenAuthenticator | None
    ) -> None:
        self.method = method
        self.start = time.perf_counter()
        self.peer = context.peer()
        self.principal = caller_principal(auth, context.invocation_metadata())
        # Heavy jobs are counted per caller (registry.MAX_HEAVY_JOBS_PER_CALLER): this task's
        # context carries the caller down to the registry.
        set_request_owner(owner_of(self.principal, self.peer))
        accept_encoded()  # our serializers pass cached response bytes through
        metrics.IN_FLIGHT.labels("grpc").inc()


class RequestLoggingInterceptor(ServerInterceptor):  # type: ignore[misc]
    """One log line per call (method, peer, principal, code, latency), the request metrics,
    and the caller's identity for per-caller limits: unary, server-streaming and
    client-streaming (``ImportGraph``) calls alike. ``auth`` names the principal of a valid
    token; without it every caller is known by its address."""

    def __init__(self, auth: TokenAuthenticator | None = None) -> None:
        self.auth = auth

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        auth = self.auth
        if handler is None:
            return handler
        if handler.unary_unary is not None or handler.stream_unary is not None:
            unary = handler.unary_unary or handler.stream_unary

            async def logged(request: Any, context: grpc.aio.ServicerContext) -> Any:
                call = _Call(method, context, auth)
                outcome: BaseException | None = None
                try:
                    return await unary(request, context)
                except BaseException as exc:
                    outcome = exc
                    raise
                finally:
                    _log(call, context, outcome)

            make = (
                grpc.unary_unary_rpc_method_handler
                if handler.unary_unary is not None
                else grpc.stream_unary_rpc_method_handler
            )
            return make(
                logged,
                request_deserializer=handler.request_deserializer,
                # A servicer may answer with the response's bytes (service/response_cache.py);
                # done here rather than in an interceptor of its own, which would cost a layer
                # per call.
                response_serializer=passthrough_serializer(handler.response_serializer),
            )
        if handler.unary_stream is not None:
            streaming = handler.unary_stream

            async def logged_stream(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                call = _Call(method, context, auth)
                outcome: BaseException | None = None
                try:
                    # Handlers either yield (async generators) or write to the context and
                    # return a coroutine (e.g. grpc.health.v1 Watch).
                    produced = streaming(request, context)
                    if inspect.isasyncgen(produced):
                        async for item in produced:
                            yield item
                    else:
                        await produced
                except BaseException as exc:
                    outcome = exc
                    raise
                finally:
                    _log(call, context, outcome)

            return grpc.unary_stream_rpc_method_handler(
                logged_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def read_token_refusal(
    auth: TokenAuthenticator, metadata: Sequence[tuple[str, str | bytes]] | None
) -> grpc.Status | None:
    """None when the request carries a valid bearer token of any role (reader or above);
    else the status to refuse it with: UNAUTHENTICATED, or UNAVAILABLE when the token file
    cannot be read. The token is never logged nor echoed."""
    try:
        auth.authenticate(metadata)
    except TokensUnavailable:
        return errors.unavailable(
            "tokens cannot be checked now (the server's token file is invalid); retry later",
            reason="TOKENS_UNAVAILABLE",
        )
    except Unauthenticated as exc:
        return errors.unauthenticated(f"this server requires a bearer token for reads: {exc}")
    return None


class ReadTokenInterceptor(ServerInterceptor):  # type: ignore[misc]
    """``--require-read-token``: every method of ``services`` (the sovrisk APIs) needs a
    valid bearer token of any role; other services (health, reflection) stay open. The
    editing methods still check their own, higher role."""

    def __init__(self, auth: TokenAuthenticator, services: Collection[str]) -> None:
        self.auth = auth
        self.prefixes = tuple(f"/{name}/" for name in services)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(self.prefixes):
            return handler
        status = read_token_refusal(self.auth, handler_call_details.invocation_metadata)
        if status is None:
            return handler

        async def refuse(_: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort_with_status(status)

        kinds = (
            (handler.unary_unary, grpc.unary_unary_rpc_method_handler),
            (handler.unary_stream, grpc.unary_stream_rpc_method_handler),
            (handler.stream_unary, grpc.stream_unary_rpc_method_handler),
            (handler.stream_stream, grpc.stream_stream_rpc_method_handler),
        )
        make = next(factory for behaviour, factory in kinds if behaviour is not None)
        return make(
            refuse,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
