"""What a careful user can break: special files as inputs and outputs, an output that is an
input, two runs writing one file.  Each test checks what is left behind."""
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bench.results import fileio

FIX = Path(__file__).parent / "fixtures"
SMALL = ["--no-mount", "--workloads", "seq-write", "--strategies", "merge-in-queue",
         "--seeds", "1", "--param", "file_size=65536", "--engine", "python", "--quiet"]


def bench(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def one_error(p, needle):
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and needle in lines[0], p.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
def test_force_never_replaces_a_device(tmp_path):
    dev = tmp_path / "null"
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    p = bench("compare", *SMALL, "--out", str(dev), "--force")
    one_error(p, "not a regular file (a character device)")
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


def test_force_never_replaces_a_fifo_or_a_symlink(tmp_path):
    fifo, link = tmp_path / "fifo", tmp_path / "link"
    os.mkfifo(fifo)
    target = tmp_path / "target.json"
    target.write_text("keep")
    link.symlink_to(target)
    one_error(bench("compare", *SMALL, "--out", str(fifo), "--force"), "(a FIFO)")
    one_error(bench("compare", *SMALL, "--out", str(link), "--force"), "(a symbolic link)")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()
    assert target.read_text() == "keep"


@pytest.mark.parametrize("verb", [["gate", "{x}", "{fix}"], ["compare", "{x}", "{fix}"],
                                  ["report", "{x}", "-o", "{site}"]])
def test_a_fifo_without_writer_as_input_is_an_error_not_a_hang(tmp_path, verb):
    fifo = tmp_path / "in.json"
    os.mkfifo(fifo)
    args = [a.format(x=fifo, fix=FIX / "old.json", site=tmp_path / "site") for a in verb]
    one_error(bench(*args, timeout=60), "not a regular file (a FIFO)")
    assert not (tmp_path / "site").exists()


def test_dev_zero_as_a_result_file_or_trace_is_refused():
    with pytest.raises(ValueError, match="not a regular file"):
        fileio.read_input("/dev/zero", "result file")
    one_error(bench("replay", "/dev/zero"), "not a regular file")


def test_an_input_over_the_size_limit_is_refused(tmp_path):
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(2048)            # sparse: costs nothing
    with pytest.raises(ValueError, match="2048 bytes, more than any result file"):
        fileio.read_input(big, "result file", max_bytes=1024)


def test_an_output_that_is_an_input_is_refused(tmp_path):
    a = tmp_path / "a.json"
    a.write_text("x")
    with pytest.raises(ValueError, match="is also an input"):
        fileio.check_writable(a, overwrite=True, inputs=(str(a),))
    assert a.read_text() == "x"


def test_a_second_writer_of_the_same_output_is_refused(tmp_path):
    out = tmp_path / "r.json"
    held, release = threading.Event(), threading.Event()

    def hold():
        with fileio.output_lock(out):
            held.set()
            release.wait(60)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(30)
        one_error(bench("compare", *SMALL, "--out", str(out)), "another run is writing it")
        assert not out.exists()
    finally:
        release.set()
        t.join()
    with fileio.output_lock(out):       # free again once the holder is done
        pass


# ---- kill -9: nothing outlives its owner ----

def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _gone(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rsplit(")", 1)[1].split()[0] == "Z"      # a zombie has ended


def _wait(cond, timeout_s: float = 30.0) -> bool:
    import time
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_kill_9_of_a_mounts_owner_leaves_no_mount_no_server_and_no_dir():
    from bench.real import mount
    ok, why = mount.available()
    if not ok:
        pytest.skip(why)
    code = ("import sys, time\n"
            "from bench.real import mount\n"
            "m = mount.Mount(); m.start()\n"
            "open(m.path + '/f', 'w').write('x' * 100000)\n"
            "print(m.dir, m.proc.pid, flush=True)\n"
            "time.sleep(120)\n")
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        d, server = owner.stdout.readline().split()
        server = int(server)
        mnt = os.path.join(d, "mnt")
        assert mnt in mount.mounted_fwb()
    finally:
        owner.kill()
        owner.wait()
    # The server sees its owner gone, aborts the connection and detaches: no mount, no server.
    assert _wait(lambda: mnt not in mount.mounted_fwb()), "the mount outlived its owner"
    assert _wait(lambda: _gone(server)), "the server outlived its owner"
    # The next run removes the dead run's directory (and only that one).
    removed = mount.reap_stale()
    assert d in removed and not os.path.exists(d)


def test_kill_9_of_a_sweep_leaves_no_pool_worker():
    p = subprocess.Popen([sys.executable, "-m", "bench", "compare", "--no-mount", "--quiet",
                          "--seeds", "200", "--jobs", "2", "--workloads", "rand-write",
                          "--out", os.devnull + "-not-written.json"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait(lambda: len(_children(p.pid)) >= 2 or p.poll() is not None, 60)
        workers = _children(p.pid)
        assert p.poll() is None and workers, "the sweep ended before it could be killed"
    finally:
        p.kill()
        p.wait()
    assert _wait(lambda: all(_gone(w) for w in workers)), "pool workers outlived the sweep"


# ---- fuzzing: a mutated result file or trace is loaded or refused, never a traceback ----

import copy       # noqa: E402
import json       # noqa: E402

from hypothesis import HealthCheck, given, settings, strategies as st   # noqa: E402

from bench.results import compare, gate, load   # noqa: E402

_VALID = json.loads((FIX / "old.json").read_text())
_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                  st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                  st.lists(st.integers(-3, 3), max_size=3),
                  st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=3))


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:3]):         # the first runs stand for all of them
            yield from _paths(v, prefix + (i,))


