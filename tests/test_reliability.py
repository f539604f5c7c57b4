"""What a careful user can break: special files as inputs and outputs, an output that is an
input, two runs writing one file.  Each test checks what is left behind."""
import contextlib
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

_OLD = json.loads((FIX / "old.json").read_text())
# Three runs stand for all of them (the mutations below touch only the first three), and keep
# 2000 loads through the schema quick.
_VALID = {**_OLD, "runs": _OLD["runs"][:3]}
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
    # What loads passed jsonschema itself, not only the loader's quick check of the same schema.
    from bench.results import _first_error
    assert _first_error(doc) is None
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
    assert last.startswith("ERROR: real mount failed on seq-write/0: the FUSE server (pid "), err
    assert "died during the run: killed by SIGKILL" in last, err
    from bench.results import load
    s = load(out)
    assert {r.engine for r in s.runs} == {"c"}          # the simulated runs only
    # The file says it is partial: the missing run, with why.
    [missing] = s.metadata["failed_runs"]
    assert missing["workload"] == "seq-write" and missing["engine"] == "mount"
    assert "died" in missing["error"]
    assert mount.mounted_fwb(owner=p.pid) == []


# ---- kill -9, signals and dead servers, verb by verb: only what each test started is checked ----

import glob        # noqa: E402
import signal      # noqa: E402
import tempfile    # noqa: E402
import time        # noqa: E402

from bench.real import mount as _mount   # noqa: E402

MOUNT_OK, MOUNT_WHY = _mount.available()
needs_mount = pytest.mark.skipif(not MOUNT_OK, reason=MOUNT_WHY or "mount available")
SLOW_COMPARE = ["compare", "--workloads", "seq-write", "--strategies", "no-temp-page",
                "--baseline", "no-temp-page", "--seeds", "1", "--quiet",
                "--param", "server_page_ns=2000000"]      # seconds on the mount: time to act
VALIDATE = ["validate", "--workloads", "seq-write", "--seeds", "1", "--quiet"]
LONG_CMD = ["--", "sh", "-c", "dd if=/dev/zero of=big bs=1M count=20 2>/dev/null; sleep 60"]
# A command that outlasts any test's timeout: a run that ends within the timeout did not wait for it.
ENDLESS_CMD = ["--", "sh", "-c", "dd if=/dev/zero of=big bs=1M count=20 2>/dev/null; sleep 3600"]


def _default_signals():
    # Whoever runs the tests may ignore SIGINT (a background job) or SIGHUP (nohup), and an
    # ignored signal stays ignored in the child: give it a terminal's dispositions.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


def launch(*args, cwd=None):
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_default_signals)


