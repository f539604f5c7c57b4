"""Measure the simulator's CPU costs and server times on this machine: ``python -m bench calibrate``.

Every value is the median of repeated measurements (bench.results.stats: median and its 95% bootstrap
CI), taken on a real FUSE mount of our server (bench.real.mount) by the C workload driver, whose
per-call CLOCK_MONOTONIC timings are the data; nothing is timed from Python.  What each value
is, and how it is measured:

  page_copy_ns       the temp-page copy as writeback does it, cold source into a fresh page:
                     fwb_drv_time_page_copy_cold copies 256 pages per round with the kernel's
                     copy_page instruction (rep movsq) between two buffers of 32 times the
                     last-level cache (huge pages, like the direct map) on a pseudo-random
                     walk; value = round / 256.  The cache-warm copy is recorded beside it.
  temp_alloc_ns,     the kernel's page allocator on this machine: `perf record` of this process
  temp_free_ns       while it faults in and unmaps anonymous pages (fwb_drv_fault_pages); the
                     samples in the allocator's entry less its zeroing, and in its free path,
                     over the pages, scaled back by perf's own slowdown.  Without perf (or its
                     permission) they are not measured and the table's defaults stay.
  wp_page_ns,        the flusher's CPU: the kworker threads' sum_exec_runtime
  wp_request_ns      (/proc/PID/schedstat) while the flusher writes back 65536 pages as 32-page
                     WRITEs and as one-page WRITEs, less their idle rate; the server's log counts
                     the pages and WRITEs; per round, both lines are solved for per page and per
                     request.  On this kernel (no temp pages) that is every strategy's work.
  end_writeback_ns   `perf record -a` of the same writeback: the server threads' samples in
                     folio_end_writeback (where this kernel ends writeback: at the reply) per
                     page.  On such a kernel it is taken off server_page_ns, which holds it.
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

Not measured (the table's defaults stay; the profile's record says so): wb_lookup_ns and
wb_tree_ns (fi->writepages exists only in temp-page kernels: the difference between a temp-page
guest and a no-temp-page guest measures the temp path as a whole), dio_*, reclaim_scan_ns,
compact_page_ns.

The result is a machine profile (bench.sim.machine's TOML format): [machine] read from this
machine (``this_machine``: memory, dirty ratios, CPUs, CONFIG_HZ, the FUSE bdi's max_ratio),
[server] and [costs] with the values above, ``measurements`` (per value: the median, its CI, n,
unit and method, plus the raw per-size medians of the fitted lines) and ``provenance``
(bench.results.provenance.collect: kernel, CPU, date, git commit).  It is written atomically,
never replaces a file without --force, and never goes into the installed package: to ``--out
PATH``, else to NAME.toml in the user's profile directory (bench.sim.machine.user_dir), where
``--machine NAME`` finds it.  The profile every default run uses is the one shipped in the
package (bench/machines/ci-2cpu-24g.toml); a new calibration of that machine kind replaces it
there by hand, with a new baseline.
"""
from __future__ import annotations

import argparse
import contextlib
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


# ---- the temp-page path's costs, and the flusher's (model.md "Who pays what") ----

COLD_COPY_PAGES = 256                         # pages per timed round of the cold copy
COLD_COPY_LLC_TIMES = 32                      # each buffer is this many LLCs, up to the cap
COLD_COPY_MAX_BYTES = 1 << 30                 # the cap per buffer (2 of them), unless 2 LLCs exceed it
FLUSH_PAGES = 65536                           # pages each flusher run writes (256 MiB)
FAULT_PAGES = 16384                           # pages each allocation round faults in (64 MiB)
PERF_PERIOD_NS = 100_000                      # cpu-clock sampling period of `perf record`


def llc_bytes() -> int:
    """The biggest cache of CPU 0 (/sys/devices/system/cpu/cpu0/cache), bytes; 0 if unknown."""
    best = 0
    for d in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (d / "size").read_text().strip()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
        digits = text.rstrip("KMGkmg")
        if digits.isdigit():
            best = max(best, int(digits) * mult)
    return best


