"""The command line, as a user sees it: exact output on checked-in fixtures, one-line
errors with a non-zero exit, no traceback."""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bench import __main__ as cli, results

FIX = Path(__file__).parent / "fixtures"


def bench(*args, **kw):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          **kw)


def test_compare_two_files_prints_the_pinned_table(capsys):
    assert cli.main(["compare", str(FIX / "old.json"), str(FIX / "new.json")]) == 0
    out = capsys.readouterr().out
    expected = (FIX / "compare_old_new.txt").read_text()
    assert out == expected.replace("tests/fixtures/", str(FIX) + "/")


def test_compare_json_rows(capsys):
    assert cli.main(["compare", "--json", str(FIX / "old.json"), str(FIX / "new.json")]) == 0
    rows = json.loads(capsys.readouterr().out)
    r = next(x for x in rows if x["workload"] == "seq-write" and x["strategy"] == "merge-in-queue"
             and x["metric"] == "app_throughput_bps")
    assert r["verdict"] == "worse" and r["significant"] and r["base"] == "old" and r["n"] == 5


def test_a_sweep_writes_a_result_file_and_a_table(tmp_path):
    out = tmp_path / "r.json"
    p = bench("compare", "--engine", "python", "--workloads", "seq-write,dio-redirty",
              "--strategies", "merge-in-queue,no-temp-page,temp-naive", "--seeds", "2",
              "--param", "file_size=1048576", "--param", "rounds=5", "--quiet",
              "--out", str(out), "--jobs", "2", "--no-mount")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert p.stdout.startswith("Who wins:")
    assert "\nseq-write: 2 seed(s), python engine, base merge-in-queue" in p.stdout
    assert "dio-redirty: 2 seed(s)" in p.stdout
    s = results.load(out)
    assert len(s.runs) == 2 * 3 * 2
    assert s.runs[0].params == {"file_size": 1048576}      # rounds went only to dio-redirty
    again = bench("compare", "--engine", "python", "--workloads", "seq-write", "--seeds", "1",
                  "--param", "file_size=1048576", "--quiet", "--out", str(out), "--no-mount")
    assert again.returncode == 2 and "exists" in again.stderr
    assert results.load(out).runs == s.runs                  # nothing written over


