"""The static dashboard of result files: ``build(paths, out_dir) -> Path of index.html``.

Importing this package loads seaborn and matplotlib (Agg); only the ``report``
verb does, so ``import bench`` stays light.
"""
from ._site import build, history, history_files, regressions

__all__ = ["build", "history", "history_files", "regressions"]
