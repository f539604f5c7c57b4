"""The keeper of a recorded command (bench.real.mount.run_command); imports nothing of bench.

    python -I -S _keeper.py OWNER_PID STATUS_FILE -- ARGV...

Runs ARGV in a session (and so a process group) of its own and ends that whole group with the
run, however the run ends:

* the command exits: whatever it left running in its group is killed (SIGKILL);
* the owner ends it (SIGTERM, or SIGHUP): the group is killed, then the keeper exits;
* the owner dies, even by SIGKILL: the kernel sends the keeper SIGTERM (PR_SET_PDEATHSIG), and
  the group is killed as above.  A process that left the group (setsid) is not followed.

A Ctrl-C at the terminal is the owner's to handle (it reaches the keeper's process group, not the
command's), so the keeper ignores SIGINT.  The command inherits the keeper's working directory,
environment, stdout and stderr.  STATUS_FILE receives, as JSON, ``{"pid": N}`` once the command
runs, then ``{"pid", "t0_ns", "t_end_ns", "returncode"}`` when it has exited (CLOCK_MONOTONIC
just before it was started and once it had exited), or ``{"error": "..."}`` when it could not
start.
"""
import ctypes
import json
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1


def _write(path: str, doc: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def main() -> int:
    owner, status, sep, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    if sep != "--" or not argv:
        print("usage: _keeper.py OWNER_PID STATUS_FILE -- ARGV...", file=sys.stderr)
        return 2
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != owner:        # the owner died before the prctl: nothing to keep
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    child: list[subprocess.Popen] = []
    ended: list[int] = []

    def end(signum, frame):
        ended.append(signum)
        if child:
            _kill_group(child[0].pid)
            os._exit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, end)
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        _write(status, {"error": exc.strerror or str(exc)})
        return 0
    child.append(proc)
    if ended:                         # a signal came while the command was being started
        _kill_group(proc.pid)
        return 128 + ended[0]
    _write(status, {"pid": proc.pid})
    rc = proc.wait()
    t_end = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    _kill_group(proc.pid)             # what it left behind in its group
    _write(status, {"pid": proc.pid, "t0_ns": t0, "t_end_ns": t_end, "returncode": rc})
    return 0


if __name__ == "__main__":
    sys.exit(main())
