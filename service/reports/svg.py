"""Inline SVG charts, generated in Python: no scripts, no fonts, no external references.

Every chart is ``<svg class="chart ..." id="...">`` and every data mark carries a class and
``data-*`` attributes (provider, key, value) so that tests, and readers of the DOM, can count
and check them. All text goes through :func:`esc`.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sovrisk.models.scoring.assessment import NodeImpact, RiskAssessment, RiskBand
from sovrisk.models.scoring.params import SUB_SCORES
from sovrisk.models.scoring.trajectory import TrajectoryPoint
from sovrisk.service.reports import common as c
from sovrisk.service.reports.data import LOSS_BINS, Chokepoint, LossDistribution, ReportData

FONT = 12
#: Supply tree: nodes shown (the most critical by impact; every SPOF is always shown).
TREE_TOP_N = 16

BAND_COLOURS: dict[RiskBand, str] = {
    RiskBand.LOW: "#2e7d32",
    RiskBand.MODERATE: "#f9a825",
    RiskBand.HIGH: "#ef6c00",
    RiskBand.CRITICAL: "#c62828",
}
BAND_TINTS: dict[RiskBand, str] = {
    RiskBand.LOW: "#e8f5e9",
    RiskBand.MODERATE: "#fff8e1",
    RiskBand.HIGH: "#fff3e0",
    RiskBand.CRITICAL: "#ffebee",
}
_BAND_RANGES = (
    (RiskBand.LOW, 0.0, 25.0),
    (RiskBand.MODERATE, 25.0, 50.0),
    (RiskBand.HIGH, 50.0, 75.0),
    (RiskBand.CRITICAL, 75.0, 100.0),
)
#: 0-100 risk colour scale (light yellow -> dark red), piecewise linear between stops.
_RISK_STOPS = (
    (0.0, (255, 255, 204)),
    (25.0, (254, 217, 118)),
    (50.0, (253, 141, 60)),
    (75.0, (227, 26, 28)),
    (100.0, (128, 0, 38)),
)
#: Supply-tree fill by impact (0-1): light slate -> peach -> red.
_IMPACT_STOPS = (
    (0.0, (241, 245, 249)),
    (50.0, (253, 212, 158)),
    (80.0, (252, 141, 89)),
    (100.0, (215, 48, 31)),
)
#: Countries get these colours in order of total exposure; the rest share OTHER_COLOUR.
COUNTRY_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
)
OTHER_COLOUR = "#bab0ac"
NO_DATA = "#e0e0e0"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def attrs(**values: object) -> str:
    """``key="value"`` pairs, escaped; ``data_x`` -> ``data-x``, ``class_`` -> ``class``."""
    parts = []
    for key, value in values.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(f'{name}="{esc(value)}"')
    return " ".join(parts)


def n(value: float) -> str:
    """A coordinate: one decimal, no negative zero."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _interpolate(stops: Sequence[tuple[float, tuple[int, int, int]]], value: float) -> str:
    value = min(stops[-1][0], max(stops[0][0], value))
    for (x0, c0), (x1, c1) in itertools.pairwise(stops):
        if value <= x1:
            t = 0.0 if x1 == x0 else (value - x0) / (x1 - x0)
            rgb = tuple(round(a + (b - a) * t) for a, b in zip(c0, c1, strict=True))
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    r, g, b = stops[-1][1]
    return f"#{r:02x}{g:02x}{b:02x}"


def risk_colour(score: float) -> str:
    return _interpolate(_RISK_STOPS, score)


def risk_text_colour(score: float) -> str:
    return "#ffffff" if score >= 62.0 else "#1a1a1a"


def impact_colour(impact: float) -> str:
    return _interpolate(_IMPACT_STOPS, 100.0 * impact)


def truncate(text: str, width_px: float, font: float = FONT) -> str:
    """Shorten to about ``width_px`` at ``font`` px (average glyph ~0.64 em, DejaVu-wide)."""
    limit = max(3, int(width_px / (0.64 * font)))
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _svg(
    chart_id: str, width: float, height: float, body: list[str], *, kind: str, label: str
) -> str:
    head = (
        f'<svg class="chart {esc(kind)}" id="{esc(chart_id)}" role="img" '
        f'aria-label="{esc(label)}" viewBox="0 0 {n(width)} {n(height)}" '
        f'width="{n(width)}" height="{n(height)}" preserveAspectRatio="xMinYMin meet">'
    )
    return "\n".join([head, f"<title>{esc(label)}</title>", *body, "</svg>"])


