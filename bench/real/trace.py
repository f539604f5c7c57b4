"""Operation traces: record a workload or a real program on a mount, replay it in the simulator.

``record`` runs a registered workload (bench.sim.workload) on a real mount (bench.real.mount.execute) or a
real program (``-- COMMAND ARGS...``, or ``--program NAME`` from bench.real.programs) and saves a
trace; ``replay`` turns a trace into a Workload (``to_workload``) and simulates it under every
strategy.  ``load`` / ``save`` are the only readers and writers of trace files.

File format (little-endian; version 1)
--------------------------------------
  offset 0   magic     8 bytes  b"FWBTRACE"
  offset 8   version   uint32   1
  offset 12  hlen      uint32   length of the header JSON in bytes (1 .. 1 MiB)
  offset 16  header    hlen bytes of UTF-8 JSON (an object, keys below)
             padding   zero bytes up to a multiple of 8
             ops       n_ops rows of bench.sim.ops.OP_DTYPE (40 bytes: time, thread, op, file, _pad,
                       offset, length), sorted by time
             timing    n_ops rows of TIMING_DTYPE (16 bytes: start_ns, end_ns): when the row ran
                       on the mount, relative to the run's time 0; -1, -1 for a row not run
             log       n_log rows of bench.real.mount.LOG_DTYPE (48 bytes: t_recv_ns, t_reply_ns,
                       ino, offset, size, kind 0 WRITE / 1 READ / 2 FSYNC / 3 FLUSH, flags bit 0
                       FUSE_WRITE_CACHE, pid, reserved): the server's request log, times relative
                       to the run's time 0 (negative: before the first operation), sorted by
                       t_recv_ns
  and nothing after.

Header keys: ``format`` ("fwb-trace"), ``version`` (1), ``kind`` ("workload": a registered
generator run by the C driver; "program": a real program's requests), ``name`` (the workload or
program name, or the command's basename), ``params`` (the generator's resolved parameters, or the
program's), ``seed``, ``n_ops``, ``n_log``, ``file_sizes`` (bytes each file holds at the start),
``source`` (how it was recorded: the mount's server options and kernel, the command line, the
map from file index to inode and from thread to pid) and ``provenance``
(bench.results.provenance.collect: package version, git commit, kernel, CPU, date).

Version history:
  1  first version.

Program traces (``from_server_log``): the mount runs write-through (no writeback cache), so the
server sees each write(2) as WRITE requests from the calling thread when it is made.  A row is a
request, not a call: the kernel splits a write(2) at max_write (1 MiB here) and after the first
page when the write starts inside a page (fuse_fill_write_pages), so `pwrite(10000 bytes at
10000)` is two rows, [10000, 12288) and [12288, 20000); the bytes and their order are exact.
Each WRITE becomes a WRITE row at its receive time; FSYNC and FLUSH become
FSYNC rows (FLUSH is close(2): with the writeback cache on, fuse_flush writes the file's dirty
pages back and waits for them, which is what an fsync row does in the simulator); a WRITE that
carries FUSE_WRITE_CACHE came through page-cache writeback of a shared mapping and becomes an
MMAP_STORE row (at its writeback time, which is later than the store).  Files are the inodes
that received a WRITE, numbered in order of their first WRITE; FSYNC/FLUSH of an inode before its
first WRITE (nothing to write back) and READs are not rows.  Threads are the pids of the calling
threads in order of appearance, 0..63; the 65th and later pids fold onto thread ``k % 64``.
Every file starts empty (the mount is fresh).

``to_workload`` adds, for a program trace, one final FSYNC of every file at the end (the
unmount's writeback; the simulator measures makespan to the final fsync).  For a workload trace
it uses the recorded start times as row times (``timing="recorded"``, rows re-sorted stably by
them, which keeps each thread's order) or the generator's schedule (``timing="scheduled"``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.cli import add_machine_option
from bench.results.fileio import check_writable, jsonable, output_lock
from bench.sim.ops import FSYNC, MAX_FILES, MAX_THREADS, MMAP_STORE, OP_DTYPE, WRITE, validate_ops

__all__ = ["Trace", "MAGIC", "VERSION", "TIMING_DTYPE", "LOG_DTYPE", "save", "load", "loads",
           "dumps", "to_workload", "from_server_log", "record_workload", "record_command",
           "record_program", "replay", "add_parsers", "cmd_record", "cmd_replay"]

MAGIC = b"FWBTRACE"
VERSION = 1
MAX_HEADER_BYTES = 1 << 20
PREFIX = 16                                   # magic + version + hlen
TIMING_DTYPE = np.dtype([("start_ns", "<i8"), ("end_ns", "<i8")])
# The server's request log as bench.real.mount reads it (kept here too so that reading a trace does
# not import the mount runner).
LOG_DTYPE = np.dtype([("t_recv_ns", "<i8"), ("t_reply_ns", "<i8"), ("ino", "<u8"),
                      ("offset", "<i8"), ("size", "<u4"), ("kind", "<u2"), ("flags", "<u2"),
                      ("pid", "<u4"), ("reserved", "<u4")])
KIND_WRITE, KIND_READ, KIND_FSYNC, KIND_FLUSH = 0, 1, 2, 3
LOG_KINDS = {KIND_WRITE: "WRITE", KIND_READ: "READ", KIND_FSYNC: "FSYNC", KIND_FLUSH: "FLUSH"}
FLAG_WRITE_CACHE = 1
KINDS = ("workload", "program")
_REQUIRED = {"format": str, "version": int, "kind": str, "name": str, "params": dict,
             "seed": int, "n_ops": int, "n_log": int, "file_sizes": list, "source": dict,
             "provenance": dict}
MAX_ROWS = 1 << 26
# No recorded run lasts this long (2**50 ns: 13 days); a time beyond it is a broken file, and
# would otherwise replay as a run of 0 MB/s.
MAX_TIME_NS = 1 << 50


@dataclass(frozen=True, slots=True, eq=False)
class Trace:
    """A checked trace (see the module docstring); arrays are read-only."""
    header: dict
    ops: np.ndarray
    timing: np.ndarray
    log: np.ndarray

    def __post_init__(self):
        _check(self.header, self.ops, self.timing, self.log)
        for a in (self.ops, self.timing, self.log):
            a.setflags(write=False)

    @property
    def kind(self) -> str:
        return self.header["kind"]

    @property
    def name(self) -> str:
        return self.header["name"]

    @property
    def file_sizes(self) -> np.ndarray:
        return np.array(self.header["file_sizes"], dtype=np.int64)

    def summary(self) -> dict:
        """Counts a person reads after a record: rows, WRITEs, bytes, fsyncs, files, threads."""
        w = self.log[self.log["kind"] == KIND_WRITE]
        code = self.ops["op"]
        return {"rows": len(self.ops), "threads": int(self.ops["thread"].max()) + 1,
                "files": len(self.header["file_sizes"]),
                "write_rows": int((code == WRITE).sum()),
                "fsync_rows": int((code == FSYNC).sum()),
                "bytes_dirtied": int(self.ops["length"][np.isin(code, (WRITE, MMAP_STORE))].sum()),
                "log_writes": len(w), "log_bytes": int(w["size"].sum(dtype=np.int64)),
                "log_fsyncs": int((self.log["kind"] == KIND_FSYNC).sum()),
                "log_flushes": int((self.log["kind"] == KIND_FLUSH).sum())}


# ------------------------------------------------------------------ checking
def _fail(what: str):
    raise ValueError(what)


def _int_in(name: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        _fail(f"header: {name} must be an integer in {lo}..{hi}, got {v!r}"[:200])
    return v


def _check_header(h: Any) -> None:
    if not isinstance(h, dict):
        _fail("header: not a JSON object")
    for key, typ in _REQUIRED.items():
        if key not in h:
            _fail(f"header: missing {key!r}")
        if not isinstance(h[key], typ) or (typ is int and isinstance(h[key], bool)):
            _fail(f"header: {key} must be a {typ.__name__}, got {type(h[key]).__name__}")
    if h["format"] != "fwb-trace":
        _fail(f"header: format must be 'fwb-trace', got {h['format']!r}"[:200])
    if h["version"] != VERSION:
        _fail(f"header: version {h['version']} disagrees with the file's version {VERSION}")
    if h["kind"] not in KINDS:
        _fail(f"header: kind must be one of {', '.join(KINDS)}, got {h['kind']!r}"[:200])
    if not h["name"]:
        _fail("header: name is empty")
    _int_in("seed", h["seed"], 0, (1 << 63) - 1)
    _int_in("n_ops", h["n_ops"], 1, MAX_ROWS)
    _int_in("n_log", h["n_log"], 0, MAX_ROWS)
    sizes = h["file_sizes"]
    if not 1 <= len(sizes) <= MAX_FILES:
        _fail(f"header: file_sizes must list 1..{MAX_FILES} files, got {len(sizes)}")
    for s in sizes:
        _int_in("each file size", s, 0, 1 << 40)


def _check(h: dict, ops: np.ndarray, timing: np.ndarray, log: np.ndarray) -> None:
    """Raise a one-line ValueError naming the first problem of a trace's parts."""
    _check_header(h)
    for name, a, dt in (("ops", ops, OP_DTYPE), ("timing", timing, TIMING_DTYPE),
                        ("log", log, LOG_DTYPE)):
        if not isinstance(a, np.ndarray) or a.dtype != dt or a.ndim != 1:
            _fail(f"{name}: expected a 1-D array of {name} rows")
    if len(ops) != h["n_ops"] or len(timing) != h["n_ops"]:
        _fail(f"rows: header says {h['n_ops']} op rows, got {len(ops)} ops and "
              f"{len(timing)} timing rows")
    if len(log) != h["n_log"]:
        _fail(f"rows: header says {h['n_log']} log rows, got {len(log)}")
    try:
        validate_ops(ops, np.array(h["file_sizes"], dtype=np.int64))
    except ValueError as exc:
        _fail(f"ops: {exc}")
    for name, t in (("ops", ops["time"]), ("timing", timing["end_ns"]),
                    ("log", np.abs(log["t_reply_ns"])), ("log", np.abs(log["t_recv_ns"]))):
        far = np.nonzero(t > MAX_TIME_NS)[0]
        if far.size:
            _fail(f"{name}: row {int(far[0])} at {int(t[far[0]])} ns, more than 2**50 ns (13 "
                  "days) from the run's start: not a recorded run")
    st, en = timing["start_ns"], timing["end_ns"]
    ran = st >= 0
    if ((~ran) & ((st != -1) | (en != -1))).any():
        _fail("timing: a row not run must have start_ns = end_ns = -1")
    if (en[ran] < st[ran]).any():
        i = int(np.nonzero(ran & (en < st))[0][0])
        _fail(f"timing: row {i} ends before it starts")
    if (log["t_reply_ns"] < log["t_recv_ns"]).any():
        i = int(np.nonzero(log["t_reply_ns"] < log["t_recv_ns"])[0][0])
        _fail(f"log: row {i} is replied before it is received")
    bad = np.nonzero(np.diff(log["t_recv_ns"]) < 0)[0]
    if bad.size:
        _fail(f"log: t_recv_ns out of order at row {int(bad[0]) + 1}")
    unknown = ~np.isin(log["kind"], list(LOG_KINDS))
    if unknown.any():
        i = int(np.nonzero(unknown)[0][0])
        _fail(f"log: unknown request kind {int(log['kind'][i])} at row {i}; allowed: "
              + ", ".join(f"{k}={v}" for k, v in LOG_KINDS.items()))


