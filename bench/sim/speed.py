"""The simulator's own speed, measured with pyperf: C engine, Python engine, bare C loop.

`python -m bench speed` runs this module as a pyperf program in a child process
(pyperf owns its command line and spawns its own workers; its progress goes to stderr),
then reads the pyperf suite it wrote and prints medians and the two ratios the project
tracks against their targets (TARGETS): Python / C (>= 50x) and C / bare loop (<= 4x).
It exits 1 when a target is missed.  `--out PATH` keeps the pyperf JSON file, so
`python -m pyperf compare_to old.json new.json` compares two runs; `--json` prints the
medians, ratios, targets and verdict for other tools.
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


def render(medians: dict[str, float]) -> str:
    lines = [f"{WORKLOAD} {PARAMS['writes']} page writes over {PARAMS['file_size'] >> 20} MiB, "
             f"{STRATEGY}, medians (pyperf)"]
    for name in NAMES:
        lines.append(f"  {name:14s} {medians[name] * 1e3:10.3f} ms")
    vs = verdicts(medians)
    for v in vs:
        lines.append(f"  {v['ratio']:14s} {v['value']:10.1f}x   target {v['target']:7s} "
                     f"{'met' if v['met'] else 'MISSED'}")
    missed = [v["ratio"] for v in vs if not v["met"]]
    lines.append("speed: " + ("PASS: every target met" if not missed else
                              f"FAIL: missed {', '.join(missed)}"))
    return "\n".join(lines) + "\n"


def as_json(medians: dict[str, float], out: str | None) -> dict:
    vs = verdicts(medians)
    return {"workload": WORKLOAD, "strategy": STRATEGY, "params": PARAMS,
            "medians_s": {n: medians[n] for n in NAMES}, "ratios": vs,
            "pass": all(v["met"] for v in vs), "pyperf_json": out}


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
    if args.json:
        json.dump(as_json(medians, out), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(medians))
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
