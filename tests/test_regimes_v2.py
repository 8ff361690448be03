"""Regimes v2 (METHODS v2 §5) on the small fixture, every figure worked out by hand.

The fixture (tests/fixtures/small): provider p (USA) takes chip a 0.6 and chip b 0.4; chip a
needs f1 (logic) and memory m1 0.5 / m2 0.5; chip b needs f1 0.5 / f2 0.5 and m1; f1 and f2
need tool t. Here chip b is moved to Taiwan (its site), so a rule on deliveries *to the USA*
reaches a (US-sited) and not b. Buffers are blank in the fixture, so a regime in force binds
in full at once.
"""

from __future__ import annotations

import datetime as dt

import pytest

from sovrisk.models.errors import DataValidationError
from sovrisk.models.graph.regimes import regime_state
from sovrisk.models.scoring.params import ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine
from tests.conftest import DatasetCopy

ABS = 1e-9
HEADER = (
    "id,issuer,name,instrument,citation,published,effective_from,effective_to,severity,"
    "reach_kinds,reach_tags,reach_nodes,origin_countries,destination_countries,action,replaces,"
    "suspends,measure,destination_basis,reach_content,quality,source,notes"
)


def engine_with(copy: DatasetCopy, *rows: str) -> RiskEngine:
    copy.write("sites.csv", copy.read("sites.csv").replace("b,USA,1,", "b,TWN,1,"))
    copy.write("regimes.csv", "\n".join((HEADER, *rows)) + "\n")
    return RiskEngine(copy.load())


def bound(engine: RiskEngine, day: str) -> float:
    return engine.assess("p", ScoringParams.build(as_of=dt.date.fromisoformat(day))).bound_now


def test_a_loosening_lowers_the_bind(small_copy: DatasetCopy) -> None:
    # ban: chip a (advanced_ai_chip) to the USA at severity 1 -> a(p) = 0.4 (b only), bound 0.6.
    # From 2025-01-01 a loosening replaces it for chip a at 0.25: a keeps 0.75 of its
    # deliveries -> a(p) = 0.6 x 0.75 + 0.4 = 0.85, bound 0.15. The ban itself stays in force.
    engine = engine_with(
        small_copy,
        "ban,USA,ban,rule,X,,2024-01-01,,1,,advanced_ai_chip,,,USA,,,,,,,A,fixture,",
        "case-by-case,USA,loosening,rule,Y,,2025-01-01,,0.25,,,a,,USA,loosen,ban,,,,,A,fixture,",
    )
    assert bound(engine, "2024-06-01") == pytest.approx(0.6, abs=ABS)
    assert bound(engine, "2025-06-01") == pytest.approx(0.15, abs=ABS)
    a = engine.assess("p", ScoringParams.build(as_of=dt.date(2025, 6, 1)))
    regimes = {r.regime: r for r in a.regimes}
    assert regimes["ban"].in_force and regimes["ban"].replaced_by == ("case-by-case",)
    assert regimes["ban"].veto == pytest.approx(0.0, abs=ABS)  # lifted where replaced
    assert regimes["case-by-case"].action == "loosen"
    assert regimes["case-by-case"].veto == pytest.approx(0.15, abs=ABS)


def test_a_loosening_for_one_destination_leaves_the_others_bound(
    small_copy: DatasetCopy,
) -> None:
    # The ban covers every destination; the loosening names only TWN. p is a US provider, so
    # its chip a deliveries stay under the ban: bound 0.6 before and after.
    engine = engine_with(
        small_copy,
        "ban,USA,ban,rule,X,,2024-01-01,,1,,advanced_ai_chip,,,,,,,,,,A,fixture,",
        "twn-only,USA,loosening,rule,Y,,2025-01-01,,0,,,a,,TWN,loosen,ban,,,,,A,fixture,",
    )
    assert bound(engine, "2024-06-01") == pytest.approx(0.6, abs=ABS)
    assert bound(engine, "2025-06-01") == pytest.approx(0.6, abs=ABS)


def test_a_destination_ban_binds_us_sited_consumers_only(small_copy: DatasetCopy) -> None:
    # m1 (Korea) banned to the USA. Chip a is sited in the USA: its memory keeps m2's half ->
    # a = 0.5; chip b is sited in Taiwan: untouched -> a(p) = 0.6 x 0.5 + 0.4 = 0.7, bound 0.3.
    engine = engine_with(
        small_copy, "to-us,KOR,ban to US,order,Z,,2024-01-01,,1,,,m1,,USA,,,,,,,A,fixture,"
    )
    assert bound(engine, "2024-06-01") == pytest.approx(0.3, abs=ABS)


