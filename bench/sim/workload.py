"""Workloads: seeded generators of operation arrays for the engines.

A workload is a name, an ``OP_DTYPE`` array (bench.sim.ops) sorted by time, the initial size of every
file (the server holds those bytes at the start) and the parameters that made it.  ``make`` runs a
registered generator; ``from_arrays`` wraps arrays from elsewhere; ``make(w.name, **w.params)``
rebuilds ``w``.  seq-write and rand-write (uniform or zipf) of more than ``STREAM_ROWS`` rows
(2**22) give a ``StreamedWorkload`` instead, whose rows are made in chunks as the engines run
them (bench.sim.stream), up to 2**30 rows.  A named preset (``_preset``: seq-write-128k, ...) is a generator with some
parameters held by its name and other defaults.

Determinism: the same name, parameters and seed give byte-identical arrays on any machine and numpy
version.  numpy keeps the output of its bit generators stable (PCG64 seeded via SeedSequence, read
with ``random_raw``) but not the algorithms of ``Generator.integers/random/choice/zipf/shuffle``,
which have changed between releases; so every draw is ``PCG64(seed).random_raw`` turned into values
by our own integer math (``_Stream``).  The zipf table is summed in a fixed order with Python floats
(math.log/exp), not numpy's vectorised power, whose SIMD code differs by CPU.  ``OP_DTYPE`` is
little-endian, so ``ops.tobytes()`` is the same everywhere.

Times: a row's time is its earliest start (ns); the engine starts a thread's row k at
``max(time_k, end of row k-1)``.  Time 0 everywhere means back to back, and ``think_ns`` /
``interval_ns`` pace start times; they are not sleeps after calls of unknown length.
"""
from __future__ import annotations

import inspect
import itertools
import math
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable

import numpy as np

from bench.sim import params as _params, stream as _stream
from bench.sim.params import SERVER_DISTS
from bench.sim.ops import (ALLOC, COMPACT, DIO_READ, FREE, FSYNC, MAX_FILE_BYTES, MAX_THREADS,
                       MMAP_STORE, MSYNC, OP_DTYPE, PAGE_SIZE, SYNC, WRITE, validate_ops)

__all__ = ["Workload", "StreamedWorkload", "StreamedError", "Param", "GeneratorSpec", "WORKLOADS", "workload_names",
           "workload_params", "make", "from_arrays"]

KiB, MiB = 1 << 10, 1 << 20
MS, S = 1_000_000, 1_000_000_000
# Caps keep arrays in memory and times inside int64: rows * ns <= 2**22 * 2**38 = 2**60.
MAX_ROWS = 1 << 22
# seq-write and rand-write (but randmap) stream their rows past STREAM_ROWS of them, up to the
# engine's MAX_OPS (bench.sim.stream); tests lower STREAM_ROWS to stream small workloads.
STREAM_ROWS = MAX_ROWS
MAX_STREAM_ROWS = _stream.MAX_OPS
STREAM_BLOCK = 1 << 16  # rows a streamed generator makes at once
MAX_NS = 1 << 38        # about 275 s for one parameter
MAX_HOT_PAGES = 1 << 20  # the zipf table is built in a Python loop
DIRTYING_OPS = (WRITE, MMAP_STORE, DIO_READ)


@dataclass(frozen=True, slots=True, eq=False)
class Workload:
    """An operation array with its files and the parameters that made it (arrays are read-only)."""
    name: str
    ops: np.ndarray
    file_sizes: np.ndarray
    params: dict

    def __post_init__(self):
        validate_ops(self.ops, self.file_sizes)
        if self.file_sizes.dtype != np.int64:
            raise ValueError(f"file_sizes: must be int64, got {self.file_sizes.dtype}")
        self.ops.setflags(write=False)   # a frozen record should not change under the engine
        self.file_sizes.setflags(write=False)

    @property
    def threads(self) -> int:
        return int(self.ops["thread"].max()) + 1

    def bytes_dirtied(self) -> int:
        """Total length of the WRITE, MMAP_STORE and DIO_READ rows."""
        return int(self.ops["length"][np.isin(self.ops["op"], DIRTYING_OPS)].sum())


class StreamedError(ValueError):
    """Raised for the array of a StreamedWorkload: what needs one (a real mount, a guest, a
    trace) cannot run it."""


@dataclass(frozen=True, slots=True, eq=False)
class StreamedWorkload:
    """A workload of more than STREAM_ROWS rows, made as the engines run it (bench.sim.stream):
    only the simulator runs one; anything that needs the array (a real mount, a guest, a trace)
    gets a one-line ValueError (StreamedError) from ``ops``."""
    name: str
    stream: _stream.OpStream
    params: dict

    @property
    def file_sizes(self) -> np.ndarray:
        return self.stream.file_sizes

    @property
    def threads(self) -> int:
        return self.stream.threads

    @property
    def ops(self) -> np.ndarray:
        raise StreamedError(f"workload {self.name}: its {self.stream.n_ops} operations are "
                            f"streamed (more than {STREAM_ROWS}); only the simulator runs a "
                            "streamed workload")


@dataclass(frozen=True, slots=True)
class Param:
    """A generator parameter: type, default, one-line doc and allowed values."""
    kind: type                 # int, float or str
    default: int | float | str | None
    doc: str
    lo: int | float | None = None
    hi: int | float | None = None
    choices: tuple[str, ...] = ()
    same_as: str | None = None  # default None: take this (earlier) parameter's value
    per_memory: Callable[[int], int] | None = None  # default None: this of the memory, in bytes
    fixed: bool = False        # a named preset holds it at its default (seq-write-128k's block)


@dataclass(frozen=True, slots=True)
class GeneratorSpec:
    name: str
    fn: Callable
    params: dict[str, Param]
    doc: str


