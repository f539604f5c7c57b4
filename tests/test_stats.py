"""bench.results.stats: the seed summaries and the Mann-Whitney tests compare makes."""
import math

import numpy as np
from hypothesis import given, settings, strategies as st
from scipy.stats import mannwhitneyu

from bench.results import stats


def one_call(a, b) -> float:
    """What mann_whitney_p gave before the tests were grouped: one scipy call per pair."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0 or np.unique(np.concatenate([x, y])).size == 1:
        return 1.0
    return float(mannwhitneyu(x, y, alternative="two-sided").pvalue)


# few distinct values, so ties are common; sizes on both sides of scipy's exact limit (8)
values = st.one_of(st.sampled_from([0.0, 1.0, 2.5, -3.0]),
                   st.floats(-1e6, 1e6, allow_nan=False), st.just(math.nan))
samples = st.lists(values, min_size=0, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(samples, samples), min_size=1, max_size=40))
def test_grouped_tests_equal_one_call_each(pairs):
    got = stats.mann_whitney_ps(pairs)
    want = [one_call(a, b) for a, b in pairs]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g == w or (math.isnan(g) and math.isnan(w)), (g, w)


def test_many_pairs_of_one_size_in_one_group():
    rng = np.random.default_rng(3)
    pairs = [(rng.random(5), rng.random(5) + shift) for shift in np.linspace(0, 1, 200)]
    pairs += [(np.round(a, 1), np.round(b, 1)) for a, b in pairs[:50]]     # ties: asymptotic
    assert stats.mann_whitney_ps(pairs) == [one_call(a, b) for a, b in pairs]


def test_nothing_to_rank_is_one():
    assert stats.mann_whitney_p([], [1.0]) == 1.0
    assert stats.mann_whitney_p([2.0, 2.0], [2.0]) == 1.0
    assert stats.mann_whitney_ps([]) == []


def test_separated_samples_are_significant():
    assert stats.mann_whitney_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) < 0.05


def test_summarize_median_and_deterministic_interval():
    v = [5.0, 1.0, 4.0, 2.0, 3.0]
    s = stats.summarize(v)
    assert s.median == float(np.median(v)) and s.n == 5
    assert s.lo <= s.median <= s.hi
    assert stats.summarize(v) == s
