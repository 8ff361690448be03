"""Server interceptors: one structured log line per RPC with its duration and status."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc.aio import ServerInterceptor

log = logging.getLogger("sovrisk.requests")


class RequestLoggingInterceptor(ServerInterceptor):  # type: ignore[misc]
    """Logs method, peer, status code and latency of every unary and streaming call."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        inner = handler.unary_unary

        async def logged(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            code = "OK"
            try:
                return await inner(request, context)
            except Exception:
                code = "ERROR"
                raise
            finally:
                status = context.code() if hasattr(context, "code") else None
                if status is not None and status != grpc.StatusCode.OK:
                    code = status.name
                log.info(
                    "rpc method=%s peer=%s code=%s ms=%.1f",
                    method,
                    context.peer(),
                    code,
                    1000 * (time.perf_counter() - start),
                )

        return grpc.unary_unary_rpc_method_handler(
            logged,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
