"""Fetch Debian's packaged kernels without installing them.

Each suite gets a private apt configuration under the cache directory: its own sources list
(one line: the machine's Debian mirror and that suite's ``main``, signed by the machine's
debian-archive-keyring), its own lists, package cache and an empty dpkg status, all passed to
apt-get / apt-cache with ``-o Dir::...``.  The machine's own apt state and packages never change.
The mirror is read at run time from the machine's apt sources (one-line ``sources.list`` files
or deb822 ``*.sources``), so no host is named here.

A kernel is resolved through its suite's ``linux-image-amd64``: that metapackage depends on one
``linux-image-<release>`` package, which either holds the kernel itself (6.1, 6.12:
``/boot/vmlinuz-*``) or, from 7.x on, is an empty metapackage depending on
``linux-binary-<release>``, which holds ``/usr/lib/modules/<release>/vmlinuz``.  ``apt-get download`` fetches that one package and the
kernel image (plus ``fs/fuse/fuse.ko`` when FUSE is a module, as on 6.1, and the RAM disk module
``drivers/block/brd.ko`` when the package has it: the O_DIRECT source of dio-redirty on a kernel
whose tmpfs has no O_DIRECT, which came in 6.6) is unpacked from its data archive
(``dpkg-deb --fsys-tarfile``) into the cache; the .deb is deleted afterwards.

The cache: $FWB_KERNEL_CACHE, else $XDG_CACHE_HOME/fuse-writeback-bench/kernels, else
~/.cache/fuse-writeback-bench/kernels.  Per kernel: <name>/<package version>/ with
manifest.json, vmlinuz and fuse.ko (if any).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import catalog

CACHE_ENV = "FWB_KERNEL_CACHE"
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
APT_SOURCES = "/etc/apt/sources.list"
APT_SOURCES_DIR = "/etc/apt/sources.list.d"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 2             # 2: brd_module added; older copies are fetched again
RESOLVED = "resolved.json"      # per suite: what the last fetch resolved (read by `kernels list`)


def cache_dir() -> Path:
    """Where kernels are cached (outside the repository)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fuse-writeback-bench" / "kernels"


# ---- the machine's mirror ----

@dataclass(frozen=True, slots=True)
class Source:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str


