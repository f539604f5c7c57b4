/*
 * fwb_driver.c - run an operation array (bench.ops) against real files.
 *
 * One pthread per workload thread.  A thread runs its rows in order, row k at
 * max(t0 + time_k, end of row k-1), and records each call's start and duration
 * with CLOCK_MONOTONIC.  Errors are returned as codes (fwb_driver.h), never by
 * aborting: this runs inside the Python process.
 *
 * Stores into a FUSE mapping raise SIGBUS when the connection is aborted under
 * them; while fwb_drive runs, a SIGBUS handler turns that into FWB_DRV_ESIGBUS for
 * the storing thread (and hands any other SIGBUS to the previous handler).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fwb_driver.h"

_Static_assert(sizeof(fwb_drv_op) == 40, "fwb_drv_op must match bench.ops.OP_DTYPE");

/* Op codes: keep in step with bench/sim/ops.py and enum fwb_opcode in csrc/fwb.h. */
enum { OP_WRITE, OP_MMAP_STORE, OP_DIO_READ, OP_FSYNC, OP_MSYNC, OP_SYNC, OP_ALLOC, OP_FREE,
       OP_COMPACT, OP_COUNT };

#define MAX_THREADS 64
#define WRITE_CHUNK (4 << 20)
#define PAGE 4096

struct anon {			/* one ALLOC region still mapped, FIFO order */
	char *addr;
	size_t len;
	struct anon *next;
};

struct driver {
	fwb_drv_run *run;
	int *fds;
	char **maps;
	int dio_fd;
	int64_t t0;
	pthread_cond_t go_cond;	/* workers wait for `go` under `lock` */
	int go;
	int failed;		/* set once, by the first error */
	pthread_mutex_t lock;	/* error fields, the anon FIFO, compact_skipped */
	struct anon *anon_head, *anon_tail;
};

struct worker {
	struct driver *d;
	int32_t thread;
	int64_t *rows;
	int64_t n_rows;
	char *buf;
	size_t buf_len;
	pthread_t tid;
};

static __thread sigjmp_buf *bus_jmp;
static struct sigaction old_bus;

static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
	if (bus_jmp != NULL)
		siglongjmp(*bus_jmp, 1);
	/* Not ours: hand it to the previous disposition and let the store fault again. */
	sigaction(SIGBUS, &old_bus, NULL);
	(void)sig;
	(void)info;
	(void)ctx;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t t)
{
	struct timespec ts = { .tv_sec = t / 1000000000, .tv_nsec = t % 1000000000 };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int64_t thread_faults(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru) != 0)
		return 0;
	return (int64_t)ru.ru_minflt + (int64_t)ru.ru_majflt;
}

static int stopped(struct driver *d)
{
	return __atomic_load_n(&d->failed, __ATOMIC_RELAXED) ||
	       (d->run->stop != NULL && __atomic_load_n(d->run->stop, __ATOMIC_RELAXED));
}

static void fail(struct driver *d, int32_t code, int64_t row, int err)
{
	pthread_mutex_lock(&d->lock);
	if (!d->failed) {
		d->failed = code;
		d->run->err_row = (int32_t)row;
		d->run->err_errno = err;
	}
	pthread_mutex_unlock(&d->lock);
}

