"""A/B of two kernels on one workload: interleaved boots, per-pair ratios with their spread.

Under TCG absolute times mean little and runs spread by 6 to 16 %, so the kernels are
interleaved with a rotating order (pair i runs A then B for even i, B then A for odd i), both
with seed i, and every metric is reported as the ratio of the pair's two runs: no-temp-page
kernel / temp-page kernel (or second / first when both are of one family), as the median and
min..max of the per-pair ratios and the 95% bootstrap CI of their median (bench.results.stats).

A workload asking for a FUSE request timeout (stuck-server-timeout) runs with it on a kernel
that has one and without it on one that has not, its simulated side likewise
(bench.real.kernels.timeout).

Beside each measured ratio, the simulated one: the two kernels' strategies (catalog.Kernel.strategy:
no-temp-page / merge-in-queue for a no-temp-page and a temp-page kernel) on one machine profile
(the temp-page guest's, bench.real.kernels.validate.profile_for, unless --machine names another),
on the same op arrays, seeds and server as the guests (validate.sim_side), paired by seed the
same way.  A row "agrees" when the simulated ratio lies within the 95% CI of the measured
median ratio.  Beyond
the ratios: the copies-in-flight evidence (pages the server saw covered by two WRITEs at once;
the simulator's secondaries and out-of-order versions, which a server without data versions
cannot count) and each guest's boot and run times under TCG.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from bench.results import Run, stats

from . import catalog
from .validate import mean_pages, median_finite     # shared with validate --kernel


# (label, value of a run's metrics)
METRICS: tuple[tuple[str, Callable[[dict], float]], ...] = (
    ("app throughput", lambda m: m["app_throughput_bps"]),
    ("WRITE count", lambda m: m["requests"]),
    ("pages per WRITE", mean_pages),
    ("WritebackTmp peak", lambda m: m["temp_pages_peak"]),
    ("max copies in flight", lambda m: m["max_copies_in_flight"]),
)


def order(kernels: list[catalog.Kernel]) -> tuple[catalog.Kernel, catalog.Kernel]:
    """(denominator, numerator): the temp-page kernel first when the families differ."""
    a, b = kernels
    if a.family == "no-temp-page" and b.family == "temp-page":
        return b, a
    return a, b


def run_ab(kernels: list[catalog.Kernel], workload: str, runs: int, params: dict,
           progress=None, execute=None, keep=None) -> list[Run]:
    """`runs` runs per kernel, interleaved with a rotating order; every run, in run order.
    `keep(kernel, seed, guest_result)`, when given, sees each guest's whole result (its
    per-row times and the server's log) before it is dropped."""
    if execute is None:
        from .guest import execute
    out: list[Run] = []
    for i in range(runs):
        pair = kernels if i % 2 == 0 else kernels[::-1]
        for k in pair:
            if progress:
                progress("ab", f"pair {i + 1}/{runs}: {k.name} ({workload}, seed {i})")
            g = execute(k, workload, i, progress=progress, **params)
            if keep is not None:
                keep(k, i, g)
            out.append(g.run)
    return out


def guest_details(workload: str, params: dict, seed: int, g) -> dict[str, Any]:
    """What a Run does not keep of a guest's run: how it kept the op array's schedule
    (validate.schedule), what its server's log says of arrivals (validate.arrivals), its row
    start times (for the simulator on measured timing) and, with a stall window, its blocking
    pattern (validate.blocking_pattern)."""
    from . import timeout, validate
    wl, _ = validate.sim_side(workload, seed, params)
    m = g.mount
    out: dict[str, Any] = {"schedule": validate.schedule(wl.ops, m.start_ns, m.latency_ns),
                           "arrivals": validate.arrivals(m.log), "start_ns": m.start_ns}
    stall = validate.stall_of(workload, seed, params)
    if stall is not None:       # a call that failed on an aborted connection returned
        lat = timeout.ended_latency(m.start_ns, m.latency_ns, getattr(g, "files", {}))
        out["blocking"] = validate.blocking_pattern(wl.ops, m.start_ns, lat, *stall)
    return out


