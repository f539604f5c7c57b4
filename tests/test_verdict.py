"""compare's first screen: who wins where, by how much, significant or not."""
import math

from bench.results import Run, Suite, compare


def _lat(p99):
    return {"p50": p99, "p99": p99, "p999": p99, "max": p99, "count": 10}


def _suite(values: dict, lost: dict | None = None) -> Suite:
    """values: {strategy: [throughput per seed]}; write p99 mirrors throughput (so the fastest
    strategy has the worst p99) and no fsync was made."""
    runs = []
    for s, tps in values.items():
        for seed, tp in enumerate(tps):
            m = {"app_throughput_bps": tp, "write_latency_ns": _lat(tp),
                 "fsync_latency_ns": {"p50": 0, "p99": 0, "p999": 0, "max": 0, "count": 0},
                 "lost_updates": (lost or {}).get(s, 0), "out_of_order": 0, "hangs": 0}
            runs.append(Run(s, "w", {}, seed, "c", m))
    return Suite({}, tuple(runs))


def test_the_best_wins_by_its_ratio_to_the_next_best_and_is_significant_with_enough_seeds():
    s = _suite({"a": [100, 101, 102, 103, 104], "b": [200, 201, 202, 203, 204],
                "c": [150, 151, 152, 153, 154]})
    tp, lat = compare.verdicts(s, ("app_throughput_bps", "write_latency_ns"))
    assert tp.winners == ("b",) and tp.losers == ("c",)
    assert math.isclose(tp.factor, 202 / 152) and tp.significant
    assert lat.winners == ("a",) and lat.losers == ("c",)          # lower p99 is better
    assert math.isclose(lat.factor, 152 / 102)


def test_too_few_seeds_are_never_significant_and_say_so():
    s = _suite({"a": [100, 101, 102], "b": [200, 201, 202]})
    (tp,) = compare.verdicts(s, ("app_throughput_bps",))
    assert tp.winners == ("b",) and not tp.significant
    text = compare.render_verdicts(s)
    assert "3 seed(s) per strategy: too few for a significance test" in text
    assert " *" not in text and "n.s." not in text
    rows = compare.rows(s, "a")
    assert not any(r.significant for r in rows)


def test_strategies_within_half_a_percent_tie():
    s = _suite({"a": [1000] * 4, "b": [1004] * 4, "c": [500] * 4})
    (tp,) = compare.verdicts(s, ("app_throughput_bps",))
    assert tp.winners == ("b", "a") and tp.losers == ("c",)
    assert "b+1 2.01x" in compare.render_verdicts(s)
    s = _suite({"a": [1000] * 4, "b": [1003] * 4})
    (tp,) = compare.verdicts(s, ("app_throughput_bps",))
    assert tp.losers == () and math.isnan(tp.factor)


def test_correctness_failures_are_named_and_kernel_rows_do_not_compete():
    s = _suite({"a": [100] * 4, "b": [100] * 4, "kernel-6.1.0": [900] * 4}, lost={"a": 7})
    (tp,) = compare.verdicts(s, ("app_throughput_bps",))
    assert tp.losers == ()                                    # the kernel's 900 is not a winner
    line = next(x for x in compare.render_verdicts(s).splitlines() if x.strip().startswith("w "))
    assert "FAILS a: 7 lost_updates" in line
    assert "\x1b[31m" in compare.render_verdicts(s, color=True)


def test_a_latency_without_calls_has_no_verdict():
    s = _suite({"a": [100] * 4, "b": [200] * 4})
    assert compare.verdicts(s, ("fsync_latency_ns",)) == []
    line = compare.render_verdicts(s).splitlines()[2]
    assert line.split()[-1] == "-"


def test_the_kernel_column_names_its_machine_and_stays_out_of_the_verdict():
    s = _suite({"a": [100, 101, 102, 103], "b": [200, 201, 202, 203]})
    k = Run("kernel-6.18.44", "w", {}, 0, "mount", dict(s.runs[0].metrics,
                                                        app_throughput_bps=999.0),
            meta={"kernel": "6.18.44-x", "bdi": {"max_bytes": 48 << 20, "strict_limit": 1}})
    md = {"cpu_count": 2, "cpu_model": "Some CPU", "machine": {"name": "ci-2cpu-24g"}}
    text = compare.render_verdicts(Suite(md, s.runs + (k,)))
    assert "kernel-6.18.44: measured on a real mount of the machine that ran this sweep (Linux " \
           "6.18.44-x, 2 CPUs (Some CPU), its FUSE bdi's dirty limit 48 MiB (strict)), not the " \
           "simulated machine profile ci-2cpu-24g; not in the verdict." in text
    assert "b 1.99x" in text                                   # the kernel's 999 does not win
    assert "kernel-" not in compare.render_verdicts(s)
