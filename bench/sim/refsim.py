"""The reference simulator: the model of docs/model.md in plain Python.

It exists to be read and to check the C core (csrc/), which must produce the
same raw result for the same configuration, operations and seed, counter for
counter.  Both are written as the same explicit state machine; keep them in
step.

Operations come as an array (each thread's rows in array order) or as a stream
(bench.sim.stream: each thread's rows in chunks, asked for when the thread has run
the last; simulate_stream), with the same results.  Latency samples are kept one by
one up to lathist.EXACT per kind, then folded into a histogram (bench.sim.lathist).

Time is integer nanoseconds.  Events sit in a heap ordered by (time, sequence),
the sequence making same-time events run in the order they were scheduled
(SimPy's rule).  Kinds of event:

  ACTOR    run or resume an actor (an application thread, or the flusher)
  DONE     a server thread finished its request
  TIMER    the flusher's periodic wake-up (dirty_writeback_interval)
  STALL    a stall window of the server ended
  TIMEOUT  the connection's request-timeout check (every 15 s)

Two things happen in that order without going through the heap (the results are
the same; the `events` counter counts only what went through it):
  - the CPU grant (run_cpu_queue) is kept beside the heap, due at cpu_ev in its
    place among the events (cpu_seq: after those pushed before it was set), as an
    event pushed then would be;
  - an actor whose CPU work runs until a time before anything queued is due goes on
    at once (go_on) instead of sleeping in an ACTOR event that would come next.

An *actor* runs atomically at an event's time: an application call changes the
page cache at its start, and its CPU costs push the actor's own clock (`clk`)
forward, which sets when its next call may start and the latency it reports.
When it must wait (for a page under writeback, a READ, the dirty limit, the
end of fsync's writes), it records what it waits for and returns; every
request completion re-checks the waiters in actor order and schedules the ones
now free.  CPU costs delay the actor; they delay the moment its requests
become visible to the server only in writepages, where a request is sent when
the CPU work that built it is done (send_batch: the actor sleeps until its
clock, sends the batch, and goes on), so that the flusher's serial per-page
work bounds writeback as in the kernel.  Reclaim's one-page requests go at once.

CPUs.  With cpus = 0 every actor and server thread has a CPU of its own.  With
cpus = N the application threads, the flusher and the server threads share N
CPUs (`cpu`, `start_service`): a piece of an actor's work takes an idle CPU or
waits for the one free soonest, and is never preempted; a server thread takes a
CPU only when one is idle at the current time, else it queues (FIFO) until one
is.  So an application thread waits at most for the server work already
running, which is how the mount behaves under CFS/EEVDF (a writer keeps most of
a CPU while 12 WRITEs are in service); booking server work ahead instead made
a writer wait behind every queued request.  The share of a service time spent on
a CPU is server_cpu_pct (100: an in-memory server; a server that waits on disk
or network is mostly off CPU).

Who pays the writeback path (model.md's "Who pays what"; fs/fuse/file.c of
v6.1, and 0c58a97f919c for no-temp-page).  Every strategy's writepages pays
wp_page_ns per page and wp_request_ns per request, in the actor that runs it
(the flusher, an fsync/sync caller, reclaim).  The temp-page strategies add:
- in that actor, per page: temp_alloc_ns + page_copy_ns (alloc_temp),
  wb_lookup_ns (is the page in flight?) and end_writeback_ns (PG_writeback
  ends at once); per request wb_tree_ns (the insert in fi->writepages, or
  chaining a secondary); the flusher is one actor, so this work is serial;
- in the writer: wb_lookup_ns per page of a write(2) (fuse_write_begin, with
  writer_waits), of a write fault (page_mkwrite) and before a READ
  (fuse_do_readpage), only while the file has writes in flight (the lookup
  returns at once on an empty tree, RB_EMPTY_ROOT);
- in the server thread that replies: temp_free_ns per page and wb_tree_ns per
  request (rb_erase).
no-temp-page pays end_writeback_ns per page in the server thread that replies,
and nothing of the rest.  The reply's kernel work is added to the request's
service time, all of it on a CPU (server_cpu_pct does not apply to it), and the
pages are done at its end.

Choices where model.md is silent (kernel behaviour followed, or simplified):
- Direct reclaim only (no kswapd).  It scans the LRU from its cold end in
  rounds of `reclaim_batch`: clean pages are freed, dirty pages are written
  through ->writepage (one-page request), pages under PG_writeback, locked or
  pinned by direct I/O are rotated.  A temp-page strategy's page is clean as
  soon as it is copied, so reclaim frees it at once (shrink_folio_list).  A
  round that frees nothing sleeps `reclaim_retry_ns`; after `reclaim_retries`
  such rounds the allocation goes ahead (counted in `reclaim_gaveup`).
- The LRU is a single list in order of insertion; pages are not activated.
- writepages scans a file from index 0 (range_cyclic is not modelled) and sends
  the batch being filled before it waits.
- The flusher writes inodes dirtied more than dirty_expire ago in full, and
  while the bdi's dirty pages are over its background threshold writes the
  others, in chunks of wb_chunk_pages, until they are not (wb_over_bg_thresh
  counts dirty pages only).  The chunk is writeback_chunk_size of a new bdi:
  avg_write_bandwidth starts at INIT_BW (100 MB/s), so it is 13312 pages
  (52 MiB), more than the bdi's whole dirty limit on most machines: a
  background pass writes every dirty page of an inode, as the mount shows
  (Dirty drops from the freerun ceiling to almost 0 in one pass).
- Dirty throttling is balance_dirty_pages with BDI_CAP_STRICTLIMIT, as FUSE
  sets it.  Limits: dirtyable memory (total - anon - temp) times dirty_ratio
  (and dirty_background_ratio) times the bdi's max_ratio; the freerun ceiling
  is their mean.  A task looks at them (balance_dirty_pages_ratelimited) after
  every nr_dirtied_pause pages it newly dirtied by write(2) or a write fault,
  inside the call, with wb = dirty + writeback:
  - at or below freerun it runs free and looks again after about
    sqrt(limit - wb) pages (dirty_poll_interval);
  - above it, background writeback is started (not at the background
    threshold, as for a normal bdi: on the mount Dirty climbs to the freerun
    ceiling before any WRITE; bg_start=1 starts it above the bdi's own
    background threshold instead, as 0437906841d0 (2026) does and a 7.2 guest
    shows) and the task owes a pause for the pages it
    dirtied at dirty_ratelimit_pps * pos_ratio, pos_ratio being
    wb_position_ratio's cubic (1 at freerun, 0 at the limit), less the time
    it spent since its last pause (dirty_paused_when).  As the kernel, it
    counts in whole jiffies (hz): wb_max_pause bounds a pause by what the bdi
    holds (dirty / (1 + bw / roundup_pow_of_two(1 + HZ/8)) + 1 jiffies, at
    most max_pause), wb_min_pause aims at 10 ms pauses, sets how many pages
    the task dirties before it looks again, and a pause shorter than its
    min_pause is carried as debt instead of slept;
  - at the limit it sleeps until a completion brings wb under it, then looks
    again.
  Each pause, and each sleep at the limit, is one throttle sample.
  dirty_ratelimit stays at INIT_BW (100 MB/s, a new bdi's value): the kernel's
  200 ms bandwidth estimation is not modelled.  For a strictlimit bdi it can
  only lower the ratelimit (a task is throttled only above the setpoint), so
  this matters when a server is slower than 100 MB/s for long.
- A thread that slept on the server, a page or the dirty limit (not a timed
  sleep) pays wakeup_ns of CPU when it is woken, and goes on once that is
  done; a request that arrives while the server's threads sleep (outside the
  handling of a reply) costs the server server_wakeup_ns more.  Both are
  measured by calibrate with getrusage (one thread's fsync loop against eight
  at once).
- write(2), faults and direct I/O that bring a page into the cache pay
  cache_add_ns for it (page allocation and filemap_add_folio).  A WRITE costs
  the server server_new_page_ns more for each page it has never been sent: its
  copy of a file starts sparse (bench.real.mount's server creates files with
  ftruncate and touches memory on first write).
- sync(2) with sync_waits=0 (f9a49aa302a0, 76f9377cd2ab) wakes the flusher to
  write every dirty page (WB_SYNC_NONE) and returns; with sync_waits=1 (every
  earlier kernel) it runs WB_SYNC_ALL writepages on every file and then waits for
  pages under PG_writeback (wait_sb_inodes), which temp-page strategies end at once.
- The request timeout (request_timeout_ns, 9b17cb59a7db): a check every 15 s from
  the first call (EV_TIMEOUT) looks at the oldest request of the pending and
  background queues and at every request a server thread holds (for the processing
  lists' heads: with at most server_threads of them, looking at all differs only in
  which one is looked at first); one created more than the timeout ago, in whole
  jiffies, aborts the connection (abort): those requests end with an error, their
  pages end writeback undelivered, held secondaries fail with their primary, and
  every later request fails at once (a READ: the call returns its error, the page
  stays cached but not up to date; an fsync returns at once).  Calls that need no
  request go on (write(2) into the cache, as writeback_cache allows), and what the
  flusher then writes fails at once.  A failed call records no latency and no
  bytes dirtied.  The check stops once no thread runs and no request is out.
- Compaction of n pages: the share of memory that is unmovable (temp pages and
  pages pinned under writeback) is found unmovable in the range; every other
  page costs compact_page_ns to migrate.  It never waits on writeback.
- Lost updates are counted at the end: pages the cache holds clean whose last
  version the server does not have.  A page still dirty is not lost.
- The temp-page path's costs (above), where model.md does not say:
  - writepages pays wb_lookup_ns for every page it looks at, the first of a
    request included (the kernel finds that one in flight by the insert,
    fuse_writepage_add), and the insert's wb_tree_ns when it sends the request;
  - write(2) pays one lookup per page it touches, as fuse_write_begin runs
    once per page (or part of one) a write covers: four 1 KiB writes to one
    page look it up four times, one 40 KiB write looks up ten pages once each;
  - an in-place update of a held copy (merge-in-queue) pays temp_alloc_ns +
    page_copy_ns + wb_tree_ns + temp_free_ns + end_writeback_ns in the actor
    that writes back: fuse_writepage_add copies into a fresh temp page, swaps it
    in and frees the old one, no new request;
  - a secondary sent at its primary's reply (fuse_writepage_end) is re-inserted
    in fi->writepages: that wb_tree_ns goes to the server thread that serves
    the secondary (a service time is drawn when a request is read, before the
    reply that releases its secondaries is known);
  - accounting: WB_WRITEBACK is counted in every kernel and is part of
    wp_page_ns (at send) and server_page_ns (at the reply);
    NR_WRITEBACK_TEMP's increment and decrement are part of temp_alloc_ns and
    temp_free_ns.

Folios (the iomap strategies, docs/model.md "Folios"; strategies/large_folio.py names
the kernel sources):
- a page is a 4 KiB block of its folio; folios are naturally aligned runs of pages named
  by their head; only heads are on the LRU; per-folio state lives at the head (pages,
  dirty blocks, blocks in flight);
- dirty accounting per folio (a clean folio's first dirty block accounts all its pages,
  and its last cleaned block unaccounts them); writeback puts the folio under
  PG_writeback whole (pinned counts all its pages) and holds it while it adds the
  folio's dirty ranges, so that a folio cannot end its writeback half filled;
- the chunk of background writeback (nr_to_write) counts whole folios and is looked at
  between folios; wp_page_ns stays per block, end_writeback_ns is per folio range of a
  reply, cache_add_ns is per folio added;
- only write(2) makes large folios (large-folio); a large order fails without reclaim
  when it would take free memory under the low watermark, or overlap a cached page, or
  pass the file's simulated pages (the last index any op touches);
- a READ of a not-uptodate block makes it uptodate; the rest of a new large folio stays
  not uptodate until written whole or read.

Not modelled: kswapd and LRU activation; the congestion check of
fuse_writepages in v5.x-v6.1 (WB_SYNC_NONE writeback gives up while
num_background >= congestion_threshold); the bandwidth estimation that adapts
dirty_ratelimit and max_pause; truncation and the per-inode writectr; memcg.
"""
from __future__ import annotations

import heapq
import math
from collections import defaultdict, deque
from typing import Any, Mapping

import numpy as np

import strategies
from strategies import Action, BusyPage

from bench.sim import lathist, ops as O
from bench.sim.stream import CHUNK, Feed, OpStream

PAGE = O.PAGE_SIZE
M64 = (1 << 64) - 1

