/*
 * engine.c - the C engine: bench/sim/refsim.py as a C99 state machine.
 *
 * refsim.py is the specification; its docstring explains the model and the
 * choices made where model.md is silent.  This file mirrors it function for
 * function, with the same names, so that the two can be read side by side; the
 * tests hold them to identical raw results.  Only the data structures differ:
 *
 *   - pages are one flat array of 16-byte structs (struct page) indexed by a
 *     global page id, base[file] + slot: the slot is the page's index in the file,
 *     or, when the ops reach few of the files' pages, its place among those
 *     (pagespace.c, which explains why the results are the same); a request's
 *     first page and writepages' range are slots, an op's pages file indices;
 *   - the files' dirty sets are one bitmap over page ids with a summary bit per
 *     64-page word, scanned in ascending order where refsim sorts a snapshot:
 *     within one writepages call no page but the one being handled changes state
 *     (nothing there dirties a page, and only that page is cleaned), so the live
 *     scan sees what the snapshot saw;
 *   - requests live in a pool with a free list (ids from 1; 0 is "none") and
 *     their page versions in a parallel arena of max_pages slots each; the
 *     queues and the secondary chains are intrusive lists through the pool;
 *   - events are a binary heap ordered by (time, sequence), like heapq, with a slot
 *     in front of it for the earliest event (push, pop): the order is total, so any
 *     exact priority queue pops the same sequence.
 *
 * Arithmetic: everything is int64 and refsim's // is only used on non-negative
 * values, where C's / agrees.  Python ints do not overflow; where a value could
 * leave int64 on absurd but valid input (memory ops of 2**63 bytes, times near
 * 2**63) the C engine saturates at the int64 bounds instead (sadd, ssub, smul):
 * the result is exact whenever every intermediate value fits in int64, and where
 * one does not, refsim cannot return its int64 arrays either.
 *
 * Out of memory anywhere in a run longjmps back to fwb_run, which frees the
 * run and returns FWB_ENOMEM; so does a stream's failed fill or bad chunk
 * (fwb_run_stream: FWB_EFILL, FWB_EINVAL).  A stream's thread runs its rows from
 * a chunk of them (refill) where an array's runs them from the array.
 */
#include <math.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "fwb_internal.h"

/* A hot helper the compiler must inline (GCC and Clang; elsewhere a plain inline): the
 * per-page and per-event paths, where a call costs more than the work.  COLD_CALL: a rare
 * path kept out of its caller, whose common path then needs no registers saved. */
#if defined(__GNUC__)
#define HOT_INLINE static inline __attribute__((always_inline))
#define COLD_CALL static __attribute__((noinline))
#define PREFETCH(addr) __builtin_prefetch(addr)	/* a hint: no effect on results */
#else
#define HOT_INLINE static inline
#define COLD_CALL static
#define PREFETCH(addr) ((void)(addr))
#endif

#define MAX_FILE_BYTES ((int64_t)1 << 40)
#define MAX_THREADS 64
#define MAX_SERVER_THREADS 256	/* params.py server_threads range; the idle bitmap is sized by it */
#define RATELIMIT_SHIFT 10	/* mm/page-writeback.c RATELIMIT_CALC_SHIFT: pos_ratio's fixed point */
#define NR_DIRTIED_PAUSE 32	/* a task's nr_dirtied_pause at start; DIRTY_POLL_THRESH */
#define PREFETCH_AHEAD 4	/* calls ahead of the current one */
#define MAX_OPS ((int64_t)1 << 30)	/* page versions and copy counts fit 32 bits */
#define LIST_MIN_PAGES ((int64_t)1 << 18)	/* sim.dirtied: kept from 1 GiB of pages */
#define MAX_TOTAL_PAGES (((int64_t)1 << 31) - 64)	/* page ids fit int32 (LRU ring) */
#define FUSE_MAX_PAGES_LIMIT 65535	/* fs/fuse/fuse_sysctl.c: max_pages_limit's bound */
#define TIMEOUT_PERIOD_NS ((int64_t)15 * 1000000000)	/* fs/fuse/dev.c FUSE_TIMEOUT_TIMER_FREQ */
#define MAX_FOLIO_ORDER 9	/* MAX_PAGECACHE_ORDER on x86-64 (HPAGE_PMD_ORDER): 2 MiB */

/* events */
enum { EV_ACTOR, EV_DONE, EV_TIMER, EV_STALL, EV_TIMEOUT };
/* request kinds and states */
enum { RQ_WRITE, RQ_READ, RQ_FSYNC };
enum { ST_FILLING, ST_QUEUED, ST_BACKGROUND, ST_PENDING, ST_SENT, ST_DONE, ST_HELD };
/* what a waiting actor waits for */
enum { W_NONE, W_PAGE, W_LOCK, W_FILE, W_ALL, W_THROTTLE, W_REQ, W_TIMER };
/* where an app thread is inside its current call */
enum { PH_START, PH_PAGES, PH_WP, PH_WAITIO, PH_FSYNCWAIT, PH_DIODONE };
/* a dirty-throttle wait that interrupted a call's page loop: a pause (done when it
 * ends) or a sleep at the limit (balance_dirty_pages looks again when it ends) */
enum { BAL_NONE, BAL_PAUSE, BAL_LIMIT };
/* per-page flag bits */
enum { PF_DIRTY = 1, PF_PGWB = 2, PF_CACHED = 4, PF_LOCKED = 8, PF_MAPW = 16, PF_STALE = 32,
       PF_BADREAD = 64,	/* cached, but its READ failed (the connection was aborted) */
       PF_NOTUP = 128 };	/* cached, not uptodate (a block of a new large folio) */

typedef struct ev {
	int64_t t;
	int64_t seq;
	int32_t kind;
	int32_t arg;
} ev;

typedef struct req {
	int64_t first;		/* page index in the file */
	int64_t crop;		/* bytes delivered, fixed when a server thread reads it */
	int64_t created;	/* when it was allocated (fuse_request_init: create_time) */
	int32_t file, n;
	int32_t next;		/* link in the pending or bg queue, or in the free list */
	int32_t sec_head, sec_tail;	/* held secondaries chained to this request */
	int32_t sec_next;	/* link in its primary's chain */
	uint32_t ver0;		/* its first page's version (ver()): in the struct, not a row */
	int32_t nfolios;	/* folio ranges in it (iomap: ap->num_folios) */
	uint8_t kind, state;
	uint8_t bg;		/* counted in active_background */
	uint8_t done;
	uint8_t promoted;	/* a secondary re-inserted in fi->writepages at its primary's reply */
	int64_t last_head;	/* the folio of its last range, -1 none */
} req;

/*
 * A page's state in 16 bytes, four to a cache line.  Random workloads touch pages
 * all over big files and each first touch is a cache miss, the biggest single cost
 * of a run, so the state kept per page is as small as it can be:
 *   - a version grows by at most one per op, and a page gets at most two copies
 *     per op (a direct-I/O read dirties it twice): with n_ops <= 2**30, 32 bits
 *     hold both;
 *   - refsim's srv_ver is only compared with version, and never exceeds it
 *     (requests carry past or present versions): a bit says they differ, PF_STALE;
 *   - refsim's LRU links are only ever cut at the cold end, so the LRU is a FIFO
 *     of page ids, kept as a ring (struct sim);
 *   - wb_req and sec_req are only read by merge(): they live in a separate array
 *     that exists only for a strategy that merges.
 */
typedef struct page {
	uint32_t version;	/* incremented at each modification */
	uint32_t srv_max;	/* the newest version the server has had */
	uint32_t inflight;	/* copies of the page in requests not yet done */
	uint8_t flags;		/* PF_* */
	uint8_t gup;		/* pinned by direct I/O in progress: one per thread at most */
	uint16_t fofs;		/* iomap: the page's offset in its folio (0: head, or order 0) */
} page;

/* A folio's state, at its head page's index (iomap strategies; zero: an order-0 folio
 * with nothing dirty or in flight). */
typedef struct folio {
	uint16_t nr;		/* pages in it, 0 for one */
	uint16_t ndirty;	/* dirty blocks */
	uint16_t nwb;		/* blocks in flight, +1 while writeback fills it */
	uint16_t pad;
} folio;

/* The in-flight lookup of merge-in-queue (fuse_find_writeback, the secondaries). */
typedef struct lookup {
	int32_t wb_req;		/* the request found by the in-flight lookup, 0 if none */
	int32_t sec_req;	/* the held secondary for this page, 0 if none */
} lookup;

typedef struct fifo {
	int32_t head, tail;
} fifo;

typedef struct vec {
	int64_t *v;
	int64_t n, cap;
} vec;

typedef struct actor {
	int32_t id;
	int is_flusher;
	const fwb_op **ops;	/* this thread's rows, in order */
	int64_t nops, k;
	int phase;
	int64_t pg, clk, op_start, fault_start;
	int64_t pg0;		/* its call's op_base: page pg has page id pg0 + pg */
	int waiting, wake_pending, wait_kind;
	int64_t wait_arg, block_start;
	int wait_reclaim;
	int64_t timer_at;
	int in_reclaim, rc_active;
	int64_t rc_start, rc_fails;
	int wp_active;
	int32_t wp_f;
	int64_t wp_idx, wp_end;
	int wp_sync, wp_bg;
	int64_t wp_chunk;
	int32_t wp_batch;
	int32_t wp_ready;	/* a batch whose CPU work ends at clk: sent then (0: none) */
	int64_t wp_looked;	/* 1 + the page whose in-flight lookup was paid */
	int64_t wp_sent;
	int64_t wp_fh;		/* iomap: the folio writepages holds under writeback */
	int64_t wp_fend;	/* 1 + ... its last index in the file; 0: none held */
	int64_t wp_rend;	/* end of the dirty range being added to the batch */
	int32_t req;
	int32_t sync_f;
	int fl_pass;
	int32_t fl_file;
	int fl_kupdate, fl_due, fl_sync, fl_all;
	int64_t nr_dirtied;	/* pages newly dirtied since the last pause */
	int64_t paused_when;	/* current->dirty_paused_when */
	int64_t dirtied_pause;	/* current->nr_dirtied_pause */
	int bal_state;		/* BAL_* */
	int finished;
	int failed;		/* its call failed at once (the connection was aborted) */
	int32_t cpu;		/* a CPU its work last ran on (a hint for work()), -1 none */
	int64_t last_t;		/* a stream's thread: the time of its last row so far */
} actor;

typedef struct sim {
	jmp_buf oom;
	int err;		/* why the run longjmped to oom: 0 out of memory, else a fwb_error */
	const fwb_config *cfg;
	const struct fwb_strategy *strategy;
	int temp;
	int writer_waits;
	int write_lookup;	/* writer_waits && temp: write_begin looks the page up in flight */
	int64_t req_pages;
	int iomap, large;	/* the strategy's iomap and large_folios */
	int64_t max_folio;	/* pages in the largest folio write(2) may create */

	/* server */
	int32_t *thr;		/* request on each server thread, 0 if idle */
	int32_t nthr, nidle;
	uint64_t idle[(MAX_SERVER_THREADS + 63) / 64];	/* a bit per idle server thread */
	int64_t thr_pg[MAX_SERVER_THREADS];	/* the first page of thr[w]'s request (prefetch_next) */
	uint64_t rng;

	/* CPUs (cfg->cpus > 0): when each is next free, and server threads waiting for one */
	int64_t *cpu_free;
	int64_t *srv_until;	/* end of the server work on each CPU */
	int32_t ncpu, srv_cap;
	/* #{i: srv_until[i] > now}, kept incrementally: valid while now < srv_next_end, the
	 * earliest srv_until[i] > now (INT64_MAX if none) */
	int32_t srv_busy;
	int64_t srv_next_end;
	int32_t *runq_w;	/* ring of nthr entries: a thread is queued at most once */
	int64_t *runq_svc;
	int64_t *runq_on;	/* the share of runq_svc on a CPU */
	int32_t runq_head, runq_n;
	/* The pending CPU grant (run_cpu_queue), kept out of the event queue: due at cpu_ev
	 * (-1 if none), after the events pushed before it (seq < cpu_seq) and before those
	 * pushed since (seq >= cpu_seq), as an event pushed then would be. */
	int64_t cpu_ev, cpu_seq;
	int in_done;		/* handling a reply (EV_DONE) */
	int32_t nwait_cond;	/* actors waiting, not for a timer (block, end_wait) */
	uint8_t reply_keep;	/* the page flags a reply leaves as they were (complete) */

	/* files */
	int32_t nfiles;
	int64_t *npages, *base, *isize;	/* npages: slots (page ids base .. base + npages) */
	int64_t *fpages;	/* pages: the initial size and every byte an op touches */
	struct fwb_pagespace ps;	/* how slots map to file indices, if compact */
	int64_t *f_ndirty, *f_dirtied_when, *f_inflight;

	/* pages: global page id = base[file] + slot */
	int64_t n;
	page *pg;		/* n entries, 64-byte aligned */
	void *pg_mem;		/* what to free */
	lookup *lk;		/* n entries if the strategy merges, else NULL */
	folio *fo;		/* n entries for an iomap strategy, else NULL */
	int32_t *lru;		/* ring of cached pages, coldest at lru_cold */
	int64_t lru_cap, lru_cold, lru_len;
	uint64_t *dmap, *dsum;	/* dirty bitmap and its summary (a bit per non-zero word) */
	/* Every page set_dirty has dirtied, once per clean -> dirty transition, so that the
	 * end-of-run scans visit touched pages only; past dirtied_cap entries it stops
	 * growing and the scans visit every page (dirtied_all). */
	vec dirtied;
	int64_t dirtied_cap;
	int dirtied_all;

	/* memory and queues */
	int64_t cache_pages, anon_pages, temp_pages, pinned, dirty_total, active_bg;
	fifo bg_queue, pending;
	req *rq;
	uint32_t *rver;		/* rq_cap + 1 rows of vstride versions */
	int64_t vstride;
	int32_t rq_cap, rq_free;

	/* actors: threads 0..T-1, then the flusher */
	actor *actors;
	int32_t nact;
	actor *flusher;
	const fwb_op **order;
	int64_t alive;
	/* fwb_run_stream: each thread's chunk of rows, and pointers to them (its ops) */
	const fwb_stream *st;
	fwb_op *srows;
	const fwb_op **sptr;
	int64_t streamed;	/* rows the stream has given */

	ev *heap;
	int64_t nev, cap_ev;	/* nev: events in the heap, not counting the slot */
	ev first;		/* the earliest event, kept out of the heap if has_first */
	int has_first;
	int64_t seq, now, temp_t;

	int aborted;		/* fuse_abort_conn ran (request_timeout_ns) */
	/* fwb_event_log only: each pushed event by sequence number, each pop */
	int evlog;
	vec log_t, log_ka, log_pop_seq, log_pop_pushed;

	int64_t c[FWB_N_COUNTERS];
	int64_t *hist;		/* max_pages + 1 entries, moved into the result */
	vec lat[FWB_N_LATENCIES];	/* n counts the samples, folded ones too */
	int64_t lat_exact;		/* samples kept one by one, per set */
	int64_t *lhist[FWB_N_LATENCIES];	/* a folded set's FWB_LAT_BUCKETS counts */
	int64_t lmax[FWB_N_LATENCIES];	/* a folded set's largest sample */
	vec series;
	int64_t next_sample;
} sim;

static const struct fwb_strategy *const STRATEGIES[] = {
	&fwb_strategy_temp_naive, &fwb_strategy_wait_in_writepages, &fwb_strategy_redirty_and_skip,
	&fwb_strategy_merge_in_queue, &fwb_strategy_no_temp_page, &fwb_strategy_iomap_blocks,
	&fwb_strategy_large_folio,
};

/* ------------------------------------------------------------ arithmetic */

static int64_t sadd(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int64_t smul(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_mul_overflow(a, b, &r))
		return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
	return r;
}

