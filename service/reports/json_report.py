"""JSON: the proto JSON mapping of the report's messages, in one deterministic document.

``{"assessments": [RiskAssessment...], "chokepoints": [Chokepoint...], "provenance":
ResultProvenance, "scoreInterpretation": ..., "simulation": SimulationResult, "trajectory":
[TrajectoryRow...]}`` (simulation only when simulated, trajectory only when asked for).
Each value parses back with ``json_format.ParseDict`` into its message.
Keys are sorted and floats printed by ``repr``, so the same inputs give the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from sovrisk.models.scoring.assessment import SCORE_INTERPRETATION
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.service import converters as conv
from sovrisk.service import simulation_converters as sim_conv
from sovrisk.service.grpc_gen.sovrisk.v1 import common_pb2, risk_pb2, simulation_pb2
from sovrisk.service.reports.data import ReportData

_CHOKEPOINT_KIND = {
    "node": risk_pb2.CHOKEPOINT_KIND_NODE,
    "firm": risk_pb2.CHOKEPOINT_KIND_FIRM,
    "country": risk_pb2.CHOKEPOINT_KIND_COUNTRY,
}


def _dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def report_provenance(engine: RiskEngine, data: ReportData) -> common_pb2.ResultProvenance:
    """The report's provenance: the scores' parameters plus what the report added."""
    extra = {"report.providers": ",".join(data.provider_ids)}
    if data.simulation is not None:
        extra |= {
            "samples": str(data.simulate_samples),
            "node_failure_probability": repr(data.node_failure_probability),
            "events": ",".join(e.id for e in data.simulation.result.events),
        }
    message = conv.result_provenance_to_proto(engine.provenance(data.params, **extra))
    message.seed = data.seed if data.simulation is not None else 0
    return message


def simulation_message(engine: RiskEngine, data: ReportData) -> simulation_pb2.SimulationResult:
    assert data.simulation is not None
    message = sim_conv.result_to_proto(
        data.simulation.result, None, data.names(), report_provenance(engine, data)
    )
    return message


def chokepoint_messages(engine: RiskEngine, data: ReportData) -> list[risk_pb2.Chokepoint]:
    out = []
    for kind, rows in data.chokepoints.items():
        for rank, c in enumerate(rows, start=1):
            out.append(
                conv.chokepoint_to_proto(
                    engine.graph,
                    c.key,
                    list(c.impacts),
                    kind=_CHOKEPOINT_KIND[kind],
                    rank=rank,
                    min_impact=data.min_impact,
                )
            )
    return out


def render(engine: RiskEngine, data: ReportData) -> bytes:
    doc: dict[str, Any] = {
        "assessments": [_dict(conv.assessment_to_proto(engine.graph, a)) for a in data.assessments],
        "chokepoints": [_dict(c) for c in chokepoint_messages(engine, data)],
        "provenance": _dict(report_provenance(engine, data)),
        "scoreInterpretation": SCORE_INTERPRETATION,
    }
    if data.simulation is not None:
        doc["simulation"] = _dict(simulation_message(engine, data))
    if data.trajectory:
        doc["trajectory"] = [_dict(conv.trajectory_row_to_proto(r)) for r in data.trajectory]
    if data.uncertainty is not None:
        u = data.uncertainty
        doc["uncertainty"] = {
            "providers": [
                _dict(message)
                for a in data.assessments
                if (message := conv.uncertainty_to_proto(u, a.provider)) is not None
            ],
            "pairOrders": [_dict(o) for o in conv.pair_orders_to_proto(u)],
        }
    text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")
