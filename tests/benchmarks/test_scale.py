"""pytest-benchmark: the C engine at scale, its event queue's floor, a sweep's throughput.

- time against file size at a fixed 4,096 page writes (64 MiB, 1 GiB, 64 GiB): set-up
  and teardown should cost what a run touches;
- the 1 GiB rand-write (262,144 page writes) against the same events pushed and popped by
  the engine's queue code alone (bench.sim.evfloor; target within 1.5x), and the events per second of each;
- runs per second per core of a 400-run sweep into a fresh store, on --jobs 1, --jobs 2
  and a 2-worker Dask LocalCluster (started and closed inside each round, as `sweep` does).

conftest.py prints the figures side by side at the end.
"""
import os

import pytest

from bench import sim
from bench.sim import _cengine, evfloor, speed

from .conftest import MEDIANS

SWEEP = """
engine = "c"
seeds = 1
[product]
strategy = ["merge-in-queue", "no-temp-page"]
workload = ["rand-write", "fsync-heavy"]
machine = "ci-2cpu-24g"
file_size = 1048576
writes = 64
max_background = [6, 12, 24, 48, 96]
max_pages = [16, 32, 64, 128, 256]
server_threads = [1, 2, 4, 8]
"""


@pytest.mark.parametrize("name,size", speed.SIZES)
def test_file_size(benchmark, name, size):
    wl, cfg = sim.prepare(speed.STRATEGY, speed.WORKLOAD, 0, file_size=size, writes=speed.SIZE_WRITES)
    out = benchmark.pedantic(_cengine.simulate, args=(cfg, wl.ops, wl.file_sizes, 0), rounds=15,
                             warmup_rounds=2)
    assert out["counters"]["bytes_dirtied"] > 0
    MEDIANS["size:" + name] = benchmark.stats.stats.median


@pytest.fixture(scope="module")
def floor_case():
    wl, cfg = sim.prepare(speed.STRATEGY, speed.WORKLOAD, 0, **speed.FLOOR_PARAMS)
    return wl, cfg, evfloor.record(cfg, wl.ops, wl.file_sizes, 0)


def test_floor_engine(benchmark, floor_case):
    wl, cfg, _ = floor_case
    benchmark.pedantic(_cengine.simulate, args=(cfg, wl.ops, wl.file_sizes, 0), rounds=5,
                       warmup_rounds=1)
    MEDIANS["floor:engine"] = benchmark.stats.stats.median


def test_floor_heap_only(benchmark, floor_case):
    benchmark.pedantic(evfloor.replay, args=(floor_case[2],), rounds=5, warmup_rounds=1)
    MEDIANS["floor:heap"] = benchmark.stats.stats.median
    MEDIANS["floor:events"] = floor_case[2].popped


@pytest.mark.parametrize("executor,jobs", [("local", 1), ("local", 2), ("dask", 2)])
def test_sweep_throughput(benchmark, tmp_path, executor, jobs):
    if executor == "dask":
        pytest.importorskip("distributed")
    from bench.sim import sweeprun, sweepspec
    path = tmp_path / "s.toml"
    path.write_text(SWEEP)
    spec = sweepspec.load(path)
    stores = iter(range(1000))

    def once():
        sim._SHARED.clear()     # each round builds its workloads, as a new sweep does
        return sweeprun.run(spec, tmp_path / f"store{next(stores)}", executor, jobs=jobs,
                            progress=False)
    outcome = benchmark.pedantic(once, rounds=3, iterations=1)
    assert outcome.computed == sweepspec.count(spec)
    cores = min(jobs, os.cpu_count() or 1)
    MEDIANS[f"sweep:{executor} --jobs {jobs}"] = outcome.computed / benchmark.stats.stats.median / cores
