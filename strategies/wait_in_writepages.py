"""wait-in-writepages: sleep in writepages until the in-flight copy is done.

The first answer proposed in the seed thread: call fuse_wait_on_page_writeback()
from fuse_writepages_fill().  Correct ordering, at most one copy per page, but
the flusher blocks on the server, and when ->writepage is reached from direct
reclaim the allocating task waits on userspace: with a stuck server that is the
deadlock Miklos Szeredi pointed out.  The engine counts such waits in
`deadlocks` (and in `hangs` once they pass the hang threshold).
"""
from . import Action, BusyPage, Strategy


def on_busy_page(where: BusyPage, params) -> Action:
    return Action.WAIT


STRATEGY = Strategy(
    name="wait-in-writepages",
    code=1,
    summary="wait for the in-flight copy, then copy; blocks flusher and reclaim",
    kernels="proposed in the 2013 thread (seed), never merged",
    temp_pages=True,
    on_busy_page=on_busy_page,
    params={"writer_waits": (1, "write(2) waits for in-flight copies (fuse_wait_on_page_writeback)")},
)
