"""Shared fixtures for the domain tests.

``tests/fixtures/small`` is a hand-computable AND/OR graph (provider p, chips a and b, fabs
f1 and f2, memories m1 and m2, litho tool t); every number the engine tests assert is worked
out from it by hand. Tests that need bad data copy it to ``tmp_path`` with :func:`small_copy`
and corrupt one file.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sovrisk.models.errors import DataIssue, DataValidationError
from sovrisk.models.graph.loader import load_dataset
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring.params import ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine

FIXTURES = Path(__file__).parent / "fixtures"
SMALL = FIXTURES / "small"
#: The fixture's own as_of (dataset.toml): the default scoring date.
SMALL_AS_OF = dt.date(2024, 6, 1)


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Commands default to the checkout's var/ store: tests get their own, empty one, so a
    developer's store neither leaks into a test nor is written by one."""
    saved = {k: os.environ.get(k) for k in ("SOVRISK_STATE_DIR", "SOVRISK_STORE")}
    os.environ["SOVRISK_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    os.environ.pop("SOVRISK_STORE", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class DatasetCopy:
    """A writable copy of a fixture dataset with small editing helpers.

    Every edit returns the 1-based physical line number it touched, so a test can assert the
    loader reports exactly that line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, name: str) -> str:
        return (self.path / name).read_text(encoding="utf-8")

    def write(self, name: str, text: str) -> None:
        (self.path / name).write_text(text, encoding="utf-8")

    def line_of(self, name: str, startswith: str) -> int:
        """Physical line number (1-based) of the only line starting with ``startswith``."""
        hits = [
            n
            for n, line in enumerate(self.read(name).splitlines(), start=1)
            if line.startswith(startswith)
        ]
        assert len(hits) == 1, f"{startswith!r} matches lines {hits} of {name}"
        return hits[0]

    def replace(self, name: str, old: str, new: str) -> int:
        """Replace the one occurrence of ``old``; return the line it starts on."""
        text = self.read(name)
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {name}"
        line = text[: text.index(old)].count("\n") + 1
        self.write(name, text.replace(old, new))
        return line

    def delete_line(self, name: str, startswith: str) -> int:
        line = self.line_of(name, startswith)
        lines = self.read(name).splitlines(keepends=True)
        del lines[line - 1]
        self.write(name, "".join(lines))
        return line

    def append(self, name: str, row: str) -> int:
        """Append ``row`` as a new last line; return its line number."""
        text = self.read(name)
        if not text.endswith("\n"):
            text += "\n"
        self.write(name, text + row + "\n")
        return len((text + row).splitlines())

    def load(self, **kwargs: bool) -> SupplyGraph:
        return load_dataset(self.path, **kwargs)

    def issues(self, **kwargs: bool) -> list[DataIssue]:
        """The issues the loader raises (it must raise)."""
        with pytest.raises(DataValidationError) as info:
            load_dataset(self.path, **kwargs)
        assert info.value.issues, "DataValidationError without issues"
        return info.value.issues


def copy_dataset(source: Path, target: Path) -> DatasetCopy:
    shutil.copytree(source, target)
    return DatasetCopy(target)


@pytest.fixture
def small_copy(tmp_path: Path) -> DatasetCopy:
    """A fresh copy of tests/fixtures/small in tmp_path, safe to corrupt."""
    return copy_dataset(SMALL, tmp_path / "small")


@pytest.fixture
def dataset_copy(tmp_path: Path) -> Callable[[Path], DatasetCopy]:
    """Copy any fixture folder to tmp_path: ``dataset_copy(FIXTURES / "commented")``."""

    def make(source: Path) -> DatasetCopy:
        return copy_dataset(source, tmp_path / source.name)

    return make


@pytest.fixture(scope="session")
def small_graph() -> SupplyGraph:
    return load_dataset(SMALL)


@pytest.fixture(scope="session")
def small_engine(small_graph: SupplyGraph) -> RiskEngine:
    return RiskEngine(small_graph)


@pytest.fixture(scope="session")
def default_params() -> ScoringParams:
    # The fixture's hand computations divide the structural sum by K = 10 (the fixture has
    # only 7 supplier nodes); the default K is asserted separately in test_engine.py.
    return ScoringParams.build(as_of=SMALL_AS_OF, top_k=10)


# -- graph stores: every store test runs on SQLite and on PostgreSQL --------------------------

#: Set by scripts/with_postgres.sh (which `make test` uses).
POSTGRES_URL = os.environ.get("SOVRISK_TEST_POSTGRES_URL", "")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file, or a private schema of the test PostgreSQL."""
    if request.param == "sqlite":
        yield str(tmp_path / "store" / "sovrisk.db")
        return
    with postgres_schema("store") as url:
        yield url


@contextmanager
def postgres_schema(purpose: str) -> Iterator[str]:
    """The URL of a private, new schema of the test PostgreSQL, dropped afterwards; skips
    without PostgreSQL (fails under CI, which must run ``purpose`` tests on it)."""
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail(
                f"CI must run the {purpose} tests on PostgreSQL: use scripts/with_postgres.sh"
            )
        pytest.skip("no PostgreSQL: run the tests through scripts/with_postgres.sh")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        # A server's background work (version warm-up, the store poller) may still hold a lock
        # in the schema for a moment after the test: the DROP is then the deadlock victim, and
        # a retry once it lets go succeeds.
        for attempt in range(5):
            try:
                with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
                break
            except psycopg.errors.DeadlockDetected:
                if attempt == 4:
                    raise
                time.sleep(0.5)
