"""Batch risk reports: HTML (self-contained, with inline SVG charts), Markdown, CSV and JSON.

>>> data = build_report(engine, fmt="html", providers=None, as_of=None)   # doctest: +SKIP

``sovrisk report`` (service/report_cli.py) and the gRPC layer call :func:`build_report`;
docs/reports.md describes every format, section and field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sovrisk.models.graph.series import Quarter
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.models.scoring.uncertainty import check_draws
from sovrisk.service.reports import csv_report, html_report, json_report, markdown_report
from sovrisk.service.reports.data import Progress, ProgressFn, ReportData, collect, validate

#: Format -> file extension of the default output name.
FORMATS: dict[str, str] = {"html": "html", "md": "md", "csv": "csv", "json": "json"}

#: Stages reported to ``progress``, in order (``simulate`` only with simulate_samples > 0).
STAGES: tuple[str, ...] = (
    "assess",
    "chokepoints",
    "trajectory",
    "simulate",
    "sources",
    "render",
    "done",
)

__all__ = [
    "FORMATS",
    "STAGES",
    "ProgressFn",
    "ReportData",
    "build_report",
    "default_filename",
]


def default_filename(fmt: str) -> str:
    return f"sovrisk-report.{FORMATS[fmt]}"


def build_report(
    engine: RiskEngine,
    *,
    fmt: str,
    providers: Sequence[str] | None,
    as_of: dt.date | None,
    simulate_samples: int = 0,
    seed: int = 7,
    progress: ProgressFn | None = None,
    trajectory: tuple[Quarter, Quarter] | None = None,
    interval_draws: int = 0,
) -> bytes:
    """The report on ``engine``'s graph in ``fmt`` (``html``, ``md``, ``csv`` or ``json``).

    ``providers``: ids (``aws`` or ``providers/aws``), all when None or empty; ``as_of``: the
    date the scores speak for (default: the dataset's); ``simulate_samples`` > 0 adds the
    correlated Monte Carlo of the engine's bundled events (``seed``). ``progress(stage,
    fraction)`` is called as work advances, with one of :data:`STAGES` and the fraction of
    the whole report done (0-1, never decreasing, 1.0 at ``done``). ``trajectory`` (first and
    last quarter, at most 40) adds every provider's scores quarter by quarter.
    ``interval_draws`` > 0 adds each composite's 90 % interval and rank certainty (draws
    seeded with ``seed``; METHODS v2 §11).

    The same inputs give the same bytes. Raises :class:`InvalidParameterError` (fields
    ``format``, ``simulate_samples``, ``seed``) and :class:`NotFoundError` (an unknown
    provider). Reads the engine only: safe to call on a shared engine.
    """
    validate(fmt, tuple(FORMATS), simulate_samples, seed)
    check_draws(interval_draws, "interval_draws")
    tracker = Progress(progress, simulate=simulate_samples > 0)
    data = collect(
        engine,
        providers=providers,
        as_of=as_of,
        simulate_samples=simulate_samples,
        seed=seed,
        progress=tracker,
        trajectory_range=trajectory,
        interval_draws=interval_draws,
    )
    tracker("render", 0.0)
    if fmt == "html":
        out = html_report.render(data)
    elif fmt == "md":
        out = markdown_report.render(data)
    elif fmt == "csv":
        out = csv_report.render(data)
    else:
        out = json_report.render(engine, data)
    tracker("done", 1.0)
    return out
