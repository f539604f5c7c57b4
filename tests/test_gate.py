"""The gate: verdicts, exit codes and the kernel-test-robot table."""
import copy
import dataclasses

import pytest

from bench import __main__ as cli, results, sim
from bench.results import gate, provenance


@pytest.fixture(scope="module")
def base():
    runs = tuple(sim.run(s, w, seed=seed, engine="python", **p)
                 for w, p in (("seq-write", {"file_size": 2 << 20}), ("dio-redirty", {"rounds": 10}))
                 for s in ("merge-in-queue", "no-temp-page") for seed in (0, 1))
    return results.Suite(provenance.collect(engine="python"), runs)


def _scaled(suite, workload, metric, factor, engine=None):
    runs = []
    for r in suite.runs:
        m = copy.deepcopy(dict(r.metrics))
        if r.workload == workload:
            m[metric] = m[metric] * factor
        runs.append(dataclasses.replace(r, metrics=m, engine=engine or r.engine))
    return results.Suite(suite.metadata, tuple(runs))


def _cli(tmp_path, a, b, *extra):
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    results.dump(a, pa, overwrite=True)
    results.dump(b, pb, overwrite=True)
    return cli.main(["gate", str(pa), str(pb), *extra])


def test_identical_files_pass(tmp_path, base, capsys):
    assert _cli(tmp_path, base, base) == 0
    assert capsys.readouterr().out.startswith("OK: none of ")


def test_a_throughput_drop_is_a_regression(tmp_path, base, capsys):
    head = _scaled(base, "seq-write", "app_throughput_bps", 0.8)
    assert _cli(tmp_path, base, head) == 1
    out = capsys.readouterr().out
    assert out.startswith("REGRESSION: 2 of ")
    lines = out.splitlines()
    assert lines[2] == "regressions:"
    assert lines[3].split() == ["base", "%change", "head", "metric"]
    assert sorted(ln.split()[-1] for ln in lines[4:6]) == [
        "seq-write/merge-in-queue/app_throughput_bps", "seq-write/no-temp-page/app_throughput_bps"]
    assert all("-20.0%" in ln for ln in lines[4:6])


def test_a_drop_within_the_threshold_passes(tmp_path, base):
    head = _scaled(base, "seq-write", "app_throughput_bps", 0.8)
    assert _cli(tmp_path, base, head, "--threshold", "app_throughput_bps=25") == 0


def test_improvements_are_listed_apart(tmp_path, base, capsys):
    head = _scaled(base, "seq-write", "app_throughput_bps", 1.5)
    assert _cli(tmp_path, base, head) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK:") and "improvements:" in out and "regressions:" not in out


def test_any_new_lost_update_is_a_regression(base):
    runs = [dataclasses.replace(r, metrics={**r.metrics, "lost_updates": 1})
            if r.seed == 0 and r.workload == "dio-redirty" and r.strategy == "no-temp-page" else r
            for r in base.runs]
    changes = gate.compare(base, results.Suite(base.metadata, tuple(runs)))
    bad = [c for c in changes if c.verdict == "regression"]
    assert [c.name for c in bad] == ["dio-redirty/no-temp-page/lost_updates"]


def test_noisy_measurements_need_a_significant_difference(base):
    noisy = _scaled(base, "seq-write", "app_throughput_bps", 0.5, engine="mount")
    base_m = _scaled(base, "seq-write", "app_throughput_bps", 1.0, engine="mount")
    # two repetitions cannot reach p < 0.01: no verdict without evidence
    changes = gate.compare(base_m, noisy)
    assert not [c for c in changes if c.verdict != "same"]


def test_mismatched_configurations_are_an_error(tmp_path, base, capsys):
    other = results.Suite(base.metadata, base.runs[:-1])
    assert _cli(tmp_path, base, other) == 2
    assert "configurations differ" in capsys.readouterr().err


def test_bad_threshold_and_bad_file_are_errors(tmp_path, base, capsys):
    assert _cli(tmp_path, base, base, "--threshold", "nope=3") == 2
    assert _cli(tmp_path, base, base, "--threshold", "app_throughput_bps") == 2
    (tmp_path / "c.json").write_text("{")
    assert cli.main(["gate", str(tmp_path / "a.json"), str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("ERROR:") == 3
