"""Every simulator parameter in one table: name, default, range, unit, doc.

Both engines take the same fully resolved configuration (``resolve``), so a
derived default (watermarks, max_write) is computed once, here, in Python.
Kernel defaults are cited where they come from.

The table's defaults are a fallback: the active machine profile (bench.sim.machine: the
machine's CPUs, memory and limits, its server and its measured costs) replaces them in
``resolve``, and a caller's explicit parameters still win.  By default that is the profile of
the machine the costs were measured on (bench.sim.machine.DEFAULT), shipped in the package, so
the published baseline, CI, every developer and an installed copy run on the same numbers; the
CLI's --machine NAME|PATH or the environment variable FWB_MACHINE picks another ("none": this
table alone).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping

import strategies

SERVER_DISTS = ("fixed", "exponential", "lognormal")
TRANSPORTS = ("dev", "io_uring")
MAX_STALL_WINDOWS = 16
FUSE_MAX_PAGES_LIMIT = 65535      # fs/fuse/fuse_sysctl.c: fs.fuse.max_pages_limit's bound (u16)
FUSE_TIMEOUT_TIMER_FREQ_NS = 15 * 1_000_000_000   # fs/fuse/dev.c: FUSE_TIMEOUT_TIMER_FREQ, 15 s


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    default: int
    lo: int
    hi: int
    group: str      # model | cost | server
    doc: str


_MS = 1_000_000
_S = 1_000_000_000

PARAMS: tuple[Param, ...] = (
    # -- requests (fs/fuse/fuse_i.h, inode.c)
    Param("max_pages", 32, 1, 65535, "model", "pages per WRITE request (FUSE_DEFAULT_MAX_PAGES_PER_REQ 32; the server's max_pages in FUSE_INIT, at most fs.fuse.max_pages_limit: 256 before 6.13, a sysctl up to 65535 since 2b3933b1e0a0, 6.13)"),
    Param("max_write", 0, 0, 65535 * 4096, "model", "bytes per WRITE request; 0 = max_pages * 4096"),
    Param("max_background", 12, 1, 65535, "model", "background requests outstanding (FUSE_DEFAULT_MAX_BACKGROUND)"),
    # -- memory and dirty limits (mm/page-writeback.c, mm/page_alloc.c)
    Param("mem_total_pages", 524288, 8192, 1 << 26, "model", "memory in 4 KiB pages (the table's 2 GiB; a machine profile gives its machine's)"),
    Param("dirty_ratio", 20, 1, 100, "model", "vm.dirty_ratio, % of dirtyable memory"),
    Param("dirty_background_ratio", 10, 0, 100, "model", "vm.dirty_background_ratio, %"),
    Param("bdi_max_ratio", 1, 1, 100, "model", "the FUSE bdi's max_ratio, % (strictlimit; fuse_bdi_init)"),
    Param("wmark_min_pages", 0, 0, 1 << 26, "model", "min watermark; 0 = int_sqrt(16 * mem_kB) like min_free_kbytes"),
    Param("dirty_writeback_interval_ns", 5 * _S, _MS, 3600 * _S, "model", "flusher period (dirty_writeback_centisecs 500)"),
    Param("dirty_expire_ns", 30 * _S, 0, 3600 * _S, "model", "age at which an inode's dirty pages are written (dirty_expire_centisecs 3000)"),
    Param("reclaim_batch", 32, 1, 4096, "model", "pages direct reclaim tries to free per round (SWAP_CLUSTER_MAX)"),
    Param("reclaim_retry_ns", 100 * _MS, 0, 10 * _S, "model", "sleep after a round that freed nothing (VMSCAN_THROTTLE_WRITEBACK, HZ/10)"),
    Param("reclaim_retries", 8, 0, 1000, "model", "rounds without progress before the allocation goes ahead anyway"),
    Param("dirty_ratelimit_pps", 25600, 1, 1 << 30, "model", "the bdi's dirty ratelimit and write bandwidth, pages/s: a writer over the freerun ceiling dirties at this rate times pos_ratio, and pause lengths and the background chunk follow from it (INIT_BW, 100 MB/s, a new bdi's value; not re-estimated)"),
    Param("max_pause_ns", 200 * _MS, _MS, 10 * _S, "model", "longest dirty-throttle pause (MAX_PAUSE, HZ/5)"),
    Param("hz", 250, 100, 1000, "model", "CONFIG_HZ of the modelled kernel: dirty-throttle pauses are whole jiffies (Debian's 250)"),
    Param("wb_chunk_pages", 0, 0, 1 << 26, "model", "pages background writeback writes of one inode before it looks at the background threshold again; 0 = writeback_chunk_size of a new bdi"),
    Param("bg_start", 0, 0, 1, "model", "where the strictlimit bdi starts background writeback: 0 = above its freerun ceiling (balance_dirty_pages before 2026), 1 = above its own background threshold (0437906841d0, 2026; measured in a 7.2 guest)"),
    Param("sync_waits", 0, 0, 1, "model", "sync(2) writes every file and waits for its writeback itself (1) or only wakes the flusher (0). By kernel: temp-page kernels (<= 6.15) wrote and waited, but with nothing of FUSE's to wait for (temp pages end writeback at once), which 0 models the same for their strategies; 6.16 (0c58a97f919c) until f9a49aa302a0 (6.19-rc7, in 6.18.y stable) 1, and it waits for the server; f9a49aa302a0 (wait_sb_inodes skips FUSE mappings) and 76f9377cd2ab (SB_I_NO_DATA_INTEGRITY, 7.0; 6.18.y, 6.19.y stable) 0"),
    Param("request_timeout_ns", 0, 0, 65535 * _S, "model", "FUSE request timeout, whole seconds (9b17cb59a7db, 6.14: init_out.request_timeout, or fs.fuse.default/max_request_timeout since 6.15); 0 off. Every 15 s from the first call (FUSE_TIMEOUT_TIMER_FREQ) fuse_check_timeout looks at the oldest request of the pending and background queues and every request a server thread holds; one older than the timeout, raised to at least 15 s (fuse_init_server_timeout: max(FUSE_TIMEOUT_TIMER_FREQ, timeout); measured in 7.2 and 7.3 guests), aborts the connection: every request ends with an error, later ones fail at once (aborted_calls)"),
    Param("wb_thresh_floor", 0, 0, 2, "model", "the floor on a strictlimit bdi's threshold (mm/page-writeback.c __wb_calc_thresh), so that a bdi idle for long is not blocked: 0 none (before 6.13); 1 39ac99852fca (6.13): at least min((dirty limit - dirty) / 100, its max_ratio share / 4); 2 its consolidation into __wb_calc_thresh (\"mm/page-writeback: consolidate wb_thresh bumping logic\", Jim Zhao; mainline commit and release not verified here, after 6.13, before 6.18): at least (dirty limit - dirty) / 100, at most its max_ratio share. It matters only when bdi_writeout_ppm puts the bdi's share below the floor"),
    Param("bdi_writeout_ppm", 1_000_000, 0, 1_000_000, "model", "the bdi's share of recent writeout (wb_domain's fprop fraction), parts per million: its threshold is the dirty limit times this, at most its max_ratio share (1_000_000: the bdi is the only writer, the model's default, its threshold the max_ratio share). A bdi idle while other devices write has a small one; not re-estimated during a run"),
    Param("hang_threshold_ns", 2 * _S, 1, 3600 * _S, "model", "a wait on the server longer than this is a hang"),
    Param("sample_interval_ns", _MS, 1000, 3600 * _S, "model", "period of the memory time series"),
    Param("max_samples", 100000, 1, 10_000_000, "model", "most time-series samples kept"),
    Param("max_time_ns", 3600 * _S, _MS, 1 << 62, "model", "simulated time after which a run is declared stuck"),
    # -- CPU costs, ns (replaced by a calibrated cost profile when one exists)
    Param("write_syscall_ns", 1500, 0, _S, "cost", "fixed cost of one write(2)"),
    Param("write_page_ns", 600, 0, _S, "cost", "copy_from_user and page-cache work per page written"),
    Param("store_page_ns", 50, 0, _S, "cost", "CPU stores to one already-writable mapped page"),
    Param("fault_ns", 2000, 0, _S, "cost", "a write fault with page_mkwrite"),
    Param("cpus", 0, 0, 256, "cost", "CPUs shared by the application threads, the flusher and the server threads (0: each has its own); the machine's, in a machine profile"),
    Param("wakeup_ns", 5000, 0, _S, "cost", "a thread that slept on the server (or a page, the dirty limit) and is woken again: the two context switches and the FUSE request path around them"),
    Param("cache_add_ns", 1000, 0, _S, "cost", "allocating a page and adding it to the page cache (filemap_add_folio), for a page new to the cache"),
    # writepages and the temp-page path: who pays is model.md's "Who pays what"
    Param("wp_page_ns", 200, 0, _S, "cost", "writepages work per page in every strategy, paid by the flusher (or the fsync/sync caller): clear_page_dirty_for_io, folio_start_writeback, WB_WRITEBACK accounting and adding the page to the request (fuse_writepages_fill)"),
    Param("wp_request_ns", 2000, 0, _S, "cost", "writepages work per request in every strategy, paid by the same: fuse_writepage_args_setup, then queueing it (fuse_writepages_send, fuse_flush_writepages)"),
    Param("page_copy_ns", 400, 0, _S, "cost", "temp pages: copying a cold page-cache page into a fresh temp page (copy_highpage in fuse_writepage_args_page_fill), paid by the flusher per page, and per in-place update of a held copy"),
    Param("temp_alloc_ns", 180, 0, _S, "cost", "temp pages: allocating the temp page (folio_alloc(GFP_NOFS | __GFP_HIGHMEM) in fuse_writepages_fill, fuse_writepage_locked) with its NR_WRITEBACK_TEMP increment, paid by the flusher per page"),
    Param("temp_free_ns", 30, 0, _S, "cost", "temp pages: freeing the temp page (__free_page in fuse_writepage_free) with NR_WRITEBACK_TEMP's decrement (fuse_writepage_finish), paid by the server thread that writes the reply, per page"),
    Param("wb_lookup_ns", 50, 0, _S, "cost", "temp pages: one lookup in the inode's fi->writepages rb-tree under fi->lock (fuse_find_writeback): the flusher per page (fuse_writepage_need_send, fuse_writepage); the writer per page in fuse_write_begin (fuse_wait_on_page_writeback), in page_mkwrite and before a READ (fuse_do_readpage), when the tree is not empty"),
    Param("wb_tree_ns", 100, 0, _S, "cost", "temp pages: one update of fi->writepages under fi->lock: inserting a request (fuse_insert_writeback) or chaining or swapping a secondary (fuse_writepage_add), by the flusher per request; rb_erase in fuse_writepage_end, by the replying server thread per request, and re-inserting a chained secondary before it is sent"),
    Param("end_writeback_ns", 170, 0, _S, "cost", "ending PG_writeback of a page-cache page (folio_end_writeback): temp-page strategies in the flusher right after the copy (fuse_writepages_send); no-temp-page at the reply, in the server thread (fuse_writepage_free, 0c58a97f919c)"),
    Param("fsync_syscall_ns", 1000, 0, _S, "cost", "fixed cost of fsync/msync/sync"),
    Param("dio_base_ns", 50000, 0, 10 * _S, "cost", "latency of one direct-I/O read from the source device"),
    Param("dio_page_ns", 1000, 0, _S, "cost", "direct-I/O transfer time per page"),
    Param("reclaim_scan_ns", 100, 0, _S, "cost", "reclaim cost per LRU page scanned"),
    Param("compact_page_ns", 500, 0, _S, "cost", "compaction cost per page migrated"),
    # -- the userspace server
    Param("transport", 0, 0, 1, "server", "how the server reads requests and replies: 0 dev (read/write on /dev/fuse), 1 io_uring (FUSE over io_uring, 6.14, CONFIG_FUSE_IO_URING and fuse.enable_uring, libfuse >= 3.18). It changes no page decision: it selects the machine profile's server costs for that transport ([transport.io_uring]); a profile without measured io_uring costs refuses it"),
    Param("server_threads", 4, 1, 256, "server", "server threads reading requests"),
    Param("server_dist", 1, 0, 2, "server", "service-time distribution: 0 fixed, 1 exponential, 2 lognormal"),
    Param("server_base_ns", 20000, 1, 100 * _S, "server", "mean service time of a request, fixed part"),
    Param("server_page_ns", 2000, 0, _S, "server", "mean service time per page carried"),
    Param("server_new_page_ns", 2000, 0, _S, "server", "extra mean service time per page past the end of the server's copy of the file (it allocates and first touches memory)"),
    Param("server_wakeup_ns", 5000, 0, _S, "server", "extra service time of a request that finds the server's threads asleep (it arrived outside a reply): waking one"),
    Param("server_cpus", 0, 0, 256, "server", "most CPUs the server's requests occupy at once when cpus > 0 (0: all); calibrate measures how many the real server keeps busy while WRITEs are queued (1.4 of 2 here, so 1)"),
    Param("server_cpu_pct", 100, 0, 100, "server", "share of a service time spent on a CPU when cpus > 0 (100: an in-memory server; the rest is off-CPU waiting)"),
    Param("server_fsync_ns", 20000, 1, 100 * _S, "server", "mean service time of FUSE_FSYNC"),
    Param("stall_start_ns", -1, -1, 1 << 62, "server", "start of a stall window (-1: none)"),
    Param("stall_ns", 0, 0, 1 << 62, "server", "length of the stall window"),
)
PARAM_BY_NAME: Mapping[str, Param] = {p.name: p for p in PARAMS}
FLOAT_PARAMS = {"server_sigma": (0.5, 0.0, 4.0, "server", "lognormal sigma")}
# Per-strategy parameters; each strategy module gives its own defaults.
STRATEGY_PARAMS = ("writer_waits", "merge_queued_primary")


# ---- the active machine profile (bench/sim/machine.py; calibrate writes new ones) ----

def active_machine():
    """The active machine profile (bench.sim.machine.Machine), or None: the table's defaults."""
    from bench.sim import machine
    return machine.active()


