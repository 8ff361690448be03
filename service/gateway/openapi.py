"""OpenAPI 3.0 document generated from the contract: paths from the ``google.api.http``
rules, schemas from the message descriptors in the proto JSON mapping (lowerCamelCase names,
64-bit integers as strings, enums by name, Timestamp as date-time), descriptions from the
proto comments (proto_docs.json).

Response schemas are tolerant (no ``additionalProperties: false``): a newer server may add
fields, and a client generated from today's document must not reject them. Messages reached
only from requests stay strict, because the gateway does reject unknown body fields and query
parameters (400)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from sovrisk.service.gateway import proto_docs
from sovrisk.service.gateway.routes import _VARIABLE, MEDIA_ROUTES, Route

TITLE = "sovrisk API"
VERSION = "v1"
#: Methods that need a bearer token (service/auth.py).
SECURED = {"BatchUpdateGraph", "ImportGraph"}
#: How deep GET query parameters follow nested messages (``weights.structural``).
QUERY_DEPTH = 2

_INT32 = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SFIXED32,
}
_UINT32 = {FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32}
_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_SFIXED64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_FIXED64,
}
DATE = "google.type.Date"
#: Media types of a report download (report.proto's ReportFormat).
REPORT_MEDIA = ("text/html", "text/markdown", "text/csv", "application/json")
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
    # The proto JSON mapping writes a FieldMask as one string of comma-separated lowerCamel
    # paths ("share,shareLow"), not as {"paths": [...]}.
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Field paths, comma-separated (google.protobuf.FieldMask in JSON), "
        "e.g. `share,sources`.",
    },
    "google.protobuf.Any": {"type": "object", "additionalProperties": True},
}


def message_of(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None, field.full_name
    return field.message_type


def is_map(field: FieldDescriptor) -> bool:
    return bool(
        field.type == FieldDescriptor.TYPE_MESSAGE and message_of(field).GetOptions().map_entry
    )


def enum_aliases(enum: EnumDescriptor) -> dict[str, str]:
    """Short query-string names of an enum's values: ``html`` for ``REPORT_FORMAT_HTML`` (the
    values' common prefix, from ``*_UNSPECIFIED``, dropped and lower-cased)."""
    first = enum.values[0].name
    prefix = first.removesuffix("UNSPECIFIED") if first.endswith("_UNSPECIFIED") else ""
    if not prefix:
        return {}
    return {
        v.name.removeprefix(prefix).lower(): v.name
        for v in enum.values[1:]
        if v.name.startswith(prefix)
    }


def summary(text: str) -> str:
    """The first sentence of a comment, on one line (an operation's summary)."""
    flat = " ".join(text.split())
    m = re.search(r"[.:;](\s|$)", flat)
    return flat[: m.start() + 1].rstrip(":;") if m else flat


