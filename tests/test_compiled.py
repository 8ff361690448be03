"""The compiled AND/OR evaluator (METHODS v2 §2, Leontief) on small graphs worked out by hand."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from sovrisk.models.engine.compiled import CompiledGraph, compile_graph
from sovrisk.models.graph.supply_graph import SupplyGraph

Edge = tuple[str, str, str, float]  # (consumer, category, supplier, share)


def build(
    ids: Sequence[str], edges: Sequence[Edge], sites: Sequence[tuple[str, str, float]] = ()
) -> CompiledGraph:
    pos = {nid: i for i, nid in enumerate(ids)}
    return CompiledGraph.from_arrays(
        list(ids),
        np.array([pos[c] for c, _, _, _ in edges], dtype=np.int64),
        np.array([pos[s] for _, _, s, _ in edges], dtype=np.int64),
        [cat for _, cat, _, _ in edges],
        np.array([share for _, _, _, share in edges], dtype=np.float64),
        [(pos[n], c, share) for n, c, share in sites],
    )


def up_with(cg: CompiledGraph, **values: float) -> np.ndarray:
    up = np.ones(cg.n_nodes)
    for nid, v in values.items():
        up[cg.index[nid]] = v
    return up


def a_of(cg: CompiledGraph, node: str, **up: float) -> float:
    return float(cg.evaluate(up_with(cg, **up))[cg.index[node]])


# j needs a die (from x only) AND memory (from y or z, half each). Ids deliberately out of order.
AND_OR_IDS = ("j", "z", "x", "y")
AND_OR_EDGES: list[Edge] = [
    ("j", "die", "x", 1.0),
    ("j", "mem", "y", 0.5),
    ("j", "mem", "z", 0.5),
]

# The tests/fixtures/small supply graph: p <- {a .6, b .4}; a <- die f1, mem m1/m2 .5/.5;
# b <- die f1/f2 .5/.5, mem m1; f1, f2 <- litho t.
SMALL_IDS = ("p", "a", "b", "f1", "f2", "m1", "m2", "t")
SMALL_EDGES: list[Edge] = [
    ("p", "fleet", "a", 0.6),
    ("p", "fleet", "b", 0.4),
    ("a", "logic_die", "f1", 1.0),
    ("a", "memory", "m1", 0.5),
    ("a", "memory", "m2", 0.5),
    ("b", "logic_die", "f1", 0.5),
    ("b", "logic_die", "f2", 0.5),
    ("b", "memory", "m1", 1.0),
    ("f1", "lithography", "t", 1.0),
    ("f2", "lithography", "t", 1.0),
]
SMALL_SITES = [
    ("a", "USA", 1.0),
    ("b", "USA", 1.0),
    ("f1", "TWN", 1.0),
    ("f2", "KOR", 0.5),
    ("f2", "USA", 0.5),
    ("m1", "KOR", 1.0),
    ("m2", "USA", 1.0),
    ("t", "NLD", 1.0),
]


@pytest.fixture(params=["numpy", "kernel"])
def engine_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on the numpy path and again on the numba kernel (forced for any size)."""
    from sovrisk.models.engine import compiled

    if request.param == "kernel":
        pytest.importorskip("sovrisk.models.engine.kernels", reason="numba is not installed")
        monkeypatch.setattr(compiled, "KERNEL_MIN_WORK", 0)
    else:
        monkeypatch.setenv("SOVRISK_NUMBA", "0")
    return str(request.param)


@pytest.fixture(scope="module")
def and_or() -> CompiledGraph:
    return build(AND_OR_IDS, AND_OR_EDGES)


@pytest.fixture(scope="module")
def small() -> CompiledGraph:
    return build(SMALL_IDS, SMALL_EDGES, SMALL_SITES)


# -- a(P) under knockouts ------------------------------------------------------------------------


def test_baseline_everything_retained(and_or: CompiledGraph) -> None:
    # a(j) = 1 × min(1 × 1, .5 × 1 + .5 × 1) = 1
    assert and_or.evaluate(np.ones(4)) == pytest.approx(np.ones(4))


