"""Where a sweep's time goes: the parent against the runs, the runs against the engine.

`python -m bench.sim.sweepcost SPEC.toml [--out STORE]` runs the sweep with one job, in
this process (bench.sim.sweeprun's local executor with --jobs 1 runs every batch here),
and times four nested spans with time.perf_counter:

  wall      the whole sweeprun.run call: expanding and checking the spec, reading the
            store's keys, the timing runs, the batches and writing every part file;
  batches   inside run_batch, what a worker does: per run, the workload, the
            configuration, the engine, the metrics and the store row;
  simulate  inside bench.sim._cengine.simulate: the C engine's call with its result
            turned into Python values;
  engine    inside the C engine itself (lib.fwb_run);

and, of the parent's share, `expand` (the spec's grid and its checks) and `writes` (the
part files, bench.results.store.append).

It prints each and two overheads, both as a share of the engine's time:
  parent  (wall - batches) / engine: what the sweep's parent adds to its runs;
  runs    (batches - engine) / engine: the Python of a worker around each run.
With more jobs the parent's work is the same and runs beside the workers, so one job
measures it without the noise of process scheduling.

`--jobs N` (with `--executor local|dask`) runs the sweep as `sweep` does instead and times
the whole call and the parent's own CPU (its process, threads included: the Dask
scheduler of a LocalCluster runs there); the workers' spans are not seen from here.
The store goes to a temporary directory unless --out is given (an existing store's runs
are skipped, as by `sweep`).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import contextmanager


@contextmanager
def _timed(module, name: str, totals: dict, key: str):
    """Wrap module.name so that its calls add their time to totals[key]."""
    inner = getattr(module, name)

    def wrapper(*args, **kw):
        t = time.perf_counter()
        try:
            return inner(*args, **kw)
        finally:
            totals[key] += time.perf_counter() - t
    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, inner)


class _TimedLib:
    """The cffi lib with fwb_run timed into totals[key]; every other name passed through."""

    def __init__(self, lib, totals: dict, key: str):
        self._lib, self._totals, self._key = lib, totals, key

    def fwb_run(self, *args):
        t = time.perf_counter()
        try:
            return self._lib.fwb_run(*args)
        finally:
            self._totals[self._key] += time.perf_counter() - t

    def __getattr__(self, name):
        return getattr(self._lib, name)


@contextmanager
def _timed_lib(module, totals: dict, key: str):
    inner = module.lib
    module.lib = _TimedLib(inner, totals, key)
    try:
        yield
    finally:
        module.lib = inner


def measure(spec_path: str, out: str | None = None) -> dict:
    """Run the spec with one job here; the spans in seconds and the shares."""
    from bench.results import store
    from bench.sim import _cengine, sweeprun, sweepspec
    spec = sweepspec.load(spec_path)
    totals = {"batches": 0.0, "simulate": 0.0, "engine": 0.0, "expand": 0.0, "writes": 0.0}
    with tempfile.TemporaryDirectory() as tmp, \
            _timed(sweeprun, "run_batch", totals, "batches"), \
            _timed(_cengine, "simulate", totals, "simulate"), \
            _timed_lib(_cengine, totals, "engine"), \
            _timed(sweepspec, "expand", totals, "expand"), \
            _timed(store, "append", totals, "writes"):
        t = time.perf_counter()
        outcome = sweeprun.run(spec, out or f"{tmp}/store", "local", jobs=1, progress=False)
        wall = time.perf_counter() - t
    eng = totals["engine"] or float("nan")
    return {"spec": spec_path, "jobs": 1, "executor": "local", "runs": outcome.computed,
            "parts": outcome.parts, "wall_s": wall, "batches_s": totals["batches"],
            "simulate_s": totals["simulate"], "engine_s": totals["engine"],
            "expand_s": totals["expand"], "writes_s": totals["writes"],
            "parent_over_engine": (wall - totals["batches"]) / eng,
            "runs_over_engine": (totals["batches"] - totals["engine"]) / eng}


def measure_jobs(spec_path: str, jobs: int, executor: str = "local",
                 out: str | None = None) -> dict:
    """Run the spec as `sweep --jobs N` does: its wall time and the parent's own CPU time."""
    from bench.sim import sweeprun, sweepspec
    spec = sweepspec.load(spec_path)
    with tempfile.TemporaryDirectory() as tmp:
        t, cpu = time.perf_counter(), time.process_time()
        outcome = sweeprun.run(spec, out or f"{tmp}/store", executor, jobs=jobs, progress=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"spec": spec_path, "jobs": jobs, "executor": executor, "runs": outcome.computed,
            "parts": outcome.parts, "wall_s": wall, "parent_cpu_s": cpu}


def render(m: dict) -> str:
    head = f"{m['spec']}: {m['runs']} runs computed, {m['parts']} part files"
    if "engine_s" not in m:
        return "\n".join([
            f"{head}, {m['executor']} executor, {m['jobs']} jobs",
            f"  wall             {m['wall_s']:9.2f} s",
            f"  the parent's CPU {m['parent_cpu_s']:9.2f} s",
        ]) + "\n"
    return "\n".join([
        f"{head}, one job",
        f"  wall             {m['wall_s']:9.2f} s",
        f"  in run_batch     {m['batches_s']:9.2f} s",
        f"  in simulate      {m['simulate_s']:9.2f} s",
        f"  in the C engine  {m['engine_s']:9.2f} s",
        f"  of the parent's: expand {m['expand_s']:.2f} s, part files {m['writes_s']:.2f} s",
        f"  parent (wall - run_batch) / engine   {100 * m['parent_over_engine']:6.1f} %",
        f"  runs (run_batch - engine) / engine   {100 * m['runs_over_engine']:6.1f} %",
    ]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sim.sweepcost",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("spec", help="the sweep spec (TOML)")
    ap.add_argument("--out", help="the store (default: a temporary directory, removed)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="more than 1: run as `sweep` does and time the whole and the parent's CPU")
    ap.add_argument("--executor", default="local", choices=("local", "dask"))
    ap.add_argument("--json", action="store_true", help="the figures as JSON")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error("--jobs: must be at least 1")
    if args.jobs == 1 and args.executor == "local":
        m = measure(args.spec, args.out)
    else:
        m = measure_jobs(args.spec, args.jobs, args.executor, args.out)
    if args.json:
        json.dump(m, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
