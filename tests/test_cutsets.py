"""Minimal cut sets (size <= 2) on tests/fixtures/small, worked out by hand, and checked against
brute force on the small and the bundled graphs.

The fixture: p = .6 a + .4 b; a = min(f1, .5 m1 + .5 m2); b = min(.5 f1 + .5 f2, m1);
f1 = f2 = t. Single-node retained capacity a(p | v down) = 1 - I_p(v):
t 0, f1 .2, m1 .3, a .4, b .6, m2 .7, f2 .8.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from sovrisk.models.analysis.cutsets import (
    CUT_TOLERANCE,
    DEFAULT_BATCH_SIZE,
    CutSetResult,
    minimal_cut_sets,
)
from sovrisk.models.errors import InvalidParameterError, NotFoundError
from sovrisk.models.graph.loader import load_dataset
from sovrisk.models.graph.schema import NodeKind
from sovrisk.models.scoring.risk_engine import RiskEngine
from tests.conftest import DatasetCopy

DATA = Path(__file__).resolve().parent.parent / "data"
ABS = 1e-9


def listing(result: CutSetResult, provider: str = "p") -> list[tuple[tuple[str, ...], float]]:
    return [(c.nodes, round(c.retained, 9)) for c in result.provider(provider).cut_sets]


def test_default_threshold_half(small_engine: RiskEngine) -> None:
    # Singletons a(p | v) < .5: t 0, f1 .2, m1 .3, a .4.
    # Pairs only among the other tree nodes {b, m2, f2}:
    #   {b, m2}: a = min(1, .5 x 1 + .5 x 0) = .5, b = 0 -> p = .6 x .5 = .3 < .5  cut
    #   {b, f2}: a = 1, b = 0 -> .6                                            no
    #   {m2, f2}: a = .5, b = min(.5, 1) = .5 -> .3 + .2 = .5, not < .5          no
    # Ranked by retained, then size, then names: m1 (.3) before {b, m2} (.3).
    result = minimal_cut_sets(small_engine)
    assert result.threshold == 0.5
    assert listing(result) == [
        (("t",), 0.0),
        (("f1",), 0.2),
        (("m1",), 0.3),
        (("b", "m2"), 0.3),
        (("a",), 0.4),
    ]
    p = result.provider("p")
    assert (p.singletons, p.pairs, p.candidates, p.pairs_evaluated) == (4, 1, 3, 3)
    assert p.top_singleton is not None and p.top_singleton.nodes == ("t",)
    assert p.top_pair is not None and p.top_pair.nodes == ("b", "m2")
    assert result.evaluate_calls == 1 and result.pair_scenarios == 3


def test_lower_threshold_finds_pairs_like_f1_m1(small_engine: RiskEngine) -> None:
    # Threshold .15: only {t} is a singleton cut (f1 alone leaves .2). Pairs among
    # {f1, m1, a, b, m2, f2} (15 pairs) that leave p < .15:
    #   {f1, m1}: a = min(0, .5) = 0; b = min(.5 x 0 + .5 x 1, 0) = 0 -> p = 0
    #     minimal: f1 alone .2 >= .15, m1 alone .3 >= .15
    #   {a, b} 0; {a, m1}: a = 0, b = min(1, 0) = 0 -> 0; {b, f1}: a = 0, b = 0 -> 0;
    #   {f1, f2}: a = 0, b = 0 -> 0; {m1, m2}: a = 0, b = 0 -> 0
    #   the other nine leave >= .2 (e.g. {f1, a}: b = .5 -> .2; {m1, b}: a = .5 -> .3)
    result = minimal_cut_sets(small_engine, threshold=0.15)
    assert listing(result) == [
        (("t",), 0.0),
        (("a", "b"), 0.0),
        (("a", "m1"), 0.0),
        (("b", "f1"), 0.0),
        (("f1", "f2"), 0.0),
        (("f1", "m1"), 0.0),
        (("m1", "m2"), 0.0),
    ]
    p = result.provider("p")
    assert (p.singletons, p.pairs, p.candidates, p.pairs_evaluated) == (1, 6, 6, 15)


def test_cut_is_strictly_below_the_threshold(small_engine: RiskEngine) -> None:
    # {m2, f2} leaves exactly .5: not a cut at .5, a cut at .55 (with b .6 -> not a singleton)
    at_half = {c.nodes for c in minimal_cut_sets(small_engine, 0.5).provider("p").cut_sets}
    assert ("f2", "m2") not in at_half
    higher = minimal_cut_sets(small_engine, 0.55)
    assert (("f2", "m2"), 0.5) in listing(higher)
    # threshold 1: every tree node is a singleton cut, so no pair is minimal
    everything = minimal_cut_sets(small_engine, 1.0).provider("p")
    assert everything.singletons == 7 and everything.pairs == 0


def test_minimality_and_retained_values_by_direct_evaluation(small_engine: RiskEngine) -> None:
    cg = small_engine.compiled
    p = cg.index["p"]
    result = minimal_cut_sets(small_engine, 0.15)
    for cut in result.provider("p").cut_sets:
        up = np.ones(cg.n_nodes)
        up[[cg.index[n] for n in cut.nodes]] = 0.0
        assert cg.evaluate(up)[p] == pytest.approx(cut.retained, abs=ABS)
        assert cut.retained < 0.15
        for member in cut.nodes if cut.size == 2 else ():
            up = np.ones(cg.n_nodes)
            up[cg.index[member]] = 0.0
            assert cg.evaluate(up)[p] >= 0.15  # no proper subset is a cut


def brute_force(engine: RiskEngine, threshold: float) -> dict[str, set[tuple[str, ...]]]:
    """Every minimal cut of size <= 2 over all supply nodes, no pruning."""
    cg, graph = engine.compiled, engine.graph
    supply = [i for i, n in enumerate(cg.ids) if graph.nodes[n].kind is not NodeKind.PROVIDER]
    prov = [cg.index[p] for p in engine.provider_ids]
    singles = 1.0 - engine.node_impact  # providers x nodes
    pairs = list(itertools.combinations(supply, 2))
    up = np.ones((cg.n_nodes, len(pairs)))
    for c, (u, v) in enumerate(pairs):
        up[[u, v], c] = 0.0
    retained = cg.evaluate(up)[prov]
    cut = threshold - CUT_TOLERANCE
    found: dict[str, set[tuple[str, ...]]] = {}
    for k, pid in enumerate(engine.provider_ids):
        mine: set[tuple[str, ...]] = {(cg.ids[i],) for i in supply if singles[k, i] < cut}
        for c, (u, v) in enumerate(pairs):
            if retained[k, c] < cut and singles[k, u] >= cut and singles[k, v] >= cut:
                mine.add(tuple(sorted((cg.ids[u], cg.ids[v]))))
        found[pid] = mine
    return found


@pytest.mark.parametrize("threshold", [0.15, 0.5, 0.55, 0.9])
def test_pruning_is_exact_on_the_small_fixture(small_engine: RiskEngine, threshold: float) -> None:
    result = minimal_cut_sets(small_engine, threshold)
    assert {c.nodes for c in result.provider("p").cut_sets} == brute_force(small_engine, threshold)[
        "p"
    ]


@pytest.fixture(scope="module")
def bundled_engine() -> RiskEngine:
    return RiskEngine(load_dataset(DATA))


def test_pruning_is_exact_on_the_bundled_graph(bundled_engine: RiskEngine) -> None:
    result = minimal_cut_sets(bundled_engine)
    expected = brute_force(bundled_engine, 0.5)
    for row in result.providers:
        assert {c.nodes for c in row.cut_sets} == expected[row.provider], row.provider
        ranks = [(round(c.retained, 12), c.size, c.nodes) for c in row.cut_sets]
        assert ranks == sorted(ranks)
    # every provider's candidate pairs in batches of DEFAULT_BATCH_SIZE scenarios
    assert result.evaluate_calls == math.ceil(result.pair_scenarios / DEFAULT_BATCH_SIZE)


def test_batches_give_the_same_answer(bundled_engine: RiskEngine) -> None:
    whole = minimal_cut_sets(bundled_engine, providers=["aws", "meta"])
    split = minimal_cut_sets(bundled_engine, providers=["aws", "meta"], batch_size=500)
    assert split.evaluate_calls > 1
    assert whole.providers == split.providers
    assert [p.provider for p in whole.providers] == ["aws", "meta"]


def test_aggregate_market_nodes_are_kept_and_flagged(small_copy: DatasetCopy) -> None:
    small_copy.replace("nodes.csv", "lithography,euv,", "lithography,euv;aggregate_market,")
    engine = RiskEngine(small_copy.load())
    cuts = minimal_cut_sets(engine).provider("p").cut_sets
    t = cuts[0]
    assert t.nodes == ("t",) and t.aggregate_market and t.aggregate_members == ("t",)
    assert not any(c.aggregate_market for c in cuts[1:])


def test_parameters_are_validated(small_engine: RiskEngine) -> None:
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(InvalidParameterError):
            minimal_cut_sets(small_engine, bad)
    with pytest.raises(InvalidParameterError):
        minimal_cut_sets(small_engine, batch_size=0)
    with pytest.raises(NotFoundError):
        minimal_cut_sets(small_engine, providers=["nope"])
    with pytest.raises(NotFoundError):
        minimal_cut_sets(small_engine).provider("nope")
