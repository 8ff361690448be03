"""The HTTP/JSON gateway, in process on port 0: routes from the contract's google.api.http
rules, canonical proto JSON, AIP-193 errors, NDJSON streams, and the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from google.api import annotations_pb2

from sovrisk.service.auth import TokenAuthenticator
from sovrisk.service.gateway.http_policy import default_allowed_hosts
from sovrisk.service.gateway.openapi import openapi_document
from sovrisk.service.gateway.routes import routes_of
from sovrisk.service.gateway.server import SERVICES, RunningGateway, start_gateway
from sovrisk.service.registry import GraphRegistry
from tests.conftest import SMALL

AUTH = {"Authorization": "Bearer tok-editor"}


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[tuple[str, GraphRegistry]]:
    registry = GraphRegistry.from_directory(SMALL)
    auth = TokenAuthenticator(env={"SOVRISK_TOKENS": "ann:admin:tok-editor"})
    running: RunningGateway = await start_gateway(registry, auth=auth)
    try:
        yield f"http://127.0.0.1:{running.port}", registry
    finally:
        await running.stop()
        registry.close()


async def _call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, headers=headers) as response,
    ):
        text = await response.text()
        kind = response.headers.get("Content-Type", "")
        if kind.startswith("application/json"):
            return response.status, json.loads(text), kind
        return response.status, text, kind


def test_every_rpc_has_an_http_rule_and_an_openapi_operation() -> None:
    methods = [m for s in SERVICES for m in s.methods]
    assert all(m.GetOptions().HasExtension(annotations_pb2.http) for m in methods)
    routes = routes_of(SERVICES)
    assert len([r for r in routes if not r.media]) == len(methods)
    doc = openapi_document(routes)
    operations = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    # ... plus the gateway's own file download of GenerateReport.
    expected = {f"{m.containing_service.name}_{m.name}" for m in methods}
    assert operations == expected | {"RiskService_DownloadReport"}
    assert doc["paths"]["/v1/providers/{provider}:score"]["get"]["parameters"][0]["name"] == (
        "provider"
    )
    # Every $ref resolves.
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"], ref


async def test_score_as_json_matches_the_engine(gateway: tuple[str, GraphRegistry]) -> None:
    base, registry = gateway
    status, body, _ = await _call("GET", f"{base}/v1/providers/p:score")
    assert status == 200
    engine = registry.engine
    expected = engine.assess("p", engine.default_params())
    assert body["provider"] == "providers/p"
    assert body["composite"] == pytest.approx(expected.composite, abs=1e-6)
    assert body["band"] == "RISK_BAND_HIGH"  # enums by name, lowerCamelCase fields
    assert "subScores" in body and body["provenance"]["graphVersion"] == "graph/versions/1"


async def test_unknown_provider_is_a_404_aip193_error(gateway: tuple[str, GraphRegistry]) -> None:
    base, _ = gateway
    status, body, kind = await _call("GET", f"{base}/v1/providers/nobody:score")
    assert (status, kind.split(";")[0]) == (404, "application/json")
    error = body["error"]
    assert (error["code"], error["status"]) == (404, "NOT_FOUND")
    assert error["message"] == "provider 'providers/nobody' not found"
    types = [d["@type"] for d in error["details"]]
    assert types == [
        "type.googleapis.com/google.rpc.ErrorInfo",
        "type.googleapis.com/google.rpc.ResourceInfo",
    ]
    assert error["details"][0]["reason"] == "PROVIDER_NOT_FOUND"


async def test_query_parameters_bind_dotted_and_repeated_fields(
    gateway: tuple[str, GraphRegistry],
) -> None:
    base, registry = gateway
    engine = registry.engine
    url = f"{base}/v1/providers/p:score?as_of.year=2020&as_of.month=1&as_of.day=1"
    status, body, _ = await _call("GET", url + "&weights.structural=0.5")
    assert status == 200
    assert body["provenance"]["asOf"] == {"year": 2020, "month": 1, "day": 1}
    assert body["provenance"]["parameters"]["weights.structural"] != repr(0.24)
    status, body, _ = await _call("GET", f"{base}/v1/providers:listScores?page_size=1")
    assert status == 200 and len(body["providerScores"]) == 1
    assert body["providerScores"][0]["composite"] == pytest.approx(
        engine.assess("p", engine.default_params()).composite, abs=1e-6
    )
    for bad, field in [
        ("?bogus=1", "bogus"),
        ("?as_of.year=x", "query"),
        ("?as_of=2020", "as_of"),
        ("?page_size=1&page_size=2", "page_size"),
    ]:
        status, body, _ = await _call("GET", f"{base}/v1/providers/p:score{bad}")
        assert status == 400, bad
        [violation] = body["error"]["details"][0]["fieldViolations"]
        assert violation["field"] == field, bad


async def test_writes_need_a_token_and_land_as_versions(gateway: tuple[str, GraphRegistry]) -> None:
    base, _ = gateway
    edge = {
        "consumer": "a",
        "category": "memory",
        "quality": "B",
        "sources": ["fixture"],
        "asOf": {"year": 2024, "month": 3, "day": 1},
    }
    request = {
        "baseVersion": "graph/versions/1",
        "message": "over HTTP",
        "changes": [
            {"upsertEdge": {**edge, "supplier": "m1", "share": 0.7}},
            {"upsertEdge": {**edge, "supplier": "m2", "share": 0.3}},
        ],
    }
    url = f"{base}/v1/graph:batchUpdate"
    status, body, _ = await _call("POST", url, request)
    assert (status, body["error"]["status"]) == (401, "UNAUTHENTICATED")
    status, body, _ = await _call("POST", url, request, AUTH)
    assert status == 200, body
    assert body["graphVersion"]["name"] == "graph/versions/2"
    assert body["graphVersion"]["author"] == "ann"
    status, body, _ = await _call("POST", url, request, AUTH)
    assert (status, body["error"]["status"]) == (409, "ABORTED")
    status, body, _ = await _call("GET", f"{base}/v1/graph/versions/2:diff")
    assert status == 200 and [c["key"][2] for c in body["changes"]] == ["m1", "m2"]


async def test_streams_are_newline_delimited_json(gateway: tuple[str, GraphRegistry]) -> None:
    base, _ = gateway
    status, text, kind = await _call(
        "POST", f"{base}/v1/simulations:run", {"samples": 1000, "seed": 3}
    )
    assert (status, kind) == (200, "application/x-ndjson")
    lines = [json.loads(line) for line in text.splitlines()]
    assert all("progress" in x["result"] for x in lines[:-1])
    result = lines[-1]["result"]["result"]
    assert result["samples"] == "1000"  # int64 as a string, per the proto JSON mapping
    status, text, kind = await _call("GET", f"{base}/v1/graph:export")
    lines = [json.loads(line)["result"] for line in text.splitlines()]
    assert lines[0]["graphVersion"]["name"] == "graph/versions/1"
    names = {x["chunk"]["fileName"] for x in lines[1:]}
    assert {"nodes.csv", "edges.csv", "dataset.toml"} <= names
    # ... and the export imports back (client streaming takes a JSON array).
    header = {"header": {"baseVersion": "graph/versions/1", "message": "round trip"}}
    status, body, _ = await _call("POST", f"{base}/v1/graph:import", [header, *lines[1:]], AUTH)
    assert status == 200, body
    assert body["graphVersion"]["name"] == "graph/versions/2"
    assert "changes" not in body  # nothing changed


async def test_bad_bodies_and_routes_are_json_errors(gateway: tuple[str, GraphRegistry]) -> None:
    base, _ = gateway
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/v1/scenarios:run", data=b"{not json") as response,
    ):
        body = await response.json()
        assert response.status == 400
        assert body["error"]["details"][0]["fieldViolations"][0]["field"] == "body"
    status, body, _ = await _call("GET", f"{base}/v1/nowhere")
    assert (status, body["error"]["status"]) == (404, "NOT_FOUND")
    status, body, _ = await _call("GET", f"{base}/openapi.json")
    assert status == 200 and body["openapi"] == "3.0.3"


# --- OpenAPI descriptions, tolerant responses, /docs ----------------------------------------


def _document() -> dict[str, Any]:
    return openapi_document(routes_of(SERVICES))


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def _reachable_schemas(doc: dict[str, Any], root: Any, seen: set[int]) -> list[dict[str, Any]]:
    """Every (resolved) schema object under ``root``, following $refs once."""
    if isinstance(root, list):
        return [s for item in root for s in _reachable_schemas(doc, item, seen)]
    if not isinstance(root, dict):
        return []
    node = _resolve(doc, root)
    if id(node) in seen:
        return []
    seen.add(id(node))
    return [node, *(s for v in node.values() for s in _reachable_schemas(doc, v, seen))]


def test_openapi_descriptions_come_from_the_proto_comments() -> None:
    doc = _document()
    op = doc["paths"]["/v1/providers:listScores"]["get"]
    assert op["summary"] == "Ranks every provider by composite score, riskiest first."
    assert "Paginated (AIP-158)" in op["description"]
    schemas = doc["components"]["schemas"]
    assert schemas["sovrisk.v1.Report"]["description"] == "A finished report."
    assert schemas["sovrisk.v1.Report"]["properties"]["sha256"]["description"] == (
        "sha256 (hex) of `content`."
    )
    # A message-typed property keeps its $ref (through allOf) and gets the field's comment.
    provenance = schemas["sovrisk.v1.ListProviderScoresResponse"]["properties"]["provenance"]
    assert provenance["allOf"] == [{"$ref": "#/components/schemas/sovrisk.v1.ResultProvenance"}]
    assert provenance["description"]
    # Enum values are listed with their comments.
    fmt = schemas["sovrisk.v1.GenerateReportRequest"]["properties"]["format"]["description"]
    assert "- `REPORT_FORMAT_CSV`: CSV, one row per provider" in fmt
    assert {t["name"] for t in doc["tags"]} == {"GraphService", "RiskService"}
    assert all("description" in t for t in doc["tags"])
    # Everything is documented: every operation, every schema of ours, every property.
    for path in doc["paths"].values():
        for operation in path.values():
            assert operation.get("summary") and operation.get("description"), operation
    for name, schema in schemas.items():
        if name == "Error":
            continue
        assert schema.get("description"), name
        for prop, value in schema.get("properties", {}).items():
            assert value.get("description"), f"{name}.{prop}"


def test_proto_docs_json_is_current() -> None:
    """proto_docs.json must be regenerated with the protos (`make protos`)."""
    pytest.importorskip("grpc_tools", reason="grpcio-tools (dev extra) runs protoc")
    from sovrisk.service.gateway import proto_docs

    assert proto_docs.generate() == proto_docs.JSON_PATH.read_text(encoding="utf-8"), (
        "service/gateway/proto_docs.json is stale: run `python -m service.gateway.proto_docs "
        "--write` (or `make protos`)"
    )


def test_response_schemas_are_tolerant_and_request_only_ones_strict() -> None:
    doc = _document()
    checked = 0
    for path in doc["paths"].values():
        for operation in path.values():
            for response in operation["responses"].values():
                for content in response["content"].values():
                    for schema in _reachable_schemas(doc, content["schema"], set()):
                        assert schema.get("additionalProperties") is not False, schema
                        checked += 1
    assert checked > 100
    # The gateway rejects unknown body fields, and the request-only schemas say so.
    schemas = doc["components"]["schemas"]
    assert schemas["sovrisk.v1.RunScenarioRequest"]["additionalProperties"] is False
    assert "additionalProperties" not in schemas["google.type.Date"]  # in responses too


async def test_unknown_body_fields_are_rejected(gateway: tuple[str, GraphRegistry]) -> None:
    base, _ = gateway
    status, body, _ = await _call("POST", f"{base}/v1/suppliers:screen", {"bogus": 1})
    assert (
        status == 400
        and "bogus" in body["error"]["details"][0]["fieldViolations"][0]["description"]
    )


async def test_docs_page_uses_only_local_assets(gateway: tuple[str, GraphRegistry]) -> None:
    base, _ = gateway
    status, html, kind = await _call("GET", f"{base}/docs")
    assert (status, kind.split(";")[0]) == (200, "text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("docs/") for a in assets), assets
    assert "http" not in html and "//" not in html
    for asset in [*assets, "docs/init.js"]:
        async with aiohttp.ClientSession() as session, session.get(f"{base}/{asset}") as response:
            assert response.status == 200, asset
            assert len(await response.read()) > 0
    status, init, _ = await _call("GET", f"{base}/docs/init.js")
    assert '"openapi.json"' in init and "validatorUrl: null" in init
    status, body, _ = await _call("GET", f"{base}/docs/index.html")  # not the bundle's own
    assert (status, body["error"]["status"]) == (404, "NOT_FOUND")


# --- Report downloads -------------------------------------------------------------------------


async def _raw(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, headers=headers) as response,
    ):
        return response.status, await response.read(), response.headers


async def test_reports_download_as_plain_files(gateway: tuple[str, GraphRegistry]) -> None:
    base, _ = gateway
    status, content, headers = await _raw("GET", f"{base}/v1/reports:download?format=csv")
    assert status == 200, content
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"] == 'attachment; filename="sovrisk-report.csv"'
    assert content.decode().splitlines()[0].startswith(("provider", "Provider", "rank", "Rank"))
    # The enum's full name works too, and as_of as an ISO date.
    url = f"{base}/v1/reports:download?format=REPORT_FORMAT_JSON&as_of=2024-06-01"
    status, content, headers = await _raw("GET", url)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(content)
    # alt=media on the contract's POST route answers the same kind of file.
    url = f"{base}/v1/reports:generate?alt=media"
    status, content, headers = await _raw("POST", url, {"format": "REPORT_FORMAT_MARKDOWN"})
    assert status == 200 and headers["Content-Type"].startswith("text/markdown")
    assert headers["Content-Disposition"] == 'attachment; filename="sovrisk-report.md"'
    assert content.startswith(b"#")
    # Errors stay AIP-193 JSON.
    for bad, code in [
        ("/v1/reports:download?format=bogus", 400),
        ("/v1/reports:download?providers=providers/nobody", 404),
    ]:
        status, body, kind = await _call("GET", base + bad)
        assert (status, kind.split(";")[0]) == (code, "application/json"), bad
    status, body, _ = await _call("POST", f"{base}/v1/reports:generate?alt=pdf", {})
    assert status == 400
    assert body["error"]["details"][0]["fieldViolations"][0]["field"] == "alt"
    doc = _document()
    download = doc["paths"]["/v1/reports:download"]["get"]
    assert set(download["responses"]["200"]["content"]) >= {"text/html", "text/csv"}
    assert "alt" in {p["name"] for p in doc["paths"]["/v1/reports:generate"]["post"]["parameters"]}


# --- CORS, Host, gzip, 401 --------------------------------------------------------------------


@pytest_asyncio.fixture
async def cors_gateway() -> AsyncIterator[str]:
    registry = GraphRegistry.from_directory(SMALL)
    running = await start_gateway(registry, cors_origins=["https://app.example"])
    try:
        yield f"http://127.0.0.1:{running.port}"
    finally:
        await running.stop()
        registry.close()


PREFLIGHT = {
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization",
}


async def test_cors_is_off_by_default(gateway: tuple[str, GraphRegistry]) -> None:
    base, _ = gateway
    origin = {"Origin": "https://app.example"}
    status, _, headers = await _raw(
        "OPTIONS", f"{base}/v1/providers/p:score", None, {**origin, **PREFLIGHT}
    )
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    status, _, headers = await _raw("GET", f"{base}/v1/providers/p:score", None, origin)
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


async def test_cors_for_an_allowed_origin(cors_gateway: str) -> None:
    base = cors_gateway
    origin = {"Origin": "https://app.example"}
    url = f"{base}/v1/providers/p:score"
    status, body, headers = await _raw("OPTIONS", url, None, {**origin, **PREFLIGHT})
    assert (status, body) == (204, b"")
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "GET" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    status, _, headers = await _raw("GET", url, None, origin)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Origin" in headers["Vary"]
    # Streams get the headers too (set before the first line is sent).
    stream = f"{base}/v1/simulations:run"
    status, _, headers = await _raw("POST", stream, {"samples": 100, "seed": 1}, origin)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://app.example"
    other = {"Origin": "https://evil.example"}
    status, _, headers = await _raw("OPTIONS", url, None, {**other, **PREFLIGHT})
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    status, _, headers = await _raw("GET", url, None, other)
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


async def test_loopback_gateway_refuses_foreign_host_names(
    gateway: tuple[str, GraphRegistry],
) -> None:
    base, _ = gateway
    url = f"{base}/v1/providers/p:score"
    for host in ["localhost:8080", "127.0.0.1", "[::1]:9", "LOCALHOST."]:
        status, _, _ = await _raw("GET", url, None, {"Host": host})
        assert status == 200, host
    status, body, kind = await _call("GET", url, None, {"Host": "rebound.example:8080"})
    assert (status, kind.split(";")[0]) == (400, "application/json")
    violation = body["error"]["details"][0]["fieldViolations"][0]
    assert violation["field"] == "Host"
    assert "(got 'rebound.example:8080')" in violation["description"]


async def test_allowed_hosts_can_be_widened() -> None:
    registry = GraphRegistry.from_directory(SMALL)
    running = await start_gateway(registry, allowed_hosts=["*"])
    try:
        url = f"http://127.0.0.1:{running.port}/healthz"
        status, _, _ = await _raw("GET", url, None, {"Host": "api.example"})
        assert status == 200
    finally:
        await running.stop()
        registry.close()
    assert default_allowed_hosts("0.0.0.0") is None
    assert default_allowed_hosts("::") is None
    assert default_allowed_hosts("127.0.0.1") == ("localhost", "127.0.0.1", "::1")
    assert default_allowed_hosts("::1") == ("localhost", "127.0.0.1", "::1")


async def test_large_json_is_gzipped_and_streams_are_not(
    gateway: tuple[str, GraphRegistry],
) -> None:
    base, _ = gateway
    gzip = {"Accept-Encoding": "gzip"}
    status, content, headers = await _raw("GET", f"{base}/openapi.json", None, gzip)
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert json.loads(content)["openapi"] == "3.0.3"  # the client inflated it
    status, _, headers = await _raw("GET", f"{base}/openapi.json", None, {"Accept-Encoding": ""})
    assert "Content-Encoding" not in headers
    status, _, headers = await _raw("GET", f"{base}/healthz", None, gzip)  # too small
    assert "Content-Encoding" not in headers
    # A stream is not compressed, and its lines arrive one by one.
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/v1/simulations:run", json={"samples": 1000, "seed": 3}, headers=gzip
        ) as response,
    ):
        assert "Content-Encoding" not in response.headers
        first = json.loads(await response.content.readline())
        assert "progress" in first["result"]
        rest = [json.loads(line) for line in (await response.read()).splitlines()]
    assert rest[-1]["result"]["result"]["samples"] == "1000"


async def test_401_carries_a_bearer_challenge(gateway: tuple[str, GraphRegistry]) -> None:
    base, _ = gateway
    url = f"{base}/v1/graph:batchUpdate"
    request = {"baseVersion": "graph/versions/1", "message": "x", "changes": []}
    status, _, headers = await _raw("POST", url, request)
    assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="sovrisk"')
    status, _, headers = await _raw("POST", url, request, {"Authorization": "Bearer wrong"})
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="sovrisk", error="invalid_token"'
    status, _, headers = await _raw("GET", f"{base}/v1/providers/p:score")
    assert "WWW-Authenticate" not in headers


# --- Dates in the query -----------------------------------------------------------------------


async def test_dates_as_iso_strings(gateway: tuple[str, GraphRegistry]) -> None:
    base, _ = gateway
    url = f"{base}/v1/providers/p:score"
    status, iso, _ = await _call("GET", f"{url}?as_of=2020-01-01")
    assert status == 200
    _, dotted, _ = await _call("GET", f"{url}?as_of.year=2020&as_of.month=1&as_of.day=1")
    assert iso == dotted and iso["provenance"]["asOf"] == {"year": 2020, "month": 1, "day": 1}
    for bad, value in [
        ("as_of=2020-13-01", "2020-13-01"),
        ("as_of=01/02/2020", "01/02/2020"),
        ("as_of=2020-01-01&as_of.year=2021", "2020-01-01"),
        ("as_of=2020-01-01&as_of=2020-01-02", "2020-01-01,2020-01-02"),
    ]:
        status, body, _ = await _call("GET", f"{url}?{bad}")
        assert status == 400, bad
        [violation] = body["error"]["details"][0]["fieldViolations"]
        assert violation["field"] == "as_of", bad
        assert f"(got {value!r})" in violation["description"], bad
    # base_as_of (CompareAssessments) is a Date too.
    status, body, _ = await _call(
        "GET",
        f"{base}/v1/providers/p:compareAssessments?base_as_of=2023-01-01&target_as_of=2024-01-01",
    )
    assert status == 200, body
    params = {
        p["name"]: p
        for p in _document()["paths"]["/v1/providers/{provider}:score"]["get"]["parameters"]
    }
    assert params["as_of"]["schema"] == {"type": "string", "format": "date"}
    assert "as_of.year" not in params


async def _send_bytes(url: str, method: str, data: bytes | None) -> tuple[int, str, Any]:
    headers = {"Content-Type": "application/json", **AUTH}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, headers=headers) as response,
    ):
        text = await response.text()
        kind = response.headers.get("Content-Type", "")
        return (
            response.status,
            kind,
            json.loads(text) if kind.startswith("application/json") else text,
        )


@pytest.mark.parametrize(
    ("path", "method", "data", "status"),
    [
        ("/v1/graph:import", "POST", b"[1,2,3]", 400),  # not request messages
        ("/v1/graph:import", "POST", b"[" * 100_000 + b"]" * 100_000, 400),  # RecursionError
        ("/v1/scenarios:run", "POST", b" " * (65 * 1024 * 1024), 413),  # over the 64 MiB limit
        ("/v1/providers/" + "x" * 20_000 + ":score", "GET", None, 404),  # a 20 kB URL
    ],
    ids=["array-of-numbers", "deep-json", "body-over-64MiB", "20kB-url"],
)
async def test_hostile_requests_get_json_errors_not_500(
    gateway: tuple[str, GraphRegistry], path: str, method: str, data: bytes | None, status: int
) -> None:
    base, _ = gateway
    got, kind, body = await _send_bytes(base + path, method, data)
    assert (got, kind.split(";")[0]) == (status, "application/json"), body
    assert body["error"]["code"] == status and body["error"]["status"] != "INTERNAL"


async def test_a_cross_origin_simple_post_is_refused_before_it_runs(
    gateway: tuple[str, GraphRegistry],
) -> None:
    """A page on another origin can send a text/plain POST without a preflight: it must not
    start a simulation. The gateway's own origin (its /docs page) may."""
    base, _ = gateway
    body = b'{"samples": 100, "seed": 1}'
    for origin, status in (("https://evil.example", 403), (base, 200)):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{base}/v1/simulations:run",
                data=body,
                headers={"Origin": origin, "Content-Type": "text/plain"},
            ) as response,
        ):
            assert response.status == status, (origin, await response.text())


async def test_a_dropped_stream_stops_its_work_without_a_traceback(
    gateway: tuple[str, GraphRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    """A client that goes away mid-simulation: the work stops (should_stop) and the line is
    CANCELLED, not an INTERNAL error with a traceback (76 of those in one run before)."""
    base, registry = gateway
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{base}/v1/simulations:run", json={"samples": 1_000_000, "seed": 1}
        )
        assert response.status == 200
        first = await response.content.readline()
        assert b"progress" in first
        response.close()  # drop the connection mid-stream
    for _ in range(100):
        if registry.running_jobs == 0:
            break
        await asyncio.sleep(0.1)
    assert registry.running_jobs == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
