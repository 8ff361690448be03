"""OpenAPI 3.0 document generated from the contract: paths from the ``google.api.http``
rules, schemas from the message descriptors in the proto JSON mapping (lowerCamelCase names,
64-bit integers as strings, enums by name, Timestamp as date-time)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from service.gateway.routes import _VARIABLE, Route

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
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
    "google.protobuf.Any": {"type": "object", "additionalProperties": True},
}


def message_of(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None, field.full_name
    return field.message_type


def is_map(field: FieldDescriptor) -> bool:
    return bool(
        field.type == FieldDescriptor.TYPE_MESSAGE and message_of(field).GetOptions().map_entry
    )


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        name = descriptor.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name not in self.components:
            self.components[name] = {}  # placeholder first: messages may recurse
            self.components[name] = self.message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def message(self, descriptor: Descriptor) -> dict[str, Any]:
        properties = {f.json_name: self.field(f) for f in descriptor.fields}
        return {"type": "object", "properties": properties, "additionalProperties": False}

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
            if depth < QUERY_DEPTH and message_of(f).full_name not in _WELL_KNOWN:
                params += _query_params(schemas, message_of(f), bound, dotted + ".", depth + 1)
            continue
        schema = schemas.field(f)
        param: dict[str, Any] = {"name": dotted, "in": "query", "required": False, "schema": schema}
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


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of ``routes``."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path, params = _path_and_params(route)
        method = route.method
        output = schemas.ref(method.output_type)
        if route.server_streaming:
            line = {"type": "object", "properties": {"result": output, "error": {}}}
            ok = {
                "description": "newline-delimited JSON, one message per line",
                "content": {"application/x-ndjson": {"schema": line}},
            }
        else:
            ok = {"description": "OK", "content": {"application/json": {"schema": output}}}
        operation: dict[str, Any] = {
            "operationId": f"{route.service.rsplit('.', 1)[-1]}_{method.name}",
            "tags": [route.service.rsplit(".", 1)[-1]],
            "parameters": params,
            "responses": {
                "200": ok,
                "default": {
                    "description": "google.rpc.Status as AIP-193 JSON",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        if route.body:
            body = schemas.ref(method.input_type)
            if route.client_streaming:
                body = {"type": "array", "items": body}
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body}},
            }
        else:
            operation["parameters"] = params + _query_params(
                schemas, method.input_type, set(route.path_fields)
            )
        if method.name in SECURED:
            operation["security"] = [{"bearerAuth": []}]
        paths.setdefault(path, {})[route.verb.lower()] = operation
    components = {"Error": _error_schema(), **dict(sorted(schemas.components.items()))}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "HTTP/JSON mapping of the sovrisk gRPC API (google.api.http rules, "
            "proto JSON mapping). Scores are 0-100, higher = riskier.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
