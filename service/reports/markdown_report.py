"""Markdown for wikis: the HTML report's sections as tables and text (no charts)."""

from __future__ import annotations

import html

from sovrisk.models.scoring.assessment import RiskAssessment
from sovrisk.models.scoring.params import SUB_SCORES
from sovrisk.service.reports import common as c
from sovrisk.service.reports.data import ReportData
from sovrisk.service.reports.mapping import ARIBA_CATEGORIES, ariba_1_100, coupa_level

#: Structural impacts listed per provider.
TOP_IMPACTS = 12


def text(value: object) -> str:
    """Running text: ``&``, ``<`` and ``>`` escaped (wiki renderers take raw tags for HTML)."""
    return html.escape(str(value), quote=False)


def cell(value: object) -> str:
    """Table-cell text: escaped, pipes escaped, line breaks flattened, never empty."""
    out = text(value).replace("\\", "\\\\").replace("|", "\\|")
    out = " ".join(out.split())
    return out or "-"


def table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    """A GitHub-flavoured table; ``align`` has one letter per column (l/r), default left."""
    marks = [("---:" if (align[k : k + 1] == "r") else "---") for k in range(len(header))]
    out = ["| " + " | ".join(cell(h) for h in header) + " |", "| " + " | ".join(marks) + " |"]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out


def _sub(a: RiskAssessment, key: str) -> str:
    value = c.sub_value(a, key)
    return "n/a" if value is None else c.score(value)


def _ranking(data: ReportData) -> list[str]:
    u = data.uncertainty
    header = ["#", "provider", "composite", *(["90 % range"] if u else []), "band"]
    header += [c.SUB_SCORE_SHORT[k] for k in SUB_SCORES]
    header += ["SPOFs", "top country (impact)", "largest foreign veto"]
    rows = []
    for rank, a in enumerate(data.assessments, start=1):
        top = a.country_impacts[0] if a.country_impacts else None
        veto = a.largest_foreign_veto
        rows.append(
            [c.rank_label(u, a.provider, rank), f"{a.display_name} (`{a.provider}`)"]
            + [c.score(a.composite), *([c.interval_label(u, a.provider)] if u else [])]
            + [a.band.value]
            + [_sub(a, k) for k in SUB_SCORES]
            + [
                str(a.spof_count),
                f"{top.country} {c.pct(top.impact)}" if top else "-",
                f"{veto.country} {c.pct(veto.veto)}" if veto else "-",
            ]
        )
    align = "llr" + ("l" if u else "") + "l" + "r" * len(SUB_SCORES) + "rll"
    notes = ["", *(f"_{n}_" for n in c.uncertainty_notes(u))] if u else []
    return table(header, rows, align) + notes


def _procurement(data: ReportData) -> list[str]:
    header = ["provider"] + [name for name, _ in ARIBA_CATEGORIES]
    header += ["coupa_inherent_risk", "coupa_residual_risk", "mitigation credit"]
    rows = []
    for a in data.assessments:
        values = []
        for _, key in ARIBA_CATEGORIES:
            v = ariba_1_100(a.composite if key == "composite" else c.sub_value(a, key))
            values.append("unknown" if v is None else str(v))
        m = data.mitigations[a.provider]
        rows.append(
            [
                a.provider,
                *values,
                f"{coupa_level(m.inherent)} ({c.score(m.inherent)})",
                f"{coupa_level(m.residual)} ({c.score(m.residual)})",
                f"{m.credit:.2f}",
            ]
        )
    return table(header, rows, "l" + "r" * len(ARIBA_CATEGORIES) + "llr")


def _chokepoints(data: ReportData) -> list[str]:
    out: list[str] = []
    n = len(data.assessments)
    for kind, rows in data.chokepoints.items():
        out += ["", f"### {c.CHOKEPOINT_TITLES[kind]}", ""]
        header = ["#", "chokepoint", f"providers cut (of {n})", "mean impact"]
        header += [a.provider for a in data.assessments]
        body = [
            [
                str(r),
                f"{cp.display_name} (`{cp.key}`)",
                str(cp.providers_cut),
                c.pct(cp.mean_impact),
            ]
            + [c.pct(v, 0) for _, v in cp.impacts]
            for r, cp in enumerate(rows, start=1)
        ]
        out += table(header, body, "llrr" + "r" * n) if body else ["(none)"]
    return out


def _simulation(data: ReportData) -> list[str]:
    sim = data.simulation
    if sim is None:
        return []
    out = [
        "",
        "## Simulated loss distribution",
        "",
        f"{sim.result.n_samples:,} samples, seed {sim.result.seed}, "
        f"{len(sim.result.events)} events. {c.SIMULATION_NOTE}",
        "",
    ]
    names = data.names()
    rows = []
    for d in sim.distributions:
        r = d.risk
        driver = r.attributions[0] if r.attributions else None
        rows.append(
            [
                names[d.provider],
                f"{r.mean_loss:.3f} ± {r.mean_loss_se:.3f}",
                f"{r.p50:.3f}",
                f"{r.p95:.3f}",
                f"{r.cvar95:.3f}",
                f"{r.prob_shortfall:.3f}",
                c.pct(d.zero_count / max(1, sim.result.n_samples)),
                f"{driver.name} ({driver.cvar95_delta:+.3f})" if driver else "-",
            ]
        )
    out += table(
        ["provider", "mean loss", "P50", "P95", "CVaR95", "Pr(a < 0.5)", "no loss", "top driver"],
        rows,
        "lrrrrrrl",
    )
    return out


