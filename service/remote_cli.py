"""``sovrisk score --server HOST:PORT``: the same answers from a running server, over gRPC.

Uses the typed client only (no engine), so it also works from a client-only install.
"""

from __future__ import annotations

import argparse
import json
import sys

from google.protobuf import json_format

from sovrisk.service.client_types import SubScore
from sovrisk.service.source import server_client
from sovrisk.service.text_table import SUB_SCORE_SHORT, fit_table


def _cell(s: SubScore | None) -> str:
    return "n/a" if s is None or s.data_missing else f"{s.score:.1f}"


def score_remote(args: argparse.Namespace) -> int:
    kwargs = {
        "as_of": args.as_of,
        "horizon_weeks": args.horizon,
        "weights": dict(args.weight) or None,
        "graph_version": args.graph_version or "",
        "interval_draws": args.draws,
        "interval_seed": args.seed,
    }
    with server_client(args) as client:
        if args.provider:
            a = client.score(args.provider, **kwargs)
            print(
                f"reading {a.graph_version or 'the latest version'} of {args.server}",
                file=sys.stderr,
            )
            if args.json:
                print(json.dumps(json_format.MessageToDict(a.raw), indent=1))
                return 0
            name = f"providers/{a.provider.removeprefix('providers/')}"
            print(f"{a.display_name} ({name}): {a.composite:.1f} / 100, {a.band}")
            rows = [
                [k, f"{s.score:.1f}", f"{s.weight:.3f}", f"{s.contribution:.2f}", s.explanation]
                for k, s in a.sub_scores.items()
            ]
            print(fit_table(["sub-score", "score", "weight", "contrib", "explanation"], rows))
            print(f"dataset {a.dataset_version} | as of {a.as_of} | model {a.model_version}")
            return 0
        scores = list(client.provider_scores(**kwargs))
    if args.json:
        print(json.dumps([json_format.MessageToDict(r.raw) for r in scores], indent=1))
        return 0
    print(f"reading the ranking of {args.server}", file=sys.stderr)
    heads = ["#", "provider", "name", "score", "band", *SUB_SCORE_SHORT.values()]
    rows = [
        [str(r.rank), r.provider.removeprefix("providers/"), r.display_name]
        + [f"{r.composite:.1f}", r.band]
        + [_cell(r.sub_scores.get(k)) for k in SUB_SCORE_SHORT]
        for r in scores
    ]
    print(fit_table(heads, rows))
    return 0
