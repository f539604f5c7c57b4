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
    measured: str = ""                 # the measurement (MEASURES) that shows it
    needs_no_temp_page: bool = False   # only meaningful without the temp page (6.16 on)
    stable: tuple[tuple[int, int], ...] = ()   # stable series known to carry a backport


FEATURES = (
    Feature("iomap_buffered_write", "buffered writes through iomap", "a4c9ab1d4975", (6, 17),
            symbols=("iomap_file_buffered_write",), gone=("fuse_write_begin", "fuse_write_end")),
    Feature("iomap_writeback", "writeback through iomap", "ef7e7cbb323f", (6, 17),
            symbols=("fuse_iomap_writeback_range",), gone=("fuse_writepages_fill",)),
    Feature("large_folios", "large folios for FUSE's page cache", "b46e09667411", None,
            measured="folio_order_max"),
    Feature("request_timeout", "request timeouts", "9b17cb59a7db", (6, 14),
            symbols=("fuse_check_timeout",),
            knobs=("fs.fuse.default_request_timeout", "fs.fuse.max_request_timeout")),
    Feature("max_pages_limit", "fs.fuse.max_pages_limit", "", (6, 13),
            knobs=("fs.fuse.max_pages_limit",)),
    Feature("io_uring", "FUSE over io_uring", "CONFIG_FUSE_IO_URING", (6, 14),
            symbols=("fuse_uring_cmd",), knobs=("fuse.enable_uring",)),
    Feature("sync_no_wait", "sync(2) does not wait on FUSE writeback",
            "f9a49aa302a0 76f9377cd2ab", (7, 0), measured="sync_class", needs_no_temp_page=True,
            stable=((6, 18), (6, 19))),
    Feature("wb_thresh_floor", "strictlimit wb_thresh floor for an idle bdi", "39ac99852fca",
            (6, 13), measured="thresh_at_start"),
    Feature("bg_wb_thresh", "background writeback at the bdi's own threshold", "0437906841d0",
            (7, 1), measured="bg_start_share"),
)

# measurement -> (shows the feature?, evidence).  bg_start_share: between the bdi's background
# threshold (50% of its limit) and its freerun ceiling (75%), the midpoint decides.
MEASURES = {
    "folio_order_max": (lambda v: v > 0,
                        lambda v: f"measured: largest folio order {v} in a seq-write"),
    "sync_class": (lambda v: v == "returned",
                   lambda v: f"measured: sync(2) {v} while the server held every WRITE"),
    "bg_start_share": (lambda v: v < 0.625,
                       lambda v: f"measured: flusher passes started at a median {v:.0%} of the "
                                 "bdi's limit (its background threshold is 50%, freerun 75%)"),
    "thresh_at_start": (lambda v: v > 0,
                        lambda v: f"measured: BdiDirtyThresh {v} pages at a fresh mount's first "
                                  "sample (0 until the first writeback completes without a floor)"),
}
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
          measured: dict[str, Any] | None = None, temp_page: bool | None = None
          ) -> dict[str, tuple[str, str]]:
    """{feature key: (status, evidence)} for a kernel: status "yes", "no", "n/a" (a fix for a
    problem this kernel does not have) or "?" (no evidence), evidence one short string naming
    its kind.  `symbols` / `knobs` None: not looked at.  `measured`, by MEASURES key:
    folio_order_max, the largest folio order a seq-write run added; sync_class, how sync(2)
    ended in validate's stuck-server op array (bench.real.kernels.validate.blocking_guest:
    "returned" before the stall's end, or "waited" for it); bg_start_share and
    thresh_at_start, from a ``--trace`` run's bdi stats (``trace_measures``).  On a temp-page
    kernel sync never waits on the server, so sync_class shows nothing there ("n/a")."""
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
        value = (measured or {}).get(f.measured) if f.measured else None
        if value is not None and not (f.needs_no_temp_page and temp_page):
            shows, says = MEASURES[f.measured]
            status, why = ("yes" if shows(value) else "no"), says(value)
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
    measured: dict[str, Any] = {}
    omax = meta.get("folio_order_max")
    if isinstance(omax, int) and omax >= 0:
        measured["folio_order_max"] = omax
    if "trace.txt" in files:
        measured.update(trace_measures(files["trace.txt"]))
    return probe(release,
                 parse_symbols(files["fuse_symbols"]) if "fuse_symbols" in files else None,
                 parse_knobs(files["fuse_knobs"]) if "fuse_knobs" in files else None,
                 measured, temp_page)


def trace_measures(text: str | bytes) -> dict[str, Any]:
    """From a ``kernels run --trace`` run's samples of the bdi's debugfs stats (in kB):
    thresh_at_start, BdiDirtyThresh in pages at the first sample (a fresh mount: without a floor
    for an idle strictlimit bdi it is 0 until the bdi's first writeback completes); and
    bg_start_share, the median over flusher passes (the WB_writeback_running bit of ``state``
    rising) of (BdiReclaimable + BdiWriteback) / BdiDirtyThresh at the sample before the pass,
    over the whole run (guest.writeback_passes does it over the write phase alone).  Keys
    without data are left out."""
    import numpy as np
    from .guest import WB_WRITEBACK_RUNNING, read_trace
    _, v = read_trace(text)
    out: dict[str, Any] = {}
    if "BdiDirtyThresh" not in v or not len(v["BdiDirtyThresh"]):
        return out
    thresh = v["BdiDirtyThresh"] // 4
    out["thresh_at_start"] = int(thresh[0])
    if all(k in v for k in ("state", "BdiReclaimable", "BdiWriteback")):
        run = (v["state"] & WB_WRITEBACK_RUNNING) > 0
        level = (v["BdiReclaimable"] + v["BdiWriteback"]) // 4
        shares = [level[i - 1] / thresh[i - 1] for i in range(1, len(run))
                  if run[i] and not run[i - 1] and thresh[i - 1] > 0]
        if shares:
            out["bg_start_share"] = float(np.median(shares))
    return out


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
