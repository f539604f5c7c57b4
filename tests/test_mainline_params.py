"""Model parameters mainline added since 6.16 (bench/sim/params.py): the FUSE request timeout,
max_pages past 256, the idle-bdi floor on the dirty threshold, sync(2) by kernel era and the
transport switch.  Each is held to the kernel rule it cites, in both engines."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import strategies
from bench.sim import _cengine, machine, params, prepare, refsim, run, simulate_raw

S = 1_000_000_000
MS = 1_000_000
# stuck-server on a 2 GiB machine (a small dirty limit, quick runs); the stall outlasts every
# timeout below
STUCK = dict(stall_ns=60 * S, mem_total_pages=524288, block_size=256 * 1024)

needs_c = pytest.mark.skipif(not _cengine.available(), reason="the C engine is not built")


def _raw(strategy: str, workload: str, engine: str, **p) -> dict:
    wl, cfg = prepare(strategy, workload, 0, **p)
    return simulate_raw(cfg, wl, 0, engine)


def _same(a: dict, b: dict) -> None:
    assert a["counters"] == b["counters"]
    assert list(a["pages_per_request"]) == list(b["pages_per_request"])
    for k in refsim.LATENCIES:
        assert np.array_equal(a["latency"][k], b["latency"][k]), k
    assert np.array_equal(a["series"], b["series"])


def _abort_at(stall_start: int, timeout: int) -> int:
    """fuse_check_timeout's rule: checks every 15 s from the first call; the first check after
    the oldest stuck request (made by stall_start) is older than the timeout aborts."""
    k = 1
    while k * refsim.TIMEOUT_PERIOD_NS <= stall_start + timeout:
        k += 1
    return k * refsim.TIMEOUT_PERIOD_NS


def _stall_start() -> int:
    _, cfg = prepare("no-temp-page", "stuck-server", 0, **STUCK)
    return cfg["stall_windows"][0][0]


# ---- request_timeout_ns (9b17cb59a7db)

@needs_c
@pytest.mark.parametrize("strategy", sorted(strategies.STRATEGIES))
def test_a_timeout_aborts_a_stuck_server_in_both_engines(strategy):
    c = _raw(strategy, "stuck-server", "c", request_timeout_ns=5 * S, **STUCK)
    py = _raw(strategy, "stuck-server", "python", request_timeout_ns=5 * S, **STUCK)
    _same(c, py)
    n = c["counters"]
    assert n["aborted_calls"] > 0 and n["stuck"] == 0
    assert n["lost_updates"] > 0          # what was in flight or dirty at the abort is gone
    off = _raw(strategy, "stuck-server", "c", **STUCK)["counters"]
    assert off["aborted_calls"] == 0 and off["lost_updates"] == 0
    assert n["t_end"] < off["t_end"]      # the hang ends at the abort, not at the stall's end


@pytest.mark.parametrize("timeout_s", [5, 20])
def test_the_abort_comes_at_the_first_15_s_check_past_the_timeout(timeout_s):
    r = run("no-temp-page", "stuck-server", request_timeout_ns=timeout_s * S, **STUCK)
    at = _abort_at(_stall_start(), timeout_s * S)
    # the writer was throttled until the abort; what it had left to do takes well under 1 s
    assert at <= r.metrics["makespan_ns"] < at + S
    assert r.metrics["aborted_calls"] > 0


def test_after_the_abort_calls_fail_at_once():
    r = run("no-temp-page", "stuck-server", request_timeout_ns=5 * S, **STUCK)
    at = _abort_at(_stall_start(), 5 * S)
    # the writer slept at the dirty limit from the stall until the abort woke it ...
    tmax = r.metrics["throttle_ns"]["max"]
    assert at - _stall_start() - S <= tmax <= at
    # ... and its fsyncs, both after the abort, failed at once instead of waiting
    lat = r.metrics["fsync_latency_ns"]
    assert lat["count"] == 2 and lat["max"] < params.PARAM_BY_NAME["hang_threshold_ns"].default
    off = run("no-temp-page", "stuck-server", **STUCK).metrics["fsync_latency_ns"]
    assert off["max"] > lat["max"]


@pytest.mark.parametrize("engine", ["python"] + (["c"] if _cengine.available() else []))
def test_a_timeout_that_never_fires_changes_no_metric(engine):
    # the default stall (1 s..5 s) is over before the first check at 15 s
    small = {k: v for k, v in STUCK.items() if k != "stall_ns"}
    on = run("temp-naive", "stuck-server", engine=engine, request_timeout_ns=2 * S, **small).metrics
    off = run("temp-naive", "stuck-server", engine=engine, **small).metrics
    assert on == off
    assert on["aborted_calls"] == 0


def test_request_timeout_is_whole_seconds():
    with pytest.raises(ValueError, match="request_timeout_ns"):
        params.resolve("no-temp-page", {"request_timeout_ns": S + 1})


# ---- max_pages up to 65535 (fs.fuse.max_pages_limit, 6.13)

@needs_c
@pytest.mark.parametrize("max_pages", [1024, 65535])
def test_big_max_pages_in_both_engines(max_pages):
    p = dict(file_size=64 * 1024 * 1024, block_size=8 * 1024 * 1024, max_pages=max_pages)
    c = _raw("no-temp-page", "seq-write", "c", **p)
    py = _raw("no-temp-page", "seq-write", "python", **p)
    _same(c, py)
    assert len(c["pages_per_request"]) == max_pages + 1
    sizes = [n for n, k in enumerate(c["pages_per_request"]) if k]
    assert max(sizes) > 256                # requests past the old limit
    r = run("no-temp-page", "seq-write", **p)
    assert max(r.metrics["pages_per_request"]) == max(sizes)   # the sparse {pages: count} form


def test_max_write_follows_max_pages():
    cfg = params.resolve("no-temp-page", {"max_pages": 65535})
    assert cfg["max_write"] == 65535 * 4096
    with pytest.raises(ValueError, match="max_pages"):
        params.resolve("no-temp-page", {"max_pages": 65536})


# ---- the idle-bdi floor (39ac99852fca)

@needs_c
def test_the_floor_lets_an_idle_bdi_write():
    p = dict(file_size=16 * 1024 * 1024, bdi_writeout_ppm=0)
    c = {f: _raw("no-temp-page", "seq-write", "c", wb_thresh_floor=f, **p) for f in (0, 1)}
    for f in (0, 1):
        _same(c[f], _raw("no-temp-page", "seq-write", "python", wb_thresh_floor=f, **p))
    span = {f: c[f]["counters"]["t_app_end"] - c[f]["counters"]["t_first"] for f in (0, 1)}
    assert span[1] < span[0]               # a threshold of 1 page throttles every write


@needs_c
def test_the_consolidated_floor_in_both_engines():
    p = dict(file_size=16 * 1024 * 1024, bdi_writeout_ppm=0, wb_thresh_floor=2)
    _same(_raw("temp-naive", "seq-write", "c", **p), _raw("temp-naive", "seq-write", "python", **p))


def test_the_floor_changes_nothing_for_the_only_writer():
    on = run("no-temp-page", "seq-write", engine="python", file_size=4 * 1024 * 1024,
             wb_thresh_floor=1).metrics
    off = run("no-temp-page", "seq-write", engine="python", file_size=4 * 1024 * 1024).metrics
    assert on == off


@pytest.mark.parametrize("floor", [1, 2])
def test_the_floor_is_a_hundredth_of_the_room_bounded_by_the_share(floor):
    wl, cfg = prepare("no-temp-page", "seq-write", 0, bdi_writeout_ppm=0, wb_thresh_floor=floor,
                      file_size=1024 * 1024)
    sim = refsim.Sim(cfg, wl.ops, wl.file_sizes, 0)
    dirtyable = cfg["mem_total_pages"]
    thresh = dirtyable * cfg["dirty_ratio"] // 100
    cap = dirtyable * cfg["dirty_ratio"] * cfg["bdi_max_ratio"] // 10000
    # 39ac99852fca: at most a quarter of the max_ratio share; its consolidation: the share
    assert sim.dirty_limit() == min(thresh // 100, cap // 4 if floor == 1 else cap)
    sim.dirty_total = thresh - 50          # little room left: the floor shrinks with it
    assert sim.dirty_limit() == 1


# ---- sync(2) by era and the transport switch, per shipped machine profile

@pytest.mark.parametrize("name,waits", [("qemu-6.1-2cpu-4g", 0), ("qemu-6.12-2cpu-4g", 0),
                                        ("qemu-7.2-2cpu-4g", 0), ("ci-2cpu-24g", 0)])
def test_sync_waits_by_kernel_era(name, waits, monkeypatch):
    # No shipped kernel waits: temp-page ones have nothing of the server's to wait for (their
    # profiles keep 0, so kernels ab's other strategy does not wait there either), 7.2 and this
    # host carry 76f9377cd2ab; 1 is the 6.16-to-f9a49aa302a0 window, which no profile models.
    monkeypatch.setenv(machine.ENV, name)
    assert params.resolve("no-temp-page", {})["sync_waits"] == waits


# qemu-7.2 has measured io_uring costs (tests/test_uring.py checks them)
@pytest.mark.parametrize("name", [n for n in machine.packaged() if n != "qemu-7.2-2cpu-4g"])
def test_io_uring_is_refused_where_not_measured(name, monkeypatch):
    monkeypatch.setenv(machine.ENV, name)
    with pytest.raises(ValueError, match=r"^transport: io_uring: not measured on machine "):
        params.resolve("no-temp-page", {"transport": "io_uring"})
    assert params.resolve("no-temp-page", {"transport": "dev"})["transport"] == 0


def _profile(tmp_path: Path, body: str) -> str:
    p = tmp_path / "m.toml"
    p.write_text('format = "fwb-machine-profile"\nschema_version = 2\nbase = "ci-2cpu-24g"\n'
                 + body)
    return str(p)


def test_measured_io_uring_costs_replace_the_dev_ones(tmp_path, monkeypatch):
    monkeypatch.setenv(machine.ENV, _profile(
        tmp_path, "[transport.io_uring]\nserver_base_ns = 1234\nserver_wakeup_ns = 0\n"))
    dev = params.resolve("no-temp-page", {})
    uring = params.resolve("no-temp-page", {"transport": "io_uring"})
    assert (uring["server_base_ns"], uring["server_wakeup_ns"]) == (1234, 0)
    assert dev["server_base_ns"] != 1234
    assert params.resolve("no-temp-page", {"transport": 1, "server_base_ns": 99})[
        "server_base_ns"] == 99            # the caller's value still wins


@pytest.mark.parametrize("body,field", [
    ("[transport.io_uring]\nnot_measured = \"x\"\nserver_base_ns = 1\n", "not_measured"),
    ("[transport.io_uring]\nwrite_page_ns = 1\n", "write_page_ns"),
    ("[transport.dev]\nserver_base_ns = 1\n", "transport.dev"),
])
def test_a_bad_transport_table_is_one_error_naming_the_field(tmp_path, body, field):
    with pytest.raises(ValueError, match=field):
        machine.load(_profile(tmp_path, body))
