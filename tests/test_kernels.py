"""The numba kernel (models/kernels.py) against the numpy path and the plain reference.

Every comparison runs the same call twice, once forced onto each path (``on_path``), and
checks that the path asked for really ran (a spy counts kernel calls), so a silently disabled
kernel fails these tests instead of comparing numpy with itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sovrisk.models.engine.compiled as compiled
from benchmarks.synthetic import degraded_batches, layered_graph, top_rows
from sovrisk.models.engine.compiled import CompiledGraph
from sovrisk.models.engine.reference import ReferenceGraph, reference_evaluate

kernels = pytest.importorskip("sovrisk.models.engine.kernels", reason="numba is not installed")

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = settings(max_examples=60, deadline=None)


@contextmanager
def on_path(path: str, *, threads: int = 1) -> Iterator[None]:
    """Force every batch onto ``path`` ("kernel" or "numpy"); with ``threads`` > 1 the
    kernel splits every level over that many threads, however small."""
    calls = []
    real = kernels.evaluate

    def spy(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        real(*args, **kwargs)

    saved = (compiled.KERNEL_MIN_WORK, kernels.PARALLEL_MIN_WORK, kernels.evaluate)
    compiled.KERNEL_MIN_WORK = 0 if path == "kernel" else 1 << 62
    kernels.PARALLEL_MIN_WORK = 1
    kernels.evaluate = spy
    old_threads = kernels.n_threads
    kernels.n_threads = lambda: threads
    try:
        yield
    finally:
        compiled.KERNEL_MIN_WORK, kernels.PARALLEL_MIN_WORK, kernels.evaluate = saved
        kernels.n_threads = old_threads
    if path == "kernel":
        assert calls, "the kernel path did not run"
    else:
        assert not calls, "the numpy path called the kernel"


def both(fn: Callable[[], np.ndarray], threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    with on_path("numpy"):
        plain = fn()
    with on_path("kernel", threads=threads):
        fused = fn()
    return plain, fused


# -- random graphs, including long categories (the kernel's 4-at-a-time path) -----------------


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
def dags(draw: st.DrawFn) -> Dag:
    """1-5 layers of 1-6 nodes; a consumer needs 1-4 categories of 1-9 suppliers (shares
    summing to 1, or less: under-covered), suppliers from any lower layer."""
    sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=5))
    layers = [[f"n{level}_{k}" for k in range(size)] for level, size in enumerate(sizes)]
    edges = []
    for level in range(1, len(layers)):
        lower = [nid for layer in layers[:level] for nid in layer]
        for consumer in layers[level]:
            for c in range(draw(st.integers(1, 4))):
                suppliers = draw(
                    st.lists(st.sampled_from(lower), min_size=1, max_size=9, unique=True)
                )
                weights = draw(
                    st.lists(st.integers(1, 10), min_size=len(suppliers), max_size=len(suppliers))
                )
                cover = draw(st.sampled_from([1.0, 1.0, 0.9, 0.5]))
                for s, w in zip(suppliers, weights, strict=True):
                    edges.append((consumer, f"cat{c}", s, cover * w / sum(weights)))
    ids = draw(st.permutations([nid for layer in layers for nid in layer]))
    return Dag(list(ids), edges)


unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def dag_and_up(draw: st.DrawFn) -> tuple[Dag, np.ndarray]:
    """A DAG and 1-40 scenarios (compiled row order): mostly 1 with some degraded nodes, as
    Monte Carlo draws are, or uniform fractions."""
    dag = draw(dags())
    n, k = len(dag.ids), draw(st.integers(1, 40))
    if draw(st.booleans()):
        values = draw(st.lists(unit, min_size=n * k, max_size=n * k))
        return dag, np.array(values).reshape(n, k)
    up = np.ones((n, k))
    for _ in range(draw(st.integers(0, n * k))):
        up[draw(st.integers(0, n - 1)), draw(st.integers(0, k - 1))] = draw(unit)
    return dag, up


def reference_a(dag: Dag, up: dict[str, float]) -> dict[str, float]:
    """METHODS v2 §2 by the networkx reference (models.engine.reference), long run."""
    return reference_evaluate(dag.ids, dag.edges, up)


@SETTINGS
@given(dag_and_up())
def test_kernel_equals_numpy_bit_for_bit(case: tuple[Dag, np.ndarray]) -> None:
    dag, up = case
    cg = dag.compile()
    for dtype in (np.float64, np.float32):
        plain, fused = both(lambda d=dtype: cg.evaluate(up, dtype=d))
        assert fused.dtype == plain.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(fused, plain)


@SETTINGS
@given(dag_and_up())
def test_kernel_matches_the_reference(case: tuple[Dag, np.ndarray]) -> None:
    dag, up = case
    cg = dag.compile()
    with on_path("kernel"):
        a = cg.evaluate(up)
        a32 = cg.evaluate(up, dtype=np.float32)
    bound = cg.float32_error_bound()
    for k in range(up.shape[1]):
        ref = reference_a(dag, {nid: float(up[cg.index[nid], k]) for nid in dag.ids})
        want = np.array([ref[nid] for nid in cg.ids])
        np.testing.assert_allclose(a[:, k], want, rtol=0, atol=1e-12)
        assert float(np.max(np.abs(a32[:, k] - want))) <= bound


@SETTINGS
@given(dag_and_up(), st.data())
def test_kernel_rows_with_scales_batches_and_threads(
    case: tuple[Dag, np.ndarray], data: st.DataObject
) -> None:
    dag, up = case
    cg = dag.compile()
    rows = data.draw(st.lists(st.integers(0, cg.n_nodes - 1), min_size=1, max_size=4))
    batch = data.draw(st.integers(1, 9))
    scale = np.array(data.draw(st.lists(unit, min_size=cg.shares.nnz, max_size=cg.shares.nnz)))
    threads = data.draw(st.integers(1, 3))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    for prune in (True, False):
        plain, fused = both(
            lambda p=prune: cg.evaluate_rows(
                up, rows, edge_scale=scale, dtype=dtype, batch_size=batch, prune=p
            ),
            threads=threads,
        )
        np.testing.assert_array_equal(fused, plain)
    plain, fused = both(lambda: cg.evaluate(up, scale, dtype=dtype), threads=threads)
    np.testing.assert_array_equal(fused, plain)


def test_monte_carlo_with_buffers_matches_numpy_and_the_reference() -> None:
    # The benchmark's Monte Carlo in miniature: a synthetic graph with a buffer on every edge
    # at the 13-week horizon (so every segment sum starts at a non-zero constant), batches as
    # wide as the kernel's defaults and a narrower last one (a column slice of the generator's
    # buffer, so ``up`` is not C-contiguous), two threads per level.
    table = layered_graph(3000, seed=3, buffers=True)
    cg = table.compile()
    rows = top_rows(cg)

    def monte_carlo(dtype: type[np.float32] | type[np.float64]) -> np.ndarray:
        batch = compiled.KERNEL_BATCH[np.dtype(dtype)]
        scenarios = degraded_batches(cg.n_nodes, 2 * batch + 7, batch_size=batch, dtype=dtype)
        return cg.evaluate_rows(scenarios, rows, dtype=dtype, horizon=13.0, batch_size=batch)

    for dtype in (np.float32, np.float64):
        plain, fused = both(lambda d=dtype: monte_carlo(d), threads=2)
        np.testing.assert_array_equal(fused.view(np.uint64), plain.view(np.uint64))  # bits

    # every node of a few scenarios on the kernel against the networkx reference
    new_of_old = np.array([cg.index[nid] for nid in table.ids.tolist()])
    ref = ReferenceGraph.from_arrays(
        cg.ids,
        new_of_old[table.consumer],
        new_of_old[table.supplier],
        table.categories[table.category].tolist(),
        table.share,
        table.buffer,
    )
    up = next(degraded_batches(cg.n_nodes, 3, batch_size=3, fraction=0.05, seed=9)).copy()
    with on_path("kernel", threads=2):
        a64 = cg.evaluate(up, horizon=13.0)
        a32 = cg.evaluate(up, dtype=np.float32, horizon=13.0)
    bound = cg.float32_error_bound()
    for k in range(up.shape[1]):
        expected = ref.evaluate(dict(zip(cg.ids, up[:, k].tolist(), strict=True)), horizon=13.0)
        want = np.array([expected[nid] for nid in cg.ids])
        np.testing.assert_allclose(a64[:, k], want, rtol=0, atol=1e-12)
        assert float(np.max(np.abs(a32[:, k] - want))) <= bound


def test_long_categories_take_the_four_at_a_time_path() -> None:
    # p needs one category of 11 suppliers (two passes of four, then three single ones) and
    # another of 5; the sum must keep the entry order to stay bit-identical.
    leaves = [f"l{i:02d}" for i in range(16)]
    rng = np.random.default_rng(5)
    w = rng.uniform(0.1, 1.0, 16)
    shares = np.concatenate([w[:11] / w[:11].sum(), w[11:] / w[11:].sum()])
    edges = [
        ("p", "big" if i < 11 else "small", leaf, float(share))
        for i, (leaf, share) in enumerate(zip(leaves, shares, strict=True))
    ]
    dag = Dag(["p", *leaves], edges)
    cg = dag.compile()
    up = rng.uniform(size=(cg.n_nodes, 33)).astype(np.float32)
    for dtype in (np.float32, np.float64):
        plain, fused = both(lambda d=dtype: cg.evaluate(up, dtype=d))
        np.testing.assert_array_equal(fused, plain)
    ref = reference_a(dag, {nid: float(up[cg.index[nid], 0]) for nid in dag.ids})
    with on_path("kernel"):
        assert cg.evaluate(up)[cg.index["p"], 0] == pytest.approx(ref["p"], abs=1e-12)


def test_nan_propagates_as_on_the_numpy_path() -> None:
    dag = Dag(
        ["p", "x", "y", "z"],
        [("p", "a", "x", 1.0), ("p", "b", "y", 0.5), ("p", "b", "z", 0.5)],
    )
    cg = dag.compile()
    up = np.ones((4, 4))
    up[cg.index["x"], 0] = np.nan  # the first category NaN
    up[cg.index["y"], 1] = np.nan  # the second
    up[cg.index["p"], 2] = np.nan  # the node itself
    plain, fused = both(lambda: cg.evaluate(up))
    np.testing.assert_array_equal(fused, plain)  # NaN in the same places
    assert np.isnan(fused[cg.index["p"], :3]).all() and fused[cg.index["p"], 3] == 1.0


def test_inputs_of_any_layout_and_dtype() -> None:
    rng = np.random.default_rng(2)
    table_up = rng.uniform(size=(40, 12))
    dag = Dag(
        [f"n{i}" for i in range(40)],
        [(f"n{i}", f"c{i % 3}", f"n{j}", 0.5) for i in range(20, 40) for j in (i - 20, i - 19)],
    )
    cg = dag.compile()
    for up in (
        table_up,
        np.asfortranarray(table_up),
        table_up[:, ::2],
        table_up[:, 3:9],  # contiguous rows, not C-contiguous: read in place
        table_up[::-1],
        table_up.astype(np.float32),
        (table_up * 4).astype(np.int64),
    ):
        for dtype in (np.float32, np.float64):
            plain, fused = both(lambda u=up, d=dtype: cg.evaluate(u, dtype=d))
            np.testing.assert_array_equal(fused, plain)


def test_graph_of_leaves_only_and_empty_batches() -> None:
    cg = Dag(["a", "b"], []).compile()
    up = np.array([[0.25, 1.0], [0.5, 0.0]])
    plain, fused = both(lambda: cg.evaluate(up))
    np.testing.assert_array_equal(fused, up)
    np.testing.assert_array_equal(plain, up)
    with on_path("kernel"):
        kept = cg.evaluate_rows(iter([up, up[:, :1]]), [1])
    assert kept.tolist() == [[0.5, 0.0, 0.5]]


# -- when the kernel runs ------------------------------------------------------------------------


def test_kernel_is_used_only_for_big_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not compiled._use_kernel(compiled.KERNEL_MIN_WORK - 1)
    assert compiled._use_kernel(compiled.KERNEL_MIN_WORK)
    monkeypatch.setenv("SOVRISK_NUMBA", "0")
    assert not compiled._use_kernel(compiled.KERNEL_MIN_WORK)


def test_default_batch_follows_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    cg = Dag(["p", "x", "y"], [("p", "a", "x", 1.0), ("p", "b", "y", 1.0)]).compile()
    monkeypatch.setattr(compiled, "KERNEL_MIN_WORK", 0)
    assert cg.default_batch(np.float32) == compiled.KERNEL_BATCH[np.dtype(np.float32)]
    assert cg.default_batch(np.float64) == compiled.KERNEL_BATCH[np.dtype(np.float64)]
    assert cg.default_batch(np.float64, budget=3 * 8 * 5) == 5  # still within the budget
    monkeypatch.setenv("SOVRISK_NUMBA", "0")
    assert cg.default_batch(np.float64) >= compiled.DEFAULT_BATCH  # the numpy path's width


def test_row_ranges_split_by_work() -> None:
    plan = kernels.build_plan(0, ())
    assert plan.levels == () and plan.n_entries == 0
    dag = Dag(
        [f"n{i}" for i in range(30)],
        [(f"n{i}", "c", f"n{j}", 1 / 3) for i in range(10, 30) for j in (0, 1, 2)]
        + [(f"n{i}", "d", f"n{i - 10}", 1.0) for i in range(10, 20)],
    )
    kplan = dag.compile()._plan.kernel_plan()
    assert kplan.levels == ((0, 10), (10, 30))
    bounds = kernels._split(kplan, 10, 30, 3)
    assert bounds[0] == 10 and bounds[-1] == 30 and bounds == sorted(bounds)
    assert len(bounds) == 4


def test_small_graphs_never_import_numba() -> None:
    # The bundled dataset's whole scoring run stays on the numpy path (no 0.3 s numba import,
    # no compilation) however many scenarios its Monte Carlo draws.
    code = (
        "import sys\n"
        "from models.graph.bundle import load_bundle\n"
        "from models.engine.compiled import compile_graph\n"
        "from models.scoring.risk_engine import RiskEngine\n"
        "graph, extra = load_bundle('data')\n"
        "engine = RiskEngine(graph, extra)\n"
        "engine.assess_all(engine.default_params())\n"
        "cg = compile_graph(graph)\n"
        "import numpy as np\n"
        "cg.evaluate_rows(np.ones((cg.n_nodes, 20000)), [0])\n"
        "assert 'numba' not in sys.modules, 'numba was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_threads_work_in_a_forked_child() -> None:
    # The worker pool's threads do not survive fork; the child must build its own instead
    # of queueing work for threads that do not exist (a hang).
    dag = Dag(
        [f"n{i}" for i in range(12)],
        [(f"n{i}", "c", f"n{j}", 0.5) for i in range(6, 12) for j in (i - 6, i - 5)],
    )
    cg = dag.compile()
    up = np.random.default_rng(1).uniform(size=(12, 8))
    with on_path("kernel", threads=2):
        expected = cg.evaluate(up)
    pid = os.fork()
    if pid == 0:  # the child: exit status says whether it got the same answer
        code = 1
        try:
            with on_path("kernel", threads=2):
                code = 0 if np.array_equal(cg.evaluate(up), expected) else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0
