"""The C engine against the Python reference: identical raw results.

Hypothesis draws small random configurations and random operation arrays that
use every op code, so that every path of both engines (throttling, reclaim,
stalls, secondaries, reads, sync) is taken on some example.
"""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from bench.sim import _cengine, ops as O, refsim
from bench import sim
from bench.sim import workload
from bench.sim.workload import from_arrays
from bench.results.compare import DEFAULT_SUITE
from conftest import assert_same_raw

KB = 1024
MS = 1_000_000


def _any_range(draw):
    """op_arrays' default placement: any range over the first 128 KiB and a bit more."""
    return lambda: (draw(st.integers(0, 128 * KB)), draw(st.integers(1, 160 * KB)))


@st.composite
def op_arrays(draw, file_size=st.integers(0, 96 * KB), placement=_any_range, name="random"):
    """Random operation arrays over every op code.  placement(draw), drawn once an array
    after the files' sizes: a function that draws (offset, length) for a range op."""
    nfiles = draw(st.integers(1, 3))
    sizes = np.array([draw(file_size) for _ in range(nfiles)], dtype=np.int64)
    place = placement(draw)
    threads = draw(st.integers(1, 3))
    n = draw(st.integers(1, 40))
    rows = O.make_ops(n)
    times = sorted(draw(st.lists(st.integers(0, 40 * MS), min_size=n, max_size=n)))
    for i in range(n):
        code = draw(st.sampled_from(sorted(O.OP_NAMES)))
        rows[i]["time"] = times[i]
        rows[i]["thread"] = draw(st.integers(0, threads - 1))
        rows[i]["op"] = code
        rows[i]["file"] = draw(st.integers(0, nfiles - 1))
        if code in O.FILE_RANGE_OPS:
            rows[i]["offset"], rows[i]["length"] = place()
        elif code in O.MEMORY_OPS:
            rows[i]["length"] = draw(st.integers(1, 40 << 20))
    return from_arrays(rows, sizes, name=name)


@st.composite
def configs(draw):
    p = {
        # 65 and 256: server threads beyond the first 64-bit word of the C idle-thread bitmap
        "server_threads": draw(st.sampled_from([1, 2, 3, 4, 65, 256])),
        "server_dist": draw(st.integers(0, 2)),
        "server_sigma": draw(st.sampled_from([0.0, 0.5, 1.5])),
        "server_base_ns": draw(st.integers(1, 2 * MS)),
        "server_page_ns": draw(st.integers(0, 100_000)),
        "max_pages": draw(st.integers(1, 8)),
        "max_background": draw(st.sampled_from([1, 2, 3, 4, 100])),
        "mem_total_pages": draw(st.integers(8192, 14000)),
        "dirty_ratio": draw(st.integers(2, 40)),
        "bdi_max_ratio": draw(st.sampled_from([1, 2, 5, 20, 100])),
        "dirty_writeback_interval_ns": draw(st.integers(MS, 20 * MS)),
        "dirty_expire_ns": draw(st.integers(0, 10 * MS)),
        "reclaim_retry_ns": draw(st.integers(0, 2 * MS)),
        "reclaim_retries": draw(st.integers(0, 3)),
        "sync_waits": draw(st.integers(0, 1)),
        "bg_start": draw(st.integers(0, 1)),
        "hang_threshold_ns": draw(st.integers(1, 20 * MS)),
        "sample_interval_ns": draw(st.integers(100_000, 5 * MS)),
        "max_samples": draw(st.integers(1, 500)),
        "cpus": draw(st.sampled_from([0, 1, 2, 3])),
        "server_cpu_pct": draw(st.sampled_from([0, 30, 100])),
        "server_cpus": draw(st.sampled_from([0, 1, 2])),
        "cache_add_ns": draw(st.integers(0, 5000)),
        "wakeup_ns": draw(st.sampled_from([0, 3000, 20_000])),
        "server_wakeup_ns": draw(st.sampled_from([0, 4000])),
        "server_new_page_ns": draw(st.integers(0, 50_000)),
        "dirty_ratelimit_pps": draw(st.sampled_from([1, 100, 2560, 25600, 100_000])),
        "max_pause_ns": draw(st.integers(MS, 50 * MS)),
        "hz": draw(st.sampled_from([100, 250, 300, 1000])),
        "wb_chunk_pages": draw(st.sampled_from([0, 1, 3, 64])),
        # the temp-page path's costs, each paid by its own actor (flusher, writer, reply)
        "page_copy_ns": draw(st.sampled_from([0, 700, 40_000])),
        "temp_alloc_ns": draw(st.sampled_from([0, 300, 30_000])),
        "temp_free_ns": draw(st.sampled_from([0, 200, 50_000])),
        "wb_lookup_ns": draw(st.sampled_from([0, 90, 20_000])),
        "wb_tree_ns": draw(st.sampled_from([0, 250, 60_000])),
        "end_writeback_ns": draw(st.sampled_from([0, 150, 70_000])),
    }
    p["dirty_background_ratio"] = draw(st.integers(0, p["dirty_ratio"] - 1))
    if draw(st.booleans()):
        p["stall_start_ns"] = draw(st.integers(0, 30 * MS))
        p["stall_ns"] = draw(st.integers(1, 30 * MS))
    return p


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=st.sampled_from(sim.strategies()), w=op_arrays(), params=configs(),
       extra=st.fixed_dictionaries({"writer_waits": st.integers(0, 1)}),
       merge_primary=st.integers(0, 1), seed=st.integers(0, 2**32))
