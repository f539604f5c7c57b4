"""The flusher's CPU in a guest: ``python -m bench kernels cost 6.1,7.2``.

The guest twin of bench.real.calibrate.measure_flusher.  Each boot writes `pages` pages of one
file with write(2), either as 1 MiB writes ("contiguous": the flusher sends 32-page WRITEs) or
one page at every other index ("every-other": one-page WRITEs), then fsyncs it.  /init takes a
CPU snapshot of every task (bench.real.kernels.initramfs.CPU_FILES) before an idle second, before
the run and after it (guest.cpu_usage):

  flusher CPU   the kworker threads' sum_exec_runtime (/proc/PID/schedstat) over the run, less
                their rate over the idle second;
  pages, WRITEs what the server received before the fsync started (the flusher's; the fsync
                writes the rest in the writer's own context);
  server CPU    the server's threads over the run: reading the WRITEs and replying, where a
                temp-page kernel frees the temp pages and a no-temp-page one ends writeback.

Per round, one boot of each layout, and  cpu = pages * per_page + WRITEs * per_request  solved
for both terms (flusher and server separately).  All in the guest's clock: under TCG that is
emulated time, several times the host's and moved by whatever else runs on the host, so only
differences between kernels on the same emulated machine mean something.  Kernels and layouts
are interleaved with a rotating order.  The temp-page path's extra cost is the temp-page kernel's
per-page term less the no-temp-page kernel's: it also holds every other difference between the
two kernels' writeback paths (7.x writes back through iomap), which is why it is named a
difference between kernels, not the cost of a copy.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from bench.sim import workload as _workload
from bench.sim.ops import FSYNC, OP_DTYPE, PAGE_SIZE, WRITE

from . import catalog

LAYOUTS = ("contiguous", "every-other")
PAGES = 16384                 # 64 MiB dirtied: about 8 times a 4 GiB guest's FUSE dirty limit


def layout_workload(layout: str, pages: int = PAGES) -> _workload.Workload:
    """The op array of one boot: `pages` pages written as `layout`, then an fsync."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout: one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout == "contiguous":
        step = 256
        rows = [(first * PAGE_SIZE, min(step, pages - first) * PAGE_SIZE)
                for first in range(0, pages, step)]
    else:
        rows = [(2 * i * PAGE_SIZE, PAGE_SIZE) for i in range(pages)]
    ops = np.zeros(len(rows) + 1, OP_DTYPE)
    ops["op"][:-1] = WRITE
    ops["offset"][:-1] = [o for o, _ in rows]
    ops["length"][:-1] = [n for _, n in rows]
    ops["op"][-1] = FSYNC
    return _workload.from_arrays(ops, [0], name=f"flush-{layout}", params={"pages": pages})


def _solve(c: dict, e: dict, key: str) -> tuple[float, float]:
    """(per page, per request) of `key` from a contiguous and an every-other run."""
    a = np.array([[c["pages"], c["requests"]], [e["pages"], e["requests"]]], float)
    if c["pages"] == 0 or e["pages"] == 0 or abs(np.linalg.det(a)) < 1e-9:
        raise RuntimeError(f"flusher measurement: the flusher wrote nothing before the fsync "
                           f"(contiguous {c['pages']} pages, every-other {e['pages']})")
    p, q = np.linalg.solve(a, np.array([c[key], e[key]], float))
    return float(p), float(q)


