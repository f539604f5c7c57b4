"""Summaries over seeds: medians with bootstrap confidence intervals, and the
Mann-Whitney U test that decides whether two sets of seeds differ."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

N_BOOT = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class Summary:
    median: float
    lo: float          # 95% bootstrap CI of the median
    hi: float
    n: int


def summarize(values, seed: int = 0) -> Summary:
    """Median and its percentile-bootstrap CI; deterministic for a given input (fixed seed)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("summarize: no values")
    med = float(np.median(v))
    if v.size == 1 or np.all(v == v[0]):
        return Summary(med, med, med, int(v.size))
    # PCG64's raw stream is stable across numpy versions; Generator.integers is not promised to be.
    raw = np.random.PCG64(seed).random_raw(N_BOOT * v.size)
    idx = ((raw >> np.uint64(11)) % np.uint64(v.size)).astype(np.int64).reshape(N_BOOT, v.size)
    meds = np.median(v[idx], axis=1)
    a = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(meds, [a, 1 - a])
    return Summary(med, float(lo), float(hi), int(v.size))


def preload_test() -> threading.Thread:
    """Start importing scipy.stats (0.8 s) in a daemon thread, so that it overlaps a sweep's
    runs (mostly C, which releases the GIL) instead of following them.  Start it only when no
    process will be forked after it: a fork copies the import's module locks as held."""
    t = threading.Thread(target=_import_test, name="scipy.stats import", daemon=True)
    t.start()
    return t


def _import_test() -> None:
    try:
        import scipy.stats  # noqa: F401
    except Exception:       # noqa: BLE001 - mann_whitney_ps' own import says what failed
        pass


def mann_whitney_p(a, b) -> float:
    """Two-sided Mann-Whitney U p-value; 1.0 when the samples cannot be told apart at all."""
    return mann_whitney_ps([(a, b)])[0]


def mann_whitney_ps(pairs) -> list[float]:
    """mann_whitney_p of each (a, b) pair, the same floats one call each would give, with one
    scipy call per group of pairs that share their sizes and the method scipy's "auto" picks
    for them (exact for 8 values or fewer on a side and no ties, else asymptotic): a call costs
    some 0.7 ms whatever its size, and compare makes one per row, over 1,500 by default."""
    out = [1.0] * len(pairs)
    groups: dict[tuple[int, int, str], list[int]] = {}
    xs, ys = [], []
    for i, (a, b) in enumerate(pairs):
        x = np.asarray(a, dtype=float)
        y = np.asarray(b, dtype=float)
        xs.append(x)
        ys.append(y)
        if x.size == 0 or y.size == 0:
            continue
        both = np.concatenate([x, y])
        distinct = np.unique(both).size
        if distinct == 1:
            continue           # every value identical: nothing to rank
        if np.isnan(both).any():
            method = "nan"     # scipy's nan policy decides, pair by pair
        elif (x.size > 8 and y.size > 8) or distinct < both.size:
            method = "asymptotic"
        else:
            method = "exact"
        groups.setdefault((x.size, y.size, method), []).append(i)
    if not groups:
        return out
    from scipy.stats import mannwhitneyu   # lazily: scipy.stats takes 0.6 s to import
    for (_, _, method), idx in groups.items():
        if method == "nan":
            for i in idx:
                out[i] = float(mannwhitneyu(xs[i], ys[i], alternative="two-sided").pvalue)
            continue
        p = mannwhitneyu(np.stack([xs[i] for i in idx]), np.stack([ys[i] for i in idx]),
                         alternative="two-sided", axis=1, method=method).pvalue
        for i, v in zip(idx, np.atleast_1d(p)):
            out[i] = float(v)
    return out
