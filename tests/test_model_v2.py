"""Model v2 (METHODS v2 §1-§2): Leontief capacity, horizons and buffers, input classes,
country events of two kinds, worked out by hand on small graphs, on every evaluation path
(the numpy path, the numba kernel and the networkx reference)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from sovrisk.models.engine.compiled import CompiledGraph, EdgeTerm
from sovrisk.models.engine.reference import reference_evaluate

ABS = 1e-12

Edge = tuple[str, str, str, float, float]  # (consumer, category, supplier, share, buffer)


def build(
    ids: Sequence[str],
    edges: Sequence[Edge],
    sites: Sequence[tuple[str, str, float]],
    *,
    is_flow: Sequence[bool] | None = None,
    location: Sequence[tuple[str, str, float]] | None = None,
) -> CompiledGraph:
    pos = {nid: i for i, nid in enumerate(ids)}
    return CompiledGraph.from_arrays(
        list(ids),
        np.array([pos[e[0]] for e in edges], dtype=np.int64),
        np.array([pos[e[2]] for e in edges], dtype=np.int64),
        [e[1] for e in edges],
        np.array([e[3] for e in edges]),
        [(pos[n], c, s) for n, c, s in sites],
        buffers=np.array([e[4] for e in edges]),
        is_flow=None if is_flow is None else np.array(is_flow),
        location_rows=None if location is None else [(pos[n], c, s) for n, c, s in location],
    )


@pytest.fixture(params=["numpy", "kernel", "reference"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each hand computation runs on the numpy path, the numba kernel and the reference."""
    from sovrisk.models.engine import compiled

    if request.param == "kernel":
        pytest.importorskip("sovrisk.models.engine.kernels", reason="numba is not installed")
        monkeypatch.setattr(compiled, "KERNEL_MIN_WORK", 0)
    else:
        monkeypatch.setenv("SOVRISK_NUMBA", "0")
    return str(request.param)


def a_of(
    path: str,
    cg: CompiledGraph,
    edges: Sequence[Edge],
    node: str,
    up: dict[str, float],
    horizon: float | None,
) -> float:
    if path == "reference":
        full = {nid: up.get(nid, 1.0) for nid in cg.ids}
        return reference_evaluate(cg.ids, edges, full, horizon=horizon)[node]
    vector = np.ones(cg.n_nodes)
    for nid, v in up.items():
        vector[cg.index[nid]] = v
    return float(cg.evaluate(vector, horizon=horizon)[cg.index[node]])


# -- a three-stage chain in one country: Leontief, not compounding ------------------------------

CHAIN_IDS = ("p", "c", "f", "m")
CHAIN: list[Edge] = [
    ("p", "fleet", "c", 1.0, 0.0),
    ("c", "logic_die", "f", 1.0, 0.0),
    ("f", "materials", "m", 1.0, 0.0),
]
CHAIN_SITES = [("c", "TWN", 1.0), ("f", "TWN", 1.0), ("m", "TWN", 1.0)]


def test_a_correlated_loss_is_not_compounded_along_a_chain(path: str) -> None:
    # 60 % of Taiwan lost: every stage keeps .4 of its capacity. Leontief: a(m) = .4,
    # a(f) = min(.4, .4) = .4, a(c) = min(.4, .4) = .4, a(p) = .4. Version 1 multiplied
    # up x min(...) at every stage: .4 x .4 x .4 = .064.
    cg = build(CHAIN_IDS, CHAIN, CHAIN_SITES)
    up = {"c": 0.4, "f": 0.4, "m": 0.4}
    for horizon in (None, 13.0):
        assert a_of(path, cg, CHAIN, "p", up, horizon) == pytest.approx(0.4, abs=ABS)
    # the scarcest stage binds: m at .4, f at .7, c at .9 -> .4; f at .3 -> .3
    assert a_of(path, cg, CHAIN, "p", {"c": 0.9, "f": 0.7, "m": 0.4}, None) == pytest.approx(0.4)
    assert a_of(path, cg, CHAIN, "p", {"c": 0.9, "f": 0.3, "m": 0.4}, None) == pytest.approx(0.3)


# -- a fab with an installed base and a flow -----------------------------------------------------

FAB_IDS = ("p", "f", "t", "w")
FAB: list[Edge] = [
    ("p", "fleet", "f", 1.0, 0.0),
    ("f", "lithography", "t", 1.0, 52.0),  # an installed base: 52 weeks of service buffer
    ("f", "silicon_wafers", "w", 1.0, 4.0),  # a flow: 4 weeks of inventory
]
FAB_SITES = [("f", "TWN", 1.0), ("t", "NLD", 1.0), ("w", "JPN", 1.0)]


