"""Cached reads are sent as stored bytes (issue 14 item 1): the published ScoreProvider and
ListProviderScores are serialised once per (version, request); the bytes equal a fresh
serialisation, the gateway's JSON equals a fresh conversion, a caller's own weighting is not
cached, an edit (a new version) is a new key, and the cache is bounded by its bytes."""

from __future__ import annotations

import json

import aiohttp
import grpc

from sovrisk.service.gateway.server import start_gateway
from sovrisk.service.grpc_gen.sovrisk.v1 import risk_pb2, risk_pb2_grpc
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.response_cache import Encoded, ResponseCache, passthrough_serializer
from sovrisk.service.server import start_server
from tests.conftest import SMALL


def test_the_cache_is_bounded_by_bytes_least_recently_used_first() -> None:
    cache = ResponseCache(max_bytes=250)
    message = risk_pb2.RiskAssessment(provider="p" * 100)  # ~103 bytes
    for k in "abc":
        cache.put(k, message)
    assert len(cache) == 2 and cache.size_bytes <= 250  # "a" went first
    assert cache.get("a") is None and cache.get("b") is not None
    cache.put("d", message)  # "c" is now the least recently used
    assert cache.get("c") is None and cache.get("b") is not None
    assert (cache.hits, cache.misses) == (2, 2)
    encoded = cache.get("d")
    assert isinstance(encoded, Encoded) and encoded.data == message.SerializeToString()
    serialize = passthrough_serializer(risk_pb2.RiskAssessment.SerializeToString)
    assert serialize(encoded) is encoded.data and serialize(message) == encoded.data


async def test_published_reads_are_served_from_their_bytes() -> None:
    registry = GraphRegistry.from_directory(SMALL)
    running = await start_server(registry, port=0)
    gateway = await start_gateway(registry, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            request = risk_pb2.ScoreProviderRequest(name="providers/p")
            first = await risk.ScoreProvider(request)
            again = await risk.ScoreProvider(request)
            assert first == again and first.composite > 0
            assert first.SerializeToString() == again.SerializeToString()
            ranking = risk_pb2.ListProviderScoresRequest()
            assert await risk.ListProviderScores(ranking) == await risk.ListProviderScores(ranking)
            assert running.risk is not None
            cache = running.risk.responses
            assert (cache.hits, len(cache)) == (2, 2)
            # A caller's own weighting is computed, not cached.
            weighted = risk_pb2.ScoreProviderRequest(
                name="providers/p", weights=risk_pb2.ScoringWeights(structural=0.9)
            )
            await risk.ScoreProvider(weighted)
            await risk.ScoreProvider(weighted)
            assert (cache.hits, len(cache)) == (2, 2)
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{gateway.port}/v1/providers/p:score"
            bodies = []
            for _ in range(2):
                async with session.get(url) as response:
                    assert response.status == 200
                    bodies.append(json.loads(await response.text()))
        assert bodies[0] == bodies[1] and bodies[0]["composite"] == first.composite
    finally:
        await gateway.stop()
        await running.stop(0)
        registry.close()


def test_a_basic_assessment_is_the_full_one_without_the_detail() -> None:
    """BASIC is built from the headline fields alone (not converted in full and then cut):
    the same message as FULL with every non-BASIC field cleared."""
    from sovrisk.service import converters as conv

    registry = GraphRegistry.from_directory(SMALL)
    try:
        engine = registry.engine
        assessment = engine.assess("p", engine.default_params())
        full = conv.assessment_to_proto(engine.graph, assessment)
        basic = conv.assessment_to_proto(engine.graph, assessment, basic=True)
        cut = risk_pb2.RiskAssessment()
        cut.CopyFrom(full)
        for field in cut.DESCRIPTOR.fields:
            if field.name not in conv.BASIC_ASSESSMENT_FIELDS:
                cut.ClearField(field.name)
        assert basic == cut and basic.ByteSize() < full.ByteSize()
        assert basic.composite == full.composite and list(basic.sub_scores) == list(full.sub_scores)
    finally:
        registry.close()
