"""Other kernels under qemu (bench.real.kernels): the parts, then one real guest end to end.

The parts run everywhere.  The smoke test boots Debian's 6.1 (bookworm, temp pages) under TCG,
fetching it first when it is not cached (about 80 MB), and runs a small seq-write in it; it is
skipped only where a guest cannot be run at all (qemu, busybox-static or the static guest
binaries missing), with the reason.
"""
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.real import mount
from bench.real.kernels import ab, boot, catalog, fetch, guest, initramfs
from bench.real.kernels import validate as kvalidate
from bench.results import Run
from bench.sim.ops import FSYNC, MMAP_STORE, MSYNC, OP_DTYPE, WRITE

MiB = 1 << 20


# ---- catalog ----

def test_catalog_names_each_kernel_with_its_suite_and_family():
    assert [(k.name, k.suite, k.family) for k in catalog.KERNELS] == [
        ("6.1", "bookworm", "temp-page"), ("6.12", "trixie", "temp-page"),
        ("7.2", "sid", "no-temp-page"), ("7.3", "experimental", "no-temp-page")]
    assert catalog.get("6.1").strategy == "merge-in-queue"
    # 7.2 writes back through iomap (its guests show it): iomap-blocks, which on its order-0
    # folios equals no-temp-page; no kernel of the matrix makes large folios for FUSE
    assert catalog.get("7.2").strategy == "iomap-blocks"
    assert {k.strategy for k in catalog.KERNELS} == {"merge-in-queue", "iomap-blocks"}


@pytest.mark.parametrize("text, name", [("6.1", "6.1"), ("kernel-6.1.176", "6.1"),
                                        ("6.1.0-50-amd64", "6.1"), ("6.12.117", "6.12"),
                                        ("7.3-rc7", "7.3"), ("sid", "7.2"), (" 7.2 ", "7.2")])
def test_kernels_are_found_by_name_version_or_suite(text, name):
    assert catalog.get(text).name == name


def test_an_unknown_kernel_is_one_line_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown '5.10'; known: 6.1 \(bookworm\)"):
        catalog.get("5.10")
    with pytest.raises(ValueError, match="at least one"):
        catalog.parse_list(" , ")
    assert [k.name for k in catalog.parse_list("7.2,6.1,7.2")] == ["7.2", "6.1"]


@pytest.mark.parametrize("version, name", [("6.1.176-1", "kernel-6.1.176"),
                                           ("7.3~rc7-1~exp1", "kernel-7.3-rc7"),
                                           ("6.12.117-1", "kernel-6.12.117"),
                                           ("7.2.13-1", "kernel-7.2.13")])
def test_a_run_is_named_after_the_upstream_version(version, name):
    assert catalog.run_name(version) == name


# ---- the private apt configuration ----

ONE_LINE = """# a comment
deb-src http://mirror.invalid/debian bookworm main
deb [arch=amd64 signed-by=/k/one.gpg] http://mirror.invalid/debian-security bookworm-security main
deb [arch=amd64 signed-by=/k/one.gpg] http://mirror.invalid/debian/ bookworm main contrib
"""
DEB822 = """Types: deb
URIs: http://mirror.invalid/debian
Suites: bookworm-updates
Components: main

Types: deb
Enabled: no
URIs: http://disabled.invalid/debian
Suites: bookworm
Components: main

Types: deb deb-src
# the archive
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def test_the_mirror_is_taken_from_the_machines_sources_in_both_formats():
    assert fetch.debian_mirror(fetch.parse_one_line(ONE_LINE)) == (
        "http://mirror.invalid/debian", "/k/one.gpg")
    assert fetch.debian_mirror(fetch.parse_deb822(DEB822)) == (
        "http://mirror.invalid/debian", "/usr/share/keyrings/debian-archive-keyring.gpg")
    with pytest.raises(RuntimeError, match="no Debian mirror"):
        fetch.debian_mirror(fetch.parse_one_line("deb http://x.invalid/debian-security "
                                                 "bookworm-security main\n"))


def test_this_machines_mirror_is_found():
    uri, keyring = fetch.debian_mirror()
    assert uri.startswith(("http://", "https://")) and os.path.isfile(keyring)


def test_apt_options_point_only_into_the_private_root(tmp_path):
    apt = fetch.AptConfig(tmp_path / "sid", "sid", "http://mirror.invalid/debian", "/k/key.gpg")
    apt.prepare()
    opts = apt.options()
    pairs = dict(o.split("=", 1) for o in opts[1::2])
    dirs = {k: v for k, v in pairs.items() if k.startswith("Dir::")}
    for key in ("Dir::Etc::sourcelist", "Dir::Etc::sourceparts", "Dir::State::Lists",
                "Dir::State::status", "Dir::Cache", "Dir::Etc::preferencesparts"):
        assert dirs[key].startswith(str(tmp_path / "sid")), key
    assert all(v.startswith(str(tmp_path)) for v in dirs.values())
    assert (tmp_path / "sid" / "etc" / "sources.list").read_text() == \
        "deb [signed-by=/k/key.gpg] http://mirror.invalid/debian sid main\n"
    assert (tmp_path / "sid" / "status").read_text() == ""
    assert not apt.has_lists()


def test_depends_takes_the_first_alternative():
    f = {"Depends": "dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, "
                    "linux-base-7.2.13+deb14-amd64 (= 7.2.13-1), linux-binary-7.2.13+deb14-amd64 "
                    "(= 7.2.13-1)"}
    assert fetch.depends(f) == ["dracut", "linux-base-7.2.13+deb14-amd64",
                                "linux-binary-7.2.13+deb14-amd64"]


def test_the_cache_is_outside_the_repository_and_overridable(monkeypatch, tmp_path):
    monkeypatch.delenv(fetch.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fetch.cache_dir() == tmp_path / "xdg" / "fuse-writeback-bench" / "kernels"
    monkeypatch.setenv(fetch.CACHE_ENV, str(tmp_path / "mine"))
    assert fetch.cache_dir() == tmp_path / "mine"
    assert fetch.cached(catalog.get("7.2"), tmp_path / "mine") is None


# ---- the initramfs ----

def test_newc_archive_round_trips_with_aligned_entries():
    buf = io.BytesIO()
    w = initramfs.CpioWriter(buf)
    w.directory("bin")
    w.file("bin/x", b"abcde", 0o755)
    w.symlink("bin/sh", "busybox")
    w.char_device("dev/console", 5, 1)
    w.file("init", b"")
    w.close()
    data = buf.getvalue()
    assert len(data) % 4 == 0 and data.startswith(b"070701")
    entries = initramfs.read_newc(data)
    assert [(n, oct(m)) for n, m, _ in entries] == [
        ("bin", "0o40755"), ("bin/x", "0o100755"), ("bin/sh", "0o120777"),
        ("dev/console", "0o20600"), ("init", "0o100644")]
    assert entries[1][2] == b"abcde" and entries[2][2] == b"busybox"
    with pytest.raises(ValueError, match="closed"):
        w.file("late", b"x")


@pytest.mark.skipif(shutil.which("busybox") is None, reason="no busybox to cross-check with")
def test_busybox_cpio_reads_our_archive(tmp_path):
    buf = io.BytesIO()
    w = initramfs.CpioWriter(buf)
    w.directory("d")
    for i, size in enumerate((0, 1, 2, 3, 4, 5, 4097)):
        w.file(f"d/f{i}", bytes(range(256)) * (size // 256) + b"z" * (size % 256))
    w.close()
    out = subprocess.run(["busybox", "cpio", "-i", "-d"], input=buf.getvalue(), cwd=tmp_path,
                         capture_output=True)
    assert out.returncode == 0, out.stderr
    for i, size in enumerate((0, 1, 2, 3, 4, 5, 4097)):
        assert (tmp_path / "d" / f"f{i}").stat().st_size == size


def test_init_script_loads_fuse_only_when_it_is_a_module_and_fixes_the_epoch_for_stalls():
    plain = initramfs.init_script(initramfs.GuestJob(("--threads=16",), False))
    assert "insmod" not in plain and "--epoch" not in plain.replace("${epoch:+--epoch=$epoch}", "")
    assert "--threads=16" in plain and plain.startswith("#!/bin/busybox sh\n")
    assert plain.index("umount /mnt") < plain.index("wait $server") < plain.index("\nsend\n")
    mod = initramfs.init_script(initramfs.GuestJob((), True, epoch_lead_ns=2_000_000_000))
    assert "insmod /fuse.ko" in mod and "+ 2000000000" in mod
    assert "brd" not in mod and "oflag=direct" not in mod


def test_init_script_falls_back_to_a_ram_disk_when_tmp_has_no_o_direct():
    text = initramfs.init_script(initramfs.GuestJob((), False, dio_kb=256, has_brd_module=True))
    probe = text.index("oflag=direct")
    assert probe < text.index("insmod /brd.ko rd_nr=1 rd_size=256") < text.index("dio=/dev/ram0")
    assert '/mnt "$dio" $epoch' in text


def test_static_detection_and_module_decompression(tmp_path):
    import lzma
    assert not initramfs._is_static(sys.executable) or "static" in sys.executable
    if os.path.exists("/bin/busybox"):
        assert initramfs._is_static("/bin/busybox")
    (tmp_path / "m.ko.xz").write_bytes(lzma.compress(b"\x7fELF module"))
    assert initramfs.module_bytes(tmp_path / "m.ko.xz") == b"\x7fELF module"


# ---- the console and the serial stream ----

@pytest.mark.parametrize("line, bad", [
    ("[    3.1] Kernel panic - not syncing: Attempted to kill init!", True),
    ("[    2.0] Oops: 0000 [#1] PREEMPT SMP NOPTI", True),
    ("[    2.0] int3: 0000 [#1] PREEMPT SMP", True),
    ("[    1.0] BUG: kernel NULL pointer dereference, address: 0000000000000000", True),
    ("FWB-INIT 3.02", False), ("[   13.8] reboot: Power down", False),
    ("BUGS: none here", False)])
def test_console_lines_that_mean_the_kernel_broke(line, bad):
    assert boot.broken(line) is bad


def test_console_cleaning_drops_terminal_codes():
    assert boot.clean("\x1bc\x1b[?7l\x1b[2JFWB-INIT 6.04\r\n") == "FWB-INIT 6.04"


def _frame(name: str, body: bytes) -> bytes:
    return f"FWBFILE {name} {len(body)} {hashlib.sha256(body).hexdigest()}\n".encode() + body


def test_serial_frames_split_into_files_and_a_cut_or_damaged_stream_is_an_error():
    data = _frame("info", b"ab\nc") + _frame("log", b"\x00\n\x01") + b"FWBEND\n"
    assert boot.parse_serial(data) == {"info": b"ab\nc", "log": b"\x00\n\x01"}
    with pytest.raises(ValueError, match="cut short"):
        boot.parse_serial(data[:-7])
    with pytest.raises(ValueError, match="file log cut short"):
        boot.parse_serial(data[:len(_frame("info", b"ab\nc")) + 80])
    with pytest.raises(ValueError, match="bad frame"):
        boot.parse_serial(b"garbage\n")
    with pytest.raises(ValueError, match="file info damaged"):
        boot.parse_serial(data.replace(b"ab\nc", b"ab\nd"))


def test_qemu_runs_tcg_with_the_clock_pinned_and_no_reboot():
    cmd = boot.qemu_command("/k/vmlinuz", "/k/initrd", "/k/out")
    assert cmd[:3] == ["qemu-system-x86_64", "-accel", "tcg,thread=multi"]
    for flag in ("-nographic", "-no-reboot"):
        assert flag in cmd
    append = cmd[cmd.index("-append") + 1]
    assert "tsc=reliable" in append and "panic=-1" in append and "console=ttyS0" in append
    assert cmd[cmd.index("-m") + 1] == "4096" and cmd[cmd.index("-smp") + 1] == "2"


FAKE_QEMU = """#!/bin/sh
# A stand-in for qemu: behaves as told by $FAKE_MODE, counting its starts in $FAKE_DIR/n.
echo $$ > "$FAKE_DIR/pid"
n=$(($(cat "$FAKE_DIR/n" 2>/dev/null || echo 0) + 1)); echo $n > "$FAKE_DIR/n"
for a in "$@"; do case "$a" in file:*) out=${a#file:};; esac; done
mode=$FAKE_MODE
[ "$mode" = panic-once ] && { [ $n -eq 1 ] && mode=panic || mode=ok; }
case $mode in
panic) printf '\033c[    1.0] Kernel panic - not syncing: Attempted to kill init!\n'; exit 0;;
hang) echo booting; exec sleep 60;;
fail) echo 'FWB-INIT 1.0'; echo 'FWB-FAIL no fuse filesystem in this kernel'; exit 0;;
ok) echo 'FWB-INIT 1.0'; echo k=v > "$FAKE_DIR/info"
   echo "FWBFILE info 4 $(sha256sum "$FAKE_DIR/info" | cut -d' ' -f1)" > "$out"
   cat "$FAKE_DIR/info" >> "$out"; echo FWBEND >> "$out"; echo FWB-DONE; exit 0;;
