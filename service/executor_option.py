"""``--executor``: where a command's sweeps run (docs/scale.md). Its own module so that every
command's parser (serve, simulate, trajectory, report) takes it without importing the CLI."""

from __future__ import annotations

import argparse
import os


def add_executor_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor",
        default=os.environ.get("SOVRISK_EXECUTOR") or "local",
        help="where sweeps run (simulations of 100,000+ samples, the interval draws, "
        "trajectories' quarters): local, ray (a local Ray cluster, or RAY_ADDRESS), or "
        "ray://HOST:PORT; needs the `ray` extra (env SOVRISK_EXECUTOR; default local; "
        "docs/scale.md)",
    )


def use_executor(value: str) -> None:
    """Make ``value`` the default executor of this process (``local`` changes nothing)."""
    if value in ("", "local"):
        return
    from sovrisk.models.engine.executor import set_default_executor
    from sovrisk.service.ray_executor import executor_from_option

    try:
        set_default_executor(executor_from_option(value))
    except (ValueError, RuntimeError, ConnectionError) as exc:  # bad value, no extra, no cluster
        raise SystemExit(f"sovrisk: --executor {value}: {exc}") from None
