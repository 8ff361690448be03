"""deploy/nginx.conf made runnable on this machine: the compose service names in its upstreams
replaced by loopback addresses, its ports and pid file moved, and, for an nginx older than
1.25.1 (Debian 12 ships 1.22), `http2 on;` spelled as the older `listen ... http2`."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
#: The upstream blocks and the compose services each names, in order.
UPSTREAMS = {"sovrisk_grpc": ("sovrisk", "sovrisk-2"), "sovrisk_http": ("gateway", "gateway-2")}


def nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


def version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=True).stderr
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
    assert match is not None, out
    return tuple(int(x) for x in match.groups())


def upstream_servers(text: str) -> dict[str, list[str]]:
    """upstream name -> the host:port of each of its `server` lines."""
    found: dict[str, list[str]] = {}
    for name, body in re.findall(r"upstream\s+(\S+)\s*\{(.*?)\}", text, flags=re.S):
        found[name] = re.findall(r"^\s*server\s+(\S+?)(?:\s|;)", body, flags=re.M)
    return found


def local_config(
    *,
    binary: str,
    folder: Path,
    grpc_servers: Sequence[str],
    http_servers: Sequence[str],
    grpc_port: int = 50051,
    http_port: int = 8080,
) -> Path:
    """Write the runnable copy into ``folder``; its path."""
    text = NGINX_CONF.read_text()
    for upstream, targets in (("sovrisk_grpc", grpc_servers), ("sovrisk_http", http_servers)):
        for service, target in zip(UPSTREAMS[upstream], targets, strict=True):
            text, n = re.subn(rf"(\bserver\s+){re.escape(service)}:\d+", rf"\g<1>{target}", text)
            assert n == 1, f"{service} is not an upstream server of {NGINX_CONF}"
    text = text.replace("listen 50051;", f"listen 127.0.0.1:{grpc_port};")
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("pid /tmp/nginx.pid;", f"pid {folder / 'nginx.pid'};")
    if version(binary) < (1, 25, 1):
        listen = f"listen 127.0.0.1:{grpc_port}"
        text = text.replace(f"{listen};", f"{listen} http2;")
        text = re.sub(r"^\s*http2 on;\n", "", text, flags=re.M)
    path = folder / "nginx.conf"
    path.write_text(text)
    return path
