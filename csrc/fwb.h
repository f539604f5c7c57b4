/*
 * fwb.h - the C engine of fuse-writeback-bench: its only public header.
 *
 * cdef-clean on purpose (no includes, macros or conditionals): bench/sim/_build_sim.py
 * hands this file to cffi as it is.  Fixed-width types only; the caller includes
 * <stdint.h> first.  The engine implements the same model as bench/sim/refsim.py and
 * must return the same numbers for the same inputs.
 */

/* One application call; layout identical to bench.ops.OP_DTYPE (40 bytes). */
typedef struct fwb_op {
	int64_t time;
	int32_t thread;
	int32_t op;
	int32_t file;
	int32_t pad;
	int64_t offset;
	int64_t length;
} fwb_op;

/* A fully resolved configuration (bench.params.resolve); field names match it. */
typedef struct fwb_config {
	int64_t strategy;		/* strategies.<module>.STRATEGY.code */
	int64_t writer_waits;
	int64_t merge_queued_primary;
	int64_t max_pages;
	int64_t max_write;
	int64_t max_background;
	int64_t mem_total_pages;
	int64_t dirty_ratio;
	int64_t dirty_background_ratio;
	int64_t bdi_max_ratio;
	int64_t wmark_min_pages;
	int64_t wmark_low_pages;
	int64_t wmark_high_pages;
	int64_t dirty_writeback_interval_ns;
	int64_t dirty_expire_ns;
	int64_t reclaim_batch;
	int64_t reclaim_retry_ns;
	int64_t reclaim_retries;
	int64_t dirty_ratelimit_pps;
	int64_t max_pause_ns;
	int64_t hz;
	int64_t wb_chunk_pages;
	int64_t bg_start;		/* 0: background writeback above freerun, 1: above bg_thresh */
	int64_t sync_waits;
	int64_t hang_threshold_ns;
	int64_t sample_interval_ns;
	int64_t max_samples;
	int64_t max_time_ns;
	int64_t cpus;			/* 0: every actor and server thread has its own CPU */
	int64_t wakeup_ns;
	int64_t cache_add_ns;
	int64_t write_syscall_ns;
	int64_t write_page_ns;
	int64_t store_page_ns;
	int64_t fault_ns;
	int64_t page_copy_ns;
	int64_t wp_page_ns;
	int64_t wp_request_ns;
	int64_t temp_alloc_ns;
	int64_t temp_free_ns;
	int64_t wb_lookup_ns;
	int64_t wb_tree_ns;
	int64_t end_writeback_ns;
	int64_t fsync_syscall_ns;
	int64_t dio_base_ns;
	int64_t dio_page_ns;
	int64_t reclaim_scan_ns;
	int64_t compact_page_ns;
	int64_t server_threads;
	int64_t server_dist;		/* 0 fixed, 1 exponential, 2 lognormal */
	int64_t server_base_ns;
	int64_t server_page_ns;
	int64_t server_new_page_ns;
	int64_t server_wakeup_ns;
	int64_t server_cpus;		/* 0: as many as cpus */
	int64_t server_cpu_pct;
	int64_t server_fsync_ns;
	double server_sigma;
	int64_t n_stall;		/* stall windows, sorted, non-overlapping */
	int64_t stall_start[16];
	int64_t stall_end[16];
	int64_t request_timeout_ns;	/* 0: off; whole seconds (fuse_check_timeout) */
	int64_t wb_thresh_floor;	/* 1: 39ac99852fca's floor on the bdi's threshold, 2: its consolidation */
	int64_t bdi_writeout_ppm;	/* the bdi's writeout share; 1000000: the only writer */
} fwb_config;