def test_random_configurations_agree(strategy, w, params, extra, merge_primary, seed):
    if strategy == "merge-in-queue":
        extra["merge_queued_primary"] = merge_primary
    # max_time_ns 30 s, not the table's hour: a drawn configuration that leaves a writer stuck
    # is still compared to its end, without the Python engine ticking for an hour of time
    wl, cfg = sim.prepare(strategy, w, seed, **params, **extra, max_time_ns=30 * 10**9)
    a = refsim.simulate(cfg, wl.ops, wl.file_sizes, seed)
    b = _cengine.simulate(cfg, wl.ops, wl.file_sizes, seed)
    assert_same_raw(a, b, f"{strategy} {params} {extra} seed={seed}")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=st.sampled_from(["iomap-blocks", "large-folio"]), w=op_arrays(), params=configs(),
       max_pages=st.sampled_from([4, 16, 32, 64]), writer_waits=st.integers(0, 1),
       seed=st.integers(0, 2**32))
def test_folio_strategies_agree_with_folios_up_to_64_pages(strategy, w, params, max_pages,
                                                           writer_waits, seed):
    # configs() keeps max_pages <= 8; large folios (up to max_pages pages) need more room
    params = {**params, "max_pages": max_pages}
    wl, cfg = sim.prepare(strategy, w, seed, **params, writer_waits=writer_waits,
                          max_time_ns=30 * 10**9)
    a = refsim.simulate(cfg, wl.ops, wl.file_sizes, seed)
    b = _cengine.simulate(cfg, wl.ops, wl.file_sizes, seed)
    assert_same_raw(a, b, f"{strategy} {params} writer_waits={writer_waits} seed={seed}")


def test_every_default_workload_agrees():
    for name in sim.workloads():
        # The standard suite as it is; the others (block-size presets, partial-rewrite) on a
        # 16 MiB file, enough for several 1 MiB folios and passes, at a quarter of the Python time.
        small = {} if name in DEFAULT_SUITE or "file_size" not in workload.workload_params(name) \
            else {"file_size": 16 << 20}
        for strategy in sim.strategies():
            wl, cfg = sim.prepare(strategy, name, 3, **small)
            a = refsim.simulate(cfg, wl.ops, wl.file_sizes, 3)
            b = _cengine.simulate(cfg, wl.ops, wl.file_sizes, 3)
            assert_same_raw(a, b, f"{name} {strategy}")


def test_background_writeback_from_the_bdis_own_threshold_agrees_and_starts_earlier():
    # bg_start=1 (0437906841d0): a pass starts once the bdi passes its background threshold,
    # not its freerun ceiling, so rand-write's passes find fewer dirty pages: more WRITEs.
    out = {}
    for bg in (0, 1):
        small = dict(bg_start=bg, writes=4096, mem_total_pages=1001786)   # a 4 GiB guest
        wl, cfg = sim.prepare("no-temp-page", "rand-write", 0, **small)
        a = refsim.simulate(cfg, wl.ops, wl.file_sizes, 0)
        b = _cengine.simulate(cfg, wl.ops, wl.file_sizes, 0)
        assert_same_raw(a, b, f"rand-write bg_start={bg}")
        out[bg] = sim.run("no-temp-page", "rand-write", 0, engine="c", **small).metrics["requests"]
    assert out[1] > out[0]


def test_run_api_engines_give_the_same_metrics():
    a = sim.run("merge-in-queue", "dio-redirty", seed=2, engine="python", rounds=40)
    b = sim.run("merge-in-queue", "dio-redirty", seed=2, engine="c", rounds=40)
    assert a.metrics == b.metrics
    assert a.engine == "python" and b.engine == "c"
