"""The supply graph compiled into arrays for batched scenario evaluation (METHODS §2).

Nodes are ordered by level (longest supply chain below them, leaves first), so one pass over
the levels evaluates the Leontief capacity rule (METHODS v2 §2)

    a(j) = min( up(j), min_{b in B(j)} sum_{i in S(j,b)} s_ijb * e_ijb(h) )     (a leaf: a = up)
    e_ijb(h) = 1 - (1 - a(i)) * f_ijb(h),   f(h) = max(0, 1 - c_ijb / h)

for a whole batch of ``up`` vectors: per level, one sparse product gives every (consumer,
category) segment's supplied fraction and a segment-min takes the AND over each node's
categories. Arrays are node-major, shape ``(n_nodes, n_scenarios)``.

``c_ijb`` is the edge's buffer in weeks (inventory cover of a flow, the service buffer of an
installed base, the life of a licence; ``buffers``) and ``h`` the horizon: the loss reaches the
consumer only once the buffer is used up, averaged over an ``h``-week window. A horizon is a
per-edge scaling of the loss: the supplied fraction of a segment is
``sum s(1 - f) + sum (s f) a(i)``, a constant per segment plus the usual share-weighted sum with
shares ``s f``. ``horizon=None`` (or infinity) is the long run, where every ``f`` is 1. Buffers
apply edge by edge, which slightly overstates a loss that passes several buffers in a row
(exactly, their delays would add); docs/methodology.md says why that is the form used.

Compilation is array code throughout (no Python loop over nodes or edges): levels come from a
frontier-synchronous Kahn sweep (one vectorised step per level), orders from ``np.lexsort``.

Evaluation works in an internal row order that differs from the public one (``ids``) only
within a level: nodes with more input categories come first. Each level is cut into chunks of
``CHUNK_NODES`` nodes; a chunk's share matrix lists every node's first category, then the
second category of the nodes that have one, and so on, so the segment-min is a few contiguous
``np.minimum`` calls on prefixes (``reduceat`` along axis 0 is an order of magnitude slower)
and the chunk's supplied fractions stay small. The product calls scipy's ``csr_matvecs``
kernel directly, into preallocated buffers. Inputs are gathered into the internal order once
per batch and results scattered back, so callers only ever see the public order.

:meth:`CompiledGraph.evaluate_rows` is the Monte Carlo entry point: batches of scenarios in,
only the requested rows out, evaluating only those rows' supply trees.

Large batches (at least ``KERNEL_MIN_WORK`` multiply-adds) go to the fused numba kernel of
:mod:`models.engine.kernels` when numba is installed: the same plan and the same arithmetic (the
same bits), one pass over the rows without per-level temporaries, levels split over threads.
Everything else, and every batch when numba is missing or ``SOVRISK_NUMBA=0`` or the batch has
per-scenario edge terms (blockades in a Monte Carlo), takes the numpy path above; small graphs
never import numba.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, cast, overload

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve_triangular

from sovrisk.models.graph.schema import InputClass

try:  # the kernel behind ``csr @ dense``, called directly to reuse preallocated buffers
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - a scipy without the private module: use ``@``
    _csr_matvec = None
    _csr_matvecs = None

if TYPE_CHECKING:
    from sovrisk.models.engine.kernels import KernelPlan
    from sovrisk.models.graph.series import Alternate
    from sovrisk.models.graph.supply_graph import SupplyGraph

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
UpBatches: TypeAlias = "npt.NDArray[np.floating[Any]] | Iterable[npt.NDArray[np.floating[Any]]]"

#: Unit roundoff of float32 (2**-24): the per-operation relative error of the float32 path.
FLOAT32_UNIT_ROUNDOFF = 2.0**-24
#: Default working memory of :meth:`CompiledGraph.evaluate_rows` and of large evaluations.
DEFAULT_MEMORY_BUDGET = 768 * 2**20
#: Default batch width on graphs bigger than the L2 cache: measured on 10k-1M nodes, 32
#: columns beat 16 and 64-2048 in float32 and float64 (a batch row is then 1-2 cache lines).
DEFAULT_BATCH = 32
_CACHE_BYTES = 1 << 20  # small graphs take batches as wide as fit in this (up to 4096)
_GATHER_ROWS = 1 << 13  # rows per chunk when gathering ``up`` into the working buffer
#: Nodes per evaluation chunk of a level (see ``_level_ops``).
CHUNK_NODES = 16384
#: Batches of at least this many multiply-adds (plan entries × columns) use the numba kernel.
KERNEL_MIN_WORK = 1 << 24
#: Default batch width when the numba kernel runs (see ``_default_batch``), by dtype.
KERNEL_BATCH = {np.dtype(np.float32): 128, np.dtype(np.float64): 64}


def _use_kernel(work: int) -> bool:
    """Whether a batch of ``work`` multiply-adds goes to the numba kernel: big enough, numba
    importable, not disabled by ``SOVRISK_NUMBA=0``. Small batches never import numba."""
    if work < KERNEL_MIN_WORK or os.environ.get("SOVRISK_NUMBA", "1") == "0":
        return False
    return _kernel_importable()


@functools.cache
def _kernel_importable() -> bool:
    if importlib.util.find_spec("numba") is None:
        return False
    try:
        import sovrisk.models.engine.kernels  # noqa: F401
    except Exception as exc:  # pragma: no cover - e.g. a numba built for another numpy, or
        # no writable cache directory (set NUMBA_CACHE_DIR): the numpy path still works
        warnings.warn(f"numba kernel unavailable, using numpy: {exc!r}", stacklevel=2)
        return False
    return True


@dataclass(frozen=True, eq=False)
class _LevelOp:
    """One chunk of a level: ``work[lo:hi] = min(work[lo:hi], min over blocks of (offset +
    shares @ work[:lo]))``.

    Rows of ``indptr`` are block-major: block ``r`` holds the ``r``-th category of the first
    ``counts[r]`` nodes of the chunk (internal order puts nodes with more categories first).
    """

    level: int
    lo: int  # first node of the chunk (levels sit at the same rows in both orders)
    hi: int  # one past the last node of the chunk
    indptr: npt.NDArray[np.int32]  # segments of the chunk, block-major
    indices: npt.NDArray[np.int32]  # internal supplier rows, all < lo
    data: FloatArray  # shares
    data_pos: IntArray  # where each entry sits in the graph-wide ``shares.data``
    offsets: tuple[int, ...]  # first row of each block
    counts: tuple[int, ...]  # rows of each block (non-increasing; counts[0] = hi - lo)
    max_suppliers: int  # widest segment of the level: enters the float32 error bound

    @property
    def n_segments(self) -> int:
        return len(self.indptr) - 1


@dataclass(frozen=True, eq=False)
class CompiledGraph:
    """Arrays for one graph version. Build with :meth:`from_graph`, :meth:`from_arrays` or
    :meth:`from_edge_arrays` (or :func:`models.engine.edgetable.load_edge_table`)."""

    ids: tuple[str, ...]
    index: Mapping[str, int]
    levels: IntArray  # level of each node (0 = leaf)
    segment_owner: IntArray  # consumer node of each (consumer, category) segment
    segment_category: tuple[str, ...]
    shares: sp.csr_matrix  # segments x nodes: s_ijb
    flow: sp.csr_matrix  # nodes x nodes: M[i, j] = sum_b s_ijb (supplier i -> consumer j)
    countries: tuple[str, ...]
    sites: sp.csr_matrix  # nodes x countries: capacity share of node i in country c
    edge_position: IntArray  # position of each input edge's share in ``shares.data``
    buffers: FloatArray  # per entry of ``shares.data``: weeks before a loss reaches the consumer
    flow_entries: npt.NDArray[np.bool_]  # per entry: a flow (False: installed base or licence)
    #: Per entry: a qualifiable alternate (METHODS v2 §10), which delivers only what it adds
    #: once qualified, ``s max(0, 1 - lead / h) a``, where ``buffers`` holds the lead time.
    ramp_entries: npt.NDArray[np.bool_]
    location: sp.csr_matrix  # nodes x countries: where a node's output crosses borders from
    _plan: _Plan  # the level operations over every node, in the internal order
    _pos: IntArray  # internal row of each public node
    _pruned: dict[bytes, _Plan] = field(default_factory=dict, init=False, repr=False)

    @property
    def n_nodes(self) -> int:
        return len(self.ids)

    @property
    def depth(self) -> int:
        """The longest supply chain (number of non-leaf levels)."""
        return int(self.levels.max()) if self.n_nodes else 0

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_graph(cls, graph: SupplyGraph, alternates: Sequence[Alternate] = ()) -> CompiledGraph:
        """Compile ``graph``; each alternate adds, to every consumer of its supplier in its
        category, an entry of share ``s × spare`` that ramps in after ``lead_weeks`` (after
        the graph's edges, so ``edge_position`` is unchanged)."""
        ids = list(graph.nodes)
        position = {nid: i for i, nid in enumerate(ids)}
        extra = [
            (edge, alt)
            for alt in alternates
            for edge in graph.outputs(alt.supplier)
            if edge.category == alt.category
        ]
        consumers = np.array(
            [position[e.consumer] for e in graph.edges] + [position[e.consumer] for e, _ in extra],
            dtype=np.int64,
        )
        suppliers = np.array(
            [position[e.supplier] for e in graph.edges] + [position[a.alternate] for _, a in extra],
            dtype=np.int64,
        )
        categories = [e.category for e in graph.edges] + [e.category for e, _ in extra]
        shares = np.array(
            [e.share for e in graph.edges] + [e.share * a.spare for e, a in extra],
            dtype=np.float64,
        )
        buffers = np.array(
            [graph.edge_buffer(e) for e in graph.edges] + [a.lead_weeks for _, a in extra],
            dtype=np.float64,
        )
        is_flow = np.array(
            [graph.edge_class(e) is InputClass.FLOW for e in graph.edges] + [True] * len(extra),
            dtype=bool,
        )
        ramp = np.zeros(len(shares), dtype=bool)
        ramp[len(graph.edges) :] = True
        site_rows = [
            (position[s.node], s.country, s.share) for group in graph.sites.values() for s in group
        ]
        location_rows = [
            (position[nid], country, share)
            for nid in ids
            for country, share in graph.location(nid).items()
        ]
        return cls.from_arrays(
            ids,
            consumers,
            suppliers,
            categories,
            shares,
            site_rows,
            buffers=buffers,
            location_rows=location_rows,
            is_flow=is_flow,
            ramp=ramp,
        )

    @classmethod
    def from_arrays(
        cls,
        ids: Sequence[str],
        consumers: IntArray,
        suppliers: IntArray,
        categories: Sequence[str],
        shares: FloatArray,
        site_rows: Sequence[tuple[int, str, float]] = (),
        *,
        buffers: FloatArray | None = None,
        location_rows: Sequence[tuple[int, str, float]] | None = None,
        is_flow: npt.NDArray[np.bool_] | None = None,
        ramp: npt.NDArray[np.bool_] | None = None,
    ) -> CompiledGraph:
        """Compile from edge tables (indices into ``ids``) without building a networkx graph.

        ``categories`` holds one name per edge; :meth:`from_edge_arrays` takes integer codes
        instead, which is faster for millions of edges. ``buffers`` (weeks, one per edge)
        default to 0, ``is_flow`` (False: an installed base or a licence) to True;
        ``location_rows`` (where each node's output crosses borders from, for blockades)
        default to the sites.
        """
        cat_codes, cat_names = _factorise(categories)
        rows_all = list(site_rows) + list(location_rows or ())
        country_names = sorted({country for _, country, _ in rows_all})
        lookup = {c: k for k, c in enumerate(country_names)}

        def arrays(rows: Sequence[tuple[int, str, float]]) -> tuple[IntArray, IntArray, FloatArray]:
            return (
                np.asarray([r[0] for r in rows], dtype=np.int64),
                np.asarray([lookup[r[1]] for r in rows], dtype=np.int64),
                np.asarray([r[2] for r in rows], dtype=np.float64),
            )

        site_node_arr, country_codes, site_share_arr = arrays(site_rows)
        location = arrays(location_rows) if location_rows is not None else None
        return cls.from_edge_arrays(
            ids,
            consumers,
            suppliers,
            cat_codes,
            cat_names,
            shares,
            site_nodes=site_node_arr,
            site_countries=country_codes,
            country_names=country_names,
            site_shares=site_share_arr,
            buffers=buffers,
            location=location,
            is_flow=is_flow,
            ramp=ramp,
        )

    @classmethod
    def from_edge_arrays(
        cls,
        ids: Sequence[str] | npt.NDArray[np.str_],
        consumers: npt.NDArray[np.integer[Any]],
        suppliers: npt.NDArray[np.integer[Any]],
        category_codes: npt.NDArray[np.integer[Any]],
        category_names: Sequence[str] | npt.NDArray[np.str_],
        shares: npt.NDArray[np.floating[Any]],
        *,
        site_nodes: npt.NDArray[np.integer[Any]] | None = None,
        site_countries: npt.NDArray[np.integer[Any]] | None = None,
        country_names: Sequence[str] | npt.NDArray[np.str_] = (),
        site_shares: npt.NDArray[np.floating[Any]] | None = None,
        buffers: npt.NDArray[np.floating[Any]] | None = None,
        location: tuple[
            npt.NDArray[np.integer[Any]],
            npt.NDArray[np.integer[Any]],
            npt.NDArray[np.floating[Any]],
        ]
        | None = None,
        is_flow: npt.NDArray[np.bool_] | None = None,
        ramp: npt.NDArray[np.bool_] | None = None,
    ) -> CompiledGraph:
        """Compile from pure arrays: edge ``e`` says ``consumers[e]`` takes ``shares[e]`` of its
        input category ``category_names[category_codes[e]]`` from ``suppliers[e]`` (indices
        into ``ids``). Sites, optional, are rows ``(site_nodes[k],
        country_names[site_countries[k]], site_shares[k])``. ``buffers[e]`` (weeks, default 0)
        delays edge ``e``'s losses (see the module doc); ``location`` (rows as the sites'; default
        the sites) says where each node's output crosses borders from, for blockades.

        Only structure is checked here (lengths, index ranges, acyclicity: ``ValueError``);
        share values are the caller's (see :meth:`models.engine.edgetable.EdgeTable.validate`).
        """
        id_arr = _str_array(ids)
        n = len(id_arr)
        cons = np.asarray(consumers, dtype=np.int64)
        sups = np.asarray(suppliers, dtype=np.int64)
        codes = np.asarray(category_codes, dtype=np.int64)
        share_arr = np.asarray(shares, dtype=np.float64)
        cat_arr = _str_array(category_names)
        m = len(cons)
        buffer_arr = np.zeros(m) if buffers is None else np.asarray(buffers, dtype=np.float64)
        flow_arr = np.ones(m, dtype=bool) if is_flow is None else np.asarray(is_flow, dtype=bool)
        if len(flow_arr) != m:
            raise ValueError(f"is_flow has {len(flow_arr)} entries, the edges {m}")
        ramp_arr = np.zeros(m, dtype=bool) if ramp is None else np.asarray(ramp, dtype=bool)
        if len(ramp_arr) != m:
            raise ValueError(f"ramp has {len(ramp_arr)} entries, the edges {m}")
        if not len(sups) == len(codes) == len(share_arr) == len(buffer_arr) == m:
            raise ValueError(
                f"edge arrays differ in length: consumers {m}, suppliers {len(sups)}, "
                f"categories {len(codes)}, shares {len(share_arr)}, buffers {len(buffer_arr)}"
            )
        if m and not (np.all(np.isfinite(buffer_arr)) and buffer_arr.min() >= 0.0):
            raise ValueError("buffers must be finite and >= 0 (weeks)")
        _check_range("consumer", cons, n)
        _check_range("supplier", sups, n)
        _check_range("category code", codes, len(cat_arr))

        levels = _levels(n, cons, sups, id_arr)
        # Order nodes by (level, id): deterministic, and every supplier precedes its consumers.
        order = np.lexsort((id_arr, levels)) if n else np.zeros(0, dtype=np.int64)
        new_of_old = np.empty(n, dtype=np.int64)
        new_of_old[order] = np.arange(n, dtype=np.int64)
        sorted_ids: tuple[str, ...] = tuple(id_arr[order].tolist())
        levels = levels[order]
        cons = new_of_old[cons]
        sups = new_of_old[sups]

        # One segment per (consumer, category), ordered by consumer then category name.
        cat_rank = np.empty(len(cat_arr), dtype=np.int64)
        cat_rank[np.argsort(cat_arr, kind="stable")] = np.arange(len(cat_arr), dtype=np.int64)
        sorted_cats = np.sort(cat_arr)
        codes = cat_rank[codes]
        n_cat = max(1, len(cat_arr))
        if m and not ramp_arr.any() and n * n_cat * n < 2**62:
            by_entry = np.argsort((cons * n_cat + codes) * n + sups)  # ties are repeats
        else:  # an alternate's entry never merges with an edge from the same supplier
            by_entry = np.lexsort((ramp_arr, sups, codes, cons))
        e_cons, e_codes, e_sups = cons[by_entry], codes[by_entry], sups[by_entry]
        e_ramp = ramp_arr[by_entry]
        new_segment = np.ones(m, dtype=bool)
        new_segment[1:] = (e_cons[1:] != e_cons[:-1]) | (e_codes[1:] != e_codes[:-1])
        new_entry = new_segment.copy()
        new_entry[1:] |= (e_sups[1:] != e_sups[:-1]) | (e_ramp[1:] != e_ramp[:-1])
        # A repeated (consumer, category, supplier) row adds to one entry, as scipy's COO does.
        entry_of_sorted = np.cumsum(new_entry) - 1
        edge_position = np.empty(m, dtype=np.int64)
        edge_position[by_entry] = entry_of_sorted
        n_entries = int(entry_of_sorted[-1]) + 1 if m else 0
        data = np.bincount(entry_of_sorted, weights=share_arr[by_entry], minlength=n_entries)
        # A repeated row keeps the smallest buffer: no buffer is ever hidden by a merge.
        entry_buffers = np.full(n_entries, np.inf)
        np.minimum.at(entry_buffers, entry_of_sorted, buffer_arr[by_entry])
        entry_flow = np.zeros(n_entries, dtype=bool)  # a merged row is a flow if any part is
        np.logical_or.at(entry_flow, entry_of_sorted, flow_arr[by_entry])
        entry_ramp = np.zeros(n_entries, dtype=bool)
        entry_ramp[entry_of_sorted] = e_ramp
        seg_first = np.flatnonzero(new_segment)
        segment_owner = e_cons[seg_first]
        segment_category: tuple[str, ...] = tuple(
            sorted_cats.astype(object)[e_codes[seg_first]].tolist()
        )
        index_type = np.int32 if max(n, n_entries) < 2**31 - 1 else np.int64
        indptr = np.zeros(len(seg_first) + 1, dtype=index_type)
        indptr[:-1] = entry_of_sorted[seg_first]
        indptr[-1] = n_entries
        share_matrix = sp.csr_matrix(
            (data, e_sups[new_entry].astype(index_type), indptr),
            shape=(len(seg_first), n),
        )
        share_matrix.has_sorted_indices = True
        # What flows at baseline: an alternate delivers nothing until it is needed.
        flow = sp.csr_matrix(
            (np.where(ramp_arr, 0.0, share_arr), (sups, cons)), shape=(n, n), dtype=np.float64
        )
        flow.eliminate_zeros()

        site_node_arr = np.zeros(0, np.int64) if site_nodes is None else np.asarray(site_nodes)
        site_code_arr = (
            np.zeros(0, np.int64) if site_countries is None else np.asarray(site_countries)
        )
        site_share_arr = np.zeros(0, np.float64) if site_shares is None else np.asarray(site_shares)
        country_arr = _str_array(country_names)
        if not len(site_node_arr) == len(site_code_arr) == len(site_share_arr):
            raise ValueError("site arrays differ in length")
        _check_range("site node", site_node_arr, n)
        _check_range("site country code", site_code_arr, len(country_arr))
        used = np.unique(site_code_arr)  # countries that have a site, sorted by name
        by_name = used[np.argsort(country_arr[used], kind="stable")]
        country_rank = np.zeros(len(country_arr), dtype=np.int64)
        country_rank[by_name] = np.arange(len(by_name), dtype=np.int64)
        countries: tuple[str, ...] = tuple(country_arr[by_name].tolist())
        site_matrix = sp.csr_matrix(
            (
                site_share_arr.astype(np.float64),
                (new_of_old[site_node_arr.astype(np.int64)], country_rank[site_code_arr]),
            ),
            shape=(n, len(countries)),
        )
        if location is None:
            location_matrix = site_matrix.copy()
        else:
            loc_nodes, loc_codes, loc_shares = (np.asarray(x) for x in location)
            if not len(loc_nodes) == len(loc_codes) == len(loc_shares):
                raise ValueError("location arrays differ in length")
            _check_range("location node", loc_nodes, n)
            _check_range("location country code", loc_codes, len(country_arr))
            missing = np.setdiff1d(np.unique(loc_codes), used)
            if missing.size:  # a location with no site anywhere: give it a column too
                used = np.union1d(used, missing)
                by_name = used[np.argsort(country_arr[used], kind="stable")]
                country_rank[by_name] = np.arange(len(by_name), dtype=np.int64)
                countries = tuple(country_arr[by_name].tolist())
                site_matrix = sp.csr_matrix(
                    (
                        site_share_arr.astype(np.float64),
                        (new_of_old[site_node_arr.astype(np.int64)], country_rank[site_code_arr]),
                    ),
                    shape=(n, len(countries)),
                )
            location_matrix = sp.csr_matrix(
                (
                    loc_shares.astype(np.float64),
                    (new_of_old[loc_nodes.astype(np.int64)], country_rank[loc_codes]),
                ),
                shape=(n, len(countries)),
            )

        perm, pos, ops = _level_ops(n, levels, segment_owner, share_matrix)
        plan = _Plan(ops, perm, buffers=entry_buffers, ramps=entry_ramp)
        return cls(
            ids=sorted_ids,
            index=dict(zip(sorted_ids, range(n), strict=True)),
            levels=levels.astype(np.int64),
            segment_owner=segment_owner,
            segment_category=segment_category,
            shares=share_matrix,
            flow=flow,
            countries=countries,
            sites=site_matrix,
            edge_position=edge_position,
            buffers=entry_buffers,
            flow_entries=entry_flow,
            ramp_entries=entry_ramp,
            location=location_matrix,
            _plan=plan,
            _pos=pos,
        )

    # -- evaluation --------------------------------------------------------------------------

    @overload
    def evaluate(  # type: ignore[overload-overlap]  # float32 is float64-compatible in the stubs
        self,
        up: npt.NDArray[np.floating[Any]],
        edge_scale: FloatArray | None = None,
        *,
        dtype: type[np.float64] = ...,
        batch_size: int | None = None,
        horizon: float | None = None,
        edge_terms: Sequence[EdgeTerm] = (),
        baseline: FloatArray | None = None,
        buffers: FloatArray | None = None,
    ) -> FloatArray: ...

    @overload
    def evaluate(
        self,
        up: npt.NDArray[np.floating[Any]],
        edge_scale: FloatArray | None = None,
        *,
        dtype: type[np.float32],
        batch_size: int | None = None,
        horizon: float | None = None,
        edge_terms: Sequence[EdgeTerm] = (),
        baseline: FloatArray | None = None,
        buffers: FloatArray | None = None,
    ) -> Float32Array: ...

    def evaluate(
        self,
        up: npt.NDArray[np.floating[Any]],
        edge_scale: FloatArray | None = None,
        *,
        dtype: type[np.float32] | type[np.float64] = np.float64,
        batch_size: int | None = None,
        horizon: float | None = None,
        edge_terms: Sequence[EdgeTerm] = (),
        baseline: FloatArray | None = None,
        buffers: FloatArray | None = None,
    ) -> Float32Array | FloatArray:
        """Retained capacity of every node under each scenario, at ``horizon`` weeks.

        ``up`` is ``(n_nodes,)`` or ``(n_nodes, n_scenarios)``: the fraction of each node still
        operating. ``edge_scale`` (optional, aligned with ``shares.data``; see
        ``edge_position``) multiplies individual supply shares for every scenario of the
        batch: a regime in force that binds some deliveries of a supplier but not others (a
        standing restriction: buffers do not delay it). ``horizon``
        (weeks; ``None`` = the long run) sets how much of each edge's loss its buffer hides
        (module doc). ``edge_terms`` scale shares per scenario (a blockade whose severity differs
        between the scenarios of a Monte Carlo batch; :class:`EdgeTerm`). ``baseline`` (one
        value per node, default 1) is the long-run state the shocks start from, e.g. under the
        regimes in force: a buffer only hides a supplier's fall below its baseline, so a
        standing restriction is felt in full and only the new shock is delayed
        (``e = b_i (1 - f) + a_i f``). ``buffers`` (per entry) replaces :attr:`buffers` for
        this call. Returns ``a`` of the same shape as ``up``, in ``dtype``; ``up`` is not
        modified.

        ``dtype=np.float32`` halves memory traffic; its absolute error is at most
        :meth:`float32_error_bound` (for ``up`` and ``edge_scale`` in [0, 1]). Scenarios are
        processed ``batch_size`` columns at a time (default :meth:`default_batch`).
        """
        single = up.ndim == 1
        cols = up[:, None] if single else up
        if cols.ndim != 2 or cols.shape[0] != self.n_nodes:
            raise ValueError(f"up has {cols.shape[0]} rows, the graph {self.n_nodes} nodes")
        self._check_edge_scale(edge_scale)
        n_sc = cols.shape[1]
        self._check_terms(edge_terms, n_sc)
        out = cast("Float32Array | FloatArray", np.empty((self.n_nodes, n_sc), dtype=dtype))
        if n_sc:
            plan = self._plan
            batch = batch_size or self.default_batch(dtype)
            runner = _Runner(plan, dtype, edge_scale, batch, horizon, edge_terms, baseline, buffers)
            for c0 in range(0, n_sc, runner.batch):
                c1 = min(n_sc, c0 + runner.batch)
                out[plan.perm, c0:c1] = runner.run(cols, c0, c1)
        return out[:, 0] if single else out

    def evaluate_rows(
        self,
        up: UpBatches,
        rows: Sequence[int] | npt.NDArray[np.integer[Any]],
        *,
        edge_scale: FloatArray | None = None,
        dtype: type[np.float32] | type[np.float64] = np.float64,
        batch_size: int | None = None,
        prune: bool = True,
        horizon: float | None = None,
        baseline: FloatArray | None = None,
    ) -> FloatArray:
        """Retained capacity of a few nodes (``rows``, public indices) under many scenarios.

        ``up`` is one ``(n_nodes, n_scenarios)`` array or any iterable (e.g. a generator) of
        ``(n_nodes, k)`` batches, consumed lazily: each batch is finished before the next is
        requested, so a generator may refill one buffer. Scenarios are evaluated
        ``batch_size`` columns at a time and only the requested rows are kept, so working
        memory stays at about ``batch_size × (nodes + widest level's segments) × itemsize``
        whatever the number of scenarios.

        With ``prune`` (the default) only the requested rows' supply trees
        (:meth:`ancestors`) are evaluated; the others cannot affect them, so the result is
        the same, only cheaper. Returns ``(len(rows), total scenarios)`` float64 (computed in
        ``dtype``; see :meth:`float32_error_bound`).
        """
        self._check_edge_scale(edge_scale)
        public = np.asarray(rows, dtype=np.int64).reshape(-1)
        plan, where = self._plan_for(public) if prune else (self._plan, self._pos[public])
        batch = batch_size or _default_batch(plan, dtype)
        runner = _Runner(plan, dtype, edge_scale, batch, horizon, baseline=baseline)
        kept = [
            runner.run(cols, c0, c1)[where].astype(np.float64)
            for cols, c0, c1 in _column_slices(up, self.n_nodes, batch)
        ]
        if not kept:
            return np.zeros((len(where), 0), dtype=np.float64)
        return np.concatenate(kept, axis=1)

    def _check_terms(self, terms: Sequence[EdgeTerm], n_scenarios: int) -> None:
        for k, term in enumerate(terms):
            if len(term.exposure) != self.shares.nnz:
                raise ValueError(
                    f"edge_terms[{k}].exposure has {len(term.exposure)} entries, "
                    f"the graph {self.shares.nnz} shares"
                )
            if len(term.coefficient) != n_scenarios:
                raise ValueError(
                    f"edge_terms[{k}].coefficient has {len(term.coefficient)} entries, "
                    f"the batch {n_scenarios} scenarios"
                )

    def _check_edge_scale(self, edge_scale: FloatArray | None) -> None:
        if edge_scale is not None and len(edge_scale) != self.shares.nnz:
            raise ValueError(
                f"edge_scale has {len(edge_scale)} entries, the graph {self.shares.nnz} shares"
            )

    def default_batch(
        self, dtype: type[np.float32] | type[np.float64], budget: int = DEFAULT_MEMORY_BUDGET
    ) -> int:
        """Scenarios per batch: 32 (wider batches stop paying once the working set leaves
        the caches), more on graphs small enough that a wider batch fits in 1 MiB, never more
        than keeps the working buffers within ``budget`` bytes."""
        return _default_batch(self._plan, dtype, budget)

    def float32_error_bound(self) -> float:
        """Largest absolute error of ``dtype=np.float32`` against exact arithmetic.

        With ``up`` and ``edge_scale`` in [0, 1], every level adds at most ``(k + 6) u σ``
        (``u = 2**-24``, ``k`` the widest segment of the level: k roundings of its sequential
        sum, one of each share, each scale, each horizon factor, the segment's constant and
        each up; the final minimum is exact; ``σ`` ≥ 1 the
        largest share sum of a segment) and carries the error below it multiplied by at most
        ``σ`` (a share-weighted sum is σ-Lipschitz, min is 1-Lipschitz). For a graph of depth
        10 with at most 3 suppliers per category that is ≈ 5e-6; the float64 path's is ~1e-15.
        """
        sums = np.asarray(self.shares.sum(axis=1)).ravel() if self.shares.nnz else np.ones(1)
        sigma = max(1.0, float(sums.max()))
        widest: dict[int, int] = {}
        for op in self._plan.ops:
            widest[op.level] = max(widest.get(op.level, 0), op.max_suppliers)
        bound = FLOAT32_UNIT_ROUNDOFF  # the leaves: one rounding of up
        for level in sorted(widest):
            bound = sigma * bound + (widest[level] + 6) * FLOAT32_UNIT_ROUNDOFF * sigma
        return bound

    def ancestors(self, rows: Sequence[int] | npt.NDArray[np.integer[Any]]) -> IntArray:
        """Every node some listed node draws on, directly or not, the listed ones included
        (public indices, ascending): the only nodes whose ``up`` can change their ``a``."""
        keep = self._plan.closure(self._pos[np.asarray(rows, dtype=np.int64).reshape(-1)])
        return np.sort(self._plan.perm[keep])

    def _plan_for(self, public_rows: IntArray) -> tuple[_Plan, IntArray]:
        """The plan restricted to the rows' supply trees (cached), and their rows in it."""
        key = np.unique(public_rows).tobytes()
        plan = self._pruned.get(key)
        internal = self._pos[public_rows]
        if plan is None:
            keep = self._plan.closure(internal)
            plan = self._plan if len(keep) > 0.9 * self.n_nodes else self._plan.restrict(keep)
            cache = self._pruned  # a few recent row sets (plans hold their own arrays)
            if len(cache) >= 8:
                with suppress(KeyError, RuntimeError, StopIteration):  # another thread's pop
                    cache.pop(next(iter(cache)))
            cache[key] = plan
        if plan is self._plan:
            return plan, internal
        return plan, np.searchsorted(plan.rows, internal)

    # -- scenario builders -------------------------------------------------------------------

    def ones(self, n_scenarios: int) -> FloatArray:
        return np.ones((self.n_nodes, n_scenarios), dtype=np.float64)

    def knockouts(self, nodes: Sequence[int]) -> FloatArray:
        """One scenario per listed node, that node down (``up = 0``), the rest up."""
        up = self.ones(len(nodes))
        up[np.asarray(nodes, dtype=np.int64), np.arange(len(nodes))] = 0.0
        return up

    def country_losses(self) -> FloatArray:
        """One scenario per country (``self.countries``): every site there lost."""
        return np.asarray(1.0 - self.sites.toarray(), dtype=np.float64)

    def delays(self, sources: FloatArray, passes: npt.NDArray[np.bool_]) -> FloatArray:
        """Weeks before a change at some nodes reaches each node: ``sources`` gives each
        node's start (0 where the change starts, ``inf`` elsewhere); it travels along the
        entries flagged in ``passes``, each adding its buffer (delays add along a path) and the
        shortest path wins. One vectorised step per level (suppliers come first)."""
        delay = np.asarray(sources, dtype=np.float64).copy()
        owner = np.repeat(self.segment_owner, np.diff(self.shares.indptr))
        supplier = self.shares.indices.astype(np.int64)
        owner_level = self.levels[owner]
        order = np.argsort(owner_level, kind="stable")
        bounds = np.searchsorted(owner_level[order], np.arange(self.depth + 2))
        for lo, hi in itertools.pairwise(bounds.tolist()):
            entries = order[lo:hi]
            through = entries[passes[entries]]
            if len(through):
                np.minimum.at(
                    delay, owner[through], delay[supplier[through]] + self.buffers[through]
                )
        return delay

    def border_exposure(self, country: int) -> FloatArray:
        """Per entry of ``shares.data``: the fraction of the edge's flow that crosses the border
        of country column ``country`` (METHODS v2 §2, blockade / embargo).

        With ``x`` a node's location share in the country (:attr:`location`), an edge from
        supplier ``i`` to consumer ``j`` crosses for ``|x_i - x_j|`` of its flow: supply is
        matched to demand on the same side of the border first, so only the surplus of one
        side crosses (a fab and a packaging line both 30 % in Arizona feed each other; a
        die made only in Taiwan for a chip packaged 30 % in Arizona crosses for 0.3). A
        domestic edge never crosses.
        """
        x = np.asarray(self.location[:, country].toarray()).ravel()
        supplier = x[self.shares.indices]
        consumer = x[np.repeat(self.segment_owner, np.diff(self.shares.indptr))]
        return np.asarray(np.abs(supplier - consumer))

    def flows(self, roots: Sequence[int]) -> FloatArray:
        """Effective sourcing (METHODS §3): ``x_root = 1``, ``x_i = sum_j x_j s_ji``.

        Every input category of a consumer receives its full flow (AND), split over the
        category's suppliers by share (OR). Returns ``(n_nodes, len(roots))``.
        """
        rhs = np.zeros((self.n_nodes, len(roots)), dtype=np.float64)
        rhs[np.asarray(roots, dtype=np.int64), np.arange(len(roots))] = 1.0
        if self.flow.nnz == 0:
            return rhs
        # (I - M) x = e with M strictly upper triangular (suppliers precede consumers).
        system = (sp.identity(self.n_nodes, format="csr") - self.flow).tocsr()
        return np.asarray(spsolve_triangular(system, rhs, lower=False), dtype=np.float64)


def compile_graph(graph: SupplyGraph, alternates: Sequence[Alternate] = ()) -> CompiledGraph:
    """The compiled arrays of ``graph`` (with ``alternates``), built once per graph version
    and set of alternates (kept on the graph)."""
    key = "compiled" + "".join(
        f"|{a.supplier}>{a.alternate}:{a.category}:{a.lead_weeks!r}:{a.spare!r}" for a in alternates
    )
    return graph.memo(key, lambda: CompiledGraph.from_graph(graph, alternates))


# -- evaluation kernel ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Plan:
    """Level operations over a set of nodes, in working-array row order.

    ``perm[k]`` is the public node of working row ``k``; ``rows`` the full graph's internal
    rows kept (all of them for the graph's own plan, a supply-tree closure for a pruned one).
    """

    ops: tuple[_LevelOp, ...]
    perm: IntArray
    rows: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    buffers: FloatArray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    ramps: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    _data: dict[tuple[str, float], _LevelArrays] = field(default_factory=dict, repr=False)
    _kernel: list[KernelPlan] = field(default_factory=list, repr=False)

    @property
    def n_rows(self) -> int:
        return len(self.perm)

    @property
    def n_entries(self) -> int:
        """Supply entries (multiply-adds per scenario)."""
        return sum(len(op.indices) for op in self.ops)

    def kernel_plan(self) -> KernelPlan:
        """The node-major layout for :mod:`models.engine.kernels` (built once)."""
        from sovrisk.models.engine import kernels

        if not self._kernel:
            self._kernel.append(kernels.build_plan(self.n_rows, self.ops))
        return self._kernel[0]

    def data(
        self,
        dtype: np.dtype[Any],
        edge_scale: FloatArray | None,
        horizon: float | None = None,
        baseline: FloatArray | None = None,
        buffers: FloatArray | None = None,
    ) -> _LevelArrays:
        """Each level's shares ``s f`` and segment constants ``sum s (1 - f)`` in ``dtype``, for
        ``horizon`` (module doc), ``s`` times ``edge_scale`` when given; kept when unscaled.

        ``edge_scale`` is a standing restriction (a regime in force): it scales what the edge
        delivers whatever the buffers hold, so it multiplies both. A new shock to an edge,
        which its buffer delays, is an :class:`EdgeTerm` instead. With a ``baseline`` (per
        public node) the constants are ``sum s (1 - f) b_i``: the buffer holds what the supplier
        delivered before the shock, not more."""
        key = (dtype.str, math.inf if horizon is None else float(horizon))
        cacheable = edge_scale is None and baseline is None and buffers is None
        weeks = self.buffers if buffers is None else np.asarray(buffers, dtype=np.float64)
        if cacheable and key in self._data:
            return self._data[key]
        scale = None if edge_scale is None else np.asarray(edge_scale, dtype=np.float64)
        data: list[npt.NDArray[Any]] = []
        offsets: list[npt.NDArray[Any]] = []
        for op in self.ops:
            factor = horizon_factor(weeks[op.data_pos], horizon)
            shares = op.data if scale is None else op.data * scale[op.data_pos]
            felt = shares * factor
            data.append(felt.astype(dtype))
            kept = shares - felt  # s (1 - f): the part of each share the buffer still holds
            if self.ramps.any():  # an alternate holds nothing: it only adds once qualified
                kept[self.ramps[op.data_pos]] = 0.0
            if baseline is not None:
                kept = kept * np.asarray(baseline, dtype=np.float64)[self.perm[op.indices]]
            offsets.append(_segment_sums(kept, op.indptr).astype(dtype))
        arrays = _LevelArrays(data, offsets, any(bool(o.any()) for o in offsets))
        if cacheable:
            self._data[key] = arrays
        return arrays

    def closure(self, rows: IntArray) -> IntArray:
        """The given working rows and every row they draw on (ascending)."""
        keep = np.zeros(self.n_rows, dtype=bool)
        keep[rows] = True
        for op in reversed(self.ops):
            seg = _segment_mask(op, keep[op.lo : op.hi])
            if seg.any():
                segs = np.flatnonzero(seg)
                keep[op.indices[_ranges(op.indptr[segs], op.indptr[segs + 1])]] = True
        return np.flatnonzero(keep)

    def restrict(self, keep: IntArray) -> _Plan:
        """This plan on the rows ``keep`` only (ascending; closed under suppliers)."""
        mask = np.zeros(self.n_rows, dtype=bool)
        mask[keep] = True
        new_row = np.cumsum(mask) - 1
        ops: list[_LevelOp] = []
        for op in self.ops:
            nodes = mask[op.lo : op.hi]
            if not nodes.any():
                continue
            segs = np.flatnonzero(_segment_mask(op, nodes))
            entries = _ranges(op.indptr[segs], op.indptr[segs + 1])
            lengths = (op.indptr[segs + 1] - op.indptr[segs]).astype(np.int64)
            indptr = np.zeros(len(segs) + 1, dtype=np.int32)
            np.cumsum(lengths, out=indptr[1:])
            counts = [int(nodes[:c].sum()) for c in op.counts]
            counts = [c for c in counts if c]
            offsets = np.zeros(len(counts), dtype=np.int64)
            np.cumsum(counts[:-1], out=offsets[1:])
            lo = int(new_row[op.lo - 1]) + 1 if op.lo else 0
            ops.append(
                _LevelOp(
                    level=op.level,
                    lo=lo,
                    hi=lo + int(nodes.sum()),
                    indptr=indptr,
                    indices=new_row[op.indices[entries]].astype(np.int32),
                    data=op.data[entries],
                    data_pos=op.data_pos[entries],
                    offsets=tuple(int(x) for x in offsets),
                    counts=tuple(counts),
                    max_suppliers=int(lengths.max()),
                )
            )
        base = self.rows if len(self.rows) else np.arange(self.n_rows, dtype=np.int64)
        return _Plan(
            tuple(ops), self.perm[keep], base[keep], buffers=self.buffers, ramps=self.ramps
        )


def _segment_mask(op: _LevelOp, nodes: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Which of the level's block-major segments belong to the flagged nodes."""
    return np.concatenate([nodes[:count] for count in op.counts])


def _default_batch(
    plan: _Plan, dtype: type[np.float32] | type[np.float64], budget: int = DEFAULT_MEMORY_BUDGET
) -> int:
    itemsize = np.dtype(dtype).itemsize
    kernel_batch = KERNEL_BATCH[np.dtype(dtype)]
    if _use_kernel(plan.n_entries * kernel_batch):  # the kernel needs no level buffer
        return int(max(1, min(kernel_batch, budget // max(1, plan.n_rows * itemsize))))
    widest = max((op.n_segments for op in plan.ops), default=0)
    per_column = max(1, (plan.n_rows + widest) * itemsize)
    wanted = max(DEFAULT_BATCH, min(4096, _CACHE_BYTES // per_column))
    return int(max(1, min(wanted, budget // per_column)))


class _Runner:
    """Buffers and per-level matrices for evaluating batches of one width and dtype."""

    def __init__(
        self,
        plan: _Plan,
        dtype: type[np.float32] | type[np.float64],
        edge_scale: FloatArray | None,
        batch: int,
        horizon: float | None = None,
        terms: Sequence[EdgeTerm] = (),
        baseline: FloatArray | None = None,
        buffers: FloatArray | None = None,
    ) -> None:
        self.dtype = self.check(plan, dtype, edge_scale)
        self.plan = plan
        self.batch = max(1, int(batch))
        self.horizon = horizon
        self.arrays = plan.data(self.dtype, edge_scale, horizon, baseline, buffers)
        self._widest = max((op.n_segments for op in plan.ops), default=0)
        self._entries = plan.n_entries
        self._width = 0  # buffers grow to the widest batch actually seen (at most ``batch``)
        self._work = np.empty(0, dtype=self.dtype)
        self._supplied = np.empty(0, dtype=self.dtype)
        self._scaled = edge_scale is not None or baseline is not None or buffers is not None
        self._kernel_work = np.empty(0, dtype=self.dtype)  # the kernel path's own buffer
        self._kernel_data: tuple[npt.NDArray[Any], npt.NDArray[Any]] | None = None
        self._terms = tuple(terms)
        # Per term, per level operation: the term's shares on that level (a sparse matrix over
        # the level's segments, only its non-zero entries; None where it has none).
        self._term_ops = [
            [
                _term_matrix(op, data, term.exposure)
                for op, data in zip(plan.ops, self.arrays.data, strict=True)
            ]
            for term in self._terms
        ]

    @staticmethod
    def check(
        plan: _Plan, dtype: type[np.float32] | type[np.float64], edge_scale: FloatArray | None
    ) -> np.dtype[Any]:
        checked = np.dtype(dtype)
        if checked not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"dtype must be np.float32 or np.float64, not {dtype!r}")
        if edge_scale is not None and edge_scale.ndim != 1:
            raise ValueError("edge_scale must be one-dimensional (one factor per share)")
        return checked

    def run(self, up: npt.NDArray[np.floating[Any]], c0: int, c1: int) -> npt.NDArray[Any]:
        """Evaluate columns ``c0:c1`` of ``up`` (public row order); returns the working array
        ``(plan rows, c1 - c0)`` (a view of a buffer reused by the next call)."""
        width = c1 - c0
        n = self.plan.n_rows
        if not self._terms and _use_kernel(self._entries * width):
            return self._run_kernel(up, c0, c1)
        if width > self._width:
            self._width = width
            self._work = np.empty(n * width, dtype=self.dtype)
            self._supplied = np.empty(self._widest * width, dtype=self.dtype)
        work = self._work[: n * width].reshape(n, width)
        perm = self.plan.perm
        whole = c0 == 0 and c1 == up.shape[1]
        # np.take copies whole rows (fastest) but needs a C-contiguous source of our dtype.
        take = whole and up.dtype == self.dtype and up.flags.c_contiguous
        for r0 in range(0, n, _GATHER_ROWS):
            r1 = min(n, r0 + _GATHER_ROWS)
            if take:
                np.take(up, perm[r0:r1], axis=0, out=work[r0:r1])
            else:
                work[r0:r1] = up[perm[r0:r1]] if whole else up[perm[r0:r1], c0:c1]
        terms = [
            (t.coefficient[c0:c1], mats)
            for t, mats in zip(self._terms, self._term_ops, strict=True)
        ]
        arrays = self.arrays
        for k, (op, data, offsets) in enumerate(
            zip(self.plan.ops, arrays.data, arrays.offsets, strict=True)
        ):
            level_terms = [(coef, mats[k]) for coef, mats in terms if mats[k] is not None]
            _apply_level(
                op, data, offsets if arrays.any_offset else None, work, self._supplied, level_terms
            )
        return work

    def _run_kernel(self, up: npt.NDArray[np.floating[Any]], c0: int, c1: int) -> npt.NDArray[Any]:
        """:meth:`run` through the numba kernel (same plan, same arithmetic)."""
        from sovrisk.models.engine import kernels

        width = c1 - c0
        n = self.plan.n_rows
        kplan = self.plan.kernel_plan()
        if self._kernel_data is None:  # cached on the plan too unless scaled for this runner
            self._kernel_data = kplan.data(
                self.arrays.data,
                self.arrays.offsets,
                self.dtype,
                cache=None if self._scaled else self.horizon,
            )
        if up.dtype != self.dtype or up.strides[1] != up.itemsize:  # the kernel reads rows
            up, c0 = np.ascontiguousarray(up[:, c0:c1], dtype=self.dtype), 0  # of its dtype
        if n * width > self._kernel_work.size:  # no level buffer on this path
            self._kernel_work = np.empty(n * width, dtype=self.dtype)
        work = self._kernel_work[: n * width].reshape(n, width)
        data, offsets = self._kernel_data
        kernels.evaluate(kplan, work, up, self.plan.perm, c0, data, offsets)
        return work


def _apply_level(
    op: _LevelOp,
    data: npt.NDArray[Any],
    offsets: npt.NDArray[Any] | None,
    work: npt.NDArray[Any],
    buffer: npt.NDArray[Any],
    terms: Sequence[tuple[FloatArray, sp.csr_matrix]] = (),
) -> None:
    """``work[lo:hi] = min(work[lo:hi], min over categories of (offset + shares @ work[:lo]))``
    for one level; ``terms`` subtract ``coefficient × (term shares @ work[:lo])`` per column."""
    width = work.shape[1]
    n_seg = op.n_segments
    supplied_flat = buffer[: n_seg * width]
    below = work[: op.lo]
    if offsets is not None:  # the product accumulates onto each segment's constant
        supplied_flat.reshape(n_seg, width)[...] = offsets[:, None]
    if _csr_matvecs is not None and _csr_matvec is not None:
        if offsets is None:
            supplied_flat.fill(0)
        if width == 1:
            _csr_matvec(n_seg, op.lo, op.indptr, op.indices, data, below.reshape(-1), supplied_flat)
        else:
            _csr_matvecs(
                n_seg, op.lo, width, op.indptr, op.indices, data, below.reshape(-1), supplied_flat
            )
        supplied = supplied_flat.reshape(n_seg, width)
    else:  # pragma: no cover
        matrix = sp.csr_matrix((data, op.indices, op.indptr), shape=(n_seg, op.lo))
        supplied = supplied_flat.reshape(n_seg, width)
        supplied[...] = (0 if offsets is None else offsets[:, None]) + matrix @ below
    if terms:
        for coefficient, matrix in terms:
            supplied -= (matrix @ below) * coefficient.astype(supplied.dtype)[None, :]
        np.maximum(supplied, 0, out=supplied)
    mins = supplied[: op.hi - op.lo]
    for offset, count in zip(op.offsets[1:], op.counts[1:], strict=True):
        np.minimum(mins[:count], supplied[offset : offset + count], out=mins[:count])
    target = work[op.lo : op.hi]
    np.minimum(target, mins, out=target)


def _term_matrix(
    op: _LevelOp, data: npt.NDArray[Any], exposure: FloatArray
) -> sp.csr_matrix | None:
    """The level's shares times an edge term's exposure, or None where it touches no entry."""
    weights = data * exposure[op.data_pos].astype(data.dtype)
    if not weights.any():
        return None
    return sp.csr_matrix((weights, op.indices, op.indptr), shape=(op.n_segments, op.lo))


def horizon_factor(buffers: FloatArray, horizon: float | None) -> FloatArray:
    """``f = max(0, 1 - c / h)``: the share of a supplier's loss a consumer feels, averaged
    over ``h`` weeks, behind a buffer of ``c`` weeks (1 in the long run, ``h`` None or inf)."""
    if horizon is None or math.isinf(horizon):
        return np.ones_like(buffers, dtype=np.float64)
    if not horizon > 0:
        raise ValueError(f"horizon must be > 0 weeks, not {horizon!r}")
    return np.asarray(np.maximum(0.0, 1.0 - buffers / horizon), dtype=np.float64)


def _segment_sums(values: FloatArray, indptr: npt.NDArray[np.integer[Any]]) -> FloatArray:
    """Sum of ``values`` over each segment ``indptr[k]:indptr[k + 1]`` (empty: 0)."""
    totals = np.zeros(len(indptr) - 1, dtype=np.float64)
    lengths = np.diff(indptr)
    if len(values):
        segment = np.repeat(np.arange(len(lengths)), lengths)
        np.add.at(totals, segment, values)
    return totals


@dataclass(frozen=True, eq=False)
class _LevelArrays:
    """Per level operation: the shares (``s f``) and each segment's constant (``s (1 - f)``)."""

    data: list[npt.NDArray[Any]]
    offsets: list[npt.NDArray[Any]]
    any_offset: bool


@dataclass(frozen=True, eq=False)
class EdgeTerm:
    """A per-scenario scaling of some edges: scenario ``k`` delivers ``1 - coefficient[k] ×
    exposure[e]`` of entry ``e``'s share (entries as ``shares.data``). A blockade of a
    country is one term: ``exposure`` = :meth:`CompiledGraph.border_exposure`,
    ``coefficient`` = its severity in each scenario (0 where it did not occur). Several terms
    add (their product's cross terms are not expanded: the supplied fraction is clipped at 0).
    """

    exposure: FloatArray
    coefficient: FloatArray


def _column_slices(
    up: UpBatches, n_nodes: int, batch: int
) -> Iterator[tuple[npt.NDArray[np.floating[Any]], int, int]]:
    """``(array, c0, c1)`` column ranges of at most ``batch`` over every batch of ``up``."""
    chunks: Iterable[npt.NDArray[np.floating[Any]]] = [up] if isinstance(up, np.ndarray) else up
    for chunk in chunks:
        cols = np.asarray(chunk)
        cols = cols[:, None] if cols.ndim == 1 else cols
        if cols.ndim != 2 or cols.shape[0] != n_nodes:
            raise ValueError(f"up has {cols.shape[0]} rows, the graph {n_nodes} nodes")
        for c0 in range(0, cols.shape[1], batch):
            yield cols, c0, min(cols.shape[1], c0 + batch)


# -- compilation helpers -------------------------------------------------------------------------


def _level_ops(
    n: int,
    levels: IntArray,
    segment_owner: IntArray,
    shares: sp.csr_matrix,
    chunk_nodes: int = CHUNK_NODES,
) -> tuple[IntArray, IntArray, tuple[_LevelOp, ...]]:
    """The internal order and the block-major share matrix of every chunk of every level."""
    n_seg = len(segment_owner)
    n_cats = np.bincount(segment_owner, minlength=n)
    node = np.arange(n, dtype=np.int64)
    perm = np.lexsort((node, -n_cats, levels)) if n else node  # internal row -> public node
    pos = np.empty(n, dtype=np.int64)
    pos[perm] = node
    # The rank of each segment among its owner's (segments are sorted by owner, category).
    first_of_owner = np.searchsorted(segment_owner, segment_owner)
    rank = np.arange(n_seg, dtype=np.int64) - first_of_owner
    # Segments ordered by (chunk of the owner, rank, owner's internal row): chunks run in
    # level order, so this is also level-major.
    group_bounds = _chunk_bounds(levels, chunk_nodes)
    owner_pos = pos[segment_owner]
    group = np.searchsorted(group_bounds, owner_pos, side="right") - 1
    max_rank = int(rank.max()) + 1 if n_seg else 1
    if len(group_bounds) * max_rank * max(n, 1) < 2**62:
        seg_order = np.argsort((group * max_rank + rank) * n + owner_pos)
    else:
        seg_order = np.lexsort((owner_pos, rank, group))
    lengths = np.diff(shares.indptr).astype(np.int64)
    starts = shares.indptr[:-1].astype(np.int64)
    data_pos = _ranges(starts[seg_order], starts[seg_order] + lengths[seg_order])
    new_lengths = lengths[seg_order]
    indices = pos[shares.indices[data_pos]].astype(np.int32)
    data = np.asarray(shares.data, dtype=np.float64)[data_pos]
    indptr = np.zeros(n_seg + 1, dtype=np.int64)
    np.cumsum(new_lengths, out=indptr[1:])

    # Each level is cut into chunks of nodes, evaluated one after the other, so a chunk's
    # supplied-fraction rows stay in cache from the product through the min.
    seg_bounds = np.searchsorted(owner_pos[seg_order], group_bounds)
    sorted_rank = rank[seg_order]
    ops: list[_LevelOp] = []
    for g in range(len(group_bounds) - 1):
        lo, hi = int(group_bounds[g]), int(group_bounds[g + 1])
        s_lo, s_hi = int(seg_bounds[g]), int(seg_bounds[g + 1])
        if s_lo == s_hi:  # leaves
            continue
        block_counts = np.bincount(sorted_rank[s_lo:s_hi])
        block_offsets = np.zeros(len(block_counts), dtype=np.int64)
        np.cumsum(block_counts[:-1], out=block_offsets[1:])
        a, b = int(indptr[s_lo]), int(indptr[s_hi])
        ops.append(
            _LevelOp(
                level=int(levels[lo]),
                lo=lo,
                hi=hi,
                indptr=(indptr[s_lo : s_hi + 1] - a).astype(np.int32),
                indices=indices[a:b],
                data=data[a:b],
                data_pos=data_pos[a:b],
                offsets=tuple(int(x) for x in block_offsets),
                counts=tuple(int(x) for x in block_counts),
                max_suppliers=int(new_lengths[s_lo:s_hi].max()),
            )
        )
    return perm, pos, tuple(ops)


def _chunk_bounds(levels: IntArray, chunk_nodes: int) -> IntArray:
    """Node boundaries of the chunks: every level cut into runs of at most ``chunk_nodes``."""
    n = len(levels)
    depth = int(levels.max()) if n else 0
    level_bounds = np.searchsorted(levels, np.arange(depth + 2))
    sizes = np.diff(level_bounds)
    n_chunks = -(-sizes // chunk_nodes)
    level_of_chunk = np.repeat(np.arange(depth + 1), n_chunks)
    within = np.arange(int(n_chunks.sum())) - np.repeat(np.cumsum(n_chunks) - n_chunks, n_chunks)
    starts = level_bounds[level_of_chunk] + within * chunk_nodes
    return np.append(starts, n).astype(np.int64)


def _levels(
    n: int,
    consumers: npt.NDArray[np.integer[Any]],
    suppliers: npt.NDArray[np.integer[Any]],
    ids: npt.NDArray[np.str_] | None = None,
) -> IntArray:
    """Longest path from a leaf to each node: Kahn's algorithm, one frontier at a time.

    A node becomes ready in the sweep after its last supplier was placed, so the sweep number
    is its level. Every step is array code; the Python loop runs once per level. Edges that
    never become ready are on or above a cycle: ``ValueError`` naming one cycle.
    """
    levels = np.zeros(n, dtype=np.int64)
    if len(consumers) == 0:
        return levels
    cons = np.asarray(consumers, dtype=np.int64)
    sups = np.asarray(suppliers, dtype=np.int64)
    by_supplier = np.argsort(sups, kind="stable")
    con_by_sup = cons[by_supplier]
    bounds = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(sups, minlength=n), out=bounds[1:])
    indegree = np.bincount(cons, minlength=n)
    frontier = np.flatnonzero(indegree == 0)
    seen, level = 0, 0
    while frontier.size:
        levels[frontier] = level
        seen += frontier.size
        targets = con_by_sup[_ranges(bounds[frontier], bounds[frontier + 1])]
        if targets.size * 8 > n:  # a wide frontier: count with one pass over the nodes
            counts = np.bincount(targets, minlength=n)
            touched = np.flatnonzero(counts)
            hits = counts[touched]
        else:
            touched, hits = np.unique(targets, return_counts=True)
        indegree[touched] -= hits
        frontier = touched[indegree[touched] == 0]
        level += 1
    if seen != n:
        cycle = _find_cycle(cons, sups, indegree > 0)
        names = [str(ids[i]) if ids is not None else str(i) for i in cycle]
        raise ValueError(
            "supply edges form a cycle; the graph must be a DAG (supplier -> consumer: "
            + " -> ".join(names)
            + ")"
        )
    return levels


def _find_cycle(cons: IntArray, sups: IntArray, stuck: npt.NDArray[np.bool_]) -> list[int]:
    """One cycle among the nodes Kahn's sweep never reached (each has a stuck supplier)."""
    keep = stuck[cons] & stuck[sups]
    c, s = cons[keep], sups[keep]
    first_supplier = dict(zip(c.tolist(), s.tolist(), strict=True))  # a stuck supplier of each
    node = int(np.flatnonzero(stuck)[0])
    path: list[int] = []
    where: dict[int, int] = {}
    while node not in where:  # error path only: at most one step per stuck node
        where[node] = len(path)
        path.append(node)
        node = first_supplier[node]
    cycle = [*path[where[node] :], node]
    return cycle[::-1]  # supplier -> consumer


def _ranges(starts: npt.NDArray[np.integer[Any]], stops: npt.NDArray[np.integer[Any]]) -> IntArray:
    """``concatenate([arange(a, b) for a, b in zip(starts, stops)])`` without the loop."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(stops, dtype=np.int64) - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    out = np.ones(total, dtype=np.int64)
    nonempty = lengths > 0
    first = (ends - lengths)[nonempty]
    starts_ne = starts[nonempty]
    out[first[0]] = starts_ne[0]
    if len(first) > 1:
        prev_end = (starts_ne + lengths[nonempty])[:-1]
        out[first[1:]] = starts_ne[1:] - prev_end + 1
    return np.cumsum(out)


def _factorise(values: Iterable[str]) -> tuple[IntArray, list[str]]:
    """Codes into the sorted distinct values (a C-level map, not a Python loop body)."""
    items = values if isinstance(values, Sequence) else list(values)
    names = sorted(set(items))
    lookup = {name: k for k, name in enumerate(names)}
    codes = np.fromiter(map(lookup.__getitem__, items), dtype=np.int64, count=len(items))
    return codes, names


def _str_array(values: Sequence[str] | npt.NDArray[np.str_]) -> npt.NDArray[np.str_]:
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, dtype="<U1")
    if arr.dtype.kind != "U":
        raise TypeError(f"expected strings, got an array of {arr.dtype}")
    return arr


def _check_range(what: str, values: npt.NDArray[np.integer[Any]], n: int) -> None:
    if len(values) == 0:
        return
    bad = np.flatnonzero((values < 0) | (values >= n))
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"edge {k}: {what} index {int(values[k])} out of range [0, {n})")
