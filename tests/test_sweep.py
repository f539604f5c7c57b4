"""python -m bench sweep: the spec's grid, its errors, the Parquet store, resuming, executors."""
import json
import subprocess
import sys
import textwrap

import pytest

from bench import results, sim
from bench.results import store
from bench.sim import sweeprun, sweepspec

SMALL = """
engine = "c"
seeds = 2
[product]
strategy = ["merge-in-queue", "no-temp-page"]
workload = ["rand-write", "fsync-heavy"]
file_size = 1048576
writes = 64
[[zip]]
max_pages = [16, 64]
max_background = [6, 24]
[random]
seed = 3
samples = 2
server_threads = {uniform = [1, 8]}
"""


def spec_file(tmp_path, text=SMALL, name="s.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def bench(*args, **kw):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          **kw)


def canonical(path):
    """Every row of a store, sorted by key, as one JSON text."""
    return json.dumps(sorted((r for r, _ in store.rows(path)), key=lambda r: r["key"]),
                      sort_keys=True)


def test_the_grid_is_product_times_zip_times_random_times_seeds(tmp_path):
    spec = sweepspec.load(spec_file(tmp_path))
    configs = sweepspec.expand(spec)
    assert sweepspec.count(spec) == len(configs) == 2 * 2 * 2 * 2 * 2
    assert len({c.key() for c in configs}) == len(configs)
    # zipped axes vary together
    assert {(c.params["max_pages"], c.params["max_background"]) for c in configs} == \
        {(16, 6), (64, 24)}
    # a workload parameter goes only to the workloads that have it; a model parameter that a
    # workload also carries (server_threads) goes to every run
    fsync = [c for c in configs if c.workload == "fsync-heavy"]
    assert all("file_size" not in c.params and "server_threads" in c.params for c in fsync)
    assert all(c.params["file_size"] == 1048576 for c in configs if c.workload == "rand-write")
    # the random points come from the spec's seed: the same twice, others with another seed
    drawn = sorted({c.params["server_threads"] for c in configs})
    assert drawn == sorted({c.params["server_threads"] for c in sweepspec.expand(spec)})
    assert all(1 <= t <= 8 for t in drawn)
    other = [sorted({c.params["server_threads"] for c in sweepspec.expand(sweepspec.load(
        spec_file(tmp_path, SMALL.replace("seed = 3", f"seed = {s}"), f"{s}.toml")))})
        for s in range(4, 10)]
    assert any(o != drawn for o in other)


def test_a_workload_parameter_on_a_workload_without_it_merges_repeats(tmp_path):
    spec = sweepspec.load(spec_file(tmp_path, """
        seeds = [5]
        [product]
        strategy = "no-temp-page"
        workload = ["fsync-heavy", "rand-write"]
        file_size = [1048576, 2097152]
        writes = 32
    """))
    assert sweepspec.count(spec) == 4
    configs = sweepspec.expand(spec)
    assert len(configs) == 3        # fsync-heavy has no file_size: its two configurations are one
    assert [c.seed for c in configs] == [5, 5, 5]


@pytest.mark.parametrize("text, needle", [
    ("[product\n", "not TOML"),
    ("[product]\nstrategy = 'nope'\nworkload = 'seq-write'", "strategy: unknown 'nope'"),
    ("[product]\nstrategy = 'no-temp-page'\nworkload = 'nope'", "workload: unknown 'nope'"),
    ("[product]\nstrategy = 'no-temp-page'\nworkload = 'seq-write'\nmax_pagez = 3",
     "product.max_pagez: unknown parameter"),
    ("[product]\nstrategy = 'no-temp-page'\nworkload = 'seq-write'\nmax_pages = 0",
     "max_pages: must be in 1..65535"),
    ("[product]\nstrategy = 'no-temp-page'\nworkload = 'seq-write'\n[[zip]]\n"
     "max_pages = [1, 2]\nhz = [250]", "zipped lists differ in length"),
    ("[product]\nstrategy = 'no-temp-page'\nworkload = 'seq-write'\nhz = 250\n[[zip]]\n"
     "hz = [100]", "zip[0].hz: the axis is already in product"),
    ("[product]\nstrategy = 'no-temp-page'\nworkload = 'seq-write'\n[random]\nseed = 1\n"
     "samples = 2\nhz = {uniform = [300, 100]}", "random.hz.uniform: expected [low, high]"),
    ("[product]\nstrategy = 'no-temp-page'\nworkload = 'seq-write'\nmachine = 'no-such-box'",
     "no-such-box"),
    ("seeds = 0\n[product]\nstrategy = 'no-temp-page'\nworkload = 'seq-write'", "seeds"),
    ("[product]\nworkload = 'seq-write'", "strategy: missing"),
    ("oops = 1", "oops: unknown key"),
])
def test_a_bad_spec_is_one_error_line_and_exit_2(tmp_path, text, needle):
    p = bench("sweep", str(spec_file(tmp_path, text)), "--out", str(tmp_path / "st"), "--quiet")
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("ERROR: ") and p.stderr.count("\n") == 1, p.stderr
    assert needle in p.stderr
    assert not (tmp_path / "st").exists()


def test_the_store_holds_what_the_engine_returned(tmp_path):
    spec = sweepspec.load(spec_file(tmp_path))
    out = tmp_path / "st"
    got = sweeprun.run(spec, out, "local", jobs=1, progress=False)
    assert (got.total, got.stored, got.computed) == (32, 0, 32)
    suite = store.load(out)
    assert suite.metadata["command"] == "sweep" and suite.metadata["parts"] == got.parts
    assert suite.metadata["machine"]["name"] == "ci-2cpu-24g"
    c = sweepspec.expand(spec)[7]
    direct = sim.run(c.strategy, c.workload, seed=c.seed, engine=c.engine, **c.params)
    stored = next(r for r in suite.runs if r.key() == direct.key())
    assert results.run_to_dict(stored) == results.run_to_dict(direct)
    row = next(r for r, _ in store.rows(out) if r["key"] == c.key())
    assert row["write_latency_ns.p99"] == direct.metrics["write_latency_ns"]["p99"]


def test_an_interrupted_sweep_resumes_and_never_redoes_a_run(tmp_path):
    spec = sweepspec.load(spec_file(tmp_path))
    out = tmp_path / "st"
    written = []

    def stop_after_two(n):
        written.append(n)
        if len(written) == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        sweeprun.run(spec, out, "local", jobs=1, progress=False, target_s=1e-9,
                     on_part=stop_after_two)
    kept = len(store.keys(out))
    assert kept == sum(written) and 0 < kept < 32
    computed = []
    got = sweeprun.run(spec, out, "local", jobs=2, progress=False, on_part=computed.append)
    assert (got.stored, got.computed, sum(computed)) == (kept, 32 - kept, 32 - kept)
    again = sweeprun.run(spec, out, "local", jobs=2, progress=False)
    assert (again.stored, again.computed, again.parts) == (32, 0, 0)
    whole = tmp_path / "whole"
    sweeprun.run(spec, whole, "local", jobs=1, progress=False)
    assert canonical(out) == canonical(whole)


def test_a_store_prepopulated_by_a_smaller_spec_runs_only_the_rest(tmp_path):
    out = tmp_path / "st"
    small = bench("sweep", str(spec_file(tmp_path, SMALL.replace(
        '"merge-in-queue", "no-temp-page"', '"no-temp-page"'), "a.toml")),
        "--out", str(out), "--quiet", "--jobs", "1")
    assert small.returncode == 0, small.stderr
    assert "16 runs" in small.stdout and "16 computed" in small.stdout
    full = bench("sweep", str(spec_file(tmp_path)), "--out", str(out), "--quiet")
    assert full.returncode == 0, full.stderr
    assert "32 runs" in full.stdout and "16 already in the store, 16 computed" in full.stdout
    assert len(store.load(out).runs) == 32


def test_a_store_path_that_is_a_file_or_another_directory_is_refused(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    p = bench("sweep", str(spec_file(tmp_path)), "--out", str(f), "--quiet")
    assert p.returncode == 2 and "not a directory" in p.stderr
    d = tmp_path / "d"
    d.mkdir()
    (d / "notes.txt").write_text("x")
    p = bench("sweep", str(spec_file(tmp_path)), "--out", str(d), "--quiet")
    assert p.returncode == 2 and "not a sweep store" in p.stderr


def test_a_part_of_another_schema_version_is_refused(tmp_path, monkeypatch):
    spec = sweepspec.load(spec_file(tmp_path))
    out = tmp_path / "st"
    monkeypatch.setattr(results, "SCHEMA_VERSION", results.SCHEMA_VERSION + 1)
    sweeprun.run(spec, out, "local", jobs=1, progress=False)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="schema_version .* is not supported"):
        store.load(out)


def test_a_dask_cluster_of_two_workers_writes_what_the_local_pool_writes(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = sweepspec.load(spec_file(tmp_path))
    local = tmp_path / "local"
    sweeprun.run(spec, local, "local", jobs=2, progress=False)
    # Worker processes (processes=True), as a real cluster has; reached by its address.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        viadask = tmp_path / "dask"
        got = sweeprun.run(spec, viadask, "dask", scheduler=cluster.scheduler_address,
                           progress=False)
    assert got.computed == 32 and got.batches > 1
    assert canonical(viadask) == canonical(local)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    results.dump(results.Suite({}, store.load(local).runs), a)
    results.dump(results.Suite({}, store.load(viadask).runs), b)
    assert a.read_bytes() == b.read_bytes()


def test_scheduler_without_dask_or_with_jobs_is_refused(tmp_path):
    s = str(spec_file(tmp_path))
    p = bench("sweep", s, "--executor", "local", "--scheduler", "tcp://127.0.0.1:1", "--quiet")
    assert p.returncode == 2 and "--scheduler" in p.stderr
    p = bench("sweep", s, "--scheduler", "tcp://127.0.0.1:1", "--jobs", "2", "--quiet")
    assert p.returncode == 2 and "--jobs" in p.stderr


def test_the_example_spec_is_about_200_runs():
    from pathlib import Path
    spec = sweepspec.load(Path(__file__).parents[1] / "examples" / "sweep.toml")
    assert 150 <= len(sweepspec.expand(spec)) <= 250


def test_every_example_spec_has_the_run_count_its_comment_states():
    import re
    from pathlib import Path
    specs = sorted((Path(__file__).parents[1] / "examples").glob("sweep*.toml"))
    assert len(specs) >= 3
    for path in specs:
        stated = re.search(r"= ([\d,]+) runs", path.read_text())
        assert stated, f"{path.name}: no '= N runs' in its comment"
        assert len(sweepspec.expand(sweepspec.load(path))) == int(stated[1].replace(",", "")), path.name


def test_a_damaged_part_is_one_error_line(tmp_path):
    out = tmp_path / "st"
    assert bench("sweep", str(spec_file(tmp_path)), "--out", str(out), "--quiet").returncode == 0
    first = store.parts(out)[0]
    first.write_bytes(first.read_bytes()[:100])
    p = bench("sweep", str(spec_file(tmp_path)), "--out", str(out), "--quiet")
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert f"{first}: not a Parquet part file" in p.stderr


def test_compare_and_gate_read_stores(tmp_path):
    spec = sweepspec.load(spec_file(tmp_path))
    a, b = tmp_path / "a", tmp_path / "b"
    sweeprun.run(spec, a, "local", jobs=1, progress=False)
    sweeprun.run(spec, b, "local", jobs=2, progress=False)
    p = bench("compare", str(a), str(b))
    assert p.returncode == 0, p.stderr
    assert f"rand-write: {b} against {a}" in p.stdout
    g = bench("gate", str(a), str(b), "--json")
    assert g.returncode == 0, g.stderr
    assert json.loads(g.stdout)["verdict"] == "ok"
    # A store whose runs went slower on every request: the gate says so, exit 1.
    plain = """seeds = 3
        [product]
        strategy = ["merge-in-queue", "no-temp-page"]
        workload = "rand-write"
        writes = 256
    """
    base, slow = tmp_path / "base", tmp_path / "slow"
    sweeprun.run(sweepspec.load(spec_file(tmp_path, plain, "p.toml")), base, "local", jobs=1,
                 progress=False)
    sweeprun.run(sweepspec.load(spec_file(tmp_path, plain + "        server_page_ns = 40000\n",
                                          "q.toml")), slow, "local", jobs=1, progress=False)
    g = bench("gate", str(base), str(slow), "--match-params", "ignore")
    assert g.returncode == 1, g.stdout + g.stderr
    assert "REGRESSION" in g.stdout.upper()


def test_a_sweep_killed_with_sigkill_resumes_from_its_whole_parts(tmp_path):
    import signal
    many = """seeds = 250
        [product]
        strategy = ["merge-in-queue", "no-temp-page", "temp-naive", "redirty-and-skip"]
        workload = "rand-write"
        file_size = 1048576
        writes = 32
    """
    spec = spec_file(tmp_path, many)
    out = tmp_path / "st"
    # The sweep kills itself with SIGKILL once its second part is written (small batches, so
    # that runs are left to do): no polling, so no speed of the machine decides where it stops.
    child = ("import os, signal, sys\n"
             "from bench.sim import sweepspec, sweeprun\n"
             "parts = []\n"
             "def on_part(n):\n"
             "    parts.append(n)\n"
             "    if len(parts) == 2:\n"
             "        os.kill(os.getpid(), signal.SIGKILL)\n"
             "sweeprun.run(sweepspec.load(sys.argv[1]), sys.argv[2], 'local', jobs=1,\n"
             "             progress=False, target_s=0.01, on_part=on_part)\n")
    p = subprocess.Popen([sys.executable, "-c", child, str(spec), str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.communicate(timeout=600)
    assert p.returncode == -signal.SIGKILL, "the sweep ended before it could be killed"
    kept = store.keys(out)                       # every part left is whole and readable
    assert 0 < len(kept) < 1000
    again = bench("sweep", str(spec), "--out", str(out), "--quiet", "--jobs", "2")
    assert again.returncode == 0, again.stderr
    assert f"1000 runs in {spec}: {len(kept)} already in the store, {1000 - len(kept)} " \
           "computed" in again.stdout
    assert len(store.load(out).runs) == 1000


def test_a_machine_axis_keys_runs_by_profile_and_a_comparison_takes_one(tmp_path, monkeypatch):
    import os
    from bench.sim import machine
    monkeypatch.setenv(machine.ENV, "ci-2cpu-24g")
    spec = sweepspec.load(spec_file(tmp_path, """
        [product]
        strategy = "no-temp-page"
        workload = "rand-write"
        machine = ["ci-2cpu-24g", "qemu-6.12-2cpu-4g"]
        writes = 4096
    """))
    out = tmp_path / "st"
    got = sweeprun.run(spec, out, "local", jobs=1, progress=False)
    assert got.computed == 2
    assert os.environ[machine.ENV] == "ci-2cpu-24g"        # the caller's profile is restored
    rows = {r["machine"]: r for r, _ in store.rows(out)}
    assert rows["qemu-6.12-2cpu-4g"]["machine_sha256"] == machine.load("qemu-6.12-2cpu-4g").sha256
    monkeypatch.setenv(machine.ENV, "qemu-6.12-2cpu-4g")
    direct = sim.run("no-temp-page", "rand-write", seed=0, writes=4096)
    metrics = lambda r: {k: v for k, v in r.items()                   # noqa: E731
                         if k not in store.KEY_COLUMNS}
    assert metrics(rows["qemu-6.12-2cpu-4g"]) == metrics(store.run_row("", "", "", direct))
    assert metrics(rows["ci-2cpu-24g"]) != metrics(store.run_row("", "", "", direct))
    with pytest.raises(ValueError, match="2 machine profiles"):
        store.load(out)


def test_dask_missing_is_one_error_line_before_any_run(tmp_path, monkeypatch, capsys):
    from bench import __main__ as cli
    monkeypatch.setitem(sys.modules, "distributed", None)      # import distributed fails
    out = tmp_path / "st"
    assert cli.main(["sweep", str(spec_file(tmp_path)), "--out", str(out), "--quiet",
                     "--executor", "dask"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'fuse-writeback-bench[dask]'" in err
    assert store.keys(out) == set()


def test_compare_gives_a_model_parameter_a_workload_also_carries_to_every_workload():
    # dio-redirty carries its own server (server_threads among its parameters); a
    # --param server_threads=8 must still reach seq-write, as the model's parameter.
    from bench import sim
    from bench.sim import sweep
    runs = sweep.sweep(["no-temp-page"], ["seq-write", "dio-redirty"], [0], "c",
                       {"server_threads": 8, "file_size": 8 << 20}, jobs=1, progress=False)
    by = {r.workload: r for r in runs}
    assert by["seq-write"].params.get("server_threads") == 8
    assert by["dio-redirty"].params.get("server_threads") == 8
    alone = sim.run("no-temp-page", "seq-write", 0, server_threads=8, file_size=8 << 20)
    assert by["seq-write"].metrics == alone.metrics
    assert "server_threads" not in sweep.workload_only_params()


def test_a_batch_builds_each_workload_once_and_writes_what_sim_run_gives(tmp_path, monkeypatch):
    from bench.sim import machine
    monkeypatch.setenv(machine.ENV, machine.spec())          # restored after run_batch selects
    spec = sweepspec.load(spec_file(tmp_path, """
        engine = "c"
        seeds = 2
        [product]
        strategy = ["temp-naive", "no-temp-page"]
        workload = ["dio-redirty", "rand-write"]
        writes = 64
        rounds = 4
        server_threads = [1, 3]
        """))
    configs = sweepspec.expand(spec)
    sim._SHARED.clear()
    rows = sweeprun.run_batch(configs)
    # 2 workloads x 2 seeds; dio-redirty takes server_threads as its own parameter
    assert len(sim._SHARED) == 6 and len(configs) == 16
    for c, row in zip(configs, rows):
        direct = sim.run(c.strategy, c.workload, seed=c.seed, engine=c.engine, **c.params)
        want = store.run_row(c.key(), c.machine, c.machine_sha256, direct)
        assert json.dumps(row, sort_keys=True) == json.dumps(want, sort_keys=True), c.key()


# ---------------------------------------------------------------- the cost of a run (issue 12)
def _reference_row(key, machine, sha, run):
    """A row as store.run_row made it before its fast paths: results.run_to_dict, flattened."""
    from bench.results.metrics import LATENCY_METRICS
    d = results.run_to_dict(run)
    row = {"key": key, "strategy": d["strategy"], "workload": d["workload"], "machine": machine,
           "machine_sha256": sha, "seed": d["seed"], "engine": d["engine"],
           "params": json.dumps(d["params"], sort_keys=True)}
    for name, v in d["metrics"].items():
        if name in LATENCY_METRICS:
            for k in store.LATENCY_KEYS:
                row[f"{name}.{k}"] = v[k]
        elif isinstance(v, (dict, list)):
            row[name] = json.dumps(v, sort_keys=True)
        else:
            row[name] = v
    row["series"] = d.get("series", [])
    row["meta"] = json.dumps(d.get("meta", {}), sort_keys=True)
    return row


def test_a_row_is_run_to_dict_flattened_whatever_its_values_types():
    import numpy as np
    plain = sim.run("merge-in-queue", "fsync-heavy", seed=1, writes=16)
    m = dict(plain.metrics)
    m["requests"] = np.int64(m["requests"])
    m["app_throughput_bps"] = np.float64(m["app_throughput_bps"])
    m["write_latency_ns"] = {k: np.int64(v) for k, v in m["write_latency_ns"].items()}
    m["pages_per_request"] = {10: 1, 9: np.int32(2)}         # sorted as the strings they become
    m["a_tuple"] = (1, np.int32(2))
    odd = results.Run("merge-in-queue", "fsync-heavy", {"writes": np.int64(16), "t": (1, 2)}, 1,
                      "c", m, plain.series, {"note": np.int64(3)})
    for run in (plain, odd):
        got, want = store.run_row("k", "m", "s", run), _reference_row("k", "m", "s", run)
        assert json.dumps(got) == json.dumps(want)                        # order and values
        assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


@pytest.mark.parametrize("rows", [
    [{"a": 1, "s": "x", "f": 1.5, "series": [[1, 2, 3, 4, 5, 6]]},
     {"a": -2 ** 63, "s": "\u00e9\U0001f600", "f": float("nan"), "series": [[7] * 6, [2 ** 63 - 1] * 6]}],
    [{"a": 1, "series": []}, {"a": 2, "series": [[7] * 6]}],
    [{"a": 1, "series": []}, {"a": 2, "series": []}],                # no value: a null type
    [{"a": 1, "series": [[], [1, 2]]}],
    [{"a": 1, "b": 1.0, "c": True}, {"a": 2.0, "b": 1, "c": False}],  # mixed: pyarrow's
    [{"a": None, "s": None, "series": None}, {"a": 2, "s": "", "series": [[1]]}],
    [{"a": 1}, {"a": 2, "series": [[1]]}],                           # the first row's columns
    [{"a": 2 ** 63, "series": [[2 ** 63]]}],                         # past int64: pyarrow's error
    [{"s": "\ud800"}],                                               # not UTF-8: pyarrow's error
    [],
])
def test_a_part_s_table_is_the_one_pyarrow_infers(rows):
    import pyarrow as pa
    try:
        want = pa.Table.from_pylist(rows)
    except Exception as e:
        with pytest.raises(type(e)):
            store._table(rows)
        return
    got = store._table(rows)
    assert got.schema == want.schema
    assert repr(got.to_pylist()) == repr(want.to_pylist())            # nan as nan


def test_writing_a_part_and_reading_a_store_s_keys_do_not_import_pandas(tmp_path):
    # pyarrow's conversion of Python lists, and read_table, import pandas: 0.3 s and more of a
    # sweep's parent
    from pathlib import Path
    out = tmp_path / "st"
    code = textwrap.dedent(f"""
        import sys
        from bench.results import store
        rows = [{{"key": "a", "n": 1, "x": 0.5, "hist": "{{}}", "series": [[1, 2, 3, 4, 5, 6]]}}]
        store.append({str(out)!r}, rows, {{}})
        assert store.keys({str(out)!r}) == {{"a"}}
        print("pandas" in sys.modules)
    """)
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "False"
    assert [r["series"] for r, _ in store.rows(out)] == [[[1, 2, 3, 4, 5, 6]]]


def test_points_kept_across_batches_and_a_shared_params_dict_give_sim_run_s_rows(monkeypatch):
    from bench.sim import machine
    monkeypatch.setenv(machine.ENV, machine.spec())
    shared = {"writes": 4096}       # one dict for configs of several points, as no grid makes

    def config(strategy, seed, profile="ci-2cpu-24g", engine="c", params=shared):
        return sweepspec.Config(strategy, "rand-write", profile, machine.load(profile).sha256,
                                params, seed, engine)
    first = [config("no-temp-page", 0), config("merge-in-queue", 0), config("no-temp-page", 1)]
    second = [config("merge-in-queue", 1), config("no-temp-page", 0, "qemu-6.12-2cpu-4g"),
              config("no-temp-page", 0, engine="python", params={"writes": 16})]
    rows = sweeprun.run_batch(first) + sweeprun.run_batch(second)
    assert len({json.dumps({k: v for k, v in r.items() if k not in store.KEY_COLUMNS})
                for r in rows[:5]}) == 5                     # strategy, seed and profile tell
    for c, row in zip(first + second, rows):
        monkeypatch.setenv(machine.ENV, c.machine)
        direct = sim.run(c.strategy, c.workload, seed=c.seed, engine=c.engine, **c.params)
        assert row == store.run_row(c.key(), c.machine, c.machine_sha256, direct), c.key()


def test_the_c_engine_given_its_struct_again_returns_what_it_returns_without():
    import numpy as np
    from bench.sim import _cengine
    w, cfg = sim.prepare("merge-in-queue", "fsync-heavy", 3, writes=16)
    struct = _cengine.make_config(cfg)
    want = _cengine.simulate(cfg, w.ops, w.file_sizes, 3)
    for _ in range(2):
        got = _cengine.simulate(cfg, w.ops, w.file_sizes, 3, config=struct)
        assert got["counters"] == want["counters"]
        assert got["pages_per_request"] == want["pages_per_request"]
        assert got["latency"].keys() == want["latency"].keys()
        for k, a in got["latency"].items():
            assert a.dtype == np.int64 and np.array_equal(a, want["latency"][k])
        assert got["series"].shape == want["series"].shape
        assert np.array_equal(got["series"], want["series"])
    assert len(want["latency"]["write"]) and len(want["latency"]["fsync"])


def test_sweepcost_s_spans_nest_and_its_jobs_mode_runs_the_sweep(tmp_path):
    from bench.sim import sweepcost
    spec = str(spec_file(tmp_path, """
        engine = "c"
        seeds = 2
        [product]
        strategy = "no-temp-page"
        workload = "rand-write"
        writes = 16
        max_pages = [16, 32]
        """))
    m = sweepcost.measure(spec)
    assert m["runs"] == 4 and m["parts"] >= 1
    assert 0 < m["engine_s"] <= m["simulate_s"] <= m["batches_s"] <= m["wall_s"]
    assert 0 < m["writes_s"] < m["wall_s"] - m["batches_s"]
    assert "parent (wall - run_batch) / engine" in sweepcost.render(m)
    j = sweepcost.measure_jobs(spec, 2, out=str(tmp_path / "st"))
    assert j["runs"] == 4 and len(store.keys(tmp_path / "st")) == 4
    assert 0 <= j["parent_cpu_s"] and 0 < j["wall_s"]
    assert "local executor, 2 jobs" in sweepcost.render(j)