def test_a_destination_ban_by_ownership_also_binds_us_owned_consumers(
    small_copy: DatasetCopy,
) -> None:
    # The same ban "where the rule says so" reaches US-owned buyers too: chip b's owner
    # (ChipCo B) is headquartered in the USA, so b (memory m1 only) stops as well ->
    # a(p) = 0.6 x 0.5 + 0.4 x 0 = 0.3, bound 0.7.
    engine = engine_with(
        small_copy,
        "to-us,KOR,ban to US,order,Z,,2024-01-01,,1,,,m1,,USA,,,,,site_or_owner,,A,fixture,",
    )
    assert bound(engine, "2024-06-01") == pytest.approx(0.7, abs=ABS)


def test_a_lapsed_suspension_is_back_in_force_the_day_after_it_lapses(
    small_copy: DatasetCopy,
) -> None:
    # Ban on chip a (bound 0.6), suspended from 2024-03-01; the suspension's effective_to is
    # 2024-07-01 (its first day not in force), so it lapses at the end of 2024-06-30.
    engine = engine_with(
        small_copy,
        "ban,USA,ban,rule,X,,2024-01-01,,1,,advanced_ai_chip,,,,,,,,,,A,fixture,",
        "pause,USA,pause,deal,S,,2024-03-01,2024-07-01,,,,,,,suspend,,ban,,,,A,fixture,",
    )
    assert bound(engine, "2024-02-29") == pytest.approx(0.6, abs=ABS)
    assert bound(engine, "2024-06-30") == pytest.approx(0.0, abs=ABS)
    assert bound(engine, "2024-07-01") == pytest.approx(0.6, abs=ABS)
    state = regime_state(engine.graph.regimes, dt.date(2024, 6, 30))
    assert state.suspended == {"ban": ("pause",)} and state.lapsed == ()
    state = regime_state(engine.graph.regimes, dt.date(2024, 7, 1))
    assert "ban" in state.in_force and state.lapsed == ("pause",)
    a = engine.assess("p", ScoringParams.build(as_of=dt.date(2024, 7, 1)))
    statuses = {r.regime: r.status for r in a.regimes}
    assert statuses == {"ban": "in_force", "pause": "lapsed"}


def test_an_import_measure_binds_the_issuers_own_buyers(small_copy: DatasetCopy) -> None:
    # An import measure (the issuer tells its firms to stop buying chip a) binds buyers owned
    # in the issuer's country: issued by the USA it binds p (0.6); by China, nothing of p's.
    us = engine_with(
        small_copy, "stop,USA,stop buying,order,I,,2024-01-01,,1,,,a,,,,,,import,,,A,fixture,"
    )
    assert bound(us, "2024-06-01") == pytest.approx(0.6, abs=ABS)
    cn = engine_with(
        small_copy, "stop,CHN,stop buying,order,I,,2024-01-01,,1,,,a,,,,,,import,,,A,fixture,"
    )
    assert bound(cn, "2024-06-01") == pytest.approx(0.0, abs=ABS)
    regime = cn.graph.regimes["stop"]
    assert regime.destination_countries == {"CHN"}  # the issuer, by default


def test_content_reach_follows_the_supply_tree(small_copy: DatasetCopy) -> None:
    # Content reach: chips whose supply tree holds m2 (only chip a: memory 0.5 m2), severity
    # 0.5, every destination -> chip a keeps 0.5 -> a(p) = 0.3 + 0.4, bound 0.3. Content t
    # (the tool under both foundries) reaches both chips -> a(p) = 0.5, bound 0.5.
    m2 = engine_with(
        small_copy,
        "fdpr,USA,fdp rule,rule,F,,2024-01-01,,0.5,accelerator,,,,,,,,,,m2,A,fixture,",
    )
    assert sorted(m2.graph.reached_nodes(m2.graph.regimes["fdpr"])) == ["a"]
    assert bound(m2, "2024-06-01") == pytest.approx(0.3, abs=ABS)
    small_copy.replace("regimes.csv", ",m2,A,fixture", ",t,A,fixture")
    t = RiskEngine(small_copy.load())
    assert sorted(t.graph.reached_nodes(t.graph.regimes["fdpr"])) == ["a", "b"]
    assert bound(t, "2024-06-01") == pytest.approx(0.5, abs=ABS)


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("s,USA,s,x,x,,2024-01-01,,,,,,,,suspend,,,,,,A,fixture,", "suspends"),
        ("s,USA,s,x,x,,2024-01-01,,,,,,,,suspend,,nobody,,,,A,fixture,", "suspends"),
        ("s,USA,s,x,x,,2024-01-01,,1,,,a,,,loosen,nobody,,,,,A,fixture,", "replaces"),
        ("s,USA,s,x,x,,2024-01-01,,1,,,a,,,sideways,,,,,,A,fixture,", "action"),
        ("s,USA,s,x,x,,2024-01-01,,1,,,a,,,,,,,by_mood,,A,fixture,", "destination_basis"),
        ("s,USA,s,x,x,,2024-01-01,,1,,,,,,,,,,,unobtainium,A,fixture,", "reach_content"),
    ],
)
def test_bad_v2_regime_rows_name_the_column(small_copy: DatasetCopy, row: str, column: str) -> None:
    small_copy.write("regimes.csv", f"{HEADER}\n{row}\n")
    with pytest.raises(DataValidationError) as info:
        small_copy.load()
    assert column in {i.field for i in info.value.issues}


