"""Run a workload on a real FUSE mount: ``run(workload, seed=0, **params) -> Run``.

The real-clock twin of bench.sim (style.md point 7): the same operation array goes to the C
workload driver (bench.real._driver, csrc/driver/) which executes it against files on a fresh mount
of the C server (bench/real/_bin/fwb_fuse_server, csrc/server/), and the result is a ``Run`` with
model.md's result names.  Needs root, /dev/fuse and libfuse3; ``available()`` says why not.

Parameters (keywords, routed like bench.sim.run): a workload generator's parameters when the
workload is given by name, then the server's, named as in bench.sim.params where the simulator has
the same knob: ``server_threads`` (default 16 here, above max_background, so held WRITEs cannot
starve lookups), ``max_write`` (default max_pages * 4096 = 131072), ``max_pages``,
``max_background`` (12), ``server_dist`` (0/"fixed", 1/"exponential", 2/"lognormal"; default
fixed), ``server_base_ns`` and ``server_page_ns`` (the mean artificial service time of a WRITE;
default 0: the server's own speed), ``server_sigma``, ``stall_start_ns`` / ``stall_ns`` (one
window, also taken from workload.params like the simulator does) or ``stalls`` (a list of
(start_ns, length_ns)), ``hang_threshold_ns``, ``sample_interval_ns``; and ``timeout_s``
(time allowed past the last row's start time before the run is declared stuck).  Simulator-only
parameters (memory, cost model) raise ValueError.

What a mount measures, and how:
  app_throughput_bps, makespan_ns   driver clock (first row start to the end of the last row)
  wb_throughput_bps, bytes_written, requests, pages_per_request, reads
                                    the server's request log (every WRITE / READ)
  write/fault/fsync/sync_latency_ns the driver's per-row clock; a fault is an mmap store during
                                    which the thread took a page fault (getrusage); fsync
                                    includes msync, as in the simulator
  hangs                             file calls that took longer than hang_threshold_ns
  temp_pages_peak/_mean, unmovable_page_seconds
                                    /proc/meminfo WritebackTmp, sampled every 10 ms
  pinned_pages_peak                 /proc/meminfo Writeback (system-wide: other filesystems'
                                    writeback counts too), sampled
  bytes_dirtied                     the workload's WRITE + MMAP_STORE + DIO_READ lengths
  max_copies_in_flight              the server's request log: per page, the most WRITEs covering
                                    it whose [t_recv, t_reply] overlap (``copies_in_flight``); the
                                    server sees a copy from its receipt, the simulator from its
                                    creation in writepages
Not measured (kernel-internal events no counter exposes; left out rather than faked):
NOT_MEASURED below.  Sampled peaks can miss spikes shorter than the sample interval.

``run_command(argv)`` runs a real program instead, with a fresh mount as its working directory
and the writeback cache off (``ServerOptions(writeback_cache=False)``, the server's
--no-writeback-cache), so every write(2), fsync and close reaches the server when it is made;
it returns the server's log (bench.real.trace turns it into an operation stream).  The log's ``pid``
is the calling thread's (fuse_req_ctx), the flusher's for writeback.

Every exit path unmounts (``Mount.stop``): a normal end, an exception, SIGINT/SIGTERM/SIGHUP
(bench.interrupt: they raise ``Interrupted`` in the main thread, and a signal that lands during a
mount's start or unmount waits for it to finish), a dead server (named with its pid within a
second: ``Mount.death``), a stuck one (the connection is aborted through fusectl, then the mount
is detached).  A recorded command runs under a keeper (bench/real/_keeper.py) that ends its
whole process group with the run, even when the run is killed with SIGKILL.
"""
from __future__ import annotations

import contextlib
import dataclasses
import ctypes
import ctypes.util
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import interrupt
from bench.results import metrics
from bench.sim import params as _params, workload as _workloads
from bench.sim.ops import (DIO_READ, FSYNC, MMAP_STORE, MSYNC, OP_DTYPE, OP_NAMES, PAGE_SIZE, SYNC,
                  WRITE)
from bench.results import SERIES_FIELDS, Run

__all__ = ["available", "reap_stale", "run", "execute", "run_command", "CommandResult", "Mount", "MountResult",
           "ServerOptions", "read_log", "result_from", "copies_in_flight",
           "kernel_name", "mounted_fwb", "NOT_MEASURED", "LOG_DTYPE", "SAMPLE_DTYPE"]

SERVER = Path(__file__).resolve().parent / "_bin" / "fwb_fuse_server"
FUSECTL = Path("/sys/fs/fuse/connections")
FSNAME = "fwb"

# Result names of model.md a mount does not report: kernel-internal events without a counter
# (throttle sleeps, reclaim/compaction stalls, what writepages did), data checks the server does
# not make (lost updates, out-of-order versions), and `stuck` (a stuck run raises instead).
NOT_MEASURED = ("throttle_ns", "reclaim_stall_ns", "compaction_stall_ns", "temp_bytes_copied",
                "secondaries", "inplace_updates", "redirty_skips", "writeback_skips",
                "writepages_waits", "temp_alloc_failures", "lost_updates", "out_of_order",
                "deadlocks", "reclaim_gaveup", "compaction_unmovable", "stuck")

# The server's log (csrc/server/fwb_fuse_server.c documents the format).
LOG_MAGIC = b"FWBWLOG"
LOG_HEADER_DTYPE = np.dtype([("magic", "S8"), ("version", "<u4"), ("header_size", "<u4"),
                             ("record_size", "<u4"), ("reserved", "<u4"), ("t_mount_ns", "<i8")])
