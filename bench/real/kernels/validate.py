"""Predicted against measured on another kernel: ``python -m bench validate --kernel K``.

The guest twin of bench.real.validate: for each workload and seed, the guest K runs the workload
(bench.real.kernels.guest.execute) and the simulator runs the strategy of K's family
(catalog.Kernel.strategy: 6.1 and 6.12 -> merge-in-queue, 7.x -> no-temp-page) on the same op
array, on K's machine profile (``profile_for``: qemu-<K>-2cpu-4g) and with the server the guest's
server ran with (``sim_side``: its threads, max_pages, max_background, delay distribution and,
when the server was given an artificial delay, that delay).  Guest and simulator alternate, seed
by seed.

Under TCG every instruction is emulated: a guest writes at tens of MB/s, while the simulator's
costs are the host's (the guest profiles inherit them).  Absolute times are printed but not
judged; the checks that mean something are counts (WRITEs, pages per WRITE, WritebackTmp against
temp_pages_peak, copies in flight) and, in ``kernels ab``, ratios between kernels.

Also used by bench.real.kernels.ab for its simulated ratios: ``profile_for``, ``sim_side``,
``simulate``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from bench.results import Run, stats

from . import catalog

DEFAULT_WORKLOADS = ("seq-write", "rand-write", "dio-redirty")
TOLERANCE = 0.15
PAGE = 4096
MiB = 1 << 20
TCG_NOTE = ("absolute times under TCG emulation are not comparable to the simulator's "
            "host-calibrated costs: judge the counts (WRITEs, pages per WRITE, temp pages, copies "
            "in flight) and, with `kernels ab`, the ratios between kernels")


# ---- the simulated side of a guest run ----

def profile_for(kernel: catalog.Kernel) -> tuple[str, str]:
    """(machine profile name, note) of the guest `kernel` runs in: qemu-<K>-2cpu-4g, or for a
    kernel without one of its own (7.3), the profile of the nearest earlier kernel of its family,
    with a note saying so."""
    from bench.sim import machine
    have = set(machine.packaged())
    own = f"qemu-{kernel.name}-2cpu-4g"
    if own in have:
        return own, ""
    earlier = catalog.KERNELS[:catalog.KERNELS.index(kernel)]
    for k in reversed(earlier):
        name = f"qemu-{k.name}-2cpu-4g"
        if k.family == kernel.family and name in have:
            return name, (f"{kernel.name} has no machine profile of its own: {name} (the same "
                          f"qemu machine, the same family) stands in")
    raise ValueError(f"no machine profile for kernel {kernel.name} (looked for {own})")


def sim_side(workload: Any, seed: int, params: dict) -> tuple[Any, dict[str, Any]]:
    """(the Workload, the simulator's server parameters) of a guest run of `workload` with
    `params` (mount parameters): the op array the guest runs, and its server in simulator
    terms (and a request_timeout_ns in `params`, which a guest sets as its kernel's
    fs.fuse.default_request_timeout).  A server without an artificial delay runs at its own
    speed, which the simulator's
    server_base_ns / server_page_ns of the profile stand for; so they are only given when the
    guest's server was told to delay (a workload carrying its server, e.g. dio-redirty)."""
    from bench.real import mount
    params = dict(params)
    rt = params.pop("request_timeout_ns", None)     # the guest's knob: the model's parameter
    wl, p = mount._split_params(workload, seed, params)
    opts = mount._server_options(p, seed)
    out: dict[str, Any] = {"server_threads": opts.threads, "max_pages": opts.max_write // PAGE,
                           "max_background": opts.max_background, "server_dist": opts.dist}
    if rt is not None:
        out["request_timeout_ns"] = rt
    if opts.base_ns or opts.page_ns:
        out.update(server_base_ns=opts.base_ns, server_page_ns=opts.page_ns,
                   server_sigma=opts.sigma)
    if len(opts.stalls) == 1:
        out.update(stall_start_ns=opts.stalls[0][0], stall_ns=opts.stalls[0][1])
    elif opts.stalls:
        raise ValueError("stalls: the simulator takes one stall window")
    return wl, out


def simulate(strategy: str, workload: Any, seed: int, params: dict, engine: str,
             sim_params: dict | None = None) -> Run:
    """The simulator's run of what a guest runs with `params` (the active machine profile)."""
    from bench import sim
    wl, sp = sim_side(workload, seed, params)
    return sim.run(strategy, wl, seed, engine, **{**sp, **(sim_params or {})})


# ---- the schedule a guest kept, and the simulator on the guest's timing ----

LATE_NS = 1_000_000     # a row that started this much after its time ran late


def schedule(ops: Any, start: Any, lat: Any) -> dict[str, float]:
    """How a run kept its op array's schedule (a row's time is its earliest start; the runner
    starts it at max(time, end of the thread's previous row)): the share of rows that started
    more than LATE_NS after their time, the median and largest lateness, when the last row ended
    against the schedule's last time, and, for an op array with a sync(2) thread beside
    O_DIRECT readers (dio-redirty), the share of the reads that started while that thread was
    still calling sync(2): the writeback the workload relies on to meet a read in progress."""
    import numpy as np
    from bench.sim.ops import DIO_READ, SYNC
    ops = np.asarray(ops)
    start = np.asarray(start, np.int64)
    lat = np.asarray(lat, np.int64)
    done = (start >= 0) & (lat >= 0)
    late = (start - ops["time"])[done]
    out = {"rows": int(done.sum()),
           "late_share": float((late > LATE_NS).mean()) if len(late) else float("nan"),
           "late_median_s": float(np.median(late)) / 1e9 if len(late) else float("nan"),
           "late_max_s": float(late.max()) / 1e9 if len(late) else float("nan"),
           "end_s": float((start + lat)[done].max()) / 1e9 if done.any() else float("nan"),
           "scheduled_end_s": float(ops["time"].max()) / 1e9,
           "dio_reads_during_syncs": float("nan")}
    syncs, reads = done & (ops["op"] == SYNC), done & (ops["op"] == DIO_READ)
    if syncs.any() and reads.any():
        sync_end = int((start + lat)[syncs].max())
        out["dio_reads_during_syncs"] = float((start[reads] < sync_end).mean())
    return out


def measured_timing(wl: Any, start: Any) -> Any:
    """`wl` with each row's time replaced by the time the guest started it (rows it never
    started keep their own): the simulator then starts every row no earlier than the guest did,
    which gives it the guest's interleaving of threads under TCG's slowness."""
    import numpy as np
    from bench.sim import workload as _wl
    ops = wl.ops.copy()
    start = np.asarray(start, np.int64)
    ops["time"] = np.where(start >= 0, start, ops["time"])
    for t in np.unique(ops["thread"]):   # each thread keeps its order (starts never go back)
        m = ops["thread"] == t
        ops["time"][m] = np.maximum.accumulate(ops["time"][m])
    ops = ops[np.argsort(ops["time"], kind="stable")]
    return _wl.from_arrays(ops, wl.file_sizes, wl.name, {**wl.params, "timing": "measured"})


def simulate_measured(strategy: str, workload: Any, seed: int, params: dict, start: Any,
                      engine: str, sim_params: dict | None = None) -> Run:
    """The simulator's run of what a guest ran, on the guest's row start times (measured_timing)."""
    from dataclasses import replace
    from bench import sim
    wl, sp = sim_side(workload, seed, params)
    run = sim.run(strategy, measured_timing(wl, start), seed, engine,
                  **{**sp, **(sim_params or {})})
    # named apart from the run on the schedule, so both can go into one result file
    return replace(run, params={**run.params, "timing": "measured"})


def arrivals(log: Any) -> dict[str, float]:
    """What a server without data versions can say about how WRITEs of one page arrived:
    pages covered by two WRITEs in the server at once (as bench.real.mount.copies_in_flight:
    from a WRITE's receipt to its reply record), how many of those later WRITEs carried one
    page (the shape of a temp-page kernel's secondary), and the median time the two overlapped.
    The server copies a WRITE's data in, takes its reply time and then replies, so a WRITE the
    kernel sends on receiving a reply (a secondary, or a page written again once its writeback
    ended) cannot overlap it; a log written before that order was fixed recorded the reply
    after sending it, and such WRITEs showed as overlaps of up to milliseconds under TCG (on
    7.2 too, where a page stays under writeback until the reply).  The order in which data
    landed is not in the log (the copy-in is not timed) and the server keeps no versions:
    out-of-order arrivals are not measured."""
    import numpy as np
    from bench.real import mount
    w = log[log["kind"] == mount.KIND_WRITE]
    first = (w["offset"] // PAGE).astype(np.int64)
    last = ((w["offset"] + np.maximum(w["size"].astype(np.int64), 1) - 1) // PAGE).astype(np.int64)
    by_page: dict[tuple[int, int], list[int]] = {}
    for i in range(len(w)):
        for p in range(int(first[i]), int(last[i]) + 1):
            by_page.setdefault((int(w["ino"][i]), p), []).append(i)
    overlapped = one_page = 0
    overlap_ns: list[int] = []
    for idx in by_page.values():
        if len(idx) < 2:
            continue
        idx.sort(key=lambda i: (int(w["t_recv_ns"][i]), i))
        hit = single = False
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                i, j = idx[a], idx[b]
                if w["t_recv_ns"][j] >= w["t_reply_ns"][i]:
                    break                  # j arrived after i's reply record: no overlap
                hit = True
                single |= bool(last[j] == first[j])
                overlap_ns.append(int(min(w["t_reply_ns"][i], w["t_reply_ns"][j])
                                      - w["t_recv_ns"][j]))
        overlapped += hit
        one_page += single
    return {"pages_with_concurrent_copies": overlapped, "later_one_page": one_page,
            "overlap_median_ms": float(np.median(overlap_ns)) / 1e6 if overlap_ns
            else float("nan")}


# ---- the blocking pattern with a stuck server, in a guest ----

MS = 1_000_000
BLOCK_STALL_START_NS = 600 * MS
BLOCK_STALL_NS = 2000 * MS
BLOCK_WRITE_MIB = 32        # well past a 4 GiB guest's FUSE dirty limit (about 7 MB)


def blocking_workload(stall_start_ns: int = BLOCK_STALL_START_NS,
                      write_mib: int = BLOCK_WRITE_MIB) -> Any:
    """The op array of `validate`'s stuck-server part (bench.real.validate.blocking) for a guest
    and the simulator alike: threads 1 and 2 dirty 1 MiB of files 1 and 2 at 10 ms; 0.2 s into
    the stall, thread 1 calls fsync(2) of file 1, thread 2 sync(2), and thread 0 writes
    write_mib 1 MiB blocks to file 0 back to back.  (close(2) and syncfs(2) have no row.)"""
    import numpy as np
    from bench.sim import workload as _wl
    from bench.sim.ops import FSYNC, OP_DTYPE, SYNC, WRITE
    t_call = stall_start_ns + 200 * MS
    rows = [(10 * MS, 1, WRITE, 1, 0, 0, MiB), (10 * MS, 2, WRITE, 2, 0, 0, MiB),
            (t_call, 1, FSYNC, 1, 0, 0, 0), (t_call, 2, SYNC, 0, 0, 0, 0)]
    rows += [(t_call, 0, WRITE, 0, 0, i * MiB, MiB) for i in range(write_mib)]
    rows.sort(key=lambda r: r[0])
    return _wl.from_arrays(np.array(rows, dtype=OP_DTYPE), np.zeros(3, np.int64),
                           name="blocking", params={"stall_start_ns": stall_start_ns,
                                                    "write_mib": write_mib})


def sim_row_times(ops: Any, latency: dict) -> tuple[Any, Any]:
    """(start, latency) per row of a simulator run, from its per-kind latencies (each in the
    order the calls ended) and the rule that a thread starts row k at max(time_k, end of row
    k-1).  Exact when the calls of one kind end in row order, as in the blocking op array and
    in stuck-server (one thread); ValueError otherwise."""
    import numpy as np
    from bench.sim.ops import FSYNC, MMAP_STORE, MSYNC, SYNC, WRITE
    kind = {WRITE: "write", FSYNC: "fsync", MSYNC: "fsync", SYNC: "sync"}
    ops = np.asarray(ops)
    if (ops["op"] == MMAP_STORE).any() or not np.isin(ops["op"], list(kind)).all():
        raise ValueError("sim_row_times: only write, fsync, msync and sync rows")
    taken = {k: 0 for k in set(kind.values())}
    start = np.full(len(ops), -1, np.int64)
    lat = np.full(len(ops), -1, np.int64)
    for i in range(len(ops)):       # rows in time order: a kind's calls in the order they end
        k = kind[int(ops["op"][i])]
        vals = latency[k]
        if taken[k] < len(vals):
            lat[i] = int(vals[taken[k]])
            taken[k] += 1
    free: dict[int, int] = {}
    for i in range(len(ops)):
        t = int(ops["thread"][i])
        if lat[i] < 0:
            continue
        start[i] = max(int(ops["time"][i]), free.get(t, 0))
        free[t] = int(start[i] + lat[i])
    for k in taken:
        rows = np.flatnonzero([kind[int(o)] == k for o in ops["op"]])
        rows = rows[lat[rows] >= 0]
        ends = start[rows] + lat[rows]
        if (np.diff(ends) < 0).any():
            raise ValueError(f"sim_row_times: the {k} calls did not end in row order")
    return start, lat


def blocking_pattern(ops: Any, start: Any, lat: Any, stall_start_ns: int, stall_ns: int
                     ) -> dict[str, Any]:
    """Classify the calls of a run with a stall window as bench.real.validate does: the writer
    (thread of the most WRITE rows) "throttled (waited)" when one of its calls of more than
    100 ms returned within 100 ms of the stall's end, else "returned"; each fsync/msync and
    sync(2) that started in the stall "waited" when it returned within 100 ms of the stall's
    end or later, else "returned" ("started after the stall" when it started within 100 ms of
    the stall's end or later, e.g. behind a held write); "never returned" for a call without
    an end.  Times in ns
    from the stall's start.  A thread that was held in the writer's place shows as
    held_end_ns (the held call's end, or the last write's when none was held) and
    writes_before_held."""
    import numpy as np
    from bench.real import validate as host
    from bench.sim.ops import FSYNC, MSYNC, SYNC, WRITE
    ops = np.asarray(ops)
    start = np.asarray(start, np.int64) - stall_start_ns
    lat = np.asarray(lat, np.int64)
    ended = lat >= 0
    writes = ops["op"] == WRITE
    out: dict[str, Any] = {"stall_ns": int(stall_ns)}
    if writes.any():
        writer = int(np.bincount(ops["thread"][writes]).argmax())
        rows = np.flatnonzero(writes & (ops["thread"] == writer) & ended)
        calls = [(int(start[i]), int(start[i] + lat[i])) for i in rows]
        # only the writer's calls from the stall on can be held by it
        calls_in = [c for c in calls if c[1] > 0]
        cls, held = host._classify_writes(calls_in, stall_ns)
        unfinished = bool((writes & (ops["thread"] == writer) & ~ended).any())
        out["write"] = {"class": "never returned" if unfinished and held is None else cls,
                        "held_end_ns": (calls_in[held][1] if held is not None else
                                        (calls_in[-1][1] if calls_in else None)),
                        "held_for_ns": (calls_in[held][1] - calls_in[held][0]
                                        if held is not None else None),
                        "writes_before_held": held,
                        "max_ns": max((e - a for a, e in calls_in), default=None)}
    for name, codes in (("fsync", (FSYNC, MSYNC)), ("sync", (SYNC,))):
        rows = np.flatnonzero(np.isin(ops["op"], codes) & (start >= 0))
        if not len(rows):
            continue
        res = []
        for i in rows:
            end = int(start[i] + lat[i]) if ended[i] else None
            cls = ("started after the stall" if start[i] >= stall_ns - 100 * MS else
                   host._classify(int(start[i]), end, stall_ns))
            res.append({"class": cls, "start_ns": int(start[i]), "end_ns": end})
        out[name] = res
    return out


def blocking_guest(kernel: catalog.Kernel, stall_start_ns: int = BLOCK_STALL_START_NS,
                   stall_ns: int = BLOCK_STALL_NS, write_mib: int = BLOCK_WRITE_MIB,
                   progress=None) -> dict[str, Any]:
    """The blocking op array in a guest of `kernel` with its server stuck from stall_start_ns for
    stall_ns: blocking_pattern of what the runner measured."""
    from . import guest
    wl = blocking_workload(stall_start_ns, write_mib)
    g = guest.execute(kernel, wl, 0, stall_start_ns=stall_start_ns, stall_ns=stall_ns,
                      hang_threshold_ns=stall_ns // 2, progress=progress)
    out = blocking_pattern(wl.ops, g.mount.start_ns, g.mount.latency_ns, stall_start_ns,
                           stall_ns)
    out["temp_pages_peak"] = int(g.run.metrics["temp_pages_peak"])
    out["pinned_pages_peak"] = int(g.run.metrics["pinned_pages_peak"])
    out["hangs"] = int(g.run.metrics["hangs"])
    out["run"] = g.run
    return out


def blocking_sim(strategy: str, engine: str, stall_start_ns: int = BLOCK_STALL_START_NS,
                 stall_ns: int = BLOCK_STALL_NS, write_mib: int = BLOCK_WRITE_MIB,
                 sim_params: dict | None = None) -> dict[str, Any]:
    """The same op array and stall in the simulator (the active machine profile, the mount's
    server: no artificial delay)."""
    return pattern_sim(strategy, blocking_workload(stall_start_ns, write_mib), 0,
                       {"stall_start_ns": stall_start_ns, "stall_ns": stall_ns}, engine,
                       sim_params)


def pattern_sim(strategy: str, workload: Any, seed: int, params: dict, engine: str,
                sim_params: dict | None = None) -> dict[str, Any]:
    """blocking_pattern of the simulator's run of `workload` with `params` (mount parameters
    with a stall window: stall_start_ns, stall_ns), with the guest's server (sim_side)."""
    from bench import sim
    from bench.results import metrics
    wl, sp = sim_side(workload, seed, params)
    if "stall_ns" not in sp:
        raise ValueError(f"{wl.name}: no stall window, so no blocking pattern")
    p = {**sp, "hang_threshold_ns": sp["stall_ns"] // 2, **(sim_params or {})}
    swl, cfg = sim.prepare(strategy, wl, seed, **p)
    raw = sim.simulate_raw(cfg, swl, seed, engine)
    start, lat = sim_row_times(swl.ops, raw["latency"])
    out = blocking_pattern(swl.ops, start, lat, sp["stall_start_ns"], sp["stall_ns"])
    sm = metrics.summarize(raw)
    out["temp_pages_peak"] = int(sm["temp_pages_peak"])
    out["pinned_pages_peak"] = int(sm["pinned_pages_peak"])
    out["hangs"] = int(sm["hangs"])
    return out


def stall_of(workload: Any, seed: int, params: dict) -> tuple[int, int] | None:
    """(stall_start_ns, stall_ns) of what a guest runs with `params`, or None without a stall."""
    _, sp = sim_side(workload, seed, params)
    return (sp["stall_start_ns"], sp["stall_ns"]) if "stall_ns" in sp else None


def _pattern_cells(b: dict) -> dict[str, str]:
    fs = lambda v: "-" if v is None else f"{v / 1e9:.2f} s"  # noqa: E731
    cells = {}
    w = b.get("write")
    if w:
        cells["write"] = (f"{w['class']}, held call ended {fs(w['held_end_ns'])}"
                          + (f" after {w['writes_before_held']} calls"
                             if w['writes_before_held'] is not None else ""))
    for k in ("fsync", "sync"):
        if b.get(k):
            cells[k] = "; ".join(f"{c['class']} (started {fs(c['start_ns'])}, ended "
                                 f"{fs(c['end_ns'])})" for c in b[k])
    cells["pages"] = (f"temp {b['temp_pages_peak']}, under writeback {b['pinned_pages_peak']}, "
                      f"hangs {b['hangs']}")
    return cells


def render_blocking(cols: list[tuple[str, dict]]) -> str:
    """The blocking pattern side by side: [(label, blocking_guest or blocking_sim result)]."""
    stall = cols[0][1]["stall_ns"]
    lines = [f"stuck server: every WRITE held for {stall / 1e9:.1f} s; the calls start 0.2 s into "
             "the stall (times from the stall's start; 'waited': returned within 0.1 s of the "
             "stall's end or later)"]
    cells = [(label, _pattern_cells(b)) for label, b in cols]
    for k in ("write", "fsync", "sync", "pages"):
        for label, c in cells:
            if k in c:
                lines.append(f"  {k:6s} {label:28s} {c[k]}")
    return "\n".join(lines) + "\n"


def same_pattern(a: dict, b: dict) -> bool:
    """The classes of write, fsync and sync agree (first word: 'throttled (waited)' is
    'throttled')."""
    def classes(x):
        out = [x["write"]["class"].split()[0]] if x.get("write") else []
        return out + [c["class"].split()[0] for k in ("fsync", "sync") for c in x.get(k, [])]
    return classes(a) == classes(b)


# ---- pairing ----

def mean_pages(m: dict) -> float:
    ppr = m.get("pages_per_request", {})
    n = sum(ppr.values())
    return sum(int(k) * c for k, c in ppr.items()) / n if n else float("nan")


def _lat(key: str, q: str) -> Callable[[dict], float | None]:
    return lambda m: m[key][q] if m[key]["count"] else None


# (label, value of a run's metrics, unit, scale, kind): kind "count" is judged, "time" is not
METRICS: tuple[tuple[str, Callable[[dict], Any], str, float, str], ...] = (
    ("app throughput", lambda m: m["app_throughput_bps"], "MB/s", 1e-6, "time"),
    ("WRITE requests", lambda m: m["requests"], "", 1, "count"),
    ("pages per WRITE", mean_pages, "", 1, "count"),
    ("bytes written", lambda m: m["bytes_written"], "MiB", 1 / MiB, "count"),
    ("temp pages peak", lambda m: m["temp_pages_peak"], "", 1, "count"),
    ("max copies in flight", lambda m: m["max_copies_in_flight"], "", 1, "count"),
    ("write p50", _lat("write_latency_ns", "p50"), "us", 1e-3, "time"),
    ("write p99", _lat("write_latency_ns", "p99"), "us", 1e-3, "time"),
    ("fsync p50", _lat("fsync_latency_ns", "p50"), "us", 1e-3, "time"),
    ("makespan", lambda m: m["makespan_ns"], "ms", 1e-6, "time"),
)


@dataclass(frozen=True, slots=True)
class Row:
    workload: str
    metric: str
    predicted: float          # median over seeds
    measured: float
    unit: str
    scale: float
    kind: str                 # "count" (judged) or "time" (shown; not comparable under TCG)

    @property
    def ratio(self) -> float:
        return self.predicted / self.measured if self.measured else float("nan")

    @property
    def verdict(self) -> str:
        """"ok" / "differs" for a count, "" for a time."""
        if self.kind != "count" or math.isnan(self.predicted) or math.isnan(self.measured):
            return ""
        if self.predicted == 0 and self.measured == 0:
            return "ok"
        return "ok" if self.measured and abs(self.ratio - 1) <= TOLERANCE else "differs"


def median_finite(vals: list[float]) -> float:
    """The median of the values that are not NaN; NaN when there are none."""
    v = np.asarray(vals, dtype=float)
    v = v[~np.isnan(v)]
    return float(np.median(v)) if v.size else float("nan")


def _median(runs: list[Run], get: Callable[[dict], Any]) -> float:
    return median_finite([float(v) for v in (get(r.metrics) for r in runs) if v is not None])


def pair(workload: str, measured: list[Run], predicted: list[Run]) -> list[Row]:
    """Per metric, the medians over seeds of the guest's runs and the simulator's."""
    seeds_m = sorted(r.seed for r in measured)
    seeds_p = sorted(r.seed for r in predicted)
    if seeds_m != seeds_p:
        raise ValueError(f"{workload}: the guest ran seeds {seeds_m}, the simulator {seeds_p}")
    return [Row(workload, label, _median(predicted, get), _median(measured, get), unit, scale,
                kind) for label, get, unit, scale, kind in METRICS]


def evidence(measured: list[Run], predicted: list[Run]) -> dict[str, float]:
    """The copies-in-flight evidence beyond the common metrics (medians over seeds): pages the
    server saw covered by two WRITEs at once (the guest), secondaries and out-of-order versions
    (the simulator; a server that keeps no data versions cannot count those)."""
    med = lambda v: stats.summarize(v).median if v else float("nan")  # noqa: E731
    return {
        "measured_pages_with_concurrent_copies": med(
            [float(dict(r.meta).get("pages_with_concurrent_copies", float("nan")))
             for r in measured if "pages_with_concurrent_copies" in dict(r.meta)]),
        "predicted_secondaries": _median(predicted, lambda m: m.get("secondaries")),
        "predicted_out_of_order": _median(predicted, lambda m: m.get("out_of_order")),
        "predicted_lost_updates": _median(predicted, lambda m: m.get("lost_updates")),
    }


def families_seen(measured: list[Run]) -> list[str]:
    return sorted({str(dict(r.meta).get("family", "?")) for r in measured})


# ---- output ----

def _fmt(v: float, scale: float = 1.0) -> str:
    x = v * scale
    if x != x:
        return "-"
    return f"{x:.0f}" if abs(x) >= 100 or x == int(x) else f"{x:.3g}"


def render(kernel: catalog.Kernel, blocks: list[dict], header: str) -> str:
    lines = [header, f"{'workload':12s} {'metric':22s} {'predicted':>10s} {'measured':>10s} "
                     f"{'pred/meas':>9s}"]
    from bench.real import validate as host
    for b in blocks:
        for r in b["rows"]:
            unit = f" {r.unit}" if r.unit else ""
            mark = r.verdict if r.kind == "count" else "(TCG time)"
            ratio = "-" if r.ratio != r.ratio else f"{r.ratio:.2f}"
            lines.append(f"{r.workload:12s} {r.metric + unit:22s} "
                         f"{_fmt(r.predicted, r.scale):>10s} {_fmt(r.measured, r.scale):>10s} "
                         f"{ratio:>9s}  {mark}")
        w = b["workload"]
        lines.append(f"{w:12s} {'pages/WRITE histogram':22s} predicted "
                     f"{host._fmt_hist(b['hist_p'])}")
        lines.append(f"{w:12s} {'':22s} measured  {host._fmt_hist(b['hist_m'])}")
        ev = b["evidence"]
        lines.append(f"{w:12s} {'copies evidence':22s} measured: "
                     f"{_fmt(ev['measured_pages_with_concurrent_copies'])} pages with two WRITEs "
                     f"in flight at once; predicted: {_fmt(ev['predicted_secondaries'])} "
                     f"secondaries, {_fmt(ev['predicted_out_of_order'])} out of order, "
                     f"{_fmt(ev['predicted_lost_updates'])} lost updates (the server keeps no "
                     "versions: not measurable there)")
        fam = ", ".join(b["families"])
        lines.append(f"{w:12s} {'family seen':22s} {fam} (WritebackTmp > 0 in a sample: "
                     f"temp-page); expected {kernel.family}"
                     + ("" if b["families"] == [kernel.family] else "  DIFFERS"))
        lines.append(f"{w:12s} {'guest under TCG':22s} boot to /init {_fmt(b['boot_s'])} s, "
                     f"run {_fmt(b['run_s'])} s, whole guest {_fmt(b['wall_s'])} s (medians)")
        d = b.get("details")
        if d:
            sched, arr = describe_details(d)
            lines.append(f"{w:12s} {'guest schedule':22s} {sched}")
            lines.append(f"{w:12s} {'arrivals':22s} measured: {arr}")
        t = b.get("on_measured_timing")
        if t:
            lines.append(f"{w:12s} {'on measured timing':22s} predicted with each row started "
                         f"no earlier than the guest started it: WRITEs {_fmt(t['requests'])}, "
                         f"pages per WRITE {_fmt(t['pages_per_write'])}, "
                         f"{_fmt(t['bytes_written'] / MiB)} MiB written, "
                         f"{_fmt(t['secondaries'])} secondaries")
    lines.append(f"medians over seeds; counts: ok within {TOLERANCE:.0%} (or both 0), else "
                 "differs; (TCG time): " + TCG_NOTE)
    return "\n".join(lines) + "\n"


def _meta_median(runs: list[Run], key: str) -> float:
    return median_finite([float(dict(r.meta).get(key, float("nan"))) for r in runs])


def details_medians(details: list[dict]) -> dict[str, float]:
    """Medians over seeds of the schedule() and arrivals() figures."""
    flat = [{**d["schedule"], **d["arrivals"]} for d in details]
    return {k: median_finite([float(f[k]) for f in flat]) for k in flat[0]} if flat else {}


def describe_details(d: dict[str, float]) -> tuple[str, str]:
    """(schedule sentence, arrivals sentence) of details_medians."""
    sched = (f"{_fmt(100 * d['late_share'])}% of rows started over 1 ms late (median "
             f"{_fmt(d['late_median_s'])} s late); last row ended at {_fmt(d['end_s'])} s of a "
             f"{_fmt(d['scheduled_end_s'])} s schedule")
    if d["dio_reads_during_syncs"] == d["dio_reads_during_syncs"]:
        sched += (f"; O_DIRECT reads started while the sync(2) thread ran: "
                  f"{_fmt(100 * d['dio_reads_during_syncs'])}%")
    arr = (f"{_fmt(d['pages_with_concurrent_copies'])} pages with two WRITEs in the server at "
           f"once, {_fmt(d['later_one_page'])} of them with a one-page later WRITE, overlapping "
           f"by {_fmt(d['overlap_median_ms'])} ms (median); the server keeps no versions: "
           "out-of-order arrivals are not measured")
    return sched, arr


def timing_medians(runs: list[Run]) -> dict[str, float]:
    """Medians over seeds of the simulator's counts on the guests' measured timing."""
    return {"requests": _median(runs, lambda m: m["requests"]),
            "pages_per_write": _median(runs, mean_pages),
            "bytes_written": _median(runs, lambda m: m["bytes_written"]),
            "secondaries": _median(runs, lambda m: m.get("secondaries"))}


def block(workload: str, measured: list[Run], predicted: list[Run],
          details: list[dict] | None = None, replayed: list[Run] | None = None
          ) -> dict[str, Any]:
    from bench.real import validate as host
    return {"workload": workload, "rows": pair(workload, measured, predicted),
            "details": details_medians(details) if details else None,
            "on_measured_timing": timing_medians(replayed) if replayed else None,
            "hist_p": host._hist(predicted), "hist_m": host._hist(measured),
            "evidence": evidence(measured, predicted), "families": families_seen(measured),
            "boot_s": _meta_median(measured, "boot_to_init_s"),
            "run_s": _meta_median(measured, "run_s"),
            "wall_s": _meta_median(measured, "guest_wall_s")}


def as_json(kernel: catalog.Kernel, strategy: str, machine_name: str, blocks: list[dict]) -> dict:
    out = {"kernel": kernel.name, "family": kernel.family, "strategy": strategy,
           "machine": machine_name, "tolerance": TOLERANCE, "note": TCG_NOTE, "workloads": []}
    for b in blocks:
        d = {k: v for k, v in b.items() if k not in ("rows",)}
        d["hist_p"] = {str(k): v for k, v in b["hist_p"].items()}
        d["hist_m"] = {str(k): v for k, v in b["hist_m"].items()}
        d["rows"] = [{**asdict(r), "ratio": r.ratio, "verdict": r.verdict} for r in b["rows"]]
        out["workloads"].append(d)
    return out


def no_nan(v: Any) -> Any:
    """JSON-ready: NaN -> None, numpy scalars -> Python, recursively."""
    from bench.results import jsonable
    v = jsonable(v)
    if isinstance(v, dict):
        return {k: no_nan(x) for k, x in v.items()}
    if isinstance(v, list):
        return [no_nan(x) for x in v]
    return None if isinstance(v, float) and v != v else v


def verdict(blocks: list[dict], blocking_same: bool | None = None) -> tuple[bool, str]:
    """(passed, one line): every judged count within TOLERANCE and, when the stuck-server part
    ran, the same blocking pattern in the guest and the simulator.  Times are not judged."""
    judged = [r for b in blocks for r in b["rows"] if r.verdict]
    missed = [r for r in judged if r.verdict == "differs"]
    bad = [f"{r.workload} {r.metric} {r.ratio:.2f}" for r in missed]
    if blocking_same is False:
        bad.append("the stuck server's blocking pattern differs")
    if not bad:
        extra = "" if blocking_same is None else ", the same blocking pattern"
        return True, (f"validate --kernel: PASS: {len(judged)} of {len(judged)} counts within "
                      f"{TOLERANCE:.0%}{extra}")
    return False, (f"validate --kernel: FAIL: {len(missed)} of {len(judged)} counts outside "
                   f"{TOLERANCE:.0%}: " + "; ".join(bad))


# ---- the command ----

def cmd_validate_kernel(args: argparse.Namespace) -> int:
    from bench import results
    from bench.cli import check_seeds, parse_pairs, pick_names
    from bench.results import provenance
    from bench.sim import machine as _machine, params as _params, workloads as known_workloads
    from bench.real import validate as host
    from . import guest
    kernel = catalog.get(args.kernel)
    check_seeds(args.seeds)
    workloads = pick_names(args.workloads or ",".join(DEFAULT_WORKLOADS), known_workloads(),
                           "--workloads")
    if args.machine is not None:
        chosen, note = _machine.select(args.machine), "given with --machine"
    else:
        name, note = profile_for(kernel)
        chosen = _machine.select(name)
        note = note or f"the {kernel.name} guest's"
    sim_params = parse_pairs(args.sim_param, "--sim-param")
    strategy = kernel.strategy
    _params.resolve(strategy, sim_params)      # a typo is one error line, before any run
    engine = args.engine or host.sim_engine()
    if args.out:
        results.check_writable(args.out, args.force)
    ok, why = guest.available()
    if not ok:
        raise RuntimeError(f"validate --kernel needs a guest: {why}")
    from . import timeout
    blocks, runs, timeouts = [], [], []
    for w in workloads:
        measured, predicted, details, replayed = [], [], [], []
        rt_guest, rt_sim = [], []
        for seed in range(args.seeds):
            if not args.quiet:
                print(f"validate: {kernel.name} {w} seed {seed}: guest", file=sys.stderr,
                      flush=True)
            g = guest.execute(kernel, w, seed, progress=None if args.quiet else
                              (lambda stage, m: print(f"{stage}: {m}", file=sys.stderr)))
            measured.append(g.run)
            wl, _ = sim_side(w, seed, {})
            details.append({"schedule": schedule(wl.ops, g.mount.start_ns, g.mount.latency_ns),
                            "arrivals": arrivals(g.mount.log)})
            # a kernel without request timeouts ran without the one the workload asks for
            sp_k = timeout.with_kernel(kernel, w, seed, {}, sim_params)
            replayed.append(simulate_measured(strategy, w, seed, {}, g.mount.start_ns, engine,
                                              sp_k))
            if not args.quiet:
                print(f"validate: {kernel.name} {w} seed {seed}: simulator ({strategy})",
                      file=sys.stderr, flush=True)
            predicted.append(simulate(strategy, w, seed, {}, engine, sp_k))
            if "request_timeout" in dict(g.run.meta):
                rt_guest.append(dict(g.run.meta)["request_timeout"])
                if seed == 0:       # the simulator's abort does not depend on the seed here
                    rt_sim += [timeout.sim_evidence(strategy, w, seed, {}, e, sp_k)
                               for e in ("c", "python")]
        blocks.append(block(w, measured, predicted, details, replayed))
        runs += measured + predicted
        if rt_guest:
            timeouts.append({"workload": w, "guest": rt_guest, "simulated": rt_sim})
    stuck = None
    if not args.no_blocking:
        if not args.quiet:
            print(f"validate: {kernel.name} stuck server: guest, then simulator ({strategy})",
                  file=sys.stderr, flush=True)
        g_b = blocking_guest(kernel)
        runs.append(g_b.pop("run"))
        s_b = blocking_sim(strategy, engine, sim_params=sim_params)
        stuck = {"guest": g_b, "simulated": s_b, "same": same_pattern(g_b, s_b)}
    label = _machine.label(chosen)
    passed, line = verdict(blocks, None if stuck is None else stuck["same"])
    if args.json:
        doc = as_json(kernel, strategy, label, blocks)
        doc["blocking"] = stuck
        doc["request_timeout"] = timeouts
        doc["passed"], doc["verdict"] = passed, line
        json.dump(no_nan(doc), sys.stdout, indent=1, allow_nan=False)
        sys.stdout.write("\n")
    else:
        kname = runs[0].strategy if runs else kernel.name
        header = (f"predicted ({strategy}, {engine} engine, machine profile {label}: {note}) "
                  f"against measured ({kname}, Debian {kernel.suite}, {kernel.family}, under "
                  f"qemu TCG), {args.seeds} seed(s); the server as the guest's ran it"
                  + ("; simulator what-ifs: " + ", ".join(f"{k}={v}" for k, v in
                                                            sim_params.items())
                     if sim_params else ""))
        sys.stdout.write(render(kernel, blocks, header))
        for t in timeouts:
            sys.stdout.write(f"\n{t['workload']}: " + timeout.render(
                f"{kernel.name} (guest)", t["guest"], t["simulated"]))
        if stuck is not None:
            sys.stdout.write("\n" + render_blocking(
                [(f"{kernel.name} (guest)", stuck["guest"]),
                 (f"{strategy} (simulated)", stuck["simulated"])]))
            sys.stdout.write("blocking pattern: " + (
                "the same for write, fsync, sync" if stuck["same"] else "DIFFERS (see above)")
                + "\n")
        sys.stdout.write(line + "\n")
    if args.out:
        meta = provenance.collect(engine=f"mount+{engine}", command="validate --kernel",
                                  kernel=kernel.name, strategy=strategy, seeds=args.seeds,
                                  workloads=list(workloads), sim_params=sim_params,
                                  machine=_params.machine_provenance(), note=TCG_NOTE)
        out = results.dump(results.Suite(meta, tuple(runs)), args.out, overwrite=args.force)
        print(f"results: {out}", file=sys.stderr)
    return 0 if passed else 1
