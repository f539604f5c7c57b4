"""The C engine's page space (csrc/pagespace.c): dense or compact, the same results.

Compact, the engine keeps page state for the pages the ops touch only, in extents with an
unused slot between two of them; these tests run the same workloads in both layouts (and
in the Python engine) where that could show: ranges that overlap, touch or leave one page
between them, large folios, msync ranges that start or end between extents, reclaim, the
merge-in-queue secondaries, several files (empty, untouched, touched).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bench import sim
from bench.sim import _cengine, ops as O, refsim
from bench.sim.workload import from_arrays
from conftest import assert_same_raw
from test_engines import configs, op_arrays

KB = 1024
MS = 1_000_000
PAGE = 4096


def _three(cfg, wl, seed, what):
    """Dense and compact C runs and the Python engine, held to each other; the compact raw."""
    dense = _cengine.simulate(cfg, wl.ops, wl.file_sizes, seed, layout="dense")
    compact = _cengine.simulate(cfg, wl.ops, wl.file_sizes, seed, layout="compact")
    assert_same_raw(dense, compact, f"{what}: dense against compact")
    assert_same_raw(refsim.simulate(cfg, wl.ops, wl.file_sizes, seed), compact,
                    f"{what}: python against compact")
    return compact


def _slots(cfg, wl, layout):
    return _cengine.page_slots(cfg, wl.ops, wl.file_sizes, layout)


def _clustered(draw):
    """Ranges clustered around a few pages: they overlap, touch, or leave a page or more
    between them; long aligned writes make large folios."""
    anchors = draw(st.lists(st.integers(0, 31), min_size=1, max_size=4))

    def place():
        page = max(0, 64 * draw(st.sampled_from(anchors)) + draw(st.integers(-3, 3)))
        offset = page * PAGE + draw(st.sampled_from([0, 0, 1, 2048, 4095]))
        return offset, draw(st.sampled_from([1, PAGE, 2 * PAGE, 3 * PAGE - 1, 64 * KB,
                                             256 * KB, 1 << 20]))
    return place


def sparse_ops():
    """Ops clustered around a few pages of files up to 8 MiB (test_engines.op_arrays)."""
    return op_arrays(file_size=st.sampled_from([0, 5000, 1 << 20, 8 << 20]),
                     placement=_clustered, name="sparse")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=st.sampled_from(sim.strategies()), w=sparse_ops(), params=configs(),
       max_pages=st.sampled_from([4, 16, 64]), extra=st.integers(0, 1), seed=st.integers(0, 2**32))
def test_sparse_random_ops_give_the_same_results_dense_and_compact(strategy, w, params, max_pages,
                                                                   extra, seed):
    more = {"merge_queued_primary": extra} if strategy == "merge-in-queue" else {"writer_waits": extra}
    params = {**params, "max_pages": max_pages}
    wl, cfg = sim.prepare(strategy, w, seed, **params, **more, max_time_ns=30 * 10**9)
    _three(cfg, wl, seed, f"{strategy} {params} {more} seed={seed}")
    assert _slots(cfg, wl, "compact") <= _slots(cfg, wl, "dense")


def _rows(rows, sizes):
    a = O.make_ops(len(rows))
    for i, (t, th, op, f, off, ln) in enumerate(rows):
        a[i] = (t, th, op, f, 0, off, ln)
    return from_arrays(a, np.array(sizes, dtype=np.int64), name="extents")


def _neighbours():
    """Writes on a 1 GiB file whose ranges touch (pages 8-9 after 5-7), leave one page between
    them (4), or lie far apart; a 1 MiB aligned write and a misaligned 256 KiB one (large
    folios); rewrites, an mmap store and a direct-I/O read in those extents; msync ranges
    that start and end between extents; an untouched file, an empty one and one whose
    size ends inside its second page of slots (a WRITE's bytes up to i_size); 30 MiB of
    anonymous memory (reclaim, on 32 MiB of memory)."""
    g = 1 << 30
    w, st_, dio, ms, fs = O.WRITE, O.MMAP_STORE, O.DIO_READ, O.MSYNC, O.FSYNC
    rows = [(0, 0, w, 0, 0, 4 * PAGE), (1, 0, w, 0, 5 * PAGE, 3 * PAGE),
            (2, 0, w, 0, 8 * PAGE, 2 * PAGE), (3, 0, w, 0, 4096 * PAGE, 1 << 20),
            (4, 0, w, 0, 777 * PAGE + 100, 256 * KB), (5, 0, w, 0, g - PAGE, PAGE),
            (6, 0, w, 2, 3 * PAGE, PAGE + 100), (7, 2, O.ALLOC, 0, 0, 30 << 20),
            (10 * MS, 1, st_, 0, 6 * PAGE, 2 * PAGE), (11 * MS, 1, dio, 0, 4100 * PAGE, 3 * PAGE),
            (12 * MS, 0, w, 0, 2 * PAGE + 10, PAGE), (13 * MS, 0, w, 0, 4099 * PAGE, 2 * PAGE),
            (20 * MS, 0, ms, 0, 4 * PAGE, 4093 * PAGE), (21 * MS, 1, w, 0, 9 * PAGE, 2 * PAGE),
            (30 * MS, 0, fs, 0, 0, 0), (31 * MS, 1, w, 0, 3 * PAGE, PAGE),
            (40 * MS, 0, ms, 0, 10 * PAGE, g - 20 * PAGE), (50 * MS, 0, O.SYNC, 0, 0, 0)]
    return _rows(rows, [g, 64 << 20, 0, 0])


@pytest.mark.parametrize("strategy", ["large-folio", "iomap-blocks", "merge-in-queue",
                                      "no-temp-page", "temp-naive"])
@pytest.mark.parametrize("params", [{}, {"max_pages": 4, "max_background": 1, "server_base_ns": 5 * MS},
                                    {"mem_total_pages": 8192, "sync_waits": 1}])
def test_neighbouring_extents_give_the_same_results_dense_and_compact(strategy, params):
    wl, cfg = sim.prepare(strategy, _neighbours(), 0, **params)
    raw = _three(cfg, wl, 0, f"{strategy} {params}")
    # extents [0, 4) [5, 11) [777, 842) [4096, 4352) [262143] and [3, 5): 338 slots
    assert _slots(cfg, wl, "compact") == 338
    assert _slots(cfg, wl, "dense") == (1 << 18) + (1 << 14) + 5
    assert raw["counters"]["requests"] > 0
    if strategy == "large-folio" and not params:
        assert raw["counters"]["folio_pages"] > raw["counters"]["folios"]


def test_one_page_between_two_extents_keeps_their_writes_apart():
    """Pages 0-3 and 5-7 dirty, page 4 never touched: two WRITEs, as in the file, not one of
    seven pages across the unused slot (nor of eight)."""
    wl = _rows([(0, 0, O.WRITE, 0, 0, 4 * PAGE), (1, 0, O.WRITE, 0, 5 * PAGE, 3 * PAGE),
                (2, 0, O.FSYNC, 0, 0, 0)], [1 << 30])
    wl, cfg = sim.prepare("no-temp-page", wl, 0)
    raw = _three(cfg, wl, 0, "two extents")
    assert _slots(cfg, wl, "compact") == 4 + 1 + 3
    hist = raw["pages_per_request"]
    assert hist[4] == 1 and hist[3] == 1 and sum(hist) == 2


def test_auto_compacts_a_few_writes_over_a_big_file_only():
    big, cfg = sim.prepare("merge-in-queue", "rand-write", 0, file_size=64 << 30, writes=512)
    assert _slots(cfg, big, "auto") == _slots(cfg, big, "compact") <= 512 * 2
    assert _slots(cfg, big, "dense") == 1 << 24
    small, cfg2 = sim.prepare("merge-in-queue", "rand-write", 0, file_size=64 << 20, writes=16384)
    assert _slots(cfg2, small, "auto") == _slots(cfg2, small, "dense") == 1 << 14
    for wl, c in ((big, cfg), (small, cfg2)):
        auto = _cengine.simulate(c, wl.ops, wl.file_sizes, 0)
        assert_same_raw(_cengine.simulate(c, wl.ops, wl.file_sizes, 0, layout="dense"), auto,
                        "auto against dense")


def test_an_unknown_layout_is_a_value_error_naming_it():
    wl, cfg = sim.prepare("merge-in-queue", "rand-write", 0, writes=16)
    with pytest.raises(ValueError, match="^layout: "):
        _cengine.simulate(cfg, wl.ops, wl.file_sizes, 0, layout="sparse")
    with pytest.raises(ValueError, match="^layout: "):
        _cengine.page_slots(cfg, wl.ops, wl.file_sizes, "")


@pytest.mark.parametrize("primary", [0, 1])
def test_merge_in_queue_secondaries_on_neighbouring_extents(primary):
    """An fsync sends pages 0-3, 5-7 and 9 (three WRITEs, one server call at a time, a slow
    server); another thread rewrites pages 2, 5 and 9 while they are in flight or queued
    (write(2) not waiting) and fsyncs, twice: secondaries chained to the primaries, copies
    over held and (merge_queued_primary) queued one-page ones, the same in both layouts."""
    w = O.WRITE
    rows = [(0, 0, w, 0, 0, 4 * PAGE), (0, 0, w, 0, 5 * PAGE, 3 * PAGE), (0, 0, w, 0, 9 * PAGE, PAGE),
            (MS, 0, O.FSYNC, 0, 0, 0), (2 * MS, 1, w, 0, 2 * PAGE, PAGE),
            (2 * MS, 1, w, 0, 5 * PAGE, PAGE), (2 * MS, 1, w, 0, 9 * PAGE, PAGE),
            (3 * MS, 1, O.FSYNC, 0, 0, 0), (4 * MS, 2, w, 0, 2 * PAGE, PAGE),
            (4 * MS, 2, w, 0, 9 * PAGE, PAGE), (5 * MS, 2, O.FSYNC, 0, 0, 0)]
    wl, cfg = sim.prepare("merge-in-queue", _rows(rows, [64 << 30]), 0, server_base_ns=20 * MS,
                          max_background=1, writer_waits=0, merge_queued_primary=primary)
    raw = _three(cfg, wl, 0, f"merge_queued_primary={primary}")
    assert _slots(cfg, wl, "compact") == 4 + 1 + 3 + 1 + 1
    assert raw["counters"]["secondaries"] > 0 and raw["counters"]["inplace_updates"] > 0