def time_page_copy_cold(reps: int = 400) -> tuple[np.ndarray, dict[str, Any]]:
    """(ns per page copied, one value per round of COLD_COPY_PAGES pages; how): the temp-page
    copy from a cold page into a fresh one, over buffers of COLD_COPY_LLC_TIMES times the
    last-level cache, capped at COLD_COPY_MAX_BYTES but never under twice the cache
    (fwb_drv_time_page_copy_cold).  The cap matters where a VM reports a whole socket's L3
    (260 MiB on some machines of the CI kind): 32 of those would be two 8 GiB buffers.  The
    walk comes back to a page only after a whole buffer of other copies, at least four caches'
    worth of traffic counting both buffers, so the page has left the cache by then."""
    from bench.real import _driver
    llc = llc_bytes() or (32 << 20)
    want = max(min(COLD_COPY_LLC_TIMES * llc, COLD_COPY_MAX_BYTES), 2 * llc)
    ws = 1 << max(12, (want // PAGE_SIZE - 1).bit_length())
    out = np.zeros(reps, np.int64)
    rc = _driver.lib.fwb_drv_time_page_copy_cold(
        ws, COLD_COPY_PAGES, reps, _driver.ffi.cast("int64_t *", _driver.ffi.from_buffer(out)))
    if rc != 0:
        raise RuntimeError(f"fwb_drv_time_page_copy_cold: error {rc}")
    return out / COLD_COPY_PAGES, {"llc_bytes": llc, "buffer_bytes": ws * PAGE_SIZE,
                                   "pages_per_round": COLD_COPY_PAGES, "rounds": reps}


# -- the kernel's CPU time, from outside: kworker threads (/proc) and perf samples --

def _kworker_cpu() -> dict[int, tuple[int, int]]:
    """{pid: (sum_exec_runtime ns from /proc/PID/schedstat, utime + stime ticks from
    /proc/PID/stat)} of every kworker thread (the flush work of a bdi runs in them)."""
    out: dict[int, tuple[int, int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if not (d / "comm").read_text().startswith("kworker"):
                continue
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            ns = int((d / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        out[int(d.name)] = (ns, int(stat[11]) + int(stat[12]))
    return out


def _kworker_delta(before: dict, after: dict) -> tuple[int, int]:
    """(ns, ticks) the kworker threads ran between two _kworker_cpu() (new threads from 0)."""
    ns = ticks = 0
    for pid, (n1, t1) in after.items():
        n0, t0 = before.get(pid, (0, 0))
        ns += max(0, n1 - n0)
        ticks += max(0, t1 - t0)
    return ns, ticks


class _Perf:
    """`perf record` of cpu-clock samples with call chains, system-wide or of one process, for
    the duration of a `with` block; ``samples()`` parses `perf script` afterwards.  Unavailable
    (``ok`` False, ``why`` says why) without the perf tool or the permission to profile."""

    def __init__(self, pid: int | None = None, period_ns: int = PERF_PERIOD_NS):
        import shutil
        self.pid, self.period_ns = pid, period_ns
        self.exe = shutil.which("perf")
        self.ok, self.why = self.exe is not None, "" if self.exe else "no perf tool on PATH"
        self.dir = tempfile.mkdtemp(prefix="fwb-perf-")
        self.data = os.path.join(self.dir, "perf.data")
        self.proc = None

    def __enter__(self) -> "_Perf":
        import subprocess
        import time
        if not self.ok:
            return self
        who = ["-p", str(self.pid)] if self.pid is not None else ["-a"]
        self.proc = subprocess.Popen([self.exe, "record", "-q", "-e", "cpu-clock", "-c",
                                      str(self.period_ns), "-g", "-o", self.data, *who],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)                       # it attaches to the CPUs or the threads
        if self.proc.poll() is not None:
            self.ok = False
            err = self.proc.stderr.read().decode(errors="replace").strip()
            self.why = "perf record failed: " + err[-200:]
        return self

    def __exit__(self, *exc) -> None:
        import signal
        import subprocess
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.ok, self.why = False, "perf record did not stop"

    def samples(self) -> list[tuple[int, str, frozenset]]:
        """[(pid, comm, the kernel and user symbols of its call chain)] per sample."""
        import shutil
        import subprocess
        try:
            if not self.ok:
                return []
            out = subprocess.run([self.exe, "script", "-i", self.data, "-F", "comm,pid,tid,ip,sym"],
                                 capture_output=True, text=True, timeout=600).stdout
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        return parse_perf_script(out)


def parse_perf_script(text: str) -> list[tuple[int, str, frozenset]]:
    """`perf script -F comm,pid,tid,ip,sym` of call-chain samples -> [(pid, comm, the symbols
    of the chain)]: a sample is a "COMM PID/TID" line, then one indented "ADDR SYMBOL" line per
    frame, then a blank line."""
    res: list[tuple[int, str, frozenset]] = []
    head, syms = None, set()
    for line in text.splitlines() + [""]:
        if not line.strip():
            if head is not None:
                res.append((head[0], head[1], frozenset(syms)))
            head, syms = None, set()
        elif not line[0].isspace():
            comm, _, ids = line.rstrip().rpartition(" ")
            try:
                head = (int(ids.split("/")[0]), comm.strip())
            except ValueError:
                head = None
        else:
            parts = line.split(None, 1)
            if len(parts) == 2:
                syms.add(parts[1].strip().split("+")[0])
    return res


def _ns_in(samples, period_ns: int, syms: set[str], pid: int | None = None,
           comm_prefix: str | None = None, without: set[str] = frozenset()) -> float:
    """CPU ns of the samples whose call chain holds one of `syms` and none of `without`,
    of process `pid` or of threads whose name starts with comm_prefix."""
    n = sum(1 for p, comm, chain in samples
            if (pid is None or p == pid) and (comm_prefix is None or comm.startswith(comm_prefix))
            and chain & syms and not chain & without)
    return n * period_ns


# The kernel functions, by name (several names: they changed between versions).
# The page allocator's entry (folio_alloc and alloc_pages end there) and its free path, not
# what a fault or an unmap adds around them (LRU, memcg, page tables); zeroing is left out.
ALLOC_SYMS = {"__alloc_frozen_pages_noprof", "__alloc_pages_noprof", "__alloc_pages",
              "__alloc_frozen_pages", "get_page_from_freelist"}
ZERO_SYMS = {"clear_page_rep", "clear_page_erms", "clear_page_orig", "clear_page",
             "clear_highpage", "folio_zero_user", "clear_user_highpage", "kernel_init_pages"}
FREE_SYMS = {"free_unref_folios", "free_unref_page", "free_frozen_pages", "__free_frozen_pages",
             "free_unref_page_list", "__free_pages_ok", "free_pcppages_bulk"}
END_WB_SYMS = {"folio_end_writeback", "end_page_writeback"}


def measure_alloc_free(reps: int = 5, rounds: int = 16) -> dict[str, Any]:
    """The kernel's page allocator on this machine, `reps` times: FAULT_PAGES anonymous pages
    faulted in and unmapped per round, `rounds` rounds (fwb_drv_fault_pages), while perf
    samples this process; per page, the time in the allocator less its zeroing ("alloc_ns")
    and in its free path ("free_ns"), one value per rep.  Sampling slows what it samples (its
    interrupts run on the sampled thread's time): each value is divided by the ratio of a
    round's time under perf to the same without it.  RuntimeError when perf cannot profile."""
    from bench.real import _driver
    me = os.getpid()
    res: dict[str, Any] = {"alloc_ns": [], "free_ns": [], "zero_ns": [], "fault_and_free_ns": [],
                           "perf_slowdown": [], "pages_per_rep": FAULT_PAGES * rounds,
                           "samples": 0, "period_ns": PERF_PERIOD_NS}
    for _ in range(reps):
        bare = np.zeros(rounds, np.int64)
        rc = _driver.lib.fwb_drv_fault_pages(
            FAULT_PAGES, rounds, _driver.ffi.cast("int64_t *", _driver.ffi.from_buffer(bare)))
        if rc != 0:
            raise RuntimeError(f"fwb_drv_fault_pages: error {rc}")
        out = np.zeros(rounds, np.int64)
        with _Perf(me) as perf:
            if not perf.ok:
                raise RuntimeError(perf.why)
            rc = _driver.lib.fwb_drv_fault_pages(
                FAULT_PAGES, rounds, _driver.ffi.cast("int64_t *", _driver.ffi.from_buffer(out)))
        samples = perf.samples()
        if rc != 0:
            raise RuntimeError(f"fwb_drv_fault_pages: error {rc}")
        if not perf.ok or not samples:
            raise RuntimeError(perf.why or "perf recorded no samples")
        pages = FAULT_PAGES * rounds
        if not _ns_in(samples, perf.period_ns, ALLOC_SYMS, me):
            raise RuntimeError("perf saw no kernel frames of the allocator (kernel symbols "
                               "hidden, or perf_event_paranoid too high)")
        slow = max(1.0, float(np.median(out)) / float(np.median(bare)))
        res["alloc_ns"].append(_ns_in(samples, perf.period_ns, ALLOC_SYMS, me,
                                      without=ZERO_SYMS) / pages / slow)
        res["zero_ns"].append(_ns_in(samples, perf.period_ns, ZERO_SYMS, me) / pages / slow)
        res["free_ns"].append(_ns_in(samples, perf.period_ns, FREE_SYMS, me) / pages / slow)
        res["fault_and_free_ns"].append(float(np.median(bare)) / FAULT_PAGES)
        res["perf_slowdown"].append(slow)
        res["samples"] += len(samples)
    return res


def _flush_rows(pages: int, layout: str) -> np.ndarray:
    """write(2) rows that dirty `pages` pages of file 0: "contiguous" (1 MiB writes, 32-page
    WRITEs) or "every-other" (one page at every other index: one-page WRITEs)."""
    r = _Rows()
    if layout == "contiguous":
        step = 256
        for first in range(0, pages, step):
            r.add(WRITE, 0, first * PAGE_SIZE, min(step, pages - first) * PAGE_SIZE)
    else:
        for i in range(pages):
            r.add(WRITE, 0, 2 * i * PAGE_SIZE, PAGE_SIZE)
    return r.array()


def _flush_run(pages: int, layout: str, perf: bool) -> dict[str, Any]:
    """One run on a fresh mount: write the pages (_flush_rows) through a descriptor kept open (a
    close would write back the rest itself: fuse_flush), let the flusher write them back, and
    take the kworker threads' CPU time over that; then fsync, close and unmount.  The server's
    log tells which WRITEs came before the fsync: the flusher's.  With perf, the server's time
    in folio_end_writeback is sampled too.  A server that dies is named (Mount.death)."""
    import time
    from bench.real import mount
    m = mount.Mount(mount.ServerOptions())
    m.start()
    prof = None
    try:
        fd = os.open(os.path.join(m.path, "f0"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            rows = _flush_rows(pages, layout)
            data = b"\x5a" * int(rows["length"].max())
            k0 = _kworker_cpu()
            t0 = time.monotonic()
            with contextlib.ExitStack() as stack:
                if perf:
                    prof = stack.enter_context(_Perf())
                for off, ln in zip(rows["offset"].tolist(), rows["length"].tolist()):
                    os.pwrite(fd, data[:ln], off)
                # The flusher goes on after the last write(2): wait until no request has been
                # queued or in service for 200 ms (or 20 s).
                quiet, deadline = 0, time.monotonic() + 20
                while quiet < 10 and time.monotonic() < deadline:
                    time.sleep(0.02)
                    if not m.server_alive():
                        raise RuntimeError(m.death("a flusher run"))
                    quiet = quiet + 1 if m.waiting() == 0 else 0
            k1 = _kworker_cpu()
            span = time.monotonic() - t0
            mark = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            os.fsync(fd)
        finally:
            os.close(fd)
        server_pid = m.proc.pid
    except OSError:
        if not m.server_alive():        # the mount's errors come from a dead server: name it
            raise RuntimeError(m.death("a flusher run")) from None
        raise
    finally:
        m.stop()
    if m.proc.returncode not in (0, None):
        raise RuntimeError(m.death("a flusher run"))
    log = m.log[m.log["kind"] == mount.KIND_WRITE]
    by_flusher = log[log["t_recv_ns"] < mark]
    ns, ticks = _kworker_delta(k0, k1)
    flushed = int(by_flusher["size"].sum()) // PAGE_SIZE
    out = {"layout": layout, "kworker_ns": ns, "kworker_ticks": ticks, "span_s": span,
           "pages": flushed, "requests": len(by_flusher),
           "pages_after_fsync": int(log["size"].sum()) // PAGE_SIZE - flushed}
    if prof is not None:
        samples = prof.samples()
        out["perf"] = {"ok": prof.ok and bool(samples), "why": prof.why,
                       "end_writeback_ns": _ns_in(samples, prof.period_ns, END_WB_SYMS, server_pid),
                       "flusher_ns": _ns_in(samples, prof.period_ns, {"wb_workfn"},
                                            comm_prefix="kworker"),
                       "samples": len(samples), "period_ns": prof.period_ns}
    return out


def _bdi_limit_pages() -> int:
    """A FUSE bdi's dirty limit here, roughly (strictlimit, max_ratio 1%): MemTotal *
    vm.dirty_ratio% * 1%, in pages; 0 if unreadable."""
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
        ratio = int(Path("/proc/sys/vm/dirty_ratio").read_text())
    except (OSError, ValueError, StopIteration):
        return 0
    return mem_kb // 4 * ratio // 10000


def _idle_kworker_rate(seconds: float = 1.0) -> float:
    """kworker CPU ns per second with nothing of ours running: subtracted from each run."""
    import time
    k0, t0 = _kworker_cpu(), time.monotonic()
    time.sleep(seconds)
    return _kworker_delta(k0, _kworker_cpu())[0] / (time.monotonic() - t0)


def measure_flusher(rounds: int = 3, pages: int = FLUSH_PAGES, perf: bool = True,
                    progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """The flusher's CPU per page and per request on this machine's kernel, from the kworker
    threads' CPU time while it writes back `pages` pages as 32-page WRITEs ("contiguous") and as
    one-page WRITEs ("every-other"), `rounds` runs of each, alternating, on fresh mounts:
    cpu = pages * per_page + requests * per_request, solved per round.  With perf, also the
    server threads' time in folio_end_writeback per page (ending writeback at the reply).
    At least 4 times the bdi's dirty limit is written, so that the flusher has work."""
    pages = max(pages, 4 * _bdi_limit_pages())
    runs: list[dict[str, Any]] = []
    for rnd in range(rounds):
        for layout in (("contiguous", "every-other") if rnd % 2 == 0
                       else ("every-other", "contiguous")):
            progress(f"flusher: round {rnd + 1}/{rounds}, {pages} pages, {layout}")
            idle = _idle_kworker_rate(0.5)
            r = _flush_run(pages, layout, False)     # perf's own interrupts would add CPU
            r["idle_ns_per_s"] = idle
            r["cpu_ns"] = max(0.0, r["kworker_ns"] - idle * r["span_s"])
            runs.append(r)
    per_page, per_req, end_wb = [], [], []
    for rnd in range(rounds):
        c = next(r for r in runs[2 * rnd:2 * rnd + 2] if r["layout"] == "contiguous")
        e = next(r for r in runs[2 * rnd:2 * rnd + 2] if r["layout"] == "every-other")
        a = np.array([[c["pages"], c["requests"]], [e["pages"], e["requests"]]], float)
        if c["pages"] == 0 or e["pages"] == 0 or abs(np.linalg.det(a)) < 1e-9:
            raise RuntimeError("flusher measurement: the flusher wrote nothing before the fsync "
                               f"(contiguous {c['pages']} pages, every-other {e['pages']})")
        p, q = np.linalg.solve(a, np.array([c["cpu_ns"], e["cpu_ns"]], float))
        per_page.append(p)
        per_req.append(q)
    out: dict[str, Any] = {"per_page_ns": per_page, "per_request_ns": per_req, "runs": runs,
                           "pages_per_run": pages}
    if perf:                          # separate runs, profiled: the reply's end of writeback
        progress(f"flusher: {rounds} runs under perf (folio_end_writeback at the reply)")
        # Sampling slows the threads it samples: the flusher's CPU time under perf over its
        # time without (the contiguous runs above) scales the samples back.
        bare = float(np.median([r["cpu_ns"] for r in runs if r["layout"] == "contiguous"]))
        for _ in range(rounds):
            idle = _idle_kworker_rate(0.5)
            r = _flush_run(pages, "contiguous", True)
            pf = r["perf"]
            if not pf["ok"] or not pf["end_writeback_ns"]:
                out["perf_why"] = pf["why"] or ("perf recorded no samples" if not pf["ok"] else
                                                "perf saw no folio_end_writeback in the server")
                break
            r["cpu_ns"] = max(0.0, r["kworker_ns"] - idle * r["span_s"])
            slow = max(1.0, r["cpu_ns"] / bare) if bare > 0 else 1.0
            pf["slowdown"] = slow
            if r["pages"]:
                end_wb.append(pf["end_writeback_ns"] / r["pages"] / slow)
            out.setdefault("perf_runs", []).append(r)
    out["end_writeback_ns"] = end_wb
    return out


def measure_writeback_path(rounds: int = 3, copy_reps: int = 400, pages: int = FLUSH_PAGES,
                           progress: Callable[[str], None] = lambda s: None
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The writeback path's costs (model.md "Who pays what"): ({param: measurement} of what
    could be measured here, {param: record} of what could not, with why).  The host's kernel
    may be a no-temp-page one, so the temp page's own costs are measured on the kernel's
    functions that do the same work (perf), and the copy in user space."""
    meas: dict[str, Any] = {}
    missing: dict[str, Any] = {}
    progress("page copy, cold source into a fresh page (C)")
    cold, how = time_page_copy_cold(copy_reps)
    hot = time_page_copy(200)
    meas["page_copy_ns"] = _summary(
        cold, "ns/page", f"fwb_drv_time_page_copy_cold: the copy of the kernel's copy_page (rep "
        f"movsq on x86-64) of {COLD_COPY_PAGES} pages per round from one "
        f"{how['buffer_bytes'] >> 20} MiB buffer into another ({how['buffer_bytes'] / how['llc_bytes']:.1f} x the "
        f"{how['llc_bytes'] >> 20} MiB last-level cache, huge pages like the kernel's direct map), on a pseudo-random walk: "
        f"each page cold in the caches, {copy_reps} rounds; round time / {COLD_COPY_PAGES}",
        **how, hot=_summary(hot, "ns/page", "the same copy cache-warm (1 MiB, memcpy): "
                                            "not what writeback pays"))
    progress("the kernel's page allocator under perf (anonymous faults and unmaps)")
    try:
        af = measure_alloc_free(max(2, rounds + 2))
    except RuntimeError as exc:
        why = f"not measured ({exc}); the table's default"
        for key in ("temp_alloc_ns", "temp_free_ns"):
            missing[key] = {"unit": "ns/page", "method": why}
    else:
        common = (f"perf record (cpu-clock, one sample per {af['period_ns'] // 1000} us, call "
                  f"chains) of this process while it faults in and unmaps {af['pages_per_rep']} "
                  "anonymous order-0 pages per rep (fwb_drv_fault_pages); samples whose chain "
                  "holds {} over the pages, divided by perf's own slowdown of the run; per-rep "
                  "values.  This kernel's allocator, reached with GFP_HIGHUSER_MOVABLE from a "
                  "fault where the temp page used GFP_NOFS from writepages")
        meas["temp_alloc_ns"] = _summary(
            af["alloc_ns"], "ns/page", common.format(
                "the page allocator's entry (" + ", ".join(sorted(ALLOC_SYMS)) + ") and none "
                "of its zeroing (" + ", ".join(sorted(ZERO_SYMS)) + "), which a temp page does "
                "not get"), zero_ns=af["zero_ns"], fault_and_free_ns=af["fault_and_free_ns"],
            perf_slowdown=af["perf_slowdown"], samples=af["samples"])
        meas["temp_free_ns"] = _summary(
            af["free_ns"], "ns/page", common.format(
                "the allocator's free path (" + ", ".join(sorted(FREE_SYMS)) + ")") +
            "; an unmap frees pages in batches, __free_page of a temp page one at a time",
            perf_slowdown=af["perf_slowdown"], samples=af["samples"])
    fl = measure_flusher(rounds, pages, progress=progress)
    runs = [{k: v for k, v in r.items() if k != "perf"} for r in fl["runs"]]
    how = (f"the kworker threads' CPU time (sum_exec_runtime in /proc/PID/schedstat; utime + "
           f"stime ticks beside it) while the flusher writes back {pages} pages of a file "
           "on a fresh mount, as 32-page WRITEs (1 MiB writes) and as one-page WRITEs (every "
           f"other page), {rounds} runs of each, less the kworkers' idle rate; the server's log "
           "counts the pages and WRITEs the flusher sent (before the final fsync); per round, "
           "cpu = pages * per_page + WRITEs * per_request solved for both.  A kernel without "
           "temp pages runs only every strategy's work there; one with them, the temp path too")
    meas["wp_page_ns"] = _summary(fl["per_page_ns"], "ns/page", how + ": per page", runs=runs)
    meas["wp_request_ns"] = _summary(fl["per_request_ns"], "ns", how + ": per request", runs=runs)
    if fl["end_writeback_ns"]:
        meas["end_writeback_ns"] = _summary(
            fl["end_writeback_ns"], "ns/page", "perf record (cpu-clock, system-wide, call chains)"
            " of the same 32-page writeback: the server's samples whose chain holds "
            + ", ".join(sorted(END_WB_SYMS)) + " (this kernel ends writeback at the reply) over "
            "the pages the flusher sent, divided by perf's slowdown of the flusher; per run",
            runs=[dict(r["perf"], pages=r["pages"], requests=r["requests"])
                  for r in fl.get("perf_runs", [])])
    else:
        missing["end_writeback_ns"] = {"unit": "ns/page", "method": "not measured ("
                                       f"{fl.get('perf_why', 'no perf')}); the table's default"}
    for key, what in (("wb_lookup_ns", "a lookup"), ("wb_tree_ns", "an insert or erase")):
        missing[key] = {"unit": "ns", "method": f"not measured: {what} in fi->writepages exists "
                        "only in temp-page kernels (the host's may have none); the table's "
                        "default until a temp-page guest is measured against a no-temp-page one"}
    return meas, missing


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

    # Full size from 100 rounds (the default 200: 3 runs of each writeback); tests run less.
    big = rounds >= 100
    wb_meas, wb_missing = measure_writeback_path(3 if big else 1, 2 * copy_reps,
                                                 FLUSH_PAGES if big else FLUSH_PAGES // 8,
                                                 progress)
    meas.update(wb_meas)

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
             # Every page the drain dirtied, written back once: a WRITE split by other writeback
             # on a loaded machine (fewer whole WRITEs above) still carries its pages.
             "pages_seen": int(seen.sum()),
             "pages_dirtied": 2 * drain_rounds * sum(k * n for k, n in DRAIN.items()),
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
    if "end_writeback_ns" in meas and res.info.get("family") == "no-temp-page":
        # This kernel ends writeback in the reply, inside the drain's time per page; the
        # simulator charges end_writeback_ns there itself (no-temp-page), so it is taken off.
        ewb = meas["end_writeback_ns"]["median"]
        rec = meas["server_page_ns"]
        rec["measured_ns"] = rec["median"]
        rec["median"] -= ewb
        rec["ci95"] = [x - ewb for x in rec["ci95"]]
        rec["method"] += ("; less end_writeback_ns (this kernel ends PG_writeback in the reply, "
                          "which the simulator charges apart)")
    values = {k: max(0, int(round(m["median"]))) for k, m in meas.items()}
    meas.update(wb_missing)
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


# ---- the profile file: a machine profile (bench.sim.machine), TOML ----

def this_machine(bdi: dict | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """([machine] fields, their measurements) read from this machine: memory (/proc/meminfo),
    vm.dirty_ratio and vm.dirty_background_ratio, the CPUs this process may use, CONFIG_HZ
    (/proc/config.gz or /boot/config-RELEASE) and the FUSE bdi's max_ratio and strict_limit as
    the calibration's mount had them.  A field that cannot be read is left out (the table's
    default stays) and its measurement says so."""
    from bench.real.validate import machine_params
    fields = machine_params()
    meas: dict[str, Any] = {}
    how = {"mem_total_pages": ("pages", "/proc/meminfo MemTotal / 4 KiB"),
           "dirty_ratio": ("%", "/proc/sys/vm/dirty_ratio"),
           "dirty_background_ratio": ("%", "/proc/sys/vm/dirty_background_ratio"),
           "cpus": ("CPUs", "os.sched_getaffinity")}
    for key, (unit, method) in how.items():
        meas[key] = ({"median": fields[key], "unit": unit, "method": method} if key in fields
                     else {"unit": unit, "method": f"{method}: not readable (or vm.dirty_bytes "
                                                   "set): the table's default stays"})
    hz, where = _config_hz()
    if hz is not None:
        fields["hz"] = hz
    meas["hz"] = {"median": hz, "unit": "Hz", "method": f"CONFIG_HZ in {where}"} if hz else \
        {"unit": "Hz", "method": "no kernel config found: the table's default stays"}
    bdi = bdi or {}
    if bdi.get("max_ratio") is not None:
        fields["bdi_max_ratio"] = max(1, int(bdi["max_ratio"]))
        meas["bdi_max_ratio"] = {"median": fields["bdi_max_ratio"], "unit": "%", "method":
                                 "/sys/class/bdi/<the mount>/max_ratio during the calibration",
                                 "bdi": dict(bdi)}
    if bdi.get("strict_limit") == 1:
        fields["bdi_strict_limit"] = 1
    return fields, meas


def _config_hz() -> tuple[int | None, str]:
    import gzip
    import platform
    for path, opener in (("/proc/config.gz", gzip.open),
                         (f"/boot/config-{platform.release()}", open)):
        try:
            with opener(path, "rt") as f:
                for line in f:
                    if line.startswith("CONFIG_HZ="):
                        return int(line.split("=", 1)[1]), path
        except (OSError, ValueError):
            continue
    return None, ""


def default_name(fields: dict[str, Any]) -> str:
    """local-<CPUs>cpu-<GiB>g, from the machine's fields."""
    gib = round(fields.get("mem_total_pages", 0) * PAGE_SIZE / (1 << 30))
    return f"local-{fields.get('cpus', 0)}cpu-{gib}g"


def build_profile(measured: dict[str, Any], name: str | None = None,
                  **extra: Any) -> dict[str, Any]:
    """A machine profile document (bench.sim.machine's format, checked) from measure()'s
    output, with this machine's fields and the provenance of the measurements."""
    from bench.results import provenance
    from bench.sim import machine
    fields, mmeas = this_machine((measured.get("mount") or {}).get("bdi"))
    sections: dict[str, dict[str, Any]] = {"machine": fields, "server": {"kind": "memory"},
                                           "costs": {}}
    for key, v in measured["values"].items():
        sec = machine.section_of(key)
        if sec is None:
            raise ValueError(f"calibrate: {key}: not a machine, server or cost parameter")
        if key == "server_dist":
            v = _params.SERVER_DISTS[v]
        sections[sec][key] = v
    prov = provenance.collect(command="calibrate", **extra)
    name = name or default_name(fields)
    doc = {"format": machine.FORMAT, "schema_version": machine.SCHEMA_VERSION, "name": name,
           "description": f"measured by `python -m bench calibrate` on Linux {prov['kernel']}, "
                          f"{fields.get('cpus', '?')} CPUs ({prov['cpu_model']}), "
                          f"{fields.get('mem_total_pages', 0) * PAGE_SIZE / (1 << 30):.1f} GiB, "
                          f"the project's in-memory server",
           **sections, "measurements": {**measured["measurements"], **mmeas},
           "mount": measured.get("mount", {}), "provenance": prov}
    machine.check(doc, "calibrate")
    return doc


_HEADER = """Machine profile written by `python -m bench calibrate` (the format: bench/sim/machine.py).
Simulate it with --machine NAME (in the user's profile directory) or --machine PATH, or
FWB_MACHINE=... for a shell; copy it and change any field to make another."""


def save(doc: dict[str, Any], path: str | os.PathLike, force: bool = False) -> Path:
    """Write a profile as TOML, atomically (temp file + rename); refuse to replace one unless
    force, and refuse to write into the installed package."""
    from bench.results.fileio import check_writable, write_checked
    from bench.sim import machine
    p = check_writable(_outside_package(path), force, _EXISTS)
    machine.check(doc, str(p))
    return write_checked(p, machine.dumps(doc, header=_HEADER).encode(), force, _EXISTS)


def _outside_package(path: str | os.PathLike) -> Path:
    import bench
    p = Path(path).expanduser().absolute()
    pkg = Path(bench.__file__).resolve().parent
    if p.resolve().is_relative_to(pkg):
        raise ValueError(f"--out: {p} is inside the bench package; a calibration is written to "
                         f"--out elsewhere or to the user's profile directory")
    return p


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a profile document (TOML or JSON; its base is not applied)."""
    from bench.sim import machine
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{p}: no such machine profile") from None
    doc = machine.parse(raw, p.suffix, str(p))
    machine.check(doc, str(p))
    return doc


def render(doc: dict[str, Any]) -> str:
    """A table: parameter, table default, calibrated value, CI, n, method (first clause)."""
    lines = [f"{'parameter':22s} {'default':>9s} {'calibrated':>11s}  {'95% CI':>19s} {'n':>6s}  method"]
    meas = doc["measurements"]
    for sec in ("machine", "server", "costs"):
        for key, v in doc.get(sec, {}).items():
            p = _params.PARAM_BY_NAME.get(key)
            if p is None:                 # bdi_strict_limit, the server's kind
                continue
            m = meas.get(key, {})
            ci = m.get("ci95")
            ci_s = f"{ci[0]:.0f}..{ci[1]:.0f}" if ci else ""
            method = m.get("method", "").split(":")[0]
            lines.append(f"{key:22s} {p.default:9d} {str(v):>11s}  {ci_s:>19s} "
                         f"{m.get('n', ''):>6}  {method}")
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

_EXISTS = "pass --force to replace it"
MAX_ROUNDS = 1000


def cmd_calibrate(args: argparse.Namespace) -> int:
    from bench.sim import machine
    if args.name is not None and not machine.valid_name(args.name):
        raise ValueError(f"--name: {args.name!r}: use letters, digits, '.', '_', '-' (at most 64)")
    if args.name in machine.packaged():
        raise ValueError(f"--name: {args.name} is a profile shipped in the package; choose "
                         f"another name")
    if not 3 <= args.rounds <= MAX_ROUNDS:
        raise ValueError(f"--rounds: must be in 3..{MAX_ROUNDS}, got {args.rounds}")
    from bench.results.fileio import check_writable, output_lock
    name = args.name or default_name(this_machine()[0])
    out = Path(args.out) if args.out else machine.user_dir() / f"{name}.toml"
    check_writable(_outside_package(out), args.force, _EXISTS)   # before minutes of measuring
    say = (lambda s: None) if args.quiet else (lambda s: print(f"calibrate: {s}", file=sys.stderr))
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out):          # a second calibrate writing the same profile: one error line
        doc = build_profile(measure(args.rounds, progress=say), name=name, rounds=args.rounds)
        path = save(doc, out, force=args.force)
    sys.stdout.write(render(doc))
    use = name if not args.out else str(path)
    print(f"machine profile {name}: {path}  (simulate it: --machine {use}, or FWB_MACHINE={use})")
    return 0


def add_parsers(subparsers) -> None:
    """Add the `calibrate` verb to the CLI's sub-parsers."""
    p = subparsers.add_parser("calibrate", help="measure the cost model's CPU costs and the "
                                                "server's times on a real mount and this "
                                                "machine's memory and limits; save a machine "
                                                "profile")
    p.add_argument("-o", "--out", metavar="PATH",
                   help="where to write the profile (default: NAME.toml in the user's profile "
                        "directory, which --machine NAME searches)")
    p.add_argument("--name", help="the profile's name (default local-<CPUs>cpu-<GiB>g)")
    p.add_argument("--rounds", type=int, default=200,
                   help="rounds of the mount measurements (default 200; a fifth of them for the drain)")
    p.add_argument("--force", action="store_true", help="replace the profile if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_calibrate)
