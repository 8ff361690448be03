"""``sovrisk import | export | history | token``: the versioned store from the command line.

Import and export work on a running server over gRPC (``--server``, with a bearer token:
the version's author is the token's principal), or directly on a store the operator can
open (``--store``; the author is then ``local:<os user>``, which only someone with the
store's files or credentials can be).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sovrisk.service.paths import default_store, default_tokens_file, display
from sovrisk.service.source import add_server_client_arguments, server_client

if TYPE_CHECKING:
    from sovrisk.models.graph.dataset import DatasetFiles, RecordChange
    from sovrisk.service.registry import GraphRegistry
    from sovrisk.service.store import VersionRecord

FORMATS = ("bundle", "eto", "json", "edges")
CHUNK = 1024 * 1024
#: An import that removes more than this share of the current nodes replaces the graph rather
#: than editing it, and needs ``--replace`` (so does any import that removes a provider).
REPLACE_SHARE = 0.25
ROLES = ("reader", "editor", "admin")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def store_or_server(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--store",
            default=default_store(),
            help="graph store to open directly (directory, .db file or postgresql://...; env "
            f"SOVRISK_STORE; default {display(default_store())})",
        )
        p.add_argument("--server", help="use a running server instead (host:port)")
        p.add_argument(
            "--token",
            default=os.environ.get("SOVRISK_TOKEN", ""),
            help="bearer token for --server (env SOVRISK_TOKEN)",
        )
        add_server_client_arguments(p, token=False)

    imp = sub.add_parser("import", help="commit a dataset folder as a new graph version")
    imp.add_argument(
        "dir", help="dataset folder (docs/data-format.md), ETO data folder, or JSON file"
    )
    imp.add_argument(
        "--format",
        choices=FORMATS,
        default="bundle",
        help="bundle: a CSV dataset folder; eto: the CSET/ETO Chip Explorer CSVs; "
        "json: DatasetRecords in the proto JSON mapping; edges: a large graph as an edge "
        "table FILE.npz, .parquet or .csv (docs/large-graphs.md), scored by structure alone",
    )
    imp.add_argument("--message", "-m", required=True, help="why: recorded on the version")
    imp.add_argument("--dry-run", action="store_true", help="validate and list changes only")
    imp.add_argument(
        "--replace",
        action="store_true",
        help="allow an import that replaces the graph (removes a provider or more than "
        f"{REPLACE_SHARE:.0%} of the nodes, e.g. --format eto); undo with `sovrisk revert`",
    )
    store_or_server(imp)

    rev = sub.add_parser(
        "revert",
        help="commit an earlier version's dataset again as the newest version (undo)",
        description="History is immutable: reverting commits a new version whose dataset is "
        "that of VERSION; the versions in between stay readable.",
    )
    rev.add_argument("version", type=int, help="the version number to go back to")
    rev.add_argument("--message", "-m", default="", help="why (default: 'revert to ...')")
    store_or_server(rev)

    exp = sub.add_parser("export", help="write a graph version's dataset files to a folder")
    exp.add_argument("dir", help="output folder (bundle; dataset files replaced) or file (json)")
    exp.add_argument("--format", choices=("bundle", "json"), default="bundle")
    exp.add_argument("--version", type=int, default=None, help="version number (default latest)")
    store_or_server(exp)

    hist = sub.add_parser("history", help="list graph versions and providers' score history")
    hist.add_argument("provider", nargs="?", help="provider id (e.g. aws): its score history")
    hist.add_argument(
        "--store",
        default=default_store(),
        help="graph store (directory, .db file or postgresql://...; env SOVRISK_STORE; "
        f"default {display(default_store())})",
    )
    hist.add_argument("--limit", type=int, default=20, help="versions to show (newest first)")

    tok = sub.add_parser("token", help="manage bearer tokens")
    tok_sub = tok.add_subparsers(dest="token_command", required=True)
    create = tok_sub.add_parser("create", help="create a token (printed once; only its hash kept)")
    create.add_argument("--principal", required=True, help="who the token is (e.g. alice)")
    create.add_argument("--role", choices=ROLES, default="editor")
    create.add_argument(
        "--store",
        default=default_store(),
        help="the store whose server should accept the token: the file is tokens.toml beside "
        f"it (default {display(default_tokens_file())})",
    )
    create.add_argument(
        "--file",
        default=None,
        help="token file (env SOVRISK_TOKENS_FILE; default: beside --store)",
    )


def _read_folder(path: str, fmt: str) -> DatasetFiles:
    from sovrisk.models.graph.dataset import DatasetFiles
    from sovrisk.service import dataset_json

    if fmt == "eto":
        from sovrisk.models.graph.eto import convert_eto

        return DatasetFiles(convert_eto(path))
    if fmt == "json":
        return dataset_json.loads(Path(path).read_text(encoding="utf-8"))
    if fmt == "edges":
        from sovrisk.models.engine.edgetable import (
            EdgeTableError,
            edge_table_bytes,
            read_edge_table,
        )
        from sovrisk.models.graph.dataset import EDGE_TABLE_FILE

        try:
            table = read_edge_table(path)
            table.validate()
        except (EdgeTableError, OSError) as exc:
            raise SystemExit(f"sovrisk import: {exc}") from None
        return DatasetFiles({EDGE_TABLE_FILE: edge_table_bytes(table)})
    return DatasetFiles.from_directory(path)


def _write(files: DatasetFiles, path: str, fmt: str) -> None:
    from sovrisk.service import dataset_json

    if fmt == "json":
        Path(path).write_text(dataset_json.dumps(files), encoding="utf-8")
    else:
        files.write(path)


def _print_changes(changes: Sequence[RecordChange], limit: int = 30) -> None:
    for c in changes[:limit]:
        cols = ", ".join(f.column for f in c.fields[:6])
        print(f"  {c.op:8} {c.label}" + (f" ({cols})" if c.op == "changed" else ""))
    if len(changes) > limit:
        print(f"  ... and {len(changes) - limit} more")


def _version_line(v: VersionRecord) -> str:
    return (
        f"{v.name:20} {v.created_at.isoformat()} {v.author:16} "
        f"{v.change_count:5} changes  {v.content_hash[:12]}  {v.message}"
    )


@dataclass(frozen=True)
class ImportSummary:
    """What an import would do to the latest version, counted before anything is stored."""

    changes: tuple[tuple[str, str, tuple[str, ...]], ...]  # (kind, op, key)
    nodes_before: int
    providers_before: frozenset[str]

    @property
    def removed_nodes(self) -> list[str]:
        return [key[0] for kind, op, key in self.changes if kind == "node" and op == "removed"]

    @property
    def removed_providers(self) -> list[str]:
        return sorted(set(self.removed_nodes) & self.providers_before)

    @property
    def replaces_graph(self) -> bool:
        removed = len(self.removed_nodes)
        return bool(self.removed_providers) or removed > REPLACE_SHARE * max(1, self.nodes_before)

    def lines(self) -> list[str]:
        counts = Counter((kind, op) for kind, op, _ in self.changes)
        by_op = {op: sum(n for (_, o), n in counts.items() if o == op) for op in _OPS}
        lines = [
            f"{len(self.changes)} record changes: " + ", ".join(f"{by_op[op]} {op}" for op in _OPS)
        ]
        for kind in sorted({k for k, _ in counts}):
            lines.append(f"  {kind:12} " + ", ".join(f"{counts[(kind, op)]} {op}" for op in _OPS))
        if self.removed_providers:
            lines.append(f"removes providers: {', '.join(self.removed_providers)}")
        return lines


_OPS = ("added", "changed", "removed")


def _provider_ids(files: Mapping[str, bytes]) -> tuple[int, frozenset[str]]:
    from sovrisk.service.listing_cli import rows_of

    rows = rows_of(files.get("nodes.csv", b"").decode("utf-8"), ("id", "kind"))
    return len(rows), frozenset(r["id"] for r in rows if r["kind"] == "provider")


def _refuse_replace(summary: ImportSummary, latest: str) -> int:
    removed = len(summary.removed_nodes)
    print(
        f"refused: this import replaces the graph of {latest} (removes {removed} of "
        f"{summary.nodes_before} nodes"
        + (
            f", providers {', '.join(summary.removed_providers)}"
            if summary.removed_providers
            else ""
        )
        + "). Check the summary above, then run again with --replace to commit it; "
        "`sovrisk revert VERSION` brings an earlier version back.",
        file=sys.stderr,
    )
    return 1


def cmd_import(args: argparse.Namespace) -> int:
    """Validate, summarise, and commit only what the user asked for: a dry run stores
    nothing; an import that replaces the graph needs ``--replace``."""
    files = _read_folder(args.dir, args.format)
    if args.format == "edges":
        return _import_edge_table(args, files)
    if args.server:
        return _import_remote(args, files)

    with _local_registry(args.store) as registry:
        latest = registry.store.latest() if registry.store else None
        if latest is None:
            version = registry.load_latest(seed=args.dir) if args.format == "bundle" else None
            if version is None:
                raise SystemExit("the store is empty: seed it with a bundle folder first")
            print(f"seeded {version.name} from {args.dir}")
            return 0
        registry.load_latest()
        assert registry.store is not None
        planned = registry.commit_files(
            latest.id, files, author=_local_author(), message=args.message, validate_only=True
        )
        summary = ImportSummary(
            tuple((c.kind, c.op, c.key) for c in planned.changes),
            *_provider_ids(dict(registry.store.files(latest.id))),
        )
        print("\n".join(summary.lines()))
        _print_changes(planned.changes, limit=10 if summary.replaces_graph else 30)
        if args.dry_run:
            print(f"dry run: nothing stored (against {latest.name})")
            return 0
        if summary.replaces_graph and not args.replace:
            return _refuse_replace(summary, latest.name)
        return _commit_locally(registry, latest, files, args)


@contextmanager
def _local_registry(store: str) -> Iterator[GraphRegistry]:
    from sovrisk.service.registry import GraphRegistry
    from sovrisk.service.store import open_store

    registry = GraphRegistry(open_store(store))
    try:
        yield registry
    finally:
        registry.close()


def _local_author() -> str:
    return f"local:{getpass.getuser()}"


def _commit_locally(
    registry: GraphRegistry,
    latest: VersionRecord,
    files: DatasetFiles,
    args: argparse.Namespace,
    what: str = "",
) -> int:
    committed = registry.commit_files(
        latest.id, files, author=_local_author(), message=args.message
    )
    assert committed.version is not None
    print(f"committed {_version_line(committed.version)}{what}")
    print(f"undo: sovrisk revert {latest.id} --store {args.store}")
    return 0


def _import_edge_table(args: argparse.Namespace, files: DatasetFiles) -> int:
    """An edge table replaces the graph whole (it is a different kind of version): it needs
    --replace, and the store must already hold a version to replace."""
    from sovrisk.models.graph.dataset import EDGE_TABLE_FILE

    size = len(files[EDGE_TABLE_FILE])
    print(f"edge table {args.dir}: valid, {size:,} bytes as {EDGE_TABLE_FILE}")
    if args.dry_run:
        print("dry run: nothing stored")
        return 0
    if not args.replace:
        print(
            "refused: an edge table replaces the graph whole (only ScoreProvider and "
            "ListProviderScores serve it); run again with --replace to commit it; "
            "`sovrisk revert VERSION` brings the dataset back.",
            file=sys.stderr,
        )
        return 1
    if args.server:
        with server_client(args) as client:
            done = client.import_graph(dict(files), message=args.message, format="edges")
        assert done.version is not None
        print(f"committed {done.version.name} by {done.version.author} (edge table)")
        return 0

    with _local_registry(args.store) as registry:
        assert registry.store is not None
        latest = registry.store.latest()
        if latest is None:
            raise SystemExit("the store is empty: seed it with a bundle folder first")
        return _commit_locally(registry, latest, files, args, " (edge table)")


def _import_remote(args: argparse.Namespace, files: DatasetFiles) -> int:

    with server_client(args) as client:
        latest, current = client.export_graph()
        planned = client.import_graph(dict(files), message=args.message, validate_only=True)
        changes = tuple((c.kind, c.operation, c.key) for c in planned.changes)
        summary = ImportSummary(changes, *_provider_ids(current))
        print("\n".join(summary.lines()))
        if args.dry_run:
            print(f"dry run: nothing stored (against {latest.name})")
            return 0
        if summary.replaces_graph and not args.replace:
            return _refuse_replace(summary, latest.name)
        done = client.import_graph(dict(files), message=args.message)
    assert done.version is not None
    print(f"committed {done.version.name} by {done.version.author}: {len(done.changes)} changes")
    print(f"undo: sovrisk revert {latest.name.rsplit('/', 1)[-1]} --server {args.server}")
    return 0


def cmd_revert(args: argparse.Namespace) -> int:
    """Commit version ``args.version``'s dataset as a new version on top of the latest."""
    message = args.message or f"revert to graph/versions/{args.version}"
    if args.server:
        with server_client(args) as client:
            _, files = client.export_graph(args.version)
            done = client.import_graph(files, message=message)
        assert done.version is not None
        print(
            f"committed {done.version.name} by {done.version.author}: {len(done.changes)} changes"
        )
        return 0

    with _local_registry(args.store) as registry:
        assert registry.store is not None
        target = registry.store.get(args.version)
        latest = registry.load_latest()
        if latest.files_digest == target.files_digest:
            print(f"{latest.name} already holds the dataset of {target.name}: nothing to do")
            return 0
        committed = registry.commit_files(
            latest.id, registry.store.files(target.id), author=_local_author(), message=message
        )
        assert committed.version is not None
        print(f"committed {_version_line(committed.version)}")
        return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.server:
        return _export_remote(args)
    from sovrisk.service.store import open_store

    store = open_store(args.store)
    version = store.get(args.version) if args.version else store.latest()
    if version is None:
        raise SystemExit("the store holds no version")
    _write(store.files(version.id), args.dir, args.format)
    print(f"exported {version.name} ({version.files_digest[:12]}) to {args.dir}")
    return 0


