"""The HTTP/JSON gateway, in process on port 0: routes from the contract's google.api.http
rules, canonical proto JSON, AIP-193 errors, NDJSON streams, and the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from google.api import annotations_pb2

from service.auth import TokenAuthenticator
from service.gateway.openapi import openapi_document
from service.gateway.routes import routes_of
from service.gateway.server import SERVICES, RunningGateway, start_gateway
from service.registry import GraphRegistry
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
    assert len(routes) == len(methods)
    doc = openapi_document(routes)
    operations = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert operations == {f"{m.containing_service.name}_{m.name}" for m in methods}
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
