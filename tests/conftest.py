import numpy as np


def assert_same_raw(a: dict, b: dict, what: str = "") -> None:
    """Two raw engine results are identical, field by field, with the first difference named."""
    diff = {k: (a["counters"][k], b["counters"][k]) for k in a["counters"]
            if a["counters"][k] != b["counters"].get(k)}
    assert not diff, f"{what}: counters differ (python, c): {diff}"
    assert a["pages_per_request"] == b["pages_per_request"], f"{what}: pages_per_request differ"
    for k in a["latency"]:
        assert np.array_equal(a["latency"][k], b["latency"][k]), f"{what}: latency {k} differs"
    assert np.array_equal(a["series"], b["series"]), f"{what}: series differ"