esac
"""


@pytest.fixture
def fake_qemu(tmp_path, monkeypatch):
    exe = tmp_path / "fake-qemu"
    exe.write_text(FAKE_QEMU)
    exe.chmod(0o755)
    monkeypatch.setattr(boot, "QEMU", str(exe))
    monkeypatch.setenv("FAKE_DIR", str(tmp_path))
    return tmp_path


def _boot(tmp, mode, monkeypatch, **kw):
    monkeypatch.setenv("FAKE_MODE", mode)
    return boot.boot("/k/vmlinuz", "/k/initrd", tmp, **kw)


def test_a_panic_is_retried_and_the_retry_is_recorded(fake_qemu, monkeypatch):
    r = _boot(fake_qemu, "panic-once", monkeypatch, timeout_s=20)
    assert r.files == {"info": b"k=v\n"} and r.attempts == 2
    assert r.retried == ["kernel broke: [    1.0] Kernel panic - not syncing: Attempted to kill init!"]
    with pytest.raises(RuntimeError, match=r"Kernel panic.*attempt 3 of 3"):
        _boot(fake_qemu, "panic", monkeypatch, timeout_s=20, retries=2)


def test_a_failure_reported_by_init_is_not_retried(fake_qemu, monkeypatch):
    with pytest.raises(RuntimeError, match="^guest: no fuse filesystem in this kernel$"):
        _boot(fake_qemu, "fail", monkeypatch, timeout_s=20)
    assert (fake_qemu / "n").read_text().strip() == "1"


def test_a_hung_guest_is_killed_at_the_timeout(fake_qemu, monkeypatch):
    with pytest.raises(RuntimeError, match=r"timed out after 1 s while booting"):
        _boot(fake_qemu, "hang", monkeypatch, timeout_s=1, retries=0)
    pid = int((fake_qemu / "pid").read_text())
    assert not Path(f"/proc/{pid}").exists(), "the stand-in qemu outlived the timeout"


# ---- the guest runner, run on this machine ----

RUNNER_OK = os.access(guest.GUEST_RUNNER, os.X_OK)


@pytest.mark.skipif(not RUNNER_OK, reason="guest runner not built")
def test_the_guest_runner_runs_an_op_file_and_reports_rows_and_samples(tmp_path):
    ops = np.zeros(5, OP_DTYPE)
    for i in range(4):
        ops[i]["op"], ops[i]["offset"], ops[i]["length"] = WRITE, i * MiB, MiB
    ops[4]["op"] = FSYNC
    data = guest.op_file(ops, [4 * MiB], np.zeros(1, np.int64), 1, 0, 1_000_000)
    (tmp_path / "ops.bin").write_bytes(data)
    (tmp_path / "mnt").mkdir()
    p = subprocess.run([str(guest.GUEST_RUNNER), str(tmp_path / "ops.bin"),
                        str(tmp_path / "res.bin"), str(tmp_path / "mnt")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    head, start, lat, faults, samples = guest.read_result((tmp_path / "res.bin").read_bytes(), 5)
    assert int(head["rc"]) == 0
    assert (start >= 0).all() and (lat >= 0).all() and (np.diff(start) >= 0).all()
    assert len(samples) >= 2 and (samples["dirty_kb"] >= 0).all()
    assert (tmp_path / "mnt" / "f0").stat().st_size == 4 * MiB
    bad = subprocess.run([str(guest.GUEST_RUNNER), str(tmp_path / "res.bin"), "/x", "/y"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "not an op file" in bad.stderr


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_the_guest_runner_is_clean_under_asan_and_ubsan(tmp_path):
    root = Path(__file__).resolve().parent.parent
    exe = tmp_path / "runner"
    cc = subprocess.run(["cc", "-std=gnu11", "-g", "-O1", "-fsanitize=address,undefined",
                         "-fno-sanitize-recover=all", "-pthread",
                         f"-I{root / 'csrc' / 'driver'}", str(root / "csrc/guest/fwb_guest_runner.c"),
                         str(root / "csrc/driver/fwb_driver.c"), "-o", str(exe)],
                        capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    warn = subprocess.run(["cc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-c",
                           f"-I{root / 'csrc' / 'driver'}", "-o", str(tmp_path / "r.o"),
                           str(root / "csrc/guest/fwb_guest_runner.c")],
                          capture_output=True, text=True)
    assert warn.returncode == 0, warn.stderr
    ops = np.zeros(7, OP_DTYPE)      # two threads, two files, writes, mapped stores, syncs
    rows = [(0, WRITE, 0, 0, 3 * 4096 + 5), (1, MMAP_STORE, 1, 4096, 100), (0, FSYNC, 0, 0, 0),
            (1, MSYNC, 1, 0, 8192), (0, WRITE, 1, 8000, 9000), (1, MMAP_STORE, 1, 0, 4096),
            (0, FSYNC, 1, 0, 0)]
    for row, (th, op, f, off, ln) in zip(ops, rows):
        row["thread"], row["op"], row["file"], row["offset"], row["length"] = th, op, f, off, ln
    (tmp_path / "ops.bin").write_bytes(guest.op_file(ops, [0, 8192], np.array([0, 8192]), 2, 0,
                                                     1_000_000))
    (tmp_path / "mnt").mkdir()
    p = subprocess.run([str(exe), str(tmp_path / "ops.bin"), str(tmp_path / "res.bin"),
                        str(tmp_path / "mnt")], capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    head, start, lat, _, samples = guest.read_result((tmp_path / "res.bin").read_bytes(), 7)
    assert int(head["rc"]) == 0 and (lat >= 0).all() and len(samples) >= 2


def test_a_short_or_foreign_result_is_refused():
    with pytest.raises(ValueError, match="shorter than its header"):
        guest.read_result(b"FWB", 1)
    with pytest.raises(ValueError, match="bad magic"):
        guest.read_result(b"X" * 200, 1)


@pytest.mark.skipif(not RUNNER_OK, reason="guest runner not built")
def test_the_guest_runner_traces_the_files_it_is_told_to_at_every_sample(tmp_path):
    ops = np.zeros(3, OP_DTYPE)
    ops[0]["op"], ops[0]["length"] = WRITE, MiB
    ops[1]["op"], ops[1]["offset"], ops[1]["length"] = WRITE, MiB, MiB
    ops[2]["op"] = FSYNC
    (tmp_path / "ops.bin").write_bytes(guest.op_file(ops, [0], np.zeros(1, np.int64), 1, 0,
                                                     1_000_000))
    (tmp_path / "mnt").mkdir()
    (tmp_path / "stats").write_text("BdiWriteback:   12 kB\nBdiReclaimable:  0 kB\nnoise\n")
    env = dict(os.environ, FWB_TRACE=f"/proc/vmstat:nr_dirtied|nr_written,{tmp_path}/stats",
               FWB_TRACE_OUT=str(tmp_path / "trace.txt"))
    p = subprocess.run([str(guest.GUEST_RUNNER), str(tmp_path / "ops.bin"),
                        str(tmp_path / "res.bin"), str(tmp_path / "mnt")],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    head, *_, samples = guest.read_result((tmp_path / "res.bin").read_bytes(), 3)
    t, v = guest.read_trace((tmp_path / "trace.txt").read_bytes())
    assert len(t) == len(samples) and (t == samples["time_ns"]).all()
    assert sorted(v) == ["BdiReclaimable", "BdiWriteback", "nr_dirtied", "nr_written"]
    assert (v["BdiWriteback"] == 12).all() and (v["nr_dirtied"] > 0).all()
    env["FWB_TRACE_OUT"] = str(tmp_path / "no-such-dir" / "t.txt")
    bad = subprocess.run([str(guest.GUEST_RUNNER), str(tmp_path / "ops.bin"),
                          str(tmp_path / "res2.bin"), str(tmp_path / "mnt")],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "FWB_TRACE" in bad.stderr


def test_init_script_traces_and_takes_cpu_snapshots_around_the_run_only_when_asked():
    plain = initramfs.init_script(initramfs.GuestJob((), False))
    assert "debugfs" not in plain and "cpu_before" not in plain and "FWB_TRACE" not in plain
    text = initramfs.init_script(initramfs.GuestJob((), False, trace=guest.TRACE_WRITEBACK,
                                                    cpu_probe=True))
    order = [text.index(x) for x in ("mount -t debugfs", "export FWB_TRACE=", "> /out/cpu_idle",
                                     f"\nsleep {initramfs.IDLE_S}\n", "> /out/cpu_before",
                                     "/fwb_guest_runner", "> /out/cpu_after", "umount /mnt")]
    assert order == sorted(order)
    assert "/proc/$server/task/*/schedstat" in text and "FWB_TRACE_OUT=/out/trace.txt" in text


def _snap(up, tasks, cpu="cpu 10 0 20 300 0 0 1 0 0 0"):
    lines = [f"/proc/uptime:{up} 1.0", f"/proc/stat:{cpu}", "/proc/stat:cpu0 1 2 3"]
    for key, (comm, ut, st, ns) in tasks.items():
        rest = " ".join(["S"] + ["0"] * 10 + [str(ut), str(st)] + ["0"] * 5)
        lines += [f"{key}/stat:{key.rsplit('/', 1)[-1]} ({comm}) {rest}", f"{key}/schedstat:{ns} 0 0"]
    return "\n".join(lines).encode()


def _fake_guest(files, log, ops, start, t0):
    from types import SimpleNamespace
    return SimpleNamespace(files=files, ops=ops, run=SimpleNamespace(meta={}),
                           mount=SimpleNamespace(log=log, start_ns=np.asarray(start), t0_ns=t0))


def test_cpu_usage_takes_the_kworkers_over_the_run_less_their_idle_rate_and_the_flushers_writes():
    snap = guest.cpu_snapshot(_snap(5.5, {"/proc/7": ("kworker/u4:1-flush-0:40", 3, 4, 900)}))
    assert snap.uptime_s == 5.5 and snap.tasks["/proc/7"] == ("kworker/u4:1-flush-0:40", 7, 900)
    assert snap.cpu_ticks["idle"] == 300 and snap.cpu_ticks["softirq"] == 1
    kw, srv = "/proc/7", "/proc/50/task/51"
    idle = _snap(10.0, {kw: ("kworker/u4:1", 0, 0, 1_000_000), srv: ("fwb_fuse_server", 0, 0, 0)})
    before = _snap(11.0, {kw: ("kworker/u4:1", 0, 0, 3_000_000),            # 2 ms/s idle
                          srv: ("fwb_fuse_server", 0, 0, 5_000_000)})
    after = _snap(14.0, {kw: ("kworker/u4:1-flush-0:40", 5, 5, 103_000_000),
                         "/proc/8": ("kworker/0:2", 0, 1, 10_000_000),      # new: from 0
                         "/proc/9": ("sh", 9, 9, 10 ** 9),
                         srv: ("fwb_fuse_server", 1, 1, 45_000_000)})
    ops = np.zeros(3, OP_DTYPE)
    ops["op"] = [WRITE, WRITE, FSYNC]
    log = _log([(100, 200, 1, 0, 32 * 4096), (300, 400, 1, 32 * 4096, 4096),
                (1100, 1200, 1, 33 * 4096, 2 * 4096)])        # the fsync started at 1000
    g = _fake_guest({"cpu_idle": idle, "cpu_before": before, "cpu_after": after,
                     "info": b"bdi=0:40\n"}, log, ops, [0, 10, 900], 100)
    u = guest.cpu_usage(g)
    assert u["span_s"] == 3.0 and u["idle_span_s"] == 1.0
    assert u["kworker_raw_ns"] == 110_000_000 and u["kworker_ns"] == 110_000_000 - 3 * 2_000_000
    # the server's 5 ms in the idle second (5 ms/s) is taken off its 40 ms as well
    assert u["flush_kworker_raw_ns"] == 100_000_000 and u["server_ns"] == 40_000_000 - 15_000_000
    assert (u["pages"], u["requests"], u["pages_after_fsync"], u["requests_after_fsync"]) == \
        (33, 2, 2, 1)
    with pytest.raises(ValueError, match="cpu_probe"):
        guest.cpu_usage(_fake_guest({}, log, ops, [0, 10, 900], 100))


def test_writeback_passes_start_where_the_state_shows_the_flusher_running():
    from bench.real.kernels import commands
    # kB as in debugfs; state 5 idle, 7 running (WB_writeback_running); the fsync starts at 700
    rows = [(50, 5, 0, 0), (100, 5, 3600, 0), (200, 7, 4000, 400), (300, 5, 800, 0),
            (400, 5, 3000, 800), (500, 7, 3600, 400), (600, 7, 1000, 400), (800, 5, 4000, 0)]
    text = "\n".join(f"{t} state={st} BdiReclaimable={r} BdiWriteback={w} BdiDirtyThresh=7480 "
                     f"BdiDirtied={10 * t}" for t, st, r, w in rows)
    ops = np.zeros(2, OP_DTYPE)
    ops["op"] = [WRITE, FSYNC]
    g = _fake_guest({"trace.txt": text.encode()}, _log([]), ops, [0, 600], 100)
    p = guest.writeback_passes(g)
    assert p["passes"] == 2 and p["samples"] == 6
    assert p["limit_pages"] == 1870 and p["background_pages"] == 935
    assert p["dirty_wb_before_start"] == (900 + 950) / 2      # (3600 + 0) / 4, (3000 + 800) / 4
    assert p["running_share"] == 0.5 and p["dirtied_pages"] == 7500 // 4
    assert p["start_shares"] == [3600 / 7480, 3800 / 7480]
    assert "2 passes" in commands.render_passes(p) and "49% of its limit" in commands.render_passes(p)
    with pytest.raises(ValueError, match="without trace"):
        guest.writeback_passes(_fake_guest({}, _log([]), ops, [0, 600], 100))


def test_kernels_cost_solves_per_page_and_per_write_from_the_two_layouts_per_kernel():
    from bench.real.kernels import cost
    c = cost.layout_workload("contiguous", 1024)
    e = cost.layout_workload("every-other", 1024)
    assert c.ops["op"][-1] == FSYNC and e.ops["op"][-1] == FSYNC
    assert c.ops["length"][:-1].sum() == e.ops["length"][:-1].sum() == 1024 * 4096
    assert (e.ops["offset"][:-1] == 2 * 4096 * np.arange(1024)).all()
    with pytest.raises(ValueError, match="layout"):
        cost.layout_workload("diagonal")
    # planted costs: 6.1 pays 3000 ns/page + 20000 ns/WRITE in its kworkers, 7.2 1000 + 5000
    planted = {"6.1": (3000, 20000), "7.2": (1000, 5000)}
    calls = []

    def fake_execute(k, wl, seed, cpu_probe, progress, folio_trace=True, **params):
        assert cpu_probe and seed == 0 and not folio_trace   # costs measured without the trace
        calls.append((k.name, wl.name))
        pages = int(wl.ops["length"][:-1].sum()) // 4096 - 128         # 128 left to the fsync
        reqs = pages // 32 if wl.name.endswith("contiguous") else pages
        per_page, per_req = planted[k.name]
        ns = pages * per_page + reqs * per_req
        files = {"cpu_idle": _snap(1.0, {"/proc/7": ("kworker/u4:1", 0, 0, 0)}),
                 "cpu_before": _snap(2.0, {"/proc/7": ("kworker/u4:1", 0, 0, 0)}),
                 "cpu_after": _snap(3.0, {"/proc/7": ("kworker/u4:1", 0, 0, ns),
                                          "/proc/50/task/51": ("srv", 0, 0, 7 * ns)}),
                 "info": b"bdi=0:40\n"}
        rows = []
        t, size = 0, (32 if reqs < pages else 1)
        for i in range(reqs):
            rows.append((t, t + 1, 1, i * size * 4096, size * 4096))
            t += 2
        rows.append((10 ** 9, 10 ** 9 + 1, 1, 0, 128 * 4096))           # after the fsync
        start = np.zeros(len(wl.ops), np.int64)
        start[-1] = 10 ** 9 - 50
        g = _fake_guest(files, _log(rows), wl.ops, start, 0)
        g.run.meta = {"kernel": k.name + ".0", "clocksource": "tsc", "run_s": 1.0}
        return g

    res = cost.measure([catalog.get("6.1"), catalog.get("7.2")], rounds=2, pages=3200,
                       execute=fake_execute)
    assert calls[:4] == [("6.1", "flush-contiguous"), ("6.1", "flush-every-other"),
                         ("7.2", "flush-contiguous"), ("7.2", "flush-every-other")]
    assert calls[4:] == [("7.2", "flush-every-other"), ("7.2", "flush-contiguous"),
                         ("6.1", "flush-every-other"), ("6.1", "flush-contiguous")]
    for name, (pp, pr) in planted.items():
        d = res["kernels"][name]
        assert d["kworker_page_ns"] == pytest.approx(pp) and d["kworker_request_ns"] == pytest.approx(pr)
        assert d["server_page_ns"] == pytest.approx(7 * pp)
    dif = res["difference"]
    assert (dif["temp_page"], dif["no_temp_page"]) == ("6.1", "7.2")
    assert dif["kworker_page_ns"]["median"] == pytest.approx(2000)
    text = cost.render(res)
    assert "6.1 - 7.2" in text and "TCG" in text and "2,000" in text


# ---- copies in flight (bench.real.mount, shared by host and guests) ----

def _log(rows):
    log = np.zeros(len(rows), mount.LOG_DTYPE)
    for i, (recv, reply, ino, off, size) in enumerate(rows):
        log[i]["t_recv_ns"], log[i]["t_reply_ns"] = recv, reply
        log[i]["ino"], log[i]["offset"], log[i]["size"] = ino, off, size
    return log


def test_copies_in_flight_count_overlapping_writes_of_one_page():
    assert mount.copies_in_flight(_log([])) == (0, 0)
    # pages 0-1 [0,10], page 1 [5,15] and [10,20] (touching the first's reply), another file
    log = _log([(0, 10, 1, 0, 8192), (5, 15, 1, 4096, 4096), (10, 20, 1, 4096, 4096),
                (0, 100, 2, 4096, 4096)])
    assert mount.copies_in_flight(log) == (2, 1)
    three = _log([(0, 10, 1, 0, 4096), (1, 9, 1, 0, 4096), (2, 3, 1, 0, 100)])
    assert mount.copies_in_flight(three) == (3, 1)
    reads = three.copy()
    reads["kind"] = mount.KIND_READ
    assert mount.copies_in_flight(reads) == (0, 0)


# ---- A/B ----

def _run(kernel, seed, thr, reqs=10, tmp=0):
    return Run(f"kernel-{kernel}.1", "seq-write", {}, seed, "mount",
               {"app_throughput_bps": thr, "requests": reqs, "pages_per_request": {"32": reqs},
                "temp_pages_peak": tmp, "max_copies_in_flight": 1},
               meta={"kernel_name": kernel})


def test_ab_interleaves_with_a_rotating_order_and_pairs_by_seed():
    calls = []

    class R:
        def __init__(self, r):
            self.run = r

    def fake(k, w, seed, progress=None, **p):
        calls.append((k.name, seed))
        return R(_run(k.name, seed, 1.0))

    ks = catalog.parse_list("6.1,7.2")
    runs = ab.run_ab(ks, "seq-write", 3, {}, execute=fake)
    assert calls == [("6.1", 0), ("7.2", 0), ("7.2", 1), ("6.1", 1), ("6.1", 2), ("7.2", 2)]
    assert len(runs) == 6


def test_ab_ratios_are_no_temp_page_over_temp_page_per_pair():
    ks = catalog.parse_list("7.2,6.1")          # order given does not matter
    runs = [_run("6.1", 0, 10.0, tmp=50), _run("7.2", 0, 15.0), _run("6.1", 1, 20.0, tmp=40),
            _run("7.2", 1, 20.0)]
    rs = {r.metric: r for r in ab.ratios(runs, ks)}
    thr = rs["app throughput"]
    assert (thr.median, thr.lo, thr.hi, thr.n) == (1.25, 1.0, 1.5, 2)
    assert rs["WritebackTmp peak"].median == 0.0 and rs["WritebackTmp peak"].base_median == 45.0
    text = ab.render(list(rs.values()), ks, "seq-write")
    assert text.startswith("seq-write: 7.2 (no-temp-page) / 6.1 (temp-page)")


def _sim(strategy, seed, thr, reqs=10, tmp=0, secondaries=0):
    return Run(strategy, "seq-write", {}, seed, "c",
               {"app_throughput_bps": thr, "requests": reqs, "pages_per_request": {"32": reqs},
                "temp_pages_peak": tmp, "max_copies_in_flight": 1 + (secondaries > 0),
                "secondaries": secondaries, "out_of_order": 0, "lost_updates": 0})


def test_ab_simulated_ratios_pair_the_strategies_by_seed_and_are_judged_against_the_spread():
    ks = catalog.parse_list("6.1,7.2")
    measured = [_run("6.1", 0, 10.0, tmp=50), _run("7.2", 0, 15.0), _run("6.1", 1, 20.0, tmp=40),
                _run("7.2", 1, 20.0)]
    sim_runs = [_sim("merge-in-queue", 0, 100.0, tmp=30, secondaries=4),
                _sim("iomap-blocks", 0, 110.0), _sim("merge-in-queue", 1, 100.0, tmp=10),
                _sim("iomap-blocks", 1, 130.0, reqs=20)]
    sim = {r.metric: r for r in ab.sim_ratios(sim_runs, ks)}
    assert (sim["app throughput"].median, sim["app throughput"].lo,
            sim["app throughput"].hi) == pytest.approx((1.2, 1.1, 1.3))
    assert sim["WRITE count"].median == 1.5 and sim["WritebackTmp peak"].median == 0.0
    assert sim["WritebackTmp peak"].base_median == 20.0
    meas = {r.metric: r for r in ab.ratios(measured, ks)}
    # measured throughput ratios 1.5 and 1.0 (CI of the median 1.0..1.5): 1.2 lies within; the
    # WRITE count's ratios are both 1.0, so the simulated 1.5 does not
    assert ab.agreement(meas["app throughput"], sim["app throughput"]) == "agrees"
    assert ab.agreement(meas["WRITE count"], sim["WRITE count"]) == "differs"
    assert ab.agreement(meas["WritebackTmp peak"], sim["WritebackTmp peak"]) == "agrees"
    none = ab.Ratio("x", 0, 0, float("nan"), float("nan"), float("nan"), float("nan"),
                    float("nan"), 0)
    assert ab.agreement(none, sim["WRITE count"]) == "-"
    ev = ab.evidence(measured, sim_runs, ks)
    assert ev["simulated"]["merge-in-queue"]["secondaries"] == 2.0
    assert ev["simulated"]["iomap-blocks"]["secondaries"] == 0.0
    assert ev["measured"]["6.1"]["app_throughput_bps"] == 15.0
    text = ab.render(list(meas.values()), ks, "seq-write", list(sim.values()), "qemu-6.1", ev)
    assert "simulated: iomap-blocks / merge-in-queue on qemu-6.1" in text
    row = next(ln for ln in text.splitlines() if ln.strip().startswith("WRITE count"))
    assert row.rstrip().endswith("differs") and "1.5" in row.split("|")[1]
    assert "6.1 under TCG (medians)" in text and "not comparable" in text


def test_ab_simulates_both_strategies_on_the_guests_op_arrays():
    ks = catalog.parse_list("7.2,6.1")
    runs = ab.simulate(ks, "seq-write", [0, 1], {"file_size": 4 * MiB}, "c")
    assert [(r.strategy, r.seed) for r in runs] == [
        ("merge-in-queue", 0), ("iomap-blocks", 0), ("merge-in-queue", 1), ("iomap-blocks", 1)]
    tmp = {r.metric: r for r in ab.sim_ratios(runs, ks)}["WritebackTmp peak"]
    assert tmp.base_median > 0 and tmp.median == 0.0 and tmp.n == 2
    assert all(r.metrics["bytes_dirtied"] == 4 * MiB for r in runs)


# ---- validate --kernel ----

def test_ab_keeps_each_guests_details_and_prints_its_table_as_json(monkeypatch, capsys,
                                                                   tmp_path):
    import json
    from bench.__main__ import main

    class G:
        def __init__(self, run, wl):
            class M:
                start_ns = wl.ops["time"] + 5_000_000 * (run.strategy == "kernel-7.2.1")
                latency_ns = np.full(len(wl.ops), 1000, np.int64)
                log = np.zeros(0, mount.LOG_DTYPE)
            self.run, self.mount = run, M()

    def fake(k, w, seed, progress=None, **p):
        from dataclasses import replace
        wl, _ = kvalidate.sim_side(w, seed, p)
        r = kvalidate.simulate(k.strategy, w, seed, p, "c")     # a complete run, renamed
        m = {**r.metrics, "app_throughput_bps": 2e7 if k.name == "7.2" else 1e7}
        return G(replace(r, strategy=f"kernel-{k.name}.1", engine="mount", metrics=m,
                         meta={"kernel_name": k.name, "family": k.family}), wl)

    monkeypatch.setattr(guest, "execute", fake)
    monkeypatch.setenv("FWB_MACHINE", "ci-2cpu-24g")     # main selects the guest's profile
    out = tmp_path / "ab.json"
    assert main(["kernels", "ab", "seq-write", "--runs", "2", "--param", "file_size=1048576",
                 "--sim-timing", "both", "--json", "--quiet", "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    from bench import results
    suite = results.load(out)           # the runs on both timings are told apart
    assert sum(r.params.get("timing") == "measured" for r in suite.runs) == 4
    assert doc["simulated"]["measured"]["evidence"]["simulated"]["merge-in-queue"]
    assert doc["ratio"] == "7.2 / 6.1" and doc["runs_per_kernel"] == 2
    thr = next(r for r in doc["measured"] if r["metric"] == "app throughput")
    assert thr["median"] == 2.0 and thr["n"] == 2
    assert set(doc["simulated"]) == {"schedule", "measured"}
    assert doc["simulated"]["measured"]["verdicts"]["WRITE count"] in ("agrees", "differs")
    # 7.2's fake guest started every row 5 ms late, 6.1's on time
    assert doc["guests"]["7.2"]["late_share"] == 1.0 and doc["guests"]["6.1"]["late_share"] == 0
    assert doc["guests"]["6.1"]["pages_with_concurrent_copies"] == 0


def test_a_guests_schedule_and_the_simulator_on_its_measured_timing():
    from bench.sim.ops import DIO_READ, SYNC
    ops = np.array([(0, 0, DIO_READ, 0, 0, 0, 4096), (0, 1, SYNC, 0, 0, 0, 0),
                    (1_000_000, 1, SYNC, 0, 0, 0, 0), (2_000_000, 0, DIO_READ, 0, 0, 0, 4096),
                    (4_000_000, 0, DIO_READ, 0, 0, 0, 4096)], dtype=OP_DTYPE)
    start = np.array([0, 0, 1_000_000, 9_000_000, 12_000_000])
    lat = np.array([8_000_000, 500_000, 500_000, 3_000_000, 100])
    s = kvalidate.schedule(ops, start, lat)
    assert s["late_share"] == 0.4 and s["late_max_s"] == 0.008
    assert s["end_s"] == 0.0120001 and s["scheduled_end_s"] == 0.004
    # the sync thread was done at 1.5 ms: only the first read started while it ran
    assert s["dio_reads_during_syncs"] == pytest.approx(1 / 3)
    wl, _ = kvalidate.sim_side("dio-redirty", 0, {"rounds": 4, "stores": 2})
    late = wl.ops["time"] + 1_000_000 * np.arange(len(wl.ops))
    late[wl.ops["thread"] == 2] = -1              # rows never started keep their own time
    m = kvalidate.measured_timing(wl, late)
    assert m.params["timing"] == "measured" and len(m.ops) == len(wl.ops)
    assert (np.diff(m.ops["time"]) >= 0).all()
    for t in range(3):                            # each thread's rows in their order
        mine = m.ops[m.ops["thread"] == t]
        assert (mine["offset"] == wl.ops[wl.ops["thread"] == t]["offset"]).all()
    r = kvalidate.simulate_measured("merge-in-queue", "dio-redirty", 0, {"rounds": 4, "stores": 2},
                                    late, "c")
    # the simulator started no row before the guest did: the last one at 20 ms or later
    assert r.metrics["makespan_ns"] >= int(late.max()) - int(wl.ops["time"].min())
    m_run = _full("kernel-6.1.1", 0, "mount", 10, 100)
    b = kvalidate.block("dio-redirty", [m_run], [_full("merge-in-queue", 0, "c", 12, 90)],
                        [{"schedule": s, "arrivals": {"pages_with_concurrent_copies": 4,
                                                      "later_one_page": 3,
                                                      "overlap_median_ms": 1.5}}], [r])
    text = kvalidate.render(catalog.get("6.1"), [b], "header")
    assert "40% of rows started over 1 ms late" in text and "sync(2) thread ran: 33.3%" in text
    assert "4 pages with two WRITEs in the server at once, 3 of them" in text
    assert f"WRITEs {r.metrics['requests']}" in text


def test_arrivals_count_pages_two_writes_covered_at_once():
    def log(rows):
        a = np.zeros(len(rows), mount.LOG_DTYPE)
        for i, (recv, reply, off, size) in enumerate(rows):
            a[i] = (recv, reply, 1, off, size, mount.KIND_WRITE, 1, 0, 0)
        return a
    # pages 0-1: a two-page WRITE overlaps another (30 ns); page 4: a one-page WRITE received
    # 10 ns before the earlier one's reply record (a secondary's shape); page 8: one after the other
    a = log([(0, 100, 0, 8192), (10, 40, 0, 8192), (0, 100, 16384, 4096), (90, 200, 16384, 4096),
             (0, 10, 32768, 4096), (10, 20, 32768, 4096)])
    ar = kvalidate.arrivals(a)
    assert (ar["pages_with_concurrent_copies"], ar["later_one_page"]) == (3, 1)
    assert ar["overlap_median_ms"] == 30e-6
    assert ar["pages_with_concurrent_copies"] == mount.copies_in_flight(a)[1]


def test_the_blocking_pattern_in_the_simulator_and_from_a_guests_row_times(monkeypatch):
    monkeypatch.setenv("FWB_MACHINE", "qemu-6.1-2cpu-4g")   # a guest's 4 GiB: a 7 MB limit
    for strategy in ("merge-in-queue", "no-temp-page"):
        b = kvalidate.blocking_sim(strategy, "c", write_mib=16)
        assert b["write"]["class"] == "throttled (waited)"
        assert b["write"]["held_end_ns"] >= kvalidate.BLOCK_STALL_NS - 100 * 10**6
        assert [c["class"] for c in b["fsync"]] == ["waited"]
        assert [c["class"] for c in b["sync"]] == ["returned"]
        assert (b["temp_pages_peak"] > 0) == (strategy == "merge-in-queue")
    wl = kvalidate.blocking_workload(write_mib=4)
    ops = wl.ops
    assert list(ops["op"][:4]) == [WRITE, WRITE, FSYNC, 5] and len(ops) == 8
    stall0, stall = kvalidate.BLOCK_STALL_START_NS, kvalidate.BLOCK_STALL_NS
    t = stall0 + 200 * 10**6
    # a guest: the fsync never returned, sync waited, the writer's third call held to the end
    start = np.array([10**7, 10**7, t, t, t, t + 10**6, t + 2 * 10**6, stall0 + stall])
    lat = np.array([10**6, 10**6, -1, stall - 200 * 10**6, 10**6, 10**6,
                    stall - 200 * 10**6 - 2 * 10**6, 10**6])
    b = kvalidate.blocking_pattern(ops, start, lat, stall0, stall)
    assert b["write"]["class"] == "throttled (waited)" and b["write"]["writes_before_held"] == 2
    assert b["fsync"][0]["class"] == "never returned" and b["sync"][0]["class"] == "waited"
    assert not kvalidate.same_pattern(b, kvalidate.blocking_sim("no-temp-page", "c",
                                                                write_mib=16))
    text = kvalidate.render_blocking([("6.1 (guest)", {**b, "temp_pages_peak": 1,
                                                     "pinned_pages_peak": 0, "hangs": 1})])
    assert "never returned" in text and "throttled (waited)" in text
    with pytest.raises(ValueError, match="in row order"):
        kvalidate.sim_row_times(ops, {"write": [10**9] + [1] * 5, "fsync": [1], "sync": [1]})


def test_ab_summarises_the_blocking_pattern_over_runs():
    pat = lambda w, f: {"write": {"class": w, "held_end_ns": 2 * 10**9,  # noqa: E731
                                  "writes_before_held": 5},
                        "fsync": [{"class": f}], "stall_ns": 10**9}
    s = ab.blocking_summary([pat("throttled (waited)", "waited"),
                             pat("throttled (waited)", "returned")])
    assert s["classes"]["write"] == {"throttled (waited)": 2}
    assert s["classes"]["fsync 1"] == {"waited": 1, "returned": 1}
    assert s["write_held_end_s"] == 2.0
    text = ab.render_blocking([("6.1 (guest)", s)], 10**9)
    assert "fsync 1: returned 1/2, waited 1/2" in text


def test_each_kernel_is_simulated_on_its_guests_profile():
    assert kvalidate.profile_for(catalog.get("6.1")) == ("qemu-6.1-2cpu-4g", "")
    assert kvalidate.profile_for(catalog.get("6.12"))[0] == "qemu-6.12-2cpu-4g"
    name, note = kvalidate.profile_for(catalog.get("7.3"))
    assert name == "qemu-7.2-2cpu-4g" and "7.3 has no machine profile of its own" in note


def test_the_simulator_gets_the_server_the_guest_ran():
    wl, sp = kvalidate.sim_side("seq-write", 0, {"file_size": 4 * MiB})
    assert wl.bytes_dirtied() == 4 * MiB
    assert sp == {"server_threads": 16, "max_pages": 32, "max_background": 12, "server_dist": 0}
    _, sp = kvalidate.sim_side("seq-write", 0, {"max_write": 32768, "server_threads": 2})
    assert (sp["max_pages"], sp["server_threads"]) == (8, 2)
    # dio-redirty carries its server (the seed thread's): an artificial exponential delay
    _, sp = kvalidate.sim_side("dio-redirty", 0, {})
    assert (sp["server_threads"], sp["server_dist"], sp["server_base_ns"],
            sp["server_page_ns"]) == (4, 1, 20000, 2000)
    with pytest.raises(ValueError, match="a real mount cannot set it"):
        kvalidate.sim_side("seq-write", 0, {"page_copy_ns": 100})


def _full(strategy, seed, engine, reqs, tmp, thr=1e8, p50=1000, fsyncs=1, pages=32):
    lat = {"p50": p50, "p99": 2 * p50, "p999": 3 * p50, "max": 4 * p50, "count": 10}
    return Run(strategy, "seq-write", {}, seed, engine,
               {"app_throughput_bps": thr, "requests": reqs, "pages_per_request": {pages: reqs},
                "bytes_written": reqs * pages * 4096, "temp_pages_peak": tmp,
                "max_copies_in_flight": 1, "write_latency_ns": lat, "makespan_ns": 10**9,
                "fsync_latency_ns": {**lat, "count": fsyncs}},
               meta={"family": "temp-page" if tmp else "no-temp-page", "boot_to_init_s": 3.0,
                     "run_s": 5.0, "guest_wall_s": 20.0, "pages_with_concurrent_copies": 0})


def test_validate_kernel_pairs_medians_and_judges_only_counts():
    measured = [_full("kernel-6.1.1", s, "mount", 100 + s, 2000, thr=3e7, p50=90_000)
                for s in range(3)]
    predicted = [_full("merge-in-queue", s, "c", 110, 1000, thr=6e8, p50=900) for s in range(3)]
    rows = {r.metric: r for r in kvalidate.pair("seq-write", measured, predicted)}
    assert rows["WRITE requests"].measured == 101 and rows["WRITE requests"].verdict == "ok"
    assert rows["temp pages peak"].ratio == 0.5 and rows["temp pages peak"].verdict == "differs"
    assert rows["app throughput"].kind == "time" and rows["app throughput"].verdict == ""
    assert rows["pages per WRITE"].predicted == 32.0
    zero = kvalidate.Row("w", "temp pages peak", 0.0, 0.0, "", 1, "count")
    assert zero.verdict == "ok"
    with pytest.raises(ValueError, match="seeds"):
        kvalidate.pair("seq-write", measured, predicted[:2])
    b = kvalidate.block("seq-write", measured, predicted)
    text = kvalidate.render(catalog.get("6.1"), [b], "header")
    assert "(TCG time)" in text and "not comparable" in text
    assert "family seen" in text and "DIFFERS" not in text
    doc = kvalidate.no_nan(kvalidate.as_json(catalog.get("6.1"), "merge-in-queue", "p", [b]))
    import json
    json.dumps(doc, allow_nan=False)
    assert doc["workloads"][0]["rows"][1]["verdict"] == "ok"


# ---- the CLI ----

def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_cli_list_names_kernels_versions_and_families(tmp_path):
    p = _cli("kernels", "list", env={fetch.CACHE_ENV: str(tmp_path)})
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[:3] == ["kernel", "suite", "family"]
    assert lines[1].split()[:4] == ["6.1", "bookworm", "temp-page", "merge-in-queue"]
    assert lines[3].split()[:4] == ["7.2", "sid", "no-temp-page", "iomap-blocks"]
    assert str(tmp_path) in lines[-1]


def test_cli_bad_kernel_or_workload_is_one_error_line(tmp_path):
    p = _cli("kernels", "run", "5.4", "seq-write")
    assert p.returncode == 2 and p.stderr.startswith("ERROR: kernel: unknown '5.4'")
    p = _cli("kernels", "ab", "seq-write", "--kernels", "6.1")
    assert p.returncode == 2 and "name two kernels" in p.stderr
    p = _cli("kernels", "ab", "nope")
    assert p.returncode == 2 and p.stderr.startswith("ERROR: workload: unknown 'nope'")
    p = _cli("kernels", "ab", "seq-write", "--machine", "nosuch")
    assert p.returncode == 2 and p.stderr.startswith("ERROR: machine profile 'nosuch'")
    for args in (("--kernel", "5.4"), ("--kernel", "6.1", "--workloads", "nope"),
                 ("--kernel", "6.1", "--sim-param", "page_copy_ns=-1")):
        p = _cli("validate", *args)
        assert p.returncode == 2 and p.stderr.startswith("ERROR: ") and \
            len(p.stderr.splitlines()) == 1, (args, p.stderr)
    assert "unknown '5.4'" in _cli("validate", "--kernel", "5.4").stderr


# ---- one real guest ----

GUEST_OK, GUEST_WHY = guest.available()


def _qemu_pids(tag: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if b"qemu-system-x86_64" in cmd and tag.encode() in cmd:
                out.append(int(d.name))
    return out


@pytest.mark.skipif(not GUEST_OK, reason=GUEST_WHY or "guest available")
def test_smoke_6_1_boots_and_runs_a_seq_write_with_temp_pages(tmp_path):
    said = []
    g = guest.execute("6.1", "seq-write", 0, file_size=16 * MiB, block_size=MiB, cpu_probe=True,
                      trace=guest.TRACE_WRITEBACK, request_timeout_ns=10 * 1_000_000_000,
                      progress=lambda stage, m: said.append((stage, m)))
    r, meta = g.run, dict(g.run.meta)
    # 6.1 has no request timeout: the run goes on without one, and says so
    assert any(st == "timeout" and "kernel 6.1 has no FUSE request timeout" in m for st, m in said)
    assert "kernel 6.1 has no FUSE request timeout" in meta["request_timeout_note"]
    rt = meta["request_timeout"]
    assert rt["asked_s"] == 10 and rt["request_timeout_s"] == 0 and rt["guest_knob_s"] == -1
    assert rt["failed_calls"] == 0 and "failed_calls" not in g.files
    # the flusher's CPU: kworker time over the run, and the WRITEs it sent before the fsync
    u = guest.cpu_usage(g)
    assert u["kworker_ns"] > 0 and u["server_ns"] > 0 and u["span_s"] > 0
    assert u["pages"] > 0 and u["pages"] + u["pages_after_fsync"] == 16 * MiB // 4096
    # the trace: the bdi's debugfs stats and /proc/vmstat at every sample
    t, v = guest.read_trace(g.files["trace.txt"])
    assert len(t) >= 2 and (np.diff(t) >= 0).all()
    # (the bdi's share of the limit is 0 until its first writeback completes)
    assert v["BdiDirtyThresh"].max() > 0 and v["nr_dirtied"][-1] > v["nr_dirtied"][0]
    assert r.strategy == g.kernel.run_name and r.strategy.startswith("kernel-6.1.")
    assert meta["kernel_name"] == "6.1" and meta["kernel"].startswith("6.1.")
    assert meta["kernel_package_version"].startswith("6.1.")
    assert meta["kernel_family"] == "temp-page" and meta["family"] == "temp-page"
    # temp pages: WritebackTmp rose during writeback, and writeback WRITEs reached the server
    assert r.metrics["temp_pages_peak"] > 0
    assert r.metrics["requests"] > 0 and meta["writes_with_writeback_flag"] > 0
    assert r.metrics["bytes_written"] == 16 * MiB
    assert r.metrics["max_copies_in_flight"] >= 1
    assert meta["clocksource"] == "tsc" and meta["guest_mem_mb"] == 4096
    # the folio trace saw every page of the file added to the page cache, none lost
    assert meta["folio_pages_added"] == 16 * MiB // 4096 and meta["folio_trace_lost"] == 0
    # what the kernel showed of its FUSE features is what the catalog records for 6.1
    seen = features.from_guest_files(meta["kernel"], g.files, meta, temp_page=True)
    assert {k: s for k, (s, _) in seen.items() if s != "?"} == \
        {k: s for k, s, _ in catalog.get("6.1").features}
    assert meta["fuse_knobs"] == features.parse_knobs(g.files["fuse_knobs"]) != {}
    assert meta["bdi_max_ratio"] >= 0 and meta["boot_to_init_s"] > 0
    # Only this run's qemu counts: its command line names the run's own temporary directory,
    # so another run's guest (a shared machine) is never mistaken for a leak.
    own_dir = re.search(r"/[^\s,:]*?/fwb-guest-[^/\s,]+", " ".join(meta["qemu_command"])).group()
    assert _qemu_pids(own_dir) == [], "this run's qemu was left running"


def test_validate_kernel_passes_only_when_every_count_and_the_blocking_pattern_agree():
    measured = [_full("kernel-6.1.1", s, "mount", 100, 2000, thr=3e7, p50=90_000) for s in range(2)]
    close = [_full("merge-in-queue", s, "c", 110, 1900, thr=6e8, p50=900) for s in range(2)]
    far = [_full("merge-in-queue", s, "c", 110, 1000, thr=6e8, p50=900) for s in range(2)]
    ok, line = kvalidate.verdict([kvalidate.block("seq-write", measured, close)])
    assert ok and line.startswith("validate --kernel: PASS: ")        # times are not judged
    ok, line = kvalidate.verdict([kvalidate.block("seq-write", measured, close)], False)
    assert not ok and "blocking pattern differs" in line
    ok, line = kvalidate.verdict([kvalidate.block("seq-write", measured, far)], True)
    assert not ok and line.startswith("validate --kernel: FAIL: 1 of ")
    assert "seq-write temp pages peak 0.50" in line


# ---- folio sizes and FUSE features ----

from bench.real.kernels import features, folios  # noqa: E402

TRACE_7X = """# tracer: nop
#
#            TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
  fwb_guest_runne-80  [001] .....  12.301: mm_filemap_add_to_page_cache: dev 0:45 ino 2 pfn=0x1a00 ofs=0 order=2
  fwb_guest_runne-80  [001] .....  12.302: mm_filemap_add_to_page_cache: dev 0:45 ino 2 pfn=0x1a04 ofs=16384 order=2
  fwb_guest_runne-80  [000] .....  12.303: mm_filemap_add_to_page_cache: dev 0:45 ino 2 pfn=0x1b00 ofs=32768 order=0
  kworker/0:1-12      [000] .....  12.304: mm_filemap_add_to_page_cache: dev 8:1 ino 9 pfn=0x2000 ofs=0 order=4
  kworker/0:1-12      [000] .....  12.305: mm_filemap_delete_from_page_cache: dev 0:45 ino 2 pfn=0x1a00 ofs=0 order=2
