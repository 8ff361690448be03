"""What-if scenarios on the hand-computable fixture (tests/fixtures/small, as of 2024-06-01).

Baseline: the us-chip rule (severity .5, every destination) halves chip a's deliveries, so the
available capacity is a(p) = .6 x .5 + .4 x 1 = .7.
"""

from __future__ import annotations

import datetime as dt

import pytest

from sovrisk.models.errors import InvalidParameterError
from sovrisk.models.graph.schema import Provenance, Quality, Regime
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.models.scoring.scenarios import (
    ActivateRegime,
    AddRegime,
    DegradeCountry,
    DegradeNode,
    Scenario,
    ScenarioResult,
    SetParameter,
    SetShare,
    run_scenario,
)
from tests.conftest import SMALL_AS_OF

ABS = 1e-9


def run(engine: RiskEngine, *perturbations: object) -> ScenarioResult:
    params = engine.default_params()
    return run_scenario(engine, Scenario("t", tuple(perturbations)), params)  # type: ignore[arg-type]


def delta(result: ScenarioResult, quantity: str) -> tuple[float, float, float]:
    d = next(x for x in result.outcomes[0].deltas if x.quantity == quantity)
    return d.baseline, d.scenario, d.delta


def test_country_blockade(small_engine: RiskEngine) -> None:
    # TWN: f1 lost -> chip a (logic f1 only) 0; chip b logic .5 x 0 + .5 x 1 = .5
    # p = .6 x 0 + .4 x .5 = .2; 12 weeks x (.7 - .2) = 6 supply-weeks
    result = run(small_engine, DegradeCountry("TWN", 1.0, 12.0))
    assert delta(result, "available_capacity") == pytest.approx((0.7, 0.2, -0.5), abs=ABS)
    assert result.outcomes[0].lost_supply_weeks == pytest.approx(6.0, abs=ABS)
    # disruptions do not change the structural scores
    assert delta(result, "composite")[2] == pytest.approx(0.0, abs=ABS)
    assert result.scenario_version == result.baseline_version


def test_partial_node_degradation(small_engine: RiskEngine) -> None:
    # m1 at .5: a = min(1, .5 x .5 + .5 x 1) = .75, delivered at .5 -> .6 x .5 x .75 = .225
    # b = min(1, .5) = .5 -> .4 x .5 = .2; p = .425
    result = run(small_engine, DegradeNode("m1", 0.5))
    assert delta(result, "available_capacity") == pytest.approx((0.7, 0.425, -0.275), abs=ABS)


def test_leave_one_out_drivers(small_engine: RiskEngine) -> None:
    # both: p = .4 x min(.5, .5) = .2; without TWN: .425 (above) -> TWN's effect -.225;
    # without m1: .2 (TWN alone) -> m1's effect 0, masked by TWN: not a driver.
    result = run(small_engine, DegradeCountry("TWN"), DegradeNode("m1", 0.5))
    d = next(x for x in result.outcomes[0].deltas if x.quantity == "available_capacity")
    assert d.scenario == pytest.approx(0.2, abs=ABS)
    assert [(r.perturbation, round(r.effect, 9)) for r in d.drivers] == [(0, -0.225)]


def test_share_override_changes_structure(small_engine: RiskEngine) -> None:
    # b to .7 of the fleet, a rescaled to .3: available .3 x .5 + .7 = .85;
    # accelerator firm HHI 30^2 + 70^2 = 5800 (was 5200)
    result = run(small_engine, SetShare("p", "fleet", "b", 0.7))
    assert delta(result, "available_capacity") == pytest.approx((0.7, 0.85, 0.15), abs=ABS)
    layer = next(lc for lc in result.outcomes[0].scenario.layers if lc.layer == "accelerator")
    assert layer.firm_hhi == pytest.approx(5800.0, abs=1e-6)
    assert result.scenario_version != result.baseline_version


def test_activating_a_regime_for_another_destination_changes_nothing(
    small_engine: RiskEngine,
) -> None:
    # nl-euv binds deliveries to consumers sited in CHN only: none here
    result = run(small_engine, ActivateRegime("nl-euv"))
    assert delta(result, "available_capacity") == pytest.approx((0.7, 0.7, 0.0), abs=ABS)


def test_hypothetical_regime(small_engine: RiskEngine) -> None:
    # m2's deliveries all bound: a = min(1, .5 x 1 + .5 x 0) = .5, delivered at .5 -> .15;
    # b untouched .4 -> .55
    regime = Regime(
        id="ban-m2",
        issuer="USA",
        name="ban",
        instrument="",
        citation="",
        published=None,
        effective_from=dt.date(2024, 1, 1),
        effective_to=None,
        severity=1.0,
        reach_kinds=frozenset(),
        reach_tags=frozenset(),
        reach_nodes=frozenset({"m2"}),
        origin_countries=frozenset(),
        destination_countries=frozenset(),
        provenance=Provenance(("scenario",), Quality.C, dt.date(2024, 1, 1)),
    )
    result = run(small_engine, AddRegime(regime))
    assert delta(result, "available_capacity") == pytest.approx((0.7, 0.55, -0.15), abs=ABS)
    exposure = next(r for r in result.outcomes[0].scenario.regimes if r.regime == "ban-m2")
    assert exposure.in_force and exposure.veto == pytest.approx(0.3, abs=ABS)  # .6 x .5


def test_capacity_factor_and_scoring_parameter(small_engine: RiskEngine) -> None:
    # f2 at .5: b = min(1, .5 x 1 + .5 x .5, 1) = .75 -> p = .3 + .3 = .6 (a at .5: us-chip)
    result = run(small_engine, SetParameter("capacity.f2", 0.5))
    assert delta(result, "available_capacity") == pytest.approx((0.7, 0.6, -0.1), abs=ABS)
    # top_k 1 makes structural critical (100): the floor sets the composite; alpha 0 then
    # removes it again
    result = run(small_engine, SetParameter("top_k", 1.0))
    assert result.outcomes[0].scenario.floor_applied
    assert delta(result, "composite")[2] > 0
    result = run(small_engine, SetParameter("top_k", 1.0), SetParameter("alpha", 0.0))
    after = result.outcomes[0].scenario
    assert after.floor_uplift == pytest.approx(0.0, abs=ABS) and not after.floor_applied


def test_invalid_perturbations_are_all_reported(small_engine: RiskEngine) -> None:
    with pytest.raises(InvalidParameterError) as exc:
        run(
            small_engine,
            DegradeNode("nope", 1.5),
            SetShare("f1", "lithography", "a", 0.5),  # a consumes f1: a cycle
            SetShare("p", "no-such-category", "b", 0.5),
            SetParameter("colour", 1.0),
            DegradeCountry("ATL", 0.5, -1.0),
        )
    fields = [v.field for v in exc.value.violations]
    assert fields == [
        "perturbations[0].node",
        "perturbations[0].fraction_lost",
        "perturbations[1].supplier",
        "perturbations[2].category",
        "perturbations[3].name",
        "perturbations[4].country",
        "perturbations[4].duration_weeks",
    ]
    assert "cycle" in exc.value.violations[2].description


def test_scenario_is_reproducible(small_engine: RiskEngine) -> None:
    first = run(small_engine, DegradeCountry("KOR", 0.3), SetShare("p", "fleet", "b", 0.5))
    second = run(small_engine, DegradeCountry("KOR", 0.3), SetShare("p", "fleet", "b", 0.5))
    assert first == second
    assert first.as_of == SMALL_AS_OF