def machine_provenance() -> dict[str, Any]:
    """What a result file's metadata["machine"] says: the active profile's name, content hash,
    source, provenance and values; the name "none" for the table's defaults."""
    m = active_machine()
    if m is None:
        from bench.sim import machine
        return {"name": "none", "sha256": machine.values_hash({}),
                "source": "the table of bench/sim/params.py", "values": {}}
    return m.summary()


def defaults() -> dict[str, Any]:
    """Every parameter's default as resolve uses it: the table, then the active machine."""
    cfg: dict[str, Any] = {p.name: p.default for p in PARAMS}
    cfg["server_sigma"] = FLOAT_PARAMS["server_sigma"][0]
    m = active_machine()
    if m is not None:
        cfg.update(m.values)
    return cfg


def machine_cpus() -> int:
    """The CPUs this process may run on, as a value of the `cpus` parameter."""
    return min(len(os.sched_getaffinity(0)), PARAM_BY_NAME["cpus"].hi)


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
            hasattr(value, "__index__")):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    v = int(value)
    if not lo <= v <= hi:
        raise ValueError(f"{name}: must be in {lo}..{hi}, got {v}")
    return v


def _min_free_pages(total_pages: int) -> int:
    # mm/page_alloc.c calculate_min_free_kbytes: int_sqrt(lowmem_kbytes * 16), 128 kB .. 256 MB.
    kb = min(max(math.isqrt(total_pages * 4 * 16), 128), 262144)
    return kb // 4


