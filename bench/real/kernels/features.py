"""FUSE features of a kernel, and what shows them (issue 11: mainline after the temp page).

Each feature is shown, in order of preference, by
  symbols   names in the booted kernel's /proc/kallsyms (every guest's /init keeps the fuse_*
            and iomap_* function names: ``files["fuse_symbols"]``); a static function can be
            inlined away, so a missing name alone is weak evidence, a present one strong
  knobs     the fs.fuse sysctls and the fuse module's parameters the booted kernel offers
            (``files["fuse_knobs"]``; a parameter of a compiled-out file is absent)
  measured  what a run showed (folio orders of the page cache, bench.real.kernels.folios; how
            sync(2) ended with the server stuck, bench.real.kernels.validate.blocking_guest)
  version   the upstream version the commit first appeared in, with the kernel's own version
            (indirect: a distribution may backport or revert; stable backports are named where
            known).  Used where a change leaves no name or knob (a flag, a changed formula).

Commits and first versions (read from the commit lists and stable review mails the search tools
hold; the ones marked "not verified" could not be checked against a tag):
  iomap_buffered_write  a4c9ab1d4975 fuse: iomap for buffered writes (6.17, as the brief gives;
                      not verified by tag): fuse's aops lose ->write_begin / ->write_end, so the
                      names fuse_write_begin and fuse_write_end leave kallsyms (a function whose
                      address is in an ops table is not inlined away: its absence is evidence).
                      fuse_iomap_begin / fuse_fill_iomap are no evidence: 6.1 has them (DAX)
  iomap_writeback     ef7e7cbb323f fuse: iomap for writeback (6.17): fuse_iomap_writeback_range
                      appears, fuse_writepages_fill (the old ->writepages walker) goes
  large_folios        b46e09667411 fuse: large folios (fuse tree since 2026-09, not in mainline
                      at the time of writing: not verified) -- shown only by measurement
  request_timeout     9b17cb59a7db (6.14): fuse_check_timeout, fs.fuse.default_request_timeout
                      and fs.fuse.max_request_timeout
  max_pages_limit     fs.fuse.max_pages_limit (6.13)
  io_uring            FUSE over io_uring (6.14, CONFIG_FUSE_IO_URING): fuse_uring_* and the
                      module parameter enable_uring (defined in fs/fuse/dev_uring.c, built only
                      with the option)
  sync_no_wait        f9a49aa302a0 (AS_NO_DATA_INTEGRITY; mm-hotfixes for 6.19-rc7) and
                      76f9377cd2ab (SB_I_NO_DATA_INTEGRITY; vfs.fixes for 7.0; in the 6.18 and
                      6.19 stable review series of 2026-03-31): sync(2) stops waiting on FUSE
                      writeback.  Needed only where the temp page is gone (0c58a97f919c, 6.16),
                      which it fixes.  Measured where a stuck-server run was made (sync(2)
                      returning before the stall's end: ``probe(sync_class=...)``), else by
                      version
  wb_thresh_floor     39ac99852fca mm/page-writeback: raise wb_thresh to prevent write blocking
                      with strictlimit (mm-stable, 2024-11: 6.13)
  bg_wb_thresh        0437906841d0 mm: start background writeback based on per-wb threshold for
                      strictlimit BDIs (mm-hotfixes around 7.1-rc2: 7.1; not verified by tag)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

SYSCTL_DIR = "/proc/sys/fs/fuse/"
PARAM_DIR = "/sys/module/fuse/parameters/"
STATUSES = ("yes", "no", "n/a", "?")


@dataclass(frozen=True, slots=True)
class Feature:
    key: str
    title: str
    commits: str
    since: tuple[int, int] | None      # first upstream version; None: not in mainline
    symbols: tuple[str, ...] = ()      # any of these names in kallsyms shows it
    gone: tuple[str, ...] = ()         # ... and none of these names is left
    knobs: tuple[str, ...] = ()        # all of these knobs show it
    measured: bool = False             # shown by a run's folio orders
    needs_no_temp_page: bool = False   # only meaningful without the temp page (6.16 on)
    stable: tuple[tuple[int, int], ...] = ()   # stable series known to carry a backport


FEATURES = (
    Feature("iomap_buffered_write", "buffered writes through iomap", "a4c9ab1d4975", (6, 17),
            symbols=("iomap_file_buffered_write",), gone=("fuse_write_begin", "fuse_write_end")),
    Feature("iomap_writeback", "writeback through iomap", "ef7e7cbb323f", (6, 17),
            symbols=("fuse_iomap_writeback_range",), gone=("fuse_writepages_fill",)),
    Feature("large_folios", "large folios for FUSE's page cache", "b46e09667411", None,
            measured=True),
    Feature("request_timeout", "request timeouts", "9b17cb59a7db", (6, 14),
            symbols=("fuse_check_timeout",),
            knobs=("fs.fuse.default_request_timeout", "fs.fuse.max_request_timeout")),
    Feature("max_pages_limit", "fs.fuse.max_pages_limit", "", (6, 13),
            knobs=("fs.fuse.max_pages_limit",)),
    Feature("io_uring", "FUSE over io_uring", "CONFIG_FUSE_IO_URING", (6, 14),
            symbols=("fuse_uring_cmd",), knobs=("fuse.enable_uring",)),
    Feature("sync_no_wait", "sync(2) does not wait on FUSE writeback",
            "f9a49aa302a0 76f9377cd2ab", (7, 0), measured=True, needs_no_temp_page=True,
            stable=((6, 18), (6, 19))),
    Feature("wb_thresh_floor", "strictlimit wb_thresh floor for an idle bdi", "39ac99852fca",
            (6, 13)),
    Feature("bg_wb_thresh", "background writeback at the bdi's own threshold", "0437906841d0",
            (7, 1)),
)
FEATURE_BY_KEY = {f.key: f for f in FEATURES}


def knob_name(path: str) -> str:
    """/proc/sys/fs/fuse/max_pages_limit -> fs.fuse.max_pages_limit;
    /sys/module/fuse/parameters/enable_uring -> fuse.enable_uring (other paths as they are)."""
    if path.startswith(SYSCTL_DIR):
        return "fs.fuse." + path[len(SYSCTL_DIR):]
    if path.startswith(PARAM_DIR):
        return "fuse." + path[len(PARAM_DIR):]
    return path


def parse_knobs(text: str | bytes) -> dict[str, str]:
    """The guest's fuse_knobs file ("PATH=VALUE" per line) -> {knob name: value}."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    out = {}
    for line in text.splitlines():
        path, sep, value = line.partition("=")
        if sep and path.startswith("/"):
            out[knob_name(path)] = value.strip()
    return dict(sorted(out.items()))