def _text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: float = FONT,
    weight: str | None = None,
    fill: str | None = None,
    cls: str | None = None,
) -> str:
    return (
        f"<text {attrs(class_=cls, x=n(x), y=n(y), text_anchor=anchor, font_size=n(size))}"
        + (f' font-weight="{esc(weight)}"' if weight else "")
        + (f' fill="{esc(fill)}"' if fill else "")
        + f">{esc(text)}</text>"
    )


def _axis_ticks(x0: float, width: float, y0: float, y1: float, ticks: Sequence[float]) -> list[str]:
    out = []
    for t in ticks:
        x = x0 + width * t / 100.0
        out.append(f'<line class="grid" x1="{n(x)}" y1="{n(y0)}" x2="{n(x)}" y2="{n(y1)}"/>')
        out.append(_text(x, y0 - 4, f"{t:g}", anchor="middle", size=10, cls="tick"))
    return out


# -- ranking ----------------------------------------------------------------------------------


def ranking_chart(data: ReportData) -> str:
    """Composite per provider, riskiest first, over the four bands."""
    left, bar_w, right, row_h, top = 250.0, 600.0, 130.0, 30.0, 40.0
    rows = len(data.assessments)
    height = top + rows * row_h + 12
    body: list[str] = []
    for band, lo, hi in _BAND_RANGES:
        x = left + bar_w * lo / 100.0
        body.append(
            f'<rect class="band-zone" {attrs(data_band=band.value)} x="{n(x)}" y="{n(top - 2)}" '
            f'width="{n(bar_w * (hi - lo) / 100.0)}" height="{n(rows * row_h + 4)}" '
            f'fill="{BAND_TINTS[band]}"/>'
        )
        body.append(
            _text(
                x + bar_w * (hi - lo) / 200.0,
                14,
                band.value,
                anchor="middle",
                size=11,
                fill=BAND_COLOURS[band],
                weight="600",
            )
        )
    body += _axis_ticks(left, bar_w, top - 4, top + rows * row_h, (0, 25, 50, 75, 100))
    for k, a in enumerate(data.assessments):
        y = top + k * row_h
        w = bar_w * min(100.0, a.composite) / 100.0
        colour = BAND_COLOURS[a.band]
        bar_attrs = attrs(
            class_="bar",
            data_provider=a.provider,
            data_composite=f"{a.composite:.6f}",
            data_band=a.band.value,
        )
        body.append(f'<g class="row" {attrs(data_provider=a.provider)}>')
        body.append(
            _text(
                left - 10,
                y + row_h / 2 + 4,
                f"{k + 1}. {truncate(a.display_name, left - 40)}",
                anchor="end",
            )
        )
        body.append(
            f"<rect {bar_attrs} "
            f'x="{n(left)}" y="{n(y + 5)}" width="{n(w)}" height="{n(row_h - 10)}" '
            f'fill="{colour}" rx="2"><title>{esc(a.display_name)}: {a.composite:.1f} '
            f"({esc(a.band.value)})</title></rect>"
        )
        body.append(
            _text(
                left + w + 6,
                y + row_h / 2 + 4,
                f"{a.composite:.1f} {a.band.value}",
                weight="600",
                cls="value",
            )
        )
        body.append("</g>")
    width = left + bar_w + right
    return _svg("ranking", width, height, body, kind="ranking", label="Composite risk ranking")


# -- sub-score heatmap -----------------------------------------------------------------------