def _reachable(roots: Sequence[Descriptor]) -> set[str]:
    """Full names of the messages reachable from ``roots`` through their fields."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        descriptor = stack.pop()
        if descriptor.full_name in seen:
            continue
        seen.add(descriptor.full_name)
        stack += [
            message_of(f) for f in descriptor.fields if f.type == FieldDescriptor.TYPE_MESSAGE
        ]
    return seen


class _Schemas:
    def __init__(self, docs: Mapping[str, str], tolerant: set[str]) -> None:
        self.components: dict[str, dict[str, Any]] = {}
        self.docs = docs
        self.tolerant = tolerant  # messages that responses reach: never additionalProperties

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        name = descriptor.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name not in self.components:
            self.components[name] = {}  # placeholder first: messages may recurse
            self.components[name] = self.message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def message(self, descriptor: Descriptor) -> dict[str, Any]:
        properties = {f.json_name: self.described(f) for f in descriptor.fields}
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if descriptor.full_name in self.docs:
            schema["description"] = self.docs[descriptor.full_name]
        if descriptor.full_name not in self.tolerant:
            schema["additionalProperties"] = False
        return schema

    def field_doc(self, field: FieldDescriptor) -> str:
        """The field's comment, then its enum values' comments as a list."""
        text = self.docs.get(field.full_name, "")
        if field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
            enum = field.enum_type.full_name
            values = [
                f"- `{v.name}`: {self.docs[f'{enum}.{v.name}']}".replace("\n", " ")
                for v in field.enum_type.values
                if f"{enum}.{v.name}" in self.docs
            ]
            text = "\n\n".join(x for x in (text, "\n".join(values)) if x)
        return text

    def described(self, field: FieldDescriptor) -> dict[str, Any]:
        """The field's schema with its comment; a ``$ref`` is wrapped in ``allOf`` because
        OpenAPI 3.0 ignores a reference's siblings."""
        schema = self.field(field)
        text = self.field_doc(field)
        if not text:
            return schema
        if "$ref" in schema:
            return {"allOf": [schema], "description": text}
        return {**schema, "description": text}

    def scalar(self, field: FieldDescriptor) -> dict[str, Any]:
        t = field.type
        if t in _INT32:
            return {"type": "integer", "format": "int32"}
        if t in _UINT32:
            return {"type": "integer", "format": "int32", "minimum": 0}
        if t in _INT64:
            return {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
        if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return {"type": "number"}
        if t == FieldDescriptor.TYPE_BOOL:
            return {"type": "boolean"}
        if t == FieldDescriptor.TYPE_BYTES:
            return {"type": "string", "format": "byte"}
        if t == FieldDescriptor.TYPE_ENUM:
            assert field.enum_type is not None
            return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        if t == FieldDescriptor.TYPE_MESSAGE:
            return self.ref(message_of(field))
        return {"type": "string"}

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if is_map(field):
            value = message_of(field).fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.scalar(value)}
        base = self.scalar(field)
        if field.is_repeated:
            return {"type": "array", "items": base}
        return base


def _path_and_params(route: Route) -> tuple[str, list[dict[str, Any]]]:
    """``/v1/{name=providers/*}:score`` -> ``/v1/providers/{provider}:score`` with one path
    parameter per ``*``: resource names become literal segments, as clients write them."""
    params: list[dict[str, Any]] = []

    def expand(m: Any) -> str:
        segments = (m.group(2) or "*").split("/")
        out = []
        for k, seg in enumerate(segments):
            if seg in ("*", "**"):
                collection = segments[k - 1] if k else m.group(1)
                name = collection[:-1] if collection.endswith("s") else collection
                params.append(
                    {
                        "name": name,
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]*$"},
                    }
                )
                out.append("{" + name + "}")
            else:
                out.append(seg)
        return "/".join(out)

    return _VARIABLE.sub(expand, route.template), params


def _date_param(schemas: _Schemas, field: FieldDescriptor, dotted: str) -> dict[str, Any]:
    """A google.type.Date as one ISO date parameter; its dotted fields work too."""
    doc = schemas.docs.get(field.full_name, "")
    how = (
        f"An ISO date (`{dotted}=2025-03-01`); `{dotted}.year`, `{dotted}.month` and "
        f"`{dotted}.day` are accepted instead (e.g. for a partial date)."
    )
    return {
        "name": dotted,
        "in": "query",
        "required": False,
        "description": f"{doc}\n\n{how}" if doc else how,
        "schema": {"type": "string", "format": "date"},
    }


def _query_schema(schemas: _Schemas, field: FieldDescriptor) -> dict[str, Any]:
    """The field's schema, enums also by their short names (``?format=html``)."""
    schema = schemas.field(field)
    if field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        target = schema["items"] if field.is_repeated else schema
        target["enum"] = [*target["enum"], *enum_aliases(field.enum_type)]
    return schema


def _query_params(
    schemas: _Schemas, descriptor: Descriptor, bound: set[str], prefix: str = "", depth: int = 0
) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for f in descriptor.fields:
        dotted = prefix + f.name
        if dotted in bound:
            continue
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            if f.is_repeated or is_map(f):
                continue
            if message_of(f).full_name == DATE:
                params.append(_date_param(schemas, f, dotted))
            elif depth < QUERY_DEPTH and message_of(f).full_name not in _WELL_KNOWN:
                params += _query_params(schemas, message_of(f), bound, dotted + ".", depth + 1)
            continue
        schema = _query_schema(schemas, f)
        param: dict[str, Any] = {"name": dotted, "in": "query", "required": False, "schema": schema}
        if doc := schemas.field_doc(f):
            param["description"] = doc
        if schema.get("type") == "array":
            param.update(style="form", explode=True)
        params.append(param)
    return params


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "status"],
                "properties": {
                    "code": {"type": "integer"},
                    "message": {"type": "string"},
                    "status": {"type": "string"},
                    "details": {
                        "type": "array",
                        "items": {"type": "object", "additionalProperties": True},
                    },
                },
            }
        },
    }


