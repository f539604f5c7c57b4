"""Tests of bench.sim.workload: every generator is valid, seeded, stable, and rejects bad input."""
import hashlib

import numpy as np
import pytest

from bench.sim import ops as O
from bench.sim import workload as W

# Block-size presets: (name, pattern, block size, overwrite).
PRESETS = [(f"{pat}-{'overwrite' if over else 'write'}-{label}", pat, kib << 10, over)
           for over in (0, 1) for pat in ("seq", "rand") for kib, label in ((128, "128k"),
                                                                            (1024, "1m"))]
NAMES = ["seq-write", "rand-write", "rewrite-hot", "mmap-rewrite", "dio-redirty", "fsync-heavy",
         "mem-pressure", "stuck-server", "multi-writer"] + [p[0] for p in PRESETS] + [
         "partial-rewrite", "stuck-server-long", "stuck-server-timeout"]
# Generators whose rows depend on the seed (the others are fixed patterns).
RANDOM = ["rand-write", "rewrite-hot", "mmap-rewrite", "dio-redirty", "multi-writer",
          "rand-write-128k", "rand-write-1m", "rand-overwrite-128k", "rand-overwrite-1m",
          "partial-rewrite"]
STUCK = ("stuck-server", "stuck-server-long", "stuck-server-timeout")   # appends that follow the memory
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
    assert 1 << 20 <= w.bytes_dirtied() <= (1 << 30 if name in STUCK else 128 << 20)
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
    ("seq-write", {"overwrite": 2}, "overwrite"),
    ("rand-write", {"overwrite": -1}, "overwrite"),
    ("rand-write", {"overwrite": 1, "threads": 2}, "threads"),
    ("seq-write-128k", {"block_size": 4096}, "block_size"),
    ("seq-overwrite-1m", {"overwrite": 0}, "overwrite"),
    ("rand-write-1m", {"overwrite": True}, "overwrite"),
    ("partial-rewrite", {"write_min": 700}, "write_min"),
    ("partial-rewrite", {"write_max": 4000, "align": 1000}, "write_min"),
    ("partial-rewrite", {"write_min": 4096}, "write_min"),
    ("partial-rewrite", {"write_max": 2 << 20, "file_size": 1 << 20}, "write_max"),
    ("partial-rewrite", {"align": 0}, "align"),
    ("partial-rewrite", {"rounds": 0}, "rounds"),
    ("stuck-server-long", {"stall_ns": 1 << 40}, "stall_ns"),
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
    known = "seq-write, rand-write, .*, stuck-server-timeout"
    with pytest.raises(ValueError, match=rf"^unknown workload 'foo'; known: {known}$"):
        W.make("foo")
    with pytest.raises(ValueError, match=r"^unknown workload 'foo'"):
        W.workload_params("foo")
    message = ("rand-write: unknown parameter 'blk'; allowed: threads, file_size, block_size, "
               "align, writes, distribution, zipf_s, hot_pages, think_ns, overwrite")
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


# ------------------------------------------------------------------ block sizes, lay-out, overwrite
def _phases(w):
    """(lay-out rows, measured rows) of a one-thread workload: split at the first fsync when it
    comes before the last row, else no lay-out."""
    sync = np.nonzero(w.ops["op"] == O.FSYNC)[0]
    if len(sync) > 1:
        return w.ops[:sync[0]], w.ops[sync[0] + 1:-1]
    return w.ops[:0], w.ops[:-1]