def heatmap_chart(data: ReportData) -> str:
    """Providers x the six sub-scores, coloured 0-100; the composite beside them."""
    left, cell_w, cell_h, top = 250.0, 104.0, 32.0, 44.0
    rows = len(data.assessments)
    first = data.assessments[0]
    body: list[str] = []
    for j, key in enumerate(SUB_SCORES):
        x = left + j * cell_w + cell_w / 2
        body.append(_text(x, 16, c.SUB_SCORE_LABELS[key], anchor="middle", weight="600", size=11))
        s = first.sub_score(key)
        body.append(
            _text(
                x,
                32,
                f"weight {s.weight:.2f}" if s.available else "no data",
                anchor="middle",
                size=10,
                cls="tick",
            )
        )
    xc = left + len(SUB_SCORES) * cell_w + 50
    body.append(_text(xc, 16, "Composite", anchor="middle", weight="600", size=11))
    for i, a in enumerate(data.assessments):
        y = top + i * cell_h
        body.append(
            _text(left - 10, y + cell_h / 2 + 4, truncate(a.display_name, left - 20), anchor="end")
        )
        for j, key in enumerate(SUB_SCORES):
            s = a.sub_score(key)
            x = left + j * cell_w
            fill = risk_colour(s.score) if s.available else NO_DATA
            label = f"{s.score:.1f}" if s.available else "n/a"
            mark = attrs(
                class_="cell",
                data_provider=a.provider,
                data_subscore=key,
                data_score=f"{s.score:.6f}",
                data_available=str(s.available).lower(),
            )
            body.append(
                f'<rect {mark} x="{n(x + 1)}" y="{n(y + 1)}" width="{n(cell_w - 2)}" '
                f'height="{n(cell_h - 2)}" fill="{fill}"><title>{esc(a.display_name)}, '
                f"{esc(c.SUB_SCORE_LABELS[key])}: {esc(label)}</title></rect>"
            )
            body.append(
                _text(
                    x + cell_w / 2,
                    y + cell_h / 2 + 4,
                    label,
                    anchor="middle",
                    fill=risk_text_colour(s.score) if s.available else "#555555",
                )
            )
        body.append(
            _text(
                xc,
                y + cell_h / 2 + 4,
                f"{a.composite:.1f}",
                anchor="middle",
                weight="700",
                fill=BAND_COLOURS[a.band],
            )
        )
    legend_y = top + rows * cell_h + 14
    body += _risk_legend(left, legend_y, "0-100, higher = riskier")
    width = xc + 60
    return _svg(
        "heatmap", width, legend_y + 30, body, kind="heatmap", label="Sub-scores by provider"
    )


def _risk_legend(x: float, y: float, caption: str) -> list[str]:
    out = []
    for k in range(21):
        value = 5.0 * k
        out.append(
            f'<rect class="legend-swatch" x="{n(x + k * 12)}" y="{n(y)}" width="12" height="10" '
            f'fill="{risk_colour(value)}"/>'
        )
    out.append(_text(x, y + 22, "0", size=10, cls="tick"))
    out.append(_text(x + 21 * 12, y + 22, "100", anchor="end", size=10, cls="tick"))
    out.append(_text(x + 21 * 12 + 10, y + 9, caption, size=10, cls="tick"))
    return out


# -- chokepoints -----------------------------------------------------------------------------


def chokepoint_chart(kind: str, rows: Sequence[Chokepoint], data: ReportData) -> str:
    """Top chokepoints x providers: each cell the share of that provider's supply lost."""
    left, cell_w, cell_h, top, right = 290.0, 96.0, 26.0, 36.0, 150.0
    providers = data.provider_ids
    body: list[str] = []
    for j, pid in enumerate(providers):
        x = left + j * cell_w + cell_w / 2
        body.append(
            _text(x, top - 10, truncate(pid, cell_w, 10), anchor="middle", size=10, weight="600")
        )
    xr = left + len(providers) * cell_w + 10
    body.append(
        _text(xr, top - 10, f"cuts ≥ {100 * data.min_impact:.0f} % · mean", size=10, weight="600")
    )
    for i, cp in enumerate(rows):
        y = top + i * cell_h
        body.append(f'<g class="chokepoint" {attrs(data_kind=kind, data_key=cp.key)}>')
        body.append(
            _text(
                left - 10,
                y + cell_h / 2 + 4,
                truncate(f"{i + 1}. {cp.display_name}", left - 20),
                anchor="end",
            )
        )
        for j, (pid, impact) in enumerate(cp.impacts):
            x = left + j * cell_w
            mark = attrs(
                class_="cell", data_key=cp.key, data_provider=pid, data_impact=f"{impact:.6f}"
            )
            body.append(
                f'<rect {mark} x="{n(x + 1)}" y="{n(y + 1)}" width="{n(cell_w - 2)}" '
                f'height="{n(cell_h - 2)}" fill="{risk_colour(100 * impact)}"><title>'
                f"{esc(cp.display_name)} lost: {esc(pid)} loses {100 * impact:.1f} %</title></rect>"
            )
            body.append(
                _text(
                    x + cell_w / 2,
                    y + cell_h / 2 + 4,
                    f"{100 * impact:.0f}",
                    anchor="middle",
                    size=11,
                    fill=risk_text_colour(100 * impact),
                )
            )
        body.append(
            _text(
                xr,
                y + cell_h / 2 + 4,
                f"{cp.providers_cut}/{len(providers)} · {100 * cp.mean_impact:.1f} %",
                size=11,
            )
        )
        body.append("</g>")
    height = top + max(1, len(rows)) * cell_h + 8
    width = xr + right
    label = f"Top chokepoints: {c.CHOKEPOINT_TITLES[kind]}"
    return _svg(f"chokepoints-{kind}", width, height, body, kind="chokepoints", label=label)


