"""The ``sovrisk`` command line: validate, score (table, detail, JSON) and its errors.

Runs ``service.cli.main`` in-process on ``tests/fixtures/small`` (numbers worked out in
tests/test_engine.py: composite 57.745455 at the default top_k of 25).
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
from pathlib import Path

import pytest

from sovrisk.models.graph.loader import load_dataset
from sovrisk.models.scoring.assessment import RiskVector
from sovrisk.service.cli import main
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import PortInUse, start_server
from tests.conftest import SMALL, DatasetCopy

DATA = str(SMALL)
SMALL_HASH = load_dataset(SMALL).content_hash


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", DATA]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"OK {DATA}: version 1+{SMALL_HASH[:12]};")
    assert "provider 1, accelerator 2, foundry_process 2" in out
    assert "10 supply edges" in out
    assert f"content hash {SMALL_HASH}" in out


def test_validate_broken_share(small_copy: DatasetCopy, capsys: pytest.CaptureFixture[str]) -> None:
    line = small_copy.replace("edges.csv", "a,logic_die,f1,1,", "a,logic_die,f1,abc,")
    assert main(["validate", str(small_copy.path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("INVALID:")
    assert f"edges.csv:{line}" in err
    assert "'share'" in err and "abc" in err


def test_validate_shares_not_summing_to_one(
    small_copy: DatasetCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    line = small_copy.replace("edges.csv", "a,logic_die,f1,1,", "a,logic_die,f1,0.7,")
    assert main(["validate", str(small_copy.path)]) == 1
    err = capsys.readouterr().err
    assert f"edges.csv:{line}" in err
    assert "sum to 0.7" in err


def test_validate_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", f"{tmp_path}/does-not-exist"])
    assert code == 1
    assert capsys.readouterr().err.startswith("INVALID:")


def test_score_ranking_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--data", DATA]) == 0
    out = capsys.readouterr().out
    [row] = [line for line in out.splitlines() if "Provider P" in line]
    assert row.split()[0] == "1"
    assert "51.9" in row and "high" in row
    # sub-scores CONC STRUCT GEO EXPORT at the default top_k 25 (test_engine.py by hand)
    assert "72.2" in row and "58.0" in row and "20.3" in row and "56.7" in row
    assert f"dataset 1+{SMALL_HASH[:12]} | as of 2024-06-01" in out
    assert "higher means riskier" in out


def test_score_ranking_as_of(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--data", DATA, "--as-of", "2023-06-01"]) == 0
    out = capsys.readouterr().out
    [row] = [line for line in out.splitlines() if "Provider P" in line]
    assert "41.7" in row.split()  # export control before any regime: 50 x .833333
    assert "as of 2023-06-01" in out


def test_score_detail(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "p", "--data", DATA]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Provider P (providers/p): 51.9 / 100, high")
    assert "floor uplift" in out and "no floor" in out


def test_score_json_uses_the_proto_json_mapping(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "p", "--data", DATA, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc, dict)
    assert doc["provider"] == "providers/p"
    assert doc["displayName"] == "Provider P"
    assert doc["composite"] == pytest.approx(51.858469, abs=1e-6)
    assert doc["band"] == "RISK_BAND_HIGH"
    for key in ("subScores", "riskVector", "floorUplift", "structuralImpacts", "provenance"):
        assert key in doc, key
    assert "sub_scores" not in doc and "risk_vector" not in doc
    subs = doc["subScores"]
    assert [s["key"] for s in subs] == [
        "SUB_SCORE_KEY_CONCENTRATION",
        "SUB_SCORE_KEY_STRUCTURAL",
        "SUB_SCORE_KEY_GEOPOLITICAL",
        "SUB_SCORE_KEY_EXPORT_CONTROL",
        "SUB_SCORE_KEY_RESILIENCE",
        "SUB_SCORE_KEY_TAIL",
    ]
    total = math.fsum(s.get("contribution", 0.0) for s in subs) + doc.get("floorUplift", 0.0)
    assert math.isclose(total, doc["composite"], rel_tol=0, abs_tol=1e-9)
    assert RiskVector.parse(doc["riskVector"]).composite == 51.9
    prov = doc["provenance"]
    assert prov["datasetHash"] == SMALL_HASH
    assert prov["asOf"] == {"year": 2024, "month": 6, "day": 1}
    assert prov["parameters"]["top_k"] == "25"
    t = doc["structuralImpacts"][0]
    assert t["node"] == "nodes/t" and t["isSpof"] is True
    assert t["evidencePath"] == ["providers/p", "nodes/a", "nodes/f1", "nodes/t"]


def test_score_json_accepts_a_resource_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "providers/p", "--data", DATA, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["provider"] == "providers/p"


def test_score_json_ranking_is_a_list(
    small_copy: DatasetCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    small_copy.append(
        "nodes.csv", "q,provider,Provider Q,Q Corp,KOR,provider,,A,fixture,2024-01-01,"
    )
    small_copy.append("edges.csv", "q,fleet,b,1,,,A,fixture,2024-01-01,")
    assert main(["score", "--data", str(small_copy.path), "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert isinstance(docs, list)
    assert {d["provider"] for d in docs} == {"providers/p", "providers/q"}
    composites = [d["composite"] for d in docs]
    assert composites == sorted(composites, reverse=True)


@pytest.mark.parametrize("provider", ["zz", "a"])  # "a" is a supply node, not a provider
def test_score_unknown_provider(capsys: pytest.CaptureFixture[str], provider: str) -> None:
    assert main(["score", provider, "--data", DATA]) == 4  # not found
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("reading dataset folder")  # says what it read, then the error
    assert f"\nerror: provider {provider!r} not found" in err


@pytest.mark.parametrize("as_of", ["2024-02-30", "2024-6-1", "2024-06", "yesterday"])
def test_score_bad_as_of_is_a_usage_error(capsys: pytest.CaptureFixture[str], as_of: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["score", "--data", DATA, "--as-of", as_of])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--as-of" in err and "YYYY-MM-DD" in err


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: sovrisk" in capsys.readouterr().err


# -- scenario ---------------------------------------------------------------------------------


def test_scenario_country_flag(capsys: pytest.CaptureFixture[str]) -> None:
    # tests/test_scenario.py: TWN lost -> .7 -> .2, 12 weeks -> 6 supply-weeks
    code = main(["scenario", "--data", str(SMALL), "--country", "TWN", "--weeks", "12"])
    out = capsys.readouterr().out
    assert code == 0
    assert "0.700" in out and "0.200" in out and "-0.500" in out and "6.00" in out


def test_scenario_json_file_and_flags_combine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "request.json"
    request.write_text(
        '{"displayName": "from file", "perturbations": [{"node": {"node": "nodes/m1",'
        ' "fractionLost": 0.5}}]}',
        encoding="utf-8",
    )
    code = main(
        [
            "scenario",
            "--data",
            str(SMALL),
            "--file",
            str(request),
            "--share",
            "p:fleet:b:0.7",
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["displayName"] == "from file"
    outcome = doc["outcomes"][0]
    # m1 at .5 and b at .7 of the fleet: a = .75 (x .5 delivered), b = .5
    # p = .3 x .5 x .75 + .7 x .5 = .1125 + .35 = .4625
    assert outcome["availableScenario"] == pytest.approx(0.4625, abs=1e-9)
    assert {d["perturbationIndex"] for d in outcome["deltas"][0]["drivers"]} <= {0, 1}


def test_scenario_bad_flags_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "--data", str(SMALL), "--node", "zz:2"]) == 2
    err = capsys.readouterr().err
    assert "perturbations[0].node.node" in err and "perturbations[0].node.fraction_lost" in err
    assert main(["scenario", "--data", str(SMALL), "--share", "p:fleet:b"]) == 2
    assert "--share" in capsys.readouterr().err


def test_trajectory_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    # The small graph has no fleet series: one row per quarter, the same mix every quarter.
    assert main(["trajectory", "p", "--from", "2024Q1", "--to", "2024Q2", "--data", DATA]) == 0
    out = capsys.readouterr().out
    assert "Provider P (p)" in out and "2024Q1" in out and "2024Q2" in out
    assert main(["trajectory", "--from", "2024Q2", "--to", "2024Q2", "--json", "--data", DATA]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["quarter"], row["provider"], row["asOf"]) == (
        "2024Q2",
        "providers/p",
        {"year": 2024, "month": 6, "day": 30},
    )
    assert 0 < row["composite"] <= 100
    # Unknown providers and reversed ranges are errors, not empty tables.
    assert main(["trajectory", "zz", "--data", DATA]) == 4
    assert main(["trajectory", "--from", "2024Q2", "--to", "2024Q1", "--data", DATA]) == 2


@pytest.mark.parametrize("flag", ["--port", "--http-port"])
def test_serve_refuses_a_taken_port_in_one_line(
    capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        args = ["serve", "--data", DATA, "--port", "0", flag, port]
        assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no traceback
    assert f"127.0.0.1:{port}" in err and "in use" in err and flag in err


async def test_a_second_grpc_server_on_a_taken_port_does_not_start() -> None:
    """gRPC's default SO_REUSEPORT would let both listen and split the clients."""
    registry = GraphRegistry.from_directory(SMALL)
    first = await start_server(registry, port=0)
    try:
        with pytest.raises(PortInUse, match="in use"):
            await start_server(registry, port=first.port)
    finally:
        await first.stop(0)