static int64_t ssub(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* ------------------------------------------------------------ memory */

static void *xmalloc(sim *s, size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		longjmp(s->oom, 1);
	return p;
}

static void *xcalloc(sim *s, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		longjmp(s->oom, 1);
	return p;
}

/* Grow *p to new_n elements; on failure *p stays valid (and owned by s). */
static void xgrow(sim *s, void **p, size_t new_n, size_t size)
{
	void *q = realloc(*p, new_n * size);
	if (!q)
		longjmp(s->oom, 1);
	*p = q;
}

static void vec_grow(sim *s, vec *x)
{
	int64_t cap = x->cap ? 2 * x->cap : 256;
	void *p = x->v;
	xgrow(s, &p, (size_t)cap, sizeof(int64_t));
	x->v = p;
	x->cap = cap;
}

/* Append v (inline: the growth, a call, is rare). */
static inline void vec_push(sim *s, vec *x, int64_t v)
{
	if (x->n == x->cap)
		vec_grow(s, x);
	x->v[x->n++] = v;
}

/* ------------------------------------------------------------ randomness */
/* splitmix64, and a log and an exp built from + - * only (with exact steps: the
 * exponent and mantissa fields of a double, table look-ups, conversions of
 * integers), as in refsim, whose comments explain the constants (written there
 * with the same hex floats); with -ffp-contract=off the service times are
 * bit-identical to Python's. */

/* The histogram bucket of a latency (fwb.h, enum fwb_lat_hist). */
static int64_t lat_bucket(int64_t v)
{
	int e;
	if (v < 2 * FWB_LAT_SUB)
		return v < 0 ? 0 : v;
	e = 63 - __builtin_clzll((uint64_t)v);
	return ((int64_t)(e - FWB_LAT_SUB_BITS + 1) << FWB_LAT_SUB_BITS) +
	       (v >> (e - FWB_LAT_SUB_BITS)) - FWB_LAT_SUB;
}

/* lat_add past set i's exact samples: the first time, fold them into a histogram. */
static void lat_add_folded(sim *s, int i, int64_t v)
{
	vec *x = &s->lat[i];
	int64_t j;
	if (!s->lhist[i]) {
		s->lhist[i] = xcalloc(s, FWB_LAT_BUCKETS, sizeof(int64_t));
		s->lmax[i] = v;
		for (j = 0; j < x->n; j++) {
			s->lhist[i][lat_bucket(x->v[j])]++;
			s->lmax[i] = max64(s->lmax[i], x->v[j]);
		}
		free(x->v);
		x->v = NULL;
		x->cap = 0;
	}
	s->lhist[i][lat_bucket(v)]++;
	s->lmax[i] = max64(s->lmax[i], v);
	x->n++;
}

/* One latency sample of set i: kept as it is up to lat_exact samples; the one past
 * them folds the set into a histogram, which takes every later one. */
HOT_INLINE void lat_add(sim *s, int i, int64_t v)
{
	if (s->lat[i].n < s->lat_exact)	/* n only grows: never again once folded */
		vec_push(s, &s->lat[i], v);
	else
		lat_add_folded(s, i, v);
}

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z;
	*state += 0x9E3779B97F4A7C15ULL;
	z = *state;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

#define LN2_HI 0x1.62e42fefa4000p-1
#define LN2_LO (-0x1.8432a1b0e2634p-43)
#define LOG_N 128
#define LOG_FIRST 90
#define LOG_ROWS 90
static const double LOG_TABLE[LOG_ROWS][2] = {	/* c ~ 1/m, log(1/c) */
	{0x1.6a13cd1537300p+0, -0x1.630030b3aad85p-2}, {0x1.661ec6a512300p+0, -0x1.57bf753c8d20fp-2},
	{0x1.623fa77016200p+0, -0x1.4c9e09e172b84p-2}, {0x1.5e75bb8d01600p+0, -0x1.419b423d5e90fp-2},
	{0x1.5ac056b015b00p+0, -0x1.36b6776be11d3p-2}, {0x1.571ed3c506b00p+0, -0x1.2bef07cdc92a8p-2},
	{0x1.5390948f41000p+0, -0x1.214456d0eb914p-2}, {0x1.5015015015000p+0, -0x1.16b5ccbacfb33p-2},
	{0x1.4cab88725af00p+0, -0x1.0c42d6761618fp-2}, {0x1.49539e3b2d000p+0, -0x1.01eae5626c551p-2},
	{0x1.460cbc7f5d000p+0, -0x1.ef5ade4dd0266p-3}, {0x1.42d6625d52000p+0, -0x1.db13db0d48c40p-3},
	{0x1.3fb013fb01400p+0, -0x1.c6ffbc6f00f91p-3}, {0x1.3c995a47bac00p+0, -0x1.b31d8575bceddp-3},
	{0x1.3991c2c187f00p+0, -0x1.9f6c4070893dcp-3}, {0x1.3698df3de0700p+0, -0x1.8beafeb38fcb4p-3},
	{0x1.33ae45b57bd00p+0, -0x1.7898d85444e7bp-3}, {0x1.30d190130d200p+0, -0x1.6574ebe8c162ap-3},
	{0x1.2e025c04b8100p+0, -0x1.527e5e4a1b855p-3}, {0x1.2b404ad012b00p+0, -0x1.3fb45a5992714p-3},
	{0x1.288b01288b000p+0, -0x1.2d1610c8680bap-3}, {0x1.25e2270809300p+0, -0x1.1aa2b7e23f792p-3},
	{0x1.23456789abd00p+0, -0x1.08598b59e3aefp-3}, {0x1.20b470c67c100p+0, -0x1.ec739830a1350p-4},
	{0x1.1e2ef3b3fb800p+0, -0x1.c885801bc44a3p-4}, {0x1.1bb4a4046ed00p+0, -0x1.a4e7640b1b9e8p-4},
	{0x1.19453808ca300p+0, -0x1.8197e2f40e9a0p-4}, {0x1.16e0689427300p+0, -0x1.5e95a4d978adbp-4},
	{0x1.1485f0e0acd00p+0, -0x1.3bdf5a7d1eaf4p-4}, {0x1.12358e75d3000p+0, -0x1.1973bd1465267p-4},
	{0x1.0fef010fef000p+0, -0x1.eea31c006b67cp-5}, {0x1.0db20a88f4700p+0, -0x1.aaef2d0fb1d9cp-5},
	{0x1.0b7e6ec259e00p+0, -0x1.67c94f2d4c218p-5}, {0x1.0953f39010900p+0, -0x1.252f32f8d0e1fp-5},
	{0x1.073260a47f800p+0, -0x1.c63d2ec14b8f2p-6}, {0x1.05197f7d73400p+0, -0x1.432a925980bc1p-6},
	{0x1.03091b51f5e00p+0, -0x1.82448a38895aap-7}, {0x1.0000000000000p+0, 0x0.0p+0},
	{0x1.0000000000000p+0, 0x0.0p+0}, {0x1.fa11caa01fa00p-1, 0x1.7dc475f810ef7p-7},
	{0x1.f6310aca0dc00p-1, 0x1.3cea443469bf5p-6}, {0x1.f25f644230b00p-1, 0x1.b9fc027af87f8p-6},
	{0x1.ee9c7f8458e00p-1, 0x1.1b0d98923d9a0p-5}, {0x1.eae807aba0200p-1, 0x1.58a5bafc8e375p-5},
	{0x1.e741aa5975100p-1, 0x1.95c830ec8e21bp-5}, {0x1.e3a9179dc1a00p-1, 0x1.d276b8adb12f2p-5},
	{0x1.e01e01e01e000p-1, 0x1.075983598e571p-4}, {0x1.dca01dca01e00p-1, 0x1.253f62f0a1247p-4},
	{0x1.d92f2231e8000p-1, 0x1.42edcbea642f0p-4}, {0x1.d5cac80757300p-1, 0x1.60658a9374e1cp-4},
	{0x1.d272ca3fc5b00p-1, 0x1.7da766d7b13b5p-4}, {0x1.cf26e5c44c000p-1, 0x1.9ab42462031adp-4},
	{0x1.cbe6d9601cc00p-1, 0x1.b78c82bb0ecc1p-4}, {0x1.c8b265afb8a00p-1, 0x1.d4313d66cb5adp-4},
	{0x1.c5894d10d4a00p-1, 0x1.f0a30c0115e56p-4}, {0x1.c26b5392ea000p-1, 0x1.0671512ca59eep-3},
	{0x1.bf583ee868e00p-1, 0x1.1478584674094p-3}, {0x1.bc4fd65883e00p-1, 0x1.2266f190a5d03p-3},
	{0x1.b951e2b18ff00p-1, 0x1.303d718e48077p-3}, {0x1.b65e2e3beee00p-1, 0x1.3dfc2b0ecc642p-3},
	{0x1.b37484ad80700p-1, 0x1.4ba36f39a54f9p-3}, {0x1.b094b31d92300p-1, 0x1.59338d9981ed2p-3},
	{0x1.adbe87f949000p-1, 0x1.66acd4272af11p-3}, {0x1.aaf1d2f87ec00p-1, 0x1.740f8f5403795p-3},
	{0x1.a82e65130e100p-1, 0x1.815c0a1435997p-3}, {0x1.a574107688a00p-1, 0x1.8e928de886ea9p-3},
	{0x1.a2c2a87c51d00p-1, 0x1.9bb362e7df9afp-3}, {0x1.a01a01a01a000p-1, 0x1.a8becfc882f99p-3},
	{0x1.9d79f176b6800p-1, 0x1.b5b519e8fb684p-3}, {0x1.9ae24ea551100p-1, 0x1.c2968558c1805p-3},
	{0x1.9852f0d8ec100p-1, 0x1.cf6354e09c5d8p-3}, {0x1.95cbb0be37800p-1, 0x1.dc1bca0abeaddp-3},
	{0x1.934c67f9b2d00p-1, 0x1.e8c0252aa59dcp-3}, {0x1.90d4f12019100p-1, 0x1.f550a564b7a5bp-3},
	{0x1.8e6527af13700p-1, 0x1.00e6c45ad50bfp-2}, {0x1.8bfce8062ff00p-1, 0x1.071b85fcd59a3p-2},
	{0x1.899c0f6018a00p-1, 0x1.0d46b579ab647p-2}, {0x1.87427bcc09300p-1, 0x1.136870293a7f6p-2},
	{0x1.84f00c2780600p-1, 0x1.1980d2dd423a3p-2}, {0x1.82a4a0182a500p-1, 0x1.1f8ff9e48a1f5p-2},
	{0x1.8060180601800p-1, 0x1.2596010df764ap-2}, {0x1.7e225515a4f00p-1, 0x1.2b9303ab89d73p-2},
	{0x1.7beb3922e0100p-1, 0x1.31871c95442d3p-2}, {0x1.79baa6bb63a00p-1, 0x1.3772662bfd71fp-2},
	{0x1.77908119ac600p-1, 0x1.3d54fa5c1f734p-2}, {0x1.756cac2017500p-1, 0x1.432ef2a04e93ep-2},
	{0x1.734f0c541ff00p-1, 0x1.4900680400893p-2}, {0x1.713786d9c7c00p-1, 0x1.4ec9732600282p-2},
	{0x1.6f26016f26000p-1, 0x1.548a2c3add2a3p-2}, {0x1.6d1a62681c800p-1, 0x1.5a42ab0f4d0f2p-2},
};
#define LOG_C2 (-0x1.0000000000000p-1)
#define LOG_C3 0x1.5555555555555p-2
#define LOG_C4 (-0x1.0000000000000p-2)
#define LOG_C5 0x1.999999999999ap-3
#define LOG_C6 (-0x1.5555555555555p-3)
#define LOG_C7 0x1.2492492492492p-3
#define LOG_C8 (-0x1.0000000000000p-3)
#define EXP_N 32
#define EXP_INV 0x1.71547652b82fep+5
#define EXP_LN2_HI 0x1.62e42fefa0000p-6
#define EXP_LN2_LO 0x1.cf79abc9e3b3ap-45
#define EXP_SHIFT 0x1.8p52
static const double EXP_TABLE[EXP_N] = {	/* 2**(j/EXP_N) */
	0x1.0000000000000p+0, 0x1.059b0d3158574p+0, 0x1.0b5586cf9890fp+0, 0x1.11301d0125b51p+0,
	0x1.172b83c7d517bp+0, 0x1.1d4873168b9aap+0, 0x1.2387a6e756238p+0, 0x1.29e9df51fdee1p+0,
	0x1.306fe0a31b715p+0, 0x1.371a7373aa9cbp+0, 0x1.3dea64c123422p+0, 0x1.44e086061892dp+0,
	0x1.4bfdad5362a27p+0, 0x1.5342b569d4f82p+0, 0x1.5ab07dd485429p+0, 0x1.6247eb03a5585p+0,
	0x1.6a09e667f3bcdp+0, 0x1.71f75e8ec5f74p+0, 0x1.7a11473eb0187p+0, 0x1.82589994cce13p+0,
	0x1.8ace5422aa0dbp+0, 0x1.93737b0cdc5e5p+0, 0x1.9c49182a3f090p+0, 0x1.a5503b23e255dp+0,
	0x1.ae89f995ad3adp+0, 0x1.b7f76f2fb5e47p+0, 0x1.c199bdd85529cp+0, 0x1.cb720dcef9069p+0,
	0x1.d5818dcfba487p+0, 0x1.dfc97337b9b5fp+0, 0x1.ea4afa2a490dap+0, 0x1.f50765b6e4540p+0,
};
#define EXP_C2 0x1.0000000000000p-1
#define EXP_C3 0x1.5555555555555p-3
#define EXP_C4 0x1.5555555555555p-5
#define EXP_C5 0x1.1111111111111p-7
#define EXP_C6 0x1.6c16c16c16c17p-10

/* ln x for a finite x > 0; x = 2**e * m with m in [0.703125, 1.40625) */
static double det_log(double x)
{
	uint64_t u;
	int e, i;
	double m, mh, r, q;
	const double *ct;
	memcpy(&u, &x, sizeof u);
	if (u >> 52) {			/* normal: m and e from the fields, as frexp gives them */
		e = (int)(u >> 52) - 1022;
		u = (u & 0xFFFFFFFFFFFFFULL) | 0x3FE0000000000000ULL;
		memcpy(&m, &u, sizeof m);
	} else {
		m = frexp(x, &e);
	}
	if (m < 0.703125) {
		m *= 2.0;
		e -= 1;
	}
	i = (int)(m * LOG_N);
	ct = LOG_TABLE[i - LOG_FIRST];
	mh = (double)i * (1.0 / LOG_N);
	r = (mh * ct[0] - 1.0) + (m - mh) * ct[0];
	q = (((((LOG_C8 * r + LOG_C7) * r + LOG_C6) * r + LOG_C5) * r + LOG_C4) * r + LOG_C3) * r + LOG_C2;
	return ((double)e * LN2_HI + ct[1]) + ((double)e * LN2_LO + (r + (r * r) * q));
}

/* e**x for |x| <= 700 (service: |x| <= 32): the result is normal, so scaling it by
 * 2**n built in the exponent field is ldexp's exact product */
static double det_exp(double x)
{
	double kf = (x * EXP_INV + EXP_SHIFT) - EXP_SHIFT;
	int k = (int)kf;
	unsigned j = (unsigned)k & (EXP_N - 1);
	double r = (x - kf * EXP_LN2_HI) - kf * EXP_LN2_LO;
	double q = (((EXP_C6 * r + EXP_C5) * r + EXP_C4) * r + EXP_C3) * r + EXP_C2;
	double sj = EXP_TABLE[j], scale;
	uint64_t u = (uint64_t)((k - (int)j) / EXP_N + 1023) << 52;
	memcpy(&scale, &u, sizeof scale);
	return (sj + sj * (r + (r * r) * q)) * scale;
}

/* Server.uniform53: an integer in [1, 2**53] */
static uint64_t uniform53(sim *s)
{
	return (splitmix64(&s->rng) >> 11) + 1;
}

/* Server.uniform: (0, 1] */
static double uniform(sim *s)
{
	return (double)uniform53(s) * (1.0 / 9007199254740992.0);
}

/* Server.service */
static int64_t service(sim *s, int64_t mean)
{
	const fwb_config *c = s->cfg;
	double v;
	if (c->server_dist == 0)
		return mean;
	if (c->server_dist == 1) {
		v = -(double)mean * det_log(uniform(s));
	} else {
		double z, sg = c->server_sigma;
		uint64_t n = 0;
		int i;
		for (i = 0; i < 12; i++)	/* Irwin-Hall: a normal deviate from 12 uniforms */
			n += uniform53(s);	/* summed exactly: n <= 12 * 2**53 */
		z = (double)((int64_t)n - 6 * ((int64_t)1 << 53)) * (1.0 / 9007199254740992.0);
		v = (double)mean * det_exp(sg * z - 0.5 * sg * sg);
	}
	if (!(v < 9223372036854775808.0))	/* past int64: past any max_time_ns */
		return INT64_MAX;
	return max64(1, (int64_t)v);
}

static int stalled(const sim *s, int64_t t)
{
	int64_t i;
	for (i = 0; i < s->cfg->n_stall; i++)
		if (s->cfg->stall_start[i] <= t && t < s->cfg->stall_end[i])
			return 1;
	return 0;
}

/* A reply due at t inside a stall window is given at the window's end. */
static int64_t defer(const sim *s, int64_t t)
{
	int64_t i;
	for (i = 0; i < s->cfg->n_stall; i++)
		if (s->cfg->stall_start[i] <= t && t < s->cfg->stall_end[i])
			t = s->cfg->stall_end[i];
	return t;
}

/* ------------------------------------------------------------ plumbing */

static int ev_less(const ev *a, const ev *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_grow(sim *s)
{
	void *p = s->heap;
	xgrow(s, &p, (size_t)(2 * s->cap_ev), sizeof(ev));
	s->heap = p;
	s->cap_ev *= 2;
}

/* The event (t, seq, kind, arg) into the heap.  Its fields in registers rather than an ev
 * (24 bytes go on the stack) so that push ends in a jump here and needs no registers of its
 * own saved, and the heap grown after the insert (a slot is always free: cap_ev > 0 at
 * set-up), so that nothing is live across the call and neither saves any: cheaper than
 * push's prologue with the sift-up inline. */
static void heap_insert(sim *s, int64_t t, int64_t seq, int32_t kind, int32_t arg)
{
	ev *h = s->heap;
	int64_t i;
	i = s->nev++;
	while (i > 0) {
		int64_t up = (i - 1) >> 1;	/* i > 0: a shift */
		if (!(t < h[up].t || (t == h[up].t && seq < h[up].seq)))	/* ev_less */
			break;
		h[i] = h[up];
		i = up;
	}
	h[i].t = t;
	h[i].seq = seq;
	h[i].kind = kind;
	h[i].arg = arg;
	if (s->nev == s->cap_ev)
		heap_grow(s);
}

/* Events come out in (time, sequence) order, a total order: the slot holds an event
 * earlier than all in the heap, so that the common case, an event pushed for before
 * anything pending and popped next, never enters the heap. */
static void push(sim *s, int64_t t, int kind, int32_t arg)
{
	int64_t seq = s->seq++;
	if (!s->has_first) {	/* the new event's seq is the newest: it goes first only if sooner */
		if (s->nev && t >= s->heap[0].t) {
			heap_insert(s, t, seq, kind, arg);
			return;
		}
		s->has_first = 1;
	} else if (t < s->first.t) {
		ev old = s->first;	/* the slot's event goes to the heap */
		s->first.t = t;
		s->first.seq = seq;
		s->first.kind = kind;
		s->first.arg = arg;
		heap_insert(s, old.t, old.seq, old.kind, old.arg);
		return;
	} else {
		heap_insert(s, t, seq, kind, arg);
		return;
	}
	s->first.t = t;
	s->first.seq = seq;
	s->first.kind = kind;
	s->first.arg = arg;
}

static inline ev heap_pop(sim *s)
{
	ev top = s->heap[0], last = s->heap[--s->nev];
	int64_t i = 0, n = s->nev;
	for (;;) {
		int64_t ch = 2 * i + 1;
		if (ch >= n)
			break;
		if (ch + 1 < n && ev_less(&s->heap[ch + 1], &s->heap[ch]))
			ch++;
		if (!ev_less(&s->heap[ch], &last))
			break;
		s->heap[i] = s->heap[ch];
		i = ch;
	}
	if (n > 0)
		s->heap[i] = last;
	return top;
}

static ev pop(sim *s)
{
	if (s->has_first) {
		s->has_first = 0;
		return s->first;
	}
	return heap_pop(s);
}

static int64_t free_pages(const sim *s)
{
	int64_t v = ssub(s->cfg->mem_total_pages, s->cache_pages);
	return ssub(ssub(v, s->anon_pages), s->temp_pages);
}

static int64_t wb_pages(const sim *s)
{
	return s->temp ? s->temp_pages : s->pinned;
}

static int64_t dirtyable(const sim *s)
{
	return max64(0, ssub(ssub(s->cfg->mem_total_pages, s->anon_pages), s->temp_pages));
}

/* __wb_calc_thresh for a bdi with a writeout share below 1 (refsim.wb_thresh): the global
 * threshold times the share, at most the max_ratio share; with wb_thresh_floor 1
 * (39ac99852fca) at least min((thresh - dirty) / 100, the max_ratio share / 4), with 2 (its
 * consolidation) at least (thresh - dirty) / 100, at most the share; dirty the global
 * NR_FILE_DIRTY + NR_WRITEBACK. */
static int64_t wb_thresh(const sim *s)
{
	const fwb_config *c = s->cfg;
	int64_t thresh = dirtyable(s) * c->dirty_ratio / 100;
	int64_t cap = dirtyable(s) * c->dirty_ratio * c->bdi_max_ratio / 10000;
	/* thresh < 2**38 and ppm <= 10**6 < 2**20: the product fits */
	int64_t wb = min64(thresh * c->bdi_writeout_ppm / 1000000, cap);
	int64_t dirty = s->dirty_total + s->pinned;
	int64_t scale = thresh > dirty ? (thresh - dirty) / 100 : 0;
	if (c->wb_thresh_floor == 1)	/* 39ac99852fca: after the cap, at most a quarter of it */
		wb = max64(wb, min64(scale, cap / 4));
	else if (c->wb_thresh_floor == 2)	/* the consolidation: before the cap */
		wb = min64(max64(wb, scale), cap);
	return wb;
}

static int64_t dirty_limit(const sim *s)
{
	const fwb_config *c = s->cfg;
	if (c->bdi_writeout_ppm < 1000000)
		return max64(1, wb_thresh(s));
	return max64(1, dirtyable(s) * c->dirty_ratio * c->bdi_max_ratio / 10000);
}

/* wb_dirty_limits for a bdi with a share of the writeout: bg_thresh * wb_thresh / thresh
 * (out of line: the default, the bdi as the only writer, is the short path below). */
static int64_t bg_thresh_shared(const sim *s)
{
	const fwb_config *c = s->cfg;
	int64_t thresh = dirtyable(s) * c->dirty_ratio / 100;
	int64_t bg = dirtyable(s) * c->dirty_background_ratio / 100;
	return thresh ? wb_thresh(s) * bg / thresh : 0;
}

static inline int64_t bg_thresh(const sim *s)
{
	const fwb_config *c = s->cfg;
	if (c->bdi_writeout_ppm < 1000000)
		return bg_thresh_shared(s);
	/* non-negative (config_ok: ratios >= 0): unsigned division, shorter */
	return (int64_t)((uint64_t)(dirtyable(s) * c->dirty_background_ratio * c->bdi_max_ratio) /
			 10000);
}

static int64_t global_bg_thresh(const sim *s)
{
	return dirtyable(s) * s->cfg->dirty_background_ratio / 100;
}

HOT_INLINE void temp_add(sim *s, int64_t d)
{
	int64_t *c = s->c;
	int64_t dt = ssub(s->now, s->temp_t);
	c[FWB_C_TEMP_PAGE_NS] = sadd(c[FWB_C_TEMP_PAGE_NS], smul(s->temp_pages, dt));
	s->temp_t = s->now;
	s->temp_pages += d;
	if (s->temp_pages > c[FWB_C_TEMP_PAGES_PEAK])
		c[FWB_C_TEMP_PAGES_PEAK] = s->temp_pages;
}

/* For a WRITE, MMAP_STORE or DIO_READ: its page idx has page id op_base + idx (translated
 * once, at set-up, when the page space is compact: the op's pages are one extent's). */
static inline int64_t op_base(const sim *s, const fwb_op *op)
{
	return s->ps.opbase ? s->ps.opbase[op - s->ps.ops] : s->base[op->file];
}

/* The slot of file f's page idx, or of the first page after it with one (a file range's
 * first and end slots); and the file index of a slot. */
static int64_t slot_of(const sim *s, int32_t f, int64_t idx)
{
	return s->ps.compact ? fwb_slot_of(&s->ps, f, idx) : idx;
}

static int64_t index_of(const sim *s, int32_t f, int64_t slot)
{
	return s->ps.compact ? fwb_index_of(&s->ps, s->base[f] + slot) : slot;
}

/* The head of page p's folio, and the pages of the folio whose head is h. */
static inline int64_t head(const sim *s, int64_t p)
{
	return p - s->pg[p].fofs;
}

static int64_t nr(const sim *s, int64_t h)
{
	return s->fo[h].nr ? s->fo[h].nr : 1;
}

static inline int busy(const sim *s, int64_t p)
{
	if (s->temp)
		return s->pg[p].inflight > 0;
	if (s->iomap)		/* PG_writeback is the folio's */
		return s->fo[head(s, p)].nwb > 0;
	return (s->pg[p].flags & PF_PGWB) != 0;
}

/* Mark page (block) p dirty; the pages newly accounted dirty (folio_account_dirtied
 * counts a whole folio when it turns dirty), else 0. */
static int64_t set_dirty(sim *s, int64_t p, int32_t f)
{
	uint8_t *fl = &s->pg[p].flags;
	int64_t *nd = &s->f_ndirty[f];
	if (*fl & PF_DIRTY)
		return 0;
	*fl |= PF_DIRTY;
	if (*nd == 0)
		s->f_dirtied_when[f] = s->now;
	++*nd;
	s->dmap[p >> 6] |= (uint64_t)1 << (p & 63);
	s->dsum[p >> 12] |= (uint64_t)1 << ((p >> 6) & 63);
	if (!s->dirtied_all) {
		if (s->dirtied.n < s->dirtied_cap)	/* its room was made at set-up: no call
							 * here, so no registers to save */
			s->dirtied.v[s->dirtied.n++] = p;
		else
			s->dirtied_all = 1;
	}
	if (s->iomap) {
		int64_t h = head(s, p), n;
		if (s->fo[h].ndirty++)
			return 0;
		n = nr(s, h);
		s->dirty_total += n;
		return n;
	}
	s->dirty_total++;
	return 1;
}

HOT_INLINE void clear_dirty(sim *s, int64_t p, int32_t f)
{
	uint64_t bit = (uint64_t)1 << (p & 63);
	uint64_t *w = &s->dmap[p >> 6];	/* read once: the stores below would have the
					 * compiler read s->dmap again */
	/* clear_page_dirty_for_io write-protects the pte */
	s->pg[p].flags &= (uint8_t)~(PF_DIRTY | PF_MAPW);
	if (s->iomap) {		/* the folio's accounting drops with its last dirty block */
		int64_t h = head(s, p);
		if (--s->fo[h].ndirty == 0)
			s->dirty_total -= nr(s, h);
	} else {
		s->dirty_total--;
	}
	if (*w & bit) {
		s->f_ndirty[f]--;
		*w &= ~bit;
		if (!*w)
			s->dsum[p >> 12] &= ~((uint64_t)1 << ((p >> 6) & 63));
	}
}

/* The first dirty page id in [from, end), or end: the ascending walk of refsim's
 * sorted(f_dirty) snapshot. */
static int64_t next_dirty(const sim *s, int64_t from, int64_t end)
{
	int64_t w, nw, r;
	uint64_t x;
	if (from >= end)
		return end;
	w = from >> 6;
	x = s->dmap[w] & (~(uint64_t)0 << (from & 63));
	if (!x) {
		nw = (end + 63) >> 6;
		w++;
		for (;;) {
			int64_t sw = w >> 6;
			uint64_t y;
			if (w >= nw)
				return end;
			y = s->dsum[sw] & (~(uint64_t)0 << (w & 63));
			if (y) {
				w = (sw << 6) + __builtin_ctzll(y);
				if (w >= nw)
					return end;
				x = s->dmap[w];
				break;
			}
			w = (sw + 1) << 6;
		}
	}
	r = (w << 6) + __builtin_ctzll(x);
	return r < end ? r : end;
}

/* ------------------------------------------------------------ LRU */

/* refsim's list: lru_add puts a page at the hot end; lru_del is only applied to the
 * page at the cold end (reclaim), so a ring holds the same order.  A page is in it
 * once while cached, so n slots are enough. */
static void lru_add(sim *s, int64_t p)
{
	int64_t i = s->lru_cold + s->lru_len;
	if (i >= s->lru_cap)
		i -= s->lru_cap;
	s->lru[i] = (int32_t)p;
	s->lru_len++;
}

/* lru_del of the coldest page, which it returns. */
static int64_t lru_del_cold(sim *s)
{
	int64_t p = s->lru[s->lru_cold];
	if (++s->lru_cold == s->lru_cap)
		s->lru_cold = 0;
	s->lru_len--;
	return p;
}

/* ------------------------------------------------------------ server */

static uint32_t *versions(const sim *s, int32_t r)
{
	return s->rver + (size_t)r * (size_t)s->vstride;
}

/* The version r carries for its page i: the first in r itself (a one-page request, the
 * random writer's, touches no row), the others in r's row (slot 0 unused). */
static inline uint32_t *ver(const sim *s, int32_t r, int32_t i)
{
	return i ? versions(s, r) + i : &s->rq[r].ver0;
}

COLD_CALL int32_t new_req_grown(sim *s, int kind, int32_t f, int64_t first);

/* A request of the kind for file f from its page first, off the free list (grown when empty,
 * by new_req_grown: a jump there, so that this common path saves no registers). */
static int32_t new_req(sim *s, int kind, int32_t f, int64_t first)
{
	int32_t r;
	req *q;
	if (!s->rq_free)
		return new_req_grown(s, kind, f, first);
	r = s->rq_free;
	q = &s->rq[r];
	s->rq_free = q->next;
	/* the next one taken: a burst of writeback takes many, last freed long ago */
	PREFETCH(&s->rq[s->rq_free]);
	q->first = first;
	q->crop = 0;
	q->created = s->now;
	q->kind = (uint8_t)kind;
	q->state = ST_FILLING;
	q->file = f;
	q->n = 0;
	q->next = 0;
	q->sec_head = q->sec_tail = q->sec_next = 0;
	q->bg = 0;
	q->done = 0;
	q->promoted = 0;
	q->nfolios = 0;
	q->last_head = -1;
	return r;
}

/* new_req with the free list empty: twice the requests (and version rows), then new_req. */
COLD_CALL int32_t new_req_grown(sim *s, int kind, int32_t f, int64_t first)
{
	int32_t old = s->rq_cap, cap, i;
	void *p;
	if (old > INT32_MAX / 2 - 1)
		longjmp(s->oom, 1);
	cap = 2 * old;
	p = s->rq;
	xgrow(s, &p, (size_t)cap + 1, sizeof(req));
	s->rq = p;
	p = s->rver;
	xgrow(s, &p, ((size_t)cap + 1) * (size_t)s->vstride, sizeof(uint32_t));
	s->rver = p;
	s->rq_cap = cap;
	for (i = cap; i > old; i--) {
		s->rq[i].next = s->rq_free;
		s->rq_free = i;
	}
	return new_req(s, kind, f, first);
}

static void free_req(sim *s, int32_t r)
{
	s->rq[r].next = s->rq_free;
	s->rq_free = r;
}

static void fifo_append(sim *s, fifo *q, int32_t r)
{
	s->rq[r].next = 0;
	if (q->tail)
		s->rq[q->tail].next = r;
	else
		q->head = r;
	q->tail = r;
}

static int32_t fifo_popleft(sim *s, fifo *q)
{
	int32_t r = q->head;
	q->head = s->rq[r].next;
	if (!q->head)
		q->tail = 0;
	PREFETCH(&s->rq[q->head]);	/* the next one out (prefetch_next) */
	return r;
}

static inline void dispatch(sim *s);
static void fail(sim *s, int32_t r);
static void wake_waiters(sim *s);
static void take_samples(sim *s, int64_t t);

/* The series' samples due at or before t, taken before the clock moves to t (the check
 * inline: most events fall between two samples). */
static inline void sample(sim *s, int64_t t)
{
	if (s->next_sample <= t)
		take_samples(s, t);
}

/* ------------------------------------------------------------ going on without an event */

/* When the next queued event is due (INT64_MAX if none): the queue's head, or the pending
 * CPU grant if it comes first. */
static inline int64_t next_due(const sim *s)
{
	int64_t t = s->has_first ? s->first.t : s->nev ? s->heap[0].t : INT64_MAX;
	return s->cpu_ev >= 0 ? min64(t, s->cpu_ev) : t;
}

/* An actor whose CPU work runs until t would sleep until then (an EV_ACTOR at t) and be
 * the next event if nothing queued is due at or before t (an event pushed before it at
 * the same time goes first): then it goes on at once, the clock moved to t as the loop
 * would move it (series samples up to t); 1 then.  Not past max_time_ns (the loop stops
 * there).  The event it saves is not counted in events. */
static inline int go_on(sim *s, int64_t t)
{
	if (t > s->cfg->max_time_ns || t >= next_due(s))
		return 0;
	sample(s, t);
	s->now = t;
	return 1;
}

/* ------------------------------------------------------------ CPUs */

/* The CPU that became free last at or before t (one thread's successive pieces of
 * work stay on one CPU and leave the others' idle time alone); -1 if none is. */
static int32_t idle_cpu(const sim *s, int64_t t)
{
	int32_t i, best = -1;
	for (i = 0; i < s->ncpu; i++)
		if (s->cpu_free[i] <= t && (best < 0 || s->cpu_free[i] > s->cpu_free[best]))
			best = i;
	return best;
}

/* An actor runs ns of CPU work that can start at t; returns when it ends.  It takes
 * an idle CPU, else waits for the one free soonest, and is not preempted. */
static int64_t cpu_run(sim *s, int64_t t, int64_t ns, int32_t *on)
{
	int32_t i, best;
	int64_t end;
	if (!s->ncpu || ns <= 0)
		return sadd(t, ns);
	best = idle_cpu(s, t);
	if (best < 0) {
		best = 0;
		for (i = 1; i < s->ncpu; i++)
			if (s->cpu_free[i] < s->cpu_free[best])
				best = i;
	}
	end = sadd(max64(t, s->cpu_free[best]), ns);
	s->cpu_free[best] = end;
	*on = best;
	return end;
}

/* cpu_run for an actor, inline for its two common cases.  Back-to-back work: when the
 * CPU its last work ran on is free exactly at its clock, no CPU free at or before then
 * is free later, so idle_cpu's answer is the first CPU free exactly then, found without
 * the scan.  No CPU model (cpus = 0): the work only moves its clock. */
HOT_INLINE void work(sim *s, actor *a, int64_t ns)
{
	int32_t b = a->cpu;
	int64_t *cf = s->cpu_free, clk = a->clk, i;
	if (ns > 0 && b >= 0 && cf[b] == clk) {
		for (i = 0; cf[i] != clk; i++)	/* stops at b at the latest */
			;
		a->clk = cf[i] = sadd(clk, ns);
		a->cpu = (int32_t)i;
	} else if (!s->ncpu) {
		a->clk = sadd(a->clk, ns);
	} else {
		a->clk = cpu_run(s, a->clk, ns, &a->cpu);
	}
}

/* Bring srv_busy and srv_next_end up to now: recounted only once some server work
 * has ended since they were (now never decreases, and srv_until only changes in
 * book_server, which keeps both up to date). */
static void srv_refresh(sim *s)
{
	int32_t i, busy = 0;
	int64_t next = INT64_MAX;
	if (s->now < s->srv_next_end)
		return;
	for (i = 0; i < s->ncpu; i++)
		if (s->srv_until[i] > s->now) {
			busy++;
			next = min64(next, s->srv_until[i]);
		}
	s->srv_busy = busy;
	s->srv_next_end = next;
}

/* Whether server work already runs on server_cpus CPUs. */
static int server_capped(sim *s)
{
	srv_refresh(s);
	return s->srv_busy >= s->srv_cap;
}

static void book_server(sim *s, int32_t i, int32_t w, int64_t svc, int64_t on_cpu)
{
	/* CPU i is idle (cpu_free[i] <= now) and srv_until[i] <= cpu_free[i] always, so
	 * it was not counted busy; on_cpu > 0 makes it busy past now.  srv_busy is up to
	 * date: both callers found i at this now as an idle CPU with server_capped() false. */
	s->cpu_free[i] = s->srv_until[i] = sadd(s->now, on_cpu);
	s->srv_busy++;
	s->srv_next_end = min64(s->srv_next_end, s->srv_until[i]);
	push(s, defer(s, sadd(s->now, svc)), EV_DONE, w);
}

/* Schedule the CPU grant for when a queued server thread may next find a CPU: the end
 * of the first server work if server_cpus are taken, else when the first CPU is free.
 * A grant is pending exactly while threads queue, and a pending one stands: since it
 * was computed (at t0 <= now) no server work was booked (start_service queues behind
 * the queue), so srv_until is as it was, and cpu_free only grew.  Capped now, it was
 * capped at t0 and the first server work to end is the same one (or, now being its
 * end, a later one); not capped now, either that work ended by now (the grant is due
 * by now) or max(t0, first CPU free) has only grown: never earlier than the grant. */
static void cpu_wake_capped(sim *s, int capped)	/* capped: server_capped(s) now */
{
	int32_t i;
	int64_t t = INT64_MAX;
	if (s->cpu_ev >= 0)
		return;
	if (capped) {
		t = s->srv_next_end;	/* the first server work to end */
	} else {
		for (i = 0; i < s->ncpu; i++)
			t = min64(t, s->cpu_free[i]);
		t = max64(s->now, t);
	}
	s->cpu_ev = t;
	s->cpu_seq = s->seq;
}

static void cpu_wake(sim *s)
{
	cpu_wake_capped(s, server_capped(s));
}

/* Server thread w runs a request of svc ns, then kern ns of kernel work at its reply
 * (all on CPU): its CPU share first, on a CPU it may take now (else it queues for
 * one), then the rest off CPU. */
static void start_service(sim *s, int32_t w, int64_t svc, int64_t kern)
{
	int64_t pct = s->cfg->server_cpu_pct;	/* all of it on CPU by default */
	int64_t on_cpu = sadd(pct == 100 ? svc : svc * pct / 100, kern);
	svc = sadd(svc, kern);
	if (s->ncpu && on_cpu > 0) {
		int32_t i = -1, queued = s->runq_n, capped = 0;
		/* behind those queued, or no CPU it may take now: server work on server_cpus
		 * CPUs already (capped, kept for cpu_wake), else none idle */
		if (queued || (capped = server_capped(s)) || (i = idle_cpu(s, s->now)) < 0) {
			int32_t at = s->runq_head + s->runq_n;	/* both < nthr: no division */
			if (at >= s->nthr)
				at -= s->nthr;
			s->runq_w[at] = w;
			s->runq_svc[at] = svc;
			s->runq_on[at] = on_cpu;
			s->runq_n++;
			if (queued)
				cpu_wake(s);
			else
				cpu_wake_capped(s, capped);
			return;
		}
		book_server(s, i, w, svc, on_cpu);
		return;
	}
	push(s, defer(s, sadd(s->now, svc)), EV_DONE, w);
}

/* The CPU grant: queued server threads take the CPUs idle now, in order. */
static void run_cpu_queue(sim *s)
{
	s->cpu_ev = -1;
	while (s->runq_n) {
		int capped = server_capped(s);
		int32_t i = capped ? -1 : idle_cpu(s, s->now), w;
		int64_t svc, on_cpu;
		if (i < 0) {
			cpu_wake_capped(s, capped);	/* threads still queue */
			return;
		}
		w = s->runq_w[s->runq_head];
		svc = s->runq_svc[s->runq_head];
		on_cpu = s->runq_on[s->runq_head];
		if (++s->runq_head == s->nthr)
			s->runq_head = 0;
		s->runq_n--;
		book_server(s, i, w, svc, on_cpu);
	}
}

/* fuse_get_req after the abort: -ENOTCONN at once (out of line: the rare path). */
COLD_CALL void refuse_request(sim *s, int32_t r)
{
	fail(s, r);
	wake_waiters(s);
}

/* The lowest idle server thread (nidle > 0: an idle bit is set). */
static int32_t idle_thread(const sim *s)
{
	int32_t j = 0;
	while (!s->idle[j])
		j++;
	return (j << 6) + __builtin_ctzll(s->idle[j]);
}

static void start(sim *s, int32_t w, int32_t r);

/* r goes to the pending queue; alone there with a thread idle, it is read at once. */
static inline void to_pending(sim *s, int32_t r)
{
	if (s->aborted) {
		refuse_request(s, r);
		return;
	}
	if (!s->pending.head && s->nidle && !stalled(s, s->now)) {
		s->rq[r].next = 0;	/* what dispatch does with r alone in the queue */
		start(s, idle_thread(s), r);
		return;
	}
	s->rq[r].state = ST_PENDING;
	fifo_append(s, &s->pending, r);
	dispatch(s);
}

static void submit_bg(sim *s, int32_t r)
{
	s->rq[r].created = s->now;	/* fuse_simple_background allocates the fuse_req now */
	if (s->aborted) {	/* fuse_get_req: -ENOTCONN, the write ends with it */
		refuse_request(s, r);
		return;
	}
	s->rq[r].state = ST_QUEUED;
	if (s->active_bg < s->cfg->max_background) {
		s->active_bg++;
		s->rq[r].bg = 1;
		to_pending(s, r);
	} else {
		s->rq[r].state = ST_BACKGROUND;
		fifo_append(s, &s->bg_queue, r);
	}
}

static void start(sim *s, int32_t w, int32_t r)
{
	const fwb_config *c = s->cfg;
	req *q = &s->rq[r];
	int64_t mean, svc, kern = 0;	/* kern: kernel work of the thread that writes the reply */
	int64_t p0 = s->base[q->file] + q->first;
	q->state = ST_SENT;
	s->thr_pg[w] = p0;
	if (q->kind == RQ_WRITE) {
		const page *g = &s->pg[p0];
		int64_t left = s->isize[q->file] - index_of(s, q->file, q->first) * FWB_PAGE;
		int64_t fresh = 0;
		int32_t i;
		/* pages the server has never been sent cost it more: its copy starts sparse; it
		 * reads each page as it is now (its version), unless from a temp page */
		if (s->temp) {
			for (i = 0; i < q->n; i++)
				fresh += g[i].srv_max == 0;
		} else {
			for (i = 0; i < q->n; i++) {
				fresh += g[i].srv_max == 0;
				*ver(s, r, i) = g[i].version;
			}
		}
		q->crop = max64(0, min64((int64_t)q->n * FWB_PAGE, left));
		s->c[FWB_C_REQUESTS]++;
		s->hist[q->n]++;
		mean = c->server_base_ns + c->server_page_ns * q->n + c->server_new_page_ns * fresh;
		if (s->temp)	/* fuse_writepage_end: rb_erase, free the temp pages */
			kern = c->wb_tree_ns * (1 + q->promoted) + c->temp_free_ns * q->n;
		else		/* fuse_writepage_free: end PG_writeback of each folio */
			kern = c->end_writeback_ns * (s->iomap ? q->nfolios : q->n);
	} else if (q->kind == RQ_READ) {
		s->c[FWB_C_READS]++;
		mean = c->server_base_ns + c->server_page_ns;
	} else {
		s->c[FWB_C_FSYNC_REQUESTS]++;
		mean = c->server_fsync_ns;
	}
	s->thr[w] = r;
	s->nidle--;
	s->idle[w >> 6] &= ~((uint64_t)1 << (w & 63));
	svc = service(s, mean);
	if (!s->in_done)	/* it arrived at idle threads: one is woken to read it */
		svc = sadd(svc, c->server_wakeup_ns);
	start_service(s, w, svc, kern);
}

static void dispatch_pending(sim *s)
{
	if (!s->nidle || stalled(s, s->now))
		return;
	while (s->pending.head && s->nidle)
		start(s, idle_thread(s), fifo_popleft(s, &s->pending));
}

/* Pending requests go to the idle threads, lowest thread first (the check for none
 * inline: a reply mostly finds the queue empty). */
static inline void dispatch(sim *s)
{
	if (s->pending.head)
		dispatch_pending(s);
}

/* One page of r is no longer in flight (a reply or the abort): its in-flight lookup goes, and
 * under iomap the folio's writeback ends with its last range.  PG_writeback's flag, pinned pages
 * of the other strategies and temp pages are the caller's, per request. */
static inline void end_copy(sim *s, int32_t r, int64_t p)
{
	s->pg[p].inflight--;
	if (s->lk && s->lk[p].wb_req == r)
		s->lk[p].wb_req = 0;
	if (s->iomap) {
		int64_t h = head(s, p);
		if (--s->fo[h].nwb == 0)
			s->pinned -= nr(s, h);
	}
}

static void complete(sim *s, int32_t r)
{
	req *q = &s->rq[r];
	int64_t base;
	uint32_t *v;
	int32_t i, sc;
	uint8_t keep;
	q->state = ST_DONE;
	q->done = 1;
	if (q->kind == RQ_READ) {
		s->pg[s->base[q->file] + q->first].flags &= (uint8_t)~(PF_LOCKED | PF_NOTUP);
		free_req(s, r);
		return;
	}
	if (q->kind == RQ_FSYNC)
		return;		/* freed by the fsync that waits for it */
	base = s->base[q->file] + q->first;
	v = versions(s, r);
	/* PG_writeback ends here unless temp pages ended it at once (the folio's with its
	 * last range: iomap) */
	keep = s->reply_keep;
	/* each page in one pass (a request of one page, rand-write's, is one iteration):
	 * the server's version, the copy, the lookup, PG_writeback */
	for (i = 0; i < q->n; i++) {
		page *g = &s->pg[base + i];
		uint32_t vi = i ? v[i] : q->ver0;
		if (vi < g->srv_max)
			s->c[FWB_C_OUT_OF_ORDER]++;
		else		/* the newest the server has had */
			g->srv_max = vi;
		/* srv_ver = v */
		g->flags = (uint8_t)((g->flags & keep) | (vi == g->version ? 0 : PF_STALE));
		end_copy(s, r, base + i);
	}
	if (!s->iomap && !s->temp)
		s->pinned -= q->n;
	if (s->temp)
		temp_add(s, -(int64_t)q->n);
	s->c[FWB_C_BYTES_WRITTEN] = sadd(s->c[FWB_C_BYTES_WRITTEN], q->crop);
	s->c[FWB_C_T_WB_END] = s->now;
	s->f_inflight[q->file]--;
	if (q->bg)
		s->active_bg--;
	/* fuse_writepage_end: now the secondaries may go */
	for (sc = q->sec_head; sc; sc = s->rq[sc].sec_next) {
		int64_t p = s->base[s->rq[sc].file] + s->rq[sc].first;
		s->lk[p].sec_req = 0;
		s->lk[p].wb_req = sc;
		s->rq[sc].promoted = 1;
		submit_bg(s, sc);
	}
	q->sec_head = q->sec_tail = 0;
	while (s->bg_queue.head && s->active_bg < s->cfg->max_background) {
		int32_t b = fifo_popleft(s, &s->bg_queue);
		s->active_bg++;
		s->rq[b].bg = 1;
		to_pending(s, b);
	}
	free_req(s, r);		/* nothing refers to a finished WRITE any more */
}

/* ------------------------------------------------------------ request timeout */

/* End r with the abort's error (fuse_abort_conn, or -ENOTCONN for a request made after
 * it): its pages end writeback with nothing delivered, its secondaries fail with it, and no
 * queued request moves up.  A server thread may still hold r's index: after the abort its
 * reply is dropped without looking at it. */
static void fail(sim *s, int32_t r)
{
	req *q = &s->rq[r];
	int64_t base = s->base[q->file] + q->first;
	int32_t i, sc, next;
	s->c[FWB_C_ABORTED_CALLS]++;
	q->state = ST_DONE;
	q->done = 1;
	if (q->kind == RQ_READ) {	/* the page stays cached but not up to date */
		s->pg[base].flags = (uint8_t)((s->pg[base].flags & ~PF_LOCKED) | PF_BADREAD);
		free_req(s, r);
		return;
	}
	if (q->kind == RQ_FSYNC)
		return;		/* freed by the fsync that waits for it */
	for (i = 0; i < q->n; i++) {
		if (!s->temp)	/* temp pages ended PG_writeback at the copy */
			s->pg[base + i].flags &= (uint8_t)~PF_PGWB;
		end_copy(s, r, base + i);
	}
	if (!s->iomap && !s->temp)
		s->pinned -= q->n;
	if (s->temp)
		temp_add(s, -(int64_t)q->n);
	s->f_inflight[q->file]--;
	if (q->bg) {
		s->active_bg--;
		q->bg = 0;
	}
	for (sc = q->sec_head; sc; sc = next) {	/* sent at its end; they fail at once */
		next = s->rq[sc].sec_next;
		s->lk[s->base[s->rq[sc].file] + s->rq[sc].first].sec_req = 0;
		fail(s, sc);
	}
	q->sec_head = q->sec_tail = 0;
	free_req(s, r);
}

/* fuse_request_expired: jiffies past create_time + req_timeout (whole jiffies). */
static int expired(const sim *s, int32_t r)
{
	/* fuse_init_server_timeout: a timeout below the check period is raised to it */
	int64_t jiffy = 1000000000 / s->cfg->hz;
	int64_t limit = max64(TIMEOUT_PERIOD_NS, s->cfg->request_timeout_ns) / 1000000000 * s->cfg->hz;
	return s->now / jiffy > s->rq[r].created / jiffy + limit;
}

static void kick_flusher(sim *s);

/* fuse_abort_conn: the requests the server holds, then the pending and background queues,
 * end with an error; waiters wake.  The server's threads go on with what they hold. */
static void abort_conn(sim *s)
{
	int32_t w;
	s->aborted = 1;
	for (w = 0; w < s->nthr; w++)
		if (s->thr[w])
			fail(s, s->thr[w]);
	while (s->pending.head)
		fail(s, fifo_popleft(s, &s->pending));
	while (s->bg_queue.head)
		fail(s, fifo_popleft(s, &s->bg_queue));
	wake_waiters(s);
	if (s->dirty_total > bg_thresh(s))
		kick_flusher(s);
}

/* fuse_check_timeout (fs/fuse/dev.c, 9b17cb59a7db): the head of the pending queue, the head
 * of the background queue and every request a server thread holds; one expired aborts the
 * connection, else it looks again in 15 s.  Once no thread runs and no request is out, the
 * run loop drops the check (the run is over). */
static void check_timeout(sim *s)
{
	int32_t w;
	int hit = (s->pending.head && expired(s, s->pending.head)) ||
		  (s->bg_queue.head && expired(s, s->bg_queue.head));
	for (w = 0; w < s->nthr && !hit; w++)
		hit = s->thr[w] && expired(s, s->thr[w]);
	if (hit) {
		abort_conn(s);
		return;
	}
	push(s, sadd(s->now, TIMEOUT_PERIOD_NS), EV_TIMEOUT, 0);
}

/* Whether a request is queued or held by a server thread (fc->num_waiting). */
static int requests_out(const sim *s)
{
	return s->pending.head || s->bg_queue.head || s->nidle < s->nthr;
}

/* a's call needs a READ after the abort: it fails at once (-ENOTCONN). */
static int refuse_call(sim *s, actor *a)
{
	s->c[FWB_C_ABORTED_CALLS]++;
	a->failed = 1;
	return 0;
}

/* Undo what a failed call holds: a direct-I/O read's pins, a fault in progress. */
static void drop_call(sim *s, actor *a)
{
	const fwb_op *op = a->ops[a->k];
	a->failed = 0;
	if (op->op == FWB_OP_DIO_READ && a->phase == PH_PAGES) {
		int64_t idx;
		for (idx = op->offset / FWB_PAGE; idx < a->pg; idx++)
			s->pg[a->pg0 + idx].gup--;
	}
	a->fault_start = -1;
}

/* ------------------------------------------------------------ waiting */

static int cond(const sim *s, const actor *a)
{
	int64_t x = a->wait_arg;
	switch (a->wait_kind) {
	case W_PAGE:
		return !busy(s, x);
	case W_LOCK:
		return !(s->pg[x].flags & PF_LOCKED);
	case W_FILE:
		return s->f_inflight[x] == 0;
	case W_ALL:
		return s->pinned == 0;
	case W_THROTTLE:
		return s->dirty_total + wb_pages(s) < dirty_limit(s);
	case W_REQ:
		return a->req && s->rq[a->req].done;
	default:
		return s->now >= a->timer_at;
	}
}

static void block(sim *s, actor *a, int kind, int64_t arg)
{
	s->nwait_cond += kind != W_TIMER;
	a->waiting = 1;
	a->wait_kind = kind;
	a->wait_arg = arg;
	a->block_start = a->clk;
	a->wait_reclaim = a->in_reclaim;
}

static void sleep_until(sim *s, actor *a, int64_t t)
{
	block(s, a, W_TIMER, 0);
	a->timer_at = t;
	a->wake_pending = 1;
	push(s, t, EV_ACTOR, a->id);
}

static void end_wait(sim *s, actor *a)
{
	int64_t dur = max64(0, ssub(s->now, a->block_start));
	a->waiting = 0;
	if (s->now > a->clk)
		a->clk = s->now;
	if (a->wait_kind == W_TIMER)
		return;
	s->nwait_cond--;
	if (dur > s->cfg->hang_threshold_ns) {
		s->c[FWB_C_HANGS]++;
		if (a->wait_reclaim)
			s->c[FWB_C_DEADLOCKS]++;
	}
	if (a->wait_kind == W_THROTTLE)
		lat_add(s, FWB_L_THROTTLE, dur);
	work(s, a, s->cfg->wakeup_ns);	/* it slept and was woken: two context switches */
}

static inline void wake_waiters(sim *s)
{
	int32_t i;
	if (!s->nwait_cond)
		return;
	for (i = 0; i < s->nact; i++) {
		actor *a = &s->actors[i];
		if (a->waiting && !a->wake_pending && a->wait_kind != W_TIMER && cond(s, a)) {
			a->wake_pending = 1;
			push(s, s->now, EV_ACTOR, a->id);
		}
	}
}

static void kick_flusher(sim *s)
{
	actor *fl = s->flusher;
	if (!fl->fl_pass && !fl->wake_pending) {
		fl->wake_pending = 1;
		push(s, max64(s->now, fl->clk), EV_ACTOR, fl->id);
	}
}

/* ------------------------------------------------------------ folios (iomap) */

/* folio_start_writeback of a folio not under writeback (its whole size counts as
 * writeback, its mappings are write-protected), held by the caller until it has added
 * every dirty range (folio_release). */
static void folio_claim(sim *s, int64_t h)
{
	int64_t n = nr(s, h), q;
	s->pinned += n;
	if (s->pinned > s->c[FWB_C_PINNED_PAGES_PEAK])
		s->c[FWB_C_PINNED_PAGES_PEAK] = s->pinned;
	for (q = h; q < h + n; q++)
		s->pg[q].flags &= (uint8_t)~PF_MAPW;
	s->fo[h].nwb++;
}

/* Drop the writeback path's hold; the folio's writeback ends if nothing of it is in
 * flight any more (iomap_finish_folio_write). */
static void folio_release(sim *s, int64_t h)
{
	if (--s->fo[h].nwb == 0) {
		s->pinned -= nr(s, h);
		wake_waiters(s);
	}
}

/* Wait for the writeback of p's folio; a folio wait if p itself is not in flight. */
static void wait_page(sim *s, actor *a, int64_t p)
{
	if (s->iomap && !(s->pg[p].flags & PF_PGWB))
		s->c[FWB_C_FOLIO_WAITS]++;
	block(s, a, W_PAGE, p);
}

/* Dirty blocks from p (dirty) on, before page id end. */
static int64_t dirty_run(const sim *s, int64_t p, int64_t end)
{
	int64_t k = 1;
	while (p + k < end && (s->pg[p + k].flags & PF_DIRTY))
		k++;
	return k;
}

/* ------------------------------------------------------------ writepages */

static void wp_start(actor *a, int32_t f, int64_t first, int64_t end, int sync_all, int bg)
{
	a->wp_active = 1;
	a->wp_f = f;
	a->wp_idx = first;
	a->wp_end = end;
	a->wp_sync = sync_all;
	a->wp_bg = bg;
	a->wp_chunk = 0;
	a->wp_batch = 0;
	a->wp_looked = 0;
	a->wp_fend = a->wp_rend = 0;
}

/* Send a's batch once the CPU work that made it is done: at once if a's clock is
 * not ahead, else a sleeps until it is and sends it when it resumes (writepages);
 * 0 then. */
HOT_INLINE int send_batch_inl(sim *s, actor *a)
{
	int32_t r = a->wp_batch;
	if (!r)
		return 1;
	a->wp_batch = 0;
	work(s, a, s->cfg->wp_request_ns + s->temp * s->cfg->wb_tree_ns);
	/* Going on at once is what waking at a->clk does (writepages resumes at the page it
	 * stopped at and sends the batch first), with nothing in between; not after the
	 * abort, where sending fails the batch's pages under the loop's feet. */
	if (a->clk > s->now && (s->aborted || !go_on(s, a->clk))) {
		a->wp_ready = r;
		sleep_until(s, a, a->clk);
		return 0;
	}
	submit_bg(s, r);
	return 1;
}

/* send_batch_inl as a call, for the places outside writepages' page loop (inline
 * there: once per request on the flusher's path). */
static int send_batch(sim *s, actor *a)
{
	return send_batch_inl(s, a);
}

/* Take a temp page for a copy; 0 (and counted) under memory pressure. */
HOT_INLINE int alloc_temp(sim *s, actor *a)
{
	if (free_pages(s) <= s->cfg->wmark_min_pages) {
		s->c[FWB_C_TEMP_ALLOC_FAILURES]++;
		return 0;
	}
	temp_add(s, 1);
	s->c[FWB_C_TEMP_BYTES_COPIED] += FWB_PAGE;
	work(s, a, s->cfg->temp_alloc_ns + s->cfg->page_copy_ns);
	return 1;
}

static void add_copy(sim *s, int64_t p)
{
	s->pg[p].inflight++;
	if (s->pg[p].inflight > s->c[FWB_C_MAX_COPIES_IN_FLIGHT])
		s->c[FWB_C_MAX_COPIES_IN_FLIGHT] = s->pg[p].inflight;
}

/* Put page p (dirty, temp page already taken if any) into request r.  Inline, as are
 * clear_dirty, alloc_temp and temp_add: writepages runs them once per page (the calls
 * were about 3.5% of the 1 GiB rand-write's instructions). */
HOT_INLINE void take_page(sim *s, actor *a, int32_t r, int64_t p,
							    int32_t f)
{
	req *q = &s->rq[r];
	clear_dirty(s, p, f);
	/* temp pages: PG_writeback ends at once, in the flusher (fuse_writepages_send) */
	work(s, a, s->cfg->wp_page_ns + s->temp * s->cfg->end_writeback_ns);
	if (s->iomap) {		/* the folio was claimed (folio_claim) */
		int64_t h = head(s, p);
		s->pg[p].flags |= PF_PGWB;
		s->fo[h].nwb++;
		if (h != q->last_head) {
			q->nfolios++;
			q->last_head = h;
		}
	} else if (!s->temp) {
		s->pg[p].flags |= PF_PGWB;
		s->pinned++;
		if (s->pinned > s->c[FWB_C_PINNED_PAGES_PEAK])
			s->c[FWB_C_PINNED_PAGES_PEAK] = s->pinned;
	}
	add_copy(s, p);
	*ver(s, r, q->n) = s->pg[p].version;
	q->n++;
	if (s->lk)
		s->lk[p].wb_req = r;
}

static int32_t new_write(sim *s, int32_t f, int64_t first)
{
	int32_t r = new_req(s, RQ_WRITE, f, first);
	s->f_inflight[f]++;
	return r;
}

/* merge-in-queue's answer; 0 if a temp page could not be had. */
static int merge(sim *s, actor *a, int64_t p, int32_t f, int64_t idx)
{
	const fwb_config *c = s->cfg;
	int32_t sr = s->lk[p].sec_req, w = s->lk[p].wb_req, r;
	if (!sr && s->cfg->merge_queued_primary && w && s->rq[w].n == 1 &&
	    (s->rq[w].state == ST_QUEUED || s->rq[w].state == ST_BACKGROUND ||
	     s->rq[w].state == ST_PENDING))
		sr = w;
	if (sr) {		/* copy over the copy the server has not read */
		/* fuse_writepage_add: a fresh temp page takes the copy and is swapped into the
		 * held request, whose old temp page is freed; the writeback ends at once */
		s->rq[sr].ver0 = s->pg[p].version;
		s->c[FWB_C_INPLACE_UPDATES]++;
		s->c[FWB_C_TEMP_BYTES_COPIED] += FWB_PAGE;
		work(s, a, c->temp_alloc_ns + c->page_copy_ns + c->wb_tree_ns + c->temp_free_ns +
			   c->end_writeback_ns);
		clear_dirty(s, p, f);
		return 1;
	}
	if (!w)			/* unreachable: a page with a copy in flight has its request */
		return 0;
	if (!alloc_temp(s, a))
		return 0;
	r = new_write(s, f, idx);
	take_page(s, a, r, p, f);
	work(s, a, c->wb_tree_ns);	/* chained to the in-flight request (fuse_writepage_add) */
	s->rq[r].state = ST_HELD;
	s->lk[p].wb_req = w;	/* the in-flight primary stays the one found by lookup */
	s->lk[p].sec_req = r;
	if (s->rq[w].sec_tail)
		s->rq[s->rq[w].sec_tail].sec_next = r;
	else
		s->rq[w].sec_head = r;
	s->rq[w].sec_tail = r;
	s->c[FWB_C_SECONDARIES]++;
	return 1;
}

/* writepages of the iomap strategies (iomap_writepages, fuse_iomap_writeback_range).
 * Per folio: a folio under writeback is skipped (WB_SYNC_NONE) or waited for
 * (WB_SYNC_ALL); else it is put under writeback whole and each run of its dirty blocks
 * is added to the batch, which is sent first if that run would pass max_pages or
 * max_write, does not follow it, or the batch's folio array is full. */
static int writepages_iomap(sim *s, actor *a)
{
	int32_t f = a->wp_f;
	int64_t base = s->base[f];
	int64_t end = base + min64(a->wp_end, s->npages[f]);
	int64_t p;
	if (a->wp_ready) {
		int32_t r = a->wp_ready;
		a->wp_ready = 0;
		submit_bg(s, r);
	}
	for (p = next_dirty(s, base + a->wp_idx, end); p < end; p = next_dirty(s, p + 1, end)) {
		int64_t idx = p - base, h;
		int held;
		if (a->wp_fend && idx >= a->wp_fend) {
			folio_release(s, a->wp_fh);
			a->wp_fend = 0;
		}
		held = a->wp_fend != 0;
		if (!held) {
			/* nr_to_write is looked at between folios (writeback_iter) */
			if (a->wp_bg && a->wp_chunk >= s->cfg->wb_chunk_pages) {
				a->wp_chunk = 0;
				if (s->dirty_total <= bg_thresh(s))
					break;
			}
			if (busy(s, p)) {
				enum fwb_action act = s->strategy->on_busy_page(a->wp_sync, 0, s->cfg);
				if (!send_batch(s, a))
					return 0;
				if (act == FWB_WAIT) {
					s->c[FWB_C_WRITEPAGES_WAITS]++;
					wait_page(s, a, p);
					return 0;
				}
				s->c[FWB_C_WRITEBACK_SKIPS]++;
				a->wp_idx = idx + 1;
				continue;
			}
		}
		h = head(s, p);
		if (idx >= a->wp_rend) {	/* a dirty range starts: fuse_folios_need_send */
			int64_t k = dirty_run(s, p, h + nr(s, h));
			int32_t b = a->wp_batch;
			if (b && (idx != s->rq[b].first + s->rq[b].n ||
				  s->rq[b].n + k > s->req_pages ||
				  (h != s->rq[b].last_head && s->rq[b].nfolios >= s->cfg->max_pages)) &&
			    !send_batch(s, a))
				return 0;
			a->wp_rend = idx + k;
		}
		if (!held) {
			folio_claim(s, h);
			a->wp_fh = h;
			a->wp_fend = h - base + nr(s, h);
			a->wp_chunk += nr(s, h);
		}
		if (!a->wp_batch)
			a->wp_batch = new_write(s, f, idx);
		take_page(s, a, a->wp_batch, p, f);
		a->wp_sent++;
		a->wp_idx = idx + 1;
	}
	if (a->wp_fend) {
		folio_release(s, a->wp_fh);
		a->wp_fend = 0;
	}
	if (!send_batch(s, a)) {
		a->wp_idx = a->wp_end;	/* nothing more to look at once it is sent */
		return 0;
	}
	a->wp_active = 0;
	return 1;
}

/* Advance a's writepages; 1 when finished, 0 when it must wait.  It resumes at the
 * page it stopped at, sending first the batch it slept for (send_batch).  Its range
 * (wp_idx, wp_end) and idx below are slots: a page follows the batch's last one in the
 * file exactly when it does in slots (pagespace.c). */
static int writepages(sim *s, actor *a)
{
	int32_t f = a->wp_f;
	int64_t base = s->base[f];
	int64_t end = base + min64(a->wp_end, s->npages[f]);
	int64_t p, pn;
	if (s->iomap)
		return writepages_iomap(s, a);
	if (a->wp_ready) {
		int32_t r = a->wp_ready;
		a->wp_ready = 0;
		submit_bg(s, r);
	}
	p = next_dirty(s, base + a->wp_idx, end);
	while (p < end) {
		int64_t idx = p - base;
		int32_t b;
		/* Background writeback works in chunks (wb_chunk_pages, writeback_chunk_size)
		 * and looks at the background threshold between them (wb_writeback). */
		if (a->wp_bg && a->wp_chunk >= s->cfg->wb_chunk_pages) {
			a->wp_chunk = 0;
			if (s->dirty_total <= bg_thresh(s))
				break;
		}
		if (s->temp && a->wp_looked != idx + 1) {	/* fuse_writepage_need_send: in flight? */
			a->wp_looked = idx + 1;
			work(s, a, s->cfg->wb_lookup_ns);
		}
		if (busy(s, p)) {
			enum fwb_action act = s->strategy->on_busy_page(a->wp_sync, 0, s->cfg);
			if (act != FWB_COPY && !send_batch(s, a))
				return 0;	/* it cuts the batch; back here once it is sent */
			if (act == FWB_WAIT) {
				s->c[FWB_C_WRITEPAGES_WAITS]++;
				block(s, a, W_PAGE, p);
				return 0;
			}
			if (act == FWB_SKIP) {
				s->c[s->temp ? FWB_C_REDIRTY_SKIPS : FWB_C_WRITEBACK_SKIPS]++;
				a->wp_idx = idx + 1;
				p = next_dirty(s, p + 1, end);
				continue;
			}
			if (act == FWB_MERGE) {
				/* (no lk: a strategy that merges must set .merges) */
				if (!s->lk || !merge(s, a, p, f, idx))
					break;	/* -ENOMEM: the page stays dirty */
				a->wp_sent++;
				a->wp_idx = idx + 1;
				p = next_dirty(s, p + 1, end);
				continue;
			}
		}
		b = a->wp_batch;
		if (b && (idx != s->rq[b].first + s->rq[b].n || s->rq[b].n >= s->req_pages) &&
		    !send_batch_inl(s, a))
			return 0;
		/* The next dirty page, found now (nothing from here on changes a dirty bit but
		 * p's) so that its state is fetched while this page is taken: in a big file
		 * each is a cache miss (end <= n: &pg[end] is at most one past the end).
		 * Inline: see step_thread on prefetches in helpers.  (Found before the batch
		 * is sent, it is found again after each sleep: more instructions, no faster.) */
		pn = next_dirty(s, p + 1, end);
		PREFETCH(&s->pg[pn]);
		if (s->lk)
			PREFETCH(&s->lk[pn]);
		if (s->temp && !alloc_temp(s, a))
			break;
		if (!a->wp_batch)
			a->wp_batch = new_write(s, f, idx);
		take_page(s, a, a->wp_batch, p, f);
		a->wp_sent++;
		a->wp_chunk++;
		a->wp_idx = idx + 1;
		p = pn;
	}
	if (!send_batch(s, a)) {
		a->wp_idx = a->wp_end;	/* nothing more to look at once it is sent */
		return 0;
	}
	a->wp_active = 0;
	return 1;
}

/* ------------------------------------------------------------ reclaim */

/* Reclaim writes a dirty folio not under writeback: one WRITE per dirty range (a folio
 * fits in one request), sent at once; the folio stays cached. */
static void pageout_folio(sim *s, actor *a, int64_t h, int32_t f)
{
	int64_t end = h + nr(s, h), q = h, i, k;
	folio_claim(s, h);
	while (q < end) {
		int32_t r;
		if (!(s->pg[q].flags & PF_DIRTY)) {
			q++;
			continue;
		}
		r = new_write(s, f, q - s->base[f]);
		k = dirty_run(s, q, end);
		for (i = q; i < q + k; i++)
			take_page(s, a, r, i, f);
		q += k;
		work(s, a, s->cfg->wp_request_ns);
		submit_bg(s, r);
	}
	folio_release(s, h);
}

/* ->writepage of one dirty page from reclaim: 1 clean now, 0 kept, -1 wait. */
static int pageout(sim *s, actor *a, int64_t p, int32_t f)
{
	int32_t r;
	if (s->temp)		/* fuse_writepage: fuse_page_is_writeback */
		work(s, a, s->cfg->wb_lookup_ns);
	if (busy(s, p)) {
		enum fwb_action act = s->strategy->on_busy_page(0, 1, s->cfg);
		if (act == FWB_WAIT) {
			s->c[FWB_C_WRITEPAGES_WAITS]++;
			block(s, a, W_PAGE, p);
			return -1;
		}
		if (act != FWB_COPY) {	/* SKIP (MERGE is never asked of reclaim) */
			s->c[s->temp ? FWB_C_REDIRTY_SKIPS : FWB_C_WRITEBACK_SKIPS]++;
			return 0;
		}
	}
	if (s->temp && !alloc_temp(s, a))
		return 0;
	r = new_write(s, f, p - s->base[f]);
	take_page(s, a, r, p, f);
	work(s, a, s->cfg->wp_request_ns + s->temp * s->cfg->wb_tree_ns);
	submit_bg(s, r);
	return s->temp ? 1 : 0;
}

/* The file holding page p: the last f with base[f] <= p (empty files have no pages). */
static int32_t file_of(const sim *s, int64_t p)
{
	int32_t lo = 0, hi = s->nfiles - 1;
	while (lo < hi) {
		int32_t mid = lo + (hi - lo + 1) / 2;
		if (s->base[mid] <= p)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/* shrink_folio_list on the folio at the LRU's cold end (iomap strategies): skip it under
 * writeback (or locked, or pinned), write it if dirty, else free it; the pages freed. */
static int64_t reclaim_folio(sim *s, actor *a, int64_t h)
{
	int64_t n = nr(s, h), q;
	int pinned = s->fo[h].nwb > 0;
	for (q = h; q < h + n && !pinned; q++)
		pinned = (s->pg[q].flags & PF_LOCKED) || s->pg[q].gup;
	if (pinned) {
		if (s->fo[h].nwb)	/* 0c4f8ed498ce: skip, never wait on FUSE writeback */
			s->c[FWB_C_WRITEBACK_SKIPS]++;
		lru_add(s, lru_del_cold(s));
		return 0;
	}
	if (s->fo[h].ndirty) {
		pageout_folio(s, a, h, file_of(s, h));
		lru_add(s, lru_del_cold(s));
		return 0;
	}
	lru_del_cold(s);
	for (q = h; q < h + n; q++) {
		s->pg[q].flags &= (uint8_t)~(PF_CACHED | PF_MAPW | PF_NOTUP | PF_BADREAD);
		s->pg[q].fofs = 0;
	}
	s->fo[h].nr = 0;
	s->cache_pages -= n;
	return n;
}

/* Scan one round from the LRU's cold end; 0 if a wait began. */
static int reclaim_round(sim *s, actor *a)
{
	const fwb_config *c = s->cfg;
	int64_t freed = 0, scanned = 0;
	while (freed < c->reclaim_batch && scanned < 4 * c->reclaim_batch) {
		int64_t p;
		if (!s->lru_len)
			break;
		p = s->lru[s->lru_cold];
		scanned++;
		work(s, a, c->reclaim_scan_ns);
		if (s->iomap) {		/* p is a folio's head: reclaim works per folio */
			freed += reclaim_folio(s, a, p);
			continue;
		}
		if ((s->pg[p].flags & (PF_LOCKED | PF_PGWB)) || s->pg[p].gup) {
			/* 0c4f8ed498ce: skip, never wait on FUSE writeback */
			if (s->pg[p].flags & PF_PGWB)
				s->c[FWB_C_WRITEBACK_SKIPS]++;
			lru_add(s, lru_del_cold(s));
			continue;
		}
		if (s->pg[p].flags & PF_DIRTY) {
			int got = pageout(s, a, p, file_of(s, p));
			if (got < 0)
				return 0;
			if (got == 0) {
				lru_add(s, lru_del_cold(s));
				continue;
			}
		}
		lru_del_cold(s);
		s->pg[p].flags &= (uint8_t)~(PF_CACHED | PF_MAPW | PF_BADREAD);
		s->cache_pages--;
		freed++;
	}
	if (freed == 0)
		a->rc_fails++;
	return 1;
}

/* Direct reclaim until n pages can be taken above the low watermark; 0 means the
 * actor is waiting (it resumes here). */
static int reserve_slow(sim *s, actor *a, int64_t n)
{
	const fwb_config *c = s->cfg;
	if (!a->rc_active) {
		a->rc_active = 1;
		a->rc_start = a->clk;
		a->rc_fails = 0;
	}
	a->in_reclaim = 1;
	while (ssub(free_pages(s), n) < c->wmark_low_pages) {
		int64_t fails;
		if (a->rc_fails > c->reclaim_retries) {
			s->c[FWB_C_RECLAIM_GAVEUP]++;
			break;
		}
		fails = a->rc_fails;
		if (!reclaim_round(s, a)) {
			a->in_reclaim = 0;
			return 0;
		}
		/* nothing freed: reclaim_throttle */
		if (a->rc_fails != fails && c->reclaim_retry_ns > 0) {
			a->in_reclaim = 0;
			sleep_until(s, a, sadd(a->clk, c->reclaim_retry_ns));
			a->clk = sadd(a->clk, c->reclaim_retry_ns);
			return 0;
		}
	}
	a->in_reclaim = 0;
	a->rc_active = 0;
	lat_add(s, FWB_L_RECLAIM, ssub(a->clk, a->rc_start));
	return 1;
}

/* reserve, its common case inline: no reclaim under way and enough free pages. */
static inline int reserve(sim *s, actor *a, int64_t n)
{
	if (!a->rc_active && ssub(free_pages(s), n) >= s->cfg->wmark_low_pages)
		return 1;
	return reserve_slow(s, a, n);
}

/* ------------------------------------------------------------ the page cache */

/* floor(log2(v)), v > 0 */
static int ilog2_64(int64_t v)
{
	int r = 0;
	while (v >>= 1)
		r++;
	return r;
}


/* A READ of one page (block) p of file f and a wait for its lock. */
static void read_page(sim *s, actor *a, int32_t f, int64_t p)
{
	int32_t r;
	if (s->temp && s->f_inflight[f])	/* fuse_wait_on_page_writeback first */
		work(s, a, s->cfg->wb_lookup_ns);
	s->pg[p].flags |= PF_LOCKED;
	r = new_req(s, RQ_READ, f, p - s->base[f]);
	s->rq[r].n = 1;
	to_pending(s, r);
	block(s, a, W_LOCK, p);
}

/* __filemap_get_folio for a write of `want` bytes at page idx (id h): the order the write asks
 * for (fgf_set_order), lowered to the index's alignment, then tried down to 1; an order
 * fails if a page of its range is cached (-EEXIST), lies past the file's simulated
 * pages, or the allocation would need reclaim (__GFP_NORETRY).  Nothing is added if
 * every order above 0 fails: the caller adds an order-0 folio. */
static void add_large_folio(sim *s, actor *a, int32_t f, int64_t idx, int64_t h, int64_t want)
{
	int order = ilog2_64(want) - 12, max_order = ilog2_64(s->max_folio);
	int64_t n = 1, q;
	if (order < 0)
		order = 0;
	if (order > max_order)
		order = max_order;
	if (idx & (((int64_t)1 << order) - 1))
		order = __builtin_ctzll((uint64_t)idx);
	for (; order > 0; order--) {
		int ok;
		n = (int64_t)1 << order;
		ok = idx + n <= s->fpages[f] &&
		     ssub(free_pages(s), n) >= s->cfg->wmark_low_pages;
		for (q = h; ok && q < h + n; q++)
			ok = !(s->pg[q].flags & PF_CACHED);
		if (ok)
			break;
	}
	if (order == 0)
		return;
	for (q = h; q < h + n; q++) {
		s->pg[q].flags |= PF_CACHED | PF_NOTUP;
		s->pg[q].fofs = (uint16_t)(q - h);
	}
	s->fo[h].nr = (uint16_t)n;
	s->cache_pages += n;
	s->c[FWB_C_FOLIOS]++;
	s->c[FWB_C_FOLIO_PAGES] += n;
	lru_add(s, h);
	work(s, a, s->cfg->cache_add_ns);
}

/* Make page idx of f (id p) cached and up to date; 0 if a wait began.  want > 0: a write(2)
 * of that many bytes from this page on (the folio size it asks for). */
static int page_ready_slow(sim *s, actor *a, int32_t f, int64_t idx, int64_t p, int need_read,
			   int64_t want)
{
	if (s->pg[p].flags & PF_LOCKED) {
		block(s, a, W_LOCK, p);
		return 0;
	}
	if (!(s->pg[p].flags & PF_CACHED) && want && s->large)
		add_large_folio(s, a, f, idx, p, want);
	if (s->pg[p].flags & PF_CACHED) {
		if (!(s->pg[p].flags & (PF_NOTUP | PF_BADREAD)))
			return 1;
		if (!need_read) {	/* written whole, or past EOF (zeroed): up to date */
			s->pg[p].flags &= (uint8_t)~(PF_NOTUP | PF_BADREAD);
			return 1;
		}
		if ((s->pg[p].flags & PF_BADREAD) || s->aborted)
			return refuse_call(s, a);
		read_page(s, a, f, p);	/* a block of a large folio that is not uptodate */
		return 0;
	}
	if (need_read && s->aborted)
		return refuse_call(s, a);
	if (!reserve(s, a, 1))
		return 0;
	s->pg[p].flags |= PF_CACHED;
	s->cache_pages++;
	s->c[FWB_C_FOLIOS]++;
	s->c[FWB_C_FOLIO_PAGES]++;
	lru_add(s, p);
	work(s, a, s->cfg->cache_add_ns);
	if (need_read) {	/* fuse_do_readpage: a READ, then wait for the page lock */
		read_page(s, a, f, p);
		return 0;
	}
	return 1;
}

/* page_ready, its common case inline: a cached, up-to-date, unlocked page is ready as it
 * is (page_ready_slow returns 1 at once for it and changes nothing). */
static inline int page_ready(sim *s, actor *a, int32_t f, int64_t idx, int64_t p, int need_read,
			     int64_t want)
{
	if ((s->pg[p].flags & (PF_LOCKED | PF_CACHED | PF_NOTUP | PF_BADREAD)) == PF_CACHED)
		return 1;
	return page_ready_slow(s, a, f, idx, p, need_read, want);
}

/* roundup_pow_of_two(v), v >= 1 */
static int64_t pow2_up(int64_t v)
{
	int64_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

/* a / b rounded down, b > 0 (Python's //) */
static int64_t floordiv(int64_t a, int64_t b)
{
	return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* The throttled task's pause, in whole jiffies as the kernel sleeps: the period its
 * dirtied pages take at `rate`, less the time it spent since its last pause, up to
 * wb_max_pause; one shorter than wb_min_pause's is carried as debt instead of slept.
 * avg_write_bandwidth is taken as dirty_ratelimit (neither is estimated here). */
static int pause_task(sim *s, actor *a, int64_t dirty, int64_t rate)
{
	const fwb_config *c = s->cfg;
	int64_t hz = c->hz, jiffy = 1000000000 / hz, bw = c->dirty_ratelimit_pps;
	int64_t hz_pow2 = pow2_up(hz), max_pause, t, pages, min_pause, period, pause, ahead = 0;
	/* wb_max_pause: at most the time to write a fraction of what the bdi holds */
	max_pause = min64(dirty / (1 + bw / pow2_up(1 + hz / 8)) + 1,
			  max64(1, c->max_pause_ns / jiffy));
	/* wb_min_pause: aim at 10 ms pauses (1 jiffy at least, max_pause / 2 at most) and
	 * look again after the pages the ratelimit allows in that time */
	t = min64(max64(1, hz / 100), 1 + max_pause / 2);
	pages = bw * t / hz_pow2;
	if (pages < NR_DIRTIED_PAUSE) {
		t = max_pause;
		pages = bw * t / hz_pow2;
		if (pages > NR_DIRTIED_PAUSE) {
			pages = NR_DIRTIED_PAUSE;
			t = hz * NR_DIRTIED_PAUSE / bw;
		}
	}
	if (hz * pages / (rate + 1) > max_pause) {
		t = max_pause;
		pages = rate * t / hz_pow2;
	}
	a->dirtied_pause = pages;
	min_pause = pages >= NR_DIRTIED_PAUSE ? 1 + t / 2 : t;
	period = hz * a->nr_dirtied / rate;
	pause = period - floordiv(ssub(a->clk, a->paused_when), jiffy);
	if (pause < min_pause) {
		if (pause < -hz) {
			a->paused_when = a->clk;
			a->nr_dirtied = 0;
		} else if (period) {
			a->paused_when = sadd(a->paused_when, smul(period, jiffy));
			a->nr_dirtied = 0;
		} else if (a->dirtied_pause <= a->nr_dirtied) {
			a->dirtied_pause += a->nr_dirtied;
		}
		return 1;
	}
	if (pause > max_pause) {	/* for a briefly low ratelimit: the rest stays as debt */
		ahead = min64(pause - max_pause, max_pause);
		pause = max_pause;
	}
	a->nr_dirtied = 0;
	a->paused_when = sadd(a->clk, (ahead + pause) * jiffy);
	lat_add(s, FWB_L_THROTTLE, pause * jiffy);
	a->bal_state = BAL_PAUSE;
	sleep_until(s, a, sadd(a->clk, pause * jiffy));
	return 0;
}

/* balance_dirty_pages with BDI_CAP_STRICTLIMIT; 0 if the task sleeps. */
static int balance(sim *s, actor *a)
{
	const fwb_config *c = s->cfg;
	int64_t dirty = s->dirty_total + wb_pages(s);
	int64_t limit = dirty_limit(s);
	int64_t freerun = (limit + bg_thresh(s)) / 2;
	/* Background writeback starts once the bdi passes its freerun ceiling (or the
	 * global dirty count its background threshold), not at its background threshold;
	 * with bg_start (0437906841d0, 2026) at its own background threshold. */
	if (dirty > (c->bg_start ? bg_thresh(s) : freerun) ||
	    s->dirty_total > global_bg_thresh(s))
		kick_flusher(s);
	if (dirty <= freerun) {
		a->nr_dirtied = 0;
		a->paused_when = a->clk;
		/* dirty_poll_interval: look again after about sqrt(limit - dirty) pages */
		a->dirtied_pause = limit > dirty ? (int64_t)1 << (ilog2_64(limit - dirty) >> 1) : 1;
		return 1;
	}
	if (dirty < limit) {
		/* wb_position_ratio for strictlimit: a cubic from 1 at the setpoint (freerun)
		 * to 0 at the limit; the task may dirty at ratelimit * pos_ratio. */
		int64_t x = ((dirty - freerun) << RATELIMIT_SHIFT) / ((limit - freerun) | 1);
		int64_t pos = ((int64_t)1 << RATELIMIT_SHIFT) -
			      (((x * x) >> RATELIMIT_SHIFT) * x >> RATELIMIT_SHIFT);
		int64_t rate = c->dirty_ratelimit_pps * pos >> RATELIMIT_SHIFT;
		if (rate > 0)
			return pause_task(s, a, dirty, rate);
	}
	a->bal_state = BAL_LIMIT;	/* at the limit: sleep until completions bring it under */
	block(s, a, W_THROTTLE, 0);
	return 0;
}

/* balance_dirty_pages_ratelimited after a page was dirtied: every dirtied_pause newly
 * dirtied pages the task looks at the limits; 0 if it sleeps. */
static int throttle(sim *s, actor *a)
{
	return a->nr_dirtied < a->dirtied_pause ? 1 : balance(s, a);
}

/* At the top of a call's page loop: finish what a dirty-throttle sleep interrupted. */
static int resume_throttle(sim *s, actor *a)
{
	int state = a->bal_state;
	a->bal_state = BAL_NONE;
	return state == BAL_LIMIT ? balance(s, a) : 1;
}

/* ------------------------------------------------------------ the calls */

static void op_pages(const fwb_op *op, int64_t *first, int64_t *last)
{
	/* offset >= 0 and length >= 1 (ops_ok): unsigned division, a shift */
	*first = (int64_t)((uint64_t)op->offset / FWB_PAGE);
	*last = (int64_t)((uint64_t)(op->offset + op->length - 1) / FWB_PAGE);
}

static int do_write(sim *s, actor *a, const fwb_op *op)
{
	const fwb_config *c = s->cfg;
	int32_t f = op->file;
	int64_t off = op->offset, ln = op->length, first, last;
	op_pages(op, &first, &last);
	if (a->phase == PH_START) {
		work(s, a, c->write_syscall_ns);
		a->pg = first;
		a->pg0 = op_base(s, op);
		a->phase = PH_PAGES;
	}
	if (!resume_throttle(s, a))
		return 0;
	while (a->pg <= last) {
		int64_t idx = a->pg, ps = idx * FWB_PAGE, p = a->pg0 + idx, end;
		int whole = off <= ps && off + ln >= ps + FWB_PAGE;
		int need_read = !whole && ps < s->isize[f];
		int64_t want = 0;
		if (s->large) {	/* iomap_write_iter: the rest of the write, within a folio */
			int64_t pos = max64(off, ps), chunk = s->max_folio * FWB_PAGE;
			want = min64(off + ln - pos, chunk - pos % chunk);
		}
		if (!page_ready(s, a, f, idx, p, need_read, want))
			return 0;
		if (s->write_lookup && s->f_inflight[f])
			work(s, a, c->wb_lookup_ns);	/* fuse_write_begin looks the page up */
		if (s->writer_waits && busy(s, p)) {	/* fuse_wait_on_page_writeback */
			wait_page(s, a, p);
			return 0;
		}
		s->pg[p].version++;
		s->pg[p].flags |= PF_STALE;
		a->nr_dirtied += set_dirty(s, p, f);
		end = min64(off + ln, ps + FWB_PAGE);	/* fuse_write_end: i_size page by page */
		if (end > s->isize[f])
			s->isize[f] = end;
		work(s, a, c->write_page_ns);
		a->pg++;
		if (!throttle(s, a))
			return 0;
	}
	s->c[FWB_C_BYTES_DIRTIED] = sadd(s->c[FWB_C_BYTES_DIRTIED], ln);
	lat_add(s, FWB_L_WRITE, ssub(a->clk, a->op_start));
	return 1;
}

static int do_mmap_store(sim *s, actor *a, const fwb_op *op)
{
	const fwb_config *c = s->cfg;
	int32_t f = op->file;
	int64_t first, last;
	op_pages(op, &first, &last);
	if (a->phase == PH_START) {
		a->pg = first;
		a->pg0 = op_base(s, op);
		a->phase = PH_PAGES;
	}
	if (!resume_throttle(s, a))
		return 0;
	while (a->pg <= last) {
		int64_t idx = a->pg, p = a->pg0 + idx;
		uint8_t fl = s->pg[p].flags;
		if (!((fl & PF_CACHED) && (fl & PF_MAPW) && !(fl & PF_LOCKED))) {
			if (a->fault_start < 0) {	/* a write fault */
				a->fault_start = a->clk;
				work(s, a, c->fault_ns);
			}
			if (!page_ready(s, a, f, idx, p, idx * FWB_PAGE < s->isize[f], 0))
				return 0;
			if (s->temp && s->f_inflight[f])	/* fuse_page_mkwrite looks it up */
				work(s, a, c->wb_lookup_ns);
			if (busy(s, p)) {	/* page_mkwrite waits for writeback */
				wait_page(s, a, p);
				return 0;
			}
			s->pg[p].flags |= PF_MAPW;
			a->nr_dirtied += set_dirty(s, p, f);
			lat_add(s, FWB_L_FAULT, ssub(a->clk, a->fault_start));
			a->fault_start = -1;
		}
		s->pg[p].version++;
		s->pg[p].flags |= PF_STALE;
		set_dirty(s, p, f);
		work(s, a, c->store_page_ns);
		a->pg++;
		if (!throttle(s, a))	/* fault_dirty_shared_page */
			return 0;
	}
	s->c[FWB_C_BYTES_DIRTIED] = sadd(s->c[FWB_C_BYTES_DIRTIED], op->length);
	return 1;
}

/* O_DIRECT read into a mapped buffer: dirtied at submit and at completion, with no
 * page_mkwrite and no wait (bio_set_pages_dirty, bio_check_pages_dirty). */
static int do_dio_read(sim *s, actor *a, const fwb_op *op)
{
	const fwb_config *c = s->cfg;
	int32_t f = op->file;
	int64_t first, last, idx;
	op_pages(op, &first, &last);
	if (a->phase == PH_START) {
		a->pg = first;
		a->pg0 = op_base(s, op);
		a->phase = PH_PAGES;
	}
	if (a->phase == PH_PAGES) {
		while (a->pg <= last) {		/* get_user_pages, then submit */
			int64_t p;
			idx = a->pg;
			p = a->pg0 + idx;
			if (!page_ready(s, a, f, idx, p, idx * FWB_PAGE < s->isize[f], 0))
				return 0;
			s->pg[p].gup++;
			set_dirty(s, p, f);
			a->pg++;
		}
		a->phase = PH_DIODONE;
		sleep_until(s, a, sadd(sadd(a->clk, c->dio_base_ns),
				       smul(c->dio_page_ns, last - first + 1)));
		return 0;
	}
	for (idx = first; idx <= last; idx++) {	/* completion: the data lands */
		int64_t p = a->pg0 + idx;
		s->pg[p].version++;
		s->pg[p].flags |= PF_STALE;
		set_dirty(s, p, f);
		s->pg[p].gup--;
	}
	s->c[FWB_C_BYTES_DIRTIED] = sadd(s->c[FWB_C_BYTES_DIRTIED], op->length);
	return 1;
}

/* fsync / msync: WB_SYNC_ALL writepages over slots [first, end), fuse_sync_writes, then
 * FUSE_FSYNC. */
static int do_fsync(sim *s, actor *a, const fwb_op *op, int64_t first, int64_t end)
{
	int32_t f = op->file;
	if (a->phase == PH_START) {
		work(s, a, s->cfg->fsync_syscall_ns);
		wp_start(a, f, first, end, 1, 0);
		a->phase = PH_WP;
	}
	if (a->phase == PH_WP) {
		if (!writepages(s, a))
			return 0;
		a->phase = PH_WAITIO;
	}
	if (a->phase == PH_WAITIO) {
		if (s->f_inflight[f]) {
			block(s, a, W_FILE, f);
			return 0;
		}
		a->req = new_req(s, RQ_FSYNC, f, 0);
		to_pending(s, a->req);
		a->phase = PH_FSYNCWAIT;
	}
	if (!s->rq[a->req].done) {
		block(s, a, W_REQ, a->req);
		return 0;
	}
	free_req(s, a->req);
	a->req = 0;
	lat_add(s, FWB_L_FSYNC, ssub(a->clk, a->op_start));
	return 1;
}

/* sync(2).  With sync_waits=0 (2026 kernels) it only wakes the flusher for FUSE;
 * with sync_waits=1, WB_SYNC_ALL writepages on every file, then wait. */
static int do_sync(sim *s, actor *a)
{
	const fwb_config *c = s->cfg;
	if (a->phase == PH_START) {
		work(s, a, c->fsync_syscall_ns);
		a->sync_f = 0;
		a->phase = PH_WP;
		if (!c->sync_waits) {
			s->flusher->fl_sync = 1;
			kick_flusher(s);
			lat_add(s, FWB_L_SYNC, ssub(a->clk, a->op_start));
			return 1;
		}
	}
	if (a->phase == PH_WP) {
		while (a->sync_f < s->nfiles) {
			if (!a->wp_active)
				wp_start(a, a->sync_f, 0, s->npages[a->sync_f], 1, 0);
			if (!writepages(s, a))
				return 0;
			a->sync_f++;
		}
		a->phase = PH_WAITIO;
	}
	if (s->pinned) {	/* wait_sb_inodes: pages still under PG_writeback */
		block(s, a, W_ALL, 0);
		return 0;
	}
	lat_add(s, FWB_L_SYNC, ssub(a->clk, a->op_start));
	return 1;
}

static int do_memory(sim *s, actor *a, const fwb_op *op)
{
	const fwb_config *c = s->cfg;
	int64_t n = op->length / FWB_PAGE + (op->length % FWB_PAGE != 0);
	if (op->op == FWB_OP_ALLOC) {
		if (!reserve(s, a, n))
			return 0;
		s->anon_pages = sadd(s->anon_pages, n);
	} else if (op->op == FWB_OP_FREE) {
		s->anon_pages -= min64(n, s->anon_pages);
	} else {
		/* n * x // total without overflow: x = temp + pinned, n = q * total + r;
		 * temp < total <= 2**31 and pinned < 2**31, so r * x < 2**63.  Capped at n:
		 * the cache can outgrow memory when reclaim gives up. */
		int64_t x = s->temp_pages + s->pinned, m = c->mem_total_pages;
		int64_t unmovable = min64(n, sadd(smul(n / m, x), (n % m) * x / m)), stall;
		int64_t *cu = &s->c[FWB_C_COMPACTION_UNMOVABLE];
		*cu = sadd(*cu, unmovable);
		stall = a->clk;
		work(s, a, smul(ssub(n, unmovable), c->compact_page_ns));
		lat_add(s, FWB_L_COMPACTION, ssub(a->clk, stall));
	}
	return 1;
}

static int run_op(sim *s, actor *a)
{
	const fwb_op *op = a->ops[a->k];
	int64_t first, last;
	if (op->op == FWB_OP_WRITE)	/* the common row: one compare, not the jump table */
		return do_write(s, a, op);
	switch (op->op) {
	case FWB_OP_MMAP_STORE:
		return do_mmap_store(s, a, op);
	case FWB_OP_DIO_READ:
		return do_dio_read(s, a, op);
	case FWB_OP_FSYNC:
		return do_fsync(s, a, op, 0, s->npages[op->file]);
	case FWB_OP_MSYNC:
		op_pages(op, &first, &last);
		return do_fsync(s, a, op, slot_of(s, op->file, first), slot_of(s, op->file, last + 1));
	case FWB_OP_SYNC:
		return do_sync(s, a);
	default:
		return do_memory(s, a, op);
	}
}

/* ------------------------------------------------------------ actors */

static int chunk_ok(const sim *s, const actor *a, int64_t n);

/* A stream's thread that has run its rows: its next chunk into a->ops, a->k = 0.
 * Returns the rows (0: none left, and always for an array).  A failed fill or a bad
 * chunk ends the run (longjmp, as out of memory does). */
static int64_t refill(sim *s, actor *a)
{
	const fwb_stream *st = s->st;
	int64_t n;
	if (!st)
		return 0;
	n = st->fill(st->ctx, a->id, s->srows + (int64_t)a->id * st->chunk, st->chunk);
	if (n < 0 || n > st->chunk || n > MAX_OPS - s->streamed || !chunk_ok(s, a, n)) {
		s->err = n < 0 ? FWB_EFILL : FWB_EINVAL;
		longjmp(s->oom, 1);
	}
	s->streamed += n;
	a->nops = n;
	a->k = 0;
	if (n)
		a->last_t = a->ops[n - 1]->time;
	return n;
}

static void step_thread(sim *s, actor *a)
{
	for (;;) {
		int64_t t;
		if (a->phase == PH_START)
			a->op_start = a->clk;
		if (!run_op(s, a)) {
			if (!a->failed)
				return;
			drop_call(s, a);	/* the call returned its error: the next one */
		}
		a->phase = PH_START;
		a->k++;
		/* Fetch the page a later call will touch first: on a big file a page's
		 * first touch is a cache miss, the largest single cost of a random-write
		 * run.  (Written here, not in a helper: GCC deletes calls to a function
		 * whose only effect is a prefetch.) */
		if (a->k + PREFETCH_AHEAD < a->nops) {
			const fwb_op *nx = a->ops[a->k + PREFETCH_AHEAD];
			if (nx->op <= FWB_OP_DIO_READ) {
				/* offset >= 0 (ops_ok, chunk_ok): unsigned division, a shift */
				int64_t q = op_base(s, nx) + (int64_t)((uint64_t)nx->offset / FWB_PAGE);
				PREFETCH(&s->pg[q]);
				if (s->lk)
					PREFETCH(&s->lk[q]);
			}
		}
		if (a->k == a->nops && !refill(s, a)) {
			a->finished = 1;
			s->alive--;
			s->c[FWB_C_T_APP_END] = max64(s->c[FWB_C_T_APP_END], a->clk);
			return;
		}
		t = max64(a->clk, a->ops[a->k]->time);
		if (t > s->now && !go_on(s, t)) {
			a->wake_pending = 1;
			push(s, t, EV_ACTOR, a->id);
			return;
		}
		a->clk = t;
	}
}

static void step_flusher(sim *s, actor *a)
{
	const fwb_config *c = s->cfg;
	if (!a->fl_pass) {
		if (!(a->fl_due || a->fl_sync || s->dirty_total > bg_thresh(s)))
			return;
		a->fl_pass = 1;
		a->fl_file = 0;
		a->fl_kupdate = a->fl_due;
		a->fl_all = a->fl_sync;
		a->fl_due = a->fl_sync = 0;
		a->wp_sent = 0;
	}
	while (a->fl_file < s->nfiles) {
		int32_t f = a->fl_file;
		if (!a->wp_active) {
			if (!s->f_ndirty[f]) {
				a->fl_file++;
				continue;
			}
			if (a->fl_all || (a->fl_kupdate &&
					  sadd(s->f_dirtied_when[f], c->dirty_expire_ns) <= s->now))
				wp_start(a, f, 0, s->npages[f], 0, 0);
			else if (s->dirty_total > bg_thresh(s))
				wp_start(a, f, 0, s->npages[f], 0, 1);
			else {
				a->fl_file++;
				continue;
			}
		}
		if (!writepages(s, a))
			return;
		a->fl_file++;
	}
	a->fl_pass = 0;
	if (a->fl_due || a->fl_sync || (a->wp_sent && s->dirty_total > bg_thresh(s))) {
		a->wake_pending = 1;
		push(s, max64(a->clk, s->now), EV_ACTOR, a->id);
	}
}

static void run_actor(sim *s, int32_t aid)
{
	actor *a = &s->actors[aid];
	a->wake_pending = 0;
	if (a->waiting) {
		if (!cond(s, a))
			return;
		end_wait(s, a);
		if (a->wait_kind != W_TIMER && s->cfg->wakeup_ns && a->clk > s->now) {
			a->wake_pending = 1;	/* it goes on (and sends what it sends) once awake */
			push(s, a->clk, EV_ACTOR, a->id);
			return;
		}
	}
	a->clk = max64(a->clk, s->now);
	if (a->is_flusher)
		step_flusher(s, a);
	else if (!a->finished)
		step_thread(s, a);
}

/* ------------------------------------------------------------ loop */

static void take_samples(sim *s, int64_t t)
{
	const fwb_config *c = s->cfg;
	while (s->next_sample <= t && s->series.n / 6 < c->max_samples) {
		vec_push(s, &s->series, s->next_sample);
		vec_push(s, &s->series, s->dirty_total);
		vec_push(s, &s->series, wb_pages(s));
		vec_push(s, &s->series, s->temp_pages);
		vec_push(s, &s->series, s->cache_pages);
		vec_push(s, &s->series, s->anon_pages);
		s->next_sample = sadd(s->next_sample, c->sample_interval_ns);
	}
}

/* fwb_event_log: entry i of x := v, growing x with zeros. */
static void vec_set(sim *s, vec *x, int64_t i, int64_t v)
{
	while (x->n <= i)
		vec_push(s, x, 0);
	x->v[i] = v;
}

static void log_event(sim *s, const ev *e)
{
	vec_set(s, &s->log_t, e->seq, e->t);
	vec_set(s, &s->log_ka, e->seq, ((int64_t)e->kind << 32) | (uint32_t)e->arg);
}

static void log_pop(sim *s, const ev *e)
{
	log_event(s, e);
	vec_push(s, &s->log_pop_seq, e->seq);
	vec_push(s, &s->log_pop_pushed, s->seq);
}

/* Whether the pending CPU grant comes before every queued event. */
static int grant_first(const sim *s)
{
	const ev *e = s->has_first ? &s->first : s->nev ? &s->heap[0] : NULL;
	return !e || s->cpu_ev < e->t || (s->cpu_ev == e->t && s->cpu_seq <= e->seq);
}

/* When the next event is a reply, fetch now what it will touch, so that the misses
 * overlap this event's work: the request, its first page's state, and the first page of
 * the request the reply lets out of the background queue (fifo_popleft fetched that
 * request at the previous pop).  Right after pop(): the slot is empty then, so the next
 * event is the heap's top.  A macro: GCC deletes calls to a function whose only effect
 * is a prefetch. */
#define prefetch_next(s) do {								\
	const ev *nx_ = &(s)->heap[0];							\
	if ((s)->nev && nx_->kind == EV_DONE) {						\
		int64_t q_ = (s)->thr_pg[nx_->arg];					\
		int32_t b_ = (s)->bg_queue.head;					\
		PREFETCH(&(s)->rq[(s)->thr[nx_->arg]]);					\
		PREFETCH(&(s)->pg[q_]);							\
		if ((s)->lk)								\
			PREFETCH(&(s)->lk[q_]);						\
		if (b_)									\
			PREFETCH(&(s)->pg[(s)->base[(s)->rq[b_].file] + (s)->rq[b_].first]); \
	}										\
} while (0)

static void run(sim *s)
{
	const fwb_config *c = s->cfg;
	int64_t t0 = INT64_MAX, i;
	int32_t j;
	for (j = 0; j < s->nact; j++)
		if (s->actors[j].nops)
			t0 = min64(t0, s->actors[j].ops[0]->time);
	s->c[FWB_C_T_FIRST] = s->c[FWB_C_T_APP_END] = s->c[FWB_C_T_WB_END] = t0;
	s->now = s->temp_t = s->next_sample = t0;
	s->reply_keep = (uint8_t)~(PF_STALE | (s->iomap || !s->temp ? PF_PGWB : 0));
	for (j = 0; j < s->nact; j++) {
		actor *a = &s->actors[j];
		if (a->nops) {
			a->clk = a->paused_when = a->ops[0]->time;
			a->wake_pending = 1;
			push(s, a->clk, EV_ACTOR, a->id);
		}
	}
	push(s, sadd(t0, c->dirty_writeback_interval_ns), EV_TIMER, 0);
	for (i = 0; i < c->n_stall; i++)
		push(s, c->stall_end[i], EV_STALL, 0);
	if (c->request_timeout_ns)	/* set_request_timeout at FUSE_INIT: first check in 15 s */
		push(s, sadd(t0, TIMEOUT_PERIOD_NS), EV_TIMEOUT, 0);
	for (;;) {
		ev e;
		if (s->cpu_ev >= 0 && grant_first(s)) {	/* run_cpu_queue, not queued */
			if (s->cpu_ev > c->max_time_ns) {
				s->c[FWB_C_STUCK] = 1;
				break;
			}
			sample(s, s->cpu_ev);
			s->now = s->cpu_ev;
			run_cpu_queue(s);
			continue;
		}
		if (!(s->has_first || s->nev))
			break;
		e = pop(s);
		prefetch_next(s);
		if (s->evlog)
			log_pop(s, &e);
		if (e.kind == EV_TIMER && !s->alive)
			continue;	/* the flusher's tick after the last thread ended */
		if (e.kind == EV_TIMEOUT && !s->alive && !requests_out(s))
			continue;	/* nothing left to time out: the run is over */
		if (e.t > c->max_time_ns) {
			s->c[FWB_C_STUCK] = 1;
			break;
		}
		sample(s, e.t);
		s->now = e.t;
		s->c[FWB_C_EVENTS]++;
		if (e.kind == EV_ACTOR) {
			run_actor(s, e.arg);
		} else if (e.kind == EV_DONE) {
			int32_t r = s->thr[e.arg];
			s->thr[e.arg] = 0;
			s->nidle++;
			s->idle[e.arg >> 6] |= (uint64_t)1 << (e.arg & 63);
			s->in_done = 1;	/* requests read now are read without sleeping */
			if (!s->aborted)	/* else its reply is dropped: it ended already */
				complete(s, r);
			dispatch(s);
			s->in_done = 0;
			wake_waiters(s);
			if (s->dirty_total > bg_thresh(s))
				kick_flusher(s);
		} else if (e.kind == EV_TIMER) {
			s->flusher->fl_due = 1;
			kick_flusher(s);
			if (s->alive)
				push(s, sadd(e.t, c->dirty_writeback_interval_ns), EV_TIMER, 0);
		} else if (e.kind == EV_STALL) {
			dispatch(s);
		} else {
			check_timeout(s);
		}
	}
}

/* Pages whose newest version the server never had and that are not dirty any more.
 * Only a page set_dirty saw can be stale (each version++ comes with a set_dirty, and
 * complete() makes a page stale only when its version moved on), so unless the list
 * overflowed only the listed pages are looked at.  A page is listed once per time it
 * was dirtied: a counted one is marked dirty so that it is counted once (the pages are
 * freed right after). */
static int64_t lost_updates(sim *s)
{
	int64_t i, n = 0;
	if (s->dirtied_all) {
		for (i = 0; i < s->n; i++)
			n += (s->pg[i].flags & (PF_STALE | PF_DIRTY)) == PF_STALE;
		return n;
	}
	for (i = 0; i < s->dirtied.n; i++) {
		page *g = &s->pg[s->dirtied.v[i]];
		if ((g->flags & (PF_STALE | PF_DIRTY)) == PF_STALE) {
			n++;
			g->flags |= PF_DIRTY;
		}
	}
	return n;
}

/* End-of-run accounting; moves the sample arrays into out. */
static void finish(sim *s, fwb_result *out)
{
	int64_t *c = s->c;
	int32_t i;
	temp_add(s, 0);
	c[FWB_C_T_END] = s->now;
	for (i = 0; i < s->nact; i++) {		/* still blocked: on a server that never answered */
		const actor *a = &s->actors[i];
		if (a->waiting && a->wait_kind != W_TIMER) {
			c[FWB_C_HANGS]++;
			if (a->wait_reclaim)
				c[FWB_C_DEADLOCKS]++;
		}
		if (!a->finished && !a->is_flusher)
			c[FWB_C_STUCK] = 1;
	}
	c[FWB_C_LOST_UPDATES] = lost_updates(s);
	memcpy(out->counters, c, sizeof out->counters);
	out->pages_per_request = s->hist;
	out->pages_per_request_n = s->cfg->max_pages + 1;
	s->hist = NULL;
	for (i = 0; i < FWB_N_LATENCIES; i++) {
		out->latency[i] = s->lat[i].v;
		out->latency_n[i] = s->lat[i].n;
		out->latency_hist[i] = s->lhist[i];
		out->latency_max[i] = s->lmax[i];
		s->lat[i].v = NULL;
		s->lhist[i] = NULL;
	}
	out->series = s->series.v;
	out->series_n = s->series.n / 6;
	s->series.v = NULL;
}

/* ------------------------------------------------------------ set-up */

static int in_range(int64_t v, int64_t lo, int64_t hi)
{
	return lo <= v && v <= hi;
}

/* Bounds that keep every product in int64 (bench.params.resolve is stricter). */
static int config_ok(const fwb_config *c)
{
	const int64_t NS = (int64_t)1 << 62, COST = (int64_t)1 << 34;
	int64_t i;
	if (!(in_range(c->strategy, 0, 6) && in_range(c->writer_waits, 0, 1) &&
	      in_range(c->merge_queued_primary, 0, 1) && in_range(c->max_pages, 1, FUSE_MAX_PAGES_LIMIT) &&
	      in_range(c->max_write, 0, (int64_t)1 << 30) &&
	      in_range(c->request_timeout_ns, 0, (int64_t)65535 * 1000000000) &&
	      in_range(c->wb_thresh_floor, 0, 2) && in_range(c->bdi_writeout_ppm, 0, 1000000) &&
	      in_range(c->max_background, 0, INT32_MAX) &&
	      in_range(c->mem_total_pages, 1, (int64_t)1 << 31) &&
	      in_range(c->dirty_ratio, 0, 100) && in_range(c->dirty_background_ratio, 0, 100) &&
	      in_range(c->bdi_max_ratio, 0, 100) &&
	      in_range(c->wmark_min_pages, 0, (int64_t)1 << 40) &&
	      in_range(c->wmark_low_pages, 0, (int64_t)1 << 40) &&
	      in_range(c->wmark_high_pages, 0, (int64_t)1 << 40) &&
	      in_range(c->dirty_writeback_interval_ns, 1, NS) &&
	      in_range(c->dirty_expire_ns, 0, NS) && in_range(c->reclaim_batch, 0, (int64_t)1 << 40) &&
	      in_range(c->reclaim_retry_ns, 0, NS) && in_range(c->reclaim_retries, 0, NS) &&
	      in_range(c->dirty_ratelimit_pps, 1, (int64_t)1 << 30) &&
	      in_range(c->max_pause_ns, 0, NS) && in_range(c->hz, 100, 1000) && in_range(c->wb_chunk_pages, 1, (int64_t)1 << 40) && in_range(c->bg_start, 0, 1) &&
	      in_range(c->cpus, 0, 256) && in_range(c->cache_add_ns, 0, COST) &&
	      in_range(c->wakeup_ns, 0, COST) && in_range(c->server_wakeup_ns, 0, COST) &&
	      in_range(c->server_new_page_ns, 0, COST) && in_range(c->server_cpu_pct, 0, 100) &&
	      in_range(c->server_cpus, 0, 256) &&
	      in_range(c->sync_waits, 0, 1) && in_range(c->hang_threshold_ns, 0, NS) &&
	      in_range(c->sample_interval_ns, 1, NS) && in_range(c->max_samples, 0, (int64_t)1 << 40) &&
	      in_range(c->max_time_ns, 0, NS) && in_range(c->write_syscall_ns, 0, COST) &&
	      in_range(c->write_page_ns, 0, COST) && in_range(c->store_page_ns, 0, COST) &&
	      in_range(c->fault_ns, 0, COST) && in_range(c->page_copy_ns, 0, COST) &&
	      in_range(c->wp_page_ns, 0, COST) && in_range(c->wp_request_ns, 0, COST) &&
	      in_range(c->temp_alloc_ns, 0, COST) && in_range(c->temp_free_ns, 0, COST) &&
	      in_range(c->wb_lookup_ns, 0, COST) && in_range(c->wb_tree_ns, 0, COST) &&
	      in_range(c->end_writeback_ns, 0, COST) &&
	      in_range(c->fsync_syscall_ns, 0, COST) && in_range(c->dio_base_ns, 0, COST) &&
	      in_range(c->dio_page_ns, 0, COST) && in_range(c->reclaim_scan_ns, 0, COST) &&
	      in_range(c->compact_page_ns, 0, COST) && in_range(c->server_threads, 1, MAX_SERVER_THREADS) &&
	      in_range(c->server_dist, 0, 2) && in_range(c->server_base_ns, 0, (int64_t)1 << 40) &&
	      in_range(c->server_page_ns, 0, COST) && in_range(c->server_fsync_ns, 0, (int64_t)1 << 40) &&
	      c->server_sigma >= 0.0 && c->server_sigma <= 4.0 && in_range(c->n_stall, 0, 16)))
		return 0;
	for (i = 0; i < c->n_stall; i++)
		if (c->stall_start[i] < 0 || c->stall_end[i] < c->stall_start[i])
			return 0;
	return 1;
}

static int is_range_op(int32_t code)
{
	return code == FWB_OP_WRITE || code == FWB_OP_MMAP_STORE || code == FWB_OP_DIO_READ ||
	       code == FWB_OP_MSYNC;
}

/* One row's fields, as bench.ops.validate_ops checks them. */
HOT_INLINE int row_ok(const fwb_op *op, int32_t n_files)
{
	if (op->time < 0 || !in_range(op->thread, 0, MAX_THREADS - 1) ||
	    !in_range(op->op, 0, FWB_N_OPS - 1))
		return 0;
	if ((is_range_op(op->op) || op->op == FWB_OP_FSYNC) && !in_range(op->file, 0, n_files - 1))
		return 0;
	if (is_range_op(op->op) && !(in_range(op->offset, 0, MAX_FILE_BYTES) &&
				     in_range(op->length, 1, MAX_FILE_BYTES - op->offset)))
		return 0;
	return !(op->op >= FWB_OP_ALLOC && op->length <= 0);
}

/* ops_ok but for the rows: the arrays, their sizes and the files' initial sizes. */
static int ops_head_ok(const fwb_op *ops, int64_t n_ops, const int64_t *sizes, int32_t n_files)
{
	int32_t f;
	if (!ops || !sizes || n_ops <= 0 || n_ops > MAX_OPS || n_files <= 0)
		return 0;
	for (f = 0; f < n_files; f++)
		if (!in_range(sizes[f], 0, MAX_FILE_BYTES))
			return 0;
	return 1;
}

/* bench.ops.validate_ops, minus the time order (the engine does not need it).  A run
 * checks the rows in its set-up's pass over them instead (scan_rows). */
static int ops_ok(const fwb_op *ops, int64_t n_ops, const int64_t *sizes, int32_t n_files)
{
	int64_t i;
	if (!ops_head_ok(ops, n_ops, sizes, n_files))
		return 0;
	for (i = 0; i < n_ops; i++)
		if (!row_ok(&ops[i], n_files))
			return 0;
	return 1;
}

/* A chunk of n rows just filled for stream thread a: what ops_ok checks of an array,
 * and that the rows are a's, in time order after its earlier ones, and inside the
 * declared page capacity of their file. */
static int chunk_ok(const sim *s, const actor *a, int64_t n)
{
	int64_t i, last = a->last_t;
	for (i = 0; i < n; i++) {
		const fwb_op *op = a->ops[i];
		if (op->thread != a->id || op->time < last || !row_ok(op, s->nfiles))
			return 0;
		if (is_range_op(op->op) &&
		    (op->offset + op->length + FWB_PAGE - 1) / FWB_PAGE > s->npages[op->file])
			return 0;
		last = op->time;
	}
	return 1;
}

/* fwb_run_stream's input, but for the chunks (chunk_ok). */
static int stream_ok(const fwb_stream *st)
{
	int32_t f;
	if (!st || !in_range(st->threads, 1, MAX_THREADS) || st->n_files <= 0 || !st->file_sizes ||
	    !st->file_pages || !in_range(st->chunk, 1, (int64_t)1 << 20) || !st->fill ||
	    !in_range(st->latency_exact, 0, FWB_LAT_EXACT))
		return 0;
	for (f = 0; f < st->n_files; f++)
		if (!in_range(st->file_sizes[f], 0, MAX_FILE_BYTES) ||
		    !in_range(st->file_pages[f], (st->file_sizes[f] + FWB_PAGE - 1) / FWB_PAGE,
			      MAX_FILE_BYTES / FWB_PAGE))
			return 0;
	return 1;
}

/* Each file's pages before its ops: its initial size (capacity's and scan_rows' start). */
static void initial_caps(const int64_t *sizes, int32_t n_files, int64_t *cap)
{
	int32_t f;
	for (f = 0; f < n_files; f++)
		cap[f] = (sizes[f] + FWB_PAGE - 1) / FWB_PAGE;
}

/* A range op's last page into its file's capacity. */
HOT_INLINE void widen_cap(const fwb_op *op, int64_t *cap)
{
	if (is_range_op(op->op)) {	/* offset + length >= 1: unsigned division */
		int64_t e = (int64_t)((uint64_t)(op->offset + op->length + FWB_PAGE - 1) /
				      FWB_PAGE);
		if (e > cap[op->file])
			cap[op->file] = e;
	}
}

static int64_t caps_total(const int64_t *cap, int32_t n_files)
{
	int64_t total = 0;
	int32_t f;
	for (f = 0; f < n_files; f++)
		total += cap[f];
	return total;
}

/* Page capacity of each file: its initial size and every byte an op touches. */
static int64_t capacity(const fwb_op *ops, int64_t n_ops, const int64_t *sizes, int32_t n_files,
			int64_t *cap)
{
	int64_t i;
	initial_caps(sizes, n_files, cap);
	for (i = 0; i < n_ops; i++)
		widen_cap(&ops[i], cap);
	return caps_total(cap, n_files);
}

/* What the set-up needs of an array's rows, in one pass: each thread's rows (count, and
 * threads: 1 + the highest thread), the WRITE rows, and capacity() into cap (its total
 * returned); each row checked first (row_ok: a bad one ends the run, FWB_EINVAL). */
typedef struct rowsum {
	int64_t count[MAX_THREADS], writes;
	int32_t threads;
} rowsum;

static int64_t scan_rows(sim *s, const fwb_op *ops, int64_t n_ops, const int64_t *sizes,
			 int64_t *cap, rowsum *rs)
{
	int64_t i;
	initial_caps(sizes, s->nfiles, cap);
	for (i = 0; i < n_ops; i++) {
		const fwb_op *op = &ops[i];
		if (!row_ok(op, s->nfiles)) {
			s->err = FWB_EINVAL;
			longjmp(s->oom, 1);
		}
		rs->count[op->thread]++;
		if (op->thread >= rs->threads)
			rs->threads = op->thread + 1;
		widen_cap(op, cap);
		rs->writes += op->op == FWB_OP_WRITE;
	}
	return caps_total(cap, s->nfiles);
}

/* Write-fault the per-page arrays where the ops will touch them, when the ops are few
 * against the arrays' size (a few writes over a big file).  The arrays come from calloc,
 * i.e. fresh zero-filled mappings for big ones: the engine's first access to a page's
 * state is a read, which maps the shared zero page, and its first write then copies it,
 * two faults per touched memory page; a write first is one.  Stores of the zero already
 * there, so the state does not change; volatile keeps the compiler from dropping them. */
#define MEM_PAGE 4096
static void prefault(sim *s, const fwb_op *ops, int64_t n_ops)
{
	const int64_t pg_step = MEM_PAGE / (int64_t)sizeof(page);
	const int64_t lk_step = MEM_PAGE / (int64_t)sizeof(lookup);
	const int64_t dmap_step = (MEM_PAGE / (int64_t)sizeof(uint64_t)) * 64;
	int64_t i;
	if (n_ops >= s->n / pg_step)
		return;		/* every memory page of the arrays is likely touched anyway */
	for (i = 0; i < n_ops; i++) {
		int64_t first, last, p, b;
		if (!is_range_op(ops[i].op))
			continue;
		op_pages(&ops[i], &first, &last);
		b = op_base(s, &ops[i]);
		for (p = b + first;; p = min64(p + pg_step, b + last)) {
			*(volatile uint8_t *)&s->pg[p].flags = 0;
			if (s->lk && (p == b + first || (p % lk_step) < pg_step))
				*(volatile int32_t *)&s->lk[p].wb_req = 0;
			if (p == b + first || (p % dmap_step) < pg_step)
				*(volatile uint64_t *)&s->dmap[p >> 6] = 0;
			if (p == b + last)
				break;
		}
	}
}

static void sim_free(sim *s)
{
	int i;
	free(s->thr);
	free(s->cpu_free);
	free(s->srv_until);
	free(s->runq_w);
	free(s->runq_svc);
	free(s->runq_on);
	free(s->npages);
	free(s->fpages);
	fwb_pagespace_free(&s->ps);
	free(s->base);
	free(s->isize);
	free(s->f_ndirty);
	free(s->f_dirtied_when);
	free(s->f_inflight);
	free(s->pg_mem);
	free(s->lk);
	free(s->fo);
	free(s->lru);
	free(s->dmap);
	free(s->dsum);
	free(s->dirtied.v);
	free(s->rq);
	free(s->rver);
	free(s->actors);
	free(s->order);
	free(s->heap);
	for (i = 0; i < FWB_N_LATENCIES; i++) {
		free(s->lat[i].v);
		free(s->lhist[i]);
	}
	free(s->srows);
	free(s->sptr);
	free(s->series.v);
	free(s->hist);
	free(s->log_t.v);
	free(s->log_ka.v);
	free(s->log_pop_seq.v);
	free(s->log_pop_pushed.v);
	free(s);
}

/* The files' pages and their page space: s->n page ids (see pagespace.c). */
static void layout_pages(sim *s, const fwb_op *ops, int64_t n_ops, const int64_t *sizes,
			 const fwb_stream *st, int layout, rowsum *rs)
{
	int32_t f, nf = s->nfiles;
	int64_t n = 0;
	s->npages = xcalloc(s, (size_t)nf, sizeof(int64_t));
	s->fpages = xcalloc(s, (size_t)nf, sizeof(int64_t));
	s->base = xcalloc(s, (size_t)nf, sizeof(int64_t));
	if (st) {	/* declared up front (chunk_ok holds the rows to it); always dense */
		for (f = 0; f < nf; f++)
			n += s->fpages[f] = st->file_pages[f];
	} else {
		n = scan_rows(s, ops, n_ops, sizes, s->fpages, rs);
	}
	if (n > MAX_TOTAL_PAGES)
		longjmp(s->oom, 1);
	n = fwb_pagespace_build(&s->ps, ops, n_ops, nf, s->fpages, layout, s->base, s->npages);
	if (n < 0)
		longjmp(s->oom, 1);
	s->n = n;
}

static void sim_init(sim *s, const fwb_config *cfg, const fwb_op *ops, int64_t n_ops,
		     const int64_t *sizes, int32_t nf, const fwb_stream *st, uint64_t seed,
		     int layout)
{
	int64_t n, i, nw, at[MAX_THREADS];
	int32_t t, nthreads;
	rowsum rs;

	s->cfg = cfg;
	s->strategy = STRATEGIES[cfg->strategy];
	s->temp = s->strategy->temp_pages;
	s->writer_waits = cfg->writer_waits != 0;
	s->write_lookup = s->writer_waits && s->temp;
	s->req_pages = min64(cfg->max_pages, cfg->max_write / FWB_PAGE);
	s->iomap = s->strategy->iomap;
	s->large = s->strategy->large_folios;
	/* fuse_init_file_inode: folio orders 0..ilog2(min(max_write >> PAGE_SHIFT,
	 * max_pages)), capped at MAX_PAGECACHE_ORDER */
	s->max_folio = 1;
	if (s->large && s->req_pages > 0) {
		int o = ilog2_64(s->req_pages);
		s->max_folio = (int64_t)1 << (o < MAX_FOLIO_ORDER ? o : MAX_FOLIO_ORDER);
	}
	s->nthr = s->nidle = (int32_t)cfg->server_threads;
	s->thr = xcalloc(s, (size_t)s->nthr, sizeof *s->thr);
	for (i = 0; i < s->nthr; i++)
		s->idle[i >> 6] |= (uint64_t)1 << (i & 63);
	s->rng = seed * 0x2545F4914F6CDD1DULL + 0x5DEECE66DULL;
	s->ncpu = (int32_t)cfg->cpus;
	s->cpu_free = xcalloc(s, (size_t)s->ncpu + 1, sizeof(int64_t));
	s->srv_until = xcalloc(s, (size_t)s->ncpu + 1, sizeof(int64_t));
	s->srv_cap = (int32_t)(cfg->server_cpus ? cfg->server_cpus : cfg->cpus);
	s->runq_w = xcalloc(s, (size_t)s->nthr, sizeof(int32_t));
	s->runq_svc = xcalloc(s, (size_t)s->nthr, sizeof(int64_t));
	s->runq_on = xcalloc(s, (size_t)s->nthr, sizeof(int64_t));
	s->cpu_ev = -1;

	s->nfiles = nf;
	s->isize = xcalloc(s, (size_t)nf, sizeof(int64_t));
	s->f_ndirty = xcalloc(s, (size_t)nf, sizeof(int64_t));
	s->f_dirtied_when = xcalloc(s, (size_t)nf, sizeof(int64_t));
	s->f_inflight = xcalloc(s, (size_t)nf, sizeof(int64_t));
	memcpy(s->isize, sizes, (size_t)nf * sizeof(int64_t));
	memset(&rs, 0, sizeof rs);
	layout_pages(s, ops, n_ops, sizes, st, layout, &rs);
	n = s->n;

	s->pg_mem = xcalloc(s, (size_t)n + 4, sizeof(page));
	s->pg = (page *)(((uintptr_t)s->pg_mem + 63) & ~(uintptr_t)63);
	if (s->strategy->merges)
		s->lk = xcalloc(s, (size_t)n, sizeof(lookup));
	if (s->iomap)
		s->fo = xcalloc(s, (size_t)n + 1, sizeof(folio));
	s->lru_cap = n ? n : 1;
	s->lru = xmalloc(s, (size_t)s->lru_cap * sizeof(int32_t));
	nw = (n + 63) / 64;
	s->dmap = xcalloc(s, (size_t)nw + 1, sizeof(uint64_t));
	s->dsum = xcalloc(s, (size_t)(nw + 63) / 64 + 1, sizeof(uint64_t));
	/* past n / 4 entries, scanning every page costs about as much; below LIST_MIN_PAGES
	 * pages the scan is cheap and the list not kept */
	s->lat_exact = st && st->latency_exact ? st->latency_exact : FWB_LAT_EXACT;
	s->dirtied_cap = n / 4;
	s->dirtied_all = n < LIST_MIN_PAGES;
	if (!s->dirtied_all) {	/* malloc, not calloc: room never written is not zeroed */
		s->dirtied.cap = s->dirtied_cap;
		s->dirtied.v = xmalloc(s, (size_t)s->dirtied_cap * sizeof(int64_t));
	}
	if (!st)	/* a stream's rows are not known yet */
		prefault(s, ops, n_ops);

	/* a request never holds more than req_pages, nor more pages than there are */
	s->vstride = max64(1, min64(s->req_pages, n));
	s->hist = xcalloc(s, (size_t)cfg->max_pages + 1, sizeof(int64_t));
	s->rq_cap = 256;
	s->rq = xmalloc(s, ((size_t)s->rq_cap + 1) * sizeof(req));
	s->rver = xmalloc(s, ((size_t)s->rq_cap + 1) * (size_t)s->vstride * sizeof(uint32_t));
	memset(s->rq, 0, ((size_t)s->rq_cap + 1) * sizeof(req));
	for (i = s->rq_cap; i >= 1; i--) {
		s->rq[i].next = s->rq_free;
		s->rq_free = (int32_t)i;
	}

	/* actors: each thread's rows in array order (refsim: ops[ops["thread"] == t]) */
	/* an array's rows were counted (scan_rows); a stream has none yet */
	nthreads = rs.threads;
	/* each write(2) gives a latency sample: room for them (up to lat_exact) at once, not
	 * by doubling, which copies them about once more (a stream's are not known) */
	if (!st && rs.writes) {
		vec *x = &s->lat[FWB_L_WRITE];
		x->cap = min64(rs.writes, s->lat_exact);
		x->v = xmalloc(s, (size_t)x->cap * sizeof(int64_t));
	}
	s->order = xmalloc(s, (size_t)n_ops * sizeof(const fwb_op *));
	if (st) {	/* a chunk for each thread, which refill() fills */
		s->st = st;
		nthreads = st->threads;
		s->srows = xmalloc(s, (size_t)(nthreads * st->chunk) * sizeof(fwb_op));
		s->sptr = xmalloc(s, (size_t)(nthreads * st->chunk) * sizeof(const fwb_op *));
		for (i = 0; i < nthreads * st->chunk; i++)
			s->sptr[i] = &s->srows[i];
	}
	for (t = 0, i = 0; t < nthreads; t++) {
		at[t] = i;
		i += rs.count[t];
	}
	s->nact = nthreads + 1;
	s->actors = xcalloc(s, (size_t)s->nact, sizeof(actor));
	for (t = 0; t < s->nact; t++) {
		actor *a = &s->actors[t];
		a->id = t;
		a->is_flusher = t == nthreads;
		a->ops = a->is_flusher ? NULL : st ? s->sptr + t * st->chunk : s->order + at[t];
		a->nops = a->is_flusher ? 0 : rs.count[t];
		if (st && !a->is_flusher)
			refill(s, a);	/* its first chunk, in thread order */
		a->phase = PH_START;
		a->fault_start = -1;
		a->wait_kind = W_NONE;
		a->dirtied_pause = NR_DIRTIED_PAUSE;
		a->cpu = -1;
		a->finished = a->nops == 0;
		if (!a->finished)
			s->alive++;
	}
	for (i = 0; i < n_ops; i++)
		s->order[at[ops[i].thread]++] = &ops[i];
	s->flusher = &s->actors[nthreads];

	s->cap_ev = 64 + 2 * (int64_t)s->nact;
	s->heap = xmalloc(s, (size_t)s->cap_ev * sizeof(ev));
}

/* The events still queued at the end (a stuck run's), then the log into *log. */
static void log_finish(sim *s, fwb_evlog *log)
{
	int64_t i;
	if (s->has_first)
		log_event(s, &s->first);
	for (i = 0; i < s->nev; i++)
		log_event(s, &s->heap[i]);
	/* every event pushed has been popped or is still queued: s->seq entries */
	log->n_push = s->log_t.n;
	log->push_t = s->log_t.v;
	log->push_ka = s->log_ka.v;
	log->n_pop = s->log_pop_seq.n;
	log->pop_seq = s->log_pop_seq.v;
	log->pop_pushed = s->log_pop_pushed.v;
	s->log_t.v = s->log_ka.v = s->log_pop_seq.v = s->log_pop_pushed.v = NULL;
}

static int layout_ok(int32_t layout)
{
	return layout == FWB_LAYOUT_AUTO || layout == FWB_LAYOUT_DENSE || layout == FWB_LAYOUT_COMPACT;
}

/* fwb_run_layout, and with log the event log too. */
static int simulate(const fwb_config *cfg, const fwb_op *ops, int64_t n_ops,
		    const int64_t *file_sizes, int32_t n_files, const fwb_stream *st, uint64_t seed,
		    int32_t layout,
		    fwb_result *out, fwb_evlog *log)
{
	sim *s;
	if (!out)
		return FWB_EINVAL;
	memset(out, 0, sizeof *out);
	if (!cfg || !config_ok(cfg) || !layout_ok(layout) ||
	    !(st ? stream_ok(st) : ops_head_ok(ops, n_ops, file_sizes, n_files)))
		return FWB_EINVAL;	/* an array's rows: checked by sim_init (scan_rows) */
	s = calloc(1, sizeof *s);
	if (!s)
		return FWB_ENOMEM;
	if (setjmp(s->oom)) {	/* s itself is never reassigned: safe to use here */
		int err = s->err ? s->err : FWB_ENOMEM;
		sim_free(s);
		memset(out, 0, sizeof *out);
		return err;
	}
	sim_init(s, cfg, ops, n_ops, st ? st->file_sizes : file_sizes, st ? st->n_files : n_files,
		 st, seed, st ? FWB_LAYOUT_DENSE : layout);
	s->evlog = log != NULL;
	run(s);
	if (log)
		log_finish(s, log);
	finish(s, out);
	sim_free(s);
	return FWB_OK;
}

int fwb_run(const fwb_config *cfg, const fwb_op *ops, int64_t n_ops,
	    const int64_t *file_sizes, int32_t n_files, uint64_t seed, fwb_result *out)
{
	return simulate(cfg, ops, n_ops, file_sizes, n_files, NULL, seed, FWB_LAYOUT_AUTO, out, NULL);
}

int fwb_run_stream(const fwb_config *cfg, const fwb_stream *st, uint64_t seed, fwb_result *out)
{
	return simulate(cfg, NULL, 0, NULL, 0, st, seed, FWB_LAYOUT_DENSE, out, NULL);
}

int fwb_run_layout(const fwb_config *cfg, const fwb_op *ops, int64_t n_ops,
		   const int64_t *file_sizes, int32_t n_files, uint64_t seed, int32_t layout,
		   fwb_result *out)
{
	return simulate(cfg, ops, n_ops, file_sizes, n_files, NULL, seed, layout, out, NULL);
}

int64_t fwb_page_slots(const fwb_config *cfg, const fwb_op *ops, int64_t n_ops,
		       const int64_t *file_sizes, int32_t n_files, int32_t layout)
{
	sim *s;
	int64_t n;
	if (!cfg || !config_ok(cfg) || !ops_ok(ops, n_ops, file_sizes, n_files) || !layout_ok(layout))
		return FWB_EINVAL;
	s = calloc(1, sizeof *s);
	if (!s)
		return FWB_ENOMEM;
	if (setjmp(s->oom)) {
		sim_free(s);
		return FWB_ENOMEM;
	}
	sim_init(s, cfg, ops, n_ops, file_sizes, n_files, NULL, 0, layout);
	n = s->n;
	sim_free(s);
	return n;
}

int fwb_event_log(const fwb_config *cfg, const fwb_op *ops, int64_t n_ops,
		  const int64_t *file_sizes, int32_t n_files, uint64_t seed, fwb_evlog *out)
{
	fwb_result res;
	int rc;
	if (!out)
		return FWB_EINVAL;
	memset(out, 0, sizeof *out);
	rc = simulate(cfg, ops, n_ops, file_sizes, n_files, NULL, seed, FWB_LAYOUT_AUTO, &res, out);
	if (rc == FWB_OK)
		fwb_result_free(&res);
	else
		fwb_evlog_free(out);
	return rc;
}

void fwb_evlog_free(fwb_evlog *log)
{
	if (!log)
		return;
	free(log->push_t);
	free(log->push_ka);
	free(log->pop_seq);
	free(log->pop_pushed);
	memset(log, 0, sizeof *log);
}

/* Push and pop the logged events with push() and pop() alone, in the engine's order;
 * the checksum, or FWB_EINVAL when the log is not an engine's or is not popped as logged. */
static int64_t replay(sim *s, const fwb_evlog *log)
{
	int64_t i, j = 0;
	uint64_t sum = 0;
	for (i = 0; i <= log->n_pop; i++) {
		int64_t upto = i < log->n_pop ? log->pop_pushed[i] : log->n_push;
		ev e;
		if (upto < j || upto > log->n_push)
			return FWB_EINVAL;
		for (; j < upto; j++)
			push(s, log->push_t[j], (int)(log->push_ka[j] >> 32),
			     (int32_t)(log->push_ka[j] & 0x7fffffff));
		if (i == log->n_pop)
			break;
		if (!(s->has_first || s->nev))
			return FWB_EINVAL;
		e = pop(s);
		if (e.seq != log->pop_seq[i])
			return FWB_EINVAL;
		sum += (uint64_t)e.t + (uint64_t)e.arg;
	}
	return (int64_t)(sum >> 1);
}

int64_t fwb_heap_replay(const fwb_evlog *log)
{
	sim *s;
	int64_t r;
	if (!log || log->n_push < 0 || log->n_pop < 0 || log->n_pop > log->n_push ||
	    (log->n_push && (!log->push_t || !log->push_ka)) ||
	    (log->n_pop && (!log->pop_seq || !log->pop_pushed)))
		return FWB_EINVAL;
	s = calloc(1, sizeof *s);
	if (!s)
		return FWB_ENOMEM;
	if (setjmp(s->oom)) {
		free(s->heap);
		free(s);
		return FWB_ENOMEM;
	}
	s->cap_ev = 64;
	s->heap = xmalloc(s, (size_t)s->cap_ev * sizeof(ev));
	r = replay(s, log);
	free(s->heap);
	free(s);
	return r;
}

void fwb_result_free(fwb_result *res)
{
	int i;
	if (!res)
		return;
	for (i = 0; i < FWB_N_LATENCIES; i++) {
		free(res->latency[i]);
		free(res->latency_hist[i]);
		res->latency[i] = NULL;
		res->latency_hist[i] = NULL;
		res->latency_n[i] = res->latency_max[i] = 0;
	}
	free(res->series);
	res->series = NULL;
	res->series_n = 0;
	free(res->pages_per_request);
	res->pages_per_request = NULL;
	res->pages_per_request_n = 0;
}

/* ------------------------------------------------------------ the speed floor */

/* Walk the ops and, for every page a WRITE, MMAP_STORE or DIO_READ touches, set a
 * dirty flag and bump a version: what any engine must at least do.  Returns a
 * checksum so the work cannot be dropped, or a negative fwb_error. */
int64_t fwb_bare_loop(const fwb_op *ops, int64_t n_ops, const int64_t *file_sizes, int32_t n_files)
{
	int64_t *cap, *base, *version, n, i;
	uint64_t sum = 0;
	uint8_t *dirty;
	int32_t f;
	if (!ops_ok(ops, n_ops, file_sizes, n_files))
		return FWB_EINVAL;
	cap = calloc((size_t)n_files, sizeof(int64_t));
	base = calloc((size_t)n_files, sizeof(int64_t));
	if (!cap || !base) {
		free(cap);
		free(base);
		return FWB_ENOMEM;
	}
	n = capacity(ops, n_ops, file_sizes, n_files, cap);
	for (f = 1; f < n_files; f++)
		base[f] = base[f - 1] + cap[f - 1];
	dirty = n <= MAX_TOTAL_PAGES ? calloc((size_t)n + 1, 1) : NULL;
	version = n <= MAX_TOTAL_PAGES ? calloc((size_t)n + 1, sizeof(int64_t)) : NULL;
	if (!dirty || !version) {
		free(cap);
		free(base);
		free(dirty);
		free(version);
		return FWB_ENOMEM;
	}
	for (i = 0; i < n_ops; i++) {
		const fwb_op *op = &ops[i];
		int64_t p, first, last;
		if (op->op != FWB_OP_WRITE && op->op != FWB_OP_MMAP_STORE && op->op != FWB_OP_DIO_READ)
			continue;
		op_pages(op, &first, &last);
		for (p = base[op->file] + first; p <= base[op->file] + last; p++) {
			sum += !dirty[p];
			dirty[p] = 1;
			sum += (uint64_t)++version[p];
		}
	}
	free(cap);
	free(base);
	free(dirty);
	free(version);
	return (int64_t)(sum >> 1);	/* non-negative: negative values are errors */
}
