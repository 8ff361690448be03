"""Write docs/questions.md: the questions behind the news, the call that answers each, and
the answer the bundled data gives, computed here by the same functions the CLI and the API
call, so the page cannot drift from the code.

    python scripts/cookbook.py            # rewrite docs/questions.md
    python scripts/cookbook.py --check    # exit 1 if docs/questions.md is out of date
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from sovrisk.models.analysis.allocation import AllocationRule
from sovrisk.models.engine.impacts import CountryEvent
from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.graph.schema import Quality
from sovrisk.models.graph.series import Quarter
from sovrisk.models.scoring.params import ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.models.scoring.scenarios import (
    ActivateRegime,
    DegradeCountry,
    DegradePool,
    MoveCapacity,
    Perturbation,
    QualifyAlternate,
    Scenario,
    ScenarioResult,
    SetCapacity,
    run_scenario,
)
from sovrisk.models.scoring.trajectory import TrajectoryPoint, trajectory

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
TARGET = ROOT / "docs" / "questions.md"
FIRST, LAST = Quarter(2024, 1), Quarter(2027, 4)
RULES = (AllocationRule.PRO_RATA, AllocationRule.RESERVATIONS_FIRST, AllocationRule.CUSTOM_FIRST)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def pct(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f} %"


def quality_mix(rows: Sequence[object]) -> str:
    counts = {q: 0 for q in Quality}
    for r in rows:
        counts[r.provenance.quality] += 1  # type: ignore[attr-defined]
    total = sum(counts.values()) or 1
    return " / ".join(f"{q.value} {100 * counts[q] / total:.0f} %" for q in Quality)


class Cookbook:
    def __init__(self) -> None:
        self.engine = RiskEngine(*load_bundle(DATA))
        self.params = self.engine.default_params()
        self.names = {p: self.engine.graph.nodes[p].name for p in self.engine.provider_ids}
        self.rows: list[TrajectoryPoint] = trajectory(
            self.engine, list(self.engine.provider_ids), FIRST, LAST, self.params
        )
        self.by = {(r.provider, r.quarter): r for r in self.rows}
        self.series = self.engine.supplements.series

    def scenario(
        self,
        perturbations: Sequence[Perturbation],
        rule: AllocationRule | None = None,
        params: ScoringParams | None = None,
    ) -> ScenarioResult:
        return run_scenario(
            self.engine, Scenario("q", tuple(perturbations), rule), params or self.params
        )

    # -- the questions ----------------------------------------------------------------------

    def own_silicon(self) -> list[str]:
        quarter = str(Quarter.of(self.params.as_of))
        rows = []
        for pid in self.engine.provider_ids:
            sov = self.by[(pid, quarter)].assessment.sovereignty
            assert sov is not None
            shared = ", ".join(
                f"{c.firm} {pct(c.merchant_impact)} / {pct(c.own_impact)}"
                for c in sov.shared_chokepoints
            )
            rows.append(
                [
                    self.names[pid],
                    pct(sov.own_silicon_share),
                    f"{sov.largest_merchant or '-'} {pct(sov.largest_merchant_share)}",
                    shared or "-",
                    pct(sov.shared_exposure) if sov.own_silicon_share else "-",
                ]
            )
        fleet = [p for p in self.series.fleet if p.period == Quarter.of(self.params.as_of)]
        return [
            "## 1. Does own silicon reduce a provider's dependence, or run through the same "
            "chokepoints?",
            "",
            "```sh",
            ".venv/bin/sovrisk score aws            # section 'Silicon sovereignty'",
            '$G -plaintext -d \'{"name": "providers/aws"}\' 127.0.0.1:50051 '
            "sovrisk.v1.RiskService/ScoreProvider   # field sovereignty",
            "```",
            "",
            f"As of {self.params.as_of} ({quarter}), at the 13-week headline horizon. "
            "Own silicon = share of the quarter's new accelerator compute designed in-house; "
            "shared chokepoints = supplier firms whose loss cuts at least half of the merchant "
            "silicon, with what the same loss cuts of merchant / own silicon.",
            "",
            *table(
                [
                    "provider",
                    "own silicon",
                    "largest merchant",
                    "shared chokepoints (merchant / own cut)",
                    "own silicon still exposed",
                ],
                rows,
            ),
            "",
            self.own_silicon_answer(quarter),
            "",
            f"*Data quality:* fleet rows of {quarter}: {quality_mix(fleet)}; "
            "per-chip HBM, design-partner and packaging splits are mostly sourced (B), host-CPU "
            "and network splits estimates (C); `python scripts/coverage.py` gives the share.",
            "",
        ]

    def own_silicon_answer(self, quarter: str) -> str:
        exposed, apart = [], []
        for pid in self.engine.provider_ids:
            sov = self.by[(pid, quarter)].assessment.sovereignty
            if sov is None or not sov.own_silicon_share or not sov.largest_merchant:
                continue
            if sov.shared_exposure >= 0.5:
                exposed.append((self.names[pid], sov.shared_exposure))
            else:
                apart.append(self.names[pid])
        lo = min((v for _, v in exposed), default=0.0)
        hi = max((v for _, v in exposed), default=0.0)
        text = (
            "**Answer.** Own silicon changes who designs the chips, not where they are made. "
            f"At {', '.join(n for n, _ in exposed)} the custom chips run through the same "
            f"TSMC fabs (and mostly the same CoWoS lines and SK hynix HBM) as the NVIDIA "
            f"fleet: the merchant fleet's chokepoint firms would cut {pct(lo)}-{pct(hi)} of "
            "their own silicon within a quarter."
        )
        if apart:
            text += (
                f" {', '.join(apart)}: its own silicon shares none of them (made outside "
                "TSMC), so own silicon there is supply sovereignty too, with its own "
                "exposures (Chinese fabs, tool controls)."
            )
        return text

    def cowos_easing(self) -> list[str]:
        pool_at = {
            q: self.engine.at(q.end).pool_shortfalls()["cowos"]
            for q in (Quarter(2024, 4), Quarter(2026, 4))
        }
        rows = []
        for pid in self.engine.provider_ids:
            cells = [self.names[pid]]
            for _, by_rule in pool_at.values():
                k = self.engine.provider_ids.index(pid)
                cells.append(" / ".join(pct(float(by_rule[r][k]), 1) for r in RULES))
            rows.append(cells)
        out = {q: p.output for q, (p, _) in pool_at.items()}
        capacity = [p for p in self.series.capacity if p.pool == "cowos"]
        return [
            "## 2. What does CoWoS easing change, and for whom?",
            "",
            "```sh",
            ".venv/bin/sovrisk trajectory --from 2024Q4 --to 2026Q4   # column 'cowos lost'",
            '$G -plaintext -d \'{"start_quarter": "2024Q4", "end_quarter": "2026Q4"}\' '
            "127.0.0.1:50051 sovrisk.v1.RiskService/GetScoreTrajectory   # rows[].capacity",
            "```",
            "",
            f"TSMC CoWoS good output per unit of demand: {out[Quarter(2024, 4)]:.3f} at the end "
            f"of 2024 (35k wafers a month for ~44k wanted) and {out[Quarter(2026, 4)]:.3f} at "
            "the end of 2026 (125k x 0.98 yield for ~136k). Supply each provider loses to the "
            "shortfall (pro rata / reservations first / custom chips first):",
            "",
            *table(["provider", "2024Q4", "2026Q4"], rows),
            "",
            self.cowos_easing_answer(pool_at),
            "",
            f"*Data quality:* CoWoS capacity rows {quality_mix(capacity)}; demand "
            "figures are C (worked back from reported shortage statements).",
            "",
        ]

    def cowos_easing_answer(self, pool_at: dict) -> str:  # type: ignore[type-arg]
        (_, before), (pool_after, after) = pool_at.values()
        ids = self.engine.provider_ids
        users = [p for p in ids if any(float(before[r][ids.index(p)]) > 0.02 for r in RULES)]
        lower = all(
            float(after[r][ids.index(p)]) < float(before[r][ids.index(p)])
            for p in users
            for r in RULES
        )
        gains = {
            r: max(users, key=lambda p: float(before[r][ids.index(p)] - after[r][ids.index(p)]))
            for r in RULES
        }
        ratio = [
            float(after[r][ids.index(p)]) / float(before[r][ids.index(p)])
            for p in users
            for r in RULES
            if float(before[r][ids.index(p)]) > 0
        ]
        return (
            "**Answer.** Easing "
            + (
                "lowers every CoWoS user's shortfall under every rule"
                if lower
                else "does not lower every shortfall"
            )
            + f" (to {pct(min(ratio))}-{pct(max(ratio))} of its 2024 level), but it does not "
            f"end it: good output still covers {pct(min(1.0, pool_after.output))} of demand at "
            "the end of 2026. Who gains most depends on the rule: "
            + "; ".join(f"{r.value} {self.names[gains[r]]}" for r in RULES)
            + "."
        )

    def cowos_rules(self) -> list[str]:
        lost = {}
        for rule in RULES:
            result = self.scenario([SetCapacity("cowos", 0.8)], rule)
            lost[rule] = {
                o.provider: o.available_baseline - o.available_scenario for o in result.outcomes
            }
        rows = [
            [self.names[p], *(f"{lost[r][p]:.3f}" for r in RULES)] for p in self.engine.provider_ids
        ]
        return [
            "## 3. Who loses in a 20 % CoWoS shortfall?",
            "",
            "```sh",
            ".venv/bin/sovrisk scenario --capacity cowos:0.8 --allocation reservations_first",
            ".venv/bin/sovrisk scenario --capacity cowos:0.8 --allocation custom_first",
            "```",
            "",
            f"CoWoS capacity x 0.8 in {Quarter.of(self.params.as_of)}; supply lost (share of "
            "each provider's accelerator supply, 13 weeks):",
            "",
            *table(["provider", *(r.value for r in RULES)], rows),
            "",
            self.cowos_rules_answer(lost),
            "",
            "*Data quality:* allocation shares B (2025-26) and C (2023-24, 2027); NVIDIA's "
            "reserved share is C (reported range 0.5-0.7).",
            "",
        ]

    def cowos_rules_answer(self, lost: dict) -> str:  # type: ignore[type-arg]
        users = [p for p in self.engine.provider_ids if lost[AllocationRule.PRO_RATA][p] > 0.01]
        parts = []
        for rule in RULES:
            worst = max(users, key=lambda p: (lost[rule][p], p))
            least = min(users, key=lambda p: (lost[rule][p], p))
            parts.append(
                f"{rule.value}: {self.names[worst]} loses most ({lost[rule][worst]:.3f}), "
                f"{self.names[least]} least ({lost[rule][least]:.3f})"
            )
        return "**Answer.** The rule decides who loses. " + "; ".join(parts) + "."

    def tpu_maia(self) -> list[str]:
        quarters = ("2024Q4", "2025Q4", "2026Q4", "2027Q4")
        rows = []
        for pid in ("google-cloud", "microsoft-azure", "aws", "meta"):
            cells = [self.names[pid]]
            for q in quarters:
                r = self.by[(pid, q)]
                sov = r.assessment.sovereignty
                assert sov is not None
                units = pct(r.own_silicon_unit_share)
                cells.append(f"{pct(sov.own_silicon_share)} ({units})")
            rows.append(cells)
        return [
            "## 4. How do Google's TPU and Microsoft's Maia reliance compare, and how is each "
            "provider's own-silicon share moving?",
            "",
            "```sh",
            ".venv/bin/sovrisk trajectory google-cloud microsoft-azure aws meta "
            "--from 2024Q1 --to 2027Q4",
            "```",
            "",
            "Own silicon's share of each quarter's new accelerator compute (of chips, by count):",
            "",
            *table(["provider", *quarters], rows),
            "",
            self.tpu_maia_answer(quarters),
            "",
            "*Data quality:* 2023-25 units mostly B (Epoch AI owner models), 2026-27 shares C; "
            "compute per chip (compute_h100e) from vendor specifications, C for the custom "
            "chips.",
            "",
        ]

    def tpu_maia_answer(self, quarters: Sequence[str]) -> str:
        def own(pid: str, q: str) -> float:
            sov = self.by[(pid, q)].assessment.sovereignty
            return sov.own_silicon_share if sov else 0.0

        def span(pid: str) -> str:
            values = [own(pid, q) for q in quarters]
            return f"{pct(min(values))}-{pct(max(values))}"

        aws = [own("aws", q) for q in quarters]
        peak = quarters[aws.index(max(aws))]
        return (
            f"**Answer.** Google runs mostly on its own TPUs ({span('google-cloud')} of new "
            "compute at each year end); Microsoft's Maia is a small share "
            f"({span('microsoft-azure')}), "
            f"Meta's MTIA likewise ({span('meta')}). AWS's chips are mostly its own by count, "
            f"but by compute its own share peaks at {pct(max(aws))} ({peak}) and falls to "
            f"{pct(aws[-1])} by {quarters[-1]} as Rubin-class GPUs (6 H100-equivalents a "
            "unit) arrive. Scores follow the supply chain, not the label: AWS's "
            "concentration falls while Trainium ramps in 2025 and rises back with Rubin "
            "(tests/test_time_capacity.py)."
        )

    def ranking(self) -> list[str]:
        quarters = ("2024Q4", "2025Q4", "2026Q4", "2027Q4")
        rows = []
        now = str(Quarter.of(self.params.as_of))
        order = sorted(self.engine.provider_ids, key=lambda p: -self.by[(p, now)].composite)
        for pid in order:
            rows.append(
                [self.names[pid], *(f"{self.by[(pid, q)].composite:.1f}" for q in quarters)]
            )
        return [
            "## 5. How do providers compare today and over 2024-2027?",
            "",
            "```sh",
            ".venv/bin/sovrisk score                         # today's ranking",
            ".venv/bin/sovrisk trajectory --from 2024Q1 --to 2027Q4",
            "$G -plaintext -d '{}' 127.0.0.1:50051 sovrisk.v1.RiskService/GetScoreTrajectory",
            "```",
            "",
            "Composite (0-100, higher = riskier) at the end of each year:",
            "",
            *table(["provider", *quarters], rows),
            "",
            self.ranking_answer(quarters),
            "",
        ]

    def ranking_answer(self, quarters: Sequence[str]) -> str:
        tops = {
            q: max(self.engine.provider_ids, key=lambda p: self.by[(p, q)].composite)
            for q in quarters
        }
        us = [p for p in self.engine.provider_ids if self.engine.graph.nodes[p].hq_country == "USA"]
        lows = {q: min(us, key=lambda p: self.by[(p, q)].composite) for q in quarters}
        spread = [
            max(self.by[(p, q)].composite for p in us) - min(self.by[(p, q)].composite for p in us)
            for q in quarters
        ]
        return (
            "**Answer.** Riskiest at each year end: "
            + ", ".join(f"{q} {self.names[tops[q]]}" for q in quarters)
            + ". Least risky US provider: "
            + ", ".join(f"{q} {self.names[lows[q]]}" for q in quarters)
            + f". The US providers span {min(spread):.1f}-{max(spread):.1f} points; they share "
            "the same chokepoints (TSMC, CoWoS, ASML, Korean HBM), so read gaps under the 90 % "
            "intervals of `sovrisk score` as ties."
        )

    def taiwan(self) -> list[str]:
        blockade = self.scenario([DegradeCountry("TWN", 1.0, 12.0, CountryEvent.BLOCKADE)])
        site = self.scenario([DegradeCountry("TWN", 0.6, 26.0, CountryEvent.SITE_LOSS)])
        rows = []
        for a, b in zip(blockade.outcomes, site.outcomes, strict=True):
            rows.append(
                [
                    a.display_name,
                    f"{a.lost_supply_weeks:.1f}",
                    "-" if a.lost_capex_usd_bn is None else f"{a.lost_capex_usd_bn:.1f}",
                    f"{b.lost_supply_weeks:.1f}",
                    "-" if b.lost_capex_usd_bn is None else f"{b.lost_capex_usd_bn:.1f}",
                ]
            )
        return [
            "## 6. What would a Taiwan Strait disruption cost each provider, in weeks of "
            "supply and in dollars?",
            "",
            "```sh",
            ".venv/bin/sovrisk scenario --blockade TWN --weeks 12",
            ".venv/bin/sovrisk scenario --country TWN:0.6 --weeks 26",
            "```",
            "",
            "Supply-weeks lost over the event (weeks x the share of supply lost, after "
            "inventories) and the AI capex idled by them (weeks / 52 x the year's capex, US$ "
            "bn):",
            "",
            *table(
                [
                    "provider",
                    "blockade 12 wk: weeks",
                    "US$ bn",
                    "60 % of sites, 26 wk: weeks",
                    "US$ bn",
                ],
                rows,
            ),
            "",
            self.taiwan_answer(blockade, site),
            "",
        ]

    def taiwan_answer(self, blockade: ScenarioResult, site: ScenarioResult) -> str:
        us = [
            o for o in blockade.outcomes if self.engine.graph.nodes[o.provider].hq_country == "USA"
        ]
        weeks = [o.lost_supply_weeks for o in us]
        money = [(o.lost_capex_usd_bn or 0.0, o.display_name) for o in us]
        lo, hi = min(money), max(money)
        others = [o for o in blockade.outcomes if o not in us]
        other = "; ".join(f"{o.display_name} loses {o.lost_supply_weeks:.1f} weeks" for o in others)
        return (
            f"**Answer.** A 12-week blockade costs the US providers {min(weeks):.1f}-"
            f"{max(weeks):.1f} weeks of accelerator supply (chips and packages in the "
            "pipeline cover the first weeks); in dollars the cost follows capex, from US$ "
            f"{lo[0]:.1f} bn ({lo[1]}) to US$ {hi[0]:.1f} bn ({hi[1]}). {other} (its supply in "
            "force is made in China)."
        )

    def export_controls(self) -> list[str]:
        result = self.scenario([ActivateRegime("cn-mofcom-2025-10-rare-earths", 1.0, 26.0)])
        rows = [
            [
                o.display_name,
                f"{o.available_baseline - o.available_scenario:.3f}",
                f"{o.lost_supply_weeks:.1f}",
                "-" if o.lost_capex_usd_bn is None else f"{o.lost_capex_usd_bn:.1f}",
            ]
            for o in result.outcomes
        ]
        return [
            "## 7. What would an export-control escalation cost?",
            "",
            "```sh",
            ".venv/bin/sovrisk scenario --activate-regime cn-mofcom-2025-10-rare-earths:1 "
            "--weeks 26",
            "```",
            "",
            "China's October-2025 rare-earth rules (suspended in November 2025) brought back "
            "in full for 26 weeks; supply lost at 13 weeks, supply-weeks over the 26 weeks and "
            "the capex idled:",
            "",
            *table(["provider", "lost at 13 weeks", "supply-weeks", "US$ bn"], rows),
            "",
            self.export_answer(result),
            "",
        ]

    def export_answer(self, result: ScenarioResult) -> str:
        weeks = [o.lost_supply_weeks for o in result.outcomes]
        return (
            f"**Answer.** Little, within half a year: at most {max(weeks):.1f} supply-weeks "
            "over 26 weeks. China's rare earths reach the supply chain through magnets in "
            "tools and their service parts, behind installed bases that run for months; the "
            "cost comes later, as service buffers run out. The regime's severity and reach "
            "are analyst estimates (C), and the graph gives gallium no consumer yet (issue "
            "11), so Chinese mineral controls are understated."
        )

    def second_source(self) -> list[str]:
        rows = []
        for weeks, lead in ((52, 26), (12, 26), (12, 8)):
            params = replace(self.params, horizon_weeks=52.0 if weeks == 52 else 13.0)
            base = self.scenario([DegradePool("cowos", 1.0, weeks)], params=params)
            alt = self.scenario(
                [
                    DegradePool("cowos", 1.0, weeks),
                    QualifyAlternate("tsmc-cowos-l", "samsung-icube", "packaging", lead, 0.3),
                ],
                params=params,
            )
            aws = next(o for o in base.outcomes if o.provider == "aws")
            aws_alt = next(o for o in alt.outcomes if o.provider == "aws")
            rows.append(
                [
                    f"{weeks} weeks",
                    f"{lead} weeks",
                    f"{aws.lost_supply_weeks:.2f}",
                    f"{aws_alt.lost_supply_weeks:.2f}",
                ]
            )
        saved = float(rows[0][2]) - float(rows[0][3])
        return [
            "## 8. Would a qualifiable second CoWoS source help?",
            "",
            "```sh",
            ".venv/bin/sovrisk scenario --pool cowos --weeks 52 --horizon 52 "
            "--alternate tsmc-cowos-l:samsung-icube:packaging:26:0.3",
            "```",
            "",
            "All of TSMC's CoWoS down; Samsung I-Cube qualifiable for 30 % of CoWoS-L's flow. "
            "AWS's supply-weeks lost without and with it:",
            "",
            *table(["outage", "qualification lead", "without", "with I-Cube"], rows),
            "",
            (
                "**Answer.** Only once qualified: over a year-long outage a 26-week "
                f"qualification saves {saved:.1f} supply-weeks; a 12-week outage is over "
                "before it qualifies and costs the same; a pre-qualified source (8 weeks) "
                "helps even then."
            ),
            "",
        ]

    def arizona(self) -> list[str]:
        blockade = DegradeCountry("TWN", 1.0, 26.0, CountryEvent.BLOCKADE)
        cases: dict[str, list[Perturbation]] = {
            "as today": [blockade],
            "30 % of CoWoS-L in Arizona": [MoveCapacity("tsmc-cowos-l", "USA", 0.3), blockade],
            "30 % of CoWoS-L and of N3 in Arizona": [
                MoveCapacity("tsmc-cowos-l", "USA", 0.3),
                MoveCapacity("tsmc-n3", "USA", 0.3),
                blockade,
            ],
        }
        weeks = {
            name: {o.provider: o.lost_supply_weeks for o in self.scenario(p).outcomes}
            for name, p in cases.items()
        }
        rows = [
            [self.names[p], *(f"{weeks[c][p]:.1f}" for c in cases)]
            for p in ("aws", "google-cloud", "coreweave")
        ]
        return [
            "## 9. What would moving packaging to Arizona change?",
            "",
            "```sh",
            ".venv/bin/sovrisk scenario --blockade TWN --weeks 26",
            ".venv/bin/sovrisk scenario --blockade TWN --weeks 26 --site tsmc-cowos-l:USA:0.3",
            ".venv/bin/sovrisk scenario --blockade TWN --weeks 26 --site tsmc-cowos-l:USA:0.3 "
            "--site tsmc-n3:USA:0.3",
            "```",
            "",
            "Supply-weeks lost to a 26-week Taiwan blockade:",
            "",
            *table(["provider", *cases], rows),
            "",
            self.arizona_answer(weeks, list(cases)),
            "",
        ]

    def arizona_answer(self, weeks: dict, cases: list[str]) -> str:  # type: ignore[type-arg]
        base, pack, both = cases
        aws = {c: weeks[c]["aws"] for c in cases}
        return (
            f"**Answer.** For AWS, 30 % of CoWoS-L in Arizona cuts the loss from "
            f"{aws[base]:.1f} to {aws[pack]:.1f} supply-weeks; adding 30 % of N3 there takes "
            f"it to {aws[both]:.1f}. Little, because a chip needs every input: the "
            "Arizona share still waits for Korean HBM, substrates and tool service routed "
            "through Taiwan-sited steps. Read it as a lower bound on what co-location saves: "
            "the share model matches supply and demand within a country before anything "
            "crosses a border, but a chip family partly sited in Taiwan loses its imports and "
            "its exports on the same Taiwanese share, and the model compounds the two; it "
            "does not follow individual wafers (METHODS v2 §2; a multi-regional flow model "
            "would)."
        )

    def render(self) -> str:
        us = [
            self.engine.assess(p, self.params).coverage.edges_share_ab
            for p in self.engine.provider_ids
            if self.engine.graph.nodes[p].hq_country == "USA"
        ]
        head = [
            "# Questions and answers",
            "",
            "The questions behind the news, the call that answers each, and what the bundled "
            f"dataset ({self.engine.graph.version_id}, as of {self.params.as_of}) says. "
            "Generated by `python scripts/cookbook.py` (tests/test_cookbook.py fails if this "
            "page and the code disagree). Every score is 0-100, higher = riskier; supply "
            "lost is a share of the provider's AI-accelerator supply (0-1). `$G` is "
            "`.venv/bin/grpcurl` with `make run` serving on 127.0.0.1:50051.",
            "",
            "Read every answer with its data quality: the fleet mixes of 2026-27, CoWoS "
            "demand, allocations, host-CPU and network splits and buffers are estimates (C); "
            "per-chip HBM vendors, design partners and tool and material shares are sourced "
            f"(`python scripts/coverage.py`: {100 * min(us):.0f}-{100 * max(us):.0f} % of the US "
            "providers' supply edges by flow are A/B). The US providers share the same "
            "chokepoints, so their differences come "
            "from their chips' HBM, packaging and host parts, their fleets and capex; "
            "`sovrisk score` gives each composite's 90 % interval.",
            "",
        ]
        parts = [
            self.own_silicon(),
            self.cowos_easing(),
            self.cowos_rules(),
            self.tpu_maia(),
            self.ranking(),
            self.taiwan(),
            self.export_controls(),
            self.second_source(),
            self.arizona(),
        ]
        lines = head + [line for part in parts for line in part]
        return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = Cookbook().render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run python scripts/cookbook.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
