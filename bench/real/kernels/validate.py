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
    terms.  A server without an artificial delay runs at its own speed, which the simulator's
    server_base_ns / server_page_ns of the profile stand for; so they are only given when the
    guest's server was told to delay (a workload carrying its server, e.g. dio-redirty)."""
    from bench.real import mount
    wl, p = mount._split_params(workload, seed, params)
    opts = mount._server_options(p, seed)
    out: dict[str, Any] = {"server_threads": opts.threads, "max_pages": opts.max_write // PAGE,
                           "max_background": opts.max_background, "server_dist": opts.dist}
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


def _median(runs: list[Run], get: Callable[[dict], Any]) -> float:
    vals = [get(r.metrics) for r in runs]
    vals = [float(v) for v in vals
            if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return stats.summarize(vals).median if vals else float("nan")


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
    lines.append(f"medians over seeds; counts: ok within {TOLERANCE:.0%} (or both 0), else "
                 "differs; (TCG time): " + TCG_NOTE)
    lines.append("not run on guests: the stuck-server blocking pattern (`validate` without "
                 "--kernel runs it on this machine's mount)")
    return "\n".join(lines) + "\n"


def _meta_median(runs: list[Run], key: str) -> float:
    vals = [float(dict(r.meta).get(key, float("nan"))) for r in runs]
    vals = [v for v in vals if v == v]
    return stats.summarize(vals).median if vals else float("nan")


def block(workload: str, measured: list[Run], predicted: list[Run]) -> dict[str, Any]:
    from bench.real import validate as host
    return {"workload": workload, "rows": pair(workload, measured, predicted),
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
    blocks, runs = [], []
    for w in workloads:
        measured, predicted = [], []
        for seed in range(args.seeds):
            if not args.quiet:
                print(f"validate: {kernel.name} {w} seed {seed}: guest", file=sys.stderr,
                      flush=True)
            g = guest.execute(kernel, w, seed)
            measured.append(g.run)
            if not args.quiet:
                print(f"validate: {kernel.name} {w} seed {seed}: simulator ({strategy})",
                      file=sys.stderr, flush=True)
            predicted.append(simulate(strategy, w, seed, {}, engine, sim_params))
        blocks.append(block(w, measured, predicted))
        runs += measured + predicted
    label = _machine.label(chosen)
    if args.json:
        json.dump(no_nan(as_json(kernel, strategy, label, blocks)), sys.stdout, indent=1,
                  allow_nan=False)
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
    if args.out:
        meta = provenance.collect(engine=f"mount+{engine}", command="validate --kernel",
                                  kernel=kernel.name, strategy=strategy, seeds=args.seeds,
                                  workloads=list(workloads), sim_params=sim_params,
                                  machine=_params.machine_provenance(), note=TCG_NOTE)
        out = results.dump(results.Suite(meta, tuple(runs)), args.out, overwrite=args.force)
        print(f"results: {out}", file=sys.stderr)
    return 0
