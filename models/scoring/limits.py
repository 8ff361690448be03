"""Defaults and caps of the scoring requests, importable without the engine (the CLI builds
its help text from them before anything heavy is loaded)."""

from __future__ import annotations

#: Draws behind score intervals by default (rank probabilities in steps of 1/16), and the most
#: a request may ask for.
DEFAULT_DRAWS = 16
MAX_DRAWS = 128
DEFAULT_SEED = 0
