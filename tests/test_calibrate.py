"""Calibration: measuring the costs, and saving them with this machine as a machine profile
(loading profiles and the simulator taking its defaults from them: tests/test_machine.py)."""
import argparse
import os
from pathlib import Path

import numpy as np
import pytest

from bench.real import calibrate, mount
from bench.sim import machine
from bench.sim.ops import FSYNC, OP_DTYPE, WRITE

OK, WHY = mount.available()


def test_save_is_atomic_and_refuses_to_overwrite(tmp_path):
    doc = calibrate.build_profile({"values": {"page_copy_ns": 90, "server_dist": 0},
                                   "measurements": {}}, name="t1")
    assert doc["format"] == machine.FORMAT and doc["provenance"]["kernel"]
    assert doc["costs"] == {"page_copy_ns": 90} and doc["server"]["server_dist"] == "fixed"
    assert doc["machine"]["mem_total_pages"] > 0 and doc["machine"]["cpus"] >= 1
    assert "machine" not in doc["provenance"] and "cost_profile" not in doc["provenance"]
    p = calibrate.save(doc, tmp_path / "p.toml")
    assert calibrate.load(p)["costs"] == {"page_copy_ns": 90}
    assert machine.load(str(p)).values["page_copy_ns"] == 90          # --machine PATH reads it
    with pytest.raises(ValueError, match="exists; pass --force"):
        calibrate.save(doc, p)
    doc["costs"]["page_copy_ns"] = 91
    calibrate.save(doc, p, force=True)
    assert calibrate.load(p)["costs"]["page_copy_ns"] == 91
    assert [q.name for q in tmp_path.iterdir()] == ["p.toml"]      # no temp file left
    with pytest.raises(ValueError, match="costs.max_pages: belongs in \\[machine\\]"):
        calibrate.save({**doc, "costs": {"max_pages": 1}}, tmp_path / "q.toml")
    assert not (tmp_path / "q.toml").exists()


def test_never_writes_into_the_package(tmp_path):
    import bench
    doc = calibrate.build_profile({"values": {"page_copy_ns": 90}, "measurements": {}}, name="t2")
    inside = Path(bench.__file__).resolve().parent / "machines" / "t2.toml"
    with pytest.raises(ValueError, match="inside the bench package"):
        calibrate.save(doc, inside)
    assert not inside.exists()


def test_cli_refuses_an_existing_profile_before_measuring(tmp_path, monkeypatch):
    out = tmp_path / "p.toml"
    out.write_text("{}")
    ap = argparse.ArgumentParser()
    calibrate.add_parsers(ap.add_subparsers())
    args = ap.parse_args(["calibrate", "-o", str(out)])
    with pytest.raises(ValueError, match="exists; pass --force"):
        args.func(args)
    assert out.read_text() == "{}"
    # Without --out: NAME.toml in the user's profile directory (platformdirs), never the package.
    monkeypatch.setattr(machine, "user_dir", lambda: tmp_path / "user")
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "mine.toml").write_text("{}")
    args = ap.parse_args(["calibrate", "--name", "mine"])
    with pytest.raises(ValueError, match="user/mine.toml: exists"):
        args.func(args)
    args = ap.parse_args(["calibrate", "--name", "ci-2cpu-24g"])
    with pytest.raises(ValueError, match="shipped in the package"):
        args.func(args)


def test_the_user_directory_is_platformdirs():
    import platformdirs
    assert machine.user_dir() == Path(platformdirs.user_data_dir("fuse-writeback-bench")) / \
        "machines"


def test_page_copy_is_timed_in_c():
    ns = calibrate.time_page_copy(20)
    assert len(ns) == 20 and (ns > 0).all() and np.median(ns) < 20_000


def test_driver_runs_on_tmpfs(tmp_path):
    ops = np.array([(0, 0, WRITE, 0, 0, 0, 8192), (0, 0, FSYNC, 0, 0, 0, 0)], dtype=OP_DTYPE)
    start, lat, faults = calibrate.run_driver([str(tmp_path / "f")], ops)
    assert (lat >= 0).all() and os.path.getsize(tmp_path / "f") == 8192