"""
TRACE_6_1 = ("  dd-7  [000] .....  3.1: mm_filemap_add_to_page_cache: dev 0:40 ino 2 "
             "page=0000000012345678 pfn=4096 ofs=0\n")


def _guest_orders(text: str) -> str:
    """The guest's reduction (initramfs.FOLIO_AWK) run by busybox awk, as /init runs it."""
    p = subprocess.run([initramfs.busybox_path(), "awk", initramfs.FOLIO_AWK],
                       input=text, capture_output=True, text=True, check=True)
    return p.stdout


def test_folio_orders_from_a_trace_count_the_devices_adds_by_order_and_old_kernels_as_unknown():
    assert folios.orders_from_trace(TRACE_7X, dev="0:45") == {0: 1, 2: 2}
    assert folios.orders_from_trace(TRACE_7X) == {0: 1, 2: 2, 4: 1}
    assert folios.orders_from_trace(TRACE_6_1) == {folios.UNKNOWN: 1}
    s = folios.summary({0: 1, 2: 2})
    assert s["folio_pages_added"] == 9 and s["folio_pages_mean"] == 3.0
    assert s["folio_orders"] == {"0": 1, "2": 2} and s["folio_order_max"] == 2
    # no known order: the mean is unknown (None, which JSON keeps), not 0 or 1
    u = folios.summary({folios.UNKNOWN: 5}, lost=3)
    assert u["folio_pages_mean"] is None and u["folios_added"] == 5 and u["folio_trace_lost"] == 3


