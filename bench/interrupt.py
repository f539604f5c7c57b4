"""How a run ends on SIGINT, SIGTERM and SIGHUP: once, cleanly, in one line.

``python -m bench`` installs these handlers before it imports anything else (``install``); until
its verb runs inside the handler of ``main`` (``arm``), a signal ends the process at once with
one line and status 128 + signal (nothing has been started yet that needs cleaning up).  Once
armed, the first signal raises ``Interrupted`` in the main thread, so every ``finally`` runs:
mounts are unmounted, servers and recorded commands ended, pool workers killed.  Any further
signal while that cleanup runs is ignored (a second Ctrl-C cannot break off an unmount half
way), and a signal that lands inside a ``deferred()`` section (an unmount, a server start) is
raised at its end.  ``main`` turns ``Interrupted`` into one ``ERROR:`` line and the exit status
130 (SIGINT), 143 (SIGTERM) or 129 (SIGHUP).

Library callers that never call ``install`` get the same behaviour for the duration of a mount
(``handling()``); ``Interrupted`` is a KeyboardInterrupt, so their ``except KeyboardInterrupt``
still sees a Ctrl-C.  This module imports nothing of bench.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop by `signum`; `notes` say what was cleaned up on the way out."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.notes: list[str] = []

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    def line(self) -> str:
        return f"interrupted by {self.name}" + "".join(f"; {n}" for n in dict.fromkeys(self.notes))

    __str__ = line


class _State:
    pid = 0                 # the process the handlers belong to (a forked child is not it)
    armed = False           # raise Interrupted (True) or end at once (False: start-up)
    received: int | None = None
    defer = 0
    pending: int | None = None


_S = _State()


def _handler(signum, frame):
    if os.getpid() != _S.pid:        # a forked child (a pool worker before its initializer)
        os._exit(128 + signum)
    if _S.received is not None:      # already ending: let the cleanup finish
        return
    _S.received = signum
    if not _S.armed:
        os.write(2, f"ERROR: interrupted by {signal.Signals(signum).name}\n".encode())
        os._exit(128 + signum)
    if _S.defer:
        _S.pending = signum
        return
    raise Interrupted(signum)


def install() -> None:
    """Handlers for SIGINT, SIGTERM, SIGHUP that end the process at once (start-up).  A signal
    ignored by whoever started us stays ignored (``nohup``, a background job's SIGINT)."""
    _S.pid, _S.armed, _S.received, _S.pending = os.getpid(), False, None, None
    for s in SIGNALS:
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, _handler)


def arm() -> None:
    """From here on a signal raises Interrupted in the main thread (see the module docstring)."""
    if _S.pid != os.getpid():
        install()
    _S.armed = True


def installed() -> bool:
    return _S.pid == os.getpid() and any(signal.getsignal(s) is _handler for s in SIGNALS)


@contextlib.contextmanager
def handling():
    """For the duration, SIGINT, SIGTERM and SIGHUP raise Interrupted in the main thread, as under
    ``python -m bench`` (a no-op there, and in other threads)."""
    if threading.current_thread() is not threading.main_thread() or installed():
        yield
        return
    old = {s: signal.getsignal(s) for s in SIGNALS}
    saved = (_S.pid, _S.armed, _S.received, _S.pending)
    install()
    _S.armed = True
    try:
        yield
    finally:
        for s, h in old.items():
            if h is not None:            # None: a handler not set from Python; leave ours
                signal.signal(s, h)
        _S.pid, _S.armed, _S.received, _S.pending = saved


@contextlib.contextmanager
def deferred():
    """A section that a signal must not break off (an unmount, a server's start): a signal
    arriving inside it is raised when it ends, once.  Signals reach the main thread only, so in
    another thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _S.defer += 1
    try:
        yield
    finally:
        _S.defer -= 1
        if not _S.defer and _S.pending is not None and _S.pid == os.getpid():
            signum, _S.pending = _S.pending, None
            raise Interrupted(signum)


def ending() -> None:
    """The run has ended on a signal: under ``python -m bench``, ignore any further one, so that
    a Ctrl-C while the interpreter shuts down (when Python puts back the default handlers) does
    not kill the process after its line was printed."""
    if installed():
        for s in SIGNALS:
            if signal.getsignal(s) is _handler:
                signal.signal(s, signal.SIG_IGN)


def ignore_in_worker() -> None:
    """In a pool worker: the parent handles SIGINT (a Ctrl-C reaches the whole process group);
    SIGTERM and SIGHUP end the worker quietly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)
