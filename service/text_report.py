"""Plain-text renderings of assessments for the terminal (``sovrisk score``, ``make run``)."""

from __future__ import annotations

from collections.abc import Sequence

from sovrisk.models.scoring.assessment import SCORE_INTERPRETATION, RiskAssessment
from sovrisk.models.scoring.uncertainty import COMPOSITE, Uncertainty
from sovrisk.service.text_table import SUB_SCORE_SHORT, fit_table


def _interval_cell(u: Uncertainty | None, provider: str) -> str:
    if u is None:
        return ""
    i = u.of(provider).interval(COMPOSITE)
    return f"{i.low:.1f}-{i.high:.1f}"


def _rank_cell(u: Uncertainty | None, provider: str, rank: int) -> str:
    if u is None:
        return str(rank)
    return f"{rank}" + (" " if u.of(provider).rank_certain else "?")  # digits stay aligned


def spof_nodes(assessments: Sequence[RiskAssessment]) -> tuple[str, ...]:
    """The distinct nodes that are a single point of failure for at least one provider
    (aggregate markets excluded, as in ``spof_count``), sorted."""
    return tuple(
        sorted(
            {
                i.node
                for a in assessments
                for i in a.structural_impacts
                if i.is_spof and not i.aggregate_market
            }
        )
    )


def spof_summary(assessments: Sequence[RiskAssessment]) -> str:
    """Distinct SPOF nodes, then provider-node pairs: summing ``spof_count`` over providers
    counts a node once per provider it cuts, which read as a node count overstates it."""
    nodes = spof_nodes(assessments)
    pairs = sum(a.spof_count for a in assessments)
    if not nodes:
        return "Single points of failure: none."
    return (
        f"Single points of failure: {len(nodes)} distinct node(s) ({', '.join(nodes)}), "
        f"{pairs} provider–node pair(s) (the SPOFs column counts nodes per provider)."
    )


#: Ranking columns a narrow terminal loses first (the last first).
RANKING_DROPPABLE = ("SPOFs", "top country", "foreign veto")


def ranking_table(
    assessments: Sequence[RiskAssessment],
    uncertainty: Uncertainty | None = None,
    *,
    width: int | None = -1,
) -> str:
    """One row per provider, riskiest first, with the provider's id (what every command and
    RPC takes); with ``uncertainty``, each composite's 90 % interval and a ``?`` on ranks
    that are not certain. Fitted to the terminal (``width`` -1; None = never cut)."""
    heads = ["#", "provider", "name", "score"]
    heads += ["90% range"] if uncertainty else []
    heads += ["band", *SUB_SCORE_SHORT.values(), "SPOFs", "top country", "foreign veto"]
    rows: list[list[str]] = []
    for rank, a in enumerate(assessments, start=1):
        top = a.country_impacts[0] if a.country_impacts else None
        veto = a.largest_foreign_veto
        row = [_rank_cell(uncertainty, a.provider, rank), a.provider, a.display_name]
        row += [f"{a.composite:.1f}"]
        row += [_interval_cell(uncertainty, a.provider)] if uncertainty else []
        row += [a.band.value]
        row += [
            f"{a.sub_score(k).score:.1f}" if a.sub_score(k).available else "n/a"
            for k in SUB_SCORE_SHORT
        ]
        row += [
            str(a.spof_count),
            f"{top.country} {100 * top.impact:5.1f}%" if top else "-",
            f"{veto.country} {100 * veto.veto:5.1f}%" if veto else "-",
        ]
        rows.append(row)
    lines = [fit_table(heads, rows, width=width, droppable=RANKING_DROPPABLE)]
    if assessments:
        lines += [spof_summary(assessments)]
        p = assessments[0].provenance
        lines += ["", _provenance_line(p.dataset_version, p.as_of.isoformat(), p.model_version)]
    if uncertainty is not None:
        lines += [
            *uncertainty.notes,
            "? = the rank is not certain (some pairwise order holds in < 90 % of draws).",
        ]
    lines.append(SCORE_INTERPRETATION)
    return "\n".join(line.rstrip() for line in lines)


