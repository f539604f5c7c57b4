"""large-folio: iomap-blocks with large folios in the page cache.

Large folios in the FUSE page cache (from 6.16, e.g. f3cb8bd908c7; enabled for FUSE by
b46e09667411, as named in issue 11: the hashes were not checked against a tree here).
Facts used, and where they were read:
- folio size limit: fuse_init_file_inode sets the mapping's order range to
  0..ilog2(min(max_write >> PAGE_SHIFT, max_pages)) ("fuse: support large folios",
  fs/fuse/file.c, read in the patch thread), so a folio always fits in one WRITE;
  the page cache caps the order at MAX_PAGECACHE_ORDER (9 on x86-64: 2 MiB).  The
  last version of that patch in the thread enables large folios only when the
  writeback cache is off (strictlimit throttling "tanks" with them); this strategy
  models the writeback cache with large folios on, the case that follow-up targets.
- write(2) to pages not in the cache: iomap_write_iter asks for a folio as big as the
  rest of the write (bytes = min(remaining, max folio size - offset in it)), and
  __filemap_get_folio (mm/filemap.c) turns that into an order (fgf_set_order:
  ilog2(bytes) - PAGE_SHIFT), lowers it to the index's alignment (__ffs(index)), and
  tries each order down to 0: a large order is allocated with __GFP_NORETRY and a
  folio that would overlap a page already cached fails (-EEXIST) (mm/filemap.c as read
  in the stored copies of __filemap_get_folio, with mapping_max_folio_order).  Model: an order
  above 0 succeeds only if its pages are all uncached, lie in the file's simulated
  range, and can be taken without going under the low watermark (__GFP_NORETRY allows
  only a light attempt at reclaim and compaction; the model takes it as none: the
  allocation fails and the order drops by one); order 0 allocates as every
  other strategy does (direct reclaim if needed).  So under memory pressure folios
  fall back to order 0.  The new folio is added whole (cache_add_ns once), its blocks
  not uptodate until written or read.
- a write covering part of a block that is not uptodate reads that block (one READ,
  __iomap_write_begin reads only the blocks the write partly covers); blocks past
  i_size are zeroed, not read; a write into uptodate blocks reads nothing.
- mmap stores and direct-I/O reads into uncached pages create order-0 folios: the model
  has no readahead (a fault reads one page, fuse_do_readpage), and it is readahead
  (page_cache_ra_order) that would make large folios on those paths.
- PG_writeback, reclaim and compaction work per folio: a folio is under writeback
  while any of its ranges is in flight; writeback accounting (NR_WRITEBACK) counts all
  its pages; reclaim frees or skips a whole folio; page_mkwrite and WB_SYNC_ALL wait on
  the folio, also when the block they want is not itself in flight (folio_waits).
"""
from . import Action, BusyPage, Strategy


def on_busy_page(where: BusyPage, params) -> Action:
    if where.sync_all and not where.from_reclaim:
        return Action.WAIT
    return Action.SKIP


STRATEGY = Strategy(
    name="large-folio",
    code=6,
    summary="iomap-blocks with folios sized by the write (up to max_pages), order 0 under pressure",
    kernels="large folios (f3cb8bd908c7, b46e09667411) on 6.17's iomap writeback: no packaged "
            "kernel has them on a writeback-cache mount (7.3-rc7: order 0, measured); a what-if",
    temp_pages=False,
    on_busy_page=on_busy_page,
    params={"writer_waits": (0, "write(2) waits for writeback of the folio (mainline: no)")},
    iomap=True,
    large_folios=True,
)