# ------------------------------------------------------------------ bytes
def _pad(n: int) -> int:
    return -n % 8


def dumps(t: Trace) -> bytes:
    """The bytes of a trace file."""
    head = json.dumps(t.header, sort_keys=True, allow_nan=False).encode()
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError(f"header: {len(head)} bytes of JSON; at most {MAX_HEADER_BYTES}")
    prefix = MAGIC + np.array([VERSION, len(head)], "<u4").tobytes()
    return b"".join((prefix, head, bytes(_pad(PREFIX + len(head))), t.ops.tobytes(),
                     t.timing.tobytes(), t.log.tobytes()))


def loads(data: bytes, where: str = "trace") -> Trace:
    """Parse trace bytes; any problem is a one-line ValueError starting with `where`."""
    try:
        return _loads(bytes(data))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _loads(data: bytes) -> Trace:
    if len(data) < PREFIX:
        if not MAGIC.startswith(data[:len(MAGIC)]):
            _fail("bad magic (not an fwb trace)")
        _fail(f"truncated header: {len(data)} bytes, the fixed part alone is {PREFIX}")
    if data[:8] != MAGIC:
        _fail("bad magic (not an fwb trace)")
    version, hlen = (int(x) for x in np.frombuffer(data, "<u4", 2, 8))
    if version != VERSION:
        _fail(f"unsupported version {version} (this reader knows {VERSION})")
    if not 1 <= hlen <= MAX_HEADER_BYTES:
        _fail(f"header length {hlen} out of range 1..{MAX_HEADER_BYTES}")
    body = PREFIX + hlen + _pad(PREFIX + hlen)
    if len(data) < body:
        _fail(f"truncated header: {hlen} bytes of JSON announced, {max(len(data) - PREFIX, 0)} "
              "present")
    try:
        h = json.loads(data[PREFIX:PREFIX + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(f"header: not valid JSON ({str(exc).splitlines()[0]})")
    except RecursionError:
        _fail("header: JSON nested too deeply")
    if any(data[PREFIX + hlen:body]):
        _fail("header: padding after the JSON is not zero")
    _check_header(h)
    n, m = h["n_ops"], h["n_log"]
    sizes = (OP_DTYPE.itemsize * n, TIMING_DTYPE.itemsize * n, LOG_DTYPE.itemsize * m)
    want = body + sum(sizes)
    if len(data) < want:
        _fail(f"truncated rows: the header announces {n} op rows and {m} log rows "
              f"({want - body} bytes), the file holds {len(data) - body}")
    if len(data) > want:
        _fail(f"row counts disagree: {len(data) - want} bytes after the {n} op rows and {m} "
              "log rows the header announces")
    a = body
    ops = np.frombuffer(data, OP_DTYPE, n, a).copy()
    timing = np.frombuffer(data, TIMING_DTYPE, n, a + sizes[0]).copy()
    log = np.frombuffer(data, LOG_DTYPE, m, a + sizes[0] + sizes[1]).copy()
    return Trace(h, ops, timing, log)


def save(t: Trace, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a trace atomically (temp file + rename); refuse to replace a file unless asked."""
    from bench.results.fileio import write_checked
    return write_checked(path, dumps(t), overwrite)


def load(path: str | os.PathLike) -> Trace:
    """Read and check a trace file; a malformed one is a one-line ValueError naming the problem."""
    from bench.results.fileio import read_input
    return loads(read_input(path, "trace"), f"trace {path}")


def make_trace(kind: str, name: str, params: dict, seed: int, ops: np.ndarray,
               timing: np.ndarray, log: np.ndarray, file_sizes, source: dict) -> Trace:
    """A Trace with its header filled in (provenance collected here)."""
    from bench.results import provenance
    h = {"format": "fwb-trace", "version": VERSION, "kind": kind, "name": name,
         "params": jsonable(params), "seed": int(seed), "n_ops": len(ops), "n_log": len(log),
         "file_sizes": [int(s) for s in file_sizes], "source": jsonable(source),
         "provenance": provenance.collect(command="record")}
    return Trace(h, np.ascontiguousarray(ops), np.ascontiguousarray(timing),
                 np.ascontiguousarray(log))


# ------------------------------------------------------------------ conversions
def from_server_log(log: np.ndarray, t0_ns: int = 0):
    """(ops, timing, file_sizes, source) from a write-through mount's log (module docstring).

    `log` is bench.real.mount.LOG_DTYPE records with absolute times; `t0_ns` is the run's time 0
    (the command's start).  Raises ValueError when nothing was written."""
    log = np.asarray(log)
    if log.dtype != LOG_DTYPE:
        raise ValueError("log: expected bench.real.mount.LOG_DTYPE records")
    log = log[np.argsort(log["t_recv_ns"], kind="stable")]
    file_of: dict[int, int] = {}
    thread_of: dict[int, int] = {}
    rows, times = [], []
    for r in log:
        kind, ino = int(r["kind"]), int(r["ino"])
        if kind == KIND_WRITE:
            if r["size"] == 0:
                continue
            if ino not in file_of:
                if len(file_of) == MAX_FILES:
                    raise ValueError(f"program: wrote more than {MAX_FILES} files; the "
                                     "simulator takes at most that many")
                file_of[ino] = len(file_of)
            op = MMAP_STORE if int(r["flags"]) & FLAG_WRITE_CACHE else WRITE
            off, ln = int(r["offset"]), int(r["size"])
        elif kind in (KIND_FSYNC, KIND_FLUSH):
            if ino not in file_of:
                continue          # nothing of this file was written yet: nothing to write back
            op, off, ln = FSYNC, 0, 0
        else:
            continue
        pid = int(r["pid"])
        if pid not in thread_of:
            thread_of[pid] = len(thread_of)
        start, end = int(r["t_recv_ns"]) - t0_ns, int(r["t_reply_ns"]) - t0_ns
        rows.append((max(start, 0), thread_of[pid] % MAX_THREADS, op, file_of[ino], 0, off, ln))
        times.append((max(start, 0), max(end, start, 0)))
    if not rows:
        raise ValueError("program: it wrote nothing to the mount (no WRITE requests)")
    ops = np.array(rows, dtype=OP_DTYPE)
    timing = np.array(times, dtype=TIMING_DTYPE)
    source = {"inodes": list(file_of), "pids": list(thread_of)[:MAX_THREADS],
              "pids_folded": max(len(thread_of) - MAX_THREADS, 0)}
    return ops, timing, [0] * len(file_of), source


def to_workload(t: Trace, timing: str = "recorded"):
    """The trace's operations as a bench.sim.workload.Workload (module docstring)."""
    from bench.sim import workload
    if timing not in ("recorded", "scheduled"):
        raise ValueError(f"timing: must be recorded or scheduled, got {timing!r}")
    ops = np.array(t.ops)
    if t.kind == "workload" and timing == "recorded":
        start = t.timing["start_ns"].astype(np.int64)
        # A row not run (a skipped compaction) keeps its thread's previous start.
        for th in np.unique(ops["thread"]):
            mine = ops["thread"] == th
            start[mine] = np.maximum.accumulate(np.maximum(start[mine], 0))
        ops["time"] = start
        ops = ops[np.argsort(ops["time"], kind="stable")]
    elif t.kind == "program":
        n_files = len(t.header["file_sizes"])
        tail = np.zeros(n_files, OP_DTYPE)
        tail["time"], tail["op"], tail["file"] = ops["time"][-1], FSYNC, np.arange(n_files)
        ops = np.concatenate([ops, tail])
    params = {k: v for k, v in t.header["params"].items()
              if k in ("stall_start_ns", "stall_ns")} if t.kind == "workload" else {}
    return workload.from_arrays(ops, t.file_sizes, name=f"trace:{t.name}", params=params)


# ------------------------------------------------------------------ recording
def _split(name: str, params: dict) -> tuple[dict, dict]:
    from bench.sim import workload
    own = workload.workload_params(name)
    return ({k: v for k, v in params.items() if k in own},
            {k: v for k, v in params.items() if k not in own})


def record_workload(name: str, seed: int = 0, **params: Any) -> Trace:
    """Run a registered workload on a real mount; its rows, their real times and the log."""
    from bench.real import mount
    from bench.sim import workload
    gen, server = _split(name, params)
    wl = workload.make(name, seed=seed, mem_total_pages=workload.REAL_RUN_MEM_PAGES, **gen)
    _check_mount_params(server)
    r = mount.execute(wl, seed, **server)
    run = r.start_ns >= 0
    timing = np.full(len(wl.ops), -1, TIMING_DTYPE)
    ok = run & (r.latency_ns >= 0)
    timing["start_ns"][ok] = r.start_ns[ok]
    timing["end_ns"][ok] = r.start_ns[ok] + r.latency_ns[ok]
    log = _relative_log(r.log, r.t0_ns)
    source = {"engine": "mount", "kernel": r.info.get("kernel"), "server": r.info.get("server"),
              "family": r.info.get("family"), "server_params": server}
    return make_trace("workload", name, wl.params, seed, wl.ops, timing, log, wl.file_sizes,
                      source)


def _check_mount_params(server: dict) -> None:
    """What bench.real.mount reads without checking, checked before a mount is made."""
    if "timeout_s" in server:
        v = server["timeout_s"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1e9:
            raise ValueError(f"timeout_s: must be a number of seconds > 0, got {v!r}")
    if "stalls" in server:
        try:
            [(int(a), int(b)) for a, b in server["stalls"]]
        except (TypeError, ValueError):
            raise ValueError("stalls: expected a list of (start_ns, length_ns) pairs") from None
    from bench.sim.params import PARAM_BY_NAME, _check_int
    for key in ("stall_start_ns", "stall_ns"):
        if key in server:
            p = PARAM_BY_NAME[key]
            _check_int(key, server[key], p.lo, p.hi)


def _relative_log(log: np.ndarray, t0: int) -> np.ndarray:
    out = np.array(log, dtype=LOG_DTYPE)
    out["t_recv_ns"] -= t0
    out["t_reply_ns"] -= t0
    return out[np.argsort(out["t_recv_ns"], kind="stable")]


def record_command(argv: list[str], timeout_s: float = 60.0, env: dict | None = None,
                   name: str | None = None, params: dict | None = None, seed: int = 0,
                   max_write: int = 1 << 20) -> Trace:
    """Run a real program on a write-through mount (its working directory) and trace it."""
    from bench.real import mount
    if not argv:
        raise ValueError("record: no command after --")
    opts = mount.ServerOptions(writeback_cache=False, max_write=max_write)
    r = mount.run_command(list(argv), timeout_s=timeout_s, env=env, options=opts)
    ops, timing, sizes, source = from_server_log(r.log, r.t0_ns)
    source.update({"engine": "mount", "writeback_cache": False, "argv": list(argv),
                   "kernel": r.info["kernel"], "server": r.info["server"],
                   "command_ns": r.t_end_ns - r.t0_ns})
    return make_trace("program", name or Path(argv[0]).name, params or {}, seed, ops, timing,
                      _relative_log(r.log, r.t0_ns), sizes, source)


def record_program(name: str, seed: int = 0, timeout_s: float = 120.0, **params: Any) -> Trace:
    """Run one of bench.real.programs' standard programs and trace it."""
    from bench.real import programs
    with tempfile.TemporaryDirectory(prefix="fwb-prog-") as scratch:
        argv, env, resolved = programs.command(name, Path(scratch), seed=seed, **params)
        return record_command(argv, timeout_s=timeout_s, env=env, name=name, params=resolved,
                              seed=seed)


# ------------------------------------------------------------------ replay
def replay(t: Trace, seeds: int = 1, engine: str | None = None, timing: str = "recorded",
           strategies: list[str] | None = None, **params: Any):
    """Simulate the trace under every strategy and seed: a bench.results.Suite."""
    from bench.sim import _cengine
    from bench.results import provenance
    from bench import results, sim
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"--seeds: must be >= 1, got {seeds!r}")
    engine = engine or ("c" if _cengine.available() else "python")
    wl = to_workload(t, timing)
    names = strategies or sim.strategies()
    runs = tuple(sim.run(s, wl, seed=seed, engine=engine, **params)
                 for s in names for seed in range(seeds))
    from bench.sim import params as _sim_params
    md = provenance.collect(command="replay", engine=engine, seeds=seeds, params=params,
                            trace={"kind": t.kind, "name": t.name, "rows": len(t.ops),
                                   "timing": timing},
                            machine=_sim_params.machine_provenance())
    return results.Suite(md, runs)


# ------------------------------------------------------------------ command line
class _SplitParser(argparse.ArgumentParser):
    """Keeps what follows the first ``--`` as ``command`` (argparse would mix it with the
    positional WORKLOAD, and `record -o T -- ls` must not mean the workload `ls`)."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        command = None
        if "--" in args:
            i = args.index("--")
            args, command = args[:i], args[i + 1:]
        ns, rest = super().parse_known_args(args, namespace)
        ns.command = command
        return ns, rest


def add_parsers(subparsers) -> None:
    """Add the `record` and `replay` verbs to the CLI's sub-parsers."""
    p = subparsers.add_parser(
        "record", help="run a workload or a real program on a real mount and save its trace",
        usage="%(prog)s [WORKLOAD | --program NAME | -- COMMAND ARGS...] -o TRACE [options]",
        description="Record a trace: a registered workload run by the C driver, one of the "
                    "standard real programs (--program; see --list-programs), or any command "
                    "after `--`, run with the mount as its working directory and the writeback "
                    "cache off.")
    # the one hook argparse offers for `--`; no state is added (and the CLI's one-line errors kept)
    p.__class__ = type("_SplitParser", (_SplitParser, type(p)), {})
    p.add_argument("workload", nargs="?", help="a registered workload (python -m bench list)")
    p.add_argument("--program", metavar="NAME", help="a standard real program")
    p.add_argument("--list-programs", action="store_true", help="list the standard programs")
    p.add_argument("-o", "--out", metavar="TRACE", help="trace file to write")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a workload, program or server parameter (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the workload (default 0)")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S",
                   help="time allowed to a program (default 120 s)")
    p.add_argument("--force", action="store_true", help="replace TRACE if it exists")
    p.set_defaults(func=cmd_record)
    p = subparsers.add_parser("replay", help="simulate a recorded trace under every strategy")
    p.add_argument("trace", metavar="TRACE")
    p.add_argument("--seeds", type=int, default=1, help="seeds per strategy (default 1)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a model, server or strategy parameter (repeatable)")
    p.add_argument("--engine", choices=("c", "python"),
                   help="simulator engine (default c, python when the C engine is not built)")
    p.add_argument("--timing", choices=("recorded", "scheduled"), default="recorded",
                   help="a workload trace's row times: as run on the mount (default) or as "
                        "generated")
    p.add_argument("--baseline", default="merge-in-queue", help="strategy the others are compared with")
    p.add_argument("--out", metavar="RESULT.json", help="also write the runs as a result file")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    add_machine_option(p)
    p.set_defaults(func=cmd_replay)


def _params(pairs: list[str] | None) -> dict:
    from bench.cli import parse_pairs as parse
    return parse(pairs)


def cmd_record(args: argparse.Namespace) -> int:
    from bench.real import programs
    if args.list_programs:
        sys.stdout.write(programs.render_list())
        return 0
    modes = [m for m, on in (("WORKLOAD", args.workload), ("--program", args.program),
                             ("-- COMMAND", args.command)) if on]
    if len(modes) != 1:
        raise ValueError("record: give exactly one of WORKLOAD, --program NAME or -- COMMAND "
                         f"(got {', '.join(modes) or 'none'})")
    if not args.out:
        raise ValueError("record: -o TRACE is required")
    check_writable(args.out, args.force, "pass --force to replace it")   # before the mount
    with output_lock(args.out):       # a second run writing the same trace: one error line
        return _record(args)


def _record(args: argparse.Namespace) -> int:
    if not 0 <= args.seed < 1 << 63:
        raise ValueError(f"--seed: must be in 0..2**63-1, got {args.seed}")
    if not 0 < args.timeout < 1e9:          # also rejects nan
        raise ValueError(f"--timeout: must be a number of seconds > 0, got {args.timeout}")
    params = _params(args.param)
    if args.command:
        if params:
            raise ValueError("--param: a command takes no parameters (set them in its arguments)")
        t = record_command(args.command, timeout_s=args.timeout, seed=args.seed)
    elif args.program:
        t = record_program(args.program, seed=args.seed, timeout_s=args.timeout, **params)
    else:
        t = record_workload(args.workload, seed=args.seed, **params)
    save(t, args.out, overwrite=args.force)
    s = t.summary()
    print(f"trace: {args.out}: {t.kind} {t.name}: {s['rows']} rows ({s['write_rows']} write, "
          f"{s['fsync_rows']} fsync), {s['threads']} thread(s), {s['files']} file(s), "
          f"{s['bytes_dirtied']} bytes dirtied; server log: {s['log_writes']} WRITEs, "
          f"{s['log_bytes']} bytes, {s['log_fsyncs']} FSYNCs, {s['log_flushes']} FLUSHes")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from bench import sim
    from bench.cli import check_seeds
    from bench.sim import machine
    check_seeds(args.seeds)
    active = machine.use(args)
    if args.baseline not in sim.strategies():
        raise ValueError(f"--baseline: {args.baseline!r} is not among the strategies run "
                         f"({', '.join(sim.strategies())})")
    if args.out:
        check_writable(args.out, args.force, inputs=(args.trace,))   # before the runs
        with output_lock(args.out):   # a second run writing the same file: one error line
            return _replay(args, active)
    return _replay(args, active)


def _replay(args: argparse.Namespace, active) -> int:
    from bench.results import compare
    from bench import results
    from bench.sim import machine
    t = load(args.trace)
    suite = replay(t, seeds=args.seeds, engine=args.engine, timing=args.timing,
                   **_params(args.param))
    if args.out:
        results.dump(suite, args.out, overwrite=args.force)
    eng = suite.metadata["engine"]
    title = lambda w: (f"{w}: replay of {args.trace}, {args.seeds} seed(s), {eng} engine, "  # noqa: E731
                       f"base {args.baseline}, machine {machine.label(active)}")
    sys.stdout.write(compare.render(compare.rows(suite, args.baseline), title))
    return 0
