"""Predicted against measured: ``python -m bench validate``.

The same workloads (the same operation arrays, seeds and server configuration) run on a real FUSE
mount of this kernel (bench.real.mount) and in the simulator under ``no-temp-page`` (the strategy of
6.16 and later kernels), with the active machine profile (bench.sim.machine; ``--machine`` names
another, simulated as it is) and, without --machine, the model parameters read from this machine
(``machine_params``: memory, vm.dirty_ratio, vm.dirty_background_ratio, the CPUs this process may
use) and the mount's server (16 threads, max_background 12, max_pages 32,
no artificial delay).  It prints, per workload, the median over seeds of: app throughput, WRITE
count, pages-per-request histogram, fsync latency; the ratio predicted / measured; and, for the
metrics with a target (``TARGETS``: the counts within 15%, throughput and makespan within 25%),
"ok" or "MISSED".  Latencies are shown, not judged: the model charges a sleep and wake-up after
each wait on the server (``wakeup_ns``), so fsync latencies come out up to about 1.5 times the
measured ones (README, "Calibration and validation"), and a write(2) of a few microseconds is
within the measurement's own noise.  ``validate`` exits 1 when a target is missed or the blocking
pattern differs; ``--json`` prints the same as JSON.

Then the blocking pattern with a stuck server (``blocking``): during a stall window of the real
server, one thread each calls write(2) in a loop, fsync(2), close(2), sync(2) and syncfs(2) on
dirty FUSE files, and each call is classed as "returned" (during the stall) or "waited" (until
the stall ended; for the writer, "throttled (waited)": one of its calls was held until then);
the simulator runs the same calls (write, fsync, sync: it has no close or syncfs) and is classed
the same way.

``mount_runs(workloads, seeds, params, progress)`` gives bench.results.compare real-mount rows.

``validate --kernel K`` checks another kernel instead, in a qemu guest, against the strategy of
its family: bench.real.kernels.validate.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import os
import sys
import threading
import time
from typing import Any, Callable, Iterable

import numpy as np

from bench.results import metrics, stats
from bench.sim import params as _params
from bench.sim.ops import FSYNC, OP_DTYPE, PAGE_SIZE, SYNC, WRITE
from bench.results import Run

__all__ = ["mount_runs", "machine_params", "sim_engine", "compare_workload", "render",
           "blocking", "render_blocking", "add_parsers", "cmd_validate", "VALIDATE_SET",
           "TOLERANCE", "TARGETS", "MOUNT_SERVER_PARAMS", "verdict", "blocking_same"]

TOLERANCE = 0.15
# The targets validate judges (metric -> largest |predicted / measured - 1|); the other metrics
# are shown, not judged (see the module docstring).  The measured side moves by up to 20% between
# runs minutes apart on a shared machine (README), hence 25% for the timed ones.
TARGETS = {"app throughput": 0.25, "WRITE requests": TOLERANCE, "bytes written": TOLERANCE,
           "makespan": 0.25}
STRATEGY = "no-temp-page"
# The mount's server as bench.real.mount runs it by default, in simulator parameters.
MOUNT_SERVER_PARAMS = {"server_threads": 16, "server_dist": 0, "max_background": 12,
                       "max_pages": 32}
# (workload, its parameters): the default sizes; each real run takes well under a second.
VALIDATE_SET: tuple[tuple[str, dict], ...] = (
    ("seq-write", {}),
    ("rand-write", {}),
    ("fsync-heavy", {}),
)
MiB = 1 << 20
MS = 1_000_000


def sim_engine() -> str:
    """"c" when the C engine is built, else the Python reference."""
    from bench.sim import _cengine
    return "c" if _cengine.available() else "python"


def machine_params() -> dict[str, int]:
    """The simulator's memory and dirty-limit parameters as this machine has them."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    pages = int(line.split()[1]) * 1024 // PAGE_SIZE
                    p = _params.PARAM_BY_NAME["mem_total_pages"]
                    out["mem_total_pages"] = min(max(pages, p.lo), p.hi)
    for name in ("dirty_ratio", "dirty_background_ratio"):
        with contextlib.suppress(OSError, ValueError):
            with open(f"/proc/sys/vm/{name}") as f:
                out[name] = int(f.read())
    with contextlib.suppress(OSError, ValueError):   # absolute limits override the ratios
        with open("/proc/sys/vm/dirty_bytes") as f1, open("/proc/sys/vm/dirty_background_bytes") as f2:
            if int(f1.read()) or int(f2.read()):
                out.pop("dirty_ratio", None)
                out.pop("dirty_background_ratio", None)
    if out.get("dirty_background_ratio", 0) >= out.get("dirty_ratio", 100):
        out.pop("dirty_background_ratio", None)
    out["cpus"] = _params.machine_cpus()
    return out