def test_the_guests_awk_reduction_agrees_with_the_python_reader():
    try:
        initramfs.busybox_path()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    adds = "".join(ln + "\n" for ln in TRACE_7X.splitlines()
                   if "add_to_page_cache" in ln and "dev 0:45" in ln or ln.startswith("#"))
    assert folios.parse_orders(_guest_orders(adds)) == folios.orders_from_trace(adds)
    assert folios.parse_orders(_guest_orders(TRACE_6_1)) == {folios.UNKNOWN: 1}


def test_folio_files_are_parsed_and_bad_lines_refused():
    files = {"folio_orders": b"0 10\n2 3\n\n",
             "folio_stats": b"/sys/kernel/tracing/per_cpu/cpu0/stats:entries: 9\n"
                            b"/sys/kernel/tracing/per_cpu/cpu0/stats:overrun: 4\n"
                            b"/sys/kernel/tracing/per_cpu/cpu1/stats:overrun: 1\n"}
    s = folios.from_files(files)
    assert s["folio_orders"] == {"0": 10, "2": 3} and s["folio_trace_lost"] == 5
    assert s["folio_pages_mean"] == pytest.approx((10 + 12) / 13)
    assert folios.from_files({}) is None
    for bad in (b"0 1 2\n", b"x 3\n", b"0 -1\n", b"99 1\n"):
        with pytest.raises(ValueError, match="folio_orders: line 1"):
            folios.parse_orders(bad)


