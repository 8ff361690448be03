"""Herfindahl–Hirschman concentration (METHODS §3) and its labelled reference bands."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass

#: SIA/BCG 2021 flag: one region holding more than 65 % of a market.
CR1_FLAG_PERCENT = 65.0


def hhi(shares: Mapping[str, float]) -> float:
    """HHI on the 0–10,000 scale from shares given as fractions (normalised to sum 1).

    >>> hhi({"TWN": 0.92, "KOR": 0.08})
    8528.0
    """
    total = math.fsum(v for v in shares.values() if v > 0)
    if total <= 0:
        return 0.0
    return round(math.fsum((100.0 * v / total) ** 2 for v in shares.values() if v > 0), 9)


def n_eff(index: float) -> float:
    """Effective number of equal-sized suppliers, ``10,000 / HHI`` (0 for an empty market)."""
    return 10_000.0 / index if index > 0 else 0.0


def cr1(shares: Mapping[str, float]) -> tuple[str, float]:
    """Largest share (key, percent); ties broken by key so results are reproducible."""
    total = math.fsum(v for v in shares.values() if v > 0)
    if total <= 0:
        return ("", 0.0)
    key, value = min(shares.items(), key=lambda kv: (-kv[1], kv[0]))
    return key, 100.0 * value / total


class BandReference(enum.StrEnum):
    """Reference thresholds built for mergers; reported as labelled references only."""

    DOJ_2010 = "DOJ/FTC Horizontal Merger Guidelines 2010 §5.3"
    DOJ_2023 = "DOJ/FTC Merger Guidelines 2023, Guideline 1"
    EU_2021 = "EU strategic dependency, SWD(2021) 352"


@dataclass(frozen=True, slots=True)
class Band:
    reference: BandReference
    label: str
    threshold: str


def bands(index: float) -> tuple[Band, ...]:
    """Where ``index`` falls under each reference."""
    if index < 1500:
        doj2010 = Band(BandReference.DOJ_2010, "unconcentrated", "< 1,500")
    elif index <= 2500:
        doj2010 = Band(BandReference.DOJ_2010, "moderately concentrated", "1,500–2,500")
    else:
        doj2010 = Band(BandReference.DOJ_2010, "highly concentrated", "> 2,500")
    doj2023 = (
        Band(BandReference.DOJ_2023, "highly concentrated", "> 1,800")
        if index > 1800
        else Band(BandReference.DOJ_2023, "not highly concentrated", "<= 1,800")
    )
    eu = (
        Band(BandReference.EU_2021, "strategic dependency", "> 4,000")
        if index > 4000
        else Band(BandReference.EU_2021, "below strategic-dependency line", "<= 4,000")
    )
    return (doj2010, doj2023, eu)
