"""``sovrisk report``: a batch risk report as HTML, Markdown, CSV or JSON (docs/reports.md).

sovrisk report [--format html|md|csv|json] [--providers aws,google-cloud] [--as-of YYYY-MM-DD]
               [--simulate N] [--seed S] [--draws N] [--trajectory FROM:TO|auto|none]
               [--data DIR]
               [-o FILE | -o -]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.scoring.limits import DEFAULT_DRAWS
from sovrisk.service.executor_option import add_executor_argument
from sovrisk.service.paths import display, state_dir
from sovrisk.service.source import add_source_arguments, open_source, server_client

if TYPE_CHECKING:
    from sovrisk.models.graph.series import Quarter
    from sovrisk.models.scoring.risk_engine import RiskEngine

#: service.reports.FORMATS, repeated so that `sovrisk` starts without importing the renderers
#: (tests/test_reports.py checks they agree).
FORMATS: tuple[str, ...] = ("html", "md", "csv", "json")
#: Reports go to this folder of the state directory unless ``--output`` says otherwise.
REPORTS_DIR_NAME = "reports"


def _date(text: str) -> dt.date:
    try:
        if len(text) != 10:
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: use YYYY-MM-DD") from None


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``report`` on the CLI's subparsers (``sub`` is argparse's subparsers action)."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "report",
        help="batch risk report (HTML with charts, Markdown, CSV, JSON)",
        description="A risk report on every provider (or those given): ranking, sub-scores, "
        "chokepoints, country exposure, supply trees, checks, sources and provenance; "
        "optionally the simulated loss distribution. See docs/reports.md.",
    )
    parser.add_argument(
        "--format", dest="fmt", choices=tuple(FORMATS), default="html", help="default html"
    )
    parser.add_argument("--providers", default="", help="comma-separated ids (default all)")
    parser.add_argument("--as-of", type=_date, help="date the scores speak for (YYYY-MM-DD)")
    parser.add_argument(
        "--simulate",
        type=_non_negative,
        default=0,
        metavar="N",
        help="add the Monte Carlo loss distribution with N samples (default 0: none)",
    )
    parser.add_argument("--seed", type=_non_negative, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--draws",
        type=_non_negative,
        default=DEFAULT_DRAWS,
        metavar="N",
        help=f"seeded draws of the data's ranges behind each composite's 90 %% interval and "
        f"the rank certainty (default {DEFAULT_DRAWS}; 0 = none)",
    )
    parser.add_argument(
        "--trajectory",
        default="auto",
        metavar="FROM:TO|auto|none",
        help="quarters to score over time, e.g. 2024Q1:2027Q4 (default auto: three years back "
        "and one ahead of the date, within the fleet series; none: no trajectory)",
    )
    add_source_arguments(parser, server=True)
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        help=f"output file (default {REPORTS_DIR_NAME}/sovrisk-report.<ext> in the state "
        "directory, beside the store; - = stdout)",
    )
    # The draws, the trajectory and a large --simulate are sweeps (a served report's run on
    # the server's own executor).
    add_executor_argument(parser)
    return parser


def _window(engine: RiskEngine, args: argparse.Namespace) -> tuple[Quarter, Quarter] | None:
    """The --trajectory quarters (CSV reports have no place for them)."""
    from sovrisk.models.graph.series import Quarter
    from sovrisk.models.scoring.trajectory import default_window

    text = args.trajectory.strip().lower()
    if text == "none" or args.fmt == "csv":
        return None
    if text == "auto":
        day = args.as_of or engine.graph.info.as_of
        return default_window(engine, Quarter.of(day))
    first, _, last = args.trajectory.partition(":")
    try:
        return Quarter.parse(first), Quarter.parse(last)
    except ValueError:
        raise InvalidParameterError(
            [FieldViolation("--trajectory", args.trajectory, "expected FROM:TO, auto or none")]
        ) from None


class ProgressPrinter:
    """A progress bar on a terminal; otherwise one line per stage."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._stage = ""

    def __call__(self, stage: str, fraction: float) -> None:
        if self.tty:
            width = 30
            filled = int(width * fraction)
            bar = "#" * filled + "." * (width - filled)
            end = "\n" if stage == "done" else ""
            print(f"\r[{bar}] {100 * fraction:5.1f}% {stage:<12}", end=end, file=self.stream)
            self.stream.flush()
        elif stage != self._stage:
            print(f"sovrisk report: {stage} ({100 * fraction:.0f}%)", file=self.stream)
        self._stage = stage


def cmd_report(args: argparse.Namespace) -> int:
    if args.server:
        name, payload = _remote_report(args)
        return _write_report(args, name, payload)
    from sovrisk.service.reports import build_report, default_filename

    engine = open_source(args).engine
    providers = [p.strip() for p in args.providers.split(",") if p.strip()] or None
    window = _window(engine, args)
    payload = build_report(
        engine,
        fmt=args.fmt,
        providers=providers,
        as_of=args.as_of,
        simulate_samples=args.simulate,
        seed=args.seed,
        progress=ProgressPrinter(sys.stderr),
        trajectory=window,
        interval_draws=args.draws,
    )
    return _write_report(args, default_filename(args.fmt), payload)


def _remote_report(args: argparse.Namespace) -> tuple[str, bytes]:
    """The same report generated by a running server (GenerateReport) from its store."""
    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    with server_client(args) as client:
        report = client.report(
            format={"md": "markdown"}.get(args.fmt, args.fmt),
            providers=providers,
            as_of=args.as_of,
            simulate_samples=args.simulate,
            seed=args.seed,
            include_trajectory=args.trajectory.strip().lower() != "none",
            interval_draws=args.draws,
            graph_version=args.graph_version or "",
        )
    print(f"reading {report.graph_version} of the server at {args.server}", file=sys.stderr)
    return report.file_name, report.content


def _write_report(args: argparse.Namespace, file_name: str, payload: bytes) -> int:
    target = args.output or str(state_dir() / REPORTS_DIR_NAME / file_name)
    if target == "-":
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is not None:
            sys.stdout.flush()
            buffer.write(payload)
            buffer.flush()
        else:
            sys.stdout.write(payload.decode("utf-8"))
        return 0
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    print(f"wrote {display(path)} ({len(payload):,} bytes, {args.fmt})", file=sys.stderr)
    return 0
