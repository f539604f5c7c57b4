"""Typed wrapper over the cffi extension bench.sim._fwb (csrc/).

Callers hand it what bench.sim.params.resolve and bench.sim.ops.validate_ops have
already checked; it re-checks the few things that would be undefined
behaviour in C (array types, counts) and turns error codes into exceptions.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from bench.sim import refsim
from bench.sim.ops import OP_DTYPE

try:
    from bench.sim._fwb import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the install
    ffi = lib = None
    _IMPORT_ERROR = exc
else:
    _IMPORT_ERROR = None

INT_FIELDS = (
    "strategy", "writer_waits", "merge_queued_primary", "max_pages", "max_write",
    "max_background", "mem_total_pages", "dirty_ratio", "dirty_background_ratio",
    "bdi_max_ratio", "wmark_min_pages", "wmark_low_pages", "wmark_high_pages",
    "dirty_writeback_interval_ns", "dirty_expire_ns", "reclaim_batch", "reclaim_retry_ns",
    "reclaim_retries", "dirty_ratelimit_pps", "max_pause_ns", "hz", "wb_chunk_pages", "bg_start", "sync_waits", "hang_threshold_ns", "sample_interval_ns", "max_samples",
    "max_time_ns", "cpus", "wakeup_ns", "cache_add_ns", "write_syscall_ns", "write_page_ns", "store_page_ns", "fault_ns",
    "page_copy_ns", "wp_page_ns", "wp_request_ns", "temp_alloc_ns", "temp_free_ns",
    "wb_lookup_ns", "wb_tree_ns", "end_writeback_ns", "fsync_syscall_ns", "dio_base_ns",
    "dio_page_ns", "reclaim_scan_ns", "compact_page_ns", "server_threads", "server_dist",
    "server_base_ns", "server_page_ns", "server_new_page_ns", "server_wakeup_ns", "server_cpus", "server_cpu_pct", "server_fsync_ns",
    "request_timeout_ns", "wb_thresh_floor", "bdi_writeout_ppm",
)


def available() -> bool:
    return lib is not None


def _require() -> None:
    if lib is None:
        raise RuntimeError("the C engine is not built (bench.sim._fwb missing): run `pip install -e .` "
                           f"with a C compiler and the Python headers ({_IMPORT_ERROR})")


def make_config(cfg: Mapping[str, Any]):
    """A cffi fwb_config filled from a resolved configuration."""
    _require()
    c = ffi.new("fwb_config *")
    for name in INT_FIELDS:
        setattr(c, name, int(cfg[name]))
    c.server_sigma = float(cfg["server_sigma"])
    windows = cfg["stall_windows"]
    c.n_stall = len(windows)
    for i, (s, e) in enumerate(windows):
        c.stall_start[i] = s
        c.stall_end[i] = e
    return c


# Where the C engine keeps its per-page state (csrc/pagespace.c); the results are the same.
LAYOUTS = {"auto": 0, "dense": 1, "compact": 2}


def _layout(layout: str) -> int:
    if layout not in LAYOUTS:
        raise ValueError(f"layout: unknown {layout!r}; allowed: {', '.join(LAYOUTS)}")
    return LAYOUTS[layout]


def _arrays(ops: np.ndarray, file_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not (type(ops) is np.ndarray and ops.dtype is OP_DTYPE and ops.flags.c_contiguous):
        ops = np.ascontiguousarray(ops, dtype=OP_DTYPE)
    sizes = np.ascontiguousarray(file_sizes, dtype=np.int64)
    if ops.ndim != 1 or sizes.ndim != 1 or len(ops) == 0 or len(sizes) == 0:
        raise ValueError("ops and file_sizes must be non-empty 1-D arrays")
    return ops, sizes


def simulate(cfg: Mapping[str, Any], ops: np.ndarray, file_sizes: np.ndarray, seed: int,
             config=None, layout: str = "auto") -> dict:
    """Run the C engine; the same raw result shape as bench.sim.refsim.simulate.  `config`:
    make_config(cfg) made before (a sweep runs one configuration on many seeds), else made here.
    `layout`: LAYOUTS, "auto" unless a test compares them."""
    _require()
    mode = _layout(layout)
    ops, sizes = _arrays(ops, file_sizes)
    c = make_config(cfg) if config is None else config
    res = ffi.new("fwb_result *")
    args = (c, ffi.cast("const fwb_op *", ffi.from_buffer(ops)), len(ops),
            ffi.cast("const int64_t *", ffi.from_buffer(sizes)), len(sizes), seed & ((1 << 64) - 1))
    # auto through fwb_run itself (bench.sim.sweepcost times the engine by that name)
    rc = lib.fwb_run(*args, res) if mode == 0 else lib.fwb_run_layout(*args, mode, res)
    if rc == lib.FWB_ENOMEM:
        raise MemoryError("C engine: out of memory")
    if rc != lib.FWB_OK:
        raise ValueError(f"C engine: invalid input (error {rc})")
    try:
        # ffi.unpack makes the Python ints in one call, not one attribute read each
        counters = dict(zip(refsim.COUNTERS, ffi.unpack(res.counters, len(refsim.COUNTERS))))
        n_hist = res.pages_per_request_n
        hist = ffi.unpack(res.pages_per_request, n_hist) if n_hist else []
        lat, series = _samples(res)
    finally:
        lib.fwb_result_free(res)
    return {"counters": counters, "pages_per_request": hist, "latency": lat, "series": series}


def page_slots(cfg: Mapping[str, Any], ops: np.ndarray, file_sizes: np.ndarray,
               layout: str = "auto") -> int:
    """The per-page states a run in `layout` keeps: the files' pages when dense, fewer when
    compact."""
    _require()
    mode = _layout(layout)
    ops, sizes = _arrays(ops, file_sizes)
    n = lib.fwb_page_slots(make_config(cfg), ffi.cast("const fwb_op *", ffi.from_buffer(ops)),
                           len(ops), ffi.cast("const int64_t *", ffi.from_buffer(sizes)),
                           len(sizes), mode)
    if n == lib.FWB_ENOMEM:
        raise MemoryError("C engine: out of memory")
    if n < 0:
        raise ValueError(f"C engine: invalid input (error {n})")
    return n


def _samples(res) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The latency arrays and the series of a result, copied into one new int64 array (one
    allocation, not eight) of which each is a slice."""
    ns = ffi.unpack(res.latency_n, len(refsim.LATENCIES))
    width = len(refsim.SERIES_FIELDS)
    n_series = res.series_n * width
    buf = np.empty(sum(ns) + n_series, dtype=np.int64)
    dst = ffi.cast("int64_t *", ffi.from_buffer(buf))
    lat, at = {}, 0
    for i, (k, n) in enumerate(zip(refsim.LATENCIES, ns)):
        if n:
            ffi.memmove(dst + at, res.latency[i], n * 8)
        lat[k] = buf[at:at + n]
        at += n
    if n_series:
        ffi.memmove(dst + at, res.series, n_series * 8)
    return lat, buf[at:].reshape(-1, width)


def bare_loop(ops: np.ndarray, file_sizes: np.ndarray) -> int:
    """The speed floor: walk the operations and flip page flags, nothing else."""
    _require()
    ops = np.ascontiguousarray(ops, dtype=OP_DTYPE)
    sizes = np.ascontiguousarray(file_sizes, dtype=np.int64)
    return int(lib.fwb_bare_loop(ffi.cast("const fwb_op *", ffi.from_buffer(ops)), len(ops),
                                 ffi.cast("const int64_t *", ffi.from_buffer(sizes)), len(sizes)))


def driver_input(cfg: Mapping[str, Any], ops: np.ndarray, file_sizes: np.ndarray, seed: int) -> bytes:
    """The input file of tests/c/asan_driver.c: the fwb_config bytes, int64 n_ops, int64 n_files,
    uint64 seed, the op rows, the file sizes (native layout)."""
    import struct
    c = make_config(cfg)
    head = struct.pack("=qqQ", len(ops), len(file_sizes), seed & ((1 << 64) - 1))
    return (bytes(ffi.buffer(c)) + head + np.ascontiguousarray(ops, dtype=OP_DTYPE).tobytes()
            + np.ascontiguousarray(file_sizes, dtype=np.int64).tobytes())
