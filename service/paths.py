"""Where sovrisk finds its bundled data and keeps its state: one answer for every command.

Imported by the CLI before anything heavy, so it uses the standard library only.

* The bundled dataset ships with the package (``data/`` in a checkout).
* The state directory (the SQLite store and ``tokens.toml``) is absolute, so a command run
  from another folder reads the same store ``sovrisk serve`` serves instead of creating an
  empty one where it happens to run: ``$SOVRISK_STATE_DIR``, else ``var/`` of the checkout
  when running from one (what ``make run`` serves), else ``$XDG_DATA_HOME/sovrisk``
  (``~/.local/share/sovrisk``).
* The store is ``$SOVRISK_STORE`` or the state directory; tokens live beside a SQLite store.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent

#: The bundled default dataset.
DEFAULT_DATA_DIR = _PACKAGE_ROOT / "data"

TOKENS_FILE_NAME = "tokens.toml"
SQLITE_FILE = "sovrisk.db"


def in_checkout() -> bool:
    """True when running from a source checkout (its ``pyproject.toml`` beside the packages)."""
    return (_PACKAGE_ROOT / "pyproject.toml").is_file() and DEFAULT_DATA_DIR.is_dir()


def state_dir() -> Path:
    """The absolute directory of the default store and token file."""
    env = os.environ.get("SOVRISK_STATE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    if in_checkout():
        return _PACKAGE_ROOT / "var"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser().resolve() / "sovrisk"


def default_store() -> str:
    """The store every command uses unless told otherwise (``--store``)."""
    return os.environ.get("SOVRISK_STORE") or str(state_dir())


def is_postgres(store: str) -> bool:
    return store.startswith(("postgresql://", "postgres://"))


def sqlite_path(store: str) -> Path:
    """The SQLite file of a store URL or path (a directory holds ``sovrisk.db``)."""
    path = Path(store.removeprefix("sqlite:///").removeprefix("sqlite://")).expanduser()
    if path.is_dir() or not path.suffix:
        path = path / SQLITE_FILE
    return path.resolve()


def store_exists(store: str) -> bool:
    """False for a SQLite store whose file does not exist yet (PostgreSQL: always True)."""
    return is_postgres(store) or sqlite_path(store).is_file()


def default_tokens_file(store: str | None = None) -> Path:
    """``$SOVRISK_TOKENS_FILE``, else ``tokens.toml`` beside the SQLite store (so the server and
    ``sovrisk token create`` agree on it for any ``--store``), else in the state directory."""
    env = os.environ.get("SOVRISK_TOKENS_FILE")
    if env:
        return Path(env).expanduser().resolve()
    store = store or default_store()
    if is_postgres(store):
        return state_dir() / TOKENS_FILE_NAME
    return sqlite_path(store).parent / TOKENS_FILE_NAME


def display(path: str | Path) -> str:
    """A path as short as it can be said: relative to the working directory when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)
