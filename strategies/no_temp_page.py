"""no-temp-page: the page itself is in the request and stays under writeback.

Mainline since 0c58a97f919c "fuse: remove tmp folio for writebacks and internal
rb tree" (6.16), made safe by 0c4f8ed498ce, which lets reclaim skip folios
under writeback of mappings that may deadlock instead of waiting on them.
No copy, no temp page: PG_writeback stays set until the server replies.
WB_SYNC_NONE writeback skips a page still under writeback (it stays dirty),
WB_SYNC_ALL waits for it.  page_mkwrite waits; write(2) does not (the page is
modified and redirtied under writeback).  The server gets the page as it is
when a server thread reads the request.  Reclaim skips these pages and
compaction cannot move them.
"""
from . import Action, BusyPage, Strategy


def on_busy_page(where: BusyPage, params) -> Action:
    if where.sync_all and not where.from_reclaim:
        return Action.WAIT
    return Action.SKIP


STRATEGY = Strategy(
    name="no-temp-page",
    code=4,
    summary="no copy: the page stays PG_writeback until the reply; skip or wait",
    kernels="6.16 and later (0c58a97f919c, 0c4f8ed498ce)",
    temp_pages=False,
    on_busy_page=on_busy_page,
    params={"writer_waits": (0, "write(2) waits for writeback of the page (mainline: no)")},
)
