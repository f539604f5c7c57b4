"""The README's gate recipes, run exactly as printed.

Every ```sh block of the README's "The regression gate" section is read, and each command in it
runs through the shell, in order, in a fresh directory holding a copy of results/baseline.json
(the recipes name it by that relative path), with this interpreter first on PATH, so that
`python` is the interpreter the package is installed for.  A `pip install` line is the reader's
own installation and is skipped (the package is installed here).  A trailing `# exit N` is the
exit status the README promises, else 0."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def recipes() -> list[tuple[str, int]]:
    """(command, expected exit status) of each line of the section's ```sh blocks."""
    section = _section(README.read_text(encoding="utf-8"), "The regression gate")
    out = []
    for block in re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M):
        for line in block.splitlines():
            command, _, comment = line.partition("#")
            command = command.strip()
            if not command or command.startswith("pip "):
                continue
            m = re.match(r"\s*exit (\d+)\b", comment)
            out.append((command, int(m.group(1)) if m else 0))
    return out


def test_the_readme_has_runnable_gate_recipes():
    cmds = [c for c, _ in recipes()]
    # the three recipes: the project's CI, a new baseline, a user's change made with --param
    assert any(c.startswith("python -m bench gate results/baseline.json ") for c in cmds), cmds
    assert any("--out results/baseline.json" in c for c in cmds), cmds
    assert any("--param" in c for c in cmds) and any("--match-params ignore" in c for c in cmds)
    for c in cmds:
        assert c.startswith("python -m bench "), c
        assert not re.search(r"[A-Z]+\.json|KEY=VALUE|\.\.\.", c), f"a placeholder: {c}"


def test_the_readme_gate_recipes_run_as_printed(tmp_path):
    (tmp_path / "results").mkdir()
    shutil.copy(ROOT / "results" / "baseline.json", tmp_path / "results" / "baseline.json")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("FWB_MACHINE", None)
    env.pop("FWB_COST_PROFILE", None)
    done = []
    for command, expected in recipes():
        run = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=600)
        print(f"$ {command}\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
        assert run.returncode == expected, (f"{command}: exit {run.returncode}, the README says "
                                            f"{expected}\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
        if " gate " in f" {command} ":
            first = run.stdout.splitlines()[0]
            assert first.startswith("REGRESSION: " if expected == 1 else "OK: "), first
        done.append(command)
    assert len(done) >= 5, done
    # the new baseline recorded by the second recipe is the committed one, byte for byte in its runs
    import json
    fresh = json.loads((tmp_path / "results" / "baseline.json").read_text())
    committed = json.loads((ROOT / "results" / "baseline.json").read_text())
    assert fresh["runs"] == committed["runs"]


def test_a_placeholder_or_a_failing_recipe_would_be_caught(tmp_path, monkeypatch):
    # The parser must see a changed README, or the test above could pass on nothing.
    fake = tmp_path / "README.md"
    fake.write_text("# x\n\n## The regression gate\n\n```sh\npip install foo\n"
                    "python -m bench gate a.json b.json   # exit 1\n"
                    "python -m bench list\n```\n\n## Next\n\n```sh\npython -m bench speed\n```\n")
    monkeypatch.setattr(sys.modules[__name__], "README", fake)
    assert recipes() == [("python -m bench gate a.json b.json", 1), ("python -m bench list", 0)]
    with pytest.raises(AssertionError):
        test_the_readme_has_runnable_gate_recipes()
