"""Plain-text tables that fit the terminal.

On a terminal a table is fitted to its width: long text cells are cut (``~`` marks a cut)
and, if that is not enough, the columns named droppable go, last first. Piped output (a file,
``less -S``, a script) is never cut: whoever reads it decides.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Sequence

_NUMBER = re.compile(r"^[-+]?[\d.,%]+(?:\s*-\s*[\d.]+)?[?]?$")
#: Text columns are never cut below this.
MIN_TEXT_WIDTH = 10
GAP = "  "

#: Column heads of the sub-scores in tables; the reports and `score --server` use them too
#: (kept here because this module needs no engine).
SUB_SCORE_SHORT: dict[str, str] = {
    "concentration": "CONC",
    "structural": "STRUCT",
    "geopolitical": "GEO",
    "export_control": "EXPORT",
    "resilience": "RESIL",
    "tail": "TAIL",
}


def terminal_width() -> int | None:
    """Columns of the terminal stdout writes to; None when it is not a terminal."""
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size((120, 24)).columns


def _is_numeric(cells: Sequence[str]) -> bool:
    filled = [c for c in cells if c and c not in ("-", "n/a")]
    return bool(filled) and all(_NUMBER.match(c) for c in filled)


def fit_table(
    heads: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = -1,
    droppable: Sequence[str] = (),
) -> str:
    """Heads, a rule and the rows; numeric columns right-aligned. ``width`` -1 means the
    terminal's (no limit when not a terminal), None no limit."""
    limit = terminal_width() if width == -1 else width
    heads = list(heads)
    cols = [list(col) for col in zip(heads, *rows, strict=True)] if heads else []
    widths = [max(len(c) for c in col) for col in cols]
    numeric = [_is_numeric(col[1:]) for col in cols]
    keep = list(range(len(heads)))

    def total() -> int:
        return sum(widths[i] for i in keep) + len(GAP) * (len(keep) - 1)

    def cuttable() -> int:  # what cutting text columns to MIN_TEXT_WIDTH could save
        return sum(max(0, widths[i] - MIN_TEXT_WIDTH) for i in keep if not numeric[i])

    if limit is not None:
        for name in reversed(droppable):  # drop the least important columns first
            if total() - cuttable() <= limit:
                break
            if name in heads and heads.index(name) in keep:
                keep.remove(heads.index(name))
        while total() > limit:  # then cut the widest text column
            text = [i for i in keep if not numeric[i] and widths[i] > MIN_TEXT_WIDTH]
            if not text:
                break
            widest = max(text, key=lambda i: widths[i])
            widths[widest] = max(MIN_TEXT_WIDTH, widths[widest] - (total() - limit))

    def cell(i: int, text: str) -> str:
        if len(text) > widths[i]:
            text = text[: widths[i] - 1] + "~"
        return text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i])

    def line(values: Sequence[str]) -> str:
        return GAP.join(cell(i, values[i]) for i in keep).rstrip()

    out = [line(heads), "-" * total()]
    out += [line(r) for r in rows]
    return "\n".join(out)
