"""A `sovrisk serve` process on the bundled data in a temporary state folder, for the
benchmarks that measure a server from outside (bench_memory.py, bench_serve.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class ServeProcess:
    proc: subprocess.Popen[bytes]
    port: int
    state: Path  # holds the store and serve.log

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_process(
    name: str, env: Mapping[str, str] | None = None, *, state: Path | None = None
) -> Iterator[ServeProcess]:
    """`sovrisk serve` with the defaults a user gets (its own store, seeded from the bundled
    data), stopped with SIGTERM (SIGKILL after 30 s) and its folder removed afterwards;
    given a ``state`` folder, the server uses (and leaves) that one: a restart on the same
    store."""
    keep = state is not None
    state = state or Path(tempfile.mkdtemp(prefix=f"sovrisk-bench-{name}-"))
    port = free_port()
    with (state / "serve.log").open("wb") as sink:
        proc = subprocess.Popen(
            [str(BIN / "sovrisk"), "serve", "--store", str(state / "store"), "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **(env or {}), "SOVRISK_STATE_DIR": str(state)},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield ServeProcess(proc, port, state)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not keep:
            shutil.rmtree(state, ignore_errors=True)
