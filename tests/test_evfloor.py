"""The event queue's floor (bench.sim.evfloor): the engine's events, replayed by its queue alone."""
import numpy as np
import pytest

from bench import sim
from bench.sim import _cengine, evfloor


@pytest.mark.parametrize("strategy,workload,params", [
    ("merge-in-queue", "rand-write", {"writes": 2048}),
    ("temp-naive", "dio-redirty", {}),
    ("no-temp-page", "stuck-server", {"max_time_ns": 2_000_000_000}),   # ends with events queued
])
def test_the_log_holds_every_event_and_replays_in_the_engines_order(strategy, workload, params):
    wl, cfg = sim.prepare(strategy, workload, 0, **params)
    log = evfloor.record(cfg, wl.ops, wl.file_sizes, 0)
    events = _cengine.simulate(cfg, wl.ops, wl.file_sizes, 0)["counters"]["events"]
    # every counted event was popped (a flusher tick after the last thread is popped, not counted)
    assert log.popped >= events > 0 and log.pushed >= log.popped
    assert set(np.unique(log.kinds())) <= {0, 1, 2, 3, 4}
    if "max_time_ns" in params:              # stopped at max_time_ns: some never popped
        assert log.pushed > log.popped
    assert evfloor.replay(log) >= 0          # it checks each pop against the engine's


def test_a_log_popped_in_another_order_is_refused():
    wl, cfg = sim.prepare("merge-in-queue", "rand-write", 0, writes=256)
    log = evfloor.record(cfg, wl.ops, wl.file_sizes, 0)
    raw = log._raw
    raw.pop_seq[1], raw.pop_seq[2] = raw.pop_seq[2], raw.pop_seq[1]
    with pytest.raises(ValueError, match="did not pop"):
        evfloor.replay(log)


def test_bad_input_is_a_value_error():
    wl, cfg = sim.prepare("merge-in-queue", "rand-write", 0, writes=16)
    with pytest.raises(ValueError, match="non-empty"):
        evfloor.record(cfg, wl.ops[:0], wl.file_sizes, 0)
