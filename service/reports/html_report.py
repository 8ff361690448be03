"""HTML: one self-contained file (inline CSS and SVG; no scripts, fonts or fetches).

The only external URLs in the document are the sources' own links, as plain
``<a class="source-link" href>`` anchors in the sources table: nothing is loaded from them.
"""

from __future__ import annotations

from sovrisk.models.scoring.assessment import CheckStatus, RiskAssessment
from sovrisk.models.scoring.params import SUB_SCORES
from sovrisk.service.reports import common as c
from sovrisk.service.reports import svg
from sovrisk.service.reports.data import ReportData
from sovrisk.service.reports.mapping import ARIBA_CATEGORIES, ariba_1_100, coupa_level
from sovrisk.service.reports.svg import esc

#: Structural impacts listed per provider under the tree.
TOP_IMPACTS = 12

CSS = """
:root { --ink: #1a1a1a; --muted: #5f6b73; --rule: #d7dde2; --bg: #ffffff; --soft: #f5f7f9; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  "Liberation Sans", "DejaVu Sans", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 8px; padding-bottom: 4px;
  border-bottom: 2px solid var(--ink); }
h3 { font-size: 15px; margin: 22px 0 6px; }
p.lead, p.note, .muted { color: var(--muted); }
p.note { font-size: 12px; margin: 4px 0 10px; }
nav.toc { background: var(--soft); border: 1px solid var(--rule); padding: 8px 14px;
  margin: 14px 0; font-size: 13px; }
nav.toc a { margin-right: 14px; color: #1f4e79; text-decoration: none; white-space: nowrap; }
.figure { overflow-x: auto; margin: 6px 0 4px; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg.chart text { font-family: inherit; }
svg.chart text:not([fill]) { fill: var(--ink); }
svg.chart text.tick { fill: var(--muted); }
svg.chart .grid { stroke: #cfd6dc; stroke-width: 1; }
svg.chart .axis { stroke: #607d8b; stroke-width: 1; }
svg.chart .marker { stroke-width: 2; stroke-dasharray: 4 2; }
svg.chart path.link { fill: none; stroke: #90a4ae; stroke-opacity: 0.85; }
.grid-3 { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr));
  gap: 8px 16px; }
.grid-2 { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr));
  gap: 8px 16px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 12.5px; }
th, td { border: 1px solid var(--rule); padding: 4px 7px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.path, code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 11.5px; }
td.path { word-break: break-word; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 3px; font-size: 11px;
  font-weight: 700; color: #fff; white-space: nowrap; }
.band-low { background: #2e7d32; } .band-moderate { background: #f9a825; color: #1a1a1a; }
.band-high { background: #ef6c00; } .band-critical { background: #c62828; }
.status-pass { background: #2e7d32; } .status-fail { background: #c62828; }
.status-inconclusive { background: #f9a825; color: #1a1a1a; }
.spof-tag { background: #111; }
.summary { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0 4px; }
.summary div { background: var(--soft); border: 1px solid var(--rule); padding: 6px 12px; }
.summary b { display: block; font-size: 18px; }
section.provider { border-top: 1px solid var(--rule); margin-top: 28px; }
dl.prov { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; font-size: 12.5px; }
dl.prov dt { color: var(--muted); } dl.prov dd { margin: 0; word-break: break-all; }
.nowrap { white-space: nowrap; }
footer { margin-top: 36px; font-size: 12px; color: var(--muted); }
@media print {
  body { font-size: 11px; }
  main { max-width: none; padding: 0; }
  nav.toc { display: none; }
  h2 { break-after: avoid; }
  section.provider { break-before: page; }
  .figure, table, tr, svg.chart { break-inside: avoid; }
  .figure { overflow: visible; }
  a { color: inherit; text-decoration: none; }
}
@page { size: A4 landscape; margin: 12mm; }
"""


def _band(a: RiskAssessment) -> str:
    return f'<span class="badge band-{esc(a.band.value)}">{esc(a.band.value)}</span>'


