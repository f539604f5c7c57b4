"""Measure the simulator's CPU costs and server times on this machine: ``python -m bench calibrate``.

Every value is the median of repeated measurements (bench.results.stats: median and its 95% bootstrap
CI), taken on a real FUSE mount of our server (bench.real.mount) by the C workload driver, whose
per-call CLOCK_MONOTONIC timings are the data; nothing is timed from Python.  What each value
is, and how it is measured:

  page_copy_ns       memcpy of one 4 KiB page, user space: fwb_drv_time_page_copy copies a
                     1 MiB batch of 256 distinct pages (cache-warm) per round; value = round / 256.
                     The kernel's temp-page copy (copy_highpage) is the same memcpy.
  write_syscall_ns,  pwrite(2) of k = 1, 2, 4, ..., 64 whole pages over pages of the mount's
  write_page_ns      page cache that are cached and clean (the file was written and fsynced
                     first); one least-squares line through the per-k medians:
                     write(k) = write_syscall_ns + k * write_page_ns.
  store_page_ns      a 4096-byte store (memset) to a mapped page already made writable, minus a
                     64-byte store to it (the driver's per-row overhead).
  fault_ns           the first store to a clean, cached page of a MAP_SHARED mapping of a FUSE
                     file: a write fault with page_mkwrite (rows where getrusage saw a fault;
                     a 64-byte store to a writable page, the driver's overhead, is subtracted).
  fsync_syscall_ns   fsync(2) of a file on tmpfs (noop_fsync): the call's fixed cost.
  server_base_ns,    the server's time per WRITE while requests are queued, which is what the
  server_page_ns,    simulator's service time is (CPU time of the server and of the kernel's
  server_new_page_ns transfer, on server_cpus CPUs): each round, an fsync drains 512 queued
                     one-page WRITEs (every other page, so none merge) and another 64 32-page
                     ones, first on pages new to the server, then on the same pages again.
                     Time per WRITE = server_cpus * (fsync - one FUSE_FSYNC) / WRITEs; per page
                     = (32-page - one-page) / 31, fixed = one-page - per page, on the known
                     pages; server_new_page_ns = the per-page slope on new pages minus
                     server_page_ns.  Nothing is taken off for writepages, which the simulator
                     runs on the writer's CPU beside the server (as the kernel does).  One
                     WRITE at a time on an idle machine (fsync of N dirty pages minus fsync of
                     none) is recorded beside it as "round_trip": it is mostly wake-up latency
                     (30 to 40 us here, against 5 to 8 us of work) and moves with the machine's
                     idle state, so it is not the service time.
  server_fsync_ns    8 threads fsync their clean files 200 times each at once: server_cpus *
                     span / fsyncs - fsync_syscall_ns.  One idle fsync is recorded beside it.
  server_cpus        the server process's CPU time (getrusage of the reaped server) over the
                     time the drain's fsyncs took, rounded (1..cpus): how many CPUs the server
                     keeps busy while WRITEs are queued (1.36 to 1.42 of 2 here, with one file
                     or four).
  wakeup_ns          one thread fsyncs a clean file 2000 and 500 times (two mounts): this
                     process's CPU time (getrusage) per extra fsync, less fsync_syscall_ns: the
                     caller's sleep, wake-up and FUSE request path of one round trip.
  server_wakeup_ns   the server's CPU time (getrusage of the reaped server) per FUSE_FSYNC in
                     that loop, where each request wakes a server thread, less the same with 8
                     threads fsyncing at once, where its threads stay busy.
  server_threads,    the real server's configuration as bench.real.mount runs it (16 threads, no
  server_dist        artificial delay: "fixed" service times), so the simulator models it.
  cache_add_ns       pwrite(2) of k pages appended to a file (pages new to the page cache), the
                     same line as write_page_ns: its slope minus write_page_ns.
  cpus               the CPUs this process may run on (os.sched_getaffinity): the application,
                     the flusher and the server shared them during the measurements.

Not measured (the table's defaults stay): wp_page_ns, wp_request_ns (writepages work inside the
kernel has no user-visible clock of its own), dio_*, reclaim_scan_ns, compact_page_ns.

The profile is JSON (bench.sim.params.PROFILE_FORMAT, schema version PROFILE_VERSION): ``values``
(what bench.sim.params.resolve uses), ``measurements`` (per value: the median, its CI, n, unit and
method, plus the raw per-size medians of the fitted lines) and ``provenance``
(bench.results.provenance.collect: kernel, CPU, date, git commit).  It is written atomically and never
replaces a file without --force.  The active profile is results/cost-profile.json (see
bench.sim.params); ``calibrate -o PATH`` writes elsewhere, and FWB_COST_PROFILE=PATH makes that one
active for a shell.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.sim import params as _params
from bench.results import stats
from bench.sim.ops import FSYNC, MMAP_STORE, MSYNC, OP_DTYPE, PAGE_SIZE, WRITE

__all__ = ["measure", "build_profile", "save", "load", "render", "run_driver",
           "add_parsers", "cmd_calibrate", "WRITE_SIZES", "FSYNC_SIZES"]

WRITE_SIZES = (1, 2, 4, 8, 16, 32, 64)        # pages per pwrite
FSYNC_SIZES = (0, 1, 2, 4, 8, 16, 32)         # dirty pages before fsync (<= max_pages: one WRITE)
COPY_PAGES = 256
FAULTS_PER_ROUND = 64
REGION = 256 * PAGE_SIZE                      # 1 MiB per file: far below any dirty limit
# The mount's server, as bench.real.mount runs it by default.
MOUNT_SERVER = {"server_threads": 16, "server_dist": 0}


# ---- running the C driver on any files (tmpfs here; bench.real.mount runs it on a mount) ----

def run_driver(paths: list[str], ops: np.ndarray, map_len: list[int] | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run `ops` with the C driver on `paths` (created if missing) -> (start, latency, faults)
    per row, ns.  RuntimeError when the driver fails."""
    from bench.real import _driver
    ffi, lib = _driver.ffi, _driver.lib
    ops = np.ascontiguousarray(ops, dtype=OP_DTYPE)
    n = len(ops)
    start, lat, faults = (np.full(n, -1, np.int64), np.full(n, -1, np.int64),
                          np.zeros(n, np.int64))
    ml = np.asarray(map_len if map_len is not None else [0] * len(paths), np.int64)
    keep = [ffi.new("char[]", os.fsencode(p)) for p in paths]
    c_paths = ffi.new("char *[]", keep)
    run = ffi.new("fwb_drv_run *")
    run.ops = ffi.cast("const fwb_drv_op *", ffi.from_buffer(ops))
    run.n_ops = n
    run.n_threads = int(ops["thread"].max()) + 1
    run.n_files = len(paths)
    run.paths = c_paths
    run.map_len = ffi.cast("const int64_t *", ffi.from_buffer(ml))
    run.dio_path = ffi.NULL
    run.start_ns = ffi.cast("int64_t *", ffi.from_buffer(start))
    run.latency_ns = ffi.cast("int64_t *", ffi.from_buffer(lat))
    run.faults = ffi.cast("int64_t *", ffi.from_buffer(faults))
    rc = lib.fwb_drive(run)
    if rc != 0:
        err = int(run.err_errno)
        raise RuntimeError(f"driver: {ffi.string(lib.fwb_drv_strerror(rc)).decode()} at row "
                           f"{int(run.err_row)}" + (f": {os.strerror(err)}" if err else ""))
    return start, lat, faults


