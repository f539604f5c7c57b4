"""Machine profiles: the machine a simulation models, as a file a user can read, copy and change.

A profile is a TOML (or JSON) document:

  format = "fwb-machine-profile", schema_version = 2
  name, description            what it is; name defaults to the file's stem
  base = "NAME" or "PATH"      optional: start from that profile and change what this one gives
                               (a relative PATH is taken from this file's directory)
  [machine]                    CPUs, memory and limits: cpus, mem_total_pages, dirty_ratio,
                               dirty_background_ratio, bdi_max_ratio, hz and any other model
                               parameter of bench.sim.params (max_pages, ...); bdi_strict_limit
                               must be 1 (FUSE's bdi is strictlimit: fs/fuse/inode.c
                               fuse_bdi_init; the model has no other kind)
  [server]                     kind = "memory" (the project's in-memory server, the only one) and
                               the server parameters (server_threads, server_dist, ...)
  [costs]                      the cost parameters (page_copy_ns, write_page_ns, ...)
  [transport.io_uring]         the server's costs over FUSE-over-io_uring (the `transport`
                               parameter; [server] holds the /dev/fuse ones): either server
                               parameters measured that way, or not_measured = "because ..."
                               (selecting io_uring on the profile is then an error saying so)
  [measurements], [provenance], [mount]   how the values were obtained; free-form, not checked

Every key of [machine], [server] and [costs] is a parameter of bench.sim.params, checked against
its range; a bad one is a ValueError naming the file and the field.  A parameter a profile does
not give keeps the table's default.  A bdi's ``max_bytes`` is not a field: the kernel stores only
the ratio and derives max_bytes from it and the global dirty threshold (mm/page-writeback.c,
bdi_get_max_bytes / bdi_set_max_bytes), so the ratio is the whole limit.

Which profile is active: ``select(spec)`` (the CLI's ``--machine NAME|PATH``), else the
environment variable FWB_MACHINE (a name, a path, or "none" for the table's defaults), else
FWB_COST_PROFILE (its older name, same meaning), else DEFAULT.  A name is looked up among the
profiles shipped in the package (bench/machines/NAME.toml, read through importlib.resources, so
an installed copy and the checkout find the same files), then in the user's data directory
(``user_dir()``, where ``calibrate`` writes).  ``Machine.sha256`` hashes the resolved parameter
values, so two files that simulate the same machine have the same hash, and a result file's
metadata names the profile by name and hash (``Machine.summary``).

Format versions:
  1  "fwb-cost-profile": values {param: number} (cost and server parameters), measurements,
     provenance; still read: its values go to [costs] and [server], cpus to [machine].
  2  "fwb-machine-profile": the sections above, and base.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from bench.sim import params as _params

if sys.version_info >= (3, 11):
    import tomllib
else:                                   # pragma: no cover (the dependency for 3.10)
    import tomli as tomllib

FORMAT = "fwb-machine-profile"
SCHEMA_VERSION = 2
LEGACY_FORMAT = "fwb-cost-profile"
DEFAULT = "ci-2cpu-24g"
ENV = "FWB_MACHINE"
LEGACY_ENV = "FWB_COST_PROFILE"
NONE = "none"
SECTIONS = ("machine", "server", "costs")
FREE_FORM = ("measurements", "provenance", "mount")
TOP_KEYS = ("format", "schema_version", "name", "description", "base", "transport") + SECTIONS + FREE_FORM
SERVER_KINDS = ("memory",)
APP_NAME = "fuse-writeback-bench"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_BASE_DEPTH = 8


def section_of(param: str) -> str | None:
    """The profile section a parameter belongs in, or None if a profile cannot set it."""
    if param == "cpus":
        return "machine"
    if param in _params.PARAM_BY_NAME:
        group = _params.PARAM_BY_NAME[param].group
        if param in ("stall_start_ns", "stall_ns"):
            return None                 # a stall belongs to a workload, not to a machine
        return {"model": "machine", "server": "server", "cost": "costs"}.get(group)
    if param in _params.FLOAT_PARAMS:
        return {"server": "server", "cost": "costs", "model": "machine"}.get(
            _params.FLOAT_PARAMS[param][3])
    return None


@dataclass(frozen=True, slots=True)
class Machine:
    """A resolved profile: its name, where it came from, the parameter values it sets."""
    name: str
    source: str                     # "package:NAME", "user:NAME" or the path as given
    values: Mapping[str, Any]       # parameter -> value, every section merged
    sha256: str                     # of the values (canonical JSON), 16 hex digits
    description: str = ""
    doc: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # transport name -> {"costs": {param: value}} or {"reason": why not measured}
    transports: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def transport_costs(self, name: str) -> tuple[dict[str, Any] | None, str]:
        """(server parameters measured over `name`, "") or (None, why there are none)."""
        t = self.transports.get(name)
        if t is None:
            return None, f"the profile has no [transport.{name}] section"
        if "reason" in t:
            return None, t["reason"]
        return dict(t["costs"]), ""

    def summary(self) -> dict[str, Any]:
        """What a result file's metadata["machine"] says."""
        prov = self.doc.get("provenance") if isinstance(self.doc.get("provenance"), dict) else {}
        out: dict[str, Any] = {"name": self.name, "sha256": self.sha256, "source": self.source}
        if self.doc.get("base"):
            out["base"] = self.doc["base"]
        out.update({k: prov[k] for k in ("date", "kernel", "cpu_model", "git_commit")
                    if k in prov})
        out["values"] = dict(self.values)
        return out


