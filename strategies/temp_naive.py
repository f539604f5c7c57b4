"""temp-naive: copy again and send, however many copies are already out.

This is fs/fuse writeback as first merged for ->writepages (commit 26d614df1da9,
"fuse: Implement writepages callback", 2013), before the same-page handling of
8b284dc47291.  A page that is dirty while an older copy is still at the server
is copied into a second temp page and sent.  With more than one server thread
the copies can be applied out of order and the server can end up holding an old
version of a page the kernel thinks is clean: the hazard of the seed thread.
Kept as the reference point, not as a design anyone should ship.
"""
from . import Action, BusyPage, Strategy


def on_busy_page(where: BusyPage, params) -> Action:
    return Action.COPY


STRATEGY = Strategy(
    name="temp-naive",
    code=0,
    summary="copy the page again and send it; several copies may be in flight",
    kernels="3.12-rc writepages series (26d614df1da9) before 8b284dc47291",
    temp_pages=True,
    on_busy_page=on_busy_page,
    params={"writer_waits": (1, "write(2) waits for in-flight copies (fuse_wait_on_page_writeback)")},
)
