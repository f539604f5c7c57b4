"""FUSE over io_uring in a guest: ``python -m bench kernels uring build | check | cost``.

What it takes (all of it outside the repository, in the kernel cache's ``uring/``):

  libfuse 3.18   Debian sid's ``fuse3`` source package (``apt-get source --download-only``
                 through a private deb-src configuration, like bench.real.kernels.fetch's);
                 Debian's own binary packages (libfuse3-4 / libfuse3-dev 3.18.3-1) are built
                 without io_uring (their ``debian/control`` build-depends on neither liburing
                 nor libnuma, so meson leaves HAVE_URING unset: libfuse3.a references no
                 io_uring_* symbol), so the library is compiled here from that source with
                 HAVE_URING, as its meson.build would with liburing and libnuma found.
  liburing,      the static archives of ``liburing-dev`` and ``libnuma-dev`` from the host's
  libnuma        own apt (``apt-get download``, never installed): the server is linked
                 statically against the host's glibc, so they must be built for it (sid's
                 libnuma.a needs glibc 2.38's __isoc23_strtoul).

``build`` compiles libfuse's lib/*.c (the Linux list of its lib/meson.build, plus fuse_uring.c)
and csrc/server/fwb_fuse_server.c into one static server, ``fwb_fuse_server_uring``.  A
low-level server opts in with the session option ``-o io_uring`` (lib/fuse_lowlevel.c,
fuse_ll_opts; FUSE_CAP_OVER_IO_URING is wanted by default when the kernel offers it): at INIT
libfuse registers one ring queue per CPU (get_nprocs_conf) and its ring threads serve the
requests.  The kernel offers FUSE_OVER_IO_URING at INIT only when ``fuse.enable_uring`` is set
(fs/fuse/inode.c, fuse_send_init: ``if (fuse_uring_enabled()) flags |= FUSE_OVER_IO_URING``),
which on the packaged 7.x kernels (FUSE built in) is the kernel command line's
``fuse.enable_uring=1``; fs/fuse/dev_uring.c's fuse_uring_do_register then switches the
connection's input queue (fiq->ops) to the rings once the ring is ready (in the mainline source
read, when every possible CPU's queue is registered), while FORGETs and INTERRUPTs stay on
/dev/fuse (fuse_io_uring_ops).  Read in mainline, not checked against 7.2.13's own source; what
7.2.13 does is what the server's log shows (every WRITE over a ring, below).

The check that requests really travel over the rings is the server's own: every logged request
carries flag bit 1 when libfuse's fuse_req_is_uring() says it came over a ring (FLAG_URING).

``cost`` measures the server's CPU per page and per WRITE (bench.real.kernels.cost's method:
two layouts per round, one boot each, cpu = pages * per_page + WRITEs * per_request) over
/dev/fuse and over io_uring: the same kernel, command line (fuse.enable_uring=1 in both) and
server binary, only ``-o io_uring`` differs, interleaved with a rotating order.  Guest times are
TCG (emulated) time, so only the ratio io_uring / dev of the same term is meant to be read.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import catalog, fetch

SUITE = "sid"                     # where the libfuse source comes from
SOURCE_PACKAGE = "fuse3"
MIN_VERSION = (3, 18)             # FUSE over io_uring in libfuse
HOST_PACKAGES = ("liburing-dev", "libnuma-dev")
SERVER_NAME = "fwb_fuse_server_uring"
KERNEL_PARAM = "fuse.enable_uring=1"
SERVER_ARGS = ("-o", "io_uring")
FLAG_URING = 2                    # log_record.flags bit 1 (csrc/server/fwb_fuse_server.c)
TRANSPORTS = ("dev", "io_uring")
# libfuse 3.18's lib/meson.build, Linux, without iconv; fuse_uring.c with HAVE_URING
LIB_SOURCES = ("fuse.c", "fuse_loop.c", "fuse_loop_mt.c", "fuse_lowlevel.c", "fuse_opt.c",
               "fuse_signals.c", "buffer.c", "cuse_lowlevel.c", "helper.c", "modules/subdir.c",
               "mount_util.c", "fuse_log.c", "compat.c", "util.c", "mount.c", "fuse_uring.c")
# fuse_config.h: what libfuse's meson.build finds on glibc Linux (HAVE_ICONV and
# LIBFUSE_BUILT_WITH_VERSIONED_SYMBOLS left out: a static server needs neither)
PRIVATE_CONFIG = ("FORK", "FSTATAT", "OPENAT", "READLINKAT", "PIPE2", "SPLICE", "VMSPLICE",
                  "POSIX_FALLOCATE", "FDATASYNC", "UTIMENSAT", "COPY_FILE_RANGE", "FALLOCATE",
                  "PTHREAD_SETNAME_NP", "SYS_XATTR_H", "LINUX_LIMITS_H", "SETXATTR", "STATX",
                  "STRUCT_STAT_ST_ATIM", "URING")

REPO = Path(__file__).resolve().parents[3]
SERVER_SRC = REPO / "csrc" / "server" / "fwb_fuse_server.c"


def uring_dir(root: Path | None = None) -> Path:
    """The cache of the libfuse source, the host's static archives and the server built."""
    return (root or fetch.cache_dir()) / "uring"