# -- country exposure ------------------------------------------------------------------------


def country_colours(data: ReportData) -> dict[str, str]:
    """A fixed colour per country: the most exposed (over all providers) first."""
    total: dict[str, float] = {}
    for a in data.assessments:
        for row in a.geopolitical_contributions:
            total[row.country] = total.get(row.country, 0.0) + row.exposure
        for lc in a.layers:
            for s in lc.country_shares:
                total.setdefault(s.key, 0.0)
    ordered = sorted(total, key=lambda k: (-round(total[k], 12), k))
    return {
        iso3: COUNTRY_PALETTE[k] if k < len(COUNTRY_PALETTE) else OTHER_COLOUR
        for k, iso3 in enumerate(ordered)
    }


def _stack(
    x0: float,
    y: float,
    width: float,
    height: float,
    shares: Sequence[tuple[str, float]],
    colours: dict[str, str],
    marks: dict[str, str],
    tooltip: str,
) -> list[str]:
    out = []
    x = x0
    for iso3, share in shares:
        if share <= 0.0:
            continue
        w = width * share
        colour = colours.get(iso3, OTHER_COLOUR)
        mark = attrs(class_="seg", **marks, data_country=iso3, data_share=f"{share:.6f}")
        out.append(
            f'<rect {mark} x="{n(x)}" y="{n(y)}" width="{n(w)}" height="{n(height)}" '
            f'fill="{colour}"><title>{esc(tooltip)}: {esc(iso3)} {100 * share:.1f} %</title></rect>'
        )
        if w >= 46:
            out.append(
                _text(
                    x + w / 2,
                    y + height / 2 + 4,
                    f"{iso3} {100 * share:.0f}%",
                    anchor="middle",
                    size=10,
                    fill="#ffffff",
                    weight="600",
                )
            )
        x += w
    return out


def _country_legend(x: float, y: float, colours: dict[str, str], used: Sequence[str]) -> list[str]:
    out = []
    shown = [k for k in colours if k in used and colours[k] != OTHER_COLOUR]
    others = any(colours.get(k, OTHER_COLOUR) == OTHER_COLOUR for k in used)
    items = [(k, colours[k]) for k in shown] + ([("other", OTHER_COLOUR)] if others else [])
    for k, (label, colour) in enumerate(items):
        xx = x + k * 78
        out.append(
            f'<rect class="legend-swatch" x="{n(xx)}" y="{n(y)}" width="12" height="12" '
            f'fill="{colour}"/>'
        )
        out.append(_text(xx + 16, y + 10, label, size=11))
    return out


def exposure_chart(data: ReportData, colours: dict[str, str]) -> str:
    """Layer-weighted country exposure of each provider's sourcing (sums to 100 %)."""
    left, bar_w, row_h, top = 250.0, 760.0, 28.0, 10.0
    body: list[str] = []
    used: list[str] = []
    for k, a in enumerate(data.assessments):
        y = top + k * row_h
        shares = [
            (r.country, r.exposure)
            for r in sorted(
                a.geopolitical_contributions, key=lambda r: (-round(r.exposure, 12), r.country)
            )
        ]
        used += [s for s, _ in shares]
        body.append(f'<g class="row" {attrs(data_provider=a.provider)}>')
        body.append(
            _text(left - 10, y + row_h / 2 + 4, truncate(a.display_name, left - 20), anchor="end")
        )
        body += _stack(
            left,
            y + 3,
            bar_w,
            row_h - 6,
            shares,
            colours,
            {"data_provider": a.provider},
            a.display_name,
        )
        body.append("</g>")
    legend_y = top + len(data.assessments) * row_h + 10
    body += _country_legend(left, legend_y, colours, used)
    return _svg(
        "exposure",
        left + bar_w + 20,
        legend_y + 24,
        body,
        kind="exposure",
        label="Country exposure of each provider's sourcing (layer-weighted)",
    )


