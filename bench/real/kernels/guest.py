"""Run a workload on another kernel: ``execute(kernel, workload, seed, **params) -> GuestResult``.

The guest twin of bench.real.mount: the same op array and server options, run inside a qemu
guest by the static op runner (csrc/guest/fwb_guest_runner.c, built on the same driver) against
the same server (built static), and turned into a ``Run`` by the same function
(bench.real.mount.result_from) from the server's WRITE log, the runner's per-row timings and its
/proc/meminfo samples.  The run is named after the kernel (``kernel-6.1.176``), engine "mount".

Parameters are the mount's (bench.real.mount: workload parameters, then server ones), with three
differences: ``sample_interval_ns`` defaults to 5 ms, ``timeout_s`` is the whole guest's
time limit (default: 240 s plus 10 times the workload's last row time, TCG being slow), and
``request_timeout_ns`` (else the workload's, as stuck-server-timeout carries one) is the FUSE
request timeout the guest's kernel gets through fs.fuse.default_request_timeout before the
mount; a kernel without request timeouts runs without it and says so (bench.real.kernels.timeout,
which also reads what the guest saw of the abort into the run's meta, ``request_timeout``).
"""
from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.real import mount
from bench.results import Run
from bench.sim.ops import OP_DTYPE

from . import boot, catalog, features, fetch, folios, initramfs, timeout as _timeout

BIN = Path(__file__).resolve().parent.parent / "_bin"
GUEST_SERVER = BIN / "fwb_fuse_server_static"
GUEST_RUNNER = BIN / "fwb_guest_runner"
OPS_MAGIC = b"FWBOPS1\0"
RES_MAGIC = b"FWBRES1\0"
RES_HEADER_DTYPE = np.dtype([("magic", "S8"), ("rc", "<i4"), ("err_row", "<i4"),
                             ("err_errno", "<i4"), ("failed", "<i4"), ("n_ops", "<i8"),
                             ("n_samples", "<i8"), ("t0_ns", "<i8"), ("compact_skipped", "<i8"),
                             ("t_end_ns", "<i8")])
SAMPLE_INTERVAL_NS = 5_000_000
EPOCH_LEAD_NS = 2_000_000_000     # with stall windows: time 0 this long after the server starts
DRIVER_ERRORS = {1: "bad arguments", 2: "open failed", 3: "mmap failed", 4: "a call failed",
                 5: "SIGBUS in a mapping", 6: "out of memory", 7: "pthread_create failed",
                 8: "stopped"}


def available() -> tuple[bool, str]:
    """(True, "") when guests can be run here, else (False, why in one line)."""
    ok, why = boot.available()
    if not ok:
        return ok, why
    for what, p in (("guest server", GUEST_SERVER), ("guest runner", GUEST_RUNNER)):
        if not os.access(p, os.X_OK):
            return False, (f"{what} not built ({p} missing): it needs a static libfuse3 "
                           "(libfuse3-dev) and a C compiler; rerun `pip install -e .`")
    try:
        initramfs.busybox_path()
    except RuntimeError as exc:
        return False, str(exc)
    return True, ""


def op_file(ops: np.ndarray, file_sizes, map_len: np.ndarray, threads: int, dio_len: int,
            sample_interval_ns: int) -> bytes:
    """The runner's op file (csrc/guest/fwb_guest_runner.c documents the format)."""
    ops = np.ascontiguousarray(ops, dtype=OP_DTYPE)
    sizes = np.asarray(file_sizes, np.int64)
    head = OPS_MAGIC + struct.pack("<IIqqqq", threads, len(sizes), len(ops), dio_len,
                                   sample_interval_ns, 0)
    return head + sizes.tobytes() + np.asarray(map_len, np.int64).tobytes() + ops.tobytes()


def read_result(data: bytes, n_ops: int):
    """(header, start_ns, latency_ns, faults, samples) of the runner's result file."""
    hs = RES_HEADER_DTYPE.itemsize
    if len(data) < hs:
        raise ValueError(f"guest result: {len(data)} bytes, shorter than its header")
    head = np.frombuffer(data, RES_HEADER_DTYPE, 1)[0]
    if head["magic"] != RES_MAGIC.rstrip(b"\0") or int(head["n_ops"]) != n_ops:
        raise ValueError("guest result: bad magic or row count")
    ns = int(head["n_samples"])
    need = hs + 3 * 8 * n_ops + ns * mount.SAMPLE_DTYPE.itemsize
    if len(data) != need:
        raise ValueError(f"guest result: {len(data)} bytes, expected {need}")
    rows = np.frombuffer(data, np.int64, 3 * n_ops, hs).reshape(3, n_ops).copy()
    samples = np.frombuffer(data, mount.SAMPLE_DTYPE, ns, hs + 3 * 8 * n_ops).copy()
    return head, rows[0], rows[1], rows[2], samples