# events
EV_ACTOR, EV_DONE, EV_TIMER, EV_STALL, EV_TIMEOUT = 0, 1, 2, 3, 4
# request kinds and states
RQ_WRITE, RQ_READ, RQ_FSYNC = 0, 1, 2
ST_FILLING, ST_QUEUED, ST_BACKGROUND, ST_PENDING, ST_SENT, ST_DONE, ST_HELD = range(7)
# what a waiting actor waits for
W_NONE, W_PAGE, W_LOCK, W_FILE, W_ALL, W_THROTTLE, W_REQ, W_TIMER = range(8)
# where an app thread is inside its current call
PH_START, PH_PAGES, PH_WP, PH_WAITIO, PH_FSYNCWAIT, PH_DIODONE = range(6)
# a dirty-throttle wait that interrupted a call's page loop: a pause (done when it ends) or a
# sleep at the limit (balance_dirty_pages looks again when it ends)
BAL_NONE, BAL_PAUSE, BAL_LIMIT = range(3)
RATELIMIT_SHIFT = 10           # mm/page-writeback.c RATELIMIT_CALC_SHIFT: pos_ratio's fixed point
NR_DIRTIED_PAUSE = 32          # a task's nr_dirtied_pause at start; DIRTY_POLL_THRESH

COUNTERS = (
    "requests", "reads", "fsync_requests", "secondaries", "inplace_updates", "redirty_skips",
    "writeback_skips", "writepages_waits", "temp_alloc_failures", "temp_pages_peak",
    "temp_bytes_copied", "temp_page_ns", "pinned_pages_peak", "lost_updates", "out_of_order",
    "max_copies_in_flight", "hangs", "deadlocks", "reclaim_gaveup", "compaction_unmovable",
    "bytes_dirtied", "bytes_written", "t_first", "t_app_end", "t_wb_end", "t_end", "stuck",
    "events", "aborted_calls", "folios", "folio_pages", "folio_waits",
)
TIMEOUT_PERIOD_NS = 15 * 1_000_000_000   # fs/fuse/dev.c FUSE_TIMEOUT_TIMER_FREQ (15 s)
MAX_FOLIO_ORDER = 9            # MAX_PAGECACHE_ORDER on x86-64 (HPAGE_PMD_ORDER): 2 MiB
LATENCIES = ("write", "fault", "fsync", "sync", "throttle", "reclaim", "compaction")
SERIES_FIELDS = ("time_ns", "dirty", "writeback", "temp", "cache", "anon")


# ---------------------------------------------------------------- randomness
# splitmix64, and a log and an exp built from + - * only (with exact steps: frexp, ldexp,
# table look-ups, conversions of integers), so that the C engine, compiled with
# -ffp-contract=off, gets bit-identical service times.  The constants are hex floats,
# written the same in engine.c; tests/test_detmath.py derives them again with decimal
# arithmetic and holds both functions to math.log / math.exp.

def splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def _hex_floats(text: str) -> tuple[float, ...]:
    return tuple(float.fromhex(h) for h in text.split())


LN2_HI = float.fromhex("0x1.62e42fefa4000p-1")    # ln 2 in 40 bits: e * LN2_HI is exact
LN2_LO = float.fromhex("-0x1.8432a1b0e2634p-43")  # ln 2 - LN2_HI
# det_log: x = 2**e * m, ln x = e ln 2 + ln(1/c) + log1p(r) with r = m c - 1 small.  m in
# [LOG_FIRST/LOG_N, 2 * LOG_FIRST/LOG_N) is cut into steps of 1/LOG_N; row i - LOG_FIRST holds
# c ~ 1/m on [i/LOG_N, (i+1)/LOG_N), rounded to 45 bits so that (i/LOG_N) * c is exact, and
# ln(1/c).  On the two steps either side of 1, c = 1: there r = m - 1 exactly, so ln x keeps
# its relative accuracy as x -> 1 (|r| <= 1/128 there, about 1/180 elsewhere).
LOG_N = 128
LOG_FIRST = 90
_LOG_FLAT = _hex_floats("""
0x1.6a13cd1537300p+0 -0x1.630030b3aad85p-2  0x1.661ec6a512300p+0 -0x1.57bf753c8d20fp-2
0x1.623fa77016200p+0 -0x1.4c9e09e172b84p-2  0x1.5e75bb8d01600p+0 -0x1.419b423d5e90fp-2
0x1.5ac056b015b00p+0 -0x1.36b6776be11d3p-2  0x1.571ed3c506b00p+0 -0x1.2bef07cdc92a8p-2
0x1.5390948f41000p+0 -0x1.214456d0eb914p-2  0x1.5015015015000p+0 -0x1.16b5ccbacfb33p-2
0x1.4cab88725af00p+0 -0x1.0c42d6761618fp-2  0x1.49539e3b2d000p+0 -0x1.01eae5626c551p-2
0x1.460cbc7f5d000p+0 -0x1.ef5ade4dd0266p-3  0x1.42d6625d52000p+0 -0x1.db13db0d48c40p-3
0x1.3fb013fb01400p+0 -0x1.c6ffbc6f00f91p-3  0x1.3c995a47bac00p+0 -0x1.b31d8575bceddp-3
0x1.3991c2c187f00p+0 -0x1.9f6c4070893dcp-3  0x1.3698df3de0700p+0 -0x1.8beafeb38fcb4p-3
0x1.33ae45b57bd00p+0 -0x1.7898d85444e7bp-3  0x1.30d190130d200p+0 -0x1.6574ebe8c162ap-3
0x1.2e025c04b8100p+0 -0x1.527e5e4a1b855p-3  0x1.2b404ad012b00p+0 -0x1.3fb45a5992714p-3
0x1.288b01288b000p+0 -0x1.2d1610c8680bap-3  0x1.25e2270809300p+0 -0x1.1aa2b7e23f792p-3
0x1.23456789abd00p+0 -0x1.08598b59e3aefp-3  0x1.20b470c67c100p+0 -0x1.ec739830a1350p-4
0x1.1e2ef3b3fb800p+0 -0x1.c885801bc44a3p-4  0x1.1bb4a4046ed00p+0 -0x1.a4e7640b1b9e8p-4
0x1.19453808ca300p+0 -0x1.8197e2f40e9a0p-4  0x1.16e0689427300p+0 -0x1.5e95a4d978adbp-4
0x1.1485f0e0acd00p+0 -0x1.3bdf5a7d1eaf4p-4  0x1.12358e75d3000p+0 -0x1.1973bd1465267p-4
0x1.0fef010fef000p+0 -0x1.eea31c006b67cp-5  0x1.0db20a88f4700p+0 -0x1.aaef2d0fb1d9cp-5
0x1.0b7e6ec259e00p+0 -0x1.67c94f2d4c218p-5  0x1.0953f39010900p+0 -0x1.252f32f8d0e1fp-5
0x1.073260a47f800p+0 -0x1.c63d2ec14b8f2p-6  0x1.05197f7d73400p+0 -0x1.432a925980bc1p-6
0x1.03091b51f5e00p+0 -0x1.82448a38895aap-7  0x1.0000000000000p+0 0x0.0p+0
0x1.0000000000000p+0 0x0.0p+0  0x1.fa11caa01fa00p-1 0x1.7dc475f810ef7p-7
0x1.f6310aca0dc00p-1 0x1.3cea443469bf5p-6  0x1.f25f644230b00p-1 0x1.b9fc027af87f8p-6
0x1.ee9c7f8458e00p-1 0x1.1b0d98923d9a0p-5  0x1.eae807aba0200p-1 0x1.58a5bafc8e375p-5
0x1.e741aa5975100p-1 0x1.95c830ec8e21bp-5  0x1.e3a9179dc1a00p-1 0x1.d276b8adb12f2p-5
0x1.e01e01e01e000p-1 0x1.075983598e571p-4  0x1.dca01dca01e00p-1 0x1.253f62f0a1247p-4
0x1.d92f2231e8000p-1 0x1.42edcbea642f0p-4  0x1.d5cac80757300p-1 0x1.60658a9374e1cp-4
0x1.d272ca3fc5b00p-1 0x1.7da766d7b13b5p-4  0x1.cf26e5c44c000p-1 0x1.9ab42462031adp-4
0x1.cbe6d9601cc00p-1 0x1.b78c82bb0ecc1p-4  0x1.c8b265afb8a00p-1 0x1.d4313d66cb5adp-4
0x1.c5894d10d4a00p-1 0x1.f0a30c0115e56p-4  0x1.c26b5392ea000p-1 0x1.0671512ca59eep-3
0x1.bf583ee868e00p-1 0x1.1478584674094p-3  0x1.bc4fd65883e00p-1 0x1.2266f190a5d03p-3
0x1.b951e2b18ff00p-1 0x1.303d718e48077p-3  0x1.b65e2e3beee00p-1 0x1.3dfc2b0ecc642p-3
0x1.b37484ad80700p-1 0x1.4ba36f39a54f9p-3  0x1.b094b31d92300p-1 0x1.59338d9981ed2p-3
0x1.adbe87f949000p-1 0x1.66acd4272af11p-3  0x1.aaf1d2f87ec00p-1 0x1.740f8f5403795p-3
0x1.a82e65130e100p-1 0x1.815c0a1435997p-3  0x1.a574107688a00p-1 0x1.8e928de886ea9p-3
0x1.a2c2a87c51d00p-1 0x1.9bb362e7df9afp-3  0x1.a01a01a01a000p-1 0x1.a8becfc882f99p-3
0x1.9d79f176b6800p-1 0x1.b5b519e8fb684p-3  0x1.9ae24ea551100p-1 0x1.c2968558c1805p-3
0x1.9852f0d8ec100p-1 0x1.cf6354e09c5d8p-3  0x1.95cbb0be37800p-1 0x1.dc1bca0abeaddp-3
0x1.934c67f9b2d00p-1 0x1.e8c0252aa59dcp-3  0x1.90d4f12019100p-1 0x1.f550a564b7a5bp-3
0x1.8e6527af13700p-1 0x1.00e6c45ad50bfp-2  0x1.8bfce8062ff00p-1 0x1.071b85fcd59a3p-2
0x1.899c0f6018a00p-1 0x1.0d46b579ab647p-2  0x1.87427bcc09300p-1 0x1.136870293a7f6p-2
0x1.84f00c2780600p-1 0x1.1980d2dd423a3p-2  0x1.82a4a0182a500p-1 0x1.1f8ff9e48a1f5p-2
0x1.8060180601800p-1 0x1.2596010df764ap-2  0x1.7e225515a4f00p-1 0x1.2b9303ab89d73p-2
0x1.7beb3922e0100p-1 0x1.31871c95442d3p-2  0x1.79baa6bb63a00p-1 0x1.3772662bfd71fp-2
0x1.77908119ac600p-1 0x1.3d54fa5c1f734p-2  0x1.756cac2017500p-1 0x1.432ef2a04e93ep-2
0x1.734f0c541ff00p-1 0x1.4900680400893p-2  0x1.713786d9c7c00p-1 0x1.4ec9732600282p-2
0x1.6f26016f26000p-1 0x1.548a2c3add2a3p-2  0x1.6d1a62681c800p-1 0x1.5a42ab0f4d0f2p-2
""")
LOG_TABLE = tuple(zip(_LOG_FLAT[0::2], _LOG_FLAT[1::2]))
# log1p(r) = r + r*r * (LOG_C2 + r*(LOG_C3 + ... + r*LOG_C8)), LOG_Ck = (-1)**(k+1) / k: the
# Taylor series
LOG_C2, LOG_C3, LOG_C4, LOG_C5, LOG_C6, LOG_C7, LOG_C8 = _hex_floats("""
    -0x1.0000000000000p-1 0x1.5555555555555p-2 -0x1.0000000000000p-2 0x1.999999999999ap-3
    -0x1.5555555555555p-3 0x1.2492492492492p-3 -0x1.0000000000000p-3""")
