"""TLS for ``sovrisk serve``: one certificate and key for the gRPC server and the gateway,
and optionally a client CA, which makes both require and verify client certificates (mTLS).

The files are read and checked once, at start (and by ``serve --check-config``): a missing
half of the pair, an unreadable or non-PEM file, an encrypted key or a key that does not
belong to the certificate is a :class:`TlsConfigError` with one line naming the flag, never a
traceback. Replacing the files takes a restart.

Light at import (the CLI's parser imports it): ``ssl`` only; gRPC when credentials are made.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import grpc

#: Oldest protocol either transport accepts (gRPC's own floor is the same).
MIN_TLS_VERSION = ssl.TLSVersion.TLSv1_2

_CERT_MARK = b"-----BEGIN CERTIFICATE-----"


class TlsConfigError(ValueError):
    """A TLS flag's file is missing, unreadable or unusable: one line, naming the flag."""


@dataclass(frozen=True)
class ServerTls:
    """The PEM bytes of the server's certificate chain and key, and of the client CA."""

    cert: Path
    key: Path
    client_ca: Path | None
    cert_pem: bytes
    key_pem: bytes = field(repr=False)  # never in a log line or a traceback
    client_ca_pem: bytes | None

    @property
    def mutual(self) -> bool:
        """Client certificates are required (and verified against ``client_ca``)."""
        return self.client_ca_pem is not None

    def grpc_credentials(self) -> grpc.ServerCredentials:
        import grpc

        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)],
            root_certificates=self.client_ca_pem,
            require_client_auth=self.mutual,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side context for the gateway (TLS 1.2 or later; with a client CA,
        a client certificate is required: ``CERT_REQUIRED``)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = MIN_TLS_VERSION
        context.load_cert_chain(self.cert, self.key, password=_no_password)
        if self.client_ca_pem is not None:
            context.load_verify_locations(cadata=self.client_ca_pem.decode("ascii", "replace"))
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def describe(self) -> str:
        """One line for logs and ``--check-config``."""
        clients = (
            f"client certificates required, verified against {self.client_ca}"
            if self.mutual
            else "no client certificates"
        )
        return f"{self.cert} with {self.key}; {clients}"


def _no_password() -> bytes:
    # Never prompt on the terminal for a passphrase (OpenSSL's default for an encrypted key).
    return b""


def _read(flag: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise TlsConfigError(f"{flag} {path}: cannot read the file ({reason})") from None


def load_server_tls(
    cert: str | Path | None, key: str | Path | None, client_ca: str | Path | None = None
) -> ServerTls | None:
    """The checked TLS files, or None when no TLS flag is given (plaintext).

    Raises :class:`TlsConfigError` for a certificate without a key (or the reverse), a client
    CA without both, an unreadable or non-PEM file, an encrypted key, or a key that does not
    match the certificate.
    """
    if not cert and not key:
        if client_ca:
            raise TlsConfigError(
                "--tls-client-ca needs --tls-cert and --tls-key (the server's own certificate "
                "and key)"
            )
        return None
    if not cert:
        raise TlsConfigError("--tls-key was given without --tls-cert: give both or neither")
    if not key:
        raise TlsConfigError("--tls-cert was given without --tls-key: give both or neither")
    cert_path, key_path = Path(cert), Path(key)
    cert_pem, key_pem = _read("--tls-cert", cert_path), _read("--tls-key", key_path)
    if _CERT_MARK not in cert_pem:
        raise TlsConfigError(f"--tls-cert {cert_path}: not a PEM certificate")
    if b"PRIVATE KEY-----" not in key_pem:
        raise TlsConfigError(f"--tls-key {key_path}: not a PEM private key")
    if b"ENCRYPTED" in key_pem:
        raise TlsConfigError(
            f"--tls-key {key_path}: the key is encrypted; give an unencrypted key "
            "(readable only by the server's user)"
        )
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.load_cert_chain(cert_path, key_path, password=_no_password)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise TlsConfigError(
                f"--tls-key {key_path} does not match the certificate {cert_path}"
            ) from None
        raise TlsConfigError(
            f"--tls-cert {cert_path} / --tls-key {key_path}: not a usable certificate and key "
            f"({exc.reason or exc})"
        ) from None
    ca_path = Path(client_ca) if client_ca else None
    ca_pem = _read("--tls-client-ca", ca_path) if ca_path else None
    if ca_path is not None and ca_pem is not None:
        if _CERT_MARK not in ca_pem:
            raise TlsConfigError(f"--tls-client-ca {ca_path}: not a PEM certificate")
        try:
            probe.load_verify_locations(cadata=ca_pem.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
            raise TlsConfigError(
                f"--tls-client-ca {ca_path}: not a usable CA certificate ({exc})"
            ) from None
    return ServerTls(cert_path, key_path, ca_path, cert_pem, key_pem, ca_pem)
