"""The writeback strategies: one module each, with its policy and metadata.

A strategy answers one question for the engine (SimPy's resource idea: the engine
owns pages, requests and invariants; the strategy implements a hook): what does
writeback do when it meets a page that is dirty while an earlier copy of it is
still on its way to the server (temp-page strategies) or while the page itself
is still under PG_writeback (no-temp-page)?  ``on_busy_page`` returns an
``Action``.  Every other difference is a flag in the metadata.

The C engine implements the same policies in ``csrc/strategy_*.c``; the tests
hold the two to identical results.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import Callable, Mapping


class Action(IntEnum):
    """What writeback does with a dirty page that is already in flight.

    Keep in step with enum fwb_action in csrc/fwb_internal.h.
    """
    COPY = 0    # copy it again and put it in the batch: a second copy goes out
    WAIT = 1    # cut the batch, sleep until the in-flight copy is done, then copy
    SKIP = 2    # cut the batch, leave the page dirty for a later pass
    MERGE = 3   # cut the batch, fold the data into a not-yet-read request or a held secondary


@dataclass(frozen=True, slots=True)
class BusyPage:
    """Where writeback met the busy page."""
    sync_all: bool      # WB_SYNC_ALL (fsync, msync, sync) rather than WB_SYNC_NONE
    from_reclaim: bool  # reached from direct reclaim through ->writepage


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    code: int                     # index used by the C engine (enum fwb_strategy_id)
    summary: str
    kernels: str                  # the kernels or commits it corresponds to
    temp_pages: bool              # copies pages into temp pages and ends PG_writeback at once
    on_busy_page: Callable[[BusyPage, Mapping[str, int]], Action]
    params: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # name -> (default, doc)
    # iomap buffered I/O (fs/iomap/buffered-io.c): dirty and uptodate state per 4 KiB block
    # inside a folio, PG_writeback per folio while any of its ranges is in flight
    iomap: bool = False
    # write(2) creates folios sized by the write (iomap_get_folio, fgf_set_order); needs iomap
    large_folios: bool = False

    def defaults(self) -> dict[str, int]:
        return {k: v[0] for k, v in self.params.items()}


def _load() -> dict[str, Strategy]:
    # Imported here so each module stays a plain, readable file.
    from . import (iomap_blocks, large_folio, merge_in_queue, no_temp_page, redirty_and_skip,
                   temp_naive, wait_in_writepages)
    mods = (temp_naive, wait_in_writepages, redirty_and_skip, merge_in_queue, no_temp_page,
            iomap_blocks, large_folio)
    return {m.STRATEGY.name: m.STRATEGY for m in mods}


STRATEGIES: Mapping[str, Strategy] = MappingProxyType(_load())


def get(name: str) -> Strategy:
    """The strategy called `name`; ValueError naming the known ones otherwise."""
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"strategy: unknown {name!r}; allowed: {', '.join(STRATEGIES)}") from None


__all__ = ["Action", "BusyPage", "Strategy", "STRATEGIES", "get"]
