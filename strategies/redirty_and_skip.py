"""redirty-and-skip: leave a busy page dirty in WB_SYNC_NONE, wait in WB_SYNC_ALL.

Maxim Patlasov's patch in the seed thread: in fuse_writepages_fill(), if the
page is still under fuse writeback, redirty_page_for_writepage() and skip it
unless this is data-integrity writeback, where it waits.  From direct reclaim
(->writepage) it always skips, which is what fuse_writepage() did for pages in
flight in kernels 3.13 to 6.15.
"""
from . import Action, BusyPage, Strategy


def on_busy_page(where: BusyPage, params) -> Action:
    if where.sync_all and not where.from_reclaim:
        return Action.WAIT
    return Action.SKIP


STRATEGY = Strategy(
    name="redirty-and-skip",
    code=2,
    summary="WB_SYNC_NONE redirties and skips a page in flight; WB_SYNC_ALL waits",
    kernels="proposed in the 2013 thread (seed); fuse_writepage's reclaim path 3.13-6.15",
    temp_pages=True,
    on_busy_page=on_busy_page,
    params={"writer_waits": (1, "write(2) waits for in-flight copies (fuse_wait_on_page_writeback)")},
)
