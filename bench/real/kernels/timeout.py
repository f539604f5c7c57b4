"""The FUSE request timeout in a guest, and the simulator's on the same run.

What the kernel does (read in Joanne Koong's series as posted to linux-fsdevel, v12 of
"fuse: add default_request_timeout and max_request_timeout sysctls", 2025-01-22, on top of
9b17cb59a7db "fuse: add kernel-enforced timeout option for requests"; the merged text was not
checked line by line): fs/fuse/inode.c process_init_reply calls init_server_timeout(fc, t) with
the timeout the server asked for in FUSE_INIT (t = 0 for libfuse 3.14, which cannot ask); a
zero t takes fs.fuse.default_request_timeout, and fs.fuse.max_request_timeout caps it when set
(both in seconds, 0..65535, 0 by default: no timeout).  A non-zero timeout starts the
connection's check, fuse_check_timeout, FUSE_TIMEOUT_TIMER_FREQ (15 s) after FUSE_INIT's reply
and every 15 s after: one request older than the timeout aborts the connection
(fuse_abort_conn, every request ends with -ECONNABORTED).  So the abort lands between
timeout and timeout + 15 s after the oldest stuck request was made, on a grid that starts at
the mount, which in a guest is a little before the run's time 0.  The knob is read once, at
FUSE_INIT: it must be written before the server mounts (initramfs.TIMEOUT_KNOB).

Measured on 7.2.13 and 7.3-rc7 (README, "Request timeouts"): the abort came at the first check
at which the oldest request was older than max(timeout, 15 s), one check later than the rule
above for timeouts under 15 s; which line of their fs/fuse does that was not found (their
sources were not read here).  ``expected_abort_ns`` is the rule above, on the guest's grid.

What a guest records for it (initramfs.GuestJob.request_timeout_s and fuse_trace):

- ``fuse_trace``: the kernel's fuse:fuse_request_send and fuse:fuse_request_end events on the
  mono clock, from before the mount: FUSE_INIT's time, and every request the abort ended
  (error -ECONNABORTED), the first of which is the abort's time;
- ``failed_calls``: the runner's calls that failed ("row errno start end", csrc/guest);
- the samples' fusectl ``waiting`` (the connection's requests in flight), which an abort
  empties at once.

Kernels without the knob (6.1, 6.12: no fuse_check_timeout, catalog feature request_timeout
"no") run a workload that asks for a timeout without one, and say so in the run's meta
(``request_timeout_note``) and on stderr: so that ``kernels ab`` (which needs one of them) still
runs, with the 6.x guest showing the hang.  The simulated side of such a kernel gets no timeout
either (``sim_params_for``, ``with_kernel``).
"""
from __future__ import annotations

import errno as _errno
import re
from typing import Any

import numpy as np

from . import catalog

S = 1_000_000_000
MAX_TIMEOUT_S = 65535                 # fs/fuse/sysctl.c: sysctl_fuse_req_timeout_limit
CHECK_PERIOD_NS = 15 * S              # FUSE_TIMEOUT_TIMER_FREQ
FUSE_INIT_OPCODE = 26                 # include/uapi/linux/fuse.h
ECONNABORTED = _errno.ECONNABORTED

# "<task>-<pid> [<cpu>] <flags> <seconds>: fuse_request_send: connection 47 req 2 opcode 26 ..."
_EVENT = re.compile(r"\s(\d+)\.(\d+): (fuse_request_send|fuse_request_end): (.*)$")
_FIELD = re.compile(r"(connection|req|opcode|len|error) (-?\d+)")
TRACE_DTYPE = np.dtype([("t_ns", "<i8"), ("end", "?"), ("unique", "<u8"), ("opcode", "<i4"),
                        ("error", "<i4")])


# ---- what a run asks for ----

def has_timeout(kernel: catalog.Kernel) -> bool:
    """Whether `kernel` has FUSE request timeouts (its catalog record, from its guests' symbols
    and knobs)."""
    return kernel.feature("request_timeout")[0] == "yes"


def asked(wl_params: dict, params: dict) -> int:
    """The request timeout a run asks for, in ns: `params`' request_timeout_ns (popped: a mount
    takes no simulator parameter), else the workload's (stuck-server-timeout carries one).
    ValueError unless whole seconds in 0..65535 s."""
    v = params.pop("request_timeout_ns", wl_params.get("request_timeout_ns", 0))
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not \
            0 <= v <= MAX_TIMEOUT_S * S or v % S:
        raise ValueError(f"request_timeout_ns: whole seconds in 0..{MAX_TIMEOUT_S} s "
                         f"(fs.fuse.default_request_timeout), got {v!r}")
    return int(v)


