"""Result files: round trip, atomic writes, refusal to overwrite, validation on load."""
import json
import os

import numpy as np
import pytest

from bench.results import provenance
from bench import results, sim
from bench.sim import params


@pytest.fixture(scope="module")
def suite():
    runs = tuple(sim.run(s, "seq-write", seed=seed, engine="python", file_size=2 << 20)
                 for s in ("merge-in-queue", "no-temp-page") for seed in (0, 1))
    return results.Suite(provenance.collect(engine="python", seeds=2,
                                            machine=params.machine_provenance()), runs)


def test_round_trip_keeps_every_metric(tmp_path, suite):
    p = results.dump(suite, tmp_path / "r.json")
    back = results.load(p)
    assert [r.metrics for r in back.runs] == [r.metrics for r in suite.runs]
    assert [r.key() for r in back.runs] == [r.key() for r in suite.runs]
    s0, b0 = suite.runs[0].series, back.runs[0].series    # thinned to at most MAX_SERIES_ROWS
    assert 0 < len(b0) <= results.MAX_SERIES_ROWS
    assert np.array_equal(b0[0], s0[0]) and np.array_equal(b0[-1], s0[-1])
    doc = json.loads(p.read_text())
    assert doc["schema_version"] == results.SCHEMA_VERSION
    for key in ("package_version", "git_commit", "kernel", "cpu_model", "python_version", "date",
                "machine"):
        assert key in doc["metadata"]
    assert doc["metadata"]["machine"]["name"] and len(doc["metadata"]["machine"]["sha256"]) == 16


def test_a_loaded_file_is_written_again_byte_for_byte(tmp_path):
    """The writer encodes run by run: the committed baseline (its series rows one a line) comes
    out of load and dump exactly as it went in."""
    base = os.path.join(os.path.dirname(__file__), os.pardir, "results", "baseline.json")
    with open(base, "rb") as f:
        want = f.read()
    again = results.dump(results.load(base), tmp_path / "again.json")
    assert again.read_bytes() == want


def test_refuses_to_overwrite_unless_asked(tmp_path, suite):
    p = results.dump(suite, tmp_path / "r.json")
    before = p.read_text()
    with pytest.raises(ValueError, match="exists"):
        results.dump(suite, p)
    assert p.read_text() == before
    results.dump(suite, p, overwrite=True)


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, suite, monkeypatch):
    p = results.dump(suite, tmp_path / "r.json")
    before = p.read_text()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        results.dump(suite, p, overwrite=True)
    assert p.read_text() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r.json"]


@pytest.mark.parametrize("mutate, where", [
    (lambda d: "not json", "not JSON"),
    (lambda d: {**d, "schema_version": 99}, "schema_version"),
    (lambda d: {k: v for k, v in d.items() if k != "runs"}, "missing 'runs'"),
    (lambda d: {**d, "runs": [{**d["runs"][0], "seed": "x"}]}, "runs[0].seed"),
    (lambda d: {**d, "runs": [{k: v for k, v in d["runs"][0].items() if k != "metrics"}]},
     "runs[0]: missing 'metrics'"),
    (lambda d: {**d, "runs": [{**d["runs"][0], "metrics": {**d["runs"][0]["metrics"],
                                                             "write_latency_ns": {"p50": 1}}}]},
     "runs[0].metrics.write_latency_ns"),
    (lambda d: {**d, "runs": [{**d["runs"][0], "metrics": {**d["runs"][0]["metrics"],
                                                             "pages_per_request": {"x": 1}}}]},
     "pages_per_request"),
])
def test_bad_files_are_named_with_the_place(tmp_path, suite, mutate, where):
    good = json.loads(results.dump(suite, tmp_path / "g.json").read_text())
    bad = mutate(good)
    p = tmp_path / "bad.json"
    p.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    with pytest.raises(ValueError) as e:
        results.load(p)
    assert where in str(e.value) and str(p) in str(e.value) and "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such result file"):
        results.load(tmp_path / "nope.json")