def resolve(strategy: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check `params` and return the full configuration both engines run.

    Unknown names and out-of-range values raise ValueError naming the field.  Parameters not
    given default to the active machine profile's values (``defaults``), then the table's.
    """
    strat = strategies.get(strategy)
    cfg = defaults()              # the table, then the active machine profile
    cfg.update(strat.defaults())
    cfg.setdefault("merge_queued_primary", 0)
    windows = None
    for key, value in params.items():
        if key == "server_dist" and isinstance(value, str):
            if value not in SERVER_DISTS:
                raise ValueError(f"server_dist: unknown {value!r}; allowed: {', '.join(SERVER_DISTS)}")
            cfg[key] = SERVER_DISTS.index(value)
        elif key == "transport" and isinstance(value, str):
            cfg[key] = transport_code(value)
        elif key in PARAM_BY_NAME:
            p = PARAM_BY_NAME[key]
            cfg[key] = _check_int(key, value, p.lo, p.hi)
        elif key == "server_sigma":
            _, lo, hi, _, _ = FLOAT_PARAMS[key]
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"server_sigma: expected a number, got {value!r}") from None
            if not lo <= v <= hi:
                raise ValueError(f"server_sigma: must be in {lo}..{hi}, got {v}")
            cfg[key] = v
        elif key in strat.params:
            cfg[key] = _check_int(key, value, 0, 1)
        elif key == "stall_windows":
            windows = value
        else:
            allowed = sorted(list(PARAM_BY_NAME) + list(FLOAT_PARAMS) + list(strat.params) + ["stall_windows"])
            raise ValueError(f"unknown parameter {key!r} for strategy {strategy}; allowed: {', '.join(allowed)}")
    if cfg["transport"]:
        _apply_transport(cfg, params)
    if cfg["request_timeout_ns"] % 1_000_000_000:
        raise ValueError("request_timeout_ns: the kernel takes whole seconds (init_out.request_timeout, "
                         f"fs.fuse.*_request_timeout), got {cfg['request_timeout_ns']}")
    if cfg["dirty_background_ratio"] >= cfg["dirty_ratio"]:
        raise ValueError("dirty_background_ratio: must be below dirty_ratio "
                         f"({cfg['dirty_background_ratio']} >= {cfg['dirty_ratio']})")
    if cfg["max_write"] == 0:
        cfg["max_write"] = cfg["max_pages"] * 4096
    elif cfg["max_write"] < 4096:
        raise ValueError(f"max_write: must be 0 or >= 4096, got {cfg['max_write']}")
    total = cfg["mem_total_pages"]
    wmin = cfg["wmark_min_pages"] or _min_free_pages(total)
    # __setup_per_zone_wmarks: the gap is max(min/4, managed * watermark_scale_factor(10) / 10000).
    gap = max(wmin // 4, total * 10 // 10000)
    cfg["wmark_min_pages"] = wmin
    cfg["wmark_low_pages"] = wmin + gap
    cfg["wmark_high_pages"] = wmin + 2 * gap
    if cfg["wmark_high_pages"] >= total // 2:
        raise ValueError(f"wmark_min_pages: watermarks must stay below half of memory, got {wmin}")
    if cfg["wb_chunk_pages"] == 0:
        # fs-writeback.c writeback_chunk_size for background work on a new bdi:
        # min(avg_write_bandwidth / 2, global dirty limit / DIRTY_SCOPE) + MIN_WRITEBACK_PAGES,
        # rounded down to MIN_WRITEBACK_PAGES; avg_write_bandwidth starts at INIT_BW.
        limit = total * cfg["dirty_ratio"] // 100
        chunk = min(cfg["dirty_ratelimit_pps"] // 2, limit // 8) + 1024
        cfg["wb_chunk_pages"] = chunk - chunk % 1024
    cfg["stall_windows"] = _stall_windows(cfg, windows)
    cfg["strategy"] = strat.code
    return cfg


def transport_code(value: Any) -> int:
    """`transport` as the engines take it: 0 dev, 1 io_uring (a name or the number)."""
    if isinstance(value, str):
        if value not in TRANSPORTS:
            raise ValueError(f"transport: unknown {value!r}; allowed: {', '.join(TRANSPORTS)}")
        return TRANSPORTS.index(value)
    p = PARAM_BY_NAME["transport"]
    return _check_int("transport", value, p.lo, p.hi)


def _apply_transport(cfg: dict[str, Any], given: Mapping[str, Any]) -> None:
    """transport=io_uring: the active machine profile's measured io_uring server costs replace
    its /dev/fuse ones (a caller's explicit value still wins); a profile that has none (or the
    table alone) is refused with its reason."""
    name = TRANSPORTS[cfg["transport"]]
    m = active_machine()
    if m is None:
        raise ValueError(f"transport: {name}: the parameter table has no {name} costs; pick a "
                         "machine profile that measured them (--machine)")
    costs, reason = m.transport_costs(name)
    if costs is None:
        raise ValueError(f"transport: {name}: not measured on machine {m.name}, because {reason}")
    for key, value in costs.items():
        if key not in given:
            cfg[key] = value


def _stall_windows(cfg: Mapping[str, Any], windows: Any) -> list[tuple[int, int]]:
    """Sorted, non-overlapping (start_ns, end_ns) windows in which the server is stuck."""
    if windows is None:
        if cfg["stall_start_ns"] < 0 or cfg["stall_ns"] == 0:
            return []
        windows = [(cfg["stall_start_ns"], cfg["stall_ns"])]
    try:
        pairs = [(int(s), int(n)) for s, n in windows]
    except (TypeError, ValueError):
        raise ValueError("stall_windows: expected a list of (start_ns, length_ns) pairs") from None
    if len(pairs) > MAX_STALL_WINDOWS:
        raise ValueError(f"stall_windows: at most {MAX_STALL_WINDOWS} windows")
    out: list[tuple[int, int]] = []
    for s, n in sorted(pairs):
        if s < 0 or n <= 0:
            raise ValueError("stall_windows: start must be >= 0 and length > 0")
        if out and s < out[-1][1]:
            raise ValueError("stall_windows: windows overlap")
        out.append((s, s + n))
    return out
