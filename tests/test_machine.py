"""Machine profiles: finding them by name or path, TOML overrides, errors, result metadata, gate."""
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bench import results, sim
from bench.results import gate, provenance
from bench.sim import machine, params

ROOT = Path(__file__).resolve().parents[1]
# The guests' MemTotal in pages, as measured in each guest under -m 4096.
GUESTS = {"qemu-6.1-2cpu-4g": 1001786, "qemu-6.12-2cpu-4g": 1003485, "qemu-7.2-2cpu-4g": 1002427}


@pytest.fixture(autouse=True)
def _no_machine_env(monkeypatch, tmp_path):
    """Each test starts from the default: no FWB_MACHINE, an empty user directory."""
    monkeypatch.delenv(machine.ENV, raising=False)
    monkeypatch.delenv(machine.LEGACY_ENV, raising=False)
    monkeypatch.setattr(machine, "user_dir", lambda: tmp_path / "user-profiles")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_default_is_the_shipped_ci_machine():
    m = machine.active()
    assert m.name == machine.DEFAULT == "ci-2cpu-24g" and m.source == "package:ci-2cpu-24g"
    cfg = params.resolve("no-temp-page", {})
    # The machine the costs were measured on: 2 CPUs, 24 GiB (MemTotal 24683584 kB), HZ 250.
    assert (cfg["cpus"], cfg["mem_total_pages"], cfg["hz"], cfg["bdi_max_ratio"]) == \
        (2, 6170896, 250, 1)
    assert (cfg["dirty_ratio"], cfg["dirty_background_ratio"]) == (20, 10)
    assert cfg["server_threads"] == 16 and cfg["server_dist"] == 0        # the mount's server
    assert cfg["page_copy_ns"] == m.values["page_copy_ns"] != params.PARAM_BY_NAME[
        "page_copy_ns"].default
    md = params.machine_provenance()
    assert (md["name"], md["sha256"], md["source"]) == (m.name, m.sha256, m.source)
    assert len(md["sha256"]) == 16 and md["values"]["mem_total_pages"] == 6170896
    assert md["kernel"].startswith("6.18")               # the calibration's provenance


def test_every_shipped_profile_loads_and_the_guests_say_whose_costs_they_have():
    assert set(machine.packaged()) == {"ci-2cpu-24g", *GUESTS}
    ci = machine.load("ci-2cpu-24g")
    for name, pages in GUESTS.items():
        g = machine.load(name)
        assert g.name == name and g.doc["base"] == "ci-2cpu-24g"
        assert (g.values["cpus"], g.values["mem_total_pages"], g.values["hz"]) == (2, pages, 250)
        for key in ("page_copy_ns", "write_page_ns", "server_base_ns", "server_threads"):
            assert g.values[key] == ci.values[key], key       # the host's, until measured
        text = machine._package_dir().joinpath(f"{name}.toml").read_text()
        assert "HOST's" in text and "until they are measured in the guest" in text


def test_name_path_and_json_pick_the_same_machine(tmp_path):
    by_name = machine.load("qemu-6.1-2cpu-4g")
    text = machine._package_dir().joinpath("qemu-6.1-2cpu-4g.toml").read_text()
    copy = _write(tmp_path / "copy.toml", text)
    by_path = machine.load(str(copy))
    assert by_path.values == by_name.values and by_path.sha256 == by_name.sha256
    assert by_path.source == str(copy)
    doc = tomllib.loads(text)
    as_json = _write(tmp_path / "copy.json", json.dumps(doc))
    assert machine.load(str(as_json)).sha256 == by_name.sha256


def test_a_toml_file_may_change_one_field(tmp_path):
    f = _write(tmp_path / "small.toml", 'format = "fwb-machine-profile"\nschema_version = 2\n'
               'base = "ci-2cpu-24g"\n\n[machine]\nmem_total_pages = 524288\n')
    m = machine.select(str(f))
    ci = machine.load("ci-2cpu-24g")
    assert m.name == "small" and m.values["mem_total_pages"] == 524288
    assert {k: v for k, v in m.values.items() if k != "mem_total_pages"} == \
        {k: v for k, v in ci.values.items() if k != "mem_total_pages"}
    assert m.sha256 != ci.sha256
    assert os.environ[machine.ENV] == str(f)                # worker processes inherit it
    assert params.resolve("merge-in-queue", {})["mem_total_pages"] == 524288
    assert params.resolve("merge-in-queue", {"mem_total_pages": 8192})["mem_total_pages"] == 8192
    small = sim.run("merge-in-queue", "seq-write", 0, "c")
    machine.select("ci-2cpu-24g")
    big = sim.run("merge-in-queue", "seq-write", 0, "c")
    # 1% of 20% of 2 GiB throttles the 64 MiB writer; 1% of 20% of 24 GiB hardly does.
    assert small.metrics["throttle_ns"]["count"] > 3 * big.metrics["throttle_ns"]["count"]


