"""Traces: the file format, its checks (and a fuzzer), server-log conversion, replay, record.

Everything but the last section runs anywhere: the traces are built from generated workloads and
synthetic server logs.  The record tests need a mount and skip with bench.real.mount.available()'s
reason (the real-program ones also when fio/git/tar is missing).
"""
import argparse
import os
import shutil
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bench.real import mount, programs, trace
from bench import sim
from bench.sim import workload
from bench.sim.ops import FSYNC, MMAP_STORE, OP_DTYPE, WRITE

MiB = 1 << 20


def _workload_trace(**kw) -> trace.Trace:
    wl = workload.make("rewrite-hot", seed=1, file_size=1 * MiB, hot_bytes=64 * 1024, rounds=3,
                        interval_ns=1_000_000, **kw)
    n = len(wl.ops)
    timing = np.zeros(n, trace.TIMING_DTYPE)
    timing["start_ns"] = wl.ops["time"] + np.arange(n) * 1000
    timing["end_ns"] = timing["start_ns"] + 500
    log = np.zeros(3, trace.LOG_DTYPE)
    log["t_recv_ns"] = [10, 20, 30]
    log["t_reply_ns"] = [15, 25, 35]
    log["ino"], log["size"], log["kind"] = 2, [4096, 8192, 0], [0, 0, 2]
    return trace.make_trace("workload", wl.name, wl.params, 1, wl.ops, timing, log,
                            wl.file_sizes, {"engine": "test"})


def _log(rows) -> np.ndarray:
    """LOG_DTYPE from (t_recv, kind, ino, offset, size, pid[, flags]) tuples."""
    out = np.zeros(len(rows), trace.LOG_DTYPE)
    for i, r in enumerate(rows):
        t, kind, ino, off, size, pid = r[:6]
        out[i] = (t, t + 100, ino, off, size, kind, r[6] if len(r) > 6 else 0, pid, 0)
    return out


def _program_trace() -> trace.Trace:
    log = _log([(1000, 3, 5, 0, 0, 7),            # FLUSH before any write: not a row
                (2000, 0, 5, 0, 8192, 7),
                (2500, 1, 5, 0, 4096, 7),         # READ: not a row
                (3000, 0, 6, 4096, 100, 9),
                (4000, 2, 5, 0, 0, 9),
                (5000, 3, 6, 0, 0, 7)])
    ops, timing, sizes, source = trace.from_server_log(log, t0_ns=500)
    rel = log.copy()
    rel["t_recv_ns"] -= 500
    rel["t_reply_ns"] -= 500
    return trace.make_trace("program", "demo", {}, 0, ops, timing, rel, sizes, source)


# ------------------------------------------------------------------ format
def test_round_trip(tmp_path):
    t = _workload_trace()
    p = trace.save(t, tmp_path / "a.trace")
    u = trace.load(p)
    assert u.header == t.header
    for name in ("ops", "timing", "log"):
        assert getattr(u, name).tobytes() == getattr(t, name).tobytes()
    assert trace.dumps(u) == p.read_bytes()
    assert p.read_bytes()[:8] == b"FWBTRACE"
    assert u.header["provenance"]["command"] == "record"
    with pytest.raises(ValueError, match="exists"):
        trace.save(t, p)
    trace.save(t, p, overwrite=True)
    assert [f.name for f in tmp_path.iterdir()] == ["a.trace"]   # no temp file left behind


def test_summary_counts():
    s = _program_trace().summary()
    assert s == {"rows": 4, "threads": 2, "files": 2, "write_rows": 2, "fsync_rows": 2,
                 "bytes_dirtied": 8292, "log_writes": 2, "log_bytes": 8292, "log_fsyncs": 1,
                 "log_flushes": 2}


def _bytes() -> bytes:
    return trace.dumps(_workload_trace())


def _header_len(data: bytes) -> int:
    return struct.unpack_from("<I", data, 12)[0]


def _with_header(data: bytes, edit) -> bytes:
    import json
    hlen = _header_len(data)
    h = json.loads(data[16:16 + hlen])
    edit(h)
    return _rebuild(h, trace.loads(data))


def _rebuild(h: dict, t: trace.Trace) -> bytes:
    import json
    head = json.dumps(h).encode()
    pad = -(16 + len(head)) % 8
    return (b"FWBTRACE" + struct.pack("<II", 1, len(head)) + head + bytes(pad)
            + t.ops.tobytes() + t.timing.tobytes() + t.log.tobytes())


