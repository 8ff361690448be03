"""The newcomer's waits: CLI start-up and the first `make run` install, side by side.

    .venv/bin/python benchmarks/bench_cli.py               # CLI commands (medians)
    .venv/bin/python benchmarks/bench_cli.py --install     # + a fresh clone's `make install`

Each command runs as a fresh process (what a user waits for), ``--runs`` times; the table gives
the median and the fastest. Targets (issue 12): ``sovrisk --help`` under 0.2 s and ``sovrisk
providers`` under 0.5 s. ``--install`` clones the checkout into a temporary folder and times
``make install`` there (the runtime install ``make run`` does before serving), and the size of
the venv it made; pip's download cache is whatever this machine has (say which in the note).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGETS = {"sovrisk --help": 0.2, "sovrisk providers": 0.5}


def _time(args: Sequence[str], runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, cwd=ROOT, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def cli_rows(runs: int) -> list[tuple[str, float, float]]:
    sovrisk = str(BIN / "sovrisk")
    env = dict(os.environ)
    env["SOVRISK_STATE_DIR"] = tempfile.mkdtemp(prefix="sovrisk-bench-")  # no store: bundled
    commands = {
        "python -c pass (interpreter floor)": [sys.executable, "-c", "pass"],
        "sovrisk --help": [sovrisk, "--help"],
        "sovrisk --version": [sovrisk, "--version"],
        "sovrisk providers": [sovrisk, "providers"],
        "sovrisk nodes --kind packaging": [sovrisk, "nodes", "--kind", "packaging"],
        "sovrisk score aws --draws 0": [sovrisk, "score", "aws", "--draws", "0"],
    }
    rows = []
    for name, args in commands.items():
        n = max(1, runs // 3) if "score" in name else runs
        times = _time(args, n, env)
        rows.append((name, statistics.median(times), min(times)))
    shutil.rmtree(env["SOVRISK_STATE_DIR"], ignore_errors=True)
    return rows


def install_row() -> tuple[float, int]:
    """Seconds of `make install` in a fresh clone, and the venv's size in MB."""
    work = Path(tempfile.mkdtemp(prefix="sovrisk-bench-install-"))
    try:
        clone = work / "sovrisk"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        start = time.perf_counter()
        subprocess.run(["make", "install"], cwd=clone, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (clone / ".venv").rglob("*") if p.is_file())
        return seconds, size // 1_000_000
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--install", action="store_true", help="also time a fresh make install")
    args = parser.parse_args(argv)
    print(f"{'command':<36} {'median s':>9} {'best s':>7}  target")
    missed = 0
    for name, median, best in cli_rows(args.runs):
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            ok = median <= target
            missed += not ok
            verdict = f"<= {target:.1f} s {'ok' if ok else 'MISSED'}"
        print(f"{name:<36} {median:>9.3f} {best:>7.3f}  {verdict}")
    if args.install:
        seconds, mb = install_row()
        print(f"{'make install (fresh clone, runtime)':<36} {seconds:>9.1f} {'':>7}  venv {mb} MB")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