@pytest.mark.parametrize(
    ("down", "horizon", "expected"),
    [
        # the tool maker lost: e = 1 - (1 - 0) x max(0, 1 - 52/h)
        ({"t": 0.0}, 13.0, 1.0),  # 52 > 13: the installed base covers the quarter
        ({"t": 0.0}, 104.0, 0.5),  # 1 - (1 - 52/104) = .5
        ({"t": 0.0}, None, 0.0),  # the long run: nothing left
        # the wafer maker lost: e = 1 - max(0, 1 - 4/h) = 4/h
        ({"w": 0.0}, 13.0, 4 / 13),  # .307692: the inventory covers 4 of 13 weeks
        ({"w": 0.0}, 104.0, 4 / 104),  # .038462
        ({"w": 0.0}, 4.0, 1.0),  # the inventory covers the whole window
        # both: the scarcer category binds (Leontief)
        ({"t": 0.0, "w": 0.0}, 13.0, 4 / 13),
        ({"t": 0.0, "w": 0.0}, 104.0, 4 / 104),
        # half the wafers for a quarter: e = 1 - .5 x (1 - 4/13) = .653846
        ({"w": 0.5}, 13.0, 1 - 0.5 * 9 / 13),
    ],
)
def test_buffers_by_hand(
    path: str, down: dict[str, float], horizon: float | None, expected: float
) -> None:
    cg = build(FAB_IDS, FAB, FAB_SITES)
    assert a_of(path, cg, FAB, "p", down, horizon) == pytest.approx(expected, abs=ABS)


def test_horizons_are_one_batch_of_the_same_up() -> None:
    cg = build(FAB_IDS, FAB, FAB_SITES)
    up = np.ones((cg.n_nodes, 2))
    up[cg.index["t"], 0] = 0.0
    up[cg.index["w"], 1] = 0.0
    got = {h: cg.evaluate(up, horizon=h)[cg.index["p"]] for h in (4.0, 13.0, 26.0, 52.0, 104.0)}
    assert got[13.0] == pytest.approx([1.0, 4 / 13])
    assert got[104.0] == pytest.approx([0.5, 4 / 104])
    assert got[52.0] == pytest.approx([1.0, 4 / 52])  # max(0, 1 - 52/52) = 0: fully covered
    # the impact grows with the horizon as buffers run out
    series = [1 - got[h][1] for h in sorted(got)]
    assert series == sorted(series)


def test_a_standing_restriction_is_felt_in_full_and_only_the_new_shock_waits() -> None:
    # A regime already in force halves w's deliveries (edge_scale .5) and has been felt for
    # long (baseline: a(f) = .5). A new shock takes the tool: at 13 weeks the fab still
    # delivers what the regime leaves it, e = b (1 - f) + a f with f = 0 for the tool.
    cg = build(FAB_IDS, FAB, FAB_SITES)
    scale = np.ones(cg.shares.nnz)
    w_entry = cg.edge_position[2]  # ("f", "silicon_wafers", "w") is the third edge
    scale[w_entry] = 0.5
    baseline = cg.evaluate(np.ones(cg.n_nodes), edge_scale=scale)
    assert baseline[cg.index["p"]] == pytest.approx(0.5)
    up = np.ones(cg.n_nodes)
    up[cg.index["t"]] = 0.0
    a = cg.evaluate(up, edge_scale=scale, horizon=13.0, baseline=baseline)
    assert a[cg.index["p"]] == pytest.approx(0.5)  # the tool's loss is still covered
    a = cg.evaluate(up, edge_scale=scale, horizon=104.0, baseline=baseline)
    assert a[cg.index["p"]] == pytest.approx(0.5)  # min(wafers .5, tool .5)


# -- country events: site loss and blockade ------------------------------------------------------

TRADE_IDS = ("p", "c", "s", "d")
TRADE: list[Edge] = [
    ("p", "fleet", "c", 1.0, 2.0),  # the provider holds 2 weeks of chips
    ("c", "die", "s", 0.6, 0.0),  # a Taiwanese die supplier
    ("c", "die", "d", 0.4, 0.0),  # a domestic one
]
TRADE_SITES = [("c", "USA", 1.0), ("s", "TWN", 1.0), ("d", "USA", 1.0)]
TRADE_LOCATION = [*TRADE_SITES, ("p", "USA", 1.0)]


