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


@pytest.mark.parametrize("workload", DEFAULT_SUITE)
def test_large_folio_engines_agree_over_the_suite(workload):
    a = sim.run("large-folio", workload, seed=1, engine="c")
    b = sim.run("large-folio", workload, seed=1, engine="python")
    assert a.metrics == b.metrics
    assert np.array_equal(a.series, b.series)


# ------------------------------------------------------------ large folios

def _mib_writes(n=8, t0=0):
    rows = [(t0 + i * MS, 0, O.WRITE, 0, i * MB, MB) for i in range(n)]
    return rows + [(t0 + n * MS, 0, O.FSYNC, 0, 0, 0)]


def test_1mib_writes_make_max_pages_folios_and_max_pages_writes():
    wl = _workload(_mib_writes())
    big = run("large-folio", wl, max_pages=32)
    assert big["folio_pages_mean"] == 32
    assert big["pages_per_request"] == {32: 8 * 256 // 32}
    small = run("iomap-blocks", wl, max_pages=32)
    assert small["folio_pages_mean"] == 1
    # a smaller max_write caps the folio as well (fuse_init_file_inode's order range)
    capped = run("large-folio", wl, max_pages=32, max_write=64 * KB)
    assert capped["folio_pages_mean"] == 16
    assert set(capped["pages_per_request"]) == {16}


def test_folio_order_follows_the_write_length_and_its_alignment():
    # 64 KiB writes at 64 KiB offsets: order 4; one 16 KiB write at 48 KiB: order 2
    wl = _workload([(0, 0, O.WRITE, 0, 0, 64 * KB), (MS, 0, O.WRITE, 0, 64 * KB, 64 * KB),
                    (2 * MS, 0, O.WRITE, 0, 176 * KB, 16 * KB), (3 * MS, 0, O.FSYNC, 0, 0, 0)])
    m = run("large-folio", wl)
    assert m["folio_pages_mean"] == (16 + 16 + 4) / 3


def test_under_memory_pressure_folios_fall_back_to_order_0():
    total = 65536                      # 256 MiB
    rows = _mib_writes(4, t0=10 * MS)
    free = run("large-folio", _workload(rows), mem_total_pages=total)
    assert free["folio_pages_mean"] == 32
    # anonymous memory takes everything above the low watermark: a large folio would need
    # reclaim, so every order above 0 fails (__GFP_NORETRY) and order 0 goes through reclaim
    low = sim.prepare("large-folio", _workload(rows), 0, mem_total_pages=total)[1]["wmark_low_pages"]
    hog = (total - low) * 4096
    pressed = run("large-folio", _workload([(0, 0, O.ALLOC, 0, 0, hog)] + rows),
                  mem_total_pages=total)
    assert pressed["folio_pages_mean"] == 1
    assert pressed["reclaim_stall_ns"]["count"] > 0
    assert pressed["lost_updates"] == 0 and pressed["stuck"] == 0


def test_partial_rewrites_of_a_large_folio_send_only_the_dirty_blocks():
    rows = [(0, 0, O.WRITE, 0, 0, 128 * KB), (MS, 0, O.FSYNC, 0, 0, 0),
            # block 3 whole, 100 bytes inside block 8, blocks 20-21: three dirty ranges
            (2 * MS, 0, O.WRITE, 0, 3 * 4 * KB, 4 * KB),
            (3 * MS, 0, O.WRITE, 0, 8 * 4 * KB + 50, 100),
            (4 * MS, 0, O.WRITE, 0, 20 * 4 * KB, 8 * KB), (5 * MS, 0, O.FSYNC, 0, 0, 0)]
    m = run("large-folio", _workload(rows))
    assert m["folio_pages_mean"] == 32
    assert m["pages_per_request"] == {32: 1, 1: 2, 2: 1}
    assert m["reads"] == 0             # the folio's blocks are uptodate: nothing to read
    assert m["lost_updates"] == 0


def test_a_partial_block_of_a_new_large_folio_is_read_and_the_rest_is_not():
    # a 128 KiB file; a write from byte 100 to its end: block 0 is partly written
    rows = [(0, 0, O.WRITE, 0, 100, 128 * KB - 100), (MS, 0, O.FSYNC, 0, 0, 0)]
    m = run("large-folio", _workload(rows, sizes=(128 * KB,)))
    assert m["reads"] == 1
    assert m["folio_pages_mean"] == 16  # ilog2(128 KiB - 100) gives order 4, twice


def _store_during_writeback(strategy, **params):
    slow = dict(server_base_ns=50 * MS, server_page_ns=0)
    rows = [(0, 0, O.WRITE, 0, 0, 128 * KB), (MS, 0, O.FSYNC, 0, 0, 0),
            (200 * MS, 0, O.WRITE, 0, 5 * 4 * KB, 4 * KB),      # dirty block 5
            (201 * MS, 1, O.FSYNC, 0, 0, 0),                     # its WRITE in flight
            (210 * MS, 0, O.MMAP_STORE, 0, 20 * 4 * KB, 8)]      # a store to block 20
    return run(strategy, _workload(rows), **slow, **params)


def test_an_mmap_store_waits_for_a_folio_under_writeback_of_another_block():
    big = _store_during_writeback("large-folio")
    small = _store_during_writeback("iomap-blocks")
    assert big["folio_waits"] == 1
    assert small["folio_waits"] == 0
    # the store waited for the WRITE of block 5 (about 40 ms of its 50 ms were left)
    assert big["fault_latency_ns"]["max"] > 30 * MS > small["fault_latency_ns"]["max"]
    assert big["lost_updates"] == small["lost_updates"] == 0


def test_write_does_not_wait_for_a_folio_under_writeback():
    slow = dict(server_base_ns=50 * MS, server_page_ns=0)
    rows = [(0, 0, O.WRITE, 0, 0, 128 * KB), (MS, 1, O.FSYNC, 0, 0, 0),
            (10 * MS, 0, O.WRITE, 0, 7 * 4 * KB, 4 * KB), (300 * MS, 0, O.FSYNC, 0, 0, 0)]
    m = run("large-folio", _workload(rows), **slow)
    assert m["folio_waits"] == 0
    assert m["write_latency_ns"]["max"] < 10 * MS
    assert m["pages_per_request"] == {32: 1, 1: 1}
    assert m["lost_updates"] == 0


def test_a_one_block_rewrite_accounts_the_whole_folio_dirty_then_under_writeback():
    # folio_account_dirtied and folio_start_writeback count folio_nr_pages
    rows = [(0, 0, O.WRITE, 0, 0, 128 * KB), (MS, 0, O.FSYNC, 0, 0, 0),
            (200 * MS, 0, O.WRITE, 0, 0, 4 * KB), (300 * MS, 0, O.FSYNC, 0, 0, 0)]
    params = dict(server_base_ns=50 * MS, server_page_ns=0, sample_interval_ns=10 * MS)
    at = {}
    for strategy in ("large-folio", "iomap-blocks"):
        r = sim.run(strategy, _workload(rows), seed=0, engine=ENGINE, **params)
        t = r.series[:, 0]
        at[strategy] = (int(r.series[t == 250 * MS, 1][0]), int(r.series[t == 310 * MS, 2][0]))
    assert at == {"large-folio": (32, 32), "iomap-blocks": (1, 1)}
