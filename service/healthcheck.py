"""``python -m sovrisk.service.healthcheck HOST:PORT [SERVICE] [--tls-ca FILE]
[--tls-cert FILE --tls-key FILE] [--server-name NAME]``: exit 0 when the server is SERVING.

Speaks the standard gRPC health protocol, for container health checks and scripts. Against a
server run with ``--tls-cert``, give ``--tls-ca`` (the CA that signed its certificate), and
for one that requires client certificates (``--tls-client-ca``) ``--tls-cert``/``--tls-key``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _channel(
    target: str,
    root_certificates: bytes | None,
    certificate_chain: bytes | None,
    private_key: bytes | None,
    server_name: str | None,
) -> grpc.Channel:
    if root_certificates is None and certificate_chain is None:
        return grpc.insecure_channel(target)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=root_certificates,
        private_key=private_key,
        certificate_chain=certificate_chain,
    )
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(target, credentials, options=options)


def check(
    target: str,
    service: str = "",
    timeout: float = 3.0,
    *,
    root_certificates: bytes | None = None,
    certificate_chain: bytes | None = None,
    private_key: bytes | None = None,
    server_name: str | None = None,
) -> bool:
    """True when ``target`` answers SERVING; over TLS when given certificates (PEM bytes)."""
    with _channel(target, root_certificates, certificate_chain, private_key, server_name) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            print(f"{target}: {exc.code().name}", file=sys.stderr)
            return False
    serving: bool = reply.status == health_pb2.HealthCheckResponse.SERVING
    print(f"{target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}")
    return serving


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sovrisk.service.healthcheck",
        description="exit 0 when a sovrisk gRPC server answers SERVING, 1 otherwise",
    )
    parser.add_argument("target", metavar="HOST:PORT")
    parser.add_argument("service", nargs="?", default="", help="a service name (default: all)")
    parser.add_argument("--tls-ca", metavar="FILE", help="connect over TLS, trusting this CA")
    parser.add_argument("--tls-cert", metavar="FILE", help="client certificate (mutual TLS)")
    parser.add_argument("--tls-key", metavar="FILE", help="the client certificate's key")
    parser.add_argument("--server-name", help="the name the server's certificate must carry")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    try:
        pems = [_read(args.tls_ca), _read(args.tls_cert), _read(args.tls_key)]
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ok = check(
        args.target,
        args.service,
        args.timeout,
        root_certificates=pems[0],
        certificate_chain=pems[1],
        private_key=pems[2],
        server_name=args.server_name,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
