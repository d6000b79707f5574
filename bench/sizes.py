"""What `sam build` made: each function's package and the layer, unzipped and zipped (deflate, as
`sam deploy` uploads them). Run `make build` first; `make bench` does."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"


def _zipped(folder: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder))
    return buffer.tell()


def measure() -> list[dict]:
    if not BUILD.is_dir():
        return []
    rows = []
    for folder in sorted(p for p in BUILD.iterdir() if p.is_dir()):
        files = [f for f in folder.rglob("*") if f.is_file()]
        rows.append(
            {
                "artifact": folder.name,
                "files": len(files),
                "bytes": sum(f.stat().st_size for f in files),
                "zipped": _zipped(folder),
            }
        )
    return rows


def largest_packages(limit: int = 6) -> list[tuple[str, int]]:
    """The layer's biggest top-level packages, unzipped."""
    python = BUILD / "CoreLayer" / "python"
    if not python.is_dir():
        return []
    sizes = {}
    for entry in python.iterdir():
        if entry.name.endswith((".dist-info", ".libs")):
            continue
        files = [entry] if entry.is_file() else [f for f in entry.rglob("*") if f.is_file()]
        sizes[entry.name] = sum(f.stat().st_size for f in files)
    return sorted(sizes.items(), key=lambda item: -item[1])[:limit]