def simulate_measured(kernels: list[catalog.Kernel], workload: str, details: dict, params: dict,
                      engine: str, sim_params: dict | None = None) -> list[Run]:
    """Each kernel's strategy on that kernel's measured row start times, per seed of the A/B
    (details: {(kernel name, seed): guest_details}); seeds where either guest is missing are
    left out."""
    from . import timeout, validate
    base, other = order(kernels)
    seeds = sorted({s for (_, s) in details})
    out = []
    for seed in seeds:
        if (base.name, seed) not in details or (other.name, seed) not in details:
            continue
        for k in (base, other):
            out.append(validate.simulate_measured(
                k.strategy, workload, seed, params, details[(k.name, seed)]["start_ns"], engine,
                timeout.with_kernel(k, workload, seed, params, sim_params)))
    return out


def blocking_summary(patterns: list[dict]) -> dict[str, Any]:
    """Over runs: for each call, how many runs showed each class, and the median time the
    writer's held call ended (from the stall's start)."""
    out: dict[str, Any] = {"runs": len(patterns)}
    classes: dict[str, dict[str, int]] = {}
    for b in patterns:
        if b.get("write"):
            c = classes.setdefault("write", {})
            c[b["write"]["class"]] = c.get(b["write"]["class"], 0) + 1
        for k in ("fsync", "sync"):
            for i, call in enumerate(b.get(k, [])):
                c = classes.setdefault(f"{k} {i + 1}", {})
                c[call["class"]] = c.get(call["class"], 0) + 1
    out["classes"] = classes
    ends = [b["write"]["held_end_ns"] for b in patterns
            if b.get("write") and b["write"]["held_end_ns"] is not None]
    out["write_held_end_s"] = median_finite([e / 1e9 for e in ends])
    before = [b["write"]["writes_before_held"] for b in patterns
              if b.get("write") and b["write"]["writes_before_held"] is not None]
    out["writes_before_held"] = median_finite([float(v) for v in before])
    return out


def render_blocking(summaries: list[tuple[str, dict]], stall_ns: int) -> str:
    lines = [f"  blocking pattern (stall of {stall_ns / 1e9:.1f} s; times from its start; a "
             "call 'waited' when it returned within 0.1 s of the stall's end or later):"]
    for label, s in summaries:
        parts = [f"{call}: " + ", ".join(f"{cls} {n}/{s['runs']}" for cls, n in sorted(c.items()))
                 for call, c in s["classes"].items()]
        lines.append(f"    {label:28} " + "; ".join(parts)
                     + f"; writer's held call ended {_f(s['write_held_end_s'])} s after "
                     f"{_f(s['writes_before_held'])} calls (medians)")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Ratio:
    metric: str
    base_median: float        # the denominator kernel's median value
    other_median: float
    median: float             # of the per-pair ratios
    lo: float                 # min of the per-pair ratios
    hi: float                 # max
    ci_lo: float              # 95% bootstrap CI of the median ratio
    ci_hi: float
    n: int                    # pairs with a defined ratio


def paired_ratios(base_by_seed: dict[int, Run], other_by_seed: dict[int, Run]) -> list[Ratio]:
    """Per metric, the ratios other / base of the runs of one seed; seeds where the base is 0 or
    undefined are left out of the ratio (both medians are still shown)."""
    seeds = sorted(set(base_by_seed) & set(other_by_seed))
    out = []
    for label, get in METRICS:
        b = [float(get(base_by_seed[s].metrics)) for s in seeds]
        o = [float(get(other_by_seed[s].metrics)) for s in seeds]
        rs = [y / x for x, y in zip(b, o) if x not in (0.0,) and not math.isnan(x)
              and not math.isnan(y)]
        med = lambda v: stats.summarize(v).median if v else float("nan")  # noqa: E731
        if rs:
            s = stats.summarize(rs)
            out.append(Ratio(label, med(b), med(o), s.median, min(rs), max(rs), s.lo, s.hi,
                             len(rs)))
        else:
            nan = float("nan")
            out.append(Ratio(label, med(b), med(o), nan, nan, nan, nan, nan, 0))
    return out


def _by_kernel(runs: list[Run]) -> dict[str, dict[int, Run]]:
    by: dict[str, dict[int, Run]] = {}
    for r in runs:
        k = catalog.get(str(dict(r.meta).get("kernel_name", r.strategy)))
        by.setdefault(k.name, {})[r.seed] = r
    return by


def ratios(runs: list[Run], kernels: list[catalog.Kernel]) -> list[Ratio]:
    """Per metric, the per-pair (same seed) ratios other / base of the guests' runs."""
    base, other = order(kernels)
    by = _by_kernel(runs)
    return paired_ratios(by.get(base.name, {}), by.get(other.name, {}))


