"""Output for other tools: `--json` of gate, validate and speed; speed's pyperf file, which pyperf
itself reads; pass or fail against the targets as the exit status; and a closed pipe, which is
not an error for any verb."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.real import mount, validate
from bench.sim import speed

ROOT = Path(__file__).resolve().parent.parent
BASELINE = str(ROOT / "results" / "baseline.json")
needs_mount = pytest.mark.skipif(not mount.available()[0], reason="needs a real FUSE mount")


def bench(*args, cwd=None, **kw):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=600, **kw)


# ------------------------------------------------------------------ speed
def test_speed_targets_are_judged_both_ways():
    fast = {"bare-loop": 1.0, "c-engine": 3.0, "python-engine": 300.0}
    slow = {"bare-loop": 1.0, "c-engine": 5.0, "python-engine": 200.0}
    assert [v["met"] for v in speed.verdicts(fast)] == [True, True]
    assert [v["met"] for v in speed.verdicts(slow)] == [False, False]
    assert "speed: PASS" in speed.render(fast)
    text = speed.render(slow)
    assert "speed: FAIL: missed Python / C, C / bare loop" in text and text.count("MISSED") == 2


def test_speed_reports_events_per_second_of_the_engine_and_its_queue():
    """The floor's event count is the pops of that run: the engine's own events counter and
    the pops it skips at the end (the flusher's tick or a timeout after the last thread);
    the rates are it over each median."""
    from bench import sim
    from bench.sim import _cengine
    n = speed.floor_events()
    wl, cfg = sim.prepare(speed.STRATEGY, speed.WORKLOAD, 0, **speed.FLOOR_PARAMS)
    counted = _cengine.simulate(cfg, wl.ops, wl.file_sizes, 0)["counters"]["events"]
    assert 100_000 < counted <= n <= counted + 2
    medians = {"bare-loop": 1.0, "c-engine": 3.0, "python-engine": 300.0,
               speed.FLOOR_NAMES[0]: 0.05, speed.FLOOR_NAMES[1]: 0.004}
    doc = speed.as_json(medians, None, n)["event_floor"]
    assert doc["events"] == n and doc["events_per_s"][speed.FLOOR_NAMES[0]] == n / 0.05
    assert f"{n:,} events popped: engine {n / 0.05 / 1e6:.1f} M/s" in speed.render(medians, n)


@pytest.fixture(scope="module")
def speed_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("speed")
    a = bench("speed", "--single-value", "--json", "-o", str(d / "a.json"))
    # the second run's reader has gone (a closed pipe) before it prints: not an error either
    b = _closed_pipe("speed", "--single-value", "--json", "-o", str(d / "b.json"))
    return d, a, b


def test_speed_writes_pyperf_json_that_pyperf_compares(speed_files):
    d, run, closed = speed_files
    assert closed.returncode == 0 and "Traceback" not in closed.stderr, closed.stderr
    assert "Broken pipe" not in closed.stderr and "ERROR" not in closed.stderr
    doc = json.loads(run.stdout)
    # the exit status is the verdict: 0 when every target is met, 1 when one is missed
    assert run.returncode == (0 if doc["pass"] else 1), run.stderr
    assert [r["ratio"] for r in doc["ratios"]] == ["Python / C", "C / bare loop"]
    assert doc["pass"] == all(r["met"] for r in doc["ratios"])
    assert set(doc["medians_s"]) == {"bare-loop", "c-engine", "python-engine"}
    # progress went to stderr while pyperf ran, not silence
    assert "speed: pyperf runs" in run.stderr and "c-engine" in run.stderr
    cmp = subprocess.run([sys.executable, "-m", "pyperf", "compare_to", str(d / "a.json"),
                          str(d / "b.json")], capture_output=True, text=True, timeout=120)
    assert cmp.returncode == 0, cmp.stderr
    for name in ("bare-loop", "c-engine", "python-engine"):
        assert name in cmp.stdout, cmp.stdout


def test_speed_refuses_to_overwrite_its_output(speed_files, tmp_path):
    d, _, _ = speed_files
    before = (d / "a.json").read_bytes()
    run = bench("speed", "--single-value", "-o", str(d / "a.json"))
    assert run.returncode == 2 and run.stderr.startswith("ERROR: ") and "--force" in run.stderr
    assert (d / "a.json").read_bytes() == before


# ------------------------------------------------------------------ validate
def test_validate_verdict_judges_only_the_targets():
    P = validate.Pair
    good = [P("w", "WRITE requests", 110, 100, "", 1), P("w", "fsync p50", 300, 100, "us", 1e-3)]
    ok, line = validate.verdict(good, blocking_same=True)
    assert ok and line.startswith("validate: PASS: 1 of 1 judged")
    bad = good + [P("w", "app throughput", 130, 100, "MB/s", 1e-6)]
    ok, line = validate.verdict(bad)
    assert not ok and "FAIL: 1 of 2" in line and "w app throughput 1.30 (target ±25%)" in line
    ok, line = validate.verdict(good, blocking_same=False)
    assert not ok and "blocking pattern differs" in line
    text = validate.render([(bad, {1: 1}, {1: 1})], "head")
    assert "MISSED" in text and "shown" in text


@needs_mount
def test_validate_json_and_exit_status():
    run = bench("validate", "--seeds", "1", "--no-blocking", "--json", "--quiet")
    assert run.returncode in (0, 1), run.stderr
    doc = json.loads(run.stdout)
    assert run.returncode == (0 if doc["pass"] else 1)
    judged = [r for r in doc["rows"] if r["target"] is not None]
    assert {r["metric"] for r in judged} == set(validate.TARGETS)
    assert doc["pass"] == all(r["within"] for r in judged)
    assert doc["verdict"].startswith("validate: PASS" if doc["pass"] else "validate: FAIL")


# ------------------------------------------------------------------ a closed pipe
def _closed_pipe(*args):
    """Run a verb whose stdout is a pipe already closed by its reader: the first write fails."""
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([sys.executable, "-m", "bench", *args], stdout=w,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=600)
    finally:
        os.close(w)
    return p


@pytest.mark.parametrize("args", [
    ["gate", "--json", BASELINE, BASELINE],
    ["gate", BASELINE, BASELINE],
    ["compare", "--json", BASELINE, BASELINE],
    ["list"],          # speed: in test_speed_writes_pyperf_json_that_pyperf_compares
    pytest.param(["validate", "--seeds", "1", "--no-blocking", "--json"], marks=needs_mount),
], ids=lambda a: " ".join(a[:2]))
def test_a_closed_pipe_is_not_an_error_for_any_verb(args):
    p = _closed_pipe(*args)
    assert p.returncode == 0, p.stderr
    assert "Broken pipe" not in p.stderr and "Traceback" not in p.stderr and \
        "ERROR" not in p.stderr, p.stderr


def test_json_piped_into_head(tmp_path):
    # as a user types it; the gate's JSON of the baseline against itself is far past 64 KiB
    cmd = f"set -o pipefail; {sys.executable} -m bench gate --json {BASELINE} {BASELINE} | head -c 10"
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    assert p.returncode == 0 and p.stdout == '{\n "verdic' and p.stderr == "", p.stderr