def test_a_regime_back_from_suspension_is_felt_after_buffers_from_the_day_it_returns(
    small_copy: DatasetCopy,
) -> None:
    # Memory m1 gets a 4-week buffer. The ban on m1 (to everyone) started in 2023, was
    # suspended and came back on 2024-07-01: on 2024-07-15 (2 weeks back) the buffer still
    # hides it; from 2024-07-29 (4 weeks) it binds: a keeps m2's half (0.6 x 0.5) and b,
    # which needs m1 alone, stops -> a(p) = 0.3, bound 0.7.
    nodes = small_copy.read("nodes.csv")
    nodes = nodes.replace(
        "id,kind,name,owner,hq_country,layer,tags,quality,source,as_of,notes",
        "id,kind,name,owner,hq_country,layer,tags,quality,source,as_of,"
        "buffer_weeks,buffer_quality,buffer_source,notes",
    )
    lines = nodes.splitlines()
    for k, line in enumerate(lines[1:], start=1):
        head, _, note = line.rpartition(",")
        extra = "4,C,fixture" if line.startswith("m1,") else ",,"
        lines[k] = f"{head},{extra},{note}"
    small_copy.write("nodes.csv", "\n".join(lines) + "\n")
    engine = engine_with(
        small_copy,
        "ban,KOR,ban,rule,X,,2023-01-01,,1,,,m1,,,,,,,,,A,fixture,",
        "pause,KOR,pause,deal,S,,2024-03-01,2024-07-01,,,,,,,suspend,,ban,,,,A,fixture,",
    )
    assert bound(engine, "2024-02-29") == pytest.approx(0.7, abs=ABS)  # long in force
    assert bound(engine, "2024-06-30") == pytest.approx(0.0, abs=ABS)  # suspended
    assert bound(engine, "2024-07-15") == pytest.approx(0.0, abs=ABS)  # back, not felt yet
    assert bound(engine, "2024-07-29") == pytest.approx(0.7, abs=ABS)  # felt after 4 weeks
    state = regime_state(engine.graph.regimes, dt.date(2024, 7, 15))
    assert state.resumed == {"ban": dt.date(2024, 7, 1)}


# -- country risk with a buyer perspective (METHODS v2 §4) -----------------------------------


def test_a_buyer_perspective_changes_the_governance_risk_the_buyer_sees(
    small_copy: DatasetCopy,
) -> None:
    # Base: Taiwan's WGI-derived risk is 30 for everyone. A perspective row says buyers
    # headquartered in the USA see 90: the probability of Taiwan's governance event is
    # proportional to it, so p's expected loss from Taiwan triples; the other countries'
    # contributions do not move, and the displayed country risk is the perspective's.
    before = RiskEngine(small_copy.load()).assess(
        "p", ScoringParams.build(as_of=dt.date(2024, 6, 1))
    )
    text = small_copy.read("country_risk.csv")
    header, *rows = text.splitlines()
    rows = [r + "," for r in rows]
    rows.append("TWN,Taiwan,,,,,90,0,,90,A,fixture,2024-01-01,USA")
    small_copy.write("country_risk.csv", "\n".join([header + ",perspective", *rows]) + "\n")
    after = RiskEngine(small_copy.load()).assess(
        "p", ScoringParams.build(as_of=dt.date(2024, 6, 1))
    )
    old = {c.country: c for c in before.geopolitical_contributions}
    new = {c.country: c for c in after.geopolitical_contributions}
    assert new["TWN"].expected_loss == pytest.approx(3 * old["TWN"].expected_loss, rel=1e-9)
    assert new["TWN"].country_risk == 90.0 and old["TWN"].country_risk == 60.0
    for country in old.keys() - {"TWN"}:
        assert new[country].expected_loss == pytest.approx(old[country].expected_loss)
    assert after.geopolitical_expected_loss > before.geopolitical_expected_loss


def test_a_perspective_row_needs_the_countrys_own_row(small_copy: DatasetCopy) -> None:
    text = small_copy.read("country_risk.csv")
    header, *rows = text.splitlines()
    rows = [r + "," for r in rows] + ["ZZZ,Nowhere,,,,,90,0,,90,A,fixture,2024-01-01,USA"]
    small_copy.write("country_risk.csv", "\n".join([header + ",perspective", *rows]) + "\n")
    with pytest.raises(DataValidationError) as info:
        small_copy.load()
    assert "iso3" in {i.field for i in info.value.issues}
