"""The compiled engine against the plain networkx reference (models/reference.py).

Random small layered AND/OR graphs (hypothesis): every node, every scenario, in float64 to
1e-9, in float32 to 1e-5 and to the documented bound; per-edge scales; the reducing entry
point; ancestors.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sovrisk.models.engine.compiled import CompiledGraph
from sovrisk.models.engine.reference import ReferenceGraph, reference_evaluate

SETTINGS = settings(max_examples=40, deadline=None)


@dataclass(frozen=True)
class Case:
    ids: list[str]
    edges: list[tuple[str, str, str, float]]  # (consumer, category, supplier, share)
    up: np.ndarray  # (len(ids), k), rows follow ids
    scale: np.ndarray  # one factor per edge, in edge order

    def compile(self) -> CompiledGraph:
        pos = {nid: i for i, nid in enumerate(self.ids)}
        return CompiledGraph.from_arrays(
            self.ids,
            np.array([pos[c] for c, _, _, _ in self.edges], dtype=np.int64),
            np.array([pos[s] for _, _, s, _ in self.edges], dtype=np.int64),
            [cat for _, cat, _, _ in self.edges],
            np.array([s for _, _, _, s in self.edges], dtype=np.float64),
        )

    def reference(self) -> ReferenceGraph:
        return ReferenceGraph.from_edges(self.ids, self.edges)

    def up_for(self, cg: CompiledGraph) -> np.ndarray:
        """``up`` rows reordered to the compiled order."""
        out = np.empty_like(self.up)
        for row, nid in enumerate(self.ids):
            out[cg.index[nid]] = self.up[row]
        return out

    def up_map(self, k: int) -> dict[str, float]:
        return {nid: float(self.up[row, k]) for row, nid in enumerate(self.ids)}


unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """1-5 layers of 1-5 nodes; every node above layer 0 needs 1-3 categories, each from 1-3
    lower suppliers (a supplier may serve one consumer in two categories); shares sum to 1
    or, now and then, less."""
    sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=5))
    layers = [[f"n{level}.{k}" for k in range(size)] for level, size in enumerate(sizes)]
    edges: list[tuple[str, str, str, float]] = []
    for level in range(1, len(layers)):
        lower = [nid for layer in layers[:level] for nid in layer]
        for consumer in layers[level]:
            for c in draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=3, unique=True)):
                suppliers = draw(
                    st.lists(st.sampled_from(lower), min_size=1, max_size=3, unique=True)
                )
                weights = draw(
                    st.lists(st.integers(1, 9), min_size=len(suppliers), max_size=len(suppliers))
                )
                cover = draw(st.sampled_from([1.0, 1.0, 1.0, 0.8]))
                for s, w in zip(suppliers, weights, strict=True):
                    edges.append((consumer, f"cat_{c}", s, cover * w / sum(weights)))
    ids = draw(st.permutations([nid for layer in layers for nid in layer]))
    k = draw(st.integers(1, 4))
    n = len(ids)
    up = np.array(draw(st.lists(unit, min_size=n * k, max_size=n * k))).reshape(n, k)
    scale = np.array(draw(st.lists(unit, min_size=len(edges), max_size=len(edges))))
    return Case(list(ids), edges, up, scale)


@SETTINGS
@given(cases())
def test_engine_matches_reference_float64(case: Case) -> None:
    cg, ref = case.compile(), case.reference()
    a = cg.evaluate(case.up_for(cg))
    for k in range(case.up.shape[1]):
        expected = ref.evaluate(case.up_map(k))
        for nid in case.ids:
            assert a[cg.index[nid], k] == pytest.approx(expected[nid], abs=1e-9)


@SETTINGS
@given(cases())
def test_engine_matches_reference_float32(case: Case) -> None:
    cg, ref = case.compile(), case.reference()
    a = cg.evaluate(case.up_for(cg), dtype=np.float32)
    assert a.dtype == np.float32
    bound = cg.float32_error_bound()
    assert bound <= 1e-5
    for k in range(case.up.shape[1]):
        expected = ref.evaluate(case.up_map(k))
        for nid in case.ids:
            error = abs(float(a[cg.index[nid], k]) - expected[nid])
            assert error <= bound + 1e-12
            assert error <= 1e-5


@SETTINGS
@given(cases())
def test_edge_scale_matches_a_reference_scaling_the_same_edges(case: Case) -> None:
    cg, ref = case.compile(), case.reference()
    per_share = np.ones(cg.shares.nnz)
    per_share[cg.edge_position] = case.scale  # the input edges are unique: one entry each
    by_edge = {
        (c, cat, s): float(f) for (c, cat, s, _), f in zip(case.edges, case.scale, strict=True)
    }
    a = cg.evaluate(case.up_for(cg), edge_scale=per_share)
    a32 = cg.evaluate(case.up_for(cg), edge_scale=per_share, dtype=np.float32)
    for k in range(case.up.shape[1]):
        expected = ref.evaluate(case.up_map(k), edge_scale=by_edge)
        for nid in case.ids:
            assert a[cg.index[nid], k] == pytest.approx(expected[nid], abs=1e-9)
            assert abs(float(a32[cg.index[nid], k]) - expected[nid]) <= cg.float32_error_bound()


@SETTINGS
@given(cases(), st.data())
def test_evaluate_rows_keeps_the_requested_rows(case: Case, data: st.DataObject) -> None:
    cg = case.compile()
    up = case.up_for(cg)
    rows = data.draw(st.lists(st.integers(0, cg.n_nodes - 1), min_size=1, max_size=4))
    batch = data.draw(st.integers(1, 3))
    per_share = np.ones(cg.shares.nnz)
    per_share[cg.edge_position] = case.scale
    full = cg.evaluate(up, edge_scale=per_share)
    for prune in (True, False):
        kept = cg.evaluate_rows(up, rows, edge_scale=per_share, batch_size=batch, prune=prune)
        np.testing.assert_allclose(kept, full[rows], rtol=0, atol=1e-12)
    # a generator of single columns gives the same
    columns = (up[:, k : k + 1] for k in range(up.shape[1]))
    plain = cg.evaluate(up)[rows]
    np.testing.assert_allclose(cg.evaluate_rows(columns, rows), plain, rtol=0, atol=1e-12)


@SETTINGS
@given(cases(), st.data())
def test_ancestors_are_networkx_ancestors(case: Case, data: st.DataObject) -> None:
    cg = case.compile()
    g = case.reference().graph
    rows = data.draw(st.lists(st.integers(0, cg.n_nodes - 1), min_size=1, max_size=3))
    expected: set[str] = set()
    for r in rows:
        expected |= nx.ancestors(g, cg.ids[r]) | {cg.ids[r]}
    assert sorted(cg.ids[i] for i in cg.ancestors(rows)) == sorted(expected)


def test_reference_by_hand() -> None:
    # j needs a die (x) AND memory (y or z, half each)
    edges = [("j", "die", "x", 1.0), ("j", "mem", "y", 0.5), ("j", "mem", "z", 0.5)]
    up = {"j": 1.0, "x": 0.6, "y": 0.0, "z": 1.0}
    assert reference_evaluate("jxyz", edges, up)["j"] == pytest.approx(0.5)  # min(.6, .5)
    scaled = reference_evaluate("jxyz", edges, up, {("j", "mem", "z"): 0.4})
    assert scaled["j"] == pytest.approx(0.2)  # min(.6, .5 × .4)


def test_reference_graph_from_arrays_matches_from_edges() -> None:
    ids = ["p", "a", "b"]
    ref = ReferenceGraph.from_arrays(
        ids, np.array([0, 0]), np.array([1, 2]), ["fleet", "fleet"], np.array([0.25, 0.75])
    )
    assert ref.evaluate({"p": 1.0, "a": 0.0, "b": 1.0})["p"] == pytest.approx(0.75)
    assert ref.order.index("p") > max(ref.order.index("a"), ref.order.index("b"))
