"""The guest's initramfs: a newc cpio archive written in Python (no cpio binary needed).

The archive holds busybox (static, from Debian's busybox-static), the FUSE server and the op
runner (both static, built by setup.py next to each other), fuse.ko when the kernel has FUSE as
a module, the op file of the run and /init, a busybox sh script (``init_script``).  The kernel
unpacks it into its rootfs and runs /init as pid 1.

newc: each entry is a 110-byte ASCII header ("070701" and 13 fields of 8 hex digits), the
NUL-terminated name padded to a multiple of 4 bytes (counting the header), then the data padded
to 4; the archive ends with an entry named "TRAILER!!!".
"""
from __future__ import annotations

import lzma
import os
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

NEWC_MAGIC = b"070701"
TRAILER = "TRAILER!!!"
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")

# Lines the guest prints on its console (ttyS0); boot.py watches for them.
MARK_INIT = "FWB-INIT"
MARK_DONE = "FWB-DONE"
MARK_FAIL = "FWB-FAIL"
# Framing of the files the guest sends back on its second serial port (ttyS1): per file a line
# "FWBFILE name size sha256" and its bytes, then "FWBEND".
FILE_HEADER = b"FWBFILE "
END_MARK = b"FWBEND\n"


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


class CpioWriter:
    """Writes a newc archive entry by entry; ``close()`` adds the trailer."""

    def __init__(self, f):
        self.f = f
        self.ino = 1
        self.closed = False

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
               nlink: int = 1) -> None:
        if self.closed:
            raise ValueError("cpio: archive already closed")
        name_b = name.lstrip("/").encode() + b"\0"
        if name == TRAILER:
            ino = 0
        else:
            ino, self.ino = self.ino, self.ino + 1
        fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0)
        head = NEWC_MAGIC + b"".join(b"%08X" % v for v in fields)
        self.f.write(head + name_b + _pad4(len(head) + len(name_b)))
        self.f.write(data + _pad4(len(data)))

    def directory(self, name: str, perm: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | perm, nlink=2)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | perm, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def close(self) -> None:
        if not self.closed:
            self._entry(TRAILER, 0)
            self.closed = True


