"""The kernels of the matrix: Debian's packaged kernels, by suite, with their FUSE family.

Versions are not written here: the archive moves, so a kernel's exact version is what its
suite's ``linux-image-amd64`` metapackage depends on when it is fetched (bench.real.kernels.fetch).

Families (README "The strategies"):
  temp-page     writeback copies each page into a temp page and ends writeback at once; a page
                redirtied while its copy is in flight gets a secondary request, merged in the
                queue (8b284dc47291, 3.13 to 6.15): simulated by ``merge-in-queue``
  no-temp-page  no copy; the page stays under writeback until the server replies (0c58a97f919c,
                6.16 and later): simulated by ``no-temp-page``
"""
from __future__ import annotations

from dataclasses import dataclass

META_PACKAGE = "linux-image-amd64"
FAMILY_STRATEGY = {"temp-page": "merge-in-queue", "no-temp-page": "no-temp-page"}


@dataclass(frozen=True, slots=True)
class Kernel:
    name: str                 # the short name users type: "6.1", "7.2"
    suite: str                # the Debian suite its metapackage is taken from
    family: str               # "temp-page" or "no-temp-page"
    note: str = ""
    # (feature key of bench.real.kernels.features, status, evidence): what was found for this
    # kernel, recorded from its booted guests (``kernels run --keep``, ``kernels features``)
    features: tuple[tuple[str, str, str], ...] = ()

    @property
    def strategy(self) -> str:
        """The simulator's strategy for this kernel: its family's, refined by what its guests
        showed.  A kernel that writes back through iomap (ef7e7cbb323f) is ``iomap-blocks``, which
        on the order-0 folios these kernels make equals ``no-temp-page``; one with large folios
        for FUSE (b46e09667411) would be ``large-folio``, but no kernel of the matrix has them."""
        have = {k for k, status, _ in self.features if status == "yes"}
        if "iomap_writeback" in have:
            return "large-folio" if "large_folios" in have else "iomap-blocks"
        return FAMILY_STRATEGY[self.family]

    def feature(self, key: str) -> tuple[str, str]:
        """(status, evidence) of feature `key`; ValueError when it is not recorded."""
        for k, status, evidence in self.features:
            if k == key:
                return status, evidence
        raise ValueError(f"feature: {key!r} not recorded for kernel {self.name}")


# What each kernel's booted guests showed (2026-12-06; `kernels run ... --keep DIR`, then
# `kernels features --keep DIR`, which flags any status that differs from these).
_OLD_FEATURES = (
    ("iomap_buffered_write", "no", "symbols: still fuse_write_begin, fuse_write_end"),
    ("iomap_writeback", "no", "symbols: no fuse_iomap_writeback_range; still fuse_writepages_fill"),
    ("large_folios", "no", "measured: order 0 only in a 64 MiB seq-write"),
    ("request_timeout", "no", "symbols: no fuse_check_timeout; "
                              "knobs: no fs.fuse.*_request_timeout"),
    ("max_pages_limit", "no", "knobs: no fs.fuse.max_pages_limit"),
    ("io_uring", "no", "symbols: no fuse_uring_cmd; knobs: no fuse.enable_uring"),
    ("sync_no_wait", "n/a", "temp-page kernel: writeback ends at the copy, so sync never waited "
                            "on the server (it returned in 150 to 175 ms with the server stuck)"),
)


def _throttle(status: str, thresh: str, share: str, more: str) -> tuple[tuple[str, str, str], ...]:
    """wb_thresh_floor and bg_wb_thresh, from a `kernels run K rand-write --trace` run."""
    return (("wb_thresh_floor", status, f"measured: BdiDirtyThresh {thresh} pages at a fresh "
                                        f"mount's first sample ({more})"),
            ("bg_wb_thresh", status, f"measured: flusher passes started at a median {share} of "
                                     "the bdi's limit (background threshold 50%, freerun 75%)"))