def test_init_script_traces_folios_of_the_mount_around_the_runner_and_probes_fuse_knobs():
    plain = initramfs.init_script(initramfs.GuestJob((), False))
    assert "mm_filemap_add_to_page_cache" not in plain
    assert "/out/fuse_knobs" in plain and "/out/fuse_symbols" in plain   # every run
    text = initramfs.init_script(initramfs.GuestJob((), False, folio_trace=True))
    on, run, off, end, save = (text.index(s) for s in (
        'echo 1 > "$ev/enable"', "/fwb_guest_runner ", 'echo 0 > "$ev/enable"',
        "info uptime_run_end_s", "> /out/folio_orders"))
    # enabled just around the runner; reduced after the run's end is taken, before the unmount
    assert on < run < off < end < save < text.index("umount /mnt")
    # the filter is the mount's s_dev as the kernel encodes it: major << 20 | minor
    assert 's_dev == $(( ${dev%%:*} * 1048576 + ${dev##*:} ))' in text
    assert text.index('dev=$(awk') < text.index("s_dev ==")


def test_knobs_and_symbols_parse_and_name_as_sysctl_and_module_parameter():
    k = features.parse_knobs(b"/proc/sys/fs/fuse/max_pages_limit=256\n"
                             b"/sys/module/fuse/parameters/enable_uring=N\nnoise\n")
    assert k == {"fs.fuse.max_pages_limit": "256", "fuse.enable_uring": "N"}
    s = features.parse_symbols("fuse_uring_cmd.cold\nfuse_check_timeout\n"
                               "ffffffff8121b017 t fuse_iomap_writeback_range.isra.0 [fuse]\n")
    assert s == {"fuse_uring_cmd", "fuse_check_timeout", "fuse_iomap_writeback_range"}
    assert features.version_of("6.18.44-fc-v1272") == (6, 18)
    assert features.version_of("7.3-amd64") == (7, 3) and features.version_of("x") is None


