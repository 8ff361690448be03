"""Allocation of constrained capacity by rule (METHODS v2 §10), worked out by hand."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest

from sovrisk.models.analysis.allocation import (
    AllocationRule,
    Claimant,
    fills,
    parse_rule,
    pools_at,
    standing_shortfall,
)
from sovrisk.models.errors import InvalidParameterError
from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.graph.series import CAPACITY_HEADER, Quarter
from sovrisk.models.scoring.risk_engine import RiskEngine

SMALL = Path(__file__).parent / "fixtures" / "small"

# Nvidia-like merchant with reservations, a custom-chip partner, a second merchant.
CLAIMANTS = (
    Claimant("nv", 0.60, 0.5, False, ("gpu",)),
    Claimant("bc", 0.25, 0.0, True, ("tpu",)),
    Claimant("am", 0.15, 0.1, False, ("mi",)),
)


@pytest.mark.parametrize(
    ("rule", "priority", "expected"),
    [
        # Everyone 0.8 of demand.
        (AllocationRule.PRO_RATA, (), (0.8, 0.8, 0.8)),
        # Reservations 0.5 and 0.1 first (0.6 of 0.8), the 0.2 left over the 0.4 of demand
        # they do not cover: nv 0.5 + 0.05 = 0.55 of 0.6, bc 0.125 of 0.25, am 0.125 of 0.15.
        (AllocationRule.RESERVATIONS_FIRST, (), (0.55 / 0.6, 0.5, 0.125 / 0.15)),
        # bc (custom) in full; 0.55 left over the merchants' 0.75.
        (AllocationRule.CUSTOM_FIRST, (), (0.55 / 0.75, 1.0, 0.55 / 0.75)),
        # am, then nv, in full; bc gets the 0.05 left of its 0.25.
        (AllocationRule.PRIORITY, ("am", "nv"), (1.0, 0.2, 1.0)),
    ],
)
def test_a_20_percent_shortfall_by_rule(
    rule: AllocationRule, priority: tuple[str, ...], expected: tuple[float, ...]
) -> None:
    got = fills(0.8, CLAIMANTS, rule, capacity=1.0, priority=priority)[:, 0]
    assert got == pytest.approx(expected)
    # Whatever the rule, the pool hands out exactly its output.
    demand = np.array([c.demand for c in CLAIMANTS])
    assert float(got @ demand) == pytest.approx(0.8)


@pytest.mark.parametrize("rule", list(AllocationRule))
def test_headroom_fills_everyone(rule: AllocationRule) -> None:
    assert fills(np.array([1.0, 1.3]), CLAIMANTS, rule, priority=("bc",)) == pytest.approx(
        np.ones((3, 2))
    )


def test_batch_of_supplies_is_the_same_as_one_at_a_time() -> None:
    supplies = np.array([0.0, 0.3, 0.55, 0.8, 1.0])
    batch = fills(supplies, CLAIMANTS, AllocationRule.RESERVATIONS_FIRST, capacity=1.0)
    for k, s in enumerate(supplies):
        single = fills(s, CLAIMANTS, AllocationRule.RESERVATIONS_FIRST, capacity=1.0)
        assert batch[:, k] == pytest.approx(single[:, 0])


def test_unknown_rule_names_field_and_value() -> None:
    with pytest.raises(InvalidParameterError) as err:
        parse_rule("first_come")
    assert err.value.violations[0].field == "allocation_rule"
    assert err.value.violations[0].value == "first_come"


def engine(tmp_path: Path) -> RiskEngine:
    root = tmp_path / "ds"
    if root.exists():
        return RiskEngine(*load_bundle(root))
    shutil.copytree(SMALL, root)
    # m1 (memory for half of chip a and all of chip b) makes 90 of the 100 wanted.
    (root / "capacity.csv").write_text(
        ",".join(CAPACITY_HEADER)
        + "\nm1,2024Q1,90,,,stacks_per_month,1,100,,,B,fixture,2024-03-31,\n"
    )
    (root / "allocation.csv").write_text(
        "pool,period,claimant,demand_share,reserved_share,quality,source,as_of,notes\n"
        "m1,2024Q1,a,0.7,0.5,B,fixture,2024-03-31,\n"
        "m1,2024Q1,b,0.3,,B,fixture,2024-03-31,\n"
    )
    return RiskEngine(*load_bundle(root))


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # a: memory 0.5 x 0.9 + 0.5 = 0.95; b: 0.9; p = 0.6 x 0.95 + 0.4 x 0.9 = 0.93.
        (AllocationRule.PRO_RATA, 0.07),
        # a holds 0.5 x 0.9 = 0.45; 0.45 left over a's 0.25 and b's 0.3 (ratio 9/11):
        # a fill (0.45 + 0.25 x 9/11) / 0.7 = 0.9351, b fill 9/11 = 0.8182;
        # p = 0.6 x (0.5 x 0.9351 + 0.5) + 0.4 x 0.8182 = 0.9078.
        (
            AllocationRule.RESERVATIONS_FIRST,
            1 - (0.6 * (0.5 * (0.45 + 0.25 * 9 / 11) / 0.7 + 0.5) + 0.4 * 9 / 11),
        ),
        # Neither chip is a provider's own: custom-first is pro rata.
        (AllocationRule.CUSTOM_FIRST, 0.07),
    ],
)
def test_standing_shortfall_on_a_graph(
    tmp_path: Path, rule: AllocationRule, expected: float
) -> None:
    e = engine(tmp_path)
    pools = pools_at(e, e.supplements.series, Quarter(2024, 1), {"p": 1.0})
    assert [p.id for p in pools] == ["m1"]
    assert pools[0].output == pytest.approx(0.9)
    assert [(c.id, c.chips) for c in pools[0].claimants] == [("a", ("a",)), ("b", ("b",))]
    assert standing_shortfall(e, pools, rule)[0] == pytest.approx(expected)


# -- scenarios on the small graph ------------------------------------------------------------


def _scenario_lost(tmp_path: Path, *perturbations, rule=None, priority=()):  # type: ignore[no-untyped-def]
    from sovrisk.models.scoring.scenarios import Scenario, run_scenario

    e = engine(tmp_path)
    params = e.default_params(dt.date(2025, 6, 1))  # after the fixture's US chip rule
    result = run_scenario(e, Scenario("s", tuple(perturbations), rule, tuple(priority)), params)
    o = result.outcomes[0]
    return o.available_baseline, o.available_scenario


def test_capacity_factor_and_yield_against_the_standing_shortfall(tmp_path: Path) -> None:
    from sovrisk.models.scoring.scenarios import SetCapacity

    # m1 serves 0.9 of demand. Baseline (pro rata) p = 0.93 at 13 weeks (no buffers here).
    base, after = _scenario_lost(tmp_path, SetCapacity("m1", 1.2))
    assert base == pytest.approx(0.93)
    # x 1.2: 1.08 of demand, headroom: everyone full, p = 1.
    assert after == pytest.approx(1.0)
    # yield 1 -> 0.5: 0.45 of demand; a: 0.5 x 0.45 + 0.5 = 0.725, b: 0.45;
    # p = 0.6 x 0.725 + 0.4 x 0.45 = 0.615.
    _, after = _scenario_lost(tmp_path, SetCapacity("m1", 1.0, 0.5))
    assert after == pytest.approx(0.615)


def test_a_pool_loss_shared_by_priority(tmp_path: Path) -> None:
    from sovrisk.models.scoring.scenarios import DegradePool

    # m1 loses half: 0.45 of demand left. Priority b (0.3 of demand) first, then a gets 0.15
    # of its 0.7: a memory 0.5 x 0.15/0.7 + 0.5 = 0.6071, b 1; p = 0.6 x 0.6071 + 0.4 = 0.7643.
    # The baseline under the same rule: b full, a 0.6/0.7: p = 0.6 x (0.5 x 6/7 + 0.5) + 0.4.
    base, after = _scenario_lost(
        tmp_path,
        DegradePool("m1", 0.5),
        rule=AllocationRule.PRIORITY,
        priority=("b", "a"),
    )
    assert base == pytest.approx(0.6 * (0.5 * 6 / 7 + 0.5) + 0.4)
    assert after == pytest.approx(0.6 * (0.5 * 0.15 / 0.7 + 0.5) + 0.4)
    # Node by node (no rule) the same loss is pro rata on m1's edges: a 0.75, b 0.5; 0.65.
    base, after = _scenario_lost(tmp_path, DegradePool("m1", 0.5))
    assert (base, after) == pytest.approx((1.0, 0.6 * 0.75 + 0.4 * 0.5))


def test_moving_and_adding_site_capacity(tmp_path: Path) -> None:
    from sovrisk.models.graph.bundle import load_bundle as lb
    from sovrisk.models.scoring.scenarios import MoveCapacity, Scenario, scenario_graph

    e = engine(tmp_path)
    g = e.graph
    # f2 is half KOR, half USA. Move: USA then holds 0.8, KOR 0.2.
    moved = scenario_graph(g, Scenario("m", (MoveCapacity("f2", "USA", 0.8),)), g.info.as_of)
    assert {s.country: s.share for s in moved.sites["f2"]} == pytest.approx(
        {"KOR": 0.2, "USA": 0.8}
    )
    # Add: f1 (all TWN) builds half as much again in the USA: TWN 1/1.5, USA 0.5/1.5.
    added = scenario_graph(
        g, Scenario("a", (MoveCapacity("f1", "USA", 0.5, add=True),)), g.info.as_of
    )
    assert {s.country: s.share for s in added.sites["f1"]} == pytest.approx(
        {"TWN": 2 / 3, "USA": 1 / 3}
    )
    assert lb  # the graph stays loadable through the scenario engine


def test_pool_allocation_turns_member_losses_into_claimant_terms(tmp_path: Path) -> None:
    from sovrisk.models.analysis.allocation import PoolAllocation

    e = engine(tmp_path)
    pools = pools_at(e, e.supplements.series, Quarter(2024, 1), {"p": 1.0})
    cg = e.compiled
    up = np.ones((cg.n_nodes, 2))
    up[cg.index["m1"], 1] = 0.5  # scenario 1: m1 at half capacity; scenario 0: nothing
    terms = PoolAllocation(pools, AllocationRule.PRIORITY, ("b", "a")).apply(cg, up)
    assert up[cg.index["m1"]].tolist() == [1.0, 1.0]  # the loss moved into the terms
    # S = 0.9 -> 0.45. Fills by priority (b, then a): before b 1, a 0.6/0.7; after b 1,
    # a 0.15/0.7. a's edge delivers (0.15/0.7) / (0.6/0.7) = 0.25 of its standing fill.
    coefficients = {int(np.flatnonzero(t.exposure)[0]): t.coefficient for t in terms}
    a_entry = int(
        cg.edge_position[
            next(k for k, x in enumerate(e.graph.edges) if (x.consumer, x.supplier) == ("a", "m1"))
        ]
    )
    assert coefficients[a_entry].tolist() == pytest.approx([0.0, 0.75])
    assert all(
        c.tolist() == pytest.approx([0.0, 0.0]) for k, c in coefficients.items() if k != a_entry
    )
