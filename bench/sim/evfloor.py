"""The event queue's floor: the C engine's events pushed and popped by its queue code alone.

`record` runs the C engine once (fwb_event_log) and keeps every event it pushed, by
sequence number, and the order it popped them in; `replay` pushes and pops the same
events, in the same order, through the engine's own push() and pop() and nothing else
(fwb_heap_replay), and checks that each pop returns the event the engine popped there.
The engine's time over the replay's is how far the engine is from the cost of its event
queue (the simulator issue's target: within 1.5x).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from bench.sim import _cengine
from bench.sim.ops import OP_DTYPE


class EventLog:
    """An fwb_evlog owned by Python (freed with it)."""

    def __init__(self, raw):
        self._raw = raw

    @property
    def pushed(self) -> int:
        return int(self._raw.n_push)

    @property
    def popped(self) -> int:
        return int(self._raw.n_pop)

    def kinds(self) -> np.ndarray:
        """The kind of each pushed event, by sequence number."""
        n = self.pushed
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        ka = np.frombuffer(_cengine.ffi.buffer(self._raw.push_ka, n * 8), dtype=np.int64)
        return ka >> 32


def record(cfg: Mapping[str, Any], ops: np.ndarray, file_sizes: np.ndarray, seed: int) -> EventLog:
    """Run the C engine on a resolved configuration and keep its events."""
    _cengine._require()
    ffi, lib = _cengine.ffi, _cengine.lib
    ops = np.ascontiguousarray(ops, dtype=OP_DTYPE)
    sizes = np.ascontiguousarray(file_sizes, dtype=np.int64)
    if ops.ndim != 1 or sizes.ndim != 1 or len(ops) == 0 or len(sizes) == 0:
        raise ValueError("ops and file_sizes must be non-empty 1-D arrays")
    raw = ffi.gc(ffi.new("fwb_evlog *"), lib.fwb_evlog_free)
    rc = lib.fwb_event_log(_cengine.make_config(cfg), ffi.cast("const fwb_op *", ffi.from_buffer(ops)),
                           len(ops), ffi.cast("const int64_t *", ffi.from_buffer(sizes)), len(sizes),
                           seed & ((1 << 64) - 1), raw)
    if rc == lib.FWB_ENOMEM:
        raise MemoryError("C engine: out of memory")
    if rc != lib.FWB_OK:
        raise ValueError(f"C engine: invalid input (error {rc})")
    return EventLog(raw)


def replay(log: EventLog) -> int:
    """Push and pop log's events through the engine's queue alone; a checksum."""
    r = int(_cengine.lib.fwb_heap_replay(log._raw))
    if r == _cengine.lib.FWB_ENOMEM:
        raise MemoryError("heap replay: out of memory")
    if r < 0:
        raise ValueError("heap replay: the queue did not pop the events in the engine's order")
    return r