def test_features_come_from_symbols_knobs_measurement_then_version_and_say_which():
    new = features.probe("7.2.13+deb14-amd64",
                         {"fuse_iomap_writeback_range", "fuse_check_timeout", "fuse_uring_cmd",
                          "iomap_file_buffered_write", "fuse_write_end"},
                         {"fs.fuse.default_request_timeout": "0",
                          "fs.fuse.max_request_timeout": "0", "fs.fuse.max_pages_limit": "256",
                          "fuse.enable_uring": "N"}, {"folio_order_max": 0}, temp_page=False)
    assert {k: s for k, (s, _) in new.items()} == {
        "iomap_buffered_write": "no", "iomap_writeback": "yes", "large_folios": "no",
        "request_timeout": "yes",
        "max_pages_limit": "yes", "io_uring": "yes", "sync_no_wait": "yes",
        "wb_thresh_floor": "yes", "bg_wb_thresh": "yes"}
    assert new["io_uring"][1] == "symbols: fuse_uring_cmd; knobs: fuse.enable_uring=N"
    assert new["large_folios"][1].startswith("measured: largest folio order 0")
    assert new["sync_no_wait"][1].startswith("version only: 7.2 >= 7.0")
    assert new["bg_wb_thresh"][1].startswith("version only: 7.2 >= 7.1")
    # 6.1 has fuse_iomap_begin (DAX) and iomap_file_buffered_write (for XFS): no evidence; its
    # aops' write_begin is
    old = features.probe("6.1.0-44-amd64", {"fuse_iomap_begin", "iomap_file_buffered_write",
                                            "fuse_write_begin", "fuse_writepages_fill"},
                         {}, None, temp_page=True)
    assert old["iomap_buffered_write"] == ("no", "symbols: iomap_file_buffered_write; "
                                                 "still fuse_write_begin")
    assert old["iomap_writeback"] == ("no", "symbols: no fuse_iomap_writeback_range; "
                                            "still fuse_writepages_fill")
    assert old["max_pages_limit"][0] == "no" and old["large_folios"][0] == "?"
    assert old["sync_no_wait"][0] == "n/a" and old["wb_thresh_floor"][0] == "no"
    # sync(2) measured on a stuck server: only on a kernel without the temp page does it tell
    assert features.probe("6.17", measured={"sync_class": "waited"})["sync_no_wait"] == (
        "no", "measured: sync(2) waited while the server held every WRITE")
    assert features.probe("7.2", measured={"sync_class": "returned"})["sync_no_wait"][0] == "yes"
    assert features.probe("6.1", measured={"sync_class": "returned"},
                          temp_page=True)["sync_no_wait"][0] == "n/a"
    # where the flusher started its passes, and a fresh bdi's threshold, override the version
    m = features.probe("7.2", measured={"bg_start_share": 0.74, "thresh_at_start": 0})
    assert m["bg_wb_thresh"][0] == "no" and m["bg_wb_thresh"][1].startswith(
        "measured: flusher passes started at a median 74% of the bdi's limit")
    assert m["wb_thresh_floor"][0] == "no"
    # a stable series with the backport, and symbols that disagree with the knobs
    assert features.probe("6.18.44", None, None)["sync_no_wait"][0] == "yes"
    odd = features.probe("6.14", {"fuse_check_timeout"}, {})["request_timeout"]
    assert odd[0] == "?" and "; but knobs: no " in odd[1]