def parse_symbols(text: str | bytes) -> set[str]:
    """Function names, one per line (the guest's fuse_symbols) or /proc/kallsyms lines (the name
    is the third field); GCC's .cold / .isra.0 / .constprop.0 suffixes are dropped."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    out = set()
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        name = parts[2] if len(parts) >= 3 else parts[0]
        out.add(name.split(".", 1)[0])
    return out


def version_of(release: str) -> tuple[int, int] | None:
    """(major, minor) of a release string: "6.18.44-fc-v1272" -> (6, 18), "7.3-rc7" -> (7, 3)."""
    try:
        major, minor = release.split("-", 1)[0].split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return None


def probe(release: str, symbols: Iterable[str] | None = None, knobs: dict[str, str] | None = None,
          folio_order_max: int | None = None, temp_page: bool | None = None,
          sync_class: str | None = None) -> dict[str, tuple[str, str]]:
    """{feature key: (status, evidence)} for a kernel: status "yes", "no", "n/a" (a fix for a
    problem this kernel does not have) or "?" (no evidence), evidence one short string naming
    its kind.  `symbols` / `knobs` None: not looked at; `folio_order_max`: the largest folio
    order a seq-write run added (None: not measured); `sync_class`: how sync(2) ended in
    validate's stuck-server op array (bench.real.kernels.validate.blocking_guest: "returned"
    before the stall's end, or "waited" for it; None: not measured).  On a temp-page kernel
    sync never waits on the server, so it shows nothing there and stays "n/a"."""
    syms = set(symbols) if symbols is not None else None
    ver = version_of(release)
    out: dict[str, tuple[str, str]] = {}
    for f in FEATURES:
        status, why = "?", "no evidence"
        if f.symbols and syms is not None:
            hits = [s for s in f.symbols if s in syms]
            left = [s for s in f.gone if s in syms]
            status = "yes" if hits and not left else "no"
            why = "symbols: " + "; ".join(
                p for p in (", ".join(hits) if hits else f"no {'/'.join(f.symbols)}",
                            (f"still {', '.join(left)}" if left else
                             f"no {'/'.join(f.gone)}") if f.gone else "") if p)
        if f.knobs and knobs is not None:
            have = [k for k in f.knobs if k in knobs]
            ok = len(have) == len(f.knobs)
            kn = "knobs: " + (", ".join(f"{k}={knobs[k]}" for k in have) if ok else
                              f"no {'/'.join(k for k in f.knobs if k not in knobs)}")
            if status == "?" or ok == (status == "yes"):
                status = "yes" if ok else "no"
                why = (why + "; " if why != "no evidence" else "") + kn
            else:                         # symbols and knobs disagree: say so
                status, why = "?", f"{why}; but {kn}"
        if f.key == "large_folios" and folio_order_max is not None:
            status = "yes" if folio_order_max > 0 else "no"
            why = f"measured: largest folio order {folio_order_max} in a seq-write"
        if f.key == "sync_no_wait" and sync_class in ("returned", "waited") and not temp_page:
            status = "yes" if sync_class == "returned" else "no"
            why = f"measured: sync(2) {sync_class} while the server held every WRITE"
        if status == "?" and not f.symbols and not f.knobs and ver and \
                (f.since is not None or f.stable):
            if f.needs_no_temp_page and temp_page:
                status, why = "n/a", "temp-page kernel: sync never waited on the server"
            elif f.since is not None and ver >= f.since:
                status, why = "yes", f"version only: {ver[0]}.{ver[1]} >= {f.since[0]}.{f.since[1]}"
            elif ver in f.stable:
                status, why = "yes", (f"version only: {ver[0]}.{ver[1]} stable series has the "
                                      "backport (patch level not verified)")
            elif f.since is not None:
                status, why = "no", f"version only: {ver[0]}.{ver[1]} < {f.since[0]}.{f.since[1]}"

        out[f.key] = (status, why)
    return out


def from_guest_files(release: str, files: dict[str, bytes], meta: dict[str, Any] | None = None,
                     temp_page: bool | None = None) -> dict[str, tuple[str, str]]:
    """``probe`` of what a guest sent back (and its run's meta, for the folio orders)."""
    meta = meta or {}
    omax = meta.get("folio_order_max")
    return probe(release,
                 parse_symbols(files["fuse_symbols"]) if "fuse_symbols" in files else None,
                 parse_knobs(files["fuse_knobs"]) if "fuse_knobs" in files else None,
                 omax if isinstance(omax, int) and omax >= 0 else None, temp_page)


def host_probe(kallsyms: str = "/proc/kallsyms") -> dict[str, Any]:
    """What this machine's running kernel shows (as root: kallsyms names, fs.fuse sysctls, the
    fuse module's parameters): {"release", "symbols", "knobs"}."""
    import glob
    import os
    with open(kallsyms, errors="replace") as f:
        syms = {n for n in parse_symbols("".join(
            ln for ln in f if " fuse_" in ln or " iomap_" in ln))}
    knobs = {}
    for p in sorted(glob.glob(SYSCTL_DIR + "*") + glob.glob(PARAM_DIR + "*")):
        try:
            with open(p) as f:
                knobs[knob_name(p)] = f.read().strip()
        except OSError:
            continue
    return {"release": os.uname().release, "symbols": syms, "knobs": knobs}
