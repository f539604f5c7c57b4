"""The cost profile: measuring it, saving it, and the simulator taking its defaults from it."""
import argparse
import json
import os

import numpy as np
import pytest

from bench.real import calibrate, mount
from bench.sim import params
from bench.results import provenance
from bench import sim
from bench.sim.ops import FSYNC, OP_DTYPE, WRITE

OK, WHY = mount.available()


def _doc(values=None):
    return {"format": params.PROFILE_FORMAT, "schema_version": params.PROFILE_VERSION,
            "values": values if values is not None else {"write_page_ns": 1234,
                                                         "server_base_ns": 5555,
                                                         "server_threads": 16},
            "measurements": {}, "provenance": {"kernel": "6.18.0", "date": "2026-01-01",
                                               "cpu_model": "test", "git_commit": "abc"}}


@pytest.fixture
def profile(tmp_path, monkeypatch):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(_doc()))
    monkeypatch.setenv(params.PROFILE_ENV, str(path))
    return path


def test_no_profile_means_the_table(tmp_path, monkeypatch):
    monkeypatch.delenv(params.PROFILE_ENV, raising=False)
    monkeypatch.setattr(params, "PROFILE_PATH", tmp_path / "absent.json")
    cfg = params.resolve("no-temp-page", {})
    assert cfg["write_page_ns"] == params.PARAM_BY_NAME["write_page_ns"].default
    assert provenance.collect()["cost_profile"] == params.DEFAULTS_LABEL


def test_the_committed_location_is_read_when_present(tmp_path, monkeypatch):
    monkeypatch.delenv(params.PROFILE_ENV, raising=False)
    path = tmp_path / "cost-profile.json"
    path.write_text(json.dumps(_doc({"fault_ns": 777})))
    monkeypatch.setattr(params, "PROFILE_PATH", path)
    assert params.resolve("no-temp-page", {})["fault_ns"] == 777
    monkeypatch.setenv(params.PROFILE_ENV, "none")          # the table, whatever is committed
    assert params.resolve("no-temp-page", {})["fault_ns"] == params.PARAM_BY_NAME["fault_ns"].default


def test_profile_values_are_defaults_and_explicit_params_win(profile):
    cfg = params.resolve("merge-in-queue", {})
    assert (cfg["write_page_ns"], cfg["server_base_ns"], cfg["server_threads"]) == (1234, 5555, 16)
    assert cfg["fault_ns"] == params.PARAM_BY_NAME["fault_ns"].default   # not in the profile
    assert params.resolve("merge-in-queue", {"write_page_ns": 7})["write_page_ns"] == 7
    md = provenance.collect()["cost_profile"]
    assert md["path"] == str(profile) and md["kernel"] == "6.18.0" and len(md["sha256"]) == 16
    assert md["values"]["write_page_ns"] == 1234


def test_simulated_runs_follow_the_profile(profile, monkeypatch):
    with_profile = sim.run("no-temp-page", "fsync-heavy", 0, "python", writes=8, threads=1)
    monkeypatch.setenv(params.PROFILE_ENV, "none")
    without = sim.run("no-temp-page", "fsync-heavy", 0, "python", writes=8, threads=1)
    assert with_profile.metrics["makespan_ns"] != without.metrics["makespan_ns"]


@pytest.mark.parametrize("values, msg", [
    ({"max_pages": 64}, "values.max_pages: not a cost or server parameter"),
    ({"nonsense": 1}, "values.nonsense: not a cost or server parameter"),
    ({"write_page_ns": -1}, "values.write_page_ns: must be in 0..1000000000"),
    ({"server_threads": 1.5}, "values.server_threads: expected an integer"),
])
def test_a_bad_profile_is_an_error_naming_the_field(tmp_path, monkeypatch, values, msg):
    path = tmp_path / f"bad-{abs(hash(msg))}.json"
    path.write_text(json.dumps(_doc(values)))
    monkeypatch.setenv(params.PROFILE_ENV, str(path))
    with pytest.raises(ValueError, match=msg.replace(".", r"\.")):
        params.resolve("no-temp-page", {})