def _tree(pid: int) -> set[int]:
    """pid's descendants now (from /proc)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int(
                    (d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = [q for q, pp in parent.items() if pp == p and q not in out]
        out.update(kids)
        todo += kids
    return out


def _dirs_of(pid: int) -> list[str]:
    return glob.glob(os.path.join(tempfile.gettempdir(), f"{_mount.DIR_PREFIX}{pid}-*"))


def _servers_with(owner: int, marker: bytes) -> list[int]:
    out = []
    for pid in _servers_of(owner):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
        except OSError:
            pass
    return out


def _server(p, stuck: bool = False, timeout_s: float = 120) -> int:
    """The pid of a FUSE server of the run of p, once one is up; with `stuck`, one started with
    a stall window (validate's stuck-server part), known by its argv and not by its order, since
    a short run's server can come and go between two looks."""
    marker = b"--stall=" if stuck else b"--parent="
    found: list[int] = []

    def up():
        found[:] = _servers_with(p.pid, marker)
        return bool(found) or p.poll() is not None
    assert _wait(up, timeout_s), f"no server within {timeout_s} s"
    if not found or p.poll() is not None:
        _, err = p.communicate()
        raise AssertionError(f"the run ended (exit {p.returncode}) before its server: {err}")
    return found[0]


def _assert_nothing_left(pid: int, watched: set[int], reap: bool):
    """No mount, no process of the run, and (after the next run's reap_stale, if a SIGKILL left
    them) no directory: only what the run of `pid` made is looked at."""
    assert _wait(lambda: _mount.mounted_fwb(owner=pid) == []), "a mount outlived its run"
    assert _wait(lambda: all(_gone(q) for q in watched)), \
        f"processes outlived their run: {[q for q in watched if not _gone(q)]}"
    if reap:
        _mount.reap_stale()
    assert _dirs_of(pid) == [], "a mount directory outlived its run"


def _no_partial_output(path: Path):
    """An output is there whole (it loads) or not at all, and no temp file is left beside it."""
    if path.exists():
        load(path)
    assert not list(path.parent.glob(f".{path.name}.*.tmp")), "a temp file was left"


def _kill_at(p, moment):
    """Wait for `moment` (("server", stuck, delay): a server, or the stuck-server part's, is up;
    then delay), SIGKILL the run."""
    _server(p, moment[1])
    time.sleep(moment[2])
    watched = _tree(p.pid)
    assert p.poll() is None, "the run ended before it could be killed"
    p.kill()
    p.communicate(timeout=60)
    return watched


@needs_mount
@pytest.mark.parametrize("verb, moment", [
    ("compare", ("server", False, 0.0)),    # the mount phase, as its server comes up
    ("compare", ("server", False, 0.5)),    # ... and while the workload runs
    ("record", ("server", False, 0.0)),     # record -- CMD: the command is starting
    ("record", ("server", False, 0.5)),     # ... and running (dd, then sleep 60)
    ("validate", ("server", False, 0.0)),   # its first workload (or later, if that was quick)
    ("validate", ("server", True, 0.5)),    # the stuck-server part
])
def test_kill_9_of_a_verb_leaves_nothing_behind(tmp_path, verb, moment):
    out = tmp_path / "out"
    args = {"compare": [*SLOW_COMPARE, "--out", str(out)],
            "record": ["record", "-o", str(out), *LONG_CMD],
            "validate": VALIDATE}[verb]
    p = launch(*args, cwd=tmp_path)
    try:
        watched = _kill_at(p, moment)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == -9
    _assert_nothing_left(p.pid, watched, reap=True)
    assert not out.exists() and not list(tmp_path.glob(".out.*.tmp"))


@pytest.mark.parametrize("delay", [0.3, 1.5, 3.0])
def test_kill_9_of_replay_leaves_no_partial_file_and_no_process(tmp_path, delay):
    f, out = tmp_path / "t.trace", tmp_path / "r.json"
    f.write_bytes(_TRACE)
    p = launch("replay", str(f), "--seeds", "1000", "--engine", "python", "--out", str(out),
               cwd=tmp_path)
    try:
        time.sleep(delay)
        watched = _tree(p.pid)
        p.kill()                # if it has ended already, its file must be whole: checked below
        p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    _assert_nothing_left(p.pid, watched, reap=False)
    _no_partial_output(out)


def _one_line(err: str, needle: str):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and needle in lines[0], err


@needs_mount
@pytest.mark.parametrize("verb, sig, twice", [
    ("compare", signal.SIGINT, False), ("compare", signal.SIGTERM, False),
    ("compare", signal.SIGHUP, False), ("compare", signal.SIGINT, True),
    ("record", signal.SIGINT, True), ("record", signal.SIGTERM, False),
    ("validate", signal.SIGTERM, False), ("validate", signal.SIGHUP, False),
])
def test_a_signal_ends_a_verb_cleanly_with_one_line(tmp_path, verb, sig, twice):
    out = tmp_path / "out"
    args, stuck = {"compare": ([*SLOW_COMPARE, "--out", str(out)], False),
                   "record": (["record", "-o", str(out), *LONG_CMD], False),
                   "validate": (VALIDATE, True)}[verb]       # validate: in the stuck-server part
    p = launch(*args, cwd=tmp_path)
    try:
        _server(p, stuck)
        time.sleep(0.3)
        watched = _tree(p.pid)
        os.killpg(p.pid, sig)                  # as a terminal does: the whole process group
        if twice:                              # a second Ctrl-C, while the first cleans up
            time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, sig)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 128 + sig, err
    _one_line(err, f"interrupted by {sig.name}")
    _assert_nothing_left(p.pid, watched, reap=False)      # cleaned up by the run itself
    assert not out.exists()


