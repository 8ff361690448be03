"""Walk the README as a new user would, from a fresh clone, on a given Python.

    python tests/newcomer_walk.py --python python3.11 --install make   # `make run`'s path
    python tests/newcomer_walk.py --python python3.13 --install pip    # pip install, no checkout

``make``: clone, ``make install`` (what ``make run`` does before serving), the commands from
the checkout. ``pip``: ``pip install 'CLONE[server]'`` into a new venv, the clone deleted, every
command run from an unrelated folder: the package, its bundled data and the notebook snippet
must work without a checkout.

Each step prints one line with its time; the first failure stops the walk with exit 1.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
#: Printed after the README's notebook snippet (which defines ``engine`` and ``ranking``).
NOTEBOOK_PROBE = """
import json
from sovrisk import DATA_DIR
print(json.dumps({"data": str(DATA_DIR), "first": ranking[0].summary(), "n": len(ranking)}))
"""


def readme_snippet(readme: Path) -> str:
    """The python block under the README's "From Python" heading."""
    text = readme.read_text(encoding="utf-8")
    section = text[text.index("## From Python") :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```", start)]


class WalkFailed(Exception):
    pass


class Walk:
    def __init__(self, python: str, install: str, work: Path) -> None:
        self.python, self.install, self.work = python, install, work
        self.clone = work / "sovrisk"
        self.elsewhere = work / "elsewhere"  # a user's own folder, with its own models/
        self.env = dict(os.environ)
        for key in ("SOVRISK_STORE", "SOVRISK_STATE_DIR", "SOVRISK_TOKENS_FILE", "VIRTUAL_ENV"):
            self.env.pop(key, None)
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.timings: dict[str, float] = {}
        self.bin = Path()
        self.snippet = ""

    # -- helpers --------------------------------------------------------------------------

    def run(
        self,
        step: str,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        expect: int = 0,
        timeout: float = 900,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        start = time.perf_counter()
        done = subprocess.run(
            list(args),
            cwd=cwd or self.cwd,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        seconds = time.perf_counter() - start
        self.timings[step] = seconds
        ok = done.returncode == expect
        print(f"{'ok ' if ok else 'FAIL'} {seconds:6.2f} s  {step}", flush=True)
        if not ok:
            raise WalkFailed(
                f"{step}: exit {done.returncode} (expected {expect})\n"
                f"$ {' '.join(args)}\n--- stdout\n{done.stdout[-3000:]}\n"
                f"--- stderr\n{done.stderr[-3000:]}"
            )
        return done

    def check(self, step: str, condition: bool, detail: str = "") -> None:
        print(f"{'ok ' if condition else 'FAIL'}           {step}", flush=True)
        if not condition:
            raise WalkFailed(f"{step}: {detail}")

    def sovrisk(self, step: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        return self.run(step, [str(self.bin / "sovrisk"), *args], expect=expect, cwd=self.cwd)

    @property
    def cwd(self) -> Path:
        return self.clone if self.install == "make" else self.elsewhere

    # -- the walk -------------------------------------------------------------------------

    def setup(self) -> None:
        self.run("git clone", ["git", "clone", "-q", str(ROOT), str(self.clone)], cwd=self.work)
        self.snippet = readme_snippet(self.clone / "README.md")
        self.elsewhere.mkdir()
        (self.elsewhere / "models").mkdir()  # a user's own package named like ours once was
        (self.elsewhere / "models" / "__init__.py").write_text("MINE = True\n")
        if self.install == "make":
            # A .venv left by a Python that is gone (a failed first try, an upgrade) must be
            # rebuilt, not reused.
            (self.clone / ".venv" / "bin").mkdir(parents=True)
            (self.clone / ".venv" / "bin" / "python").symlink_to("/nonexistent/python3.10")
            first = self.run(
                "make install (first `make run`)", ["make", "install", f"PYTHON={self.python}"]
            )
            self.check("a broken .venv is rebuilt", "rebuilding" in first.stdout, first.stdout)
            self.bin = self.clone / ".venv" / "bin"
            again = self.run("make install again", ["make", "install", f"PYTHON={self.python}"])
            self.check("a second make install does nothing", "installing" not in again.stdout)
        else:
            venv = self.work / "venv"
            self.run("python -m venv", [self.python, "-m", "venv", str(venv)], cwd=self.work)
            self.bin = venv / "bin"
            self.run(
                "pip install 'sovrisk[server]' (not editable)",
                [str(self.bin / "pip"), "install", "-q", f"{self.clone}[server]"],
                cwd=self.work,
            )
            shutil.rmtree(self.clone)  # nothing may depend on the checkout any more
            self.env["SOVRISK_STATE_DIR"] = str(self.work / "state")
        version = self.run("python --version", [str(self.bin / "python"), "--version"])
        wanted = self.run("wanted --version", [self.python, "--version"], cwd=self.work)
        self.check("the venv runs the Python asked for", version.stdout == wanted.stdout)

    def discovery(self) -> None:
        out = self.sovrisk("sovrisk --version", "--version").stdout
        self.check("--version names the package and model", out.startswith("sovrisk 0."), out)
        self.sovrisk("sovrisk --help", "--help")
        out = self.sovrisk("sovrisk providers", "providers").stdout
        self.check("providers lists aws", "\naws " in out and "Amazon Web Services" in out, out)
        bad = self.sovrisk("sovrisk score amazon (typo)", "score", "amazon", expect=4)
        self.check("a typo gets a suggestion", "did you mean 'aws'?" in bad.stderr, bad.stderr)
        iso2 = self.sovrisk(
            "sovrisk scenario --country TW", "scenario", "--country", "TW", expect=2
        )
        self.check("an ISO-2 code is hinted", "'TWN'" in iso2.stderr, iso2.stderr)
        flag = self.sovrisk("sovrisk score --bogus", "score", "--bogus", expect=2)
        self.check("a bad flag shows the command's usage", "usage: sovrisk score" in flag.stderr)

    def serve_edit_and_read_back(self) -> None:
        grpc_port, http_port = _free_port(), _free_port()
        log = self.work / "serve.log"
        args = [str(self.bin / "sovrisk"), "serve", "--port", str(grpc_port)]
        args += ["--http-port", str(http_port), "--interval-draws", "0", "--poll-interval", "0.5"]
        start = time.perf_counter()
        with log.open("w") as sink:
            server = subprocess.Popen(
                args, cwd=self.cwd, env=self.env, stdout=sink, stderr=subprocess.STDOUT
            )
        try:
            base = f"http://127.0.0.1:{http_port}"
            _wait_http(f"{base}/healthz", server, log)
            self.timings["serve: first start (seeds the store)"] = time.perf_counter() - start
            print(f"ok  {self.timings['serve: first start (seeds the store)']:6.2f} s  serve")
            twice = self.sovrisk(
                "a second serve on the same port", "serve", "--port", str(grpc_port), expect=1
            )
            self.check("...is refused in one line", twice.stderr.count("\n") == 1, twice.stderr)
            token = self.sovrisk(
                "sovrisk token create", "token", "create", "--principal", "newcomer"
            ).stdout.strip()
            edit = _post(f"{base}/v1/graph:batchUpdate", token, _readme_edit())
            self.check("the README's edit commits version 2", "graph/versions/2" in edit, edit)
            scored = self.sovrisk(
                "sovrisk score aws (after the edit)", "score", "aws", "--draws", "0"
            )
            self.check(
                "score reads the store's latest version",
                "graph/versions/2 (latest)" in scored.stderr,
                scored.stderr,
            )
            report = self.sovrisk(
                "sovrisk report --format csv",
                "report",
                "--format",
                "csv",
                "-o",
                "-",
                "--draws",
                "0",
            )
            self.check("the report is of version 2", "graph/versions/2" in report.stdout)
            if SHARED.is_dir():
                eto = self.sovrisk(
                    "ETO import without --replace",
                    "import",
                    str(SHARED / "reference" / "eto"),
                    "--format",
                    "eto",
                    "-m",
                    "ETO",
                    expect=1,
                )
                self.check("...is refused, naming --replace", "--replace" in eto.stderr)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                raise WalkFailed("serve did not stop within 30 s of SIGTERM") from None

    def notebook(self) -> None:
        done = self.run(
            "the README's notebook snippet, outside the checkout",
            [str(self.bin / "python"), "-c", self.snippet + NOTEBOOK_PROBE],
            cwd=self.elsewhere,
        )
        first = json.loads(done.stdout.strip().splitlines()[-1])
        shown = done.stdout.splitlines()[0]
        self.check("a short repr", shown.startswith("<RiskAssessment ") and len(shown) < 400)
        self.check("every provider scored", first["n"] == 7, done.stdout)
        self.check("scores are 0-100", 0 < first["first"]["composite"] <= 100)
        if self.install == "pip":
            self.check("the data is package data", "site-packages" in first["data"], first["data"])


def _readme_edit() -> dict[str, object]:
    common = {
        "consumer": "aws-trainium3",
        "category": "memory",
        "quality": "C",
        "sources": ["analyst-estimate"],
        "as_of": {"year": 2026, "month": 11, "day": 24},
    }
    shares = {"skhynix-hbm3e": 0.5, "micron-hbm3e": 0.2, "samsung-hbm3e": 0.15}
    shares["samsung-hbm4"] = 0.15
    return {
        "base_version": "graph/versions/1",
        "message": "Samsung HBM4 qualified for Trainium3",
        "changes": [
            {"upsert_edge": {**common, "supplier": s, "share": v}} for s, v in shares.items()
        ],
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_http(url: str, server: subprocess.Popen[bytes], log: Path, limit: float = 180) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise WalkFailed(f"serve exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise WalkFailed(f"serve not healthy within {limit:.0f} s:\n{log.read_text()[-3000:]}")


def _post(url: str, token: str, body: dict[str, object]) -> str:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        raise WalkFailed(f"POST {url}: {exc.code} {exc.read().decode()[:2000]}") from None


def walk(python: str, install: str, keep: bool = False) -> dict[str, float]:
    """Run the walk; returns each step's seconds. Raises WalkFailed."""
    work = Path(tempfile.mkdtemp(prefix=f"sovrisk-walk-{install}-"))
    try:
        w = Walk(python, install, work)
        w.setup()
        w.discovery()
        w.serve_edit_and_read_back()
        w.notebook()
        return w.timings
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def find_python(wanted: str) -> str:
    """An interpreter that runs: a path or command as given, or for a version like ``3.13``
    ``python3.13`` on PATH, else pyenv's (whose shim fails when 3.13 is not its global)."""
    names = [wanted] if not re.fullmatch(r"3\.\d+", wanted) else [f"python{wanted}"]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if re.fullmatch(r"3\.\d+", wanted):
        names += sorted(str(p) for p in pyenv.glob(f"{wanted}*/bin/python{wanted}"))
    for name in names:
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found and subprocess.run([found, "-c", "pass"], capture_output=True).returncode == 0:
            return found
    raise WalkFailed(f"no working Python {wanted} (tried {', '.join(names)})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter to walk on: a path, a command or a version (3.13)",
    )
    parser.add_argument("--install", choices=("make", "pip"), default="make")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    try:
        timings = walk(find_python(args.python), args.install, args.keep)
    except WalkFailed as exc:
        print(f"\nthe walk failed: {exc}", file=sys.stderr)
        return 1
    print(f"\nwalked on {args.python} ({args.install}): {sum(timings.values()):.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
