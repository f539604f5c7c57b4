"""The ``kernels`` verb: ``python -m bench kernels list|features|fetch|run|ab|cost``."""
from __future__ import annotations

import argparse
import json
import sys

from . import catalog


def _progress(quiet: bool):
    if quiet:
        return None
    return lambda stage, msg: print(f"{stage}: {msg}", file=sys.stderr, flush=True)


def cmd_list(args: argparse.Namespace) -> int:
    from . import fetch
    print(f"{'kernel':8} {'suite':13} {'family':13} {'simulated by':15} {'cached':22} available")
    for k in catalog.KERNELS:
        have = fetch.cached(k)
        avail = fetch.available_version(k)
        print(f"{k.name:8} {k.suite:13} {k.family:13} {k.strategy:15} "
              f"{(have.package_version if have else '-'):22} "
              f"{avail or '- (kernels fetch to look)'}")
    print(f"cache: {fetch.cache_dir()}  (${fetch.CACHE_ENV} overrides)")
    return 0


def _kept(root: str) -> dict[str, tuple[str, dict, dict]]:
    """What the kept guest directories under ROOT (``kernels run --keep``) hold per kernel:
    {kernel name: (release, files, folio meta)}, the files of all its directories (the newest
    wins a name: a ``--trace`` run's trace.txt joins a seq-write's files), the folio meta from
    its newest seq-write run (only a seq-write's folio orders judge large folios)."""
    import os
    from . import folios
    from .guest import parse_info
    out: dict[str, tuple[str, dict, dict]] = {}
    for d in sorted(os.listdir(root), key=lambda n: os.path.getmtime(os.path.join(root, n))):
        path = os.path.join(root, d)
        name = d.split("-", 1)[0]
        if name not in catalog.KERNEL_BY_NAME or not os.path.isdir(path):
            continue
        _, files, meta = out.get(name, ("", {}, {}))
        new = {}
        for f in os.listdir(path):
            with open(os.path.join(path, f), "rb") as fh:
                new[f] = fh.read()
        if "-seq-write-" in d:
            meta = folios.from_files(new) or meta
        files = {**files, **new}
        release = parse_info(files.get("info", b"").decode(errors="replace")).get("kernel", name)
        out[name] = (release, files, meta)
    return out