# det_exp: x = (k/EXP_N) ln 2 + r, |r| <= ln 2 / (2 EXP_N), e**x = 2**(k // EXP_N) *
# 2**(j/EXP_N) * (1 + expm1(r)) with j = k mod EXP_N; EXP_TABLE[j] = 2**(j/EXP_N)
EXP_N = 32
EXP_INV = float.fromhex("0x1.71547652b82fep+5")      # EXP_N / ln 2
EXP_LN2_HI = float.fromhex("0x1.62e42fefa0000p-6")   # ln 2 / EXP_N in 36 bits: k * EXP_LN2_HI exact
EXP_LN2_LO = float.fromhex("0x1.cf79abc9e3b3ap-45")  # ln 2 / EXP_N - EXP_LN2_HI
EXP_SHIFT = float.fromhex("0x1.8p52")                # (y + EXP_SHIFT) - EXP_SHIFT: y to nearest integer
EXP_TABLE = _hex_floats("""
0x1.0000000000000p+0 0x1.059b0d3158574p+0 0x1.0b5586cf9890fp+0 0x1.11301d0125b51p+0
0x1.172b83c7d517bp+0 0x1.1d4873168b9aap+0 0x1.2387a6e756238p+0 0x1.29e9df51fdee1p+0
0x1.306fe0a31b715p+0 0x1.371a7373aa9cbp+0 0x1.3dea64c123422p+0 0x1.44e086061892dp+0
0x1.4bfdad5362a27p+0 0x1.5342b569d4f82p+0 0x1.5ab07dd485429p+0 0x1.6247eb03a5585p+0
0x1.6a09e667f3bcdp+0 0x1.71f75e8ec5f74p+0 0x1.7a11473eb0187p+0 0x1.82589994cce13p+0
0x1.8ace5422aa0dbp+0 0x1.93737b0cdc5e5p+0 0x1.9c49182a3f090p+0 0x1.a5503b23e255dp+0
0x1.ae89f995ad3adp+0 0x1.b7f76f2fb5e47p+0 0x1.c199bdd85529cp+0 0x1.cb720dcef9069p+0
0x1.d5818dcfba487p+0 0x1.dfc97337b9b5fp+0 0x1.ea4afa2a490dap+0 0x1.f50765b6e4540p+0
""")
# expm1(r) = r + r*r * (EXP_C2 + r*(EXP_C3 + ... + r*EXP_C6)), EXP_Ck = 1/k!: the Taylor series
EXP_C2, EXP_C3, EXP_C4, EXP_C5, EXP_C6 = _hex_floats("""
    0x1.0000000000000p-1 0x1.5555555555555p-3 0x1.5555555555555p-5 0x1.1111111111111p-7
    0x1.6c16c16c16c17p-10""")


def det_log(x: float) -> float:
    """ln x for a finite x > 0, within about one ulp (tests/test_detmath.py)."""
    m, e = math.frexp(x)              # x = m * 2**e, m in [0.5, 1)
    if m < 0.703125:                  # m in [0.703125, 1.40625): ln x near 0 only with e == 0
        m *= 2.0
        e -= 1
    i = int(m * LOG_N)
    c, t = LOG_TABLE[i - LOG_FIRST]
    mh = i * (1.0 / LOG_N)            # m's top bits
    r = (mh * c - 1.0) + (m - mh) * c     # m*c - 1: the first sum and m - mh exact
    q = ((((((LOG_C8 * r + LOG_C7) * r + LOG_C6) * r + LOG_C5) * r + LOG_C4) * r + LOG_C3) * r
         + LOG_C2)
    return (e * LN2_HI + t) + (e * LN2_LO + (r + (r * r) * q))


