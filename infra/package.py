"""Builds the functions' source zip that Terraform uploads: `make package`.

Deterministic: the same files give the same bytes (sorted names, fixed timestamps and
modes), so the object name, the zip's MD5, changes only when the code does and an
unchanged deploy uploads and rebuilds nothing.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "functions"
OUTPUT = ROOT / ".build" / "functions.zip"
# Never deployed: caches, tests, local secrets, editor and OS litter, and the workstation
# commands (authorize, doctor, backfill, secrets), which run on an operator's machine.
EXCLUDE = (
    "commands",
    "__pycache__",
    "*.pyc",
    "*.pyo",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "tests",
    "test_*.py",
    "*_test.py",
    ".secrets",
    ".env",
    ".DS_Store",
    "*.egg-info",
)
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def included(path: Path, source: Path = SOURCE) -> bool:
    return not any(
        fnmatch.fnmatch(part, pattern)
        for part in path.relative_to(source).parts
        for pattern in EXCLUDE
    )


def files(source: Path = SOURCE) -> list[Path]:
    return sorted(p for p in source.rglob("*") if p.is_file() and included(p, source))


def build(output: Path = OUTPUT, source: Path = SOURCE) -> str:
    """Writes the zip; returns its MD5 (the name Terraform gives the uploaded object)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files(source):
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    tmp.replace(output)
    return hashlib.md5(output.read_bytes()).hexdigest()  # noqa: S324 - a content name, as Terraform's filemd5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    digest = build(args.output)
    names = [p.relative_to(SOURCE).as_posix() for p in files()]
    print(f"{args.output} ({len(names)} files), uploaded as functions-{digest}.zip:")
    for name in names:
        print(f"  {name}")
    sys.exit(0)


if __name__ == "__main__":
    main()
