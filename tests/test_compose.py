"""The deployable stack: docker-compose.yml validates with `docker-compose config -q`, wires
PostgreSQL (with a volume), two replicas of the gRPC service and of the gateway with health
checks behind nginx (deploy/nginx.conf, checked with `nginx -t` when nginx is installed), and
every container command is a valid `sovrisk` invocation."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sovrisk.service.cli import _parser
from tests import nginx_conf

ROOT = Path(__file__).resolve().parent.parent
GRPC_REPLICAS = ("sovrisk", "sovrisk-2")
GATEWAYS = ("gateway", "gateway-2")


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


def test_the_stack_has_its_services_and_a_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", *GRPC_REPLICAS, *GATEWAYS, "nginx"}
    assert "pgdata" in compose["volumes"]
    volume = services["postgres"]["volumes"][0]  # short or long syntax, by compose version
    source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
    assert source == "pgdata"
    assert services["sovrisk"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # The second replica starts once the first has migrated (and seeded) the store.
    assert services["sovrisk-2"]["depends_on"]["sovrisk"]["condition"] == "service_healthy"
    for gateway in GATEWAYS:
        assert services[gateway]["depends_on"]["sovrisk"]["condition"] == "service_healthy"
    for upstream in (*GRPC_REPLICAS, *GATEWAYS):
        assert services["nginx"]["depends_on"][upstream]["condition"] == "service_healthy"


def test_health_checks_use_the_grpc_health_protocol(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in GRPC_REPLICAS:
        assert services[name]["healthcheck"]["test"][:4] == [
            "CMD",
            "python",
            "-m",
            "sovrisk.service.healthcheck",
        ]
    for name in (*GATEWAYS, "nginx"):
        assert "/healthz" in " ".join(services[name]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_configuration_comes_from_the_environment_and_secrets_from_files(
    compose: dict[str, Any],
) -> None:
    for name in (*GRPC_REPLICAS, *GATEWAYS):
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
    for name in GRPC_REPLICAS:
        serve = _parser().parse_args(compose["services"][name]["command"])
        assert (serve.command, serve.port, serve.http_port) == ("serve", 50051, None)
        assert serve.poll_interval > 0  # replicas pick up each other's versions
    for name in GATEWAYS:
        gateway = _parser().parse_args(compose["services"][name]["command"])
        assert (gateway.command, gateway.http_port, gateway.no_grpc) == ("gateway", 8080, True)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["sovrisk"]' in dockerfile
    assert '"sovrisk.service.healthcheck", "127.0.0.1:50051"' in dockerfile


def _published(service: dict[str, Any]) -> set[int]:
    """The container ports a service publishes on the host (short or long syntax)."""
    ports = set()
    for port in service.get("ports", []):
        target = port["target"] if isinstance(port, dict) else port.split(":")[-1].split("/")[0]
        ports.add(int(target))
    return ports


def test_the_replicas_are_identical_and_only_the_load_balancer_is_published(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    same = ("image", "command", "environment", "secrets", "healthcheck")
    for first, second in (GRPC_REPLICAS, GATEWAYS):
        assert {k: services[first][k] for k in same} == {k: services[second][k] for k in same}
    assert services["nginx"]["image"].startswith("nginx:")
    assert _published(services["nginx"]) == {50051, 8080}
    for name in set(services) - {"nginx"}:
        assert _published(services[name]) == set(), f"{name} publishes a port"
    mount = services["nginx"]["volumes"][0]
    if isinstance(mount, dict):  # long syntax
        source, target, read_only = mount["source"], mount["target"], mount.get("read_only")
    else:
        source, target, mode = mount.rsplit(":", 2)
        read_only = mode == "ro"
    assert Path(source).resolve() == nginx_conf.NGINX_CONF
    assert (target, read_only) == ("/etc/nginx/nginx.conf", True)


def test_the_load_balancer_proxies_grpc_to_both_replicas() -> None:
    text = nginx_conf.NGINX_CONF.read_text()
    assert nginx_conf.upstream_servers(text) == {
        "sovrisk_grpc": [f"{name}:50051" for name in GRPC_REPLICAS],
        "sovrisk_http": [f"{name}:8080" for name in GATEWAYS],
    }
    assert "grpc_pass grpc://sovrisk_grpc;" in text
    assert "http2 on;" in text
    assert "proxy_pass http://sovrisk_http;" in text
    # watch streams stay open for hours: nginx's 60 s default must not end them
    for directive in ("grpc_read_timeout", "grpc_send_timeout", "proxy_read_timeout"):
        assert f"{directive} 1h;" in text


def test_nginx_accepts_the_load_balancer_config(tmp_path: Path) -> None:
    binary = nginx_conf.nginx()
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install -y nginx-light)")
    config = nginx_conf.local_config(
        binary=binary,
        folder=tmp_path,
        grpc_servers=["127.0.0.1:50051", "127.0.0.1:50052"],
        http_servers=["127.0.0.1:8080", "127.0.0.1:8081"],
    )
    done = subprocess.run(
        [binary, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr
