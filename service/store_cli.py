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
from collections.abc import Sequence
from pathlib import Path

from models.graph.dataset import DatasetFiles, RecordChange
from service import dataset_json
from service.auth import TOKENS_FILE_NAME, Role, create_token
from service.registry import DEFAULT_STATE_DIR, GraphRegistry
from service.store import VersionRecord, open_store

FORMATS = ("bundle", "eto", "json")
CHUNK = 1024 * 1024


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def store_or_server(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--store",
            default=os.environ.get("SOVRISK_STORE", str(DEFAULT_STATE_DIR)),
            help="graph store to open directly (directory, .db file or postgresql://...)",
        )
        p.add_argument("--server", help="use a running server instead (host:port)")
        p.add_argument(
            "--token",
            default=os.environ.get("SOVRISK_TOKEN", ""),
            help="bearer token for --server (env SOVRISK_TOKEN)",
        )

    imp = sub.add_parser("import", help="commit a dataset folder as a new graph version")
    imp.add_argument(
        "dir", help="dataset folder (docs/data-format.md), ETO data folder, or JSON file"
    )
    imp.add_argument(
        "--format",
        choices=FORMATS,
        default="bundle",
        help="bundle: a CSV dataset folder; eto: the CSET/ETO Chip Explorer CSVs; "
        "json: DatasetRecords in the proto JSON mapping",
    )
    imp.add_argument("--message", "-m", required=True, help="why: recorded on the version")
    imp.add_argument("--dry-run", action="store_true", help="validate and list changes only")
    store_or_server(imp)

    exp = sub.add_parser("export", help="write a graph version's dataset files to a folder")
    exp.add_argument("dir", help="output folder (bundle; dataset files replaced) or file (json)")
    exp.add_argument("--format", choices=("bundle", "json"), default="bundle")
    exp.add_argument("--version", type=int, default=None, help="version number (default latest)")
    store_or_server(exp)

    hist = sub.add_parser("history", help="list graph versions and providers' score history")
    hist.add_argument("provider", nargs="?", help="provider id (e.g. aws): its score history")
    hist.add_argument(
        "--store",
        default=os.environ.get("SOVRISK_STORE", str(DEFAULT_STATE_DIR)),
        help="graph store (directory, .db file or postgresql://...)",
    )
    hist.add_argument("--limit", type=int, default=20, help="versions to show (newest first)")

    tok = sub.add_parser("token", help="manage bearer tokens")
    tok_sub = tok.add_subparsers(dest="token_command", required=True)
    create = tok_sub.add_parser("create", help="create a token (printed once; only its hash kept)")
    create.add_argument("--principal", required=True, help="who the token is (e.g. alice)")
    create.add_argument("--role", choices=[r.name.lower() for r in Role], default="editor")
    create.add_argument(
        "--file",
        default=os.environ.get("SOVRISK_TOKENS_FILE", str(DEFAULT_STATE_DIR / TOKENS_FILE_NAME)),
        help="token file (default var/tokens.toml)",
    )


def _read_folder(path: str, fmt: str) -> DatasetFiles:
    if fmt == "eto":
        from models.graph.eto import convert_eto

        return DatasetFiles(convert_eto(path))
    if fmt == "json":
        return dataset_json.loads(Path(path).read_text(encoding="utf-8"))
    return DatasetFiles.from_directory(path)


def _write(files: DatasetFiles, path: str, fmt: str) -> None:
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


def cmd_import(args: argparse.Namespace) -> int:
    files = _read_folder(args.dir, args.format)
    if args.server:
        return _import_remote(args, files)
    registry = GraphRegistry(open_store(args.store))
    try:
        latest = registry.store.latest() if registry.store else None
        author = f"local:{getpass.getuser()}"
        if latest is None:
            version = registry.load_latest(seed=args.dir) if args.format == "bundle" else None
            if version is None:
                raise SystemExit("the store is empty: seed it with a bundle folder first")
            print(f"seeded {version.name} from {args.dir}")
            return 0
        registry.load_latest()
        committed = registry.commit_files(
            latest.id, files, author=author, message=args.message, validate_only=args.dry_run
        )
        _print_changes(committed.changes)
        if committed.version is None:
            print(f"dry run: {len(committed.changes)} record changes against {latest.name}")
        else:
            print(f"committed {_version_line(committed.version)}")
        return 0
    finally:
        registry.close()


def _import_remote(args: argparse.Namespace, files: DatasetFiles) -> int:
    from service.client import SovriskClient

    with SovriskClient(args.server, token=args.token) as client:
        response = client.import_files(files, message=args.message, validate_only=args.dry_run)
    for c in response.changes[:30]:
        print(f"  {c.kind} {'/'.join(c.key)}")
    if response.HasField("graph_version"):
        v = response.graph_version
        print(f"committed {v.name} by {v.author}: {len(response.changes)} record changes")
    else:
        print(f"dry run: {len(response.changes)} record changes")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.server:
        return _export_remote(args)
    store = open_store(args.store)
    version = store.get(args.version) if args.version else store.latest()
    if version is None:
        raise SystemExit("the store holds no version")
    _write(store.files(version.id), args.dir, args.format)
    print(f"exported {version.name} ({version.files_digest[:12]}) to {args.dir}")
    return 0


def _export_remote(args: argparse.Namespace) -> int:
    name = f"graph/versions/{args.version}" if args.version else ""
    from service.client import SovriskClient

    with SovriskClient(args.server, token=args.token) as client:
        version, files = client.export_files(name)
    _write(files, args.dir, args.format)
    print(f"exported {version.name} to {args.dir}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
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
    path = Path(args.file)
    token = create_token(path, args.principal, Role.parse(args.role))
    print(token)
    print(
        f"token for {args.principal} ({args.role}) added to {path} (only its sha256 is kept; "
        "this is the only time the token is shown). Use it as: "
        "-H 'authorization: Bearer <token>'",
        file=sys.stderr,
    )
    return 0
