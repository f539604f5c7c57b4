"""The simulator's own speed, measured with pyperf: C engine, Python engine, bare C loop.

`python -m bench speed` runs this module as a pyperf program in a child process
(pyperf owns its command line and spawns its own workers), then reads the
pyperf suite it wrote and prints medians and the two ratios the project tracks:
Python / C (target >= 50x) and C / bare loop (target <= 4x).
"""
from __future__ import annotations

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


def measure(fast: bool = True) -> dict[str, float]:
    """Run the pyperf program in a child; {benchmark name: median seconds}."""
    import pyperf
    from bench.sim import _cengine
    if not _cengine.available():
        raise RuntimeError("speed: the C engine is not built (run `pip install -e .`)")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "speed.json")
        cmd = [sys.executable, "-m", "bench.sim.speed", "--fast" if fast else "--rigorous",
               "--quiet", "-o", out]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"speed: pyperf run failed: {tail}")
        suite = pyperf.BenchmarkSuite.load(out)
        return {b.get_name(): b.median() for b in suite.get_benchmarks()}


def render(medians: dict[str, float]) -> str:
    lines = [f"{WORKLOAD} {PARAMS['writes']} page writes over {PARAMS['file_size'] >> 20} MiB, "
             f"{STRATEGY}, medians (pyperf)"]
    for name in NAMES:
        lines.append(f"  {name:14s} {medians[name] * 1e3:10.3f} ms")
    c, py, bare = medians["c-engine"], medians["python-engine"], medians["bare-loop"]
    lines.append(f"  Python / C     {py / c:10.1f}x   (target >= 50x)")
    lines.append(f"  C / bare loop  {c / bare:10.1f}x   (target <= 4x)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    _runner_main()
