"""The contract's comments for the OpenAPI document: ``proto_docs.json`` maps each full name
to its cleaned leading comment (falling back to the trailing one):

- a message ``sovrisk.v1.RiskAssessment``, a field ``sovrisk.v1.RiskAssessment.composite``,
- an enum ``sovrisk.v1.ReportFormat`` and its values ``sovrisk.v1.ReportFormat.REPORT_FORMAT_HTML``
  (scoped by the enum, not by its parent as protobuf scopes them, so they cannot collide),
- a service ``sovrisk.v1.RiskService`` and a method ``sovrisk.v1.RiskService.ScoreProvider``.

The generated ``*_pb2`` descriptors carry no source info, so the file is generated from the
``.proto`` sources (protoc ``--include_source_info``) and committed next to this module:

    python -m service.gateway.proto_docs --write   # regenerate (part of `make protos`)
    python -m service.gateway.proto_docs --check   # exit 1 if it is out of date

The gateway only reads the JSON (:func:`load`): generating needs grpcio-tools and the
``proto/`` tree of a checkout, neither of which an installed service has.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType

from google.protobuf import descriptor_pb2

log = logging.getLogger("sovrisk.gateway")

JSON_PATH = Path(__file__).with_name("proto_docs.json")
ROOT = Path(__file__).resolve().parents[2]
GEN_PROTOS = ROOT / "scripts" / "gen_protos.py"
#: Proto packages whose comments are kept: ours, and google.type (Date) that they use.
KEPT_PACKAGES = ("sovrisk.", "google.type")

# Field numbers of the descriptor protos, as they appear in SourceCodeInfo.Location.path.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE = 2
_SERVICE_METHOD = 2


def clean(comment: str) -> str:
    """A proto comment as text: the space after ``//`` dropped, lines kept (Markdown folds
    them), blank edges trimmed."""
    lines = [line[1:] if line.startswith(" ") else line for line in comment.split("\n")]
    return "\n".join(line.rstrip() for line in lines).strip()


def _names(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[tuple[int, ...], str]]:
    """Every documentable element of ``file``: (its SourceCodeInfo path, its full name)."""
    prefix = f"{file.package}." if file.package else ""

    def enum(
        path: tuple[int, ...], e: descriptor_pb2.EnumDescriptorProto, scope: str
    ) -> Iterator[tuple[tuple[int, ...], str]]:
        name = scope + e.name
        yield path, name
        for k, value in enumerate(e.value):
            yield (*path, _ENUM_VALUE, k), f"{name}.{value.name}"

    def message(
        path: tuple[int, ...], m: descriptor_pb2.DescriptorProto, scope: str
    ) -> Iterator[tuple[tuple[int, ...], str]]:
        name = scope + m.name
        yield path, name
        for k, field in enumerate(m.field):
            yield (*path, _MESSAGE_FIELD, k), f"{name}.{field.name}"
        for k, nested in enumerate(m.nested_type):
            yield from message((*path, _MESSAGE_NESTED, k), nested, name + ".")
        for k, nested_enum in enumerate(m.enum_type):
            yield from enum((*path, _MESSAGE_ENUM, k), nested_enum, name + ".")

    for k, m in enumerate(file.message_type):
        yield from message((_FILE_MESSAGE, k), m, prefix)
    for k, e in enumerate(file.enum_type):
        yield from enum((_FILE_ENUM, k), e, prefix)
    for k, service in enumerate(file.service):
        yield (_FILE_SERVICE, k), prefix + service.name
        for j, method in enumerate(service.method):
            yield (_FILE_SERVICE, k, _SERVICE_METHOD, j), f"{prefix}{service.name}.{method.name}"


def comments_of(files: descriptor_pb2.FileDescriptorSet) -> dict[str, str]:
    """Full name -> cleaned comment, for the kept packages' elements that have one."""
    docs: dict[str, str] = {}
    for file in files.file:
        if not file.package.startswith(KEPT_PACKAGES):
            continue
        locations = {tuple(loc.path): loc for loc in file.source_code_info.location}
        for path, name in _names(file):
            loc = locations.get(path)
            text = clean(loc.leading_comments or loc.trailing_comments) if loc else ""
            if text:
                docs[name] = text
    return dict(sorted(docs.items()))


def _gen_protos() -> ModuleType:
    """scripts/gen_protos.py, for its include path logic (googleapis_root, grpc_tools)."""
    spec = importlib.util.spec_from_file_location("_sovrisk_gen_protos", GEN_PROTOS)
    if spec is None or spec.loader is None or not GEN_PROTOS.is_file():
        raise SystemExit(f"proto_docs: {GEN_PROTOS} not found (run from a checkout)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """protoc's FileDescriptorSet of proto/, with source info (comments) and imports."""
    gen = _gen_protos()
    with tempfile.TemporaryDirectory(prefix="sovrisk-docs-") as tmp:
        out = Path(tmp) / "descriptors.binpb"
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={gen.PROTO_DIR}",
            f"--proto_path={gen.googleapis_root()}",
            f"--proto_path={gen.package_dir('grpc_tools') / '_proto'}",
            "--include_source_info",
            "--include_imports",
            f"--descriptor_set_out={out}",
            *gen.proto_files(),
        ]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            raise SystemExit(f"proto_docs: protoc failed with exit code {result.returncode}")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def render(docs: dict[str, str]) -> str:
    """The JSON text: sorted, one entry a line, so diffs of comment edits stay readable."""
    return json.dumps(docs, indent=0, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> str:
    """The up-to-date content of proto_docs.json."""
    return render(comments_of(descriptor_set()))


@cache
def load() -> dict[str, str]:
    """The committed comments; empty (and a warning) when the file was not installed, so the
    gateway still serves, with a bare OpenAPI document."""
    try:
        data = json.loads(JSON_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        log.warning("%s is missing: the OpenAPI document has no descriptions", JSON_PATH.name)
        return {}
    assert isinstance(data, dict)
    return {str(k): str(v) for k, v in data.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help=f"regenerate {JSON_PATH.name}")
    mode.add_argument("--check", action="store_true", help="exit 1 if it is out of date")
    args = parser.parse_args(argv)
    fresh = generate()
    current = JSON_PATH.read_text(encoding="utf-8") if JSON_PATH.is_file() else ""
    if args.check:
        if fresh != current:
            print(
                f"proto_docs: {JSON_PATH.name} is out of date with proto/; run "
                "`python -m service.gateway.proto_docs --write` (or `make protos`)",
                file=sys.stderr,
            )
            return 1
        print(f"proto_docs: {JSON_PATH.name} is up to date")
        return 0
    JSON_PATH.write_text(fresh, encoding="utf-8", newline="\n")
    print(f"proto_docs: wrote {len(json.loads(fresh))} comments to {JSON_PATH.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