def layers_chart(a: RiskAssessment, colours: dict[str, str]) -> str:
    """Per concentration layer, the provider's sourcing split by country."""
    left, bar_w, right, row_h, top = 230.0, 580.0, 230.0, 24.0, 22.0
    layers = sorted(a.layers, key=lambda lc: c.layer_key(lc.layer))
    body = [
        _text(left, 12, "share of the layer's sourcing by site country", size=10, cls="tick"),
        _text(left + bar_w + 10, 12, "country HHI · firm CR1", size=10, cls="tick"),
    ]
    used: list[str] = []
    for k, lc in enumerate(layers):
        y = top + k * row_h
        shares = [(s.key, s.share) for s in lc.country_shares]
        used += [s for s, _ in shares]
        body.append(f'<g class="layer" {attrs(data_layer=lc.layer)}>')
        body.append(
            _text(
                left - 10,
                y + row_h / 2 + 4,
                f"{lc.layer.replace('_', ' ')} (w {lc.weight:.2f})",
                anchor="end",
                size=11,
            )
        )
        body += _stack(
            left,
            y + 2,
            bar_w,
            row_h - 4,
            shares,
            colours,
            {"data_provider": a.provider, "data_layer": lc.layer},
            lc.layer,
        )
        flag = " ⚑" if lc.cr1_over_65 else ""
        body.append(
            _text(
                left + bar_w + 10,
                y + row_h / 2 + 4,
                f"{lc.country_hhi:,.0f} · {truncate(lc.firm_top.key, 90, 11)} "
                f"{100 * lc.firm_top.share:.0f}%{flag}",
                size=11,
            )
        )
        body.append("</g>")
    legend_y = top + len(layers) * row_h + 8
    body += _country_legend(left, legend_y, colours, used)
    return _svg(
        f"layers-{a.provider}",
        left + bar_w + right,
        legend_y + 22,
        body,
        kind="layers",
        label=f"{a.display_name}: country exposure per layer",
    )


# -- supply tree -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TreeNode:
    node: str
    parent: str | None
    depth: int
    x: float
    y: float
    impact: NodeImpact | None  # None for the provider (the root)
    selected: bool  # among the top-N (or a SPOF); False: shown only to connect the tree


def tree_nodes(a: RiskAssessment, top_n: int = TREE_TOP_N) -> list[TreeNode]:
    """The top-N nodes by impact, every SPOF, and the nodes on their evidence paths, laid
    out as a tidy tree: depth left to right, leaves top to bottom in depth-first order."""
    by_id = {i.node: i for i in a.structural_impacts}
    selected = {i.node for i in a.structural_impacts[:top_n]}
    selected |= {i.node for i in a.structural_impacts if i.is_spof}
    parent: dict[str, str | None] = {a.provider: None}
    for nid in sorted(selected):
        path = list(by_id[nid].evidence_path) or [a.provider, nid]
        if path[0] != a.provider:
            path = [a.provider, nid]
        for up, down in itertools.pairwise(path):
            if down not in parent:
                parent[down] = up
    children: dict[str, list[str]] = {k: [] for k in parent}
    for nid, above in parent.items():
        if above is not None:
            children.setdefault(above, []).append(nid)

    def weight(nid: str) -> tuple[float, str]:
        impact = by_id[nid].impact if nid in by_id else 1.0
        return (-round(impact, 12), nid)

    for kids in children.values():
        kids.sort(key=weight)
    slots: dict[str, float] = {}
    depth: dict[str, int] = {}
    counter = [0]

    def place(nid: str, d: int) -> float:
        depth[nid] = d
        kids = children.get(nid, [])
        if not kids:
            slots[nid] = float(counter[0])
            counter[0] += 1
        else:
            ys = [place(kid, d + 1) for kid in kids]
            slots[nid] = (ys[0] + ys[-1]) / 2.0
        return slots[nid]

    place(a.provider, 0)
    order = sorted(parent, key=lambda k: (depth[k], slots[k], k))
    return [
        TreeNode(
            node=k,
            parent=parent[k],
            depth=depth[k],
            x=float(depth[k]),
            y=slots[k],
            impact=by_id.get(k),
            selected=k in selected or k == a.provider,
        )
        for k in order
    ]


