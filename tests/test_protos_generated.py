"""The generated gRPC code is importable, matches the contract and is up to date with proto/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor

from sovrisk.service.grpc_gen.sovrisk.v1 import (
    common_pb2,
    graph_pb2,
    graph_pb2_grpc,
    risk_pb2,
    risk_pb2_grpc,
)

ROOT = Path(__file__).resolve().parent.parent

#: service -> rpc -> (request type, response type), fully qualified.
EXPECTED_RPCS: dict[str, dict[str, tuple[str, str]]] = {
    "sovrisk.v1.GraphService": {
        "GetGraph": ("sovrisk.v1.GetGraphRequest", "sovrisk.v1.Graph"),
        "ListNodes": ("sovrisk.v1.ListNodesRequest", "sovrisk.v1.ListNodesResponse"),
        "GetNode": ("sovrisk.v1.GetNodeRequest", "sovrisk.v1.Node"),
        "BatchUpdateGraph": (
            "sovrisk.v1.BatchUpdateGraphRequest",
            "sovrisk.v1.BatchUpdateGraphResponse",
        ),
        "ImportGraph": ("sovrisk.v1.ImportGraphRequest", "sovrisk.v1.ImportGraphResponse"),
        "ExportGraph": ("sovrisk.v1.ExportGraphRequest", "sovrisk.v1.ExportGraphResponse"),
        "ListGraphVersions": (
            "sovrisk.v1.ListGraphVersionsRequest",
            "sovrisk.v1.ListGraphVersionsResponse",
        ),
        "GetGraphVersion": ("sovrisk.v1.GetGraphVersionRequest", "sovrisk.v1.GraphVersion"),
        "DiffGraphVersions": (
            "sovrisk.v1.DiffGraphVersionsRequest",
            "sovrisk.v1.DiffGraphVersionsResponse",
        ),
    },
    "sovrisk.v1.RiskService": {
        "ScoreProvider": ("sovrisk.v1.ScoreProviderRequest", "sovrisk.v1.RiskAssessment"),
        "ListProviderScores": (
            "sovrisk.v1.ListProviderScoresRequest",
            "sovrisk.v1.ListProviderScoresResponse",
        ),
        "RunScenario": ("sovrisk.v1.RunScenarioRequest", "sovrisk.v1.RunScenarioResponse"),
        "SimulateDisruptions": (
            "sovrisk.v1.SimulateDisruptionsRequest",
            "sovrisk.v1.SimulateDisruptionsResponse",
        ),
        "ListChokepoints": (
            "sovrisk.v1.ListChokepointsRequest",
            "sovrisk.v1.ListChokepointsResponse",
        ),
        "CompareAssessments": (
            "sovrisk.v1.CompareAssessmentsRequest",
            "sovrisk.v1.CompareAssessmentsResponse",
        ),
        "WatchProviderScores": (
            "sovrisk.v1.WatchProviderScoresRequest",
            "sovrisk.v1.WatchProviderScoresResponse",
        ),
        "ScreenSuppliers": (
            "sovrisk.v1.ScreenSuppliersRequest",
            "sovrisk.v1.ScreenSuppliersResponse",
        ),
        "GetScoreTrajectory": (
            "sovrisk.v1.GetScoreTrajectoryRequest",
            "sovrisk.v1.GetScoreTrajectoryResponse",
        ),
        "GenerateReport": (
            "sovrisk.v1.GenerateReportRequest",
            "sovrisk.v1.GenerateReportResponse",
        ),
    },
}


@pytest.mark.parametrize("service_name", sorted(EXPECTED_RPCS))
def test_services_and_methods_are_in_the_descriptor_pool(service_name: str) -> None:
    service = descriptor_pool.Default().FindServiceByName(service_name)
    methods = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in service.methods}
    assert methods == EXPECTED_RPCS[service_name]
    server_streaming = {
        "SimulateDisruptions",
        "ExportGraph",
        "WatchProviderScores",
        "GenerateReport",
    }
    client_streaming = {"ImportGraph"}
    for method in service.methods:
        assert method.client_streaming == (method.name in client_streaming), method.name
        assert method.server_streaming == (method.name in server_streaming), method.name


def test_stubs_and_servicers_are_generated() -> None:
    for module, service in ((graph_pb2_grpc, "GraphService"), (risk_pb2_grpc, "RiskService")):
        assert hasattr(module, f"{service}Stub")
        assert hasattr(module, f"{service}Servicer")
        assert hasattr(module, f"add_{service}Servicer_to_server")


def test_generated_package_lives_inside_service() -> None:
    for module in (common_pb2, graph_pb2, risk_pb2, graph_pb2_grpc, risk_pb2_grpc):
        assert module.__name__.startswith("sovrisk.service.grpc_gen.sovrisk.v1.")
    assert graph_pb2.DESCRIPTOR.package == "sovrisk.v1"
    assert risk_pb2.DESCRIPTOR.name == "sovrisk/v1/risk.proto"


def test_enums_start_with_prefixed_unspecified() -> None:
    for module in (common_pb2, graph_pb2, risk_pb2):
        for enum in module.DESCRIPTOR.enum_types_by_name.values():
            prefix = "".join(
                f"_{c}" if c.isupper() and i else c.upper() for i, c in enumerate(enum.name)
            )
            assert enum.values[0].name == f"{prefix}_UNSPECIFIED", enum.full_name
            assert enum.values[0].number == 0
            assert all(v.name.startswith(f"{prefix}_") for v in enum.values), enum.full_name


def test_scoring_weights_have_presence() -> None:
    weights = risk_pb2.ScoringWeights(structural=0.5)
    assert weights.HasField("structural")
    assert not weights.HasField("concentration")
    fields = risk_pb2.ScoringWeights.DESCRIPTOR.fields
    assert [f.name for f in fields] == [
        "concentration",
        "structural",
        "geopolitical",
        "export_control",
        "resilience",
        "tail",
    ]  # the six sub-scores of the composite
    assert all(f.has_presence and f.type == FieldDescriptor.TYPE_DOUBLE for f in fields)


def test_messages_round_trip() -> None:
    assessment = risk_pb2.RiskAssessment(
        provider="providers/aws",
        composite=71.3,
        band=risk_pb2.RISK_BAND_HIGH,
        sub_scores=[
            risk_pb2.SubScore(
                key=risk_pb2.SUB_SCORE_KEY_STRUCTURAL, score=88.1, weight=0.3, contribution=26.43
            )
        ],
        provenance=common_pb2.ResultProvenance(dataset_hash="0" * 64, parameters={"alpha": "0.8"}),
    )
    again = risk_pb2.RiskAssessment.FromString(assessment.SerializeToString(deterministic=True))
    assert again == assessment
    node = graph_pb2.Node(name="nodes/tsmc-n3", kind=common_pb2.NODE_KIND_FOUNDRY_PROCESS)
    assert graph_pb2.Node.FromString(node.SerializeToString()) == node


def test_generated_code_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
