"""The deployable stack: docker-compose.yml validates with `docker-compose config -q`, wires
PostgreSQL (with a volume), the gRPC service and the gateway with health checks, and every
container command is a valid `sovrisk` invocation."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sovrisk.service.cli import _parser

ROOT = Path(__file__).resolve().parent.parent


def _tool() -> str:
    tool = shutil.which("docker-compose")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose missing: scripts/ensure_system_packages.sh installs it")
        pytest.skip("docker-compose is not installed (apt-get install -y docker-compose)")
    return tool


def _secret_env(folder: Path) -> dict[str, str]:
    """The compose variables naming the two secret files (they need not exist to validate)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOVRISK_")}
    env["SOVRISK_DB_PASSWORD_FILE"] = str(folder / "postgres_password")
    env["SOVRISK_TOKENS_TOML"] = str(folder / "tokens.toml")
    return env


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tool = _tool()
    env = _secret_env(tmp_path_factory.mktemp("secrets"))
    subprocess.run([tool, "config", "-q"], cwd=ROOT, env=env, check=True, timeout=60)
    out = subprocess.run(
        [tool, "config"], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    config: dict[str, Any] = yaml.safe_load(out)
    return config


def test_the_stack_refuses_to_start_without_its_secret_files() -> None:
    """No default database password: without the secret files compose stops, naming them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOVRISK_")}
    done = subprocess.run(
        [_tool(), "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "SOVRISK_DB_PASSWORD_FILE" in done.stderr or "SOVRISK_TOKENS_TOML" in done.stderr


def test_the_stack_has_its_three_services_and_a_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "sovrisk", "gateway"}
    assert "pgdata" in compose["volumes"]
    volume = services["postgres"]["volumes"][0]  # short or long syntax, by compose version
    source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
    assert source == "pgdata"
    assert services["sovrisk"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["gateway"]["depends_on"]["sovrisk"]["condition"] == "service_healthy"


def test_health_checks_use_the_grpc_health_protocol(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["sovrisk"]["healthcheck"]["test"][:4] == [
        "CMD",
        "python",
        "-m",
        "sovrisk.service.healthcheck",
    ]
    assert "/healthz" in " ".join(services["gateway"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_configuration_comes_from_the_environment_and_secrets_from_files(
    compose: dict[str, Any],
) -> None:
    for name in ("sovrisk", "gateway"):
        service = compose["services"][name]
        env = service["environment"]
        # no password in the URL or the environment: the store reads it from the secret file
        assert env["SOVRISK_STORE"] == "postgresql://sovrisk@postgres:5432/sovrisk"
        assert env["SOVRISK_STORE_PASSWORD_FILE"] == "/run/secrets/postgres_password"
        assert env["SOVRISK_TOKENS_FILE"] == "/run/secrets/sovrisk_tokens"
        assert {"SOVRISK_HOST", "SOVRISK_LOG_LEVEL"} <= set(env)
        assert "SOVRISK_TOKENS" not in env
        secrets = {s["source"] if isinstance(s, dict) else s for s in service["secrets"]}
        assert secrets == {"postgres_password", "sovrisk_tokens"}
    postgres = compose["services"]["postgres"]["environment"]
    assert "POSTGRES_PASSWORD" not in postgres
    assert postgres["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"


def test_container_commands_are_valid_cli_invocations(compose: dict[str, Any]) -> None:
    serve = _parser().parse_args(compose["services"]["sovrisk"]["command"])
    assert (serve.command, serve.port, serve.http_port) == ("serve", 50051, None)
    gateway = _parser().parse_args(compose["services"]["gateway"]["command"])
    assert (gateway.command, gateway.http_port, gateway.no_grpc) == ("gateway", 8080, True)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["sovrisk"]' in dockerfile
    assert '"sovrisk.service.healthcheck", "127.0.0.1:50051"' in dockerfile
