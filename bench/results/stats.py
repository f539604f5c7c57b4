"""Summaries over seeds: medians with bootstrap confidence intervals, and the
Mann-Whitney U test that decides whether two sets of seeds differ."""
from __future__ import annotations

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


def mann_whitney_p(a, b) -> float:
    """Two-sided Mann-Whitney U p-value; 1.0 when the samples cannot be told apart at all."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        return 1.0
    if np.unique(np.concatenate([x, y])).size == 1:
        return 1.0             # every value identical: nothing to rank
    from scipy.stats import mannwhitneyu   # lazily: scipy.stats takes 0.6 s to import
    return float(mannwhitneyu(x, y, alternative="two-sided").pvalue)
