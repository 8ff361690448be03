"""Issue 10 on the bundled data (METHODS v2 §10): dated fleets, CoWoS easing by allocation
rule, the rule deciding who loses, and a qualifiable second source. Figures as measured by
``sovrisk trajectory`` / ``sovrisk scenario`` on dataset 2026.11.0 (deterministic)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from sovrisk.models.analysis.allocation import AllocationRule
from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.graph.series import Quarter
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.models.scoring.scenarios import (
    DegradePool,
    QualifyAlternate,
    Scenario,
    SetCapacity,
    run_scenario,
)
from sovrisk.models.scoring.trajectory import TrajectoryPoint, trajectory

DATA = Path(__file__).resolve().parent.parent / "data"
RULES = (
    AllocationRule.PRO_RATA,
    AllocationRule.RESERVATIONS_FIRST,
    AllocationRule.CUSTOM_FIRST,
)
COWOS_USERS = ("aws", "coreweave", "google-cloud", "meta", "microsoft-azure", "oracle-oci")


@pytest.fixture(scope="module")
def engine() -> RiskEngine:
    return RiskEngine(*load_bundle(DATA))


@pytest.fixture(scope="module")
def aws(engine: RiskEngine) -> dict[str, TrajectoryPoint]:
    rows = trajectory(engine, ["aws"], Quarter(2024, 1), Quarter(2027, 4), engine.default_params())
    return {r.quarter: r for r in rows}


def test_the_dataset_quarter_is_the_stored_graph(engine: RiskEngine) -> None:
    # edges.csv's fleet rows are fleet.csv's 2026Q4 mixes (compute-weighted, 4 decimals)
    assert engine.at(engine.graph.info.as_of) is engine
    assert engine.at(dt.date(2025, 6, 30)) is not engine
    assert engine.at(dt.date(2025, 6, 30)) is engine.at(dt.date(2025, 4, 1))  # one per quarter


def test_aws_own_silicon_rises_with_the_trainium_ramp_and_scores_follow(
    aws: dict[str, TrajectoryPoint],
) -> None:
    own = {q: r.assessment.sovereignty.own_silicon_share for q, r in aws.items()}  # type: ignore[union-attr]
    composite = {q: r.composite for q, r in aws.items()}
    concentration = {q: r.assessment.sub_score("concentration").score for q, r in aws.items()}
    # 2025: Trainium2 and the first Trainium3 ramp from 212,500 to 355,000 units a quarter;
    # own silicon's share of AWS's new compute 0.410 -> 0.493, and the composite falls with
    # it (53.29 -> 53.00, 2026.12 data). Concentration barely moves (54.78 -> 54.88): the
    # memory layer diversifies (Trainium's HBM from three vendors: 53.2 -> 48.4) and the
    # design layer too (64.5 -> 63.3), while foundry (72.6 -> 75.2) and packaging
    # (43.8 -> 46.7) concentrate on TSMC as Trainium replaces GPUs with Intel/AMD hosts.
    assert aws["2025Q1"].new_units == pytest.approx(375_200)
    assert aws["2025Q4"].new_units == pytest.approx(484_900)
    assert own["2025Q1"] == pytest.approx(0.410, abs=0.002)
    assert own["2025Q4"] == pytest.approx(0.493, abs=0.002)
    assert composite["2025Q4"] < composite["2025Q1"]
    assert abs(concentration["2025Q4"] - concentration["2025Q1"]) < 0.5
    memory = {
        q: next(lc.score for lc in r.assessment.layers if lc.layer == "memory")  # type: ignore[union-attr]
        for q, r in aws.items()
    }
    assert memory["2025Q4"] < memory["2025Q1"] - 4.0
    # 2026-27: Rubin's compute (6 H100e a unit) outgrows Trainium3's: own compute 0.35
    # (2026Q2) -> 0.24 (2027Q2) and the scores rise back (composite 49.55 -> 52.49).
    assert own["2027Q2"] < own["2026Q2"] - 0.1
    assert composite["2027Q2"] > composite["2026Q2"] + 2.0
    # By count AWS's chips stay mostly its own (0.78 in 2024Q1, 0.58 in 2027Q4).
    assert aws["2024Q1"].own_silicon_unit_share == pytest.approx(0.783, abs=0.002)
    assert aws["2027Q4"].own_silicon_unit_share == pytest.approx(0.58, abs=0.002)


def test_own_silicon_still_runs_through_tsmc(aws: dict[str, TrajectoryPoint]) -> None:
    # Design sovereignty is not supply sovereignty: in every quarter TSMC (the merchant
    # fleet's chokepoint) would cut 0.77-0.90 of AWS's own silicon at 13 weeks.
    for row in aws.values():
        sov = row.assessment.sovereignty
        assert sov is not None
        assert sov.shared_chokepoints[0].firm == "TSMC"
        assert 0.75 <= sov.shared_exposure <= 0.91


def _shortfall(engine: RiskEngine, day: dt.date, rule: AllocationRule) -> dict[str, float]:
    _, by_rule = engine.at(day).pool_shortfalls()["cowos"]
    return {p: float(by_rule[rule][k]) for k, p in enumerate(engine.provider_ids)}


@pytest.mark.parametrize("rule", RULES)
def test_cowos_easing_lowers_every_shortfall_under_every_rule(
    engine: RiskEngine, rule: AllocationRule
) -> None:
    # CoWoS good output per unit of demand: 35k/44k = 0.795 (end-2024) -> 125k x 0.98 / 136k
    # = 0.901 (end-2026). Shortfalls 2024Q4 -> 2026Q4, e.g. pro rata aws 0.192 -> 0.093,
    # reservations first google-cloud 0.229 -> 0.117, custom first coreweave 0.305 -> 0.138.
    before = _shortfall(engine, dt.date(2024, 12, 31), rule)
    after = _shortfall(engine, dt.date(2026, 12, 31), rule)
    for provider in COWOS_USERS:
        assert after[provider] < before[provider], (provider, rule)
    pool, _ = engine.at(dt.date(2024, 12, 31)).pool_shortfalls()["cowos"]
    assert pool.output == pytest.approx(35_000 / 44_000)


def test_the_rule_decides_who_loses_a_20_percent_cowos_shortfall(engine: RiskEngine) -> None:
    # CoWoS capacity x 0.8 in 2026Q4. Reservations first (NVIDIA holds 55 % of capacity):
    # Google (TPUs through Broadcom) loses most, 0.110, CoreWeave least, 0.004. Custom chips
    # first: Oracle 0.164 and CoreWeave 0.161 (NVIDIA and AMD) lose most, Google least, 0.059.
    params = engine.default_params()
    lost: dict[AllocationRule, dict[str, float]] = {}
    for rule in RULES:
        result = run_scenario(
            engine, Scenario("CoWoS -20 %", (SetCapacity("cowos", 0.8),), rule), params
        )
        lost[rule] = {
            o.provider: o.available_baseline - o.available_scenario for o in result.outcomes
        }
    reservations, custom = (
        lost[AllocationRule.RESERVATIONS_FIRST],
        lost[AllocationRule.CUSTOM_FIRST],
    )
    worst = {rule: max(COWOS_USERS, key=lambda p: lost[rule][p]) for rule in lost}
    assert worst[AllocationRule.RESERVATIONS_FIRST] == "google-cloud"
    assert worst[AllocationRule.CUSTOM_FIRST] in ("coreweave", "oracle-oci")
    assert reservations["google-cloud"] == pytest.approx(0.110, abs=0.003)
    assert reservations["coreweave"] == pytest.approx(0.004, abs=0.003)
    assert custom["coreweave"] == pytest.approx(0.161, abs=0.003)
    assert custom["google-cloud"] == pytest.approx(0.059, abs=0.003)
    # Pro rata everyone loses in proportion to dependence: 0.085 (Google) - 0.100.
    pro = lost[AllocationRule.PRO_RATA]
    assert max(pro[p] for p in COWOS_USERS) - min(pro[p] for p in COWOS_USERS) < 0.025


def _icube(engine: RiskEngine, weeks: float, lead: float, horizon: float, alt: bool) -> float:
    """AWS's supply-weeks lost to all of CoWoS down for ``weeks`` (scenario at ``horizon``),
    with or without Samsung I-Cube qualifiable for 30 % of CoWoS-L's flow after ``lead``."""
    perturbations: list = [DegradePool("cowos", 1.0, weeks)]
    if alt:
        perturbations.append(
            QualifyAlternate("tsmc-cowos-l", "samsung-icube", "packaging", lead, 0.3)
        )
    params = replace(engine.default_params(), horizon_weeks=horizon)
    result = run_scenario(engine, Scenario("CoWoS down", tuple(perturbations)), params, ["aws"])
    return result.outcomes[0].lost_supply_weeks


def test_a_second_cowos_source_helps_only_once_qualified(engine: RiskEngine) -> None:
    # CoWoS down for 52 weeks: I-Cube qualified at 26 weeks cuts AWS's loss over the year
    # from 40.64 to 35.62 supply-weeks (it delivers 30 % x (1 - 26/52) of CoWoS-L's flow).
    without = _icube(engine, 52, 26, 52, alt=False)
    with_icube = _icube(engine, 52, 26, 52, alt=True)
    assert with_icube < without - 3.0
    # A 12-week outage is over before a 26-week qualification ends: the same 7.25
    # supply-weeks with or without it. Pre-qualified (8 weeks) it helps: 7.37 -> 6.76 at 13.
    assert _icube(engine, 12, 26, 52, alt=True) == pytest.approx(_icube(engine, 12, 26, 52, False))
    assert _icube(engine, 12, 8, 13, alt=True) < _icube(engine, 12, 8, 13, alt=False)
