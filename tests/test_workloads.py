"""Tests of bench.sim.workload: every generator is valid, seeded, stable, and rejects bad input."""
import hashlib

import numpy as np
import pytest

from bench.sim import ops as O
from bench.sim import workload as W

NAMES = ["seq-write", "rand-write", "rewrite-hot", "mmap-rewrite", "dio-redirty", "fsync-heavy",
         "mem-pressure", "stuck-server", "multi-writer"]
# Generators whose rows depend on the seed (the others are fixed patterns).
RANDOM = ["rand-write", "rewrite-hot", "mmap-rewrite", "dio-redirty", "multi-writer"]
# sha256 of make("rand-write", seed=1, writes=64).ops.tobytes(): catches any change of the stream.
GOLDEN_RAND_WRITE = "2035d5933ec32702d05d19016fc64967682af6e357e81d13e82745b48a8fe1fa"


def test_registry_order():
    assert W.workload_names() == NAMES
    assert list(W.WORKLOADS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_defaults_build_valid_workloads(name):
    w = W.make(name)
    O.validate_ops(w.ops, w.file_sizes)
    assert w.ops.dtype == O.OP_DTYPE and w.file_sizes.dtype == np.int64
    assert (np.diff(w.ops["time"]) >= 0).all()
    # Small enough for a fast default suite (stuck-server's appends follow the memory: 882 MiB
    # on the default machine's 24 GiB, most of them after the stall).
    assert 1 << 20 <= w.bytes_dirtied() <= (1 << 30 if name == "stuck-server" else 128 << 20)
    assert W.WORKLOADS[name].doc


@pytest.mark.parametrize("name", NAMES)
def test_every_writer_ends_with_fsync_of_its_files(name):
    w = W.make(name)
    file_ops = np.isin(w.ops["op"], O.FILE_OPS)
    for t in range(w.threads):
        rows = w.ops[(w.ops["thread"] == t) & file_ops]
        dirtying = np.isin(rows["op"], O.FILE_RANGE_OPS)
        if not dirtying.any():
            continue   # e.g. the allocator thread of mem-pressure
        written = set(rows["file"][dirtying].tolist())
        tail = rows[np.nonzero(dirtying)[0][-1] + 1:]
        assert len(tail) and (tail["op"] == O.FSYNC).all()
        assert set(tail["file"].tolist()) == written


@pytest.mark.parametrize("name", NAMES)
def test_params_record_every_default_and_rebuild(name):
    w = W.make(name, seed=3)
    spec = W.workload_params(name)
    assert set(w.params) == set(spec) | {"seed"} and w.params["seed"] == 3
    for key, (default, doc) in spec.items():
        assert doc and "\n" not in doc
        if default is not None:
            assert w.params[key] == default, key
    if "threads" in w.params:
        # dio-redirty adds one thread that only calls sync(2)
        extra = 1 if w.params.get("sync_interval_ns") else 0
        assert w.threads == w.params["threads"] + extra
    again = W.make(w.name, **w.params)
    assert again.ops.tobytes() == w.ops.tobytes()
    assert again.file_sizes.tobytes() == w.file_sizes.tobytes()


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bytes(name):
    assert W.make(name, seed=7).ops.tobytes() == W.make(name, seed=7).ops.tobytes()


@pytest.mark.parametrize("name", RANDOM)
def test_different_seed_different_bytes(name):
    assert W.make(name, seed=1).ops.tobytes() != W.make(name, seed=2).ops.tobytes()


def test_golden_rand_write_stream():
    ops = W.make("rand-write", seed=1, writes=64).ops
    assert hashlib.sha256(ops.tobytes()).hexdigest() == GOLDEN_RAND_WRITE


def test_rand_write_offsets_and_distributions():
    w = W.make("rand-write", block_size=8192, align=4096, writes=4000)
    writes = w.ops[w.ops["op"] == O.WRITE]
    assert (writes["offset"] % 4096 == 0).all()
    assert (writes["offset"] + writes["length"] <= w.file_sizes[0]).all()
    assert w.params["align"] == 4096
    assert W.make("rand-write", block_size=8192).params["align"] == 8192
    # Byte-granular alignment gives unaligned writes (partial pages).
    odd = W.make("rand-write", block_size=1000, align=1, writes=100).ops
    assert (odd["offset"][odd["op"] == O.WRITE] % 4096 != 0).any()
    # zipf concentrates on a few pages; uniform does not.
    z = W.make("rand-write", distribution="zipf", writes=4000).ops
    u = W.make("rand-write", writes=4000).ops
    top = lambda ops: np.unique(ops["offset"][ops["op"] == O.WRITE], return_counts=True)[1].max()
    assert top(z) > 200 > top(u)


def test_shapes_of_specific_workloads():
    w = W.make("seq-write", file_size=10 * 4096 + 5, block_size=4096)
    writes = w.ops[w.ops["op"] == O.WRITE]
    assert writes["length"].sum() == 10 * 4096 + 5 and writes["length"][-1] == 5
    assert w.file_sizes.tolist() == [0]

    fs = W.make("fsync-heavy", threads=2, writes=3).ops
    t0 = fs[fs["thread"] == 0]
    assert t0["op"].tolist() == [O.WRITE, O.FSYNC] * 3   # the last fsync is the final one
    assert t0["file"].tolist() == [0] * 6 and t0["offset"][::2].tolist() == [0, 8192, 16384]

    m = W.make("mem-pressure", mem_total_pages=524288).ops        # 2 GiB: 48 MiB left free
    assert m["length"][m["op"] == O.ALLOC].sum() == 2000 << 20
    assert m["length"][m["op"] == O.FREE].sum() == 2000 << 20
    assert (m["length"][m["op"] == O.ALLOC] == 64 << 20).sum() == 31     # 32 chunks of 64 MiB
    assert (m["op"] == O.COMPACT).any()

    s = W.make("stuck-server").ops
    fsync_times = s["time"][s["op"] == O.FSYNC]
    assert fsync_times[0] == 3_000_000_000 and len(fsync_times) == 2

    d = W.make("dio-redirty", placement="rotate", stores=0, rounds=4, threads=2).ops
    reads = d[d["op"] == O.DIO_READ]
    assert (reads["offset"][reads["thread"] == 0] >> 18).tolist() == [0, 2, 4, 6]
    assert (reads["offset"][reads["thread"] == 1] >> 18).tolist() == [1, 3, 5, 7]
    assert (reads["length"] == 256 << 10).all()

    mw = W.make("multi-writer", file_size=40 * 4096, block_size=4096, threads=3).ops
    writes = mw[mw["op"] == O.WRITE]
    assert sorted(writes["offset"].tolist()) == [i * 4096 for i in range(40)]
    assert ((writes["offset"] // 4096) % 3 == writes["thread"]).all()


def test_workload_is_read_only():
    w = W.make("seq-write")
    with pytest.raises(ValueError):
        w.ops["time"][0] = 5
    with pytest.raises(AttributeError):
        w.name = "other"


def test_from_arrays_round_trip_and_errors():
    w = W.make("multi-writer", seed=4)
    c = W.from_arrays(w.ops, w.file_sizes, name="copy", params={"k": 1})
    assert c.ops.tobytes() == w.ops.tobytes() and c.name == "copy" and c.params == {"k": 1}
    assert c.bytes_dirtied() == w.bytes_dirtied() and c.threads == 4
    ops = O.make_ops(2)
    ops["op"] = O.WRITE
    ops["length"] = 4096
    ops["time"] = [5, 1]
    with pytest.raises(ValueError, match="^time:"):
        W.from_arrays(ops, [4096])
    ops["time"] = [1, 5]
    assert W.from_arrays(ops, [4096]).ops.flags.writeable is False
    assert ops.flags.writeable   # the caller's array was copied, not frozen
    with pytest.raises(ValueError, match="^file_sizes:"):
        W.from_arrays(ops, [4096.0])
    with pytest.raises(ValueError, match="^workload ops:"):
        W.from_arrays(np.zeros(2), [4096])


@pytest.mark.parametrize("name, params, field", [
    ("seq-write", {"block_size": 0}, "block_size"),
    ("seq-write", {"file_size": -5}, "file_size"),
    ("seq-write", {"block_size": "4k"}, "block_size"),
    ("seq-write", {"block_size": 4096.0}, "block_size"),
    ("seq-write", {"block_size": True}, "block_size"),
    ("seq-write", {"threads": 0}, "threads"),
    ("multi-writer", {"threads": 65}, "threads"),
    ("multi-writer", {"threads": 8, "file_size": 4 * 65536}, "threads"),
    ("rand-write", {"distribution": "pareto"}, "distribution"),
    ("rand-write", {"zipf_s": -1.0}, "zipf_s"),
    ("rand-write", {"zipf_s": float("nan")}, "zipf_s"),
    ("rand-write", {"writes": 0}, "writes"),
    ("rand-write", {"block_size": 2 << 20, "file_size": 1 << 20}, "block_size"),
    ("rand-write", {"distribution": "zipf", "hot_pages": 1 << 15}, "hot_pages"),
    ("rand-write", {"align": 0}, "align"),
    ("rewrite-hot", {"hot_bytes": 32 << 20}, "hot_bytes"),
    ("rewrite-hot", {"interval_ns": -1}, "interval_ns"),
    ("mmap-rewrite", {"msync_every": -1}, "msync_every"),
    ("dio-redirty", {"buffer_bytes": 1000}, "buffer_bytes"),
    ("dio-redirty", {"placement": "spiral"}, "placement"),
    ("mem-pressure", {"chunk_bytes": 0}, "chunk_bytes"),
    ("stuck-server", {"interval_ns": 0}, "interval_ns"),
    ("seq-write", {"file_size": 1 << 30, "block_size": 1}, "block_size"),
])
def test_bad_values_name_the_field(name, params, field):
    with pytest.raises(ValueError, match=f"^{field}: ") as e:
        W.make(name, **params)
    assert "\n" not in str(e.value)


def test_error_messages():
    with pytest.raises(ValueError, match=r"^block_size: must be > 0, got 0$"):
        W.make("seq-write", block_size=0)
    with pytest.raises(ValueError, match=r"^threads: must be in 1\.\.64, got 65$"):
        W.make("seq-write", threads=65)
    known = "seq-write, rand-write, .*, multi-writer"
    with pytest.raises(ValueError, match=rf"^unknown workload 'foo'; known: {known}$"):
        W.make("foo")
    with pytest.raises(ValueError, match=r"^unknown workload 'foo'"):
        W.workload_params("foo")
    message = ("rand-write: unknown parameter 'blk'; allowed: threads, file_size, block_size, "
               "align, writes, distribution, zipf_s, hot_pages, think_ns")
    with pytest.raises(ValueError, match=f"^{message}$"):
        W.make("rand-write", blk=4096)
    with pytest.raises(ValueError, match=r"^seed: "):
        W.make("seq-write", seed=-1)
    with pytest.raises(ValueError, match=r"^seed: "):
        W.make("seq-write", seed=1.5)


# ------------------------------------------------------------------ sizes that follow the memory
def test_memory_relative_defaults_follow_the_machine():
    from bench.sim import params
    for pages in (524288, 6170896, 1048576):
        m = W.make("mem-pressure", mem_total_pages=pages)
        assert m.params["alloc_bytes"] == pages * 4096 - (48 << 20)
        assert m.params["chunk_bytes"] == pages * 4096 // 32
        s = W.make("stuck-server", mem_total_pages=pages)
        assert s.params["block_size"] == (256 << 10) * pages // 524288 // 4096 * 4096
        # The recorded values rebuild the same arrays whatever the active machine.
        assert W.make("mem-pressure", **m.params).ops.tobytes() == m.ops.tobytes()
    # Without mem_total_pages: the active machine profile's memory.
    here = params.defaults()["mem_total_pages"]
    assert W.make("mem-pressure").params["alloc_bytes"] == here * 4096 - (48 << 20)
    assert W.make("mem-pressure", alloc_bytes=1 << 20).params["alloc_bytes"] == 1 << 20
    with pytest.raises(ValueError, match="mem_total_pages"):
        W.make("mem-pressure", mem_total_pages=1)


# ------------------------------------------------------------------ rand-write's random map
def test_randmap_writes_each_block_exactly_once():
    w = W.make("rand-write", seed=5, distribution="randmap")        # 16384 writes, 16384 blocks
    off = w.ops["offset"][w.ops["op"] == O.WRITE]
    assert len(off) == 16384 and (off % 4096 == 0).all()
    assert np.array_equal(np.sort(off), np.arange(16384, dtype=np.int64) * 4096)
    assert not np.array_equal(off, np.sort(off))                    # in a random order
    # The same seed gives the same array; another seed another order.
    assert W.make("rand-write", seed=5, distribution="randmap").ops.tobytes() == w.ops.tobytes()
    assert W.make("rand-write", seed=6, distribution="randmap").ops.tobytes() != w.ops.tobytes()


def test_randmap_passes_and_threads():
    # 3 threads x 100 writes over 128 blocks of 8 KiB: pass 1 covers all 128, pass 2 the next 128,
    # pass 3 the first 44 of a third order; no block twice within a pass.
    w = W.make("rand-write", seed=2, distribution="randmap", file_size=1 << 20, block_size=8192,
               threads=3, writes=100)
    wr = w.ops[w.ops["op"] == O.WRITE]
    assert len(wr) == 300 and (wr["length"] == 8192).all()
    order = np.concatenate([wr["offset"][wr["thread"] == t] for t in range(3)]) // 8192
    for a, b in ((0, 128), (128, 256)):
        assert sorted(order[a:b].tolist()) == list(range(128))
    assert len(set(order[256:].tolist())) == 44
    # A short run is a prefix of one order: each block at most once.
    few = W.make("rand-write", seed=2, distribution="randmap", writes=1000)
    assert len(np.unique(few.ops["offset"][few.ops["op"] == O.WRITE])) == 1000


@pytest.mark.parametrize("params, msg", [
    ({"distribution": "randmap", "block_size": 8192, "align": 4096}, "align: randmap"),
    ({"distribution": "randmap", "file_size": 1 << 40, "writes": 10}, "file_size: randmap"),
    ({"distribution": "random"}, "distribution: must be one of uniform, zipf, randmap"),
])
def test_randmap_bad_input(params, msg):
    with pytest.raises(ValueError, match=msg):
        W.make("rand-write", **params)
