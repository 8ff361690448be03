"""HTTP routes read from the contract: each RPC's ``google.api.http`` rule (AIP-127)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=([^}]*))?\}")

#: Gateway-only GET routes that answer a server-streamed file (its last message's ``report``:
#: bytes, content type, file name) as a plain download, with the request in the query. Not in
#: the contract: gRPC streams chunks, a browser link or ``curl -OJ`` wants the file.
MEDIA_ROUTES = {"sovrisk.v1.RiskService.GenerateReport": ("/v1/reports:download", "DownloadReport")}


@dataclass(frozen=True, slots=True)
class Route:
    """One RPC reachable over HTTP."""

    service: str  # full service name, e.g. "sovrisk.v1.RiskService"
    method: MethodDescriptor
    verb: str  # "GET" | "POST" | ...
    template: str  # e.g. "/v1/{name=providers/*}:score"
    pattern: re.Pattern[str]
    path_fields: tuple[str, ...]  # request fields bound from the path (dotted)
    body: str  # "" (no body), "*" (the whole request) or a field name
    #: A gateway-only route that answers the streamed file itself (see MEDIA_ROUTES).
    media: bool = False
    #: The OpenAPI operation name when it is not the method's (a media route's own name).
    operation: str = ""

    @property
    def openapi_path(self) -> str:
        """The template with ``{name=providers/*}`` written as OpenAPI's ``{name}``."""
        return _VARIABLE.sub(lambda m: "{" + m.group(1) + "}", self.template)

    @property
    def client_streaming(self) -> bool:
        return bool(self.method.client_streaming)

    @property
    def server_streaming(self) -> bool:
        return bool(self.method.server_streaming)


def _compile(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    fields: list[str] = []
    regex = ""
    pos = 0
    for m in _VARIABLE.finditer(template):
        regex += re.escape(template[pos : m.start()])
        name, segments = m.group(1), m.group(2) or "*"
        fields.append(name)
        # A variable's own segments: literal parts as they are, "*" one segment, "**" many.
        parts = [
            "[^/:]+" if s == "*" else ".+" if s == "**" else re.escape(s)
            for s in segments.split("/")
        ]
        regex += f"(?P<v{len(fields) - 1}>{'/'.join(parts)})"
        pos = m.end()
    regex += re.escape(template[pos:])
    return re.compile(f"^{regex}$"), tuple(fields)


def _media_route(service: str, method: MethodDescriptor) -> Route:
    template, operation = MEDIA_ROUTES[method.full_name]
    pattern, fields = _compile(template)
    return Route(service, method, "GET", template, pattern, fields, "", True, operation)


def routes_of(services: Iterable[ServiceDescriptor]) -> list[Route]:
    """Every RPC of ``services`` that has an http rule, in declaration order, each followed by
    its download route if it has one (MEDIA_ROUTES)."""
    found: list[Route] = []
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
            kind = rule.WhichOneof("pattern")
            if kind is None or kind == "custom":
                continue
            template = getattr(rule, kind)
            pattern, fields = _compile(template)
            found.append(
                Route(service.full_name, method, kind.upper(), template, pattern, fields, rule.body)
            )
            if method.full_name in MEDIA_ROUTES:
                found.append(_media_route(service.full_name, method))
    return found