# ---- real-mount rows for bench.results.compare ----

# Workloads quick enough on a real mount to sit beside the simulated ones in `compare`
# (rewrite-hot takes a minute of real time, stuck-server several seconds, mem-pressure
# allocates 2 GB of real memory).
MOUNT_SUITE = ("seq-write", "rand-write", "mmap-rewrite", "dio-redirty", "fsync-heavy",
               "multi-writer", "seq-write-128k", "seq-write-1m", "rand-write-128k",
               "rand-write-1m", "seq-overwrite-128k", "seq-overwrite-1m", "rand-overwrite-128k",
               "rand-overwrite-1m", "partial-rewrite")


def mount_runs(workloads: Iterable[str], seeds: Iterable[int], params: dict | None = None,
               progress: bool = False, failed: list | None = None) -> tuple[tuple[Run, ...], str]:
    """Every (workload, seed) on a real mount -> (runs, "") or ((), why not, in one line).

    Runs are named like simulator runs with strategy = the kernel (``kernel-6.18.44``) and engine
    "mount", so bench.results.compare.rows puts them beside the strategies.  Of `params`, a mount takes
    each workload's own parameters and the server parameters bench.real.mount knows; simulator-only
    ones (memory, costs) are left out, as a kernel cannot be given them.  A streamed workload
    (bench.sim.workload.StreamedWorkload: too long for an array) is not run, and said so in the
    note.  A workload that fails on
    the mount is left out and named in the returned note; with `failed`, a list, each run left
    out is appended to it ({strategy, workload, seed, engine, error}: the result file's
    ``metadata.failed_runs``, which marks it as partial)."""
    from bench.real import mount
    from bench.sim import workload as _wl
    ok, why = mount.available()
    if not ok:
        return (), f"no real-mount rows: {why}"
    params = dict(params or {})
    runs, notes, streamed = [], [], []
    seeds = list(seeds)
    for w in workloads:
        own = _wl.workload_params(w)
        p = {k: v for k, v in params.items() if k in own or k in mount._SERVER_PARAMS}
        for seed in seeds:
            if progress:
                print(f"mount: {w} seed {seed}", file=sys.stderr)
            try:
                runs.append(mount.run(w, seed, **p))
            except _wl.StreamedError as exc:      # too long for an array: simulated only
                streamed.append(str(exc))
                break
            except RuntimeError as exc:
                notes.append(f"{w}/{seed}: {exc}")
                if failed is not None:    # this seed and the ones not tried after it
                    failed.extend({"strategy": mount.kernel_name(), "workload": w, "seed": s,
                                   "engine": "mount", "error": str(exc) if s == seed else
                                   f"not run: seed {seed} failed"}
                                  for s in seeds[seeds.index(seed):])
                break
    note = "" if not notes else "real mount failed on " + "; ".join(notes)
    if streamed:
        note = "; ".join(([note] if note else []) + [f"real mount: not run: {m}" for m in streamed])
    return tuple(runs), note


# ---- predicted against measured ----

@dataclasses.dataclass(frozen=True, slots=True)
class Pair:
    workload: str
    metric: str
    predicted: float
    measured: float
    unit: str
    scale: float

    @property
    def ratio(self) -> float:
        return self.predicted / self.measured if self.measured else float("nan")

    @property
    def tolerance(self) -> float | None:
        """The target, or None for a metric that is shown and not judged."""
        return TARGETS.get(self.metric)

    @property
    def within(self) -> bool:
        tol = TOLERANCE if self.tolerance is None else self.tolerance
        return self.measured != 0 and abs(self.ratio - 1) <= tol

    @property
    def missed(self) -> bool:
        return self.tolerance is not None and not self.within


