"""Sweeps on a Ray cluster: ``sovrisk serve --executor ray://HOST:10001`` (or ``ray`` for a
local one). Needs the optional extra: ``pip install 'sovrisk[ray]'``.

:class:`RayExecutor` implements ``models.engine.executor.Executor``: the shared input of a
map (the simulation plan with its compiled graph, the scoring parameters) is put into the
object store once, every item is a task, and the results come back in item order. The
functions it runs are the domain's own module-level functions, which the workers import by
name: they need the same sovrisk version installed (docs/scale.md). A cancelled caller (its
client went away, its deadline passed) cancels the outstanding tasks.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sovrisk.models.cancellation import OperationCancelled, stop_requested

log = logging.getLogger("sovrisk.ray")

S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 - the item type
R = TypeVar("R")

#: How often a waiting map checks whether its caller still wants the result.
POLL_SECONDS = 0.2


def _task(fn: Callable[[Any, Any], Any], shared: Any, item: Any) -> tuple[Any, str, int]:
    """One item on a worker: the result, and where it ran (node id, process id)."""
    import ray

    return fn(shared, item), ray.get_runtime_context().get_node_id(), os.getpid()


class RayExecutor:
    """Maps on a Ray cluster (``address``: ``ray://host:10001``, ``host:6379``, ``auto``, or
    None for a new local one)."""

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:  # the optional extra
            raise RuntimeError("--executor ray needs Ray: pip install 'sovrisk[ray]'") from exc
        self._ray = ray
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        self.name = f"ray:{address}" if address else "ray:local"
        self._remote = ray.remote(_task)
        self._lock = threading.Lock()
        #: (node id, pid) of every worker that ran a task of the last map.
        self.last_workers: set[tuple[str, int]] = set()
        log.info("Ray executor on %s: %s CPUs", self.name, self.parallelism)

    @property
    def parallelism(self) -> int:
        resources: dict[str, float] = self._ray.cluster_resources()  # type: ignore[no-untyped-call]
        return max(1, int(resources.get("CPU", 1)))

    def map(
        self,
        fn: Callable[[S, I], R],
        shared: S,
        items: Sequence[I],
        *,
        on_result: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        ray = self._ray
        ref = ray.put(shared)  # once: every task reads the same object
        refs = [self._remote.remote(fn, ref, item) for item in items]
        outputs: list[tuple[R, str, int]] = []
        try:
            # Every task is submitted; take the results in item order, so that the caller
            # merges (and reports progress) while later items still run.
            while len(outputs) < len(refs):
                if stop_requested():
                    raise OperationCancelled()
                ready, _ = ray.wait([refs[len(outputs)]], timeout=POLL_SECONDS)
                if ready:
                    outputs.append(ray.get(ready[0]))
                    if on_result is not None:
                        on_result(len(outputs) - 1, outputs[-1][0])
        except BaseException:
            # Cancelled, a task failed, or on_result raised: the rest is not wanted. Without
            # force, a queued task is dropped and a running one interrupted at its next Python
            # step (a KeyboardInterrupt: after the batch in hand), and the worker processes
            # (their imports, their JIT) live on for the next map.
            for r in refs[len(outputs) :]:
                ray.cancel(r)
            raise
        with self._lock:
            self.last_workers = {(node, pid) for _, node, pid in outputs}
        return [result for result, _, _ in outputs]

    def close(self) -> None:
        self._ray.shutdown()


def executor_from_option(value: str) -> Any:
    """The executor ``--executor`` names: ``local`` (default), ``ray`` (a local cluster, or
    the one RAY_ADDRESS names), or ``ray://host:port``."""
    from sovrisk.models.engine.executor import LocalExecutor

    if value in ("", "local"):
        return LocalExecutor()
    if value == "ray":
        return RayExecutor(os.environ.get("RAY_ADDRESS") or None)
    if value.startswith("ray://"):
        return RayExecutor(value)
    raise ValueError(f"--executor must be local, ray or ray://HOST:PORT, not {value!r}")
