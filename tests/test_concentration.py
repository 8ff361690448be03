"""HHI, N_eff, CR1 and the reference bands (METHODS §3) on hand-computed fixtures."""

from __future__ import annotations

import pytest

from sovrisk.models.analysis.concentration import BandReference, bands, cr1, hhi, n_eff

# -- HHI: the METHODS §3 fixtures ---------------------------------------------------------------


def test_monopoly_is_10000() -> None:
    # 100² = 10,000
    assert hhi({"TSMC": 1.0}) == pytest.approx(10_000.0)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 10, 25, 100])
def test_n_equal_suppliers_give_10000_over_n(n: int) -> None:
    # n × (100/n)² = 10,000/n
    shares = {f"s{i}": 1.0 / n for i in range(n)}
    assert hhi(shares) == pytest.approx(10_000.0 / n, abs=1e-6)


def test_sub_10nm_logic_taiwan_92_korea_8() -> None:
    # 92² + 8² = 8,464 + 64 = 8,528 (SIA/BCG 2021)
    assert hhi({"TWN": 0.92, "KOR": 0.08}) == pytest.approx(8_528.0, abs=1e-9)


def test_euv_netherlands_100() -> None:
    # 100² = 10,000
    assert hhi({"NLD": 1.0}) == pytest.approx(10_000.0)


def test_lithography_netherlands_91_japan_9() -> None:
    # 91² + 9² = 8,281 + 81 = 8,362
    assert hhi({"NLD": 0.91, "JPN": 0.09}) == pytest.approx(8_362.0, abs=1e-9)


def test_shares_in_percent_or_unnormalised_give_the_same_hhi() -> None:
    # Shares are normalised to sum 1 first: 92/8 and 0.46/0.04 are both 92 % / 8 %.
    assert hhi({"TWN": 92.0, "KOR": 8.0}) == pytest.approx(8_528.0, abs=1e-9)
    assert hhi({"TWN": 0.46, "KOR": 0.04}) == pytest.approx(8_528.0, abs=1e-9)


def test_three_unequal_suppliers() -> None:
    # 50² + 30² + 20² = 2,500 + 900 + 400 = 3,800
    assert hhi({"a": 0.5, "b": 0.3, "c": 0.2}) == pytest.approx(3_800.0, abs=1e-9)


def test_zero_shares_are_ignored_and_empty_market_is_zero() -> None:
    # a zero-share supplier adds 0² = 0; an empty market has no concentration to report
    assert hhi({"a": 0.5, "b": 0.5, "c": 0.0}) == pytest.approx(5_000.0)
    assert hhi({}) == 0.0
    assert hhi({"a": 0.0}) == 0.0


# -- N_eff ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (10_000.0, 1.0),  # monopoly: one effective supplier
        (5_000.0, 2.0),
        (2_500.0, 4.0),
        (8_528.0, 10_000.0 / 8_528.0),  # TW/KR: 1.1726...
        (3_800.0, 2.631578947368421),  # 10,000 / 3,800
        (0.0, 0.0),  # empty market
    ],
)
def test_n_eff(index: float, expected: float) -> None:
    assert n_eff(index) == pytest.approx(expected, abs=1e-12)


def test_n_eff_of_n_equal_suppliers_is_n() -> None:
    # 10,000 / (10,000/5) = 5
    assert n_eff(hhi({k: 0.2 for k in "abcde"})) == pytest.approx(5.0, abs=1e-9)


# -- CR1 -----------------------------------------------------------------------------------------


def test_cr1_is_the_largest_share_in_percent() -> None:
    assert cr1({"TWN": 0.92, "KOR": 0.08}) == ("TWN", pytest.approx(92.0))
    # unnormalised: 3 / (3 + 1) = 75 %
    assert cr1({"x": 1.0, "y": 3.0}) == ("y", pytest.approx(75.0))


def test_cr1_ties_are_broken_by_key() -> None:
    # 40/40/20: two leaders at 40 %; the alphabetically first key wins, whatever the order
    assert cr1({"KOR": 0.4, "JPN": 0.2, "TWN": 0.4}) == ("KOR", pytest.approx(40.0))
    assert cr1({"TWN": 0.4, "KOR": 0.4, "JPN": 0.2}) == ("KOR", pytest.approx(40.0))
    # equal shares: 25 % each, "a" first
    assert cr1({"d": 1.0, "c": 1.0, "b": 1.0, "a": 1.0}) == ("a", pytest.approx(25.0))


def test_cr1_of_empty_market() -> None:
    assert cr1({}) == ("", 0.0)


# -- Reference bands -----------------------------------------------------------------------------


def _band(index: float, reference: BandReference) -> str:
    return next(b.label for b in bands(index) if b.reference is reference)


@pytest.mark.parametrize(
    ("index", "label"),
    [
        (0.0, "unconcentrated"),
        (1_499.999, "unconcentrated"),  # < 1,500
        (1_500.0, "moderately concentrated"),  # 1,500 is the bottom of the moderate band
        (2_000.0, "moderately concentrated"),
        (2_500.0, "moderately concentrated"),  # 2,500 is still moderate ("between")
        (2_500.001, "highly concentrated"),  # > 2,500
        (10_000.0, "highly concentrated"),
    ],
)
def test_doj_2010_bands(index: float, label: str) -> None:
    assert _band(index, BandReference.DOJ_2010) == label


@pytest.mark.parametrize(
    ("index", "label"),
    [
        (1_000.0, "not highly concentrated"),
        (1_800.0, "not highly concentrated"),  # the line is "> 1,800"
        (1_800.001, "highly concentrated"),
        (8_528.0, "highly concentrated"),
    ],
)
def test_doj_2023_bands(index: float, label: str) -> None:
    assert _band(index, BandReference.DOJ_2023) == label


@pytest.mark.parametrize(
    ("index", "label"),
    [
        (3_999.999, "below strategic-dependency line"),
        (4_000.0, "below strategic-dependency line"),  # the line is "> 4,000"
        (4_000.001, "strategic dependency"),
        (8_362.0, "strategic dependency"),
    ],
)
def test_eu_2021_strategic_dependency(index: float, label: str) -> None:
    assert _band(index, BandReference.EU_2021) == label


def test_every_band_reference_is_reported_once_with_its_threshold() -> None:
    # 1,800 < 2,000 <= 2,500 and 2,000 <= 4,000
    result = bands(2_000.0)
    assert [b.reference for b in result] == [
        BandReference.DOJ_2010,
        BandReference.DOJ_2023,
        BandReference.EU_2021,
    ]
    assert [b.threshold for b in result] == ["1,500–2,500", "> 1,800", "<= 4,000"]
    assert [b.label for b in result] == [
        "moderately concentrated",
        "highly concentrated",
        "below strategic-dependency line",
    ]
