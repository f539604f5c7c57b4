"""merge-in-queue: fold the new data into a request the server has not read yet.

Miklos Szeredi's answer in the seed thread, merged as 8b284dc47291 "fuse:
writepages: handle same page rewrites" (3.13) and shipped until the temp page
went away in 6.16.  When writepages meets a page whose copy is in flight:
- if a secondary request for that page is still held (invisible to the server
  until its primary completes), the new data is copied over it in place;
- optionally (`merge_queued_primary`), a single-page primary that is still
  queued or pending, not yet read by a server thread, is updated in place;
- otherwise a one-page secondary is chained to the in-flight request and sent
  only when it completes (fuse_writepage_end), so the server sees versions in
  order and a page never has more than two copies in flight.
From direct reclaim ->writepage redirties and skips a page in flight, as
fuse_writepage() did.
"""
from . import Action, BusyPage, Strategy


def on_busy_page(where: BusyPage, params) -> Action:
    if where.from_reclaim:
        return Action.SKIP
    return Action.MERGE


STRATEGY = Strategy(
    name="merge-in-queue",
    code=3,
    summary="update a not-yet-read copy in place, else chain a held secondary",
    kernels="3.13-6.15 (8b284dc47291, 6eaf4782eb09, 6b2fb79963fb)",
    temp_pages=True,
    on_busy_page=on_busy_page,
    params={
        "writer_waits": (1, "write(2) waits for in-flight copies (fuse_wait_on_page_writeback)"),
        "merge_queued_primary": (0, "also update a still-queued single-page primary in place "
                                    "(the 2013 patch did; later kernels only swap secondaries)"),
    },
)