def _signal_caught(pid: int, sig: int) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


def test_ctrl_c_at_start_up_is_one_line(tmp_path):
    p = launch("compare", *SMALL, "--out", str(tmp_path / "r.json"), cwd=tmp_path)
    try:
        # bench's handlers are in place once SIGHUP is caught (Python alone catches SIGINT only):
        # from then on, a Ctrl-C during the imports is one line, not a KeyboardInterrupt.
        assert _wait(lambda: _signal_caught(p.pid, signal.SIGHUP) or p.poll() is not None, 60)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    _one_line(err, "interrupted by SIGINT")
    assert not (tmp_path / "r.json").exists()


@needs_mount
@pytest.mark.parametrize("verb", ["validate-stuck", "record-command", "record-workload"])
def test_a_killed_server_is_named_and_the_run_fails(tmp_path, verb):
    out = tmp_path / "out"
    args, stuck, part = {
        "validate-stuck": (VALIDATE, True, "the stuck-server part"),
        "record-command": (["record", "-o", str(out), *ENDLESS_CMD], False, "the command"),
        "record-workload": (["record", "seq-write", "-o", str(out), "--param",
                             "server_page_ns=2000000"], False, "the run"),
    }[verb]
    p = launch(*args, cwd=tmp_path)
    try:
        server = _server(p, stuck)
        time.sleep(0.3)
        watched = _tree(p.pid)
        os.kill(server, signal.SIGKILL)
        # record -- CMD must not wait for its command (sleep 3600) to notice: within the timeout
        _, err = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 2, err
    _one_line(err, f"the FUSE server (pid {server}) died during {part}: killed by SIGKILL")
    _assert_nothing_left(p.pid, watched, reap=False)
    assert not out.exists()


# ---- a foreign fwb mount on the machine: the verbs work beside it and never touch it ----

@pytest.fixture
def foreign_mount():
    """A mount of another run (a process of its own), made and ended by this fixture."""
    code = ("import sys\n"
            "from bench.real import mount\n"
            "m = mount.Mount(); m.start()\n"
            "open(m.path + '/mine', 'w').write('foreign')\n"
            "print(m.dir, m.proc.pid, flush=True)\n"
            "sys.stdin.readline()\n"
            "m.stop()\n")
    owner = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        d, server = owner.stdout.readline().split()
        yield {"owner": owner.pid, "dir": d, "mnt": os.path.join(d, "mnt"), "server": int(server)}
    finally:
        owner.stdin.write("\n")
        owner.stdin.close()
        owner.wait(60)
    assert os.path.join(d, "mnt") not in _mount.mounted_fwb() and not os.path.exists(d)


@needs_mount
def test_verbs_work_beside_a_foreign_mount_and_leave_it_alone(tmp_path, foreign_mount):
    f = foreign_mount
    assert f["mnt"] in _mount.mounted_fwb(owner=f["owner"])
    runs = [launch(*SLOW_COMPARE[:-2], "--param", "file_size=4194304", "--out",
                   str(tmp_path / "c.json"), cwd=tmp_path),
            launch("record", "-o", str(tmp_path / "t.trace"), "--", "sh", "-c",
                   "echo data > f", cwd=tmp_path),
            launch("validate", "--workloads", "seq-write", "--seeds", "1", "--no-blocking",
                   "--quiet", cwd=tmp_path)]
    for p in runs:                   # one after the other would do too; together is harder
        out, err = p.communicate(timeout=300)
        if p is runs[2]:    # validate: 1 when the model misses a target on a loaded machine
            assert p.returncode in (0, 1) and "validate: " in out and "ERROR" not in err, err
        else:
            assert p.returncode == 0, err
        assert _mount.mounted_fwb(owner=p.pid) == [] and _dirs_of(p.pid) == []
    assert {r.engine for r in load(tmp_path / "c.json").runs} == {"c", "mount"}
    # The foreign run's mount, server, directory and data are as they were.
    assert f["mnt"] in _mount.mounted_fwb(owner=f["owner"])
    assert not _gone(f["server"]) and os.path.isdir(f["dir"])
    assert Path(f["mnt"], "mine").read_text() == "foreign"
    assert f["dir"] not in _mount.reap_stale()          # a live owner's: never reaped