def effective(kernel: catalog.Kernel, timeout_ns: int) -> tuple[int, str]:
    """(the timeout the guest of `kernel` runs with in ns, a note when it differs): a kernel
    without request timeouts runs without one."""
    if timeout_ns and not has_timeout(kernel):
        return 0, (f"kernel {kernel.name} has no FUSE request timeout (no fuse_check_timeout, no "
                   f"fs.fuse.default_request_timeout; 9b17cb59a7db, 6.14): run without the "
                   f"{timeout_ns // S} s timeout asked for")
    return timeout_ns, ""


def sim_params_for(kernel: catalog.Kernel, workload: Any, seed: int, params: dict) -> dict:
    """What the simulator's side of `kernel`'s guest must add: {"request_timeout_ns": 0} when
    the run asks for a timeout that `kernel` has not (its guest runs without one), else {}."""
    from bench.real import mount
    p = dict(params)
    t = p.pop("request_timeout_ns", None)
    wl, _ = mount._split_params(workload, seed, p)
    t = asked(wl.params, {} if t is None else {"request_timeout_ns": t})
    return {"request_timeout_ns": 0} if effective(kernel, t)[0] != t else {}


def with_kernel(kernel: catalog.Kernel, workload: Any, seed: int, params: dict,
                sim_params: dict | None) -> dict:
    """`sim_params` plus what the simulated side of `kernel`'s guest needs (sim_params_for)."""
    return {**(sim_params or {}), **sim_params_for(kernel, workload, seed, params)}


# ---- what a guest recorded ----

