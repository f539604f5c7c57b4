/*
 * fwb_driver.h - the workload driver of fuse-writeback-bench: runs an operation
 * array (bench.ops) against real files, one pthread per workload thread.
 *
 * cdef-clean on purpose (no includes, macros or conditionals): bench/real/_build_driver.py
 * hands this file to cffi as it is.  Fixed-width types only; the caller includes
 * <stdint.h> first.
 */

/* One application call; layout identical to bench.ops.OP_DTYPE and struct fwb_op (40 bytes). */
typedef struct fwb_drv_op {
	int64_t time;
	int32_t thread;
	int32_t op;
	int32_t file;
	int32_t pad;
	int64_t offset;
	int64_t length;
} fwb_drv_op;

/* Error codes of fwb_drive; fwb_drv_strerror names them. */
enum fwb_drv_error {
	FWB_DRV_OK = 0,
	FWB_DRV_EINVAL = 1,	/* bad arguments (a row naming a missing file or mapping, ...) */
	FWB_DRV_EOPEN = 2,	/* opening a file failed (err_errno, err_row = -1 - file) */
	FWB_DRV_EMMAP = 3,	/* mapping a file failed */
	FWB_DRV_ESYSCALL = 4,	/* the call of row err_row failed with err_errno */
	FWB_DRV_ESIGBUS = 5,	/* a store to a mapping raised SIGBUS (connection gone?) */
	FWB_DRV_ENOMEM = 6,
	FWB_DRV_ETHREAD = 7,	/* pthread_create failed */
	FWB_DRV_STOPPED = 8	/* *stop became non-zero before all rows ran */
};

typedef struct fwb_drv_run {
	/* inputs */
	const fwb_drv_op *ops;		/* sorted by time; rows of a thread run in order */
	int64_t n_ops;
	int32_t n_threads;		/* 1 + the largest thread id */
	int32_t n_files;
	char **paths;			/* n_files paths, opened O_RDWR (created if missing) */
	const int64_t *map_len;		/* per file: bytes to map MAP_SHARED (0: no mapping) */
	char *dio_path;			/* source of DIO_READ rows, opened O_DIRECT (NULL: none) */
	int64_t dio_len;		/* its size in bytes (reads wrap around it) */
	int64_t t0_ns;			/* CLOCK_MONOTONIC origin of row times (0: now) */
	int32_t *stop;			/* polled between rows; non-zero stops every thread */
	/* outputs, one per row */
	int64_t *start_ns;		/* start relative to t0 (-1: not run) */
	int64_t *latency_ns;		/* duration (-1: not run or skipped) */
	int64_t *faults;		/* page faults (minor + major) of the calling thread during it */
	/* outputs */
	int64_t t0_used_ns;		/* the origin actually used */
	int64_t compact_skipped;	/* COMPACT rows skipped (compact_memory not writable) */
	int32_t err_row;		/* row of the first error, or -1 - file for EOPEN/EMMAP */
	int32_t err_errno;
} fwb_drv_run;

/* Run every row; returns FWB_DRV_OK or the first error (the other threads stop too). */
int32_t fwb_drive(fwb_drv_run *run);

/*
 * One WRITE row's write(2) calls: pwrite of op->length bytes at op->offset from buf, in
 * pieces of at most buf_len bytes, again after EINTR and after a short write.  Returns 0
 * or the errno (EIO for a write of nothing).  The driver's threads and the guest runner
 * (csrc/guest) both write through it.
 */
int32_t fwb_drv_write_row(int32_t fd, const fwb_drv_op *op, const void *buf, int64_t buf_len);

/* A static one-line description of an error code. */
const char *fwb_drv_strerror(int32_t code);

/*
 * Calibration: time memcpy of 4 KiB pages, the CPU work of one temp-page copy.
 * Each of `reps` rounds copies `n_pages` distinct pages from one buffer to another
 * (after one untimed warm-up round) and stores the round's CLOCK_MONOTONIC duration
 * in ns_out[round].  Returns FWB_DRV_OK, FWB_DRV_EINVAL or FWB_DRV_ENOMEM.
 */
int32_t fwb_drv_time_page_copy(int32_t n_pages, int32_t reps, int64_t *ns_out);

/*
 * Calibration: time the temp-page copy as writeback does it, from a cold page-cache
 * page into a fresh page.  Two buffers of ws_pages pages each (backed by huge pages
 * where the kernel allows, as the kernel's direct map is), far bigger than the
 * last-level cache; each round copies the next n_pages pages of a fixed pseudo-random
 * walk over them (no page is copied twice within ws_pages copies, and neighbours are
 * not visited in order, so the caches and the prefetchers hold none of them), with
 * the copy of the kernel's copy_page on x86-64 (rep movsq), memcpy elsewhere.
 * ns_out[round] is the round's CLOCK_MONOTONIC duration.  ws_pages must be a power
 * of two.  Returns FWB_DRV_OK, FWB_DRV_EINVAL or FWB_DRV_ENOMEM.
 */
int32_t fwb_drv_time_page_copy_cold(int32_t ws_pages, int32_t n_pages, int32_t reps,
				    int64_t *ns_out);

/*
 * Calibration: make the kernel allocate and free n_pages pages, reps times.  Each
 * round maps n_pages of anonymous memory (no huge pages), stores one byte to each
 * page (a fault: the kernel allocates a zeroed order-0 page) and unmaps it (the
 * pages are freed); ns_out[round] is the round's CLOCK_MONOTONIC duration.  The
 * allocator's share of it is found by profiling the kernel meanwhile (calibrate).
 * Returns FWB_DRV_OK, FWB_DRV_EINVAL or FWB_DRV_ENOMEM.
 */
int32_t fwb_drv_fault_pages(int32_t n_pages, int32_t reps, int64_t *ns_out);
