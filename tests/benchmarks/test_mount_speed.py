"""pytest-benchmark: is our FUSE server the bottleneck of seq-write with 1 MiB blocks?

The same C workload driver (bench.real._driver, via bench.real.calibrate.run_driver) writes 64 MiB in
1 MiB pwrite(2) calls to a new file and fsyncs it, on a fresh file of

  - tmpfs (/dev/shm): the page cache alone, no writeback at all: the floor;
  - the FUSE mount (writeback cache, max_write 128 KiB): page cache + writeback to our server.

Each round uses a new file (unlinked afterwards), so every round allocates its page-cache pages
and, on the mount, the server's memory.  A third measurement runs the mount's seq-write once
through bench.real.mount.execute and reads the server's log: the share of the writeback span in
which at least one WRITE handler was running ("server busy").  A server that is busy for most
of the span, with handler times far above the idle round trip, is the bottleneck.  A module fixture
prints the figures at the end (conftest.py's summary knows only the engines').
"""
import os
import tempfile

import numpy as np
import pytest

from bench.real import calibrate, mount
from bench.sim import workload

OK, WHY = mount.available()
pytestmark = pytest.mark.skipif(not OK, reason=WHY or "mount available")
MiB = 1 << 20
SIZE = 64 * MiB
FIGURES: dict[str, float] = {}


def _ops():
    return workload.make("seq-write", 0, file_size=SIZE, block_size=MiB).ops


def _round(directory: str, counter=[0]):
    counter[0] += 1
    return (os.path.join(directory, f"bench-{os.getpid()}-{counter[0]}"),), {}


def _write_file(path: str) -> None:
    try:
        calibrate.run_driver([path], _ops())
    finally:
        os.unlink(path)


@pytest.fixture(scope="module")
def fuse_dir():
    with mount.Mount() as m:
        yield m.path


def test_seq_write_tmpfs(benchmark):
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    with tempfile.TemporaryDirectory(dir=shm) as d:
        benchmark.pedantic(_write_file, setup=lambda: _round(d), rounds=7, warmup_rounds=1)
    FIGURES["tmpfs"] = benchmark.stats.stats.median


def test_seq_write_fuse(benchmark, fuse_dir):
    benchmark.pedantic(_write_file, setup=lambda: _round(fuse_dir), rounds=7, warmup_rounds=1)
    FIGURES["fuse"] = benchmark.stats.stats.median


def test_seq_write_server_busy(benchmark):
    """One mount run; the server log's busy share of the writeback span (not a timing)."""
    res = benchmark.pedantic(mount.execute, args=("seq-write",),
                             kwargs={"file_size": SIZE, "block_size": MiB}, rounds=1, iterations=1)
    w = res.log[res.log["kind"] == mount.KIND_WRITE]
    assert int(w["size"].sum()) == SIZE
    order = np.argsort(w["t_recv_ns"])
    busy, end = 0, -1
    for s, e in zip(w["t_recv_ns"][order], w["t_reply_ns"][order]):
        s = max(int(s), end)
        if e > s:
            busy += int(e) - s
            end = int(e)
    span = int(w["t_reply_ns"].max() - w["t_recv_ns"].min())
    handler = w["t_reply_ns"] - w["t_recv_ns"]
    FIGURES["busy_share"] = busy / span
    FIGURES["handler_p50_us"] = float(np.median(handler)) / 1e3
    FIGURES["handler_p90_us"] = float(np.percentile(handler, 90)) / 1e3
    FIGURES["app_mbps"] = res.run.metrics["app_throughput_bps"] / 1e6
    FIGURES["wb_mbps"] = res.run.metrics["wb_throughput_bps"] / 1e6


@pytest.fixture(scope="module", autouse=True)
def report(request):
    """Print the figures after the module's benchmarks (conftest.py knows only the engines')."""
    yield
    if not FIGURES:
        return
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print(_figures())


def _figures() -> str:
    lines = ["", "mount speed (seq-write, 64 MiB in 1 MiB writes + fsync, new file per round):"]
    if "tmpfs" in FIGURES:
        lines.append(f"  tmpfs  {FIGURES['tmpfs'] * 1e3:8.1f} ms  {SIZE / FIGURES['tmpfs'] / 1e6:7.0f} MB/s")
    if "fuse" in FIGURES:
        lines.append(f"  FUSE   {FIGURES['fuse'] * 1e3:8.1f} ms  {SIZE / FIGURES['fuse'] / 1e6:7.0f} MB/s")
    if "tmpfs" in FIGURES and "fuse" in FIGURES:
        lines.append(f"  FUSE / tmpfs time = {FIGURES['fuse'] / FIGURES['tmpfs']:.2f}x")
    if "busy_share" in FIGURES:
        lines.append(f"  one mount run: app {FIGURES['app_mbps']:.0f} MB/s, writeback "
                     f"{FIGURES['wb_mbps']:.0f} MB/s; server busy {FIGURES['busy_share']:.0%} of "
                     f"the writeback span; WRITE handler p50 {FIGURES['handler_p50_us']:.0f} us, "
                     f"p90 {FIGURES['handler_p90_us']:.0f} us")
    return "\n".join(lines)