/* Indices into fwb_result.counters, in the order of bench.refsim.COUNTERS. */
enum fwb_counter {
	FWB_C_REQUESTS = 0, FWB_C_READS = 1, FWB_C_FSYNC_REQUESTS = 2, FWB_C_SECONDARIES = 3,
	FWB_C_INPLACE_UPDATES = 4, FWB_C_REDIRTY_SKIPS = 5, FWB_C_WRITEBACK_SKIPS = 6,
	FWB_C_WRITEPAGES_WAITS = 7, FWB_C_TEMP_ALLOC_FAILURES = 8, FWB_C_TEMP_PAGES_PEAK = 9,
	FWB_C_TEMP_BYTES_COPIED = 10, FWB_C_TEMP_PAGE_NS = 11, FWB_C_PINNED_PAGES_PEAK = 12,
	FWB_C_LOST_UPDATES = 13, FWB_C_OUT_OF_ORDER = 14, FWB_C_MAX_COPIES_IN_FLIGHT = 15,
	FWB_C_HANGS = 16, FWB_C_DEADLOCKS = 17, FWB_C_RECLAIM_GAVEUP = 18,
	FWB_C_COMPACTION_UNMOVABLE = 19, FWB_C_BYTES_DIRTIED = 20, FWB_C_BYTES_WRITTEN = 21,
	FWB_C_T_FIRST = 22, FWB_C_T_APP_END = 23, FWB_C_T_WB_END = 24, FWB_C_T_END = 25,
	FWB_C_STUCK = 26, FWB_C_EVENTS = 27, FWB_C_ABORTED_CALLS = 28, FWB_C_FOLIOS = 29,
	FWB_C_FOLIO_PAGES = 30, FWB_C_FOLIO_WAITS = 31, FWB_N_COUNTERS = 32
};

/* Latency sample sets, in the order of bench.refsim.LATENCIES. */
enum fwb_latency {
	FWB_L_WRITE = 0, FWB_L_FAULT = 1, FWB_L_FSYNC = 2, FWB_L_SYNC = 3, FWB_L_THROTTLE = 4,
	FWB_L_RECLAIM = 5, FWB_L_COMPACTION = 6, FWB_N_LATENCIES = 7
};

/* FWB_EFILL: a stream's fill callback returned a negative count. */
enum fwb_error { FWB_OK = 0, FWB_ENOMEM = -1, FWB_EINVAL = -2, FWB_EFILL = -3 };

/*
 * Latency samples are kept one by one up to a limit per set (FWB_LAT_EXACT, or a stream's
 * latency_exact); the sample past it folds the set into a histogram of FWB_LAT_BUCKETS
 * log-spaced buckets: a value below 2 * FWB_LAT_SUB has its own bucket, a larger one v with
 * 2**e <= v < 2**(e+1) falls in the bucket of its top FWB_LAT_SUB_BITS + 1 bits, which holds
 * 2**(e - FWB_LAT_SUB_BITS) values: its lowest value is below v by less than v / FWB_LAT_SUB.
 * bench/sim/lathist.py has the same buckets.
 */
enum fwb_lat_hist {
	FWB_LAT_SUB_BITS = 7, FWB_LAT_SUB = 128, FWB_LAT_BUCKETS = 7296, FWB_LAT_EXACT = 4194304
};

typedef struct fwb_result {
	int64_t counters[32];
	int64_t *pages_per_request;	/* owned; pages_per_request_n = max_pages + 1 entries */
	int64_t pages_per_request_n;
	int64_t *latency[7];		/* owned; latency_n[i] samples, or NULL once folded */
	int64_t latency_n[7];		/* samples taken */
	int64_t *latency_hist[7];	/* owned; NULL, or FWB_LAT_BUCKETS counts once folded */
	int64_t latency_max[7];		/* a folded set's largest sample (else 0) */
	int64_t *series;		/* series_n rows of 6: time, dirty, writeback, temp, cache, anon */
	int64_t series_n;
} fwb_result;

/*
 * Run the simulation.  ops: n_ops rows sorted by time, validated by the caller;
 * file_sizes: n_files initial sizes.  Fills *out (zeroed first) and returns
 * FWB_OK, or a negative fwb_error, in which case *out holds nothing to free.
 */
