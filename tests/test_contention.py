"""Buyer-side contention on shared bottlenecks, worked out by hand.

tests/fixtures/small (one provider p): p = .6 a + .4 b; a = min(f1, .5 m1 + .5 m2);
b = min(.5 f1 + .5 f2, m1); f1 = f2 = t. Flows: f1 .8, m1 .7, m2 .3, t 1.

tests/fixtures/resilience_small adds provider q buying only chip b (flows: b 1, f1 .5, f2 .5,
m1 1, t 1) and tags m1 and m2 'hbm'; provider_demand.csv gives p 3, q 1 (w = .75, .25).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sovrisk.models.analysis.contention import (
    DEFAULT_SHORTFALLS,
    ContentionResult,
    contention_analysis,
)
from sovrisk.models.errors import InvalidParameterError, NotFoundError
from sovrisk.models.graph.loader import load_dataset
from sovrisk.models.graph.resilience_data import load_provider_demand
from sovrisk.models.scoring.risk_engine import RiskEngine
from tests.conftest import FIXTURES

RES_SMALL = FIXTURES / "resilience_small"
DATA = Path(__file__).resolve().parent.parent / "data"
ABS = 1e-9


@pytest.fixture(scope="module")
def rs_engine() -> RiskEngine:
    return RiskEngine(load_dataset(RES_SMALL))


@pytest.fixture(scope="module")
def rs(rs_engine: RiskEngine) -> ContentionResult:
    return contention_analysis(rs_engine, load_provider_demand(RES_SMALL, rs_engine.graph))


def losses(result: ContentionResult, key: str, provider: str) -> list[float]:
    row = next(c for c in result.bottleneck(key).providers if c.provider == provider)
    return [s.lost for s in row.shortfalls]


# -- one provider: the share is 1, the shortfall follows a(p | up = 1 - f) -----------------------


def test_single_provider_pro_rata_shortfall(small_engine: RiskEngine) -> None:
    result = contention_analysis(small_engine, nodes=["m1", "f1", "t"])
    assert result.shortfalls == DEFAULT_SHORTFALLS == (0.1, 0.25, 0.5)
    m1 = result.bottleneck("m1")
    (p,) = m1.providers
    assert (p.flow, p.demand_share, p.demand_weight) == pytest.approx((0.7, 1.0, 1.0))
    assert p.dependence == pytest.approx(0.7, abs=ABS)  # I_p(m1)
    assert m1.buyer_hhi == pytest.approx(10_000.0) and m1.top_buyer == "p"
    # up(m1) = .5: a = min(1, .5 x .5 + .5) = .75, b = min(1, .5) = .5 -> p = .45 + .2 = .65
    # up(m1) = .9: a = .95, b = .9 -> .57 + .36 = .93; up = .75: a .875, b .75 -> .825
    assert losses(result, "m1", "p") == pytest.approx([0.07, 0.175, 0.35], abs=ABS)
    # up(f1) = .5: a = .5, b = min(.5 x .5 + .5, 1) = .75 -> .3 + .3 = .6: loses .4
    assert losses(result, "f1", "p")[2] == pytest.approx(0.4, abs=ABS)
    # up(t) = .5: f1 = f2 = .5 -> a = .5, b = .5 -> loses .5 (dependence 1)
    assert losses(result, "t", "p") == pytest.approx([0.1, 0.25, 0.5], abs=ABS)
    assert result.bottleneck("t").providers[0].lost_at(0.25) == pytest.approx(0.25)


def test_a_group_is_short_all_at_once(small_engine: RiskEngine) -> None:
    # {f1, m1} each at .5: a = min(.5, .75) = .5, b = min(.75, .5) = .5 -> p = .5;
    # dependence: both lost -> a = b = 0 -> 1. Flow through the group .8 + .7 = 1.5.
    result = contention_analysis(small_engine, groups={"mix": ["m1", "f1"]}, shortfalls=[0.5])
    mix = result.bottleneck("group:mix")
    assert mix.is_group and mix.nodes == ("f1", "m1")
    (p,) = mix.providers
    assert p.flow == pytest.approx(1.5) and p.dependence == pytest.approx(1.0)
    assert p.lost_at(0.5) == pytest.approx(0.5, abs=ABS)
    with pytest.raises(KeyError):
        p.lost_at(0.3)


# -- two providers with demand weights -------------------------------------------------------------


def test_demand_shares_weight_flows_by_demand(rs: ContentionResult) -> None:
    # m1: p .7 x .75 = .525, q 1 x .25 = .25 -> total .775; shares 21/31 and 10/31
    m1 = rs.bottleneck("m1")
    shares = {c.provider: c.demand_share for c in m1.providers}
    assert shares == pytest.approx({"p": 21 / 31, "q": 10 / 31}, abs=ABS)
    assert m1.demand == pytest.approx(0.775, abs=ABS)
    assert [c.provider for c in m1.providers] == ["p", "q"]  # largest share first
    assert m1.buyer_hhi == pytest.approx((2100 / 31) ** 2 + (1000 / 31) ** 2, abs=1e-6)
    dependence = {c.provider: c.dependence for c in m1.providers}
    assert dependence == pytest.approx({"p": 0.7, "q": 1.0}, abs=ABS)
    # q's supply is all chip b, which needs m1 alone: q loses exactly f
    assert losses(rs, "m1", "q") == pytest.approx([0.1, 0.25, 0.5], abs=ABS)
    assert losses(rs, "m1", "p") == pytest.approx([0.07, 0.175, 0.35], abs=ABS)


def test_smaller_buyer_that_depends_more(rs: ContentionResult) -> None:
    # q buys a third of m1's output but loses all of its supply without it
    q = next(c for c in rs.bottleneck("m1").providers if c.provider == "q")
    assert q.dependence > q.demand_share


def test_default_bottlenecks_come_from_tags(rs: ContentionResult) -> None:
    # m1 and m2 carry 'hbm': one group, then the nodes by demand (m1 .775, m2 .225)
    assert [b.bottleneck for b in rs.bottlenecks] == ["group:hbm", "m1", "m2"]
    hbm = rs.bottleneck("group:hbm")
    # flows p .7 + .3 = 1, q 1 + 0 = 1 -> shares .75 / .25; losing both loses everything
    assert {c.provider: c.demand_share for c in hbm.providers} == pytest.approx(
        {"p": 0.75, "q": 0.25}
    )
    assert all(c.dependence == pytest.approx(1.0) for c in hbm.providers)
    # both memories at .5: a = .5, b = .5 -> p and q keep .5
    assert losses(rs, "group:hbm", "p")[2] == pytest.approx(0.5, abs=ABS)
    # m2 has one buyer: p (q's chip b uses m1 only)
    assert [c.provider for c in rs.bottleneck("m2").providers] == ["p"]
    assert dict(rs.demand) == pytest.approx({"p": 0.75, "q": 0.25})


def test_equal_demand_by_default(rs_engine: RiskEngine) -> None:
    # w .5/.5: m1 shares .7 x .5 = .35 and .5 -> 7/17 and 10/17
    result = contention_analysis(rs_engine, nodes=["m1"])
    shares = {c.provider: c.demand_share for c in result.bottleneck("m1").providers}
    assert shares == pytest.approx({"p": 7 / 17, "q": 10 / 17}, abs=ABS)


def test_parameters_are_validated(small_engine: RiskEngine) -> None:
    for bad in ([0.0], [1.5], [], [float("nan")]):
        with pytest.raises(InvalidParameterError):
            contention_analysis(small_engine, nodes=["m1"], shortfalls=bad)
    with pytest.raises(NotFoundError):
        contention_analysis(small_engine, nodes=["nope"])
    with pytest.raises(InvalidParameterError):
        contention_analysis(small_engine, nodes=["p"])
    with pytest.raises(InvalidParameterError):
        contention_analysis(small_engine, groups={"empty": []})
    with pytest.raises(NotFoundError):
        contention_analysis(small_engine, nodes=["m1"]).bottleneck("m2")


def test_full_shortfall_equals_the_dependence(small_engine: RiskEngine) -> None:
    result = contention_analysis(small_engine, nodes=["m1"], shortfalls=[0.5, 1.0])
    (p,) = result.bottleneck("m1").providers
    assert p.lost_at(1.0) == pytest.approx(p.dependence) == pytest.approx(0.7)


# -- the bundled dataset ---------------------------------------------------------------------------


def test_bundled_cowos_and_hbm_contention() -> None:
    graph = load_dataset(DATA)
    engine = RiskEngine(graph)
    result = contention_analysis(engine, load_provider_demand(DATA, graph))
    keys = [b.bottleneck for b in result.bottlenecks]
    assert {"group:cowos", "group:hbm", "tsmc-cowos-l", "skhynix-hbm3e"} <= set(keys)
    for row in result.bottlenecks:
        buyers = row.providers
        if row.demand > 0:
            assert sum(c.demand_share for c in buyers) == pytest.approx(1.0)
        for c in buyers:
            assert 0.0 <= c.dependence <= 1.0 + 1e-12
            lost = [s.lost for s in c.shortfalls]
            assert lost == sorted(lost)  # a bigger shortfall never loses less
            assert lost[-1] <= c.dependence + 1e-12
    cowos = result.bottleneck("group:cowos")
    assert cowos.top_buyer is not None
