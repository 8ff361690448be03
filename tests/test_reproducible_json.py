"""Same inputs, parameters and seed give the same bytes, whichever process prints them:
protobuf iterates maps (the provenance's parameters) in hash order, so the JSON the CLI
prints sorts them (``converters.canonical_dict``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sovrisk.service.converters import canonical_dict
from sovrisk.service.grpc_gen.sovrisk.v1 import common_pb2, risk_pb2

ROOT = Path(__file__).parents[1]


def test_maps_come_out_sorted_at_any_depth() -> None:
    keys = [f"k{n}" for n in (9, 3, 7, 1, 5)]
    provenance = common_pb2.ResultProvenance(parameters={k: "v" for k in keys})
    assert list(canonical_dict(provenance)["parameters"]) == sorted(keys)
    nested = risk_pb2.ListProviderScoresResponse(provenance=provenance)
    assert list(canonical_dict(nested)["provenance"]["parameters"]) == sorted(keys)


def test_two_processes_print_the_same_simulation_bytes() -> None:
    command = [str(Path(sys.executable).parent / "sovrisk"), "simulate", "--data", "data"]
    outputs = {
        subprocess.run(
            [*command, "--samples", "500", "--json"],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
