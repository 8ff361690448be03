"""Cooperative cancellation of long computations.

A request's work runs in a worker thread, where neither a gRPC deadline nor a client's cancel
can interrupt it: the thread has to notice. The caller runs the work inside
:func:`cancellable` with a ``should_stop`` test; the long loops of the domain (engine builds,
assessments, resilience LPs, knockouts, comparisons, trajectories, scenarios, screening) call
:func:`checkpoint` between steps that take at most a fraction of a second, and it raises
:class:`OperationCancelled` once ``should_stop()`` is true. Outside any scope ``checkpoint``
costs one thread-local lookup and never raises, so library users and tests see no change.

The scope is per thread (not a ``contextvars`` variable) because worker pools do not carry
the submitting task's context into their threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = [
    "OperationCancelled",
    "cancellable",
    "carried",
    "checkpoint",
    "holding",
    "stop_requested",
]

A = TypeVar("A")
R = TypeVar("R")

_scope = threading.local()


class OperationCancelled(Exception):
    """The caller no longer wants the result (its client cancelled or its deadline passed)."""

    def __init__(self, message: str = "the operation was cancelled") -> None:
        super().__init__(message)


@contextmanager
def cancellable(should_stop: Callable[[], bool]) -> Iterator[None]:
    """Run the body with ``should_stop`` as this thread's cancellation test (nested scopes
    stack: the innermost one is checked, and the outer one is restored on exit)."""
    outer = getattr(_scope, "should_stop", None)
    _scope.should_stop = should_stop
    try:
        yield
    finally:
        _scope.should_stop = outer


def carried(fn: Callable[[A], R]) -> Callable[[A], R]:
    """``fn`` wrapped to run under this thread's cancellation test in whichever thread calls
    it (for work the domain itself fans out to a thread pool)."""
    should_stop = getattr(_scope, "should_stop", None)
    if should_stop is None:
        return fn

    def run(arg: A) -> R:
        with cancellable(should_stop):
            return fn(arg)

    return run


def stop_requested() -> bool:
    """Whether this thread's work is no longer wanted (for loops that raise their own
    :class:`OperationCancelled` subclass with what they got done)."""
    should_stop = getattr(_scope, "should_stop", None)
    return should_stop is not None and bool(should_stop())


@contextmanager
def holding(lock: threading.Lock, poll_seconds: float = 0.05) -> Iterator[None]:
    """``with lock:``, but a cancelled caller stops waiting (within ``poll_seconds``) for a
    lock another thread holds through a long computation."""
    while not lock.acquire(timeout=poll_seconds):
        checkpoint()
    try:
        yield
    finally:
        lock.release()


def checkpoint() -> None:
    """Raise :class:`OperationCancelled` if this thread's work is no longer wanted."""
    if stop_requested():
        raise OperationCancelled()
