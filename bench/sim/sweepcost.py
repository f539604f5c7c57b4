"""Where a sweep's time goes: the parent against the runs, the runs against the engine.

`python -m bench.sim.sweepcost SPEC.toml [--out STORE]` runs the sweep with one job, in
this process (bench.sim.sweeprun's local executor with --jobs 1 runs every batch here),
and times three nested spans with time.perf_counter:

  wall      the whole sweeprun.run call: expanding and checking the spec, reading the
            store's keys, the timing runs, the batches and writing every part file;
  batches   inside run_batch, what a worker does: per run, the workload, the engine,
            the metrics and the store row;
  engine    inside the C engine's call (bench.sim._cengine.simulate);

and, of the parent's share, `expand` (the spec's grid and its checks) and `writes` (the
part files, bench.results.store.append).

It prints each, the parent's overhead (wall - batches) and the runs' own overhead
(batches - engine), both as a share of the engine's time.  With more jobs the parent's
work is the same and runs beside the workers, so one job measures it without the noise
of process scheduling.  The store goes to a temporary directory unless --out is given
(an existing store's runs are skipped, as by `sweep`).
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


def measure(spec_path: str, out: str | None = None) -> dict:
    """Run the spec with one job here; the spans in seconds and the shares."""
    from bench.results import store
    from bench.sim import _cengine, sweeprun, sweepspec
    spec = sweepspec.load(spec_path)
    totals = {"batches": 0.0, "engine": 0.0, "expand": 0.0, "writes": 0.0}
    with tempfile.TemporaryDirectory() as tmp, \
            _timed(sweeprun, "run_batch", totals, "batches"), \
            _timed(_cengine, "simulate", totals, "engine"), \
            _timed(sweepspec, "expand", totals, "expand"), \
            _timed(store, "append", totals, "writes"):
        t = time.perf_counter()
        outcome = sweeprun.run(spec, out or f"{tmp}/store", "local", jobs=1, progress=False)
        wall = time.perf_counter() - t
    eng = totals["engine"] or float("nan")
    return {"spec": spec_path, "runs": outcome.computed, "parts": outcome.parts,
            "wall_s": wall, "batches_s": totals["batches"], "engine_s": totals["engine"],
            "expand_s": totals["expand"], "writes_s": totals["writes"],
            "parent_over_engine": (wall - totals["batches"]) / eng,
            "runs_over_engine": (totals["batches"] - totals["engine"]) / eng}


def render(m: dict) -> str:
    return "\n".join([
        f"{m['spec']}: {m['runs']} runs computed, {m['parts']} part files, one job",
        f"  wall             {m['wall_s']:9.2f} s",
        f"  in run_batch     {m['batches_s']:9.2f} s",
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
    ap.add_argument("--json", action="store_true", help="the figures as JSON")
    args = ap.parse_args(argv)
    m = measure(args.spec, args.out)
    if args.json:
        json.dump(m, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