def test_a_named_profile_must_exist_and_be_one(tmp_path, monkeypatch):
    monkeypatch.setenv(params.PROFILE_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="cannot read"):
        params.resolve("no-temp-page", {})
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"format": "something", "values": {}}))
    monkeypatch.setenv(params.PROFILE_ENV, str(bad))
    with pytest.raises(ValueError, match="not a cost profile"):
        params.resolve("no-temp-page", {})
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**_doc(), "schema_version": 99}))
    monkeypatch.setenv(params.PROFILE_ENV, str(newer))
    with pytest.raises(ValueError, match="schema_version 99 is not supported"):
        params.resolve("no-temp-page", {})


def test_save_is_atomic_and_refuses_to_overwrite(tmp_path):
    doc = calibrate.build_profile({"values": {"page_copy_ns": 90}, "measurements": {}})
    assert "cost_profile" not in doc["provenance"] and doc["provenance"]["kernel"]
    p = calibrate.save(doc, tmp_path / "p.json")
    assert calibrate.load(p)["values"] == {"page_copy_ns": 90}
    with pytest.raises(ValueError, match="exists; pass --force"):
        calibrate.save(doc, p)
    doc["values"]["page_copy_ns"] = 91
    calibrate.save(doc, p, force=True)
    assert calibrate.load(p)["values"]["page_copy_ns"] == 91
    assert [q.name for q in tmp_path.iterdir()] == ["p.json"]      # no temp file left
    with pytest.raises(ValueError, match="not a cost or server parameter"):
        calibrate.save({**doc, "values": {"max_pages": 1}}, tmp_path / "q.json")
    assert not (tmp_path / "q.json").exists()


def test_cli_refuses_an_existing_profile_before_measuring(tmp_path, capsys):
    out = tmp_path / "p.json"
    out.write_text("{}")
    ap = argparse.ArgumentParser()
    calibrate.add_parsers(ap.add_subparsers())
    args = ap.parse_args(["calibrate", "-o", str(out)])
    with pytest.raises(ValueError, match="exists; pass --force"):
        args.func(args)
    assert out.read_text() == "{}"


def test_page_copy_is_timed_in_c():
    ns = calibrate.time_page_copy(20)
    assert len(ns) == 20 and (ns > 0).all() and np.median(ns) < 20_000


def test_driver_runs_on_tmpfs(tmp_path):
    ops = np.array([(0, 0, WRITE, 0, 0, 0, 8192), (0, 0, FSYNC, 0, 0, 0, 0)], dtype=OP_DTYPE)
    start, lat, faults = calibrate.run_driver([str(tmp_path / "f")], ops)
    assert (lat >= 0).all() and os.path.getsize(tmp_path / "f") == 8192


@pytest.mark.skipif(not OK, reason=WHY or "mount available")
def test_measure_on_a_real_mount():
    before = set(mount.mounted_fwb())           # other runs on the machine may hold mounts
    m = calibrate.measure(rounds=3, copy_reps=20)
    v = m["values"]
    doc = calibrate.build_profile(m)                 # checked against the parameter ranges
    for key in ("page_copy_ns", "write_syscall_ns", "write_page_ns", "store_page_ns", "fault_ns",
                "fsync_syscall_ns", "server_fsync_ns", "server_base_ns", "server_page_ns",
                "cache_add_ns", "server_new_page_ns", "cpus", "server_cpus", "wakeup_ns",
                "server_wakeup_ns"):
        assert key in v and doc["measurements"][key]["method"], key
    assert 0 < v["page_copy_ns"] < 100_000 and 0 < v["fault_ns"] < 10_000_000
    assert v["server_base_ns"] >= 1 and v["server_threads"] == 16
    assert 1 <= v["server_cpus"] <= v["cpus"] == len(os.sched_getaffinity(0))
    base = doc["measurements"]["server_base_ns"]
    assert set(base["round_trip"]["by_pages_fsync"]) == {str(n) for n in calibrate.FSYNC_SIZES}
    # Every drained WRITE reached the server whole: the drain measured what it says.
    drain = base["drain"]
    for k, n in calibrate.DRAIN.items():
        assert drain["writes_seen"][str(k)] >= 2 * drain["rounds"] * n
    assert drain["server_cpu_ns"] > 0 and drain["drain_ns"] > 0
    text = calibrate.render(doc)
    assert "fault_ns" in text and "appended" in text and "drain" in text
    assert set(mount.mounted_fwb()) <= before, "calibrate left a mount behind"