def test_trace_measures_find_the_passes_and_a_fresh_bdis_threshold():
    # kB, as debugfs prints them; state bit 1 (WB_writeback_running) rises twice
    lines = ["%d state=%d BdiReclaimable=%d BdiWriteback=%d BdiDirtyThresh=%d" % row for row in (
        (1, 0, 400, 0, 0), (2, 0, 2400, 0, 8000), (3, 2, 2000, 400, 8000),
        (4, 0, 3600, 0, 8000), (5, 2, 3000, 600, 8000))]
    m = features.trace_measures("\n".join(lines))
    assert m == {"thresh_at_start": 0, "bg_start_share": pytest.approx((0.3 + 0.45) / 2)}
    assert features.trace_measures("1 nr_dirty=5\n") == {}


def test_catalog_records_every_feature_for_every_kernel_with_its_evidence():
    kinds = ("symbols:", "knobs:", "measured:", "version only:", "temp-page kernel:")
    for k in catalog.KERNELS:
        assert [key for key, _, _ in k.features] == [f.key for f in features.FEATURES], k.name
        for key, status, evidence in k.features:
            assert status in features.STATUSES and evidence.startswith(kinds), (k.name, key)
    assert catalog.get("6.1").feature("iomap_writeback")[0] == "no"
    assert catalog.get("7.2").feature("iomap_writeback")[0] == "yes"
    assert catalog.get("7.3").feature("large_folios")[0] == "no"
    with pytest.raises(ValueError, match="'nope' not recorded for kernel 6.1"):
        catalog.get("6.1").feature("nope")


def _folio_run(kernel, bs, seed, ppr, orders, mib):
    return Run(f"kernel-{kernel}", "seq-write", {"block_size": bs}, seed, "mount",
               {"pages_per_request": ppr, "app_throughput_bps": mib * MiB},
               meta={"kernel_name": kernel, "folio_orders": orders})


def test_the_folio_table_pools_writes_and_folios_per_kernel_and_block_size():
    runs = [_folio_run("7.2", MiB, 0, {32: 3, 1: 1}, {"0": 100}, 20.0),
            _folio_run("7.2", MiB, 1, {32: 2}, {"0": 100}, 22.0),
            _folio_run("7.3", MiB, 0, {256: 1, 32: 1}, {"0": 10, "4": 10}, 33.0),
            _folio_run("7.2", 128 << 10, 0, {8: 5}, {"0": 10}, 10.0)]
    rows = folios.table(runs)
    assert [(r["kernel"], r["block_size"], r["runs"]) for r in rows] == [
        ("7.2", MiB, 2), ("7.2", 128 << 10, 1), ("7.3", MiB, 1)]
    a = rows[0]
    assert a["pages_per_write"] == {1: 1, 32: 5} and a["pages_per_write_median"] == 32
    assert a["folio_orders"] == {"0": 200} and a["folio_pages_mean"] == 1.0
    assert a["app_mib_s_median"] == pytest.approx(21.0)
    assert rows[2]["pages_per_write_median"] == 32           # the lower middle of two
    assert rows[2]["folio_pages_mean"] == pytest.approx((10 + 160) / 20)
    assert folios.ratios(rows, "7.3", "7.2") == {MiB: pytest.approx(33 / 21)}
    text = folios.render(rows, "7.3", "7.2")
    assert folios.pair_ratios(rows, "7.3", "7.2") == {MiB: [pytest.approx(33 / 20)]}
    assert "app throughput 7.3 / 7.2 at 1024 KiB: 1.571 (medians); per pair: median 1.650, " \
           "1.650..1.650 over 1 pairs" in text
    assert len(text.splitlines()) == 1 + 3 + 1