def simulate(kernels: list[catalog.Kernel], workload: str, seeds: list[int], params: dict,
             engine: str, sim_params: dict | None = None) -> list[Run]:
    """The simulator's runs of both kernels' strategies (the active machine profile), for every
    seed of the A/B, with the guests' op arrays and server."""
    from . import timeout, validate
    base, other = order(kernels)
    return [validate.simulate(k.strategy, workload, seed, params, engine,
                              timeout.with_kernel(k, workload, seed, params, sim_params))
            for seed in seeds for k in (base, other)]


def sim_ratios(sim_runs: list[Run], kernels: list[catalog.Kernel]) -> list[Ratio]:
    """Per metric, the per-seed ratios other kernel's strategy / base kernel's strategy."""
    base, other = order(kernels)
    by: dict[str, dict[int, Run]] = {}
    for r in sim_runs:
        by.setdefault(r.strategy, {})[r.seed] = r
    return paired_ratios(by.get(base.strategy, {}), by.get(other.strategy, {}))


def agreement(measured: Ratio, simulated: Ratio) -> str:
    """"agrees" when the simulated ratio lies within the 95% CI of the measured median ratio,
    "differs" when outside, "-" when either is undefined."""
    if measured.n == 0 or simulated.n == 0:
        return "-"
    return "agrees" if measured.ci_lo <= simulated.median <= measured.ci_hi else "differs"


def evidence(runs: list[Run], sim_runs: list[Run], kernels: list[catalog.Kernel]) -> dict:
    """Medians per kernel (guests) and per strategy (simulator) of the copies-in-flight
    evidence and of the guests' times under TCG."""
    base, other = order(kernels)
    by = _by_kernel(runs)
    out: dict[str, Any] = {"measured": {}, "simulated": {}}
    for k in (base, other):
        rs = list(by.get(k.name, {}).values())
        meta = [dict(r.meta) for r in rs]
        out["measured"][k.name] = {
            key: median_finite([float(m.get(key, float("nan"))) for m in meta])
            for key in ("pages_with_concurrent_copies", "boot_to_init_s", "run_s",
                        "guest_wall_s")}
        out["measured"][k.name]["app_throughput_bps"] = median_finite(
            [float(r.metrics["app_throughput_bps"]) for r in rs])
        out["measured"][k.name]["clocksource"] = sorted({str(m.get("clocksource", "?"))
                                                         for m in meta})
    for k in (base, other):
        rs = [r for r in sim_runs if r.strategy == k.strategy]
        out["simulated"][k.strategy] = {
            key: median_finite([float(r.metrics.get(key, float("nan"))) for r in rs])
            for key in ("secondaries", "out_of_order", "lost_updates", "max_copies_in_flight")}
    return out


