"""The C engine under AddressSanitizer and UndefinedBehaviorSanitizer.

tests/c/asan_driver.c runs fwb_run (and fwb_bare_loop, and fwb_run_stream on the same
rows in chunks) on an input file outside Python; it is built here with
-fsanitize=address,undefined and run on a few workloads under every strategy (and again
with the compact page space), chosen so that reads, throttling, reclaim,
compaction, stalls, hangs, secondaries, in-place updates, skips and waits all
happen, plus 256 server threads (the event heap grows), extreme but valid inputs
(saturating arithmetic) and the error paths.  Each run must exit as expected with
nothing else on stderr (no sanitizer report, no leak), and print the same numbers
as the in-process engine.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.sim import _cengine, ops as O, refsim
from bench import sim
from bench.sim.workload import Workload, from_arrays

ROOT = Path(__file__).resolve().parent.parent
KiB, MiB, MS = 1 << 10, 1 << 20, 1_000_000
SANITIZE = ["-std=c99", "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
            "-ffp-contract=off"]


def _every_op() -> Workload:
    """Three threads, two files, every op code, overlapping ranges."""
    rows = []
    for i in range(48):
        code = sorted(O.OP_NAMES)[i % len(O.OP_NAMES)]
        rows.append((i * 300_000, i % 3, code, i % 2, (i * 5000) % (96 * KiB),
                     (1 + i * 7919 % 30) * KiB if code not in O.MEMORY_OPS else (i + 1) * MiB))
    ops = O.make_ops(len(rows))
    for row, (t, th, code, f, off, ln) in zip(ops, rows):
        row["time"], row["thread"], row["op"], row["file"] = t, th, code, f
        row["offset"], row["length"] = (off, ln) if code != O.SYNC else (0, 0)
        if code == O.FSYNC:
            row["offset"] = row["length"] = 0
    return from_arrays(ops, np.array([40 * KiB, 0], dtype=np.int64), name="every-op")


# (workload, parameters): small enough for a sanitizer build, busy enough to reach every path.
CASES = [
    ("rand-write", dict(file_size=1 * MiB, writes=300, block_size=1000, threads=2,
                        server_threads=3)),
    ("rewrite-hot", dict(file_size=1 * MiB, hot_bytes=64 * KiB, rounds=12, interval_ns=MS,
                         fsync_every=0, server_threads=3, writer_waits=0, server_base_ns=500_000,
                         dirty_writeback_interval_ns=MS, dirty_expire_ns=0)),
    ("mmap-rewrite", dict(file_size=256 * KiB, rounds=2, msync_every=16, server_dist=2)),
    ("dio-redirty", dict(threads=2, rounds=12, fsync_every=2, file_size=1 * MiB,
                         buffer_bytes=64 * KiB, sync_waits=1)),
    ("fsync-heavy", dict(threads=2, writes=20, write_size=5000, max_pages=1)),
    ("mem-pressure", dict(file_size=24 * MiB, alloc_bytes=28 * MiB, chunk_bytes=2 * MiB,
                          mem_total_pages=8192, server_base_ns=500_000, compact_every=2,
                          think_ns=20_000, reclaim_retry_ns=100_000, reclaim_retries=2,
                          hold_ns=5 * MS, stall_start_ns=10 * MS, stall_ns=40 * MS,
                          hang_threshold_ns=MS, dirty_ratio=60, bdi_max_ratio=100,
                          dirty_background_ratio=50)),
    ("stuck-server", dict(duration_ns=200 * MS, interval_ns=5 * MS, stall_start_ns=20 * MS,
                          stall_ns=100 * MS, hang_threshold_ns=MS, block_size=64 * KiB)),
    ("stuck-server", dict(duration_ns=200 * MS, interval_ns=5 * MS, stall_start_ns=20 * MS,
                          stall_ns=40_000 * MS, request_timeout_ns=1000 * MS,
                          mem_total_pages=65536, block_size=64 * KiB)),
    ("multi-writer", dict(threads=3, file_size=512 * KiB, block_size=16 * KiB,
                          server_dist="lognormal", max_pages=4)),
    ("seq-write", dict(threads=3, file_size=4 * MiB, block_size=64 * KiB, server_threads=256,
                       max_background=1000, max_pages=1)),
    ("seq-write", dict(file_size=8 * MiB, block_size=4 * MiB, max_pages=65535)),
    ("every-op", dict(mem_total_pages=8192, server_threads=2, max_background=1, sync_waits=1,
                      reclaim_retry_ns=0, dirty_ratio=5, dirty_background_ratio=1,
                      bdi_max_ratio=100, max_samples=40, sample_interval_ns=100_000)),
]


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc)")
    if not _cengine.available():
        pytest.skip("the C engine is not built (bench.sim._fwb)")
    out = tmp_path_factory.mktemp("asan") / "asan_driver"
    sources = sorted(str(p) for p in (ROOT / "csrc").glob("*.c"))
    cmd = [cc, *SANITIZE, f"-I{ROOT / 'csrc'}", *sources, str(ROOT / "tests/c/asan_driver.c"),
           "-lm", "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"sanitizer build failed:\n{' '.join(cmd)}\n{done.stderr}"
    return out


def _input(cfg: dict, wl: Workload, seed: int) -> bytes:
    return _cengine.driver_input(cfg, wl.ops, wl.file_sizes, seed)


def _sum64(arr: np.ndarray) -> int:
    """The driver's checksum: the sum modulo 2**64, as an unsigned number."""
    return int(np.ascontiguousarray(arr, dtype=np.int64).view(np.uint64).sum(dtype=np.uint64))