def test_blockade_stops_cross_border_edges_only() -> None:
    cg = build(TRADE_IDS, TRADE, TRADE_SITES, location=TRADE_LOCATION)
    twn = cg.countries.index("TWN")
    usa = cg.countries.index("USA")
    crossing = {
        (
            cg.ids[int(cg.segment_owner[np.searchsorted(cg.shares.indptr, k, "right") - 1])],
            cg.ids[int(cg.shares.indices[k])],
        ): float(v)
        for k, v in enumerate(cg.border_exposure(twn))
    }
    # s (TWN) -> c (USA) crosses; d -> c and c -> p are domestic (USA)
    assert crossing == {("c", "s"): 1.0, ("c", "d"): 0.0, ("p", "c"): 0.0}
    term = EdgeTerm(cg.border_exposure(twn), np.ones(1))
    ones = np.ones((cg.n_nodes, 1))
    # a full blockade of Taiwan: c gets only its domestic .4; p sees it behind 2 weeks of
    # chips: at 13 weeks e = 1 - .6 x (1 - 2/13) = .492308
    a13 = cg.evaluate(ones, horizon=13.0, edge_terms=[term])[cg.index["p"], 0]
    assert a13 == pytest.approx(1 - 0.6 * 11 / 13, abs=ABS)
    assert cg.evaluate(ones, edge_terms=[term])[cg.index["p"], 0] == pytest.approx(0.4)
    # a blockade of the USA stops what enters it: s's dies (the same .6)
    usa_term = EdgeTerm(cg.border_exposure(usa), np.ones(1))
    assert cg.evaluate(ones, edge_terms=[usa_term])[cg.index["p"], 0] == pytest.approx(0.4)
    # a site loss in Taiwan takes s itself: the same .4 in the long run
    up = np.ones(cg.n_nodes)
    up[cg.index["s"]] = 0.0
    assert cg.evaluate(up)[cg.index["p"]] == pytest.approx(0.4)


def test_edge_terms_scale_each_scenario_by_its_own_severity() -> None:
    cg = build(TRADE_IDS, TRADE, TRADE_SITES, location=TRADE_LOCATION)
    twn = cg.countries.index("TWN")
    term = EdgeTerm(cg.border_exposure(twn), np.array([0.0, 0.5, 1.0]))
    a = cg.evaluate(np.ones((cg.n_nodes, 3)), edge_terms=[term])[cg.index["p"]]
    assert a == pytest.approx([1.0, 1 - 0.6 * 0.5, 0.4])


def test_split_sites_cross_by_share() -> None:
    # A supplier half in Taiwan, half in the USA, feeding a US consumer: a Taiwan blockade
    # stops the Taiwanese half of its deliveries: |x_s - x_c| = .5.
    sites = [("c", "USA", 1.0), ("s", "TWN", 0.5), ("s", "USA", 0.5), ("d", "USA", 1.0)]
    cg = build(TRADE_IDS, TRADE, sites, location=[*sites, ("p", "USA", 1.0)])
    exposure = cg.border_exposure(cg.countries.index("TWN"))
    assert sorted(exposure.tolist()) == [0.0, 0.0, 0.5]
    term = EdgeTerm(exposure, np.ones(1))
    a = cg.evaluate(np.ones((cg.n_nodes, 1)), edge_terms=[term])[cg.index["p"], 0]
    assert a == pytest.approx(1 - 0.6 * 0.5)


def test_co_located_sites_feed_each_other_first() -> None:
    # Supplier and consumer both 30 % in the USA, 70 % in Taiwan: matched first, so only
    # |0.7 - 0.7| = 0 of the flow crosses Taiwan's border (independent mixing would say
    # 0.7 x 0.3 + 0.3 x 0.7 = 0.42). The US die supplier d feeds c's Taiwanese 70 %, and the
    # Taiwanese 70 % of c's output crosses to the US provider: 0.7 each.
    sites = [("c", "USA", 0.3), ("c", "TWN", 0.7), ("s", "TWN", 0.7), ("s", "USA", 0.3)]
    sites += [("d", "USA", 1.0)]
    cg = build(TRADE_IDS, TRADE, sites, location=[*sites, ("p", "USA", 1.0)])
    exposure = cg.border_exposure(cg.countries.index("TWN"))
    crossing = {
        (
            cg.ids[int(cg.segment_owner[np.searchsorted(cg.shares.indptr, k, "right") - 1])],
            cg.ids[int(cg.shares.indices[k])],
        ): float(v)
        for k, v in enumerate(exposure)
    }
    assert crossing == pytest.approx({("c", "s"): 0.0, ("c", "d"): 0.7, ("p", "c"): 0.7})


def test_delays_add_along_flow_paths() -> None:
    # m -> f (flow, 4 weeks) -> p (flow, 2 weeks); t -> f is an installed base (52 weeks) that
    # a standing restriction does not pass.
    ids = ("p", "f", "m", "t")
    edges: list[Edge] = [
        ("p", "fleet", "f", 1.0, 2.0),
        ("f", "materials", "m", 1.0, 4.0),
        ("f", "lithography", "t", 1.0, 52.0),
    ]
    cg = build(
        ids,
        edges,
        [("f", "TWN", 1.0), ("m", "CHN", 1.0), ("t", "NLD", 1.0)],
        is_flow=[True, True, False],
    )
    start = np.full(cg.n_nodes, math.inf)
    start[cg.index["m"]] = 0.0
    delay = cg.delays(start, cg.flow_entries)
    assert delay[cg.index["f"]] == 4.0 and delay[cg.index["p"]] == 6.0
    start = np.full(cg.n_nodes, math.inf)
    start[cg.index["t"]] = 0.0
    delay = cg.delays(start, cg.flow_entries)
    assert math.isinf(delay[cg.index["f"]])  # an installed base does not pass it