def _median(runs: list[Run], get: Callable[[dict], float]) -> float:
    vals = [get(r.metrics) for r in runs]
    vals = [v for v in vals if v is not None]
    return stats.summarize(vals).median if vals else float("nan")


def _hist(runs: list[Run]) -> dict[int, float]:
    keys = sorted({k for r in runs for k in r.metrics["pages_per_request"]})
    return {k: float(np.median([r.metrics["pages_per_request"].get(k, 0) for r in runs]))
            for k in keys}


def compare_workload(name: str, wparams: dict, seeds: list[int], sim_params: dict,
                     engine: str) -> tuple[list[Pair], dict, dict, list[Run], list[Run]]:
    """Run `name` on the mount and in the simulator for every seed; pairs of medians."""
    from bench.real import mount
    from bench import sim
    from bench.sim import workload as _wl
    measured, predicted = [], []
    for seed in seeds:
        wl = _wl.make(name, seed=seed, mem_total_pages=_wl.REAL_RUN_MEM_PAGES, **wparams)
        measured.append(mount.run(wl, seed))
        predicted.append(sim.run(STRATEGY, wl, seed, engine, **sim_params))

    def lat(key):
        return lambda m: m[key]["p50"] if m[key]["count"] else None

    pairs = []
    for metric, get, unit, scale in (
            ("app throughput", lambda m: m["app_throughput_bps"], "MB/s", 1e-6),
            ("WRITE requests", lambda m: m["requests"], "", 1),
            ("bytes written", lambda m: m["bytes_written"], "MiB", 1 / MiB),
            ("write p50", lat("write_latency_ns"), "us", 1e-3),
            ("fsync p50", lat("fsync_latency_ns"), "us", 1e-3),
            ("fsync max", lambda m: m["fsync_latency_ns"]["max"] if m["fsync_latency_ns"]["count"]
             else None, "us", 1e-3),
            ("makespan", lambda m: m["makespan_ns"], "ms", 1e-6)):
        pairs.append(Pair(name, metric, _median(predicted, get), _median(measured, get), unit,
                          scale))
    return pairs, _hist(predicted), _hist(measured), predicted, measured


def _fmt(v: float, scale: float) -> str:
    x = v * scale
    if x != x:
        return "-"
    return f"{x:.0f}" if abs(x) >= 100 or x == int(x) else f"{x:.3g}"


def _fmt_hist(h: dict[int, float], top: int = 6) -> str:
    total = sum(h.values()) or 1
    items = sorted(h.items(), key=lambda kv: -kv[1])[:top]
    return " ".join(f"{k}:{100 * c / total:.0f}%" for k, c in sorted(items))


def render(results: list[tuple[list[Pair], dict, dict]], header: str) -> str:
    lines = [header, f"{'workload':12s} {'metric':16s} {'predicted':>10s} {'measured':>10s} "
                     f"{'pred/meas':>9s}  {'target':6s}"]
    for pairs, hp, hm in results:
        for p in pairs:
            target = "shown" if p.tolerance is None else f"±{p.tolerance:.0%}"
            mark = "" if p.tolerance is None else "MISSED" if p.missed else "ok"
            unit = f" {p.unit}" if p.unit else ""
            lines.append(f"{p.workload:12s} {p.metric + unit:16s} {_fmt(p.predicted, p.scale):>10s} "
                         f"{_fmt(p.measured, p.scale):>10s} {p.ratio:9.2f}  {target:6s} {mark}")
        w = pairs[0].workload
        lines.append(f"{w:12s} {'pages/request':16s} predicted {_fmt_hist(hp)}")
        lines.append(f"{w:12s} {'':16s} measured  {_fmt_hist(hm)}")
    lines.append("medians over seeds; target: the largest |predicted/measured - 1| judged "
                 "('shown': not judged); histogram: share of WRITEs by pages carried (the six "
                 "most common sizes)")
    return "\n".join(lines) + "\n"


