"""Command line: ``python -m bench VERB ...``.

One sub-parser per verb, each dispatched to a short ``cmd_*`` function that
imports its module lazily (``import bench`` stays light).  Bad input becomes
one ``ERROR: ...`` line and exit status 2.
"""
from __future__ import annotations

if __name__ == "__main__":      # before any other import: a Ctrl-C at start-up is one line
    from bench import interrupt as _interrupt
    _interrupt.install()

import argparse
import contextlib
import json
import os
import sys

from bench.cli import (Parser, add_machine_option, add_sweep_arguments, check_seeds,
                       parse_pairs, pick_names)


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.results import compare, stats
    from bench import results
    failed = ""
    if args.files:
        if len(args.files) != 2:
            raise ValueError("compare: give two result files (OLD.json NEW.json) or none")
        if args.out is not None:
            raise ValueError("--out: compare OLD.json NEW.json writes no result file (it reads "
                             "two); --out is for a sweep")
        from bench.results import store
        old, new = (store.load_any(f) for f in args.files)     # JSON files or sweep stores
        results.warn_partial(zip(args.files, (old, new)))
        rows = compare.rows_between(old, new)
        title = lambda w: f"{w}: {args.files[1]} against {args.files[0]}"  # noqa: E731
    else:
        from bench.results import provenance
        from bench import sim
        from bench.sim import machine, params as sim_params, sweep
        active = machine.use(args)
        strategies = pick_names(args.strategies, sim.strategies(), "--strategies")
        workloads = pick_names(args.workloads, sim.workloads(), "--workloads") if args.workloads \
            else compare.DEFAULT_SUITE
        check_seeds(args.seeds)
        if args.baseline not in strategies:
            raise ValueError(f"--baseline: {args.baseline!r} is not among the strategies run "
                             f"({', '.join(strategies)})")
        max_jobs = 4 * (os.cpu_count() or 1)
        if args.jobs is not None and not 1 <= args.jobs <= max_jobs:
            raise ValueError(f"--jobs: must be in 1..{max_jobs} (4 per CPU), got {args.jobs}")
        out_path = args.out or compare.latest_path()   # the checkout's results/, else the user's
        results.check_writable(out_path, args.force or not args.out)
        with results.output_lock(out_path):     # a second run on the same --out: one error line
            params = parse_pairs(args.param)
            failed_runs: list[dict] = []        # a partial file lists the runs it lacks
            # the seeds' test needs scipy.stats: its import overlaps the runs
            loading: list = []
            runs = sweep.sweep(strategies, workloads, range(args.seeds), args.engine, params,
                               jobs=args.jobs, progress=not args.quiet,
                               started=(lambda: loading.append(stats.preload_test()))
                               if args.seeds >= compare.MIN_SEEDS_FOR_TEST else None)
            for t in loading:
                t.join()        # before the mount runs, which want a quiet machine
            if not args.no_mount:       # after the pool is done, so the mount runs on a quiet machine
                from bench.real import validate
                mounted = [w for w in workloads if w in validate.MOUNT_SUITE]
                mruns, why = validate.mount_runs(mounted, range(args.seeds), params,
                                                 progress=not args.quiet, failed=failed_runs)
                runs = runs + mruns
                if why.startswith("real mount failed"):
                    failed = why        # a dead or stuck server: said again last, and exit 1
                elif why:
                    print(why, file=sys.stderr)
                skipped = [w for w in workloads if w not in validate.MOUNT_SUITE]
                if skipped and not why and not args.quiet:
                    print(f"real mount: not run for {', '.join(skipped)} (too slow or too large "
                          f"to run beside the simulator)", file=sys.stderr)
            suite = results.Suite(provenance.collect(engine=args.engine, seeds=args.seeds,
                                                     params=params, command="compare",
                                                     machine=sim_params.machine_provenance(),
                                                     **({"failed_runs": failed_runs}
                                                        if failed_runs else {})), runs)
            out = results.dump(suite, out_path, overwrite=args.force or not args.out)
            if not args.quiet:
                print(f"results: {out}", file=sys.stderr)
        rows = compare.rows(suite, args.baseline)
        title = lambda w: (f"{w}: {args.seeds} seed(s), {args.engine} engine, "  # noqa: E731
                           f"base {args.baseline}, machine {machine.label(active)}")
    if args.json:
        json.dump([r.as_dict() for r in rows], sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif not args.files:
        sys.stdout.write(compare.render_verdicts(suite, color=sys.stdout.isatty()))
        if not args.brief:
            sys.stdout.write("\n" + compare.render(rows, title))
    else:
        sys.stdout.write(compare.render(rows, title))
    if failed:
        # The simulated rows are written and shown; the kernel's are missing, and that is an error.
        sys.stdout.flush()
        print(f"ERROR: {failed} (the result file lists the missing runs in "
              f"metadata.failed_runs)", file=sys.stderr)
        return 1
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from bench.results import gate, store
    from bench import results
    base, head = store.load_any(args.baseline), store.load_any(args.candidate)
    results.warn_partial([(args.baseline, base), (args.candidate, head)])
    thresholds = gate.parse_thresholds(args.threshold)
    changes = gate.compare(base, head, thresholds, args.default_threshold,
                           allow_profile_change=args.allow_profile_change, strict=args.strict,
                           match_params=args.match_params)
    unmatched = gate.match(base, head, args.match_params)[2]
    if args.json:
        json.dump(gate.as_json(changes, args.default_threshold, unmatched), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(gate.render(changes, args.default_threshold, unmatched, args.match_params))
    return 1 if any(c.verdict == "regression" for c in changes) else 0


def cmd_report(args: argparse.Namespace) -> int:
    from bench.results import report  # loads seaborn: only this verb pays for it
    if args.history and args.files:
        raise ValueError("report: give result files or --history DIR, not both")
    loaded = report.history(args.history) if args.history else None
    files = [p for p, _ in loaded] if loaded else args.files
    if not files:
        raise ValueError("report: give at least one result file, or --history DIR")
    index = report.build(files, args.output, [s for _, s in loaded] if loaded else None)
    print(f"dashboard: {index}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from pathlib import Path
    from bench import results
    from bench.results import compare, store
    from bench.sim import sweeprun, sweepspec
    spec = sweepspec.load(args.spec)
    executor = args.executor or ("dask" if args.scheduler else "local")
    if args.scheduler and executor != "dask":
        raise ValueError("--scheduler: a Dask scheduler's address goes with --executor dask")
    if args.scheduler and args.jobs is not None:
        raise ValueError("--jobs: with --scheduler the cluster's workers run the sweep")
    max_jobs = 4 * (os.cpu_count() or 1)
    if args.jobs is not None and not 1 <= args.jobs <= max_jobs:
        raise ValueError(f"--jobs: must be in 1..{max_jobs} (4 per CPU), got {args.jobs}")
    out = args.out or str(Path(compare.latest_path()).parent / "sweeps" / Path(args.spec).stem)
    store.check_store(out)
    with results.output_lock(out):     # a second sweep into the same store: one error line
        got = sweeprun.run(spec, out, executor, jobs=args.jobs, scheduler=args.scheduler,
                           progress=not args.quiet)
    print(f"sweep: {got.total} runs in {args.spec}: {got.stored} already in the store, "
          f"{got.computed} computed ({executor}, {got.parts} part file(s)); store: {out}")
    return 0


def cmd_speed(args: argparse.Namespace) -> int:
    from bench.sim import speed
    return speed.cmd_speed(args)


def cmd_list(args: argparse.Namespace) -> int:
    from bench.sim import listing, machine
    machine.use(args)
    sys.stdout.write(listing.render_list())
    return 0


def main(argv: list[str] | None = None) -> int:
    from bench import interrupt
    if argv is None and not interrupt.installed():
        interrupt.install()         # the console script: a program too (see the top)
    # the console script `bench` (pyproject's [project.scripts]) is the same program
    prog = "bench" if os.path.basename(sys.argv[0] or "") == "bench" else "python -m bench"
    parser = Parser(prog=prog,
                                     description="What each FUSE writeback strategy costs.")
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("compare", help="run strategies over workloads (or compare two result "
                                         "files) and print a table per workload")
    p.add_argument("files", nargs="*", metavar="RESULT.json", help="OLD.json NEW.json to compare")
    p.add_argument("--strategies", help="comma-separated strategy names (default: all)")
    p.add_argument("--workloads", help="comma-separated workload names (default: the standard suite)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per (strategy, workload) (default 5)")
    p.add_argument("--baseline", default="merge-in-queue", help="strategy the others are compared with")
    p.add_argument("--engine", choices=("c", "python"), default="c")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a model, server, strategy or workload parameter (repeatable)")
    p.add_argument("--jobs", type=int, help="worker processes (default: all cores)")
    p.add_argument("--out", default=None,
                   help="where to write the result file (default: results/latest.json of the "
                        "checkout you are in, else of the user's data directory; replaced each "
                        "run; the path is printed)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--no-mount", action="store_true",
                   help="no real-mount rows (by default they are added when a mount is possible)")
    p.add_argument("--json", action="store_true", help="machine-readable rows on stdout")
    p.add_argument("--brief", action="store_true",
                   help="only the verdict per workload, not the detail tables")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_machine_option(p)
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("gate", help="exit 1 if CANDIDATE regressed against BASELINE (2 on error)")
    p.add_argument("baseline", metavar="BASELINE.json")
    p.add_argument("candidate", metavar="CANDIDATE.json")
    p.add_argument("--threshold", action="append", metavar="METRIC=PCT",
                   help="allowed change of one metric in percent (repeatable)")
    p.add_argument("--default-threshold", type=float, default=5.0, metavar="PCT",
                   help="allowed change of the other metrics (default 5; correctness counters 0)")
    p.add_argument("--allow-profile-change", action="store_true",
                   help="gate files made with different machine profiles or engines")
    p.add_argument("--strict", action="store_true",
                   help="an error (exit 2) when a run is in one file only (by default those are "
                        "listed and the runs in both files are gated)")
    p.add_argument("--match-params", choices=("exact", "ignore"), default="exact",
                   help="ignore: a run matches the other file's run of the same strategy, "
                        "workload, seed and engine whatever its params (a candidate made with "
                        "--param against a baseline made without); default exact")
    p.add_argument("--json", action="store_true",
                   help="the verdict, every gated metric and the runs not gated, as JSON")
    p.set_defaults(func=cmd_gate)
    p = sub.add_parser("report", help="write a static dashboard site from result files")
    p.add_argument("files", nargs="*", metavar="RESULT.json")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the site")
    p.add_argument("--history", metavar="DIR",
                   help="the result files (*.json) and sweep stores of successive commits in DIR, "
                        "oldest first by "
                        "their date: trend pages, and each regression named by the commit that "
                        "brought it")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("sweep", help="run a declarative grid of runs (SPEC.toml) into a "
                                     "Parquet result store, resuming where it stopped")
    add_sweep_arguments(p)
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("speed", help="measure the simulator's own speed with pyperf (exit 1 "
                                     "when a target is missed)")
    from bench.sim.speed import add_arguments as speed_arguments   # light: no pyperf import
    speed_arguments(p)
    p.set_defaults(func=cmd_speed)
    from bench.real import calibrate, trace, validate
    trace.add_parsers(sub)           # record, replay
    calibrate.add_parsers(sub)
    validate.add_parsers(sub)
    from bench.real.kernels import commands as kernels
    kernels.add_parsers(sub)         # kernels list|fetch|run|ab
    p = sub.add_parser("list", help="list strategies, workloads, machine profiles and parameters "
                                    "with the active machine's values")
    add_machine_option(p)
    p.set_defaults(func=cmd_list)
    args = parser.parse_args(argv)
    try:
        with contextlib.ExitStack() as stack:
            if interrupt.installed():
                interrupt.arm()     # SIGINT, SIGTERM, SIGHUP raise Interrupted: cleanup runs
            else:
                stack.enter_context(interrupt.handling())   # called in-process
            rc = args.func(args)
        sys.stdout.flush()          # a closed pipe shows here, inside the handlers below
        return rc
    except (ValueError, RuntimeError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader closed the pipe (``| head``): not an error.  Point stdout at /dev/null so
        # the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"ERROR: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except interrupt.Interrupted as exc:
        interrupt.ending()
        print(f"ERROR: {exc.line()}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("ERROR: interrupted by SIGINT", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
