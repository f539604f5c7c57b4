"""Boot a kernel under qemu-system-x86_64 (TCG) with an initramfs and collect what it sends back.

The guest's console (ttyS0) comes to us on qemu's stdout; we watch it for /init's marks
(bench.real.kernels.initramfs MARK_*) and for an Oops or a panic.  The guest's results come back
on a second serial port (ttyS1) that qemu writes to a file; ``parse_serial`` splits it into files.
With ``panic=-1`` and ``-no-reboot`` a panicking guest ends qemu at once; a panic or Oops is
retried (7.3-rc7 panicked once in 40 boots here), a failure reported by /init is not.  qemu is
killed on every exit path: a normal end, a timeout, an exception or an interrupt.

TCG because this machine's /dev/kvm refuses stock kernels; ``tsc=reliable`` because with two
CPUs 6.1 otherwise decides the TSCs are unsynchronised and runs on the slow (emulated) HPET.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ... import interrupt
from .initramfs import END_MARK, FILE_HEADER, MARK_DONE, MARK_FAIL, MARK_INIT

QEMU = "qemu-system-x86_64"
CMDLINE = "console=ttyS0 tsc=reliable panic=-1 quiet"
MEM_MB = 4096
SMP = 2
# Console lines that mean the kernel broke (retry), not that the run failed.
_BROKEN = re.compile(r"Kernel panic|\bOops\b|\bBUG: |general protection fault|"
                     r"\bint3: |Unable to handle kernel|kernel BUG at")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1bc")


def qemu_command(vmlinuz: str, initrd: str, serial_out: str, mem_mb: int = MEM_MB,
                 smp: int = SMP, append: str = CMDLINE) -> list[str]:
    return [QEMU, "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", str(smp),
            "-m", str(mem_mb), "-nographic", "-no-reboot", "-nic", "none",
            "-kernel", vmlinuz, "-initrd", initrd, "-append", append,
            "-serial", "mon:stdio", "-serial", f"file:{serial_out}"]


def available() -> tuple[bool, str]:
    """(True, "") when guests can be booted here, else (False, why in one line)."""
    if shutil.which(QEMU) is None:
        return False, f"{QEMU} missing: apt-get install qemu-system-x86"
    return True, ""


def broken(line: str) -> bool:
    """True for a console line showing a panic or an Oops."""
    return bool(_BROKEN.search(line))


def clean(line: str) -> str:
    return _ANSI.sub("", line).replace("\r", "").rstrip()


def parse_serial(data: bytes) -> dict[str, bytes]:
    """The files /init sent on ttyS1 (``FWBFILE name size sha256`` + bytes ..., ``FWBEND``).
    ValueError when the stream is cut short, malformed or a file's checksum does not match."""
    files: dict[str, bytes] = {}
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise ValueError(f"guest output cut short after {len(files)} files "
                             f"({len(data)} bytes, no end mark)")
        line = data[pos:nl + 1]
        if line == END_MARK:
            return files
        if not line.startswith(FILE_HEADER):
            raise ValueError(f"guest output: bad frame at byte {pos}: {line[:40]!r}")
        try:
            name, size_s, digest = line[len(FILE_HEADER):].decode().split()
            size = int(size_s)
        except ValueError:
            raise ValueError(f"guest output: bad frame at byte {pos}: {line[:40]!r}") from None
        start = nl + 1
        if start + size > len(data):
            raise ValueError(f"guest output: file {name} cut short "
                             f"({len(data) - start} of {size} bytes)")
        files[name] = data[start:start + size]
        if hashlib.sha256(files[name]).hexdigest() != digest:
            raise ValueError(f"guest output: file {name} damaged in transfer (sha256 differs)")
        pos = start + size


class GuestBroke(RuntimeError):
    """The kernel panicked or oopsed (worth a retry)."""


@dataclass(frozen=True, slots=True, eq=False)
class BootResult:
    files: dict[str, bytes]         # what /init sent back
    console: list[str]              # the console's lines (ANSI codes removed)
    wall_to_init_s: float           # host clock: qemu start to /init's first line
    wall_total_s: float             # host clock: qemu start to its exit
    attempts: int
    command: list[str]
    retried: list[str] = field(default_factory=list)    # why earlier attempts were retried


