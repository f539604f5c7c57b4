"""The metric registry and the one function that turns an engine's raw output
into the named metrics of model.md ("Result names").

Both engines return the same raw dict (counters, a pages-per-request histogram,
latency samples, a memory time series); percentiles are taken here, once, so
the engines cannot disagree on arithmetic.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    unit: str             # "B/s", "ns", "pages", "bytes", "page*s", "count", "hist"
    higher_is_better: bool | None   # None: neither (a count that only describes)
    doc: str


_L = "latency object {p50, p99, p999, max, count}"
METRICS: tuple[Metric, ...] = (
    Metric("app_throughput_bps", "B/s", True, "bytes the application dirtied per second, to its final fsync"),
    Metric("wb_throughput_bps", "B/s", True, "bytes delivered to the server per second"),
    Metric("makespan_ns", "ns", False, "first operation to the end of the final fsync"),
    Metric("write_latency_ns", "ns", False, f"write(2), {_L}"),
    Metric("fault_latency_ns", "ns", False, f"write faults of mmap stores, {_L}"),
    Metric("fsync_latency_ns", "ns", False, f"fsync and msync, {_L}"),
    Metric("sync_latency_ns", "ns", False, f"sync(2), {_L}"),
    Metric("throttle_ns", "ns", False, f"dirty-throttle sleeps, {_L}"),
    Metric("reclaim_stall_ns", "ns", False, f"direct reclaim stalls, {_L}"),
    Metric("compaction_stall_ns", "ns", False, f"compaction stalls, {_L}"),
    Metric("temp_pages_peak", "pages", False, "most temp pages at once"),
    Metric("temp_pages_mean", "pages", False, "time-weighted mean of temp pages over the run"),
    Metric("temp_bytes_copied", "bytes", False, "bytes copied into temp pages (in-place updates included)"),
    Metric("unmovable_page_seconds", "page*s", False, "integral of temp pages (unmovable) over time"),
    Metric("pinned_pages_peak", "pages", False, "most pages held under PG_writeback waiting for the server"),
    Metric("requests", "count", None, "WRITE requests read by the server"),
    Metric("pages_per_request", "hist", None, "histogram {pages: requests}"),
    Metric("secondaries", "count", None, "held secondary requests created (merge-in-queue)"),
    Metric("inplace_updates", "count", None, "copies folded into a not-yet-read request"),
    Metric("redirty_skips", "count", None, "busy pages redirtied and skipped (temp-page strategies)"),
    Metric("writeback_skips", "count", None, "pages under PG_writeback skipped by WB_SYNC_NONE writeback or by reclaim (no-temp-page)"),
    Metric("writepages_waits", "count", None, "waits for an in-flight page inside writepages or reclaim"),
    Metric("temp_alloc_failures", "count", False, "temp pages that could not be allocated (page redirtied)"),
    Metric("reads", "count", None, "READ requests (partial writes and faults on uncached pages)"),
    Metric("lost_updates", "count", False, "pages clean in the cache whose last version the server lacks"),
    Metric("out_of_order", "count", False, "an older version applied after a newer one"),
    Metric("max_copies_in_flight", "count", False, "most copies of one page in flight at once"),
    Metric("hangs", "count", False, "waits on the server longer than hang_threshold_ns"),
    Metric("deadlocks", "count", False, "of those, waits entered from direct reclaim"),
    Metric("reclaim_gaveup", "count", False, "allocations that went ahead after reclaim gave up"),
    Metric("compaction_unmovable", "pages", False, "unmovable pages found by compaction"),
    Metric("bytes_dirtied", "bytes", None, "bytes written, stored or read into mapped pages by the application"),
    Metric("bytes_written", "bytes", None, "bytes delivered to the server"),
    Metric("stuck", "count", False, "1 if the run ended with a thread still blocked"),
    Metric("aborted_calls", "count", False, "requests ended with an error by the connection's abort (request_timeout_ns), or refused after it"),
    Metric("folio_pages_mean", "pages", None, "mean pages per page-cache folio created (1.0 with order-0 folios, and when none was created)"),
    Metric("folio_waits", "count", None, "waits on a folio under writeback for a page that was not itself in flight (another block of the folio was)"),
)
METRIC_BY_NAME: Mapping[str, Metric] = {m.name: m for m in METRICS}

# Latency objects ({p50, p99, p999, max, count}), and the metrics every run carries, simulated or
# measured on a kernel (a mount cannot see the kernel-internal events of the other names).
LATENCY_METRICS = frozenset(m.name for m in METRICS if m.doc.endswith(_L))
REQUIRED_METRICS = ("app_throughput_bps", "wb_throughput_bps", "makespan_ns", "write_latency_ns",
                    "fsync_latency_ns", "requests", "pages_per_request", "bytes_written")

_LATENCY_KEYS = {
    "write": "write_latency_ns", "fault": "fault_latency_ns", "fsync": "fsync_latency_ns",
    "sync": "sync_latency_ns", "throttle": "throttle_ns", "reclaim": "reclaim_stall_ns",
    "compaction": "compaction_stall_ns",
}


def latency(samples) -> dict[str, int]:
    """p50/p99/p99.9/max by nearest rank (no interpolation, so integers stay exact).  samples:
    an array of them, or a bench.sim.lathist.Histogram (a set folded past 2**22 samples), whose
    percentiles are their buckets' lowest values, less than 0.78 % below the true ones; its
    count and max are exact."""
    n = int(len(samples))
    if n == 0:
        return {"p50": 0, "p99": 0, "p999": 0, "max": 0, "count": 0}
    if hasattr(samples, "rank"):
        return {"p50": samples.rank(-(-n * 50 // 100)), "p99": samples.rank(-(-n * 99 // 100)),
                "p999": samples.rank(-(-n * 999 // 1000)), "max": int(samples.max), "count": n}
    s = np.sort(np.asarray(samples, dtype=np.int64))
    # nearest rank q: the ceil(n * q)-th smallest, 1-based
    return {"p50": int(s[-(-n * 50 // 100) - 1]), "p99": int(s[-(-n * 99 // 100) - 1]),
            "p999": int(s[-(-n * 999 // 1000) - 1]), "max": int(s[-1]), "count": n}


def summarize(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Raw engine output -> the named metrics of one run."""
    c = raw["counters"]
    makespan = c["t_app_end"] - c["t_first"]
    wb_span = c["t_wb_end"] - c["t_first"]
    run_span = c["t_end"] - c["t_first"]
    m: dict[str, Any] = {
        "app_throughput_bps": c["bytes_dirtied"] * 1e9 / makespan if makespan > 0 else 0.0,
        "wb_throughput_bps": c["bytes_written"] * 1e9 / wb_span if wb_span > 0 else 0.0,
        "makespan_ns": int(makespan),
    }
    for short, name in _LATENCY_KEYS.items():
        m[name] = latency(raw["latency"][short])
    m["temp_pages_peak"] = int(c["temp_pages_peak"])
    m["temp_pages_mean"] = c["temp_page_ns"] / run_span if run_span > 0 else 0.0
    m["temp_bytes_copied"] = int(c["temp_bytes_copied"])
    m["unmovable_page_seconds"] = c["temp_page_ns"] / 1e9
    m["pinned_pages_peak"] = int(c["pinned_pages_peak"])
    m["requests"] = int(c["requests"])
    m["pages_per_request"] = {n: int(k) for n, k in enumerate(raw["pages_per_request"]) if k}
    for name in ("secondaries", "inplace_updates", "redirty_skips", "writeback_skips",
                 "writepages_waits", "temp_alloc_failures", "reads", "lost_updates", "out_of_order",
                 "max_copies_in_flight", "hangs", "deadlocks", "reclaim_gaveup",
                 "compaction_unmovable", "bytes_dirtied", "bytes_written", "stuck", "aborted_calls"):
        m[name] = int(c[name])
    m["folio_pages_mean"] = c["folio_pages"] / c["folios"] if c["folios"] else 1.0
    m["folio_waits"] = int(c["folio_waits"])
    return m
