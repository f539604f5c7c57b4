"""Folios: iomap-blocks and large-folio (issue 11).

iomap-blocks on 4 KiB folios must be no-temp-page in every metric; large-folio makes
folios sized by the write, falls back to order 0 under memory pressure, sends only the
dirty blocks of a folio, and makes page_mkwrite wait for a folio under writeback because
of another of its blocks.  Behaviour tests run the C engine (FWB_TEST_ENGINE=python: the
reference); tests/test_engines.py and the suite test below hold the two engines together.
"""
import os

import numpy as np
import pytest

from bench import sim
from bench.results.compare import DEFAULT_SUITE
from bench.sim import ops as O
from bench.sim.workload import from_arrays

ENGINE = os.environ.get("FWB_TEST_ENGINE", "c")
KB = 1024
MB = 1024 * KB
MS = 1_000_000


def _workload(rows, sizes=(0,), name="folios"):
    a = O.make_ops(len(rows))
    for i, (t, th, op, f, off, ln) in enumerate(rows):
        a[i] = (t, th, op, f, 0, off, ln)
    return from_arrays(a, np.array(sizes, dtype=np.int64), name=name)


def run(strategy, workload, engine=ENGINE, **params):
    return sim.run(strategy, workload, seed=0, engine=engine, **params).metrics


# ------------------------------------------------ iomap-blocks on order-0 folios

@pytest.mark.parametrize("workload", DEFAULT_SUITE)
@pytest.mark.parametrize("seed", [1, 2])
def test_iomap_blocks_on_4k_folios_is_no_temp_page_in_every_metric(workload, seed):
    runs = {(s, e): sim.run(s, workload, seed=seed, engine=e)
            for s in ("no-temp-page", "iomap-blocks") for e in ("c", "python")}
    ref = runs[("no-temp-page", "c")]
    for key, r in runs.items():
        assert r.metrics == ref.metrics, f"{workload} seed={seed}: {key} differs"
        assert np.array_equal(r.series, ref.series), f"{workload} seed={seed}: {key} series"
    assert ref.metrics["folio_pages_mean"] == 1.0 and ref.metrics["folio_waits"] == 0
