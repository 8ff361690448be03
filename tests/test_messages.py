"""Messages that must agree with the numbers beside them, on the bundled data (2026.12.0, as of
2026-12-01, headline horizon 13 weeks).

- A realised disruption (a 12-week Taiwan blockade) moves available capacity, not the
  composite, and the scenario outcome says why, with the figures.
- Single points of failure are counted as distinct nodes, and provider-node pairs say so.
- The tail sub-score (CVaR95 of annual loss) and the simulation's P95 (VaR95 of the same
  annual losses) name their measures and point at each other.
- Weight overrides that do not sum to 1 are renormalised, and the assessment says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sovrisk.models.engine.impacts import CountryEvent
from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.scoring.params import ScoringParams
from sovrisk.models.scoring.risk_engine import SIMULATION_MEASURES, RiskEngine
from sovrisk.models.scoring.scenarios import DegradeCountry, Scenario, ScenarioResult, run_scenario
from sovrisk.service import converters as conv
from sovrisk.service import scenario_converters as scenario_conv
from sovrisk.service import simulation_converters as sim_conv
from sovrisk.service.grpc_gen.sovrisk.v1 import common_pb2
from sovrisk.service.reports import build_report
from sovrisk.service.scenario_cli import render as render_scenario
from sovrisk.service.simulation_cli import render as render_simulation
from sovrisk.service.text_report import assessment_detail, ranking_table

BUNDLED = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="module")
def engine() -> RiskEngine:
    return RiskEngine(*load_bundle(BUNDLED))


@pytest.fixture(scope="module")
def blockade(engine: RiskEngine) -> ScenarioResult:
    scenario = Scenario(
        "taiwan-blockade", (DegradeCountry("TWN", 1.0, 12.0, CountryEvent.BLOCKADE),)
    )
    return run_scenario(engine, scenario, engine.default_params(), ["aws"])


# -- 1. a realised scenario and the ex-ante composite ---------------------------------------

#: AWS under a 12-week Taiwan blockade: capacity 0.947 -> 0.220 at 13 weeks, 8.50 supply-weeks
#: and US$ 32.71 bn of capex (of 200) lost, composite 55.1 -> 55.1.
AWS_BLOCKADE = (
    "The composite (55.1 -> 55.1) is an ex-ante risk score of the supply structure and does "
    "not move under a realised disruption; this scenario's realised loss is shown in available "
    "capacity (0.947 -> 0.220 at 13 weeks) and lost supply: 8.50 weeks of supply lost over 12 "
    "weeks, US$ 32.71 bn of AI capex idled."
)


def test_blockade_figures(blockade: ScenarioResult) -> None:
    o = blockade.outcomes[0]
    composite = next(d for d in o.deltas if d.quantity == "composite")
    assert (o.available_baseline, o.available_scenario) == pytest.approx((0.947, 0.220), abs=5e-4)
    assert (composite.baseline, composite.scenario) == pytest.approx((55.147, 55.147), abs=5e-4)
    assert o.lost_supply_weeks == pytest.approx(8.504, abs=5e-4)
    assert o.lost_capex_usd_bn == pytest.approx(32.708, abs=5e-4)


def test_blockade_says_why_the_composite_stays(blockade: ScenarioResult) -> None:
    assert blockade.outcomes[0].explanations == (AWS_BLOCKADE,)
    response = scenario_conv.result_to_proto(blockade)
    assert list(response.outcomes[0].explanations) == [AWS_BLOCKADE]
    assert f"Amazon Web Services: {AWS_BLOCKADE}" in render_scenario(blockade).splitlines()


# -- 2. single points of failure: distinct nodes, provider-node pairs ------------------------

#: Six distinct nodes: the three EUV nodes for six US providers, three NVIDIA nodes for
#: CoreWeave alone; 6 x 3 + 3 = 21 provider-node pairs.
SPOF_SUMMARY = (
    "Single points of failure: 6 distinct node(s) (asml-euv, cymer-euv-source, nvidia-connectx, "
    "nvidia-design, nvidia-nvswitch, zeiss-smt-optics), 21 provider–node pair(s) (the SPOFs "
    "column counts nodes per provider)."
)


def test_spofs_are_counted_as_distinct_nodes(engine: RiskEngine) -> None:
    assessments = engine.assess_all(engine.default_params())
    assert sum(a.spof_count for a in assessments) == 21
    html = build_report(engine, fmt="html", providers=None, as_of=None).decode()
    assert "single points of failure (distinct nodes)<b>6</b>" in html
    assert "<small>21 provider–node pairs</small>" in html
    assert "single points of failure<b>21</b>" not in html
    markdown = build_report(engine, fmt="md", providers=None, as_of=None).decode()
    assert SPOF_SUMMARY in markdown.splitlines()
    assert SPOF_SUMMARY in ranking_table(assessments, width=None).splitlines()


# -- 3. the tail sub-score's CVaR95 and the simulation's P95 --------------------------------


def test_tail_sentence_names_its_measure_and_the_p95(engine: RiskEngine) -> None:
    a = engine.assess("aws", engine.default_params())
    assert a.sub_score("tail").explanation == (
        "CVaR95 of the simulated annual-loss distribution 0.427: in the worst 5 % of simulated "
        "years (1 in 20) the provider loses 42.7 % of its annual supply on average; the P95 "
        "(VaR95) of the same annual losses, the loss exceeded in 1 year in 20 that "
        "SimulateDisruptions reports, is 0.087. Expected annual loss 2.76 %, 1-in-100-year loss "
        "78.5 % (10,000 samples, seed 0; 100 x CVaR95 / (CVaR95 + 0.25))."
    )


def test_simulation_names_p95_and_points_at_the_tail_score(engine: RiskEngine) -> None:
    result = engine.tail_result()  # what SimulateDisruptions gives for a default request
    assert result is not None
    aws = next(p for p in result.providers if p.provider == "aws")
    assert (aws.p95, aws.cvar95) == pytest.approx((0.087, 0.427), abs=5e-4)
    for phrase in (
        "share of the provider's annual AI-accelerator supply lost in one simulated year",
        "95th percentile (VaR95) of the annual losses over the sampled years",
        "P95 is the loss exceeded in 1 sampled year in 20",
        "the tail sub-score scores the CVaR95 of this annual-loss distribution",
        "not its P95",
    ):
        assert phrase in SIMULATION_MEASURES
    names = {p: engine.graph.nodes[p].name for p in engine.provider_ids}
    message = sim_conv.result_to_proto(result, None, names, common_pb2.ResultProvenance())
    assert message.score_interpretation == SIMULATION_MEASURES
    lines = render_simulation(result, None, names).splitlines()
    assert "P95 is the loss exceeded in 1 sampled year in 20" in " ".join(lines[1:7])
    assert any(
        line.startswith("Amazon Web Services         0.028 0.0011  0.001  0.087   0.427")
        for line in lines
    )


# -- 4. renormalised weight overrides ------------------------------------------------------

WEIGHT_NOTE = (
    "weights renormalised to sum to 1 (given weights summed to 1.26): structural 0.5 -> 0.397, "
    "concentration 0.2 -> 0.159, geopolitical 0.2 -> 0.159, export_control 0.16 -> 0.127, "
    "resilience 0.1 -> 0.079, tail 0.1 -> 0.079"
)


def test_weight_override_is_renormalised_and_said(engine: RiskEngine) -> None:
    as_of = engine.graph.info.as_of
    params = ScoringParams.build(as_of=as_of, weights={"structural": 0.5})
    a = engine.assess("aws", params)
    assert a.sub_score("structural").weight == pytest.approx(0.5 / 1.26, abs=1e-12)
    assert round(a.sub_score("structural").weight, 3) == 0.397
    assert a.notes == (WEIGHT_NOTE,)
    assert list(conv.assessment_to_proto(engine.graph, a).notes) == [WEIGHT_NOTE]
    assert f"note: {WEIGHT_NOTE}" in assessment_detail(a).splitlines()
    # the defaults sum to 1: nothing renormalised, nothing said
    assert engine.assess("aws", engine.default_params()).notes == ()
    assert ScoringParams.build(as_of=as_of) == ScoringParams(as_of=as_of)