def test_a_relative_base_is_found_beside_the_file(tmp_path):
    (tmp_path / "d").mkdir()
    _write(tmp_path / "d" / "parent.toml", 'format = "fwb-machine-profile"\nschema_version = 2\n'
           'base = "ci-2cpu-24g"\n[costs]\npage_copy_ns = 700\n')
    child = _write(tmp_path / "d" / "child.toml", 'format = "fwb-machine-profile"\n'
                   'schema_version = 2\nname = "kid"\nbase = "./parent.toml"\n'
                   '[machine]\ncpus = 4\n')
    m = machine.load(str(child))
    assert (m.name, m.values["cpus"], m.values["page_copy_ns"]) == ("kid", 4, 700)


HEAD = 'format = "fwb-machine-profile"\nschema_version = 2\n'


@pytest.mark.parametrize("body, field", [
    ('[machine]\nmem_total_pages = 12\n', "machine.mem_total_pages: must be in 8192.."),
    ('[machine]\nmem_total_pages = "4G"\n', "machine.mem_total_pages: expected an integer"),
    ('[costs]\nmem_total_pages = 524288\n', "costs.mem_total_pages: belongs in [machine]"),
    ('[costs]\npage_cpy_ns = 1\n', "costs.page_cpy_ns: not a machine, server or cost parameter"),
    ('[machine]\nbdi_strict_limit = 0\n', "machine.bdi_strict_limit: must be 1"),
    ('[server]\nkind = "passthrough"\n', "server.kind: must be one of memory"),
    ('[server]\nserver_dist = "gauss"\n', "server.server_dist: must be one of fixed"),
    ('[disk]\nsize = 1\n', "disk: unknown field"),
    ('[machine]\ndirty_ratio = 5\n', "dirty_background_ratio: must be below dirty_ratio"),
    ('base = "nowhere-such"\n', "no profile of that name"),
    ('[machine\ncpus = 2\n', "not TOML"),
])
def test_a_bad_file_is_one_line_naming_the_file_and_the_field(tmp_path, body, field):
    f = _write(tmp_path / "bad.toml", HEAD + body)
    with pytest.raises(ValueError) as exc:
        machine.load(str(f))
    msg = str(exc.value)
    assert "\n" not in msg and field in msg
    assert str(f) in msg or "nowhere-such" in msg


def test_format_version_loop_and_missing_file(tmp_path):
    for doc, msg in ((HEAD.replace("2", "3"), "schema_version: 3 is not supported"),
                     ('format = "other"\n', "format: expected 'fwb-machine-profile'")):
        with pytest.raises(ValueError, match=msg):
            machine.load(str(_write(tmp_path / "v.toml", doc)))
    _write(tmp_path / "a.toml", HEAD + 'base = "./b.toml"\n')
    _write(tmp_path / "b.toml", HEAD + 'base = "./a.toml"\n')
    with pytest.raises(ValueError, match="base: a loop"):
        machine.load(str(tmp_path / "a.toml"))
    with pytest.raises(ValueError, match="cannot read"):
        machine.load(str(tmp_path / "missing.toml"))
    with pytest.raises(ValueError, match="no profile of that name; known: ci-2cpu-24g"):
        machine.load("no-such-machine")


def test_environment_none_and_the_legacy_cost_profile(tmp_path, monkeypatch):
    monkeypatch.setenv(machine.ENV, "none")
    assert machine.active() is None and params.machine_provenance()["name"] == "none"
    assert params.resolve("no-temp-page", {})["mem_total_pages"] == \
        params.PARAM_BY_NAME["mem_total_pages"].default
    monkeypatch.delenv(machine.ENV)
    old = _write(tmp_path / "cost-profile.json", json.dumps(
        {"format": "fwb-cost-profile", "schema_version": 1, "values": {"fault_ns": 777, "cpus": 2,
                                                                       "server_threads": 16}}))
    monkeypatch.setenv(machine.LEGACY_ENV, str(old))
    cfg = params.resolve("no-temp-page", {})
    assert (cfg["fault_ns"], cfg["cpus"], cfg["server_threads"]) == (777, 2, 16)
    assert machine.active().name == "cost-profile"