def tree_chart(a: RiskAssessment, top_n: int = TREE_TOP_N) -> str:
    """The provider's supply tree (most critical nodes), single points of failure marked."""
    col_w, box_w, box_h, row_h, pad = 210.0, 178.0, 34.0, 42.0, 10.0
    nodes = tree_nodes(a, top_n)
    pos = {t.node: (pad + t.x * col_w, pad + t.y * row_h) for t in nodes}
    max_depth = max(t.depth for t in nodes)
    leaves = max(t.y for t in nodes) + 1
    width = pad * 2 + max_depth * col_w + box_w
    height = pad * 2 + leaves * row_h - (row_h - box_h)
    body: list[str] = []
    for t in nodes:  # links first, under the boxes
        if t.parent is None:
            continue
        x1, y1 = pos[t.parent]
        x2, y2 = pos[t.node]
        x1, y1, y2 = x1 + box_w, y1 + box_h / 2, y2 + box_h / 2
        xm = (x1 + x2) / 2
        impact = t.impact.impact if t.impact else 0.0
        body.append(
            f'<path class="link" {attrs(data_from=t.parent, data_to=t.node)} '
            f'd="M{n(x1)},{n(y1)} C{n(xm)},{n(y1)} {n(xm)},{n(y2)} {n(x2)},{n(y2)}" '
            f'stroke-width="{n(1 + 3 * impact)}"/>'
        )
    for t in nodes:
        x, y = pos[t.node]
        if t.impact is None:
            body.append(
                f'<g class="node root" {attrs(data_node=t.node, data_spof="false")}>'
                f'<rect x="{n(x)}" y="{n(y)}" width="{n(box_w)}" height="{n(box_h)}" rx="4" '
                f'fill="#263238"/>'
                + _text(
                    x + 8,
                    y + 14,
                    truncate(a.display_name, box_w - 14, 11),
                    size=11,
                    fill="#ffffff",
                    weight="700",
                )
                + _text(
                    x + 8,
                    y + 28,
                    f"composite {a.composite:.1f} · {a.spof_count} SPOF",
                    size=10,
                    fill="#cfd8dc",
                )
                + "</g>"
            )
            continue
        i = t.impact
        classes = ["node"]
        if i.is_spof:
            classes.append("spof")
        if i.aggregate_market:
            classes.append("market")
        if not t.selected:
            classes.append("context")
        fill = impact_colour(i.impact)
        ink = "#ffffff" if i.impact >= 0.9 else "#1a1a1a"
        stroke = (
            'stroke="#111111" stroke-width="3"'
            if i.is_spof
            else (
                'stroke="#78909c" stroke-width="1" stroke-dasharray="4 3"'
                if i.aggregate_market or not t.selected
                else 'stroke="#90a4ae" stroke-width="1"'
            )
        )
        mark = attrs(
            class_=" ".join(classes),
            data_node=i.node,
            data_impact=f"{i.impact:.6f}",
            data_spof=str(i.is_spof).lower(),
        )
        tip = (
            f"{i.display_name} ({i.node}, {i.kind}): {100 * i.impact:.1f} % of supply lost "
            f"if it fails"
            + ("; SINGLE POINT OF FAILURE" if i.is_spof else "")
            + "\nevidence: "
            + " > ".join(i.evidence_path)
        )
        badge = ""
        name_w = box_w - 14
        if i.is_spof:
            badge = (
                f'<rect class="spof-badge" x="{n(x + box_w - 40)}" y="{n(y + 4)}" width="34" '
                f'height="13" rx="2" fill="#111111"/>'
                + _text(
                    x + box_w - 23,
                    y + 14,
                    "SPOF",
                    anchor="middle",
                    size=9,
                    fill="#ffffff",
                    weight="700",
                )
            )
            name_w -= 38
        body.append(
            f"<g {mark}><title>{esc(tip)}</title>"
            f'<rect x="{n(x)}" y="{n(y)}" width="{n(box_w)}" height="{n(box_h)}" rx="4" '
            f'fill="{fill}" {stroke}/>'
            + _text(
                x + 7, y + 14, truncate(i.display_name, name_w, 11), size=11, fill=ink, weight="600"
            )
            + _text(
                x + 7,
                y + 28,
                f"{i.kind.replace('_', ' ')} · {100 * i.impact:.1f} %",
                size=10,
                fill=ink,
            )
            + badge
            + "</g>"
        )
    return _svg(
        f"tree-{a.provider}",
        max(width, 760.0),
        height,
        body,
        kind="tree",
        label=f"{a.display_name}: supply tree",
    )


