"""Property tests: HHI bounds, and the compiled AND/OR evaluator against a plain reference."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sovrisk.models.analysis.concentration import hhi
from sovrisk.models.engine.compiled import CompiledGraph
from sovrisk.models.engine.reference import reference_evaluate
from sovrisk.models.scoring.params import DEFAULT_LAYER_WEIGHTS, DEFAULT_WEIGHTS, ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine

SETTINGS = settings(max_examples=60, deadline=None)

# -- HHI -----------------------------------------------------------------------------------------

positive_shares = st.lists(
    st.floats(min_value=1e-4, max_value=1e4, allow_nan=False), min_size=1, max_size=12
)


@SETTINGS
@given(positive_shares)
def test_hhi_is_between_10000_over_n_and_10000(values: list[float]) -> None:
    index = hhi({f"s{i}": v for i, v in enumerate(values)})
    n = len(values)
    assert 0.0 <= index <= 10_000.0 + 1e-6
    # sum s_i² >= (sum s_i)² / n by Cauchy-Schwarz, equality for equal shares
    assert index >= 10_000.0 / n - 1e-6


@SETTINGS
@given(positive_shares, st.data())
def test_splitting_a_supplier_never_raises_hhi(values: list[float], data: st.DataObject) -> None:
    # a new, disjoint supplier taking part of an existing one's share: (f s)² + ((1-f) s)² <= s²
    shares = {f"s{i}": v for i, v in enumerate(values)}
    victim = data.draw(st.sampled_from(sorted(shares)))
    f = data.draw(st.floats(min_value=0.0, max_value=1.0))
    split = dict(shares)
    split[victim] = f * shares[victim]
    split["entrant"] = (1.0 - f) * shares[victim]
    assert hhi(split) <= hhi(shares) + 1e-6


# -- random layered AND/OR DAGs ------------------------------------------------------------------


@dataclass(frozen=True)
class Dag:
    ids: list[str]
    edges: list[tuple[str, str, str, float]]  # (consumer, category, supplier, share)

    def compile(self) -> CompiledGraph:
        pos = {nid: i for i, nid in enumerate(self.ids)}
        return CompiledGraph.from_arrays(
            self.ids,
            np.array([pos[c] for c, _, _, _ in self.edges], dtype=np.int64),
            np.array([pos[s] for _, _, s, _ in self.edges], dtype=np.int64),
            [cat for _, cat, _, _ in self.edges],
            np.array([s for _, _, _, s in self.edges], dtype=np.float64),
        )


@st.composite
def layered_dags(draw: st.DrawFn) -> Dag:
    """Nodes in 1-4 layers; every node above layer 0 needs 1-3 categories, each met by 1-3
    suppliers from lower layers with shares summing to at most 1."""
    sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    layers = [[f"n{level}_{k}" for k in range(size)] for level, size in enumerate(sizes)]
    edges = []
    for level in range(1, len(layers)):
        lower = [nid for layer in layers[:level] for nid in layer]
        for consumer in layers[level]:
            for c in range(draw(st.integers(1, 3))):
                suppliers = draw(
                    st.lists(st.sampled_from(lower), min_size=1, max_size=3, unique=True)
                )
                weights = draw(
                    st.lists(st.integers(1, 10), min_size=len(suppliers), max_size=len(suppliers))
                )
                cover = draw(st.sampled_from([1.0, 1.0, 1.0, 0.9, 0.5]))  # usually a full 1
                for s, w in zip(suppliers, weights, strict=True):
                    edges.append((consumer, f"cat{c}", s, cover * w / sum(weights)))
    ids = draw(st.permutations([nid for layer in layers for nid in layer]))
    return Dag(list(ids), edges)


def reference_a(dag: Dag, up: dict[str, float]) -> dict[str, float]:
    """METHODS v2 §2 by the networkx reference (models.engine.reference), long run."""
    return reference_evaluate(dag.ids, dag.edges, up)


def reference_flows(dag: Dag, root: str) -> dict[str, float]:
    """x_root = 1, x_i = sum_j x_j s_ij over every edge, consumers before suppliers."""
    g = nx.DiGraph()
    g.add_nodes_from(dag.ids)
    g.add_edges_from((s, c) for c, _, s, _ in dag.edges)
    x = dict.fromkeys(dag.ids, 0.0)
    x[root] = 1.0
    for node in reversed(list(nx.topological_sort(g))):
        for consumer, _, supplier, share in dag.edges:
            if consumer == node:
                x[supplier] += x[node] * share
    return x


unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def dag_and_scenarios(draw: st.DrawFn) -> tuple[Dag, np.ndarray]:
    dag = draw(layered_dags())
    k = draw(st.integers(1, 5))
    n = len(dag.ids)
    values = draw(st.lists(unit, min_size=n * k, max_size=n * k))
    # rows follow dag.ids; reordered to the compiled order in the tests
    return dag, np.array(values, dtype=np.float64).reshape(n, k)


def compiled_up(cg: CompiledGraph, dag: Dag, up_by_dag_row: np.ndarray) -> np.ndarray:
    up = np.empty_like(up_by_dag_row)
    for row, nid in enumerate(dag.ids):
        up[cg.index[nid]] = up_by_dag_row[row]
    return up


@SETTINGS
@given(dag_and_scenarios())
def test_matches_the_reference_implementation(case: tuple[Dag, np.ndarray]) -> None:
    dag, scenarios = case
    cg = dag.compile()
    batch = cg.evaluate(compiled_up(cg, dag, scenarios))
    for k in range(scenarios.shape[1]):
        ref = reference_a(dag, {nid: float(scenarios[r, k]) for r, nid in enumerate(dag.ids)})
        for nid in dag.ids:
            assert batch[cg.index[nid], k] == pytest.approx(ref[nid], abs=1e-9)


@SETTINGS
@given(dag_and_scenarios())
def test_retained_capacity_is_a_fraction(case: tuple[Dag, np.ndarray]) -> None:
    dag, scenarios = case
    cg = dag.compile()
    a = cg.evaluate(compiled_up(cg, dag, scenarios))
    assert np.all(a >= 0.0) and np.all(a <= 1.0 + 1e-12)
    # the undisrupted baseline is at most 1 too (categories may be under-covered)
    assert np.all(cg.evaluate(np.ones(cg.n_nodes)) <= 1.0 + 1e-12)


@SETTINGS
@given(dag_and_scenarios())
def test_batched_equals_per_scenario(case: tuple[Dag, np.ndarray]) -> None:
    dag, scenarios = case
    cg = dag.compile()
    up = compiled_up(cg, dag, scenarios)
    batch = cg.evaluate(up)
    for k in range(up.shape[1]):
        np.testing.assert_allclose(batch[:, k], cg.evaluate(up[:, k]), rtol=0, atol=1e-12)


@SETTINGS
@given(dag_and_scenarios(), st.data())
def test_removing_capacity_never_raises_a(
    case: tuple[Dag, np.ndarray], data: st.DataObject
) -> None:
    dag, scenarios = case
    cg = dag.compile()
    up = compiled_up(cg, dag, scenarios)
    n, k = up.shape
    # lower some nodes' up (a factor in [0, 1]) and knock some out completely
    factors = np.array(data.draw(st.lists(unit, min_size=n * k, max_size=n * k))).reshape(n, k)
    removed = np.array(data.draw(st.lists(st.booleans(), min_size=n * k, max_size=n * k))).reshape(
        n, k
    )
    lower = np.where(removed, 0.0, up * factors)
    assert np.all(cg.evaluate(lower) <= cg.evaluate(up) + 1e-12)


@SETTINGS
@given(layered_dags(), st.data())
def test_flows_match_the_reference(dag: Dag, data: st.DataObject) -> None:
    cg = dag.compile()
    root = data.draw(st.sampled_from(dag.ids))
    x = cg.flows([cg.index[root]])[:, 0]
    ref = reference_flows(dag, root)
    for nid in dag.ids:
        assert x[cg.index[nid]] == pytest.approx(ref[nid], abs=1e-9)


@SETTINGS
@given(layered_dags())
def test_compiled_order_puts_suppliers_first(dag: Dag) -> None:
    cg = dag.compile()
    for consumer, _, supplier, _ in dag.edges:
        assert cg.index[supplier] < cg.index[consumer]
        assert cg.levels[cg.index[supplier]] < cg.levels[cg.index[consumer]]


# -- the engine on the small fixture under random parameters -------------------------------------

weight = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def scoring_params(draw: st.DrawFn) -> ScoringParams:
    weights = {k: draw(weight) for k in DEFAULT_WEIGHTS}
    if sum(weights.values()) <= 0.0:
        weights["concentration"] = 1.0
    layer_weights = draw(
        st.dictionaries(st.sampled_from(sorted(DEFAULT_LAYER_WEIGHTS)), weight, max_size=5)
    )
    if sum({**DEFAULT_LAYER_WEIGHTS, **layer_weights}.values()) <= 0.0:
        layer_weights = {}
    return ScoringParams.build(
        as_of=draw(st.dates(dt.date(2020, 1, 1), dt.date(2027, 12, 31))),
        weights=weights,
        layer_weights=layer_weights,
        alpha=draw(weight),
        top_k=draw(st.integers(1, 30)),
        export_now_weight=draw(weight),
    )


@settings(max_examples=80, deadline=None)
@given(scoring_params())
def test_scores_stay_within_0_and_100(small_engine: RiskEngine, params: ScoringParams) -> None:
    a = small_engine.assess("p", params)
    assert 0.0 <= a.composite <= 100.0
    for s in a.sub_scores:
        assert 0.0 <= s.score <= 100.0, s.key
        assert 0.0 <= s.contribution <= 100.0, s.key
    total = math.fsum(s.contribution for s in a.sub_scores) + a.floor_uplift
    assert math.isclose(total, a.composite, rel_tol=0, abs_tol=1e-9)
    assert a.floor_uplift >= 0.0
    worst = max(s.score for s in a.sub_scores)
    if worst >= params.critical:  # the floor only with a critical sub-score
        assert a.composite >= params.alpha * worst - 1e-6
    else:
        assert a.floor_uplift == 0.0
    assert 0.0 <= a.bound_now <= 1.0
    # export = 100 × (w × bound + (1 - w) × mean of the three largest foreign vetoes NLD 1,
    # TWN .8, KOR .7); bound is .3 while us-chip is in force (2024-01-01 <= as_of <
    # 2025-01-01; no buffer: felt at once), else 0
    bound = 0.3 if dt.date(2024, 1, 1) <= params.as_of < dt.date(2025, 1, 1) else 0.0
    w = params.export_now_weight
    expected = 100.0 * (w * bound + (1.0 - w) * (1.0 + 0.8 + 0.7) / 3)
    assert a.sub_score("export_control").score == pytest.approx(expected, abs=1e-6)