def measure(kernels: list[catalog.Kernel], rounds: int = 3, pages: int = PAGES,
            progress: Callable[[str, str], None] | None = None, execute=None,
            **params: Any) -> dict[str, Any]:
    """`rounds` rounds; in each, every kernel boots once per layout (order rotating).
    Returns {"kernels": {name: {"runs": [...], "rounds": [...], "per_page_ns": ...}}, ...}."""
    if execute is None:
        from .guest import execute
    from .guest import cpu_usage
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds: must be an integer >= 1, got {rounds!r}")
    if isinstance(pages, bool) or not isinstance(pages, int) or not 1024 <= pages <= 1 << 20:
        raise ValueError(f"pages: must be an integer in 1024..{1 << 20}, got {pages!r}")
    out: dict[str, Any] = {"pages": pages, "rounds": rounds, "kernels": {}}
    per = {k.name: {"runs": [], "rounds": []} for k in kernels}
    for rnd in range(rounds):
        ks = kernels if rnd % 2 == 0 else kernels[::-1]
        lays = LAYOUTS if rnd % 2 == 0 else LAYOUTS[::-1]
        got: dict[tuple[str, str], dict] = {}
        for k in ks:
            for lay in lays:
                if progress:
                    progress("cost", f"round {rnd + 1}/{rounds}: {k.name} {lay} ({pages} pages)")
                # no folio trace: its tracepoint would add CPU to the writer's side of the
                # measured costs, which were recorded without it
                g = execute(k, layout_workload(lay, pages), 0, cpu_probe=True,
                            folio_trace=False, progress=progress, **params)
                u = cpu_usage(g)
                meta = dict(g.run.meta)
                u.update(layout=lay, round=rnd, kernel=meta.get("kernel", k.name),
                         clocksource=meta.get("clocksource", ""), run_s=meta.get("run_s"))
                per[k.name]["runs"].append(u)
                got[(k.name, lay)] = u
        for k in kernels:
            c, e = got[(k.name, "contiguous")], got[(k.name, "every-other")]
            r = {"round": rnd}
            for key in ("kworker_ns", "server_ns"):
                p, q = _solve(c, e, key)
                r[f"{key[:-3]}_page_ns"], r[f"{key[:-3]}_request_ns"] = p, q
            for lay, u in (("contiguous", c), ("every-other", e)):
                r[f"{lay}_kworker_ns_per_page"] = u["kworker_ns"] / max(1, u["pages"])
                r[f"{lay}_kworker_ns_per_request"] = u["kworker_ns"] / max(1, u["requests"])
            per[k.name]["rounds"].append(r)
    for name, d in per.items():
        for key in d["rounds"][0]:
            if key != "round":
                d[key] = float(np.median([r[key] for r in d["rounds"]]))
        out["kernels"][name] = d
    fam = {k.name: k.family for k in kernels}
    tp = [n for n in per if fam[n] == "temp-page"]
    ntp = [n for n in per if fam[n] == "no-temp-page"]
    if tp and ntp:
        a, b = tp[0], ntp[0]
        diff = {}
        for key in ("kworker_page_ns", "kworker_request_ns", "server_page_ns", "server_request_ns"):
            # per round: the rounds are interleaved, so round i of each ran side by side
            vals = [ra[key] - rb[key] for ra, rb in zip(per[a]["rounds"], per[b]["rounds"])]
            diff[key] = {"median": float(np.median(vals)), "min": float(min(vals)),
                         "max": float(max(vals)), "per_round": vals}
        out["difference"] = {"temp_page": a, "no_temp_page": b, **diff}
    return out


def _ns(x: float) -> str:
    return f"{x:,.0f}" if x == x else "-"


def render(res: dict[str, Any]) -> str:
    """The per-kernel terms and, with a kernel of each family, their difference."""
    lines = [f"The flusher's CPU in each guest (qemu TCG: emulated time), {res['rounds']} "
             f"rounds, {res['pages']} pages per boot, medians over rounds (min..max):"]
    lines.append(f"  {'kernel':8} {'flusher ns/page':>22} {'flusher ns/WRITE':>24} "
                 f"{'server ns/page':>22} {'server ns/WRITE':>24}")

    def cell(d, key):
        v = [r[key] for r in d["rounds"]]
        return f"{_ns(d[key])} ({_ns(min(v))}..{_ns(max(v))})"
    for name, d in res["kernels"].items():
        lines.append(f"  {name:8} {cell(d, 'kworker_page_ns'):>22} {cell(d, 'kworker_request_ns'):>24} "
                     f"{cell(d, 'server_page_ns'):>22} {cell(d, 'server_request_ns'):>24}")
    lines.append("  the 32-page boots alone (no solve), flusher ns/page: " + "; ".join(
        f"{name} {cell(d, 'contiguous_kworker_ns_per_page')}" for name, d in res["kernels"].items()))
    for name, d in res["kernels"].items():
        c = [u for u in d["runs"] if u["layout"] == "contiguous"]
        e = [u for u in d["runs"] if u["layout"] == "every-other"]
        lines.append(f"  {name}: flusher pages/WRITEs per boot: contiguous "
                     f"{int(np.median([u['pages'] for u in c]))}/{int(np.median([u['requests'] for u in c]))}, "
                     f"every-other {int(np.median([u['pages'] for u in e]))}/"
                     f"{int(np.median([u['requests'] for u in e]))}; kworker idle "
                     f"{_ns(np.median([u['kworker_idle_ns_per_s'] for u in d['runs']]))} ns/s; "
                     f"clocksource {','.join(sorted({u['clocksource'] for u in d['runs']}))}")
    dif = res.get("difference")
    if dif:
        lines.append(f"  {dif['temp_page']} - {dif['no_temp_page']} (the temp-page path's extra "
                     "cost, with every other difference between the two kernels), per round:")
        for key, label in (("kworker_page_ns", "flusher ns/page"),
                           ("kworker_request_ns", "flusher ns/WRITE"),
                           ("server_page_ns", "server ns/page"),
                           ("server_request_ns", "server ns/WRITE")):
            v = dif[key]
            lines.append(f"    {label:17} {_ns(v['median']):>10} ({_ns(v['min'])}..{_ns(v['max'])})")
    return "\n".join(lines) + "\n"