@pytest.mark.parametrize(
    ("down", "expected"),
    [
        ({"x": 0.0}, 0.0),  # AND: the die category is empty -> min(0, 1) = 0
        ({"y": 0.0}, 0.5),  # OR: memory keeps z's half -> min(1, .5) = .5
        ({"z": 0.0}, 0.5),  # min(1, .5 × 1 + .5 × 0) = .5
        ({"y": 0.0, "z": 0.0}, 0.0),  # both memory suppliers gone -> min(1, 0) = 0
        ({"j": 0.0}, 0.0),  # the node itself: up(j) = 0
        ({"x": 0.3}, 0.3),  # up fractions: min(.3, 1) = .3
        ({"y": 0.4}, 0.7),  # min(1, .5 × .4 + .5) = .7
        ({"x": 0.6, "y": 0.0}, 0.5),  # min(.6, .5) = .5: the tighter category binds
        ({"x": 0.4, "y": 0.0}, 0.4),  # min(.4, .5) = .4
        # Leontief: the node's own capacity is one more bound, not a factor (v1 gave .25, .15)
        ({"j": 0.5, "z": 0.0}, 0.5),  # min(.5, min(1, .5)) = .5
        ({"j": 0.4, "z": 0.0}, 0.4),  # min(.4, .5) = .4
        ({"j": 0.5, "x": 0.3, "y": 0.2}, 0.3),  # min(.5, .3, .1 + .5) = .3
    ],
)
def test_and_over_categories_or_over_suppliers(
    and_or: CompiledGraph, down: dict[str, float], expected: float, engine_path: str
) -> None:
    assert a_of(and_or, "j", **down) == pytest.approx(expected, abs=1e-12)


def test_leaves_keep_their_own_availability(and_or: CompiledGraph, engine_path: str) -> None:
    # a leaf: a = up
    a = and_or.evaluate(up_with(and_or, x=0.3, y=0.0, z=0.9))
    assert a[and_or.index["x"]] == pytest.approx(0.3)
    assert a[and_or.index["y"]] == pytest.approx(0.0)
    assert a[and_or.index["z"]] == pytest.approx(0.9)
    # j = min(.3, .5 × 0 + .5 × .9) = min(.3, .45) = .3
    assert a[and_or.index["j"]] == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("node", "expected_p"),
    [
        # t feeds both fabs: every die gone -> a(a) = a(b) = 0 -> p = 0 (SPOF)
        ("t", 0.0),
        # f1: a = min(0, 1) = 0; b = min(.5 × 0 + .5 × 1, 1) = .5 -> p = .4 × .5 = .2
        ("f1", 0.2),
        # f2: b = min(.5, 1) = .5 -> p = .6 + .4 × .5 = .8
        ("f2", 0.8),
        # m1: a = min(1, .5) = .5; b = min(1, 0) = 0 -> p = .6 × .5 = .3
        ("m1", 0.3),
        # m2: a = min(1, .5) = .5 -> p = .6 × .5 + .4 = .7
        ("m2", 0.7),
        ("a", 0.4),  # p = .4 × 1
        ("b", 0.6),  # p = .6 × 1
        ("p", 0.0),
    ],
)
def test_small_graph_single_knockouts(
    small: CompiledGraph, node: str, expected_p: float, engine_path: str
) -> None:
    assert a_of(small, "p", **{node: 0.0}) == pytest.approx(expected_p, abs=1e-12)


def test_batched_knockouts_equal_one_at_a_time(small: CompiledGraph, engine_path: str) -> None:
    n = small.n_nodes
    batch = small.evaluate(small.knockouts(range(n)))
    assert batch.shape == (n, n)
    for k in range(n):
        up = np.ones(n)
        up[k] = 0.0
        np.testing.assert_allclose(batch[:, k], small.evaluate(up), rtol=0, atol=1e-15)


def test_batched_random_fractions_equal_one_at_a_time(small: CompiledGraph) -> None:
    rng = np.random.default_rng(7)
    up = rng.uniform(0.0, 1.0, size=(small.n_nodes, 25))
    batch = small.evaluate(up)
    for k in range(up.shape[1]):
        np.testing.assert_allclose(batch[:, k], small.evaluate(up[:, k]), rtol=0, atol=1e-15)