int32_t fwb_drv_write_row(int32_t fd, const fwb_drv_op *op, const void *buf, int64_t buf_len)
{
	int64_t done = 0;

	while (done < op->length) {
		size_t n = (size_t)(op->length - done < buf_len ? op->length - done : buf_len);
		ssize_t r = pwrite(fd, buf, n, op->offset + done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? errno : EIO;
		done += r;
	}
	return 0;
}

static int do_dio_read(struct driver *d, const fwb_drv_op *op)
{
	char *dst = d->maps[op->file] + op->offset;
	int64_t done = 0;

	while (done < op->length) {
		ssize_t r = pread(d->dio_fd, dst + done, (size_t)(op->length - done), done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? errno : EIO;
		done += r;
	}
	return 0;
}

static int do_alloc(struct driver *d, int64_t length)
{
	struct anon *a = malloc(sizeof(*a));
	size_t i;

	if (a == NULL)
		return ENOMEM;
	a->len = (size_t)length;
	a->addr = mmap(NULL, a->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a->addr == MAP_FAILED) {
		free(a);
		return errno;
	}
	for (i = 0; i < a->len; i += PAGE)
		a->addr[i] = 1;	/* fault every page in */
	a->next = NULL;
	pthread_mutex_lock(&d->lock);
	if (d->anon_tail != NULL)
		d->anon_tail->next = a;
	else
		d->anon_head = a;
	d->anon_tail = a;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* Release `length` bytes, oldest allocations first (a region may be cut). */
static void do_free(struct driver *d, int64_t length)
{
	size_t left = (size_t)length;

	pthread_mutex_lock(&d->lock);
	while (left > 0 && d->anon_head != NULL) {
		struct anon *a = d->anon_head;
		size_t take = a->len <= left ? a->len : (left + PAGE - 1) / PAGE * PAGE;

		if (take >= a->len) {
			munmap(a->addr, a->len);
			d->anon_head = a->next;
			if (d->anon_head == NULL)
				d->anon_tail = NULL;
			left -= a->len < left ? a->len : left;
			free(a);
		} else {
			munmap(a->addr, take);
			a->addr += take;
			a->len -= take;
			left = 0;
		}
	}
	pthread_mutex_unlock(&d->lock);
}

/* 1 if compaction ran, 0 if skipped (not writable here), or -errno. */
static int do_compact(void)
{
	int fd = open("/proc/sys/vm/compact_memory", O_WRONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return 0;
	r = write(fd, "1", 1);
	close(fd);
	return r == 1 ? 1 : 0;
}

static int do_store(struct worker *w, const fwb_drv_op *op, int64_t row)
{
	sigjmp_buf jmp;

	/* savemask 0: saving the mask is a sigprocmask system call per store, which a real
	 * store does not make (it doubled a 4 KiB store's time).  After a SIGBUS the thread
	 * ends at once, so the mask left blocked by the handler does not matter. */
	if (sigsetjmp(jmp, 0)) {
		bus_jmp = NULL;
		return -1;
	}
	bus_jmp = &jmp;
	memset(w->d->maps[op->file] + op->offset, (int)(row & 0xff) | 1, (size_t)op->length);
	bus_jmp = NULL;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct driver *d = w->d;
	fwb_drv_run *run = d->run;
	int64_t k;

	pthread_mutex_lock(&d->lock);
	while (!d->go)
		pthread_cond_wait(&d->go_cond, &d->lock);
	pthread_mutex_unlock(&d->lock);
	for (k = 0; k < w->n_rows && !stopped(d); k++) {
		int64_t row = w->rows[k], start, end, f0 = 0;
		const fwb_drv_op *op = &run->ops[row];
		int err = 0, skipped = 0;

		if (op->op == OP_WRITE && w->buf_len >= sizeof(row))
			memcpy(w->buf, &row, sizeof(row));	/* each write carries new data */
		if (d->t0 + op->time > now_ns())
			sleep_until(d->t0 + op->time);
		if (op->op == OP_MMAP_STORE)
			f0 = thread_faults();
		start = now_ns();
		switch (op->op) {
		case OP_WRITE:
			err = fwb_drv_write_row(w->d->fds[op->file], op, w->buf, (int64_t)w->buf_len);
			break;
		case OP_MMAP_STORE:
			if (do_store(w, op, row) != 0) {
				fail(d, FWB_DRV_ESIGBUS, row, EFAULT);
				return NULL;
			}
			break;
		case OP_DIO_READ:
			err = do_dio_read(d, op);
			break;
		case OP_FSYNC:
			err = fsync(d->fds[op->file]) ? errno : 0;
			break;
		case OP_MSYNC: {
			int64_t lo = op->offset / PAGE * PAGE;

			err = msync(d->maps[op->file] + lo, (size_t)(op->offset + op->length - lo),
				    MS_SYNC) ? errno : 0;
			break;
		}
		case OP_SYNC:
			sync();
			break;
		case OP_ALLOC:
			err = do_alloc(d, op->length);
			break;
		case OP_FREE:
			do_free(d, op->length);
			break;
		case OP_COMPACT:
			skipped = !do_compact();
			break;
		}
		end = now_ns();
		if (err) {
			fail(d, FWB_DRV_ESYSCALL, row, err);
			return NULL;
		}
		run->start_ns[row] = start - d->t0;
		run->latency_ns[row] = skipped ? -1 : end - start;
		run->faults[row] = op->op == OP_MMAP_STORE ? thread_faults() - f0 : 0;
		if (skipped)
			__atomic_add_fetch(&run->compact_skipped, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int32_t check(fwb_drv_run *run)
{
	int64_t i;

	if (run->ops == NULL || run->n_ops < 0 || run->n_threads < 1 ||
	    run->n_threads > MAX_THREADS || run->n_files < 0 ||
	    (run->n_files > 0 && (run->paths == NULL || run->map_len == NULL)) ||
	    run->start_ns == NULL || run->latency_ns == NULL || run->faults == NULL)
		return FWB_DRV_EINVAL;
	for (i = 0; i < run->n_ops; i++) {
		const fwb_drv_op *op = &run->ops[i];
		int on_file = op->op == OP_WRITE || op->op == OP_MMAP_STORE ||
			      op->op == OP_DIO_READ || op->op == OP_FSYNC || op->op == OP_MSYNC;
		int mapped = op->op == OP_MMAP_STORE || op->op == OP_DIO_READ || op->op == OP_MSYNC;

		run->err_row = (int32_t)i;
		if (op->op < 0 || op->op >= OP_COUNT || op->thread < 0 ||
		    op->thread >= run->n_threads || op->time < 0 || op->offset < 0 ||
		    op->length < 0)
			return FWB_DRV_EINVAL;
		if (on_file && (op->file < 0 || op->file >= run->n_files))
			return FWB_DRV_EINVAL;
		if (mapped && op->offset + op->length > run->map_len[op->file])
			return FWB_DRV_EINVAL;
		if (op->op == OP_DIO_READ &&
		    (run->dio_path == NULL || op->length > run->dio_len ||
		     op->offset % 512 != 0 || op->length % 512 != 0))
			return FWB_DRV_EINVAL;
	}
	run->err_row = -1;
	return FWB_DRV_OK;
}

int32_t fwb_drive(fwb_drv_run *run)
{
	struct driver d = { .run = run, .dio_fd = -1 };
	struct worker *workers = NULL;
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
	int64_t *counts = NULL, i;
	int32_t n_started = 0, t, ret;
	int err;

	run->err_row = -1;
	run->err_errno = 0;
	run->compact_skipped = 0;
	ret = check(run);
	if (ret != FWB_DRV_OK)
		return ret;
	for (i = 0; i < run->n_ops; i++)
		run->start_ns[i] = run->latency_ns[i] = -1, run->faults[i] = 0;
	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.go_cond, NULL);

	ret = FWB_DRV_ENOMEM;
	d.fds = malloc(sizeof(int) * (size_t)(run->n_files + 1));
	d.maps = calloc((size_t)run->n_files + 1, sizeof(char *));
	workers = calloc((size_t)run->n_threads, sizeof(*workers));
	counts = calloc((size_t)run->n_threads, sizeof(*counts));
	if (d.fds == NULL || d.maps == NULL || workers == NULL || counts == NULL)
		goto out_free;
	for (t = 0; t < run->n_files; t++)
		d.fds[t] = -1;

	for (t = 0; t < run->n_files; t++) {
		d.fds[t] = open(run->paths[t], O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (d.fds[t] < 0) {
			ret = FWB_DRV_EOPEN;
			run->err_row = -1 - t;
			run->err_errno = errno;
			goto out_files;
		}
		if (run->map_len[t] > 0) {
			d.maps[t] = mmap(NULL, (size_t)run->map_len[t], PROT_READ | PROT_WRITE,
					 MAP_SHARED, d.fds[t], 0);
			if (d.maps[t] == MAP_FAILED) {
				d.maps[t] = NULL;
				ret = FWB_DRV_EMMAP;
				run->err_row = -1 - t;
				run->err_errno = errno;
				goto out_files;
			}
		}
	}
	if (run->dio_path != NULL) {
		d.dio_fd = open(run->dio_path, O_RDONLY | O_DIRECT | O_CLOEXEC);
		if (d.dio_fd < 0) {
			ret = FWB_DRV_EOPEN;
			run->err_row = -1 - run->n_files;
			run->err_errno = errno;
			goto out_files;
		}
	}

	/* Each thread's rows, in array order (which is program order). */
	for (i = 0; i < run->n_ops; i++)
		counts[run->ops[i].thread]++;
	for (t = 0; t < run->n_threads; t++) {
		struct worker *w = &workers[t];

		w->d = &d;
		w->thread = t;
		w->rows = malloc(sizeof(int64_t) * (size_t)(counts[t] + 1));
		if (w->rows == NULL)
			goto out_workers;
	}
	for (i = 0; i < run->n_ops; i++) {
		const fwb_drv_op *op = &run->ops[i];
		struct worker *w = &workers[op->thread];

		w->rows[w->n_rows++] = i;
		if (op->op == OP_WRITE && (size_t)op->length > w->buf_len)
			w->buf_len = (size_t)op->length < WRITE_CHUNK ? (size_t)op->length
								       : WRITE_CHUNK;
	}
	for (t = 0; t < run->n_threads; t++) {
		struct worker *w = &workers[t];

		if (w->buf_len > 0) {
			w->buf = malloc(w->buf_len);
			if (w->buf == NULL)
				goto out_workers;
			memset(w->buf, 0x5a ^ t, w->buf_len);
		}
	}

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old_bus);
	for (t = 0; t < run->n_threads; t++) {
		err = pthread_create(&workers[t].tid, NULL, worker_main, &workers[t]);
		if (err != 0)
			break;
		n_started++;
	}
	/* If a thread could not be created, the others see `failed` and return at once. */
	if (n_started < run->n_threads)
		fail(&d, FWB_DRV_ETHREAD, -1, err);
	pthread_mutex_lock(&d.lock);
	d.t0 = run->t0_ns > 0 ? run->t0_ns : now_ns();
	run->t0_used_ns = d.t0;
	d.go = 1;
	pthread_cond_broadcast(&d.go_cond);
	pthread_mutex_unlock(&d.lock);
	for (t = 0; t < n_started; t++)
		pthread_join(workers[t].tid, NULL);
	sigaction(SIGBUS, &old_bus, NULL);

	if (d.failed)
		ret = d.failed;
	else if (run->stop != NULL && __atomic_load_n(run->stop, __ATOMIC_RELAXED))
		ret = FWB_DRV_STOPPED;
	else
		ret = FWB_DRV_OK;
	/* A stopped run may have left rows undone even without an error. */
	if (ret == FWB_DRV_STOPPED)
		for (i = 0; i < run->n_ops; i++)
			if (run->start_ns[i] < 0 && run->err_row < 0)
				run->err_row = (int32_t)i;
out_workers:
	for (t = 0; t < run->n_threads; t++) {
		free(workers[t].rows);
		free(workers[t].buf);
	}
	while (d.anon_head != NULL) {
		struct anon *a = d.anon_head;

		d.anon_head = a->next;
		munmap(a->addr, a->len);
		free(a);
	}
out_files:
	if (d.dio_fd >= 0)
		close(d.dio_fd);
	for (t = 0; t < run->n_files; t++) {
		if (d.maps[t] != NULL)
			munmap(d.maps[t], (size_t)run->map_len[t]);
		if (d.fds[t] >= 0)
			close(d.fds[t]);
	}
out_free:
	free(counts);
	free(workers);
	free(d.maps);
	free(d.fds);
	pthread_mutex_destroy(&d.lock);
	pthread_cond_destroy(&d.go_cond);
	return ret;
}

int32_t fwb_drv_time_page_copy(int32_t n_pages, int32_t reps, int64_t *ns_out)
{
	size_t len;
	char *src, *dst;
	int32_t r, i;

	if (n_pages < 1 || n_pages > 65536 || reps < 1 || ns_out == NULL)
		return FWB_DRV_EINVAL;
	len = (size_t)n_pages * PAGE;
	src = aligned_alloc(PAGE, len);
	dst = aligned_alloc(PAGE, len);
	if (src == NULL || dst == NULL) {
		free(src);
		free(dst);
		return FWB_DRV_ENOMEM;
	}
	memset(src, 0x5a, len);
	memset(dst, 0xa5, len);
	for (r = -1; r < reps; r++) {	/* round -1 warms the caches and the TLB */
		int64_t t0 = now_ns();

		for (i = 0; i < n_pages; i++) {
			memcpy(dst + (size_t)i * PAGE, src + (size_t)i * PAGE, PAGE);
			/* The copy is used: the compiler may not drop or merge it. */
			__asm__ __volatile__("" : : "r"(dst) : "memory");
		}
		if (r >= 0)
			ns_out[r] = now_ns() - t0;
		src[(size_t)(r & 0xff) * 8 % len] ^= 1;	/* new data each round */
	}
	free(src);
	free(dst);
	return FWB_DRV_OK;
}

/* One 4 KiB page copy, as the kernel's copy_page does it on x86-64 (rep movsq). */
static void copy_one_page(char *dst, const char *src)
{
#if defined(__x86_64__)
	void *d = dst;
	const void *sp = src;
	unsigned long n = PAGE / 8;
	__asm__ __volatile__("rep movsq" : "+D"(d), "+S"(sp), "+c"(n) : : "memory");
#else
	memcpy(dst, src, PAGE);
	__asm__ __volatile__("" : : "r"(dst) : "memory");
#endif
}

static char *map_buffer(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void)madvise(p, len, MADV_HUGEPAGE);	/* like the direct map; fine if refused */
#endif
	return p;
}

int32_t fwb_drv_time_page_copy_cold(int32_t ws_pages, int32_t n_pages, int32_t reps,
				    int64_t *ns_out)
{
	size_t len;
	char *src, *dst;
	uint64_t k = 0, mask;
	int32_t r, i;

	if (ws_pages < 2 || ws_pages > (1 << 20) || (ws_pages & (ws_pages - 1)) != 0 ||
	    n_pages < 1 || n_pages > ws_pages || reps < 1 || ns_out == NULL)
		return FWB_DRV_EINVAL;
	len = (size_t)ws_pages * PAGE;
	mask = (uint64_t)ws_pages - 1;
	src = map_buffer(len);
	dst = map_buffer(len);
	if (src == NULL || dst == NULL) {
		if (src != NULL)
			munmap(src, len);
		if (dst != NULL)
			munmap(dst, len);
		return FWB_DRV_ENOMEM;
	}
	memset(src, 0x5a, len);		/* every page mapped before any timing */
	memset(dst, 0xa5, len);
	for (r = -1; r < reps; r++) {	/* round -1: untimed */
		int64_t t0 = now_ns();

		for (i = 0; i < n_pages; i++, k++) {
			/* An odd multiplier walks every page of the power-of-two set once per
			 * ws_pages copies; source and destination follow different walks. */
			uint64_t s_at = (k * 40503u) & mask, d_at = (k * 69069u + 12345u) & mask;
			copy_one_page(dst + d_at * PAGE, src + s_at * PAGE);
		}
		if (r >= 0)
			ns_out[r] = now_ns() - t0;
	}
	munmap(src, len);
	munmap(dst, len);
	return FWB_DRV_OK;
}

int32_t fwb_drv_fault_pages(int32_t n_pages, int32_t reps, int64_t *ns_out)
{
	size_t len;
	int32_t r, i;

	if (n_pages < 1 || n_pages > (1 << 20) || reps < 1 || ns_out == NULL)
		return FWB_DRV_EINVAL;
	len = (size_t)n_pages * PAGE;
	for (r = 0; r < reps; r++) {
		int64_t t0 = now_ns();
		volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == (volatile char *)MAP_FAILED)
			return FWB_DRV_ENOMEM;
#ifdef MADV_NOHUGEPAGE
		(void)madvise((void *)p, len, MADV_NOHUGEPAGE);	/* order-0 pages only */
#endif
		for (i = 0; i < n_pages; i++)
			p[(size_t)i * PAGE] = 1;
		munmap((void *)p, len);
		ns_out[r] = now_ns() - t0;
	}
	return FWB_DRV_OK;
}

const char *fwb_drv_strerror(int32_t code)
{
	static const char *const msg[] = {
		[FWB_DRV_OK] = "ok",
		[FWB_DRV_EINVAL] = "invalid arguments",
		[FWB_DRV_EOPEN] = "cannot open a file",
		[FWB_DRV_EMMAP] = "cannot map a file",
		[FWB_DRV_ESYSCALL] = "a system call failed",
		[FWB_DRV_ESIGBUS] = "SIGBUS on a store to a mapped file",
		[FWB_DRV_ENOMEM] = "out of memory",
		[FWB_DRV_ETHREAD] = "cannot create a thread",
		[FWB_DRV_STOPPED] = "stopped before the end",
	};

	if (code < 0 || code > FWB_DRV_STOPPED)
		return "unknown error";
	return msg[code];
}