def time_page_copy(reps: int = 200) -> np.ndarray:
    """ns per 4 KiB page copied, one value per round of COPY_PAGES pages."""
    from bench.real import _driver
    out = np.zeros(reps, np.int64)
    rc = _driver.lib.fwb_drv_time_page_copy(COPY_PAGES, reps,
                                             _driver.ffi.cast("int64_t *", _driver.ffi.from_buffer(out)))
    if rc != 0:
        raise RuntimeError(f"fwb_drv_time_page_copy: error {rc}")
    return out / COPY_PAGES


# ---- the calibration workload ----

class _Rows:
    """Rows of one thread, in program order (time 0: back to back)."""

    def __init__(self):
        self.rows: list[tuple] = []
        self.tags: list[tuple] = []

    def add(self, op: int, file: int, offset: int = 0, length: int = 0, tag: tuple = ()) -> None:
        self.rows.append((0, 0, op, file, 0, offset, length))
        self.tags.append(tag)

    def array(self) -> np.ndarray:
        return np.array(self.rows, dtype=OP_DTYPE)


def calibration_rows(rounds: int) -> tuple[np.ndarray, list[tuple]]:
    """The operation array run on the mount, and a tag per row naming what it measures.

    File 0: pwrite of k pages over clean cached pages, every k once a round, then fsync.
    File 1: N pages written, then a timed fsync ("fsync", N).
    File 2 (mapped): the first store to each of 64 clean cached pages (a fault), a 64-byte and a
    4 KiB store to the same page (no fault), then msync (clean and write-protected again).
    Files 3 and 4, empty at the start: files 0 and 1's calls on appended (new) pages."""
    r = _Rows()
    appended = {3: 0, 4: 0}
    for f in range(3):                    # every page cached, then clean
        r.add(WRITE, f, 0, REGION)
        r.add(FSYNC, f)
    for rnd in range(rounds):
        at = 0
        for k in (WRITE_SIZES if rnd % 2 == 0 else WRITE_SIZES[::-1]):
            r.add(WRITE, 0, at * PAGE_SIZE, k * PAGE_SIZE, ("write", k))
            at += k
        r.add(FSYNC, 0)
        for n in (FSYNC_SIZES if rnd % 2 == 0 else FSYNC_SIZES[::-1]):
            if n:
                r.add(WRITE, 1, 0, n * PAGE_SIZE)
            r.add(FSYNC, 1, tag=("fsync", n))
        base = (rnd % (REGION // PAGE_SIZE // FAULTS_PER_ROUND)) * FAULTS_PER_ROUND
        for i in range(FAULTS_PER_ROUND):
            off = (base + i) * PAGE_SIZE
            r.add(MMAP_STORE, 2, off, 64, ("fault",))
            r.add(MMAP_STORE, 2, off, 64, ("store64",))
            r.add(MMAP_STORE, 2, off, PAGE_SIZE, ("store",))
        r.add(MSYNC, 2, base * PAGE_SIZE, FAULTS_PER_ROUND * PAGE_SIZE)
        # The same calls on pages new to the cache and to the server, for cache_add_ns and the
        # recorded round trips (file 3 grows by appends, file 4 likewise before each fsync).
        for k in (WRITE_SIZES if rnd % 2 == 0 else WRITE_SIZES[::-1]):
            r.add(WRITE, 3, appended[3], k * PAGE_SIZE, ("append", k))
            appended[3] += k * PAGE_SIZE
        r.add(FSYNC, 3)
        for n in (FSYNC_SIZES if rnd % 2 == 0 else FSYNC_SIZES[::-1]):
            if n:
                r.add(WRITE, 4, appended[4], n * PAGE_SIZE)
                appended[4] += n * PAGE_SIZE
            r.add(FSYNC, 4, tag=("fsync-append", n))
    return r.array(), r.tags


# The drain: N WRITEs of k pages queued at once by one fsync, on pages new to the server and then
# on the same pages again.  N * k stays far below the bdi's freerun ceiling on the machines we
# calibrate (tens of MiB), so no background writeback starts before the fsync.
DRAIN = {1: 512, 32: 64}                      # pages per WRITE -> WRITEs per drain


def drain_rows(rounds: int) -> tuple[np.ndarray, list[tuple], list[int]]:
    """Rows of the drain run, their tags ("drain-new" or "drain-old", k) on the timed fsyncs, and
    the file sizes.  File 0 takes the one-page WRITEs (every other page, so that no two merge),
    file 1 the 32-page ones; each round writes a fresh region (new to the server), fsyncs, then
    writes the same pages again and fsyncs."""
    r = _Rows()
    at = {1: 0, 32: 0}
    for rnd in range(rounds):
        for k, f in ((1, 0), (32, 1)):
            n = DRAIN[k]
            pages = [at[k] + (2 * i if k == 1 else i) for i in range(n * (1 if k == 1 else k))]
            for again in ("drain-new", "drain-old"):
                if k == 1:
                    for pg in pages:
                        r.add(WRITE, f, pg * PAGE_SIZE, PAGE_SIZE)
                else:
                    for i in range(n):
                        r.add(WRITE, f, (at[k] + i * k) * PAGE_SIZE, k * PAGE_SIZE)
                r.add(FSYNC, f, tag=(again, k))
            at[k] = pages[-1] + 1
    return r.array(), r.tags, [0, 0]


STORM_THREADS, STORM_FSYNCS = 8, 200
PINGPONG_FSYNCS = 2000


def fsync_rows(threads: int, per: int) -> np.ndarray:
    """`threads` threads, each fsyncing its own clean file `per` times (after one write and
    one fsync that make it clean), all at once."""
    rows = []
    for t in range(threads):
        rows.append((0, t, WRITE, t, 0, 0, PAGE_SIZE))
        rows += [(0, t, FSYNC, t, 0, 0, 0)] * (per + 1)
    return np.array(rows, dtype=OP_DTYPE)


def _fsync_loop(threads: int, per: int):
    """fsync_rows on a fresh mount -> (result, rows, this process's CPU ns, the server's)."""
    from bench.real import mount
    from bench.sim import workload
    ops = fsync_rows(threads, per)
    s0, c0 = _cpu_ns("self"), _cpu_ns("children")
    res = mount.execute(workload.from_arrays(ops, np.zeros(threads, np.int64),
                                              name="calibrate-fsync"), 0, timeout_s=120)
    return res, ops, _cpu_ns("self") - s0, _cpu_ns("children") - c0


def _cpu_ns(who: str) -> int:
    """User + system CPU time, ns, of this process ("self") or of its reaped children
    ("children": the servers, counted once each has exited at unmount)."""
    import resource
    u = resource.getrusage(resource.RUSAGE_SELF if who == "self" else resource.RUSAGE_CHILDREN)
    return int((u.ru_utime + u.ru_stime) * 1e9)


def _summary(values, unit: str, method: str, **extra) -> dict:
    s = stats.summarize(values)
    return {"median": s.median, "ci95": [s.lo, s.hi], "n": s.n, "unit": unit, "method": method,
            **extra}


def _fit(xs, meds) -> tuple[float, float]:
    """(intercept, slope) of the line through (x, median) with the least relative squared error
    (weights 1/median), so that the one-page point counts as much as the 64-page one."""
    y = np.asarray(meds, float)
    slope, intercept = np.polyfit(np.asarray(xs, float), y, 1, w=1 / np.maximum(np.abs(y), 1))
    return float(intercept), float(slope)


def measure(rounds: int = 200, copy_reps: int = 200,
            progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run every measurement; returns {"values": ..., "measurements": ...}.  Needs a mount."""
    from bench.real import mount
    from bench.sim import workload
    ok, why = mount.available()
    if not ok:
        raise RuntimeError(f"calibrate needs a real mount: {why}")
    meas: dict[str, Any] = {}

    progress("page copy (memcpy, C)")
    copy = time_page_copy(copy_reps)
    meas["page_copy_ns"] = _summary(copy, "ns/page", f"fwb_drv_time_page_copy: memcpy of "
                                    f"{COPY_PAGES} distinct 4 KiB pages (1 MiB, cache-warm) per "
                                    f"round, {copy_reps} rounds; round time / {COPY_PAGES}")

    progress("fsync on tmpfs")
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    with tempfile.TemporaryDirectory(dir=shm, prefix="fwb-cal-") as d:
        r = _Rows()
        r.add(WRITE, 0, 0, PAGE_SIZE)
        for _ in range(rounds * 10):
            r.add(FSYNC, 0, tag=("tmpfs-fsync",))
        _, lat, _ = run_driver([os.path.join(d, "f")], r.array())
        tm = lat[[t == ("tmpfs-fsync",) for t in r.tags]]
    meas["fsync_syscall_ns"] = _summary(tm, "ns", f"fsync(2) of a file on tmpfs ({shm}; "
                                        "noop_fsync): the call's fixed cost, C driver clock")

    progress(f"mount: {rounds} rounds of pwrite / fsync / fault rows")
    ops, tags = calibration_rows(rounds)
    wl = workload.from_arrays(ops, np.array([REGION] * 3 + [0, 0], np.int64), name="calibrate",
                               params={"rounds": rounds})
    res = mount.execute(wl, 0, timeout_s=120)
    lat, faults = res.latency_ns, res.faults
    tag_arr = np.array([t[0] if t else "" for t in tags])
    size_arr = np.array([t[1] if len(t) > 1 else -1 for t in tags])
    if (lat < 0).any():
        raise RuntimeError("calibration run: some rows did not run")

    per_k = {k: lat[(tag_arr == "write") & (size_arr == k)] for k in WRITE_SIZES}
    meds = [float(np.median(per_k[k])) for k in WRITE_SIZES]
    b0, b1 = _fit(WRITE_SIZES, meds)
    by_size = {str(k): _summary(per_k[k], "ns", "pwrite of k pages") for k in WRITE_SIZES}
    meas["write_syscall_ns"] = {"median": b0, "unit": "ns", "n": int(sum(len(v) for v in per_k.values())),
                                "method": "intercept of the least-squares line through the "
                                "medians of pwrite(2) of k whole, cached, clean pages of a FUSE "
                                "file (writeback cache) against k, C driver clock",
                                "by_pages": by_size}
    meas["write_page_ns"] = {"median": b1, "unit": "ns/page", "n": meas["write_syscall_ns"]["n"],
                             "method": "slope of the same line", "by_pages": by_size}

    # The driver's own per-row overhead (clock reads, setjmp) is the 64-byte store to a page
    # already writable: subtracted from both.
    s64 = float(np.median(lat[(tag_arr == "store64") & (faults == 0)]))
    store = lat[(tag_arr == "store") & (faults == 0)] - s64
    meas["store_page_ns"] = _summary(store, "ns/page", "memset of 4096 bytes to a mapped FUSE "
                                     "page already made writable (no fault) minus a 64-byte store "
                                     "to it (the driver's per-row overhead), C driver clock",
                                     overhead_ns=s64)
    is_fault = (tag_arr == "fault") & (faults > 0)
    fault = lat[is_fault] - s64
    meas["fault_ns"] = _summary(fault, "ns", "the first 64-byte store to a clean, cached page of "
                                "a MAP_SHARED FUSE mapping (write fault + page_mkwrite; rows "
                                "where getrusage counted a fault), minus a 64-byte store to a "
                                "writable page",
                                rows=int((tag_arr == "fault").sum()), rows_with_fault=int(is_fault.sum()))

    per_n = {n: lat[(tag_arr == "fsync") & (size_arr == n)] for n in FSYNC_SIZES}
    f0 = float(np.median(per_n[0]))
    meas["server_fsync_ns"] = _summary(per_n[0] - meas["fsync_syscall_ns"]["median"], "ns",
                                       "fsync(2) of a clean FUSE file (one FUSE_FSYNC round trip) "
                                       "minus fsync_syscall_ns")
    ns = [n for n in FSYNC_SIZES if n]
    dmeds = [float(np.median(per_n[n])) - f0 for n in ns]
    a0, a1 = _fit(ns, dmeds)
    # The server's own view of the same WRITEs: receive-to-reply in its log.
    writes = res.log[res.log["kind"] == mount.KIND_WRITE]
    handler = {}
    for n in ns:
        sel = writes[writes["size"] == n * PAGE_SIZE]
        if len(sel):
            handler[str(n)] = _summary(sel["t_reply_ns"] - sel["t_recv_ns"], "ns",
                                       f"server log receive-to-reply of {n}-page WRITEs")
    fsync_rt = {str(n): _summary(per_n[n], "ns", f"fsync(2) after dirtying {n} pages")
                for n in FSYNC_SIZES}
    common = {"by_pages_fsync": fsync_rt, "by_pages_server_handler": handler,
              "n": int(sum(len(per_n[n]) for n in FSYNC_SIZES))}
    round_trip = {"fixed_ns": a0, "per_page_ns": a1, "method": "one WRITE at a time, idle "
                  "machine: intercept and slope of the least-squares line through "
                  "median(fsync of N dirty pages) - median(fsync of none), N = "
                  f"{', '.join(map(str, ns))}; latency, not CPU cost (wake-ups from idle "
                  "included), so not the service time", **common}
    # The same on pages new to the cache and to the server: what they cost more per page.
    per_a = {k: lat[(tag_arr == "append") & (size_arr == k)] for k in WRITE_SIZES}
    c0, c1 = _fit(WRITE_SIZES, [float(np.median(per_a[k])) for k in WRITE_SIZES])
    per_fa = {n: lat[(tag_arr == "fsync-append") & (size_arr == n)] for n in FSYNC_SIZES}
    fa0 = float(np.median(per_fa[0]))
    d0, d1 = _fit(ns, [float(np.median(per_fa[n])) - fa0 for n in ns])
    new_pages = {"fixed_ns": c0, "per_page_ns": c1, "method": "pwrite(2) of k pages appended "
                 "to a file (pages new to the page cache), the same fit as write_syscall_ns / "
                 "write_page_ns",
                 "by_pages": {str(k): _summary(per_a[k], "ns", "append of k pages")
                              for k in WRITE_SIZES}}
    new_rt = {"fixed_ns": d0, "per_page_ns": d1, "method": "fsync of N appended pages minus "
              "fsync of none (the server grows the file: allocation and first touch of its "
              "memory)", "by_pages": {str(n): _summary(per_fa[n], "ns", "fsync")
                                      for n in FSYNC_SIZES}}
    meas["cache_add_ns"] = {"median": c1 - b1, "unit": "ns/page", "method": "slope of the "
                            "append line minus write_page_ns: what a page new to the cache adds "
                            "to write(2) (allocation, filemap_add_folio)", "appends": new_pages}
    cpus = _params.machine_cpus()
    drain_rounds = max(3, rounds // 5)
    progress(f"mount: {drain_rounds} rounds of queued WRITEs drained by fsync")
    dops, dtags, dsizes = drain_rows(drain_rounds)
    dwl = workload.from_arrays(dops, np.array(dsizes, np.int64), name="calibrate-drain",
                                params={"rounds": drain_rounds})
    used0 = _cpu_ns("children")
    dres = mount.execute(dwl, 0, timeout_s=120)
    server_cpu = _cpu_ns("children") - used0            # the server process, reaped at unmount
    if (dres.latency_ns < 0).any():
        raise RuntimeError("calibration drain run: some rows did not run")
    # How many CPUs the server kept busy while WRITEs were queued: its CPU time over the time
    # the fsyncs drained them (its start and end add a little).  With 2 CPUs this machine's
    # server used 1.1 to 1.4 of them, with 1 or 4 files: the rest stays idle.
    timed = np.array([bool(t) for t in dtags])
    drain_ns = float(dres.latency_ns[timed].sum())
    busy = server_cpu / drain_ns if drain_ns > 0 else 1.0
    server_cpus = int(min(max(1, round(busy)), cpus))
    # CPU time per WRITE, per round: the drain keeps max_background WRITEs queued, so the server
    # keeps server_cpus CPUs busy; less one FUSE_FSYNC round trip.
    per = {key: server_cpus * (dres.latency_ns[[t == key for t in dtags]] - f0) / DRAIN[key[1]]
           for key in {t for t in dtags if t}}
    page = (per[("drain-old", 32)] - per[("drain-old", 1)]) / 31
    base = per[("drain-old", 1)] - page
    new = (per[("drain-new", 32)] - per[("drain-new", 1)]) / 31 - page
    seen = dres.log[dres.log["kind"] == mount.KIND_WRITE]["size"] // PAGE_SIZE
    drain = {"cpus": cpus, "server_cpus": server_cpus, "server_cpu_ns": server_cpu,
             "drain_ns": drain_ns, "server_busy_cpus": busy, "rounds": drain_rounds, "writes_per_drain": {str(k): n for k, n in DRAIN.items()},
             "writes_seen": {str(k): int((seen == k).sum()) for k in DRAIN},
             "per_write_ns": {f"{kind} {k}": _summary(v, "ns", f"cpus * (fsync - FUSE_FSYNC) / "
                                                       f"{DRAIN[k]} WRITEs of {k} page(s)")
                              for (kind, k), v in sorted(per.items())}}
    # Nothing is taken off for writepages: the drain's time per WRITE is that of the whole
    # serial pipeline, and the simulator runs its writepages work (wp_*_ns) on the writer's
    # CPU beside the server's, as the kernel does in the fsync caller or the flusher.
    how = ("from the drain: fsync of {} queued one-page WRITEs and of {} 32-page ones, the "
           "server keeping server_cpus CPUs busy: CPU time per WRITE = server_cpus * (fsync - "
           "FUSE_FSYNC) / WRITEs; per page = (32-page - one-page) / 31; ").format(DRAIN[1], DRAIN[32])
    meas["server_base_ns"] = _summary(base, "ns", how + "fixed part = one-page - per page; "
                                      "per-round values", drain=drain, round_trip=round_trip)
    meas["server_page_ns"] = _summary(page, "ns/page", how + "per-round values", drain=drain,
                                      round_trip=round_trip)
    meas["server_new_page_ns"] = _summary(new, "ns/page", how + "on pages new to the server, "
                                          "less the same on pages it has: what a page the server "
                                          "has never had adds to a WRITE; per-round values",
                                          drain=drain, appends=new_rt)
    values = {k: max(0, int(round(m["median"]))) for k, m in meas.items()}
    values["server_base_ns"] = max(1, values["server_base_ns"])
    values["server_fsync_ns"] = max(1, values["server_fsync_ns"])
    values.update(MOUNT_SERVER)
    meas["server_threads"] = {"median": 16, "unit": "threads", "method": "bench.real.mount's server "
                              "default (--threads=16)"}
    meas["server_dist"] = {"median": 0, "unit": "", "method": "fixed: the real server adds no "
                           "random delay (bench.real.mount default --delay=fixed --delay-ns=0)"}
    # The CPUs the mount's work shared: the ones this process may run on.
    # FUSE_FSYNC the same way: many at once from STORM_THREADS threads, so that the server
    # is busy; the first fsync of each thread (it sends the WRITE) is left out.
    progress(f"mount: {STORM_THREADS} threads x {STORM_FSYNCS} fsyncs of clean files at once")
    _, _, _, storm_small = _fsync_loop(STORM_THREADS, STORM_FSYNCS // 4)
    sres, sops, _, storm_big = _fsync_loop(STORM_THREADS, STORM_FSYNCS)
    is_f = sops["op"] == FSYNC
    first = np.zeros(len(sops), bool)
    first[np.flatnonzero(is_f & (np.roll(sops["op"], 1) == WRITE))] = True
    timed = is_f & ~first
    start = sres.start_ns[timed]
    span = float((start + sres.latency_ns[timed]).max() - start.min())
    n_f = int(timed.sum())
    storm = server_cpus * span / n_f - meas["fsync_syscall_ns"]["median"]
    meas["server_fsync_ns"] = {"median": storm, "unit": "ns", "n": n_f, "method":
                               f"{n_f} fsync(2) of clean FUSE files from {STORM_THREADS} threads "
                               "at once: server_cpus * span / fsyncs - fsync_syscall_ns (the "
                               "server's time per FUSE_FSYNC while busy)",
                               "round_trip": _summary(per_n[0] - meas["fsync_syscall_ns"]["median"],
                                                      "ns", "one fsync(2) at a time, idle: "
                                                      "latency, not the service time")}
    values["server_fsync_ns"] = max(1, int(round(storm)))
    # Sleeping and being woken: one thread fsyncing in a loop sleeps in every call, and each
    # FUSE_FSYNC finds the server's threads asleep.  CPU time by getrusage, as the difference
    # of a long and a short run (what starting and stopping a mount costs cancels out): this
    # process (the caller; its Python threads add well under 1 us per call) and the server.
    progress(f"mount: one thread, {PINGPONG_FSYNCS} fsyncs of a clean file in a row")
    _, _, app_small, srv_small = _fsync_loop(1, PINGPONG_FSYNCS // 4)
    _, _, app_big, srv_big = _fsync_loop(1, PINGPONG_FSYNCS)
    n_pp = PINGPONG_FSYNCS - PINGPONG_FSYNCS // 4
    n_storm = STORM_THREADS * (STORM_FSYNCS - STORM_FSYNCS // 4)
    app_per = (app_big - app_small) / n_pp
    srv_pp = (srv_big - srv_small) / n_pp
    srv_busy = (storm_big - storm_small) / n_storm
    meas["wakeup_ns"] = {"median": app_per - meas["fsync_syscall_ns"]["median"], "unit": "ns",
                         "n": n_pp, "method": "the caller's CPU time per fsync(2) of a clean FUSE "
                         "file in a loop (it sleeps until FUSE_FSYNC is answered), less "
                         "fsync_syscall_ns: the sleep, the wake-up and the request path around "
                         "them", "cpu_per_fsync_ns": app_per}
    meas["server_wakeup_ns"] = {"median": srv_pp - srv_busy, "unit": "ns", "method": "the "
                                "server's CPU time per FUSE_FSYNC from one thread in a loop "
                                "(each one wakes a server thread) less the same with "
                                f"{STORM_THREADS} threads at once (its threads stay busy)",
                                "cpu_per_fsync_alone_ns": srv_pp, "cpu_per_fsync_busy_ns": srv_busy}
    values["wakeup_ns"] = max(0, int(round(meas["wakeup_ns"]["median"])))
    values["server_wakeup_ns"] = max(0, int(round(meas["server_wakeup_ns"]["median"])))
    values["cpus"] = cpus
    meas["cpus"] = {"median": cpus, "unit": "CPUs", "method": "os.sched_getaffinity: "
                    "the CPUs the application, the flusher and the server shared"}
    values["server_cpus"] = server_cpus
    meas["server_cpus"] = {"median": server_cpus, "unit": "CPUs", "method": "the server "
                           "process's CPU time (getrusage of its reaped process) over the time "
                           f"the drain's fsyncs took, rounded, 1..cpus: {busy:.2f}",
                           "server_cpu_ns": server_cpu, "drain_ns": drain_ns}
    return {"values": values, "measurements": meas,
            "mount": {"server": res.info.get("server"), "family": res.info.get("family"),
                      "bdi": res.info.get("bdi")}}


# ---- the profile file ----

def build_profile(measured: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A profile document (values checked against bench.sim.params) with provenance."""
    from bench.results import provenance
    prov = provenance.collect(command="calibrate", **extra)
    prov.pop("cost_profile", None)        # a profile does not come from a profile
    doc = {"format": _params.PROFILE_FORMAT, "schema_version": _params.PROFILE_VERSION,
           "values": dict(measured["values"]), "measurements": measured["measurements"],
           "mount": measured.get("mount", {}), "provenance": prov}
    _params.check_profile(doc)
    return doc


def save(doc: dict[str, Any], path: str | os.PathLike, force: bool = False) -> Path:
    """Write a profile atomically (temp file + rename); refuse to replace one unless force."""
    from bench.results.fileio import check_writable, write_checked
    p = check_writable(path, force, _EXISTS)
    _params.check_profile(doc, str(p))
    return write_checked(p, (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode(), force,
                         _EXISTS)


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a profile document."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise ValueError(f"{p}: no such cost profile") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not JSON (line {exc.lineno}: {exc.msg})") from None
    _params.check_profile(doc, str(p))
    return doc


def render(doc: dict[str, Any]) -> str:
    """A table: parameter, table default, calibrated value, CI, n, method (first clause)."""
    lines = [f"{'parameter':18s} {'default':>9s} {'calibrated':>11s}  {'95% CI':>19s} {'n':>6s}  method"]
    for key, v in doc["values"].items():
        m = doc["measurements"].get(key, {})
        p = _params.PARAM_BY_NAME[key]
        ci = m.get("ci95")
        ci_s = f"{ci[0]:.0f}..{ci[1]:.0f}" if ci else ""
        method = m.get("method", "").split(":")[0]
        lines.append(f"{key:18s} {p.default:9d} {v:11d}  {ci_s:>19s} {m.get('n', ''):>6}  {method}")
    meas = doc["measurements"]
    rt = meas.get("server_base_ns", {}).get("round_trip", {})
    for title, rows in (("pwrite(2) by pages", meas.get("write_syscall_ns", {}).get("by_pages")),
                        ("fsync(2) after N dirty pages (idle round trips)", rt.get("by_pages_fsync")),
                        ("server handler (log receive-to-reply) by WRITE pages",
                         rt.get("by_pages_server_handler")),
                        ("drain: CPU time per WRITE",
                         meas.get("server_base_ns", {}).get("drain", {}).get("per_write_ns"))):
        if rows:
            lines.append(f"{title}: " + ", ".join(f"{k}: {r['median'] / 1e3:.2f} us"
                                                  for k, r in rows.items()))
    if rt.get("fixed_ns") is not None:
        lines.append(f"WRITE round trip, one at a time (idle; not the service time): "
                     f"{rt['fixed_ns'] / 1e3:.2f} us + {rt['per_page_ns'] / 1e3:.2f} us/page")
    for key, title in (("cache_add_ns", "pwrite(2) of appended (new) pages"),
                       ("server_new_page_ns", "WRITE round trip of appended pages")):
        rec = meas.get(key, {}).get("appends")
        if rec:
            lines.append(f"{title}: {rec['fixed_ns'] / 1e3:.2f} us + "
                         f"{rec['per_page_ns'] / 1e3:.2f} us/page")
    prov = doc.get("provenance", {})
    lines.append(f"kernel {prov.get('kernel')}, CPU {prov.get('cpu_model')}, "
                 f"{prov.get('date')}, commit {prov.get('git_commit')}")
    return "\n".join(lines) + "\n"


# ---- command line ----

_EXISTS = "pass --force to replace it (it changes every default run)"
MAX_ROUNDS = 1000


def cmd_calibrate(args: argparse.Namespace) -> int:
    from bench.results.fileio import check_writable
    out = check_writable(args.out, args.force, _EXISTS)    # before minutes of measuring
    if not 3 <= args.rounds <= MAX_ROUNDS:
        raise ValueError(f"--rounds: must be in 3..{MAX_ROUNDS}, got {args.rounds}")
    say = (lambda s: None) if args.quiet else (lambda s: print(f"calibrate: {s}", file=sys.stderr))
    doc = build_profile(measure(args.rounds, progress=say), rounds=args.rounds)
    path = save(doc, out, force=args.force)
    sys.stdout.write(render(doc))
    print(f"cost profile: {path}" + ("" if path.resolve() == _params.PROFILE_PATH else
                                     f"  (make it active: FWB_COST_PROFILE={path})"))
    return 0


def add_parsers(subparsers) -> None:
    """Add the `calibrate` verb to the CLI's sub-parsers."""
    p = subparsers.add_parser("calibrate", help="measure the cost model's CPU costs and the "
                                                "server's round trips on a real mount; save a "
                                                "cost profile")
    p.add_argument("-o", "--out", default=str(_params.PROFILE_PATH),
                   help="where to write the profile (default: the active one, "
                        "results/cost-profile.json)")
    p.add_argument("--rounds", type=int, default=200,
                   help="rounds of the mount measurements (default 200; a fifth of them for the drain)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_calibrate)