_ERROR_RESPONSE = {
    "description": "google.rpc.Status as AIP-193 JSON",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_ALT = {
    "name": "alt",
    "in": "query",
    "required": False,
    "description": "`media` answers the finished file itself (as `GET /v1/reports:download` "
    "does) instead of the NDJSON stream of progress messages.",
    "schema": {"type": "string", "enum": ["json", "media"]},
}


def _ok(schemas: _Schemas, route: Route) -> dict[str, Any]:
    """The 200 response: JSON, an NDJSON stream, or (media routes) the file."""
    if route.media:
        return {
            "description": "the report file, as an attachment",
            "headers": {
                "Content-Disposition": {
                    "description": 'attachment; filename="sovrisk-report.html" (or .md, .csv, '
                    ".json)",
                    "schema": {"type": "string"},
                }
            },
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}} for media in REPORT_MEDIA
            },
        }
    output = schemas.ref(route.method.output_type)
    if route.server_streaming:
        line = {"type": "object", "properties": {"result": output, "error": {}}}
        return {
            "description": "newline-delimited JSON, one message per line",
            "content": {"application/x-ndjson": {"schema": line}},
        }
    return {"description": "OK", "content": {"application/json": {"schema": output}}}


def _operation(schemas: _Schemas, route: Route) -> dict[str, Any]:
    method = route.method
    service = route.service.rsplit(".", 1)[-1]
    path_params = _path_and_params(route)[1]
    operation: dict[str, Any] = {
        "operationId": f"{service}_{route.operation or method.name}",
        "tags": [service],
    }
    doc = schemas.docs.get(method.full_name, "")
    if route.media:
        doc = (
            f"Download the report as a file: `{method.name}` with its request in the query "
            "string (`?format=csv&providers=providers/aws`), answered with the last stream "
            "message's content, its Content-Type and `Content-Disposition: attachment`.\n\n" + doc
        )
    if doc:
        operation.update(summary=summary(doc), description=doc)
    operation["parameters"] = path_params
    operation["responses"] = {"200": _ok(schemas, route), "default": _ERROR_RESPONSE}
    if route.body:
        body = schemas.ref(method.input_type)
        if route.client_streaming:
            body = {"type": "array", "items": body}
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
        if method.full_name in MEDIA_ROUTES:
            operation["parameters"] = [*path_params, _ALT]
    else:
        operation["parameters"] = path_params + _query_params(
            schemas, method.input_type, set(route.path_fields)
        )
    if method.name in SECURED:
        operation["security"] = [{"bearerAuth": []}]
    return operation


def _tags(routes: Sequence[Route], docs: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    for service in dict.fromkeys(r.service for r in routes):
        tag: dict[str, Any] = {"name": service.rsplit(".", 1)[-1]}
        if service in docs:
            tag["description"] = docs[service]
        yield tag


def openapi_document(
    routes: Sequence[Route], docs: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of ``routes``; ``docs`` are the proto comments by full name
    (default: proto_docs.json)."""
    docs = proto_docs.load() if docs is None else docs
    outputs = [r.method.output_type for r in routes]
    schemas = _Schemas(docs, _reachable(outputs))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path = _path_and_params(route)[0]
        paths.setdefault(path, {})[route.verb.lower()] = _operation(schemas, route)
    components = {"Error": _error_schema(), **dict(sorted(schemas.components.items()))}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "HTTP/JSON mapping of the sovrisk gRPC API (google.api.http rules, "
            "proto JSON mapping). Scores are 0-100, higher = riskier.",
        },
        "tags": list(_tags(routes, docs)),
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
