"""Per-version analytics kept in the store: computed once, by one replica, read by all.

:class:`StoredAnalytics` is the :class:`~sovrisk.models.scoring.analytics_cache.AnalyticsCache`
a served engine uses. For a key it

1. reads the stored result (a restarted process, or another replica, gets it in
   milliseconds instead of seconds of LPs and simulation);
2. if there is none, claims the key in the store (only one replica wins the INSERT),
   computes, and stores the result and drops the claim in one transaction; a heartbeat keeps
   the claim alive while it computes, so a replica that dies mid-way is taken over after
   :data:`CLAIM_LEASE_S`;
3. if another replica holds the claim, waits for its result (checking for cancellation).

Results are pickled (protocol 5: exact floats and numpy arrays, ~20-80 KB each for the
bundled data) and read back with an unpickler that only builds the domain's own classes,
numpy arrays and dates (:class:`_DomainUnpickler`): a tampered row cannot run code. JSON
would need a codec per result type for no gain in safety over that allow-list. A row that
does not unpickle (a model class changed shape without a model-version bump) is recomputed
and replaced. When the store cannot be reached the result is computed and not stored: a
read never fails because the cache is down.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sovrisk.models.cancellation import checkpoint
from sovrisk.models.scoring.analytics_cache import AnalyticsKey
from sovrisk.service import metrics
from sovrisk.service.store.analytics import AnalyticsRow, AnalyticsTables

log = logging.getLogger("sovrisk.analytics")

T = TypeVar("T")

#: A claim whose heartbeat is older than this is taken over (its owner died).
CLAIM_LEASE_S = 30.0
#: How often an owner refreshes the claims it holds.
HEARTBEAT_S = 5.0
#: How often a waiting replica looks for the result.
POLL_S = 0.05
#: How often a waiting replica tries to take over the claim (a write: less often).
RECLAIM_S = 1.0

_NUMPY_GLOBALS = frozenset(
    {
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
    }
)
_OTHER_GLOBALS = frozenset(
    {
        ("datetime", "date"),
        ("datetime", "datetime"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
        ("collections", "OrderedDict"),
    }
)


class UnreadableAnalytics(pickle.UnpicklingError):
    """A stored result that names something outside the allow-list."""


class _DomainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS or (module, name) in _OTHER_GLOBALS:
            return super().find_class(module, name)
        if module.startswith("sovrisk.models."):
            found = super().find_class(module, name)
            if isinstance(found, type):  # classes (dataclasses, enums), never functions
                return found
        raise UnreadableAnalytics(f"stored analytics may not refer to {module}.{name}")


def encode(value: object) -> bytes:
    return pickle.dumps(value, protocol=5)


def decode(data: bytes) -> Any:
    """A stored result; raises :class:`pickle.UnpicklingError` (or the error of a class
    that changed shape) for one that cannot be read."""
    return _DomainUnpickler(io.BytesIO(data)).load()


def default_owner() -> str:
    """This process, as the owner of its claims: host, pid and a random suffix (a pid is
    reused after a restart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class StoredAnalytics:
    """The store-backed analytics cache of one process (thread-safe)."""

    def __init__(
        self,
        store: AnalyticsTables,
        *,
        owner: str | None = None,
        lease_s: float = CLAIM_LEASE_S,
        heartbeat_s: float = HEARTBEAT_S,
        poll_s: float = POLL_S,
    ) -> None:
        self.store = store
        self.owner = owner or default_owner()
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s
        self.poll_s = poll_s
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._heart: threading.Thread | None = None

    # -- the AnalyticsCache protocol ------------------------------------------------------

    def fetch(self, key: AnalyticsKey, compute: Callable[[], T]) -> T:
        if self._stopped.is_set():  # closed: its store may be gone (a private one, removed)
            return compute()
        digest = key.digest
        try:
            found = self._read(key, digest)
        except Exception:
            return self._unstored(key, compute)
        if found is not None:
            metrics.ANALYTICS.labels(key.kind, "loaded").inc()
            return found[0]  # type: ignore[no-any-return]
        return self._claim_or_wait(key, digest, compute)

    def close(self) -> None:
        self._stopped.set()

    # -- internals --------------------------------------------------------------------------

    def _unstored(self, key: AnalyticsKey, compute: Callable[[], T]) -> T:
        """The store is unreachable: answer anyway, without storing."""
        if not self._stopped.is_set():
            log.warning("analytics store unreachable; computing %s unstored", key.kind)
        metrics.ANALYTICS.labels(key.kind, "unstored").inc()
        return compute()

    def _read(self, key: AnalyticsKey, digest: str) -> tuple[Any] | None:
        data = self.store.get_analytics(digest)
        if data is None:
            return None
        try:
            return (decode(data),)
        except Exception as exc:  # recomputed and replaced below
            log.warning(
                "stored %s analytics %s unreadable (%s): recomputing", key.kind, digest, exc
            )
            return None

    def _claim_or_wait(self, key: AnalyticsKey, digest: str, compute: Callable[[], T]) -> T:
        next_claim = 0.0
        while True:
            now = time.monotonic()
            if now >= next_claim:
                wall = time.time()
                try:
                    claimed = self.store.claim_analytics(
                        digest, self.owner, now=wall, stale_before=wall - self.lease_s
                    )
                except Exception:
                    return self._unstored(key, compute)
                if claimed:
                    return self._compute(key, digest, compute)
                next_claim = now + RECLAIM_S
            checkpoint()  # a cancelled request stops waiting
            time.sleep(self.poll_s)
            try:
                found = self._read(key, digest)
            except Exception:
                return self._unstored(key, compute)
            if found is not None:
                metrics.ANALYTICS.labels(key.kind, "waited").inc()
                return found[0]  # type: ignore[no-any-return]

    def _compute(self, key: AnalyticsKey, digest: str, compute: Callable[[], T]) -> T:
        self._hold(digest)
        try:
            started = time.perf_counter()
            value = compute()
            seconds = time.perf_counter() - started
        except BaseException:
            self._release(digest)
            raise
        finally:
            with self._lock:
                self._held.discard(digest)
        row = AnalyticsRow(digest, key.kind, key.content, self.owner, seconds, encode(value))
        try:
            self.store.put_analytics(row, owner=self.owner)
        except Exception:  # the value stands; the claim's lease runs out on its own
            if not self._stopped.is_set():
                log.warning("could not store %s analytics", key.kind, exc_info=True)
            return value
        metrics.ANALYTICS.labels(key.kind, "computed").inc()
        if not self._stopped.is_set():  # a closed owner's process may have closed its log
            log.info("computed and stored %s analytics in %.2f s", key.kind, seconds)
        return value

    def _release(self, digest: str) -> None:
        try:
            self.store.release_analytics(digest, self.owner)
        except Exception:  # the lease expires on its own
            if not self._stopped.is_set():
                log.warning("could not release the analytics claim %s", digest, exc_info=True)

    def _hold(self, digest: str) -> None:
        with self._lock:
            self._held.add(digest)
            if self._heart is None:
                self._heart = threading.Thread(
                    target=self._beat, name="sovrisk-analytics-heartbeat", daemon=True
                )
                self._heart.start()

    def _beat(self) -> None:
        while not self._stopped.wait(self.heartbeat_s):
            with self._lock:
                held = sorted(self._held)
            if not held:
                continue
            try:
                self.store.heartbeat_analytics(held, self.owner, time.time())
            except Exception:  # a missed beat is harmless unless the lease runs out
                log.warning("analytics heartbeat failed", exc_info=True)
