"""Peak memory of long runs: ``python -m bench.sim.streammem [WRITES ...]``.

Each run is the C engine's temp-naive on rand-write (4 KiB writes drawn uniformly over a 1 GiB
file, then fsync) with WRITES writes, in a fresh child process, so that the peak resident set
printed (getrusage's ru_maxrss of the child) is that run's own, beside its wall time.  Every run
but the first streams its rows (bench.sim.stream), including those short enough for an array;
the first (10**6 writes by default) is the array run of the same rows, for comparison.  A
streamed run's memory does not grow with its rows: the engine holds a chunk of rows per thread
and at most 2**22 samples per latency set (bench.sim.lathist).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

DEFAULT = (10**6, 10**6, 10**7, 10**8)


def child(writes: int, streamed: bool) -> dict:
    """One run in this process: its rows, wall time and peak RSS (MiB)."""
    from bench import sim
    from bench.sim import workload
    if streamed:
        workload.STREAM_ROWS = 0
    t0 = time.perf_counter()
    wl = workload.make("rand-write", writes=writes, file_size=1 << 30)
    sim.run("temp-naive", wl)
    wall = time.perf_counter() - t0
    rows = wl.stream.n_ops if streamed else len(wl.ops)
    return {"writes": writes, "rows": rows, "streamed": streamed, "wall_s": round(wall, 2),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sim.streammem", description=__doc__.split(
        "\n")[0])
    ap.add_argument("writes", nargs="*", type=int, default=list(DEFAULT),
                    help="writes of each run; the first is run as an array (default: "
                         f"{' '.join(map(str, DEFAULT))})")
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], bool(args.child[1]))))
        return 0
    print(f"{'writes':>11} {'rows':>11} {'form':>7} {'wall s':>8} {'peak RSS MiB':>13}")
    for i, writes in enumerate(args.writes):
        done = subprocess.run([sys.executable, "-m", "bench.sim.streammem", "--child",
                               str(writes), str(int(i > 0))], capture_output=True, text=True)
        if done.returncode:
            sys.stderr.write(done.stderr)
            return 1
        r = json.loads(done.stdout)
        print(f"{r['writes']:>11} {r['rows']:>11} {'stream' if r['streamed'] else 'array':>7} "
              f"{r['wall_s']:>8} {r['peak_rss_mib']:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
