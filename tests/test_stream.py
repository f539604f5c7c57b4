"""Streamed workloads (bench.sim.stream): the same results as the array of the same rows, in
both engines and whatever the chunk size; bad chunks and failing sources are errors of the run;
latency sets past their exact limit fold into the same histogram in both engines."""
import numpy as np
import pytest

from bench import sim
from bench.results import metrics
from bench.sim import _cengine, lathist, ops as O, refsim, stream as S, workload as W
from conftest import assert_same_raw

KiB, MiB = 1 << 10, 1 << 20

# (workload, parameters): every stream generator and its options, with several threads
CASES = [
    ("seq-write", dict(threads=2, file_size=1 * MiB, block_size=12345, think_ns=3000)),
    ("seq-write", dict(file_size=1 * MiB, block_size=64 * KiB, overwrite=1)),
    ("rand-write", dict(threads=3, file_size=1 * MiB, block_size=3000, align=1000, writes=300)),
    ("rand-write", dict(threads=2, file_size=4 * MiB, writes=300, distribution="zipf",
                        hot_pages=64)),
    ("rand-write", dict(file_size=1 * MiB, writes=300, overwrite=1, think_ns=20_000)),
]


def _both(name: str, params: dict, seed: int = 5):
    """(array workload, streamed workload) of the same generator and parameters."""
    arr = W.make(name, seed=seed, **params)
    old = W.STREAM_ROWS
    W.STREAM_ROWS = 0
    try:
        st = W.make(name, seed=seed, **params)
    finally:
        W.STREAM_ROWS = old
    assert isinstance(arr, W.Workload) and isinstance(st, W.StreamedWorkload)
    return arr, st


