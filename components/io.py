"""Files written whole or not at all, and file digests: the one place for both.

Every writer goes to a temporary sibling (same folder, so the rename stays on one file system) and renames it
over the target with os.replace, which is atomic on POSIX and Windows: a reader, `dvc`, or a crash sees the
old file or the new one, never half of one. A failed write leaves no temporary file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call write(tmp) for a temporary sibling of `path` (same suffix, so writers that infer the format from it
    still work), then rename it over `path`; on any failure the temporary file is removed and the error raised."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, obj: Any) -> Path:
    """`obj` as indented JSON (non-JSON values as str), atomically."""
    return write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def save_torch(path: Path, obj: Any) -> Path:
    """torch.save(obj) atomically (state_dicts and plain containers: loadable with weights_only=True)."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