def parse_one_line(text: str) -> list[Source]:
    """``deb [options] URI SUITE COMPONENT...`` lines (deb-src and comments ignored)."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[4:].strip()
        opts: dict[str, str] = {}
        if rest.startswith("["):
            end = rest.find("]")
            if end < 0:
                continue
            for kv in rest[1:end].split():
                k, _, v = kv.partition("=")
                opts[k.lower()] = v
            rest = rest[end + 1:].strip()
        parts = rest.split()
        if len(parts) < 3:
            continue
        out.append(Source(parts[0], (parts[1],), tuple(parts[2:]),
                          opts.get("signed-by", "")))
    return out


def parse_deb822(text: str) -> list[Source]:
    """deb822 paragraphs (``Types: deb``, ``URIs``, ``Suites``, ``Components``, ``Signed-By``)."""
    out = []
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in para.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key is not None:
                fields[key] += "\n" + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        signed = fields.get("signed-by", "")
        if "\n" in signed:       # an embedded key block: use the machine's keyring instead
            signed = ""
        for uri in fields.get("uris", "").split():
            out.append(Source(uri, tuple(fields.get("suites", "").split()),
                              tuple(fields.get("components", "").split()), signed))
    return out


def machine_sources() -> list[Source]:
    out: list[Source] = []
    with contextlib.suppress(OSError):
        out += parse_one_line(Path(APT_SOURCES).read_text())
    d = Path(APT_SOURCES_DIR)
    if d.is_dir():
        for p in sorted(d.iterdir()):
            with contextlib.suppress(OSError):
                if p.name.endswith(".list"):
                    out += parse_one_line(p.read_text())
                elif p.name.endswith(".sources"):
                    out += parse_deb822(p.read_text())
    return out


def debian_mirror(sources: list[Source] | None = None) -> tuple[str, str]:
    """(URI, keyring) of the machine's Debian archive: a source with `main` and a plain release
    suite (not -security, -updates or -backports).  RuntimeError when there is none."""
    for s in machine_sources() if sources is None else sources:
        plain = [x for x in s.suites if "-" not in x and "/" not in x]
        if "main" in s.components and plain and not s.uri.rstrip("/").endswith("-security"):
            keyring = s.signed_by or DEFAULT_KEYRING
            return s.uri.rstrip("/"), keyring
    raise RuntimeError(f"no Debian mirror in {APT_SOURCES} or {APT_SOURCES_DIR}/: "
                       "the kernels are fetched from the machine's own Debian archive")


# ---- the private apt configuration ----

class AptConfig:
    """A private apt configuration for one suite under `root`."""

    def __init__(self, root: Path, suite: str, mirror: str, keyring: str):
        self.root, self.suite, self.mirror, self.keyring = Path(root), suite, mirror, keyring

    @property
    def sources_line(self) -> str:
        return f"deb [signed-by={self.keyring}] {self.mirror} {self.suite} main\n"

    def options(self) -> list[str]:
        r = self.root
        opts = {
            "Dir::Etc::sourcelist": r / "etc" / "sources.list",
            "Dir::Etc::sourceparts": r / "etc" / "sources.list.d",
            "Dir::Etc::preferences": r / "etc" / "preferences",
            "Dir::Etc::preferencesparts": r / "etc" / "preferences.d",
            "Dir::State::Lists": r / "lists",
            "Dir::State::status": r / "status",
            "Dir::Cache": r / "cache",
            "Dir::Cache::archives": r / "cache" / "archives",
            "Dir::Cache::pkgcache": r / "cache" / "pkgcache.bin",
            "Dir::Cache::srcpkgcache": r / "cache" / "srcpkgcache.bin",
        }
        out = []
        for k, v in opts.items():
            out += ["-o", f"{k}={v}"]
        out += ["-o", "APT::Get::List-Cleanup=0", "-o", "Acquire::Languages=none"]
        if os.geteuid() == 0:
            # apt drops to the _apt user to download, which cannot enter root's home; it
            # would fall back to root anyway, with a warning on every call.
            out += ["-o", "APT::Sandbox::User=root"]
        return out

    def prepare(self) -> None:
        r = self.root
        for d in (r / "etc" / "sources.list.d", r / "etc" / "preferences.d",
                  r / "lists" / "partial", r / "cache" / "archives" / "partial"):
            d.mkdir(parents=True, exist_ok=True)
        (r / "etc" / "sources.list").write_text(self.sources_line)
        (r / "status").touch()

    def has_lists(self) -> bool:
        d = self.root / "lists"
        return d.is_dir() and any("_Packages" in p.name for p in d.iterdir())

    def _run(self, tool: str, args: list[str], cwd: str | None = None) -> str:
        cmd = [tool, *self.options(), *args]
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd,
                           env={**os.environ, "LC_ALL": "C"})
        if p.returncode != 0:
            err = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
            raise RuntimeError(f"{tool} {args[0]} ({self.suite}) failed: "
                               + (err[-1] if err else f"exit status {p.returncode}"))
        return p.stdout

    def update(self) -> None:
        self.prepare()
        self._run("apt-get", ["update", "-qq"])

    def show(self, package: str) -> dict[str, str]:
        """The fields of `package` in this suite (its newest version)."""
        text = self._run("apt-cache", ["show", "--no-all-versions", package])
        fields: dict[str, str] = {}
        for line in text.splitlines():
            if line and line[0] not in " \t" and ":" in line:
                k, _, v = line.partition(":")
                fields[k] = v.strip()
        return fields

    def download(self, package: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        self._run("apt-get", ["download", "-qq", package], cwd=str(dest))
        debs = sorted(dest.glob(f"{package}_*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download {package}: no .deb in {dest}")
        return debs[-1]


def depends(fields: dict[str, str]) -> list[str]:
    """Package names of a Depends field (first alternative of each)."""
    out = []
    for dep in fields.get("Depends", "").split(","):
        name = dep.split("|")[0].strip().split(" ")[0]
        if name:
            out.append(name)
    return out


@dataclass(frozen=True, slots=True)
class Resolved:
    kernel: str            # catalog name
    suite: str
    meta_version: str      # linux-image-amd64's version in the suite
    image_package: str     # linux-image-<release>
    package: str           # the package holding vmlinuz (the image, or linux-binary-<release>)
    version: str           # its version


def resolve(apt: AptConfig, kernel: catalog.Kernel) -> Resolved:
    """Which package and version hold `kernel` in its suite right now (from the private lists)."""
    meta = apt.show(catalog.META_PACKAGE)
    images = [d for d in depends(meta) if d.startswith("linux-image-")]
    if not images:
        raise RuntimeError(f"{catalog.META_PACKAGE} in {kernel.suite} depends on no linux-image-*")
    image = apt.show(images[0])
    binaries = [d for d in depends(image) if d.startswith("linux-binary-")]
    holder = apt.show(binaries[0]) if binaries else image
    return Resolved(kernel.name, kernel.suite, meta.get("Version", ""), images[0],
                    holder["Package"], holder["Version"])


# ---- the cache ----

@dataclass(frozen=True, slots=True)
class Fetched:
    """A kernel in the cache."""
    kernel: str
    suite: str
    family: str
    package: str
    package_version: str
    release: str               # the modules directory name, as uname -r reports it
    vmlinuz: str               # absolute paths
    fuse_module: str | None
    brd_module: str | None
    fetched: str               # UTC date of the download
    format: int = MANIFEST_FORMAT

    @property
    def run_name(self) -> str:
        return catalog.run_name(self.package_version)


def _safe(version: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+_-]", "_", version)


def kernel_dir(kernel: catalog.Kernel, package_version: str, root: Path | None = None) -> Path:
    return (root or cache_dir()) / kernel.name / _safe(package_version)


def load_manifest(d: Path) -> Fetched | None:
    try:
        data = json.loads((d / MANIFEST).read_text())
        if data.get("format") != MANIFEST_FORMAT:
            return None
        f = Fetched(**data)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    for p in (f.vmlinuz, f.fuse_module, f.brd_module):
        if p and not os.path.isfile(p):
            return None
    return f


def cached(kernel: catalog.Kernel, root: Path | None = None) -> Fetched | None:
    """The most recently fetched complete copy of `kernel`, or None."""
    base = (root or cache_dir()) / kernel.name
    if not base.is_dir():
        return None
    found = [f for d in base.iterdir() if d.is_dir() and (f := load_manifest(d)) is not None]
    return max(found, key=lambda f: f.fetched) if found else None


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _extract(deb: Path, dest: Path) -> tuple[str, str, str | None, str | None]:
    """Unpack vmlinuz (and fuse.ko*, brd.ko*) from `deb` into `dest`:
    (release, vmlinuz, fuse module, brd module)."""
    p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    vmlinuz = None
    modules: dict[str, str] = {}
    release = ""
    try:
        with tarfile.open(fileobj=p.stdout, mode="r|*") as tar:
            for m in tar:
                name = m.name.lstrip("./")
                if not m.isfile():
                    continue
                got = None
                if re.fullmatch(r"boot/vmlinuz-(.+)", name):
                    release = name.split("vmlinuz-", 1)[1]
                    got = "vmlinuz"
                elif re.fullmatch(r"(usr/)?lib/modules/[^/]+/vmlinuz", name):
                    release = name.split("/")[-2]
                    got = "vmlinuz"
                elif re.fullmatch(r"(usr/)?lib/modules/[^/]+/kernel/(fs/fuse/fuse|drivers/block/brd)"
                                  r"\.ko(\.xz|\.zst)?", name):
                    got = os.path.basename(name)
                if got is None:
                    continue
                src = tar.extractfile(m)
                with open(dest / got, "wb") as out:
                    shutil.copyfileobj(src, out)
                if got == "vmlinuz":
                    vmlinuz = str(dest / got)
                else:
                    modules[got.split(".")[0]] = str(dest / got)
    finally:
        if p.stdout:
            p.stdout.close()
        err = p.stderr.read().decode(errors="replace").strip() if p.stderr else ""
        rc = p.wait()
    if rc != 0:
        why = err.splitlines()[-1] if err else f"exit status {rc}"
        raise RuntimeError(f"dpkg-deb --fsys-tarfile {deb.name} failed: {why}")
    if vmlinuz is None:
        raise RuntimeError(f"{deb.name}: no vmlinuz in the package")
    if any(m.endswith(".zst") for m in modules.values()):
        raise RuntimeError(f"{deb.name}: modules are zstd-compressed; only plain and .xz are read")
    return release, vmlinuz, modules.get("fuse"), modules.get("brd")


def fetch(kernel: catalog.Kernel, update: bool = True, root: Path | None = None,
          log=lambda msg: None) -> Fetched:
    """Bring `kernel` into the cache (a no-op when its current version is there already)."""
    root = root or cache_dir()
    mirror, keyring = debian_mirror()
    apt = AptConfig(root / "apt" / kernel.suite, kernel.suite, mirror, keyring)
    with _locked(root / "apt" / f"{kernel.suite}.lock"):
        if update or not apt.has_lists():
            log(f"apt-get update ({kernel.suite}, private lists)")
            apt.update()
        else:
            apt.prepare()
        res = resolve(apt, kernel)
        _write_json(apt.root / RESOLVED, asdict(res))
        d = kernel_dir(kernel, res.version, root)
        have = load_manifest(d)
        if have is not None:
            return have
        log(f"apt-get download {res.package} {res.version}")
        tmp = Path(tempfile.mkdtemp(prefix="fetch-", dir=root))
        try:
            deb = apt.download(res.package, tmp)
            log(f"unpacking {deb.name}")
            d.mkdir(parents=True, exist_ok=True)
            release, vmlinuz, module, brd = _extract(deb, d)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        f = Fetched(kernel=kernel.name, suite=kernel.suite, family=kernel.family,
                    package=res.package, package_version=res.version, release=release,
                    vmlinuz=vmlinuz, fuse_module=module, brd_module=brd,
                    fetched=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        _write_json(d / MANIFEST, asdict(f))
        return f


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def available_version(kernel: catalog.Kernel, root: Path | None = None) -> str | None:
    """The package version the suite offered at the last fetch (None before the first)."""
    try:
        data = json.loads(((root or cache_dir()) / "apt" / kernel.suite / RESOLVED).read_text())
        return str(data["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
