"""Did-you-mean: the ids a mistyped or guessed identifier most likely meant.

A user types ``amazon`` for ``aws``, ``cowos`` for ``tsmc-cowos-l`` or ``TW`` for ``TWN``.
Close ids by edit similarity (:mod:`difflib`), then ids whose display names or owners contain
the query as a word or word prefix, best first, at most ``limit``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

_WORD = re.compile(r"[a-z0-9]+")

#: Edit similarity at which an id counts as a near miss (difflib's ratio, 0-1).
ID_CUTOFF = 0.6


def suggest(query: str, names: Mapping[str, Iterable[str]], *, limit: int = 3) -> tuple[str, ...]:
    """Ids of ``names`` (id -> its display names, owner, aliases) close to ``query``."""
    q = query.strip().lower().removeprefix("providers/").removeprefix("nodes/")
    if not q:
        return ()
    by_lower = {i.lower(): i for i in names}
    close = [
        by_lower[hit]
        for hit in difflib.get_close_matches(q, list(by_lower), n=limit, cutoff=ID_CUTOFF)
    ]
    q_words = _WORD.findall(q)
    every: list[str] = []  # every query word starts a word of the id, name or owner
    some: list[str] = []  # some query word (3+ letters) is a whole word of them
    for node_id, labels in names.items():
        words = {w for label in labels for w in _WORD.findall(label.lower())}
        words.update(_WORD.findall(node_id.lower()))
        if q_words and all(any(w.startswith(qw) for w in words) for qw in q_words):
            every.append(node_id)
        elif any(len(qw) >= 3 and qw in words for qw in q_words):
            some.append(node_id)

    def nearest(ids: list[str]) -> list[str]:
        return sorted(ids, key=lambda i: -difflib.SequenceMatcher(None, q, i.lower()).ratio())

    out = [*nearest(every), *close, *nearest(some)]
    return tuple(dict.fromkeys(out))[:limit]


def iso3_of(text: str) -> str | None:
    """The ISO 3166-1 alpha-3 code of an alpha-2 code or a country name (``TW`` and
    ``Taiwan`` -> ``TWN``), by pycountry's ISO tables; None if it is neither."""
    import pycountry  # its tables load on first use only

    text = text.strip()
    found = None
    if len(text) == 2:
        found = pycountry.countries.get(alpha_2=text.upper())
    elif len(text) > 3:
        try:
            found = pycountry.countries.lookup(text)
        except LookupError:
            found = None
    return str(found.alpha_3) if found is not None else None