def _table(
    header: list[str], rows: list[list[str]], *, numeric: set[int] | None = None, cls: str = ""
) -> str:
    """Cells are HTML already (escape before); ``numeric`` column indexes align right."""
    numeric = numeric or set()
    head = "".join(
        f'<th class="num">{h}</th>' if k in numeric else f"<th>{h}</th>"
        for k, h in enumerate(header)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{v}</td>' if k in numeric else f"<td>{v}</td>"
            for k, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(svg_text: str, caption: str = "") -> str:
    note = f'<p class="note">{esc(caption)}</p>' if caption else ""
    return f'<div class="figure">{svg_text}</div>{note}'


def _sub(a: RiskAssessment, key: str) -> str:
    value = c.sub_value(a, key)
    return "n/a" if value is None else c.score(value)


def _header(data: ReportData) -> str:
    top = data.assessments[0]
    # Distinct nodes, not the sum of per-provider counts (a node cutting six providers is one
    # single point of failure, in six provider-node pairs).
    nodes = c.spof_nodes(data.assessments)
    pairs = sum(a.spof_count for a in data.assessments)
    toc = [("ranking", "Ranking"), ("subscores", "Sub-scores"), ("procurement", "Procurement")]
    toc += [("chokepoints", "Chokepoints")]
    if data.trajectory:
        toc.append(("trajectory", "Over time"))
    toc += [("exposure", "Country exposure")]
    if data.simulation:
        toc.append(("losses", "Simulated losses"))
    toc += [(f"provider-{a.provider}", a.display_name) for a in data.assessments]
    toc += [("sources", "Sources"), ("provenance", "Provenance")]
    links = " ".join(f'<a href="#{esc(k)}">{esc(v)}</a>' for k, v in toc)
    return (
        f"<header><h1>{esc(c.TITLE)}</h1>"
        f'<p class="lead">As of <b>{esc(data.params.as_of.isoformat())}</b> · dataset '
        f"{esc(data.dataset_version)} · model {esc(data.model_version)} · "
        f"{len(data.assessments)} provider(s). {esc(c.INTERPRETATION)}</p>"
        '<div class="summary">'
        f"<div>riskiest<b>{esc(top.display_name)}</b></div>"
        f"<div>highest composite<b>{top.composite:.1f}</b></div>"
        f'<div title="{esc(c.spof_summary(data.assessments))}">single points of failure '
        f"(distinct nodes)<b>{len(nodes)}</b><small>{pairs} provider–node pairs</small></div>"
        f"<div>dataset hash<b><code>{esc(data.dataset_hash[:12])}</code></b></div>"
        "</div>"
        f'<nav class="toc">{links}</nav></header>'
    )


def _ranking(data: ReportData) -> str:
    rows = []
    u = data.uncertainty
    for rank, a in enumerate(data.assessments, start=1):
        top = a.country_impacts[0] if a.country_impacts else None
        veto = a.largest_foreign_veto
        rows.append(
            [
                c.rank_label(u, a.provider, rank),
                f'<a href="#provider-{esc(a.provider)}">{esc(a.display_name)}</a>',
                f"{a.composite:.1f}",
                *([esc(c.interval_label(u, a.provider))] if u else []),
                _band(a),
                *(_sub(a, k) for k in SUB_SCORES),
                str(a.spof_count),
                esc(f"{top.country} {c.pct(top.impact)}") if top else "-",
                esc(f"{veto.country} {c.pct(veto.veto)}") if veto else "-",
            ]
        )
    header = ["#", "provider", "composite", *(["90 % range"] if u else []), "band"]
    header += [*(c.SUB_SCORE_SHORT[k] for k in SUB_SCORES), "SPOFs", "top country", "foreign veto"]
    first_sub = 5 if u else 4
    numeric = {0, 2, *range(first_sub, first_sub + len(SUB_SCORES)), first_sub + len(SUB_SCORES)}
    return (
        '<section id="ranking"><h2>Ranking</h2>'
        + _figure(
            svg.ranking_chart(data),
            "Composite 0-100 (higher = riskier) = max(weighted sub-scores, "
            f"{data.assessments[0].floor_alpha:g} x the largest sub-score); "
            "background = band (low < 25 ≤ moderate < 50 ≤ high < 75 ≤ critical).",
        )
        + _table(header, rows, numeric=numeric, cls="ranking")
        + "".join(f'<p class="note">{esc(n)}</p>' for n in c.uncertainty_notes(u))
        + "</section>"
    )


def _subscores(data: ReportData) -> str:
    return (
        '<section id="subscores"><h2>Sub-scores</h2>'
        + _figure(
            svg.heatmap_chart(data),
            "Each sub-score 0-100 (higher = riskier); grey = no data (its weight is 0 and the "
            "others are renormalised). The explanations are in each provider's section.",
        )
        + "</section>"
    )


def _procurement(data: ReportData) -> str:
    names = [name for name, _ in ARIBA_CATEGORIES]
    names += ["coupa_inherent_risk", "coupa_residual_risk", "coupa_mitigation_credit"]
    # Break the long field names at their underscores.
    header = ["provider", *(esc(name).replace("_", "_<wbr>") for name in names)]
    rows = []
    for a in data.assessments:
        values = []
        for _, key in ARIBA_CATEGORIES:
            v = ariba_1_100(a.composite if key == "composite" else c.sub_value(a, key))
            values.append('<span class="muted">unknown</span>' if v is None else str(v))
        m = data.mitigations[a.provider]
        rows.append(
            [
                f'<code class="nowrap">{esc(a.provider)}</code>',
                *values,
                f'<span class="nowrap">{esc(coupa_level(m.inherent))} ({m.inherent:.1f})</span>',
                f'<span class="nowrap">{esc(coupa_level(m.residual))} ({m.residual:.1f})</span>',
                f"{m.credit:.2f}",
            ]
        )
    numeric = {*range(1, 1 + len(ARIBA_CATEGORIES)), 3 + len(ARIBA_CATEGORIES)}
    return (
        '<section id="procurement"><h2>Procurement fields</h2>'
        '<p class="note">SAP Ariba custom risk categories as integers 1-100 (unknown = no data: '
        "an empty CSV cell, Ariba's Unknown); Coupa inherent risk (before the resilience "
        "buffers: inventory, spare capacity, re-routing) and residual risk (the composite). "
        "Mapping: "
        "docs/reports.md.</p>" + _table(header, rows, numeric=numeric) + "</section>"
    )


def _chokepoints(data: ReportData) -> str:
    parts = [
        '<section id="chokepoints"><h2>Top chokepoints</h2>'
        f'<p class="note">Cells: share of each provider\'s supply lost (%) if the chokepoint is '
        f"lost. Ranked by how many of these providers it cuts to "
        f"{c.pct(data.min_impact, 0)} or more, then by mean impact.</p>"
    ]
    for kind, rows in data.chokepoints.items():
        parts.append(f"<h3>{esc(c.CHOKEPOINT_TITLES[kind])}</h3>")
        parts.append(_figure(svg.chokepoint_chart(kind, rows, data)))
    parts.append("</section>")
    return "".join(parts)


def _exposure(data: ReportData, colours: dict[str, str]) -> str:
    return (
        '<section id="exposure"><h2>Country exposure</h2>'
        + _figure(
            svg.exposure_chart(data, colours),
            "Where each provider's sourcing is sited: the layer-weighted country shares behind "
            "the geopolitical sub-score (each row sums to 100 %). Per-layer splits are in each "
            "provider's section.",
        )
        + "</section>"
    )


def _losses(data: ReportData) -> str:
    sim = data.simulation
    if sim is None:
        return ""
    names = data.names()
    charts = "".join(
        f"<div>{svg.loss_chart(d, names[d.provider], sim.result.n_samples)}</div>"
        for d in sim.distributions
    )
    rows = []
    for d in sim.distributions:
        r = d.risk
        driver = r.attributions[0] if r.attributions else None
        rows.append(
            [
                esc(names[d.provider]),
                f"{r.mean_loss:.3f} ± {r.mean_loss_se:.3f}",
                f"{r.p50:.3f}",
                f"{r.p95:.3f}",
                f"{r.cvar95:.3f}",
                f"{r.prob_shortfall:.3f}",
                esc(c.pct(d.zero_count / max(1, sim.result.n_samples))),
                esc(f"{driver.name} ({driver.cvar95_delta:+.3f})") if driver else "-",
            ]
        )
    header = ["provider", "mean loss", "P50", "P95", "CVaR95", "Pr(a &lt; 0.5)", "no loss"]
    header.append("top driver (CVaR95 contribution)")
    return (
        '<section id="losses"><h2>Simulated loss distribution</h2>'
        f'<p class="note">{sim.result.n_samples:,} samples, seed {sim.result.seed}, '
        f"{len(sim.result.events)} events. {esc(c.SIMULATION_NOTE)} Grey bar: samples with no "
        "loss; dashed lines: mean (green) and P95 (red).</p>"
        f'<div class="grid-3">{charts}</div>'
        + _table(header, rows, numeric={1, 2, 3, 4, 5, 6})
        + "</section>"
    )


def _status(status: CheckStatus) -> str:
    return f'<span class="badge status-{esc(status.value)}">{esc(status.value.upper())}</span>'


def _provider(a: RiskAssessment, colours: dict[str, str]) -> str:
    pid = esc(a.provider)
    subs = _table(
        ["sub-score", "score", "weight", "contribution", "explanation"],
        [
            [
                esc(c.SUB_SCORE_LABELS[s.key]),
                c.score(s.score) if s.available else "n/a",
                f"{s.weight:.3f}",
                f"{s.contribution:.2f}",
                esc(s.explanation),
            ]
            for s in a.sub_scores
        ]
        + [
            [
                "floor uplift",
                "",
                "",
                f"{a.floor_uplift:.2f}",
                esc(
                    f"composite = max(sum of contributions, {a.floor_alpha:g} x the largest "
                    "sub-score)"
                ),
            ]
        ],
        numeric={1, 2, 3},
        cls="subscores",
    )
    impacts = _table(
        ["node", "kind", "impact", "", "evidence path"],
        [
            [
                f"{esc(i.display_name)} <code>{esc(i.node)}</code>",
                esc(i.kind),
                esc(c.pct(i.impact)),
                '<span class="badge spof-tag">SPOF</span>'
                if i.is_spof
                else ("market" if i.aggregate_market else ""),
                f'<span class="path">{esc(" > ".join(i.evidence_path))}</span>',
            ]
            for i in a.structural_impacts[:TOP_IMPACTS]
        ],
        numeric={2},
        cls="impacts",
    )
    checks = _table(
        ["status", "check", "reason", "evidence", "remediation"],
        [
            [
                _status(ch.status),
                f"{esc(ch.title)}<br><code>{esc(ch.id)}</code>",
                esc(ch.reason),
                f'<span class="path">{esc(" > ".join(ch.evidence_path))}</span>',
                esc(ch.remediation),
            ]
            for ch in a.checks
        ],
        cls="checks",
    )
    in_force = [r for r in a.regimes if r.in_force]
    regimes = (
        _table(
            ["issuer", "regime", "citation", "binds", "veto", "nodes reached"],
            [
                [
                    esc(r.issuer),
                    esc(r.display_name),
                    esc(r.citation),
                    "yes" if r.binds_provider else "no",
                    esc(c.pct(r.veto)),
                    str(r.reached_nodes),
                ]
                for r in in_force
            ],
            numeric={4, 5},
            cls="regimes",
        )
        if in_force
        else '<p class="note">No export-control regime in force on this date.</p>'
    )
    countries = _table(
        ["country", "impact if lost", "country risk", "evidence path"],
        [
            [
                esc(f"{ci.display_name} ({ci.country})"),
                esc(c.pct(ci.impact)),
                f"{ci.country_risk:.1f}",
                f'<span class="path">{esc(" > ".join(ci.evidence_path))}</span>',
            ]
            for ci in a.country_impacts[:8]
        ],
        numeric={1, 2},
        cls="countries",
    )
    cov = a.coverage
    coverage = (
        f'<p class="coverage">Flow on A-quality data {esc(c.pct(cov.flow_share_a, 0))}, '
        f"B {esc(c.pct(cov.flow_share_b, 0))}, C {esc(c.pct(cov.flow_share_c, 0))}; "
        f"{cov.edges_total} edges ({cov.edges_with_range} with ranges), {cov.nodes_total} "
        f"nodes. {esc(cov.notes)}</p>"
    )
    fails = sum(1 for ch in a.checks if ch.status is CheckStatus.FAIL)
    return (
        f'<section class="provider" id="provider-{pid}" data-provider="{pid}">'
        f"<h2>{esc(a.display_name)} <code>providers/{pid}</code></h2>"
        f'<p class="lead"><b>{a.composite:.1f} / 100</b> {_band(a)} · home country '
        f"{esc(a.home_country)} · {a.spof_count} single point(s) of failure · {fails} failed "
        f"check(s) · risk vector <code>{esc(a.risk_vector)}</code></p>"
        "<h3>Sub-scores and why</h3>"
        + subs
        + "<h3>Supply tree and single points of failure</h3>"
        + _figure(svg.tree_chart(a), svg.tree_caption(a))
        + impacts
        + "<h3>Country exposure per layer</h3>"
        + _figure(
            svg.layers_chart(a, colours),
            "⚑ = the layer's largest firm or country holds more than 65 % (SIA/BCG flag).",
        )
        + countries
        + f"<h3>Export controls in force on {esc(a.provenance.as_of.isoformat())}</h3>"
        + regimes
        + "<h3>Checks</h3>"
        + checks
        + "<h3>Data coverage</h3>"
        + coverage
        + "</section>"
    )


def _sources(data: ReportData) -> str:
    rows = []
    for s in data.sources:
        src = s.source
        link = (
            f'<a class="source-link" href="{esc(src.url)}">{esc(src.url)}</a>'
            if src.url.startswith(("http://", "https://"))
            else esc(src.url)
        )
        rows.append(
            [
                f"<code>{esc(src.id)}</code>",
                esc(src.title),
                esc(src.publisher),
                esc(src.date),
                esc(src.quality.value),
                str(s.records),
                esc(", ".join(s.kinds)),
                link,
            ]
        )
    return (
        '<section id="sources"><h2>Sources</h2>'
        '<p class="note">Every source cited by the records these scores rest on (the providers, '
        "their supply-tree nodes, supply edges, sites, the regimes reaching them and the "
        "country-risk rows), most cited first. Links are listed, never loaded.</p>"
        + _table(
            ["id", "title", "publisher", "date", "quality", "records", "cited by", "link"],
            rows,
            numeric={5},
            cls="sources",
        )
        + "</section>"
    )


def _trajectory(data: ReportData) -> str:
    if not data.trajectory:
        return ""
    names = data.names()
    quarters = list(dict.fromkeys(r.quarter for r in data.trajectory))
    by = {(r.provider, r.quarter): r for r in data.trajectory}
    rows = []
    for q in quarters:
        cells = [esc(q)]
        for pid in data.provider_ids:
            r = by.get((pid, q))
            sov = r.assessment.sovereignty if r else None
            own = 100 * (sov.own_silicon_share if sov else 0.0)
            cells.append("" if r is None else f"{r.composite:.1f} <small>({own:.0f} %)</small>")
        rows.append(cells)
    notes = sorted({n for r in data.trajectory for n in r.notes})
    note_html = "".join(f"<li>{esc(n)}</li>" for n in notes[:12])
    more = f"<li>... and {len(notes) - 12} more</li>" if len(notes) > 12 else ""
    first, last = quarters[0], quarters[-1]
    return (
        '<section id="trajectory"><h2>Over time</h2>'
        f'<p class="note">Every provider scored as of the last day of each quarter, {esc(first)} '
        f"to {esc(last)}: that quarter's fleet mix (fleet.csv, compute-weighted), its pools' "
        "capacities and the regimes in force. The own-silicon share is of the quarter's new "
        "accelerator compute.</p>"
        + '<div class="grid-2">'
        + f"<div>{_figure(svg.trajectory_chart(data, 'composite'))}</div>"
        + f"<div>{_figure(svg.trajectory_chart(data, 'own'))}</div>"
        + "</div>"
        + _table(
            ["quarter", *(names.get(p, p) for p in data.provider_ids)],
            rows,
            numeric=set(range(1, len(data.provider_ids) + 1)),
            cls="trajectory",
        )
        + (
            '<p class="note">Series used outside their range:</p>'
            f'<ul class="note">{note_html}{more}</ul>'
            if notes
            else ""
        )
        + "</section>"
    )


def _provenance(data: ReportData) -> str:
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in c.provenance_rows(data))
    return f'<section id="provenance"><h2>Provenance</h2><dl class="prov">{items}</dl></section>'


def render(data: ReportData) -> bytes:
    colours = svg.country_colours(data)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="sovrisk {esc(data.model_version)}">',
        f"<title>{esc(c.TITLE)} ({esc(data.params.as_of.isoformat())})</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body><main>",
        _header(data),
        _ranking(data),
        _subscores(data),
        _procurement(data),
        _chokepoints(data),
        _trajectory(data),
        _exposure(data, colours),
        _losses(data),
        *(_provider(a, colours) for a in data.assessments),
        _sources(data),
        _provenance(data),
        f"<footer>Generated by sovrisk {esc(data.model_version)} from dataset "
        f"{esc(data.dataset_version)} (sha256 {esc(data.dataset_hash)}). "
        f"{esc(c.INTERPRETATION)}</footer>",
        "</main></body>",
        "</html>",
    ]
    return ("\n".join(p for p in parts if p) + "\n").encode("utf-8")