def cmd_features(args: argparse.Namespace) -> int:
    from . import features
    cols: list[tuple[str, dict]] = []
    for k in catalog.KERNELS:
        cols.append((k.name, dict((key, (st, ev)) for key, st, ev in k.features)))
    notes = []
    if args.keep:
        for name, (release, files, meta) in _kept(args.keep).items():
            k = catalog.get(name)
            seen = features.from_guest_files(release, files, meta, k.family == "temp-page")
            cols.append((f"{name} (kept)", seen))
            recorded = dict(cols[[c[0] for c in cols].index(name)][1])
            for key, (st, _) in seen.items():
                if st != "?" and recorded.get(key, ("?",))[0] != st:
                    notes.append(f"{name} {key}: the catalog says {recorded.get(key, ('?',))[0]}, "
                                 f"the kept guest files say {st}")
    if not args.no_host:
        try:
            h = features.host_probe()
        except OSError as exc:
            notes.append(f"host: /proc/kallsyms unreadable ({exc.strerror})")
        else:
            cols.append((f"host {h['release'].split('-')[0]}",
                         features.probe(h["release"], h["symbols"], h["knobs"], None, False)))
    if args.json:
        json.dump({c: {k: {"status": s, "evidence": e} for k, (s, e) in f.items()}
                   for c, f in cols} | {"notes": notes}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    width = max(len(f.key) for f in features.FEATURES)
    print(f"{'feature':{width}} " + " ".join(f"{c:>9}" for c, _ in cols))
    for f in features.FEATURES:
        print(f"{f.key:{width}} " + " ".join(f"{fs.get(f.key, ('?', ''))[0]:>9}"
                                             for _, fs in cols))
    print("evidence:")
    for c, fs in cols:
        for f in features.FEATURES:
            st, ev = fs.get(f.key, ("?", "not recorded"))
            print(f"  {c:14} {f.key:{width}} {st:4} {ev}")
    for n in notes:
        print(f"NOTE: {n}")
    return 0


def cmd_folios(args: argparse.Namespace) -> int:
    from bench import results
    from . import folios
    runs = [r for path in args.files for r in results.load(path).runs]
    rows = folios.table(runs)
    if not rows:
        raise ValueError("files: no runs in them")
    num, den = (args.ratio.split("/", 1) + [""])[:2] if args.ratio else (None, None)
    if args.json:
        json.dump({"rows": rows, "ratios": folios.ratios(rows, num, den) if num else {},
                   "pair_ratios": folios.pair_ratios(rows, num, den) if num else {}},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(folios.render(rows, num, den))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from . import fetch
    kernels = catalog.parse_list(args.kernels) if args.kernels else list(catalog.KERNELS)
    for k in kernels:
        f = fetch.fetch(k, update=True,
                        log=(lambda m: print(f"{k.name}: {m}", file=sys.stderr, flush=True))
                        if not args.quiet else (lambda m: None))
        mods = [m.rsplit("/", 1)[-1] for m in (f.fuse_module, f.brd_module) if m]
        print(f"{k.name:6} {f.package} {f.package_version} -> {f.vmlinuz}"
              + (f" (+ {', '.join(mods)})" if mods else ""))
    return 0


def _fmt(x: float) -> str:
    if x != x:
        return "-"
    return f"{x:.0f}" if abs(x) >= 100 or x == int(x) else f"{x:.3g}"


def render_run(run) -> str:
    """A kernel run in the result names of `compare`, then what the guest was."""
    from bench.results import compare
    m, meta = run.metrics, dict(run.meta)
    lines = [f"{run.workload}: {run.strategy} ({meta.get('kernel', '?')}, "
             f"{meta.get('kernel_family', '?')} family, simulated by "
             f"{meta.get('simulated_by', '?')}), seed {run.seed}, qemu TCG"]
    for key, label, get, scale, unit in compare.HEADLINE:
        v = m.get(key)
        if v is None or (isinstance(v, dict) and v.get("count") == 0):
            continue
        lines.append(f"  {key:22} {_fmt(float(get(v)) * scale):>10} {unit:6} {label}")
    ppr = m.get("pages_per_request", {})
    n = sum(ppr.values())
    if n:
        mean = sum(int(k) * c for k, c in ppr.items()) / n
        lines.append(f"  {'pages_per_request':22} {_fmt(mean):>10} {'':6} mean pages per WRITE")
    if meta.get("folio_orders") is not None:
        fpm = meta.get("folio_pages_mean")
        lines.append(f"  {'folio_pages_mean':22} {_fmt(float('nan') if fpm is None else fpm):>10} "
                     f"{'':6} mean pages per folio added (orders {meta['folio_orders']}, "
                     f"{meta.get('folio_trace_lost', 0)} events lost)")
    bdi = (f"bdi max_ratio {meta.get('bdi_max_ratio')}, strict_limit {meta.get('bdi_strict_limit')}, "
           f"max_bytes {meta.get('bdi_max_bytes')} (-1: not in this kernel)")
    lines.append(f"  guest: {meta.get('guest_cpus')} CPUs, {meta.get('guest_mem_mb')} MiB; {bdi}")
    if meta.get("request_timeout") is not None:
        from . import timeout
        lines.append(timeout.render(meta.get("kernel_name", "guest"), [meta["request_timeout"]],
                                    []).rstrip("\n"))
    if meta.get("request_timeout_note"):
        lines.append(f"  NOTE: {meta['request_timeout_note']}")
    lines.append(f"  boot {meta.get('boot_to_init_s')} s to /init (guest uptime "
                 f"{meta.get('guest_uptime_at_init_s')} s), run {meta.get('run_s')} s, clocksource "
                 f"{meta.get('clocksource')}, family seen: {meta.get('family')} "
                 f"(WritebackTmp peak {m.get('temp_pages_peak')} pages)")
    return "\n".join(lines) + "\n"


def render_passes(p: dict) -> str:
    """The flusher's passes of a traced guest run (guest.writeback_passes)."""
    return (f"  writeback: {p['passes']} passes in the write phase, started when the bdi's dirty + "
            f"writeback pages were {p['start_share_median']:.0%} of its limit at the time (median; "
            f"quartiles {p['start_share_q1']:.0%}..{p['start_share_q3']:.0%}; background threshold "
            f"50%, freerun ceiling 75%), {_fmt(p['dirty_wb_before_start'])} pages (median; limit "
            f"{_fmt(p['limit_pages'])}); medians {_fmt(p['dirty_median'])} dirty, "
            f"{_fmt(p['writeback_median'])} under writeback; {p['dirtied_pages']} pages dirtied\n")


def _suite(runs, command: str, extra: dict):
    from bench import results
    from bench.results import provenance
    return results.Suite(provenance.collect(engine="mount", command=command, **extra), tuple(runs))


def _keep(root: str, k, workload: str, seed: int, files: dict[str, bytes]) -> None:
    """Save what a guest sent back (its fuse_symbols, fuse_knobs, folio trace, dmesg, ...)
    under ROOT/<kernel>-<workload>-<seed>-<n>/, n counting up from 0 so nothing is replaced."""
    import os
    n = 0
    while os.path.exists(d := os.path.join(root, f"{k.name}-{workload}-{seed}-{n}")):
        n += 1
    os.makedirs(d)
    for name, data in files.items():
        with open(os.path.join(d, os.path.basename(name)), "wb") as f:
            f.write(data)


def cmd_run(args: argparse.Namespace) -> int:
    from bench import results
    from bench.cli import check_seeds, parse_pairs, pick_names
    from bench.sim import workloads as known_workloads
    from . import guest
    kernels = list(catalog.KERNELS) if args.kernel == "all" else catalog.parse_list(args.kernel)
    workloads = pick_names(args.workload, known_workloads(), "workload")
    params = parse_pairs(args.param)
    check_seeds(args.seeds)
    if args.out:
        results.check_writable(args.out, args.force)
    tasks = [(k, w, seed) for w in workloads for seed in range(args.seeds) for k in kernels]
    bar = None
    if len(tasks) > 1 and not args.quiet:
        from tqdm import tqdm
        bar = tqdm(total=len(tasks), file=sys.stderr, unit="boot", leave=False)
    runs, failed = [], []
    try:
        for k, w, seed in tasks:
            if bar is not None:
                bar.set_description(f"{k.name} {w} seed {seed}")
            try:
                g = guest.execute(k, w, seed, update=args.update,
                                  progress=_progress(args.quiet or bar is not None),
                                  trace=guest.TRACE_WRITEBACK if args.trace else "",
                                  folio_trace=args.folio_trace, **params)
            except RuntimeError as exc:
                if len(tasks) == 1:
                    raise
                # A matrix goes on: one kernel failing a workload is a finding, not the end.
                failed.append(f"{k.name} {w} seed {seed}: {exc}")
                if bar is not None:
                    bar.update(1)
                    bar.clear()
                print(f"FAILED: {failed[-1]}", file=sys.stderr, flush=True)
                continue
            runs.append(g.run)
            if args.keep:
                _keep(args.keep, k, w, seed, g.files)
            if bar is not None:
                bar.update(1)
                bar.clear()
            if args.json:
                json.dump(results.run_to_dict(g.run, with_series=False), sys.stdout, indent=1)
                sys.stdout.write("\n")
            else:
                sys.stdout.write(render_run(g.run))
                if args.trace:
                    sys.stdout.write(render_passes(guest.writeback_passes(g)))
            sys.stdout.flush()
    finally:
        if bar is not None:
            bar.close()
    if args.out and runs:
        out = results.dump(_suite(runs, "kernels run", {"seeds": args.seeds, "params": params,
                                                        "kernels": [k.name for k in kernels],
                                                        "failed": failed}),
                           args.out, overwrite=args.force)
        print(f"results: {out}", file=sys.stderr)
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(tasks)} runs failed: " + "; ".join(failed))
    return 0


def cmd_ab(args: argparse.Namespace) -> int:
    from bench import results
    from bench.cli import parse_pairs, pick_names
    from bench.real import validate as host_validate
    from bench.sim import machine as _machine, params as _params, workloads as known_workloads
    from . import ab, timeout, validate
    kernels = catalog.parse_list(args.kernels)
    if len(kernels) != 2:
        raise ValueError("--kernels: name two kernels (a temp-page one and a no-temp-page one)")
    if args.runs < 1:
        raise ValueError(f"--runs: must be >= 1, got {args.runs}")
    if "," in args.workload:
        raise ValueError(f"workload: one name, got {args.workload!r}")
    workload = pick_names(args.workload, known_workloads(), "workload")[0]
    params = parse_pairs(args.param)
    sim_params = parse_pairs(args.sim_param, "--sim-param")
    base, _ = ab.order(kernels)
    if args.machine is not None:
        chosen, why = _machine.select(args.machine), "given with --machine"
    else:
        name, note = validate.profile_for(base)
        chosen, why = _machine.select(name), note or f"the {base.name} guest's"
    # The simulated side's parameters, checked before any boot: a typo is one error line.
    _, sp = validate.sim_side(workload, 0, params)
    for k in kernels:
        _params.resolve(k.strategy, {**sp, **sim_params})
    engine = args.engine or host_validate.sim_engine()
    if args.out:
        results.check_writable(args.out, args.force)
    details: dict = {}
    runs = ab.run_ab(kernels, workload, args.runs, params, progress=_progress(args.quiet),
                     keep=lambda k, seed, g: details.__setitem__(
                         (k.name, seed), ab.guest_details(workload, params, seed, g)))
    seeds = sorted({r.seed for r in runs})
    label = f"{_machine.label(chosen)} ({why}), {engine} engine"
    sims: dict = {}          # timing -> (label, ratios, evidence)
    sim_runs: list = []
    if args.sim_timing in ("schedule", "both"):
        sched = ab.simulate(kernels, workload, seeds, params, engine, sim_params)
        sims["schedule"] = (label + ", the op array's schedule", ab.sim_ratios(sched, kernels),
                            ab.evidence(runs, sched, kernels))
        sim_runs += sched
    if args.sim_timing in ("measured", "both"):
        meas = ab.simulate_measured(kernels, workload, details, params, engine, sim_params)
        sims["measured"] = (label + ", each strategy on its kernel's measured row start times",
                            ab.sim_ratios(meas, kernels), ab.evidence(runs, meas, kernels))
        sim_runs += meas
    summary = ab.details_summary(details, kernels)
    stall = validate.stall_of(workload, 0, params)
    sim_blocking = None
    if stall is not None:
        base_k, other_k = ab.order(kernels)
        sim_blocking = {k.strategy: ab.blocking_summary(
            [validate.pattern_sim(k.strategy, workload, seed, params, engine,
                                  timeout.with_kernel(k, workload, seed, params, sim_params))
             for seed in seeds]) for k in (base_k, other_k)}
    timeouts = []           # the request timeout, per kernel: its guests and its strategy
    for k in ab.order(kernels):
        got = [dict(r.meta)["request_timeout"] for r in runs
               if dict(r.meta).get("kernel_name") == k.name and "request_timeout" in dict(r.meta)]
        if got:
            timeouts.append((k, got, [timeout.sim_evidence(
                k.strategy, workload, seeds[0], params, engine,
                timeout.with_kernel(k, workload, seeds[0], params, sim_params))]))
    measured = ab.ratios(runs, kernels)
    if args.json:
        doc = ab.as_json(workload, kernels, measured, sims, summary, sim_blocking)
        doc.update(runs_per_kernel=args.runs, params=params, sim_params=sim_params,
                   request_timeout=[{"kernel": k.name, "guest": g, "simulated": s}
                                    for k, g, s in timeouts])
        json.dump(validate.no_nan(doc), sys.stdout, indent=1, allow_nan=False)
        sys.stdout.write("\n")
    else:
        for i, (lab, rs, ev) in enumerate(sims.values()):
            sys.stdout.write(ab.render(measured, kernels, workload, rs, lab, ev, guests=i == 0))
        if not sims:
            sys.stdout.write(ab.render(measured, kernels, workload, None, "", None))
        sys.stdout.write(ab.render_details(summary))
        if stall is not None:
            cols = [(f"{k.name} (guest)", summary[k.name]["blocking"])
                    for k in ab.order(kernels) if "blocking" in summary[k.name]]
            cols += [(f"{k} (simulated)", b) for k, b in sim_blocking.items()]
            sys.stdout.write(ab.render_blocking(cols, stall[1]))
        for k, g, s in timeouts:
            sys.stdout.write(timeout.render(f"{k.name} (guest)", g, s))
        if args.runs < 6:
            print(f"  note: {args.runs} runs per kernel; under TCG runs spread by 6 to 16 %, so a "
                  "throughput ratio wants at least 6")
    if args.out:
        out = results.dump(_suite(runs + sim_runs, "kernels ab",
                                  {"runs_per_kernel": args.runs, "params": params,
                                   "kernels": [k.name for k in kernels],
                                   "simulated": [k.strategy for k in ab.order(kernels)],
                                   "sim_engine": engine, "sim_params": sim_params,
                                   "machine": _params.machine_provenance()}),
                           args.out, overwrite=args.force)
        print(f"results: {out}", file=sys.stderr)
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from . import cost
    kernels = catalog.parse_list(args.kernels)
    res = cost.measure(kernels, args.rounds, args.pages, progress=_progress(args.quiet))
    if args.json:
        json.dump(res, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(cost.render(res))
    return 0


def add_parsers(subparsers) -> None:
    """Add the `kernels` verb (list, fetch, run, ab, cost) to the CLI's sub-parsers."""
    p = subparsers.add_parser("kernels", help="other kernels (Debian's) under qemu: list, fetch, "
                                              "run a workload, A/B two families")
    sub = p.add_subparsers(dest="kernels_verb", required=True)
    q = sub.add_parser("list", help="the kernels with their suites, families and versions")
    q.set_defaults(func=cmd_list)
    q = sub.add_parser("features", help="which FUSE features each kernel carries (iomap, "
                                        "timeouts, io_uring, sync, ...), with the evidence")
    q.add_argument("--keep", metavar="DIR", help="also read guests' files kept by `kernels run "
                                                 "--keep DIR` and flag where they differ from "
                                                 "the catalog")
    q.add_argument("--no-host", action="store_true", help="leave out this machine's kernel")
    q.add_argument("--json", action="store_true", help="the table as JSON")
    q.set_defaults(func=cmd_features)
    q = sub.add_parser("folios", help="pages per WRITE, page-cache folio sizes and throughput "
                                      "of `kernels run --out` files, per kernel and block size")
    q.add_argument("files", nargs="+", metavar="FILE", help="result files of `kernels run`")
    q.add_argument("--ratio", metavar="A/B", help="also the app throughput ratio of kernel A to "
                                                  "kernel B per block size (e.g. 7.3/7.2)")
    q.add_argument("--json", action="store_true", help="the rows as JSON")
    q.set_defaults(func=cmd_folios)
    q = sub.add_parser("fetch", help="download and unpack kernels into the cache (never installed)")
    q.add_argument("kernels", nargs="?", help="comma-separated kernels (default: all)")
    q.add_argument("--quiet", action="store_true", help="no progress lines")
    q.set_defaults(func=cmd_fetch)
    q = sub.add_parser("run", help="boot KERNEL under qemu and run WORKLOAD on the project's "
                                   "server (comma lists or `all`: the matrix, one boot per run)")
    q.add_argument("kernel", help="kernels of `kernels list` (6.1, 6.12, 7.2, 7.3), comma-separated, "
                                  "or all")
    q.add_argument("workload", help="workloads, comma-separated")
    q.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1, one boot each (default 1)")
    q.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a workload or server parameter, as for a mount (repeatable)")
    q.add_argument("--update", action="store_true", help="look for a newer kernel package first")
    q.add_argument("--out", metavar="PATH", help="write the runs to this result file")
    q.add_argument("--force", action="store_true", help="replace --out if it exists")
    q.add_argument("--json", action="store_true", help="the run as JSON on stdout")
    q.add_argument("--keep", metavar="DIR",
                   help="save each guest's files (kernel symbols, FUSE knobs, folio trace, "
                        "dmesg, server log) under DIR/<kernel>-<workload>-<seed>-<n>/")
    q.add_argument("--no-folio-trace", dest="folio_trace", action="store_false",
                   help="do not trace the page-cache folios added over the run")
    q.add_argument("--trace", action="store_true",
                   help="sample the bdi's debugfs stats and /proc/vmstat too, and print the "
                        "flusher's passes (when they started, how many pages were dirty)")
    q.add_argument("--quiet", action="store_true", help="no progress lines")
    q.set_defaults(func=cmd_run)
    q = sub.add_parser("ab", help="interleaved runs of two kernels; measured ratios with spread, "
                                  "beside the simulated ratios of their strategies")
    q.add_argument("workload")
    q.add_argument("--kernels", default="6.1,7.2", help="two kernels (default 6.1,7.2)")
    q.add_argument("--runs", type=int, default=6, help="runs per kernel (default 6)")
    q.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a workload or server parameter (repeatable)")
    q.add_argument("--machine", metavar="NAME|PATH",
                   help="machine profile of the simulated ratios (default: the temp-page "
                        "guest's, qemu-<K>-2cpu-4g)")
    q.add_argument("--engine", choices=("c", "python"),
                   help="simulator engine (default c, python when the C engine is not built)")
    q.add_argument("--sim-param", action="append", metavar="KEY=VALUE",
                   help="a simulator parameter for the simulated ratios (repeatable): what-ifs")
    q.add_argument("--sim-timing", choices=("schedule", "measured", "both"), default="schedule",
                   help="when the simulator starts each row: at the op array's times (schedule, "
                        "the default), or no earlier than the guest started it (measured: each "
                        "strategy on its kernel's row start times; under TCG a guest runs late), "
                        "or both tables")
    q.add_argument("--json", action="store_true", help="the A/B table (ratios, simulated ratios "
                                                       "and verdicts, evidence) as JSON")
    q.add_argument("--out", metavar="PATH", help="write all runs (guests' and simulated) to "
                                                 "this result file")
    q.add_argument("--force", action="store_true", help="replace --out if it exists")
    q.add_argument("--quiet", action="store_true", help="no progress lines")
    q.set_defaults(func=cmd_ab)
    q = sub.add_parser("cost", help="the flusher's and the server's CPU per page and per WRITE "
                                    "in each guest (TCG time), and temp-page minus no-temp-page")
    q.add_argument("kernels", nargs="?", default="6.1,7.2",
                   help="comma-separated kernels (default 6.1,7.2)")
    q.add_argument("--rounds", type=int, default=3,
                   help="rounds; each boots every kernel once per layout (default 3)")
    q.add_argument("--pages", type=int, default=16384, help="pages written per boot (default 16384)")
    q.add_argument("--json", action="store_true", help="every run and term as JSON")
    q.add_argument("--quiet", action="store_true", help="no progress lines")
    q.set_defaults(func=cmd_cost)
    from . import uring
    uring.add_parser(sub)

