"""Server interceptors: one structured log line per RPC with its duration and status."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc.aio import ServerInterceptor

log = logging.getLogger("sovrisk.requests")


def _log(method: str, context: grpc.aio.ServicerContext, start: float, failed: bool) -> None:
    code = context.code() if hasattr(context, "code") else None
    name = code.name if code is not None and code != grpc.StatusCode.OK else None
    log.info(
        "rpc method=%s peer=%s code=%s ms=%.1f",
        method,
        context.peer(),
        name or ("ERROR" if failed else "OK"),
        1000 * (time.perf_counter() - start),
    )


class RequestLoggingInterceptor(ServerInterceptor):  # type: ignore[misc]
    """Logs method, peer, status code and latency of every unary and server-streaming call."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def logged(request: Any, context: grpc.aio.ServicerContext) -> Any:
                start, failed = time.perf_counter(), False
                try:
                    return await unary(request, context)
                except BaseException:
                    failed = True
                    raise
                finally:
                    _log(method, context, start, failed)

            return grpc.unary_unary_rpc_method_handler(
                logged,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            streaming = handler.unary_stream

            async def logged_stream(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                start, failed = time.perf_counter(), False
                try:
                    # Handlers either yield (async generators) or write to the context and
                    # return a coroutine (e.g. grpc.health.v1 Watch).
                    produced = streaming(request, context)
                    if inspect.isasyncgen(produced):
                        async for item in produced:
                            yield item
                    else:
                        await produced
                except BaseException:
                    failed = True
                    raise
                finally:
                    _log(method, context, start, failed)

            return grpc.unary_stream_rpc_method_handler(
                logged_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
