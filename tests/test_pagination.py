"""Page tokens: slicing, and rejection of foreign, stale or tampered tokens."""

from __future__ import annotations

import base64
import json

import pytest

from sovrisk.models.errors import InvalidParameterError
from sovrisk.service.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, paginate, query_digest

ITEMS = list(range(7))


def test_pages_walk_the_whole_list_once() -> None:
    digest = query_digest("kind", "")
    seen: list[int] = []
    token = ""
    pages = 0
    while True:
        page = paginate(ITEMS, page_size=3, page_token=token, version="v1", digest=digest)
        seen += page.items
        pages += 1
        assert page.total_size == 7
        token = page.next_page_token
        if not token:
            break
    assert seen == ITEMS
    assert pages == 3  # 3 + 3 + 1


def test_zero_page_size_means_default_and_is_capped() -> None:
    many = list(range(MAX_PAGE_SIZE + 10))
    assert len(paginate(many, page_size=0, page_token="", version="v", digest="d").items) == (
        DEFAULT_PAGE_SIZE
    )
    assert len(paginate(many, page_size=10**6, page_token="", version="v", digest="d").items) == (
        MAX_PAGE_SIZE
    )


def _violation(exc: pytest.ExceptionInfo[InvalidParameterError]) -> tuple[str, str]:
    v = exc.value.violations[0]
    return v.field, v.description


@pytest.mark.parametrize("token", ["not-a-token", "!!!", base64.urlsafe_b64encode(b"[1]").decode()])
def test_garbage_tokens_are_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidParameterError) as exc:
        paginate(ITEMS, page_size=2, page_token=token, version="v1", digest="d")
    field, description = _violation(exc)
    assert field == "page_token"
    assert "not a page token" in description
    assert exc.value.violations[0].value == token


def test_token_from_another_version_or_query_is_rejected() -> None:
    first = paginate(ITEMS, page_size=2, page_token="", version="v1", digest="q1")
    with pytest.raises(InvalidParameterError) as exc:
        paginate(ITEMS, page_size=2, page_token=first.next_page_token, version="v2", digest="q1")
    assert "another graph version" in _violation(exc)[1]
    with pytest.raises(InvalidParameterError) as exc:
        paginate(ITEMS, page_size=2, page_token=first.next_page_token, version="v1", digest="q2")
    assert "different parameters" in _violation(exc)[1]


def test_negative_offset_and_negative_size_are_rejected() -> None:
    forged = base64.urlsafe_b64encode(json.dumps({"o": -1, "v": "v1", "q": "d"}).encode()).decode()
    with pytest.raises(InvalidParameterError):
        paginate(ITEMS, page_size=2, page_token=forged, version="v1", digest="d")
    with pytest.raises(InvalidParameterError) as exc:
        paginate(ITEMS, page_size=-1, page_token="", version="v1", digest="d")
    assert _violation(exc)[0] == "page_size"
