"""``sovrisk serve`` forked from a warm parent, for tests that kill and restart a real server
many times.

A cold ``sovrisk serve`` spends about 4 s importing (scipy, scikit-learn, numba, gRPC) before
it opens its store; a SIGKILL trial needs a fresh process each time. :class:`ServerForker`
runs one helper process that imports everything ``sovrisk serve`` needs once and then forks a
fresh server per :meth:`ServerForker.spawn`: the child runs exactly the ``sovrisk serve``
command line (``cli.main``), with its own log file, and starts in well under a second on the
small fixture. The helper never opens a gRPC channel or server itself, so the children start
gRPC from scratch. Run as ``python -m tests.serverfork`` (that is the helper).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.serverproc import ROOT, START_TIMEOUT, free_port


@dataclass
class ForkedServer:
    pid: int
    port: int
    log: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class ServerForker:
    """The helper process; :meth:`spawn` forks a server, :meth:`kill` SIGKILLs and reaps it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.serverfork"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "SOVRISK_INTERVAL_DRAWS": "0"},
        )
        assert self._reply() == {"ready": True}
        self.live: set[int] = set()

    def _reply(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the server forker exited with {self.proc.wait()}")
        reply: dict[str, object] = json.loads(line)
        return reply

    def _send(self, **command: object) -> dict[str, object]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def spawn(
        self,
        *,
        data: str,
        store: str,
        log: Path,
        env: Mapping[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> ForkedServer:
        """Fork ``sovrisk serve --data DATA --store STORE --port P EXTRA`` and wait until its
        health check says SERVING."""
        port = free_port()
        args = ["serve", "--data", data, "--store", store, "--port", str(port), *extra]
        pid = int(str(self._send(op="spawn", args=args, log=str(log), env=dict(env or {}))["pid"]))
        self.live.add(pid)
        server = ForkedServer(pid, port, log)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            # Connect first: a gRPC channel refused once backs off for a second.
            if _accepts(port):
                with grpc.insecure_channel(server.target) as channel:
                    health = health_pb2_grpc.HealthStub(channel)
                    try:
                        status = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                        if status.status == health_pb2.HealthCheckResponse.SERVING:
                            return server
                    except grpc.RpcError:
                        pass
            if time.monotonic() > deadline:
                self.kill(server)
                raise AssertionError(f"not SERVING in {START_TIMEOUT:.0f} s:\n{server.output()}")
            time.sleep(0.02)

    def kill(self, server: ForkedServer, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` and reap the server; its exit code (negative: the signal)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, sig)
        return self.wait(server)

    def wait(self, server: ForkedServer) -> int:
        self.live.discard(server.pid)
        return int(str(self._send(op="wait", pid=server.pid)["code"]))

    def close(self) -> None:
        for pid in list(self.live):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.live.clear()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _serve_child(command: Mapping[str, object], main: object) -> None:
    """In the forked child: stdout and stderr to the log, run ``sovrisk serve``, exit."""
    code = 1
    try:
        sink = os.open(str(command["log"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(sink, 1)
        os.dup2(sink, 2)
        os.environ.update(command["env"])  # type: ignore[arg-type]
        code = main(command["args"])  # type: ignore[operator]
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _helper() -> None:
    # Everything `sovrisk serve` imports, SQLite and PostgreSQL stores included.
    import sovrisk.service.server
    import sovrisk.service.store.postgres
    import sovrisk.service.store.sqlite  # noqa: F401
    from sovrisk.service.cli import main

    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "spawn":
            out.flush()
            pid = os.fork()
            if pid == 0:
                _serve_child(command, main)
            out.write(json.dumps({"pid": pid}) + "\n")
        elif command["op"] == "wait":
            _, status = os.waitpid(int(command["pid"]), 0)
            out.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
        out.flush()


if __name__ == "__main__":
    _helper()