def server_path(root: Path | None = None) -> Path:
    return uring_dir(root) / SERVER_NAME


def available(root: Path | None = None) -> tuple[bool, str]:
    """(True, "") when the io_uring server is built, else (False, what is missing, one line)."""
    p = server_path(root)
    if os.access(p, os.X_OK):
        return True, ""
    return False, (f"the io_uring server is not built ({p} missing): run `python -m bench "
                   f"kernels uring build` (it fetches {SUITE}'s {SOURCE_PACKAGE} source and the "
                   f"host's {' and '.join(HOST_PACKAGES)} into {uring_dir(root)})")


def parse_version(name: str) -> tuple[int, ...]:
    """(3, 18, 3) of ``fuse3_3.18.3.orig.tar.gz`` or ``3.18.3-1``."""
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", name)
    if m is None:
        raise ValueError(f"version: none in {name!r}")
    return tuple(int(x) for x in m.groups() if x is not None)


class _SourceApt(fetch.AptConfig):
    """The private apt configuration of `suite`'s source packages (deb-src)."""

    @property
    def sources_line(self) -> str:
        return f"deb-src [signed-by={self.keyring}] {self.mirror} {self.suite} main\n"


def _host_download(package: str, dest: Path) -> Path:
    """`package`'s .deb from the host's own apt, into `dest` (nothing is installed)."""
    dest.mkdir(parents=True, exist_ok=True)
    opts = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
    p = subprocess.run(["apt-get", *opts, "download", "-qq", package], cwd=str(dest),
                       capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    debs = sorted(dest.glob(f"{package}_*.deb"))
    if p.returncode != 0 or not debs:
        err = [ln for ln in p.stderr.splitlines() if ln.strip()]
        raise RuntimeError(f"apt-get download {package} (the host's apt) failed: "
                           + (err[-1] if err else f"exit status {p.returncode}"))
    return debs[-1]


def _unpack_deb(deb: Path, dest: Path) -> None:
    p = subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"dpkg-deb -x {deb.name} failed: {p.stderr.strip()[-200:]}")


