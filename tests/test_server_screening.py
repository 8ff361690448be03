"""``RiskService.ScreenSuppliers`` over a real in-process server on the bundled data."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from sovrisk.service.grpc_gen.sovrisk.v1 import risk_pb2_grpc
from sovrisk.service.grpc_gen.sovrisk.v1 import screening_pb2 as s
from sovrisk.service.registry import DEFAULT_DATA_DIR, GraphRegistry
from sovrisk.service.server import RunningServer, start_server
from tests.test_server import bad_fields

SAMPLE = Path(__file__).parent / "fixtures" / "screening" / "sample_suppliers.csv"


@pytest_asyncio.fixture
async def risk() -> AsyncIterator[risk_pb2_grpc.RiskServiceStub]:
    running: RunningServer = await start_server(GraphRegistry.from_directory(DEFAULT_DATA_DIR))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield risk_pb2_grpc.RiskServiceStub(channel)
    finally:
        await running.stop(grace=0)


def _sample() -> list[s.SupplierRecord]:
    with SAMPLE.open(newline="") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    return [
        s.SupplierRecord(
            name=r["supplier"],
            country=r.get("country", ""),
            category=r.get("category", ""),
            spend=float(r["spend"]) if r.get("spend") else None,
        )
        for r in rows
    ]


async def test_listed_entities_are_flagged_with_their_citation(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    suppliers = _sample()
    response = await risk.ScreenSuppliers(s.ScreenSuppliersRequest(suppliers=suppliers))
    assert len(response.results) == len(suppliers)
    assert "not a compliance determination" in response.disclaimer
    assert (response.match_threshold, response.review_threshold) == (0.80, 0.55)
    by_name = {r.supplier.name: r for r in response.results}
    yang = next(r for n, r in by_name.items() if n == "YMTC")
    assert yang.entity_list_decision == s.MATCH_DECISION_MATCH
    best = yang.entity_list_candidates[0]
    assert best.kind == s.MATCH_TARGET_KIND_ENTITY_LIST
    assert best.entry.federal_register == "87 FR 77505"
    assert best.entry.source_url.startswith("https://www.federalregister.gov/")
    flagged = {
        r.supplier.name
        for r in response.results
        if r.entity_list_decision == s.MATCH_DECISION_MATCH
    }
    assert len(flagged) == 4  # SMIC, YMTC, SMEE, Cambricon as spelled in the sample
    tsmc = next(r for n, r in by_name.items() if n.startswith("Taiwan Semiconductor"))
    assert tsmc.graph_decision == s.MATCH_DECISION_MATCH
    assert tsmc.entity_list_decision == s.MATCH_DECISION_NO_MATCH
    assert "nodes/tsmc-n3" in tsmc.graph_candidates[0].nodes
    assert response.graph_version == "graph/versions/1"


async def test_bad_rows_and_thresholds_are_invalid_arguments(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    request = s.ScreenSuppliersRequest(
        suppliers=[s.SupplierRecord(name="ok"), s.SupplierRecord(name=" ", spend=-1)],
        match_threshold=1.5,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await risk.ScreenSuppliers(request)
    assert bad_fields(caught.value) == [
        "suppliers[1].name",
        "suppliers[1].spend",
        "match_threshold",
    ]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await risk.ScreenSuppliers(s.ScreenSuppliersRequest())
    assert bad_fields(caught.value) == ["suppliers"]
    # 3,000-character names once made 10,000 rows burn 246 s and overflow the response.
    long_rows = s.ScreenSuppliersRequest(
        suppliers=[s.SupplierRecord(name="n" * 3000, country="c" * 101, category="ok")]
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await risk.ScreenSuppliers(long_rows)
    assert bad_fields(caught.value) == ["suppliers[0].name", "suppliers[0].country"]