@pytest.mark.parametrize("name,params", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_stream_rows_are_the_array_rows(name, params):
    arr, st = _both(name, params)
    assert st.stream.array().tobytes() == arr.ops.tobytes()
    assert st.stream.n_ops == len(arr.ops) and st.threads == arr.threads
    assert np.array_equal(st.file_sizes, arr.file_sizes)
    assert sim.check_pages(st) is None and sim._total_pages(st) == sim._total_pages(arr)


@pytest.mark.parametrize("name,params", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("strategy", sim.strategies())
def test_c_stream_run_is_the_array_run(name, params, strategy):
    arr, st = _both(name, params)
    _, cfg = sim.prepare(strategy, arr, 5)
    want = _cengine.simulate(cfg, arr.ops, arr.file_sizes, 5)
    for chunk in (1, 7, S.CHUNK):
        got = _cengine.simulate_stream(cfg, st.stream, 5, chunk=chunk)
        assert_same_raw(want, got, f"{name} {strategy} chunk {chunk}")


@pytest.mark.parametrize("name,params", CASES[::2], ids=["seq", "rand", "rand-overwrite"])
@pytest.mark.parametrize("strategy", ["temp-naive", "merge-in-queue", "no-temp-page",
                                      "large-folio"])
def test_python_stream_run_is_the_array_run(name, params, strategy):
    arr, st = _both(name, params)
    _, cfg = sim.prepare(strategy, arr, 5)
    want = refsim.simulate(cfg, arr.ops, arr.file_sizes, 5)
    assert_same_raw(want, refsim.simulate_stream(cfg, st.stream, 5, chunk=5), f"{strategy}")
    assert_same_raw(want, _cengine.simulate_stream(cfg, st.stream, 5, chunk=5), f"{strategy} c")


def test_run_takes_a_streamed_workload_in_both_engines():
    arr, st = _both(*CASES[2])
    runs = [sim.run("temp-naive", w, seed=5, engine=e) for w in (arr, st) for e in sim.ENGINES]
    assert all(r.metrics == runs[0].metrics for r in runs)
    assert runs[0].metrics["requests"] > 0


def test_feed_chunks_do_not_change_the_rows():
    _, st = _both(*CASES[0])
    for t in range(st.threads):
        rows = {}
        for cap in (1, 3, 1000, 1 << 20):
            feed, parts = S.Feed(st.stream), []
            while len(got := feed.take(t, cap)):
                assert len(got) <= cap
                parts.append(got)
            rows[cap] = np.concatenate(parts).tobytes()
        assert len(set(rows.values())) == 1


def test_only_long_workloads_stream():
    assert isinstance(W.make("seq-write"), W.Workload)
    big = W.make("seq-write", file_size=4 << 30, block_size=1 * KiB)
    assert isinstance(big, W.StreamedWorkload) and big.stream.n_ops == (4 << 20) + 1
    with pytest.raises(ValueError, match="streamed") as err:
        big.ops                     # a real mount, guest or trace needs the array
    assert "\n" not in str(err.value)
    many = W.make("rand-write", writes=W.MAX_ROWS, file_size=1 << 30)
    assert isinstance(many, W.StreamedWorkload) and many.stream.n_ops == W.MAX_ROWS + 1
    with pytest.raises(ValueError, match="^writes: would make"):
        W.make("rand-write", writes=W.MAX_ROWS, distribution="randmap")
    with pytest.raises(ValueError, match="^writes: must be <= 1073741824"):
        W.make("rand-write", writes=(1 << 30) + 1)
    with pytest.raises(ValueError, match="^think_ns: the last write"):
        W.make("rand-write", writes=1 << 29, think_ns=1 << 38)


def _stream(rows_of, threads=1, pages=16) -> S.OpStream:
    """A hand-made stream over one 16-page file: thread t's rows are rows_of(t)."""
    return S.OpStream(threads, np.array([0], np.int64), np.array([pages], np.int64), 4,
                      lambda t: iter(rows_of(t)))


def _rows(*spec) -> np.ndarray:
    """OP_DTYPE rows from (time, thread, op, offset, length) tuples, on file 0."""
    out = O.make_ops(len(spec))
    for row, (t, th, code, off, ln) in zip(out, spec):
        row["time"], row["thread"], row["op"], row["offset"], row["length"] = t, th, code, off, ln
    return out


GOOD = _rows((0, 0, O.WRITE, 0, 4096), (5, 0, O.WRITE, 4096, 4096), (9, 0, O.FSYNC, 0, 0))
BAD = {
    "time": ([GOOD[:2], _rows((1, 0, O.WRITE, 0, 4096))], "^time: thread 0's streamed rows go back"),
    "capacity": ([_rows((0, 0, O.WRITE, 60000, 8192))], "^file_pages: .* page 16 of file 0"),
    "thread": ([_rows((0, 1, O.WRITE, 0, 4096))], "^thread: thread 0's streamed rows include"),
}


@pytest.mark.parametrize("what", sorted(BAD))
@pytest.mark.parametrize("engine", sim.ENGINES)
def test_bad_chunk_is_a_one_line_error(what, engine):
    blocks, match = BAD[what]
    st = _stream(lambda t: blocks)
    _, cfg = sim.prepare("temp-naive", W.make("seq-write"), 0)
    run = _cengine.simulate_stream if engine == "c" else refsim.simulate_stream
    with pytest.raises(ValueError, match=match) as err:
        run(cfg, st, 0, chunk=1)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("what", sorted(BAD))
def test_c_engine_checks_chunks_itself(monkeypatch, what):
    """The C engine's own chunk_ok, with the Python check (check_chunk) out of the way."""
    _, cfg = sim.prepare("temp-naive", W.make("seq-write"), 0)
    assert _cengine.simulate_stream(cfg, _stream(lambda t: [GOOD]), 0)["counters"]["requests"]
    monkeypatch.setattr(S, "check_chunk", lambda *a: None)
    with pytest.raises(ValueError, match="^C engine: the stream or one of its chunks is invalid"):
        _cengine.simulate_stream(cfg, _stream(lambda t: BAD[what][0]), 0, chunk=1)


@pytest.mark.parametrize("engine", sim.ENGINES)
def test_source_exception_ends_the_run(engine):
    class Boom(Exception):
        pass

    def rows(t):
        yield GOOD[:2]
        raise Boom("the source failed")
    _, cfg = sim.prepare("temp-naive", W.make("seq-write"), 0)
    run = _cengine.simulate_stream if engine == "c" else refsim.simulate_stream
    with pytest.raises(Boom, match="the source failed"):
        run(cfg, _stream(rows), 0, chunk=2)


def test_folded_latencies_are_the_same_in_both_engines():
    """latency_exact lowered to 40: the write and throttle sets fold into histograms, the same
    in both engines, whose count and max are exact and percentiles within 1/128 below."""
    arr, st = _both("rand-write", dict(threads=2, file_size=2 * MiB, block_size=3000, align=1000,
                                       writes=200))
    _, cfg = sim.prepare("no-temp-page", arr, 1, mem_total_pages=8192, dirty_ratio=5,
                         dirty_background_ratio=2)
    exact = _cengine.simulate(cfg, arr.ops, arr.file_sizes, 1)
    c = _cengine.simulate_stream(cfg, st.stream, 1, chunk=9, latency_exact=40)
    py = refsim.simulate_stream(cfg, st.stream, 1, chunk=9, latency_exact=40)
    assert_same_raw(c, py, "folded")
    folded = [k for k, v in c["latency"].items() if isinstance(v, lathist.Histogram)]
    assert "write" in folded
    for k in refsim.LATENCIES:
        got, want = metrics.latency(c["latency"][k]), metrics.latency(exact["latency"][k])
        if k not in folded:
            assert got == want and len(exact["latency"][k]) <= 40
            continue
        assert len(exact["latency"][k]) > 40
        assert (got["count"], got["max"]) == (want["count"], want["max"])
        for q in ("p50", "p99", "p999"):
            assert want[q] - want[q] / lathist.SUB <= got[q] <= want[q], (k, q)


def test_histogram_buckets():
    values = [0, 1, 255, 256, 257, 511, 512, 1000, 12345, (1 << 40) + 5, 1 << 62, (1 << 63) - 1]
    values += [int(v) for v in np.random.default_rng(0).integers(0, 1 << 50, 1000)]
    b = np.array([lathist.bucket(v) for v in values])
    lo = lathist.lower(b)
    assert (b >= 0).all() and (b < lathist.BUCKETS).all()
    for v, low in zip(values, lo):
        assert low <= v and (v - low) * lathist.SUB <= v
        assert lathist.bucket(int(low)) == lathist.bucket(v)
    assert np.array_equal(lo[:4], [0, 1, 255, 256])
    assert lathist.bucket((1 << 63) - 1) == lathist.BUCKETS - 1


def test_compare_runs_a_streamed_workload_that_its_mount_skips(tmp_path, monkeypatch, capsys):
    """`compare` simulates a streamed workload as it does its array, and its real-mount column
    says it did not mount it (mount.run is replaced by what it does first: the array)."""
    from bench import results
    from bench.__main__ import main
    from bench.real import mount
    from bench.sim import machine
    monkeypatch.setenv(machine.ENV, "none")
    monkeypatch.setattr(W, "STREAM_ROWS", 100)
    monkeypatch.setattr(mount, "available", lambda: (True, ""))
    monkeypatch.setattr(mount, "run", lambda w, seed, **p: W.make(w, seed=seed, **p).ops)
    rc = main(["compare", "--workloads", "seq-write", "--strategies", "temp-naive,no-temp-page",
               "--baseline", "temp-naive", "--seeds", "1", "--jobs", "1", "--param",
               "file_size=1048576", "--param", "block_size=4096", "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "real mount: not run: workload seq-write: its 257 operations are streamed" in err
    monkeypatch.setattr(W, "STREAM_ROWS", W.MAX_ROWS)
    arr = W.make("seq-write", file_size=1 << 20, block_size=4096)
    got = {r.strategy: r.metrics for r in results.load(tmp_path / "r.json").runs}
    assert got == {s: sim.run(s, arr).metrics for s in ("temp-naive", "no-temp-page")}