def fetch_inputs(root: Path | None = None, update: bool = True,
                 log: Callable[[str], None] = lambda m: None) -> dict[str, Path]:
    """The libfuse source tree and the host's static archives, fetched once into the cache:
    {"source": .../fuse-3.18.x, "sysroot": .../host (usr/include, usr/lib/...)}."""
    d = uring_dir(root)
    src_dir = d / "src"
    have = sorted(src_dir.glob("fuse-*/lib/fuse_uring.c")) if src_dir.is_dir() else []
    if not have:
        mirror, keyring = fetch.debian_mirror()
        apt = _SourceApt((root or fetch.cache_dir()) / "apt" / f"{SUITE}-src", SUITE, mirror,
                         keyring)
        if update or not (apt.root / "lists").is_dir() or \
                not any("_Sources" in p.name for p in (apt.root / "lists").iterdir()):
            log(f"apt-get update ({SUITE} deb-src, private lists)")
            apt.update()
        tmp = Path(tempfile.mkdtemp(prefix="src-", dir=d if d.is_dir() else None))
        try:
            log(f"apt-get source --download-only {SOURCE_PACKAGE} ({SUITE})")
            apt._run("apt-get", ["source", "--download-only", "-qq", SOURCE_PACKAGE],
                     cwd=str(tmp))
            orig = sorted(p for p in tmp.glob(f"{SOURCE_PACKAGE}_*.orig.tar.*")
                          if not p.name.endswith(".asc"))
            if not orig:
                raise RuntimeError(f"apt-get source {SOURCE_PACKAGE}: no .orig tarball")
            if parse_version(orig[-1].name)[:2] < MIN_VERSION:
                raise RuntimeError(f"{orig[-1].name}: FUSE over io_uring needs libfuse >= "
                                   f"{'.'.join(map(str, MIN_VERSION))}")
            src_dir.mkdir(parents=True, exist_ok=True)
            with tarfile.open(orig[-1]) as tar:
                tar.extractall(src_dir, filter="data")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        have = sorted(src_dir.glob("fuse-*/lib/fuse_uring.c"))
        if not have:
            raise RuntimeError(f"{src_dir}: the libfuse source has no lib/fuse_uring.c")
    sysroot = d / "host"
    if not all((sysroot / "usr" / "lib" / "x86_64-linux-gnu" / a).is_file()
               for a in ("liburing.a", "libnuma.a")):
        tmp = Path(tempfile.mkdtemp(prefix="deb-", dir=d))
        try:
            for pkg in HOST_PACKAGES:
                log(f"apt-get download {pkg} (the host's apt)")
                _unpack_deb(_host_download(pkg, tmp), sysroot)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"source": have[-1].parent.parent, "sysroot": sysroot}


def _config_headers(source: Path, gen: Path) -> None:
    """libfuse_config.h (the version) and fuse_config.h (HAVE_* as meson would find them)."""
    ver = parse_version(source.name)
    gen.mkdir(parents=True, exist_ok=True)
    (gen / "libfuse_config.h").write_text(
        "#pragma once\n" + "".join(f"#define FUSE_{k}_VERSION {v}\n" for k, v in
                                   zip(("MAJOR", "MINOR", "HOTFIX"), ver)) +
        "#define FUSE_RC_VERSION\n")
    (gen / "fuse_config.h").write_text(
        "#pragma once\n" + f"#define PACKAGE_VERSION \"{'.'.join(map(str, ver))}\"\n"
        + "".join(f"#define HAVE_{k} 1\n" for k in PRIVATE_CONFIG))


def _cc(args: list[str], what: str) -> None:
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        err = [ln for ln in p.stderr.splitlines() if "error" in ln] or p.stderr.splitlines()
        raise RuntimeError(f"{what}: {(err or ['exit status ' + str(p.returncode)])[0][-300:]}")


def build(root: Path | None = None, update: bool = True,
          log: Callable[[str], None] = lambda m: None) -> Path:
    """Fetch what is missing, then compile libfuse (with io_uring) and the server, statically."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc or gcc) on PATH")
    for tool in ("dpkg-deb", "apt-get"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found: the inputs are Debian packages")
    d = uring_dir(root)
    d.mkdir(parents=True, exist_ok=True)
    inputs = fetch_inputs(root, update=update, log=log)
    src, sysroot = inputs["source"], inputs["sysroot"]
    inc = sysroot / "usr" / "include"
    lib = sysroot / "usr" / "lib" / "x86_64-linux-gnu"
    with tempfile.TemporaryDirectory(prefix="build-", dir=d) as tmp:
        t = Path(tmp)
        _config_headers(src, t / "gen")
        objs = []
        for f in LIB_SOURCES:
            o = t / (f.replace("/", "_") + ".o")
            log(f"cc {f}")
            _cc([cc, "-c", "-O2", "-std=gnu11", "-D_REENTRANT", "-DHAVE_LIBFUSE_PRIVATE_CONFIG_H",
                 "-D_FILE_OFFSET_BITS=64", "-fno-strict-aliasing", "-DFUSE_USE_VERSION=317",
                 '-DFUSERMOUNT_DIR="/usr/bin"', f"-I{t / 'gen'}", f"-I{src / 'include'}",
                 f"-I{src / 'lib'}", f"-I{inc}", str(src / "lib" / f), "-o", str(o)],
                f"libfuse {f}")
            objs.append(str(o))
        out = t / SERVER_NAME
        log(f"cc -static {SERVER_SRC.name}")
        _cc([cc, "-static", "-O2", "-Wall", "-Wextra", "-std=gnu11", "-D_FILE_OFFSET_BITS=64",
             f"-I{t / 'gen'}", f"-I{src / 'include'}", str(SERVER_SRC), *objs,
             str(lib / "liburing.a"), str(lib / "libnuma.a"), "-lpthread", "-ldl", "-lrt", "-lm",
             "-o", str(out)], "the io_uring server")
        os.replace(out, server_path(root))
    return server_path(root)


# ---- in a guest ----

def transport_counts(log: np.ndarray) -> dict[str, int]:
    """How many logged requests (of each kind) came over io_uring and over /dev/fuse."""
    from bench.real import mount
    uring = (log["flags"] & FLAG_URING) != 0
    writes = log["kind"] == mount.KIND_WRITE
    return {"requests": int(len(log)), "requests_uring": int(uring.sum()),
            "writes": int(writes.sum()), "writes_uring": int((writes & uring).sum())}


def run_args(transport: str, root: Path | None = None) -> dict[str, Any]:
    """The keyword arguments of guest.execute for one transport: the io_uring server and
    command line for both, ``-o io_uring`` for io_uring alone."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport: one of {', '.join(TRANSPORTS)}, got {transport!r}")
    ok, why = available(root)
    if not ok:
        raise RuntimeError(why)
    return {"server": str(server_path(root)), "append": KERNEL_PARAM,
            "server_args": SERVER_ARGS if transport == "io_uring" else ()}


