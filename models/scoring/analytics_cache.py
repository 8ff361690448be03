"""Where an engine keeps the analytics it computes once per version.

The resilience LPs, the tail simulation, the cut sets, the published assessments and the
score intervals of a version take seconds to compute and are a pure function of the
dataset's content, the model and the parameters. A :class:`RiskEngine` asks its
:class:`AnalyticsCache` for each of them under an :class:`AnalyticsKey` naming exactly
that (content-addressed: two versions with the same content share their analytics, and a
new model version never reads an old one's). The domain only defines the contract; the
service's store-backed cache (``sovrisk.service.stored_analytics``) keeps them in the
SQLite or PostgreSQL store beside the versions, so a restarted process or another replica
reads them back instead of recomputing, and claims a missing one so that two replicas never
compute the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AnalyticsKey:
    """One result: its kind ("resilience", "tail", "assessment", ...), the content key of the
    engine it belongs to (:attr:`RiskEngine.content_key`), and the parameters that select
    it within the engine (a provider, the scoring parameters, a seed)."""

    kind: str
    content: str
    parts: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        """sha256 of the whole key (NUL-separated: no two keys share a serialisation)."""
        return hashlib.sha256(
            "\0".join((self.kind, self.content, *self.parts)).encode()
        ).hexdigest()


class AnalyticsCache(Protocol):
    """Returns the stored result under ``key``, or computes it with ``compute``, stores it
    and returns it. Implementations may call ``compute`` more than once across processes
    only when their store is unreachable (they then compute without storing)."""

    def fetch(self, key: AnalyticsKey, compute: Callable[[], T]) -> T: ...


class ComputeAlways:
    """No persistence: every engine computes its own analytics (the default, and what
    what-if engines use: their results belong to one request)."""

    def fetch(self, key: AnalyticsKey, compute: Callable[[], T]) -> T:
        return compute()


COMPUTE_ALWAYS = ComputeAlways()