def _boot_once(vmlinuz: str, initrd: str, workdir: Path, timeout_s: float, mem_mb: int,
               smp: int, append: str, progress=None) -> BootResult:
    out = workdir / "ttyS1.bin"
    with contextlib.suppress(FileNotFoundError):
        out.unlink()
    cmd = qemu_command(vmlinuz, initrd, str(out), mem_mb, smp, append)
    lines: list[str] = []
    marks: dict[str, float] = {}
    t0 = time.monotonic()
    # Own session: a Ctrl-C at the terminal reaches us, and we kill qemu ourselves.
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)

    def reader():
        for raw in proc.stdout:
            line = clean(raw.decode(errors="replace"))
            now = time.monotonic() - t0
            lines.append(line)
            for m in (MARK_INIT, MARK_DONE, MARK_FAIL):
                if m in line and m not in marks:
                    marks[m] = now
                    if progress is not None:
                        progress(m, now)
            if broken(line) and "broken" not in marks:
                marks["broken"] = now

    t = threading.Thread(target=reader, daemon=True, name="qemu-console")
    t.start()
    try:
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            stage = "running" if MARK_INIT in marks else "booting"
            raise GuestBroke(f"guest timed out after {timeout_s:g} s while {stage}"
                             + (f" (last console line: {lines[-1]!r})" if lines else "")) from None
    finally:
        kill(proc)
        t.join(5)
        proc.stdout.close()
    total = time.monotonic() - t0
    if "broken" in marks:
        first = next(ln for ln in lines if broken(ln))
        raise GuestBroke(f"kernel broke: {first.strip()}")
    if MARK_FAIL in marks:
        why = next(ln for ln in lines if MARK_FAIL in ln).split(MARK_FAIL, 1)[1].strip()
        raise RuntimeError(f"guest: {why}")
    if MARK_INIT not in marks:
        raise GuestBroke(f"qemu exited (status {proc.returncode}) before /init ran"
                         + (f": {lines[-1]!r}" if lines else ""))
    if MARK_DONE not in marks:
        raise GuestBroke(f"guest ended before finishing (qemu status {proc.returncode})"
                         + (f"; last console line: {lines[-1]!r}" if lines else ""))
    try:
        files = parse_serial(out.read_bytes())
    except OSError as exc:
        raise RuntimeError(f"guest output {out}: {exc.strerror}") from None
    except ValueError as exc:      # a transfer gone wrong: worth another boot
        raise GuestBroke(str(exc)) from None
    return BootResult(files, lines, marks[MARK_INIT], total, 1, cmd)


def kill(proc: subprocess.Popen) -> None:
    """End qemu (its whole session) and reap it; a no-op if it has exited."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


def boot(vmlinuz: str, initrd: str, workdir: str | os.PathLike, *, timeout_s: float = 300.0,
         retries: int = 2, mem_mb: int = MEM_MB, smp: int = SMP, append: str = CMDLINE,
         progress=None) -> BootResult:
    """Boot, run /init, return what it sent.  A panic, Oops, hang or early exit is retried up to
    `retries` times; RuntimeError after that, or at once when /init reports a failure."""
    ok, why = available()
    if not ok:
        raise RuntimeError(why)
    retried: list[str] = []
    # SIGINT, SIGTERM and SIGHUP raise Interrupted here (bench.interrupt), so qemu, in its own
    # session, is killed by the finally clauses and the verb exits 130/143/129 in one line.
    with interrupt.handling():
        while True:
            try:
                r = _boot_once(vmlinuz, initrd, Path(workdir), timeout_s, mem_mb, smp, append,
                               progress)
            except GuestBroke as exc:
                retried.append(str(exc))
                if len(retried) > retries:
                    raise RuntimeError(f"{exc} (attempt {len(retried)} of {retries + 1})") from None
                continue
            return BootResult(r.files, r.console, r.wall_to_init_s, r.wall_total_s,
                              len(retried) + 1, r.command, retried)
