"""TLS, mutual TLS and ``--require-read-token`` (issue 13 item 5), in process on port 0.

A throwaway CA, a server certificate for localhost / 127.0.0.1 and a client certificate are
made with ``cryptography`` in ``tmp_path``. The gRPC server and the gateway serve TLS from
them; plaintext clients, clients without a certificate (under mTLS) and clients with one a
stranger signed are refused. The handshake the gateway and the gRPC port negotiate is printed
(``pytest -s``) and recorded in docs/operations.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from sovrisk.service import healthcheck
from sovrisk.service.auth import TokenAuthenticator
from sovrisk.service.cli import main
from sovrisk.service.client import SovriskClient
from sovrisk.service.gateway.server import RunningGateway, start_gateway
from sovrisk.service.grpc_gen.sovrisk.v1 import (
    graph_pb2,
    graph_pb2_grpc,
    risk_pb2,
    risk_pb2_grpc,
)
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import RunningServer, start_server
from sovrisk.service.tls import ServerTls, TlsConfigError, load_server_tls
from tests.conftest import SMALL

DATA = str(SMALL)
TOKENS = "rita:reader:tok-reader-123,ed:editor:tok-editor-456"
READER = (("authorization", "Bearer tok-reader-123"),)
SCORE = risk_pb2.ScoreProviderRequest(name="providers/p")

# -- certificates ---------------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    *,
    server: bool,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        names: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # a client certificate another CA signed
    stranger_key: Path
    other_key: Path  # a key belonging to no certificate here

    def read(self, name: str) -> bytes:
        path: Path = getattr(self, name)
        return path.read_bytes()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")

    def write(name: str, data: bytes) -> Path:
        path = folder / name
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    def cert_pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    ca_key, ca_cert = _ca("sovrisk test CA")
    server_key, server_cert = _leaf(ca_key, ca_cert, "localhost", server=True)
    client_key, client_cert = _leaf(ca_key, ca_cert, "analyst", server=False)
    stranger_ca_key, stranger_ca = _ca("another CA")
    stranger_key, stranger_cert = _leaf(stranger_ca_key, stranger_ca, "mallory", server=False)
    return Pki(
        ca=write("ca.pem", cert_pem(ca_cert)),
        server_cert=write("server.pem", cert_pem(server_cert)),
        server_key=write("server.key", _pem_key(server_key)),
        client_cert=write("client.pem", cert_pem(client_cert)),
        client_key=write("client.key", _pem_key(client_key)),
        stranger_cert=write("stranger.pem", cert_pem(stranger_cert)),
        stranger_key=write("stranger.key", _pem_key(stranger_key)),
        other_key=write("other.key", _pem_key(_key())),
    )


def _tls(pki: Pki, *, mutual: bool = False) -> ServerTls:
    tls = load_server_tls(pki.server_cert, pki.server_key, pki.ca if mutual else None)
    assert tls is not None and tls.mutual == mutual
    context = tls.ssl_context()
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2  # TLS 1.1 and older refused
    assert context.verify_mode == (ssl.CERT_REQUIRED if mutual else ssl.CERT_NONE)
    return tls


# -- servers and clients --------------------------------------------------------------------


@pytest_asyncio.fixture
async def registry() -> AsyncIterator[GraphRegistry]:
    registry = GraphRegistry.from_directory(SMALL)
    try:
        yield registry
    finally:
        registry.close()


async def _grpc(registry: GraphRegistry, **kwargs: Any) -> RunningServer:
    return await start_server(registry, host="127.0.0.1", port=0, **kwargs)


def _secure(
    port: int, pki: Pki, *, cert: str | None = None, host: str = "127.0.0.1"
) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.read("ca"),
        private_key=pki.read(f"{cert}_key") if cert else None,
        certificate_chain=pki.read(f"{cert}_cert") if cert else None,
    )
    return grpc.aio.secure_channel(f"{host}:{port}", credentials)


async def _score(channel: grpc.aio.Channel, **kwargs: Any) -> risk_pb2.RiskAssessment:
    async with channel:
        stub = risk_pb2_grpc.RiskServiceStub(channel)
        reply: risk_pb2.RiskAssessment = await stub.ScoreProvider(SCORE, timeout=10, **kwargs)
        return reply


async def _refused(channel: grpc.aio.Channel) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _score(channel)
    code: grpc.StatusCode = caught.value.code()
    return code


def _handshake(
    port: int, pki: Pki, alpn: list[str], newest: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED
) -> str:
    """The protocol version, cipher suite, its bits and the ALPN protocol a TLS client
    (Python's ssl, offering TLS 1.2 to ``newest``) negotiates with ``127.0.0.1:port``."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.maximum_version = newest
    context.set_alpn_protocols(alpn)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        version = tls.version()
        name, _, bits = tls.cipher() or ("?", "?", 0)
        assert version in ("TLSv1.2", "TLSv1.3")
        return f"{version} {name} ({bits}-bit), ALPN {tls.selected_alpn_protocol() or 'none'}"


# -- gRPC -----------------------------------------------------------------------------------


async def test_grpc_serves_tls_and_refuses_plaintext(registry: GraphRegistry, pki: Pki) -> None:
    running = await _grpc(registry, tls=_tls(pki))
    try:
        assessment = await _score(_secure(running.port, pki))
        assert assessment.provider == "providers/p" and assessment.composite > 0
        # by name too: the certificate carries localhost and 127.0.0.1
        assert (await _score(_secure(running.port, pki, host="localhost"))).composite > 0
        plain = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        assert await _refused(plain) == grpc.StatusCode.UNAVAILABLE
        for newest in (ssl.TLSVersion.MAXIMUM_SUPPORTED, ssl.TLSVersion.TLSv1_2):
            figures = await asyncio.to_thread(_handshake, running.port, pki, ["h2"], newest)
            print(f"\ngRPC port TLS handshake: {figures}")
            assert figures.endswith("ALPN h2")
        # the typed client and the health check, as a container or script would run them
        target = f"127.0.0.1:{running.port}"

        def typed() -> float:
            with SovriskClient(target, root_certificates=pki.ca, timeout=10) as client:
                return client.score("p").composite

        assert await asyncio.to_thread(typed) == pytest.approx(assessment.composite)
        ca = pki.read("ca")
        assert await asyncio.to_thread(healthcheck.check, target, root_certificates=ca)
        assert not await asyncio.to_thread(healthcheck.check, target, timeout=1.0)
        argv = [target, "--tls-ca", str(pki.ca), "--server-name", "localhost"]
        assert await asyncio.to_thread(healthcheck.main, argv) == 0
    finally:
        await running.stop(0)


async def test_grpc_mutual_tls_requires_a_client_certificate_from_the_ca(
    registry: GraphRegistry, pki: Pki
) -> None:
    running = await _grpc(registry, tls=_tls(pki, mutual=True))
    try:
        assert await _refused(_secure(running.port, pki)) == grpc.StatusCode.UNAVAILABLE
        stranger = _secure(running.port, pki, cert="stranger")
        assert await _refused(stranger) == grpc.StatusCode.UNAVAILABLE
        assessment = await _score(_secure(running.port, pki, cert="client"))
        assert assessment.provider == "providers/p"
        target = f"127.0.0.1:{running.port}"

        def typed() -> float:
            with SovriskClient(
                target,
                root_certificates=pki.ca,
                certificate_chain=pki.client_cert,
                private_key=pki.client_key,
                timeout=10,
            ) as client:
                return client.score("p").composite

        assert await asyncio.to_thread(typed) == pytest.approx(assessment.composite)
        argv = [target, "--tls-ca", str(pki.ca)]
        assert await asyncio.to_thread(healthcheck.main, argv) == 1  # no client certificate
        argv += ["--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)]
        assert await asyncio.to_thread(healthcheck.main, argv) == 0
    finally:
        await running.stop(0)


async def test_score_and_report_with_server_over_mutual_tls_and_a_read_token(
    registry: GraphRegistry, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    auth = TokenAuthenticator(env={"SOVRISK_TOKENS": TOKENS})
    running = await _grpc(registry, tls=_tls(pki, mutual=True), auth=auth, require_read_token=True)
    try:
        target = f"localhost:{running.port}"
        base = ["score", "p", "--server", target, "--draws", "0", "--tls-ca", str(pki.ca)]
        client = ["--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)]
        token = ["--token", "tok-reader-123"]
        assert await asyncio.to_thread(main, [*base, *client, *token]) == 0
        assert "Provider P (providers/p): 51.9 / 100, high" in capsys.readouterr().out
        assert await asyncio.to_thread(main, [*base, *client]) == 1  # no token
        assert "UNAUTHENTICATED" in capsys.readouterr().err
        assert await asyncio.to_thread(main, [*base, *token]) == 1  # no client certificate
        assert "UNAVAILABLE" in capsys.readouterr().err
        with pytest.raises(SystemExit, match="--tls-cert and --tls-key go together"):
            await asyncio.to_thread(main, [*base, "--tls-cert", str(pki.client_cert)])
        report = ["report", "--server", target, "--format", "csv", "-o", "-", "--draws", "0"]
        report += ["--tls-ca", str(pki.ca), *client, *token]
        assert await asyncio.to_thread(main, report) == 0
        assert "graph/versions/1" in capsys.readouterr().out.splitlines()[1]
    finally:
        await running.stop(0)


# -- gateway --------------------------------------------------------------------------------


async def _get(url: str, context: ssl.SSLContext | bool) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, ssl=context) as response,
    ):
        return response.status, await response.json()


def _client_context(pki: Pki, cert: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert:
        context.load_cert_chain(getattr(pki, f"{cert}_cert"), getattr(pki, f"{cert}_key"))
    return context


async def test_gateway_serves_https_and_refuses_plain_http(
    registry: GraphRegistry, pki: Pki
) -> None:
    running = await start_gateway(registry, ssl_context=_tls(pki).ssl_context())
    try:
        url = f"https://127.0.0.1:{running.port}/v1/providers/p:score"
        status, body = await _get(url, _client_context(pki))
        assert status == 200 and body["provider"] == "providers/p"
        for newest in (ssl.TLSVersion.MAXIMUM_SUPPORTED, ssl.TLSVersion.TLSv1_2):
            figures = await asyncio.to_thread(_handshake, running.port, pki, ["http/1.1"], newest)
            print(f"\ngateway TLS handshake: {figures}")
        with pytest.raises(aiohttp.ClientError):
            await _get(url.replace("https", "http"), False)
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await _get(url, ssl.create_default_context())  # the system roots do not know it
    finally:
        await running.stop()


async def test_gateway_mutual_tls_requires_a_client_certificate_from_the_ca(
    registry: GraphRegistry, pki: Pki
) -> None:
    running = await start_gateway(registry, ssl_context=_tls(pki, mutual=True).ssl_context())
    try:
        url = f"https://localhost:{running.port}/v1/providers/p:score"
        with pytest.raises(aiohttp.ClientError):
            await _get(url, _client_context(pki))
        with pytest.raises(aiohttp.ClientError):
            await _get(url, _client_context(pki, "stranger"))
        status, body = await _get(url, _client_context(pki, "client"))
        assert status == 200 and body["provider"] == "providers/p"
    finally:
        await running.stop()


# -- --require-read-token -------------------------------------------------------------------


async def test_reads_need_a_token_health_and_reflection_stay_open(
    registry: GraphRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = TokenAuthenticator(env={"SOVRISK_TOKENS": TOKENS})
    running = await _grpc(registry, auth=auth, require_read_token=True)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            graph = graph_pb2_grpc.GraphServiceStub(channel)
            calls: dict[str, Callable[[Any], Awaitable[Any]]] = {
                "ScoreProvider": lambda md: risk.ScoreProvider(SCORE, metadata=md),
                "GetGraph": lambda md: graph.GetGraph(
                    graph_pb2.GetGraphRequest(name="graph"), metadata=md
                ),
            }
            for name, call in calls.items():
                for metadata in (None, (("authorization", "Bearer tok-wrong"),)):
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await call(metadata)
                    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
                    assert "requires a bearer token for reads" in (caught.value.details() or "")
                assert await call(READER) is not None
            # a server stream and a client stream are refused alike
            stream = risk.SimulateDisruptions(risk_pb2.SimulateDisruptionsRequest(samples=10))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in stream:
                    pass
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            status = rpc_status.from_call(caught.value)
            assert status is not None
            info = error_details_pb2.ErrorInfo()
            assert status.details[0].Unpack(info) and info.reason == "UNAUTHENTICATED"

            async def nothing() -> AsyncIterator[graph_pb2.ImportGraphRequest]:
                return
                yield

            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await graph.ImportGraph(nothing())
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # a reader may read but still not edit
            edit = graph_pb2.BatchUpdateGraphRequest(parent="graph", message="x")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await graph.BatchUpdateGraph(edit, metadata=READER)
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
            answers = reflect.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            listed = [s.name async for a in answers for s in a.list_services_response.service]
            assert "sovrisk.v1.RiskService" in listed
    finally:
        await running.stop(0)
    assert "code=UNAUTHENTICATED" in caplog.text
    assert "tok-wrong" not in caplog.text and "tok-reader-123" not in caplog.text


async def test_gateway_reads_need_a_token(
    registry: GraphRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = TokenAuthenticator(env={"SOVRISK_TOKENS": TOKENS})
    running: RunningGateway = await start_gateway(registry, auth=auth, require_read_token=True)
    base = f"http://127.0.0.1:{running.port}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/v1/providers/p:score") as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"] == 'Bearer realm="sovrisk"'
                body = await response.json()
                assert body["error"]["status"] == "UNAUTHENTICATED"
            wrong = {"Authorization": "Bearer tok-wrong"}
            async with session.get(f"{base}/v1/graph", headers=wrong) as response:
                assert response.status == 401
                assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
            reader = {"Authorization": "Bearer tok-reader-123"}
            async with session.get(f"{base}/v1/providers/p:score", headers=reader) as response:
                assert response.status == 200
            for open_path in ("/healthz", "/openapi.json"):
                async with session.get(f"{base}{open_path}") as response:
                    assert response.status == 200, open_path
    finally:
        await running.stop()
    assert "tok-wrong" not in caplog.text and "tok-reader-123" not in caplog.text


# -- configuration --------------------------------------------------------------------------


def test_check_config_refuses_a_certificate_without_a_key(
    tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["serve", "--check-config", "--store", str(tmp_path / "s"), "--port", "0"]
    args += ["--data", DATA, "--tokens", str(tmp_path / "tokens.toml")]
    assert main([*args, "--tls-cert", str(pki.server_cert)]) == 1
    out = capsys.readouterr().out
    assert "BAD  --tls-cert      --tls-cert was given without --tls-key: give both or neither" in (
        out
    )
    assert main([*args, "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.other_key)]) == 1
    assert f"--tls-key {pki.other_key} does not match the certificate" in capsys.readouterr().out
    good = [*args, "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    assert main([*good, "--tls-client-ca", str(pki.ca)]) == 0
    assert "client certificates required" in capsys.readouterr().out
    assert main(args) == 0
    assert "ok   --tls-cert      off: gRPC and the gateway speak plaintext" in (
        capsys.readouterr().out
    )
    assert main([*args, "--require-read-token"]) == 1  # no token could read
    assert "BAD  --require-read-token" in capsys.readouterr().out
    monkeypatch.setenv("SOVRISK_REQUIRE_READ_TOKEN", "1")
    assert main(args) == 1
    assert "BAD  --require-read-token" in capsys.readouterr().out
    monkeypatch.setenv("SOVRISK_TOKENS", "rita:reader:tok-reader-123")
    assert main(args) == 0
    assert "ok   --require-read-token every read needs a bearer token" in capsys.readouterr().out


def test_serve_refuses_bad_tls_files_in_one_line(
    tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "s"
    args = ["serve", "--store", str(store), "--port", "0", "--data", DATA]
    monkeypatch.setenv("SOVRISK_TLS_CERT", str(pki.server_cert))  # the environment counts
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err == "error: --tls-cert was given without --tls-key: give both or neither\n"
    monkeypatch.setenv("SOVRISK_TLS_KEY", str(tmp_path / "missing.key"))
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--tls-key" in err and "cannot read the file" in err
    assert not store.exists()  # refused before the store was opened


def test_load_server_tls_names_the_flag(tmp_path: Path, pki: Pki) -> None:
    assert load_server_tls(None, None) is None
    cases: list[tuple[tuple[Any, ...], str]] = [
        ((None, pki.server_key), "--tls-key was given without --tls-cert"),
        ((None, None, pki.ca), "--tls-client-ca needs --tls-cert and --tls-key"),
        ((pki.server_key, pki.server_key), "not a PEM certificate"),
        ((pki.server_cert, pki.server_cert), "not a PEM private key"),
        ((pki.server_cert, pki.server_key, pki.server_key), "--tls-client-ca .*not a PEM"),
        ((pki.client_cert, pki.server_key), "does not match the certificate"),
    ]
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(_pem_key(_key(), b"secret"))
    cases.append(((pki.server_cert, encrypted), "the key is encrypted"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    cases.append(((garbage, pki.server_key), "not a usable certificate and key"))
    for arguments, message in cases:
        with pytest.raises(TlsConfigError, match=message):
            load_server_tls(*arguments)