def _expected(raw: dict) -> dict[str, int]:
    out = dict(raw["counters"])
    for pages, count in enumerate(raw["pages_per_request"]):
        if count:
            out[f"hist_{pages}"] = count
    for name, arr in raw["latency"].items():
        out[f"lat_{name}_n"] = len(arr)
        out[f"lat_{name}_sum"] = _sum64(arr)
    out["series_n"] = len(raw["series"])
    out["series_sum"] = _sum64(raw["series"])
    return out


def _run(driver: Path, path: Path, layout: str = "auto") -> subprocess.CompletedProcess:
    """The driver on an input file; fwb_run, or fwb_run_layout for another layout."""
    extra = [] if layout == "auto" else [str(_cengine.LAYOUTS[layout])]
    return subprocess.run([str(driver), str(path), *extra], capture_output=True, text=True,
                          timeout=300,
                          env={"ASAN_OPTIONS": "detect_leaks=1",
                               "UBSAN_OPTIONS": "print_stacktrace=1", "PATH": "/usr/bin:/bin"})


def _check_agrees(driver: Path, tmp_path: Path, cfg: dict, wl: Workload, seed: int,
                  what: str, layout: str = "auto") -> None:
    path = tmp_path / "input.bin"
    path.write_bytes(_input(cfg, wl, seed))
    done = _run(driver, path, layout)
    assert done.returncode == 0, f"{what}: exit {done.returncode}\n{done.stderr}"
    assert done.stderr == "", f"{what}: sanitizer report:\n{done.stderr}"
    got = {name: int(value) for name, value in (line.split() for line in done.stdout.splitlines())}
    assert set(refsim.COUNTERS) <= set(got)
    want = _expected(_cengine.simulate(cfg, wl.ops, wl.file_sizes, seed))
    want["bare_loop"] = _cengine.bare_loop(wl.ops, wl.file_sizes)
    # the same rows streamed 3 at a time, with and without folded latencies, and a bad chunk
    # and a failed fill (tests/c/asan_driver.c check_stream)
    want.update(stream_same=1, stream_fold_same=1, stream_einval=-2, stream_efill=-3)
    diff = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    assert not diff, f"{what}: driver vs in-process engine (driver, engine): {diff}"


