"""Lint the API contract in ``proto/`` with buf, offline.

    python scripts/buf_lint.py

buf cannot reach the Buf Schema Registry here, so the googleapis protos the contract imports
(google/api/*.proto, google/type/*.proto, google/rpc/*.proto) come from the installed
``googleapis-common-protos`` package: this script copies exactly the ones needed (the
transitive imports of ``proto/``) into ``.buf_deps/`` (gitignored), which ``buf.yaml`` declares
as a second module and excludes from linting. It then runs ``buf lint`` with the rules of
``buf.yaml`` and checks that ``proto/`` is laid out as ``buf format`` would. Well-known types
(google/protobuf/*.proto) are built into buf and not copied. Exits non-zero on any finding.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
DEPS_DIR = ROOT / ".buf_deps"
#: Imports provided by buf itself.
BUILTIN_PREFIX = "google/protobuf/"

_IMPORT = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;', re.MULTILINE)


def googleapis_root() -> Path:
    """The include root of googleapis-common-protos: the folder holding google/api/*.proto."""
    for entry in sys.path:
        root = Path(entry or ".").resolve()
        if (root / "google" / "api" / "field_behavior.proto").is_file():
            return root
    raise SystemExit(
        "buf_lint: google/api/field_behavior.proto not found on sys.path; "
        "is googleapis-common-protos installed?"
    )


def find_buf() -> Path:
    """The buf binary of this interpreter's venv (buf-bin), else the one on PATH."""
    beside = Path(sys.executable).parent / "buf"
    if beside.is_file():
        return beside
    found = shutil.which("buf")
    if found is None:
        raise SystemExit("buf_lint: buf not found (is buf-bin installed? run `make install`)")
    return Path(found)


def imports_of(path: Path) -> list[str]:
    return _IMPORT.findall(path.read_text(encoding="utf-8"))


def needed_dependencies(source: Path) -> dict[str, Path]:
    """Every non-builtin proto imported (transitively) by the protos under ``proto/``, mapped
    to its file in ``source``."""
    own = {p.relative_to(PROTO_DIR).as_posix() for p in PROTO_DIR.rglob("*.proto")}
    pending = [imp for p in sorted(PROTO_DIR.rglob("*.proto")) for imp in imports_of(p)]
    needed: dict[str, Path] = {}
    missing: list[str] = []
    while pending:
        name = pending.pop()
        if name in own or name in needed or name.startswith(BUILTIN_PREFIX):
            continue
        path = source / name
        if not path.is_file():
            missing.append(name)
            continue
        needed[name] = path
        pending.extend(imports_of(path))
    if missing:
        raise SystemExit(
            f"buf_lint: imports not found in {source}: {', '.join(sorted(set(missing)))}"
        )
    return dict(sorted(needed.items()))


def prepare_dependencies() -> list[str]:
    """Refresh ``.buf_deps/`` with just the protos ``proto/`` needs; return their names."""
    needed = needed_dependencies(googleapis_root())
    if DEPS_DIR.exists():
        shutil.rmtree(DEPS_DIR)
    for name, path in needed.items():
        target = DEPS_DIR / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    if not needed:
        # buf rejects a module without .proto files: keep one harmless placeholder.
        placeholder = DEPS_DIR / "buf_deps" / "placeholder.proto"
        placeholder.parent.mkdir(parents=True, exist_ok=True)
        placeholder.write_text('syntax = "proto3";\n\npackage buf_deps;\n', encoding="utf-8")
    return list(needed)


#: The released contract (a buf image): `buf breaking` checks every change against it. Refresh
#: it deliberately, when a compatible change is released: `scripts/buf_lint.py --update-baseline`.
BASELINE = ROOT / "proto" / "baseline.binpb"


def breaking(buf: Path) -> int:
    if not BASELINE.is_file():
        print("buf_lint: no proto/baseline.binpb: breaking-change check skipped", file=sys.stderr)
        return 0
    check = subprocess.run(
        [str(buf), "breaking", "proto", "--against", str(BASELINE.relative_to(ROOT))],
        cwd=ROOT,
        check=False,
    )
    if check.returncode != 0:
        print("buf_lint: breaking change against proto/baseline.binpb", file=sys.stderr)
        return 1
    print("buf_lint: no breaking change against proto/baseline.binpb")
    return 0


def main() -> int:
    if "--update-baseline" in sys.argv[1:]:
        prepare_dependencies()
        built = subprocess.run(
            [str(find_buf()), "build", "--exclude-source-info", "-o", str(BASELINE)],
            cwd=ROOT,
            check=False,
        )
        print(f"buf_lint: wrote {BASELINE.relative_to(ROOT)}")
        return built.returncode
    deps = prepare_dependencies()
    print(f"buf_lint: {len(deps)} googleapis protos in .buf_deps/: {', '.join(deps) or '-'}")
    buf = find_buf()
    status = 0
    lint = subprocess.run([str(buf), "lint"], cwd=ROOT, check=False)
    if lint.returncode != 0:
        print(f"buf_lint: buf lint reported findings (exit {lint.returncode})", file=sys.stderr)
        status = 1
    # Canonical layout too: `buf format -w proto` fixes what this reports.
    fmt = subprocess.run(
        [str(buf), "format", "--diff", "--exit-code", "proto"], cwd=ROOT, check=False
    )
    if fmt.returncode != 0:
        print("buf_lint: proto/ is not buf-formatted: run `buf format -w proto`", file=sys.stderr)
        status = 1
    if status == 0:
        print("buf_lint: proto/ is lint clean and buf-formatted")
    return status or breaking(buf)


if __name__ == "__main__":
    sys.exit(main())
