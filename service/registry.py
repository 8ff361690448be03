"""Holds the loaded graph version and its engine, and runs scoring off the event loop.

One :class:`RiskEngine` per graph version: the engine compiles the graph once and caches
assessments per (provider, parameters), so the cache key is (graph version, parameters).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from models.bundle import Supplements, load_bundle
from models.engine import RiskEngine
from models.events import Event
from models.graph import SupplyGraph

log = logging.getLogger("sovrisk.registry")

T = TypeVar("T")
P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Final(Generic[T]):
    """The result that ends a :meth:`GraphRegistry.stream`."""

    value: T


#: The bundled default dataset, next to the packages in a checkout.
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


class GraphRegistry:
    """The graph the server answers from. Swapping versions is one atomic reference update."""

    def __init__(self, *, workers: int = 2) -> None:
        # One reference, swapped atomically: the engine carries its graph and supplements.
        self._current: RiskEngine | None = None
        self._lock = threading.Lock()
        self._running = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sovrisk-score")

    @classmethod
    def from_directory(cls, path: str | Path, *, workers: int = 2) -> GraphRegistry:
        registry = cls(workers=workers)
        graph, supplements = load_bundle(path)
        registry.install(graph, supplements)
        return registry

    def install(self, graph: SupplyGraph, supplements: Supplements | None = None) -> RiskEngine:
        """Compile ``graph`` and make it current. Readers see the old or the new, never half."""
        engine = RiskEngine(graph, supplements)
        self._current = engine
        log.info("graph %s installed (%d nodes)", graph.version_id, len(graph.nodes))
        return engine

    @property
    def ready(self) -> bool:
        return self._current is not None

    @property
    def engine(self) -> RiskEngine:
        if self._current is None:
            raise RuntimeError("no graph loaded")
        return self._current

    @property
    def running_jobs(self) -> int:
        """Streaming jobs still running in the worker pool (a cancelled one ends soon after)."""
        with self._lock:
            return self._running

    @property
    def events(self) -> tuple[Event, ...]:
        """The bundled disruption events of the current version (events.csv)."""
        return self._current.supplements.events if self._current is not None else ()

    @property
    def graph(self) -> SupplyGraph:
        return self.engine.graph

    async def run(self, fn: Callable[[RiskEngine], T]) -> T:
        """Run ``fn(engine)`` in the worker pool so scoring never blocks the event loop."""
        engine = self.engine  # pin the version for the whole call
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, engine)

    async def stream(
        self,
        work: Callable[[RiskEngine, Callable[[P], None], Callable[[], bool]], T],
    ) -> AsyncIterator[P | Final[T]]:
        """Run ``work(engine, report, should_stop)`` in the worker pool and yield each
        progress report as it comes, then the result wrapped in :class:`Final`.

        If the consumer stops iterating (the client cancelled, or its deadline passed),
        ``should_stop()`` turns true so the work ends at its next check.
        """
        engine = self.engine
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[P] = asyncio.Queue()
        stop = threading.Event()

        def report(item: P) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def tracked() -> T:
            with self._lock:
                self._running += 1
            try:
                return work(engine, report, stop.is_set)
            finally:
                with self._lock:
                    self._running -= 1

        future = loop.run_in_executor(self._executor, tracked)
        # A cancelled run ends in an exception nobody awaits; retrieve it so it is not logged.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                pending: set[asyncio.Future[Any]] = {getter, future}
                done, _ = await asyncio.wait(pending, return_when=FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                while not queue.empty():
                    yield queue.get_nowait()
                yield Final(future.result())
                return
        finally:
            stop.set()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