def tree_caption(a: RiskAssessment, top_n: int = TREE_TOP_N) -> str:
    shown = len(tree_nodes(a, top_n)) - 1
    total = len(a.structural_impacts)
    return (
        f"{shown} of {total} supply nodes shown: the {top_n} most critical, every single point "
        "of failure and the nodes linking them to the provider along their evidence paths. "
        "Fill = share of the provider's supply lost if the node fails; black outline "
        "and SPOF tag = single point of failure; dashed = a linking node outside the top "
        f"{top_n} or an aggregate market; link width grows with impact."
    )


# -- simulated losses ------------------------------------------------------------------------


def loss_chart(d: LossDistribution, name: str, samples: int) -> str:
    """Histogram of one provider's simulated loss: a bar for no loss, then 20 bins to 1."""
    width, height = 380.0, 214.0
    left, bottom, top = 46.0, 36.0, 40.0
    zero_w, gap = 22.0, 12.0
    axis_x0 = left + zero_w + gap
    axis_w = width - axis_x0 - 12
    plot_h = height - top - bottom
    counts = [d.zero_count, *d.bins]
    peak = max(max(counts), 1) / max(1, samples)
    ymax = _nice_ceiling(peak)
    base = top + plot_h
    body = [_text(left, 16, truncate(name, width - left - 10, 12), weight="700")]
    for t in (0.0, ymax / 2, ymax):
        y = base - plot_h * t / ymax
        body.append(
            f'<line class="grid" x1="{n(left)}" y1="{n(y)}" x2="{n(width - 12)}" y2="{n(y)}"/>'
        )
        body.append(_text(left - 4, y + 4, f"{100 * t:g}%", anchor="end", size=10, cls="tick"))
    h0 = plot_h * (d.zero_count / max(1, samples)) / ymax
    body.append(
        f'<rect class="hist-bar zero" {attrs(data_bin="none", data_count=d.zero_count)} '
        f'x="{n(left + 2)}" y="{n(base - h0)}" width="{n(zero_w - 2)}" height="{n(h0)}" '
        f'fill="#9e9e9e"><title>no loss: {d.zero_count:,} of {samples:,} samples</title></rect>'
    )
    bin_w = axis_w / LOSS_BINS
    for k, count in enumerate(d.bins):
        h = plot_h * (count / max(1, samples)) / ymax
        x = axis_x0 + k * bin_w
        lo, hi = k / LOSS_BINS, (k + 1) / LOSS_BINS
        body.append(
            f'<rect class="hist-bar" {attrs(data_bin=k, data_count=count)} x="{n(x + 0.5)}" '
            f'y="{n(base - h)}" width="{n(bin_w - 1)}" height="{n(h)}" fill="#4e79a7">'
            f"<title>loss {lo:.2f}-{hi:.2f}: {count:,} samples</title></rect>"
        )
    body.append(
        f'<line class="axis" x1="{n(left)}" y1="{n(base)}" x2="{n(width - 12)}" y2="{n(base)}"/>'
    )
    body.append(
        _text(left + zero_w / 2 + 1, base + 13, "none", anchor="middle", size=9, cls="tick")
    )
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        body.append(
            _text(axis_x0 + axis_w * t, base + 13, f"{t:g}", anchor="middle", size=10, cls="tick")
        )
    body.append(
        _text(
            axis_x0 + axis_w / 2,
            base + 28,
            "share of supply lost",
            anchor="middle",
            size=10,
            cls="tick",
        )
    )
    r = d.risk
    for stat, value, colour in (("mean", r.mean_loss, "#2e7d32"), ("p95", r.p95, "#c62828")):
        x = axis_x0 + axis_w * value
        body.append(
            f'<line class="marker" {attrs(data_stat=stat, data_value=f"{value:.6f}")} '
            f'x1="{n(x)}" y1="{n(top - 2)}" x2="{n(x)}" y2="{n(base)}" stroke="{colour}"/>'
        )
    body.append(
        _text(
            left,
            31,
            f"mean {r.mean_loss:.3f} · P95 {r.p95:.3f} · CVaR95 {r.cvar95:.3f} · "
            f"no loss {100 * d.zero_count / max(1, samples):.0f} %",
            size=10,
            fill="#37474f",
        )
    )
    return _svg(
        f"loss-{d.provider}",
        width,
        height,
        body,
        kind="histogram",
        label=f"{name}: simulated loss distribution",
    )


def _nice_ceiling(value: float) -> float:
    for step in (0.05, 0.1, 0.2, 0.25, 0.4, 0.5, 0.6, 0.8, 1.0):
        if value <= step:
            return step
    return 1.0


