"""Bearer tokens and roles for the editing RPCs.

Tokens come from a TOML file (``--tokens``, default ``<state dir>/tokens.toml``) holding only
their sha256, never the token itself, and/or from the ``SOVRISK_TOKENS`` environment
variable (``principal:role:token`` entries separated by commas, for containers and tests).
``sovrisk token create`` makes a token and appends its hash to the file; the file is re-read
when it changes, so no restart is needed. The principal recorded as a version's author is
always the token's, never a string the client sends.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import os
import secrets
import threading
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("sovrisk.auth")

TOKENS_ENV = "SOVRISK_TOKENS"


class Role(enum.IntEnum):
    """Ordered: a role may do everything the roles below it may."""

    READER = 1
    EDITOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}: reader, editor or admin") from None


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role


class AuthError(Exception):
    """Base of the two refusals below."""


class Unauthenticated(AuthError):
    """No token, a malformed header, or a token nobody issued."""


class PermissionDenied(AuthError):
    """A valid token whose role is below what the method needs."""

    def __init__(self, principal: Principal, needed: Role) -> None:
        self.principal = principal
        self.needed = needed
        super().__init__(
            f"{principal.name} has role {principal.role.name.lower()}; "
            f"this method needs {needed.name.lower()}"
        )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _parse_env(value: str) -> dict[str, Principal]:
    tokens: dict[str, Principal] = {}
    for entry in filter(None, (e.strip() for e in value.split(","))):
        name, role, token = entry.split(":", 2)
        tokens[hash_token(token)] = Principal(name, Role.parse(role))
    return tokens


def _parse_file(path: Path) -> dict[str, Principal]:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    tokens: dict[str, Principal] = {}
    for k, entry in enumerate(raw.get("tokens", [])):
        try:
            tokens[str(entry["sha256"]).lower()] = Principal(
                str(entry["principal"]), Role.parse(str(entry["role"]))
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: tokens[{k}]: {exc}") from exc
    return tokens


class TokensUnavailable(AuthError):
    """The token file cannot be read and no good copy of it was ever loaded: the server
    answers UNAVAILABLE (and logs why) rather than guess."""


class TokenAuthenticator:
    """Resolves ``authorization: Bearer <token>`` metadata to a :class:`Principal`.

    The file is re-read when it changes: a deleted file means no file tokens (revoked at
    once); a file that does not parse keeps the last good set (logged on the server, never
    sent to clients), or, with none, makes writes UNAVAILABLE.
    """

    def __init__(self, path: Path | None = None, env: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._env_tokens = _parse_env((os.environ if env is None else env).get(TOKENS_ENV, ""))
        self._file_tokens: dict[str, Principal] = {}
        self._mtime: float | None = None
        self._broken = False
        self._loaded_once = False
        self._lock = threading.Lock()

    def _tokens(self) -> dict[str, Principal]:
        with self._lock:
            if self.path is None or not self.path.is_file():
                self._file_tokens, self._mtime, self._broken = {}, None, False
            else:
                mtime = self.path.stat().st_mtime
                if mtime != self._mtime:
                    self._mtime = mtime
                    try:
                        self._file_tokens, self._broken = _parse_file(self.path), False
                        self._loaded_once = True
                    except (ValueError, OSError, UnicodeDecodeError) as exc:
                        self._broken = True  # keep the last good set
                        log.error(
                            "token file %s is invalid, kept the last good set: %s", self.path, exc
                        )
                if self._broken and not self._loaded_once:
                    raise TokensUnavailable(f"the token file {self.path.name} cannot be read")
            return {**self._file_tokens, **self._env_tokens}

    def token_count(self) -> int:
        """How many tokens are valid now (raises :class:`TokensUnavailable`)."""
        return len(self._tokens())

    @property
    def configured(self) -> bool:
        try:
            return bool(self._tokens())
        except TokensUnavailable:
            return False

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> Principal:
        """The principal of the request's bearer token; :class:`Unauthenticated` otherwise."""
        header = next((v for k, v in metadata or () if k.lower() == "authorization"), None)
        if header is None:
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
        text = header.decode() if isinstance(header, bytes) else header
        scheme, _, token = text.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the authorization metadata must be 'Bearer <token>'")
        digest = hash_token(token.strip())
        for known, principal in self._tokens().items():
            if hmac.compare_digest(known, digest):
                return principal
        raise Unauthenticated("unknown bearer token")

    def authorize(
        self, metadata: Sequence[tuple[str, str | bytes]] | None, needed: Role
    ) -> Principal:
        principal = self.authenticate(metadata)
        if principal.role < needed:
            raise PermissionDenied(principal, needed)
        return principal


def create_token(path: Path, principal: str, role: Role) -> str:
    """Make a new random token, append its hash to ``path`` and return the token (shown
    once: only the hash is kept)."""
    if (
        not principal
        or len(principal) > 200
        or any(c in principal for c in '"\\')
        or any(ord(c) < 32 or ord(c) == 127 for c in principal)
    ):
        raise ValueError(
            f"bad principal name {principal!r}: 1-200 characters, no quotes, backslashes or "
            "control characters"
        )
    token = "srk_" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = (
        f'\n[[tokens]]\nprincipal = "{principal}"\nrole = "{role.name.lower()}"\n'
        f'sha256 = "{hash_token(token)}"\n'
    )
    header = (
        ""
        if path.exists()
        else "# sovrisk bearer tokens (sha256 only). Add with: sovrisk token create\n"
    )
    with path.open("a", encoding="utf-8") as handle:
        handle.write(header + entry)
    os.chmod(path, 0o600)
    return token
