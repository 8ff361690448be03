"""``sovrisk serve`` as a real subprocess, for smoke and crash tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def sovrisk_command() -> list[str]:
    script = BIN / "sovrisk"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sovrisk.service.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=STOP_TIMEOUT)


def healthy(target: str) -> bool:
    """The standard gRPC health check says SERVING (in this process: a subprocess per poll
    cost ~0.4 s of interpreter start each)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def spawn_server(
    *,
    data: str,
    store: str,
    log: Path,
    env: Mapping[str, str] | None = None,
    extra: Sequence[str] = (),
) -> Server:
    """Start ``sovrisk serve`` and wait until its health check says SERVING."""
    port = free_port()
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [
                *sovrisk_command(),
                "serve",
                "--data",
                data,
                "--store",
                store,
                "--port",
                str(port),
                *extra,
            ],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            # intervals off unless a test asks: 16 draws cost ~30 s on the first score
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "SOVRISK_INTERVAL_DRAWS": "0",
                **(env or {}),
            },
        )
    server = Server(proc, port, log)
    deadline = time.monotonic() + START_TIMEOUT
    while not healthy(server.target):
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{server.output()}")
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"not SERVING after {START_TIMEOUT:.0f} s:\n{server.output()}")
        time.sleep(0.2)
    return server
