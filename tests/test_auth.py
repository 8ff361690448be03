"""Bearer tokens from the token file: revoked when the file goes, the last good set kept when
it breaks, and names that cannot corrupt it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sovrisk.service.auth import (
    Role,
    TokenAuthenticator,
    TokensUnavailable,
    Unauthenticated,
    create_token,
)


def _bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def _touch_later(path: Path) -> None:
    """A new mtime even within the file system's timestamp resolution."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_deleting_the_token_file_revokes_its_tokens_at_once(tmp_path: Path) -> None:
    file = tmp_path / "tokens.toml"
    token = create_token(file, "ann", Role.EDITOR)
    auth = TokenAuthenticator(file, env={})
    assert auth.authenticate(_bearer(token)).name == "ann"
    file.unlink()
    with pytest.raises(Unauthenticated):
        auth.authenticate(_bearer(token))


def test_a_broken_token_file_keeps_the_last_good_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "tokens.toml"
    token = create_token(file, "ann", Role.EDITOR)
    auth = TokenAuthenticator(file, env={})
    assert auth.authenticate(_bearer(token)).name == "ann"
    file.write_text("[[tokens]\nprincipal = 'half a table", encoding="utf-8")
    _touch_later(file)
    assert auth.authenticate(_bearer(token)).name == "ann"  # still the last good set
    assert "is invalid, kept the last good set" in caplog.text


def test_a_token_file_broken_from_the_start_is_unavailable_not_a_parser_error(
    tmp_path: Path,
) -> None:
    file = tmp_path / "tokens.toml"
    file.write_text("not = [toml", encoding="utf-8")
    auth = TokenAuthenticator(file, env={})
    assert not auth.configured
    with pytest.raises(TokensUnavailable) as info:
        auth.authenticate(_bearer("srk_whatever"))
    assert str(info.value) == "the token file tokens.toml cannot be read"  # no parser text


@pytest.mark.parametrize("name", ["evil\x01name", "new\nline", 'quo"te', "", "x" * 201])
def test_a_principal_that_could_corrupt_the_file_is_refused(tmp_path: Path, name: str) -> None:
    file = tmp_path / "tokens.toml"
    with pytest.raises(ValueError, match="bad principal name"):
        create_token(file, name, Role.READER)
    assert not file.exists()