def test_a_calibrated_profile_round_trips_and_is_found_in_the_user_directory(tmp_path):
    doc = machine.load("ci-2cpu-24g").doc
    text = machine.dumps(doc, header="a header line")
    assert text.startswith("# a header line\n") and tomllib.loads(text) == {
        k: v for k, v in doc.items()}
    user = machine.user_dir()
    user.mkdir(parents=True)
    _write(user / "mine.toml", text.replace('name = "ci-2cpu-24g"', 'name = "mine"'))
    m = machine.load("mine")
    assert m.source == "user:mine" and m.values == machine.load("ci-2cpu-24g").values
    assert ("mine", str(user / "mine.toml")) in machine.known()


def _suite(md_machine, engine="python"):
    r = sim.run("no-temp-page", "fsync-heavy", 0, "python", writes=4, threads=1)
    return results.Suite(provenance.collect(engine=engine, machine=md_machine), (r,))


def test_gate_refuses_files_of_different_machines_or_engines_unless_allowed():
    ci = params.machine_provenance()
    guest = machine.load("qemu-6.1-2cpu-4g").summary()
    assert gate.compare(_suite(ci), _suite(ci))            # the same machine: gated
    with pytest.raises(ValueError) as exc:
        gate.compare(_suite(ci), _suite(guest))
    msg = str(exc.value)
    assert "\n" not in msg and "ci-2cpu-24g" in msg and "qemu-6.1-2cpu-4g" in msg
    assert "--allow-profile-change" in msg
    assert gate.compare(_suite(ci), _suite(guest), allow_profile_change=True)
    with pytest.raises(ValueError, match="different engines: baseline python, candidate c"):
        gate.compare(_suite(ci), _suite(ci, engine="c"))
    old = results.Suite({"cost_profile": {"path": "/x/results/cost-profile.json",
                                          "sha256": "abc"}}, _suite(ci).runs)
    with pytest.raises(ValueError, match="cost profile /x/results/cost-profile.json"):
        gate.compare(old, _suite(ci))


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300)


def test_cli_machine_option_list_and_metadata(tmp_path):
    out = _cli("list", "--machine", "qemu-7.2-2cpu-4g")
    assert out.returncode == 0, out.stderr
    assert "active machine: qemu-7.2-2cpu-4g" in out.stdout
    assert "mem_total_pages=1002427 [table 524288]" in out.stdout
    bad = _cli("list", "--machine", str(tmp_path / "nope.toml"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nope.toml" in bad.stderr
    env_bad = _cli("list", env={machine.ENV: "no-such-machine"})
    assert env_bad.returncode == 2 and env_bad.stderr.startswith("ERROR: machine profile")
    f = tmp_path / "r.json"
    run = _cli("compare", "--no-mount", "--workloads", "fsync-heavy", "--strategies",
               "no-temp-page,merge-in-queue", "--seeds", "1", "--quiet", "--jobs", "2",
               "--out", str(f), "--machine", "qemu-6.1-2cpu-4g")
    assert run.returncode == 0, run.stderr
    assert "machine qemu-6.1-2cpu-4g (sha256" in run.stdout
    md = results.load(f).metadata["machine"]
    assert md["name"] == "qemu-6.1-2cpu-4g" and md["values"]["mem_total_pages"] == 1001786


def test_real_runs_keep_memory_relative_sizes_of_the_tables_2_gib():
    # A mount here or in a 4 GiB guest must not be asked for the profile's 24 GiB.
    from bench.real import mount
    wl, _ = mount._split_params("mem-pressure", 0, {})
    assert (wl.params["alloc_bytes"], wl.params["chunk_bytes"]) == (2000 << 20, 64 << 20)
    wl, _ = mount._split_params("stuck-server", 0, {})
    assert wl.params["block_size"] == 256 << 10
    wl, _ = mount._split_params("mem-pressure", 0, {"alloc_bytes": 1 << 30})
    assert wl.params["alloc_bytes"] == 1 << 30