# ---- special files as outputs, an output in use, and the smaller ones ----

@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
@pytest.mark.parametrize("verb", [
    ["compare", *SMALL, "--out", "{x}", "--force"],
    ["replay", "{trace}", "--out", "{x}", "--force"],
    ["record", "seq-write", "-o", "{x}", "--force"],
    ["record", "-o", "{x}", "--force", "--", "true"],
])
def test_no_verb_replaces_a_device_with_force(tmp_path, verb):
    dev, t = tmp_path / "null", tmp_path / "t.trace"
    t.write_bytes(_TRACE)
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    one_error(bench(*[a.format(x=dev, trace=t) for a in verb]),
              "not a regular file (a character device)")
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


@pytest.mark.parametrize("verb", [
    ["compare", *SMALL, "--out", "{x}", "--force"],
    ["replay", "{trace}", "--out", "{x}", "--force"],
    ["record", "seq-write", "-o", "{x}", "--force"],
])
def test_a_second_writer_of_the_same_output_is_refused(tmp_path, verb):
    out, t = tmp_path / "o", tmp_path / "t.trace"
    t.write_bytes(_TRACE)
    out.write_text("first")
    held, release = threading.Event(), threading.Event()

    def hold():
        with fileio.output_lock(out):
            held.set()
            release.wait(60)

    th = threading.Thread(target=hold)
    th.start()
    try:
        assert held.wait(30)
        one_error(bench(*[a.format(x=out, trace=t) for a in verb]), "another run is writing it")
        assert out.read_text() == "first"
    finally:
        release.set()
        th.join()
    with fileio.output_lock(out):       # free again once the holder is done
        pass


def test_compare_of_two_files_refuses_out(tmp_path):
    out = tmp_path / "x.json"
    one_error(bench("compare", str(FIX / "old.json"), str(FIX / "new.json"), "--out", str(out)),
              "--out: compare OLD.json NEW.json writes no result file")
    assert not out.exists()