# -- trajectory -------------------------------------------------------------------------------

#: Providers' lines in the trajectory charts, in report order.
PROVIDER_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#b07aa1",
    "#9c755f",
    "#edc948",
    "#ff9da7",
    "#bab0ac",
)


def provider_colours(data: ReportData) -> dict[str, str]:
    return {p: PROVIDER_PALETTE[k % len(PROVIDER_PALETTE)] for k, p in enumerate(data.provider_ids)}


def trajectory_chart(data: ReportData, measure: str) -> str:
    """One line per provider over the quarters: ``composite`` (0-100, on a range around the
    values so movements show; the axis says where it starts) or ``own`` (own silicon's share
    of accelerator compute, 0-100 %)."""
    rows = data.trajectory
    quarters = list(dict.fromkeys(r.quarter for r in rows))
    colours = provider_colours(data)

    def value(r: TrajectoryPoint) -> float:
        if measure == "composite":
            return r.composite
        sov = r.assessment.sovereignty
        return 100.0 * (sov.own_silicon_share if sov else 0.0)

    values = [value(r) for r in rows]
    if measure == "composite":
        lo = max(0.0, 5.0 * math.floor((min(values, default=0.0) - 2.0) / 5.0))
        hi = min(100.0, 5.0 * math.ceil((max(values, default=100.0) + 2.0) / 5.0))
        title, unit = "Composite score by quarter (0-100, higher = riskier)", ""
    else:
        lo, hi = 0.0, 100.0
        title, unit = "Own silicon's share of accelerator compute by quarter", "%"
    hi = hi if hi > lo else lo + 1.0
    width, height = 600.0, 300.0
    left, right, top, bottom = 44.0, 12.0, 34.0, 64.0
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(quarters) - 1)

    def x_of(k: int) -> float:
        return left + step * k

    def y_of(v: float) -> float:
        return top + plot_h * (1.0 - (v - lo) / (hi - lo))

    body = [_text(left, 18, title, weight="700")]
    tick = 5.0 if measure == "composite" and hi - lo <= 40 else 25.0
    for t in [lo + tick * k for k in range(int((hi - lo) / tick + 1e-9) + 1)]:
        y = y_of(t)
        body.append(
            f'<line class="grid" x1="{n(left)}" y1="{n(y)}" x2="{n(width - right)}" y2="{n(y)}"/>'
        )
        body.append(_text(left - 4, y + 4, f"{t:.0f}{unit}", anchor="end", size=10, cls="tick"))
    for k, q in enumerate(quarters):
        if k % 4 == 0 or k == len(quarters) - 1:
            anchor = "end" if k == len(quarters) - 1 and k else "middle"
            body.append(_text(x_of(k), top + plot_h + 14, q, anchor=anchor, size=10, cls="tick"))
    index = {q: k for k, q in enumerate(quarters)}
    for pid in data.provider_ids:
        mine = [r for r in rows if r.provider == pid]
        if not mine:
            continue
        points = " ".join(f"{n(x_of(index[r.quarter]))},{n(y_of(value(r)))}" for r in mine)
        body.append(
            f'<polyline class="trajectory-line" {attrs(data_provider=pid, data_measure=measure)} '
            f'points="{points}" fill="none" stroke="{colours[pid]}" stroke-width="2"/>'
        )
        for r in mine:
            body.append(
                f'<circle class="trajectory-point" '
                f"{attrs(data_provider=pid, data_quarter=r.quarter, data_value=f'{value(r):.6f}')} "
                f'cx="{n(x_of(index[r.quarter]))}" cy="{n(y_of(value(r)))}" r="2.5" '
                f'fill="{colours[pid]}"><title>{esc(pid)} {esc(r.quarter)}: '
                f"{value(r):.1f}{unit}</title></circle>"
            )
    names = data.names()
    legend_y = height - 24
    per_row = 4
    for k, pid in enumerate(data.provider_ids):
        lx = left + (k % per_row) * 140.0
        ly = legend_y + (k // per_row) * 14.0
        body.append(
            f'<rect x="{n(lx)}" y="{n(ly - 8)}" width="10" height="10" fill="{colours[pid]}"/>'
        )
        body.append(_text(lx + 14, ly + 1, truncate(names.get(pid, pid), 120, 10), size=10))
    return _svg(f"trajectory-{measure}", width, height, body, kind="trajectory", label=title)