async def test_score_asks_a_running_server_with_server(capsys: pytest.CaptureFixture[str]) -> None:
    """The same ranking from the server as from the store it serves (small graph: p 51.9)."""
    registry = GraphRegistry.from_directory(SMALL)
    running = await start_server(registry, port=0)
    try:
        target = f"127.0.0.1:{running.port}"
        assert await asyncio.to_thread(main, ["score", "--server", target, "--draws", "0"]) == 0
        out, err = capsys.readouterr()
        assert f"reading the ranking of {target}" in err
        [row] = [line for line in out.splitlines() if line.startswith("1 ")]
        assert row.split()[:4] == ["1", "p", "Provider", "P"] and "51.9" in row
        args = ["score", "p", "--server", target, "--draws", "0"]
        assert await asyncio.to_thread(main, args) == 0
        assert "Provider P (providers/p): 51.9 / 100, high" in capsys.readouterr().out
        missing = ["score", "amazon", "--server", target, "--draws", "0"]
        assert await asyncio.to_thread(main, missing) == 4
        report = ["report", "--server", target, "--format", "csv", "-o", "-", "--draws", "0"]
        capsys.readouterr()
        assert await asyncio.to_thread(main, report) == 0
        out, err = capsys.readouterr()
        assert "reading graph/versions/1 of the server" in err
        header, row = out.splitlines()[:2]
        assert "graph_version" in header and "graph/versions/1" in row and "p," in row
    finally:
        await running.stop(0)


def test_validate_names_a_file_that_is_not_utf8(
    small_copy: DatasetCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = small_copy.path / "nodes.csv"
    nodes.write_bytes(nodes.read_bytes().replace(b"Provider P", b"Provider \xff"))
    assert main(["validate", str(small_copy.path)]) == 1
    assert "nodes.csv:2: field 'encoding' = '0xff': is not UTF-8 text" in capsys.readouterr().err


def test_serve_check_config_reports_without_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    tokens = tmp_path / "tokens.toml"
    tokens.write_text("not = [toml", encoding="utf-8")
    args = ["serve", "--check-config", "--store", str(store), "--tokens", str(tokens)]
    assert main([*args, "--port", "0", "--data", DATA]) == 1  # the broken token file
    out = capsys.readouterr().out
    assert "ok   --store" in out and "will be created and seeded" in out
    assert "BAD  --tokens" in out and "cannot be read" in out
    assert not store.exists()  # a check creates nothing
    tokens.unlink()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert main([*args, "--port", port, "--data", DATA]) == 1
    assert "BAD  --port" in capsys.readouterr().out
    assert main([*args, "--port", "0", "--data", DATA]) == 0