def uncertainty_lines(u: Uncertainty | None, provider: str) -> list[str]:
    """One provider's intervals and rank certainty, for the detail view."""
    if u is None:
        return []
    p = u.of(provider)
    c = p.interval(COMPOSITE)
    out = [
        "",
        f"90 % interval of the composite: {c.low:.1f}-{c.high:.1f} ({u.draws} draws, seed "
        f"{u.seed}); rank {p.rank} "
        + (
            "(certain)"
            if p.rank_certain
            else f"(not certain: {p.rank_low}-{p.rank_high} in 90 % of draws)"
        ),
        "  sub-scores: "
        + ", ".join(f"{i.key} {i.low:.1f}-{i.high:.1f}" for i in p.intervals if i.key != COMPOSITE),
    ]
    shaky = [o for o in u.pairs if provider in (o.higher, o.lower) and o.probability < 0.9]
    for o in shaky:
        out.append(
            f"  order {o.higher} above {o.lower} holds in {100 * o.probability:.0f} % of draws"
        )
    return out


def _provenance_line(version: str, as_of: str, model: str) -> str:
    return f"dataset {version} | as of {as_of} | model {model}"


def assessment_detail(a: RiskAssessment, *, top: int = 8) -> str:
    """A readable explanation of one provider's score."""
    out = [
        f"{a.display_name} (providers/{a.provider}): {a.composite:.1f} / 100, {a.band.value}",
        SCORE_INTERPRETATION,
        "",
        f"{'sub-score':<16} {'score':>6} {'weight':>7} {'contrib':>8}  explanation",
    ]
    for s in a.sub_scores:
        out.append(
            f"{s.key:<16} {s.score:>6.1f} {s.weight:>7.3f} {s.contribution:>8.2f}  {s.explanation}"
        )
    out.append(
        f"{'floor uplift':<16} {'':>6} {'':>7} {a.floor_uplift:>8.2f}  "
        f"composite = sum of contributions"
        + (
            f", raised to {a.floor_alpha} x max sub-score (a sub-score >= "
            f"{a.critical_threshold:g} is critical)"
            if a.floor_applied
            else f" (no sub-score >= {a.critical_threshold:g}: no floor)"
        )
    )
    # Renormalised weight overrides and the like: the weights above are not the ones given.
    out += [f"note: {n}" for n in a.notes]
    units = a.loss_units
    if units is not None:
        money = (
            f"; US$ {units.capex_at_risk_usd_bn:.2f} bn of US$ {units.capex_usd_bn:.0f} bn capex"
            if units.capex_at_risk_usd_bn is not None and units.capex_usd_bn is not None
            else ""
        )
        chips = (
            f"; {units.accelerators_lost_per_year:,.0f} accelerators a year"
            if units.accelerators_lost_per_year is not None
            else ""
        )
        rp = ", ".join(f"1-in-{y} {100 * v:.1f}%" for y, v in units.return_period_losses)
        out += [
            "",
            f"Expected annual loss {100 * units.expected_annual_loss:.2f}% of supply "
            f"({units.supply_weeks_per_year:.2f} supply-weeks a year{money}{chips}); {rp}; "
            f"CVaR95 {100 * units.cvar95:.1f}%",
        ]
    sov = a.sovereignty
    if sov is not None:
        share = 100 * sov.largest_merchant_share
        merchant = (
            f"largest merchant vendor {sov.largest_merchant} {share:.0f}%"
            if sov.largest_merchant
            else "no merchant silicon"
        )
        out += [
            "",
            f"Silicon sovereignty ({a.quarter}): own silicon {100 * sov.own_silicon_share:.0f}% "
            f"of accelerator compute ({', '.join(sov.own_chips) or 'none'}); {merchant}.",
        ]
        if sov.shared_chokepoints:
            shared = ", ".join(
                f"{c.firm} (merchant {100 * c.merchant_impact:.0f}%, own {100 * c.own_impact:.0f}%)"
                for c in sov.shared_chokepoints
            )
            out.append(
                f"  Chokepoints shared with the merchant fleet at {sov.horizon_weeks:g} weeks: "
                f"{shared}; own silicon still exposed: {100 * sov.shared_exposure:.0f}%."
            )
    if a.capacity:
        out += ["", f"Constrained pools ({a.quarter}; supply lost to each by allocation rule):"]
        for pool in a.capacity:
            rules = ", ".join(f"{rule} {100 * v:.1f}%" for rule, v in pool.shortfall)
            state = (
                f"{pool.capacity:,.0f} x yield {pool.yield_:g} for {pool.demand:,.0f} {pool.unit}"
                if pool.capacity is not None and pool.demand is not None and pool.yield_ is not None
                else "no demand figure"
            )
            out.append(
                f"  {pool.pool:<10} serves {100 * min(1.0, pool.output):.0f}% ({state}): {rules}"
            )
    for note in a.series_notes:
        out.append(f"  note: {note}")
    out += [
        "",
        f"Chokepoints (long-run impact, and at {a.horizon_weeks:g} weeks; {a.spof_count} single "
        f"point(s) of failure, {a.near_spof_count} near):",
    ]
    for i in a.structural_impacts[:top]:
        flag = "SPOF" if i.is_spof else "near" if i.near_spof else "    "
        out.append(
            f"  {100 * i.impact:>6.2f}% {100 * i.headline:>5.1f}% {flag} {i.node:<24} "
            f"{' > '.join(i.evidence_path)}"
        )
    out += [
        "",
        f"Country impact at {a.horizon_weeks:g} weeks (site loss / blockade / long run):",
    ]
    for c in a.country_impacts[:top]:
        out.append(
            f"  {100 * c.impact:>5.1f}% {100 * c.blockade:>5.1f}% {100 * c.long_run:>5.1f}%  "
            f"{c.country}  {c.display_name}"
        )
    out += ["", "Concentration by layer (HHI 0-10,000):"]
    for lc in a.layers:
        flag = "CR1>65%" if lc.cr1_over_65 else ""
        out.append(
            f"  {lc.layer:<24} firm {lc.firm_hhi:>6,.0f} ({lc.firm_top.key} "
            f"{100 * lc.firm_top.share:.0f}%)  country {lc.country_hhi:>6,.0f} "
            f"({lc.country_top.key} {100 * lc.country_top.share:.0f}%) {flag}"
        )
    in_force = [r for r in a.regimes if r.in_force]
    out += ["", f"Export controls in force on {a.provenance.as_of.isoformat()}: {len(in_force)}"]
    for r in in_force:
        binds = f"binds {100 * r.veto:.1f}%" if r.binds_provider else "does not bind"
        out.append(f"  {r.issuer} {r.display_name[:60]:<60} {binds}")
    out += ["", "Checks:"]
    for check in a.checks:
        out.append(f"  [{check.status.value.upper():<12}] {check.id}: {check.reason}")
        if check.evidence_path:
            out.append(f"  {'':14} evidence: {' > '.join(check.evidence_path)}")
        out.append(f"  {'':14} remedy: {check.remediation}")
    cov = a.coverage
    out += [
        "",
        f"Data coverage: A {100 * cov.flow_share_a:.0f}% / B {100 * cov.flow_share_b:.0f}% / "
        f"C {100 * cov.flow_share_c:.0f}% of flow; {cov.edges_total} edges, "
        f"{cov.edges_with_range} with ranges",
        _provenance_line(
            a.provenance.dataset_version, a.provenance.as_of.isoformat(), a.provenance.model_version
        ),
        f"risk vector: {a.risk_vector}",
    ]
    return "\n".join(out)