def _export_remote(args: argparse.Namespace) -> int:
    name = f"graph/versions/{args.version}" if args.version else ""
    from sovrisk.models.graph.dataset import DatasetFiles

    with server_client(args) as client:
        version, files = client.export_graph(name)
    _write(DatasetFiles(dict(files)), args.dir, args.format)
    print(f"exported {version.name} to {args.dir}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from sovrisk.service.registry import GraphRegistry
    from sovrisk.service.store import open_store

    store = open_store(args.store)
    versions = store.list_versions(limit=args.limit)
    if not versions:
        print("the store holds no version")
        return 0
    if not args.provider:
        for v in versions:
            print(_version_line(v))
        return 0
    registry = GraphRegistry(store)
    try:
        registry.load_latest()
        known = {r.provider for v in versions for r in registry.scores(v.id)}
        if args.provider not in known:
            raise registry.engine.graph.not_found("provider", args.provider)
        print(f"{'version':20} {'composite':>9}  band      sub-scores")
        for v in reversed(versions):
            rows = [r for r in registry.scores(v.id) if r.provider == args.provider]
            if not rows:
                print(f"{v.name:20} {'-':>9}  (no provider {args.provider!r})")
                continue
            r = rows[0]
            subs = " ".join(
                f"{k}={s:.1f}" if s is not None else f"{k}=n/a" for k, s in r.sub_scores.items()
            )
            composite = f"{r.composite:9.1f}" if r.composite is not None else f"{'n/a':>9}"
            print(f"{v.name:20} {composite}  {r.band:8}  {subs}")
    finally:
        registry.close()
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from sovrisk.service.auth import Role, create_token

    path = Path(args.file) if args.file else default_tokens_file(args.store)
    try:
        token = create_token(path, args.principal, Role.parse(args.role))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2  # a bad value (sovrisk --help: exit codes)
    print(token)
    print(
        f"token for {args.principal} ({args.role}) added to {path} (only its sha256 is kept; "
        "this is the only time the token is shown). Use it as: "
        "-H 'authorization: Bearer <token>'",
        file=sys.stderr,
    )
    return 0
