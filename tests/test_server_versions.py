"""Editing the graph over gRPC, on an in-process server backed by SQLite and by PostgreSQL:
bearer-token roles, all-or-nothing batches validated like the loader, optimistic
concurrency, versions, diffs, and a lossless export -> import round trip."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterable

import grpc
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2
from google.type import date_pb2

from sovrisk.service.auth import TokenAuthenticator
from sovrisk.service.grpc_gen.sovrisk.v1 import (
    graph_pb2,
    graph_pb2_grpc,
    history_pb2,
    risk_pb2,
    risk_pb2_grpc,
)
from sovrisk.service.grpc_gen.sovrisk.v1 import version_pb2 as v
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import RunningServer, start_server
from tests.conftest import SMALL
from tests.test_server import bad_fields, rpc_error, unpack

TOKENS = "ann:editor:tok-editor,rita:reader:tok-reader,adam:admin:tok-admin"
EDITOR = (("authorization", "Bearer tok-editor"),)
READER = (("authorization", "Bearer tok-reader"),)
ADMIN = (("authorization", "Bearer tok-admin"),)

Stubs = tuple[graph_pb2_grpc.GraphServiceStub, risk_pb2_grpc.RiskServiceStub]


@pytest_asyncio.fixture
async def server(store_url: str) -> AsyncIterator[RunningServer]:
    registry = GraphRegistry.open(store_url, seed=SMALL)
    auth = TokenAuthenticator(env={"SOVRISK_TOKENS": TOKENS})
    running = await start_server(registry, host="127.0.0.1", port=0, auth=auth)
    try:
        yield running
    finally:
        await running.stop(grace=0)


@pytest_asyncio.fixture
async def stubs(
    server: RunningServer,
) -> AsyncIterator[Stubs]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield graph_pb2_grpc.GraphServiceStub(channel), risk_pb2_grpc.RiskServiceStub(channel)


def _edge(supplier: str, share: float) -> v.GraphChange:
    return v.GraphChange(
        upsert_edge=v.EdgeRecord(
            consumer="a",
            category="memory",
            supplier=supplier,
            share=share,
            quality="B",
            sources=["fixture"],
            as_of=date_pb2.Date(year=2024, month=3, day=1),
            notes="second source qualified",
        )
    )


def _resplit(base: str = "graph/versions/1", m1: float = 0.7) -> graph_pb2.BatchUpdateGraphRequest:
    return graph_pb2.BatchUpdateGraphRequest(
        parent="graph",
        base_version=base,
        changes=[_edge("m1", m1), _edge("m2", round(1 - m1, 10))],
        message="m1 takes 70 %",
    )


async def test_writes_need_a_token_with_a_role_that_may_write(stubs: Stubs) -> None:
    graph, _ = stubs
    missing = await rpc_error(graph.BatchUpdateGraph(_resplit()))
    assert missing.code() is grpc.StatusCode.UNAUTHENTICATED
    unknown = await rpc_error(
        graph.BatchUpdateGraph(_resplit(), metadata=(("authorization", "Bearer nope"),))
    )
    assert unknown.code() is grpc.StatusCode.UNAUTHENTICATED
    reader = await rpc_error(graph.BatchUpdateGraph(_resplit(), metadata=READER))
    assert reader.code() is grpc.StatusCode.PERMISSION_DENIED
    info = unpack(reader)["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert dict(info.metadata) == {"principal": "rita", "role": "reader", "needed_role": "editor"}

    # Importing a whole dataset is for admins only.
    async def one_header() -> AsyncIterator[graph_pb2.ImportGraphRequest]:
        yield graph_pb2.ImportGraphRequest(header=graph_pb2.ImportGraphHeader())

    editor_import = await rpc_error(graph.ImportGraph(one_header(), metadata=EDITOR))
    assert editor_import.code() is grpc.StatusCode.PERMISSION_DENIED
    versions = await graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest())
    assert [x.name for x in versions.graph_versions] == ["graph/versions/1"]


async def test_a_batch_is_a_new_version_and_changes_the_scores(stubs: Stubs) -> None:
    graph, risk = stubs
    before = await risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
    response = await graph.BatchUpdateGraph(_resplit(), metadata=EDITOR)
    version = response.graph_version
    assert (version.name, version.base_version, version.author) == (
        "graph/versions/2",
        "graph/versions/1",
        "ann",  # the token's principal, never a client-supplied string
    )
    assert version.message == "m1 takes 70 %" and version.change_count == 2
    assert [(c.kind, list(c.key)) for c in response.changes] == [
        ("edge", ["a", "memory", "m1"]),
        ("edge", ["a", "memory", "m2"]),
    ]
    share = {f.column: (f.old_value, f.new_value) for f in response.changes[0].fields}["share"]
    assert share == ("0.5", "0.7")
    after = await risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
    assert after.provenance.graph_version == "graph/versions/2"
    assert after.provenance.dataset_hash == version.content_hash
    assert after.provenance.dataset_hash != before.provenance.dataset_hash
    old = await risk.ScoreProvider(
        risk_pb2.ScoreProviderRequest(name="providers/p", graph_version="graph/versions/1")
    )
    assert old.composite == before.composite
    assert old.provenance.graph_version == "graph/versions/1"
    memory = [
        link
        for link in (await graph.GetNode(graph_pb2.GetNodeRequest(name="nodes/a"))).suppliers
        if link.category == "memory"
    ]
    assert sorted((link.node, link.share) for link in memory) == [
        ("nodes/m1", 0.7),
        ("nodes/m2", 0.3),
    ]
    got = await graph.GetGraphVersion(graph_pb2.GetGraphVersionRequest(name="graph/versions/2"))
    assert got == version
    diff = await graph.DiffGraphVersions(
        graph_pb2.DiffGraphVersionsRequest(name="graph/versions/2")
    )
    assert [s.node for s in diff.nodes] == ["nodes/a", "nodes/m1", "nodes/m2"]
    assert list(diff.nodes[0].change_indexes) == [0, 1]


async def test_an_invalid_batch_lists_every_violation_and_stores_nothing(stubs: Stubs) -> None:
    graph, _ = stubs
    bad = graph_pb2.BatchUpdateGraphRequest(
        parent="graph",
        base_version="graph/versions/1",
        changes=[_edge("m1", 0.7), _edge("nowhere", 1.5), v.GraphChange(delete_node="zz")],
        message="bad",
    )
    error = await rpc_error(graph.BatchUpdateGraph(bad, metadata=EDITOR))
    assert bad_fields(error) == ["changes[2].delete_node"]  # cannot even be applied
    bad.changes.pop()
    error = await rpc_error(graph.BatchUpdateGraph(bad, metadata=EDITOR))
    fields = bad_fields(error)
    assert "changes[1].upsert_edge.supplier" in fields  # unknown node
    assert "changes[1].upsert_edge.share" in fields  # 1.5 is not a share
    # a's memory shares (0.7 + 0.5) no longer sum to 1: reported on the first row of the
    # category, which change 0 wrote.
    assert "changes[0].upsert_edge.share" in fields
    missing = await rpc_error(
        graph.BatchUpdateGraph(graph_pb2.BatchUpdateGraphRequest(), metadata=EDITOR)
    )
    assert bad_fields(missing) == ["parent", "base_version", "message", "changes"]
    versions = await graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest())
    assert versions.total_size == 1


async def test_validate_only_reports_changes_without_committing(stubs: Stubs) -> None:
    graph, _ = stubs
    request = _resplit()
    request.validate_only = True
    response = await graph.BatchUpdateGraph(request, metadata=EDITOR)
    assert not response.HasField("graph_version") and len(response.changes) == 2
    versions = await graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest())
    assert versions.total_size == 1


async def test_a_stale_base_is_aborted_with_the_latest_version(stubs: Stubs) -> None:
    graph, _ = stubs
    await graph.BatchUpdateGraph(_resplit(m1=0.7), metadata=EDITOR)
    error = await rpc_error(graph.BatchUpdateGraph(_resplit(m1=0.6), metadata=EDITOR))
    assert error.code() is grpc.StatusCode.ABORTED
    details = unpack(error)
    info, resource = details["ErrorInfo"], details["ResourceInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert isinstance(resource, error_details_pb2.ResourceInfo)
    assert info.reason == "STALE_BASE_VERSION"
    assert dict(info.metadata) == {
        "base_version": "graph/versions/1",
        "latest_version": "graph/versions/2",
    }
    assert resource.resource_name == "graph/versions/2"
    unknown = await rpc_error(
        graph.GetGraphVersion(graph_pb2.GetGraphVersionRequest(name="graph/versions/9"))
    )
    assert unknown.code() is grpc.StatusCode.NOT_FOUND
    malformed = await rpc_error(
        graph.GetGraphVersion(graph_pb2.GetGraphVersionRequest(name="versions/1"))
    )
    assert bad_fields(malformed) == ["name"]


async def _export(
    graph: graph_pb2_grpc.GraphServiceStub, version: str = ""
) -> tuple[v.GraphVersion, dict[str, bytes]]:
    files: dict[str, bytes] = {}
    first: v.GraphVersion | None = None
    async for message in graph.ExportGraph(graph_pb2.ExportGraphRequest(graph_version=version)):
        if message.HasField("graph_version"):
            first = message.graph_version
        else:
            files[message.chunk.file_name] = (
                files.get(message.chunk.file_name, b"") + message.chunk.data
            )
    assert first is not None
    return first, files


def _import_stream(
    header: graph_pb2.ImportGraphHeader | None, files: Iterable[tuple[str, bytes]]
) -> AsyncIterator[graph_pb2.ImportGraphRequest]:
    async def gen() -> AsyncIterator[graph_pb2.ImportGraphRequest]:
        if header is not None:
            yield graph_pb2.ImportGraphRequest(header=header)
        for name, data in files:
            for start in range(0, len(data), 100):  # many small chunks
                chunk = v.FileChunk(file_name=name, data=data[start : start + 100])
                yield graph_pb2.ImportGraphRequest(chunk=chunk)

    return gen()


async def test_export_then_import_round_trips_byte_for_byte(stubs: Stubs) -> None:
    graph, _ = stubs
    await graph.BatchUpdateGraph(_resplit(), metadata=EDITOR)
    exported_version, files = await _export(graph)
    assert exported_version.name == "graph/versions/2"
    header = graph_pb2.ImportGraphHeader(base_version="graph/versions/2", message="round trip")
    response = await graph.ImportGraph(_import_stream(header, files.items()), metadata=ADMIN)
    assert response.graph_version.name == "graph/versions/3"
    assert response.graph_version.author == "adam"
    assert response.graph_version.files_digest == exported_version.files_digest
    assert response.graph_version.content_hash == exported_version.content_hash
    assert len(response.changes) == 0
    _, again = await _export(graph, "graph/versions/3")
    assert again == files
    # Importing version 1's files brings the old split back, as a new version.
    _, first = await _export(graph, "graph/versions/1")
    header = graph_pb2.ImportGraphHeader(base_version="graph/versions/3", message="revert")
    reverted = await graph.ImportGraph(_import_stream(header, first.items()), metadata=ADMIN)
    assert reverted.graph_version.content_hash != exported_version.content_hash
    assert [list(c.key) for c in reverted.changes] == [["a", "memory", "m1"], ["a", "memory", "m2"]]


async def test_a_malformed_import_is_rejected_whole(stubs: Stubs) -> None:
    graph, _ = stubs
    _, files = await _export(graph)
    header = graph_pb2.ImportGraphHeader(base_version="graph/versions/1", message="x")
    no_header = await rpc_error(
        graph.ImportGraph(_import_stream(None, files.items()), metadata=ADMIN)
    )
    assert bad_fields(no_header) == ["header"]
    odd = await rpc_error(
        graph.ImportGraph(_import_stream(header, [("evil.sh", b"rm -rf /")]), metadata=ADMIN)
    )
    assert bad_fields(odd) == ["requests[1].chunk.file_name"]
    partial = {k: b for k, b in files.items() if k != "edges.csv"}
    missing = await rpc_error(
        graph.ImportGraph(_import_stream(header, partial.items()), metadata=ADMIN)
    )
    assert bad_fields(missing) == ["chunk.file_name"]
    broken = dict(files)
    broken["edges.csv"] = broken["edges.csv"].replace(b"a,memory,m2,0.5", b"a,memory,m2,0.9")
    invalid = await rpc_error(
        graph.ImportGraph(_import_stream(header, broken.items()), metadata=ADMIN)
    )
    assert invalid.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert any("edges.csv" in f for f in bad_fields(invalid))
    # A byte that is not UTF-8 (a spreadsheet's 0xFF) names the file and line, not UNKNOWN.
    latin = dict(files)
    latin["nodes.csv"] = latin["nodes.csv"].replace(b"Provider P", b"Provider \xff")
    undecodable = await rpc_error(
        graph.ImportGraph(_import_stream(header, latin.items()), metadata=ADMIN)
    )
    assert bad_fields(undecodable) == ["nodes.csv:2.encoding"]
    assert "is not UTF-8 text" in (undecodable.details() or "")
    versions = await graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest())
    assert versions.total_size == 1


async def test_versions_are_listed_newest_first_page_by_page(stubs: Stubs) -> None:
    graph, _ = stubs
    for k, base in enumerate(["graph/versions/1", "graph/versions/2", "graph/versions/3"]):
        await graph.BatchUpdateGraph(_resplit(base, m1=0.6 + k / 10), metadata=EDITOR)
    first = await graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest(page_size=3))
    assert [x.name for x in first.graph_versions] == [f"graph/versions/{n}" for n in (4, 3, 2)]
    assert first.total_size == 4 and first.next_page_token
    await graph.BatchUpdateGraph(_resplit("graph/versions/4", m1=0.5), metadata=EDITOR)
    second = await graph.ListGraphVersions(
        graph_pb2.ListGraphVersionsRequest(page_size=3, page_token=first.next_page_token)
    )
    # Version 5 landed meanwhile; the listing continues where it was.
    assert [x.name for x in second.graph_versions] == ["graph/versions/1"]
    assert second.next_page_token == ""


# -- explaining changes and alerting on them --------------------------------------------------


async def _score(risk: risk_pb2_grpc.RiskServiceStub, **kwargs: object) -> float:
    request = risk_pb2.ScoreProviderRequest(name="providers/p", **kwargs)  # type: ignore[arg-type]
    return (await risk.ScoreProvider(request)).composite


async def test_compare_attributes_a_version_change_to_its_edits(stubs: Stubs) -> None:
    graph, risk = stubs
    before = await _score(risk)
    await graph.BatchUpdateGraph(_resplit(), metadata=EDITOR)
    after = await _score(risk)
    response = await risk.CompareAssessments(risk_pb2.CompareAssessmentsRequest(name="providers/p"))
    assert (response.base.graph_version, response.target.graph_version) == (
        "graph/versions/1",
        "graph/versions/2",
    )
    assert response.base.composite == pytest.approx(before, abs=1e-9)
    assert response.delta.composite == pytest.approx(after - before, abs=1e-6)
    edits, dates = response.steps
    assert (edits.name, dates.name) == ("graph_edits", "date_effects")
    [cause] = edits.causes
    assert cause.label == "edge a/memory" and cause.measured
    assert [list(r.key) for r in cause.records] == [["a", "memory", "m1"], ["a", "memory", "m2"]]
    # One cause alone explains the whole change: no interaction, no date effect.
    assert cause.effect.composite == pytest.approx(after - before, abs=1e-6)
    assert edits.interaction.composite == pytest.approx(0.0, abs=1e-9)
    assert list(dates.causes) == [] and dates.total.composite == 0.0
    assert f"({after - before:+.2f})" in response.summary


async def test_compare_between_dates_names_the_regimes_that_entered_force(stubs: Stubs) -> None:
    _, risk = stubs
    early = date_pb2.Date(year=2020, month=1, day=1)
    response = await risk.CompareAssessments(
        risk_pb2.CompareAssessmentsRequest(name="providers/p", base_as_of=early)
    )
    assert response.base.graph_version == response.target.graph_version == "graph/versions/1"
    edits, dates = response.steps
    assert list(edits.causes) == []
    assert [c.regime for c in dates.causes] == ["regimes/nl-euv", "regimes/us-chip"]
    assert all(c.kind == history_pb2.CAUSE_KIND_DATE_EFFECT and c.measured for c in dates.causes)
    assert dates.total.composite == pytest.approx(
        await _score(risk) - await _score(risk, as_of=early), abs=1e-6
    )
    export = {d.metric: d.delta for d in response.delta.sub_scores}
    assert export[history_pb2.SCORE_METRIC_EXPORT_CONTROL] > 0
    changed = {c.check_id: (c.base_status, c.target_status) for c in response.check_changes}
    assert changed["export_control.in_force"] == (
        risk_pb2.CHECK_STATUS_PASS,
        risk_pb2.CHECK_STATUS_FAIL,
    )


def _watch_request(start_after: str = "") -> history_pb2.WatchProviderScoresRequest:
    return history_pb2.WatchProviderScoresRequest(
        providers=["providers/p"],
        thresholds=[
            history_pb2.ScoreThreshold(kind=history_pb2.THRESHOLD_KIND_CHANGE, value=1.0),
            history_pb2.ScoreThreshold(kind=history_pb2.THRESHOLD_KIND_ABOVE, value=52.5),
            history_pb2.ScoreThreshold(
                metric=history_pb2.SCORE_METRIC_STRUCTURAL,
                kind=history_pb2.THRESHOLD_KIND_CHANGE,
                value=0.5,
            ),
        ],
        start_after_version=start_after,
    )


async def test_a_watcher_started_before_an_edit_receives_its_alerts(stubs: Stubs) -> None:
    graph, risk = stubs
    before = await _score(risk)
    stream = risk.WatchProviderScores(_watch_request())
    await asyncio.sleep(0.3)  # let the stream subscribe before the edit lands
    await graph.BatchUpdateGraph(_resplit(), metadata=EDITOR)
    after = await _score(risk)
    assert before <= 52.5 < after  # the fixture's edit crosses 52.5 (51.9 -> 53.3)
    message = await asyncio.wait_for(stream.read(), timeout=30)
    assert (message.graph_version, message.base_version) == ("graph/versions/2", "graph/versions/1")
    fired = [(a.threshold.kind, a.threshold.metric) for a in message.alerts]
    # The structural sub-score does not move with the memory split: that threshold stays quiet.
    assert fired == [
        (history_pb2.THRESHOLD_KIND_CHANGE, history_pb2.SCORE_METRIC_COMPOSITE),
        (history_pb2.THRESHOLD_KIND_ABOVE, history_pb2.SCORE_METRIC_COMPOSITE),
    ]
    alert = message.alerts[1]
    assert alert.provider == "providers/p"
    assert alert.score.base_value == pytest.approx(before)
    assert alert.score.target_value == pytest.approx(after)
    assert alert.assessment_delta.composite == pytest.approx(after - before, abs=1e-6)
    assert alert.message == f"Provider P composite rose above 52.5: {before:.1f} -> {after:.1f}"
    stream.cancel()


async def test_a_reconnecting_watcher_misses_nothing(stubs: Stubs) -> None:
    graph, risk = stubs
    await graph.BatchUpdateGraph(_resplit("graph/versions/1", m1=0.7), metadata=EDITOR)
    await graph.BatchUpdateGraph(_resplit("graph/versions/2", m1=0.5), metadata=EDITOR)
    stream = risk.WatchProviderScores(_watch_request("graph/versions/1"))
    first = await asyncio.wait_for(stream.read(), timeout=30)
    second = await asyncio.wait_for(stream.read(), timeout=30)
    assert [first.graph_version, second.graph_version] == ["graph/versions/2", "graph/versions/3"]
    assert len(first.alerts) == 2  # up above 52.5 and by > 1 point
    assert [a.threshold.kind for a in second.alerts] == [history_pb2.THRESHOLD_KIND_CHANGE]
    assert second.alerts[0].score.delta == pytest.approx(-first.alerts[0].score.delta, abs=1e-6)
    # Live versions follow the replayed ones on the same stream.
    await graph.BatchUpdateGraph(_resplit("graph/versions/3", m1=0.7), metadata=EDITOR)
    third = await asyncio.wait_for(stream.read(), timeout=30)
    assert third.graph_version == "graph/versions/4"
    stream.cancel()


async def test_watch_rejects_bad_thresholds(stubs: Stubs) -> None:
    _, risk = stubs
    request = history_pb2.WatchProviderScoresRequest(
        thresholds=[
            history_pb2.ScoreThreshold(kind=history_pb2.THRESHOLD_KIND_ABOVE, value=120),
            history_pb2.ScoreThreshold(value=1),
        ]
    )
    stream = risk.WatchProviderScores(request)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream.read()
    assert bad_fields(caught.value) == ["thresholds[1].kind"]
    stream = risk.WatchProviderScores(request.__class__(thresholds=[request.thresholds[0]]))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream.read()
    assert bad_fields(caught.value) == ["thresholds[0].value"]


async def test_rows_of_the_dated_tables_are_edited_like_records(stubs: Stubs) -> None:
    # A capacity row for pool m1 (the small graph's first dated series), through upsert_row;
    # an invalid one names the request field and stores nothing.
    graph, risk = stubs
    row = {
        "pool": "m1",
        "period": "2024Q2",
        "capacity": "90",
        "unit": "stacks_per_month",
        "demand": "100",
        "quality": "B",
        "source": "fixture",
        "as_of": "2024-06-01",
    }
    bad = graph_pb2.BatchUpdateGraphRequest(
        parent="graph",
        base_version="graph/versions/1",
        changes=[
            v.GraphChange(upsert_row=v.TableRow(table="capacity", values={**row, "yield": "2"}))
        ],
        message="m1 capacity",
    )
    error = await rpc_error(graph.BatchUpdateGraph(bad, metadata=EDITOR))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    fields = [f.field for f in unpack(error)["BadRequest"].field_violations]  # type: ignore[attr-defined]
    assert fields == ["changes[0].upsert_row.values[yield]"]
    unknown = graph_pb2.BatchUpdateGraphRequest(
        parent="graph",
        base_version="graph/versions/1",
        changes=[v.GraphChange(upsert_row=v.TableRow(table="nodes", values=row))],
        message="x",
    )
    error = await rpc_error(graph.BatchUpdateGraph(unknown, metadata=EDITOR))
    fields = [f.field for f in unpack(error)["BadRequest"].field_violations]  # type: ignore[attr-defined]
    assert fields == ["changes[0].upsert_row.table"]
    versions = await graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest())
    assert len(versions.graph_versions) == 1

    good = graph_pb2.BatchUpdateGraphRequest(
        parent="graph",
        base_version="graph/versions/1",
        changes=[v.GraphChange(upsert_row=v.TableRow(table="capacity", values=row))],
        message="m1 capacity",
    )
    response = await graph.BatchUpdateGraph(good, metadata=EDITOR)
    assert [(c.kind, list(c.key)) for c in response.changes] == [("capacity", ["m1", "2024Q2"])]
    # The score now carries the pool: m1 serves 90 of the 100 wanted in 2024Q2.
    scored = await risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
    [pool] = scored.capacity
    assert (pool.pool, pool.quarter, pool.output) == ("m1", "2024Q2", pytest.approx(0.9))
    # And it can be deleted again by its key.
    delete = graph_pb2.BatchUpdateGraphRequest(
        parent="graph",
        base_version="graph/versions/2",
        changes=[v.GraphChange(delete_row=v.TableRowKey(table="capacity", key=["m1", "2024Q2"]))],
        message="undo",
    )
    response = await graph.BatchUpdateGraph(delete, metadata=EDITOR)
    assert response.graph_version.name == "graph/versions/3"


def _masked_share(supplier: str, share: float, *paths: str) -> v.GraphChange:
    """Only the key and the share given: without the mask, quality, sources, as_of and notes
    would be written empty."""
    change = v.GraphChange(
        upsert_edge=v.EdgeRecord(consumer="a", category="memory", supplier=supplier, share=share)
    )
    change.update_mask.paths.extend(paths or ("share",))
    return change


async def test_an_update_mask_writes_only_the_fields_it_names(stubs: Stubs) -> None:
    graph, _ = stubs
    request = graph_pb2.BatchUpdateGraphRequest(
        parent="graph",
        base_version="graph/versions/1",
        changes=[_masked_share("m1", 0.7), _masked_share("m2", 0.3)],
        message="shares only",
    )
    response = await graph.BatchUpdateGraph(request, metadata=EDITOR)
    # Only the share column moved (0.5 -> 0.7 and 0.5 -> 0.3); quality B, source fixture and
    # as_of 2024-01-01 are kept.
    assert [[(f.column, f.old_value, f.new_value) for f in c.fields] for c in response.changes] == [
        [("share", "0.5", "0.7")],
        [("share", "0.5", "0.3")],
    ]


async def test_a_bad_update_mask_is_invalid_argument_on_its_field(stubs: Stubs) -> None:
    graph, _ = stubs

    async def fields_of(*changes: v.GraphChange) -> list[str]:
        request = graph_pb2.BatchUpdateGraphRequest(
            parent="graph", base_version="graph/versions/1", changes=changes, message="bad mask"
        )
        return bad_fields(await rpc_error(graph.BatchUpdateGraph(request, metadata=EDITOR)))

    assert await fields_of(_masked_share("m1", 0.7, "colour")) == [
        "changes[0].update_mask.paths[0]"
    ]
    delete = v.GraphChange(delete_node="m1")
    delete.update_mask.paths.append("share")
    assert await fields_of(delete) == ["changes[0].update_mask"]
    # A masked upsert edits a record: there is no a/memory/m3 edge to update.
    assert "changes[0].upsert_edge" in await fields_of(_masked_share("m3", 0.1))


async def test_errors_stay_small_enough_to_reach_a_default_client(stubs: Stubs) -> None:
    """gRPC clients cap trailing metadata at 8 KiB by default: a 3 kB name and 200 bad edges
    must arrive as NOT_FOUND / INVALID_ARGUMENT, not RESOURCE_EXHAUSTED."""
    graph, risk = stubs
    long_name = "providers/" + "x" * 3000
    missing = await rpc_error(risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name=long_name)))
    assert missing.code() is grpc.StatusCode.NOT_FOUND
    assert "(3,010 chars)" in (missing.details() or "")
    edits = [_edge(f"nowhere-{k}-" + "y" * 40, 1.5) for k in range(200)]
    request = graph_pb2.BatchUpdateGraphRequest(
        parent="graph", base_version="graph/versions/1", changes=edits, message="200 bad"
    )
    error = await rpc_error(graph.BatchUpdateGraph(request, metadata=EDITOR))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    fields = bad_fields(error)
    assert len(fields) <= 11 and fields[-1] == "..."
    violations = unpack(error)["BadRequest"]
    assert isinstance(violations, error_details_pb2.BadRequest)
    assert "more violation(s) not shown" in violations.field_violations[-1].description


@pytest.mark.parametrize(
    "token",
    [
        "².abc",  # str.isdigit() accepts superscripts
        "9" * 5000 + ".abc",
        base64.urlsafe_b64encode(b"[" * 100_000 + b"]" * 100_000).decode(),  # RecursionError
    ],
    ids=["superscript", "long-head", "deep-json"],
)
async def test_malformed_page_tokens_are_invalid_argument(stubs: Stubs, token: str) -> None:
    graph, risk = stubs
    for call in (
        graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest(page_token=token)),
        risk.ListProviderScores(risk_pb2.ListProviderScoresRequest(page_token=token)),
    ):
        error = await rpc_error(call)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error
        assert bad_fields(error) == ["page_token"]


@pytest.mark.parametrize(
    ("message", "why"),
    [("a\x00b", "control characters (U+0000)"), ("x" * 2001, "longer than 2000")],
    ids=["nul", "too-long"],
)
async def test_a_bad_commit_message_is_invalid_on_every_backend(
    stubs: Stubs, message: str, why: str
) -> None:
    """PostgreSQL refuses NUL in text (it was UNKNOWN there); SQLite stored it. Both refuse."""
    graph, _ = stubs
    request = _resplit()
    request.message = message
    error = await rpc_error(graph.BatchUpdateGraph(request, metadata=EDITOR))
    assert bad_fields(error) == ["message"] and why in (error.details() or "")
    versions = await graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest())
    assert versions.total_size == 1
