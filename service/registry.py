"""Holds the loaded graph version and its engine, and runs scoring off the event loop.

One :class:`RiskEngine` per graph version: the engine compiles the graph once and caches
assessments per (provider, parameters), so the cache key is (graph version, parameters).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from models.engine import RiskEngine
from models.graph import SupplyGraph
from models.loader import load_dataset

log = logging.getLogger("sovrisk.registry")

T = TypeVar("T")

#: The bundled default dataset, next to the packages in a checkout.
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


class GraphRegistry:
    """The graph the server answers from. Swapping versions is one atomic reference update."""

    def __init__(self, *, workers: int = 2) -> None:
        self._engine: RiskEngine | None = None
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sovrisk-score")

    @classmethod
    def from_directory(cls, path: str | Path, *, workers: int = 2) -> GraphRegistry:
        registry = cls(workers=workers)
        registry.install(load_dataset(path))
        return registry

    def install(self, graph: SupplyGraph) -> RiskEngine:
        """Compile ``graph`` and make it current. Readers see the old or the new, never half."""
        engine = RiskEngine(graph)
        self._engine = engine
        log.info("graph %s installed (%d nodes)", graph.version_id, len(graph.nodes))
        return engine

    @property
    def ready(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> RiskEngine:
        if self._engine is None:
            raise RuntimeError("no graph loaded")
        return self._engine

    @property
    def graph(self) -> SupplyGraph:
        return self.engine.graph

    async def run(self, fn: Callable[[RiskEngine], T]) -> T:
        """Run ``fn(engine)`` in the worker pool so scoring never blocks the event loop."""
        engine = self.engine  # pin the version for the whole call
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, engine)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
