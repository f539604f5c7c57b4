"""A git repository created in the working directory and committed to (run as a child process).

usage: python git_commits.py COMMITS FILES FILE_BYTES SEED
Commit 1 adds FILES files in two directories; each later commit rewrites half of them.  Git runs
with its defaults for object and ref writes; gc and maintenance are off so that nothing runs in
the background after the last commit.
"""
import os
import random
import subprocess
import sys


def git(*args: str) -> None:
    subprocess.run(["git", "-c", "gc.auto=0", "-c", "maintenance.auto=false", *args], check=True,
                   stdout=subprocess.DEVNULL)


def main(commits: int, files: int, size: int, seed: int) -> None:
    rnd = random.Random(seed)
    git("init", "-q", "-b", "main", ".")
    paths = [os.path.join("src" if i % 2 else "doc", f"file{i}.txt") for i in range(files)]
    for c in range(commits):
        for i, path in enumerate(paths):
            if c and (i + c) % 2:
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write("".join(rnd.choice("abcdefgh \n") for _ in range(size)))
        git("add", "-A")
        git("commit", "-q", "-m", f"commit {c + 1}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:5]))
