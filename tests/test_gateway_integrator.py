"""An integrator's first hour: generate a Python client from the gateway's served
``/openapi.json`` with openapi-python-client, and rank every provider of the bundled data
through it (ListProviderScores, paged, with an ISO ``as_of``). If this fails, the document is
what to fix: it is the contract that tools like this consume."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from sovrisk.service.gateway.server import start_gateway
from sovrisk.service.registry import GraphRegistry

DATA = Path(__file__).resolve().parent.parent / "data"
PACKAGE = "sovrisk_client"
#: The bundled dataset's providers and its as-of date (data/dataset.toml).
PROVIDERS = 7
AS_OF = "2026-12-01"
TIMEOUT = 300

# Runs in a subprocess with only the generated package added to sys.path: what an integrator
# would import, nothing of ours.
CLIENT_SCRIPT = """
import datetime, json, sys
from {package} import Client
from {package}.api.risk_service import risk_service_list_provider_scores as list_scores
from {package}.types import UNSET

client = Client(base_url=sys.argv[1], raise_on_unexpected_status=True)
as_of = datetime.date.fromisoformat(sys.argv[2])
scores, token, pages = [], UNSET, 0
while True:
    page = list_scores.sync(client=client, page_size=3, page_token=token, as_of=as_of)
    pages += 1
    scores += [
        {{"provider": s.provider, "composite": s.composite, "band": str(s.band)}}
        for s in page.provider_scores
    ]
    if not page.next_page_token:
        break
    token = page.next_page_token
as_of_back = page.provenance.as_of
print(json.dumps({{"scores": scores, "pages": pages, "total": page.total_size,
                  "as_of": [as_of_back.year, as_of_back.month, as_of_back.day]}}))
"""


def _generator() -> Path:
    found = Path(sys.executable).parent / "openapi-python-client"
    if found.is_file():
        return found
    which = shutil.which("openapi-python-client")
    if which is None:
        pytest.skip("openapi-python-client is not installed (dev dependency; see DEPS)")
    return Path(which)


@pytest_asyncio.fixture
async def base_url() -> AsyncIterator[str]:
    registry = GraphRegistry.from_directory(DATA)
    running = await start_gateway(registry)
    try:
        yield f"http://127.0.0.1:{running.port}"
    finally:
        await running.stop()
        registry.close()


async def _run(*command: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run without blocking the loop: the gateway under test serves on this same loop."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 0, f"{command[0]} failed:\n{out.decode()}\n{err.decode()}"
    return out.decode()


async def test_generated_client_lists_every_provider(base_url: str, tmp_path: Path) -> None:
    generator = _generator()
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/openapi.json") as r:
        assert r.status == 200
        spec = await r.json()
    (tmp_path / "openapi.json").write_text(json.dumps(spec), encoding="utf-8")
    # The venv's bin on PATH: the generator formats its output with ruff, found there.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    await _run(
        str(generator),
        "generate",
        "--path",
        "openapi.json",
        "--output-path",
        PACKAGE,
        "--meta",
        "none",
        cwd=tmp_path,
        env=env,
    )
    assert (tmp_path / PACKAGE / "api" / "risk_service").is_dir()
    script = tmp_path / "integrate.py"
    script.write_text(CLIENT_SCRIPT.format(package=PACKAGE), encoding="utf-8")
    # Only the temporary directory is added to the path: nothing is installed anywhere.
    clean_env = {**env, "PYTHONPATH": str(tmp_path)}
    out = await _run(sys.executable, str(script), base_url, AS_OF, cwd=tmp_path, env=clean_env)
    result = json.loads(out.strip().splitlines()[-1])
    scores = result["scores"]
    assert len(scores) == PROVIDERS == result["total"]
    assert result["pages"] == 3  # 7 providers, 3 a page
    assert len({s["provider"] for s in scores}) == PROVIDERS
    assert all(s["provider"].startswith("providers/") for s in scores)
    assert all(0 <= s["composite"] <= 100 for s in scores), scores
    composites = [s["composite"] for s in scores]
    assert composites == sorted(composites, reverse=True)  # riskiest first
    assert result["as_of"] == [2026, 12, 1]
