"""Build ``data/country_risk.csv`` from the WGI subset and the conflict overlay.

Country risk ``CR(c)`` on 0-100, higher = riskier (docs/data-format.md):

    wgi_risk = clip(100 * (2.5 - mean(pv, rl, rq)) / 5, 0, 100)
    risk     = min(100, wgi_risk + overlay)

``pv``, ``rl`` and ``rq`` are the World Bank WGI estimates (Political Stability, Rule of Law,
Regulatory Quality) of the latest year in which all three are present. The output is
deterministic: rows sorted by ISO3, fixed float formatting.

Usage::

    python scripts/build_country_risk.py                   # rebuild data/country_risk.csv
    python scripts/build_country_risk.py --check           # exit 1 if it is out of date
    python scripts/build_country_risk.py --from-full PATH  # re-extract data/wgi/wgi_subset.csv
                                                           # from the full WGI CSV, then build

Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
DEFAULT_FULL = REPO.parent / "shared" / "reference" / "wgi" / "wgi_2024update_1996_2023_long.csv"

#: Source id of the WGI in sources.csv.
WGI_SOURCE = "wgi-2024"
#: Indicators and years kept in the shipped subset.
SUBSET_INDICATORS = ("cc", "ge", "pv", "rl", "rq", "va")
SUBSET_YEARS = range(2019, 2024)
#: Countries of the fact sheet's WGI table (FACTS §2.1), always kept in the subset.
FACTS_COUNTRIES = (
    "USA", "TWN", "KOR", "JPN", "CHN", "NLD", "DEU", "MYS", "SGP", "ISR",
    "GBR", "FRA", "IRL", "AUT", "CHE", "SWE", "CAN", "CZE", "ITA", "HKG",
    "VNM", "IND", "PHL", "THA", "MEX", "SAU", "ARE", "RUS",
)  # fmt: skip
RISK_INDICATORS = ("pv", "rl", "rq")
#: Display names: the common English short names (METHODS v2 §4), where the WGI label differs
#: ("Taiwan, China", "Korea, Rep." ...); the WGI label is kept as the row's source_label.
COMMON_NAMES = {
    "CZE": "Czechia",
    "HKG": "Hong Kong",
    "KOR": "South Korea",
    "RUS": "Russia",
    "TWN": "Taiwan",
    "VNM": "Vietnam",
}
OUTPUT_COLUMNS = (
    "iso3",
    "name",
    "source_label",
    "wgi_year",
    "pv",
    "rl",
    "rq",
    "wgi_risk",
    "overlay",
    "overlay_reason",
    "risk",
    "quality",
    "source",
    "as_of",
)
QUALITY_ORDER = {"A": 0, "B": 1, "C": 2}


class BuildError(Exception):
    """A problem in the inputs, reported with the file it comes from."""


@dataclass(frozen=True)
class Overlay:
    iso3: str
    points: float
    reason: str
    quality: str
    sources: tuple[str, ...]
    as_of: str


@dataclass(frozen=True)
class CountryRow:
    iso3: str
    name: str
    year: int
    pv: float
    rl: float
    rq: float
    wgi_risk: float
    overlay: Overlay | None
    risk: float


def data_lines(path: Path) -> Iterator[str]:
    """Lines of a dataset CSV without blank lines and ``#`` comments (docs/data-format.md)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for line in handle:
            if line.strip() and not line.lstrip().startswith("#"):
                yield line


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise BuildError(f"{path}: file is missing")
    return [
        {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        for row in csv.DictReader(data_lines(path))
    ]


def split_list(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(";") if part.strip()]


def countries_used(data: Path) -> set[str]:
    """Every ISO3 the dataset refers to: sites, node HQs, regime issuers/origins/destinations."""
    used: set[str] = set()
    for row in read_rows(data / "sites.csv"):
        used.add(row["country"])
    for row in read_rows(data / "nodes.csv"):
        used.add(row["hq_country"])
    for row in read_rows(data / "regimes.csv"):
        used.add(row["issuer"])
        used.update(split_list(row.get("origin_countries", "")))
        used.update(split_list(row.get("destination_countries", "")))
    for row in read_rows(data / "conflict_overlay.csv"):
        used.add(row["iso3"])
    used.discard("")
    return used


def read_overlay(path: Path) -> dict[str, Overlay]:
    overlays: dict[str, Overlay] = {}
    for line, row in enumerate(read_rows(path), start=2):
        iso3 = row["iso3"]
        if iso3 in overlays:
            raise BuildError(f"{path}:{line}: duplicate country {iso3}")
        quality = row["quality"]
        if quality not in QUALITY_ORDER:
            raise BuildError(f"{path}:{line}: quality must be A, B or C, not {quality!r}")
        try:
            points = float(row["points"])
        except ValueError as exc:
            raise BuildError(f"{path}:{line}: points must be a number") from exc
        sources = tuple(split_list(row["source"]))
        if not sources:
            raise BuildError(f"{path}:{line}: source is required")
        overlays[iso3] = Overlay(iso3, points, row["reason"], quality, sources, row["as_of"])
    return overlays


def read_wgi(path: Path) -> tuple[dict[str, str], dict[tuple[str, int, str], float]]:
    """Country names and ``(iso3, year, indicator) -> estimate`` from a WGI long CSV."""
    names: dict[str, str] = {}
    values: dict[tuple[str, int, str], float] = {}
    for row in read_rows(path):
        code = row["code"]
        names.setdefault(code, row["countryname"])
        if row["estimate"]:
            values[(code, int(row["year"]), row["indicator"])] = float(row["estimate"])
    return names, values


def clip(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def round_half_up(value: float, digits: int) -> float:
    """Round half up on the shortest decimal repr, so results do not hinge on binary ties."""
    quantum = Decimal(1).scaleb(-digits)
    return float(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP))


def build_rows(
    countries: Iterable[str],
    names: dict[str, str],
    values: dict[tuple[str, int, str], float],
    overlays: dict[str, Overlay],
) -> list[CountryRow]:
    rows: list[CountryRow] = []
    missing: list[str] = []
    for iso3 in sorted(set(countries)):
        years = sorted(
            {
                y
                for (c, y, _i) in values
                if c == iso3 and all((c, y, i) in values for i in RISK_INDICATORS)
            }
        )
        if not years:
            missing.append(iso3)
            continue
        year = years[-1]
        # Estimates are rounded to the 4 decimals written, and the risk computed from them,
        # so a reader can recompute every row from the file itself.
        pv, rl, rq = (round_half_up(values[(iso3, year, i)], 4) for i in RISK_INDICATORS)
        wgi_risk = round_half_up(clip(100.0 * (2.5 - (pv + rl + rq) / 3.0) / 5.0, 0.0, 100.0), 2)
        overlay = overlays.get(iso3)
        risk = round_half_up(min(100.0, wgi_risk + (overlay.points if overlay else 0.0)), 2)
        rows.append(CountryRow(iso3, names[iso3], year, pv, rl, rq, wgi_risk, overlay, risk))
    if missing:
        raise BuildError(
            "no WGI year with pv, rl and rq for: "
            + ", ".join(missing)
            + " (re-extract with --from-full)"
        )
    return rows


def render(rows: Iterable[CountryRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(OUTPUT_COLUMNS)
    for r in rows:
        quality, sources, as_of, reason = "A", [WGI_SOURCE], f"{r.year}-12-31", ""
        points = 0.0
        if r.overlay is not None:
            points = r.overlay.points
            reason = r.overlay.reason
            sources += [s for s in r.overlay.sources if s not in sources]
            quality = max(quality, r.overlay.quality, key=QUALITY_ORDER.__getitem__)
            as_of = max(as_of, r.overlay.as_of)
        writer.writerow(
            (
                r.iso3,
                COMMON_NAMES.get(r.iso3, r.name),
                r.name,
                str(r.year),
                f"{r.pv:.4f}",
                f"{r.rl:.4f}",
                f"{r.rq:.4f}",
                f"{r.wgi_risk:.2f}",
                f"{points:.2f}",
                reason,
                f"{r.risk:.2f}",
                quality,
                ";".join(sources),
                as_of,
            )
        )
    return out.getvalue()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_subset(full: Path, out: Path, countries: set[str]) -> int:
    """Copy the WGI rows of ``countries`` (indicators and years of the subset) verbatim."""
    if not full.is_file():
        raise BuildError(f"{full}: full WGI file is missing")
    with full.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        col = {name: k for k, name in enumerate(header)}
        kept = [
            row
            for row in reader
            if row[col["code"]] in countries
            and row[col["indicator"]] in SUBSET_INDICATORS
            and int(row[col["year"]]) in SUBSET_YEARS
        ]
    kept.sort(key=lambda r: (r[col["code"]], r[col["indicator"]], int(r[col["year"]])))
    found = {r[col["code"]] for r in kept}
    if countries - found:
        raise BuildError(f"{full}: no rows for " + ", ".join(sorted(countries - found)))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(kept)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(buffer.getvalue(), encoding="utf-8")
    return len(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="dataset folder (default: data/)")
    parser.add_argument(
        "--wgi", type=Path, default=None, help="WGI long CSV (default: DATA/wgi/wgi_subset.csv)"
    )
    parser.add_argument(
        "--overlay", type=Path, default=None, help="default: DATA/conflict_overlay.csv"
    )
    parser.add_argument("--out", type=Path, default=None, help="default: DATA/country_risk.csv")
    parser.add_argument(
        "--from-full",
        type=Path,
        nargs="?",
        const=DEFAULT_FULL,
        default=None,
        metavar="PATH",
        help="first re-extract DATA/wgi/wgi_subset.csv from the full WGI long CSV "
        f"(default PATH: {DEFAULT_FULL})",
    )
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the output is out of date"
    )
    args = parser.parse_args(argv)
    data: Path = args.data
    wgi: Path = args.wgi or data / "wgi" / "wgi_subset.csv"
    overlay_path: Path = args.overlay or data / "conflict_overlay.csv"
    out: Path = args.out or data / "country_risk.csv"
    try:
        used = countries_used(data)
        if args.from_full is not None:
            wanted = used | set(FACTS_COUNTRIES)
            count = extract_subset(args.from_full, wgi, wanted)
            print(
                f"extracted {count} rows for {len(wanted)} countries into {wgi} "
                f"(source sha256 {sha256(args.from_full)})"
            )
        names, values = read_wgi(wgi)
        overlays = read_overlay(overlay_path)
        unknown = set(overlays) - set(names)
        if unknown:
            raise BuildError(f"{overlay_path}: countries not in the WGI file: {sorted(unknown)}")
        # Every country in the subset gets a row (it holds the used ones and the FACTS list).
        rows = build_rows(set(names) | used, names, values, overlays)
        text = render(rows)
    except (BuildError, KeyError, ValueError) as exc:
        print(f"build_country_risk: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = out.read_text(encoding="utf-8") if out.is_file() else ""
        if current != text:
            print(
                f"{out} is out of date: run python scripts/build_country_risk.py", file=sys.stderr
            )
            return 1
        print(f"{out} is up to date ({len(rows)} countries)")
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(rows)} countries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
