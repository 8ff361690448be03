"""AIP-158 pagination: opaque page tokens bound to the query and the graph version.

A token encodes the offset, the graph version it was issued for and a digest of the request's
other fields, so reusing it with a different filter or after the graph changed is rejected
with INVALID_ARGUMENT instead of silently returning the wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sovrisk.models.errors import FieldViolation, InvalidParameterError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
#: Longer than any token this service issues: anything longer is not one of ours.
MAX_TOKEN_CHARS = 512

T = TypeVar("T")


def query_digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_page_token: str
    total_size: int


def paginate(
    items: Sequence[T], *, page_size: int, page_token: str, version: str, digest: str
) -> Page[T]:
    """Slice ``items`` for one page; raises InvalidParameterError for a bad size or token."""
    if page_size < 0:
        raise InvalidParameterError(
            [FieldViolation("page_size", str(page_size), "must not be negative")]
        )
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    offset = _decode(page_token, version, digest) if page_token else 0
    end = offset + size
    token = _encode(end, version, digest) if end < len(items) else ""
    return Page(items[offset:end], token, len(items))


def _encode(offset: int, version: str, digest: str) -> str:
    blob = json.dumps({"o": offset, "v": version, "q": digest}, separators=(",", ":"))
    return base64.urlsafe_b64encode(blob.encode()).decode().rstrip("=")


def _decode(token: str, version: str, digest: str) -> int:
    def bad(why: str) -> InvalidParameterError:
        return InvalidParameterError([FieldViolation("page_token", token, why)])

    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise bad("is not a page token issued by this service")
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise bad("is not a page token issued by this service") from exc
    offset = data.get("o") if isinstance(data, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < 2**53:
        raise bad("is not a page token issued by this service")
    if data.get("v") != version:
        raise bad("was issued for another graph version; start again without a token")
    if data.get("q") != digest:
        raise bad("was issued for a request with different parameters")
    return int(data["o"])
