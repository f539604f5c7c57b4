"""The C core's speed as a deterministic instruction count: valgrind --tool=callgrind.

Wall-clock time on a shared 2-core machine is noise; the number of instructions
fwb_run executes on a fixed input is not (the same binary, input and libc give
the same count whatever else runs).  `python -m bench.sim.callgrind --record`
stores the count in results/callgrind.json; `python -m bench.sim.callgrind` (and
tests/test_callgrind.py in CI) fails when it grew by more than 2%.  The count
belongs to one compiler: with another one the comparison is skipped, and says so.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "results" / "callgrind.json"
# The table's defaults whatever machine profile is active (a new profile must not read as a
# code regression), on 2 CPUs with the server on one, so the CPU model runs too.
FIXED = {"strategy": "merge-in-queue", "workload": "rand-write", "seed": 0,
         "params": {"file_size": 64 << 20, "writes": 16384, "cpus": 2, "server_cpus": 1}}
MAX_GROWTH = 0.02
# The extension's flags (bench/sim/_build_sim.py), so the count is the installed engine's.
CFLAGS = ["-std=c99", "-O2", "-ffp-contract=off", "-fno-strict-aliasing"]


def compiler() -> str:
    cc = os.environ.get("CC", "cc")
    out = subprocess.run([cc, "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0].strip() if out.returncode == 0 else "unknown"


def count() -> int:
    """Instructions executed inside fwb_run on the fixed input."""
    from bench.sim import _cengine, params as _params
    from bench import sim
    if shutil.which("valgrind") is None:
        raise RuntimeError("callgrind: valgrind is not installed (apt-get install valgrind)")
    table = {p.name: p.default for p in _params.PARAMS}
    wl, cfg = sim.prepare(FIXED["strategy"], FIXED["workload"], FIXED["seed"],
                          **{**table, **FIXED["params"]})
    with tempfile.TemporaryDirectory() as tmp:
        exe, inp, out = Path(tmp, "fwb_driver"), Path(tmp, "input.bin"), Path(tmp, "cg.out")
        sources = sorted(str(p) for p in (ROOT / "csrc").glob("*.c"))
        build = subprocess.run([os.environ.get("CC", "cc"), *CFLAGS, f"-I{ROOT / 'csrc'}", *sources,
                                str(ROOT / "tests" / "c" / "asan_driver.c"), "-lm", "-o", str(exe)],
                               capture_output=True, text=True)
        if build.returncode != 0:
            raise RuntimeError(f"callgrind: build failed: {build.stderr.strip().splitlines()[-1]}")
        inp.write_bytes(_cengine.driver_input(cfg, wl.ops, wl.file_sizes, FIXED["seed"]))
        run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                              "--toggle-collect=fwb_run", str(exe), str(inp)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"callgrind: the run failed: {run.stderr.strip().splitlines()[-1]}")
        m = re.search(r"^(?:summary|totals):\s+(\d+)", out.read_text(), re.M)
        if not m:
            raise RuntimeError("callgrind: no instruction total in its output")
        return int(m.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sim.callgrind", description=__doc__.splitlines()[0])
    ap.add_argument("--record", action="store_true", help=f"store the count in {STORE}")
    args = ap.parse_args(argv)
    try:
        n = count()
        cc = compiler()
        if args.record:
            STORE.write_text(json.dumps({"instructions": n, "compiler": cc, **FIXED}, indent=1) + "\n")
            print(f"recorded {n} instructions ({cc})")
            return 0
        stored = json.loads(STORE.read_text())
        if stored["compiler"] != cc:
            print(f"skipped: stored count is for {stored['compiler']!r}, this is {cc!r}")
            return 0
        growth = n / stored["instructions"] - 1
        verdict = "REGRESSION" if growth > MAX_GROWTH else "OK"
        print(f"{verdict}: {n} instructions in fwb_run, {growth:+.2%} against {stored['instructions']} "
              f"(limit +{MAX_GROWTH:.0%})")
        return 1 if verdict == "REGRESSION" else 0
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