# Parameter kinds; Param's positional order is (kind, default, doc).
_size = partial(Param, int, lo=1, hi=MAX_FILE_BYTES)   # bytes
_count = partial(Param, int, lo=1, hi=MAX_ROWS)
_ns = partial(Param, int, lo=0, hi=MAX_NS)
_threads = partial(Param, int, doc="application threads", lo=1, hi=MAX_THREADS)
_choice = partial(Param, str)

WORKLOADS: dict[str, GeneratorSpec] = {}   # insertion order is the suite order

# A workload may carry server parameters (their docs start "server parameter:"): the engine and
# a real mount take them from workload.params unless the caller gives them.  The seed thread's
# server: several threads, each reply waiting an exponential time off CPU (a server backed by a
# disk or a network), the table defaults of bench.sim.params for its mean.
SEED_SERVER = dict(
    server_threads=Param(int, 4, "server parameter: threads reading requests", 1, 256),
    server_dist=_choice("exponential", "server parameter: service-time distribution",
                        choices=SERVER_DISTS),
    server_base_ns=_ns(20_000, "server parameter: mean service time of a request, fixed part",
                       lo=1),
    server_page_ns=_ns(2000, "server parameter: mean service time per page carried"),
    server_cpu_pct=Param(int, 0, "server parameter: share of a service time on a CPU", 0, 100))


# A real run (a mount on this machine, a guest) builds memory-relative sizes for this memory,
# the table's 2 GiB, unless the caller gives them: mem-pressure then allocates 2000 MiB of real
# memory, as before machine profiles, not most of a shared machine or more than a guest has.
REAL_RUN_MEM_PAGES = 524288


def _per_2gib(size: int, memory: int) -> int:
    """`size` per 2 GiB of `memory` bytes, in whole pages (one at least)."""
    return max(PAGE_SIZE, size * memory // (2048 * MiB) // PAGE_SIZE * PAGE_SIZE)


def _register(name, **params):
    def add(fn):
        WORKLOADS[name] = GeneratorSpec(name, fn, params, inspect.getdoc(fn) or "")
        return fn
    return add


def _check(field: str, p: Param, value):
    """The validated value of one parameter, or a one-line ValueError naming the field."""
    if p.fixed:
        if isinstance(value, (bool, np.bool_)) or value != p.default:
            raise ValueError(f"{field}: this workload's name fixes it at {p.default}, "
                             f"got {value!r} (vary it on the workload the name is built on)")
        return p.default
    if p.kind is str:
        if value not in p.choices:
            raise ValueError(f"{field}: must be one of {', '.join(p.choices)}; got {value!r}")
        return value
    types = (int, np.integer) + ((float, np.floating) if p.kind is float else ())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, types):
        want = "a number" if p.kind is float else "an integer"
        raise ValueError(f"{field}: must be {want}, got {value!r}")
    value = p.kind(value)
    if not math.isfinite(value) or not p.lo <= value <= p.hi:
        if p.hi <= 1024:               # a short range reads best as a range
            raise ValueError(f"{field}: must be in {p.lo}..{p.hi}, got {value}")
        if not value <= p.hi:
            raise ValueError(f"{field}: must be <= {p.hi}, got {value}")
        rule = "> 0" if p.lo == 1 else f">= {p.lo}"
        raise ValueError(f"{field}: must be {rule}, got {value}")
    return value


def _limit(field: str, rows: int) -> None:
    if rows > MAX_ROWS:
        raise ValueError(f"{field}: would make {rows} operations; the limit is {MAX_ROWS}")


def _at_most(field: str, value: int, limit: int, what: str) -> None:
    if value > limit:
        raise ValueError(f"{field}: must be <= {what} ({limit}), got {value}")


class _Stream:
    """Draws from PCG64(seed).random_raw with our own math, so they never change with numpy."""

    def __init__(self, seed: int, skip: int = 0):
        self.seed = seed
        self._bits = np.random.PCG64(seed)   # seeded through SeedSequence: stable too
        if skip:
            self._bits.advance(skip)         # as if skip draws had been made (one step each)

    def below(self, n: int, size: int) -> np.ndarray:
        """size integers in [0, n): the top 53 bits modulo n (bias < n / 2**53, negligible)."""
        return ((self._bits.random_raw(size) >> 11) % n).astype(np.int64)

    def uniform(self, size: int) -> np.ndarray:
        """size floats in [0, 1) with 53 random bits each (exact conversion)."""
        return (self._bits.random_raw(size) >> 11).astype(np.float64) * 2.0 ** -53

    def permutations(self, rows: int, n: int) -> np.ndarray:
        """rows independent permutations of range(n): a stable argsort of raw draws."""
        raw = self._bits.random_raw(rows * n).reshape(rows, n)
        return np.argsort(raw, axis=1, kind="stable").astype(np.int64)


def _rows(time, thread, op, file=0, offset=0, length=0) -> np.ndarray:
    """OP_DTYPE rows from columns (arrays or scalars, broadcast together)."""
    cols = (time, thread, op, file, offset, length)
    cols = np.broadcast_arrays(*(np.atleast_1d(c) for c in cols))
    out = np.zeros(len(cols[0]), OP_DTYPE)
    for name, col in zip(("time", "thread", "op", "file", "offset", "length"), cols):
        out[name] = col
    return out


def _sync_every(rows: np.ndarray, k: int, op: int, file: int, offset=0, length=0) -> np.ndarray:
    """Insert an `op` row after every k-th row of one thread's rows, at that row's time.

    Never after the last row (the final fsync follows there); k = 0 inserts nothing."""
    if k <= 0:
        return rows
    pos = np.arange(k, len(rows), k)
    return np.insert(rows, pos, _rows(rows["time"][pos - 1], rows["thread"][0], op, file,
                                      offset, length))


def _final_fsync(rows: np.ndarray, files) -> np.ndarray:
    """Append the final fsync of every file the thread wrote (makespan is measured to it)."""
    return np.concatenate([rows, _rows(rows["time"][-1], rows["thread"][0], FSYNC, files)])


