"""Domain errors -> ``google.rpc.Status`` with details (AIP-193).

NOT_FOUND carries ``ErrorInfo`` (reason, domain, the resource); INVALID_ARGUMENT carries
``BadRequest`` field violations naming the field and the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from sovrisk.models.errors import (
    DataValidationError,
    FieldViolation,
    InvalidParameterError,
    NotFoundError,
    PreconditionError,
)

ERROR_DOMAIN = "sovrisk.dev"


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


#: An error travels in gRPC's trailing metadata, which clients cap at 8 KiB by default (16 KiB
#: hard): echoed values are clipped and violations capped so that a 3 kB name or a batch with
#: 200 bad edges still arrives as INVALID_ARGUMENT / NOT_FOUND, saying what was left out.
MAX_ECHO_CHARS = 120
MAX_VIOLATIONS = 10
MAX_METADATA_VIOLATIONS = 5
MAX_STATUS_BYTES = 6 * 1024


def clip(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} chars)"


def invalid_argument(violations: Iterable[FieldViolation], summary: str = "") -> grpc.Status:
    items = list(violations)

    def entry(v: FieldViolation) -> error_details_pb2.BadRequest.FieldViolation:
        return error_details_pb2.BadRequest.FieldViolation(
            field=clip(v.field), description=f"{clip(v.description, 300)} (got {clip(v.value)!r})"
        )

    shown = [entry(v) for v in items[:MAX_VIOLATIONS]]
    while len(shown) > 1 and sum(e.ByteSize() for e in shown) > MAX_STATUS_BYTES // 2:
        shown.pop()
    if len(shown) < len(items):
        shown.append(
            error_details_pb2.BadRequest.FieldViolation(
                field="...", description=f"{len(items) - len(shown)} more violation(s) not shown"
            )
        )
    bad_request = error_details_pb2.BadRequest(field_violations=shown)
    info = error_details_pb2.ErrorInfo(
        reason="INVALID_ARGUMENT",
        domain=ERROR_DOMAIN,
        metadata={clip(v.field): clip(v.value) for v in items[:MAX_METADATA_VIOLATIONS]},
    )
    message = summary or "; ".join(
        f"{clip(v.field)}={clip(v.value)!r}: {clip(v.description, 300)}"
        for v in items[:MAX_METADATA_VIOLATIONS]
    )
    if len(items) > MAX_METADATA_VIOLATIONS:
        message += f" (and {len(items) - MAX_METADATA_VIOLATIONS} more)"
    status = status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT,
        message=clip(message, 1000),
        details=[_pack(bad_request), _pack(info)],
    )
    return rpc_status.to_status(status)


def not_found(
    resource_type: str, resource_name: str, suggestions: Sequence[str] = ()
) -> grpc.Status:
    """NOT_FOUND with ErrorInfo (``suggestions``: the ids the name most likely meant, comma
    separated, when there are any) and ResourceInfo."""
    resource_name = clip(resource_name)
    metadata = {"resource_type": resource_type, "resource_name": resource_name}
    if suggestions:
        metadata["suggestions"] = ",".join(suggestions)
    info = error_details_pb2.ErrorInfo(
        reason=f"{resource_type.upper().replace(' ', '_')}_NOT_FOUND",
        domain=ERROR_DOMAIN,
        metadata=metadata,
    )
    resource = error_details_pb2.ResourceInfo(
        resource_type=f"{ERROR_DOMAIN}/{resource_type.capitalize()}",
        resource_name=resource_name,
        description=f"no {resource_type} named {resource_name!r} in the loaded graph",
    )
    status = status_pb2.Status(
        code=code_pb2.NOT_FOUND,
        message=f"{resource_type} {resource_name!r} not found"
        + (f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""),
        details=[_pack(info), _pack(resource)],
    )
    return rpc_status.to_status(status)


def aborted_stale(base: str, latest: str) -> grpc.Status:
    """A write prepared against an old version (AIP-154 style optimistic concurrency)."""
    info = error_details_pb2.ErrorInfo(
        reason="STALE_BASE_VERSION",
        domain=ERROR_DOMAIN,
        metadata={"base_version": base, "latest_version": latest},
    )
    resource = error_details_pb2.ResourceInfo(
        resource_type=f"{ERROR_DOMAIN}/GraphVersion",
        resource_name=latest,
        description="the latest version: re-read it, re-apply your changes, and retry",
    )
    status = status_pb2.Status(
        code=code_pb2.ABORTED,
        message=f"base version {base!r} is not the latest ({latest!r})",
        details=[_pack(info), _pack(resource)],
    )
    return rpc_status.to_status(status)


def unauthenticated(message: str) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason="UNAUTHENTICATED", domain=ERROR_DOMAIN)
    status = status_pb2.Status(
        code=code_pb2.UNAUTHENTICATED, message=message, details=[_pack(info)]
    )
    return rpc_status.to_status(status)


def permission_denied(principal: str, role: str, needed: str) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(
        reason="ROLE_TOO_LOW",
        domain=ERROR_DOMAIN,
        metadata={"principal": principal, "role": role, "needed_role": needed},
    )
    status = status_pb2.Status(
        code=code_pb2.PERMISSION_DENIED,
        message=f"{principal} has role {role}; this method needs {needed}",
        details=[_pack(info)],
    )
    return rpc_status.to_status(status)


def overloaded(message: str, retry_after: float) -> grpc.Status:
    """RESOURCE_EXHAUSTED with a RetryInfo: the client should come back after the delay."""
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.FromNanoseconds(int(retry_after * 1e9))
    info = error_details_pb2.ErrorInfo(reason="OVERLOADED", domain=ERROR_DOMAIN)
    status = status_pb2.Status(
        code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=[_pack(retry), _pack(info)]
    )
    return rpc_status.to_status(status)


def unavailable(message: str, reason: str = "GRAPH_NOT_LOADED") -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[_pack(info)])
    return rpc_status.to_status(status)


def internal(reference: str) -> grpc.Status:
    """INTERNAL for a failure nobody anticipated: a reference to find the server's log
    entry, never the exception's class or message (they can carry paths and internals)."""
    info = error_details_pb2.ErrorInfo(
        reason="INTERNAL_ERROR", domain=ERROR_DOMAIN, metadata={"reference": reference}
    )
    status = status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error (reference {reference} in the server's log)",
        details=[_pack(info)],
    )
    return rpc_status.to_status(status)