def _row_offset(data: bytes) -> int:
    hlen = _header_len(data)
    return 16 + hlen + (-(16 + hlen) % 8)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: b"", "truncated header"),
    (lambda d: b"FWBTR", "truncated header"),
    (lambda d: b"NOTATRACEFILE" + d[13:], "bad magic"),
    (lambda d: d[:8] + struct.pack("<I", 2) + d[12:], "unsupported version 2"),
    (lambda d: d[:12] + struct.pack("<I", 0) + d[16:], "header length 0"),
    (lambda d: d[:40], "truncated header"),
    (lambda d: d[:16] + b"}" + d[17:], "not valid JSON"),
    (lambda d: d[:-7], "truncated rows"),
    (lambda d: d + bytes(48), "row counts disagree"),
    (lambda d: _with_header(d, lambda h: h.pop("file_sizes")), "missing 'file_sizes'"),
    (lambda d: _with_header(d, lambda h: h.update(kind="movie")), "kind must be one of"),
    (lambda d: _with_header(d, lambda h: h.update(n_ops=h["n_ops"] - 1)), "row counts disagree"),
    (lambda d: _with_header(d, lambda h: h.update(n_log=h["n_log"] + 1)), "truncated rows"),
    (lambda d: _with_header(d, lambda h: h.update(version=7)), "version 7 disagrees"),
])
def test_malformed_traces_name_the_problem(mutate, message):
    with pytest.raises(ValueError, match=message) as exc:
        trace.loads(mutate(_bytes()), "trace t")
    assert str(exc.value).startswith("trace t: ") and "\n" not in str(exc.value)


def _poke(data: bytes, at: int, fmt: str, value) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, at, value)
    return bytes(b)


def test_bad_rows_name_the_problem():
    d = _bytes()
    a = _row_offset(d)
    n = _workload_trace().header["n_ops"]
    row = OP_DTYPE.itemsize
    # time of row 1 below row 0's: out of order
    with pytest.raises(ValueError, match="ops: time: out of order at row"):
        trace.loads(_poke(_poke(d, a, "<q", 10**12), a + row, "<q", 1))
    with pytest.raises(ValueError, match="ops: op: unknown op code 99"):
        trace.loads(_poke(d, a + OP_DTYPE.fields["op"][1], "<i", 99))
    with pytest.raises(ValueError, match="ops: thread"):
        trace.loads(_poke(d, a + OP_DTYPE.fields["thread"][1], "<i", 64))
    tim = a + n * row
    with pytest.raises(ValueError, match="timing: row 0 ends before it starts"):
        trace.loads(_poke(_poke(d, tim, "<q", 99), tim + 8, "<q", 5))
    log = tim + n * trace.TIMING_DTYPE.itemsize
    with pytest.raises(ValueError, match="log: unknown request kind 9"):
        trace.loads(_poke(d, log + trace.LOG_DTYPE.fields["kind"][1], "<H", 9))
    with pytest.raises(ValueError, match="log: t_recv_ns out of order at row 1"):
        trace.loads(_poke(_poke(d, log, "<q", 29), log + 8, "<q", 40))
    with pytest.raises(ValueError, match="replied before it is received"):
        trace.loads(_poke(d, log + 8, "<q", 1))


VALID = _bytes()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_parser_returns_a_trace_or_raises_value_error(data):
    d = bytearray(VALID)
    for _ in range(data.draw(st.integers(0, 6))):
        how = data.draw(st.sampled_from(["flip", "byte", "cut", "insert", "delete"]))
        if not d:
            break
        i = data.draw(st.integers(0, len(d) - 1))
        if how == "flip":
            d[i] ^= 1 << data.draw(st.integers(0, 7))
        elif how == "byte":
            d[i] = data.draw(st.integers(0, 255))
        elif how == "cut":
            del d[i:]
        elif how == "insert":
            d[i:i] = data.draw(st.binary(min_size=1, max_size=16))
        else:
            del d[i:i + data.draw(st.integers(1, 16))]
    try:
        t = trace.loads(bytes(d))
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(t, trace.Trace)
    assert trace.loads(trace.dumps(t)).header == t.header


# ------------------------------------------------------------------ conversions
def test_from_server_log_maps_threads_files_and_flushes():
    t = _program_trace()
    o = t.ops
    assert list(o["op"]) == [WRITE, WRITE, FSYNC, FSYNC]
    assert list(o["time"]) == [1500, 2500, 3500, 4500]
    assert list(o["thread"]) == [0, 1, 1, 0]       # pid 7 then pid 9
    assert list(o["file"]) == [0, 1, 0, 1]         # ino 5 then ino 6
    assert list(o["offset"]) == [0, 4096, 0, 0] and list(o["length"]) == [8192, 100, 0, 0]
    assert list(t.timing["end_ns"] - t.timing["start_ns"]) == [100] * 4
    assert t.header["file_sizes"] == [0, 0]
    assert t.header["source"]["inodes"] == [5, 6] and t.header["source"]["pids"] == [7, 9]


