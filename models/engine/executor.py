"""Where batches of independent work run: in this process, or on a cluster.

The sweeps (Monte Carlo batches of ``SimulateDisruptions``, the uncertainty draws behind the
score intervals) are maps of one function over many items sharing one large read-only input
(the compiled graph, the simulation plan). An :class:`Executor` runs such a map:
:class:`LocalExecutor` here (sequentially, or on a few threads: numpy and the LP solver release
the GIL), ``sovrisk.service.ray_executor.RayExecutor`` on a Ray cluster (the shared input put
into the object store once, each item a task). The callers split the work into the same items
whatever the executor and every item carries its own seed, so the results are bit-identical
across executors and worker counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from sovrisk.models.cancellation import carried, checkpoint

S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 - the item type
R = TypeVar("R")


class Executor(Protocol):
    """Runs ``fn(shared, item)`` for every item and returns the results in item order.
    ``fn`` must be a module-level function (a cluster imports it by name)."""

    #: A name for logs and provenance ("local", "ray://host:10001").
    name: str

    @property
    def parallelism(self) -> int:
        """How many items run at once (to size the work so every worker gets some)."""
        ...

    def map(
        self,
        fn: Callable[[S, I], R],
        shared: S,
        items: Sequence[I],
        *,
        on_result: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        """``on_result(index, result)``, if given, is called in item order as soon as every
        earlier item is done, so a caller can merge and report progress while the rest run;
        an exception it raises ends the map (and drops the items still to run)."""
        ...


class LocalExecutor:
    """This process: items in order (``threads=1``) or on a thread pool; a cancelled caller
    stops between items."""

    def __init__(self, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, not {threads}")
        self.threads = threads
        self.name = "local" if threads == 1 else f"local[{threads} threads]"

    @property
    def parallelism(self) -> int:
        return self.threads

    def map(
        self,
        fn: Callable[[S, I], R],
        shared: S,
        items: Sequence[I],
        *,
        on_result: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        def one(item: I) -> R:
            checkpoint()
            return fn(shared, item)

        if self.threads == 1 or len(items) <= 1:
            return _collect((one(item) for item in items), on_result)
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            futures = [pool.submit(carried(one), item) for item in items]
            try:
                return _collect((f.result() for f in futures), on_result)
            finally:
                for f in futures:  # after an exception: the items not started never run
                    f.cancel()


def _collect(results: Iterable[R], on_result: Callable[[int, R], None] | None) -> list[R]:
    out: list[R] = []
    for index, result in enumerate(results):
        out.append(result)
        if on_result is not None:
            on_result(index, result)
    return out


_default: Executor = LocalExecutor()


def default_executor() -> Executor:
    """The executor sweeps use unless told otherwise (``sovrisk ... --executor``)."""
    return _default


def set_default_executor(executor: Executor) -> None:
    global _default
    _default = executor