def check(kernel: str | catalog.Kernel = "7.2", pages: int = 2048, execute=None,
          root: Path | None = None, progress=None) -> dict[str, Any]:
    """One boot per transport writing `pages` pages (contiguous, then fsync): how many requests
    came over the rings, and the kernel's enable_uring as the guest read it."""
    from .cost import layout_workload
    if execute is None:
        from .guest import execute
    out: dict[str, Any] = {}
    for transport in TRANSPORTS:
        g = execute(kernel, layout_workload("contiguous", pages), cpu_probe=False,
                    folio_trace=False, progress=progress, **run_args(transport, root))
        c = transport_counts(g.mount.log)
        c["enable_uring"] = g.run.meta.get("fuse_knobs", {}).get("fuse.enable_uring", "")
        c["server_err"] = g.files.get("server.err", b"").decode(errors="replace").strip()[-300:]
        out[transport] = c
    return out


def measure(kernel: str | catalog.Kernel = "7.2", rounds: int = 3, pages: int | None = None,
            progress: Callable[[str, str], None] | None = None, execute=None,
            root: Path | None = None) -> dict[str, Any]:
    """`rounds` rounds; in each, both transports boot once per layout (order rotating).  Per
    round and transport, the server's (and flusher's) CPU per page and per WRITE; and per
    round the ratio io_uring / dev of each."""
    from . import cost
    from .guest import cpu_usage
    if execute is None:
        from .guest import execute
    pages = cost.PAGES if pages is None else pages
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds: must be an integer >= 1, got {rounds!r}")
    if isinstance(pages, bool) or not isinstance(pages, int) or not 1024 <= pages <= 1 << 20:
        raise ValueError(f"pages: must be an integer in 1024..{1 << 20}, got {pages!r}")
    args = {t: run_args(t, root) for t in TRANSPORTS}
    order = [(t, lay) for t in TRANSPORTS for lay in cost.LAYOUTS]
    out: dict[str, Any] = {"kernel": str(kernel), "pages": pages, "rounds": [],
                           "server": str(server_path(root)), "append": KERNEL_PARAM}
    for r in range(rounds):
        k = r % len(order)
        got: dict[tuple[str, str], dict] = {}
        for t, lay in order[k:] + order[:k]:
            if progress:
                progress("run", f"round {r + 1}/{rounds}: {t} {lay}")
            g = execute(kernel, cost.layout_workload(lay, pages), cpu_probe=True,
                        folio_trace=False, **args[t])
            u = cpu_usage(g)
            u.update(transport_counts(g.mount.log))
            got[(t, lay)] = u
        row: dict[str, Any] = {"runs": {f"{t} {lay}": got[(t, lay)] for t, lay in order}}
        for t in TRANSPORTS:
            c, e = got[(t, "contiguous")], got[(t, "every-other")]
            for who in ("server", "kworker"):
                p, q = cost._solve(c, e, f"{who}_ns")
                row[f"{t}_{who}_page_ns"], row[f"{t}_{who}_request_ns"] = p, q
        for who in ("server", "kworker"):
            for term in ("page", "request"):
                dev = row[f"dev_{who}_{term}_ns"]
                row[f"ratio_{who}_{term}"] = (row[f"io_uring_{who}_{term}_ns"] / dev
                                              if dev > 0 else float("nan"))
            # the whole runs, unsplit: CPU per page of one layout, io_uring over dev
            for lay in cost.LAYOUTS:
                d, u = got[("dev", lay)], got[("io_uring", lay)]
                row[f"ratio_{who}_run_{lay}"] = ((u[f"{who}_ns"] / u["pages"])
                                                 / (d[f"{who}_ns"] / d["pages"])
                                                 if d[f"{who}_ns"] > 0 and d["pages"] > 0
                                                 and u["pages"] > 0 else float("nan"))
        out["rounds"].append(row)
    for key in [k for k in out["rounds"][0] if k != "runs"]:
        v = np.array([row[key] for row in out["rounds"]], float)
        v = v[np.isfinite(v)]       # a ratio is nan where dev's term came out <= 0
        out[f"median_{key}"] = float(np.median(v)) if len(v) else float("nan")
    return out


