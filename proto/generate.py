"""Generate navarch/v1/ (the SDK's protobuf and gRPC modules) from proto/navarch/v1/.

    python proto/generate.py           # write the generated tree (what `make proto` runs)
    python proto/generate.py --check   # exit 1 when the committed tree differs from proto/

The generated tree is committed, so that the SDK installs without grpcio-tools; CI runs
``--check`` so that it can never drift from the .proto files. Besides the *_pb2 modules
and their .pyi stubs, it writes ``descriptors.binpb``: the file descriptors *with* source
comments, from which ``navctl explain`` prints field documentation.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.resources
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "proto"
PACKAGE = Path("navarch") / "v1"
INIT = '"""Generated from proto/navarch/v1 by proto/generate.py. Do not edit."""\n'


def generate(out: Path) -> None:
    """Write the generated tree for every proto/navarch/v1/*.proto under ``out``."""
    sources = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / PACKAGE).glob("*.proto"))
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    target = out / PACKAGE
    target.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--descriptor_set_out={target / 'descriptors.binpb'}",
        "--include_source_info",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (target / "__init__.py").write_text(INIT)


def generated_files(tree: Path) -> set[str]:
    """The generated files under ``tree``/navarch/v1, relative to it."""
    base = tree / PACKAGE
    return {p.name for p in base.iterdir() if p.is_file() and p.suffix != ".pyc"}


def check() -> int:
    """Compare a fresh generation with the committed tree; report drifted files."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        want, have = generated_files(fresh), generated_files(ROOT)
        drift = sorted(want ^ have)
        drift += sorted(
            name for name in want & have
            if not filecmp.cmp(fresh / PACKAGE / name, ROOT / PACKAGE / name, shallow=False)
        )
    if drift:
        print("navarch/v1 is out of date with proto/ (run `make proto`):", *drift, sep="\n  ")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the tree has drifted")
    opts = parser.parse_args()
    if opts.check:
        return check()
    target = ROOT / PACKAGE
    if target.exists():
        for old in target.iterdir():
            if old.is_file():
                old.unlink()
    generate(ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
