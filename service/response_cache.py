"""Serialised responses of the published reads, kept per (graph version, request).

A cached assessment still cost a conversion to protobuf and a serialisation per call (a FULL
ScoreProvider is ~115 KB on the wire): 417 calls/s against 4,365 for the health check on this
machine. The bytes of a response depend only on the graph version (name and content) it was
computed on, the request, and the server's interval-draws default, so the servicer keeps
them and gRPC sends them as they are (:func:`passthrough_serializer`); the gateway keeps the
JSON of the same key beside them.

Only the published parameters are cached (a caller's own weighting is one caller's what-if:
each would evict the shared entries), and the cache is bounded by its bytes, least recently
used first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from google.protobuf.message import Message

from sovrisk.service import metrics

#: Bytes of serialised responses kept (a FULL assessment of the bundled data is ~115 KB: ~550
#: of them, with their JSON).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


#: Whether the transport serving the current call can send an :class:`Encoded` response (set
#: per call by the request-logging interceptor and the gateway; a servicer mounted on a plain
#: ``grpc.aio.server`` gets messages).
_accepts_encoded: ContextVar[bool] = ContextVar("sovrisk_accepts_encoded", default=False)


def accept_encoded() -> None:
    """Say that the current call's transport sends :class:`Encoded` responses as they are."""
    _accepts_encoded.set(True)


def encoded_accepted() -> bool:
    return _accepts_encoded.get()


class Encoded:
    """A response already serialised: what a servicer returns on a cache hit (gRPC sends
    ``data`` as it is; the gateway finds the same response's JSON under ``key``)."""

    __slots__ = ("data", "key")

    def __init__(self, data: bytes, key: str) -> None:
        self.data = data
        self.key = key


class ResponseCache:
    """A least-recently-used map from request keys to serialised responses, bounded by the
    total size of what it holds. Thread-safe."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(
        method: str, graph_version: str, content_hash: str, request: Message, *extra: object
    ) -> str:
        """The key of a request's response: the method, the version it is answered on (name
        and content: the provenance names the version), the request's canonical bytes, and
        any server setting the answer depends on."""
        digest = hashlib.sha256(request.SerializeToString(deterministic=True))
        for item in extra:
            digest.update(b"\0" + repr(item).encode())
        return f"{method}|{graph_version}|{content_hash[:16]}|{digest.hexdigest()}"

    def get(self, key: str) -> Encoded | None:
        with self._lock:
            data = self._entries.get(key)
            if data is None:
                self.misses += 1
            else:
                self._entries.move_to_end(key)
                self.hits += 1
        metrics.RESPONSE_CACHE.labels("miss" if data is None else "hit").inc()
        return None if data is None else Encoded(data, key)

    def put(self, key: str, message: Message) -> Encoded:
        """Serialise ``message``, keep it (unless it alone exceeds the bound) and return it."""
        data = message.SerializeToString()
        self._keep(key, data)
        return Encoded(data, key)

    def json(self, key: str, build: Callable[[], bytes]) -> bytes:
        """The JSON body of ``key``'s response, built once (kept under its own key, counted
        against the same bound)."""
        json_key = "json|" + key
        with self._lock:
            found = self._entries.get(json_key)
            if found is not None:
                self._entries.move_to_end(json_key)
                return found
        body = build()
        self._keep(json_key, body)
        return body

    def _keep(self, key: str, data: bytes) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            if len(data) > self.max_bytes:
                return
            self._entries[key] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


def passthrough_serializer(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """gRPC's response serializer, letting already-serialised responses through as they are."""

    def serializer(response: Any) -> bytes:
        if isinstance(response, Encoded):
            return response.data
        return serialize(response)

    return serializer