def test_from_server_log_folds_pids_and_maps_writeback_writes():
    log = _log([(i * 10, 0, 2, i * 4096, 4096, 1000 + i) for i in range(70)]
               + [(800, 0, 2, 0, 4096, 5, trace.FLAG_WRITE_CACHE)])
    ops, _, _, source = trace.from_server_log(log)
    assert list(ops["thread"][:70]) == [i % 64 for i in range(70)]
    assert source["pids_folded"] == 7 and len(source["pids"]) == 64
    assert ops["op"][-1] == MMAP_STORE


def test_from_server_log_errors():
    with pytest.raises(ValueError, match="wrote nothing"):
        trace.from_server_log(_log([(1, 2, 5, 0, 0, 1), (2, 1, 5, 0, 4096, 1)]))
    many = _log([(i, 0, 10 + i, 0, 1, 1) for i in range(1025)])
    with pytest.raises(ValueError, match="more than 1024 files"):
        trace.from_server_log(many)


def test_to_workload_timings():
    t = _workload_trace()
    sched = trace.to_workload(t, "scheduled")
    assert sched.ops.tobytes() == t.ops.tobytes()
    rec = trace.to_workload(t)
    assert list(rec.ops["time"]) == list(t.timing["start_ns"])
    assert rec.name == "trace:rewrite-hot"
    p = trace.to_workload(_program_trace())
    assert len(p.ops) == 6 and list(p.ops["op"][-2:]) == [FSYNC, FSYNC]
    assert list(p.ops["file"][-2:]) == [0, 1]
    with pytest.raises(ValueError, match="timing"):
        trace.to_workload(t, "live")


# ------------------------------------------------------------------ replay and CLI
@pytest.mark.parametrize("engine", ["python", "c"])
def test_replay_runs_every_strategy(engine):
    if engine == "c":
        from bench.sim import _cengine
        if not _cengine.available():
            pytest.skip("C engine not built")
    suite = trace.replay(_program_trace(), seeds=2, engine=engine)
    assert suite.strategies() == sim.strategies()
    assert len(suite.runs) == 2 * len(sim.strategies())
    assert all(r.workload == "trace:demo" and r.engine == engine for r in suite.runs)
    assert all(r.metrics["lost_updates"] == 0 for r in suite.runs)


def _cli() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench")
    trace.add_parsers(parser.add_subparsers(dest="verb", required=True))
    return parser


def test_cli_parses_the_three_record_forms():
    p = _cli()
    a = p.parse_args(["record", "seq-write", "--param", "file_size=4096", "-o", "t"])
    assert (a.workload, a.command, a.param, a.out) == ("seq-write", None, ["file_size=4096"], "t")
    a = p.parse_args(["record", "-o", "t", "--", "ls", "-l", "--", "x"])
    assert (a.workload, a.command) == (None, ["ls", "-l", "--", "x"])
    a = p.parse_args(["record", "--program", "git-commits", "-o", "t"])
    assert a.program == "git-commits" and a.func is trace.cmd_record


