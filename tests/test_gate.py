"""The gate: verdicts, exit codes and the kernel-test-robot table."""
import copy
import dataclasses
import json

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


def test_runs_in_one_file_only_are_listed_and_the_rest_gated(tmp_path, base, capsys):
    # the candidate lacks one run and has a kernel row the baseline lacks
    kernel = dataclasses.replace(base.runs[0], strategy="kernel-6.18.44", engine="mount")
    other = results.Suite(base.metadata, base.runs[:-1] + (kernel,))
    head = _scaled(other, "seq-write", "app_throughput_bps", 0.8)
    assert _cli(tmp_path, base, head) == 1          # what is in both is still gated
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("REGRESSION: 2 of ")
    assert out[1].startswith("not gated, in one file only (2 runs")
    last = base.runs[-1]
    params = json.dumps(dict(last.params), sort_keys=True)
    assert " ".join(out[2].split()) == (f"only in the baseline: 1 run: {last.strategy} on "
                                        f"{last.workload}, seed {last.seed} (engine python, "
                                        f"params {params})")
    assert out[3].split()[:8] == ["only", "in", "the", "candidate:", "1", "run:",
                                  "kernel-6.18.44", "on"]
    assert "(engine mount, params {" in out[3] and out[4] == ""


def test_strict_keeps_mismatched_configurations_an_error(tmp_path, base, capsys):
    other = results.Suite(base.metadata, base.runs[:-1])
    assert _cli(tmp_path, base, other, "--strict") == 2
    err = capsys.readouterr().err
    assert "configurations differ: the candidate lacks" in err and err.count("\n") == 1


def _with_params(suite, **params):
    return results.Suite(suite.metadata, tuple(dataclasses.replace(r, params={**r.params, **params})
                                               for r in suite.runs))


def test_a_candidate_made_with_param_gates_when_told_to_ignore_params(tmp_path, base, capsys):
    head = _scaled(_with_params(base, page_copy_ns=2000), "seq-write", "app_throughput_bps", 0.8)
    assert _cli(tmp_path, base, head) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR: no run is in both files") and err.count("\n") == 1
    assert '"page_copy_ns": 2000' in err and "--match-params ignore" in err
    assert _cli(tmp_path, base, head, "--strict") == 2
    err = capsys.readouterr().err
    assert "it has params {" in err and "\"page_copy_ns\": 2000} engine python instead" in err
    assert _cli(tmp_path, base, head, "--match-params", "ignore") == 1
    out = capsys.readouterr().out
    assert out.startswith("REGRESSION: 2 of ") and "not gated" not in out
    assert _cli(tmp_path, base, _with_params(base, page_copy_ns=2000), "--match-params",
                "ignore", "--strict") == 0


def test_ignoring_params_refuses_a_file_with_one_run_under_two_params(tmp_path, base, capsys):
    twice = results.Suite(base.metadata, base.runs + _with_params(base, max_pages=64).runs)
    assert _cli(tmp_path, base, twice, "--match-params", "ignore") == 2
    err = capsys.readouterr().err
    assert "the candidate has" in err and "twice" in err and err.count("\n") == 1


def test_values_are_shown_in_mb_s_and_us_like_compare(tmp_path, base, capsys):
    head = _scaled(base, "seq-write", "app_throughput_bps", 0.8)
    head = _scaled(head, "dio-redirty", "makespan_ns", 2)
    assert _cli(tmp_path, base, head) == 1
    lines = capsys.readouterr().out.splitlines()
    tp = next(ln for ln in lines if ln.endswith("seq-write/merge-in-queue/app_throughput_bps"))
    r = base.select("seq-write", "merge-in-queue")[0]
    mbs = r.metrics["app_throughput_bps"] / 1e6
    assert f"{mbs:.0f} MB/s" in tp and f"{0.8 * mbs:.0f} MB/s" in tp
    ms = next(ln for ln in lines if ln.endswith("dio-redirty/merge-in-queue/makespan_ns"))
    assert " us" in ms and "e+" not in ms
    assert not [ln for ln in lines if "e+0" in ln]


def test_json_output(tmp_path, base, capsys):
    other = results.Suite(base.metadata, base.runs[:-1])
    head = _scaled(other, "seq-write", "app_throughput_bps", 0.8)
    assert _cli(tmp_path, base, head, "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "regression" and doc["regressions"] == 2
    bad = [c for c in doc["changes"] if c["verdict"] == "regression"]
    assert {(c["workload"], c["metric"], round(c["pct"], 6)) for c in bad} == {
        ("seq-write", "app_throughput_bps", -20.0)}
    assert bad[0]["unit"] == "B/s" and bad[0]["head"] == pytest.approx(0.8 * bad[0]["base"])
    assert bad[0]["statistic"] == "value"
    assert {c["statistic"] for c in doc["changes"] if c["metric"] == "fsync_latency_ns"} == {"p99"}
    last = base.runs[-1]
    assert doc["only_in_baseline"] == [{"strategy": last.strategy, "workload": last.workload,
                                        "params": dict(last.params), "seed": last.seed,
                                        "engine": last.engine}]
    assert doc["only_in_candidate"] == []
    assert _cli(tmp_path, base, base, "--json") == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "ok"


def test_bad_threshold_and_bad_file_are_errors(tmp_path, base, capsys):
    assert _cli(tmp_path, base, base, "--threshold", "nope=3") == 2
    assert _cli(tmp_path, base, base, "--threshold", "app_throughput_bps") == 2
    (tmp_path / "c.json").write_text("{")
    assert cli.main(["gate", str(tmp_path / "a.json"), str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("ERROR:") == 3
