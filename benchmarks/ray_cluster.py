"""A throwaway Ray cluster on loopback, for the Ray test and benchmark: a head that runs no
tasks (0 CPUs) and worker nodes of one CPU each, each its own raylet, as on separate machines.
``ray stop --force`` at the end stops every Ray process of this machine: run nothing else on
Ray beside it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")
#: Small object stores: the shared inputs are a few hundred kB to a few MB.
OPTIONS = ("--object-store-memory=100000000", "--disable-usage-stats")
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LocalCluster:
    address: str  # host:port of the head's GCS (ray.init(address=...))

    def add_worker(self, cpus: int = 1) -> None:
        subprocess.run(
            [RAY, "start", f"--address={self.address}", f"--num-cpus={cpus}", *OPTIONS],
            check=True,
            capture_output=True,
            env=ENV,
            timeout=120,
        )


@contextmanager
def local_cluster(workers: int) -> Iterator[LocalCluster]:
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths have a length limit
    head = [
        RAY,
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=0",
        "--include-dashboard=false",
        f"--temp-dir={temp}",
        *OPTIONS,
    ]
    try:
        subprocess.run(head, check=True, capture_output=True, env=ENV, timeout=120)
        cluster = LocalCluster(f"127.0.0.1:{port}")
        for _ in range(workers):
            cluster.add_worker()
        yield cluster
    finally:
        try:
            import ray

            ray.shutdown()
        except ImportError:
            pass
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env=ENV, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
