"""Streamed operations: a workload's rows made thread by thread, in chunks, as the engines run.

An array workload holds every row at once (at most bench.sim.workload.MAX_ROWS); a stream
holds what the engines need before the first row (threads, file sizes, each file's page
capacity) and, per thread, a source of its rows in program order, in blocks of any size.
Both engines ask each thread's source for ``CHUNK`` rows at a time (``Feed.take``), each
thread's first chunk before the run in thread order and its next one when it has run the
last, so memory does not grow with the number of rows.  A thread's rows are the same whatever
the chunk size: the source's blocks are cut into chunks, never made for them.  A streamed run
gives the same results as the array run of the same rows (``OpStream.array``): the engines
run each thread's rows in order either way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from bench.sim.ops import (FILE_RANGE_OPS, MAX_FILE_BYTES, MAX_FILES, MAX_THREADS, OP_DTYPE,
                           PAGE_SIZE, validate_ops)

CHUNK = 8192            # rows per fill: 320 KiB a thread in the C engine
MAX_OPS = 1 << 30       # csrc/engine.c MAX_OPS: page versions fit 32 bits


@dataclass(frozen=True, eq=False)
class OpStream:
    """What a streamed workload gives the engines: its files, threads and row sources."""
    threads: int
    file_sizes: np.ndarray      # int64, bytes at the start
    file_pages: np.ndarray      # int64, each file's page capacity (its size, every page a row touches)
    n_ops: int                  # rows of all threads, as the maker counts them (for messages)
    source: Callable[[int], Iterator[np.ndarray]]   # thread -> its OP_DTYPE rows, in blocks

    def __post_init__(self):
        sizes, pages = self.file_sizes, self.file_pages
        if sizes.ndim != 1 or not 1 <= len(sizes) <= MAX_FILES or pages.shape != sizes.shape:
            raise ValueError(f"file_sizes: expected 1..{MAX_FILES} files, each with its file_pages")
        if (sizes < 0).any() or (sizes > MAX_FILE_BYTES).any():
            raise ValueError(f"file_sizes: each must be in 0..{MAX_FILE_BYTES}")
        if not 1 <= self.threads <= MAX_THREADS:
            raise ValueError(f"threads: must be in 1..{MAX_THREADS}, got {self.threads}")
        if not 1 <= self.n_ops <= MAX_OPS:
            raise ValueError(f"operations: a stream holds 1..{MAX_OPS}, got {self.n_ops}")
        least = (self.file_sizes + PAGE_SIZE - 1) // PAGE_SIZE
        if (self.file_pages < least).any() or (self.file_pages > MAX_FILE_BYTES // PAGE_SIZE).any():
            raise ValueError("file_pages: each must cover its file's size and be at most "
                             f"{MAX_FILE_BYTES // PAGE_SIZE}")

    def array(self) -> np.ndarray:
        """Every row at once, sorted by time as an array workload is (tests, small streams)."""
        ops = np.concatenate([np.concatenate(list(self.source(t))) for t in range(self.threads)])
        return ops[np.argsort(ops["time"], kind="stable")]


def check_chunk(rows: np.ndarray, thread: int, last_time: int, stream: OpStream) -> None:
    """ValueError (one line naming the field) unless `rows` may follow `thread`'s earlier rows
    (the last at last_time): the thread, the time order, the fields as an array's
    (bench.sim.ops.validate_ops) and the declared page capacity.  The C engine checks the
    same (chunk_ok)."""
    def bad(mask) -> int:
        return int(np.argmax(mask)) if mask.any() else -1

    where = f"thread {thread}'s streamed rows"
    if (i := bad(rows["thread"] != thread)) >= 0:
        raise ValueError(f"thread: {where} include one of thread {int(rows['thread'][i])}")
    t = rows["time"]
    if (i := bad(np.diff(t, prepend=last_time) < 0)) >= 0:
        raise ValueError(f"time: {where} go back in time at {int(t[i])} (times must not decrease)")
    validate_ops(rows, stream.file_sizes)
    f, ranged = rows["file"], np.isin(rows["op"], FILE_RANGE_OPS)
    end = (rows["offset"] + rows["length"] + PAGE_SIZE - 1) // PAGE_SIZE
    if (i := bad(ranged & (end > stream.file_pages[np.where(ranged, f, 0)]))) >= 0:
        raise ValueError(f"file_pages: {where} reach page {int(end[i]) - 1} of file {int(f[i])}, "
                         f"past its declared capacity of {int(stream.file_pages[f[i]])} pages")


class Feed:
    """Each thread's rows of a stream, handed out `cap` at a time, checked (check_chunk)."""

    def __init__(self, stream: OpStream):
        self.stream = stream
        self._sources = [stream.source(t) for t in range(stream.threads)]
        self._held = [np.empty(0, OP_DTYPE)] * stream.threads    # a block's rows not handed out
        self._last = [0] * stream.threads
        self.error: BaseException | None = None     # raised by a source or check (C engine)

    def take(self, thread: int, cap: int) -> np.ndarray:
        """Up to cap of thread's next rows (none: it has no more)."""
        parts, n, held = [], 0, self._held[thread]
        while n < cap:
            if not len(held):
                held = next(self._sources[thread], None)
                if held is None:
                    held = np.empty(0, OP_DTYPE)
                    break
                if held.dtype != OP_DTYPE or held.ndim != 1:
                    raise ValueError(f"workload stream: thread {thread}'s source must give 1-D "
                                     "arrays of bench.sim.ops.OP_DTYPE")
            parts.append(held[:cap - n])
            n += len(parts[-1])
            held = held[len(parts[-1]):]
        self._held[thread] = held
        rows = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts \
            else np.empty(0, OP_DTYPE)
        if n:
            check_chunk(rows, thread, self._last[thread], self.stream)
            self._last[thread] = int(rows["time"][-1])
        return rows