# Version 2 added the calling thread's pid (fuse_req_ctx) and FLUSH records; version 1 logs
# (40-byte records) are still read, with pid 0.
LOG_DTYPE = np.dtype([("t_recv_ns", "<i8"), ("t_reply_ns", "<i8"), ("ino", "<u8"),
                      ("offset", "<i8"), ("size", "<u4"), ("kind", "<u2"), ("flags", "<u2"),
                      ("pid", "<u4"), ("reserved", "<u4")])
_LOG_V1_DTYPE = np.dtype(LOG_DTYPE.descr[:7])
LOG_VERSIONS = {1: _LOG_V1_DTYPE, 2: LOG_DTYPE}
KIND_WRITE, KIND_READ, KIND_FSYNC, KIND_FLUSH = 0, 1, 2, 3
FLAG_WRITE_CACHE = 1     # FUSE_WRITE_CACHE: the WRITE comes from page-cache writeback

# One sample of the sampler thread; -1 where a source is missing.
SAMPLE_DTYPE = np.dtype([("time_ns", "<i8"), ("dirty_kb", "<i8"), ("writeback_kb", "<i8"),
                         ("writeback_tmp_kb", "<i8"), ("cached_kb", "<i8"), ("anon_kb", "<i8"),
                         ("fuse_waiting", "<i8"), ("bdi_max_ratio", "<i8"),
                         ("bdi_strict_limit", "<i8")])
_MEMINFO = {"Dirty": "dirty_kb", "Writeback": "writeback_kb", "WritebackTmp": "writeback_tmp_kb",
            "Cached": "cached_kb", "AnonPages": "anon_kb"}

STALL_LEAD_NS = 300_000_000   # with stall windows, the run starts this long after server launch
MNT_DETACH = 2
_SERVER_PARAMS = ("server_threads", "max_write", "max_pages", "max_background", "server_dist",
                  "server_base_ns", "server_page_ns", "server_sigma", "stall_start_ns", "stall_ns",
                  "stalls", "hang_threshold_ns", "sample_interval_ns", "timeout_s")


# ---- availability ----

def _driver():
    try:
        from bench.real import _driver
    except ImportError:
        return None
    return _driver


def available() -> tuple[bool, str]:
    """(True, "") when a mount can be made here, else (False, the reason in one line)."""
    if not sys.platform.startswith("linux"):
        return False, f"no FUSE: not Linux ({sys.platform})"
    if not os.path.exists("/dev/fuse"):
        return False, "no /dev/fuse: load the fuse module or run the container with --device /dev/fuse"
    if os.geteuid() != 0:
        return False, f"not root (euid {os.geteuid()}): the mount runner mounts with mount(2)"
    if ctypes.util.find_library("fuse3") is None:
        return False, "libfuse3 missing: apt-get install fuse3 libfuse3-dev pkg-config"
    if not os.access(SERVER, os.X_OK):
        return False, (f"server not built ({SERVER} missing): install libfuse3-dev and pkg-config, "
                       "then rerun `pip install -e .`")
    if _driver() is None:
        return False, "workload driver not built (bench.real._driver missing): rerun `pip install -e .`"
    return True, ""


def _require() -> None:
    ok, why = available()
    if not ok:
        raise RuntimeError(why)


def kernel_name() -> str:
    """``kernel-<version>`` from uname, e.g. kernel-6.18.44 (local suffixes dropped)."""
    m = re.match(r"\d+(\.\d+)*", platform.release())
    return "kernel-" + (m.group(0) if m else platform.release())


# ---- mount table and fusectl ----

def _mountinfo() -> list[list[str]]:
    with open("/proc/self/mountinfo") as f:
        return [line.split() for line in f]


def _unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def mounted_fwb(owner: int | None = None) -> list[str]:
    """Mount points of fwb servers in this mount namespace; with `owner`, only those of the runs
    of that process (its pid is in the mount's directory name), so that a check of one's own
    mounts is not upset by another run on a shared machine."""
    out = []
    mine = None if owner is None else f"/{DIR_PREFIX}{owner}-"
    for f in _mountinfo():
        sep = f.index("-")
        if f[sep + 1].startswith("fuse") and (f[sep + 2] == FSNAME or "fwb" in f[sep + 1]):
            point = _unescape(f[4])
            if mine is None or mine in point:
                out.append(point)
    return out


def _mount_entry(mnt: str) -> list[str] | None:
    for f in _mountinfo():
        if _unescape(f[4]) == mnt:
            return f
    return None


_libc = ctypes.CDLL(None, use_errno=True)


def _umount2(path: str, flags: int) -> int:
    """0 or an errno."""
    if _libc.umount2(os.fsencode(path), flags) == 0:
        return 0
    return ctypes.get_errno()


def _ensure_fusectl() -> bool:
    """Mount the fuse control filesystem if needed; False if it cannot be had."""
    if not FUSECTL.is_dir():
        return False
    if os.path.ismount(FUSECTL):
        return True
    if _libc.mount(b"fusectl", os.fsencode(FUSECTL), b"fusectl", 0, None) == 0:
        return True
    return os.path.ismount(FUSECTL)


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1


# ---- the server's log ----