def test_knockouts_helper_builds_one_column_per_node(small: CompiledGraph) -> None:
    up = small.knockouts([small.index["t"], small.index["m1"]])
    assert up.shape == (small.n_nodes, 2)
    assert up[small.index["t"], 0] == 0.0 and up[:, 0].sum() == small.n_nodes - 1
    assert up[small.index["m1"], 1] == 0.0 and up[:, 1].sum() == small.n_nodes - 1


def test_country_losses_remove_each_country_share(small: CompiledGraph, engine_path: str) -> None:
    assert small.countries == ("KOR", "NLD", "TWN", "USA")
    a = small.evaluate(small.country_losses())
    p = a[small.index["p"]]
    # KOR: m1 -> 0, f2 -> .5 => a = min(1, .5) = .5, b = min(.5 + .25, 0) = 0 -> p = .3
    # NLD: t -> 0 -> p = 0
    # TWN: f1 -> 0 => a = 0, b = min(.5, 1) = .5 -> p = .2
    # USA: a, b and m2 -> 0 -> p = 0
    assert p == pytest.approx([0.3, 0.0, 0.2, 0.0], abs=1e-12)


# -- node ordering and levels --------------------------------------------------------------------


def test_suppliers_precede_consumers_and_levels_are_longest_paths() -> None:
    # t -> f -> a -> p and a shortcut t -> a: a's level is the longest chain below it (2).
    cg = build(
        ["p", "a", "t", "f", "z", "b"],
        [
            ("p", "fleet", "a", 1.0),
            ("a", "die", "f", 1.0),
            ("a", "tool", "t", 1.0),
            ("f", "litho", "t", 1.0),
            ("p", "other", "z", 1.0),
            ("a", "mem", "b", 1.0),
        ],
    )
    # ordered by (level, id): leaves b, t, z (by id), then f, a, p
    assert cg.ids == ("b", "t", "z", "f", "a", "p")
    assert cg.levels.tolist() == [0, 0, 0, 1, 2, 3]
    assert dict(cg.index) == {nid: i for i, nid in enumerate(cg.ids)}
    coo = cg.flow.tocoo()
    assert all(int(i) < int(j) for i, j in zip(coo.row, coo.col, strict=True))


def test_ordering_is_independent_of_input_order(small: CompiledGraph) -> None:
    shuffled = build(tuple(reversed(SMALL_IDS)), list(reversed(SMALL_EDGES)), SMALL_SITES)
    assert shuffled.ids == small.ids
    # leaves m1, m2, t; then f1, f2; then a, b; then p
    assert small.ids == ("m1", "m2", "t", "f1", "f2", "a", "b", "p")
    rng = np.random.default_rng(3)
    up = rng.uniform(size=(small.n_nodes, 5))
    np.testing.assert_allclose(shuffled.evaluate(up), small.evaluate(up), atol=1e-15)


def test_segments_are_one_per_consumer_and_category(small: CompiledGraph) -> None:
    # p:fleet, a:logic_die, a:memory, b:logic_die, b:memory, f1:lithography, f2:lithography
    owners = [small.ids[i] for i in small.segment_owner]
    assert list(zip(owners, small.segment_category, strict=True)) == [
        ("f1", "lithography"),
        ("f2", "lithography"),
        ("a", "logic_die"),
        ("a", "memory"),
        ("b", "logic_die"),
        ("b", "memory"),
        ("p", "fleet"),
    ]
    # every segment's shares sum to 1
    assert np.asarray(small.shares.sum(axis=1)).ravel() == pytest.approx(np.ones(7))


def test_from_graph_matches_from_arrays(small: CompiledGraph, small_graph: SupplyGraph) -> None:
    cg = compile_graph(small_graph)
    assert cg.ids == small.ids
    assert cg.countries == small.countries
    np.testing.assert_allclose(cg.flow.toarray(), small.flow.toarray())
    np.testing.assert_allclose(cg.sites.toarray(), small.sites.toarray())


# -- flows (effective sourcing) ------------------------------------------------------------------


