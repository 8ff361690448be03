"""Violations name the request's own fields, and list items and ids are bounded (issue 13
item 13): a scenario's bad `alpha` is `perturbations[0].parameter.value`, a source "a;b" is
refused instead of silently stored as two sources, an id of 10,000 characters is refused."""

from __future__ import annotations

import grpc
import pytest
from google.type import date_pb2

from sovrisk.service.grpc_gen.sovrisk.v1 import graph_pb2, risk_pb2, scenario_pb2
from sovrisk.service.grpc_gen.sovrisk.v1 import version_pb2 as v
from tests import test_server_versions as versions
from tests.test_server import bad_fields, rpc_error
from tests.test_server_versions import EDITOR, Stubs

server, stubs = versions.server, versions.stubs
AS_OF = date_pb2.Date(year=2024, month=3, day=1)


def _batch(change: v.GraphChange) -> graph_pb2.BatchUpdateGraphRequest:
    return graph_pb2.BatchUpdateGraphRequest(
        parent="graph", base_version="graph/versions/1", changes=[change], message="m"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("alpha", 7.0), ("top_k", -3.0), ("top_k", 2.5), ("weights.structural", 2.0)],
)
async def test_a_bad_scenario_parameter_is_named_by_its_perturbation(
    stubs: Stubs, name: str, value: float
) -> None:
    _, risk = stubs
    keep = scenario_pb2.Perturbation(
        parameter=scenario_pb2.ParameterOverride(name="alpha", value=0.5)
    )
    bad = scenario_pb2.Perturbation(
        parameter=scenario_pb2.ParameterOverride(name=name, value=value)
    )
    request = risk_pb2.RunScenarioRequest(perturbations=[keep, bad] if name != "alpha" else [bad])
    error = await rpc_error(risk.RunScenario(request))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    index = 1 if name != "alpha" else 0
    assert bad_fields(error) == [f"perturbations[{index}].parameter.value"]


async def test_a_list_item_with_the_separator_is_refused_not_split(stubs: Stubs) -> None:
    graph, _ = stubs
    edge = v.EdgeRecord(
        consumer="a",
        category="memory",
        supplier="m1",
        share=1.0,
        quality="B",
        sources=["fixture", "fixture;fixture"],
        as_of=AS_OF,
    )
    error = await rpc_error(
        graph.BatchUpdateGraph(_batch(v.GraphChange(upsert_edge=edge)), metadata=EDITOR)
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["changes[0].upsert_edge.sources[1]"]
    node = v.NodeRecord(
        id="m1", kind="memory", name="M1", owner="O", hq_country="KOR", layer="memory",
        tags=[""], quality="A", sources=["fixture"], as_of=AS_OF,
    )  # fmt: skip
    error = await rpc_error(
        graph.BatchUpdateGraph(_batch(v.GraphChange(upsert_node=node)), metadata=EDITOR)
    )
    assert bad_fields(error) == ["changes[0].upsert_node.tags[0]"]


async def test_record_ids_are_bounded(stubs: Stubs) -> None:
    graph, _ = stubs
    node = v.NodeRecord(
        id="x" * 10_000, kind="memory", name="N", owner="O", hq_country="USA",
        layer="memory", quality="A", sources=["fixture"], as_of=AS_OF,
    )  # fmt: skip
    request = _batch(v.GraphChange(upsert_node=node))
    error = await rpc_error(graph.BatchUpdateGraph(request, metadata=EDITOR))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["changes[0].upsert_node.id"]
    assert "longer than 100 characters" in (error.details() or "")
    assert len(error.details() or "") < 1000  # the id is echoed clipped, not whole


async def test_all_six_weights_can_be_set(stubs: Stubs) -> None:
    """ScoringWeights had four fields for the six sub-scores: resilience and tail could not be
    weighted through the API. Setting them is renormalised and said, like the others."""
    _, risk = stubs
    weights = risk_pb2.ScoringWeights(tail=1.0, resilience=0.0)
    scored = await risk.ScoreProvider(
        risk_pb2.ScoreProviderRequest(name="providers/p", weights=weights)
    )
    assert "resilience 0 -> 0.000, tail 1 -> 0.556" in scored.notes[0]