@pytest.mark.parametrize("strategy", sim.strategies())
@pytest.mark.parametrize("workload,params", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_sanitized_run_is_clean_and_agrees(driver, tmp_path, workload, params, strategy):
    seed = 11
    wl = _every_op() if workload == "every-op" else workload
    wl, cfg = sim.prepare(strategy, wl, seed, **params)
    _check_agrees(driver, tmp_path, cfg, wl, seed, f"{workload} {strategy}")


@pytest.mark.parametrize("strategy", sim.strategies())
@pytest.mark.parametrize("workload,params", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_sanitized_compact_run_is_clean_and_agrees(driver, tmp_path, workload, params, strategy):
    """The same runs with the page state kept compact (csrc/pagespace.c), which auto picks
    for few ops over big files only: the same numbers, nothing out of bounds."""
    seed = 11
    wl = _every_op() if workload == "every-op" else workload
    wl, cfg = sim.prepare(strategy, wl, seed, **params)
    _check_agrees(driver, tmp_path, cfg, wl, seed, f"{workload} {strategy} compact", "compact")


def _extreme() -> Workload:
    """Valid by bench.sim.ops.validate_ops, absurd in size: 2**63-1 bytes of memory, a row at
    time 2**63-1.  refsim's int64 arrays overflow here; the C engine saturates."""
    big = (1 << 63) - 1
    spec = [(0, 0, O.WRITE, 0, 0, 5000), (1, 1, O.ALLOC, 0, 0, big), (2, 1, O.COMPACT, 0, 0, big),
            (3, 0, O.DIO_READ, 0, 4096, 1 << 20), (4, 1, O.FREE, 0, 0, big),
            (5, 0, O.FSYNC, 0, 0, 0), (1 << 62, 0, O.WRITE, 0, (1 << 30) - 4096, 4096),
            (big, 1, O.COMPACT, 0, 0, 1)]
    ops = O.make_ops(len(spec))
    for row, (t, th, code, f, off, ln) in zip(ops, spec):
        row["time"], row["thread"], row["op"], row["file"], row["offset"], row["length"] = (
            t, th, code, f, off, ln)
    return from_arrays(ops, np.array([1 << 30], dtype=np.int64), name="extreme")


@pytest.mark.parametrize("strategy", sim.strategies())
def test_extreme_values_saturate_cleanly(driver, tmp_path, strategy):
    wl, cfg = sim.prepare(strategy, _extreme(), 1, max_time_ns=1 << 62, server_dist=2,
                          server_sigma=4.0, compact_page_ns=10**9,
                          dirty_writeback_interval_ns=3600 * 10**9)
    _check_agrees(driver, tmp_path, cfg, wl, 1, f"extreme {strategy}")


def test_errors_free_everything(driver, tmp_path):
    """ENOMEM (more pages than the engine indexes) and EINVAL leave nothing behind; a bad
    row is found in the set-up's pass over the rows, after its first allocations."""
    wl, cfg = sim.prepare("merge-in-queue", "fsync-heavy", 0, threads=1, writes=2)
    huge = from_arrays(wl.ops, np.full(1024, 1 << 40, dtype=np.int64), name="huge")
    bad = dict(cfg, server_threads=0)
    rows = wl.ops.copy()
    rows["thread"][-1] = 64     # MAX_THREADS: past the last thread
    bad_row = SimpleNamespace(ops=rows, file_sizes=wl.file_sizes)
    for c, w, code, exc in ((cfg, huge, -1, MemoryError), (bad, wl, -2, ValueError),
                            (cfg, bad_row, -2, ValueError)):
        path = tmp_path / "input.bin"
        path.write_bytes(_input(c, w, 0))
        done = _run(driver, path)
        assert done.returncode == 2, done.stderr
        assert done.stderr == f"fwb_run: error {code}\n", done.stderr
        with pytest.raises(exc):
            _cengine.simulate(c, w.ops, w.file_sizes, 0)
