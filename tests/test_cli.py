"""The command line, as a user sees it: exact output on checked-in fixtures, one-line
errors with a non-zero exit, no traceback."""
import json
import subprocess
import sys
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
    assert p.stdout.startswith("seq-write: 2 seed(s), python engine, base merge-in-queue\n")
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
    from bench import mount
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