def det_exp(x: float) -> float:
    """e**x for |x| <= 700 (service: |x| <= 32), within about one ulp (tests/test_detmath.py)."""
    kf = (x * EXP_INV + EXP_SHIFT) - EXP_SHIFT
    k = int(kf)
    r = (x - kf * EXP_LN2_HI) - kf * EXP_LN2_LO     # the first difference exact
    q = (((EXP_C6 * r + EXP_C5) * r + EXP_C4) * r + EXP_C3) * r + EXP_C2
    s = EXP_TABLE[k & (EXP_N - 1)]
    return math.ldexp(s + s * (r + (r * r) * q), k // EXP_N)


class Server:
    """T threads reading a FIFO of pending requests; seeded service times."""

    def __init__(self, cfg: Mapping[str, Any], seed: int):
        self.threads: list[Any] = [None] * cfg["server_threads"]
        self.rng = (seed * 0x2545F4914F6CDD1D + 0x5DEECE66D) & M64
        self.dist = cfg["server_dist"]
        self.sigma = float(cfg["server_sigma"])
        self.windows = cfg["stall_windows"]

    def uniform53(self) -> int:
        self.rng, z = splitmix64(self.rng)
        return (z >> 11) + 1                                   # [1, 2**53]

    def uniform(self) -> float:
        return self.uniform53() * (1.0 / 9007199254740992.0)   # (0, 1]

    def service(self, mean: int) -> int:
        if self.dist == 0:
            return mean
        if self.dist == 1:
            v = -float(mean) * det_log(self.uniform())
        else:
            n = 0
            for _ in range(12):       # Irwin-Hall: a normal deviate from 12 uniforms
                n += self.uniform53()             # summed exactly
            z = (n - 6 * 2**53) * (1.0 / 9007199254740992.0)
            s = self.sigma
            v = float(mean) * det_exp(s * z - 0.5 * s * s)
        return max(1, int(v))

    def stalled(self, t: int) -> bool:
        return any(s <= t < e for s, e in self.windows)

    def defer(self, t: int) -> int:
        """A reply due at t inside a stall window is given at the window's end."""
        for s, e in self.windows:
            if s <= t < e:
                t = e
        return t


class Request:
    __slots__ = ("id", "kind", "file", "first", "n", "versions", "state", "bg", "secs",
                 "crop", "done", "promoted", "created", "nfolios", "last_head")

    def __init__(self, rid: int, kind: int, f: int, first: int):
        self.id = rid
        self.kind = kind
        self.file = f
        self.first = first             # page index in the file
        self.n = 0
        self.versions: list[int] = []
        self.state = ST_FILLING
        self.bg = False                # counted in active_background
        self.secs: list[Request] = []  # held secondaries chained to this request
        self.crop = 0                  # bytes delivered, fixed when a server thread reads it
        self.done = False
        self.promoted = False          # a secondary re-inserted at its primary's reply
        self.created = 0               # when it was allocated (fuse_request_init: create_time)
        self.nfolios = 0               # folio ranges in it (iomap: ap->num_folios)
        self.last_head = -1            # the folio of its last range


class Actor:
    """An application thread (ops) or the flusher (ops is None)."""

    __slots__ = ("id", "ops", "k", "phase", "pg", "clk", "op_start", "fault_start",
                 "waiting", "wake_pending", "wait_kind", "wait_arg", "block_start",
                 "wait_reclaim", "timer_at", "in_reclaim", "rc_active", "rc_start", "rc_fails",
                 "wp_active", "wp_f", "wp_idx", "wp_end", "wp_sync", "wp_bg", "wp_chunk", "wp_batch",
                 "wp_ready", "wp_looked", "wp_sent", "req", "sync_f", "fl_pass", "fl_file",
                 "fl_kupdate", "fl_due",
                 "fl_sync", "fl_all", "nr_dirtied", "paused_when", "dirtied_pause", "bal_state",
                 "finished", "failed", "wp_fh", "wp_fend", "wp_rend")

    def __init__(self, aid: int, ops: np.ndarray | None):
        self.id = aid
        self.ops = ops
        self.k = 0
        self.phase = PH_START
        self.pg = 0
        self.clk = 0
        self.op_start = 0
        self.fault_start = -1
        self.waiting = False
        self.wake_pending = False
        self.wait_kind = W_NONE
        self.wait_arg = 0
        self.block_start = 0
        self.wait_reclaim = False
        self.timer_at = 0
        self.in_reclaim = False
        self.rc_active = False
        self.rc_start = 0
        self.rc_fails = 0
        self.wp_active = False
        self.wp_f = self.wp_idx = self.wp_end = 0
        self.wp_sync = False
        self.wp_bg = False
        self.wp_chunk = 0
        self.wp_batch: Request | None = None
        self.wp_ready: Request | None = None   # a batch whose CPU work ends at clk: sent then
        self.wp_looked = 0             # 1 + the page whose in-flight lookup was paid
        self.wp_sent = 0
        self.req: Request | None = None
        self.sync_f = 0
        self.fl_pass = False
        self.fl_file = 0
        self.fl_kupdate = False
        self.fl_due = False
        self.fl_sync = False           # sync(2) asked for everything to be written
        self.fl_all = False
        self.nr_dirtied = 0            # pages this thread newly dirtied since its last pause
        self.paused_when = 0           # current->dirty_paused_when
        self.dirtied_pause = NR_DIRTIED_PAUSE   # current->nr_dirtied_pause
        self.bal_state = BAL_NONE
        self.finished = ops is None or len(ops) == 0
        self.failed = False            # its call failed at once (the connection was aborted)
        self.wp_fh = 0                 # iomap: the folio writepages holds under writeback
        self.wp_fend = 0               # 1 + ... its last index in the file; 0: none held
        self.wp_rend = 0               # end of the dirty range being added to the batch


# Above this many pages a per-page array is a dict: a few writes over a 64 GiB file then
# cost what they touch, not 16 lists of 2**24 entries.  Tests lower it to run the dict
# path on small files.
SPARSE_PAGES = 1 << 20


def _zero() -> int:
    return 0


def _none() -> None:
    return None


def page_array(n: int, fill: int | None) -> Any:
    """n entries of fill (0 or None): a list, or above SPARSE_PAGES a defaultdict, which
    reads and writes by index the same way and stores only the entries a run touches."""
    if n <= SPARSE_PAGES:
        return [fill] * n
    return defaultdict(_zero if fill == 0 else _none)


class Sim:
    def __init__(self, cfg: Mapping[str, Any], ops: np.ndarray | None, file_sizes: np.ndarray,
                 seed: int, stream: OpStream | None = None, chunk: int = CHUNK,
                 latency_exact: int = 0):
        """ops and file_sizes, or (ops None) a stream read `chunk` rows at a time (Feed).
        latency_exact: samples kept one by one per latency set (0: lathist.EXACT)."""
        self.cfg = cfg
        self.strategy = next(s for s in strategies.STRATEGIES.values() if s.code == cfg["strategy"])
        self.temp = self.strategy.temp_pages
        self.writer_waits = bool(cfg["writer_waits"])
        self.req_pages = min(cfg["max_pages"], cfg["max_write"] // PAGE)
        self.iomap = self.strategy.iomap
        self.large = self.strategy.large_folios
        # fuse_init_file_inode: folio orders 0..ilog2(min(max_write >> PAGE_SHIFT, max_pages)),
        # capped at MAX_PAGECACHE_ORDER
        self.max_folio = 1 << min(self.req_pages.bit_length() - 1, MAX_FOLIO_ORDER) \
            if self.large else 1
        self.server = Server(cfg, seed)

        # files: page capacity covers the initial size and every byte an op touches (a stream
        # declares it, and its Feed holds the rows to it)
        if stream is not None:
            file_sizes = stream.file_sizes
            cap = [int(p) for p in stream.file_pages]
        else:
            cap = [(int(s) + PAGE - 1) // PAGE for s in file_sizes]
            on_file = np.isin(ops["op"], O.FILE_RANGE_OPS)
            for f, end in zip(ops["file"][on_file],
                              ops["offset"][on_file] + ops["length"][on_file]):
                cap[f] = max(cap[f], (int(end) + PAGE - 1) // PAGE)
        nf = len(file_sizes)
        self.nfiles = nf
        self.npages = cap
        self.base = [0] * nf
        for f in range(1, nf):
            self.base[f] = self.base[f - 1] + cap[f - 1]
        n = sum(cap)
        self.isize = [int(s) for s in file_sizes]
        self.f_dirty: list[set[int]] = [set() for _ in range(nf)]
        self.f_dirtied_when = [0] * nf
        self.f_inflight = [0] * nf     # WRITE requests (secondaries included) not yet done

        # per page (global page id = base[file] + index); page_array: lists, or for big
        # files dicts holding only the pages the run touches
        self.version = page_array(n, 0)
        self.dirty = page_array(n, 0)
        self.pgwb = page_array(n, 0)            # PG_writeback held until the reply (no-temp-page)
        self.cached = page_array(n, 0)
        self.locked = page_array(n, 0)          # being read from the server
        self.badread = page_array(n, 0)         # cached, but its READ failed (the connection was aborted)
        self.mapw = page_array(n, 0)            # mapped writable: the next store does not fault
        self.gup = page_array(n, 0)             # pinned by direct I/O in progress
        self.inflight = page_array(n, 0)        # copies of the page in requests not yet done
        self.wb_req: list[Request | None] = page_array(n, None)
        self.sec_req: list[Request | None] = page_array(n, None)
        self.srv_ver = page_array(n, 0)
        self.srv_max = page_array(n, 0)
        self.lru_prev = page_array(n + 1, 0)    # index n is the list head
        self.lru_next = page_array(n + 1, 0)
        self.lru_prev[n] = self.lru_next[n] = n
        self.lru_head = n
        # folios (iomap strategies only; zero = an order-0 folio, or nothing).  A folio is
        # named by its head page; only heads are on the LRU.
        m = n if self.iomap else 0
        self.fofs = page_array(m, 0)            # a page's offset in its folio
        self.fnr = page_array(m, 0)             # at a head: pages in the folio, 0 for one
        self.fdirty = page_array(m, 0)          # at a head: dirty blocks
        self.fwbc = page_array(m, 0)            # at a head: blocks in flight, +1 while writeback fills it
        self.notup = page_array(m, 0)           # cached but not uptodate (a block of a new large folio)

        # memory and queues
        self.cache_pages = self.anon_pages = self.temp_pages = self.pinned = self.dirty_total = 0
        self.active_bg = 0
        self.bg_queue: deque[Request] = deque()
        self.pending: deque[Request] = deque()
        self.next_rid = 0

        # actors: threads 0..T-1, then the flusher; a stream's threads with their first chunk,
        # in thread order
        self.feed, self.chunk = (Feed(stream), chunk) if stream is not None else (None, 0)
        if stream is not None:
            nthreads = stream.threads
            self.actors = [Actor(t, self.feed.take(t, chunk)) for t in range(nthreads)]
        else:
            nthreads = int(ops["thread"].max()) + 1
            self.actors = [Actor(t, ops[ops["thread"] == t]) for t in range(nthreads)]
        self.flusher = Actor(nthreads, None)
        self.actors.append(self.flusher)
        self.alive = sum(1 for a in self.actors if not a.finished)

        # when each CPU is next free (cfg["cpus"] > 0), and server threads waiting for one
        self.cpu_free = [0] * cfg["cpus"]
        self.srv_until = [0] * cfg["cpus"]            # end of the server work on each CPU
        self.srv_cap = cfg["server_cpus"] or cfg["cpus"]
        self.cpu_runq: deque[tuple[int, int, int]] = deque()   # (server thread, service ns, on CPU)
        # The pending CPU grant (run_cpu_queue), kept out of the event queue: due at cpu_ev (-1 if
        # none), after the events pushed before it (seq < cpu_seq) and before those pushed since.
        self.cpu_ev = -1
        self.cpu_seq = 0
        self.in_done = False           # handling a reply (EV_DONE)

        self.heap: list[tuple[int, int, int, int]] = []
        self.seq = 0
        self.now = 0
        self.temp_t = 0                # last time temp_pages changed (for its integral)

        self.c = dict.fromkeys(COUNTERS, 0)
        self.hist = [0] * (cfg["max_pages"] + 1)
        self.aborted = False           # fuse_abort_conn ran (request_timeout_ns)
        self.lat: dict[str, list[int]] = {k: [] for k in LATENCIES}
        self.lat_exact = latency_exact or lathist.EXACT
        self.lat_hist: dict[str, list[int]] = {}      # a folded set's bucket counts
        self.lat_max: dict[str, int] = {}             # ... and its largest sample
        self.series: list[tuple[int, ...]] = []
        self.next_sample = 0

    # ------------------------------------------------------------- plumbing
    def lat_add(self, kind: str, v: int) -> None:
        """One latency sample: kept as it is up to lat_exact samples; the one past them folds
        the set into a histogram (bench.sim.lathist), which takes every later one."""
        counts = self.lat_hist.get(kind)
        if counts is None:
            if len(self.lat[kind]) < self.lat_exact:
                self.lat[kind].append(v)
                return
            counts = self.lat_hist[kind] = lathist.fold(self.lat[kind])
            self.lat_max[kind] = max(self.lat[kind], default=v)
            self.lat[kind] = []
        counts[lathist.bucket(v)] += 1
        self.lat_max[kind] = max(self.lat_max[kind], v)

    def push(self, t: int, kind: int, arg: int) -> None:
        heapq.heappush(self.heap, (t, self.seq, kind, arg))
        self.seq += 1

    def next_due(self) -> float:
        """When the next queued event is due (inf if none): the queue's head, or the pending CPU
        grant if it comes first."""
        t = self.heap[0][0] if self.heap else math.inf
        return min(t, self.cpu_ev) if self.cpu_ev >= 0 else t

    def go_on(self, t: int) -> bool:
        """An actor whose CPU work runs until t would sleep until then (an EV_ACTOR at t) and be
        the next event if nothing queued is due at or before t (an event pushed before it at the
        same time goes first): then it goes on at once, the clock moved to t as the loop would
        move it (series samples up to t).  Not past max_time_ns (the loop stops there).  The
        event it saves is not counted in events."""
        if t > self.cfg["max_time_ns"] or t >= self.next_due():
            return False
        self.sample(t)
        self.now = t
        return True

    def idle_cpu(self, t: int) -> int:
        """The CPU that became free last at or before t (so that one thread's successive pieces
        of work stay on one CPU and leave the others' idle time alone); -1 if none is."""
        free = self.cpu_free
        best = -1
        for i in range(len(free)):
            if free[i] <= t and (best < 0 or free[i] > free[best]):
                best = i
        return best

    def cpu(self, t: int, ns: int) -> int:
        """An actor runs ns of CPU work that can start at t; return when it ends.

        With cfg["cpus"] == 0 every actor and server thread has a CPU of its own.  Otherwise the
        work takes an idle CPU (idle_cpu), else waits for the one free soonest, and runs
        without preemption.  Server threads only take a CPU that is idle (start_service), so an
        actor waits at most for the pieces of work already running."""
        free = self.cpu_free
        if not free or ns <= 0:
            return t + ns
        best = self.idle_cpu(t)
        if best < 0:
            best = min(range(len(free)), key=free.__getitem__)
        end = max(t, free[best]) + ns
        free[best] = end
        return end

    def server_capped(self) -> bool:
        """Whether server work already runs on server_cpus CPUs."""
        return sum(1 for u in self.srv_until if u > self.now) >= self.srv_cap

    def server_cpu(self) -> int:
        """The CPU a server thread may take now: an idle one, unless server work already runs
        on server_cpus CPUs; -1 if none."""
        return -1 if self.server_capped() else self.idle_cpu(self.now)

    def book_server(self, i: int, w: int, svc: int, on_cpu: int) -> None:
        self.cpu_free[i] = self.srv_until[i] = self.now + on_cpu
        self.push(self.server.defer(self.now + svc), EV_DONE, w)

    def start_service(self, w: int, svc: int, kern: int) -> None:
        """Server thread w runs a request of svc ns, then kern ns of kernel work at its reply
        (all on CPU): its CPU share first (on a CPU it may take now, else it queues for one),
        then the rest off CPU."""
        on_cpu = svc * self.cfg["server_cpu_pct"] // 100 + kern
        svc += kern
        if self.cpu_free and on_cpu > 0:
            i = -1 if self.cpu_runq else self.server_cpu()     # behind those queued
            if i < 0:
                self.cpu_runq.append((w, svc, on_cpu))
                self.cpu_wake()
                return
            self.book_server(i, w, svc, on_cpu)
            return
        self.push(self.server.defer(self.now + svc), EV_DONE, w)

    def cpu_wake(self) -> None:
        """Schedule the CPU grant for when a queued server thread may next find a CPU: the end of
        the first server work if server_cpus are taken, else when the first CPU is free.  A grant
        is pending exactly while threads queue, and a pending one stands: since it was computed
        (at t0 <= now) no server work was booked (start_service queues behind the queue), so
        srv_until is as it was, and cpu_free only grew.  Capped now, it was capped at t0 and the
        first server work to end is the same one (or, now being its end, a later one); not capped
        now, either that work ended by now (the grant is due by now) or max(t0, first CPU free)
        has only grown: never earlier than the grant."""
        if self.cpu_ev >= 0:
            return
        if self.server_capped():
            self.cpu_ev = min(u for u in self.srv_until if u > self.now)
        else:
            self.cpu_ev = max(self.now, min(self.cpu_free))
        self.cpu_seq = self.seq

    def run_cpu_queue(self) -> None:
        """The CPU grant: queued server threads take the CPUs idle now, in order."""
        self.cpu_ev = -1
        while self.cpu_runq:
            i = self.server_cpu()
            if i < 0:
                break
            w, svc, on_cpu = self.cpu_runq.popleft()
            self.book_server(i, w, svc, on_cpu)
        if self.cpu_runq:
            self.cpu_wake()

    def work(self, a: "Actor", ns: int) -> None:
        """Actor a spends ns of CPU time."""
        a.clk = self.cpu(a.clk, ns)

    def free_pages(self) -> int:
        return self.cfg["mem_total_pages"] - self.cache_pages - self.anon_pages - self.temp_pages

    def wb_pages(self) -> int:
        return self.temp_pages if self.temp else self.pinned

    def _dirtyable(self) -> int:
        return max(0, self.cfg["mem_total_pages"] - self.anon_pages - self.temp_pages)

    def dirty_limit(self) -> int:
        c = self.cfg
        if c["bdi_writeout_ppm"] < 1_000_000:
            return max(1, self.wb_thresh())
        return max(1, self._dirtyable() * c["dirty_ratio"] * c["bdi_max_ratio"] // 10000)

    def bg_thresh(self) -> int:
        c = self.cfg
        if c["bdi_writeout_ppm"] < 1_000_000:   # wb_dirty_limits: bg_thresh * wb_thresh / thresh
            thresh = self._dirtyable() * c["dirty_ratio"] // 100
            bg = self._dirtyable() * c["dirty_background_ratio"] // 100
            return self.wb_thresh() * bg // thresh if thresh else 0
        return self._dirtyable() * c["dirty_background_ratio"] * c["bdi_max_ratio"] // 10000

    def wb_thresh(self) -> int:
        """__wb_calc_thresh for a bdi with a writeout share below 1: the global threshold times
        the share, at most the max_ratio share; with wb_thresh_floor 1 (39ac99852fca) at least
        min((thresh - dirty) / 100, the max_ratio share / 4), with 2 (its consolidation into
        __wb_calc_thresh) at least (thresh - dirty) / 100 and at most the share; dirty being the global
        NR_FILE_DIRTY + NR_WRITEBACK (temp pages are not in it) and hard_dirty_limit taken as
        thresh (its value in a steady state)."""
        c = self.cfg
        thresh = self._dirtyable() * c["dirty_ratio"] // 100
        cap = self._dirtyable() * c["dirty_ratio"] * c["bdi_max_ratio"] // 10000
        wb = min(thresh * c["bdi_writeout_ppm"] // 1_000_000, cap)
        dirty = self.dirty_total + self.pinned
        scale = (thresh - dirty) // 100 if thresh > dirty else 0
        if c["wb_thresh_floor"] == 1:     # 39ac99852fca: after the cap, at most a quarter of it
            wb = max(wb, min(scale, cap // 4))
        elif c["wb_thresh_floor"] == 2:   # the consolidation: before the cap
            wb = min(max(wb, scale), cap)
        return wb

    def global_bg_thresh(self) -> int:
        return self._dirtyable() * self.cfg["dirty_background_ratio"] // 100

    def temp_add(self, d: int) -> None:
        self.c["temp_page_ns"] += self.temp_pages * (self.now - self.temp_t)
        self.temp_t = self.now
        self.temp_pages += d
        if self.temp_pages > self.c["temp_pages_peak"]:
            self.c["temp_pages_peak"] = self.temp_pages

    def busy(self, p: int) -> bool:
        if self.temp:
            return self.inflight[p] > 0
        if self.iomap:                 # PG_writeback is the folio's
            return self.fwbc[p - self.fofs[p]] > 0
        return bool(self.pgwb[p])

    def nr(self, h: int) -> int:
        """Pages in the folio whose head is h."""
        return self.fnr[h] or 1

    def set_dirty(self, p: int, f: int) -> int:
        """Mark page (block) p dirty; the pages newly accounted dirty (folio_account_dirtied
        counts a whole folio when it turns dirty), else 0."""
        if self.dirty[p]:
            return 0
        self.dirty[p] = 1
        d = self.f_dirty[f]
        if not d:
            self.f_dirtied_when[f] = self.now
        d.add(p - self.base[f])
        if self.iomap:
            h = p - self.fofs[p]
            self.fdirty[h] += 1
            if self.fdirty[h] > 1:
                return 0
            n = self.nr(h)
            self.dirty_total += n
            return n
        self.dirty_total += 1
        return 1

    def clear_dirty(self, p: int, f: int) -> None:
        self.dirty[p] = 0
        self.f_dirty[f].discard(p - self.base[f])
        self.mapw[p] = 0               # clear_page_dirty_for_io write-protects the pte
        if self.iomap:                 # the folio's accounting drops with its last dirty block
            h = p - self.fofs[p]
            self.fdirty[h] -= 1
            if self.fdirty[h] == 0:
                self.dirty_total -= self.nr(h)
            return
        self.dirty_total -= 1

    def folio_claim(self, h: int) -> None:
        """folio_start_writeback of a folio not under writeback (its whole size counts as
        writeback, its mappings are write-protected), held by the caller until it has added
        every dirty range (folio_release)."""
        n = self.nr(h)
        self.pinned += n
        if self.pinned > self.c["pinned_pages_peak"]:
            self.c["pinned_pages_peak"] = self.pinned
        for q in range(h, h + n):
            self.mapw[q] = 0
        self.fwbc[h] += 1

    def folio_release(self, h: int) -> None:
        """Drop the writeback path's hold; the folio's writeback ends if nothing of it is in
        flight any more (iomap_finish_folio_write)."""
        self.fwbc[h] -= 1
        if self.fwbc[h] == 0:
            self.pinned -= self.nr(h)
            self.wake_waiters()

    def wait_page(self, a: Actor, p: int) -> None:
        """Wait for the writeback of p's folio; a folio wait if p itself is not in flight."""
        if self.iomap and not self.pgwb[p]:
            self.c["folio_waits"] += 1
        self.block(a, W_PAGE, p)

    # ------------------------------------------------------------------ LRU
    def lru_add(self, p: int) -> None:
        h = self.lru_head
        nx = self.lru_next[h]
        self.lru_next[h] = p
        self.lru_prev[p] = h
        self.lru_next[p] = nx
        self.lru_prev[nx] = p

    def lru_del(self, p: int) -> None:
        pv, nx = self.lru_prev[p], self.lru_next[p]
        self.lru_next[pv] = nx
        self.lru_prev[nx] = pv

    # -------------------------------------------------------------- server
    def new_req(self, kind: int, f: int, first: int) -> Request:
        r = Request(self.next_rid, kind, f, first)
        self.next_rid += 1
        r.created = self.now
        return r

    def submit_bg(self, r: Request) -> None:
        r.created = self.now           # fuse_simple_background allocates the fuse_req now
        if self.aborted:               # fuse_get_req: -ENOTCONN, the write ends with it
            self.fail(r)
            self.wake_waiters()
            return
        r.state = ST_QUEUED
        if self.active_bg < self.cfg["max_background"]:
            self.active_bg += 1
            r.bg = True
            self.to_pending(r)
        else:
            r.state = ST_BACKGROUND
            self.bg_queue.append(r)

    def to_pending(self, r: Request) -> None:
        if self.aborted:               # fuse_get_req: -ENOTCONN at once
            self.fail(r)
            self.wake_waiters()
            return
        r.state = ST_PENDING
        self.pending.append(r)
        self.dispatch()

    def dispatch(self) -> None:
        srv = self.server
        if not self.pending or srv.stalled(self.now):
            return
        for w, cur in enumerate(srv.threads):
            if cur is None and self.pending:
                self.start(w, self.pending.popleft())

    def start(self, w: int, r: Request) -> None:
        c = self.cfg
        r.state = ST_SENT
        kern = 0                       # kernel work of the thread that writes the reply
        if r.kind == RQ_WRITE:
            base = self.base[r.file]
            if not self.temp:          # the server reads the page as it is now
                r.versions = [self.version[base + r.first + i] for i in range(r.n)]
            off = r.first * PAGE
            r.crop = max(0, min(r.n * PAGE, self.isize[r.file] - off))
            self.c["requests"] += 1
            self.hist[r.n] += 1
            # pages the server has never been sent cost it more: its copy starts sparse
            new = sum(1 for i in range(r.n) if self.srv_max[base + r.first + i] == 0)
            mean = c["server_base_ns"] + c["server_page_ns"] * r.n + c["server_new_page_ns"] * new
            if self.temp:              # fuse_writepage_end: rb_erase, free the temp pages
                kern = c["wb_tree_ns"] * (1 + r.promoted) + c["temp_free_ns"] * r.n
            else:                      # fuse_writepage_free: end PG_writeback of each folio
                kern = c["end_writeback_ns"] * (r.nfolios if self.iomap else r.n)
        elif r.kind == RQ_READ:
            self.c["reads"] += 1
            mean = c["server_base_ns"] + c["server_page_ns"]
        else:
            self.c["fsync_requests"] += 1
            mean = c["server_fsync_ns"]
        self.server.threads[w] = r
        svc = self.server.service(mean)
        if not self.in_done:           # it arrived at idle threads: one is woken to read it
            svc += c["server_wakeup_ns"]
        self.start_service(w, svc, kern)

    def complete(self, r: Request) -> None:
        r.state = ST_DONE
        r.done = True
        if r.kind == RQ_READ:
            p = self.base[r.file] + r.first
            self.locked[p] = 0
            if self.iomap:
                self.notup[p] = 0
            return
        if r.kind == RQ_FSYNC:
            return
        base = self.base[r.file] + r.first
        for i in range(r.n):
            p = base + i
            v = r.versions[i]
            if v < self.srv_max[p]:
                self.c["out_of_order"] += 1
            self.srv_ver[p] = v
            if v > self.srv_max[p]:
                self.srv_max[p] = v
            self.end_copy(r, p)
        if self.temp:
            self.temp_add(-r.n)
        self.c["bytes_written"] += r.crop
        self.c["t_wb_end"] = self.now
        self.f_inflight[r.file] -= 1
        if r.bg:
            self.active_bg -= 1
        for s in r.secs:               # fuse_writepage_end: now the secondary may go
            p = self.base[s.file] + s.first
            self.sec_req[p] = None
            self.wb_req[p] = s
            s.promoted = True
            self.submit_bg(s)
        r.secs = []
        while self.bg_queue and self.active_bg < self.cfg["max_background"]:
            q = self.bg_queue.popleft()
            self.active_bg += 1
            q.bg = True
            self.to_pending(q)

    def end_copy(self, r: Request, p: int) -> None:
        """Page p of r is no longer in flight (a reply or the abort): its in-flight lookup goes,
        and PG_writeback ends unless temp pages ended it at the copy (under iomap, the folio's
        with its last range)."""
        self.inflight[p] -= 1
        if self.wb_req[p] is r:
            self.wb_req[p] = None
        if self.iomap:
            self.pgwb[p] = 0
            h = p - self.fofs[p]
            self.fwbc[h] -= 1
            if self.fwbc[h] == 0:
                self.pinned -= self.nr(h)
        elif not self.temp:
            self.pgwb[p] = 0
            self.pinned -= 1

    # --------------------------------------------------- request timeout
    def fail(self, r: Request) -> None:
        """End r with the abort's error (fuse_abort_conn, or -ENOTCONN for a request made after
        it): its pages end writeback with nothing delivered, its secondaries fail with it, and
        no queued request moves up (the queues are being emptied)."""
        self.c["aborted_calls"] += 1
        r.state = ST_DONE
        r.done = True
        if r.kind == RQ_READ:          # the page stays cached but not up to date
            p = self.base[r.file] + r.first
            self.locked[p] = 0
            self.badread[p] = 1
            return
        if r.kind == RQ_FSYNC:
            return
        base = self.base[r.file] + r.first
        for i in range(r.n):
            self.end_copy(r, base + i)
        if self.temp:
            self.temp_add(-r.n)
        self.f_inflight[r.file] -= 1
        if r.bg:
            self.active_bg -= 1
            r.bg = False
        for s in r.secs:               # fuse_writepage_end sends them; they fail at once
            self.sec_req[self.base[s.file] + s.first] = None
            self.fail(s)
        r.secs = []

    def expired(self, r: Request) -> bool:
        """fuse_request_expired: jiffies past create_time + req_timeout (whole jiffies).
        fuse_init_server_timeout raises a timeout below the check period to it
        (max(FUSE_TIMEOUT_TIMER_FREQ, timeout)), as 7.2 and 7.3 guests showed: a 10 s timeout
        aborted at the second check, not the first."""
        jiffy = 1_000_000_000 // self.cfg["hz"]
        secs = max(TIMEOUT_PERIOD_NS, self.cfg["request_timeout_ns"]) // 1_000_000_000
        limit = secs * self.cfg["hz"]
        return self.now // jiffy > r.created // jiffy + limit

    def check_timeout(self) -> None:
        """fuse_check_timeout (fs/fuse/dev.c, 9b17cb59a7db): the head of the pending queue, the
        head of the background queue and every request a server thread holds (the processing
        lists' heads); one expired aborts the connection, else it looks again in 15 s.  Once
        no thread runs and no request is out, the run loop drops the check (the run is over)."""
        if ((self.pending and self.expired(self.pending[0]))
                or (self.bg_queue and self.expired(self.bg_queue[0]))
                or any(r is not None and self.expired(r) for r in self.server.threads)):
            self.abort()
            return
        self.push(self.now + TIMEOUT_PERIOD_NS, EV_TIMEOUT, 0)

    def requests_out(self) -> bool:
        """Whether a request is queued or held by a server thread (fc->num_waiting)."""
        return bool(self.pending or self.bg_queue
                    or any(r is not None for r in self.server.threads))

    def abort(self) -> None:
        """fuse_abort_conn: the requests the server holds, then the pending and background
        queues, end with an error; waiters wake.  The server's threads go on with what they
        hold, and their replies are dropped."""
        self.aborted = True
        ended = [r for r in self.server.threads if r is not None]
        ended += list(self.pending) + list(self.bg_queue)
        self.pending.clear()
        self.bg_queue.clear()
        for r in ended:
            self.fail(r)
        self.wake_waiters()
        if self.dirty_total > self.bg_thresh():
            self.kick_flusher()

    def refuse_call(self, a: Actor) -> bool:
        """a's call needs a READ after the abort: it fails at once (-ENOTCONN)."""
        self.c["aborted_calls"] += 1
        a.failed = True
        return False

    def drop_call(self, a: Actor) -> None:
        """Undo what a failed call holds: a direct-I/O read's pins, a fault in progress."""
        a.failed = False
        op = a.ops[a.k]
        if int(op["op"]) == O.DIO_READ and a.phase == PH_PAGES:
            first, _ = self.op_pages(op)
            for idx in range(first, a.pg):
                self.gup[self.base[int(op["file"])] + idx] -= 1
        a.fault_start = -1

    # -------------------------------------------------------------- waiting
    def cond(self, a: Actor) -> bool:
        k, x = a.wait_kind, a.wait_arg
        if k == W_PAGE:
            return not self.busy(x)
        if k == W_LOCK:
            return not self.locked[x]
        if k == W_FILE:
            return self.f_inflight[x] == 0
        if k == W_ALL:
            return self.pinned == 0
        if k == W_THROTTLE:
            return self.dirty_total + self.wb_pages() < self.dirty_limit()
        if k == W_REQ:
            return a.req is not None and a.req.done
        return self.now >= a.timer_at

    def block(self, a: Actor, kind: int, arg: int) -> None:
        a.waiting = True
        a.wait_kind = kind
        a.wait_arg = arg
        a.block_start = a.clk
        a.wait_reclaim = a.in_reclaim

    def sleep_until(self, a: Actor, t: int) -> None:
        self.block(a, W_TIMER, 0)
        a.timer_at = t
        a.wake_pending = True
        self.push(t, EV_ACTOR, a.id)

    def end_wait(self, a: Actor) -> None:
        a.waiting = False
        dur = max(0, self.now - a.block_start)
        if self.now > a.clk:
            a.clk = self.now
        if a.wait_kind == W_TIMER:
            return
        if dur > self.cfg["hang_threshold_ns"]:
            self.c["hangs"] += 1
            if a.wait_reclaim:
                self.c["deadlocks"] += 1
        if a.wait_kind == W_THROTTLE:
            self.lat_add("throttle", dur)
        self.work(a, self.cfg["wakeup_ns"])   # it slept and was woken: two context switches

    def wake_waiters(self) -> None:
        for a in self.actors:
            if a.waiting and not a.wake_pending and a.wait_kind != W_TIMER and self.cond(a):
                a.wake_pending = True
                self.push(self.now, EV_ACTOR, a.id)

    def kick_flusher(self) -> None:
        fl = self.flusher
        if not fl.fl_pass and not fl.wake_pending:
            fl.wake_pending = True
            self.push(max(self.now, fl.clk), EV_ACTOR, fl.id)

    # ----------------------------------------------------------- writepages
    def wp_start(self, a: Actor, f: int, first: int, end: int, sync_all: bool, bg: bool) -> None:
        a.wp_active = True
        a.wp_f, a.wp_idx, a.wp_end = f, first, end
        a.wp_sync, a.wp_bg = sync_all, bg
        a.wp_chunk = 0
        a.wp_batch = None
        a.wp_looked = 0
        a.wp_fend = a.wp_rend = 0

    def send_batch(self, a: Actor) -> bool:
        """Send a's batch once the CPU work that made it is done: at once if a's clock is not
        ahead, else a sleeps until it is and sends it when it resumes (writepages); False then."""
        r = a.wp_batch
        if r is None:
            return True
        a.wp_batch = None
        self.work(a, self.cfg["wp_request_ns"] + self.temp * self.cfg["wb_tree_ns"])
        # Going on at once is what waking at a.clk does (writepages resumes at the page it
        # stopped at and sends the batch first), with nothing in between; not after the abort,
        # where sending fails the batch's pages under the loop's feet.
        if a.clk > self.now and (self.aborted or not self.go_on(a.clk)):
            a.wp_ready = r
            self.sleep_until(a, a.clk)
            return False
        self.submit_bg(r)
        return True

    def alloc_temp(self, a: Actor) -> bool:
        """Take a temp page for a copy; False (and counted) under memory pressure."""
        if self.free_pages() <= self.cfg["wmark_min_pages"]:
            self.c["temp_alloc_failures"] += 1
            return False
        self.temp_add(1)
        self.c["temp_bytes_copied"] += PAGE
        self.work(a, self.cfg["temp_alloc_ns"] + self.cfg["page_copy_ns"])
        return True

    def add_copy(self, p: int) -> None:
        self.inflight[p] += 1
        if self.inflight[p] > self.c["max_copies_in_flight"]:
            self.c["max_copies_in_flight"] = self.inflight[p]

    def take_page(self, a: Actor, r: Request, p: int, f: int) -> None:
        """Put page p (dirty, temp page already taken if any) into request r."""
        self.clear_dirty(p, f)
        # temp pages: PG_writeback ends at once, in the flusher (fuse_writepages_send)
        self.work(a, self.cfg["wp_page_ns"] + self.temp * self.cfg["end_writeback_ns"])
        if self.iomap:                 # the folio was claimed (folio_claim)
            self.pgwb[p] = 1
            h = p - self.fofs[p]
            self.fwbc[h] += 1
            if h != r.last_head:
                r.nfolios += 1
                r.last_head = h
        elif not self.temp:
            self.pgwb[p] = 1
            self.pinned += 1
            if self.pinned > self.c["pinned_pages_peak"]:
                self.c["pinned_pages_peak"] = self.pinned
        self.add_copy(p)
        r.n += 1
        r.versions.append(self.version[p])
        self.wb_req[p] = r

    def new_write(self, f: int, first: int) -> Request:
        r = self.new_req(RQ_WRITE, f, first)
        self.f_inflight[f] += 1
        return r

    def merge(self, a: Actor, p: int, f: int, idx: int) -> bool:
        """merge-in-queue's answer; False if a temp page could not be had."""
        s = self.sec_req[p]
        w = self.wb_req[p]
        if s is None and self.cfg["merge_queued_primary"] and w is not None and w.n == 1 \
                and w.state in (ST_QUEUED, ST_BACKGROUND, ST_PENDING):
            s = w
        c = self.cfg
        if s is not None:              # copy over the copy the server has not read
            # fuse_writepage_add: a fresh temp page takes the copy and is swapped into the held
            # request, whose old temp page is freed; the page's writeback ends at once
            s.versions[0] = self.version[p]
            self.c["inplace_updates"] += 1
            self.c["temp_bytes_copied"] += PAGE
            self.work(a, c["temp_alloc_ns"] + c["page_copy_ns"] + c["wb_tree_ns"]
                      + c["temp_free_ns"] + c["end_writeback_ns"])
            self.clear_dirty(p, f)
            return True
        if not self.alloc_temp(a):
            return False
        r = self.new_write(f, idx)
        self.take_page(a, r, p, f)
        self.work(a, c["wb_tree_ns"])  # chained to the in-flight request (fuse_writepage_add)
        r.state = ST_HELD
        self.wb_req[p] = w             # the in-flight primary stays the one found by lookup
        self.sec_req[p] = r
        w.secs.append(r)
        self.c["secondaries"] += 1
        return True

    def writepages(self, a: Actor) -> bool:
        """Advance a's writepages; True when finished, False when it must wait.  It resumes at
        the page it stopped at, sending first the batch it slept for (send_batch)."""
        if self.iomap:
            return self.writepages_iomap(a)
        f = a.wp_f
        base = self.base[f]
        if a.wp_ready is not None:
            r, a.wp_ready = a.wp_ready, None
            self.submit_bg(r)
        cands = sorted(i for i in self.f_dirty[f] if a.wp_idx <= i < a.wp_end)
        for idx in cands:
            # Background writeback works in chunks (wb_chunk_pages, writeback_chunk_size) and
            # looks at the background threshold between them (wb_writeback).
            if a.wp_bg and a.wp_chunk >= self.cfg["wb_chunk_pages"]:
                a.wp_chunk = 0
                if self.dirty_total <= self.bg_thresh():
                    break
            p = base + idx
            if self.temp and a.wp_looked != idx + 1:   # fuse_writepage_need_send: in flight?
                a.wp_looked = idx + 1
                self.work(a, self.cfg["wb_lookup_ns"])
            if self.busy(p):
                act = self.strategy.on_busy_page(BusyPage(a.wp_sync, False), self.cfg)
                if act != Action.COPY and not self.send_batch(a):
                    return False           # it cuts the batch; back here once it is sent
                if act == Action.WAIT:
                    self.c["writepages_waits"] += 1
                    self.block(a, W_PAGE, p)
                    return False
                if act == Action.SKIP:
                    self.c["redirty_skips" if self.temp else "writeback_skips"] += 1
                    a.wp_idx = idx + 1
                    continue
                if act == Action.MERGE:
                    if not self.merge(a, p, f, idx):
                        break          # -ENOMEM: the page stays dirty
                    a.wp_sent += 1
                    a.wp_idx = idx + 1
                    continue
            b = a.wp_batch
            if b is not None and (idx != b.first + b.n or b.n >= self.req_pages):
                if not self.send_batch(a):
                    return False
            if self.temp and not self.alloc_temp(a):
                break
            if a.wp_batch is None:
                a.wp_batch = self.new_write(f, idx)
            self.take_page(a, a.wp_batch, p, f)
            a.wp_sent += 1
            a.wp_chunk += 1
            a.wp_idx = idx + 1
        if not self.send_batch(a):
            a.wp_idx = a.wp_end        # nothing more to look at once it is sent
            return False
        a.wp_active = False
        return True

    def dirty_run(self, p: int, end: int) -> int:
        """Dirty blocks from p (dirty) on, before page id end."""
        k = 1
        while p + k < end and self.dirty[p + k]:
            k += 1
        return k

    def writepages_iomap(self, a: Actor) -> bool:
        """writepages of the iomap strategies (iomap_writepages, fuse_iomap_writeback_range).

        Per folio: a folio under writeback is skipped (WB_SYNC_NONE) or waited for
        (WB_SYNC_ALL); else it is put under writeback whole and each run of its dirty blocks
        is added to the batch, which is sent first if that run would pass max_pages or
        max_write, does not follow it, or the batch's folio array is full."""
        f = a.wp_f
        base = self.base[f]
        if a.wp_ready is not None:
            r, a.wp_ready = a.wp_ready, None
            self.submit_bg(r)
        cands = sorted(i for i in self.f_dirty[f] if a.wp_idx <= i < a.wp_end)
        for idx in cands:
            p = base + idx
            if a.wp_fend and idx >= a.wp_fend:
                self.folio_release(a.wp_fh)
                a.wp_fend = 0
            held = a.wp_fend != 0
            if not held:
                # nr_to_write is looked at between folios (writeback_iter)
                if a.wp_bg and a.wp_chunk >= self.cfg["wb_chunk_pages"]:
                    a.wp_chunk = 0
                    if self.dirty_total <= self.bg_thresh():
                        break
                if self.busy(p):
                    act = self.strategy.on_busy_page(BusyPage(a.wp_sync, False), self.cfg)
                    if not self.send_batch(a):
                        return False
                    if act == Action.WAIT:
                        self.c["writepages_waits"] += 1
                        self.wait_page(a, p)
                        return False
                    self.c["writeback_skips"] += 1
                    a.wp_idx = idx + 1
                    continue
            h = p - self.fofs[p]
            if idx >= a.wp_rend:       # a dirty range starts: fuse_folios_need_send
                k = self.dirty_run(p, h + self.nr(h))
                b = a.wp_batch
                if b is not None and (idx != b.first + b.n or b.n + k > self.req_pages
                                      or (h != b.last_head and b.nfolios >= self.cfg["max_pages"])):
                    if not self.send_batch(a):
                        return False
                a.wp_rend = idx + k
            if not held:
                self.folio_claim(h)
                a.wp_fh = h
                a.wp_fend = h - base + self.nr(h)
                a.wp_chunk += self.nr(h)
            if a.wp_batch is None:
                a.wp_batch = self.new_write(f, idx)
            self.take_page(a, a.wp_batch, p, f)
            a.wp_sent += 1
            a.wp_idx = idx + 1
        if a.wp_fend:
            self.folio_release(a.wp_fh)
            a.wp_fend = 0
        if not self.send_batch(a):
            a.wp_idx = a.wp_end        # nothing more to look at once it is sent
            return False
        a.wp_active = False
        return True

    # -------------------------------------------------------------- reclaim
    def pageout_folio(self, a: Actor, h: int, f: int) -> None:
        """Reclaim writes a dirty folio not under writeback: one WRITE per dirty range (a
        folio fits in one request), sent at once; the folio stays cached."""
        self.folio_claim(h)
        end = h + self.nr(h)
        q = h
        while q < end:
            if not self.dirty[q]:
                q += 1
                continue
            r = self.new_write(f, q - self.base[f])
            k = self.dirty_run(q, end)
            for i in range(q, q + k):
                self.take_page(a, r, i, f)
            q += k
            self.work(a, self.cfg["wp_request_ns"])
            self.submit_bg(r)
        self.folio_release(h)

    def pageout(self, a: Actor, p: int, f: int) -> int:
        """->writepage of one dirty page from reclaim: 1 clean now, 0 kept, -1 wait."""
        if self.temp:                  # fuse_writepage: fuse_page_is_writeback
            self.work(a, self.cfg["wb_lookup_ns"])
        if self.busy(p):
            act = self.strategy.on_busy_page(BusyPage(False, True), self.cfg)
            if act == Action.WAIT:
                self.c["writepages_waits"] += 1
                self.block(a, W_PAGE, p)
                return -1
            if act != Action.COPY:     # SKIP (MERGE is never asked of reclaim)
                self.c["redirty_skips" if self.temp else "writeback_skips"] += 1
                return 0
        if self.temp and not self.alloc_temp(a):
            return 0
        r = self.new_write(f, p - self.base[f])
        self.take_page(a, r, p, f)
        self.work(a, self.cfg["wp_request_ns"] + self.temp * self.cfg["wb_tree_ns"])
        self.submit_bg(r)
        return 1 if self.temp else 0

    def file_of(self, p: int) -> int:
        f = 0
        while f + 1 < self.nfiles and self.base[f + 1] <= p:
            f += 1
        return f

    def reclaim_round(self, a: Actor) -> bool:
        """Scan one round from the LRU's cold end; False if a wait began."""
        c = self.cfg
        head = self.lru_head
        freed = 0
        scanned = 0
        while freed < c["reclaim_batch"] and scanned < 4 * c["reclaim_batch"]:
            p = self.lru_prev[head]
            if p == head:
                break
            scanned += 1
            self.work(a, c["reclaim_scan_ns"])
            if self.iomap:             # p is a folio's head: reclaim works per folio
                freed += self.reclaim_folio(a, p)
                continue
            if self.locked[p] or self.gup[p] or self.pgwb[p]:
                if self.pgwb[p]:       # 0c4f8ed498ce: skip, never wait on FUSE writeback
                    self.c["writeback_skips"] += 1
                self.lru_del(p)
                self.lru_add(p)
                continue
            if self.dirty[p]:
                got = self.pageout(a, p, self.file_of(p))
                if got < 0:
                    return False
                if got == 0:
                    self.lru_del(p)
                    self.lru_add(p)
                    continue
            self.lru_del(p)
            self.cached[p] = 0
            self.mapw[p] = 0
            self.badread[p] = 0
            self.cache_pages -= 1
            freed += 1
        if freed == 0:
            a.rc_fails += 1
        return True

    def reclaim_folio(self, a: Actor, h: int) -> int:
        """shrink_folio_list on one folio (iomap strategies): skip it under writeback (or
        locked, or pinned), write it if dirty, else free it; the pages freed."""
        n = self.nr(h)
        if self.fwbc[h] or any(self.locked[q] or self.gup[q] for q in range(h, h + n)):
            if self.fwbc[h]:           # 0c4f8ed498ce: skip, never wait on FUSE writeback
                self.c["writeback_skips"] += 1
            self.lru_del(h)
            self.lru_add(h)
            return 0
        if self.fdirty[h]:
            self.pageout_folio(a, h, self.file_of(h))
            self.lru_del(h)
            self.lru_add(h)
            return 0
        self.lru_del(h)
        for q in range(h, h + n):
            self.cached[q] = self.mapw[q] = self.notup[q] = self.badread[q] = self.fofs[q] = 0
        self.fnr[h] = 0
        self.cache_pages -= n
        return n

    def reserve(self, a: Actor, n: int) -> bool:
        """Direct reclaim until n pages can be taken above the low watermark.

        False means the actor is waiting (it resumes here)."""
        c = self.cfg
        if not a.rc_active:
            if self.free_pages() - n >= c["wmark_low_pages"]:
                return True
            a.rc_active = True
            a.rc_start = a.clk
            a.rc_fails = 0
        a.in_reclaim = True
        while self.free_pages() - n < c["wmark_low_pages"]:
            if a.rc_fails > c["reclaim_retries"]:
                self.c["reclaim_gaveup"] += 1
                break
            fails = a.rc_fails
            if not self.reclaim_round(a):
                a.in_reclaim = False
                return False
            if a.rc_fails != fails:    # nothing freed: reclaim_throttle
                if c["reclaim_retry_ns"] > 0:
                    a.in_reclaim = False
                    self.sleep_until(a, a.clk + c["reclaim_retry_ns"])
                    a.clk += c["reclaim_retry_ns"]
                    return False
        a.in_reclaim = False
        a.rc_active = False
        self.lat_add("reclaim", a.clk - a.rc_start)
        return True

    # -------------------------------------------------------- the page cache
    def page_ready(self, a: Actor, f: int, idx: int, need_read: bool, want: int = 0) -> bool:
        """Make page idx of f cached and up to date; False if a wait began.  want > 0: a
        write(2) of that many bytes from this page on (the folio size it asks for)."""
        p = self.base[f] + idx
        if self.locked[p]:
            self.block(a, W_LOCK, p)
            return False
        if not self.cached[p] and want and self.large:
            self.add_large_folio(a, f, idx, want)
        if self.cached[p]:
            if not (self.badread[p] or (self.iomap and self.notup[p])):
                return True
            if not need_read:          # written whole, or past EOF (zeroed): up to date
                self.badread[p] = 0
                if self.iomap:
                    self.notup[p] = 0
                return True
            if self.badread[p] or self.aborted:
                return self.refuse_call(a)
            self.read_page(a, f, idx, p)   # a block of a large folio that is not uptodate
            return False
        if need_read and self.aborted:
            return self.refuse_call(a)
        if not self.reserve(a, 1):
            return False
        self.cached[p] = 1
        self.cache_pages += 1
        self.c["folios"] += 1
        self.c["folio_pages"] += 1
        self.lru_add(p)
        self.work(a, self.cfg["cache_add_ns"])
        if need_read:                  # fuse_do_readpage: a READ, then wait for the page lock
            self.read_page(a, f, idx, p)
            return False
        return True

    def read_page(self, a: Actor, f: int, idx: int, p: int) -> None:
        """A READ of one page (block) and a wait for its lock."""
        if self.temp and self.f_inflight[f]:
            self.work(a, self.cfg["wb_lookup_ns"])   # fuse_wait_on_page_writeback first
        self.locked[p] = 1
        r = self.new_req(RQ_READ, f, idx)
        r.n = 1
        self.to_pending(r)
        self.block(a, W_LOCK, p)

    def add_large_folio(self, a: Actor, f: int, idx: int, want: int) -> None:
        """__filemap_get_folio for a write of `want` bytes at page idx: the order the write
        asks for (fgf_set_order), lowered to the index's alignment, then tried down to 1; an
        order fails if a page of its range is cached (-EEXIST), lies past the file's simulated
        pages, or the allocation would need reclaim (__GFP_NORETRY).  Nothing is added if
        every order above 0 fails: the caller adds an order-0 folio."""
        order = min(max(0, want.bit_length() - 1 - 12), self.max_folio.bit_length() - 1)
        if idx & ((1 << order) - 1):
            order = (idx & -idx).bit_length() - 1
        h = self.base[f] + idx
        while order > 0:
            n = 1 << order
            if (idx + n <= self.npages[f]
                    and self.free_pages() - n >= self.cfg["wmark_low_pages"]
                    and not any(self.cached[q] for q in range(h, h + n))):
                break
            order -= 1
        if order == 0:
            return
        for q in range(h, h + n):
            self.cached[q] = self.notup[q] = 1
            self.fofs[q] = q - h
        self.fnr[h] = n
        self.cache_pages += n
        self.c["folios"] += 1
        self.c["folio_pages"] += n
        self.lru_add(h)
        self.work(a, self.cfg["cache_add_ns"])

    def throttle(self, a: Actor) -> bool:
        """balance_dirty_pages_ratelimited after a page was dirtied: every dirtied_pause newly
        dirtied pages the task looks at the limits.  False if it sleeps (the call's page loop
        resumes with resume_throttle)."""
        if a.nr_dirtied < a.dirtied_pause:
            return True
        return self.balance(a)

    def resume_throttle(self, a: Actor) -> bool:
        """At the top of a call's page loop: finish what a dirty-throttle sleep interrupted."""
        state, a.bal_state = a.bal_state, BAL_NONE
        return self.balance(a) if state == BAL_LIMIT else True

    def balance(self, a: Actor) -> bool:
        """balance_dirty_pages with BDI_CAP_STRICTLIMIT; False if the task sleeps."""
        c = self.cfg
        dirty = self.dirty_total + self.wb_pages()
        limit = self.dirty_limit()
        freerun = (limit + self.bg_thresh()) // 2
        # Background writeback starts once the bdi passes its freerun ceiling (or the global
        # dirty count its background threshold), not at the bdi's background threshold;
        # with bg_start (0437906841d0, 2026) at its own background threshold.
        if (dirty > (self.bg_thresh() if c["bg_start"] else freerun)
                or self.dirty_total > self.global_bg_thresh()):
            self.kick_flusher()
        if dirty <= freerun:
            a.nr_dirtied = 0
            a.paused_when = a.clk
            # dirty_poll_interval: look again after about sqrt(limit - dirty) pages
            a.dirtied_pause = 1 << ((limit - dirty).bit_length() - 1 >> 1) if limit > dirty else 1
            return True
        if dirty < limit:
            # wb_position_ratio for strictlimit: setpoint = freerun, a cubic from 1 at the
            # setpoint to 0 at the limit; the task may dirty at ratelimit * pos_ratio.
            x = ((dirty - freerun) << RATELIMIT_SHIFT) // ((limit - freerun) | 1)
            pos = (1 << RATELIMIT_SHIFT) - (((x * x) >> RATELIMIT_SHIFT) * x >> RATELIMIT_SHIFT)
            rate = c["dirty_ratelimit_pps"] * pos >> RATELIMIT_SHIFT
            if rate > 0:
                return self.pause(a, dirty, rate)
        a.bal_state = BAL_LIMIT        # at the limit: sleep until completions bring it under
        self.block(a, W_THROTTLE, 0)
        return False

    def pause(self, a: Actor, dirty: int, rate: int) -> bool:
        """The throttled task's pause, in whole jiffies as the kernel sleeps: the period its
        dirtied pages take at `rate`, less the time it spent since its last pause
        (dirty_paused_when), up to wb_max_pause; a pause shorter than wb_min_pause's is carried
        as debt instead of slept.  avg_write_bandwidth is taken as dirty_ratelimit (both start
        at INIT_BW and are not estimated here)."""
        c = self.cfg
        hz = c["hz"]
        jiffy = 1_000_000_000 // hz
        bw = c["dirty_ratelimit_pps"]
        hz_pow2 = 1 << (hz - 1).bit_length()
        # wb_max_pause: at most the time to write a fraction of what the bdi holds
        max_pause = min(dirty // (1 + bw // (1 << (hz // 8).bit_length())) + 1,
                        max(1, c["max_pause_ns"] // jiffy))
        # wb_min_pause: aim at 10 ms pauses (1 jiffy at least, max_pause / 2 at most) and look
        # again after the pages the ratelimit allows in that time
        t = min(max(1, hz // 100), 1 + max_pause // 2)
        pages = bw * t // hz_pow2
        if pages < NR_DIRTIED_PAUSE:
            t = max_pause
            pages = bw * t // hz_pow2
            if pages > NR_DIRTIED_PAUSE:
                pages = NR_DIRTIED_PAUSE
                t = hz * NR_DIRTIED_PAUSE // bw
        if hz * pages // (rate + 1) > max_pause:
            t = max_pause
            pages = rate * t // hz_pow2
        a.dirtied_pause = pages
        min_pause = 1 + t // 2 if pages >= NR_DIRTIED_PAUSE else t
        period = hz * a.nr_dirtied // rate
        pause = period - (a.clk - a.paused_when) // jiffy
        if pause < min_pause:
            if pause < -hz:
                a.paused_when = a.clk
                a.nr_dirtied = 0
            elif period:
                a.paused_when += period * jiffy
                a.nr_dirtied = 0
            elif a.dirtied_pause <= a.nr_dirtied:
                a.dirtied_pause += a.nr_dirtied
            return True
        ahead = 0
        if pause > max_pause:          # for a briefly low ratelimit: the rest stays as debt
            ahead = min(pause - max_pause, max_pause)
            pause = max_pause
        a.nr_dirtied = 0
        a.paused_when = a.clk + (ahead + pause) * jiffy
        self.lat_add("throttle", pause * jiffy)
        a.bal_state = BAL_PAUSE
        self.sleep_until(a, a.clk + pause * jiffy)
        return False

    # ------------------------------------------------------------- the calls
    def op_pages(self, op) -> tuple[int, int]:
        off, ln = int(op["offset"]), int(op["length"])
        return off // PAGE, (off + ln - 1) // PAGE

    def do_write(self, a: Actor, op) -> bool:
        c = self.cfg
        f = int(op["file"])
        off, ln = int(op["offset"]), int(op["length"])
        first, last = self.op_pages(op)
        if a.phase == PH_START:
            self.work(a, c["write_syscall_ns"])
            a.pg = first
            a.phase = PH_PAGES
        if not self.resume_throttle(a):
            return False
        while a.pg <= last:
            idx = a.pg
            ps = idx * PAGE
            whole = off <= ps and off + ln >= ps + PAGE
            need_read = not whole and ps < self.isize[f]
            want = 0
            if self.large:             # iomap_write_iter: the rest of the write, within a folio
                pos = max(off, ps)
                chunk = self.max_folio * PAGE
                want = min(off + ln - pos, chunk - pos % chunk)
            if not self.page_ready(a, f, idx, need_read, want):
                return False
            p = self.base[f] + idx
            if self.writer_waits and self.temp and self.f_inflight[f]:
                self.work(a, c["wb_lookup_ns"])          # fuse_write_begin looks the page up
            if self.writer_waits and self.busy(p):       # fuse_wait_on_page_writeback
                self.wait_page(a, p)
                return False
            self.version[p] += 1
            a.nr_dirtied += self.set_dirty(p, f)
            end = min(off + ln, ps + PAGE)               # fuse_write_end: i_size page by page
            if end > self.isize[f]:
                self.isize[f] = end
            self.work(a, c["write_page_ns"])
            a.pg += 1
            if not self.throttle(a):
                return False
        self.c["bytes_dirtied"] += ln
        self.lat_add("write", a.clk - a.op_start)
        return True

    def do_mmap_store(self, a: Actor, op) -> bool:
        c = self.cfg
        f = int(op["file"])
        first, last = self.op_pages(op)
        if a.phase == PH_START:
            a.pg = first
            a.phase = PH_PAGES
        if not self.resume_throttle(a):
            return False
        while a.pg <= last:
            idx = a.pg
            p = self.base[f] + idx
            if not (self.cached[p] and self.mapw[p] and not self.locked[p]):
                if a.fault_start < 0:                     # a write fault
                    a.fault_start = a.clk
                    self.work(a, c["fault_ns"])
                if not self.page_ready(a, f, idx, idx * PAGE < self.isize[f]):
                    return False
                if self.temp and self.f_inflight[f]:      # fuse_page_mkwrite looks it up
                    self.work(a, c["wb_lookup_ns"])
                if self.busy(p):                          # page_mkwrite waits for writeback
                    self.wait_page(a, p)
                    return False
                self.mapw[p] = 1
                a.nr_dirtied += self.set_dirty(p, f)
                self.lat_add("fault", a.clk - a.fault_start)
                a.fault_start = -1
            self.version[p] += 1
            self.set_dirty(p, f)
            self.work(a, c["store_page_ns"])
            a.pg += 1
            if not self.throttle(a):                      # fault_dirty_shared_page
                return False
        self.c["bytes_dirtied"] += int(op["length"])
        return True

    def do_dio_read(self, a: Actor, op) -> bool:
        """O_DIRECT read into a mapped buffer: dirtied at submit and at completion,
        with no page_mkwrite and no wait (bio_set_pages_dirty, bio_check_pages_dirty)."""
        c = self.cfg
        f = int(op["file"])
        first, last = self.op_pages(op)
        if a.phase == PH_START:
            a.pg = first
            a.phase = PH_PAGES
        if a.phase == PH_PAGES:
            while a.pg <= last:                           # get_user_pages, then submit
                idx = a.pg
                if not self.page_ready(a, f, idx, idx * PAGE < self.isize[f]):
                    return False
                p = self.base[f] + idx
                self.gup[p] += 1
                self.set_dirty(p, f)
                a.pg += 1
            a.phase = PH_DIODONE
            self.sleep_until(a, a.clk + c["dio_base_ns"] + c["dio_page_ns"] * (last - first + 1))
            return False
        for idx in range(first, last + 1):                # completion: the data lands
            p = self.base[f] + idx
            self.version[p] += 1
            self.set_dirty(p, f)
            self.gup[p] -= 1
        self.c["bytes_dirtied"] += int(op["length"])
        return True

    def do_fsync(self, a: Actor, op, first: int, end: int) -> bool:
        """fsync / msync: WB_SYNC_ALL writepages, fuse_sync_writes, then FUSE_FSYNC."""
        c = self.cfg
        f = int(op["file"])
        if a.phase == PH_START:
            self.work(a, c["fsync_syscall_ns"])
            self.wp_start(a, f, first, end, True, False)
            a.phase = PH_WP
        if a.phase == PH_WP:
            if not self.writepages(a):
                return False
            a.phase = PH_WAITIO
        if a.phase == PH_WAITIO:
            if self.f_inflight[f]:
                self.block(a, W_FILE, f)
                return False
            r = self.new_req(RQ_FSYNC, f, 0)
            a.req = r
            self.to_pending(r)
            a.phase = PH_FSYNCWAIT
        if not a.req.done:
            self.block(a, W_REQ, a.req.id)
            return False
        a.req = None
        self.lat_add("fsync", a.clk - a.op_start)
        return True

    def do_sync(self, a: Actor) -> bool:
        """sync(2).  2026 kernels (SB_I_NO_DATA_INTEGRITY, 76f9377cd2ab) only wake the
        flusher for FUSE and return; older ones ran WB_SYNC_ALL writepages on every
        file and waited (sync_waits=1)."""
        c = self.cfg
        if a.phase == PH_START:
            self.work(a, c["fsync_syscall_ns"])
            a.sync_f = 0
            a.phase = PH_WP
            if not c["sync_waits"]:
                self.flusher.fl_sync = True
                self.kick_flusher()
                self.lat_add("sync", a.clk - a.op_start)
                return True
        if a.phase == PH_WP:
            while a.sync_f < self.nfiles:
                if not a.wp_active:
                    self.wp_start(a, a.sync_f, 0, self.npages[a.sync_f], True, False)
                if not self.writepages(a):
                    return False
                a.sync_f += 1
            a.phase = PH_WAITIO
        if self.pinned:                # wait_sb_inodes: pages still under PG_writeback
            self.block(a, W_ALL, 0)
            return False
        self.lat_add("sync", a.clk - a.op_start)
        return True

    def do_memory(self, a: Actor, op) -> bool:
        c = self.cfg
        n = (int(op["length"]) + PAGE - 1) // PAGE
        code = int(op["op"])
        if code == O.ALLOC:
            if not self.reserve(a, n):
                return False
            self.anon_pages += n
        elif code == O.FREE:
            self.anon_pages -= min(n, self.anon_pages)
        else:
            # The cache can outgrow memory when reclaim gives up: never more than the range.
            unmovable = min(n, n * (self.temp_pages + self.pinned) // c["mem_total_pages"])
            self.c["compaction_unmovable"] += unmovable
            t0 = a.clk
            self.work(a, (n - unmovable) * c["compact_page_ns"])
            self.lat_add("compaction", a.clk - t0)
        return True

    def run_op(self, a: Actor) -> bool:
        op = a.ops[a.k]
        code = int(op["op"])
        if code == O.WRITE:
            return self.do_write(a, op)
        if code == O.MMAP_STORE:
            return self.do_mmap_store(a, op)
        if code == O.DIO_READ:
            return self.do_dio_read(a, op)
        if code == O.FSYNC:
            return self.do_fsync(a, op, 0, self.npages[int(op["file"])])
        if code == O.MSYNC:
            first, last = self.op_pages(op)
            return self.do_fsync(a, op, first, last + 1)
        if code == O.SYNC:
            return self.do_sync(a)
        return self.do_memory(a, op)

    # --------------------------------------------------------------- actors
    def step_thread(self, a: Actor) -> None:
        while True:
            if a.phase == PH_START:
                a.op_start = a.clk
            if not self.run_op(a):
                if not a.failed:
                    return
                self.drop_call(a)      # the call returned its error: the next one
            a.phase = PH_START
            a.k += 1
            if a.k == len(a.ops) and self.feed is not None:   # a stream's next chunk
                a.ops, a.k = self.feed.take(a.id, self.chunk), 0
            if a.k == len(a.ops):
                a.finished = True
                self.alive -= 1
                self.c["t_app_end"] = max(self.c["t_app_end"], a.clk)
                return
            t = max(a.clk, int(a.ops[a.k]["time"]))
            if t > self.now and not self.go_on(t):
                a.wake_pending = True
                self.push(t, EV_ACTOR, a.id)
                return
            a.clk = t

    def step_flusher(self, a: Actor) -> None:
        c = self.cfg
        if not a.fl_pass:
            if not (a.fl_due or a.fl_sync or self.dirty_total > self.bg_thresh()):
                return
            a.fl_pass = True
            a.fl_file = 0
            a.fl_kupdate = a.fl_due
            a.fl_all = a.fl_sync
            a.fl_due = a.fl_sync = False
            a.wp_sent = 0
        while a.fl_file < self.nfiles:
            f = a.fl_file
            if not a.wp_active:
                if not self.f_dirty[f]:
                    a.fl_file += 1
                    continue
                if a.fl_all or (a.fl_kupdate
                                and self.f_dirtied_when[f] + c["dirty_expire_ns"] <= self.now):
                    self.wp_start(a, f, 0, self.npages[f], False, False)
                elif self.dirty_total > self.bg_thresh():
                    self.wp_start(a, f, 0, self.npages[f], False, True)
                else:
                    a.fl_file += 1
                    continue
            if not self.writepages(a):
                return
            a.fl_file += 1
        a.fl_pass = False
        if a.fl_due or a.fl_sync or (a.wp_sent and self.dirty_total > self.bg_thresh()):
            a.wake_pending = True
            self.push(max(a.clk, self.now), EV_ACTOR, a.id)

    def run_actor(self, aid: int) -> None:
        a = self.actors[aid]
        a.wake_pending = False
        if a.waiting:
            if not self.cond(a):
                return
            self.end_wait(a)
            if a.wait_kind != W_TIMER and self.cfg["wakeup_ns"] and a.clk > self.now:
                a.wake_pending = True  # it goes on (and sends what it sends) once awake
                self.push(a.clk, EV_ACTOR, a.id)
                return
        a.clk = max(a.clk, self.now)
        if a.ops is None:
            self.step_flusher(a)
        elif not a.finished:
            self.step_thread(a)

    # ----------------------------------------------------------------- loop
    def sample(self, t: int) -> None:
        c = self.cfg
        while self.next_sample <= t and len(self.series) < c["max_samples"]:
            self.series.append((self.next_sample, self.dirty_total, self.wb_pages(),
                                self.temp_pages, self.cache_pages, self.anon_pages))
            self.next_sample += c["sample_interval_ns"]

    def run(self) -> dict[str, Any]:
        c = self.cfg
        t0 = min(int(a.ops[0]["time"]) for a in self.actors if a.ops is not None and len(a.ops))
        self.c["t_first"] = self.c["t_app_end"] = self.c["t_wb_end"] = t0
        self.now = self.temp_t = self.next_sample = t0
        for a in self.actors:
            if a.ops is not None and len(a.ops):
                a.clk = a.paused_when = int(a.ops[0]["time"])
                a.wake_pending = True
                self.push(a.clk, EV_ACTOR, a.id)
        self.push(t0 + c["dirty_writeback_interval_ns"], EV_TIMER, 0)
        for _, end in c["stall_windows"]:
            self.push(end, EV_STALL, 0)
        if c["request_timeout_ns"]:    # set_request_timeout at FUSE_INIT: the first check in 15 s
            self.push(t0 + TIMEOUT_PERIOD_NS, EV_TIMEOUT, 0)
        while self.heap or self.cpu_ev >= 0:
            if self.cpu_ev >= 0 and (not self.heap or (self.cpu_ev, self.cpu_seq) <= self.heap[0][:2]):
                if self.cpu_ev > c["max_time_ns"]:    # the CPU grant, not queued
                    self.c["stuck"] = 1
                    break
                self.sample(self.cpu_ev)
                self.now = self.cpu_ev
                self.run_cpu_queue()
                continue
            t, _, kind, arg = heapq.heappop(self.heap)
            if kind == EV_TIMER and not self.alive:
                continue               # the flusher's tick after the last thread ended
            if kind == EV_TIMEOUT and not self.alive and not self.requests_out():
                continue               # nothing left to time out: the run is over
            if t > c["max_time_ns"]:
                self.c["stuck"] = 1
                break
            self.sample(t)
            self.now = t
            self.c["events"] += 1
            if kind == EV_ACTOR:
                self.run_actor(arg)
            elif kind == EV_DONE:
                r = self.server.threads[arg]
                self.server.threads[arg] = None
                self.in_done = True            # requests read now are read without sleeping
                if not self.aborted:           # else its reply is dropped: it ended already
                    self.complete(r)
                self.dispatch()
                self.in_done = False
                self.wake_waiters()
                if self.dirty_total > self.bg_thresh():
                    self.kick_flusher()
            elif kind == EV_TIMER:
                self.flusher.fl_due = True
                self.kick_flusher()
                if self.alive:
                    self.push(t + c["dirty_writeback_interval_ns"], EV_TIMER, 0)
            elif kind == EV_STALL:
                self.dispatch()
            else:
                self.check_timeout()
        return self.finish()

    def finish(self) -> dict[str, Any]:
        c = self.c
        self.temp_add(0)
        c["t_end"] = self.now
        for a in self.actors:          # still blocked: on a server that never answered
            if a.waiting and a.wait_kind != W_TIMER:
                c["hangs"] += 1
                if a.wait_reclaim:
                    c["deadlocks"] += 1
            if not a.finished and a.ops is not None:
                c["stuck"] = 1
        # a page never written has version 0 = srv_ver: only the touched pages can count
        touched = self.version.keys() if isinstance(self.version, dict) else range(len(self.version))
        c["lost_updates"] = sum(1 for p in touched
                                if self.version[p] != self.srv_ver[p] and not self.dirty[p])
        return {
            "counters": dict(c),
            "pages_per_request": self.hist,
            "latency": {k: np.asarray(v, dtype=np.int64) if k not in self.lat_hist else
                        lathist.Histogram(np.asarray(self.lat_hist[k], dtype=np.int64),
                                          sum(self.lat_hist[k]), self.lat_max[k])
                        for k, v in self.lat.items()},
            "series": np.asarray(self.series, dtype=np.int64).reshape(-1, len(SERIES_FIELDS)),
        }


def simulate(cfg: Mapping[str, Any], ops: np.ndarray, file_sizes: np.ndarray, seed: int) -> dict[str, Any]:
    """Run the reference engine on a resolved configuration; return the raw result."""
    return Sim(cfg, ops, file_sizes, seed).run()


def simulate_stream(cfg: Mapping[str, Any], stream: OpStream, seed: int, chunk: int = CHUNK,
                    latency_exact: int = 0) -> dict[str, Any]:
    """simulate on a streamed workload (bench.sim.stream), read `chunk` rows at a time."""
    return Sim(cfg, None, stream.file_sizes, seed, stream, chunk, latency_exact).run()
