"""The simulator's own speed, measured with pyperf: C engine, Python engine, bare C loop.

`python -m bench speed` runs this module as a pyperf program in a child process
(pyperf owns its command line and spawns its own workers; its progress goes to stderr),
then reads the pyperf suite it wrote and prints medians and the two ratios the project
tracks against their targets (TARGETS): Python / C (>= 50x) and C / bare loop (<= 4x).
It exits 1 when a target is missed.  `--out PATH` keeps the pyperf JSON file, so
`python -m pyperf compare_to old.json new.json` compares two runs; `--json` prints the
medians, ratios, targets and verdict for other tools.

Two more sets of figures are reported beside them, not gated: the C engine's time against
the file's size at a fixed 4,096 page writes (SIZES: set-up and teardown should cost what
a run touches, not the file), and on the 1 GiB rand-write the engine against the floor of
its event queue, the same events pushed and popped by its queue code alone
(bench.sim.evfloor; the simulator issue's target: within 1.5x), with the events each of
the two goes through per second (the run's events are counted once, in this process).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

WORKLOAD = "rand-write"
STRATEGY = "merge-in-queue"
PARAMS = {"file_size": 64 << 20, "writes": 16384}     # 16,384 page writes over 64 MiB
NAMES = ("bare-loop", "c-engine", "python-engine")
# rand-write, 4,096 page writes over each file size: (benchmark name, bytes)
SIZE_WRITES = 4096
SIZES = (("c-engine-64MiB", 64 << 20), ("c-engine-1GiB", 1 << 30), ("c-engine-64GiB", 64 << 30))
# the engine against its event queue's floor: rand-write, 262,144 page writes over 1 GiB
FLOOR_PARAMS = {"file_size": 1 << 30, "writes": 262144}
FLOOR_NAMES = ("c-engine-1GiB-rand-write", "event-queue-floor")
FLOOR_TARGET = 1.5


def _runner_main() -> None:
    import pyperf

    from bench.sim import _cengine, refsim
    from bench import sim

    runner = pyperf.Runner(program_args=("-m", "bench.sim.speed"))
    runner.metadata["workload"] = f"{WORKLOAD} {PARAMS}"
    wl, cfg = sim.prepare(STRATEGY, WORKLOAD, 0, **PARAMS)
    runner.bench_func("bare-loop", _cengine.bare_loop, wl.ops, wl.file_sizes)
    runner.bench_func("c-engine", _cengine.simulate, cfg, wl.ops, wl.file_sizes, 0)
    runner.bench_func("python-engine", refsim.simulate, cfg, wl.ops, wl.file_sizes, 0)
    for name, size in SIZES:
        wl, cfg = sim.prepare(STRATEGY, WORKLOAD, 0, file_size=size, writes=SIZE_WRITES)
        runner.bench_func(name, _cengine.simulate, cfg, wl.ops, wl.file_sizes, 0)
    from bench.sim import evfloor
    wl, cfg = sim.prepare(STRATEGY, WORKLOAD, 0, **FLOOR_PARAMS)
    log = evfloor.record(cfg, wl.ops, wl.file_sizes, 0)
    runner.bench_func(FLOOR_NAMES[0], _cengine.simulate, cfg, wl.ops, wl.file_sizes, 0)
    runner.bench_func(FLOOR_NAMES[1], evfloor.replay, log)


# (label, numerator, denominator, ">=" or "<=", target): the ratios the project tracks.
TARGETS = (("Python / C", "python-engine", "c-engine", ">=", 50.0),
           ("C / bare loop", "c-engine", "bare-loop", "<=", 4.0))


def measure(fast: bool = True, out: str | None = None, single_value: bool = False,
            progress: bool = True) -> dict[str, float]:
    """Run the pyperf program in a child; {benchmark name: median seconds}.  With `out`, the
    pyperf JSON file is kept there (the caller checks that it may be written)."""
    import pyperf
    from bench.sim import _cengine
    if not _cengine.available():
        raise RuntimeError("speed: the C engine is not built (run `pip install -e .`)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "speed.json")
        mode = "--debug-single-value" if single_value else "--fast" if fast else "--rigorous"
        cmd = [sys.executable, "-m", "bench.sim.speed", mode, "-o", path]
        if not progress:
            cmd.append("--quiet")
        # pyperf's progress (one line per benchmark, a dot per worker) goes to our stderr, so
        # stdout stays the table or the JSON.
        p = subprocess.run(cmd, stdout=sys.stderr if progress else subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"speed: pyperf run failed: {tail}")
        if out:
            from bench.results.fileio import write_atomic
            with open(path, "rb") as f:
                write_atomic(out, f.read())
        suite = pyperf.BenchmarkSuite.load(path)
        return {b.get_name(): b.median() for b in suite.get_benchmarks()}


def verdicts(medians: dict[str, float]) -> list[dict]:
    """Each tracked ratio with its target and whether it is met."""
    out = []
    for label, num, den, op, target in TARGETS:
        ratio = medians[num] / medians[den]
        met = ratio >= target if op == ">=" else ratio <= target
        out.append({"ratio": label, "value": ratio, "target": f"{op} {target:g}x", "met": met})
    return out


def floor_events() -> int:
    """The events the engine pops on the floor's run (FLOOR_PARAMS), as many as the replay
    pops: deterministic, so counted once here, not in the timed runs."""
    from bench import sim
    from bench.sim import evfloor
    wl, cfg = sim.prepare(STRATEGY, WORKLOAD, 0, **FLOOR_PARAMS)
    return evfloor.record(cfg, wl.ops, wl.file_sizes, 0).popped


def floor_ratio(medians: dict[str, float]) -> float | None:
    """The engine's time over its event queue's floor, if both were measured."""
    if not all(n in medians for n in FLOOR_NAMES):
        return None
    return medians[FLOOR_NAMES[0]] / medians[FLOOR_NAMES[1]]


def render(medians: dict[str, float], events: int | None = None) -> str:
    lines = [f"{WORKLOAD} {PARAMS['writes']} page writes over {PARAMS['file_size'] >> 20} MiB, "
             f"{STRATEGY}, medians (pyperf)"]
    for name in NAMES:
        lines.append(f"  {name:14s} {medians[name] * 1e3:10.3f} ms")
    vs = verdicts(medians)
    for v in vs:
        lines.append(f"  {v['ratio']:14s} {v['value']:10.1f}x   target {v['target']:7s} "
                     f"{'met' if v['met'] else 'MISSED'}")
    if all(n in medians for n, _ in SIZES):
        lines.append(f"C engine, {SIZE_WRITES} page writes over a file of (not gated):")
        for name, size in SIZES:
            label = f"{size >> 30} GiB" if size >= 1 << 30 else f"{size >> 20} MiB"
            lines.append(f"  {label:14s} {medians[name] * 1e3:10.3f} ms")
    ratio = floor_ratio(medians)
    if ratio is not None:
        lines.append(f"{WORKLOAD} {FLOOR_PARAMS['writes']} page writes over "
                     f"{FLOOR_PARAMS['file_size'] >> 30} GiB, the engine against its event queue "
                     "alone (not gated):")
        for name in FLOOR_NAMES:
            lines.append(f"  {name:24s} {medians[name] * 1e3:10.3f} ms")
        lines.append(f"  {'engine / floor':24s} {ratio:10.1f}x   target <= {FLOOR_TARGET:g}x "
                     f"{'met' if ratio <= FLOOR_TARGET else 'not met'}")
        if events:
            lines.append(f"  {events:,} events popped: engine {events / medians[FLOOR_NAMES[0]] / 1e6:.1f} M/s, "
                         f"queue alone {events / medians[FLOOR_NAMES[1]] / 1e6:.1f} M/s")
    missed = [v["ratio"] for v in vs if not v["met"]]
    lines.append("speed: " + ("PASS: every target met" if not missed else
                              f"FAIL: missed {', '.join(missed)}"))
    return "\n".join(lines) + "\n"


def as_json(medians: dict[str, float], out: str | None, events: int | None = None) -> dict:
    vs = verdicts(medians)
    doc = {"workload": WORKLOAD, "strategy": STRATEGY, "params": PARAMS,
           "medians_s": {n: medians[n] for n in NAMES}, "ratios": vs,
           "pass": all(v["met"] for v in vs), "pyperf_json": out}
    if all(n in medians for n, _ in SIZES):
        doc["file_size_s"] = {"writes": SIZE_WRITES,
                              "medians_s": {str(size): medians[n] for n, size in SIZES}}
    ratio = floor_ratio(medians)
    if ratio is not None:
        doc["event_floor"] = {"params": FLOOR_PARAMS,
                              "medians_s": {n: medians[n] for n in FLOOR_NAMES},
                              "engine_over_floor": ratio, "target": f"<= {FLOOR_TARGET:g}x"}
        if events:
            doc["event_floor"]["events"] = events
            doc["event_floor"]["events_per_s"] = {n: events / medians[n] for n in FLOOR_NAMES}
    return doc


def cmd_speed(args: argparse.Namespace) -> int:
    out = getattr(args, "out", None)
    if out:
        from bench.results.fileio import check_writable
        check_writable(out, args.force)
    if not args.quiet:
        print("speed: pyperf runs the bare loop, the C engine and the Python engine, each in "
              "worker processes (a line per benchmark when it is done, a dot per worker)",
              file=sys.stderr)
    medians = measure(fast=not args.rigorous, out=out, single_value=args.single_value,
                      progress=not args.quiet)
    events = floor_events() if floor_ratio(medians) is not None else None
    if args.json:
        json.dump(as_json(medians, out, events), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(medians, events))
    if out and not args.quiet:
        print(f"pyperf JSON: {out} (python -m pyperf compare_to OLD.json {out})", file=sys.stderr)
    return 0 if all(v["met"] for v in verdicts(medians)) else 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rigorous", action="store_true", help="more pyperf processes and values")
    p.add_argument("--single-value", action="store_true",
                   help="one process, one value per benchmark (pyperf --debug-single-value): "
                        "a smoke test, not a measurement")
    p.add_argument("-o", "--out", metavar="PATH",
                   help="keep pyperf's JSON file there (for python -m pyperf compare_to)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--json", action="store_true",
                   help="medians, ratios, targets and the verdict as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


if __name__ == "__main__":
    _runner_main()