int fwb_run(const fwb_config *cfg, const fwb_op *ops, int64_t n_ops,
	    const int64_t *file_sizes, int32_t n_files, uint64_t seed, fwb_result *out);

void fwb_result_free(fwb_result *res);

/*
 * A workload made in chunks: fill(ctx, thread, buf, cap) writes up to cap (= chunk) of
 * that thread's next rows, in its program order, into buf and returns how many (0: the
 * thread has no more), or a negative number for an error of its own (FWB_EFILL).  The
 * engine asks for each thread's first chunk in thread order before the run, and for the
 * next one when the thread has run the last, so a thread's rows must not depend on the
 * chunk size nor on when they are asked for.  What the rows need is given up front:
 * file_pages[f] is file f's page capacity, at least its initial size and every page a
 * row of it touches (the array form's capacity is the largest of these).  Each chunk is
 * checked as fwb_run checks an array, and also for its thread, its time order (after the
 * thread's rows before it) and its capacity: FWB_EINVAL.  latency_exact: samples kept
 * one by one per set (0: FWB_LAT_EXACT; at most that).
 */
typedef struct fwb_stream {
	int32_t threads;	/* 1..64 */
	int32_t n_files;
	const int64_t *file_sizes;
	const int64_t *file_pages;
	int64_t chunk;		/* rows per fill, >= 1 */
	int64_t latency_exact;
	int64_t (*fill)(void *ctx, int32_t thread, fwb_op *buf, int64_t cap);
	void *ctx;
} fwb_stream;

int fwb_run_stream(const fwb_config *cfg, const fwb_stream *st, uint64_t seed, fwb_result *out);

/*
 * Where the per-page state is kept (csrc/pagespace.c): over every page of every file
 * (dense), or over the pages the ops can reach (compact), which auto picks when those are
 * few against the files' pages.  A representation only: the results are the same.
 */
enum fwb_layout { FWB_LAYOUT_AUTO = 0, FWB_LAYOUT_DENSE = 1, FWB_LAYOUT_COMPACT = 2 };

/* fwb_run in the given layout (fwb_run: auto); FWB_EINVAL for another layout value. */
int fwb_run_layout(const fwb_config *cfg, const fwb_op *ops, int64_t n_ops,
		   const int64_t *file_sizes, int32_t n_files, uint64_t seed, int32_t layout,
		   fwb_result *out);

/* The page slots (per-page states) such a run keeps, or a negative fwb_error. */
int64_t fwb_page_slots(const fwb_config *cfg, const fwb_op *ops, int64_t n_ops,
		       const int64_t *file_sizes, int32_t n_files, int32_t layout);

/*
 * The event queue's floor: fwb_event_log runs the simulation (as fwb_run, same checks
 * and errors) and records every event the engine pushed, by sequence number, and the
 * order it popped them in; fwb_heap_replay pushes and pops the same events through the
 * engine's own queue code and nothing else.  Returns a checksum (>= 0), or a negative
 * fwb_error (FWB_EINVAL also when the replay does not pop what the engine popped).
 */
typedef struct fwb_evlog {
	int64_t n_push;		/* events pushed; entry i is the one with sequence number i */
	int64_t *push_t;
	int64_t *push_ka;	/* kind << 32 | arg */
	int64_t n_pop;
	int64_t *pop_seq;	/* the popped events' sequence numbers, in pop order */
	int64_t *pop_pushed;	/* events pushed before each pop */
} fwb_evlog;

int fwb_event_log(const fwb_config *cfg, const fwb_op *ops, int64_t n_ops,
		  const int64_t *file_sizes, int32_t n_files, uint64_t seed, fwb_evlog *out);
int64_t fwb_heap_replay(const fwb_evlog *log);
void fwb_evlog_free(fwb_evlog *log);

/* A bare loop over the same operations that only flips page flags: the speed floor. */
int64_t fwb_bare_loop(const fwb_op *ops, int64_t n_ops, const int64_t *file_sizes, int32_t n_files);
