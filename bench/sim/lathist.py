"""Bounded latency sets: exact samples up to a limit, then a log-bucketed histogram.

An engine keeps a latency set's samples one by one up to ``EXACT`` (2**22) of them, so every
run of an array workload (at most 2**22 rows) keeps them all.  The sample past the limit folds
the set into ``BUCKETS`` counts, which take every later sample: memory stays bounded however
long a streamed run is.  Buckets (csrc/fwb.h, enum fwb_lat_hist, has the same): a value below
``2 * SUB`` (256 ns) has its own; a larger v, with ``2**e <= v < 2**(e+1)``, falls in the bucket
of its top ``SUB_BITS + 1`` bits, which holds ``2**(e - SUB_BITS)`` values.  A bucket stands
for its lowest value (``lower``), which is below every value in it by less than 1/``SUB``
(0.78 %) of that value.  The count and the largest sample stay exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUB_BITS = 7
SUB = 1 << SUB_BITS
BUCKETS = (63 - SUB_BITS + 1) << SUB_BITS     # up to v < 2**63
EXACT = 1 << 22


def bucket(v: int) -> int:
    """The bucket of one latency (a negative one, which no engine makes, counts as 0)."""
    if v < 2 * SUB:
        return max(v, 0)
    e = v.bit_length() - 1
    return ((e - SUB_BITS + 1) << SUB_BITS) + (v >> (e - SUB_BITS)) - SUB


def lower(b: np.ndarray) -> np.ndarray:
    """The lowest value of each bucket in b (int64)."""
    b = np.asarray(b, dtype=np.int64)
    e = b // SUB + SUB_BITS - 1
    big = (b % SUB + SUB) << np.maximum(e - SUB_BITS, 0)
    return np.where(b < 2 * SUB, b, big)


@dataclass(frozen=True, eq=False)
class Histogram:
    """A folded latency set: counts per bucket, the number of samples and the largest one."""
    counts: np.ndarray      # BUCKETS int64
    n: int
    max: int

    def __len__(self) -> int:
        return self.n

    def __eq__(self, other) -> bool:
        return (isinstance(other, Histogram) and self.n == other.n and self.max == other.max
                and np.array_equal(self.counts, other.counts))

    def rank(self, r: int) -> int:
        """The r-th smallest sample (1-based), as its bucket's lowest value."""
        return int(lower(np.searchsorted(np.cumsum(self.counts), r)))


def fold(samples) -> list[int]:
    """The bucket counts of samples (a list, for the Python engine to go on adding to)."""
    counts = [0] * BUCKETS
    for v in samples:
        counts[bucket(int(v))] += 1
    return counts
