"""iomap-blocks: mainline's iomap buffered writes and writeback for FUSE, on 4 KiB folios.

FUSE's buffered write and writeback paths moved onto iomap in 6.17 (a4c9ab1d4975 and
ef7e7cbb323f, as named in issue 11; ef7e7cbb323f is "fuse: use iomap for writeback" by
the Fixes: tag of a later fix, a4c9ab1d4975 was not checked against a tree here).
What the model takes from fs/iomap/buffered-io.c and fs/fuse/file.c of that series:
- no temp page, as in no-temp-page: the page-cache folio itself is in the WRITE and
  stays PG_writeback until the reply; WB_SYNC_NONE skips a folio under writeback (its
  dirty blocks stay dirty), WB_SYNC_ALL waits for it; page_mkwrite waits
  (fuse_page_mkwrite, folio_wait_writeback); write(2) does not (FUSE has no stable
  writes), it dirties the block;
- dirty and uptodate state per block (4 KiB) inside a folio (struct iomap_folio_state);
  the folio's dirty accounting is per folio (folio_account_dirtied counts
  folio_nr_pages), and writeback (iomap_writeback_folio) clears the folio's dirty
  flag, sets PG_writeback on the whole folio and hands each contiguous run of dirty
  blocks to fuse_iomap_writeback_range;
- a WRITE is cut before a range when fuse_folios_need_send says so: the request would
  pass max_pages pages or max_write bytes, the range does not follow the last one, or
  the request's folio array is full (num_folios == max_pages; the explicit
  `ap->num_folios >= fc->max_pages` check came with a 2026 fix for sub-page blocks,
  "Fixes: ef7e7cbb323f"; with 4 KiB blocks it is implied by the page limit);
- the folio's writeback ends when its last range in flight completes
  (iomap_finish_folio_write): one folio_end_writeback per folio range of a reply.
On 4 KiB folios (this strategy never makes larger ones) every block is a folio and
all of the above is no-temp-page: the tests hold the two to identical results.
"""
from . import Action, BusyPage, Strategy


def on_busy_page(where: BusyPage, params) -> Action:
    if where.sync_all and not where.from_reclaim:
        return Action.WAIT
    return Action.SKIP


STRATEGY = Strategy(
    name="iomap-blocks",
    code=5,
    summary="no copy; per-block dirty state, PG_writeback per folio, dirty ranges sent; 4 KiB folios",
    kernels="6.17 (a4c9ab1d4975, ef7e7cbb323f; fs/iomap/buffered-io.c, fs/fuse/file.c)",
    temp_pages=False,
    on_busy_page=on_busy_page,
    params={"writer_waits": (0, "write(2) waits for writeback of the folio (mainline: no)")},
    iomap=True,
)
