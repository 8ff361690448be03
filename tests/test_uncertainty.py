"""Score uncertainty (METHODS v2 §11): draws, intervals, pairwise orders, certain ranks."""

from __future__ import annotations

import numpy as np
import pytest

from sovrisk.models.errors import InvalidParameterError
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.models.scoring.uncertainty import (
    COMPOSITE,
    MAX_DRAWS,
    _summarise,
    cached_uncertainty,
    check_draws,
    draw_graph,
    score_uncertainty,
)


def test_draws_stay_in_range_and_renormalise_each_category(small_graph: SupplyGraph) -> None:
    # p's fleet: a 0.6 in [0.5, 0.7], b 0.4 without a range. A draw of a in [0.5, 0.7] is
    # renormalised with b: a' = a / (a + 0.4) lies in [0.5/0.9, 0.7/1.1] = [0.556, 0.636].
    rng = np.random.default_rng(7)
    for _ in range(50):
        drawn, ranged = draw_graph(small_graph, rng)
        assert ranged == 1
        fleet = {e.supplier: e.share for e in drawn.edges if e.consumer == "p"}
        assert fleet["a"] + fleet["b"] == pytest.approx(1.0)
        assert 0.5 / 0.9 - 1e-12 <= fleet["a"] <= 0.7 / 1.1 + 1e-12
        # every other category is untouched
        others = [(e.consumer, e.category, e.share) for e in drawn.edges if e.consumer != "p"]
        assert others == [
            (e.consumer, e.category, e.share) for e in small_graph.edges if e.consumer != "p"
        ]


def test_pair_orders_intervals_and_certain_ranks_by_hand() -> None:
    # x: point 50, draws 49, 51, 52, 53; y: point 48, draws 50, 47, 46, 45.
    # x above y in 3 of 4 draws -> 0.75 < 0.9: neither rank is certain.
    # x's interval: quantiles at 0.05 and 0.95 of (49, 51, 52, 53), linear:
    # 49 + 0.15 x 2 = 49.3 and 52 + 0.85 x 1 = 52.85.
    samples = {
        "x": {COMPOSITE: [49.0, 51.0, 52.0, 53.0]},
        "y": {COMPOSITE: [50.0, 47.0, 46.0, 45.0]},
    }
    u = _summarise(
        ["x", "y"], {"x": {COMPOSITE: 50.0}, "y": {COMPOSITE: 48.0}}, samples, 4, 3, (1, 0, 0)
    )
    assert u.order("x", "y") == pytest.approx(0.75)
    assert u.order("y", "x") == pytest.approx(0.25)
    x = u.of("x").interval(COMPOSITE)
    assert (x.point, x.low, x.high) == (50.0, pytest.approx(49.3), pytest.approx(52.85))
    assert not u.of("x").rank_certain and not u.of("y").rank_certain
    # ranks over the draws: x is 1, 2, 1, 1 -> 5th-95th percentile range 1-2
    assert (u.of("x").rank_low, u.of("x").rank_high) == (1, 2)


def test_a_pair_that_always_holds_is_certain() -> None:
    samples = {"x": {COMPOSITE: [60.0, 61.0]}, "y": {COMPOSITE: [40.0, 41.0]}}
    u = _summarise(
        ["x", "y"], {"x": {COMPOSITE: 60.0}, "y": {COMPOSITE: 40.0}}, samples, 2, 0, (0, 0, 0)
    )
    assert u.order("x", "y") == 1.0
    assert u.of("x").rank_certain and u.of("y").rank_certain


def test_same_seed_same_intervals_other_seed_other_draws(small_engine: RiskEngine) -> None:
    params = small_engine.default_params()
    one = score_uncertainty(small_engine, params, draws=6, seed=11)
    again = score_uncertainty(small_engine, params, draws=6, seed=11)
    other = score_uncertainty(small_engine, params, draws=6, seed=12)
    assert one == again
    assert one.of("p").interval(COMPOSITE) != other.of("p").interval(COMPOSITE)
    c = one.of("p").interval(COMPOSITE)
    assert c.low <= c.high
    # the sub-scores have intervals too
    assert {i.key for i in one.of("p").intervals} >= {"concentration", "structural"}
    assert one.drawn[0] == ("supply_shares", 1)


def test_draws_are_bounded() -> None:
    assert check_draws(0) == 0 and check_draws(MAX_DRAWS) == MAX_DRAWS
    with pytest.raises(InvalidParameterError) as info:
        check_draws(MAX_DRAWS + 1, "interval_draws")
    assert info.value.violations[0].field == "interval_draws"


def test_no_draws_no_uncertainty(small_engine: RiskEngine) -> None:
    assert cached_uncertainty(small_engine, small_engine.default_params(), 0) is None


def test_a_what_if_weighting_recombines_the_shared_draws(small_engine: RiskEngine) -> None:
    """The draws' sub-scores do not depend on the composite weights: a what-if weighting
    reuses the published weighting's draws (no new draw is scored: ScoreProvider with custom
    weights took ~60 s under `serve --interval-draws 16` on the bundled data, now ~0.2 s with
    byte-identical intervals), and only the composite interval moves."""
    from sovrisk.models.scoring.params import ScoringParams
    from sovrisk.models.scoring.uncertainty import _drawn_scores

    published = small_engine.default_params()
    tilted = ScoringParams.build(
        as_of=published.as_of, weights={"structural": 0.9, "concentration": 0.05}
    )
    assert tilted.with_published_weights() == published
    standard = score_uncertainty(small_engine, published, draws=6, seed=3)
    misses = _drawn_scores.cache_info().misses
    what_if = score_uncertainty(small_engine, tilted, draws=6, seed=3)
    assert _drawn_scores.cache_info().misses == misses  # the draws were shared
    for key in ("concentration", "structural"):
        assert what_if.of("p").interval(key) == standard.of("p").interval(key)
    assert what_if.of("p").interval(COMPOSITE) != standard.of("p").interval(COMPOSITE)
    c = what_if.of("p").interval(COMPOSITE)
    assert c.low <= c.high
