"""The fused numba kernel behind :class:`models.engine.compiled.CompiledGraph` on large batches.

The numpy path (``models.engine.compiled._apply_level``) evaluates a level with one sparse product
into a ``(segments, batch)`` temporary and a few ``np.minimum`` calls; on graphs far bigger
than the caches it is bound by memory traffic. This kernel walks the same plan row by row
instead: for each consumer row and each of its input categories it accumulates the segment's
constant plus ``share × supplier row`` into a batch-wide accumulator, takes the running minimum
over the categories and the row's own ``up`` (the Leontief rule) and writes the row once. A
leaf row is ``up`` itself. Nothing the size of a level is ever allocated, and ``up`` is read
straight from the caller's array (no gather pass).

The arithmetic is the numpy path's, operation for operation, in the batch dtype: each segment
sum starts at the segment's constant (0 without buffers) and adds ``share × a(supplier)`` in
the plan's entry order, the minimum runs over the categories in rank order (NaN propagates as
in ``np.minimum``), and the row is ``np.minimum(dtype(up), minimum)``. The two paths
therefore return the same bits (the tests check it).

Rows of one level depend only on rows below it, so each level is split into as many
contiguous row ranges as there are worker threads (balanced by supply entries) and the
ranges run in parallel: the kernel releases the GIL. Python threads, not numba's parallel
backends, so nothing here depends on OpenMP/TBB or misbehaves after ``fork`` or under
concurrent callers.

Importing this module imports numba (~0.3 s); :mod:`models.engine.compiled` imports it only when a
batch is big enough to use it. Compiled machine code is cached on disk (``cache=True``), so
only the first process on a machine pays the compilation (a few seconds per dtype pair).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt
from llvmlite import ir  # type: ignore[import-untyped]
from numba.core import types
from numba.extending import intrinsic

_F = TypeVar("_F", bound=Callable[..., Any])

#: Worker threads (the calling thread included): the CPUs this process may run on, at most
#: 8, or the ``SOVRISK_THREADS`` environment variable.
MAX_THREADS = 8
#: A level's share of a batch below this many multiply-adds runs on the calling thread only.
PARALLEL_MIN_WORK = 1 << 18
#: How far ahead the kernel prefetches supplier rows into L1 (entries) and ``up`` rows (rows).
PREFETCH_ENTRIES = 4
PREFETCH_ROWS = 4
#: How far ahead it also asks for supplier rows into L2 only. Twelve 512-byte rows are ~100
#: lines: more than L1 can have in flight, so the far hint starts the DRAM reads early and the
#: near one then finds them in L2 (measured on the 1M-node pyramid, float32, interleaved
#: runs: about 5 % less CPU time than the L1 hint alone, which is no better at 8 or 12
#: entries than at 4).
PREFETCH_ENTRIES_L2 = 12


def _jit(fn: _F) -> _F:
    """``numba.njit`` with a disk cache, releasing the GIL, strict IEEE arithmetic."""
    return cast(_F, numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")(fn))


def _prefetch_intrinsic(locality: int) -> Callable[..., Any]:
    """An intrinsic hinting the CPU to fetch the cache line of ``array[row, col]`` (a 2-D
    array, any strides) into the caches of ``llvm.prefetch`` ``locality`` (3: every level,
    ``prefetcht0``; 2: L2 and below, ``prefetcht1``).

    A prefetch never faults, so the element need not exist. The kernel's loads are
    data-dependent (``work[indices[e]]``), which the hardware prefetchers cannot guess;
    hinting entries ahead keeps several rows in flight instead of one.
    """

    def typer(typingctx: Any, array: Any, row: Any, col: Any) -> Any:
        if not (
            isinstance(array, types.Array)
            and array.ndim == 2
            and isinstance(row, types.Integer)
            and isinstance(col, types.Integer)
        ):
            return None
        return types.void(array, row, col), codegen

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        stride_row = builder.extract_value(ary.strides, 0)
        stride_col = builder.extract_value(ary.strides, 1)
        r = context.cast(builder, args[1], signature.args[1], types.intp)
        c = context.cast(builder, args[2], signature.args[2], types.intp)
        offset = builder.add(builder.mul(r, stride_row), builder.mul(c, stride_col))
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        address = builder.gep(builder.bitcast(ary.data, byte_ptr), [offset])
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        name = "llvm.prefetch.p0i8"
        fn = builder.module.globals.get(name) or ir.Function(builder.module, fnty, name)
        builder.call(fn, [address, i32(0), i32(locality), i32(1)])
        return context.get_dummy_value()

    typer.__name__ = typer.__qualname__ = f"prefetch_locality_{locality}"  # two intrinsics
    return typer


_Prefetch = Callable[[npt.NDArray[Any], int, int], None]
_prefetch = cast(_Prefetch, intrinsic(_prefetch_intrinsic(3)))
_prefetch_l2 = cast(_Prefetch, intrinsic(_prefetch_intrinsic(2)))


@_jit
def _evaluate_rows(
    work: npt.NDArray[Any],
    up: npt.NDArray[Any],
    perm: npt.NDArray[np.int64],
    c0: int,
    lo: int,
    hi: int,
    node_seg_ptr: npt.NDArray[np.int64],
    seg_ptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    data: npt.NDArray[Any],
    offsets: npt.NDArray[Any],
) -> None:
    """Rows ``lo:hi`` of ``work`` (every supplier row already final):

    ``work[r] = min(up[perm[r], c0:], min over r's segments k of
    (offsets[k] + Σ data[e] × work[indices[e]]))``,
    or ``up[perm[r], c0:]`` for a row without segments (a leaf). ``work`` is C-contiguous,
    ``up`` of the same dtype with contiguous rows (a column slice of a wider batch is fine).

    A segment of up to three suppliers is one pass over the batch columns (sum and minimum
    fused, the sum still ``((0 + s0 a0) + s1 a1) + s2 a2`` in entry order); longer ones
    accumulate four suppliers per pass. ``np.minimum`` against a running minimum that
    starts at +inf equals numpy's ``minimum`` chain over the categories bit for bit (and a
    select-and-store would compile to masked stores, slow on AMD).
    """
    width = work.shape[1]
    step = max(1, 64 // work.itemsize)  # elements per cache line
    acc = np.empty(width, dtype=work.dtype)
    low = np.empty(width, dtype=work.dtype)
    inf = np.full(1, np.inf, dtype=work.dtype)[0]
    last = len(indices) - 1
    for row in range(lo, hi):
        if row + PREFETCH_ROWS < hi:
            ahead = perm[row + PREFETCH_ROWS]
            for offset in range(0, width, step):
                _prefetch(up, ahead, c0 + offset)
        # Sliced, not offset: indexed from 0 with the loop counter, the compiler knows every
        # index is non-negative and vectorises the copy and the final minimum; ``src[c0 + c]``
        # kept a negative-index wraparound per element and made both loops scalar (on a
        # graph that stays in cache the kernel took 20-30 % longer per multiply-add).
        src = up[perm[row], c0 : c0 + width]
        out = work[row]
        s0 = node_seg_ptr[row]
        s1 = node_seg_ptr[row + 1]
        if s0 == s1:
            for c in range(width):
                out[c] = src[c]
            continue
        for c in range(width):
            low[c] = inf
        for seg in range(s0, s1):
            e0 = seg_ptr[seg]
            e1 = seg_ptr[seg + 1]
            zero = offsets[seg]
            for e in range(e0 + PREFETCH_ENTRIES_L2, e1 + PREFETCH_ENTRIES_L2):
                ahead = indices[min(e, last)]
                for offset in range(0, width, step):
                    _prefetch_l2(work, ahead, offset)
            for e in range(e0 + PREFETCH_ENTRIES, e1 + PREFETCH_ENTRIES):
                ahead = indices[min(e, last)]
                for offset in range(0, width, step):
                    _prefetch(work, ahead, offset)
            n = e1 - e0
            if n == 1:
                r0, d0 = work[indices[e0]], data[e0]
                for c in range(width):
                    low[c] = np.minimum(low[c], zero + d0 * r0[c])
            elif n == 2:
                r0, d0 = work[indices[e0]], data[e0]
                r1, d1 = work[indices[e0 + 1]], data[e0 + 1]
                for c in range(width):
                    low[c] = np.minimum(low[c], (zero + d0 * r0[c]) + d1 * r1[c])
            elif n == 3:
                r0, d0 = work[indices[e0]], data[e0]
                r1, d1 = work[indices[e0 + 1]], data[e0 + 1]
                r2, d2 = work[indices[e0 + 2]], data[e0 + 2]
                for c in range(width):
                    low[c] = np.minimum(low[c], ((zero + d0 * r0[c]) + d1 * r1[c]) + d2 * r2[c])
            else:
                for c in range(width):
                    acc[c] = zero
                e = e0
                while e + 4 <= e1:
                    r0, d0 = work[indices[e]], data[e]
                    r1, d1 = work[indices[e + 1]], data[e + 1]
                    r2, d2 = work[indices[e + 2]], data[e + 2]
                    r3, d3 = work[indices[e + 3]], data[e + 3]
                    for c in range(width):
                        acc[c] = (((acc[c] + d0 * r0[c]) + d1 * r1[c]) + d2 * r2[c]) + d3 * r3[c]
                    e += 4
                while e < e1:
                    r0, d0 = work[indices[e]], data[e]
                    for c in range(width):
                        acc[c] += d0 * r0[c]
                    e += 1
                for c in range(width):
                    low[c] = np.minimum(low[c], acc[c])
        for c in range(width):
            out[c] = np.minimum(src[c], low[c])


@dataclass(frozen=True, eq=False)
class KernelPlan:
    """A level plan (``models.engine.compiled._Plan``) laid out node-major for the kernel.

    Row ``r``'s segments are ``node_seg_ptr[r]:node_seg_ptr[r + 1]`` in category-rank order;
    segment ``k``'s entries are ``seg_ptr[k]:seg_ptr[k + 1]``, supplier rows ``indices`` and
    shares ``data(...)``. ``entry_pos`` maps each entry to its place in the plan's level
    operations' data concatenated (so ``edge_scale`` applies as on the numpy path), and
    ``seg_pos`` each segment to its place in their segments concatenated (the constants).
    ``levels`` are the row ranges of the levels, bottom up (leaves first).
    """

    n_rows: int
    node_seg_ptr: npt.NDArray[np.int64]
    seg_ptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int32]
    entry_pos: npt.NDArray[np.int64]
    seg_pos: npt.NDArray[np.int64]
    levels: tuple[tuple[int, int], ...]
    _data: dict[tuple[str, float], tuple[npt.NDArray[Any], npt.NDArray[Any]]] = field(
        default_factory=dict, repr=False
    )
    _splits: dict[tuple[int, int], list[int]] = field(default_factory=dict, repr=False)

    @property
    def n_entries(self) -> int:
        return len(self.indices)

    def data(
        self,
        op_data: Sequence[npt.NDArray[Any]],
        op_offsets: Sequence[npt.NDArray[Any]],
        dtype: np.dtype[Any],
        cache: float | None,
    ) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """The shares and segment constants in kernel order, in ``dtype``, from the level
        operations' arrays (one per operation); kept for the next batch under the horizon
        ``cache`` (``None``: not kept; ``inf``: the long run)."""
        key = (dtype.str, float("inf") if cache is None else cache)
        if cache is not None and key in self._data:
            return self._data[key]
        joined = np.concatenate(list(op_data)) if op_data else np.zeros(0)
        out = np.ascontiguousarray(joined[self.entry_pos], dtype=dtype)
        consts = np.concatenate(list(op_offsets)) if op_offsets else np.zeros(0)
        offsets = np.ascontiguousarray(consts[self.seg_pos], dtype=dtype)
        if cache is not None:
            self._data[key] = (out, offsets)
        return out, offsets


def build_plan(
    n_rows: int,
    ops: Sequence[Any],
) -> KernelPlan:
    """Node-major arrays from the block-major level operations of ``models.engine.compiled``.

    Each operation covers rows ``lo:hi``; its segment ``offsets[r] + k`` is the ``r``-th
    category of row ``lo + k`` (``k < counts[r]``); its entries ``indptr[s]:indptr[s + 1]``.
    """
    seg_count = np.zeros(n_rows, dtype=np.int64)
    seg_parts: list[npt.NDArray[np.int64]] = []  # per op: entry ranges in node-major order
    len_parts: list[npt.NDArray[np.int64]] = []
    pos_parts: list[npt.NDArray[np.int64]] = []  # per op: node-major segment -> op segment
    seg_base = 0
    level_rows: dict[int, list[int]] = {}
    base = 0
    for op in ops:
        k = np.concatenate([np.arange(c, dtype=np.int64) for c in op.counts])
        order = np.argsort(k, kind="stable")  # node-major; ranks stay ascending per node
        indptr = np.asarray(op.indptr, dtype=np.int64)
        starts = indptr[:-1][order]
        lengths = np.diff(indptr)[order]
        seg_count[op.lo : op.hi] = np.bincount(k, minlength=op.hi - op.lo)
        seg_parts.append(_ranges(starts, lengths) + base)
        len_parts.append(lengths)
        pos_parts.append(order.astype(np.int64) + seg_base)
        seg_base += len(k)
        base += int(indptr[-1])
        bounds = level_rows.setdefault(int(op.level), [op.lo, op.hi])
        bounds[0], bounds[1] = min(bounds[0], op.lo), max(bounds[1], op.hi)
    node_seg_ptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(seg_count, out=node_seg_ptr[1:])
    lengths_all = np.concatenate(len_parts) if len_parts else np.zeros(0, dtype=np.int64)
    seg_ptr = np.zeros(len(lengths_all) + 1, dtype=np.int64)
    np.cumsum(lengths_all, out=seg_ptr[1:])
    entry_pos = np.concatenate(seg_parts) if seg_parts else np.zeros(0, dtype=np.int64)
    all_indices = (
        np.concatenate([np.asarray(op.indices) for op in ops]) if ops else np.zeros(0, np.int32)
    )
    indices = np.ascontiguousarray(all_indices[entry_pos], dtype=np.int32)
    first = min((lo for lo, _ in level_rows.values()), default=n_rows)
    levels = [(0, first)] if first else []
    levels += [(lo, hi) for _, (lo, hi) in sorted(level_rows.items())]
    seg_pos = np.concatenate(pos_parts) if pos_parts else np.zeros(0, dtype=np.int64)
    return KernelPlan(n_rows, node_seg_ptr, seg_ptr, indices, entry_pos, seg_pos, tuple(levels))


def _ranges(starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``concatenate([arange(a, a + n) for a, n in zip(starts, lengths)])``."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    offsets = np.repeat(starts - (ends - lengths), lengths)
    out: npt.NDArray[np.int64] = np.arange(total, dtype=np.int64) + offsets
    return out


# -- running ----------------------------------------------------------------------------------

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _forget_pool() -> None:
    """In a forked child: the parent's worker threads (and maybe its lock) do not exist."""
    global _pool, _pool_lock, _pool_size
    _pool, _pool_lock, _pool_size = None, threading.Lock(), 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def n_threads() -> int:
    """Threads a batch is spread over (the caller's included)."""
    env = os.environ.get("SOVRISK_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cpus))


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared worker threads (grown on demand; idle threads cost nothing)."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sovrisk-kernel")
            _pool_size = workers
        return _pool