@pytest.mark.parametrize("name, pattern, block, overwrite", PRESETS)
def test_block_presets_shapes(name, pattern, block, overwrite):
    w = W.make(name, seed=4)
    size = 64 << 20
    assert w.params["block_size"] == block and w.params["overwrite"] == overwrite
    assert w.ops["op"][-1] == O.FSYNC and (w.ops["op"] == O.FSYNC).sum() == 1 + overwrite
    layout, measured = _phases(w)
    assert (measured["op"] == O.WRITE).all() and (measured["length"] == block).all()
    assert (measured["offset"] % block == 0).all()
    assert (measured["offset"] + measured["length"] <= size).all()
    every_block = np.arange(size // block, dtype=np.int64) * block
    if pattern == "seq":
        assert np.array_equal(measured["offset"], every_block)
    else:   # fio's random map: each block once, not in order
        assert np.array_equal(np.sort(measured["offset"]), every_block)
        assert not np.array_equal(measured["offset"], every_block)
    if overwrite:
        # A new file laid out by sequential writes of the same block size, then fsynced.
        assert w.file_sizes.tolist() == [0]
        assert (layout["op"] == O.WRITE).all() and (layout["length"] == block).all()
        assert np.array_equal(layout["offset"], every_block)
        assert (layout["time"] == 0).all()
    else:
        assert len(layout) == 0
        assert w.file_sizes.tolist() == [0 if pattern == "seq" else size]


def test_overwrite_adds_only_the_layout():
    # The measured rows are those of the same generator without overwrite, seed for seed.
    for base, params in (("seq-write", {"block_size": 8192, "file_size": 40960 + 5}),
                         ("rand-write", {"block_size": 8192, "writes": 50, "file_size": 1 << 20}),
                         ("rand-write", {"block_size": 1000, "align": 1, "writes": 50})):
        new = W.make(base, seed=9, **params)
        over = W.make(base, seed=9, overwrite=1, **params)
        layout, measured = _phases(over)
        assert measured.tobytes() == new.ops[:-1].tobytes()
        assert layout["length"].sum() == params.get("file_size", 64 << 20)
        assert over.file_sizes.tolist() == [0]
    # seq-write: every thread lays out its own file before overwriting it.
    w = W.make("seq-write", threads=2, file_size=3 * 4096, block_size=4096, overwrite=1)
    for t in range(2):
        rows = w.ops[w.ops["thread"] == t]
        assert rows["op"].tolist() == [O.WRITE] * 3 + [O.FSYNC] + [O.WRITE] * 3 + [O.FSYNC]
        assert (rows["file"] == t).all() and rows["offset"][:3].tolist() == [0, 4096, 8192]


def test_preset_fixed_parameters():
    w = W.make("rand-overwrite-128k", seed=2, writes=10)
    assert w.params["block_size"] == 128 << 10 and w.params["distribution"] == "randmap"
    # The recorded values rebuild it (a fixed value may be passed back as it is).
    assert W.make(w.name, **w.params).ops.tobytes() == w.ops.tobytes()
    # The preset is its base generator with those values.
    base = W.make("rand-write", seed=2, writes=10, block_size=128 << 10, overwrite=1,
                  distribution="randmap")
    assert base.ops.tobytes() == w.ops.tobytes()
    with pytest.raises(ValueError, match=r"^block_size: this workload's name fixes it at 131072, "
                                         r"got 4096 \(vary it on the workload"):
        W.make("seq-write-128k", block_size=4096)
    assert W.workload_params("seq-write")["block_size"][0] == 1 << 20   # the base is untouched


# ------------------------------------------------------------------ partial-block rewrites
def test_partial_rewrite_shape():
    w = W.make("partial-rewrite", seed=3)
    p = w.params
    size, lay = p["file_size"], p["layout_block"]
    assert w.file_sizes.tolist() == [0] and w.threads == 1
    ops = w.ops
    n_lay = size // lay
    # Lay-out: sequential layout_block writes over the whole file, then fsync.
    assert (ops["op"][:n_lay] == O.WRITE).all() and (ops["length"][:n_lay] == lay).all()
    assert ops["offset"][:n_lay].tolist() == [i * lay for i in range(n_lay)]
    assert ops["op"][n_lay] == O.FSYNC
    # Then rounds of `writes` rewrites, each round ending in an fsync.
    rest = ops[n_lay + 1:]
    per = p["writes"] + 1
    assert len(rest) == p["rounds"] * per
    assert (rest["op"][per - 1::per] == O.FSYNC).all()
    rw = rest[rest["op"] == O.WRITE]
    assert len(rw) == p["rounds"] * p["writes"]
    assert (rw["length"] >= 512).all() and (rw["length"] <= 2048).all()
    assert (rw["length"] % 512 == 0).all() and (rw["offset"] % 512 == 0).all()
    assert (rw["length"] < O.PAGE_SIZE).all()                 # smaller than a block
    assert (rw["offset"] + rw["length"] <= size).all()
    assert set(rw["length"].tolist()) == {512, 1024, 1536, 2048}
    # Byte-granular rewrites when align=1.
    odd = W.make("partial-rewrite", seed=3, align=1, write_min=100, write_max=300, writes=500)
    odd_rw = odd.ops[odd.ops["length"] < 1000]
    assert (odd_rw["offset"] % 512 != 0).any() and (odd_rw["length"] % 100 != 0).any()


def test_partial_rewrite_whole_folios_send_far_more():
    # What the workload is for, counted on its rows: per round, the bytes of the touched pages
    # (dirty-block tracking) against the bytes of the touched layout_block folios (whole folios).
    w = W.make("partial-rewrite", seed=1)
    lay, writes = w.params["layout_block"], w.params["writes"]
    rest = w.ops[w.params["file_size"] // lay + 1:]
    rounds = np.split(rest[rest["op"] == O.WRITE], w.params["rounds"])
    for r in rounds:
        assert len(r) == writes
        first, last = r["offset"] // O.PAGE_SIZE, (r["offset"] + r["length"] - 1) // O.PAGE_SIZE
        pages = set(first.tolist()) | set(last.tolist())
        folios = set((r["offset"] // lay).tolist()) | set(((r["offset"] + r["length"] - 1)
                                                            // lay).tolist())
        assert len(folios) * lay >= 20 * len(pages) * O.PAGE_SIZE


# ------------------------------------------------------------------ a stall that outlasts a timeout
def test_long_stall_is_accepted_and_cheap():
    from bench import sim
    w = W.make("stuck-server-long")
    assert w.params["stall_ns"] == 40 * 10**9 and w.params["duration_ns"] == 2 * 10**9
    assert len(w.ops) < 200
    assert W.make("stuck-server", stall_ns=40 * 10**9, duration_ns=2 * 10**9).ops.tobytes() \
        == w.ops.tobytes()
    # The engine keeps the fsync waiting the whole stall out: longer than any request timeout
    # of up to 25 s plus the 15 s between the kernel's checks.
    m = sim.run("no-temp-page", "stuck-server-long").metrics
    assert m["fsync_latency_ns"]["max"] >= 40 * 10**9 - 10**9
    assert m["makespan_ns"] > 41 * 10**9 and m["hangs"] >= 1


def test_a_request_timeout_ends_the_long_stall_in_aborted_calls():
    # stuck-server-timeout is stuck-server-long plus a 10 s timeout that the workload carries to
    # the model, raised to 15 s as the kernel does: the check every 15 s from the first call
    # aborts the connection at 30 s, inside the 40 s stall, so the fsync returns early.
    from bench import sim
    w = W.make("stuck-server-timeout")
    assert w.ops.tobytes() == W.make("stuck-server-long").ops.tobytes()
    assert w.params["request_timeout_ns"] == 10 * 10**9
    for engine in ("c", "python"):
        m = sim.run("no-temp-page", "stuck-server-timeout", engine=engine).metrics
        assert m["aborted_calls"] > 0, engine
        assert 28 * 10**9 < m["fsync_latency_ns"]["max"] < 31 * 10**9, engine
        assert m["makespan_ns"] < 35 * 10**9, engine
    assert sim.run("no-temp-page", "stuck-server-long").metrics["aborted_calls"] == 0
