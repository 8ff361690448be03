"""``sovrisk providers | nodes | countries``: the ids every other command and RPC takes.

Read straight from the dataset's CSV tables (of the store's latest version, or ``--data``),
without building the engine, so that finding an id takes a fraction of a second.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence

from sovrisk.service.source import add_source_arguments, open_files
from sovrisk.service.text_table import fit_table

#: Columns shown per listing: (CSV file, its columns, the heads printed).
LISTINGS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "providers": (
        "nodes.csv",
        ("id", "name", "owner", "hq_country"),
        ("id", "name", "owner", "home"),
    ),
    "nodes": (
        "nodes.csv",
        ("id", "kind", "layer", "name", "owner", "hq_country"),
        ("id", "kind", "layer", "name", "owner", "hq"),
    ),
    "countries": (
        "country_risk.csv",
        ("iso3", "name", "risk", "wgi_year"),
        ("iso3", "name", "risk", "wgi_year"),
    ),
}


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    helps = {
        "providers": "list the cloud providers scored, with their ids (e.g. aws)",
        "nodes": "list the graph's nodes (firms' processes, chips, materials) with their ids",
        "countries": "list the countries with their ISO 3166-1 alpha-3 codes and risk (0-100)",
    }
    for name, text in helps.items():
        p = sub.add_parser(name, help=text, description=text + ".")
        if name == "nodes":
            p.add_argument("--kind", help="only nodes of this kind (e.g. packaging, foundry)")
            p.add_argument("--layer", help="only nodes of this layer")
        p.add_argument("--search", help="only rows whose id or name contains this text")
        p.add_argument("--json", action="store_true", help="JSON list of objects")
        add_source_arguments(p)


def rows_of(text: str, columns: Sequence[str]) -> list[dict[str, str]]:
    return [{c: row.get(c, "") or "" for c in columns} for row in csv.DictReader(io.StringIO(text))]


def run(args: argparse.Namespace) -> int:
    file, columns, heads = LISTINGS[args.command]
    files, label = open_files(args)
    rows = rows_of(files[file].decode("utf-8"), columns)
    if args.command == "providers":
        everything = rows_of(files[file].decode("utf-8"), ("id", "kind"))
        kinds = {r["id"]: r["kind"] for r in everything}
        rows = [r for r in rows if kinds.get(r["id"]) == "provider"]
    if getattr(args, "kind", None):
        rows = [r for r in rows if r["kind"] == args.kind]
    if getattr(args, "layer", None):
        rows = [r for r in rows if r["layer"] == args.layer]
    if args.search:
        needle = args.search.lower()
        rows = [r for r in rows if any(needle in r[c].lower() for c in columns[:2])]
    print(f"reading {label}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
        return 0
    table = [[r[c] for c in columns] for r in rows]
    print(fit_table(list(heads), table))
    print(f"{len(rows)} {args.command}", file=sys.stderr)
    return 0