def test_cli_features_shows_the_catalog_and_flags_kept_guest_files_that_disagree(tmp_path):
    import json
    p = _cli("kernels", "features", "--no-host", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["6.1"]["iomap_writeback"]["status"] == catalog.get("6.1").feature(
        "iomap_writeback")[0]
    assert doc["notes"] == []
    # a kept 6.1 guest whose kallsyms shows iomap writeback: the catalog says no, so it is flagged
    d = tmp_path / "6.1-seq-write-0-0"
    d.mkdir()
    (d / "info").write_text("kernel=6.1.0-44-amd64\n")
    (d / "fuse_symbols").write_text("fuse_iomap_writeback_range\nfuse_writepages\n")
    (d / "fuse_knobs").write_text("/sys/module/fuse/parameters/max_user_bgreq=1274\n")
    (d / "folio_orders").write_text("-1 4096\n")
    p = _cli("kernels", "features", "--no-host", "--keep", str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert "NOTE: 6.1 iomap_writeback: the catalog says no, the kept guest files say yes" in p.stdout
    assert "6.1 (kept)" in p.stdout.splitlines()[0]


# ---- the request timeout (bench.real.kernels.timeout) ----

from bench.real.kernels import timeout as ktimeout  # noqa: E402

S = 1_000_000_000


def test_a_timeout_goes_to_the_knob_before_the_server_mounts_and_the_runner_goes_on():
    text = initramfs.init_script(initramfs.GuestJob(("--threads=16",), False, request_timeout_s=10,
                                                    fuse_trace=True))
    knob = text.index(f"echo 10 > {initramfs.TIMEOUT_KNOB}")
    assert f"[ -f {initramfs.TIMEOUT_KNOB} ] ||\n    fail" in text     # a kernel without it: one line
    assert knob < text.index("export FWB_GO_ON_OUT=/out/failed_calls") < text.index("/fwb_fuse_server")
    # the request trace starts before the mount (FUSE_INIT) and is saved once the server is gone
    inst = text.index(f"instances/{initramfs.FUSE_TRACE_INSTANCE}")
    assert inst < text.index("/fwb_fuse_server") < text.index("wait $server") < \
        text.index("/out/fuse_trace") < text.index("\nsend\n")
    assert "echo mono > " in text and "function.function == fuse_check_timeout" in text
    plain = initramfs.init_script(initramfs.GuestJob(("--threads=16",), False))
    assert initramfs.TIMEOUT_KNOB not in plain and "FWB_GO_ON_OUT" not in plain
    assert "fuse_request_end" not in plain


def test_a_timeout_is_whole_seconds_and_runs_only_where_the_kernel_has_one():
    assert ktimeout.asked({"request_timeout_ns": 10 * S}, {}) == 10 * S
    p = {"request_timeout_ns": 3 * S}
    assert ktimeout.asked({"request_timeout_ns": 10 * S}, p) == 3 * S and p == {}   # popped
    for bad in (1_500_000_000, -S, 65536 * S, True, "10"):
        with pytest.raises(ValueError, match="request_timeout_ns"):
            ktimeout.asked({}, {"request_timeout_ns": bad})
    for name in ("7.2", "7.3"):
        assert ktimeout.effective(catalog.get(name), 10 * S) == (10 * S, "")
    for name in ("6.1", "6.12"):
        t, note = ktimeout.effective(catalog.get(name), 10 * S)
        assert t == 0 and f"kernel {name} has no FUSE request timeout" in note
        assert ktimeout.effective(catalog.get(name), 0) == (0, "")
    # the simulated side of a kernel without one drops the workload's timeout too
    assert ktimeout.sim_params_for(catalog.get("6.1"), "stuck-server-timeout", 0, {}) == \
        {"request_timeout_ns": 0}
    assert ktimeout.sim_params_for(catalog.get("7.2"), "stuck-server-timeout", 0, {}) == {}
    assert ktimeout.sim_params_for(catalog.get("6.1"), "stuck-server-long", 0, {}) == {}
    # and a timeout given as a parameter reaches the simulator as the model's parameter
    _, sp = kvalidate.sim_side("stuck-server-long", 0, {"request_timeout_ns": 5 * S})
    assert sp["request_timeout_ns"] == 5 * S


_TRACE = """\
# tracer: nop
 fwb_fuse_server-137 [001] ...2.   12.805372: fuse_request_send: connection 26 req 2 opcode 26 (FUSE_INIT) len 104
 fwb_fuse_server-137 [000] .....   12.806001: fuse_request_end: connection 26 req 2 len 80 error 0
 kworker/u8:1-40     [000] .....   15.600000: fuse_request_send: connection 26 req 8 opcode 16 (FUSE_WRITE) len 131152
 kworker/1:1-34      [001] .....   29.800000: workqueue_execute_start: work struct 00000000a1b2c3d4: function fuse_check_timeout
 kworker/1:1-34      [001] .....   44.900000: workqueue_execute_start: work struct 00000000a1b2c3d4: function fuse_check_timeout
 kworker/1:1-34      [001] .....   44.900100: fuse_request_end: connection 26 req 8 len 0 error -103
 kworker/1:1-34      [001] .....   44.900200: fuse_request_send: connection 26 req 10 opcode 16 (FUSE_WRITE) len 131152
 kworker/1:1-34      [001] .....   44.900300: fuse_request_end: connection 26 req 10 len 0 error -103
"""


def test_the_request_trace_and_failed_calls_are_parsed_and_bad_lines_refused():
    tr = ktimeout.read_fuse_trace(_TRACE)
    assert len(tr) == 6 and tr["end"].sum() == 3
    assert tr["t_ns"][0] == 12_805_372_000 and tr["opcode"][0] == ktimeout.FUSE_INIT_OPCODE
    assert list(tr["error"][tr["end"]]) == [0, -103, -103] and tr["unique"][-1] == 10
    assert ktimeout.check_times(_TRACE) == [29_800_000_000, 44_900_000_000]
    assert ktimeout.check_times("no checks here") is None
    fc = ktimeout.read_failed_calls("3 103 100 200\n4 107 300 400\n")
    assert fc.shape == (2, 4) and fc[1].tolist() == [4, 107, 300, 400]
    assert ktimeout.read_failed_calls("").shape == (0, 4)
    with pytest.raises(ValueError, match="failed_calls line 2"):
        ktimeout.read_failed_calls("3 103 100 200\n4 107\n")
    # a call that failed returned: its time to the failure, for a blocking pattern
    lat = ktimeout.ended_latency(np.array([0, 50, 300]), np.array([10, -1, -1]),
                                 {"failed_calls": b"1 103 50 200\n"})
    assert lat.tolist() == [10, 150, -1]
    assert ktimeout.ended_latency(np.array([0]), np.array([-1]), {}).tolist() == [-1]


def test_the_abort_a_guest_saw_from_its_trace_samples_failed_calls_and_log():
    ops = np.zeros(3, OP_DTYPE)
    ops["op"] = [WRITE, FSYNC, WRITE]
    ops["time"] = [0, S, 2 * S]
    start = np.array([0, S, 30 * S], np.int64)
    lat = np.array([5_000_000, -1, -1], np.int64)
    t0 = 14 * S
    samples = np.zeros(4, mount.SAMPLE_DTYPE)
    samples["time_ns"] = [S // 2, 2 * S, 30 * S, 31 * S]
    samples["fuse_waiting"] = [0, 20, 0, 0]
    log = np.zeros(2, mount.LOG_DTYPE)
    log["kind"] = mount.KIND_WRITE
    log["t_recv_ns"] = [t0 + S // 2, t0 + 3 * S // 2]
    files = {"fuse_trace": _TRACE.encode(), "failed_calls": b"1 103 1000000000 30900000000\n"
                                                             b"2 107 30900000100 30900000200\n"}
    e = ktimeout.evidence(files, ops, start, lat, samples, log, t0, (S, 40 * S), 10 * S)
    assert e["fuse_init_ns"] == -1_194_628_000 and e["abort_ns"] == 30_900_100_000
    assert e["aborted_requests"] == 2 and e["failed_requests"] == 2 and e["requests_sent"] == 3
    assert e["checks_ns"] == [15_800_000_000, 30_900_000_000]
    # the grid from FUSE_INIT: checks at 13.8 s (the oldest request 12.8 s old: due) ...
    assert e["expected_abort_ns"] == -1_194_628_000 + 15 * S
    assert e["waiting_zero_ns"] == 30 * S            # in the stall, after 20 were waiting
    assert e["failed_calls"] == 2 and e["failed_errnos"] == {"ECONNABORTED": 1, "ENOTCONN": 1}
    assert e["first_failed"] == {"row": 1, "op": FSYNC, "errno": "ECONNABORTED",
                                 "end_ns": 30_900_000_000}
    assert e["fsyncs"] == [{"row": 1, "start_ns": S, "end_ns": 30_900_000_000,
                            "errno": "ECONNABORTED"}]
    assert e["writes_received"] == 2 and e["writes_received_in_stall"] == 1
    text = ktimeout.render("7.2", [e], [])
    assert "abort 30.90 s" in text and "2 calls failed" in text


def test_the_simulators_abort_is_found_in_both_engines_and_absent_without_a_timeout(monkeypatch):
    from bench.sim import machine
    monkeypatch.setenv(machine.ENV, "qemu-7.2-2cpu-4g")
    c, py = [ktimeout.sim_evidence("iomap-blocks", "stuck-server-timeout", 0, {}, e)
             for e in ("c", "python")]
    long_ = ktimeout.sim_evidence("iomap-blocks", "stuck-server-long", 0, {}, "c")
    assert c == {**py, "engine": "c"}
    assert c["request_timeout_s"] == 10 and c["aborted_calls"] > 0
    # the timeout is raised to 15 s (fuse_init_server_timeout), so the first check, 15 s after
    # the first call, finds the requests held since 1 s 14 s old: the second, at 30 s, aborts
    assert 30 * S <= c["abort_ns"] <= 30 * S + 2_000_000
    # the fsync waiting on the held WRITEs returns at the abort (the series is 1 ms apart)
    assert 0 <= c["abort_ns"] - c["fsyncs"][0]["end_ns"] <= 1_000_000
    assert long_["abort_ns"] is None and long_["aborted_calls"] == 0
    assert long_["fsyncs"][0]["end_ns"] >= 41 * S       # waits the 40 s stall out


@pytest.mark.skipif(not (RUNNER_OK and mount.available()[0]), reason="no guest runner or no FUSE")
def test_the_guest_runner_goes_on_after_the_connection_is_aborted(tmp_path):
    """On this machine's FUSE: a server holding every WRITE, the connection aborted through
    fusectl while the runner's fsync waits; the runner records that fsync and runs the rest."""
    import threading
    import time
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    srv = subprocess.Popen([str(mount.SERVER), str(mnt), "-f", f"--log={tmp_path / 'w.log'}",
                            "--stall=0:60000000000"], stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        for _ in range(500):
            if os.path.ismount(mnt):
                break
            time.sleep(0.01)
        assert os.path.ismount(mnt)
        conn = os.minor(os.stat(mnt).st_dev)
        ops = np.zeros(4, OP_DTYPE)
        rows = [(0, WRITE, 0, MiB), (0, FSYNC, 0, 0), (2 * S, WRITE, MiB, MiB), (2 * S, FSYNC, 0, 0)]
        for r, (t, op, off, ln) in zip(ops, rows):
            r["time"], r["op"], r["offset"], r["length"] = t, op, off, ln
        (tmp_path / "ops.bin").write_bytes(guest.op_file(ops, [0], np.zeros(1, np.int64), 1, 0,
                                                         10_000_000))
        aborter = threading.Timer(1.0, lambda: Path(
            f"/sys/fs/fuse/connections/{conn}/abort").write_text("1"))
        aborter.start()
        p = subprocess.run([str(guest.GUEST_RUNNER), str(tmp_path / "ops.bin"),
                            str(tmp_path / "res.bin"), str(mnt)], capture_output=True, text=True,
                           env={**os.environ, "FWB_GO_ON_OUT": str(tmp_path / "failed")},
                           timeout=60)
        aborter.join()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        srv.kill()
        srv.wait(10)
    assert p.returncode == 0, p.stderr
    head, start, lat, _, _ = guest.read_result((tmp_path / "res.bin").read_bytes(), 4)
    fc = ktimeout.read_failed_calls((tmp_path / "failed").read_bytes())
    lost = {__import__("errno").ENOTCONN, __import__("errno").ECONNABORTED,
            __import__("errno").EIO}
    assert int(head["rc"]) == 0 and int(head["failed"]) == len(fc) >= 1
    assert int(head["err_row"]) == 1 and fc[0][0] == 1 and set(fc[:, 1]) <= lost
    assert 0.9 * S < fc[0][3] < 1.9 * S                 # the fsync ended at the abort
    assert (start >= 0).all() and lat[0] >= 0           # every row ran; the failed ones untimed
    assert set(np.flatnonzero(lat < 0)) == set(fc[:, 0].tolist())
    assert start[2] >= 2 * S                            # the rest kept its schedule