def _blocks(size: int, block: int, extra_rows: int = 1):
    """Offsets and lengths of the blocks covering [0, size); the last one may be short.

    Checked against MAX_ROWS (with the thread's other rows) before anything is allocated."""
    _limit("block_size", -(-size // block) + extra_rows)
    off = np.arange(-(-size // block), dtype=np.int64) * block
    return off, np.minimum(block, size - off)


# ---- generators: fn(stream, **params) -> (rows of each thread in program order, file sizes) ----

def _layout(thread: int, file: int, size: int, block: int) -> np.ndarray:
    """fio's lay-out before the job (overwrite=1): sequential writes of `block` bytes over
    [0, size) of a new file at time 0, then fsync, so the measured writes find every page cached
    and clean."""
    off, ln = _blocks(size, block)
    return np.concatenate([_rows(0, thread, WRITE, file, off, ln), _rows(0, thread, FSYNC, file)])


# What the block size means on a mainline kernel, said once for the generators that take one.
FOLIO_NOTE = """\
On a kernel with large folios in the page cache of a FUSE file (Joanne Koong's series "fuse:
enable large folios", posted to linux-fsdevel in 2024: fuse_init_file_inode sets the mapping's
folio orders 0..ilog2(min(max_write / PAGE_SIZE, max_pages))), a buffered write asks for a folio
of the order of its own length (fs/iomap/buffered-io.c: iomap_get_folio passes
fgf_set_order(len) to __filemap_get_folio), so the write size decides the folio size, up to
that cap: 128 KiB writes make 128 KiB folios, 1 MiB writes 1 MiB folios when max_pages allows
256 pages (128 KiB with the default 32).  With iomap's per-block dirty state (struct
iomap_folio_state: a dirty bit per block) writeback sends only the dirty blocks of a folio;
without it the whole folio.  Which release merged each piece was not checked here."""


@_register(
    "seq-write",
    threads=_threads(1),
    file_size=_size(64 * MiB, "bytes written to each thread's own file, which starts empty"),
    block_size=_size(1 * MiB, "bytes per write(2); the last write may be shorter"),
    think_ns=_ns(0, "spacing of successive write start times (0: back to back)"),
    overwrite=Param(int, 0, "1: lay the file out first (sequential block_size writes, fsync), "
                    "as fio's overwrite=1, so the writes overwrite cached clean pages", 0, 1))
def _seq_write(s, threads, file_size, block_size, think_ns, overwrite):
    """Sequential write(2) from offset 0 of a new file (one per thread), then fsync.

    The baseline: whole-page appends never need a READ and fill max_pages requests.

    overwrite=1 is fio's overwrite=1: before the job, fio lays the file out with sequential
    writes of the job's largest block size and fsyncs it (filesetup.c, extend_file, with
    create_fsync on by default); the measured writes then overwrite pages that are in the page
    cache and clean.  The model has no read op, so the lay-out is how a file gets cached.  (fio
    itself drops the file's pages before the job with fadvise DONTNEED unless invalidate=0; the
    cached case is fio with invalidate=0.)  The lay-out rows are part of the run: its metrics
    cover both phases, and think_ns paces start times from time 0, so with a lay-out the first
    measured writes start late and run back to back until they meet the schedule."""
    per = (-(-file_size // block_size) + 1) * (1 + overwrite)    # rows of one thread
    if threads * per > STREAM_ROWS:
        return _seq_write_stream(threads, file_size, block_size, think_ns, overwrite, per)
    _limit("block_size", threads * per)
    off, ln = _blocks(file_size, block_size)
    parts = []
    for t in range(threads):
        rows = _rows(np.arange(len(off)) * think_ns, t, WRITE, t, off, ln)
        if overwrite:
            rows = np.concatenate([_layout(t, t, file_size, block_size), rows])
        parts.append(_final_fsync(rows, [t]))
    return parts, [0] * threads


def _stream_limit(field: str, rows: int, last_ns: int) -> None:
    """A streamed workload's bounds: rows, and times inside int64."""
    if rows > MAX_STREAM_ROWS:
        raise ValueError(f"{field}: would make {rows} operations; the limit is {MAX_STREAM_ROWS}")
    if last_ns > 1 << 62:
        raise ValueError(f"think_ns: the last write would start at {last_ns} ns; at most 2**62")


def _seq_blocks(thread: int, file: int, size: int, block: int, think_ns: int):
    """_rows of the sequential writes of `block` bytes over [0, size) at i * think_ns, made
    STREAM_BLOCK at a time."""
    n = -(-size // block)
    for lo in range(0, n, STREAM_BLOCK):
        i = np.arange(lo, min(lo + STREAM_BLOCK, n), dtype=np.int64)
        yield _rows(i * think_ns, thread, WRITE, file, i * block, np.minimum(block, size - i * block))


def _seq_write_stream(threads, file_size, block_size, think_ns, overwrite, per):
    """seq-write's rows as a stream: the same rows as its array, thread by thread."""
    n = -(-file_size // block_size)
    _stream_limit("block_size", threads * per, (n - 1) * think_ns)

    def rows(t):
        if overwrite:
            yield from _seq_blocks(t, t, file_size, block_size, 0)
            yield _rows(0, t, FSYNC, t)
        yield from _seq_blocks(t, t, file_size, block_size, think_ns)
        yield _rows((n - 1) * think_ns, t, FSYNC, t)
    # each file's capacity is its pages: every write lies inside [0, file_size)
    return _stream.OpStream(threads, np.zeros(threads, np.int64),
                            np.full(threads, -(-file_size // PAGE_SIZE), np.int64),
                            threads * per, rows)


@_register(
    "rand-write",
    threads=_threads(1),
    file_size=_size(64 * MiB, "size of the pre-existing shared file"),
    block_size=_size(4096, "bytes per write(2) (byte-granular: partial pages need a READ)"),
    align=_size(None, "write offsets are multiples of this (default: block_size)",
                same_as="block_size"),
    writes=_count(16384, f"write(2) calls per thread (past {MAX_ROWS} rows in all, streamed)",
                  hi=MAX_STREAM_ROWS),
    distribution=_choice("uniform", "how offsets are drawn: uniform (with replacement), zipf "
                         "over a hot set, or randmap (every block once, in random order)",
                         choices=("uniform", "zipf", "randmap")),
    zipf_s=Param(float, 1.1, "zipf exponent: weight of the k-th hottest page is k**-s", 0.0, 10.0),
    hot_pages=Param(int, 4096, "zipf hot set size in pages, spread over the file", 1,
                    MAX_HOT_PAGES),
    think_ns=_ns(0, "spacing of successive write start times (0: back to back)"),
    overwrite=Param(int, 0, "1: the file starts empty and thread 0 lays it out first "
                    "(sequential block_size writes, fsync), as fio's overwrite=1, so the writes "
                    "find every page cached and clean (no READ); threads must be 1", 0, 1))
def _rand_write(s, threads, file_size, block_size, align, writes, distribution, zipf_s, hot_pages,
                think_ns, overwrite):
    """Random write(2)s over a pre-existing file, then fsync.

    Offsets are drawn uniformly with replacement (a block may be written twice and another never),
    from a zipf distribution over a hot set, or as fio's random map (randwrite with its default
    norandommap off): the file's file_size // block_size blocks each once in a random order, a new
    order for each further pass when the threads write more blocks than the file has; the threads
    take turns in one shared order.  The file exists at the start, so a write that covers part of
    an uncached page needs a READ.

    overwrite=1 is fio's overwrite=1 (see seq-write): the file is new and laid out before the
    random writes, which then meet cached clean pages and never need a READ.  The op model has no
    barrier between threads, so only one thread may lay out and write (threads=1).  The offsets
    drawn are the same as without the lay-out."""
    _at_most("block_size", block_size, file_size, "file_size")
    if overwrite and threads != 1:
        raise ValueError(f"threads: overwrite=1 lays the shared file out in one thread and "
                         f"threads cannot wait for each other; must be 1, got {threads}")
    lay = overwrite * (-(-file_size // block_size) + 1)
    n_slots = (file_size - block_size) // align + 1
    rows = threads * (writes + 1) + lay
    if rows > STREAM_ROWS and distribution != "randmap":
        _stream_limit("writes", rows, (writes - 1) * think_ns)
        return _rand_write_stream(s.seed, threads, file_size, block_size, align, writes,
                                  distribution, zipf_s, hot_pages, think_ns, overwrite, n_slots,
                                  rows)
    _limit("writes", rows)
    if distribution == "uniform":
        off = s.below(n_slots, threads * writes) * align
    elif distribution == "randmap":
        off = _random_map(s, threads * writes, file_size // block_size, block_size, align)
    else:
        u = s.uniform(threads * writes)
        off = _zipf_offsets(u, *_zipf_table(s, file_size, hot_pages, zipf_s), align, n_slots)
    times = np.arange(writes) * think_ns
    parts = [_rows(times, t, WRITE, 0, off[t * writes:(t + 1) * writes], block_size)
             for t in range(threads)]
    if overwrite:
        parts[0] = np.concatenate([_layout(0, 0, file_size, block_size), parts[0]])
    return [_final_fsync(rows, [0]) for rows in parts], [0 if overwrite else file_size]


def _rand_write_stream(seed, threads, file_size, block_size, align, writes, distribution, zipf_s,
                       hot_pages, think_ns, overwrite, n_slots, n_rows):
    """rand-write's rows (uniform or zipf) as a stream: the same rows as its array.  The array
    draws the offsets of all threads in one sequence, thread t's from draw t * writes on, then
    the zipf hot set's order: each thread's source starts its own generator there (advance)."""
    table = _zipf_table(_Stream(seed, threads * writes), file_size, hot_pages, zipf_s) \
        if distribution == "zipf" else None

    def rows(t):
        if overwrite:      # threads == 1
            yield from _seq_blocks(0, 0, file_size, block_size, 0)
            yield _rows(0, 0, FSYNC, 0)
        s = _Stream(seed, t * writes)
        for lo in range(0, writes, STREAM_BLOCK):
            n = min(STREAM_BLOCK, writes - lo)
            off = s.below(n_slots, n) * align if table is None else \
                _zipf_offsets(s.uniform(n), *table, align, n_slots)
            yield _rows(np.arange(lo, lo + n, dtype=np.int64) * think_ns, t, WRITE, 0, off,
                        block_size)
        yield _rows((writes - 1) * think_ns, t, FSYNC, 0)
    return _stream.OpStream(threads, np.array([0 if overwrite else file_size], np.int64),
                            np.array([-(-file_size // PAGE_SIZE)], np.int64), n_rows, rows)


def _random_map(s, n, n_blocks, block_size, align):
    """n offsets that visit each of n_blocks whole blocks once per pass, in a random order per
    pass (fio's random map: a block is not written again until every block has been)."""
    if align != block_size:
        raise ValueError(f"align: randmap writes whole blocks at multiples of block_size; "
                         f"align must equal it ({block_size}), got {align}")
    passes = -(-n // n_blocks)
    if passes * n_blocks > MAX_ROWS:
        raise ValueError(f"file_size: randmap orders all {n_blocks} blocks of the file "
                         f"({passes} pass(es)); at most {MAX_ROWS} blocks in all")
    return s.permutations(passes, n_blocks).ravel()[:n] * block_size


def _zipf_table(s, file_size, hot_pages, zipf_s):
    """(cdf, page of each rank) of the zipf hot set; draws the hot set's order from s."""
    n_pages = -(-file_size // PAGE_SIZE)
    _at_most("hot_pages", hot_pages, n_pages, "the file's pages")
    # Unnormalised CDF summed in a fixed order with Python floats: the same bits everywhere.
    cdf = np.array(list(itertools.accumulate(math.exp(-zipf_s * math.log(k))
                                             for k in range(1, hot_pages + 1))))
    # Hot pages every stride-th page in a seeded order: the hottest ones are not neighbours that
    # would always travel in one request.
    return cdf, s.permutations(1, hot_pages)[0] * (n_pages // hot_pages)


def _zipf_offsets(u, cdf, hot, align, n_slots):
    """Write offsets from uniform draws u through the zipf table (_zipf_table)."""
    rank = np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"),
                      len(cdf) - 1)        # u * total may round up to total
    return np.minimum(hot[rank] * PAGE_SIZE // align, n_slots - 1) * align


@_register(
    "rewrite-hot",
    file_size=_size(16 * MiB, "size of the pre-existing file"),
    hot_bytes=_size(1 * MiB, "the hot region [0, hot_bytes) rewritten every round"),
    block_size=_size(4096, "bytes per write(2)"),
    rounds=_count(64, "passes over the hot region"),
    interval_ns=_ns(1 * S, "spacing of round start times"),
    fsync_every=_count(0, "fsync after every this many rounds (0: only the final fsync)", lo=0))
def _rewrite_hot(s, file_size, hot_bytes, block_size, rounds, interval_ns, fsync_every):
    """Rewrite a small hot region of a pre-existing file every round, in a random block order.

    Pages are dirtied again while older copies may be in flight.  The default 1 s interval makes
    the rewriting last ~64 s, past dirty_expire (30 s) plus a flusher period (5 s), so the
    periodic flusher writes the region back while it is still being rewritten."""
    _at_most("hot_bytes", hot_bytes, file_size, "file_size")
    _at_most("block_size", block_size, hot_bytes, "hot_bytes")
    per = -(-hot_bytes // block_size)
    _limit("rounds", rounds * (per + 1))
    off = s.permutations(rounds, per).ravel() * block_size
    rows = _rows(np.repeat(np.arange(rounds) * interval_ns, per), 0, WRITE, 0, off,
                 np.minimum(block_size, hot_bytes - off))
    return [_final_fsync(_sync_every(rows, fsync_every * per, FSYNC, 0), [0])], [file_size]


@_register(
    "mmap-rewrite",
    file_size=_size(16 * MiB, "size of the pre-existing file, mapped shared as a whole"),
    store_size=_size(4096, "bytes per store, at a page-aligned offset"),
    rounds=_count(2, "passes: each makes as many stores as the mapping has pages"),
    msync_every=_count(256, "msync(MS_SYNC) of the mapping after every this many stores "
                       "(0: never)", lo=0),
    think_ns=_ns(0, "spacing of successive store start times (0: back to back)"))
def _mmap_rewrite(s, file_size, store_size, rounds, msync_every, think_ns):
    """CPU stores to random pages of a shared mapping, with periodic msync, then fsync.

    Every first store to a clean page faults and goes through page_mkwrite, which waits for the
    page's writeback in all strategies: this measures that wait."""
    _at_most("store_size", store_size, file_size, "file_size")
    n_slots = (file_size - store_size) // PAGE_SIZE + 1
    n = rounds * n_slots
    _limit("rounds", n + n // max(msync_every, 1) + 1)
    rows = _rows(np.arange(n) * think_ns, 0, MMAP_STORE, 0, s.below(n_slots, n) * PAGE_SIZE,
                 store_size)
    return [_final_fsync(_sync_every(rows, msync_every, MSYNC, 0, 0, file_size), [0])], [file_size]


@_register(
    "dio-redirty",
    threads=_threads(2),
    file_size=_size(8 * MiB, "size of the pre-existing file that holds the buffers"),
    buffer_bytes=_size(256 * KiB, "bytes per O_DIRECT read into the mapped buffer "
                       "(a multiple of 512)"),
    placement=_choice("random", "buffer offset per round: random page-aligned, or the next "
                      "buffer-sized slot", choices=("random", "rotate")),
    rounds=_count(100, "read-then-store rounds per thread"),
    stores=_count(8, "page stores per round to random pages of the buffer just read", lo=0),
    interval_ns=_ns(2 * MS, "spacing of round start times (threads staggered within it)"),
    fsync_every=_count(4, "fsync after every this many rounds (0: only the final fsync)", lo=0),
    sync_interval_ns=_ns(100_000, "an extra thread calls sync(2) this often while the readers "
                         "run, so writeback starts between a read's submit and completion "
                         "(0: no such thread)", lo=0),
    **SEED_SERVER)
def _dio_redirty(s, threads, file_size, buffer_bytes, placement, rounds, stores, interval_ns,
                 fsync_every, sync_interval_ns, **server):
    """The seed thread's case: O_DIRECT reads into an mmapped FUSE buffer, then stores to it.

    The block layer dirties the buffer pages at submission and again at completion with no
    page_mkwrite and no wait, so writepages meets pages dirty while a copy is in flight.  Nothing
    else would start writeback within 0.4 s (the flusher wakes every 5 s), so each thread fsyncs
    every few rounds; the threads are staggered by interval_ns / threads, so one thread's fsync
    has copies in flight while the other's reads dirty the same region again.

    It runs against the seed thread's server (SEED_SERVER), whatever the cost profile says: a
    few threads whose replies take a variable time spent waiting, so that one reply can overtake
    another.  A fast in-memory server that keeps one CPU busy answers in order, and the hazard
    this workload exists for could not show."""
    if buffer_bytes % 512:
        raise ValueError(f"buffer_bytes: must be a multiple of 512 (O_DIRECT), got {buffer_bytes}")
    _at_most("buffer_bytes", buffer_bytes, file_size, "file_size")
    per = 1 + stores
    _limit("rounds", threads * (rounds * per + rounds // max(fsync_every, 1) + 1))
    if placement == "random":
        n_pos = (file_size - buffer_bytes) // PAGE_SIZE + 1
        base = s.below(n_pos, threads * rounds).reshape(threads, rounds) * PAGE_SIZE
    else:
        slot = np.arange(rounds)[None, :] * threads + np.arange(threads)[:, None]
        base = slot % (file_size // buffer_bytes) * buffer_bytes
    page = s.below(-(-buffer_bytes // PAGE_SIZE), threads * rounds * stores)
    page = page.reshape(threads, rounds, stores) * PAGE_SIZE
    op = np.full((rounds, per), MMAP_STORE)
    op[:, 0] = DIO_READ
    parts = []
    for t in range(threads):
        off = np.column_stack([base[t], base[t][:, None] + page[t]])   # the read, then its stores
        ln = np.column_stack([np.full(rounds, buffer_bytes),
                              np.minimum(PAGE_SIZE, buffer_bytes - page[t])])
        start = np.arange(rounds) * interval_ns + t * interval_ns // threads
        rows = _rows(np.repeat(start, per), t, op.ravel(), 0, off.ravel(), ln.ravel())
        parts.append(_final_fsync(_sync_every(rows, fsync_every * per, FSYNC, 0), [0]))
    if sync_interval_ns:
        end = rounds * interval_ns
        _limit("sync_interval_ns", threads * rounds * per + end // sync_interval_ns)
        parts.append(_rows(np.arange(0, end, sync_interval_ns), threads, SYNC))
    return parts, [file_size]


@_register(
    "fsync-heavy",
    threads=_threads(4),
    write_size=_size(8192, "bytes appended per write(2)"),
    writes=_count(512, "append-then-fsync pairs per thread"),
    think_ns=_ns(0, "spacing of successive write start times (0: back to back)"))
def _fsync_heavy(s, threads, write_size, writes, think_ns):
    """Each thread appends small writes to its own new file and fsyncs after every one.

    A database-log pattern: tiny WB_SYNC_ALL passes, latency bound by the server round trip."""
    _at_most("write_size", write_size * writes, MAX_FILE_BYTES, "the largest file; writes * it")
    _limit("writes", threads * writes * 2)
    off = np.arange(writes, dtype=np.int64) * write_size
    return [_final_fsync(_sync_every(_rows(np.arange(writes) * think_ns, t, WRITE, t, off,
                                           write_size), 1, FSYNC, t), [t])
            for t in range(threads)], [0] * threads


@_register(
    "mem-pressure",
    file_size=_size(64 * MiB, "bytes the writer (thread 0) writes to a new file"),
    block_size=_size(64 * KiB, "bytes per write(2)"),
    think_ns=_ns(1 * MS, "spacing of the writer's write start times"),
    alloc_bytes=_size(None, "anonymous memory thread 1 faults in, chunk by chunk (default: the "
                      "memory, mem_total_pages, less 48 MiB: 2000 MiB of 2 GiB)",
                      per_memory=lambda m: max(m // 2, m - 48 * MiB)),
    chunk_bytes=_size(None, "bytes per ALLOC and per FREE (default: a 32nd of the memory: "
                      "64 MiB of 2 GiB)", per_memory=lambda m: max(PAGE_SIZE, m // 32)),
    alloc_interval_ns=_ns(10 * MS, "spacing of ALLOC (and later FREE) rows"),
    hold_ns=_ns(1 * S, "time from the last ALLOC to the first FREE"),
    compact_every=_count(4, "a COMPACT row after every this many ALLOCs (0: none)", lo=0),
    compact_bytes=_size(64 * MiB, "memory each COMPACT asks to make contiguous"))
def _mem_pressure(s, file_size, block_size, think_ns, alloc_bytes, chunk_bytes,
                  alloc_interval_ns, hold_ns, compact_every, compact_bytes):
    """A paced writer dirties a file while thread 1 eats most of memory, compacts, then frees.

    The allocation leaves 48 MiB of the machine's memory (mem_total_pages) free, in 32 chunks
    whatever the memory, so free memory gets low while the writer still has dirty and in-flight
    pages, and reclaim and compaction meet FUSE pages; the dirtyable memory, and with it the
    bdi's dirty limit, shrink to what is left.  Meant
    to be run with a slow server, e.g. server_base_ns=200000, so those pages stay in flight."""
    off, ln = _blocks(file_size, block_size)
    n = -(-alloc_bytes // chunk_bytes)
    _limit("chunk_bytes", 2 * n + n // max(compact_every, 1))
    writer = _final_fsync(_rows(np.arange(len(off)) * think_ns, 0, WRITE, 0, off, ln), [0])
    chunk = np.full(n, chunk_bytes, np.int64)
    chunk[-1] = alloc_bytes - chunk_bytes * (n - 1)
    t_alloc = np.arange(n) * alloc_interval_ns
    alloc = _sync_every(_rows(t_alloc, 1, ALLOC, 0, 0, chunk), compact_every, COMPACT, 0, 0,
                        compact_bytes)
    free = _rows(t_alloc[-1] + hold_ns + t_alloc, 1, FREE, 0, 0, chunk)
    return [writer, np.concatenate([alloc, free])], [0]


@_register(
    "stuck-server",
    block_size=_size(None, "bytes per write(2), appended to a new file (default: 256 KiB per "
                     "2 GiB of memory, whole pages, so the bdi's dirty limit is reached as soon)",
                     per_memory=lambda m: _per_2gib(256 * KiB, m)),
    interval_ns=_ns(20 * MS, "spacing of write start times", lo=1),
    duration_ns=_ns(6 * S, "time over which writes are issued; an fsync at its middle", lo=1),
    stall_start_ns=_ns(1 * S, "server parameter: when the server stops reading and replying"),
    stall_ns=_ns(4 * S, "server parameter: how long the stall lasts (0: no stall)"),
    request_timeout_ns=_ns(0, "connection parameter: the request timeout (whole seconds; 0: "
                           "none), the model's request_timeout_ns, carried like the stall"))
def _stuck_server(s, block_size, interval_ns, duration_ns, stall_start_ns, stall_ns,
                  request_timeout_ns):
    """Paced appends for duration_ns with an fsync in the middle, against a server that stalls.

    The stall window belongs to the server, but the engine takes stall_start_ns / stall_ns from
    workload.params when present.  The block size follows the memory (256 KiB per 2 GiB), so the
    writes reach the bdi's dirty limit (1% of 20% of the dirtyable memory) as soon on any
    machine.  With the defaults (stall 1 s..5 s, fsync at 3 s) the writer
    soon sleeps in the dirty throttle, since nothing it dirties can be written back, and stays
    there past hang_threshold_ns: it measures hangs, and what each strategy pins meanwhile
    (temp pages, or pages under writeback)."""
    n = max(1, duration_ns // interval_ns)
    _limit("interval_ns", n + 2)
    _at_most("block_size", block_size * n, MAX_FILE_BYTES, "the largest file; writes * it")
    times = np.arange(n) * interval_ns
    rows = _rows(times, 0, WRITE, 0, np.arange(n, dtype=np.int64) * block_size, block_size)
    mid = duration_ns // 2   # inserted before the first write at or after it: times stay sorted
    rows = np.insert(rows, np.searchsorted(times, mid), _rows(mid, 0, FSYNC, 0))
    return [_final_fsync(rows, [0])], [0]


@_register(
    "multi-writer",
    threads=_threads(4),
    file_size=_size(64 * MiB, "size of the pre-existing shared file"),
    block_size=_size(64 * KiB, "bytes per write(2); block i belongs to thread i % threads"),
    think_ns=_ns(0, "spacing of each thread's write start times (0: back to back)"))
def _multi_writer(s, threads, file_size, block_size, think_ns):
    """Threads write interleaved blocks of one shared file, each in its own random order.

    Dirty pages of many writers meet in the same inode's requests and in-flight lookups."""
    off, ln = _blocks(file_size, block_size, threads)
    _at_most("threads", threads, len(off), "the file's blocks")
    parts = []
    for t in range(threads):
        mine = np.arange(t, len(off), threads)
        mine = mine[s.permutations(1, len(mine))[0]]
        parts.append(_final_fsync(_rows(np.arange(len(mine)) * think_ns, t, WRITE, 0,
                                        off[mine], ln[mine]), [0]))
    return parts, [file_size]


def _preset(name: str, base: str, doc: str, fixed: dict, **defaults) -> None:
    """Register `name`: the generator of `base` with the `fixed` parameters held at the values
    the name states (a value other than that one is an error) and other defaults changed."""
    spec = WORKLOADS[base]
    params = dict(spec.params)
    for key, value in fixed.items():
        params[key] = replace(params[key], default=value, fixed=True,
                              doc=f"{params[key].doc} [fixed by the name]")
    for key, value in defaults.items():
        params[key] = replace(params[key], default=value)
    WORKLOADS[name] = GeneratorSpec(name, spec.fn, params, doc)


# Sequential and random writes at the two block sizes that pick the folio size on a large-folio
# kernel (FOLIO_NOTE), to a new file and over a laid-out, cached one (overwrite=1).  The files
# are seq-write's 64 MiB: past the strict bdi dirty limit of most machines, so writeback and the
# dirty throttle run while the writer does.  The random ones use fio's random map, each block
# once (one pass over the file).
_HOW = {("seq", 0): "to a new file",
        ("seq", 1): "over a file first laid out and fsynced (fio's overwrite=1: cached, clean "
                    "pages)",
        ("rand", 0): "over an existing, uncached file (fio's randwrite, which only sizes the "
                     "file)",
        ("rand", 1): "over a file first laid out and fsynced (fio's overwrite=1: cached, clean "
                     "pages, so no READ)"}
for _over, _pattern, (_kib, _label) in itertools.product((0, 1), ("seq", "rand"),
                                                        ((128, "128k"), (1024, "1m"))):
    _rand = {"distribution": "randmap", "writes": 64 * MiB // (_kib * KiB)} if _pattern == "rand" \
        else {}
    _preset(f"{_pattern}-{'overwrite' if _over else 'write'}-{_label}", f"{_pattern}-write",
            f"{'Sequential' if _pattern == 'seq' else 'Random'} {_label} write(2)s "
            f"{_HOW[_pattern, _over]}"
            + (", each block once in a random order" if _rand else "")
            + f", then fsync ({_pattern}-write with block_size={_kib * KiB}, overwrite={_over}"
            + (", distribution=randmap" if _rand else "") + ").\n\n" + FOLIO_NOTE,
            {"block_size": _kib * KiB, "overwrite": _over}, **_rand)


@_register(
    "partial-rewrite",
    file_size=_size(32 * MiB, "bytes of the new file, laid out first and fsynced"),
    layout_block=_size(1 * MiB, "bytes per lay-out write(2): the folio size a large-folio kernel "
                       "gives the file"),
    rounds=_count(4, "rewrite rounds, each ending in an fsync"),
    writes=_count(256, "rewrites per round, at offsets drawn uniformly over the file"),
    write_min=_size(512, "shortest rewrite in bytes (a multiple of align)"),
    write_max=_size(2048, "longest rewrite in bytes (a multiple of align)"),
    align=_size(512, "rewrite offsets and lengths are multiples of this"))
def _partial_rewrite(s, file_size, layout_block, rounds, writes, write_min, write_max, align):
    """Rewrites much smaller than a folio into a cached file laid out in large writes.

    The file is new; it is laid out with sequential layout_block writes and fsynced (fio's
    overwrite=1, see seq-write), so its pages are cached and clean and, on a large-folio kernel,
    held in folios of layout_block bytes.  Then each round makes `writes` rewrites of
    write_min..write_max bytes (multiples of align, uniform) at offsets drawn uniformly over the
    file, and fsyncs.  A rewrite dirties one or two pages; a kernel that tracks dirty state per
    folio sends every touched folio whole (up to layout_block bytes for each rewrite), one with
    iomap's per-block dirty bits only the dirty blocks, so the bytes sent per round differ by up
    to layout_block / PAGE_SIZE (256 with the defaults).  The lay-out rows are part of the run
    and its metrics.  Why the lay-out's write size is the folio size: FOLIO_NOTE above."""
    for field, value in (("write_min", write_min), ("write_max", write_max)):
        if value % align:
            raise ValueError(f"{field}: must be a multiple of align ({align}), got {value}")
    _at_most("write_min", write_min, write_max, "write_max")
    _at_most("write_max", write_max, file_size, "file_size")
    n_lay = -(-file_size // layout_block)
    _limit("writes", n_lay + 1 + rounds * (writes + 1))
    n = rounds * writes
    ln = (write_min // align + s.below(write_max // align - write_min // align + 1, n)) * align
    off = s.below((file_size - write_max) // align + 1, n) * align
    rows = _sync_every(_rows(0, 0, WRITE, 0, off, ln), writes, FSYNC, 0)
    return [_final_fsync(np.concatenate([_layout(0, 0, file_size, layout_block), rows]), [0])], [0]


# The stuck server for a kernel with FUSE request timeouts (fs.fuse.default_request_timeout and
# max_request_timeout, in seconds; Joanne Koong's "fuse: add kernel-enforced timeout option for
# requests", linux-fsdevel 2024-25: a connection whose oldest request is older than the timeout
# is aborted; the versions read check every FUSE_TIMEOUT_TIMER_FREQ = 15 s, so an abort may
# come up to 15 s late; the merged commit was not checked).  A 40 s stall outlasts a timeout of
# up to 25 s even when the check comes late; the short duration keeps the run cheap (102 rows on
# the default machine; nothing happens in the simulated stall but the flusher's wake-ups).
_preset("stuck-server-long", "stuck-server",
        "stuck-server with a 40 s stall from 1 s and writes for 2 s (fsync at 1 s): a stall "
        "long enough that a request timeout (up to 25 s, checked every 15 s) fires inside it; "
        "without a timeout the fsync waits the 40 s out.", {},
        duration_ns=2 * S, stall_ns=40 * S)
_preset("stuck-server-timeout", "stuck-server",
        "stuck-server-long on a connection with a 10 s request timeout (9b17cb59a7db), which the "
        "kernel raises to its 15 s check period: the check at 30 s finds the oldest request stuck "
        "past it and aborts the connection inside the stall, so the fsync returns (with an error) "
        "instead of waiting the 40 s out; the requests ended so are aborted_calls.", {},
        duration_ns=2 * S, stall_ns=40 * S, request_timeout_ns=10 * S)


# ---- public functions ----

def _spec(name: str) -> GeneratorSpec:
    spec = WORKLOADS.get(name)
    if spec is None:
        raise ValueError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
    return spec


def workload_names() -> list[str]:
    return list(WORKLOADS)


def workload_params(name: str) -> dict[str, tuple]:
    """{parameter: (default, one-line doc)}; a default of None is explained by its doc."""
    return {k: (p.default, p.doc) for k, p in _spec(name).params.items()}


def make(name: str, seed: int = 0, mem_total_pages: int | None = None,
         **params) -> Workload | StreamedWorkload:
    """Build a registered workload; bad names, parameters or values raise a one-line ValueError.

    A parameter whose default follows the memory (mem-pressure's sizes, say) takes it from
    mem_total_pages, else from the active machine profile; the value used is in the
    workload's params, so ``make(w.name, **w.params)`` rebuilds w on any machine."""
    spec = _spec(name)
    for key in params:
        if key not in spec.params:
            raise ValueError(f"{name}: unknown parameter {key!r}; "
                             f"allowed: {', '.join(spec.params)}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: must be an integer >= 0, got {seed!r}")
    values = {}
    for key, p in spec.params.items():
        if key in params and not ((p.same_as or p.per_memory) and params[key] is None):
            values[key] = _check(key, p, params[key])
        elif p.per_memory:
            values[key] = _check(key, p, p.per_memory(_memory_bytes(mem_total_pages)))
        else:
            values[key] = values[p.same_as] if p.same_as else p.default
    made = spec.fn(_Stream(int(seed)), **values)
    if isinstance(made, _stream.OpStream):
        return StreamedWorkload(name, made, {**values, "seed": int(seed)})
    parts, sizes = made
    # Each part is one thread in program order with non-decreasing times, so a stable sort on time
    # keeps every thread's order (ties between threads go to the lower thread id).
    ops = np.concatenate(parts)
    ops = ops[np.argsort(ops["time"], kind="stable")]
    return Workload(name, ops, np.array(sizes, dtype=np.int64), {**values, "seed": int(seed)})


def _memory_bytes(mem_total_pages: int | None) -> int:
    """The memory a machine-relative default follows: the given pages, else the active
    machine profile's."""
    p = _params.PARAM_BY_NAME["mem_total_pages"]
    if mem_total_pages is None:
        mem_total_pages = _params.defaults()["mem_total_pages"]
    if isinstance(mem_total_pages, bool) or not isinstance(mem_total_pages, (int, np.integer)) \
            or not p.lo <= mem_total_pages <= p.hi:
        raise ValueError(f"mem_total_pages: must be an integer in {p.lo}..{p.hi}, "
                         f"got {mem_total_pages!r}")
    return int(mem_total_pages) * PAGE_SIZE


def from_arrays(ops, file_sizes, name: str = "custom", params: dict | None = None) -> Workload:
    """Wrap copies of arrays from elsewhere (a trace, a test) after bench.sim.ops.validate_ops."""
    if isinstance(ops, np.ndarray):
        ops = ops.copy()   # contiguous, and freezing it must not freeze the caller's array
    sizes = np.asarray(file_sizes)
    if sizes.dtype.kind not in "iu":
        raise ValueError(f"file_sizes: must be integers, got dtype {sizes.dtype}")
    validate_ops(ops, sizes)   # before the cast, so an out-of-range uint64 is not wrapped
    return Workload(name, ops, sizes.astype(np.int64), dict(params or {}))
