"""The real-mount runner: a live FUSE server, the C driver, and that no mount is left behind.

Skipped (with bench.real.mount.available()'s reason) where mounting is impossible: no /dev/fuse, not
root, libfuse3 or the built server missing.
"""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bench.real import mount
from bench.sim import workload
from bench.sim.ops import OP_DTYPE, PAGE_SIZE

OK, WHY = mount.available()
pytestmark = pytest.mark.skipif(not OK, reason=WHY or "mount available")
MiB = 1 << 20
S = 1_000_000_000


@pytest.fixture(autouse=True)
def no_mount_left():
    # Only this process's mounts: another run on the machine may hold mounts of its own.
    assert mount.mounted_fwb(owner=os.getpid()) == [], "a previous test left a mount"
    yield
    assert mount.mounted_fwb(owner=os.getpid()) == [], "fwb mount left in /proc/self/mountinfo"


def _writes(r):
    return r.log[r.log["kind"] == mount.KIND_WRITE]


def test_seq_write_log_matches_the_application():
    r = mount.execute("seq-write", file_size=8 * MiB, block_size=256 * 1024, max_write=65536)
    m = r.run.metrics
    w = _writes(r)
    assert m["bytes_dirtied"] == m["bytes_written"] == 8 * MiB == int(w["size"].sum())
    assert m["requests"] == len(w) >= 8 * MiB // 65536
    assert (w["flags"] & mount.FLAG_WRITE_CACHE).all(), "every WRITE should come from writeback"
    assert max(m["pages_per_request"]) <= 65536 // PAGE_SIZE
    assert m["write_latency_ns"]["count"] == 32 and m["fsync_latency_ns"]["count"] == 1
    assert m["app_throughput_bps"] > 0 and m["wb_throughput_bps"] > 0
    assert r.run.strategy == mount.kernel_name() and r.run.engine == "mount"
    assert r.run.meta["family"] == r.info["family"]
    assert r.info["family"] in ("no-temp-page", "temp-page")
    assert r.run.series.shape[1] == 6 and len(r.samples) >= 1


def test_rand_write_every_written_page_reaches_the_server():
    wl = workload.make("rand-write", seed=3, file_size=4 * MiB, writes=512)
    r = mount.execute(wl, seed=3)
    w = _writes(r)
    assert (w["flags"] & mount.FLAG_WRITE_CACHE).all()
    assert max(r.run.metrics["pages_per_request"]) <= 32
    sent = set()
    for off, size in zip(w["offset"], w["size"]):
        sent.update(range(off // PAGE_SIZE, (off + size - 1) // PAGE_SIZE + 1))
    dirtied = set((wl.ops["offset"][wl.ops["op"] == 0] // PAGE_SIZE).tolist())
    assert dirtied <= sent
    assert r.run.metrics["bytes_written"] >= len(dirtied) * PAGE_SIZE


def test_stall_holds_fsync_but_not_write():
    # Writes every 20 ms for 1 s with an fsync at 0.5 s; the server holds WRITEs in 0.1..2.1 s.
    r = mount.execute("stuck-server", block_size=128 * 1024, interval_ns=20_000_000,
                      duration_ns=1 * S, stall_start_ns=S // 10, stall_ns=2 * S)
    m = r.run.metrics
    assert 1.3 * S < m["fsync_latency_ns"]["max"] < 3 * S, m["fsync_latency_ns"]
    assert m["write_latency_ns"]["p50"] < S // 10, m["write_latency_ns"]
    w = _writes(r)
    held = w[w["t_recv_ns"] - r.t0_ns < int(1.5 * S)]
    assert len(held) and (held["t_reply_ns"] - r.t0_ns >= int(2.1 * S) - 5_000_000).all()
    assert m["bytes_written"] == m["bytes_dirtied"]


def _server_pids():
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0] == os.fsencode(mount.SERVER):
                out.append(int(d.name))
    return out


def test_killed_server_is_cleaned_up_with_a_clear_error():
    before = set(_server_pids())

    def killer():
        time.sleep(0.8)
        for pid in set(_server_pids()) - before:
            os.kill(pid, signal.SIGKILL)

    t = threading.Thread(target=killer)
    t.start()
    with pytest.raises(RuntimeError, match=r"^the FUSE server \(pid \d+\) died during the run: "
                                           r"killed by SIGKILL"):
        mount.execute("stuck-server", block_size=128 * 1024, interval_ns=20_000_000,
                      duration_ns=1 * S, stall_start_ns=S // 10, stall_ns=3 * S)
    t.join()


def test_sigterm_to_the_running_process_unmounts(tmp_path):
    script = textwrap.dedent("""
        from bench.real import mount
        mount.run("stuck-server", block_size=131072, interval_ns=20_000_000,
                  duration_ns=1_000_000_000, stall_start_ns=0, stall_ns=20_000_000_000)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parent.parent,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not mount.mounted_fwb(owner=proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mount.mounted_fwb(owner=proc.pid), "the child never mounted"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert "interrupted by SIGTERM; the mount was removed" in err


def test_clear_errors():
    with pytest.raises(RuntimeError, match=r"^server failed to start"):
        mount.Mount(mount.ServerOptions(max_write=100)).start()
    with pytest.raises(ValueError, match=r"^dirty_ratio: a simulator parameter"):
        mount.run("seq-write", dirty_ratio=5)
    with pytest.raises(ValueError, match=r"^bogus: unknown parameter"):
        mount.run("seq-write", bogus=1)


def test_mmap_dio_and_memory_ops_run():
    ops = np.zeros(7, OP_DTYPE)
    ops["op"] = [1, 2, 4, 5, 6, 7, 3]    # store, dio read, msync, sync, alloc, free, fsync
    ops["offset"] = [0, 65536, 0, 0, 0, 0, 0]
    ops["length"] = [8192, 65536, 1 * MiB, 0, 4 * MiB, 4 * MiB, 0]
    wl = workload.from_arrays(ops, np.array([1 * MiB]), name="mixed")
    r = mount.execute(wl)
    assert (r.latency_ns >= 0).all()
    assert r.faults[0] > 0 and r.run.metrics["fault_latency_ns"]["count"] == 1
    assert r.run.metrics["bytes_written"] >= 8192 + 65536
