"""The Python API's contract: names, listing, and one-line errors for bad input."""
import numpy as np
import pytest

import strategies
from bench import results
from bench.results import metrics
from bench.sim import ops as O
from bench import sim
from bench.sim.workload import from_arrays


def test_lists_name_every_strategy_and_workload():
    assert sim.strategies() == ["temp-naive", "wait-in-writepages", "redirty-and-skip",
                                "merge-in-queue", "no-temp-page", "iomap-blocks", "large-folio"]
    assert set(sim.workloads()) == {"seq-write", "rand-write", "rewrite-hot", "mmap-rewrite",
                                    "dio-redirty", "fsync-heavy", "mem-pressure", "stuck-server",
                                    "multi-writer", "seq-write-128k", "seq-write-1m",
                                    "rand-write-128k", "rand-write-1m", "seq-overwrite-128k",
                                    "seq-overwrite-1m", "rand-overwrite-128k", "rand-overwrite-1m",
                                    "partial-rewrite", "stuck-server-long", "stuck-server-timeout"}
    for s in strategies.STRATEGIES.values():
        assert s.summary and s.kernels and "writer_waits" in s.params


def test_a_run_reports_every_result_name_of_the_model():
    r = sim.run("merge-in-queue", "seq-write", seed=0, file_size=4 << 20)
    model_names = {
        "app_throughput_bps", "wb_throughput_bps", "makespan_ns", "write_latency_ns",
        "fault_latency_ns", "fsync_latency_ns", "sync_latency_ns", "throttle_ns",
        "reclaim_stall_ns", "compaction_stall_ns", "temp_pages_peak", "temp_pages_mean",
        "temp_bytes_copied", "unmovable_page_seconds", "pinned_pages_peak", "requests",
        "pages_per_request", "secondaries", "inplace_updates", "redirty_skips",
        "writepages_waits", "lost_updates", "out_of_order", "max_copies_in_flight", "hangs"}
    assert model_names <= set(r.metrics)
    assert set(r.metrics) == {m.name for m in metrics.METRICS}
    for name in ("write_latency_ns", "fsync_latency_ns"):
        assert set(r.metrics[name]) == {"p50", "p99", "p999", "max", "count"}
    # 4 MiB in 1 MiB writes, 32-page requests: every request is full
    assert r.metrics["pages_per_request"] == {32: 32}
    assert r.metrics["bytes_written"] == 4 << 20 == r.metrics["bytes_dirtied"]
    assert r.metrics["app_throughput_bps"] > 0 and r.metrics["makespan_ns"] > 0


def test_parameters_reach_the_engine():
    a = sim.run("no-temp-page", "seq-write", file_size=4 << 20, max_pages=256)
    assert a.metrics["pages_per_request"] == {256: 4}
    b = sim.run("no-temp-page", "seq-write", file_size=4 << 20, max_pages=256, max_write=65536)
    assert b.metrics["pages_per_request"] == {16: 64}


def test_latency_percentiles_by_nearest_rank():
    assert metrics.latency(np.arange(1, 101)) == {"p50": 50, "p99": 99, "p999": 100, "max": 100,
                                                  "count": 100}
    assert metrics.latency(np.array([], dtype=np.int64))["count"] == 0


@pytest.mark.parametrize("call, field", [
    (lambda: sim.run("nope", "seq-write"), "strategy"),
    (lambda: sim.run("merge-in-queue", "nope"), "unknown workload"),
    (lambda: sim.run("merge-in-queue", "seq-write", engine="rust"), "engine"),
    (lambda: sim.run("merge-in-queue", "seq-write", max_pages=0), "max_pages"),
    (lambda: sim.run("merge-in-queue", "seq-write", max_pages=65536), "max_pages"),
    (lambda: sim.run("merge-in-queue", "seq-write", server_threads=-1), "server_threads"),
    (lambda: sim.run("merge-in-queue", "seq-write", max_background="x"), "max_background"),
    (lambda: sim.run("merge-in-queue", "seq-write", server_dist="pareto"), "server_dist"),
    (lambda: sim.run("merge-in-queue", "seq-write", server_sigma=9), "server_sigma"),
    (lambda: sim.run("merge-in-queue", "seq-write", file_size=0), "file_size"),
    (lambda: sim.run("merge-in-queue", "seq-write", block_size=-4096), "block_size"),
    (lambda: sim.run("merge-in-queue", "seq-write", bogus=1), "bogus"),
    (lambda: sim.run("merge-in-queue", "seq-write", merge_queued_primary=2), "merge_queued_primary"),
    (lambda: sim.run("no-temp-page", "seq-write", merge_queued_primary=1), "merge_queued_primary"),
    (lambda: sim.run("merge-in-queue", "seq-write", dirty_background_ratio=30), "dirty_background_ratio"),
    (lambda: sim.run("merge-in-queue", "seq-write", stall_windows=[(0, 5), (3, 5)]), "stall_windows"),
    (lambda: sim.run("merge-in-queue", "seq-write", seed=-1), "seed"),
    (lambda: sim.run("merge-in-queue", "seq-write", file_size=1 << 40), "file_size"),
])
def test_bad_input_is_one_line_naming_the_field(call, field):
    with pytest.raises(ValueError) as e:
        call()
    msg = str(e.value)
    assert field in msg and "\n" not in msg