def verdict(pairs: list[Pair], blocking_same: bool | None = None) -> tuple[bool, str]:
    """(passed, one line): every judged metric within its target and, when the stuck-server
    part ran, the same blocking pattern on both sides."""
    judged = [p for p in pairs if p.tolerance is not None]
    missed = [p for p in judged if p.missed]
    bad = [f"{p.workload} {p.metric} {p.ratio:.2f} (target ±{p.tolerance:.0%})" for p in missed]
    if blocking_same is False:
        bad.append("the stuck server's blocking pattern differs")
    if not bad:
        extra = "" if blocking_same is None else ", the same blocking pattern"
        return True, f"validate: PASS: {len(judged)} of {len(judged)} judged metrics within their " \
                     f"targets{extra}"
    return False, f"validate: FAIL: {len(missed)} of {len(judged)} judged metrics missed their " \
                  f"targets: " + "; ".join(bad)


def pairs_json(p: Pair) -> dict:
    nan = lambda v: None if v != v else v      # noqa: E731 (JSON has no NaN)
    return {"workload": p.workload, "metric": p.metric, "unit": p.unit,
            "predicted": nan(p.predicted * p.scale), "measured": nan(p.measured * p.scale),
            "ratio": nan(p.ratio), "target": p.tolerance,
            "within": None if p.tolerance is None else not p.missed}


# ---- blocking with a stuck server ----

_libc = ctypes.CDLL(None, use_errno=True)


def _timed(fn: Callable[[], Any], box: dict, key: str, t0: int) -> None:
    start = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    try:
        fn()
        box[key] = (start - t0, time.clock_gettime_ns(time.CLOCK_MONOTONIC) - t0, "")
    except OSError as exc:
        box[key] = (start - t0, time.clock_gettime_ns(time.CLOCK_MONOTONIC) - t0, exc.strerror)


def _classify(start: int, end: int | None, stall_end: int) -> str:
    if end is None:
        return "never returned"
    # A call that returns within 100 ms of the stall's end waited for it.
    return "waited" if end >= stall_end - 100 * MS else "returned"


def _classify_writes(calls: list[tuple[int, int]], stall_end: int) -> tuple[str, int | None]:
    """The writer's class from its (start, end) calls: "throttled (waited)" when one call of more
    than 100 ms returned within 100 ms of the stall's end (it was held until then); -> (class,
    index of that call)."""
    for i, (a, e) in enumerate(calls):
        if e - a > 100 * MS and e >= stall_end - 100 * MS:
            return "throttled (waited)", i
    return "returned", None


