"""pytest-benchmark: the engines on a 1 GiB rand-write (262,144 page writes).

Targets (issue "The writeback simulator"): the C engine >= 50x faster than the
Python reference and within 4x of a bare C loop that walks the same operation
array and flips page flags.  conftest.py prints both ratios per strategy.
"""
import pytest

from bench.sim import _cengine, refsim
from bench import sim

from .conftest import MEDIANS

GIB_RAND_WRITE = dict(file_size=1 << 30, writes=262144)


@pytest.fixture(scope="module")
def prepared():
    return {s: sim.prepare(s, "rand-write", 0, **GIB_RAND_WRITE) for s in sim.strategies()}


def test_bare_loop(benchmark, prepared):
    wl, _ = prepared["no-temp-page"]
    benchmark.pedantic(_cengine.bare_loop, args=(wl.ops, wl.file_sizes), rounds=20, warmup_rounds=2)
    MEDIANS["bare"] = benchmark.stats.stats.median


@pytest.mark.parametrize("strategy", sim.strategies())
def test_c_engine(benchmark, prepared, strategy):
    wl, cfg = prepared[strategy]
    out = benchmark.pedantic(_cengine.simulate, args=(cfg, wl.ops, wl.file_sizes, 0), rounds=5,
                             warmup_rounds=1)
    assert out["counters"]["bytes_dirtied"] == 1 << 30
    MEDIANS["c:" + strategy] = benchmark.stats.stats.median


@pytest.mark.parametrize("strategy", sim.strategies())
def test_python_engine(benchmark, prepared, strategy):
    wl, cfg = prepared[strategy]
    out = benchmark.pedantic(refsim.simulate, args=(cfg, wl.ops, wl.file_sizes, 0), rounds=1,
                             iterations=1)
    assert out["counters"]["bytes_dirtied"] == 1 << 30
    MEDIANS["python:" + strategy] = benchmark.stats.stats.median