def _rows(*rows):
    a = O.make_ops(len(rows))
    for i, r in enumerate(rows):
        a[i] = r
    return a


@pytest.mark.parametrize("rows, field", [
    (((5, 0, O.WRITE, 0, 0, 0, 10), (4, 0, O.WRITE, 0, 0, 0, 10)), "time"),
    (((0, 0, 99, 0, 0, 0, 10),), "op"),
    (((0, 0, O.WRITE, 3, 0, 0, 10),), "file"),
    (((0, 0, O.WRITE, 0, 0, -1, 10),), "offset"),
    (((0, 0, O.WRITE, 0, 0, 0, 0),), "length"),
    (((0, 70, O.WRITE, 0, 0, 0, 10),), "thread"),
    (((-1, 0, O.WRITE, 0, 0, 0, 10),), "time"),
    (((0, 0, O.ALLOC, 0, 0, 0, 0),), "length"),
])
def test_malformed_operations_are_refused(rows, field):
    with pytest.raises(ValueError) as e:
        from_arrays(_rows(*rows), np.array([4096], dtype=np.int64))
    assert str(e.value).startswith(field)


def test_wrong_dtype_is_refused():
    with pytest.raises(ValueError, match="OP_DTYPE"):
        from_arrays(np.zeros(3, dtype=np.int64), np.array([0], dtype=np.int64))


def test_background_chunk_is_writeback_chunk_size_of_a_new_bdi():
    from bench.sim import params
    # min(INIT_BW / 2, dirty limit / DIRTY_SCOPE) + MIN_WRITEBACK_PAGES, rounded down to 1024.
    assert params.resolve("no-temp-page", {})["wb_chunk_pages"] == 13312
    small = params.resolve("no-temp-page", {"mem_total_pages": 65536})
    assert small["wb_chunk_pages"] == (65536 * 20 // 100 // 8 + 1024) // 1024 * 1024
    assert params.resolve("no-temp-page", {"wb_chunk_pages": 7})["wb_chunk_pages"] == 7


def test_a_shared_workload_gives_the_same_run():
    """sim.run_shared shares a workload built from the same inputs, and only those."""
    fresh = sim.run("temp-naive", "rand-write", seed=3, writes=300)
    again = sim.run_shared("temp-naive", "rand-write", 3, "c", {"writes": 300})
    other = sim.run_shared("no-temp-page", "rand-write", 3, "c", {"writes": 300})
    assert again.metrics == fresh.metrics and again.params == fresh.params
    assert other.metrics == sim.run("no-temp-page", "rand-write", seed=3, writes=300).metrics

    def shared(strategy, workload, seed, **params):
        return sim._prepare(strategy, workload, seed, params, reuse=True)[0]
    w1 = shared("temp-naive", "rand-write", 3, writes=300)
    assert shared("no-temp-page", "rand-write", 3, writes=300) is w1
    assert shared("temp-naive", "rand-write", 4, writes=300) is not w1
    assert shared("temp-naive", "rand-write", 3, writes=301) is not w1
    assert sim.prepare("temp-naive", "rand-write", 3, writes=300)[0] is not w1
    # a default that follows the memory: another memory, another workload
    m1 = shared("temp-naive", "mem-pressure", 0, mem_total_pages=1 << 18)
    m2 = shared("temp-naive", "mem-pressure", 0, mem_total_pages=1 << 19)
    assert m1 is not m2 and m1.params != m2.params


@pytest.mark.parametrize("key", ["reuse", "engine", "seed", "strategy", "workload"])
def test_a_parameter_named_like_an_argument_is_one_line(key):
    from bench.sim import sweep
    with pytest.raises(ValueError, match=f"unknown parameter '{key}'"):
        sweep.sweep(["temp-naive"], ["seq-write"], [0], "c", {key: 1}, jobs=1, progress=False)


def test_compare_sweep_returns_runs_in_workload_strategy_seed_order():
    from bench.sim import sweep
    strategies, workloads, seeds = ["no-temp-page", "temp-naive"], ["rand-write", "fsync-heavy"], [2, 0, 1]
    params = {"writes": 64}
    for jobs in (1, 2):
        runs = sweep.sweep(strategies, workloads, seeds, "c", params, jobs=jobs, progress=False)
        assert [(r.workload, r.strategy, r.seed) for r in runs] == \
            [(w, s, k) for w in workloads for s in strategies for k in seeds]
        for r in runs[::5]:
            whole = sim.run(r.strategy, r.workload, seed=r.seed, **r.params)
            assert r.metrics == whole.metrics
            # the series as a result file keeps it
            assert np.array_equal(r.series, results.thinned(whole.series))
    long = sweep.sweep(["temp-naive"], ["rand-write"], [0], "c",
                       {"writes": 4096, "sample_interval_ns": 10_000}, jobs=1, progress=False)[0]
    assert len(long.series) == results.MAX_SERIES_ROWS
