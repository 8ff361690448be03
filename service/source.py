"""What an analysis command reads: the versioned store (by default the one ``sovrisk serve``
and ``make run`` serve) or a dataset folder the user names.

One source of truth: ``score``, ``scenario``, ``simulate``, ``trajectory``, ``report``,
``screen`` and ``validity`` answer from the store's latest version (or ``--graph-version N``)
unless ``--data DIR`` says otherwise, and every one of them says which it used, so a batch
report never silently leaves out a committed edit.

Light at import (the CLI builds its parser from it); the engine is imported when used.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sovrisk.service.paths import (
    DEFAULT_DATA_DIR,
    default_store,
    display,
    is_postgres,
    store_exists,
)

if TYPE_CHECKING:
    from sovrisk.models.graph.dataset import DatasetFiles
    from sovrisk.models.scoring.risk_engine import RiskEngine
    from sovrisk.service.client import SovriskClient


@dataclass(frozen=True)
class Source:
    """The engine a command answers from and how to say where it came from."""

    engine: RiskEngine
    #: ``graph/versions/N`` for a stored version, "" for a folder.
    graph_version: str
    #: One line for the user: which store and version, or which folder.
    label: str


def add_source_arguments(parser: argparse.ArgumentParser, *, server: bool = False) -> None:
    """``--store`` / ``--graph-version`` / ``--data`` (and ``--server``) on a command."""
    group = parser.add_argument_group(
        "what to read (default: the latest version in the store `sovrisk serve` serves)"
    )
    group.add_argument(
        "--store",
        default=None,
        help="graph store: a directory or .db file (SQLite) or postgresql://... "
        f"(env SOVRISK_STORE; default {display(default_store())})",
    )
    group.add_argument(
        "--graph-version",
        type=int,
        default=None,
        metavar="N",
        help="a stored version's number (default: the latest)",
    )
    group.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="read this dataset folder instead of the store (e.g. data/ for the bundled one)",
    )
    if server:
        group.add_argument(
            "--server",
            default=None,
            metavar="HOST:PORT",
            help="ask a running sovrisk server instead (gRPC; it answers from its store)",
        )
        add_server_client_arguments(group)


def add_server_client_arguments(group: argparse._ActionsContainer, *, token: bool = True) -> None:
    """How ``--server`` is reached: TLS (``--tls-ca``, and ``--tls-cert``/``--tls-key`` for
    a server that requires client certificates) and a bearer token."""
    group.add_argument(
        "--tls-ca",
        default=None,
        metavar="FILE",
        help="with --server: connect over TLS, checking the server's certificate against this "
        "PEM CA (docs/operations.md, TLS)",
    )
    group.add_argument(
        "--tls-cert",
        default=None,
        metavar="FILE",
        help="with --server: this PEM client certificate, for a server that requires one "
        "(mutual TLS; needs --tls-key)",
    )
    group.add_argument(
        "--tls-key", default=None, metavar="FILE", help="the client certificate's PEM key"
    )
    if token:
        group.add_argument(
            "--token",
            default=os.environ.get("SOVRISK_TOKEN", ""),
            help="with --server: bearer token, for a server run with --require-read-token "
            "(env SOVRISK_TOKEN)",
        )


def server_client(args: argparse.Namespace) -> SovriskClient:
    """The typed client for ``--server`` with the command's TLS and token arguments."""
    from sovrisk.service.client import SovriskClient

    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if bool(cert) != bool(key):
        raise SystemExit("error: --tls-cert and --tls-key go together: give both or neither")
    files = {"--tls-ca": getattr(args, "tls_ca", None), "--tls-cert": cert, "--tls-key": key}
    for flag, path in files.items():
        if path and not Path(path).is_file():
            raise SystemExit(f"error: {flag} {path}: no such file")
    return SovriskClient(
        args.server,
        token=getattr(args, "token", None) or None,
        tls=bool(files["--tls-ca"] or cert),
        root_certificates=files["--tls-ca"],
        certificate_chain=cert,
        private_key=key,
    )


def open_source(args: argparse.Namespace, *, quiet: bool = False) -> Source:
    """The engine for the command's ``--data`` / ``--store`` / ``--graph-version``; the line
    saying which is printed to stderr (so JSON on stdout stays clean) unless ``quiet``."""
    data = getattr(args, "data", None)
    version = getattr(args, "graph_version", None)
    if data and version is not None:
        raise SystemExit("error: --graph-version reads a stored version; it cannot go with --data")
    source = _from_folder(data) if data else _from_store(args.store or default_store(), version)
    if not quiet:
        print(f"reading {source.label}", file=sys.stderr)
    return source


def _from_folder(path: str, note: str = "") -> Source:
    from sovrisk.models.graph.bundle import load_bundle
    from sovrisk.models.scoring.risk_engine import RiskEngine

    engine = RiskEngine(*load_bundle(path))
    bundled = Path(path).resolve() == DEFAULT_DATA_DIR.resolve()
    what = "the bundled dataset" if bundled else f"dataset folder {display(path)}"
    label = f"{what} ({engine.graph.version_id}){note}"
    return Source(engine, "", label)


def _from_store(store_url: str, version_number: int | None) -> Source:
    where = store_url if is_postgres(store_url) else display(store_url)
    if not store_exists(store_url):
        if version_number is not None:
            raise SystemExit(f"error: store {where} does not exist (no version {version_number})")
        return _from_folder(
            str(DEFAULT_DATA_DIR),
            f"; store {where} does not exist yet (`sovrisk serve` seeds it on first start)",
        )
    from sovrisk.service.registry import GraphRegistry
    from sovrisk.service.store import open_store

    store = open_store(store_url)
    registry = GraphRegistry(store, workers=1)
    try:
        latest = store.latest()
        if latest is None:
            return _from_folder(str(DEFAULT_DATA_DIR), f"; store {where} holds no version yet")
        record = store.get(version_number) if version_number is not None else latest
        engine = registry.engine_at(record.id)
    finally:
        registry.close()
    newest = "latest" if record.id == latest.id else f"latest is {latest.name}"
    label = (
        f"{record.name} ({newest}) of store {where}: dataset {engine.graph.version_id}, "
        f"committed {record.created_at:%Y-%m-%d %H:%M} by {record.author}"
        + (f": {record.message}" if record.message else "")
    )
    return Source(engine, record.name, label)


def open_files(args: argparse.Namespace) -> tuple[DatasetFiles, str]:
    """The dataset files behind :func:`open_source` without building the engine (the
    listings: a fraction of a second instead of seconds), and the line saying which."""
    from sovrisk.models.graph.dataset import DatasetFiles

    data = getattr(args, "data", None)
    version = getattr(args, "graph_version", None)
    if data:
        return DatasetFiles.from_directory(data), f"dataset folder {display(data)}"
    store_url = args.store or default_store()
    where = store_url if is_postgres(store_url) else display(store_url)
    if not store_exists(store_url):
        bundled = DatasetFiles.from_directory(DEFAULT_DATA_DIR)
        return bundled, f"the bundled dataset (store {where} does not exist yet)"
    from sovrisk.service.store import open_store

    store = open_store(store_url)
    try:
        latest = store.latest()
        if latest is None:
            bundled = DatasetFiles.from_directory(DEFAULT_DATA_DIR)
            return bundled, f"the bundled dataset (store {where} holds no version yet)"
        record = store.get(version) if version is not None else latest
        return store.files(record.id), f"{record.name} of store {where}"
    finally:
        store.close()