@pytest.mark.parametrize("args, needle", [
    (["compare", "--strategies", "nope"], "--strategies: unknown 'nope'"),
    (["compare", "--workloads", "nope"], "--workloads: unknown 'nope'"),
    (["compare", "--seeds", "0"], "--seeds"),
    (["compare", "--param", "max_pages=0"], "max_pages"),
    (["compare", "--param", "oops"], "KEY=VALUE"),
    (["compare", "--param", "blorp=1"], "blorp"),
    (["compare", "--baseline", "nope"], "--baseline: 'nope' is not among"),
    (["compare", "--workloads", "seq-write", "--param", "file_size=65536", "--seeds", "1",
      "--engine", "python", "--out", "/dev/null/x.json", "--no-mount"], "/dev/null"),
    (["compare", "only-one.json"], "two result files"),
    (["compare", "missing-a.json", "missing-b.json"], "no such result file"),
    (["gate", "missing-a.json", "missing-b.json"], "no such result file"),
])
def test_bad_input_is_one_error_line(args, needle):
    p = bench(*args, "--quiet") if args[0] == "compare" and len(args) > 1 and \
        not args[1].endswith(".json") else bench(*args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and needle in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_list_names_everything():
    p = bench("list")
    assert p.returncode == 0
    for name in ("temp-naive", "no-temp-page", "dio-redirty", "max_background=12",
                 "merge_queued_primary=0", "server_threads=4"):
        assert name in p.stdout


def test_compare_adds_real_mount_rows_or_says_why_not(tmp_path):
    from bench.real import mount
    p = bench("compare", "--engine", "python", "--workloads", "seq-write", "--seeds", "1",
              "--strategies", "no-temp-page", "--baseline", "no-temp-page",
              "--param", "file_size=1048576", "--quiet", "--out", str(tmp_path / "m.json"))
    assert p.returncode == 0, p.stderr
    ok, why = mount.available()
    if ok:
        assert mount.kernel_name() in p.stdout
        assert {r.engine for r in results.load(tmp_path / "m.json").runs} == {"python", "mount"}
    else:
        assert p.stderr.strip() == f"no real-mount rows: {why}"


# ---- hardening: every verb, bad input -> exit 2 and one `ERROR:` line, nothing written ----
def _one_error(p, needle):
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and needle in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def _doc(runs):
    return {"schema_version": 1, "metadata": {}, "runs": runs}


_LAT = {"p50": 1, "p99": 1, "p999": 1, "max": 1, "count": 1}
# The metrics every run carries (bench.results.metrics.REQUIRED_METRICS).
_REQUIRED = {"app_throughput_bps": 1, "wb_throughput_bps": 1, "makespan_ns": 1,
             "write_latency_ns": _LAT, "fsync_latency_ns": _LAT, "requests": 1,
             "pages_per_request": {"1": 1}, "bytes_written": 4096}


def _run(metrics=None, **kw):
    d = {"strategy": "s", "workload": "w", "params": {}, "seed": 0, "engine": "c",
         "metrics": {**_REQUIRED, **(metrics or {})}}
    d.update(kw)
    return d


SMALL = ["--workloads", "seq-write", "--seeds", "1", "--param", "file_size=65536", "--no-mount",
         "--engine", "python", "--quiet", "--strategies", "no-temp-page", "--baseline", "no-temp-page"]


@pytest.mark.parametrize("args, needle", [
    ([], "required: verb"),
    (["nope"], "invalid choice: 'nope'"),
    (["compare", "--seeds", "x"], "invalid int value: 'x'"),
    (["compare", "--engine", "rust"], "invalid choice: 'rust'"),
    (["gate", "only-one.json"], "CANDIDATE.json"),
    (["report", "r.json"], "-o/--output"),
    (["replay"], "TRACE"),
    (["speed", "--bogus"], "unrecognized arguments: --bogus"),
    (["record", "--seed", "x", "-o", "t.trace", "seq-write"], "invalid int value"),
    (["calibrate", "--rounds", "x"], "invalid int value"),
    (["validate", "--engine", "rust"], "invalid choice"),
    (["list", "extra"], "unrecognized arguments: extra"),
])
def test_usage_errors_are_one_error_line(args, needle):
    _one_error(bench(*args), needle)


def test_help_still_works():
    p = bench("compare", "--help")
    assert p.returncode == 0 and "--strategies" in p.stdout


@pytest.mark.parametrize("extra, needle", [
    (["--seeds", "99999999999999999999"], "--seeds: must be in 1..1000"),   # was a traceback
    (["--jobs", "100000"], "--jobs: must be in 1.."),         # forked 100000 workers (OOM)
    (["--strategies", ","], "--strategies: no names"),         # was a misleading --baseline error
    (["--workloads", ",,"], "--workloads: no names"),
])
def test_compare_bad_numbers_and_names(tmp_path, extra, needle):
    _one_error(bench("compare", *SMALL, "--out", str(tmp_path / "r.json"), *extra), needle)
    assert not (tmp_path / "r.json").exists()


def test_compare_duplicate_names_run_once(tmp_path):
    out = tmp_path / "r.json"
    p = bench("compare", *SMALL, "--out", str(out), "--strategies", "no-temp-page,no-temp-page",
              "--workloads", "seq-write,seq-write")
    assert p.returncode == 0, p.stderr
    assert len(results.load(out).runs) == 1


@pytest.mark.parametrize("where, needle", [
    ("dir", "is a directory"),            # named a temp file, and only after the whole sweep
    ("file/x.json", "is not a directory"),      # said "File exists"
    ("/proc/x.json", "cannot write in /proc"),    # named a temp file
])
def test_unwritable_outputs_are_refused_before_any_work(tmp_path, where, needle):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("")
    out = where if where.startswith("/") else str(tmp_path / where)
    _one_error(bench("compare", *SMALL, "--force", "--out", out), needle)
    _one_error(bench("replay", str(tmp_path / "none.trace"), "--force", "--out", out), needle)
    _one_error(bench("record", "seq-write", "--force", "-o", out), needle)
    _one_error(bench("calibrate", "--force", "-o", out), needle)
    if where != "dir":                   # an empty directory is a fine place for a site
        _one_error(bench("report", str(FIX / "old.json"), "-o", out.removesuffix(".json")), needle)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["dir", "file"]
    assert not list((tmp_path / "dir").iterdir())


@pytest.mark.parametrize("content, needle", [
    (bytes(range(256)) * 4, "not JSON (not UTF-8 text)"),           # did not name the file
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),           # did not name the file
    (('{"schema_version": 1, "metadata": {}, "runs": [' + "9" * 5000 + "]}").encode(),
     "not a result file"),                                           # did not name the file
    (json.dumps(_doc([_run(metrics={"write_latency_ns": {"p50": 1, "p99": 1, "p999": 1,
                                                          "max": 1, "count": 1}})]))
     .replace('"p50": 1', '"p50": NaN').encode(), "p50: not a finite number"),   # was accepted
    (json.dumps(_doc([_run(series=[[1e30, 1, 2, 3, 4, 5]])])).encode(),
     "runs[0].series: expected rows"),                                # was a traceback
    (json.dumps({"schema_version": True, "metadata": {}, "runs": []}).encode(),
     "schema_version: True is not supported"),                        # True == 1 was accepted
], ids=["binary", "deep", "huge-int", "nan-latency", "huge-series", "version-true"])
def test_bad_result_files_name_the_file(tmp_path, content, needle):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    for args in (["gate", str(FIX / "old.json"), str(bad)], ["compare", str(FIX / "old.json"), str(bad)],
                 ["report", str(bad), "-o", str(tmp_path / "site")]):
        p = bench(*args)
        _one_error(p, needle)
        assert str(bad) in p.stderr
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("args, needle", [
    (["--threshold", "app_throughput_bps=nan"], "finite number >= 0"),   # nan never regressed
    (["--threshold", "pages_per_request=5"], "'pages_per_request' is not gated"),   # ignored
    (["--default-threshold", "-1"], "--default-threshold: must be a finite number >= 0"),
    (["--default-threshold", "nan"], "--default-threshold: must be a finite number >= 0"),
])
def test_gate_bad_thresholds(args, needle):
    old = str(FIX / "old.json")
    _one_error(bench("gate", old, old, *args), needle)