def read_newc(data: bytes) -> list[tuple[str, int, bytes]]:
    """(name, mode, data) of every entry before the trailer: the reader the tests check against."""
    out, pos = [], 0
    while True:
        head = data[pos:pos + 110]
        if len(head) < 110 or head[:6] != NEWC_MAGIC:
            raise ValueError(f"cpio: bad header at byte {pos}")
        fields = [int(head[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_end = pos + 110 + namesize
        name = data[pos + 110:name_end - 1].decode()
        pos = name_end + (-name_end % 4)
        body = data[pos:pos + size]
        pos += size + (-size % 4)
        if name == TRAILER:
            return out
        out.append((name, mode, body))


def busybox_path() -> str:
    """A static busybox on this machine (Debian: busybox-static); RuntimeError if none."""
    for p in BUSYBOX_PATHS:
        if os.access(p, os.X_OK) and _is_static(p):
            return p
    raise RuntimeError("no static busybox: apt-get install busybox-static")


def _is_static(path: str) -> bool:
    """True for an ELF file without a PT_INTERP program header (no dynamic loader needed)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff = int.from_bytes(head[32:40], "little")
        phentsize = int.from_bytes(head[54:56], "little")
        phnum = int.from_bytes(head[56:58], "little")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(int.from_bytes(table[i * phentsize:i * phentsize + 4], "little") != 3
               for i in range(phnum))


def module_bytes(path: str | os.PathLike) -> bytes:
    """A kernel module's bytes, decompressed when it is a .ko.xz (busybox insmod wants plain)."""
    data = Path(path).read_bytes()
    return lzma.decompress(data) if str(path).endswith(".xz") else data


@dataclass(frozen=True, slots=True)
class GuestJob:
    """What /init does: start the server with these options, run the op file, send results."""
    server_args: tuple[str, ...]      # the server's options (bench.real.mount.ServerOptions.argv)
    has_fuse_module: bool             # insmod /fuse.ko first
    dio_dir: str = "/tmp"
    epoch_lead_ns: int = 0            # > 0: fix the run's time 0 this long after the server
                                      # starts (stall windows are times of the run)
    dio_kb: int = 0                   # > 0: the workload reads this much with O_DIRECT
    has_brd_module: bool = False      # /brd.ko: a RAM disk when /tmp has no O_DIRECT
    trace: str = ""                   # the runner's FWB_TRACE (files read at every sample,
                                      # csrc/guest/fwb_guest_runner.c); debugfs is mounted for it
    cpu_probe: bool = False           # snapshot every task's CPU time (CPU_FILES) before an
                                      # idle second, before the run and after it
    folio_trace: bool = False         # trace filemap:mm_filemap_add_to_page_cache on the mount
                                      # over the run: the orders of the folios added (FOLIO_*)
    request_timeout_s: int = 0        # > 0: fs.fuse.default_request_timeout before the mount
                                      # (a kernel without the knob fails the guest), and the
                                      # runner goes on after a lost connection (FWB_GO_ON_OUT)
    fuse_trace: bool = False          # trace fuse:fuse_request_send/_end from before the mount
                                      # (FUSE_TRACE_*): FUSE_INIT, and the requests an abort ends


# What a CPU snapshot reads (grep -H: each line prefixed with its file): every task's stat and
# schedstat (kworkers are processes of their own; the server's threads are under task/), and the
# machine's /proc/stat totals.
CPU_FILES = "/proc/[0-9]*/stat /proc/[0-9]*/schedstat /proc/$server/task/*/stat " \
            "/proc/$server/task/*/schedstat /proc/stat /proc/uptime"
IDLE_S = 1

# The page-cache folios of the run (bench.real.kernels.folios reads what these leave in /out):
# the tracepoint filemap:mm_filemap_add_to_page_cache, filtered to the mount's s_dev (the
# kernel's dev_t: major << 20 | minor, include/linux/kdev_t.h), enabled just around the runner.
# Its TP_printk has carried "order=%u" since the folio conversion of the event (6.1 has it too;
# where it is absent a folio counts as order -1, unknown).  The buffer is read once at the end
# and reduced in the guest to "order count" lines (folio_orders); folio_stats keeps each CPU's
# overrun count (lost events) and folio_format the event's format file.
FOLIO_EVENT = "events/filemap/mm_filemap_add_to_page_cache"
FOLIO_BUFFER_KB = 16384               # per CPU: ~16 K events of a 64 MiB order-0 write fit in 2 MB
FOLIO_AWK = (r"!/^#/ && NF { o = -1; if (match($0, /order=[0-9]+/)) "
             r"o = substr($0, RSTART + 6, RLENGTH - 6); n[o]++ } "
             r"END { for (o in n) print o, n[o] }")
# The FUSE request tracepoints (fs/fuse/fuse_trace.h, upstream since 6.16; their TP_printk:
# "connection %u req %llu opcode %u (%s) len %u ..." and "connection %u req %llu len %u error
# %d"), in a trace instance of their own (the folio trace clears the main buffer) on the mono
# clock (CLOCK_MONOTONIC, as the runner's times), from before the server mounts to its exit;
# bench.real.kernels.timeout reads /out/fuse_trace.  Beside them, when the kernel can filter
# on a function pointer (.function), workqueue:workqueue_execute_start of fuse_check_timeout:
# when the connection's checks ran.
FUSE_TRACE_INSTANCE = "fwb-fuse"
FUSE_TRACE_EVENTS = ("fuse_request_send", "fuse_request_end")
FUSE_TRACE_BUFFER_KB = 4096
# The knob a run's request timeout goes to (fs/fuse/sysctl.c; inode.c process_init_reply ->
# init_server_timeout reads it at FUSE_INIT when the server asked for no timeout, as libfuse
# 3.14 cannot).
TIMEOUT_KNOB = "/proc/sys/fs/fuse/default_request_timeout"

# What the kernel says of its FUSE (bench.real.kernels.features reads them): the fs.fuse sysctls,
# the fuse module's parameters, and the names of its fuse_* and iomap_* functions (kallsyms).
PROBE_SYMBOLS = r" [tTwW] (fuse_|iomap_)"


def init_script(job: GuestJob) -> str:
    """The guest's /init: a busybox sh script.  Everything it learns goes to /out, and /out goes
    back to the host on ttyS1 before it powers off; progress and failures go to the console."""
    server = " ".join(shlex.quote(a) for a in job.server_args)
    insmod = "insmod /fuse.ko || fail 'insmod fuse.ko'" if job.has_fuse_module else ":"
    # The O_DIRECT source: job.dio_dir if its filesystem takes O_DIRECT (tmpfs from 6.6 on), else
    # a brd RAM disk the runner writes to directly.
    dio = f"dio={shlex.quote(job.dio_dir)}"
    if job.dio_kb > 0:
        dio += f"""
dd if=/dev/zero of="$dio/fwb-odirect" bs=4096 count=1 oflag=direct 2>/dev/null
direct=$?
rm -f "$dio/fwb-odirect"
if [ $direct -ne 0 ]; then
    [ -f /brd.ko ] || fail "no O_DIRECT on $dio and no brd.ko for a RAM disk"
    insmod /brd.ko rd_nr=1 rd_size={int(job.dio_kb)} || fail 'insmod brd.ko'
    dio=/dev/ram0
fi
info dio_source "$dio"
"""
    trace = ""
    if job.trace:
        trace = ("mount -t debugfs none /sys/kernel/debug 2>/dev/null\n"
                 f"export FWB_TRACE={shlex.quote(job.trace)} FWB_TRACE_OUT=/out/trace.txt")
    folio_on = folio_off = folio_save = ":"
    if job.folio_trace:
        folio_on = f"""mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
tr=/sys/kernel/tracing
ev=$tr/{FOLIO_EVENT}
if [ -d "$ev" ]; then
    cp "$ev/format" /out/folio_format
    echo {FOLIO_BUFFER_KB} > "$tr/buffer_size_kb"
    echo "s_dev == $(( ${{dev%%:*}} * 1048576 + ${{dev##*:}} ))" > "$ev/filter" ||
        info folio_filter failed
    echo > "$tr/trace"
    echo 1 > "$ev/enable" && info folio_trace on
else
    info folio_trace "no $ev"
fi"""
        folio_off = '[ -d "$ev" ] && echo 0 > "$ev/enable"'
        # read once the run's times and CPU snapshots are taken: the reduction is not the run's
        folio_save = f"""if [ -d "$ev" ]; then
    grep -H -E '^(entries|overrun):' "$tr"/per_cpu/cpu*/stats > /out/folio_stats
    awk '{FOLIO_AWK}' "$tr/trace" > /out/folio_orders
fi"""
    timeout = ":"
    if job.request_timeout_s > 0:
        t = int(job.request_timeout_s)
        timeout = f"""[ -f {TIMEOUT_KNOB} ] ||
    fail 'no {TIMEOUT_KNOB}: this kernel has no FUSE request timeout'
echo {t} > {TIMEOUT_KNOB} || fail 'cannot write {t} to {TIMEOUT_KNOB}'
info request_timeout_s "$(cat {TIMEOUT_KNOB})"
export FWB_GO_ON_OUT=/out/failed_calls"""
    fuse_on = fuse_save = ":"
    if job.fuse_trace:
        ft_dir = f"/sys/kernel/tracing/instances/{FUSE_TRACE_INSTANCE}"
        enable = "\n".join(f'    echo 1 > "$ft/events/fuse/{e}/enable" || info fuse_trace "no {e}"'
                           for e in FUSE_TRACE_EVENTS)
        fuse_on = f"""mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
ft={ft_dir}
if [ -d /sys/kernel/tracing/events/fuse/{FUSE_TRACE_EVENTS[1]} ] && mkdir "$ft" 2>/dev/null; then
    echo mono > "$ft/trace_clock" || info fuse_trace "no mono trace clock"
    echo {FUSE_TRACE_BUFFER_KB} > "$ft/buffer_size_kb"
{enable}
    wq=$ft/events/workqueue/workqueue_execute_start
    if [ -d "$wq" ] && echo 'function.function == fuse_check_timeout' > "$wq/filter" 2>/dev/null
    then
        echo 1 > "$wq/enable" && info fuse_check_trace on
    else
        info fuse_check_trace "no function filter on workqueue_execute_start"
    fi
    info fuse_trace on
else
    ft=
    info fuse_trace "no events/fuse in this kernel"
fi"""
        fuse_save = """if [ -n "$ft" ]; then
    for e in $ft/events/fuse/*/enable $ft/events/workqueue/*/enable; do echo 0 > "$e"; done
    cat "$ft/trace" > /out/fuse_trace
    grep -H -E '^(entries|overrun):' "$ft"/per_cpu/cpu*/stats > /out/fuse_trace_stats
fi"""
    cpu_idle = cpu_before = cpu_after = ":"
    if job.cpu_probe:
        snap = f"grep -H '' {CPU_FILES} 2>/dev/null > /out/cpu_"
        cpu_idle = f"{snap}idle\nsleep {IDLE_S}"
        cpu_before, cpu_after = snap + "before", snap + "after"
    # CLOCK_MONOTONIC from /proc/uptime (boot time: the same clock in a guest never suspended)
    epoch = (f"""epoch=$(awk '{{printf "%.0f", $1 * 1e9 + {int(job.epoch_lead_ns)}}}' /proc/uptime)"""
             if job.epoch_lead_ns > 0 else "epoch=")
    return f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "{MARK_INIT} $(cut -d' ' -f1 /proc/uptime)"
mkdir -p /out /mnt /tmp
send() {{
    stty -F /dev/ttyS1 raw -echo 2>/dev/null
    {{
        for f in /out/*; do
            [ -f "$f" ] || continue
            echo "FWBFILE ${{f##*/}} $(stat -c %s "$f") $(sha256sum "$f" | cut -d' ' -f1)"
            cat "$f"
        done
        echo FWBEND
    }} > /dev/ttyS1
}}
fail() {{
    echo "$1" > /out/failure
    send
    echo "{MARK_FAIL} $1"
    poweroff -f
}}
info() {{ echo "$1=$2" >> /out/info; }}
info uptime_init_s "$(cut -d' ' -f1 /proc/uptime)"
info kernel "$(uname -r)"
info kernel_build "$(uname -v)"
info cmdline "$(cat /proc/cmdline)"
info clocksource_init "$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
info cpus "$(nproc)"
info mem_total_kb "$(awk '/^MemTotal:/ {{print $2}}' /proc/meminfo)"
for k in dirty_ratio dirty_background_ratio dirty_bytes dirty_background_bytes dirty_expire_centisecs dirty_writeback_centisecs; do
    info "vm_$k" "$(cat /proc/sys/vm/$k)"
done
{insmod}
grep -qw fuse /proc/filesystems || fail 'no fuse filesystem in this kernel'
for f in /proc/sys/fs/fuse/* /sys/module/fuse/parameters/*; do
    [ -f "$f" ] && echo "$f=$(cat "$f" 2>/dev/null)" >> /out/fuse_knobs
done
grep -E '{PROBE_SYMBOLS}' /proc/kallsyms | awk '{{print $3}}' | sort -u > /out/fuse_symbols
{dio}
mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null
{timeout}
{fuse_on}
{epoch}
/fwb_fuse_server /mnt -f -o fsname=fwb,subtype=fwb --log=/out/server.log {server} ${{epoch:+--epoch=$epoch}} 2> /out/server.err &
server=$!
n=0
until awk '$5 == "/mnt" {{found=1}} END {{exit !found}}' /proc/self/mountinfo; do
    kill -0 $server 2>/dev/null || fail "server exited before mounting: $(tail -n1 /out/server.err)"
    n=$((n + 1))
    [ $n -gt 2000 ] && fail 'server did not mount within 20 s'
    usleep 10000
done
dev=$(awk '$5 == "/mnt" {{print $3}}' /proc/self/mountinfo)
info bdi "$dev"
for f in /sys/class/bdi/$dev/*; do
    [ -f "$f" ] && [ -r "$f" ] && info "bdi_${{f##*/}}" "$(cat "$f" 2>/dev/null)"
