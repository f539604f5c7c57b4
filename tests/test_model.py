"""What the model must show (model.md, issue "The writeback simulator").

These run the C engine; tests/test_engines.py holds it to the Python reference.
FWB_TEST_ENGINE=python runs them on the reference instead.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bench.sim import ops as O
from bench import sim
from bench.sim.workload import from_arrays

ENGINE = os.environ.get("FWB_TEST_ENGINE", "c")
MS = 1_000_000
S = 1000 * MS
TEMP_STRATEGIES = ["temp-naive", "wait-in-writepages", "redirty-and-skip", "merge-in-queue"]


def _ops(rows):
    a = O.make_ops(len(rows))
    for i, (t, th, op, f, off, ln) in enumerate(rows):
        a[i] = (t, th, op, f, 0, off, ln)
    return a


def run(strategy, workload, seed=0, **params):
    return sim.run(strategy, workload, seed=seed, engine=ENGINE, **params).metrics


# ------------------------------------------------------------------ determinism

_CHILD = ("import json,sys; from bench import sim; "
          "r = sim.run('merge-in-queue', 'dio-redirty', seed=7, engine=sys.argv[1], rounds=30); "
          "print(json.dumps(r.metrics, sort_keys=True)); print(r.series.sum())")


def test_same_configuration_and_seed_same_numbers_in_two_processes():
    outs = [subprocess.run([sys.executable, "-c", _CHILD, ENGINE], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert outs[0] == outs[1]
    here = sim.run("merge-in-queue", "dio-redirty", seed=7, engine=ENGINE, rounds=30)
    assert outs[0].splitlines()[0] == json.dumps(here.metrics, sort_keys=True)


def test_a_different_seed_gives_different_numbers():
    a = run("no-temp-page", "rand-write", seed=1, writes=2000)
    b = run("no-temp-page", "rand-write", seed=2, writes=2000)
    assert a != b


# ------------------------------------------------------- the seed thread's hazard

HAZARD_SEEDS = range(8)


@pytest.fixture(scope="module")
def dio_runs():
    return {s: [run(s, "dio-redirty", seed, server_threads=4, rounds=60) for seed in HAZARD_SEEDS]
            for s in sim.strategies()}


def test_temp_naive_sends_several_copies_that_arrive_out_of_order(dio_runs):
    runs = dio_runs["temp-naive"]
    assert max(m["max_copies_in_flight"] for m in runs) >= 2
    assert any(m["out_of_order"] > 0 for m in runs)
    assert any(m["lost_updates"] > 0 for m in runs)


@pytest.mark.parametrize("strategy", ["wait-in-writepages", "redirty-and-skip", "merge-in-queue",
                                      "no-temp-page"])
def test_other_strategies_keep_order(dio_runs, strategy):
    for m in dio_runs[strategy]:
        assert m["out_of_order"] == 0
        assert m["lost_updates"] == 0


def test_each_strategy_takes_its_own_action_on_busy_pages(dio_runs):
    assert all(m["writepages_waits"] > 0 for m in dio_runs["wait-in-writepages"])
    assert all(m["redirty_skips"] > 0 for m in dio_runs["redirty-and-skip"])
    assert all(m["secondaries"] > 0 for m in dio_runs["merge-in-queue"])
    assert all(m["writeback_skips"] > 0 for m in dio_runs["no-temp-page"])
    for s in ("wait-in-writepages", "redirty-and-skip", "no-temp-page"):
        assert all(m["max_copies_in_flight"] == 1 for m in dio_runs[s]), s


def test_merge_in_queue_never_has_more_than_two_copies(dio_runs):
    assert max(m["max_copies_in_flight"] for m in dio_runs["merge-in-queue"]) == 2


def test_merge_in_queue_updates_copies_the_server_has_not_read():
    """A page is written, then O_DIRECT reads land in it three times while the server is
    stalled and sync(2) keeps waking the flusher: every redirty after the first finds a
    copy the server has not read and is folded into it."""
    rows = [(0, 0, O.WRITE, 0, 0, 4096)]
    rows += [((i + 1) * 100_000, 0, O.DIO_READ, 0, 0, 4096) for i in range(3)]
    rows += [(20_000 + i * 50_000, 1, O.SYNC, 0, 0, 0) for i in range(7)]
    rows.sort()
    rows.append((500_000, 0, O.FSYNC, 0, 0, 0))
    w = from_arrays(_ops(rows), np.array([0], dtype=np.int64))
    stall = dict(stall_start_ns=0, stall_ns=5 * MS, dio_base_ns=50_000)
    base = run("merge-in-queue", w, **stall)
    more = run("merge-in-queue", w, merge_queued_primary=1, **stall)
    assert base["secondaries"] == 1 and base["inplace_updates"] >= 1
    assert more["secondaries"] == 0 and more["inplace_updates"] == base["inplace_updates"] + 1
    for m in (base, more):
        assert m["lost_updates"] == 0 and m["out_of_order"] == 0 and m["max_copies_in_flight"] <= 2


def test_no_temp_page_never_has_a_temp_page(dio_runs):
    for m in dio_runs["no-temp-page"]:
        assert m["temp_pages_peak"] == 0 and m["temp_bytes_copied"] == 0
        assert m["unmovable_page_seconds"] == 0 and m["pinned_pages_peak"] > 0


# ------------------------------------------------------------- lost updates

SMALL = {
    "seq-write": {"file_size": 8 << 20}, "rand-write": {"writes": 3000},
    "rewrite-hot": {"rounds": 8, "interval_ns": 200 * MS}, "mmap-rewrite": {"file_size": 4 << 20},
    "dio-redirty": {"rounds": 40}, "fsync-heavy": {"writes": 64},
    "mem-pressure": {"file_size": 16 << 20}, "stuck-server": {"duration_ns": 2 * S, "stall_ns": S},
    "multi-writer": {"file_size": 8 << 20},
}


@pytest.mark.parametrize("workload", sorted(SMALL))
def test_only_temp_naive_loses_updates_when_the_server_recovers(workload):
    for strategy in sim.strategies()[1:]:
        for seed in range(3):
            m = run(strategy, workload, seed, server_threads=4, **SMALL[workload])
            assert m["lost_updates"] == 0, (strategy, seed)
            assert m["out_of_order"] == 0, (strategy, seed)
            assert m["stuck"] == 0, (strategy, seed)
            assert m["bytes_written"] > 0


# ------------------------------------------------------------ a stalled server

def reclaim_meets_busy_page():
    """Thread 0 writes 64 pages; thread 1's sync(2) wakes the flusher, whose copies reach a
    server that has just stalled; thread 0's O_DIRECT read into the mapped pages redirties
    them at once (no wait); then thread 1 allocates nearly all memory and direct reclaim
    meets dirty pages whose copies are stuck at the server."""
    rows = [
        (0, 0, O.WRITE, 0, 0, 64 * 4096),
        (10_000, 1, O.SYNC, 0, 0, 0),
        (20_000, 0, O.DIO_READ, 0, 0, 64 * 4096),
        (20 * MS, 1, O.ALLOC, 0, 0, 7950 * 4096),
        (30 * MS, 1, O.FREE, 0, 0, 7950 * 4096),
        (40 * MS, 0, O.FSYNC, 0, 0, 0),
    ]
    return from_arrays(_ops(rows), np.array([0], dtype=np.int64), name="reclaim-stall")


STALL = dict(mem_total_pages=8192, bdi_max_ratio=100, stall_start_ns=5_000, stall_ns=3 * S, server_threads=2,
             dio_base_ns=500_000)


def test_wait_in_writepages_hangs_in_reclaim_on_a_stalled_server():
    m = run("wait-in-writepages", reclaim_meets_busy_page(), **STALL)
    assert m["deadlocks"] >= 1 and m["hangs"] >= 1
    assert m["reclaim_stall_ns"]["max"] > 2 * S
    for strategy in ("redirty-and-skip", "merge-in-queue", "no-temp-page"):
        other = run(strategy, reclaim_meets_busy_page(), **STALL)
        assert other["deadlocks"] == 0, strategy
        assert other["reclaim_stall_ns"]["max"] < 2 * S, strategy


def test_stalled_server_pins_pages_or_temp_pages():
    stalled = {s: run(s, "stuck-server") for s in sim.strategies()}
    nt = stalled["no-temp-page"]
    assert nt["pinned_pages_peak"] > 0 and nt["temp_pages_peak"] == 0
    assert nt["hangs"] >= 1
    for s in TEMP_STRATEGIES:
        assert stalled[s]["unmovable_page_seconds"] > 1.0, s
        assert stalled[s]["hangs"] >= 1, s


def test_reclaim_skips_pages_pinned_under_writeback():
    m = run("no-temp-page", reclaim_meets_busy_page(), **STALL)
    assert m["writeback_skips"] > 0 and m["pinned_pages_peak"] >= 64


def test_sync_waits_only_when_asked():
    w = from_arrays(_ops([(0, 0, O.WRITE, 0, 0, 1 << 20), (0, 0, O.SYNC, 0, 0, 0),
                          (0, 0, O.FSYNC, 0, 0, 0)]), np.array([0], dtype=np.int64))
    slow = dict(stall_start_ns=0, stall_ns=S)
    quick = run("no-temp-page", w, **slow)
    waits = run("no-temp-page", w, sync_waits=1, **slow)
    assert quick["sync_latency_ns"]["max"] < MS
    assert waits["sync_latency_ns"]["max"] >= S - MS


# ------------------------------------------------------------------ CPUs, costs, dirty throttling

# The table's defaults, whatever cost profile is active, so that the figures below are known.
COSTS = dict(write_syscall_ns=1000, write_page_ns=500, cache_add_ns=1000, server_base_ns=10_000,
             server_page_ns=1000, server_new_page_ns=2000, server_fsync_ns=5000, server_dist=0,
             server_threads=4, wp_page_ns=0, wp_request_ns=0, fsync_syscall_ns=0, server_cpus=0,
             server_cpu_pct=100, wakeup_ns=0, server_wakeup_ns=0, page_copy_ns=0,
             temp_alloc_ns=0, temp_free_ns=0, wb_lookup_ns=0, wb_tree_ns=0, end_writeback_ns=0)


def _scattered_writes(n, thread=0, t=0):
    """n one-page writes to every other page of file 0 (n WRITEs of one page each)."""
    return [(t, thread, O.WRITE, 0, 2 * i * 4096, 4096) for i in range(n)]


def test_shared_cpus_serialise_the_work_and_the_total_is_conserved():
    rows = _scattered_writes(64) + [(0, 0, O.FSYNC, 0, 0, 0)]
    w = from_arrays(_ops(rows), np.array([0], dtype=np.int64))
    own = run("no-temp-page", w, cpus=0, **COSTS)
    two = run("no-temp-page", w, cpus=2, **COSTS)
    one = run("no-temp-page", w, cpus=1, **COSTS)
    # Every piece of work is CPU work here: 64 writes, 64 WRITEs of a new page, one FSYNC.
    app = 64 * (1000 + 500 + 1000)
    server = 64 * (10_000 + 1000 + 2000) + 5000
    assert one["makespan_ns"] >= app + server
    assert own["makespan_ns"] < two["makespan_ns"] < one["makespan_ns"]
    off_cpu = run("no-temp-page", w, cpus=1, **dict(COSTS, server_cpu_pct=0))
    assert off_cpu["makespan_ns"] < one["makespan_ns"]


def test_server_cpus_caps_the_cpus_the_server_occupies():
    # Thread 1 queues 32 one-page WRITEs; with 4 CPUs the server may use all of them, or one.
    rows = [(0, 1, O.WRITE, 1, 2 * i * 4096, 4096) for i in range(32)]
    rows.append((MS, 1, O.FSYNC, 1, 0, 0))
    w = from_arrays(_ops(rows), np.array([0, 0], dtype=np.int64))
    wide = run("no-temp-page", w, cpus=4, **COSTS)
    narrow = run("no-temp-page", w, cpus=4, **dict(COSTS, server_cpus=1))
    service = 10_000 + 1000 + 2000
    assert narrow["fsync_latency_ns"]["max"] >= 32 * service + 5000
    assert wide["fsync_latency_ns"]["max"] < 32 * service // 3


def test_an_application_thread_waits_only_for_server_work_already_running():
    # Thread 1 queues 32 one-page WRITEs through fsync; thread 0 writes once meanwhile, on
    # one CPU.  It may wait for the request in service, not for the 31 queued behind it.
    rows = [(0, 1, O.WRITE, 1, 2 * i * 4096, 4096) for i in range(32)]
    rows += [(MS, 1, O.FSYNC, 1, 0, 0), (MS + 1000, 0, O.WRITE, 0, 0, 4096)]
    w = from_arrays(_ops(sorted(rows)), np.array([0, 0], dtype=np.int64))
    m = run("no-temp-page", w, cpus=1, **COSTS)
    service = 10_000 + 1000 + 2000
    assert m["write_latency_ns"]["max"] <= 1000 + 500 + 1000 + service


def test_a_page_new_to_the_cache_costs_cache_add_ns():
    rows = [(0, 0, O.WRITE, 0, 0, 4096), (MS, 0, O.WRITE, 0, 0, 4096)]
    w = from_arrays(_ops(rows), np.array([4096], dtype=np.int64))
    m = run("no-temp-page", w, **COSTS)
    # The first write adds the page to the cache (whole page: no READ), the second finds it.
    assert m["write_latency_ns"]["max"] == 1000 + 500 + 1000
    assert m["write_latency_ns"]["p50"] in (1000 + 500, 1000 + 500 + 1000)
    assert m["write_latency_ns"]["count"] == 2


def test_a_page_the_server_never_had_costs_it_server_new_page_ns():
    # The same 8 pages written and fsynced twice: the first WRITE carries 8 new pages.
    rows = [(0, 0, O.WRITE, 0, 0, 8 * 4096), (0, 0, O.FSYNC, 0, 0, 0),
            (MS, 0, O.WRITE, 0, 0, 8 * 4096), (MS, 0, O.FSYNC, 0, 0, 0)]
    w = from_arrays(_ops(rows), np.array([0], dtype=np.int64))
    m = run("no-temp-page", w, **COSTS)
    first, second = 10_000 + 8 * 3000 + 5000, 10_000 + 8 * 1000 + 5000
    assert m["fsync_latency_ns"]["max"] == first
    assert m["fsync_latency_ns"]["p50"] in (first, second) and m["requests"] == 2


def _strictlimit_pages(mem_total_pages=524288, dirty_ratio=20, dirty_background_ratio=10):
    limit = mem_total_pages * dirty_ratio // 10000          # bdi max_ratio 1%
    bg = mem_total_pages * dirty_background_ratio // 10000
    return limit, (limit + bg) // 2


def _pages_written(n, first=0):
    return [(0, 0, O.WRITE, 0, (first + i) * 4096, 4096) for i in range(n)]


def test_writeback_starts_at_the_freerun_ceiling_and_writers_block_at_the_limit():
    limit, freerun = _strictlimit_pages()
    slow = dict(COSTS, mem_total_pages=524288, dirty_writeback_interval_ns=3600 * S,
                dirty_expire_ns=3600 * S)          # 2 GiB, whatever machine profile is active
    w = from_arrays(_ops(_pages_written(freerun)), np.array([0], dtype=np.int64))
    m = run("no-temp-page", w, **slow)
    assert m["requests"] == 0 and m["throttle_ns"]["count"] == 0
    w = from_arrays(_ops(_pages_written(freerun + 64)), np.array([0], dtype=np.int64))
    assert run("no-temp-page", w, **slow)["requests"] > 0
    # A server that answers nothing for 2 s: the writer ends up asleep at the limit until then.
    w = from_arrays(_ops(_pages_written(limit + 64)), np.array([0], dtype=np.int64))
    m = run("no-temp-page", w, stall_start_ns=0, stall_ns=2 * S, **slow)
    assert m["throttle_ns"]["max"] > S


BIG = 1 << 22                  # 16 GiB: 2097 pages between the freerun ceiling and the limit


def test_a_writer_past_the_ceiling_pauses_in_whole_jiffies_about_10_ms_at_a_time():
    limit, freerun = _strictlimit_pages(BIG)
    w = from_arrays(_ops(_pages_written(freerun + 1000)), np.array([0], dtype=np.int64))
    for hz, jiffies in ((250, 2), (1000, 10)):
        m = run("no-temp-page", w, mem_total_pages=BIG, stall_start_ns=0, stall_ns=10 * S, hz=hz,
                **COSTS)
        # wb_min_pause aims at 10 ms: a look every 25600 * 10 ms / roundup_pow_of_two(HZ)
        # pages (200 at HZ=250, 250 at HZ=1000), each look's pause 1.95 or 2.44 jiffies
        # truncated; a pause under min_pause (1 + t / 2 jiffies) is carried, not slept.
        t, jiffy = m["throttle_ns"], S // hz
        assert t["count"] >= 2 and t["p50"] == jiffies * jiffy, (hz, t)
        assert t["max"] <= (jiffies + 1) * jiffy and t["max"] % jiffy == t["p99"] % jiffy == 0


def test_a_lower_dirty_ratelimit_throttles_harder():
    limit, freerun = _strictlimit_pages(BIG)
    w = from_arrays(_ops(_pages_written(freerun + 1000)), np.array([0], dtype=np.int64))
    stall = dict(COSTS, mem_total_pages=BIG, stall_start_ns=0, stall_ns=10 * S)
    fast = run("no-temp-page", w, dirty_ratelimit_pps=1 << 20, **stall)
    slow = run("no-temp-page", w, dirty_ratelimit_pps=2560, **stall)
    # At 2560 pages/s a look comes every 32 pages and pauses 12.5 ms; at 2**20 pages/s the next
    # look would be 10485 pages away.
    assert fast["throttle_ns"]["count"] == 0
    assert slow["throttle_ns"]["count"] >= 25 and slow["throttle_ns"]["p50"] >= 12 * MS


def test_a_thread_woken_from_a_wait_on_the_server_pays_wakeup_ns():
    rows = [(0, 0, O.WRITE, 0, 0, 4096), (0, 0, O.FSYNC, 0, 0, 0)]
    w = from_arrays(_ops(rows), np.array([0], dtype=np.int64))
    quiet = run("no-temp-page", w, **COSTS)["fsync_latency_ns"]["max"]
    woken = run("no-temp-page", w, **dict(COSTS, wakeup_ns=7000))["fsync_latency_ns"]["max"]
    # fsync sleeps twice: until its WRITE is done, then until FUSE_FSYNC is answered.
    assert woken - quiet == 2 * 7000


def test_only_a_request_that_finds_the_server_asleep_pays_server_wakeup_ns():
    # Two one-page WRITEs queued at once on one server thread, then FUSE_FSYNC: the first WRITE
    # and FUSE_FSYNC wake the thread; the second WRITE is read as the first is answered.
    rows = [(0, 0, O.WRITE, 0, 0, 4096), (0, 0, O.WRITE, 0, 2 * 4096, 4096),
            (0, 0, O.FSYNC, 0, 0, 0)]
    w = from_arrays(_ops(rows), np.array([0], dtype=np.int64))
    one = dict(COSTS, server_threads=1)
    quiet = run("no-temp-page", w, **one)["fsync_latency_ns"]["max"]
    woken = run("no-temp-page", w, **dict(one, server_wakeup_ns=4000))["fsync_latency_ns"]["max"]
    assert woken - quiet == 2 * 4000


# ------------------------------------------------ the temp-page path: who pays (model.md)

# Each temp-page cost with distinct digits: a sum of them says which were paid, how often.
TEMP_COSTS = dict(temp_alloc_ns=100, page_copy_ns=1000, wb_lookup_ns=10, end_writeback_ns=10_000,
                  wb_tree_ns=100_000, temp_free_ns=1_000_000)


@pytest.mark.parametrize("strategy", TEMP_STRATEGIES + ["no-temp-page"])
def test_each_temp_page_cost_is_paid_once_per_page_or_request(strategy):
    # 8 pages, fsync: one WRITE of 8 pages, one server thread, nothing else in flight.
    rows = [(0, 0, O.WRITE, 0, 0, 8 * 4096), (0, 0, O.FSYNC, 0, 0, 0)]
    w = from_arrays(_ops(rows), np.array([0], dtype=np.int64))
    m = run(strategy, w, **dict(COSTS, server_threads=1, **TEMP_COSTS))
    c, service = TEMP_COSTS, 10_000 + 8 * 3000 + 5000          # the WRITE, then FUSE_FSYNC
    if strategy == "no-temp-page":       # only the end of writeback, at the reply
        paid = 8 * c["end_writeback_ns"]
    else:                                # writepages per page and per request, then the reply
        paid = (8 * (c["temp_alloc_ns"] + c["page_copy_ns"] + c["wb_lookup_ns"]
                     + c["end_writeback_ns"]) + c["wb_tree_ns"]
                + c["wb_tree_ns"] + 8 * c["temp_free_ns"])
    assert m["fsync_latency_ns"]["max"] == service + paid
    # The writes found nothing in flight: no lookup in write_begin.
    assert m["write_latency_ns"]["max"] == 1000 + 8 * (500 + 1000)


@pytest.mark.parametrize("strategy", ["merge-in-queue", "no-temp-page"])
def test_the_writer_looks_pages_up_only_in_temp_page_kernels_and_with_writes_in_flight(strategy):
    # Thread 1's WRITE of page 0 stays in flight (the server is stuck for 1 s) while thread 0
    # writes page 4 of the same file; thread 0 writes it again once the WRITE is done.
    rows = [(0, 1, O.WRITE, 0, 0, 4096), (0, 1, O.FSYNC, 0, 0, 0),
            (MS, 0, O.WRITE, 0, 4 * 4096, 4096), (3 * S, 0, O.WRITE, 0, 4 * 4096, 4096)]
    w = from_arrays(_ops(sorted(rows)), np.array([0], dtype=np.int64))
    m = run(strategy, w, stall_start_ns=0, stall_ns=S, **dict(COSTS, wb_lookup_ns=7000))
    lat = m["write_latency_ns"]
    lookup = 7000 if strategy != "no-temp-page" else 0
    assert lat["count"] == 3 and lat["max"] == 1000 + 1000 + 500 + lookup
    assert lat["p50"] in (1000 + 500, 1000 + 1000 + 500)     # no lookup on an empty tree


X = 100_000                              # ns: a per-page cost that dwarfs everything else
PAGE_PER_X = 4096 * 1e9 / X              # bytes/s of one actor that pays X per page


def _seq_wb(strategy, **costs):
    p = dict(COSTS, server_threads=16, cpus=0, mem_total_pages=524288)
    p.update(costs)
    return run(strategy, "seq-write", file_size=8 << 20, **p)["wb_throughput_bps"]


@pytest.mark.parametrize("cost", ["page_copy_ns", "temp_alloc_ns", "end_writeback_ns"])
def test_the_flushers_serial_work_bounds_writeback_of_temp_pages(cost):
    free = _seq_wb("merge-in-queue")
    assert free > 20 * PAGE_PER_X
    for strategy in TEMP_STRATEGIES:
        # The flusher and the final fsync's caller pay it per page, each serially: writeback
        # goes at most twice as fast as one of them.
        assert _seq_wb(strategy, **{cost: X}) < 2.1 * PAGE_PER_X
    if cost == "end_writeback_ns":       # no-temp-page: the server's threads pay it, in parallel
        assert 4 * PAGE_PER_X < _seq_wb("no-temp-page", **{cost: X}) < free
        assert _seq_wb("no-temp-page", server_threads=1, **{cost: X}) < 1.1 * PAGE_PER_X
    else:                                # no-temp-page has no temp page to pay for
        assert _seq_wb("no-temp-page", **{cost: X}) == free


def test_the_reply_pays_for_freeing_temp_pages():
    free = _seq_wb("merge-in-queue")
    # Paid by the server thread that replies: 16 threads share it, one thread bounds writeback.
    assert 4 * PAGE_PER_X < _seq_wb("merge-in-queue", temp_free_ns=X) < free / 2
    assert _seq_wb("merge-in-queue", server_threads=1, temp_free_ns=X) < 1.1 * PAGE_PER_X
    assert _seq_wb("no-temp-page", temp_free_ns=X) == _seq_wb("no-temp-page")
