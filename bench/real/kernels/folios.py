"""Page-cache folio sizes of a run, from the tracepoint filemap:mm_filemap_add_to_page_cache.

The guest's /init (bench.real.kernels.initramfs, FOLIO_*) enables the event for the FUSE mount's
s_dev around the op runner and reduces the trace buffer to "order count" lines; on the host the
same event's trace text can be read with ``orders_from_trace``.  The event's TP_printk ends in
"order=%u" since the event was converted to folios (include/trace/events/filemap.h; every
kernel of the matrix, 6.1 included, has it: their format files say so); a kernel whose event has
no order field (the page-based event printed "page=%p pfn=%lu ofs=%lu") gives order -1, unknown:
its folios are counted but their size is not known from the trace.

A folio of order k holds 2**k pages; ``folio_pages_mean`` is the mean over the folios added, of
known order.  ``lost`` is the sum of the per-CPU ``overrun`` counts of the trace buffer: events
overwritten before they were read (a non-zero count makes the histogram a lower bound).
"""
from __future__ import annotations

import re
import statistics
from typing import Any

UNKNOWN = -1
_ORDER = re.compile(r"\border=(\d+)")
_EVENT = "mm_filemap_add_to_page_cache:"


def parse_orders(text: str | bytes) -> dict[int, int]:
    """The guest's folio_orders file ("order count" per line) -> {order: folios}.
    ValueError on a line that is not two integers or a count below zero."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    out: dict[int, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            order, count = (int(p) for p in parts)
        except ValueError:
            raise ValueError(f"folio_orders: line {n} is not 'order count': "
                             f"{line[:60]!r}") from None
        if count < 0 or order < UNKNOWN or order > 30:
            raise ValueError(f"folio_orders: line {n} out of range: {line[:60]!r}")
        out[order] = out.get(order, 0) + count
    return dict(sorted(out.items()))


def orders_from_trace(text: str | bytes, dev: str | None = None) -> dict[int, int]:
    """{order: folios} of mm_filemap_add_to_page_cache lines of a trace (``dev``, "MAJ:MIN",
    keeps only that device's); other lines are skipped."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    out: dict[int, int] = {}
    for line in text.splitlines():
        if _EVENT not in line or line.lstrip().startswith("#"):
            continue
        if dev is not None and f"dev {dev} " not in line:
            continue
        m = _ORDER.search(line)
        order = int(m.group(1)) if m else UNKNOWN
        out[order] = out.get(order, 0) + 1
    return dict(sorted(out.items()))


def lost_events(stats: str | bytes) -> int:
    """The sum of the ``overrun:`` counts in the per-CPU stats the guest kept (folio_stats)."""
    if isinstance(stats, bytes):
        stats = stats.decode(errors="replace")
    total = 0
    for line in stats.splitlines():
        if "overrun:" in line:
            total += int(line.rsplit("overrun:", 1)[1].split()[0])
    return total


def summary(orders: dict[int, int], lost: int = 0) -> dict[str, Any]:
    """What a run records: the histogram (order as a string key, for JSON), the folios and pages
    added (of known order), the mean pages per folio (None when no folio's order is known)."""
    known = {o: c for o, c in orders.items() if o != UNKNOWN}
    folios = sum(known.values())
    pages = sum(c << o for o, c in known.items())
    return {"folio_orders": {str(o): c for o, c in sorted(orders.items())},
            "folios_added": sum(orders.values()),
            "folio_pages_added": pages,
            "folio_pages_mean": pages / folios if folios else None,
            "folio_order_max": max(known) if known else UNKNOWN,
            "folio_trace_lost": int(lost)}


def from_files(files: dict[str, bytes]) -> dict[str, Any] | None:
    """The summary of a guest's folio trace (None when the run did not trace folios)."""
    if "folio_orders" not in files:
        return None
    return summary(parse_orders(files["folio_orders"]),
                   lost_events(files.get("folio_stats", b"")))


def _pooled_median(hist: dict[int, int]) -> float:
    """The median of values given as {value: count} (the lower middle for an even count)."""
    n = sum(hist.values())
    if n == 0:
        return float("nan")
    seen = 0
    for v in sorted(hist):
        seen += hist[v]
        if 2 * seen >= n:
            return float(v)
    return float("nan")


def table(runs) -> list[dict[str, Any]]:
    """Per (kernel, block_size) of guest or mount runs: runs, the WRITEs' pages (pooled over the
    runs: median and histogram), folio_pages_mean and the folio orders (pooled), the app
    throughput in MiB/s (median over runs and each run's).  Rows in kernel then block order."""
    groups: dict[tuple[str, int], list] = {}
    for r in runs:
        meta = dict(r.meta)
        kernel = str(meta.get("kernel_name") or meta.get("kernel") or r.strategy)
        bs = int(dict(r.params).get("block_size", 0))
        groups.setdefault((kernel, bs), []).append(r)
    rows = []
    for (kernel, bs), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        ppr: dict[int, int] = {}
        orders: dict[int, int] = {}
        for r in rs:
            for k, c in dict(r.metrics.get("pages_per_request", {})).items():
                ppr[int(k)] = ppr.get(int(k), 0) + int(c)
            for k, c in dict(dict(r.meta).get("folio_orders") or {}).items():
                orders[int(k)] = orders.get(int(k), 0) + int(c)
        mib = [float(r.metrics["app_throughput_bps"]) / 2 ** 20 for r in rs]
        s = summary(orders)
        rows.append({"kernel": kernel, "block_size": bs, "runs": len(rs),
                     "pages_per_write_median": _pooled_median(ppr),
                     "pages_per_write": dict(sorted(ppr.items())), "writes": sum(ppr.values()),
                     "folio_pages_mean": s["folio_pages_mean"], "folio_orders": s["folio_orders"],
                     "app_mib_s_median": statistics.median(mib), "app_mib_s": mib})
    return rows


def ratios(rows: list[dict[str, Any]], num: str, den: str) -> dict[int, float]:
    """{block_size: median app MiB/s of kernel `num` / that of `den`} where both ran it."""
    by = {(r["kernel"], r["block_size"]): r["app_mib_s_median"] for r in rows}
    return {bs: by[(num, bs)] / by[(den, bs)] for (k, bs) in by
            if k == num and (den, bs) in by and by[(den, bs)] > 0}


def pair_ratios(rows: list[dict[str, Any]], num: str, den: str) -> dict[int, list[float]]:
    """{block_size: [run i of `num` / run i of `den`, ...]}: the runs paired in the order they
    were made.  ``kernels run A,B`` boots A and B back to back for each seed, so a pair shared
    the machine's load; their ratios vary less than the runs do."""
    by = {(r["kernel"], r["block_size"]): r["app_mib_s"] for r in rows}
    return {bs: [a / b for a, b in zip(by[(num, bs)], by[(den, bs)]) if b > 0]
            for (k, bs) in by if k == num and (den, bs) in by}


def _hist_text(h: dict[int, int], top: int = 4) -> str:
    items = sorted(h.items(), key=lambda kv: -kv[1])[:top]
    rest = sum(h.values()) - sum(c for _, c in items)
    return " ".join(f"{k}:{c}" for k, c in sorted(items)) + (f" +{rest}" if rest else "")


def render(rows: list[dict[str, Any]], num: str | None = None, den: str | None = None) -> str:
    """The table of ``table`` as text, with the throughput ratio num/den per block size."""
    out = [f"{'kernel':8} {'block':>7} {'runs':>4} {'pages/WRITE':>11} "
           f"{'WRITE pages (most common)':28} {'folio pages':>11} {'folio orders':14} "
           f"{'app MiB/s':>9}  each run"]
    for r in rows:
        fpm = r["folio_pages_mean"]
        out.append(f"{r['kernel']:8} {r['block_size'] // 1024:>6}K {r['runs']:>4} "
                   f"{r['pages_per_write_median']:>11g} {_hist_text(r['pages_per_write']):28} "
                   f"{('-' if fpm is None else f'{fpm:.3g}'):>11} "
                   f"{_hist_text({int(k): v for k, v in r['folio_orders'].items()}):14} "
                   f"{r['app_mib_s_median']:>9.3g}  "
                   + " ".join(f"{x:.3g}" for x in r["app_mib_s"]))
    if num and den:
        pairs = pair_ratios(rows, num, den)
        for bs, q in sorted(ratios(rows, num, den).items(), reverse=True):
            pr = sorted(pairs.get(bs, []))
            out.append(f"app throughput {num} / {den} at {bs // 1024} KiB: {q:.3f} (medians)"
                       + (f"; per pair: median {statistics.median(pr):.3f}, "
                          f"{pr[0]:.3f}..{pr[-1]:.3f} over {len(pr)} pairs" if pr else ""))
    return "\n".join(out) + "\n"
