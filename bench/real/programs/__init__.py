"""The standard real programs: what ``python -m bench record --program NAME -o TRACE`` runs.

Each program is a command line made here and run by bench.real.trace.record_command with a fresh
write-through mount as its working directory; sizes are small by default so that a record takes
seconds.  Parameters (``--param K=V``) are integers with a range.

  fio-seq-write   fio, seq-write.fio: sequential buffered write(2)s of one new file, fsync at end
  fio-rand-write  fio, rand-write.fio: random buffered writes over a new file with an fsync
                  every `fsync_every` writes and at the end
  sqlite-inserts  python's sqlite3 in a child process (sqlite_inserts.py): `commits`
                  transactions of `rows` inserts each (rollback journal, synchronous=FULL)
  tar-extract     tar -xf of an archive made on the fly (outside the mount) from `files`
                  generated files in nested directories
  git-commits     git init, then `commits` commits of `files` files (git_commits.py)

The job files and helper scripts live next to this module (package data: *.fio, *.py).
"""
from __future__ import annotations

import io
import os
import random
import shutil
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["Program", "PROGRAMS", "names", "command", "render_list"]

HERE = Path(__file__).resolve().parent
KiB, MiB = 1 << 10, 1 << 20


@dataclass(frozen=True, slots=True)
class PParam:
    default: int
    lo: int
    hi: int
    doc: str


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    doc: str
    needs: tuple[str, ...]              # executables that must be on PATH
    apt: tuple[str, ...]                # where they come from on Debian/Ubuntu
    params: dict[str, PParam]
    build: Callable[[Path, dict, int], tuple[list[str], dict[str, str]]]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "FWB_"))}
    env.update(extra)
    return env


def _fio(job: str):
    def build(scratch: Path, p: dict, seed: int):
        return (["fio", "--output-format=terse", str(HERE / job)],
                _env(FWB_SIZE=str(p["size"]), FWB_BS=str(p["bs"]),
                     FWB_FSYNC=str(p.get("fsync_every", 0))))
    return build


def _sqlite(scratch: Path, p: dict, seed: int):
    return ([sys.executable, str(HERE / "sqlite_inserts.py"), str(p["commits"]), str(p["rows"]),
             str(p["row_bytes"])], _env())


def _tar(scratch: Path, p: dict, seed: int):
    """An archive of `files` files (sizes drawn up to max_bytes) in d0/, d0/sub/ and d1/."""
    rnd = random.Random(seed)
    archive = scratch / "files.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        dirs = ("d0", "d0/sub", "d1")
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            tar.addfile(info)
        for i in range(p["files"]):
            data = rnd.randbytes(rnd.randint(1, p["max_bytes"]))
            info = tarfile.TarInfo(f"{dirs[i % len(dirs)]}/file{i}.bin")
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return ["tar", "-xf", str(archive)], _env()


def _git(scratch: Path, p: dict, seed: int):
    when = "2026-01-01T00:00:00Z"
    return ([sys.executable, str(HERE / "git_commits.py"), str(p["commits"]), str(p["files"]),
             str(p["file_bytes"]), str(seed)],
            _env(HOME=str(scratch), GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="fwb",
                 GIT_AUTHOR_EMAIL="fwb@example.invalid", GIT_COMMITTER_NAME="fwb",
                 GIT_COMMITTER_EMAIL="fwb@example.invalid", GIT_AUTHOR_DATE=when,
                 GIT_COMMITTER_DATE=when))


PROGRAMS: dict[str, Program] = {p.name: p for p in (
    Program("fio-seq-write", "fio: sequential buffered writes of a new file, fsync at the end",
            ("fio",), ("fio",),
            {"size": PParam(4 * MiB, 4 * KiB, 1 << 34, "bytes written"),
             "bs": PParam(64 * KiB, 512, 16 * MiB, "bytes per write(2)")},
            _fio("seq-write.fio")),
    Program("fio-rand-write", "fio: random buffered writes of a new file, fsync every N writes",
            ("fio",), ("fio",),
            {"size": PParam(2 * MiB, 4 * KiB, 1 << 34, "file size = bytes of random writes"),
             "bs": PParam(4 * KiB, 512, 16 * MiB, "bytes per write(2)"),
             "fsync_every": PParam(64, 0, 1 << 20, "fsync after this many writes (0: only at "
                                   "the end)")},
            _fio("rand-write.fio")),
    Program("sqlite-inserts", "SQLite (python sqlite3, child process): committed inserts",
            (), (),
            {"commits": PParam(20, 1, 100_000, "transactions"),
             "rows": PParam(10, 1, 100_000, "inserts per transaction"),
             "row_bytes": PParam(200, 1, 1 << 20, "payload bytes per row")},
            _sqlite),
    Program("tar-extract", "tar -xf of a generated archive (nested directories)",
            ("tar",), ("tar",),
            {"files": PParam(12, 1, 1000, "files in the archive"),
             "max_bytes": PParam(64 * KiB, 1, 64 * MiB, "largest file; sizes are drawn 1..this")},
            _tar),
    Program("git-commits", "git init and commits (objects, index, refs, logs)",
            ("git",), ("git",),
            {"commits": PParam(2, 1, 100, "commits"),
             "files": PParam(6, 1, 200, "files in the work tree"),
             "file_bytes": PParam(2000, 1, 1 * MiB, "bytes per file")},
            _git),
)}


def names() -> list[str]:
    return list(PROGRAMS)


def get(name: str) -> Program:
    prog = PROGRAMS.get(name)
    if prog is None:
        raise ValueError(f"--program: unknown {name!r}; known: {', '.join(PROGRAMS)}")
    return prog


def command(name: str, scratch: Path, seed: int = 0, **params) -> tuple[list[str], dict, dict]:
    """(argv, environment, resolved parameters) of program `name`; its files go in `scratch`
    (a directory outside the mount).  Bad names or values raise a one-line ValueError; a missing
    executable raises RuntimeError naming the package to install."""
    prog = get(name)
    for key in params:
        if key not in prog.params:
            raise ValueError(f"{name}: unknown parameter {key!r}; allowed: "
                             f"{', '.join(prog.params) or 'none'}")
    values = {}
    for key, p in prog.params.items():
        v = params.get(key, p.default)
        if isinstance(v, bool) or not isinstance(v, int) or not p.lo <= v <= p.hi:
            raise ValueError(f"{key}: must be an integer in {p.lo}..{p.hi}, got {v!r}")
        values[key] = v
    for exe, pkg in zip(prog.needs, prog.apt):
        if shutil.which(exe) is None:
            raise RuntimeError(f"{name}: {exe} not found; apt-get install {pkg}")
    argv, env = prog.build(scratch, values, seed)
    return argv, env, values


def render_list() -> str:
    lines = ["programs (record --program NAME [--param K=V ...]):"]
    for p in PROGRAMS.values():
        lines.append(f"  {p.name:<16}{p.doc}")
        for k, pp in p.params.items():
            lines.append(f"      {k}={pp.default}  {pp.doc}")
    return "\n".join(lines) + "\n"
