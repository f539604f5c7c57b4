"""Reading and writing the project's files safely: outputs only ever replace regular files,
atomically; inputs are read only from regular files of bounded size, so a FIFO, a device or
/dev/zero is one error line and not a hang; and values are made JSON-ready."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write data to path through a temp file in the same directory, fsync, rename.

    A failure at any point leaves the old file (if any) as it was and no temp file."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as exc:          # ENOSPC, EROFS, EACCES...: name the file we were writing
        raise OSError(exc.errno, exc.strerror, str(p)) from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)     # mkstemp makes 0600; these files are for sharing
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(p)) from None
        raise
    return p


def check_writable(path: str | os.PathLike, overwrite: bool = False,
                   exists_hint: str = "pass overwrite=True (--force) to replace it",
                   inputs: tuple = ()) -> Path:
    """ValueError (one line naming `path`) unless a file can be written there: nothing exists
    there but a regular file, and that only when `overwrite`; it is none of `inputs`; and a
    temp file can be made in its directory (or in the nearest existing ancestor, when the
    directories are still to be made)."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):     # the ancestor walk below says why
        st = None
    except OSError as exc:
        raise ValueError(f"{p}: cannot write: {exc.strerror}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise ValueError(f"{p}: is a directory")
        if not stat.S_ISREG(st.st_mode):
            # --force replaces a file by renaming over it: never do that to a device, a FIFO,
            # a socket or a symbolic link (it would replace, say, /dev/null).
            raise ValueError(f"{p}: exists and is not a regular file ({_kind(st.st_mode)}); "
                             f"refusing to replace it")
        if not overwrite:
            raise ValueError(f"{p}: exists; {exists_hint}")
        for q in inputs:
            with contextlib.suppress(OSError):
                if os.path.samefile(p, q):
                    raise ValueError(f"{p}: is also an input ({q}); write the output elsewhere")
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


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


MAX_INPUT_BYTES = 1 << 30       # no result file, trace or profile of ours comes near this


def read_input(path: str | os.PathLike, what: str = "file",
               max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; ValueError (one line naming the
    file) otherwise.  Opened non-blocking, so a FIFO without a writer cannot hang the caller,
    and checked with fstat on the open descriptor, so what is read is what was checked."""
    p = str(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ValueError(f"{p}: no such {what}") from None
    except OSError as exc:
        raise ValueError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{p}: not a regular file ({_kind(st.st_mode)}); a {what} must be one")
        if st.st_size > max_bytes:
            raise ValueError(f"{p}: {st.st_size} bytes, more than any {what} ({max_bytes})")
        chunks, n = [], 0
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            n += len(b)
            if n > max_bytes:       # grew while being read
                raise ValueError(f"{p}: more than {max_bytes} bytes; not a {what}")
            chunks.append(b)
        return b"".join(chunks)
    except OSError as exc:
        raise ValueError(f"{p}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def output_lock(path: str | os.PathLike):
    """Hold an exclusive lock on `path` as an output for the duration: a second run writing the
    same path at the same time gets one error line instead of silently winning.  The lock is
    flock(2) on a hidden file beside the output (``.NAME.lock``), released when the process
    ends, however it ends.  The file stays: removing it would let two runs lock two files."""
    p = Path(path).absolute()
    d = p.parent
    while not d.is_dir():
        d = d.parent
    lock = d / f".{p.name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ValueError(f"{path}: another run is writing it now; wait for it or "
                                 f"choose another --out") from None
            raise
        yield p
    finally:
        os.close(fd)
