"""What the engines do without going through their event queue gives the results the queue would.

- go_on: an actor whose CPU work ends before anything queued is due goes on at once instead of
  sleeping in an ACTOR event; the reference engine with go_on switched off (every such wake-up
  queued) must give the same raw result, only more events.
- the CPU grant kept beside the queue: cpu_wake returns at once while a grant is pending, because
  a pending grant is never later than one computed afresh (the argument in its docstring); a
  reference engine that computes it afresh anyway checks that on every call.

tests/test_engines.py holds the C engine to the reference engine.
"""
from hypothesis import HealthCheck, given, settings, strategies as st

from bench import sim
from bench.sim import refsim
from conftest import assert_same_raw
from test_engines import configs, op_arrays


class QueuedWakeups(refsim.Sim):
    """Every wake-up goes through the event queue."""

    def go_on(self, t: int) -> bool:
        return False


class FreshGrant(refsim.Sim):
    """cpu_wake computes the grant's time even when one is pending, and checks it stands."""

    checked = 0

    def cpu_wake(self) -> None:
        if self.cpu_ev >= 0:
            if self.server_capped():
                t = min(u for u in self.srv_until if u > self.now)
            else:
                t = max(self.now, min(self.cpu_free))
            assert t >= self.cpu_ev, f"a grant due at {t} would supersede the one at {self.cpu_ev}"
            FreshGrant.checked += 1
        super().cpu_wake()


def _without_events(raw):
    return {**raw, "counters": {k: v for k, v in raw["counters"].items() if k != "events"}}


def _cases():
    # rand-write on 2 CPUs with the server on one: the flusher's batches and the writer's calls
    # go on without events, and server threads queue for a CPU on most requests
    for strategy in ("merge-in-queue", "no-temp-page", "large-folio"):
        yield strategy, "rand-write", dict(file_size=4 << 20, writes=800, cpus=2, server_cpus=1)
    yield "temp-naive", "fsync-heavy", dict(writes=64, cpus=1, server_cpus=1, wakeup_ns=0)
    yield "iomap-blocks", "seq-write", dict(file_size=2 << 20, cpus=3, server_cpus=2)


def test_going_on_without_an_event_changes_nothing_but_the_event_count():
    for strategy, name, params in _cases():
        wl, cfg = sim.prepare(strategy, name, 1, **params)
        a = refsim.simulate(cfg, wl.ops, wl.file_sizes, 1)
        b = QueuedWakeups(cfg, wl.ops, wl.file_sizes, 1).run()
        assert_same_raw(_without_events(a), _without_events(b), f"{strategy} {name}")
        events = (a["counters"]["events"], b["counters"]["events"])
        if name == "rand-write":       # the writer's calls go on without events
            assert events[0] < events[1], f"{strategy} {name}"
        else:
            assert events[0] <= events[1], f"{strategy} {name}"


def test_a_pending_cpu_grant_stands():
    FreshGrant.checked = 0
    for strategy, name, params in _cases():
        wl, cfg = sim.prepare(strategy, name, 1, **params)
        a = refsim.simulate(cfg, wl.ops, wl.file_sizes, 1)
        b = FreshGrant(cfg, wl.ops, wl.file_sizes, 1).run()
        assert_same_raw(a, b, f"{strategy} {name}")
    assert FreshGrant.checked > 0


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=st.sampled_from(sim.strategies()), w=op_arrays(), params=configs(),
       seed=st.integers(0, 2**32))
def test_random_configurations_without_the_bypass_agree(strategy, w, params, seed):
    # A drawn configuration can leave a writer stuck (a legitimate outcome, counted in
    # `stuck`); ending such runs at 2 s of simulated time, not the table's hour, keeps the
    # Python engine's three runs per example to seconds (one took minutes otherwise).
    wl, cfg = sim.prepare(strategy, w, seed, **params, max_time_ns=2 * 10**9)
    a = refsim.simulate(cfg, wl.ops, wl.file_sizes, seed)
    b = QueuedWakeups(cfg, wl.ops, wl.file_sizes, seed).run()
    c = FreshGrant(cfg, wl.ops, wl.file_sizes, seed).run()
    assert_same_raw(_without_events(a), _without_events(b), f"{strategy} {params} seed={seed}")
    assert a["counters"]["events"] <= b["counters"]["events"]
    assert_same_raw(a, c, f"{strategy} {params} seed={seed}")
