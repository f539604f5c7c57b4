"""Typed wrapper over the cffi extension bench.sim._fwb (csrc/).

Callers hand it what bench.sim.params.resolve and bench.sim.ops.validate_ops have
already checked; it re-checks the few things that would be undefined
behaviour in C (array types, counts) and turns error codes into exceptions.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from bench.sim import lathist, refsim
from bench.sim.ops import OP_DTYPE
from bench.sim.stream import CHUNK, Feed, OpStream

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
    return _result(rc, res)


def simulate_stream(cfg: Mapping[str, Any], stream: OpStream, seed: int, config=None,
                    chunk: int = CHUNK, latency_exact: int = 0) -> dict:
    """Run the C engine on a streamed workload (bench.sim.stream), `chunk` rows per fill; the
    same raw result as simulate on the stream's array.  latency_exact: samples kept one by one
    per latency set before it folds into a histogram (0: lathist.EXACT; tests lower it).  An
    exception of the stream's source (or a bad chunk) is raised here, after the run stops."""
    _require()
    feed = Feed(stream)
    sizes = np.ascontiguousarray(stream.file_sizes, dtype=np.int64)
    pages = np.ascontiguousarray(stream.file_pages, dtype=np.int64)
    st = ffi.new("fwb_stream *")
    st.threads, st.n_files, st.chunk = stream.threads, len(sizes), chunk
    st.file_sizes = ffi.cast("const int64_t *", ffi.from_buffer(sizes))
    st.file_pages = ffi.cast("const int64_t *", ffi.from_buffer(pages))
    st.latency_exact = latency_exact
    st.fill = lib.fwb_py_fill
    handle = ffi.new_handle(feed)
    st.ctx = handle
    res = ffi.new("fwb_result *")
    rc = lib.fwb_run_stream(make_config(cfg) if config is None else config, st,
                            seed & ((1 << 64) - 1), res)
    if rc == lib.FWB_EFILL and feed.error is not None:
        raise feed.error
    if rc == lib.FWB_EINVAL:
        raise ValueError("C engine: the stream or one of its chunks is invalid (a row of another "
                         "thread, out of time order or past its file's declared pages)")
    return _result(rc, res)


if ffi is not None:
    @ffi.def_extern()
    def fwb_py_fill(ctx, thread, buf, cap):
        """fwb_stream.fill: thread's next rows from the Feed behind ctx into buf.  An exception
        is kept in the Feed (simulate_stream raises it) and ends the run (-1)."""
        feed = ffi.from_handle(ctx)
        try:
            rows = feed.take(thread, cap)
            if len(rows):
                ffi.memmove(buf, np.ascontiguousarray(rows), rows.nbytes)
            return len(rows)
        except BaseException as exc:   # noqa: BLE001 - raised again by simulate_stream
            feed.error = exc
            return -1


def _result(rc: int, res) -> dict:
    """The raw result of a finished fwb_run or fwb_run_stream, or its error raised."""
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
    exact = sum(n for i, n in enumerate(ns) if res.latency_hist[i] == ffi.NULL)
    width = len(refsim.SERIES_FIELDS)
    n_series = res.series_n * width
    buf = np.empty(exact + n_series, dtype=np.int64)
    dst = ffi.cast("int64_t *", ffi.from_buffer(buf))
    lat, at = {}, 0
    for i, (k, n) in enumerate(zip(refsim.LATENCIES, ns)):
        if res.latency_hist[i] != ffi.NULL:
            counts = np.frombuffer(ffi.buffer(res.latency_hist[i], lathist.BUCKETS * 8),
                                   dtype=np.int64).copy()
            lat[k] = lathist.Histogram(counts, n, res.latency_max[i])
            continue
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