def parse_info(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


def _int(v: str | None) -> int:
    try:
        return int(str(v).split()[0])
    except (ValueError, IndexError):
        return -1


def _float(v: str | None) -> float:
    try:
        return float(str(v).split()[0])
    except (ValueError, IndexError):
        return float("nan")


@dataclass(frozen=True, slots=True, eq=False)
class GuestResult:
    run: Run
    mount: mount.MountResult
    boot: boot.BootResult
    kernel: fetch.Fetched
    files: dict[str, bytes]
    ops: np.ndarray | None = None     # the op array the guest ran


def execute(kernel: str | catalog.Kernel, workload: Any, seed: int = 0, *, retries: int = 2,
            mem_mb: int = boot.MEM_MB, smp: int = boot.SMP, update: bool = False,
            progress=None, trace: str = "", cpu_probe: bool = False,
            folio_trace: bool = True, server: str | os.PathLike | None = None,
            server_args: tuple[str, ...] = (), append: str = "",
            **params: Any) -> GuestResult:
    """Boot `kernel` (fetched first if it is not cached; `update` looks for a newer version)
    and run `workload` in it.  RuntimeError when it cannot be run or fails.

    `trace`: files the runner reads at every sample (FWB_TRACE, csrc/guest/fwb_guest_runner.c;
    e.g. TRACE_WRITEBACK), returned as ``files["trace.txt"]`` (``read_trace`` parses it).
    `cpu_probe`: every task's CPU time before an idle second, before the run and after it
    (``files["cpu_idle" | "cpu_before" | "cpu_after"]``; ``cpu_usage`` reads them).
    `folio_trace`: the orders of the page-cache folios added on the mount over the run
    (bench.real.kernels.folios), in the run's meta as folio_orders, folio_pages_mean, ...
    Every run also keeps the kernel's FUSE knobs and fuse_*/iomap_* symbol names
    (``files["fuse_knobs" | "fuse_symbols"]``, read by bench.real.kernels.features).
    `server`: another static server binary than GUEST_SERVER (bench.real.kernels.uring builds
    one); `server_args`: options appended to the server's; `append`: words appended to the
    kernel command line (e.g. ``fuse.enable_uring=1``)."""
    k = catalog.get(kernel) if isinstance(kernel, str) else kernel
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: must be an integer >= 0, got {seed!r}")
    if any(c in trace for c in "'\n"):
        raise ValueError("trace: no quotes or newlines")
    mount._check_int("mem_mb", mem_mb, 256, 1 << 20)
    mount._check_int("smp", smp, 1, 64)
    ok, why = available()
    if not ok:
        raise RuntimeError(why)
    params = dict(params)
    asked_rt = params.pop("request_timeout_ns", None)
    server_bin = Path(server) if server is not None else GUEST_SERVER
    if not os.access(server_bin, os.X_OK):
        raise RuntimeError(f"guest server {server_bin} missing or not executable")
    for what, words in (("server_args", server_args), ("append", (append,))):
        if any(not isinstance(w, str) or any(c in w for c in "'\"\n") for w in words):
            raise ValueError(f"{what}: strings without quotes or newlines")
    wl, p = mount._split_params(workload, seed, params)
    asked_rt = _timeout.asked(wl.params, {} if asked_rt is None
                              else {"request_timeout_ns": asked_rt})
    timeout_ns, timeout_note = _timeout.effective(k, asked_rt)
    if timeout_note and progress:
        progress("timeout", timeout_note)
    hang_ns = mount._check_int("hang_threshold_ns", p.get("hang_threshold_ns", 2_000_000_000), 1,
                               1 << 62)
    interval = mount._check_int("sample_interval_ns",
                                p.get("sample_interval_ns", SAMPLE_INTERVAL_NS),
                                1_000_000, 60_000_000_000)
    last_s = int(wl.ops["time"][-1]) / 1e9
    timeout_s = float(p.get("timeout_s", 240.0 + 10 * last_s))
    if not timeout_s > 0:
        raise ValueError(f"timeout_s: must be > 0, got {timeout_s}")
    opts = mount._server_options(p, seed)
    fetched = fetch.cached(k)
    if fetched is None or update:
        fetched = fetch.fetch(k, update=True, log=(lambda m: progress("fetch", m)) if progress
                              else (lambda m: None))
    map_len = mount._map_lengths(wl)
    dio_rows = wl.ops["op"] == mount.DIO_READ
    dio_len = int(wl.ops["length"][dio_rows].max()) if dio_rows.any() else 0
    dio_len = -(-dio_len // mount.PAGE_SIZE) * mount.PAGE_SIZE
    brd = fetched.brd_module if dio_len else None
    job = initramfs.GuestJob(server_args=tuple(opts.argv()) + tuple(server_args),
                             has_fuse_module=fetched.fuse_module is not None,
                             epoch_lead_ns=EPOCH_LEAD_NS if opts.stalls else 0,
                             dio_kb=dio_len // 1024, has_brd_module=brd is not None,
                             trace=trace, cpu_probe=cpu_probe, folio_trace=folio_trace,
                             request_timeout_s=timeout_ns // _timeout.S,
                             fuse_trace=bool(opts.stalls or timeout_ns))
    with tempfile.TemporaryDirectory(prefix="fwb-guest-") as tmp:
        initrd = os.path.join(tmp, "initrd.cpio")
        initramfs.build(initrd, server=server_bin, runner=GUEST_RUNNER,
                        ops_file=op_file(wl.ops, wl.file_sizes, map_len, wl.threads, dio_len,
                                         interval),
                        job=job, fuse_module=fetched.fuse_module, brd_module=brd)
        b = boot.boot(fetched.vmlinuz, initrd, tmp, timeout_s=timeout_s, retries=retries,
                      mem_mb=mem_mb, smp=smp,
                      append=boot.CMDLINE + (f" {append}" if append.strip() else ""),
                      progress=(lambda mark, t: progress("boot", f"{mark} at {t:.1f} s"))
                      if progress else None)
        files = b.files
        info_g = parse_info(files.get("info", b"").decode(errors="replace"))
        if "failure" in files:
            raise RuntimeError(f"guest: {files['failure'].decode(errors='replace').strip()}")
        err = files.get("runner.err", b"").decode(errors="replace").strip()
        if "result.bin" not in files:
            oom = [ln.strip() for ln in files.get("dmesg", b"").decode(errors="replace").splitlines()
                   if "Out of memory" in ln or "oom-kill" in ln]
            raise RuntimeError(f"guest runner wrote no result: {err or 'no message'} "
                               f"(exit {info_g.get('runner_rc', '?')})"
                               + (f"; dmesg: {oom[-1]}" if oom else ""))
        head, start, lat, faults, samples = read_result(files["result.bin"], len(wl.ops))
        rc = int(head["rc"])
        if rc != 0:
            raise RuntimeError(f"guest driver: {DRIVER_ERRORS.get(rc, f'error {rc}')} at row "
                               f"{int(head['err_row'])}: {os.strerror(int(head['err_errno']))}")
        aborted = int(head["failed"]) > 0 or b"error -%d" % _timeout.ECONNABORTED in \
            files.get("fuse_trace", b"")
        if info_g.get("server_rc") != "0" and not aborted:
            raise RuntimeError(f"FUSE server in the guest failed at unmount (exit "
                               f"{info_g.get('server_rc', '?')}): its request log is incomplete; "
                               + files.get("server.err", b"").decode(errors="replace").strip()[-200:])
        log_path = Path(tmp, "server.log")
        log_path.write_bytes(files.get("server.log", b""))
        try:
            _, log = mount.read_log(log_path)
        except ValueError as exc:
            raise RuntimeError(f"guest: {exc}") from None
    t0 = int(head["t0_ns"])
    samples["time_ns"] -= t0
    dmesg = files.get("dmesg", b"").decode(errors="replace").splitlines()
    warnings = [ln.strip() for ln in dmesg if "WARNING:" in ln or boot.broken(ln)]
    bdi = {key[4:]: _int(v) for key, v in info_g.items() if key.startswith("bdi_")}
    info: dict[str, Any] = {
        "kernel": info_g.get("kernel", fetched.release),
        "kernel_name": k.name,
        "kernel_package": fetched.package,
        "kernel_package_version": fetched.package_version,
        "kernel_suite": k.suite,
        "kernel_family": k.family,
        "simulated_by": k.strategy,
        "kernel_build": info_g.get("kernel_build", ""),
        "emulator": "qemu-tcg",
        "qemu_command": b.command,
        "boot_attempts": b.attempts,
        "boot_retried": list(b.retried),
        "boot_to_init_s": round(b.wall_to_init_s, 3),
        "guest_uptime_at_init_s": _float(info_g.get("uptime_init_s")),
        "run_s": round(_float(info_g.get("uptime_run_end_s"))
                       - _float(info_g.get("uptime_run_start_s")), 3),
        "guest_wall_s": round(b.wall_total_s, 3),
        "clocksource": info_g.get("clocksource_end", ""),
        "clocksource_at_init": info_g.get("clocksource_init", ""),
        "guest_cpus": _int(info_g.get("cpus")),
        "guest_mem_mb": mem_mb,
        "guest_mem_total_kb": _int(info_g.get("mem_total_kb")),
        "vm": {key[3:]: _int(v) for key, v in info_g.items() if key.startswith("vm_")},
        "bdi": bdi,
        "bdi_max_ratio": bdi.get("max_ratio", -1),
        "bdi_strict_limit": bdi.get("strict_limit", -1),
        "bdi_max_bytes": bdi.get("max_bytes", -1),
        "server": opts.argv() + list(server_args),
        "compact_skipped": int(head["compact_skipped"]),
        "sample_interval_ns": interval,
        "dio_source": info_g.get("dio_source", ""),
        "dmesg_warnings": warnings[:5],
        "fuse_knobs": features.parse_knobs(files.get("fuse_knobs", b"")),
    }
    if timeout_ns or asked_rt or opts.stalls:
        stall = opts.stalls[0] if len(opts.stalls) == 1 else None
        info["request_timeout"] = _timeout.evidence(files, wl.ops, start, lat, samples, log,
                                                    t0, stall, timeout_ns)
        info["request_timeout"]["asked_s"] = asked_rt // _timeout.S
        # the knob as the guest read it back; -1: not written
        info["request_timeout"]["guest_knob_s"] = _int(info_g.get("request_timeout_s"))
        info["request_timeout"]["server_rc"] = info_g.get("server_rc", "?")
        if timeout_note:
            info["request_timeout_note"] = timeout_note
    fol = folios.from_files(files)
    if fol is not None:
        info.update(fol)
    elif folio_trace:
        info["folio_trace"] = info_g.get("folio_trace", "not run")
    res = mount.result_from(wl, seed, params, log, samples, start, lat, faults, t0, hang_ns, info,
                            name=fetched.run_name)
    return GuestResult(run=res.run, mount=res, boot=b, kernel=fetched, files=files,
                       ops=wl.ops)


def run(kernel: str | catalog.Kernel, workload: Any, seed: int = 0, **params: Any) -> Run:
    """Run `workload` on `kernel` in a guest and return its Run."""
    return execute(kernel, workload, seed, **params).run


def family_evidence(run: Run) -> str:
    """The family a run's measurements show, from WritebackTmp (what result_from detected)."""
    return str(dict(run.meta).get("family", "?"))




# What the rand-write investigation samples (README "Other kernels under qemu"): the FUSE bdi's
# debugfs stats (its dirty and background thresholds, its reclaimable and writeback pages) and
# the global dirty counters of /proc/vmstat.
TRACE_WRITEBACK = ("/sys/kernel/debug/bdi/{bdi}/stats,"
                   "/proc/vmstat:nr_dirty|nr_writeback|nr_written|nr_dirtied|"
                   "nr_dirty_threshold|nr_dirty_background_threshold")


def read_trace(text: str | bytes) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(time_ns, {key: values}) of the runner's trace lines (absolute CLOCK_MONOTONIC times);
    a key missing from a line is -1 there."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    times, rows = [], []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        times.append(int(parts[0]))
        rows.append(dict(p.split("=", 1) for p in parts[1:] if "=" in p))
    keys = sorted({k for r in rows for k in r})
    return (np.array(times, np.int64),
            {k: np.array([int(r.get(k, -1)) for r in rows], np.int64) for k in keys})


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    uptime_s: float
    tasks: dict[str, tuple[str, int, int]]   # "/proc/PID[/task/TID]" -> (comm, utime + stime
                                             # ticks, sum_exec_runtime ns from schedstat)
    cpu_ticks: dict[str, int]                # /proc/stat's "cpu" line by field


CPU_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_snapshot(text: str | bytes) -> CpuSnapshot:
    """Parse one of /init's CPU snapshots (initramfs.CPU_FILES through ``grep -H ''``)."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    comm: dict[str, tuple[str, int]] = {}
    run_ns: dict[str, int] = {}
    uptime, ticks = float("nan"), {}
    for line in text.splitlines():
        path, sep, body = line.partition(":")
        if not sep:
            continue
        if path == "/proc/uptime":
            uptime = _float(body)
        elif path == "/proc/stat":
            f = body.split()
            if f and f[0] == "cpu":
                ticks = {k: int(v) for k, v in zip(CPU_STAT_FIELDS, f[1:])}
        elif path.endswith("/schedstat"):
            run_ns[path[:-len("/schedstat")]] = _int(body)
        elif path.endswith("/stat"):
            lp, rp = body.find("("), body.rfind(")")
            rest = body[rp + 2:].split()
            if lp < 0 or rp < 0 or len(rest) < 13:
                continue
            # after the comm: state is field 3 of stat(5); utime, stime are 14 and 15
            comm[path[:-len("/stat")]] = (body[lp + 1:rp], int(rest[11]) + int(rest[12]))
    tasks = {k: (c, t, run_ns.get(k, -1)) for k, (c, t) in comm.items()}
    return CpuSnapshot(uptime, tasks, ticks)


def _delta(a: CpuSnapshot, b: CpuSnapshot, pick) -> tuple[int, int]:
    """(ns, ticks) the tasks `pick(key, comm)` chose ran between a and b (new tasks from 0)."""
    ns = ticks = 0
    for key, (c, t, n) in b.tasks.items():
        if not pick(key, c):
            continue
        _, t0, n0 = a.tasks.get(key, (c, 0, 0))
        ns += max(0, n - max(n0, 0)) if n >= 0 else 0
        ticks += max(0, t - t0)
    return ns, ticks


def _kworker(key: str, comm: str) -> bool:
    return comm.startswith("kworker") and "/task/" not in key


def cpu_usage(g: GuestResult) -> dict[str, Any]:
    """The flusher's and the server's CPU time over a guest's run (``execute(cpu_probe=True)``),
    in the guest's own clock (under TCG: emulated time).

    kworker_ns: every kworker thread's sum_exec_runtime over the run, less their rate over the
    idle second before it (as bench.real.calibrate does on the host); flush_kworker_ns: of those,
    the ones whose name names the mount's bdi (``flush-MAJ:MIN``) at the end; server_ns: the
    server's threads (which end writeback, or free the temp pages, at the reply).  pages /
    requests: the WRITEs the server received before the run's last fsync started (the
    flusher's; the fsync writes the rest in the writer's own context), and after it."""
    files = g.files
    if not all(f"cpu_{w}" in files for w in ("idle", "before", "after")):
        raise ValueError("guest run without cpu_probe: no CPU snapshots")
    idle, before, after = (cpu_snapshot(files[f"cpu_{w}"]) for w in ("idle", "before", "after"))
    span_idle = before.uptime_s - idle.uptime_s
    span = after.uptime_s - before.uptime_s
    server = [k for k in after.tasks if "/task/" in k]
    spid = server[0].split("/")[2] if server else None
    bdi = parse_info(files.get("info", b"").decode(errors="replace")).get("bdi", "")

    def flush(key, comm):
        return _kworker(key, comm) and bool(bdi) and f"flush-{bdi}" in comm

    def srv(key, comm):
        return spid is not None and key.startswith(f"/proc/{spid}/task/")

    out: dict[str, Any] = {"span_s": span, "idle_span_s": span_idle}
    for name, pick in (("kworker", _kworker), ("flush_kworker", flush), ("server", srv)):
        ns_i, _ = _delta(idle, before, pick)
        ns, ticks = _delta(before, after, pick)
        rate = ns_i / span_idle if span_idle > 0 else 0.0
        out[f"{name}_raw_ns"] = ns
        out[f"{name}_ticks"] = ticks
        out[f"{name}_idle_ns_per_s"] = rate
        out[f"{name}_ns"] = max(0.0, ns - rate * span)
    tb, ta = before.cpu_ticks, after.cpu_ticks
    out["cpu_stat_ticks"] = {k: ta.get(k, 0) - tb.get(k, 0) for k in CPU_STAT_FIELDS}
    log = g.mount.log
    writes = log[log["kind"] == mount.KIND_WRITE]
    mark = fsync_start_ns(g)
    early = writes[writes["t_recv_ns"] < mark] if mark is not None else writes
    out["pages"] = int(early["size"].astype(np.int64).sum()) // mount.PAGE_SIZE
    out["requests"] = int(len(early))
    out["pages_after_fsync"] = (int(writes["size"].astype(np.int64).sum()) // mount.PAGE_SIZE
                                - out["pages"])
    out["requests_after_fsync"] = int(len(writes)) - out["requests"]
    return out


def fsync_start_ns(g: GuestResult) -> int | None:
    """CLOCK_MONOTONIC time the run's last fsync row started (None: it has none)."""
    if g.ops is None:
        return None
    rows = np.flatnonzero(g.ops["op"] == mount.FSYNC)
    if not len(rows) or g.mount.start_ns[rows[-1]] < 0:
        return None
    return int(g.mount.start_ns[rows[-1]]) + int(g.mount.t0_ns)


WB_WRITEBACK_RUNNING = 1 << 1      # enum wb_state (include/linux/backing-dev-defs.h): bit 1


def writeback_passes(g: GuestResult) -> dict[str, Any]:
    """The flusher's passes over the write phase (time 0 to the run's last fsync) of a run made
    with ``trace=TRACE_WRITEBACK``: a pass starts at a sample whose debugfs ``state`` has
    WB_writeback_running set after one without.  Pages are the bdi's (BdiReclaimable is its
    dirty pages, BdiWriteback those under writeback, BdiDirtyThresh its limit: all in kB in the
    stats); "before" is the last sample before a pass started."""
    if "trace.txt" not in g.files:
        raise ValueError("guest run without trace: no writeback samples")
    t, v = read_trace(g.files["trace.txt"])
    need = ("state", "BdiReclaimable", "BdiWriteback", "BdiDirtyThresh")
    if not len(t) or any(k not in v for k in need):
        raise ValueError("guest trace: no bdi stats (debugfs) in it")
    end = fsync_start_ns(g)
    phase = (t >= g.mount.t0_ns) & (t < (end if end is not None else t.max() + 1))
    run = (v["state"] & WB_WRITEBACK_RUNNING) > 0
    dirty, wb, limit = v["BdiReclaimable"] // 4, v["BdiWriteback"] // 4, v["BdiDirtyThresh"] // 4
    idx = np.flatnonzero(phase)
    starts = [i for i in idx[1:] if run[i] and not run[i - 1]]

    def med(x):
        return float(np.median(x)) if len(x) else float("nan")
    lim = med(limit[phase & (limit > 0)])   # 0 until the bdi's first writeback completes
    # where each pass started, as a share of the bdi's limit at that moment (the limit grows from
    # 0 as the bdi's writeback completes, so early passes start at few pages)
    shares = [float((dirty[i - 1] + wb[i - 1]) / limit[i - 1]) for i in starts if limit[i - 1] > 0]
    return {"start_shares": shares, "start_share_median": med(shares),
            "start_share_q1": float(np.percentile(shares, 25)) if shares else float("nan"),
            "start_share_q3": float(np.percentile(shares, 75)) if shares else float("nan"),
"samples": int(phase.sum()), "passes": len(starts),
            "running_share": float(run[phase].mean()) if phase.any() else float("nan"),
            "limit_pages": lim, "background_pages": lim / 2, "freerun_pages": lim * 3 / 4,
            "dirty_wb_before_start": med([dirty[i - 1] + wb[i - 1] for i in starts]),
            "dirty_median": med(dirty[phase]), "writeback_median": med(wb[phase]),
            "dirtied_pages": int(v["BdiDirtied"][-1] - v["BdiDirtied"][0]) // 4
            if "BdiDirtied" in v else -1}