def render(res: dict[str, Any]) -> str:
    """The rounds of `measure` as a table, then the medians."""
    terms = [(t, who, term) for who in ("server", "kworker") for term in ("page", "request")
             for t in TRANSPORTS]
    lines = [f"kernel {res['kernel']} ({res['append']}), {res['pages']} pages per boot; "
             "guest (TCG) ns, so read the ratios"]
    head = "round " + " ".join(f"{t[:8]:>8}/{who[:6]}/{term[:4]}" for t, who, term in terms)
    lines.append(head)
    for i, row in enumerate(res["rounds"]):
        lines.append(f"{i + 1:>5} " + " ".join(f"{row[f'{t}_{who}_{term}_ns']:>20.0f}"
                                                for t, who, term in terms))
        w = row["runs"]
        lines.append("      over io_uring: " + ", ".join(
            f"{k}: {v['writes_uring']}/{v['writes']} WRITEs" for k, v in w.items()))
    lines.append("ratio io_uring/dev, median (min..max) over the rounds:")
    for key in [k for k in res["rounds"][0] if k.startswith("ratio_")]:
        v = np.array([row[key] for row in res["rounds"]], float)
        v = v[np.isfinite(v)]
        span = f" ({v.min():.3f}..{v.max():.3f})" if len(v) else ""
        lines.append(f"  {key[6:]:<28} {res[f'median_{key}']:.3f}{span}")
    return "\n".join(lines) + "\n"


def cmd_uring(args) -> int:
    import json
    import sys
    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    progress = None if args.quiet else (lambda what, m: log(f"{what}: {m}"))
    try:
        if args.action == "build":
            print(build(update=not args.no_update, log=log))
            return 0
        if args.action == "check":
            res = check(args.kernel, pages=args.pages or 2048, progress=progress)
        else:
            res = measure(args.kernel, args.rounds, args.pages, progress=progress)
    except (RuntimeError, ValueError, OSError, tarfile.TarError) as exc:
        print(f"kernels uring {args.action}: {exc}", file=sys.stderr)
        return 2
    if args.json or args.action == "check":
        json.dump(res, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(res))
    return 0


def add_parser(sub) -> None:
    q = sub.add_parser("uring", help="FUSE over io_uring in a guest: build the server against "
                                     "libfuse 3.18 (fetched, never installed), check that "
                                     "requests travel over the rings, or measure io_uring "
                                     "against /dev/fuse")
    q.add_argument("action", choices=("build", "check", "cost"))
    q.add_argument("kernel", nargs="?", default="7.2", help="the kernel (default 7.2)")
    q.add_argument("--rounds", type=int, default=3, help="cost: rounds (default 3)")
    q.add_argument("--pages", type=int, default=None,
                   help="pages per boot (default: check 2048, cost 16384)")
    q.add_argument("--no-update", action="store_true", help="build: reuse the private lists")
    q.add_argument("--json", action="store_true", help="cost: every run and term as JSON")
    q.add_argument("--quiet", action="store_true", help="no progress lines")
    q.set_defaults(func=cmd_uring)