_ALL_PATHS = [p for p in _paths(_VALID) if p]


def _mutate(doc, path, value, how):
    doc = copy.deepcopy(doc)
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if how == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif how == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[path[-1]]))
    else:
        parent[path[-1]] = value
    return doc


@settings(max_examples=2000, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(st.tuples(st.sampled_from(_ALL_PATHS), _JUNK,
                                    st.sampled_from(["replace", "delete", "duplicate"])),
                          min_size=1, max_size=3))
def test_fuzzed_result_files_load_or_fail_with_one_line(tmp_path, mutations):
    doc = _VALID
    for path, value, how in mutations:
        try:
            doc = _mutate(doc, path, value, how)
        except (KeyError, IndexError, TypeError):
            pass                                   # an earlier mutation removed the path
    f = tmp_path / "fuzzed.json"
    f.write_text(json.dumps(doc))
    try:
        s = load(f)
    except ValueError as e:
        assert "\n" not in str(e) and str(f) in str(e)
        return
    # What loads is safe to use: compare, the verdict and the gate take it without a traceback.
    try:
        compare.rows_between(s, s)
        if s.runs:
            compare.rows(s, s.runs[0].strategy)
            compare.render_verdicts(s)
        gate.compare(s, s, {}, 5.0)
    except ValueError:
        pass


def _trace_bytes() -> bytes:
    import numpy as np
    from bench.real import trace
    from bench.sim import workload
    wl = workload.make("rewrite-hot", seed=1, file_size=1 << 20, hot_bytes=65536, rounds=2,
                       interval_ns=1_000_000)
    timing = np.zeros(len(wl.ops), trace.TIMING_DTYPE)
    timing["start_ns"] = wl.ops["time"]
    timing["end_ns"] = wl.ops["time"] + 500
    log = np.zeros(2, trace.LOG_DTYPE)
    log["t_recv_ns"], log["t_reply_ns"], log["ino"], log["size"] = [10, 20], [15, 25], 2, 4096
    t = trace.make_trace("workload", wl.name, wl.params, 1, wl.ops, timing, log, wl.file_sizes,
                         {"engine": "test"})
    return trace.dumps(t)


_TRACE = _trace_bytes()


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(edits=st.lists(st.tuples(st.integers(0, len(_TRACE) - 1), st.integers(0, 255)),
                      min_size=1, max_size=4),
       cut=st.one_of(st.none(), st.integers(0, len(_TRACE))))
def test_fuzzed_traces_load_or_fail_with_one_line(edits, cut):
    from bench.real import trace
    data = bytearray(_TRACE)
    for pos, byte in edits:
        data[pos] = byte
    if cut is not None:
        data = data[:cut]
    try:
        trace.loads(bytes(data), "fuzzed")
    except ValueError as e:
        assert "\n" not in str(e)


def test_replay_refuses_to_write_over_its_own_trace(tmp_path):
    f = tmp_path / "t.trace"
    f.write_bytes(_TRACE)
    one_error(bench("replay", str(f), "--out", str(f), "--force"), "is also an input")
    assert f.read_bytes() == _TRACE


def _servers_of(owner: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"fwb_fuse_server") and f"--parent={owner}".encode() in cmd:
                out.append(int(d.name))
    return out


def test_a_server_killed_during_compare_is_an_error_naming_it(tmp_path):
    from bench.real import mount
    ok, why = mount.available()
    if not ok:
        pytest.skip(why)
    out = tmp_path / "r.json"
    # A slow server (2 ms a page, on the mount as in the simulator) keeps the mount busy for
    # seconds: time enough to kill it mid-run.
    p = subprocess.Popen([sys.executable, "-m", "bench", "compare", "--workloads", "seq-write",
                          "--strategies", "no-temp-page", "--baseline", "no-temp-page",
                          "--param", "server_page_ns=2000000", "--seeds", "1", "--quiet",
                          "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait(lambda: _servers_of(p.pid) or p.poll() is not None, 120)
        for pid in _servers_of(p.pid):
            os.kill(pid, 9)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ERROR: real mount failed on seq-write/0: FUSE server died"), err
    from bench.results import load
    assert {r.engine for r in load(out).runs} == {"c"}          # the simulated runs only
    assert mount.mounted_fwb(owner=p.pid) == []