def valid_name(name: str) -> bool:
    return bool(_NAME_RE.fullmatch(name))


def values_hash(values: Mapping[str, Any]) -> str:
    text = json.dumps(dict(values), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---- where profiles are ----

def user_dir() -> Path:
    """The user's directory of machine profiles (``calibrate`` writes there by default)."""
    import platformdirs
    return Path(platformdirs.user_data_dir(APP_NAME)) / "machines"


def _package_dir():
    return resources.files("bench").joinpath("machines")


def packaged() -> list[str]:
    """Names of the profiles shipped in the package."""
    return sorted(e.name[:-5] for e in _package_dir().iterdir() if e.name.endswith(".toml"))


def known() -> list[tuple[str, str]]:
    """(name, where) of every profile a name can pick: the package's, then the user's."""
    out = [(n, "package") for n in packaged()]
    d = user_dir()
    if d.is_dir():
        names = {n for n, _ in out}
        for p in sorted(d.iterdir()):
            if p.suffix in (".toml", ".json") and p.stem not in names:
                out.append((p.stem, str(p)))
                names.add(p.stem)
    return out


def _is_path(spec: str) -> bool:
    return os.sep in spec or spec.endswith((".toml", ".json")) or spec.startswith((".", "~"))


def _read(spec: str, rel_to: Path | None = None) -> tuple[bytes, str, str, Path | None]:
    """(raw bytes, suffix, source label, directory for a relative base) of a NAME or PATH."""
    if _is_path(spec):
        p = Path(spec).expanduser()
        if rel_to is not None and not p.is_absolute():
            p = rel_to / p
        try:
            return p.read_bytes(), p.suffix, spec, p.resolve().parent
        except OSError as exc:
            raise ValueError(f"machine profile {spec}: cannot read: "
                             f"{exc.strerror or exc}") from None
    if not _NAME_RE.fullmatch(spec):
        raise ValueError(f"machine profile {spec!r}: neither a profile name nor a path")
    res = _package_dir().joinpath(f"{spec}.toml")
    if res.is_file():
        return res.read_bytes(), ".toml", f"package:{spec}", None
    d = user_dir()
    for suffix in (".toml", ".json"):
        p = d / f"{spec}{suffix}"
        if p.is_file():
            return p.read_bytes(), suffix, f"user:{spec}", d
    names = ", ".join(n for n, _ in known())
    raise ValueError(f"machine profile {spec!r}: no profile of that name; known: {names} "
                     f"(or give the path of a .toml or .json file)")


def parse(raw: bytes, suffix: str, where: str) -> dict[str, Any]:
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise ValueError(f"machine profile {where}: not UTF-8 text") from None
    if suffix == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"machine profile {where}: not JSON (line {exc.lineno}: "
                             f"{exc.msg})") from None
    else:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"machine profile {where}: not TOML ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"machine profile {where}: expected a table at the top")
    return doc