done
{trace}
{cpu_idle}
{cpu_before}
{folio_on}
info uptime_run_start_s "$(cut -d' ' -f1 /proc/uptime)"
/fwb_guest_runner /ops.bin /out/result.bin /mnt "$dio" $epoch 2> /out/runner.err
rc=$?
{folio_off}
info runner_rc "$rc"
info uptime_run_end_s "$(cut -d' ' -f1 /proc/uptime)"
{cpu_after}
{folio_save}
grep -E '^(Dirty|Writeback|WritebackTmp|MemTotal|MemFree):' /proc/meminfo > /out/meminfo_end
umount /mnt || fail "umount: $(tail -n1 /out/server.err)"
wait $server
info server_rc "$?"
info uptime_server_exit_s "$(cut -d' ' -f1 /proc/uptime)"
{fuse_save}
info clocksource_end "$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
dmesg > /out/dmesg
send
echo "{MARK_DONE}"
poweroff -f
"""


def build(out_path: str | os.PathLike, *, server: str | os.PathLike, runner: str | os.PathLike,
          ops_file: bytes, job: GuestJob, fuse_module: str | os.PathLike | None = None,
          brd_module: str | os.PathLike | None = None, busybox: str | None = None) -> int:
    """Write the initramfs to `out_path`; returns its size in bytes."""
    for what, p in (("server", server), ("runner", runner)):
        if not os.access(p, os.X_OK):
            raise RuntimeError(f"guest {what} {p} missing: rerun `pip install -e .`")
        if not _is_static(p):
            raise RuntimeError(f"guest {what} {p} is not static: the guest has no shared libraries")
    if job.has_fuse_module != (fuse_module is not None):
        raise ValueError("initramfs: has_fuse_module and fuse_module disagree")
    if job.has_brd_module != (brd_module is not None):
        raise ValueError("initramfs: has_brd_module and brd_module disagree")
    bb = busybox or busybox_path()
    with open(out_path, "wb") as f:
        w = CpioWriter(f)
        for d in ("bin", "dev", "proc", "sys", "tmp", "out", "mnt"):
            w.directory(d)
        w.char_device("dev/console", 5, 1)
        w.char_device("dev/null", 1, 3, 0o666)
        w.file("bin/busybox", Path(bb).read_bytes(), 0o755)
        w.symlink("bin/sh", "busybox")
        w.file("fwb_fuse_server", Path(server).read_bytes(), 0o755)
        w.file("fwb_guest_runner", Path(runner).read_bytes(), 0o755)
        if fuse_module is not None:
            w.file("fuse.ko", module_bytes(fuse_module))
        if brd_module is not None:
            w.file("brd.ko", module_bytes(brd_module))
        w.file("ops.bin", ops_file)
        w.file("init", init_script(job).encode(), 0o755)
        w.close()
        return f.tell()