def failed_precondition(kind: str, subject: str, description: str) -> grpc.Status:
    """FAILED_PRECONDITION with a PreconditionFailure naming what is not as it must be."""
    failure = error_details_pb2.PreconditionFailure(
        violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type=kind, subject=subject, description=description
            )
        ]
    )
    status = status_pb2.Status(
        code=code_pb2.FAILED_PRECONDITION,
        message=clip(f"{subject}: {description}"),
        details=[_pack(failure)],
    )
    return rpc_status.to_status(status)


def cancelled() -> grpc.Status:
    status = status_pb2.Status(code=code_pb2.CANCELLED, message="the request was cancelled")
    return rpc_status.to_status(status)


def from_domain(exc: Exception) -> grpc.Status | None:
    """The status for a known domain error, or None to let it surface as INTERNAL."""
    if isinstance(exc, InvalidParameterError):
        return invalid_argument(exc.violations)
    if isinstance(exc, NotFoundError):
        return not_found(exc.resource_type, exc.resource_name, exc.suggestions)
    if isinstance(exc, PreconditionError):
        return failed_precondition(exc.kind, exc.subject, exc.description)
    if isinstance(exc, DataValidationError):
        return invalid_argument(
            [FieldViolation(f"{i.file}:{i.row}.{i.field}", i.value, i.message) for i in exc.issues]
        )
    return None