@pytest.mark.skipif(not OK, reason=WHY or "mount available")
def test_measure_on_a_real_mount():
    before = set(mount.mounted_fwb(owner=os.getpid()))   # only this process's mounts
    m = calibrate.measure(rounds=3, copy_reps=20)
    v = m["values"]
    doc = calibrate.build_profile(m)                 # checked against the parameter ranges
    for key in ("page_copy_ns", "write_syscall_ns", "write_page_ns", "store_page_ns", "fault_ns",
                "fsync_syscall_ns", "server_fsync_ns", "server_base_ns", "server_page_ns",
                "cache_add_ns", "server_new_page_ns", "cpus", "server_cpus", "wakeup_ns",
                "server_wakeup_ns"):
        assert key in v and doc["measurements"][key]["method"], key
    assert 0 < v["page_copy_ns"] < 100_000 and 0 < v["fault_ns"] < 10_000_000
    # The writeback path: every term named with its method, measured or not (perf may be absent).
    for key in ("wp_page_ns", "wp_request_ns", "temp_alloc_ns", "temp_free_ns", "wb_lookup_ns",
                "wb_tree_ns", "end_writeback_ns"):
        assert doc["measurements"][key]["method"], key
    assert v["wp_page_ns"] > 0 and v["wp_request_ns"] > 0
    assert v["server_base_ns"] >= 1 and v["server_threads"] == 16
    assert 1 <= v["server_cpus"] <= v["cpus"] == len(os.sched_getaffinity(0))
    base = doc["measurements"]["server_base_ns"]
    assert set(base["round_trip"]["by_pages_fsync"]) == {str(n) for n in calibrate.FSYNC_SIZES}
    # Every page the drain dirtied reached the server, once: the drain measured what it says.
    # (How many WRITEs arrive whole depends on other writeback on a loaded machine: once
    # 337 of 384 32-page WRITEs; so only the pages are counted, and no more WRITEs than sent.)
    drain = base["drain"]
    assert drain["pages_seen"] == drain["pages_dirtied"] == 2 * drain["rounds"] * sum(
        k * n for k, n in calibrate.DRAIN.items())
    assert drain["writes_seen"]["1"] == 2 * drain["rounds"] * calibrate.DRAIN[1]  # cannot split
    assert drain["writes_seen"]["32"] <= 2 * drain["rounds"] * calibrate.DRAIN[32]
    assert drain["server_cpu_ns"] > 0 and drain["drain_ns"] > 0
    text = calibrate.render(doc)
    assert "fault_ns" in text and "appended" in text and "drain" in text
    assert set(mount.mounted_fwb(owner=os.getpid())) <= before, "calibrate left a mount behind"


# ---- the writeback path's costs (issue 8: costs where the kernel pays them) ----

def test_the_cold_copy_is_timed_in_c_over_far_more_than_the_cache():
    ns, how = calibrate.time_page_copy_cold(8)
    assert len(ns) == 8 and (ns > 0).all() and np.median(ns) < 100_000
    llc = calibrate.llc_bytes() or 1
    assert how["buffer_bytes"] >= 2 * llc
    assert how["buffer_bytes"] >= min(calibrate.COLD_COPY_LLC_TIMES * llc, calibrate.COLD_COPY_MAX_BYTES)
    from bench.real import _driver
    out = _driver.ffi.new("int64_t[1]")
    assert _driver.lib.fwb_drv_time_page_copy_cold(3000, 1, 1, out) != 0   # not a power of 2
    assert _driver.lib.fwb_drv_time_page_copy_cold(4, 8, 1, out) != 0      # more than the set
    assert _driver.lib.fwb_drv_fault_pages(0, 1, out) != 0
    assert _driver.lib.fwb_drv_fault_pages(16, 1, out) == 0 and out[0] > 0


def test_flush_rows_make_32_page_writes_or_one_page_ones():
    c = calibrate._flush_rows(1000, "contiguous")
    assert (c["op"] == WRITE).all() and c["length"].sum() == 1000 * 4096
    assert (c["offset"][1:] == c["offset"][:-1] + c["length"][:-1]).all()      # no gap
    e = calibrate._flush_rows(1000, "every-other")
    assert len(e) == 1000 and (e["length"] == 4096).all()
    assert (np.diff(e["offset"]) == 2 * 4096).all()                          # a gap each


def test_perf_script_output_is_parsed_into_samples():
    text = ("kworker/u8:1-fl 33/33 \n\tffffffff81 folio_end_writeback+0x12\n"
            "\tffffffff82 fuse_writepage_end\n\nfwb_fuse_server 700/702 \n\t   b88be [unknown]\n\n"
            "python 9/9 \n\tffffffff83 get_page_from_freelist\n\tffffffff84 clear_page_rep\n")
    s = calibrate.parse_perf_script(text)
    assert [(p, c) for p, c, _ in s] == [(33, "kworker/u8:1-fl"), (700, "fwb_fuse_server"),
                                         (9, "python")]
    assert s[0][2] == {"folio_end_writeback", "fuse_writepage_end"}
    assert calibrate._ns_in(s, 1000, calibrate.END_WB_SYMS) == 1000
    assert calibrate._ns_in(s, 1000, calibrate.ALLOC_SYMS, pid=9) == 1000
    assert calibrate._ns_in(s, 1000, calibrate.ALLOC_SYMS, without=calibrate.ZERO_SYMS) == 0


@pytest.mark.skipif(not OK, reason=WHY or "mount available")
def test_the_flushers_cpu_is_split_per_page_and_per_request_on_a_real_mount():
    f = calibrate.measure_flusher(rounds=1, pages=16384, perf=False)
    assert f["pages_per_run"] >= max(16384, 4 * calibrate._bdi_limit_pages())
    layouts = {r["layout"]: r for r in f["runs"]}
    assert layouts["contiguous"]["requests"] * 8 < layouts["every-other"]["requests"]
    e = layouts["every-other"]
    assert e["pages"] + e["pages_after_fsync"] == f["pages_per_run"] and e["pages"] > 0
    assert 0 < f["per_page_ns"][0] < 100_000 and 0 < f["per_request_ns"][0] < 1_000_000