def read_log(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(header, records) of a server log; ValueError when it is not one."""
    data = Path(path).read_bytes()
    if len(data) < LOG_HEADER_DTYPE.itemsize:
        raise ValueError(f"server log {path}: too short for a header ({len(data)} bytes)")
    head = np.frombuffer(data, LOG_HEADER_DTYPE, 1)[0]
    if head["magic"] != LOG_MAGIC or int(head["version"]) not in LOG_VERSIONS:
        raise ValueError(f"server log {path}: bad magic or version")
    rec = LOG_VERSIONS[int(head["version"])]
    if head["record_size"] != rec.itemsize or head["header_size"] != LOG_HEADER_DTYPE.itemsize:
        raise ValueError(f"server log {path}: record size {head['record_size']}, "
                         f"expected {rec.itemsize}")
    body = data[LOG_HEADER_DTYPE.itemsize:]
    n = len(body) // rec.itemsize
    raw = np.frombuffer(body[:n * rec.itemsize], rec)
    out = np.zeros(n, LOG_DTYPE)
    for name in rec.names:
        out[name] = raw[name]
    return head, out


# ---- the server and its mount ----

@dataclass(frozen=True, slots=True)
class ServerOptions:
    threads: int = 16
    max_write: int = 131072
    max_background: int = 12
    dist: int = 0                     # 0 fixed, 1 exponential, 2 lognormal
    base_ns: int = 0
    page_ns: int = 0
    sigma: float = 0.5
    seed: int = 0
    stalls: tuple[tuple[int, int], ...] = ()
    epoch_ns: int = 0                 # CLOCK_MONOTONIC origin of the stalls (0: mount time)
    writeback_cache: bool = True      # False: write-through, every write(2) is a WRITE at once

    def argv(self) -> list[str]:
        a = [f"--threads={self.threads}", f"--max-write={self.max_write}",
             f"--max-background={self.max_background}",
             f"--delay={_params.SERVER_DISTS[self.dist]}", f"--delay-ns={self.base_ns}",
             f"--delay-page-ns={self.page_ns}", f"--sigma={self.sigma!r}", f"--seed={self.seed}"]
        if self.epoch_ns:
            a.append(f"--epoch={self.epoch_ns}")
        if not self.writeback_cache:
            a.append("--no-writeback-cache")
        return a + [f"--stall={s}:{n}" for s, n in self.stalls]


class Mount:
    """A running server mounted on a fresh temporary directory.  ``stop()`` always unmounts."""

    def __init__(self, options: ServerOptions = ServerOptions(), start_timeout_s: float = 10.0):
        self.options = options
        self.start_timeout_s = start_timeout_s
        self.dir: str | None = None
        self.path: str | None = None
        self.proc: subprocess.Popen | None = None
        self.conn: Path | None = None        # /sys/fs/fuse/connections/N
        self.bdi: Path | None = None         # /sys/class/bdi/MAJ:MIN
        self.log: np.ndarray = np.zeros(0, LOG_DTYPE)
        self.log_header = None
        self.aborted = False
        self.stop_notes: list[str] = []

    def __enter__(self) -> "Mount":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def log_path(self) -> str:
        return os.path.join(self.dir, "server.log")

    def start(self) -> None:
        _require()
        try:
            with interrupt.deferred():      # a Ctrl-C now is raised once the server is known
                self._spawn()
            self._wait_mounted()
        except BaseException:
            self.stop()
            raise

    def _spawn(self) -> None:
        reap_stale()
        # The owner's pid in the name: a later run can tell a dead run's leftovers from a live one's.
        self.dir = tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-")
        self.path = os.path.join(self.dir, "mnt")
        os.mkdir(self.path)
        err = open(os.path.join(self.dir, "server.err"), "wb")
        # --parent: the server aborts and detaches its mount itself if we die, even by SIGKILL.
        cmd = [str(SERVER), self.path, "-f", "-o", f"fsname={FSNAME},subtype={FSNAME}",
               f"--log={self.log_path}", f"--parent={os.getpid()}", *self.options.argv()]
        try:
            # Own session: a Ctrl-C at the terminal reaches us, and we unmount before it ends.
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         start_new_session=True)
        except OSError as exc:
            err.close()
            self._remove_dir()
            raise RuntimeError(f"server failed to start: {exc}") from None
        err.close()

    def _server_error(self) -> str:
        try:
            text = Path(self.dir, "server.err").read_text(errors="replace").strip()
        except OSError:
            text = ""
        return text.splitlines()[-1] if text else "no message"

    def _wait_mounted(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            entry = _mount_entry(self.path)
            if entry is not None:
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"server failed to start (exit {self.proc.returncode}): "
                                   f"{self._server_error()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server failed to start: no mount after {self.start_timeout_s} s")
            time.sleep(0.005)
        major, minor = (int(x) for x in entry[2].split(":"))
        self.bdi = Path(f"/sys/class/bdi/{major}:{minor}")
        if _ensure_fusectl():
            self.conn = FUSECTL / str((major << 20) | minor)   # the kernel's dev_t, as %u

    # -- observation --

    def waiting(self) -> int:
        return _read_int(self.conn / "waiting") if self.conn else -1

    def bdi_settings(self) -> dict[str, int]:
        if self.bdi is None or not self.bdi.is_dir():
            return {}
        return {p.name: _read_int(p) for p in sorted(self.bdi.iterdir())
                if p.is_file() and p.name not in ("uevent",)}

    def server_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def death(self, during: str = "the run") -> str:
        """The line that names a dead server: its pid, how it ended, and what that did."""
        pid = self.proc.pid if self.proc is not None else "?"
        return (f"the FUSE server (pid {pid}) died during {during}: {_exit_text(self.proc)}; "
                "the mount was removed")

    # -- teardown --

    def abort(self) -> None:
        """Sever the connection: every waiter on the server gets an error at once."""
        if self.conn is not None and not self.aborted:
            with contextlib.suppress(OSError):
                (self.conn / "abort").write_text("1")
                self.aborted = True
                self.stop_notes.append("connection aborted")

    def _umount(self, flags: int, timeout_s: float) -> int | None:
        """umount2 in a thread that may be abandoned; its errno, or None on timeout."""
        box: list[int] = []
        t = threading.Thread(target=lambda: box.append(_umount2(self.path, flags)), daemon=True)
        t.start()
        t.join(timeout_s)
        return box[0] if box else None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Unmount and end the server, whatever state they are in; read the log.  Idempotent.
        A signal arriving meanwhile is raised once everything is cleaned up."""
        if self.path is None:
            return
        with interrupt.deferred():
            self._stop(timeout_s)

    def _stop(self, timeout_s: float) -> None:
        try:
            if _mount_entry(self.path) is not None:
                if not self.server_alive():
                    self.abort()   # a dead server: the kernel already failed its requests
                rc = self._umount(0, timeout_s)   # the server serves the final writeback
                if rc is None:
                    self.stop_notes.append(f"umount blocked > {timeout_s} s")
                    self.abort()
                    rc = self._umount(MNT_DETACH, timeout_s)
                if rc not in (0, None) and _mount_entry(self.path) is not None:
                    self.stop_notes.append(f"umount: {os.strerror(rc)}")
                    self.abort()
                    self._umount(MNT_DETACH, timeout_s)
        finally:
            self._end_server(timeout_s)
            self._last_resort()
            self._read_log()
            self._remove_dir()

    def _end_server(self, timeout_s: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.abort()
                self.proc.kill()
                self.proc.wait()
            self.stop_notes.append("server had to be signalled")

    def _last_resort(self) -> None:
        if _mount_entry(self.path) is None:
            return
        self.abort()
        if _umount2(self.path, MNT_DETACH) == 0:
            return
        for cmd in (["fusermount3", "-u", "-z", self.path], ["umount", "-l", self.path]):
            if shutil.which(cmd[0]):
                subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=10, check=False)
            if _mount_entry(self.path) is None:
                return
        raise RuntimeError(f"could not unmount {self.path}")

    def _read_log(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.log_header, self.log = read_log(self.log_path)

    def _remove_dir(self) -> None:
        if self.dir is not None and _mount_entry(self.path or "") is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.path = None


# ---- what dead runs left behind ----

DIR_PREFIX = "fwb-mount-"
# The files a run makes in its directory besides the mount point (reap_stale removes only these).
_RUN_FILES = ("server.err", "server.log", "command.out", "command.status", "command.status.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale(tmp: str | None = None) -> list[str]:
    """Remove what runs killed before they could clean up left behind: a ``fwb-mount-PID-*``
    directory whose owner PID is gone, and its mount if one is still there (its connection
    aborted through fusectl, then detached).  Directories of live runs, and anything not named
    by this module, are left alone.  Returns the directories removed."""
    root = Path(tmp or tempfile.gettempdir())
    removed = []
    for d in root.glob(f"{DIR_PREFIX}*"):
        m = re.fullmatch(rf"{re.escape(DIR_PREFIX)}(\d+)-\w+", d.name)
        if m is None or not d.is_dir() or d.is_symlink() or _alive(int(m.group(1))):
            continue
        mnt = str(d / "mnt")
        entry = _mount_entry(mnt)
        if entry is not None:
            major, minor = (int(x) for x in entry[2].split(":"))
            if _ensure_fusectl():
                with contextlib.suppress(OSError):
                    (FUSECTL / str((major << 20) | minor) / "abort").write_text("1")
            _umount2(mnt, MNT_DETACH)
            if _mount_entry(mnt) is not None:
                continue
        for name in _RUN_FILES:
            with contextlib.suppress(FileNotFoundError):
                (d / name).unlink()
        with contextlib.suppress(OSError):
            os.rmdir(mnt)
        with contextlib.suppress(OSError):
            os.rmdir(d)          # only if nothing else is in it: never remove what we did not make
            removed.append(str(d))
    return removed


# ---- the sampler ----

class _Sampler(threading.Thread):
    """Samples /proc/meminfo, the fusectl waiting count and the bdi's limits until stopped."""

    def __init__(self, mount: Mount, interval_ns: int):
        super().__init__(daemon=True, name="fwb-sampler")
        self.mount, self.interval = mount, interval_ns / 1e9
        self.rows: list[tuple[int, ...]] = []
        self.done = threading.Event()

    def sample(self) -> None:
        vals = dict.fromkeys(_MEMINFO.values(), -1)
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in _MEMINFO:
                    vals[_MEMINFO[key]] = int(rest.split()[0])
        bdi = self.mount.bdi
        self.rows.append((time.clock_gettime_ns(time.CLOCK_MONOTONIC), vals["dirty_kb"],
                          vals["writeback_kb"], vals["writeback_tmp_kb"], vals["cached_kb"],
                          vals["anon_kb"], self.mount.waiting(),
                          _read_int(bdi / "max_ratio") if bdi else -1,
                          _read_int(bdi / "strict_limit") if bdi else -1))

    def run(self) -> None:
        while True:
            self.sample()
            if self.done.wait(self.interval):
                self.sample()
                return

    def array(self) -> np.ndarray:
        return np.array(self.rows, dtype=SAMPLE_DTYPE)


# ---- running a workload ----

@dataclass(frozen=True, slots=True, eq=False)
class MountResult:
    """A mount run: the Run, and the raw arrays it was computed from."""
    run: Run
    log: np.ndarray            # LOG_DTYPE records of the server
    samples: np.ndarray        # SAMPLE_DTYPE rows
    start_ns: np.ndarray       # per op row: start relative to t0 (-1: not run)
    latency_ns: np.ndarray     # per op row: duration (-1: not run or skipped)
    faults: np.ndarray         # per op row: page faults taken by mmap stores
    t0_ns: int                 # CLOCK_MONOTONIC of the run's time 0
    info: dict = field(default_factory=dict)



def _split_params(workload: Any, seed: int, params: dict) -> tuple[_workloads.Workload, dict]:
    rest = dict(params)
    if isinstance(workload, str):
        names = _workloads.workload_params(workload)
        wl = _workloads.make(workload, seed=seed, mem_total_pages=_workloads.REAL_RUN_MEM_PAGES,
                             **{k: rest.pop(k) for k in list(rest) if k in names})
    elif isinstance(workload, _workloads.Workload):
        wl = workload
    else:
        raise ValueError(f"workload: expected a name or a Workload, got {type(workload).__name__}")
    for key in rest:
        if key not in _SERVER_PARAMS:
            if key in _params.PARAM_BY_NAME or key in _params.FLOAT_PARAMS:
                raise ValueError(f"{key}: a simulator parameter; a real mount cannot set it")
            raise ValueError(f"{key}: unknown parameter; a mount takes "
                             + ", ".join(_SERVER_PARAMS))
    for key, value in wl.params.items():         # a workload may carry its server (stalls)
        if (key in _SERVER_PARAMS or key in ("stall_start_ns", "stall_ns")) and key not in rest:
            rest[key] = value
    return wl, rest


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name}: must be an integer in {lo}..{hi}, got {value!r}")
    return int(value)


def _server_options(p: dict, seed: int) -> ServerOptions:
    pb = _params.PARAM_BY_NAME
    dist = p.get("server_dist", 0)
    if isinstance(dist, str):
        if dist not in _params.SERVER_DISTS:
            raise ValueError(f"server_dist: unknown {dist!r}; allowed: "
                             + ", ".join(_params.SERVER_DISTS))
        dist = _params.SERVER_DISTS.index(dist)
    max_write = p.get("max_write", 0)
    if max_write:
        max_write = _check_int("max_write", max_write, PAGE_SIZE, 1 << 20)
    else:
        max_write = _check_int("max_pages", p.get("max_pages", 32), 1, 256) * PAGE_SIZE
    stalls = [tuple(s) for s in p.get("stalls", ())]
    if p.get("stall_start_ns", -1) >= 0 and p.get("stall_ns", 0) > 0:
        stalls.append((p["stall_start_ns"], p["stall_ns"]))
    if len(stalls) > _params.MAX_STALL_WINDOWS:
        raise ValueError(f"stalls: at most {_params.MAX_STALL_WINDOWS} windows")
    stalls = tuple((_check_int("stall start", s, 0, 1 << 62), _check_int("stall length", n, 0, 1 << 62))
                   for s, n in sorted(stalls))
    sigma = float(p.get("server_sigma", 0.5))
    if not 0.0 <= sigma <= 4.0:
        raise ValueError(f"server_sigma: must be in 0..4, got {sigma}")
    return ServerOptions(
        threads=_check_int("server_threads", p.get("server_threads", 16), 1, 256),
        max_write=max_write,
        max_background=_check_int("max_background", p.get("max_background", 12), 1, 65535),
        dist=_check_int("server_dist", dist, 0, 2),
        base_ns=_check_int("server_base_ns", p.get("server_base_ns", 0), 0, pb["server_base_ns"].hi),
        page_ns=_check_int("server_page_ns", p.get("server_page_ns", 0), 0, pb["server_page_ns"].hi),
        sigma=sigma, seed=seed, stalls=stalls)


def _map_lengths(wl: _workloads.Workload) -> np.ndarray:
    """Bytes of each file the driver maps shared: up to the last mapped byte, page-rounded."""
    out = np.zeros(len(wl.file_sizes), np.int64)
    on = np.isin(wl.ops["op"], (MMAP_STORE, DIO_READ, MSYNC))
    if on.any():
        ends = wl.ops["offset"][on] + wl.ops["length"][on]
        np.maximum.at(out, wl.ops["file"][on], ends)
    return (out + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE


def execute(workload: Any, seed: int = 0, **params: Any) -> MountResult:
    """Run `workload` on a fresh mount; see the module docstring.  Raises RuntimeError on failure."""
    _require()
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: must be an integer >= 0, got {seed!r}")
    wl, p = _split_params(workload, seed, params)
    hang_ns = _check_int("hang_threshold_ns", p.get("hang_threshold_ns", 2_000_000_000), 1, 1 << 62)
    interval = _check_int("sample_interval_ns", p.get("sample_interval_ns", 10_000_000),
                          1_000_000, 60_000_000_000)
    timeout_s = float(p.get("timeout_s", 60.0))
    opts = _server_options(p, seed)
    if opts.stalls:   # stall windows are times of the run: fix the run's time 0 in advance
        opts = dataclasses.replace(
            opts, epoch_ns=time.clock_gettime_ns(time.CLOCK_MONOTONIC) + STALL_LEAD_NS)
    lib_ffi = _driver()
    ffi, lib = lib_ffi.ffi, lib_ffi.lib
    if ffi.sizeof("fwb_drv_op") != OP_DTYPE.itemsize:
        raise RuntimeError("bench.real._driver: fwb_drv_op does not match OP_DTYPE; rebuild it")

    n = len(wl.ops)
    ops = np.ascontiguousarray(wl.ops)
    start = np.full(n, -1, np.int64)
    lat = np.full(n, -1, np.int64)
    faults = np.zeros(n, np.int64)
    stop = np.zeros(1, np.int32)
    map_len = _map_lengths(wl)
    dio_rows = wl.ops["op"] == DIO_READ
    dio_len = int(wl.ops["length"][dio_rows].max()) if dio_rows.any() else 0
    dio_path = None
    info: dict[str, Any] = {"kernel": platform.release(), "server": opts.argv()}
    outcome: dict[str, Any] = {}

    with contextlib.ExitStack() as stack:
        if dio_len:
            fd, dio_path = tempfile.mkstemp(prefix="fwb-dio-", dir="/var/tmp")
            stack.callback(os.unlink, dio_path)
            size = -(-dio_len // PAGE_SIZE) * PAGE_SIZE
            with os.fdopen(fd, "wb") as f:
                f.write(np.random.default_rng(seed).integers(0, 256, size, np.uint8).tobytes())
                f.flush()
                os.fsync(f.fileno())
        with interrupt.handling():
            mount = Mount(opts)
            sampler = None
            try:
                mount.start()
                paths = [os.path.join(mount.path, f"f{i}") for i in range(len(wl.file_sizes))]
                keep = [ffi.new("char[]", os.fsencode(q)) for q in paths]
                c_paths = ffi.new("char *[]", keep)
                c_dio = ffi.new("char[]", os.fsencode(dio_path)) if dio_path else ffi.NULL
                crun = ffi.new("fwb_drv_run *")
                crun.ops = ffi.cast("const fwb_drv_op *", ffi.from_buffer(ops))
                crun.n_ops = n
                crun.n_threads = wl.threads
                crun.n_files = len(paths)
                crun.paths = c_paths
                crun.map_len = ffi.cast("const int64_t *", ffi.from_buffer(map_len))
                crun.dio_path = c_dio
                crun.dio_len = dio_len
                crun.t0_ns = opts.epoch_ns
                crun.stop = ffi.cast("int32_t *", ffi.from_buffer(stop))
                crun.start_ns = ffi.cast("int64_t *", ffi.from_buffer(start))
                crun.latency_ns = ffi.cast("int64_t *", ffi.from_buffer(lat))
                crun.faults = ffi.cast("int64_t *", ffi.from_buffer(faults))

                def drive():
                    # Runs in its own thread: everything that touches the mount can block.
                    try:
                        for q, size, ml in zip(paths, wl.file_sizes, map_len):
                            with open(q, "wb") as f:
                                f.truncate(max(int(size), int(ml)))
                        outcome["rc"] = lib.fwb_drive(crun)
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        outcome["exc"] = exc
                    _ = (keep, c_paths, c_dio)   # the C strings live as long as the call

                info["bdi"] = mount.bdi_settings()
                sampler = _Sampler(mount, interval)
                sampler.start()
                t_begin = time.monotonic()
                driver = threading.Thread(target=drive, daemon=True, name="fwb-driver")
                driver.start()
                deadline = (max(opts.epoch_ns - time.clock_gettime_ns(time.CLOCK_MONOTONIC), 0)
                            / 1e9 + int(wl.ops["time"][-1]) / 1e9 + timeout_s)
                failure = None
                while driver.is_alive() or not mount.server_alive():
                    driver.join(0.05)
                    if not mount.server_alive():   # the driver's own error says less
                        failure = mount.death()
                        break
                    if time.monotonic() - t_begin > deadline:
                        failure = (f"run timed out: still running {timeout_s:g} s after its last "
                                   "row was due; connection aborted")
                        break
                if not failure and outcome.get("rc", 0) != 0:
                    # An error may be the first sign of a server that is still exiting.
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        mount.proc.wait(0.2)
                    if not mount.server_alive():
                        failure = (f"{mount.death()}; "
                                   f"{_driver_error(ffi, lib, outcome['rc'], crun, wl)}")
                if failure:
                    stop[0] = 1
                    mount.abort()
                    driver.join(10)
                    raise RuntimeError(failure)
            except interrupt.Interrupted as exc:
                stop[0] = 1
                mount.abort()
                exc.notes.append("the mount was removed")
                raise
            finally:
                stop[0] = 1
                if sampler is not None:
                    sampler.done.set()
                    sampler.join(5)
                mount.stop()
                info["stop_notes"] = list(mount.stop_notes)
    if "exc" in outcome:
        raise RuntimeError(f"driver: {outcome['exc']}") from outcome["exc"]
    if mount.proc is not None and mount.proc.returncode != 0:
        raise RuntimeError(f"{mount.death('the unmount')}; its request log is incomplete")
    rc = outcome.get("rc", -1)
    if rc != 0:
        raise RuntimeError(_driver_error(ffi, lib, rc, crun, wl))
    t0 = int(crun.t0_used_ns)
    info["compact_skipped"] = int(crun.compact_skipped)
    samples = sampler.array()
    samples["time_ns"] -= t0
    return result_from(wl, seed, params, mount.log, samples, start, lat, faults, t0, hang_ns, info)


def _exit_text(proc: subprocess.Popen | None) -> str:
    if proc is None:
        return "not started"
    rc = proc.returncode
    if rc is not None and rc < 0:
        return f"killed by {signal.Signals(-rc).name}"
    return f"exit status {rc}"


def _driver_error(ffi, lib, rc: int, run, wl) -> str:
    what = ffi.string(lib.fwb_drv_strerror(rc)).decode()
    row, err = int(run.err_row), int(run.err_errno)
    where = ""
    if row >= 0 and row < len(wl.ops):
        where = f" at row {row} ({OP_NAMES.get(int(wl.ops['op'][row]), '?')})"
    elif row < -1:
        where = f" (file {-1 - row})"
    return f"driver: {what}{where}" + (f": {os.strerror(err)}" if err else "")


def copies_in_flight(log: np.ndarray) -> tuple[int, int]:
    """(most copies of one page in flight at once, pages that ever had more than one) from a
    server log: a WRITE holds a copy of each page it covers from t_recv to t_reply; intervals
    that only touch (one's reply at the other's receipt) do not overlap.  Pages, not bytes: two
    WRITEs carrying different bytes of one page (sub-page ranges, as iomap writeback can send)
    count as two copies of it."""
    w = log[log["kind"] == KIND_WRITE]
    if not len(w):
        return 0, 0
    first = w["offset"] // PAGE_SIZE
    n = (w["offset"] + np.maximum(w["size"].astype(np.int64), 1) - 1) // PAGE_SIZE - first + 1
    idx = np.repeat(np.arange(len(w)), n)
    page = first[idx] + (np.arange(len(idx)) - np.repeat(np.cumsum(n) - n, n))
    _, file_no = np.unique(w["ino"], return_inverse=True)
    key = np.concatenate([file_no[idx], file_no[idx]]).astype(np.int64) << 40
    key |= np.concatenate([page, page])
    t = np.concatenate([w["t_recv_ns"][idx], w["t_reply_ns"][idx]])
    delta = np.concatenate([np.ones(len(idx), np.int64), -np.ones(len(idx), np.int64)])
    order = np.lexsort((delta, t, key))       # per page by time, a reply before a receipt
    # Every page's +1s and -1s cancel, so one running sum over all pages is each page's count.
    level = np.cumsum(delta[order])
    multi = np.unique(key[order][level > 1])
    return int(level.max()), len(multi)


def result_from(wl, seed, params, log, samples, start, lat, faults, t0, hang_ns, info,
                name: str | None = None) -> MountResult:
    """A run's Run from what a mount recorded: the server's log (LOG_DTYPE, CLOCK_MONOTONIC), the
    samples (SAMPLE_DTYPE, times relative to t0), the driver's per-row start / latency / faults
    and t0 (the driver's time 0 on the same clock).  Shared by this machine's mount and the
    guests of bench.real.kernels; `name` is the run's strategy (default: this kernel's)."""
    ops = wl.ops
    done = (start >= 0) & (lat >= 0)
    t_first = int(start[done].min()) if done.any() else 0
    t_end = int((start + lat)[done].max()) if done.any() else 0
    writes = log[log["kind"] == KIND_WRITE]
    bytes_written = int(writes["size"].sum(dtype=np.int64))
    wb_end = int(writes["t_reply_ns"].max()) - t0 if len(writes) else t_first
    makespan = t_end - t_first
    wb_span = wb_end - t_first
    first_page = writes["offset"] // PAGE_SIZE
    last_page = (writes["offset"] + np.maximum(writes["size"].astype(np.int64), 1) - 1) // PAGE_SIZE
    ppr = np.bincount((last_page - first_page + 1).astype(np.int64)) if len(writes) else []
    code = ops["op"]

    def lat_of(mask):
        return metrics.latency(lat[mask & done])

    on_mount = np.isin(code, (WRITE, MMAP_STORE, DIO_READ, FSYNC, MSYNC))
    kb = samples
    run_span = (kb["time_ns"] >= t_first) & (kb["time_ns"] <= max(t_end, wb_end))
    tmp_pages = np.maximum(kb["writeback_tmp_kb"], 0) // 4
    dt = np.diff(kb["time_ns"], append=kb["time_ns"][-1:]) if len(kb) else np.zeros(0, np.int64)
    temp_ns = float((tmp_pages * dt)[run_span].sum()) if len(kb) else 0.0
    span = max(t_end, wb_end) - t_first
    m: dict[str, Any] = {
        "app_throughput_bps": wl.bytes_dirtied() * 1e9 / makespan if makespan > 0 else 0.0,
        "wb_throughput_bps": bytes_written * 1e9 / wb_span if wb_span > 0 else 0.0,
        "makespan_ns": makespan,
        "write_latency_ns": lat_of(code == WRITE),
        "fault_latency_ns": lat_of((code == MMAP_STORE) & (faults > 0)),
        "fsync_latency_ns": lat_of(np.isin(code, (FSYNC, MSYNC))),
        "sync_latency_ns": lat_of(code == SYNC),
        "temp_pages_peak": int(tmp_pages.max()) if len(kb) else 0,
        "temp_pages_mean": temp_ns / span if span > 0 else 0.0,
        "unmovable_page_seconds": temp_ns / 1e9,
        "pinned_pages_peak": int(np.maximum(kb["writeback_kb"], 0).max() // 4) if len(kb) else 0,
        "requests": len(writes),
        "pages_per_request": {int(k): int(c) for k, c in enumerate(ppr) if c},
        "reads": int((log["kind"] == KIND_READ).sum()),
        "hangs": int((lat[on_mount & done] > hang_ns).sum()),
        "bytes_dirtied": wl.bytes_dirtied(),
        "bytes_written": bytes_written,
    }
    m["max_copies_in_flight"], multi_pages = copies_in_flight(log)
    temp_seen = bool(len(kb)) and bool((kb["writeback_tmp_kb"] > 0).any())
    info.update({
        "family": "temp-page" if temp_seen else "no-temp-page",
        "writeback_tmp_max_kb": int(kb["writeback_tmp_kb"].max()) if len(kb) else -1,
        "writes_with_writeback_flag": int((writes["flags"] & FLAG_WRITE_CACHE != 0).sum()),
        "fsync_requests": int((log["kind"] == KIND_FSYNC).sum()),
        "waiting_max": int(kb["fuse_waiting"].max()) if len(kb) else -1,
        "pages_with_concurrent_copies": multi_pages,
        "not_measured": list(NOT_MEASURED),
    })
    series = np.column_stack([kb["time_ns"], kb["dirty_kb"] // 4, kb["writeback_kb"] // 4,
                              kb["writeback_tmp_kb"] // 4, kb["cached_kb"] // 4,
                              kb["anon_kb"] // 4]).astype(np.int64).reshape(-1, len(SERIES_FIELDS))
    run = Run(strategy=name or kernel_name(), workload=wl.name, params=dict(params), seed=seed,
              engine="mount", metrics=m, series=series, meta=info)
    return MountResult(run=run, log=log, samples=samples, start_ns=start, latency_ns=lat,
                       faults=faults, t0_ns=t0, info=info)


def run(workload: Any, seed: int = 0, **params: Any) -> Run:
    """Run `workload` on a real mount and return its Run (strategy and engine: the kernel)."""
    return execute(workload, seed, **params).run


# ---- running a real program ----

@dataclass(frozen=True, slots=True, eq=False)
class CommandResult:
    """A program run on a mount: the server's log and the command's clock."""
    log: np.ndarray            # LOG_DTYPE records, CLOCK_MONOTONIC times
    t0_ns: int                 # CLOCK_MONOTONIC just before the command was started
    t_end_ns: int              # CLOCK_MONOTONIC when it had exited
    returncode: int
    output_tail: str           # the last lines of its stdout + stderr
    info: dict = field(default_factory=dict)


RECORD_OPTIONS = ServerOptions(writeback_cache=False, max_write=1 << 20)


def _tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(os.fstat(f.fileno()).st_size - 8192, 0))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


KEEPER = Path(__file__).resolve().parent / "_keeper.py"


def _end_keeper(keeper: subprocess.Popen, status_path: str) -> None:
    """End a recorded command's keeper and with it the command's process group; if the keeper
    does not go within 5 s, kill it and the group it reported."""
    if keeper.poll() is None:
        keeper.terminate()              # the keeper kills the command's group, then exits
        try:
            keeper.wait(5)
        except subprocess.TimeoutExpired:
            keeper.kill()
            keeper.wait()
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        import json
        pid = int(json.loads(Path(status_path).read_text())["pid"])
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def run_command(argv: list[str], timeout_s: float = 60.0, env: dict | None = None,
                options: ServerOptions = RECORD_OPTIONS) -> CommandResult:
    """Run `argv` with a fresh mount as its working directory and return the server's log.

    The default options turn the writeback cache off (write-through), so every write(2), fsync
    and close reaches the server when the program makes it, from the calling thread.  The
    command runs in a process group of its own under a keeper (bench/real/_keeper.py) that ends
    the whole group when the command exits, when the run ends it (time-out, dead server,
    SIGINT/SIGTERM/SIGHUP) and when this process dies, even by SIGKILL.  Raises RuntimeError
    when it cannot start, times out, exits non-zero or the server dies (named within a second,
    ``Mount.death``); the mount is removed on every path."""
    import json
    _require()
    if not argv:
        raise ValueError("command: empty")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s: must be > 0, got {timeout_s}")
    outcome: dict[str, Any] = {}
    with interrupt.handling():
        mount = Mount(options)
        keeper = None
        status_path = ""
        try:
            mount.start()
            out_path = os.path.join(mount.dir, "command.out")
            status_path = os.path.join(mount.dir, "command.status")
            with open(out_path, "wb") as out, interrupt.deferred():
                try:
                    keeper = subprocess.Popen(
                        [sys.executable, "-I", "-S", str(KEEPER), str(os.getpid()), status_path,
                         "--", *argv], cwd=mount.path, env=env, stdin=subprocess.DEVNULL,
                        stdout=out, stderr=subprocess.STDOUT)
                except OSError as exc:
                    raise RuntimeError(f"command {argv[0]!r} cannot start: "
                                       f"{exc.strerror or exc}") from None
            deadline = time.monotonic() + timeout_s
            failure = None
            while True:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    keeper.wait(0.05)
                if keeper.returncode is not None:
                    break
                if not mount.server_alive():
                    failure = mount.death("the command") + "; the command was killed"
                    break
                if time.monotonic() > deadline:
                    failure = (f"command {argv[0]!r} timed out after {timeout_s:g} s (killed); "
                               "the mount was removed")
                    break
            if failure:
                mount.abort()
                _end_keeper(keeper, status_path)
                raise RuntimeError(failure)
            try:
                status = json.loads(Path(status_path).read_text())
            except (OSError, ValueError):
                status = {}
            if "error" in status:
                raise RuntimeError(f"command {argv[0]!r} cannot start: {status['error']}")
            if "returncode" not in status:
                raise RuntimeError(f"command {argv[0]!r}: its keeper ended without a status "
                                   f"({_exit_text(keeper)}); the mount was removed")
            rc, t0, t_end = status["returncode"], status["t0_ns"], status["t_end_ns"]
            outcome["tail"] = _tail(out_path)
            if not mount.server_alive():
                raise RuntimeError(mount.death("the command"))
        except interrupt.Interrupted as exc:
            if keeper is not None:
                _end_keeper(keeper, status_path)
                exc.notes.append("the command was ended")
            exc.notes.append("the mount was removed")
            raise
        except BaseException:
            if keeper is not None:
                _end_keeper(keeper, status_path)
            raise
        finally:
            mount.stop()
    if rc != 0:
        last = outcome["tail"].splitlines()[-1] if outcome["tail"] else "no output"
        why = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"
        raise RuntimeError(f"command {argv[0]!r} failed ({why}): {last}")
    if mount.proc is not None and mount.proc.returncode != 0:
        raise RuntimeError(f"{mount.death('the unmount')}; its request log is incomplete")
    info = {"kernel": platform.release(), "server": options.argv(),
            "stop_notes": list(mount.stop_notes)}
    return CommandResult(log=mount.log, t0_ns=t0, t_end_ns=t_end, returncode=rc,
                         output_tail=outcome["tail"], info=info)