def read_fuse_trace(text: str | bytes) -> np.ndarray:
    """The fuse_request_send / fuse_request_end events of a trace (TRACE_DTYPE; opcode -1 on an
    end, error 0 on a send), in file order; other lines are skipped."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    rows = []
    for line in text.splitlines():
        m = _EVENT.search(line)
        if m is None:
            continue
        f = dict(_FIELD.findall(m.group(4)))
        if "req" not in f:
            continue
        frac = m.group(2)
        t = int(m.group(1)) * S + int(frac.ljust(9, "0")[:9])
        end = m.group(3) == "fuse_request_end"
        rows.append((t, end, int(f["req"]), -1 if end else int(f.get("opcode", -1)),
                     int(f.get("error", 0)) if end else 0))
    return np.array(rows, dtype=TRACE_DTYPE)


def check_times(text: str | bytes) -> list[int] | None:
    """The times (ns, the trace's clock) at which fuse_check_timeout ran, from the
    workqueue_execute_start events of a fuse trace; None when the trace has none of them (the
    event could not be filtered to it, or no check ran)."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    out = []
    for line in text.splitlines():
        if "workqueue_execute_start" in line and "fuse_check_timeout" in line:
            m = re.search(r"\s(\d+)\.(\d+): workqueue_execute_start", line)
            if m:
                out.append(int(m.group(1)) * S + int(m.group(2).ljust(9, "0")[:9]))
    return out or None


def read_failed_calls(text: str | bytes) -> np.ndarray:
    """The runner's failed calls ("row errno start_ns end_ns" lines) as an (n, 4) int64 array;
    ValueError on a malformed line."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    rows = []
    for i, line in enumerate(text.splitlines()):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise ValueError(f"failed_calls line {i + 1}: want 'row errno start end', got {line!r}")
        rows.append([int(p) for p in parts])
    return np.array(rows, np.int64).reshape(-1, 4)


def ended_latency(start: np.ndarray, lat: np.ndarray, files: dict[str, bytes]) -> np.ndarray:
    """`lat` with each failed call's time to its failure (failed_calls) in place of -1: for a
    blocking pattern, where a call that failed at the abort returned, with an error."""
    out = np.array(lat, np.int64, copy=True)
    fc = read_failed_calls(files.get("failed_calls", b""))
    rows = fc[:, 0]
    out[rows] = fc[:, 3] - np.asarray(start, np.int64)[rows]
    return out


def _errname(e: int) -> str:
    return _errno.errorcode.get(abs(int(e)), str(e))


def evidence(files: dict[str, bytes], ops: np.ndarray, start: np.ndarray, lat: np.ndarray,
             samples: np.ndarray, log: np.ndarray, t0: int, stall: tuple[int, int] | None,
             timeout_ns: int) -> dict[str, Any]:
    """The abort as a guest saw it (times in ns from the run's time 0; None when not seen):
    abort_ns (the first request ended with -ECONNABORTED, from the trace), aborted_requests
    (requests so ended), fuse_init_ns and the check grid it starts (expected_abort_ns: the
    first check at which the oldest request held since the stall's start is older than the
    timeout), waiting_zero_ns (the first sample in the stall where fusectl's waiting fell to 0
    from above), the failed calls (count, the first's row/errno/end) and each fsync's end and
    error, and the WRITEs the server received (in the stall: held)."""
    from bench.real.mount import KIND_WRITE
    from bench.sim.ops import FSYNC, MSYNC
    out: dict[str, Any] = {"request_timeout_s": timeout_ns // S}
    tr = read_fuse_trace(files.get("fuse_trace", b"")) if "fuse_trace" in files else None
    out["fuse_trace_events"] = -1 if tr is None else int(len(tr))
    if tr is not None and len(tr):
        init = tr[~tr["end"] & (tr["opcode"] == FUSE_INIT_OPCODE)]
        out["fuse_init_ns"] = int(init["t_ns"][0]) - t0 if len(init) else None
        ab = tr[tr["end"] & (tr["error"] == -ECONNABORTED)]
        out["aborted_requests"] = int(len(ab))
        out["abort_ns"] = int(ab["t_ns"].min()) - t0 if len(ab) else None
        out["failed_requests"] = int((tr["end"] & (tr["error"] != 0)).sum())
        sent = tr[~tr["end"]]
        out["requests_sent"] = int(len(sent))
    checks = check_times(files.get("fuse_trace", b""))
    out["checks_ns"] = [int(t) - t0 for t in checks] if checks is not None else None
    if tr is None or not len(tr):
        out.update(fuse_init_ns=None, aborted_requests=None, abort_ns=None,
                   failed_requests=None, requests_sent=None)
    out["expected_abort_ns"] = None
    if stall is not None and timeout_ns and out["fuse_init_ns"] is not None:
        k = 1
        while out["fuse_init_ns"] + k * CHECK_PERIOD_NS <= stall[0] + timeout_ns:
            k += 1
        due = out["fuse_init_ns"] + k * CHECK_PERIOD_NS
        out["expected_abort_ns"] = due if due < stall[0] + stall[1] else None
    out["waiting_zero_ns"] = None
    if stall is not None and len(samples):
        w, t = samples["fuse_waiting"], samples["time_ns"]
        inside = (t >= stall[0]) & (t < stall[0] + stall[1])
        was = np.maximum.accumulate(np.where(inside, w, 0)) > 0
        hit = np.flatnonzero(inside & was & (w == 0))
        out["waiting_zero_ns"] = int(t[hit[0]]) if len(hit) else None
    fc = read_failed_calls(files.get("failed_calls", b""))
    out["failed_calls"] = int(len(fc))
    first = fc[np.argmin(fc[:, 3])] if len(fc) else None
    out["first_failed"] = None if first is None else {
        "row": int(first[0]), "op": int(ops["op"][first[0]]), "errno": _errname(first[1]),
        "end_ns": int(first[3])}
    out["failed_errnos"] = {_errname(e): int(n) for e, n in
                            zip(*np.unique(fc[:, 1], return_counts=True))} if len(fc) else {}
    failed_end = {int(r[0]): (int(r[1]), int(r[3])) for r in fc}
    fsyncs = []
    for i in np.flatnonzero(np.isin(ops["op"], (FSYNC, MSYNC))):
        i = int(i)
        if i in failed_end:
            fsyncs.append({"row": i, "start_ns": int(start[i]), "end_ns": failed_end[i][1],
                           "errno": _errname(failed_end[i][0])})
        elif start[i] >= 0 and lat[i] >= 0:
            fsyncs.append({"row": i, "start_ns": int(start[i]), "end_ns": int(start[i] + lat[i]),
                           "errno": ""})
    out["fsyncs"] = fsyncs
    w = log[log["kind"] == KIND_WRITE]
    out["writes_received"] = int(len(w))
    rel = w["t_recv_ns"] - t0
    out["writes_received_in_stall"] = (int(((rel >= stall[0]) & (rel < stall[0] + stall[1])).sum())
                                       if stall is not None else 0)
    return out


# ---- the simulator's side ----

def sim_evidence(strategy: str, workload: Any, seed: int, params: dict, engine: str,
                 sim_params: dict | None = None) -> dict[str, Any]:
    """The same figures from the simulator's run of what a guest ran (validate.sim_side):
    aborted_calls, each fsync's end (validate.sim_row_times), and abort_ns: the first sample
    (the engine's series, 1 ms apart by default) inside the stall at which no page is under
    writeback any more after some was (fuse_abort_conn ends every request in flight at once;
    without an abort, pages stay under writeback until the stall ends).  The engines expose no
    abort time of their own."""
    from bench import sim
    from bench.results import metrics
    from bench.sim.ops import FSYNC, MSYNC
    from . import validate
    wl, sp = validate.sim_side(workload, seed, params)
    p = {**sp, **(sim_params or {})}
    swl, cfg = sim.prepare(strategy, wl, seed, **p)
    raw = sim.simulate_raw(cfg, swl, seed, engine)
    sm = metrics.summarize(raw)
    out: dict[str, Any] = {"engine": engine, "request_timeout_s": cfg["request_timeout_ns"] // S,
                           "aborted_calls": int(sm["aborted_calls"]),
                           "writes_sent": int(sm["requests"]), "abort_ns": None}
    series = np.asarray(raw["series"]).reshape(-1, 6)
    if "stall_ns" in sp and len(series):
        s0, s1 = sp["stall_start_ns"], sp["stall_start_ns"] + sp["stall_ns"]
        t, wb = series[:, 0], series[:, 2]
        inside = (t >= s0) & (t < s1)
        was = np.maximum.accumulate(np.where(inside, wb, 0)) > 0
        hit = np.flatnonzero(inside & was & (wb == 0))
        out["abort_ns"] = int(t[hit[0]]) if len(hit) and cfg["request_timeout_ns"] else None
    try:
        st, la = validate.sim_row_times(swl.ops, raw["latency"])
    except ValueError:
        st = la = None
    out["fsyncs"] = [] if st is None else [
        {"row": int(i), "start_ns": int(st[i]), "end_ns": int(st[i] + la[i]) if la[i] >= 0
         else None} for i in np.flatnonzero(np.isin(swl.ops["op"], (FSYNC, MSYNC)))]
    return out


# ---- output ----

def _s(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / S:.2f} s"


def render(label_g: str, guests: list[dict], sims: list[dict]) -> str:
    """The abort side by side: one line per guest run, then one per simulator engine."""
    lines = ["request timeout (times from the run's time 0; the check runs every 15 s from "
             "FUSE_INIT in the kernel, from the first call in the simulator):"]
    for i, g in enumerate(guests):
        fs = "; ".join(f"row {f['row']} ended {_s(f['end_ns'])}"
                       + (f" {f['errno']}" if f["errno"] else " ok") for f in g["fsyncs"])
        ff = g["first_failed"]
        lines.append(
            f"  {label_g} run {i + 1}: timeout {g['request_timeout_s']} s, abort "
            f"{_s(g['abort_ns'])} (FUSE_INIT {_s(g['fuse_init_ns'])}, the model's rule on "
            f"this grid {_s(g['expected_abort_ns'])}; checks ran at "
            f"{', '.join(_s(t) for t in g['checks_ns']) if g.get('checks_ns') else '-'}; "
            f"fusectl waiting 0 at {_s(g['waiting_zero_ns'])}), "
            f"{g['aborted_requests'] if g['aborted_requests'] is not None else '-'} requests "
            f"ended ECONNABORTED, {g['failed_calls']} calls failed "
            + (f"(first: row {ff['row']} {ff['errno']} at {_s(ff['end_ns'])}; "
               f"{g['failed_errnos']})" if ff else "")
            + f"; fsync: {fs or '-'}; WRITEs received {g['writes_received']} "
            f"({g['writes_received_in_stall']} in the stall)")
    for s in sims:
        fs = "; ".join(f"row {f['row']} ended {_s(f['end_ns'])}" for f in s["fsyncs"])
        lines.append(f"  simulated ({s['engine']} engine): timeout {s['request_timeout_s']} s, "
                     f"abort {_s(s['abort_ns'])}, aborted_calls {s['aborted_calls']}; fsync: "
                     f"{fs or '-'}; WRITEs sent {s['writes_sent']}")
    lines.append("  (aborted_calls counts requests ended by the abort or refused after it; the "
                 "guest's trace counts the requests the abort ended, and its failed calls are "
                 "system calls)")
    return "\n".join(lines) + "\n"


