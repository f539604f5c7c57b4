"""Writing files so that nothing is lost or half-written, and making values JSON-ready."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write data to path through a temp file in the same directory, fsync, rename.

    A failure at any point leaves the old file (if any) as it was and no temp file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)     # mkstemp makes 0600; these files are for sharing
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def check_writable(path: str | os.PathLike, overwrite: bool = False,
                   exists_hint: str = "pass overwrite=True (--force) to replace it") -> Path:
    """ValueError (one line naming `path`) unless a file can be written there: not a directory,
    not an existing file unless `overwrite`, and a temp file can be made in its directory (or
    in the nearest existing ancestor, when the directories are still to be made)."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p}: is a directory")
    if p.exists() and not overwrite:
        raise ValueError(f"{p}: exists; {exists_hint}")
    d = p.absolute().parent
    while not d.exists() and not d.is_symlink():
        d = d.parent
    if not d.is_dir():
        raise ValueError(f"{p}: cannot write: {d} is not a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".probe", dir=d)
    except OSError as exc:
        raise ValueError(f"{p}: cannot write in {d}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(tmp)
    return p


def write_checked(path: str | os.PathLike, data: bytes, overwrite: bool = False,
                  exists_hint: str = "pass overwrite=True (--force) to replace it") -> Path:
    """check_writable, then write_atomic (whose OSError leaves the old file as it was)."""
    return write_atomic(check_writable(path, overwrite, exists_hint), data)


def jsonable(v: Any) -> Any:
    """Plain Python values from numpy scalars and tuples, recursively (dict keys as str)."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v