# ---- checking ----

def check_transports(doc: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The checked [transport.NAME] tables of a document: {name: {"costs": {...}} or
    {"reason": str}}.  "dev" is [server] itself and has no table."""
    where = f"machine profile {where}"
    table = doc.get("transport", {})
    if not isinstance(table, dict):
        raise ValueError(f"{where}: transport: expected a table")
    out: dict[str, Any] = {}
    for name, t in table.items():
        field_ = f"{where}: transport.{name}"
        if name not in _params.TRANSPORTS or name == _params.TRANSPORTS[0]:
            raise ValueError(f"{field_}: unknown transport; allowed: "
                             f"{', '.join(_params.TRANSPORTS[1:])} ([server] is {_params.TRANSPORTS[0]})")
        if not isinstance(t, dict):
            raise ValueError(f"{field_}: expected a table")
        if "not_measured" in t:
            if set(t) != {"not_measured"} or not isinstance(t["not_measured"], str) \
                    or not t["not_measured"].strip():
                raise ValueError(f"{field_}.not_measured: expected the reason alone, as a string")
            out[name] = {"reason": t["not_measured"].strip()}
            continue
        costs = {}
        for key, v in t.items():
            if section_of(key) != "server" or key == "transport":
                raise ValueError(f"{field_}.{key}: not a server parameter (or not_measured)")
            costs[key] = _check_value(f"{field_}.{key}", key, v)
        out[name] = {"costs": costs}
    return out


def _check_value(where: str, key: str, v: Any) -> Any:
    if key == "transport" and isinstance(v, str):
        if v not in _params.TRANSPORTS:
            raise ValueError(f"{where}: must be one of {', '.join(_params.TRANSPORTS)}, got {v!r}")
        return _params.TRANSPORTS.index(v)
    if key == "server_dist" and isinstance(v, str):
        if v not in _params.SERVER_DISTS:
            raise ValueError(f"{where}: must be one of {', '.join(_params.SERVER_DISTS)}, "
                             f"got {v!r}")
        return _params.SERVER_DISTS.index(v)
    if key in _params.FLOAT_PARAMS:
        _, lo, hi, _, _ = _params.FLOAT_PARAMS[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
                math.isfinite(v) and lo <= v <= hi):
            raise ValueError(f"{where}: must be a number in {lo}..{hi}, got {v!r}")
        return float(v)
    p = _params.PARAM_BY_NAME[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{where}: expected an integer, got {v!r}")
    if not p.lo <= v <= p.hi:
        raise ValueError(f"{where}: must be in {p.lo}..{p.hi}, got {v}")
    return v


def check(doc: Any, where: str) -> dict[str, dict[str, Any]]:
    """The checked sections {machine, server, costs} -> {param: value} of one document (its
    base not applied).  ValueError naming `where` and the field otherwise."""
    where = f"machine profile {where}"
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: expected a table at the top")
    if doc.get("format") == LEGACY_FORMAT:
        return _check_legacy(doc, where)
    if doc.get("format") != FORMAT:
        raise ValueError(f"{where}: format: expected {FORMAT!r}, got {doc.get('format')!r}")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{where}: schema_version: {doc.get('schema_version')!r} is not "
                         f"supported (this version reads {SCHEMA_VERSION})")
    for key in doc:
        if key not in TOP_KEYS:
            raise ValueError(f"{where}: {key}: unknown field; allowed: {', '.join(TOP_KEYS)}")
    for key in ("name", "description", "base"):
        if key in doc and not isinstance(doc[key], str):
            raise ValueError(f"{where}: {key}: expected a string, got {doc[key]!r}")
    if "name" in doc and not _NAME_RE.fullmatch(doc["name"]):
        raise ValueError(f"{where}: name: {doc['name']!r}: use letters, digits, '.', '_', '-' "
                         "(at most 64)")
    for key in FREE_FORM:
        if key in doc and not isinstance(doc[key], dict):
            raise ValueError(f"{where}: {key}: expected a table")
    out: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for sec in SECTIONS:
        table = doc.get(sec, {})
        if not isinstance(table, dict):
            raise ValueError(f"{where}: {sec}: expected a table")
        for key, v in table.items():
            field_ = f"{where}: {sec}.{key}"
            if sec == "machine" and key == "bdi_strict_limit":
                if v != 1 or isinstance(v, bool):
                    raise ValueError(f"{field_}: must be 1 (the model's FUSE bdi is "
                                     f"strictlimit, as fuse_bdi_init sets it), got {v!r}")
                continue
            if sec == "server" and key == "kind":
                if v not in SERVER_KINDS:
                    raise ValueError(f"{field_}: must be one of {', '.join(SERVER_KINDS)} (the "
                                     f"project's server keeps files in memory), got {v!r}")
                continue
            home = section_of(key)
            if home is None:
                raise ValueError(f"{field_}: not a machine, server or cost parameter")
            if home != sec:
                raise ValueError(f"{field_}: belongs in [{home}]")
            out[sec][key] = _check_value(field_, key, v)
    return out


def _check_legacy(doc: dict, where: str) -> dict[str, dict[str, Any]]:
    if doc.get("schema_version") != 1:
        raise ValueError(f"{where}: schema_version: {doc.get('schema_version')!r} is not "
                         f"supported for {LEGACY_FORMAT!r} (1)")
    values = doc.get("values")
    if not isinstance(values, dict):
        raise ValueError(f"{where}: values: expected a table")
    out: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, v in values.items():
        home = section_of(key)
        if home is None or home == "machine" and key != "cpus":
            raise ValueError(f"{where}: values.{key}: not a cost or server parameter")
        out[home][key] = _check_value(f"{where}: values.{key}", key, v)
    return out


# ---- loading ----

def _load_doc(spec: str, rel_to: Path | None, seen: tuple[str, ...]
              ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], str]:
    """(merged document, merged sections, source) of spec and its bases."""
    raw, suffix, source, here = _read(spec, rel_to)
    if source in seen or len(seen) >= _MAX_BASE_DEPTH:
        raise ValueError(f"machine profile {source}: base: a loop or more than "
                         f"{_MAX_BASE_DEPTH} levels ({' -> '.join(seen + (source,))})")
    doc = parse(raw, suffix, source)
    sections = check(doc, source)
    check_transports(doc, source)
    if doc.get("format") == LEGACY_FORMAT:
        doc = {"name": Path(spec).stem, **{k: doc[k] for k in FREE_FORM if k in doc}}
    if "name" not in doc:
        doc = {**doc, "name": Path(spec).stem if _is_path(spec) else spec}
    base = doc.get("base")
    if not base:
        return doc, sections, source
    bdoc, bsections, _ = _load_doc(base, here, seen + (source,))
    merged = {**bdoc, **{k: v for k, v in doc.items() if k not in SECTIONS + FREE_FORM}}
    for key in SECTIONS + FREE_FORM + ("transport",):
        if key in bdoc or key in doc:
            merged[key] = {**bdoc.get(key, {}), **doc.get(key, {})}
    return merged, {s: {**bsections[s], **sections[s]} for s in SECTIONS}, source


@functools.lru_cache(maxsize=16)
def _load_cached(spec: str, stamp: tuple) -> Machine:
    doc, sections, source = _load_doc(spec, None, ())
    values: dict[str, Any] = {}
    for s in SECTIONS:
        values.update(sections[s])
    table = _params.PARAM_BY_NAME
    bg = values.get("dirty_background_ratio", table["dirty_background_ratio"].default)
    ratio = values.get("dirty_ratio", table["dirty_ratio"].default)
    if bg >= ratio:
        raise ValueError(f"machine profile {source}: machine.dirty_background_ratio: must be "
                         f"below dirty_ratio ({bg} >= {ratio})")
    return Machine(name=doc["name"], source=source, values=values, sha256=values_hash(values),
                   description=str(doc.get("description", "")), doc=doc,
                   transports=check_transports(doc, source))


def load(spec: str) -> Machine:
    """The profile named or found at `spec` (a NAME or a PATH), bases applied.  A file is read
    again when it changes (its mtime and size are part of the cache key)."""
    spec = str(spec)
    stamp: tuple = ()
    if _is_path(spec):
        try:
            st = Path(spec).expanduser().stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            pass                     # _read says why, in one line
    return _load_cached(spec, stamp)


def spec() -> str:
    """The active profile's spec: FWB_MACHINE, else FWB_COST_PROFILE, else DEFAULT."""
    for env in (ENV, LEGACY_ENV):
        value = os.environ.get(env)
        if value is not None:
            return value.strip() or NONE
    return DEFAULT


def active() -> Machine | None:
    """The active profile, or None for the table's defaults (FWB_MACHINE=none)."""
    s = spec()
    return None if s.lower() == NONE else load(s)


def select(spec_: str) -> Machine | None:
    """Make `spec_` the active profile for this process and the processes it starts (it sets
    FWB_MACHINE; a relative path is made absolute).  Returns it, checked."""
    s = str(spec_).strip()
    if not s:
        raise ValueError("--machine: empty; give a profile name, a path, or 'none'")
    if s.lower() != NONE and _is_path(s):
        s = str(Path(s).expanduser().absolute())
    machine = None if s.lower() == NONE else load(s)
    os.environ[ENV] = s
    return machine


def use(args) -> Machine | None:
    """A verb's --machine (see bench.cli.add_machine_option): select it when given; the active
    profile either way (checked, so a bad one is one error line before any run)."""
    spec_ = getattr(args, "machine", None)
    return select(spec_) if spec_ is not None else active()


def label(m: Machine | None) -> str:
    """One line naming a machine: "ci-2cpu-24g (sha256 7a4c2fb1e3d6df51)"."""
    return "none (the parameter table)" if m is None else f"{m.name} (sha256 {m.sha256})"


# ---- writing (TOML, for calibrate) ----

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(k: str) -> str:
    return k if _BARE.fullmatch(k) else json.dumps(k)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v if x is not None) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_key(str(k))} = {_scalar(x)}" for k, x in v.items()
                               if x is not None) + "}"
    raise ValueError(f"machine profile: cannot write a {type(v).__name__} in TOML")


def dumps(doc: Mapping[str, Any], header: str = "") -> str:
    """A profile document as TOML (None values are left out: TOML has no null)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]

    def table(path: list[str], d: Mapping[str, Any]) -> None:
        plain = [(k, v) for k, v in d.items() if v is not None and not isinstance(v, Mapping)]
        nested = [(k, v) for k, v in d.items() if isinstance(v, Mapping)]
        if path and (plain or not nested):
            lines.append("")
            lines.append("[" + ".".join(_key(p) for p in path) + "]")
        for k, v in plain:
            lines.append(f"{_key(str(k))} = {_scalar(v)}")
        for k, v in nested:
            table(path + [str(k)], v)

    table([], doc)
    return "\n".join(lines).lstrip("\n") + "\n"