def test_flows_of_the_small_graph(small: CompiledGraph) -> None:
    x = small.flows([small.index["p"]])
    assert x.shape == (small.n_nodes, 1)
    flow = {nid: float(x[small.index[nid], 0]) for nid in small.ids}
    # x_p = 1; x_a = .6, x_b = .4; x_f1 = .6 × 1 + .4 × .5 = .8; x_f2 = .4 × .5 = .2;
    # x_m1 = .6 × .5 + .4 × 1 = .7; x_m2 = .6 × .5 = .3; x_t = .8 + .2 = 1
    expected = {"p": 1, "a": 0.6, "b": 0.4, "f1": 0.8, "f2": 0.2, "m1": 0.7, "m2": 0.3, "t": 1}
    assert flow == pytest.approx(expected, abs=1e-12)


def test_flows_from_several_roots_at_once(small: CompiledGraph) -> None:
    x = small.flows([small.index["p"], small.index["b"], small.index["t"]])
    # from b: x_b = 1, f1 = f2 = .5, m1 = 1, t = .5 + .5 = 1
    col = {nid: float(x[small.index[nid], 1]) for nid in small.ids}
    assert col == pytest.approx(
        {"p": 0, "a": 0, "b": 1, "f1": 0.5, "f2": 0.5, "m1": 1, "m2": 0, "t": 1}, abs=1e-12
    )
    # from a leaf: only itself
    assert x[:, 2].tolist() == [1.0 if nid == "t" else 0.0 for nid in small.ids]
    assert x[small.index["f1"], 0] == pytest.approx(0.8)


def test_flows_give_every_category_the_full_flow(and_or: CompiledGraph) -> None:
    # AND: die and memory both receive j's whole flow; OR splits memory .5/.5
    x = and_or.flows([and_or.index["j"]])[:, 0]
    assert {nid: x[and_or.index[nid]] for nid in "jxyz"} == pytest.approx(
        {"j": 1.0, "x": 1.0, "y": 0.5, "z": 0.5}
    )


def test_flows_without_edges_are_the_roots() -> None:
    cg = build(["u", "v"], [])
    assert cg.flows([1, 0]).tolist() == [[0.0, 1.0], [1.0, 0.0]]


# -- validation and shapes -----------------------------------------------------------------------


def test_cycle_is_rejected() -> None:
    with pytest.raises(ValueError, match="cycle"):
        build(["a", "b", "c"], [("a", "x", "b", 1.0), ("b", "x", "c", 1.0), ("c", "x", "a", 1.0)])


def test_self_loop_is_rejected() -> None:
    with pytest.raises(ValueError, match="cycle"):
        build(["a", "b"], [("a", "x", "b", 1.0), ("b", "x", "b", 1.0)])


def test_one_dimensional_up_returns_one_dimensional_a(and_or: CompiledGraph) -> None:
    up = up_with(and_or, y=0.0)
    a = and_or.evaluate(up)
    assert a.shape == (4,)
    assert up[and_or.index["j"]] == 1.0  # the input is not modified in place
    assert a[and_or.index["j"]] == pytest.approx(0.5)


def test_two_dimensional_up_returns_one_column_per_scenario(and_or: CompiledGraph) -> None:
    up = np.ones((4, 3))
    up[and_or.index["x"], 1] = 0.0  # scenario 1: x down -> 0
    up[and_or.index["y"], 2] = 0.0  # scenario 2: y down -> .5
    before = up.copy()
    a = and_or.evaluate(up)
    assert a.shape == (4, 3)
    assert a[and_or.index["j"]] == pytest.approx([1.0, 0.0, 0.5])
    np.testing.assert_array_equal(up, before)
    # a single-column 2-D batch stays 2-D
    assert and_or.evaluate(np.ones((4, 1))).shape == (4, 1)


def test_wrong_number_of_rows_is_rejected(and_or: CompiledGraph) -> None:
    with pytest.raises(ValueError, match="rows"):
        and_or.evaluate(np.ones(3))
    with pytest.raises(ValueError, match="rows"):
        and_or.evaluate(np.ones((5, 2)))


def test_graph_of_leaves_only() -> None:
    cg = build(["b", "a"], [])
    assert cg.ids == ("a", "b")
    assert cg.evaluate(np.array([0.25, 0.5])).tolist() == [0.25, 0.5]