def _provider(data: ReportData, a: RiskAssessment) -> list[str]:
    out = [
        "",
        f"## {text(a.display_name)} (`providers/{a.provider}`)",
        "",
        f"**{c.score(a.composite)} / 100, {a.band.value}**; home country {a.home_country}; "
        f"{a.spof_count} single point(s) of failure; floor uplift {a.floor_uplift:.2f} "
        f"(composite = max(sum of contributions, {a.floor_alpha:g} x max sub-score)).",
        "",
        "### Sub-scores",
        "",
    ]
    out += table(
        ["sub-score", "score", "weight", "contribution", "explanation"],
        [
            [
                c.SUB_SCORE_LABELS[s.key],
                c.score(s.score) if s.available else "n/a",
                f"{s.weight:.3f}",
                f"{s.contribution:.2f}",
                s.explanation,
            ]
            for s in a.sub_scores
        ],
        "lrrrl",
    )
    out += ["", f"### Supply tree: top {TOP_IMPACTS} nodes by structural impact", ""]
    out += table(
        ["node", "kind", "impact", "SPOF", "evidence path"],
        [
            [
                f"{i.display_name} (`{i.node}`)",
                i.kind,
                c.pct(i.impact),
                "**SPOF**" if i.is_spof else ("market" if i.aggregate_market else ""),
                " > ".join(i.evidence_path),
            ]
            for i in a.structural_impacts[:TOP_IMPACTS]
        ],
        "llrll",
    )
    out += ["", "### Country exposure per layer", ""]
    out += table(
        [
            "layer",
            "weight",
            "country HHI",
            "countries (share of the layer)",
            "firm HHI",
            "top firm",
        ],
        [
            [
                lc.layer,
                f"{lc.weight:.3f}",
                f"{lc.country_hhi:,.0f}",
                ", ".join(f"{s.key} {c.pct(s.share, 0)}" for s in lc.country_shares),
                f"{lc.firm_hhi:,.0f}",
                f"{lc.firm_top.key} {c.pct(lc.firm_top.share, 0)}",
            ]
            for lc in sorted(a.layers, key=lambda lc: c.layer_key(lc.layer))
        ],
        "lrrlrl",
    )
    out += ["", "### Checks", ""]
    out += table(
        ["status", "check", "reason", "evidence", "remediation"],
        [
            [
                ch.status.value.upper(),
                f"{ch.title} (`{ch.id}`)",
                ch.reason,
                " > ".join(ch.evidence_path),
                ch.remediation,
            ]
            for ch in a.checks
        ],
    )
    cov = a.coverage
    out += [
        "",
        f"**Data coverage**: A {c.pct(cov.flow_share_a, 0)} / B {c.pct(cov.flow_share_b, 0)} / "
        f"C {c.pct(cov.flow_share_c, 0)} of the supply flow; {cov.edges_total} edges "
        f"({cov.edges_with_range} with ranges), {cov.nodes_total} nodes. {text(cov.notes)}",
        "",
        f"Risk vector: `{a.risk_vector}`",
    ]
    return out


def _trajectory(data: ReportData) -> list[str]:
    if not data.trajectory:
        return []
    names = data.names()
    quarters = list(dict.fromkeys(r.quarter for r in data.trajectory))
    by = {(r.provider, r.quarter): r for r in data.trajectory}

    def cell(pid: str, q: str) -> str:
        r = by.get((pid, q))
        if r is None:
            return ""
        sov = r.assessment.sovereignty
        return f"{r.composite:.1f} ({100 * (sov.own_silicon_share if sov else 0.0):.0f} %)"

    out = [
        "",
        "## Over time",
        "",
        "Composite per quarter (own silicon's share of new accelerator compute), each scored "
        "as of the quarter's last day with that quarter's fleets, capacities and regimes.",
        "",
    ]
    out += table(
        ["quarter", *(names.get(p, p) for p in data.provider_ids)],
        [[q, *(cell(p, q) for p in data.provider_ids)] for q in quarters],
    )
    return out


def render(data: ReportData) -> bytes:
    out = [
        f"# {c.TITLE}",
        "",
        f"As of {data.params.as_of.isoformat()}; dataset {data.dataset_version} "
        f"(sha256 {data.dataset_hash[:12]}); model {data.model_version}. {c.INTERPRETATION}",
        "",
        "## Ranking",
        "",
    ]
    out += _ranking(data)
    out += ["", c.spof_summary(data.assessments)]
    out += ["", "## Procurement fields (SAP Ariba 1-100, Coupa inherent / residual)", ""]
    out += _procurement(data)
    out += ["", "## Top chokepoints", ""]
    out += [
        f"Ranked by how many of these providers each can cut to {c.pct(data.min_impact, 0)} "
        "or more of their supply, then by mean impact."
    ]
    out += _chokepoints(data)
    out += _trajectory(data)
    out += _simulation(data)
    for a in data.assessments:
        out += _provider(data, a)
    out += ["", "## Sources", ""]
    out += table(
        ["id", "title", "publisher", "date", "quality", "cited by", "url"],
        [
            [
                f"`{s.source.id}`",
                s.source.title,
                s.source.publisher,
                s.source.date,
                s.source.quality.value,
                f"{s.records} records ({', '.join(s.kinds)})",
                s.source.url,
            ]
            for s in data.sources
        ],
    )
    out += ["", "## Provenance", ""]
    out += table(["", "value"], [[k, v] for k, v in c.provenance_rows(data)])
    return ("\n".join(out) + "\n").encode("utf-8")
