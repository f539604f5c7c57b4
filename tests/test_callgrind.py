"""The C core's instruction count on a fixed input stays within 2% of results/callgrind.json."""
import shutil

import pytest

from bench.sim import callgrind


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_instruction_count_has_not_grown(capsys):
    rc = callgrind.main([])
    out = capsys.readouterr().out
    print(out)
    assert rc == 0, out
    assert out.startswith(("OK: ", "skipped: "))


def test_a_growth_beyond_two_percent_fails(monkeypatch, capsys):
    monkeypatch.setattr(callgrind, "count", lambda: 10**9)
    import json
    stored = json.loads(callgrind.STORE.read_text())
    monkeypatch.setattr(callgrind, "compiler", lambda: stored["compiler"])
    assert callgrind.main([]) == 1
    assert capsys.readouterr().out.startswith("REGRESSION: ")
