"""``sovrisk import / export / history / token`` on a local store (in process)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sovrisk.models.analysis.concentration import hhi
from sovrisk.models.graph.dataset import DatasetFiles
from sovrisk.service.auth import TokenAuthenticator
from sovrisk.service.cli import main
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.store import open_store
from tests.conftest import SMALL
from tests.test_eto_import import ETO, EXPECTED_HHI, _graph_country_shares


def test_import_export_and_history_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    assert main(["import", str(SMALL), "-m", "seed", "--store", store]) == 0
    edited = tmp_path / "edited"
    shutil.copytree(SMALL, edited)
    edges = (edited / "edges.csv").read_text()
    (edited / "edges.csv").write_text(
        edges.replace("a,memory,m1,0.5", "a,memory,m1,0.8").replace(
            "a,memory,m2,0.5", "a,memory,m2,0.2"
        )
    )
    assert main(["import", str(edited), "-m", "m1 to 80 %", "--store", store, "--dry-run"]) == 0
    assert open_store(store).count_versions() == 1
    assert main(["import", str(edited), "-m", "m1 to 80 %", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "changed  edge a/memory/m1 (share)" in out
    assert "committed graph/versions/2" in out and "local:" in out
    assert main(["export", str(tmp_path / "out"), "--store", store, "--version", "2"]) == 0
    assert (
        DatasetFiles.from_directory(tmp_path / "out").digest
        == DatasetFiles.from_directory(edited).digest
    )
    capsys.readouterr()
    assert main(["history", "p", "--store", store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["graph/versions/1", "graph/versions/2"]
    registry = GraphRegistry.open(store)
    try:
        scores = {v: registry.scores(v)[0].composite for v in (1, 2)}
    finally:
        registry.close()
    assert f"{scores[1]:9.1f}" in lines[1] and f"{scores[2]:9.1f}" in lines[2]


def test_an_invalid_import_is_refused_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    main(["import", str(SMALL), "-m", "seed", "--store", store])
    broken = tmp_path / "broken"
    shutil.copytree(SMALL, broken)
    (broken / "nodes.csv").write_text((broken / "nodes.csv").read_text().replace(",KOR,", ",XXX,"))
    assert main(["import", str(broken), "-m", "bad", "--store", store]) == 1
    assert "nodes.csv" in capsys.readouterr().err
    assert open_store(store).count_versions() == 1


def test_token_create_keeps_only_the_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "tokens.toml"
    assert (
        main(["token", "create", "--principal", "ann", "--role", "admin", "--file", str(file)]) == 0
    )
    token = capsys.readouterr().out.strip()
    assert token.startswith("srk_") and token not in file.read_text()
    auth = TokenAuthenticator(file, env={})
    principal = auth.authenticate([("authorization", f"Bearer {token}")])
    assert (principal.name, principal.role.name) == ("ann", "ADMIN")
    assert oct(file.stat().st_mode & 0o777) == "0o600"


def test_the_eto_data_imports_with_its_lithography_hhi(tmp_path: Path) -> None:
    if not (ETO / "provision.csv").is_file():
        pytest.skip(f"ETO reference data not present at {ETO} (CC BY-NC, not in the repo)")
    store = str(tmp_path / "store")
    main(["import", str(SMALL), "-m", "seed", "--store", store])
    eto = ["import", str(ETO), "--format", "eto", "-m", "ETO 2025", "--store", store]
    assert main(eto) == 1  # it removes the provider: refused without --replace
    assert open_store(store).count_versions() == 1
    assert main([*eto, "--replace"]) == 0
    registry = GraphRegistry.open(store)
    try:
        assert registry.latest_version_id == 2
        graph = registry.graph
        for input_id, expected in EXPECTED_HHI.items():
            shares = _graph_country_shares(graph, f"eto-{input_id.lower()}")
            assert hhi(shares) == pytest.approx(expected, abs=1)
    finally:
        registry.close()


def test_json_export_imports_back_with_the_same_records(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    main(["import", str(SMALL), "-m", "seed", "--store", store])
    out = tmp_path / "dataset.json"
    assert main(["export", str(out), "--format", "json", "--store", store]) == 0
    doc = json.loads(out.read_text())
    assert [n["id"] for n in doc["nodes"]] == ["p", "a", "b", "f1", "f2", "m1", "m2", "t"]
    edge = doc["edges"][0]
    assert (edge["consumer"], edge["supplier"], edge["share"], edge["shareLow"]) == (
        "p",
        "a",
        0.6,
        0.5,
    )
    assert "sources.csv" in doc["otherFiles"]
    assert main(["import", str(out), "--format", "json", "-m", "json", "--store", store]) == 0
    versions = open_store(store)
    latest = versions.latest()
    assert latest is not None and latest.id == 2
    assert latest.content_hash == versions.get(1).content_hash  # same records
    assert latest.change_count == 0


def test_json_round_trip_keeps_buffers_input_classes_and_compute() -> None:
    # The bundled data carry node buffers, edge input classes and buffer overrides: a JSON
    # export read back must give the same records (the content hash covers all of them).
    from sovrisk.models.graph.loader import load_dataset
    from sovrisk.service import dataset_json

    files = DatasetFiles.from_directory(Path(__file__).parent.parent / "data")
    back = dataset_json.loads(dataset_json.dumps(files))
    assert load_dataset(back).content_hash == load_dataset(files).content_hash


def test_an_import_that_replaces_the_graph_needs_replace_and_revert_undoes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The small graph's one provider p removed: a dry-run summary, then a refusal that says
    what it would remove; with --replace it commits, and `revert 1` brings version 1 back as
    version 3 (byte-identical files; history keeps version 2)."""
    store = str(tmp_path / "store")
    assert main(["import", str(SMALL), "-m", "seed", "--store", store]) == 0
    folder = tmp_path / "no-provider"
    shutil.copytree(SMALL, folder)
    nodes = (folder / "nodes.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "nodes.csv").write_text(
        "".join(line for line in nodes if not line.startswith("p,")), encoding="utf-8"
    )
    edges = (folder / "edges.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "edges.csv").write_text(
        "".join(line for line in edges if not line.startswith("p,")), encoding="utf-8"
    )
    capsys.readouterr()
    command = ["import", str(folder), "-m", "drop p", "--store", store]
    assert main([*command, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "removes providers: p" in out and "dry run: nothing stored" in out
    assert main(command) == 1
    err = capsys.readouterr().err
    assert "refused" in err and "providers p" in err and "--replace" in err
    assert open_store(store).count_versions() == 1
    assert main([*command, "--replace"]) == 0
    assert "undo: sovrisk revert 1" in capsys.readouterr().out
    assert main(["revert", "1", "--store", store]) == 0
    opened = open_store(store)
    latest = opened.latest()
    assert latest is not None and latest.id == 3 and latest.message == "revert to graph/versions/1"
    assert latest.files_digest == opened.get(1).files_digest
    assert main(["revert", "3", "--store", store]) == 0  # already there: nothing to do
    assert opened.count_versions() == 3


def test_token_create_refuses_a_control_character_in_the_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "tokens.toml"
    assert main(["token", "create", "--principal", "evil\x01name", "--file", str(file)]) == 2
    assert "control characters" in capsys.readouterr().err and not file.exists()