@pytest.mark.parametrize("doc, needle", [
    (_doc([]), "holds no runs: nothing to gate"),                     # passed: "OK: none of 0"
    (_doc([{**_run(), "metrics": {}}]), "missing 'app_throughput_bps'"),  # passed: "OK: none of 0"
])
def test_gate_with_nothing_to_compare_is_an_error(tmp_path, doc, needle):
    f = tmp_path / "r.json"
    f.write_text(json.dumps(doc))
    _one_error(bench("gate", str(f), str(f)), needle)


@pytest.mark.parametrize("args, needle", [
    (["--seed", "99999999999999999999999"], "--seed: must be in 0..2**63-1"),  # after the mount
    (["--timeout", "nan"], "--timeout: must be a number of seconds > 0"),     # was accepted
    (["--param", "timeout_s=abc"], "timeout_s: must be a number of seconds"),  # no name
    (["--param", "timeout_s=-1"], "timeout_s: must be a number of seconds"),   # mounted
    (["--param", "stalls=abc"], "stalls: expected a list"),            # "not enough values"
    (["--param", "stall_ns=-5"], "stall_ns: must be in"),              # silently ignored
])
def test_record_bad_parameters_fail_before_the_mount(tmp_path, args, needle):
    from bench.real import mount
    p = subprocess.Popen([sys.executable, "-m", "bench", "record", "seq-write", "-o",
                          str(tmp_path / "t.trace"), *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=120)
    _one_error(subprocess.CompletedProcess(p.args, p.returncode, out, err), needle)
    assert not (tmp_path / "t.trace").exists()
    # Only this run's mounts and directories: other runs on the machine may hold their own.
    assert mount.mounted_fwb(owner=p.pid) == []
    assert not list(Path(tempfile.gettempdir()).glob(f"{mount.DIR_PREFIX}{p.pid}-*"))


@pytest.mark.parametrize("args, needle", [
    (["replay", "x.trace", "--seeds", "99999999999999999999"], "--seeds: must be in 1..1000"),
    (["replay", "x.trace", "--baseline", "nope"], "--baseline: 'nope' is not among"),
    (["validate", "--sim-param", "oops"], "--sim-param: expected KEY=VALUE"),   # said --param
    (["validate", "--workloads", ","], "--workloads: no names"),      # ran nothing, exit 0
    (["validate", "--seeds", "100000"], "--seeds: must be in 1..1000"),
    (["calibrate", "-o", "x.json", "--rounds", "100000"], "--rounds: must be in 3..1000"),
])
def test_replay_validate_calibrate_bounds(tmp_path, args, needle):
    if args[0] == "calibrate":
        args = ["calibrate", "-o", str(tmp_path / "x.json"), *args[3:]]
    from bench.real import mount
    if args[0] == "validate" and not mount.available()[0]:
        pytest.skip("validate checks its options after the mount check")
    _one_error(bench(*args), needle)
    assert not (tmp_path / "x.json").exists()


def test_a_closed_pipe_is_not_an_error():
    # `compare --json OLD NEW | head -c 10` on output well past a pipe buffer (64 KiB).
    base = str(Path(__file__).parent.parent / "results" / "baseline.json")
    p = subprocess.Popen([sys.executable, "-m", "bench", "compare", "--json", base, base],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.read(10)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0
    assert err == "", err
