"""FUSE over io_uring in a guest (bench.real.kernels.uring): the parts everywhere, then, where
the io_uring server has been built (`python -m bench kernels uring build`) and guests can run,
one 7.2 boot per transport that checks the requests' transport as the server logged it."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from bench.real import mount
from bench.real.kernels import cost, guest, uring


def test_without_the_built_server_one_line_says_what_is_missing(tmp_path):
    ok, why = uring.available(tmp_path)
    assert not ok and "\n" not in why
    assert "kernels uring build" in why and str(tmp_path / "uring") in why
    with pytest.raises(RuntimeError, match="kernels uring build"):
        uring.run_args("io_uring", tmp_path)


def test_run_args_differ_only_by_the_session_option(tmp_path):
    p = uring.server_path(tmp_path)
    p.parent.mkdir(parents=True)
    p.write_bytes(b"")
    p.chmod(0o755)
    dev, ur = uring.run_args("dev", tmp_path), uring.run_args("io_uring", tmp_path)
    assert dev["server"] == ur["server"] == str(p)
    assert dev["append"] == ur["append"] == "fuse.enable_uring=1"
    assert dev["server_args"] == () and ur["server_args"] == ("-o", "io_uring")
    with pytest.raises(ValueError, match="transport"):
        uring.run_args("virtio", tmp_path)


@pytest.mark.parametrize("name, want", [("fuse3_3.18.3.orig.tar.gz", (3, 18, 3)),
                                        ("fuse-3.18.3", (3, 18, 3)), ("3.18-1", (3, 18))])
def test_parse_version(name, want):
    assert uring.parse_version(name) == want


def test_parse_version_refuses_a_name_without_one():
    with pytest.raises(ValueError, match="version"):
        uring.parse_version("fuse3")


def test_config_headers_carry_the_version_and_have_uring(tmp_path):
    uring._config_headers(tmp_path / "fuse-3.19.1", tmp_path / "gen")
    pub = (tmp_path / "gen" / "libfuse_config.h").read_text()
    priv = (tmp_path / "gen" / "fuse_config.h").read_text()
    assert "#define FUSE_MINOR_VERSION 19" in pub and "#define FUSE_HOTFIX_VERSION 1" in pub
    assert "#define HAVE_URING 1" in priv and '"3.19.1"' in priv
    assert "VERSIONED_SYMBOLS" not in pub


def _log(kinds, flags):
    log = np.zeros(len(kinds), mount.LOG_DTYPE)
    log["kind"], log["flags"] = kinds, flags
    return log


def test_transport_counts_read_flag_bit_1_not_the_writeback_bit():
    W, R = mount.KIND_WRITE, mount.KIND_READ
    log = _log([W, W, W, R, W], [1, 3, 2, 2, 0])
    assert uring.transport_counts(log) == {"requests": 5, "requests_uring": 3, "writes": 4,
                                           "writes_uring": 2}


class _Fake:
    """execute() and cpu_usage() of a guest whose server CPU is linear in pages and WRITEs."""

    def __init__(self, terms):
        self.terms = terms      # transport -> (server per page, per WRITE, flusher ...)
        self.calls = []

    def execute(self, kernel, wl, **kw):
        t = "io_uring" if kw["server_args"] else "dev"
        self.calls.append((t, wl.name, kw["append"]))
        pages = int(wl.ops["length"][:-1].sum()) // mount.PAGE_SIZE
        per = 32 if wl.name == "flush-contiguous" else 1
        n = pages // per
        log = _log([mount.KIND_WRITE] * n, [1 | (2 if t == "io_uring" else 0)] * n)
        log["size"] = per * mount.PAGE_SIZE
        return type("G", (), {"mount": type("M", (), {"log": log})(), "t": t})()

    def cpu_usage(self, g):
        sp, sq, kp, kq = self.terms[g.t]
        log = g.mount.log
        pages = int(log["size"].astype(np.int64).sum()) // mount.PAGE_SIZE
        return {"pages": pages, "requests": len(log), "server_ns": sp * pages + sq * len(log),
                "kworker_ns": kp * pages + kq * len(log)}


def test_measure_solves_each_transport_and_divides(tmp_path, monkeypatch):
    p = uring.server_path(tmp_path)
    p.parent.mkdir(parents=True)
    p.write_bytes(b"")
    p.chmod(0o755)
    fake = _Fake({"dev": (1000.0, 8000.0, 300.0, 900.0),
                  "io_uring": (1500.0, 4000.0, 300.0, 1800.0)})
    monkeypatch.setattr(guest, "cpu_usage", fake.cpu_usage)
    res = uring.measure("7.2", rounds=2, pages=2048, execute=fake.execute, root=tmp_path)
    assert len(fake.calls) == 8 and {c[2] for c in fake.calls} == {"fuse.enable_uring=1"}
    # the order rotates: round 2 starts where round 1's second run did
    assert fake.calls[0][:2] == ("dev", "flush-contiguous")
    assert fake.calls[4][:2] == ("dev", "flush-every-other")
    row = res["rounds"][0]
    assert row["dev_server_page_ns"] == pytest.approx(1000.0)
    assert row["io_uring_server_request_ns"] == pytest.approx(4000.0)
    assert res["median_ratio_server_page"] == pytest.approx(1.5)
    assert res["median_ratio_server_request"] == pytest.approx(0.5)
    assert res["median_ratio_kworker_request"] == pytest.approx(2.0)
    assert row["runs"]["io_uring contiguous"]["writes_uring"] == 2048 // 32
    assert row["runs"]["dev every-other"]["writes_uring"] == 0
    # unsplit: every-other's 2048 one-page WRITEs cost (1500 + 4000) / (1000 + 8000) per page
    assert res["median_ratio_server_run_every-other"] == pytest.approx(5500 / 9000)
    assert res["median_ratio_server_run_contiguous"] == pytest.approx(
        (1500 + 4000 / 32) / (1000 + 8000 / 32))
    text = uring.render(res)
    assert "server_page                  1.500 (1.500..1.500)" in text


def test_a_ratio_whose_dev_term_is_not_positive_is_left_out_of_the_median(tmp_path,
                                                                           monkeypatch):
    p = uring.server_path(tmp_path)
    p.parent.mkdir(parents=True)
    p.write_bytes(b"")
    p.chmod(0o755)
    fake = _Fake({"dev": (1000.0, 0.0, 300.0, 900.0), "io_uring": (1500.0, 4000.0, 300.0, 1.0)})
    monkeypatch.setattr(guest, "cpu_usage", fake.cpu_usage)
    res = uring.measure("7.2", rounds=1, pages=2048, execute=fake.execute, root=tmp_path)
    assert np.isnan(res["rounds"][0]["ratio_server_request"])
    assert np.isnan(res["median_ratio_server_request"])
    assert res["median_ratio_server_page"] == pytest.approx(1.5)


@pytest.mark.parametrize("rounds, pages, field", [(0, 2048, "rounds"), (1, 100, "pages"),
                                                  (True, 2048, "rounds")])
def test_measure_refuses_bad_input_naming_the_field(tmp_path, rounds, pages, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        uring.measure("7.2", rounds=rounds, pages=pages, execute=lambda *a, **k: None,
                      root=tmp_path)


def test_execute_refuses_quotes_in_server_args_and_a_missing_server(tmp_path):
    ok, why = guest.available()
    if not ok:
        pytest.skip(why)
    wl = cost.layout_workload("contiguous", 1024)
    with pytest.raises(ValueError, match="server_args"):
        guest.execute("7.2", wl, server_args=("-o", "a'b"))
    with pytest.raises(RuntimeError, match="missing or not executable"):
        guest.execute("7.2", wl, server=tmp_path / "nothing")


SOURCE = sorted(uring.uring_dir().glob("src/fuse-*/include"))


@pytest.mark.skipif(not SOURCE or shutil.which("cc") is None,
                    reason="no libfuse >= 3.18 source in the cache (kernels uring build)")
def test_server_compiles_warning_free_against_the_fetched_libfuse(tmp_path):
    uring._config_headers(SOURCE[-1].parent, tmp_path)
    p = subprocess.run(["cc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-D_FILE_OFFSET_BITS=64", f"-I{tmp_path}", f"-I{SOURCE[-1]}", "-c",
                        str(uring.SERVER_SRC), "-o", os.devnull], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]


URING_OK, URING_WHY = uring.available()
GUEST_OK, GUEST_WHY = guest.available()


@pytest.mark.skipif(not (URING_OK and GUEST_OK), reason=URING_WHY or GUEST_WHY or "")
def test_7_2_guest_serves_writes_over_io_uring_only_when_asked():
    res = uring.check("7.2", pages=1024)
    dev, ur = res["dev"], res["io_uring"]
    assert dev["enable_uring"] == ur["enable_uring"] == "Y"
    assert dev["writes"] > 0 and dev["requests_uring"] == 0
    assert ur["writes"] > 0 and ur["writes_uring"] == ur["writes"]
    assert ur["requests_uring"] == ur["requests"]


def test_qemu_7_2_records_the_io_uring_ratios_but_gives_no_cost(monkeypatch):
    # The guest's ratios are TCG ratios and two runs disagreed on the split: recorded, not used.
    from bench.sim import machine, params
    m = machine.load("qemu-7.2-2cpu-4g")
    costs, reason = m.transport_costs("io_uring")
    assert not costs and "TCG" in reason and "0.53" in reason
    for key in ("guest_uring_server_request_ratio", "guest_uring_server_page_ratio",
                "guest_uring_server_one_page_write_ratio", "guest_uring_flusher_page_ratio"):
        ratio = m.doc["measurements"][key]
        assert ratio["in_costs"] is False, key
        assert ratio["median"] == pytest.approx(float(np.median(ratio["per_round"])), abs=1e-3)
    assert max(m.doc["measurements"]["guest_uring_server_one_page_write_ratio"]["per_round"]) < 1
    monkeypatch.setenv(machine.ENV, "qemu-7.2-2cpu-4g")
    with pytest.raises(ValueError, match=r"^transport: io_uring: not measured on machine "):
        params.resolve("no-temp-page", {"transport": "io_uring"})

def test_the_verb_says_in_one_line_that_the_server_is_not_built(tmp_path):
    env = {**os.environ, "FWB_KERNEL_CACHE": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", "bench", "kernels", "uring", "cost", "7.2",
                        "--quiet"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "kernels uring build" in lines[0], p.stderr