def test_cli_replay_prints_tables(tmp_path, capsys):
    path = trace.save(_program_trace(), tmp_path / "p.trace")
    args = _cli().parse_args(["replay", str(path), "--engine", "python",
                              "--out", str(tmp_path / "r.json")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"trace:demo: replay of {path}, 1 seed(s), python engine")
    assert "no-temp-page" in out and "lost updates" in out
    assert (tmp_path / "r.json").exists()


def test_cli_record_errors(tmp_path):
    p = _cli()
    (tmp_path / "old").write_bytes(b"x")
    for argv, msg in ([["record", "-o", "t"], "exactly one of"],
                      [["record", "seq-write", "--program", "tar-extract", "-o", "t"],
                       "exactly one of"],
                      [["record", "seq-write"], "-o TRACE is required"],
                      [["record", "seq-write", "-o", str(tmp_path / "old")], "exists"]):
        a = p.parse_args(argv)
        with pytest.raises(ValueError, match=msg):
            a.func(a)
    bad = tmp_path / "bad.trace"
    bad.write_bytes(b"garbage!" * 4)
    a = p.parse_args(["replay", str(bad)])
    with pytest.raises(ValueError, match="bad magic"):
        a.func(a)


def test_program_registry_checks_parameters(tmp_path):
    assert programs.names() == ["fio-seq-write", "fio-rand-write", "sqlite-inserts",
                                "tar-extract", "git-commits"]
    with pytest.raises(ValueError, match="unknown 'x'"):
        programs.command("x", tmp_path)
    with pytest.raises(ValueError, match="commits: must be an integer in 1..100000"):
        programs.command("sqlite-inserts", tmp_path, commits=0)
    argv, env, values = programs.command("sqlite-inserts", tmp_path, rows=3)
    assert values == {"commits": 20, "rows": 3, "row_bytes": 200} and argv[-2:] == ["3", "200"]
    for name in programs.names():
        assert name in programs.render_list()
    for job in ("seq-write.fio", "rand-write.fio", "sqlite_inserts.py", "git_commits.py"):
        assert (programs.HERE / job).is_file()


# ------------------------------------------------------------------ recording on a mount
OK, WHY = mount.available()
needs_mount = pytest.mark.skipif(not OK, reason=WHY or "mount available")


@pytest.fixture
def no_mount_left():
    assert mount.mounted_fwb(owner=os.getpid()) == []
    yield
    assert mount.mounted_fwb(owner=os.getpid()) == [], "fwb mount left in /proc/self/mountinfo"


@needs_mount
def test_record_workload_keeps_real_timings(tmp_path, no_mount_left):
    t = trace.record_workload("seq-write", file_size=1 * MiB, block_size=128 * 1024)
    assert t.kind == "workload" and len(t.ops) == 9
    assert (t.timing["start_ns"] >= 0).all()
    assert (t.timing["end_ns"] >= t.timing["start_ns"]).all()
    w = t.log[t.log["kind"] == trace.KIND_WRITE]
    assert int(w["size"].sum()) == 1 * MiB
    assert t.header["source"]["server"]
    u = trace.load(trace.save(t, tmp_path / "w.trace"))
    assert trace.to_workload(u).bytes_dirtied() == 1 * MiB


@needs_mount
def test_record_command_sees_each_write_and_fsync(no_mount_left):
    script = ("import os\n"
              "os.makedirs('a/b')\n"
              "f = os.open('a/b/x', os.O_CREAT | os.O_WRONLY)\n"
              "for i in range(5): os.pwrite(f, b'z' * 10000, i * 10000)\n"
              "os.fsync(f); os.close(f)\n"
              "os.rename('a/b/x', 'a/y'); os.symlink('y', 'a/s')\n"
              "assert os.readlink('a/s') == 'y' and open('a/s', 'rb').read() == b'z' * 50000\n"
              "os.rmdir('a/b')\n")
    import sys
    t = trace.record_command([sys.executable, "-c", script], timeout_s=30)
    o = t.ops
    assert t.kind == "program" and t.header["source"]["writeback_cache"] is False
    # Write-through splits a write(2) that starts inside a page after that page: rows are
    # requests, and together they cover the five writes exactly.
    w = o[o["op"] == WRITE]
    assert list(o["op"][:len(w)]) == [WRITE] * len(w) and 5 <= len(w) <= 10
    assert (w["offset"][1:] == w["offset"][:-1] + w["length"][:-1]).all()
    assert w["offset"][0] == 0 and int(w["length"].sum()) == 50000
    assert o["op"][len(w)] == FSYNC and (o["file"] == 0).all() and (o["thread"] == 0).all()
    assert t.summary()["log_fsyncs"] == 1 and t.header["file_sizes"] == [0]


@needs_mount
def test_record_command_errors(no_mount_left):
    with pytest.raises(RuntimeError, match=r"failed \(exit status 3\): oops"):
        trace.record_command(["sh", "-c", "echo oops; exit 3"])
    with pytest.raises(RuntimeError, match="timed out after 0.5 s"):
        trace.record_command(["sleep", "10"], timeout_s=0.5)
    with pytest.raises(ValueError, match="wrote nothing"):
        trace.record_command(["true"])


PROGRAM_CASES = {
    "fio-seq-write": dict(size=1 * MiB, bs=64 * 1024),
    "fio-rand-write": dict(size=512 * 1024, fsync_every=32),
    "sqlite-inserts": dict(commits=5, rows=5),
    "tar-extract": dict(files=6, max_bytes=16 * 1024),
    "git-commits": dict(commits=2, files=4),
}


@needs_mount
@pytest.mark.parametrize("name", list(PROGRAM_CASES))
def test_record_standard_programs(name, no_mount_left):
    prog = programs.get(name)
    missing = [e for e in prog.needs if shutil.which(e) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install {' '.join(prog.apt)})")
    t = trace.record_program(name, **PROGRAM_CASES[name])
    s = t.summary()
    assert t.header["params"].items() >= PROGRAM_CASES[name].items()
    assert s["write_rows"] == s["log_writes"] > 0 and s["bytes_dirtied"] == s["log_bytes"]
    if name == "fio-seq-write":
        assert s["bytes_dirtied"] == 1 * MiB and s["log_fsyncs"] >= 1
    elif name == "fio-rand-write":
        assert s["bytes_dirtied"] == 512 * 1024 and s["log_fsyncs"] >= 128 // 32
    elif name == "sqlite-inserts":
        assert s["log_fsyncs"] >= 5          # every commit syncs
    elif name == "tar-extract":
        assert s["files"] == 6
    else:
        assert s["files"] > 4 and s["threads"] > 1    # objects, index, refs; git processes
    assert trace.to_workload(t).bytes_dirtied() == s["bytes_dirtied"]
