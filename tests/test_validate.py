"""Predicted against measured, real-mount rows for compare, and the stuck-server pattern.

The mount tests skip with bench.real.mount.available()'s reason; together they take a few seconds."""
import os

import pytest

from bench.results import compare
from bench.real import mount, validate
from bench.sim import machine, params
from bench import results, sim

OK, WHY = mount.available()
needs_mount = pytest.mark.skipif(not OK, reason=WHY or "mount available")
MiB = 1 << 20


@pytest.fixture(autouse=True)
def table_defaults(monkeypatch):
    monkeypatch.setenv(machine.ENV, "none")


def test_machine_params_are_valid_simulator_params():
    mp = validate.machine_params()
    assert mp["mem_total_pages"] >= 8192
    cfg = params.resolve("no-temp-page", {**mp, **validate.MOUNT_SERVER_PARAMS})
    assert cfg["server_threads"] == 16 and cfg["server_dist"] == 0


def test_mount_runs_says_why_not_in_one_line(monkeypatch):
    monkeypatch.setattr(mount, "available", lambda: (False, "no /dev/fuse: load the fuse module"))
    runs, why = validate.mount_runs(["seq-write"], [0])
    assert runs == () and why == "no real-mount rows: no /dev/fuse: load the fuse module"
    assert "\n" not in why


def test_pairs_and_render():
    p = validate.Pair("w", "WRITE requests", 110, 100, "", 1)
    assert p.within and abs(p.ratio - 1.1) < 1e-9
    assert not validate.Pair("w", "x", 120, 100, "", 1).within
    text = validate.render([([p], {32: 3}, {32: 2, 1: 2})], "head")
    assert "WRITE requests" in text and "32:100%" in text and "1:50% 32:50%" in text


@needs_mount
def test_mount_runs_sit_beside_the_strategies_in_compare():
    runs, why = validate.mount_runs(["seq-write"], [0, 1], {"file_size": 4 * MiB,
                                                            "mem_total_pages": 1 << 20})
    assert why == "" and len(runs) == 2
    assert {r.engine for r in runs} == {"mount"} and runs[0].strategy == mount.kernel_name()
    simulated = tuple(sim.run("no-temp-page", "seq-write", s, validate.sim_engine(),
                              file_size=4 * MiB) for s in (0, 1))
    suite = results.Suite({}, simulated + runs)
    rows = compare.rows(suite, "no-temp-page")
    got = {(r.strategy, r.metric): r for r in rows}
    assert got[(mount.kernel_name(), "requests")].median >= 32
    assert compare.render(rows)


@needs_mount
def test_seq_write_write_count_is_predicted():
    sim_params = {**validate.machine_params(), **validate.MOUNT_SERVER_PARAMS}
    pairs, hp, hm, pred, meas = validate.compare_workload(
        "seq-write", {"file_size": 8 * MiB}, [0], sim_params, validate.sim_engine())
    by = {p.metric: p for p in pairs}
    assert by["bytes written"].measured == by["bytes written"].predicted == 8 * MiB
    assert by["WRITE requests"].within, by["WRITE requests"]
    assert max(hm) == max(hp) == 32
    assert meas[0].engine == "mount" and pred[0].strategy == "no-temp-page"


@needs_mount
def test_stuck_server_blocking_pattern():
    before = set(mount.mounted_fwb(owner=os.getpid()))   # only this process's mounts
    sim_params = {**validate.machine_params(), **validate.MOUNT_SERVER_PARAMS}
    b = validate.blocking(stall_ns=1_000_000_000, write_mib=160, sim_params=sim_params)
    assert b["fsync"]["mount"][0] == "waited" and b["fsync"]["sim"][0] == "waited"
    assert b["close"]["mount"][0] == "waited"
    assert b["sync"]["mount"][0] == "returned" and b["sync"]["sim"][0] == "returned"
    assert b["write"]["mount"][0] == b["write"]["sim"][0] == "throttled (waited)"
    text = validate.render_blocking(b)
    assert "syncfs" in text and "the same for write, fsync, sync" in text
    assert set(mount.mounted_fwb(owner=os.getpid())) <= before, "blocking left a mount behind"


@needs_mount
def test_compare_names_the_workloads_its_mount_column_leaves_out(tmp_path, capsys):
    from bench.__main__ import main
    rc = main(["compare", "--workloads", "stuck-server,seq-write-128k", "--strategies",
               "no-temp-page", "--baseline", "no-temp-page", "--seeds", "1", "--param",
               "file_size=4194304", "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 0
    assert "real mount: not run for stuck-server (too slow" in err
    suite = results.load(tmp_path / "r.json")
    assert {r.workload for r in suite.runs if r.engine == "mount"} == {"seq-write-128k"}