def test_no_space_left_names_the_file(tmp_path, monkeypatch, capsys):
    import errno
    from bench import __main__ as cli

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "r.json"
    assert cli.main(["compare", *SMALL, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ERROR: {out}: No space left on device"], err
    assert sorted(p.name for p in tmp_path.iterdir()) == [".r.json.lock"]   # no temp file


def test_a_trace_with_impossible_times_is_refused(tmp_path, monkeypatch):
    import numpy as np
    from bench.real import trace
    t = trace.loads(_TRACE)
    ops, timing = np.array(t.ops), np.array(t.timing)
    ops["time"][1:] = 1 << 62
    timing["start_ns"][1:], timing["end_ns"][1:] = 1 << 62, (1 << 62) + 10
    with pytest.raises(ValueError, match=r"ops: row 1 at 4611686018427387904 ns, more than 2\*\*50"):
        trace.Trace(t.header, ops, timing, np.array(t.log))
    monkeypatch.setattr(trace, "_check", lambda *a: None)      # write the file anyway
    f = tmp_path / "far.trace"
    f.write_bytes(trace.dumps(trace.Trace(t.header, ops, timing, np.array(t.log))))
    monkeypatch.undo()
    one_error(bench("replay", str(f)), "more than 2**50 ns (13 days)")


# ---- the result schema: shipped, documented, and every violation one line with its path ----

def test_the_schema_ships_in_the_package_and_covers_every_metric():
    import importlib.resources
    import jsonschema
    from bench import results
    from bench.results.metrics import LATENCY_METRICS, METRICS, REQUIRED_METRICS
    doc = json.loads(importlib.resources.files("bench.results").joinpath("schema.json")
                     .read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc == results.schema()
    props = doc["$defs"]["metrics"]["properties"]
    assert set(props) == {m.name for m in METRICS}
    kind = {m.name: ("latency" if m.name in LATENCY_METRICS else "histogram" if m.unit == "hist"
                     else "count" if m.unit == "count" else "amount") for m in METRICS}
    assert {k: v["$ref"].rsplit("/", 1)[1] for k, v in props.items()} == kind
    assert doc["$defs"]["metrics"]["required"] == list(REQUIRED_METRICS)
    jsonschema.validate(_OLD, doc)          # a good file passes the plain schema too


def _edit(path, value):
    doc = copy.deepcopy(_VALID)
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if value is KeyError:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@pytest.mark.parametrize("doc, where, what", [
    (_edit(["runs", 1, "metrics", "lost_updates"], -1), "runs[1].metrics.lost_updates",
     "is negative"),
    (_edit(["runs", 0, "metrics", "app_throughput_bps"], 1.7e308),
     "runs[0].metrics.app_throughput_bps", "out of range"),
    (_edit(["runs", 0, "metrics", "requests"], 3.0), "runs[0].metrics.requests",
     "expected an integer, got float"),
    (_edit(["runs", 0, "metrics", "hangs"], True), "runs[0].metrics.hangs", "got bool"),
    (_edit(["runs", 0, "metrics", "write_latency_ns"], 5), "runs[0].metrics.write_latency_ns",
     "expected an object, got int"),
    (_edit(["runs", 0, "metrics", "write_latency_ns", "p75"], 1),
     "runs[0].metrics.write_latency_ns", "unknown key 'p75'"),
    (_edit(["runs", 2, "metrics", "fsync_latency_ns", "p99"], 0),
     "runs[2].metrics.fsync_latency_ns", "percentiles out of order"),
    (_edit(["runs", 0, "metrics", "requests"], KeyError), "runs[0].metrics",
     "missing 'requests'"),
    (_edit(["runs", 0, "metrics", "pages_per_request", "0"], 1),
     "runs[0].metrics.pages_per_request.0", "not a page count"),
    (_edit(["metadata", "x"], float("nan")), "metadata.x", "not a finite number"),
    (_edit(["runs", 1, "params", "p"], float("inf")), "runs[1].params.p", "not a finite number"),
    (_edit(["runs", 2], copy.deepcopy(_VALID["runs"][0])), "runs[2]",
     "the same configuration as runs[0]"),
    (_edit(["runs", 0, "seed"], -1), "runs[0].seed", "is negative"),
    (_edit(["runs", 0, "strategy"], ""), "runs[0].strategy", "must not be empty"),
    (_edit(["runs", 0, "series"], [[1, 2, 3]]), "runs[0].series", "rows of 6 integers"),
    (_edit(["schema_version"], 2), "schema_version", "not supported"),
    (_edit(["runs"], KeyError), "top level", "missing 'runs'"),
])
def test_each_schema_violation_is_one_line_with_file_and_path(tmp_path, doc, where, what):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(ValueError) as e:
        load(f)
    msg = str(e.value)
    assert msg.startswith(f"{f}: {where}: ") and what in msg and "\n" not in msg, msg
    one_error(bench("gate", str(f), str(f)), f"{where}: ")


def test_a_partial_file_is_named_by_every_verb_that_reads_it(tmp_path):
    doc = json.loads((FIX / "new.json").read_text())
    doc["metadata"]["failed_runs"] = [{"strategy": "kernel-6.18", "workload": "seq-write",
                                       "seed": 0, "engine": "mount",
                                       "error": "the FUSE server (pid 7) died"}]
    part = tmp_path / "part.json"
    part.write_text(json.dumps(doc))
    want = f"WARNING: {part} is partial: 1 run(s) asked for are missing, first kernel-6.18/seq-write seed 0"
    for argv in (["gate", str(FIX / "old.json"), str(part)], ["compare", str(FIX / "old.json"), str(part)],
                 ["report", str(part), "-o", str(tmp_path / "site")]):
        r = subprocess.run([sys.executable, "-m", "bench", *argv], capture_output=True, text=True,
                           timeout=300)
        assert want in r.stderr, (argv, r.stderr)
    whole = subprocess.run([sys.executable, "-m", "bench", "gate", str(FIX / "old.json"),
                            str(FIX / "new.json")], capture_output=True, text=True, timeout=300)
    assert "partial" not in whole.stderr