def evaluate(
    plan: KernelPlan,
    work: npt.NDArray[Any],
    up: npt.NDArray[Any],
    perm: npt.NDArray[np.int64],
    c0: int,
    data: npt.NDArray[Any],
    offsets: npt.NDArray[Any],
    threads: int | None = None,
) -> None:
    """Fill ``work`` (``(plan.n_rows, width)``, C-contiguous) with the plan evaluated on
    columns ``c0:c0 + width`` of ``up`` (``work``'s dtype, contiguous rows, rows in public
    order, indexed through ``perm``)."""
    width = work.shape[1]
    threads = n_threads() if threads is None else max(1, threads)

    def rows(lo: int, hi: int) -> None:
        _evaluate_rows(
            work,
            up,
            perm,
            c0,
            lo,
            hi,
            plan.node_seg_ptr,
            plan.seg_ptr,
            plan.indices,
            data,
            offsets,
        )

    for lo, hi in plan.levels:
        entries = int(plan.seg_ptr[plan.node_seg_ptr[hi]] - plan.seg_ptr[plan.node_seg_ptr[lo]])
        parts = min(threads, max(1, (entries + hi - lo) * width // PARALLEL_MIN_WORK), hi - lo)
        if parts <= 1:
            rows(lo, hi)
            continue
        bounds = _split(plan, lo, hi, parts)
        pool = _executor(parts - 1)
        futures = [pool.submit(rows, a, b) for a, b in itertools.pairwise(bounds[1:])]
        try:
            rows(bounds[0], bounds[1])
        finally:
            for future in futures:
                future.result()


def _split(plan: KernelPlan, lo: int, hi: int, parts: int) -> list[int]:
    """``parts + 1`` row bounds cutting ``lo:hi`` into ranges of about equal work (supply
    entries plus one per row); cached per level and number of parts."""
    cached = plan._splits.get((lo, parts))
    if cached is not None:
        return cached
    rows = np.arange(lo, hi + 1)
    cost = plan.seg_ptr[plan.node_seg_ptr[rows]] + rows
    targets = cost[0] + (cost[-1] - cost[0]) * np.arange(1, parts) / parts
    cuts = np.searchsorted(cost, targets).tolist()
    bounds = [lo, *(lo + int(c) for c in cuts), hi]
    plan._splits[(lo, parts)] = bounds
    return bounds
