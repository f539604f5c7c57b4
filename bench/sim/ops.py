"""Operation arrays: the one format every engine consumes.

A workload is a numpy structured array of ``OP_DTYPE`` rows sorted by time.  Each
row is one application call made by one thread; a thread runs its rows in order,
row k starting at ``max(time_k, end of row k-1)``.  The layout matches
``struct fwb_op`` in ``csrc/fwb.h`` byte for byte, so the C engine reads the
array in place.
"""
from __future__ import annotations

import numpy as np

PAGE_SIZE = 4096

# Op codes (keep in step with the op codes in csrc/fwb_internal.h).
WRITE = 0        # write(2) of [offset, offset+length) of file
MMAP_STORE = 1   # CPU stores to a shared mapping of [offset, offset+length)
DIO_READ = 2     # O_DIRECT read from another file into an mmapped buffer of [offset, offset+length)
FSYNC = 3        # fsync(file)
MSYNC = 4        # msync(MS_SYNC) of [offset, offset+length)
SYNC = 5         # sync(2)
ALLOC = 6        # anonymous memory: fault in `length` bytes
FREE = 7         # anonymous memory: release `length` bytes
COMPACT = 8      # a compaction request over `length` bytes of memory

OP_NAMES = {
    WRITE: "write", MMAP_STORE: "mmap_store", DIO_READ: "dio_read", FSYNC: "fsync",
    MSYNC: "msync", SYNC: "sync", ALLOC: "alloc", FREE: "free", COMPACT: "compact",
}
OP_CODES = {name: code for code, name in OP_NAMES.items()}

# Ops that name a byte range of a file.
FILE_RANGE_OPS = (WRITE, MMAP_STORE, DIO_READ, MSYNC)
# Ops that name a file.
FILE_OPS = FILE_RANGE_OPS + (FSYNC,)
# Ops whose length is an amount of memory.
MEMORY_OPS = (ALLOC, FREE, COMPACT)

OP_DTYPE = np.dtype([
    ("time", "<i8"),     # ns; earliest start of the call
    ("thread", "<i4"),   # application thread, 0..threads-1
    ("op", "<i4"),       # op code above
    ("file", "<i4"),     # file index, 0..n_files-1 (ignored by SYNC and memory ops)
    ("_pad", "<i4"),
    ("offset", "<i8"),   # byte offset in the file
    ("length", "<i8"),   # bytes
])

MAX_THREADS = 64
MAX_FILES = 1024
MAX_FILE_BYTES = 1 << 40


def make_ops(n: int) -> np.ndarray:
    """A zeroed operation array of n rows."""
    return np.zeros(n, dtype=OP_DTYPE)


def validate_ops(ops: np.ndarray, file_sizes: np.ndarray) -> None:
    """Raise ValueError (one line naming the field) unless ops/file_sizes are well formed."""
    if not isinstance(ops, np.ndarray) or ops.dtype != OP_DTYPE:
        raise ValueError("workload ops: expected a numpy array of bench.sim.ops.OP_DTYPE")
    if ops.ndim != 1 or len(ops) == 0:
        raise ValueError("workload ops: expected a non-empty 1-D array")
    sizes = np.asarray(file_sizes)
    if sizes.ndim != 1 or not 1 <= len(sizes) <= MAX_FILES:
        raise ValueError(f"file_sizes: expected 1..{MAX_FILES} files, got {sizes.size}")
    if (sizes < 0).any() or (sizes > MAX_FILE_BYTES).any():
        raise ValueError(f"file_sizes: each must be in 0..{MAX_FILE_BYTES}")
    t = ops["time"]
    if (t < 0).any():
        raise ValueError("time: must be >= 0")
    bad = np.nonzero(np.diff(t) < 0)[0]
    if bad.size:
        raise ValueError(f"time: out of order at row {int(bad[0]) + 1} (times must not decrease)")
    th = ops["thread"]
    if (th < 0).any() or (th >= MAX_THREADS).any():
        raise ValueError(f"thread: must be in 0..{MAX_THREADS - 1}")
    code = ops["op"]
    known = np.isin(code, list(OP_NAMES))
    if not known.all():
        i = int(np.nonzero(~known)[0][0])
        raise ValueError(f"op: unknown op code {int(code[i])} at row {i}; allowed: "
                         + ", ".join(f"{c}={n}" for c, n in OP_NAMES.items()))
    on_file = np.isin(code, FILE_OPS)
    f = ops["file"][on_file]
    if ((f < 0) | (f >= len(sizes))).any():
        raise ValueError(f"file: must be in 0..{len(sizes) - 1}")
    ranged = np.isin(code, FILE_RANGE_OPS)
    off, ln = ops["offset"][ranged], ops["length"][ranged]
    if (off < 0).any():
        raise ValueError("offset: must be >= 0")
    if (ln <= 0).any():
        raise ValueError("length: must be > 0 for write, mmap_store, dio_read and msync")
    if ((off + ln) > MAX_FILE_BYTES).any():
        raise ValueError(f"offset+length: must be <= {MAX_FILE_BYTES}")
    mem = np.isin(code, MEMORY_OPS)
    if (ops["length"][mem] <= 0).any():
        raise ValueError("length: must be > 0 for alloc, free and compact")