def blocking(stall_ns: int = 2000 * MS, write_mib: int = 256, sim_params: dict | None = None,
             engine: str | None = None) -> dict[str, dict[str, Any]]:
    """The calls of a stuck server's clients, on the mount and in the simulator.

    The real server stalls (holds every WRITE) from 0.6 s after its start for `stall_ns`.  At
    0.2 s into the stall, five threads start: write(2) of 1 MiB blocks to file w (up to
    write_mib MiB: enough to pass the bdi's strict dirty limit), fsync(2) of file f, close(2) of
    file c, sync(2), syncfs(2) of the mount, each on files dirtied before the stall began.
    Returns {call: {"mount": (class, start, end), "sim": (class, start, end) or None}}, times in
    ns from the stall's start."""
    from bench.real import mount as _mount
    from bench import sim
    from bench.sim import workload as _wl
    ok, why = _mount.available()
    if not ok:
        raise RuntimeError(why)
    # The stall is set when the server starts; the mount must be up, and the files dirtied,
    # before it begins.  On a loaded machine that can take longer than 0.8 s: then the run is
    # made again with more lead.
    late = True
    for lead in (200 * MS, 1000 * MS, 4000 * MS):
        start_ns = 600 * MS
        epoch = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + lead
        opts = _mount.ServerOptions(stalls=((start_ns, stall_ns),), epoch_ns=epoch)
        stall0, stall1 = epoch + start_ns, epoch + start_ns + stall_ns
        box: dict[str, tuple] = {}
        writes: list[tuple[int, int]] = []      # (start, end) of each write(2), from the stall's start
        m = _mount.Mount(opts)

        def watch(until: float) -> None:
            """Sleep until the monotonic time `until`, naming a dead server within 50 ms."""
            while True:
                if not m.server_alive():
                    m.abort()
                    raise RuntimeError(m.death("the stuck-server part"))
                left = until - time.monotonic()
                if left <= 0:
                    return
                time.sleep(min(left, 0.05))

        try:
            m.start()
            fds = {k: os.open(os.path.join(m.path, k), os.O_RDWR | os.O_CREAT, 0o644) for k in "wfcs"}
            block = b"\x5a" * MiB
            for k in "fcs":
                os.pwrite(fds[k], block, 0)              # dirty before the stall
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            if now >= stall0:       # a loaded machine started the mount late: again, with more lead
                m.abort()           # the stall may have begun: let nothing wait for it
                for fd in fds.values():
                    with contextlib.suppress(OSError):
                        os.close(fd)
                continue
            late = False
            watch(time.monotonic() + (stall0 + 200 * MS - now) / 1e9)

            def writer():
                t = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                err = ""
                try:
                    for i in range(write_mib):
                        a = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                        os.pwrite(fds["w"], block, i * MiB)
                        e = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                        writes.append((a - stall0, e - stall0))
                        if e > stall1:
                            break
                except OSError as exc:      # a dead server: named by watch() in the main thread
                    err = exc.strerror or str(exc)
                box["write"] = (t - stall0, time.clock_gettime_ns(time.CLOCK_MONOTONIC) - stall0, err)

            def syncfs():
                if _libc.syncfs(fds["s"]) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, os.strerror(e))

            calls = {"fsync": lambda: os.fsync(fds["f"]), "close": lambda: os.close(fds.pop("c")),
                     "sync": os.sync, "syncfs": syncfs}
            threads = [threading.Thread(target=writer, daemon=True)]
            threads += [threading.Thread(target=_timed, args=(fn, box, k, stall0), daemon=True)
                        for k, fn in calls.items()]
            for t in threads:
                t.start()
            deadline = time.monotonic() + (stall1 - time.clock_gettime_ns(time.CLOCK_MONOTONIC)) / 1e9 + 5
            while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
                watch(min(deadline, time.monotonic() + 0.05))
            watch(0)            # the calls may have ended because the server did
            for k, fd in list(fds.items()):
                if k != "c":
                    with contextlib.suppress(OSError):
                        os.close(fd)
                    fds.pop(k)
        finally:
            m.stop()
        if not late:
            break
    if late:
        raise RuntimeError("blocking: the mount took longer to start than the stall's lead (4 s), "
                           "three times")
    if m.proc is not None and m.proc.returncode not in (0, None):
        raise RuntimeError(m.death("the stuck-server part"))     # it died at the unmount
    out: dict[str, dict[str, Any]] = {}
    wcls, held = _classify_writes(writes, stall_ns)
    for k in ("write", "fsync", "close", "sync", "syncfs"):
        s, e, err = box.get(k, (None, None, ""))
        if k != "write":
            cls = _classify(s or 0, e, stall_ns)
        else:
            cls = "never returned" if e is None or not writes else wcls
        out[k] = {"mount": (cls, s, e, err)}
    out["write"]["mount_held_end_ns"] = (writes[held][1] if held is not None else
                                         (writes[-1][1] if writes else None))
    out["write"]["mount_mib_before_block"] = held
    out["write"]["mount_mib"] = len(writes)

    # The simulator: the same calls, as rows; the stall window is the simulator's too.
    rows = []
    t_dirty, t_call = 10 * MS, start_ns + 200 * MS
    for f, th in ((1, 1), (2, 2)):                    # f: fsync's file, s: sync's file
        rows.append((t_dirty, th, WRITE, f, 0, 0, MiB))
    rows.append((t_call, 1, FSYNC, 1, 0, 0, 0))
    rows.append((t_call, 2, SYNC, 0, 0, 0, 0))
    for i in range(write_mib):      # as many as the mount was allowed to try
        rows.append((t_call, 0, WRITE, 0, 0, i * MiB, MiB))
    rows.sort(key=lambda r: r[0])
    ops = np.array(rows, dtype=OP_DTYPE)
    wl = _wl.from_arrays(ops, np.zeros(3, np.int64), name="blocking")
    p = dict(sim_params or {})
    p.update(stall_start_ns=start_ns, stall_ns=stall_ns,
             hang_threshold_ns=min(stall_ns // 2, _params.PARAM_BY_NAME["hang_threshold_ns"].hi))
    swl, cfg = sim.prepare(STRATEGY, wl, 0, **p)
    raw = sim.simulate_raw(cfg, swl, 0, engine or sim_engine())
    sm = metrics.summarize(raw)
    # Thread 0's write(2) calls run back to back from t_call; the two dirtying writes of the
    # other threads ended long before, so they are the first two latencies.
    lat = raw["latency"]["write"][2:]
    ends = (t_call - start_ns) + np.cumsum(lat)
    scalls = list(zip((ends - lat).tolist(), ends.tolist()))
    scls, sheld = _classify_writes(scalls, stall_ns)
    send = scalls[sheld][1] if sheld is not None else (scalls[-1][1] if scalls else None)
    out["write"]["sim"] = (scls, t_call - start_ns, send, "")
    out["write"]["sim_mib_before_block"] = sheld
    out["write"]["sim_throttle_max_ns"] = sm["throttle_ns"]["max"] if sm["throttle_ns"]["count"] else 0
    f_end = t_call - start_ns + sm["fsync_latency_ns"]["max"]
    out["fsync"]["sim"] = (_classify(0, f_end, stall_ns), t_call - start_ns, f_end, "")
    s_end = t_call - start_ns + sm["sync_latency_ns"]["max"]
    out["sync"]["sim"] = (_classify(0, s_end, stall_ns), t_call - start_ns, s_end, "")
    out["close"]["sim"] = out["syncfs"]["sim"] = None
    out["_"] = {"stall_ns": stall_ns, "sim_hangs": sm["hangs"]}
    return out


def blocking_same(b: dict) -> bool:
    """The mount and the simulator class write, fsync and sync alike."""
    return all(b[k]["mount"][0].split()[0] == b[k]["sim"][0].split()[0]
               for k in ("write", "fsync", "sync") if b[k].get("sim"))


def blocking_json(b: dict) -> dict:
    out = {"stall_ns": b["_"]["stall_ns"], "same": blocking_same(b), "calls": {}}
    for k in ("write", "fsync", "close", "sync", "syncfs"):
        m, s = b[k]["mount"], b[k].get("sim")
        out["calls"][k] = {"mount": m[0], "mount_error": m[3] or None, "mount_end_ns": m[2],
                           "sim": s[0] if s else None, "sim_end_ns": s[2] if s else None}
    return out


def render_blocking(b: dict) -> str:
    stall = b["_"]["stall_ns"]
    lines = [f"stuck server: every WRITE held for {stall / 1e9:.1f} s; calls start 0.2 s into the "
             "stall (times from the stall's start)",
             f"{'call':8s} {'mount':20s} {'returned at':>12s}   {'simulator':20s} {'returned at':>12s}"]
    for k in ("write", "fsync", "close", "sync", "syncfs"):
        mcls, _, mend, err = b[k]["mount"]
        s = b[k].get("sim")
        scls, send = (s[0], s[2]) if s else ("not modelled", None)
        if k == "write":
            mend = b[k].get("mount_held_end_ns")
            send = s[2] if s else None
        fm = lambda v: "-" if v is None else f"{v / 1e9:.3f} s"  # noqa: E731
        label = "held call" if k == "write" else ""
        lines.append(f"{k:8s} {mcls + (' ' + err if err else ''):20s} {fm(mend):>12s}   "
                     f"{scls:20s} {fm(send):>12s} {label}")
    w = b["write"]
    lines.append(f"write: 1 MiB write(2) calls returned before one was held until the stall ended: "
                 f"{w.get('mount_mib_before_block')} on the mount, "
                 f"{w.get('sim_mib_before_block')} in the simulator (its longest throttle pause "
                 f"{w.get('sim_throttle_max_ns', 0) / 1e9:.3f} s); 'held call' is when that call "
                 "returned (or the last call, if none was held)")
    same = blocking_same(b)
    lines.append("blocking pattern: " + ("the same for write, fsync, sync" if same else
                                         "DIFFERS (see above)"))
    return "\n".join(lines) + "\n"


# ---- command line ----

def cmd_validate(args: argparse.Namespace) -> int:
    if getattr(args, "kernel", None):      # another kernel, in a guest under qemu
        from bench.real.kernels import validate as guest_validate
        return guest_validate.cmd_validate_kernel(args)
    if args.out:
        raise ValueError("--out: only with --kernel")
    from bench.real import mount
    ok, why = mount.available()
    if not ok:
        raise RuntimeError(f"validate needs a real mount: {why}")
    from bench.sim import machine as _machine
    chosen_machine = _machine.use(args)     # a bad profile is one error line, before any run
    from bench.cli import check_seeds as _seeds, parse_pairs
    _seeds(args.seeds)
    engine = args.engine or sim_engine()
    # Without --machine, the default profile's costs on this machine's memory, dirty ratios and
    # CPUs, since the mount runs here; with --machine, that profile as it is.
    here = {} if args.machine else machine_params()
    sim_params = {**here, **MOUNT_SERVER_PARAMS, **parse_pairs(args.sim_param, "--sim-param")}
    _params.resolve(STRATEGY, sim_params)     # a typo is one error line, before any run
    chosen = VALIDATE_SET
    if args.workloads:
        known = dict(VALIDATE_SET)
        names = [n.strip() for n in args.workloads.split(",") if n.strip()]
        if not names:
            raise ValueError(f"--workloads: no names in {args.workloads!r}")
        from bench.sim import workload as _wl
        for n in names:
            if n not in _wl.workload_names():
                raise ValueError(f"--workloads: unknown {n!r}")
        chosen = tuple((n, known.get(n, {})) for n in names)
    pname = _machine.label(chosen_machine) + ("" if args.machine else
                                              ", with this machine's memory, dirty ratios, CPUs")
    header = (f"predicted ({STRATEGY}, {engine} engine, machine profile: {pname}) against measured "
              f"({mount.kernel_name()}), {args.seeds} seed(s); simulator: "
              + ", ".join(f"{k}={v}" for k, v in sim_params.items()))
    results = []
    for name, wp in chosen:
        if not args.quiet:
            print(f"validate: {name}", file=sys.stderr)
        pairs, hp, hm, _, _ = compare_workload(name, wp, list(range(args.seeds)), sim_params, engine)
        results.append((pairs, hp, hm))
    b = None
    if not args.no_blocking:
        if not args.quiet:
            print("validate: stuck server", file=sys.stderr)
        b = blocking(sim_params=sim_params, engine=engine)
    all_pairs = [p for pairs, _, _ in results for p in pairs]
    passed, line = verdict(all_pairs, None if b is None else blocking_same(b))
    if args.json:
        import json
        doc = {"header": header, "seeds": args.seeds, "pass": passed, "verdict": line,
               "rows": [pairs_json(p) for p in all_pairs],
               "pages_per_request": {pairs[0].workload: {"predicted": hp, "measured": hm}
                                     for pairs, hp, hm in results},
               "blocking": None if b is None else blocking_json(b)}
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(results, header))
        if b is not None:
            sys.stdout.write("\n" + render_blocking(b))
        sys.stdout.write(line + "\n")
    return 0 if passed else 1


def add_parsers(subparsers) -> None:
    """Add the `validate` verb to the CLI's sub-parsers."""
    from bench.cli import add_machine_option
    p = subparsers.add_parser("validate", help="run workloads on a real mount and in the "
                                               "simulator (no-temp-page) and print predicted "
                                               "against measured")
    p.add_argument("--workloads", help="comma-separated workloads (default: "
                   + ", ".join(n for n, _ in VALIDATE_SET) + ")")
    p.add_argument("--seeds", type=int, default=3, help="seeds per workload (default 3)")
    add_machine_option(p)
    p.add_argument("--engine", choices=("c", "python"),
                   help="simulator engine (default c, python when the C engine is not built)")
    p.add_argument("--sim-param", action="append", metavar="KEY=VALUE",
                   help="a simulator parameter for the predictions (repeatable): what-ifs")
    p.add_argument("--no-blocking", action="store_true", help="skip the stuck-server part")
    p.add_argument("--kernel", metavar="K",
                   help="validate against kernel K of `kernels list` (6.1, 6.12, 7.2, 7.3) in a "
                        "qemu guest, simulated by its strategy (`kernels list`) on its machine profile "
                        "(default workloads then: seq-write, rand-write, dio-redirty)")
    p.add_argument("--json", action="store_true",
                   help="the table, the targets and the verdict as JSON on stdout")
    p.add_argument("--out", metavar="PATH", help="with --kernel: write the guest's and the "
                                                 "simulator's runs to this result file")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_validate)
