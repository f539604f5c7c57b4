"""pytest-benchmark: what drawn service times cost a run of the C engine.

Exponential and lognormal service draw from splitmix64 and the engines' det_log /
det_exp on every request (issue 12); fixed service draws nothing.  For each workload the
three are run alternately in the same session (the machine is shared), and the medians'
ratios against fixed are printed and kept in the benchmark's extra_info.  The
benchmark's own timing is the lognormal run's.
"""
import statistics
import time

import pytest

from bench import sim
from bench.sim import _cengine

DISTS = ("fixed", "exponential", "lognormal")
WORKLOADS = {"dio-redirty": {}, "rand-write-1GiB": {"file_size": 1 << 30}}
ROUNDS = 15


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_service_draws_against_fixed(benchmark, capsys, name):
    workload = name.removesuffix("-1GiB")
    runs = {d: sim.prepare("merge-in-queue", workload, 0, server_dist=d, **WORKLOADS[name]) for d in DISTS}
    times: dict[str, list[float]] = {d: [] for d in DISTS}
    for _ in range(ROUNDS):
        for d in DISTS:
            wl, cfg = runs[d]
            t0 = time.perf_counter()
            out = _cengine.simulate(cfg, wl.ops, wl.file_sizes, 0)
            times[d].append(time.perf_counter() - t0)
            assert out["counters"]["requests"] > 0
    med = {d: statistics.median(times[d]) for d in DISTS}
    for d in DISTS[1:]:
        benchmark.extra_info[f"{d}/fixed"] = med[d] / med["fixed"]
    wl, cfg = runs["lognormal"]
    benchmark.pedantic(_cengine.simulate, args=(cfg, wl.ops, wl.file_sizes, 0), rounds=5, warmup_rounds=1)
    with capsys.disabled():
        print(f"\n{name}: fixed {med['fixed'] * 1e3:.2f} ms, exponential / fixed "
              f"{med['exponential'] / med['fixed']:.3f}, lognormal / fixed "
              f"{med['lognormal'] / med['fixed']:.3f} (medians of {ROUNDS}, alternating)")
