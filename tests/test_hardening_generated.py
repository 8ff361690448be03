"""Generated hostile requests (issue 13, hardening suite): hypothesis builds type-correct but
arbitrary requests for every unary and server-streaming method of the two services from their
descriptors (any text, control characters and 3,000-character strings, any integer, NaN and
infinities, unknown enum numbers, nested messages, short lists), sent with an admin token so
the writes are reached. Whatever comes: never UNKNOWN or INTERNAL, no traceback or Python
exception in any message, a rejected write stores nothing, and the server stays healthy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sovrisk.service.auth import TokenAuthenticator
from sovrisk.service.grpc_gen.sovrisk.v1 import graph_pb2, graph_pb2_grpc, risk_pb2
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import RunningServer, start_server
from tests.conftest import SMALL
from tests.test_client_typed import LoopThread

EXAMPLES = 300
AUTH = (("authorization", "Bearer tok"),)
SERVICES = [
    graph_pb2.DESCRIPTOR.services_by_name["GraphService"],
    risk_pb2.DESCRIPTOR.services_by_name["RiskService"],
]
#: Streams that never end on their own (a watch waits for the next version): first message
#: only, with a short deadline.
NAMES = ["providers/p", "nodes/t", "graph/versions/1", "graph", "p", "t", "m1", "TWN", "USA"]
STRINGS = st.one_of(
    st.sampled_from(NAMES),
    st.text(max_size=12),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=5),
    st.just("x" * 3000),
    st.just("²"),
)
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_STRING: STRINGS,
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=64),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_DOUBLE: st.one_of(st.floats(), st.sampled_from([0.0, 0.5, 1.0, 13.0])),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32),
    FieldDescriptor.TYPE_INT32: st.one_of(INT32, st.integers(-2, 200)),
    FieldDescriptor.TYPE_SINT32: INT32,
    FieldDescriptor.TYPE_SFIXED32: INT32,
    FieldDescriptor.TYPE_INT64: st.one_of(INT64, st.integers(-2, 200)),
    FieldDescriptor.TYPE_SINT64: INT64,
    FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_ENUM: st.integers(-3, 12),  # unknown numbers too (open enums)
}


@st.composite
def messages(draw: st.DrawFn, descriptor: Descriptor, depth: int = 3) -> Message:
    message = GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth == 0 or field.message_type.GetOptions().map_entry:
                continue
            values = draw(
                st.lists(messages(field.message_type, depth - 1), max_size=2)
                if field.is_repeated
                else st.tuples(messages(field.message_type, depth - 1))
            )
            target = getattr(message, field.name)
            for value in values:
                (target.add() if field.is_repeated else target).CopyFrom(value)
            continue
        strategy = SCALARS[field.type]
        if field.is_repeated:
            getattr(message, field.name).extend(draw(st.lists(strategy, max_size=3)))
        else:
            setattr(message, field.name, draw(strategy))
    return message


def _methods() -> list[MethodDescriptor]:
    return [
        m for s in SERVICES for m in s.methods if not m.client_streaming
    ]  # ImportGraph (client-streaming) has its own corpus in test_gateway and test_server_versions


@st.composite
def calls(draw: st.DrawFn) -> tuple[MethodDescriptor, Message]:
    method = draw(st.sampled_from(_methods()))
    return method, draw(messages(method.input_type))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, GraphRegistry]]:
    loop = LoopThread()
    registry = GraphRegistry.from_directory(SMALL)

    async def start() -> RunningServer:
        auth = TokenAuthenticator(env={"SOVRISK_TOKENS": "adam:admin:tok"})
        return await start_server(registry, auth=auth)

    running = loop.run(start)
    try:
        yield f"127.0.0.1:{running.port}", registry
    finally:
        loop.run(lambda: running.stop(grace=0))
        loop.close()
        registry.close()


CODES: Counter[str] = Counter()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
@given(call=calls())
def test_generated_requests_get_real_codes_and_store_nothing_when_refused(
    served: tuple[str, GraphRegistry], call: tuple[MethodDescriptor, Message]
) -> None:
    target, registry = served
    method, request = call
    path = f"/{method.containing_service.full_name}/{method.name}"
    response_class = GetMessageClass(method.output_type)
    latest = registry.latest_version_id
    with grpc.insecure_channel(target) as channel:
        kwargs: dict[str, Any] = {
            "request_serializer": type(request).SerializeToString,
            "response_deserializer": response_class.FromString,
        }
        try:
            if method.server_streaming:
                stream = channel.unary_stream(path, **kwargs)(request, metadata=AUTH, timeout=3)
                next(iter(stream), None)  # the first message is enough
                stream.cancel()
            else:
                channel.unary_unary(path, **kwargs)(request, metadata=AUTH, timeout=30)
            CODES["OK"] += 1
            return
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details() or ""
    CODES[code.name] += 1
    assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (path, details)
    assert "Traceback" not in details and "<class '" not in details, details
    if method.name in ("BatchUpdateGraph",):
        assert registry.latest_version_id == latest  # a refused write stored nothing


def test_the_server_is_healthy_after_the_generated_corpus(
    served: tuple[str, GraphRegistry],
) -> None:
    target, _ = served
    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        nodes = graph_pb2_grpc.GraphServiceStub(channel).ListNodes(graph_pb2.ListNodesRequest())
        assert nodes.nodes
    print(f"\n{sum(CODES.values())} generated requests; codes: {dict(sorted(CODES.items()))}")