def _new_features(name: str, sync_ms: str, thresh: str, share: str
                  ) -> tuple[tuple[str, str, str], ...]:
    """A no-temp-page kernel's record: its sync(2) time on a stuck server, its fresh bdi's
    BdiDirtyThresh and its flusher's median start share, as measured."""
    return (
        ("iomap_buffered_write", "yes", "symbols: no fuse_write_begin/fuse_write_end; "
                                        "iomap_file_buffered_write"),
        ("iomap_writeback", "yes", "symbols: fuse_iomap_writeback_range; no fuse_writepages_fill"),
        ("large_folios", "no", "measured: order 0 only in 15 seq-writes (1 MiB and 128 KiB writes, "
                               "max_pages 32 and 256)"),
        ("request_timeout", "yes", "symbols: fuse_check_timeout; knobs: "
                                   "fs.fuse.default_request_timeout=0, max_request_timeout=0"),
        ("max_pages_limit", "yes", "knobs: fs.fuse.max_pages_limit=256"),
        ("io_uring", "yes", "symbols: fuse_uring_cmd; knobs: fuse.enable_uring=N (built, off)"),
        ("sync_no_wait", "yes", f"measured: sync(2) returned in {sync_ms} ms while the server held "
                                "every WRITE for 2 s (validate's stuck-server op array); "
                                f"{name} >= 7.0, 76f9377cd2ab in vfs.fixes for 7.0"),
    ) + _throttle("yes", thresh, share, "the strictlimit cap from the start")


KERNELS = (
    Kernel("6.1", "bookworm", "temp-page", "Debian 12; FUSE is a module (fuse.ko)",
           _OLD_FEATURES + _throttle("no", "0", "74%", "806 ms until it rose; 6.1 < 6.13")),
    Kernel("6.12", "trixie", "temp-page", "Debian 13; FUSE built in",
           _OLD_FEATURES + _throttle("no", "0", "74%", "564 ms until it rose; 6.12 < 6.13")),
    Kernel("7.2", "sid", "no-temp-page", "unstable; iomap buffered writes; FUSE built in",
           _new_features("7.2", "0.8", "1899", "51%")),
    Kernel("7.3", "experimental", "no-temp-page", "release candidate; FUSE built in",
           _new_features("7.3", "2.7", "1898", "48%")),
)
KERNEL_BY_NAME = {k.name: k for k in KERNELS}
SUITES = tuple(dict.fromkeys(k.suite for k in KERNELS))


def get(name: str) -> Kernel:
    """The kernel called `name` (also accepted: its suite, e.g. "bookworm"); ValueError if none."""
    name = name.strip()
    if name.startswith("kernel-"):
        name = name[len("kernel-"):]
    if name in KERNEL_BY_NAME:
        return KERNEL_BY_NAME[name]
    short = ".".join(name.split("-")[0].split(".")[:2])    # 6.1.176, 7.3-rc7, 6.1.0-50-amd64
    for k in KERNELS:
        if name == k.suite or short == k.name:
            return k
    raise ValueError(f"kernel: unknown {name!r}; known: "
                     + ", ".join(f"{k.name} ({k.suite})" for k in KERNELS))


def parse_list(text: str) -> list[Kernel]:
    """"6.1,7.2" -> kernels, in order, without repeats; ValueError on an unknown name."""
    out: list[Kernel] = []
    for part in text.split(","):
        if part.strip():
            k = get(part)
            if k not in out:
                out.append(k)
    if not out:
        raise ValueError("kernels: name at least one")
    return out


def upstream_version(package_version: str) -> str:
    """A Debian kernel package version -> the upstream version: 6.1.176-1 -> 6.1.176,
    7.3~rc7-1~exp1 -> 7.3-rc7."""
    v = package_version.split(":", 1)[-1]
    v = v.rsplit("-", 1)[0] if "-" in v else v
    return v.replace("~", "-")


def run_name(package_version: str) -> str:
    """The name of a run on this kernel, as the host's runs are named: kernel-6.1.176."""
    return "kernel-" + upstream_version(package_version)