def _f(x: float) -> str:
    if x != x:
        return "-"
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def render(rs: list[Ratio], kernels: list[catalog.Kernel], workload: str,
           sim: list[Ratio] | None = None, sim_label: str = "",
           ev: dict | None = None, guests: bool = True) -> str:
    """The table; with `ev`, the copies evidence and (unless not `guests`) each guest's times."""
    base, other = order(kernels)
    lines = [f"{workload}: {other.name} ({other.family}) / {base.name} ({base.family}), "
             "per-pair ratios under qemu TCG"
             + (f"; simulated: {other.strategy} / {base.strategy} on {sim_label}" if sim else "")]
    head = (f"  {'metric':22} {base.name:>10} {other.name:>10} {'ratio':>7} "
            f"{'min..max':>15} {'95% CI':>15} pairs")
    if sim:
        head += (f" | {'sim ' + base.strategy:>18} {'sim ' + other.strategy:>18} "
                 f"{'sim ratio':>9} {'sim min..max':>13}  verdict")
    lines.append(head)
    sim_by = {r.metric: r for r in sim or []}
    for r in rs:
        scale = 1e-6 if r.metric == "app throughput" else 1.0
        line = (f"  {r.metric:22} {_f(r.base_median * scale):>10} "
                f"{_f(r.other_median * scale):>10} {_f(r.median):>7} "
                f"{_f(r.lo) + '..' + _f(r.hi):>15} {_f(r.ci_lo) + '..' + _f(r.ci_hi):>15} "
                f"{r.n:5d}")
        s = sim_by.get(r.metric)
        if s is not None:
            line += (f" | {_f(s.base_median * scale):>18} {_f(s.other_median * scale):>18} "
                     f"{_f(s.median):>9} {_f(s.lo) + '..' + _f(s.hi):>13}  {agreement(r, s)}")
        lines.append(line)
    lines.append("  (app throughput in MB/s; ratio: median of the per-pair ratios; "
                 "WritebackTmp peak measured, temp_pages_peak simulated, in pages)")
    if ev:
        mb, mo = ev["measured"][base.name], ev["measured"][other.name]
        sb, so = ev["simulated"][base.strategy], ev["simulated"][other.strategy]
        lines.append(f"  copies evidence (medians): pages with two WRITEs in flight at once "
                     f"{_f(mb['pages_with_concurrent_copies'])} on {base.name}, "
                     f"{_f(mo['pages_with_concurrent_copies'])} on {other.name}; simulated "
                     f"secondaries {_f(sb['secondaries'])} / {_f(so['secondaries'])}, out of "
                     f"order {_f(sb['out_of_order'])} / {_f(so['out_of_order'])}, lost updates "
                     f"{_f(sb['lost_updates'])} / {_f(so['lost_updates'])} "
                     f"({base.strategy} / {other.strategy}; the server keeps no data versions, "
                     "so out-of-order and lost updates are not measured in the guests)")
        for k in (base, other) if guests else ():
            m = ev["measured"][k.name]
            lines.append(f"  {k.name} under TCG (medians): boot to /init "
                         f"{_f(m['boot_to_init_s'])} s, "
                         f"run {_f(m['run_s'])} s, whole guest {_f(m['guest_wall_s'])} s, "
                         f"app throughput {_f(m['app_throughput_bps'] * 1e-6)} MB/s, "
                         f"clocksource {','.join(m['clocksource'])}")
    if sim:
        lines.append("  verdict: agrees when the simulated ratio lies within the 95% CI of the "
                     "measured median ratio.  Absolute times under TCG emulation are not "
                     "comparable to the "
                     "simulator's host-calibrated costs; the ratios and the counts are the check")
    return "\n".join(lines) + "\n"


def as_dicts(rs: list[Ratio]) -> list[dict[str, Any]]:
    from dataclasses import asdict
    return [asdict(r) for r in rs]


def details_summary(details: dict, kernels: list[catalog.Kernel]) -> dict[str, dict]:
    """Per kernel, the medians over its runs of the schedule and arrival figures
    (guest_details), and the blocking pattern's summary when the runs had a stall."""
    from . import validate
    out: dict[str, dict] = {}
    for k in order(kernels):
        ds = [d for (name, _), d in sorted(details.items()) if name == k.name]
        row: dict[str, Any] = validate.details_medians(ds)
        pats = [d["blocking"] for d in ds if "blocking" in d]
        if pats:
            row["blocking"] = blocking_summary(pats)
        out[k.name] = row
    return out


def render_details(summary: dict) -> str:
    from . import validate
    lines = []
    for name, d in summary.items():
        if "late_share" not in d:
            continue
        sched, arr = validate.describe_details(d)
        lines.append(f"  {name} schedule (medians): {sched}")
        lines.append(f"  {name} arrivals (medians): {arr}")
    return "\n".join(lines) + "\n"


def as_json(workload: str, kernels: list[catalog.Kernel], measured: list[Ratio],
            sims: dict[str, tuple[str, list[Ratio], dict]], summary: dict,
            sim_blocking: dict | None = None) -> dict[str, Any]:
    """The A/B as one JSON-ready document: the measured ratios, each simulated set (by timing:
    "schedule", "measured": (label, ratios, evidence)) with its per-metric verdicts and the
    copies evidence, the guests' schedule and arrival figures and, with a stall, the blocking
    patterns."""
    base, other = order(kernels)
    out: dict[str, Any] = {
        "workload": workload, "base": {"kernel": base.name, "family": base.family,
                                       "strategy": base.strategy},
        "other": {"kernel": other.name, "family": other.family, "strategy": other.strategy},
        "ratio": f"{other.name} / {base.name}", "measured": as_dicts(measured),
        "simulated": {}, "guests": summary}
    by = {r.metric: r for r in measured}
    for timing, (label, rs, ev) in sims.items():
        out["simulated"][timing] = {
            "label": label, "ratios": as_dicts(rs), "evidence": ev,
            "verdicts": {r.metric: agreement(by[r.metric], r) for r in rs if r.metric in by}}
    if sim_blocking is not None:
        out["simulated_blocking"] = sim_blocking
    return out
