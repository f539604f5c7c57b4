/*
 * fwb_fuse_server.c - the FUSE server of fuse-writeback-bench.
 *
 * In-memory files, directories and symlinks, served through libfuse's low-level
 * API with the writeback cache on (--no-writeback-cache turns it off, so that
 * every write(2) reaches the server as it happens: how `bench record -- CMD`
 * sees what a program dirties).  Enough of POSIX for fio, SQLite, tar and git:
 * nested directories, mkdir/rmdir, rename (RENAME_NOREPLACE; not EXCHANGE),
 * symlink/readlink.  One name per inode: link(2) fails with EPERM (git then
 * renames instead).  Inode numbers are never reused within a mount, so the log's
 * `ino` names one file for the whole run.  What makes it a benchmark server:
 *
 *   - every WRITE (and READ, FSYNC, FLUSH) is logged to a binary file: receive and
 *     reply times (CLOCK_MONOTONIC ns), inode, offset, size, whether the kernel set
 *     FUSE_WRITE_CACHE (the request comes from page-cache writeback) and the pid
 *     of the calling thread (fuse_req_ctx; the flusher's for writeback);
 *   - each WRITE can be given a service time (fixed, exponential or lognormal,
 *     seeded), like the simulator's server;
 *   - stall windows: during [start, start + length) a WRITE is held, neither
 *     processed nor replied, as by a stuck or hostile server.  Other requests
 *     (lookup, getattr, fsync, ...) are still served, which is why the default
 *     thread count (16) is above the kernel's max_background (12): held WRITEs
 *     are background requests and can occupy at most max_background threads.
 *
 * Log format (little-endian, read by bench/real/mount.py with numpy):
 *   header, 32 bytes: char magic[8] = "FWBWLOG\0", uint32 version = 2,
 *                     uint32 header_size = 32, uint32 record_size = 48,
 *                     uint32 reserved, int64 t_mount_ns
 *   records, 48 bytes: int64 t_recv_ns, int64 t_reply_ns (a WRITE's: taken just
 *                     before its reply is sent, so that a WRITE the kernel sends on
 *                     receiving that reply never seems to overlap it), uint64 ino,
 *                     int64 offset, uint32 size, uint16 kind (0 WRITE, 1 READ,
 *                     2 FSYNC, 3 FLUSH), uint16 flags (bit 0: FUSE_WRITE_CACHE; bit 1:
 *                     the request came over FUSE-over-io_uring, see below),
 *                     uint32 pid, uint32 reserved
 *   Version 1 had 40-byte records without pid and reserved, and no FLUSH.
 * Records are buffered under one mutex and written in 1 MiB chunks, so logging
 * costs a memcpy per request (a full buffer is swapped for a spare one and written
 * outside that mutex); the log is complete once the server has exited.
 *
 * File data lives in FWB_CHUNK (1 MiB) chunks allocated on demand, so a growing
 * file never copies what it has.  A READ or WRITE holds the inode lock only to find
 * (or allocate) its chunks and to mark its byte range busy; it copies without the
 * lock, so WRITEs to different ranges of one file run in parallel, and requests
 * whose ranges overlap (or a truncate over a busy range) wait for each other.  A
 * chunk's bytes past its `fill` mark read as zeros (they are zeroed when a write
 * lands beyond them), so chunks need no zeroing up front and freed full chunks are
 * kept in a pool (up to FWB_POOL_MAX) whose memory is already faulted in.  Files
 * of at most FWB_SMALL bytes keep a small, growing first chunk instead.  WRITE is
 * served by write_buf, so libfuse splices the request from /dev/fuse into a pipe
 * (page references, no copy) and the data is copied once, pipe to chunk.
 *
 * FUSE over io_uring (kernel 6.14+, CONFIG_FUSE_IO_URING, fuse.enable_uring=1): with
 * libfuse >= 3.18 built with liburing, `-o io_uring` (a libfuse session option) makes
 * libfuse register one ring queue per CPU at INIT; once every queue is registered the
 * kernel sends requests through the rings (forgets and interrupts still through
 * /dev/fuse), served by libfuse's ring threads, which call the same handlers.  Each
 * logged request then carries flag bit 1 when fuse_req_is_uring() says it came over a
 * ring: the server's own account of the transport.  Against an older libfuse the bit is
 * never set (and `-o io_uring` is an unknown option).
 * bench/real/kernels/uring.py builds this variant.
 *
 * Compile with:
 *   cc -O2 -Wall -Wextra fwb_fuse_server.c $(pkg-config fuse3 --cflags --libs) -lm -o fwb_fuse_server
 *
 * Run (as root; -f keeps it in the foreground):
 *   fwb_fuse_server MOUNTPOINT -f --log=/tmp/w.log --stall=1000000000:2000000000
 */

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FWB_LOG_MAGIC "FWBWLOG"
#define FWB_LOG_VERSION 2
#define FWB_LOG_CHUNK (1 << 20)
#define FWB_MAX_STALLS 16
#define FWB_NAME_MAX 255
#define FWB_CHUNK ((size_t)1 << 20)	/* file data: chunks of this size ... */
#define FWB_SMALL ((size_t)64 << 10)	/* ... but a first chunk grows up to this by doubling */
#define FWB_POOL_MAX 128		/* freed full chunks kept for reuse (128 MiB) */
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)	/* <linux/fs.h>; glibc has it only with _GNU_SOURCE */
#endif

enum { LOG_WRITE = 0, LOG_READ = 1, LOG_FSYNC = 2, LOG_FLUSH = 3 };
enum { FLAG_WRITE_CACHE = 1, FLAG_URING = 2 };	/* log_record.flags */
enum { DELAY_FIXED = 0, DELAY_EXPONENTIAL = 1, DELAY_LOGNORMAL = 2 };

struct log_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint32_t record_size;
	uint32_t reserved;
	int64_t t_mount_ns;
};

struct log_record {
	int64_t t_recv_ns;
	int64_t t_reply_ns;
	uint64_t ino;
	int64_t offset;
	uint32_t size;
	uint16_t kind;
	uint16_t flags;
	uint32_t pid;
	uint32_t reserved;
};

_Static_assert(sizeof(struct log_header) == 32, "log header layout");
_Static_assert(sizeof(struct log_record) == 48, "log record layout");

/* FWB_CHUNK bytes of a file (chunk 0 of a small file: `cap` < FWB_CHUNK). */
struct chunk {
	char *mem;			/* NULL: a hole, reads as zeros */
	size_t cap;			/* bytes allocated */
	size_t fill;			/* bytes [fill, FWB_CHUNK) read as zeros */
};

/* A byte range a READ or WRITE is copying without the inode lock. */
struct range {
	size_t start, end;
	struct range *next;
};

/* One inode.  Index 0 of the table is the root directory (FUSE_ROOT_ID = 1). */
struct node {
	int used;
	char *name;			/* NULL once unlinked (or for the root) */
	fuse_ino_t parent;		/* directory holding `name` */
	mode_t mode;
	uint64_t nlookup;		/* kernel references (lookup/create minus forget) */
	pthread_mutex_t lock;		/* all below (not the bytes of a busy range) */
	pthread_cond_t idle;		/* a busy range has ended */
	struct range *busy;		/* ranges being copied */
	struct chunk *chunks;		/* a regular file's data */
	size_t n_chunks;
	char *data;			/* a symlink's target */
	size_t size;
	struct timespec atime, mtime, ctime;
};

/* Everything the server knows, in one place. */
struct fwb {
	/* options (fuse_opt fills these) */
	char *log_path;
	unsigned threads;
	unsigned max_write;
	unsigned max_background;
	char *delay_name;
	long long delay_ns;
	long long delay_page_ns;
	double sigma;
	unsigned long long seed;
	int no_writeback_cache;
	long long epoch_ns;		/* stall windows are relative to this; 0 = mount time */
	int parent;			/* --parent: end with this process (0: no watch) */
	int n_stalls;
	long long stall_start[FWB_MAX_STALLS], stall_len[FWB_MAX_STALLS];
	int show_help;

	/* derived */
	int delay_dist;
	int64_t t_mount_ns;
	int64_t stall_from[FWB_MAX_STALLS], stall_until[FWB_MAX_STALLS];
	struct fuse_session *se;

	/* inode table, guarded by `lock` (directory ops, allocation) */
	pthread_mutex_t lock;
	struct node **nodes;
	size_t n_nodes, cap_nodes;

	/* freed full chunks, linked through their first bytes */
	pthread_mutex_t pool_lock;
	char *pool;
	unsigned pool_n;

	/* the request log: records go to log_buf under log_lock; a full buffer is
	 * swapped with log_spare and written under write_lock alone */
	pthread_mutex_t log_lock, write_lock;
	int log_fd;
	int log_failed;
	struct log_record *log_buf, *log_spare;
	size_t log_n, log_cap;

	/* random state for service times (one stream, under rng_lock) */
	pthread_mutex_t rng_lock;
	uint64_t rng;
};

static struct fwb *fwb_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ---- the request log ---- */

/* Called with write_lock held: append n records to the log file. */
static void log_write_out(struct fwb *fs, const struct log_record *buf, size_t n_records)
{
	const char *p = (const char *)buf;
	size_t left = n_records * sizeof(struct log_record);

	while (left > 0 && !fs->log_failed) {
		ssize_t n = write(fs->log_fd, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Keep serving: a benchmark without its log is still a mount to clean up. */
			fuse_log(FUSE_LOG_ERR, "fwb: log write failed: %s\n", strerror(errno));
			fs->log_failed = 1;
			break;
		}
		p += n;
		left -= (size_t)n;
	}
}

/* A request's log flags; call it before the reply, which frees req. */
static int req_flags(fuse_req_t req, int cache)
{
	int flags = cache ? FLAG_WRITE_CACHE : 0;

#if FUSE_VERSION >= FUSE_MAKE_VERSION(3, 18)
	if (fuse_req_is_uring(req))
		flags |= FLAG_URING;
#else
	(void)req;
#endif
	return flags;
}

static void log_request_at(struct fwb *fs, int kind, fuse_ino_t ino, off_t off, size_t size,
			   int flags, pid_t pid, int64_t t_recv, int64_t t_reply)
{
	struct log_record r = {
		.t_recv_ns = t_recv, .t_reply_ns = t_reply, .ino = ino, .offset = off,
		.size = (uint32_t)size, .kind = (uint16_t)kind, .flags = (uint16_t)flags,
		.pid = (uint32_t)pid,
	};
	struct log_record *full;
	size_t n;

	if (fs->log_fd < 0)
		return;
	pthread_mutex_lock(&fs->log_lock);
	fs->log_buf[fs->log_n++] = r;
	if (fs->log_n < fs->log_cap) {
		pthread_mutex_unlock(&fs->log_lock);
		return;
	}
	/* Full: swap in the spare (written out already, since we hold write_lock) and
	 * write this one without holding up the other requests' records. */
	pthread_mutex_lock(&fs->write_lock);
	full = fs->log_buf;
	n = fs->log_n;
	fs->log_buf = fs->log_spare;
	fs->log_spare = full;
	fs->log_n = 0;
	pthread_mutex_unlock(&fs->log_lock);
	log_write_out(fs, full, n);
	pthread_mutex_unlock(&fs->write_lock);
}

static void log_request(struct fwb *fs, int kind, fuse_ino_t ino, off_t off, size_t size,
			int flags, pid_t pid, int64_t t_recv)
{
	log_request_at(fs, kind, ino, off, size, flags, pid, t_recv, now_ns());
}

static int log_open(struct fwb *fs)
{
	struct log_header h = {
		.version = FWB_LOG_VERSION, .header_size = sizeof(struct log_header),
		.record_size = sizeof(struct log_record), .t_mount_ns = fs->t_mount_ns,
	};

	memcpy(h.magic, FWB_LOG_MAGIC, sizeof(FWB_LOG_MAGIC));
	fs->log_cap = FWB_LOG_CHUNK / sizeof(struct log_record);
	fs->log_buf = malloc(fs->log_cap * sizeof(struct log_record));
	fs->log_spare = malloc(fs->log_cap * sizeof(struct log_record));
	if (fs->log_buf == NULL || fs->log_spare == NULL)
		return -1;
	fs->log_fd = open(fs->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fs->log_fd < 0)
		return -1;
	if (write(fs->log_fd, &h, sizeof(h)) != (ssize_t)sizeof(h))
		return -1;
	return 0;
}

/* ---- service times and stalls ---- */

static uint64_t rng_next(struct fwb *fs)
{
	uint64_t z;

	/* splitmix64: small, seedable, good enough for service times */
	pthread_mutex_lock(&fs->rng_lock);
	z = (fs->rng += 0x9e3779b97f4a7c15ULL);
	pthread_mutex_unlock(&fs->rng_lock);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A uniform double in (0, 1). */
static double rng_unit(struct fwb *fs)
{
	return ((double)(rng_next(fs) >> 11) + 0.5) * 0x1.0p-53;
}

/* Service time of one WRITE of `pages` pages: mean base + pages * per-page. */
static int64_t service_ns(struct fwb *fs, size_t pages)
{
	double mean = (double)fs->delay_ns + (double)fs->delay_page_ns * (double)pages;
	double u1, u2;

	if (mean <= 0)
		return 0;
	switch (fs->delay_dist) {
	case DELAY_EXPONENTIAL:
		return (int64_t)(-mean * log(rng_unit(fs)));
	case DELAY_LOGNORMAL:
		u1 = rng_unit(fs);
		u2 = rng_unit(fs);
		/* mu chosen so that the mean is `mean` */
		return (int64_t)exp(log(mean) - fs->sigma * fs->sigma / 2 +
				    fs->sigma * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
	default:
		return (int64_t)mean;
	}
}

/* Hold the calling thread while now is inside a stall window.  Gives up when the
 * session ends, so that unmount never waits for a window to close. */
static void stall_wait(struct fwb *fs)
{
	for (;;) {
		int64_t t = now_ns(), until = 0;
		int i;

		for (i = 0; i < fs->n_stalls; i++)
			if (t >= fs->stall_from[i] && t < fs->stall_until[i])
				until = fs->stall_until[i];
		if (until == 0 || fuse_session_exited(fs->se))
			return;
		sleep_ns(until - t < 10000000 ? until - t : 10000000);
	}
}

/* ---- inodes ---- */

static struct node *node_get(struct fwb *fs, fuse_ino_t ino)
{
	struct node *n = NULL;

	pthread_mutex_lock(&fs->lock);
	if (ino >= 1 && ino <= fs->n_nodes && fs->nodes[ino - 1]->used)
		n = fs->nodes[ino - 1];
	pthread_mutex_unlock(&fs->lock);
	return n;
}

/* Called with fs->lock held: the node of ino if it is a live directory. */
static struct node *dir_locked(struct fwb *fs, fuse_ino_t ino)
{
	struct node *n;

	if (ino < 1 || ino > fs->n_nodes)
		return NULL;
	n = fs->nodes[ino - 1];
	return n->used && S_ISDIR(n->mode) && (ino == FUSE_ROOT_ID || n->name != NULL) ? n : NULL;
}

/* Called with fs->lock held: the entry `name` of directory `parent`. */
static struct node *node_find(struct fwb *fs, fuse_ino_t parent, const char *name, fuse_ino_t *ino)
{
	size_t i;

	for (i = 1; i < fs->n_nodes; i++) {
		struct node *n = fs->nodes[i];

		if (n->used && n->name != NULL && n->parent == parent && strcmp(n->name, name) == 0) {
			*ino = i + 1;
			return n;
		}
	}
	return NULL;
}

/* Called with fs->lock held: a fresh inode or NULL.  Slots are never reused, so an
 * inode number means one file for the whole mount (the log relies on it); a freed
 * slot keeps only its small struct. */
static struct node *node_new(struct fwb *fs, fuse_ino_t *ino)
{
	struct node *n;
	size_t i = fs->n_nodes;

	if (fs->n_nodes == fs->cap_nodes) {
		size_t cap = fs->cap_nodes ? 2 * fs->cap_nodes : 64;
		struct node **p = realloc(fs->nodes, cap * sizeof(*p));

		if (p == NULL)
			return NULL;
		fs->nodes = p;
		fs->cap_nodes = cap;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->idle, NULL);
	fs->nodes[fs->n_nodes++] = n;
	n->used = 1;
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	n->atime = n->ctime = n->mtime;
	*ino = i + 1;
	return n;
}

/* ---- file data ---- */

/* A full chunk from the pool (its pages faulted in already), or NULL. */
static char *pool_take(struct fwb *fs)
{
	char *mem;

	pthread_mutex_lock(&fs->pool_lock);
	mem = fs->pool;
	if (mem != NULL) {
		memcpy(&fs->pool, mem, sizeof(fs->pool));
		fs->pool_n--;
	}
	pthread_mutex_unlock(&fs->pool_lock);
	return mem;
}

/* Give a full chunk back: to the pool, or to the system when the pool is full. */
static void pool_put(struct fwb *fs, char *mem)
{
	pthread_mutex_lock(&fs->pool_lock);
	if (fs->pool_n < FWB_POOL_MAX) {
		memcpy(mem, &fs->pool, sizeof(fs->pool));
		fs->pool = mem;
		fs->pool_n++;
		mem = NULL;
	}
	pthread_mutex_unlock(&fs->pool_lock);
	if (mem != NULL)
		munmap(mem, FWB_CHUNK);
}

/* A new full chunk, or NULL.  MAP_POPULATE: one system call faults it in, rather
 * than a page fault a page in the copy.  Called without any inode lock. */
static char *chunk_map(void)
{
	char *mem = mmap(NULL, FWB_CHUNK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return mem == MAP_FAILED ? NULL : mem;
}

/* Make k a hole. */
static void chunk_free(struct fwb *fs, struct chunk *k)
{
	if (k->mem != NULL && k->cap < FWB_CHUNK)
		free(k->mem);
	else if (k->mem != NULL)
		pool_put(fs, k->mem);
	*k = (struct chunk){ .mem = NULL };
}

/* Called with n->lock held and nobody copying to or from k: make chunk k (number c)
 * hold at least `need` bytes.  Only chunk 0 may be small; it moves as it grows.  A
 * full chunk comes from *spare or the pool; EAGAIN when both are empty. */
static int chunk_grow(struct fwb *fs, struct chunk *k, size_t c, size_t need, char **spare)
{
	size_t cap = k->cap ? k->cap : 4096;
	char *mem;

	if (c == 0 && need <= FWB_SMALL) {
		while (cap < need)
			cap *= 2;
		mem = realloc(k->mem, cap);
		if (mem == NULL)
			return ENOMEM;
	} else {
		cap = FWB_CHUNK;
		mem = *spare != NULL ? *spare : pool_take(fs);
		if (mem == NULL)
			return EAGAIN;
		*spare = NULL;
		if (k->mem != NULL)
			memcpy(mem, k->mem, k->fill);
		free(k->mem);	/* a small chunk (a full one never grows) */
	}
	k->mem = mem;
	k->cap = cap;
	return 0;
}

/* Called with n->lock held: whether a busy range overlaps [start, end). */
static int range_busy(struct node *n, size_t start, size_t end)
{
	struct range *r;

	for (r = n->busy; r != NULL; r = r->next)
		if (r->start < end && start < r->end)
			return 1;
	return 0;
}

/* Called with n->lock held: wait until nobody copies in r, then mark it busy. */
static void range_acquire(struct node *n, struct range *r)
{
	while (range_busy(n, r->start, r->end))
		pthread_cond_wait(&n->idle, &n->lock);
	r->next = n->busy;
	n->busy = r;
}

/* Called with n->lock held. */
static void range_release(struct node *n, struct range *r)
{
	struct range **p;

	for (p = &n->busy; *p != r; p = &(*p)->next)
		;
	*p = r->next;
	pthread_cond_broadcast(&n->idle);
}

/* Called with n->lock held: make the chunks under r (not empty) hold it, zero what
 * lies between their fill and r, and mark r busy; 0 or an errno.  A chunk to map
 * is mapped without the lock (other requests go on), into *spare: the caller gives
 * back what is left there. */
static int node_prepare_write(struct fwb *fs, struct node *n, struct range *r, char **spare)
{
	size_t first = r->start / FWB_CHUNK, last = (r->end - 1) / FWB_CHUNK, c;
	int err;

retry:
	while (range_busy(n, r->start, r->end))
		pthread_cond_wait(&n->idle, &n->lock);
	if (last >= n->n_chunks) {
		size_t count = last + 1 > 2 * n->n_chunks ? last + 1 : 2 * n->n_chunks;
		struct chunk *p = realloc(n->chunks, count * sizeof(*p));

		if (p == NULL)
			return ENOMEM;
		memset(p + n->n_chunks, 0, (count - n->n_chunks) * sizeof(*p));
		n->chunks = p;
		n->n_chunks = count;
	}
	for (c = first; c <= last; c++) {
		struct chunk *k = &n->chunks[c];
		size_t base = c * FWB_CHUNK;
		size_t end = r->end < base + FWB_CHUNK ? r->end - base : FWB_CHUNK;

		if (k->cap >= end)
			continue;
		if (k->mem != NULL && range_busy(n, base, base + k->cap)) {
			pthread_cond_wait(&n->idle, &n->lock);	/* it moves: wait for its copiers */
			goto retry;
		}
		err = chunk_grow(fs, k, c, end, spare);
		if (err == EAGAIN) {
			pthread_mutex_unlock(&n->lock);
			*spare = chunk_map();
			pthread_mutex_lock(&n->lock);
			if (*spare == NULL)
				return ENOMEM;
			goto retry;
		}
		if (err)
			return err;
	}
	for (c = first; c <= last; c++) {
		struct chunk *k = &n->chunks[c];
		size_t base = c * FWB_CHUNK;
		size_t start = r->start > base ? r->start - base : 0;
		size_t end = r->end < base + FWB_CHUNK ? r->end - base : FWB_CHUNK;

		/* nobody touches [fill, start): busy WRITEs lie below fill, and READs
		 * copy only below the fill they saw (under this lock) */
		if (start > k->fill)
			memset(k->mem + k->fill, 0, start - k->fill);
		if (end > k->fill)
			k->fill = end;
	}
	r->next = n->busy;
	n->busy = r;
	return 0;
}

/* Called with n->lock held: set the size; the data past it is dropped. */
static void node_truncate(struct fwb *fs, struct node *n, size_t size)
{
	size_t c;

	while (range_busy(n, size, SIZE_MAX))
		pthread_cond_wait(&n->idle, &n->lock);
	for (c = size / FWB_CHUNK; c < n->n_chunks; c++) {
		struct chunk *k = &n->chunks[c];
		size_t base = c * FWB_CHUNK;

		if (base >= size)
			chunk_free(fs, k);
		else if (k->fill > size - base)
			k->fill = size - base;	/* the tail reads as zeros from now on */
	}
	if (size == 0) {
		free(n->chunks);
		n->chunks = NULL;
		n->n_chunks = 0;
	}
	n->size = size;
}

/* Chunk c of a file whose range covering it is busy: its memory and fill. */
static struct chunk chunk_get(struct node *n, size_t c)
{
	struct chunk k = { .mem = NULL };

	pthread_mutex_lock(&n->lock);
	if (c < n->n_chunks)
		k = n->chunks[c];
	pthread_mutex_unlock(&n->lock);
	return k;
}

/* Copy a WRITE's data (in memory, or in the pipe it was spliced into) to a busy
 * range of a file (its chunks prepared); 0 or an errno. */
static int node_copy_in(struct node *n, struct fuse_bufvec *src, size_t off, size_t size)
{
	while (size > 0) {
		size_t in = off % FWB_CHUNK, len = FWB_CHUNK - in < size ? FWB_CHUNK - in : size;
		struct chunk k = chunk_get(n, off / FWB_CHUNK);
		struct fuse_bufvec dst = FUSE_BUFVEC_INIT(len);
		ssize_t res;

		dst.buf[0].mem = k.mem + in;
		res = fuse_buf_copy(&dst, src, 0);
		if (res < 0)
			return (int)-res;
		if ((size_t)res != len)
			return EIO;
		off += len;
		size -= len;
	}
	return 0;
}

/* Copy a busy range of a file into buf: zeros for holes and past a chunk's fill. */
static void node_copy_out(struct node *n, char *buf, size_t off, size_t size)
{
	while (size > 0) {
		size_t in = off % FWB_CHUNK, len = FWB_CHUNK - in < size ? FWB_CHUNK - in : size;
		struct chunk k = chunk_get(n, off / FWB_CHUNK);
		size_t have = k.fill > in ? k.fill - in : 0;

		if (have > len)
			have = len;
		if (have > 0)
			memcpy(buf, k.mem + in, have);
		memset(buf + have, 0, len - have);
		buf += len;
		off += len;
		size -= len;
	}
}

/* Drop an inode's data: once it is unused (under fs->lock) or at exit. */
static void node_free_data(struct fwb *fs, struct node *n)
{
	size_t c;

	for (c = 0; c < n->n_chunks; c++)
		chunk_free(fs, &n->chunks[c]);
	free(n->chunks);
	n->chunks = NULL;
	n->n_chunks = 0;
	free(n->data);
	n->data = NULL;
	n->size = 0;
}

/* Called with fs->lock held: drop an unlinked inode nobody references. */
static void node_maybe_free(struct fwb *fs, struct node *n)
{
	if (n->name == NULL && n->nlookup == 0) {
		node_free_data(fs, n);
		n->used = 0;
	}
}

static void node_stat(struct node *n, fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = n->mode;
	st->st_nlink = S_ISDIR(n->mode) ? 2 : (n->name != NULL);
	st->st_size = (off_t)n->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
	st->st_atim = n->atime;
	st->st_mtim = n->mtime;
	st->st_ctim = n->ctime;
}

static void reply_entry(fuse_req_t req, struct node *n, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_entry_param e = { .ino = ino, .attr_timeout = 1.0, .entry_timeout = 1.0 };

	pthread_mutex_lock(&n->lock);
	node_stat(n, ino, &e.attr);
	pthread_mutex_unlock(&n->lock);
	if (fi != NULL)
		fuse_reply_create(req, &e, fi);
	else
		fuse_reply_entry(req, &e);
}

/* ---- operations ---- */

static void fwb_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fwb *fs = userdata;

	if (fs->no_writeback_cache)
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	else if (conn->capable & FUSE_CAP_WRITEBACK_CACHE)
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		fuse_log(FUSE_LOG_WARNING, "fwb: the kernel offers no writeback cache\n");
	conn->max_write = fs->max_write;
	conn->max_background = fs->max_background;
}

static void fwb_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fwb *fs = fwb_of(req);
	struct node *n;
	fuse_ino_t ino;
	int err = 0;

	pthread_mutex_lock(&fs->lock);
	if (dir_locked(fs, parent) == NULL)
		err = ENOTDIR;
	else if ((n = node_find(fs, parent, name, &ino)) == NULL)
		err = ENOENT;
	else
		n->nlookup++;
	pthread_mutex_unlock(&fs->lock);
	if (err)
		fuse_reply_err(req, err);
	else
		reply_entry(req, n, ino, NULL);
}

static void fwb_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fwb *fs = fwb_of(req);

	pthread_mutex_lock(&fs->lock);
	if (ino > FUSE_ROOT_ID && ino <= fs->n_nodes && fs->nodes[ino - 1]->used) {
		struct node *n = fs->nodes[ino - 1];

		n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
		node_maybe_free(fs, n);
	}
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_none(req);
}

static void fwb_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = node_get(fwb_of(req), ino);
	struct stat st;

	(void)fi;
	if (n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	pthread_mutex_lock(&n->lock);
	node_stat(n, ino, &st);
	pthread_mutex_unlock(&n->lock);
	fuse_reply_attr(req, &st, 1.0);
}

static void set_time(struct timespec *dst, const struct timespec *src, int now)
{
	if (now)
		clock_gettime(CLOCK_REALTIME, dst);
	else
		*dst = *src;
}

static void fwb_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	struct fwb *fs = fwb_of(req);
	struct node *n = node_get(fs, ino);
	struct stat st;
	int err = 0;

	(void)fi;
	if (n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	pthread_mutex_lock(&n->lock);
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (S_ISDIR(n->mode))
			err = EISDIR;
		else if (attr->st_size < 0)
			err = EINVAL;
		else
			node_truncate(fs, n, (size_t)attr->st_size);
	}
	if (!err && (to_set & FUSE_SET_ATTR_MODE))
		n->mode = (n->mode & S_IFMT) | (attr->st_mode & 07777);
	if (!err && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)))
		set_time(&n->atime, &attr->st_atim, to_set & FUSE_SET_ATTR_ATIME_NOW);
	if (!err && (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)))
		set_time(&n->mtime, &attr->st_mtim, to_set & FUSE_SET_ATTR_MTIME_NOW);
	if (!err && (to_set & FUSE_SET_ATTR_CTIME))
		n->ctime = attr->st_ctim;
	else if (!err)
		clock_gettime(CLOCK_REALTIME, &n->ctime);
	/* uid/gid: every file belongs to root here; accept and ignore. */
	node_stat(n, ino, &st);
	pthread_mutex_unlock(&n->lock);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, 1.0);
}

/* Called with fs->lock held: a new entry `name` in `parent` (checked to be a
 * directory without that name), referenced once by the kernel; 0 or an errno. */
static int entry_new(struct fwb *fs, fuse_ino_t parent, const char *name, mode_t mode,
		     struct node **np, fuse_ino_t *ino)
{
	struct node *n;

	if (strlen(name) > FWB_NAME_MAX)
		return ENAMETOOLONG;
	if (dir_locked(fs, parent) == NULL)
		return ENOENT;
	if (node_find(fs, parent, name, ino) != NULL)
		return EEXIST;
	n = node_new(fs, ino);
	if (n == NULL)
		return ENOMEM;
	n->name = strdup(name);
	if (n->name == NULL) {
		n->used = 0;
		return ENOMEM;
	}
	n->parent = parent;
	n->mode = mode;
	n->nlookup = 1;
	*np = n;
	return 0;
}

static void fwb_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		       struct fuse_file_info *fi)
{
	struct fwb *fs = fwb_of(req);
	struct node *n = NULL;
	fuse_ino_t ino;
	int err;

	pthread_mutex_lock(&fs->lock);
	err = entry_new(fs, parent, name, S_IFREG | (mode & 07777), &n, &ino);
	if (err == EEXIST && !(fi->flags & O_EXCL)) {
		n = node_find(fs, parent, name, &ino);
		err = S_ISDIR(n->mode) ? EISDIR : 0;
		if (!err)
			n->nlookup++;
	}
	pthread_mutex_unlock(&fs->lock);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	if (fi->flags & O_TRUNC) {
		pthread_mutex_lock(&n->lock);
		node_truncate(fs, n, 0);
		pthread_mutex_unlock(&n->lock);
	}
	fi->keep_cache = 1;	/* only the kernel changes these files */
	reply_entry(req, n, ino, fi);
}

static void fwb_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fwb *fs = fwb_of(req);
	struct node *n = node_get(fs, ino);

	if (n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (S_ISDIR(n->mode)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (fi->flags & O_TRUNC) {
		pthread_mutex_lock(&n->lock);
		node_truncate(fs, n, 0);
		pthread_mutex_unlock(&n->lock);
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void fwb_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fwb *fs = fwb_of(req);
	struct node *n = node_get(fs, ino);
	int64_t t = now_ns();
	struct range r = { .start = (size_t)off, .end = (size_t)off };
	const char *direct = NULL;	/* the reply, when it lies in one chunk's fill */
	char *copy = NULL;
	size_t len = 0;
	pid_t pid;
	int flags;

	(void)fi;
	if (n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	pthread_mutex_lock(&n->lock);
	if ((size_t)off < n->size)
		len = n->size - (size_t)off < size ? n->size - (size_t)off : size;
	r.end += len;
	range_acquire(n, &r);	/* no WRITE or truncate changes it until we have replied */
	if (len > 0 && r.start / FWB_CHUNK < n->n_chunks) {
		struct chunk *k = &n->chunks[r.start / FWB_CHUNK];

		if (r.start % FWB_CHUNK + len <= k->fill)
			direct = k->mem + r.start % FWB_CHUNK;
	}
	pthread_mutex_unlock(&n->lock);
	if (len > 0 && direct == NULL) {
		copy = malloc(len);
		if (copy != NULL)
			node_copy_out(n, copy, r.start, len);
		direct = copy;
	}
	pid = fuse_req_ctx(req)->pid;	/* before the reply, which frees req */
	flags = req_flags(req, 0);
	if (len > 0 && direct == NULL)
		fuse_reply_err(req, ENOMEM);
	else
		fuse_reply_buf(req, direct, len);
	pthread_mutex_lock(&n->lock);
	range_release(n, &r);
	pthread_mutex_unlock(&n->lock);
	free(copy);
	log_request(fs, LOG_READ, ino, off, size, flags, pid, t);
}

/* write_buf rather than write: with FUSE_CAP_SPLICE_READ (on by default then) the
 * data arrives as page references in a pipe and is copied once, pipe to chunk. */
static void fwb_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			  struct fuse_file_info *fi)
{
	struct fwb *fs = fwb_of(req);
	struct node *n = node_get(fs, ino);
	size_t size = fuse_buf_size(in);
	int64_t t = now_ns(), svc, t_done;
	int flags = req_flags(req, fi->writepage);	/* FUSE_WRITE_CACHE: sent by writeback */
	pid_t pid = fuse_req_ctx(req)->pid;
	struct range r = { .start = (size_t)off, .end = (size_t)off + size };
	char *spare = NULL;
	size_t pages;
	int err = 0;

	if (n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	stall_wait(fs);
	pages = size ? ((size_t)off + size - 1) / 4096 - (size_t)off / 4096 + 1 : 0;
	svc = service_ns(fs, pages);
	if (svc > 0)
		sleep_ns(svc);
	/* Under the lock only: allocate, mark the range busy, set size and mtime. */
	pthread_mutex_lock(&n->lock);
	if (size > 0)
		err = node_prepare_write(fs, n, &r, &spare);
	if (!err) {
		if (r.end > n->size)
			n->size = r.end;
		clock_gettime(CLOCK_REALTIME, &n->mtime);
	}
	pthread_mutex_unlock(&n->lock);
	if (spare != NULL)
		pool_put(fs, spare);	/* another WRITE allocated the chunk meanwhile */
	if (!err && size > 0) {
		err = node_copy_in(n, in, r.start, size);
		pthread_mutex_lock(&n->lock);
		range_release(n, &r);
		pthread_mutex_unlock(&n->lock);
	}
	t_done = now_ns();	/* before the reply: the kernel may send the next WRITE of
				 * these pages as soon as it has the reply */
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, size);
	log_request_at(fs, LOG_WRITE, ino, off, size, flags, pid, t, t_done);
}

static void fwb_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fwb *fs = fwb_of(req);
	pid_t pid = fuse_req_ctx(req)->pid;
	int64_t t = now_ns();
	int flags = req_flags(req, 0);

	(void)fi;
	fuse_reply_err(req, 0);	/* close(2): the kernel has written back and waited already */
	log_request(fs, LOG_FLUSH, ino, 0, 0, flags, pid, t);
}

static void fwb_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fwb *fs = fwb_of(req);	/* before the reply, which frees req */
	pid_t pid = fuse_req_ctx(req)->pid;
	int64_t t = now_ns();
	int flags = req_flags(req, 0);

	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);	/* the data is in memory already: nothing to make durable */
	log_request(fs, LOG_FSYNC, ino, 0, 0, flags, pid, t);
}

static void fwb_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

/* Called with fs->lock held: whether directory ino has entries. */
static int dir_has_entries(struct fwb *fs, fuse_ino_t ino)
{
	size_t i;

	for (i = 1; i < fs->n_nodes; i++)
		if (fs->nodes[i]->used && fs->nodes[i]->name != NULL && fs->nodes[i]->parent == ino)
			return 1;
	return 0;
}

/* Called with fs->lock held: take the name away (the inode lives while referenced). */
static void entry_drop(struct fwb *fs, struct node *n)
{
	free(n->name);
	n->name = NULL;
	node_maybe_free(fs, n);
}

/* unlink(2) and rmdir(2): the same but for the kind of entry each accepts. */
static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, int want_dir)
{
	struct fwb *fs = fwb_of(req);
	struct node *n;
	fuse_ino_t ino;
	int err = 0;

	pthread_mutex_lock(&fs->lock);
	n = node_find(fs, parent, name, &ino);
	if (n == NULL)
		err = ENOENT;
	else if (!want_dir && S_ISDIR(n->mode))
		err = EISDIR;
	else if (want_dir && !S_ISDIR(n->mode))
		err = ENOTDIR;
	else if (want_dir && dir_has_entries(fs, ino))
		err = ENOTEMPTY;
	else
		entry_drop(fs, n);
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_err(req, err);
}

static void fwb_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, 0);
}

static void fwb_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, 1);
}

static void fwb_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fwb *fs = fwb_of(req);
	struct node *n = NULL;
	fuse_ino_t ino;
	int err;

	pthread_mutex_lock(&fs->lock);
	err = entry_new(fs, parent, name, S_IFDIR | (mode & 07777), &n, &ino);
	pthread_mutex_unlock(&fs->lock);
	if (err)
		fuse_reply_err(req, err);
	else
		reply_entry(req, n, ino, NULL);
}

static void fwb_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fwb *fs = fwb_of(req);
	struct node *n = NULL;
	fuse_ino_t ino;
	char *target = strdup(link);
	int err = ENOMEM;

	pthread_mutex_lock(&fs->lock);
	if (target != NULL)
		err = entry_new(fs, parent, name, S_IFLNK | 0777, &n, &ino);
	if (!err) {
		n->data = target;
		n->size = strlen(target);
		target = NULL;
	}
	pthread_mutex_unlock(&fs->lock);
	free(target);
	if (err)
		fuse_reply_err(req, err);
	else
		reply_entry(req, n, ino, NULL);
}

static void fwb_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct node *n = node_get(fwb_of(req), ino);
	char *target = NULL;

	if (n == NULL || !S_ISLNK(n->mode)) {
		fuse_reply_err(req, n == NULL ? ENOENT : EINVAL);
		return;
	}
	pthread_mutex_lock(&n->lock);
	target = strndup(n->data, n->size);
	pthread_mutex_unlock(&n->lock);
	if (target == NULL)
		fuse_reply_err(req, ENOMEM);
	else
		fuse_reply_readlink(req, target);
	free(target);
}

/* Called with fs->lock held: whether directory `ino` is `anc` or lies below it. */
static int dir_is_below(struct fwb *fs, fuse_ino_t ino, fuse_ino_t anc)
{
	while (ino != FUSE_ROOT_ID) {
		if (ino == anc)
			return 1;
		ino = fs->nodes[ino - 1]->parent;
	}
	return anc == FUSE_ROOT_ID;
}

static void fwb_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		       const char *newname, unsigned int flags)
{
	struct fwb *fs = fwb_of(req);
	struct node *n, *old;
	fuse_ino_t ino, old_ino;
	char *copy;
	int err = 0;

	if (flags & ~RENAME_NOREPLACE) {	/* RENAME_EXCHANGE, RENAME_WHITEOUT */
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (strlen(newname) > FWB_NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	copy = strdup(newname);
	if (copy == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&fs->lock);
	n = node_find(fs, parent, name, &ino);
	old = node_find(fs, newparent, newname, &old_ino);
	if (n == NULL)
		err = ENOENT;
	else if (dir_locked(fs, newparent) == NULL)
		err = ENOENT;
	else if (S_ISDIR(n->mode) && dir_is_below(fs, newparent, ino))
		err = EINVAL;	/* a directory into itself or below */
	else if (old == n)
		err = 0;	/* same entry: nothing to do */
	else if (old != NULL && (flags & RENAME_NOREPLACE))
		err = EEXIST;
	else if (old != NULL && S_ISDIR(old->mode) && !S_ISDIR(n->mode))
		err = EISDIR;
	else if (old != NULL && !S_ISDIR(old->mode) && S_ISDIR(n->mode))
		err = ENOTDIR;
	else if (old != NULL && S_ISDIR(old->mode) && dir_has_entries(fs, old_ino))
		err = ENOTEMPTY;
	if (!err && old != n) {
		if (old != NULL)
			entry_drop(fs, old);
		free(n->name);
		n->name = copy;
		n->parent = newparent;
		clock_gettime(CLOCK_REALTIME, &n->ctime);
		copy = NULL;
	}
	pthread_mutex_unlock(&fs->lock);
	free(copy);
	fuse_reply_err(req, err);
}

static void fwb_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	struct fwb *fs = fwb_of(req);
	struct node *dir;
	char *buf;
	size_t used = 0, i;
	off_t k = 0;

	(void)fi;
	buf = malloc(size);
	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Entry k has offset k + 1: ".", "..", then live names in table order. */
	pthread_mutex_lock(&fs->lock);
	dir = dir_locked(fs, ino);
	if (dir == NULL) {
		pthread_mutex_unlock(&fs->lock);
		free(buf);
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	for (i = 0; i <= fs->n_nodes; i++) {
		struct stat st = { 0 };
		const char *name;
		size_t need;

		if (i < 2) {
			name = i == 0 ? "." : "..";
			st.st_ino = i == 0 || ino == FUSE_ROOT_ID ? ino : dir->parent;
			st.st_mode = S_IFDIR;
		} else {
			struct node *n = fs->nodes[i - 1];

			if (!n->used || n->name == NULL || n->parent != ino)
				continue;
			name = n->name;
			st.st_ino = i;
			st.st_mode = n->mode;
		}
		if (k++ < off)
			continue;
		need = fuse_add_direntry(req, buf + used, size - used, name, &st, k);
		if (need > size - used)
			break;
		used += need;
	}
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fwb_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fwb *fs = fwb_of(req);
	struct statvfs sv = {
		.f_bsize = 4096, .f_frsize = 4096, .f_namemax = FWB_NAME_MAX,
		.f_blocks = 1ULL << 28, .f_files = 1ULL << 20,
	};
	uint64_t used = 0;
	size_t i;

	(void)ino;
	pthread_mutex_lock(&fs->lock);
	for (i = 0; i < fs->n_nodes; i++)
		if (fs->nodes[i]->used)
			used += (fs->nodes[i]->size + 4095) / 4096;
	sv.f_ffree = sv.f_favail = sv.f_files - fs->n_nodes;
	pthread_mutex_unlock(&fs->lock);
	sv.f_bfree = sv.f_bavail = sv.f_blocks > used ? sv.f_blocks - used : 0;
	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops fwb_ops = {
	.init = fwb_init,
	.lookup = fwb_lookup,
	.forget = fwb_forget,
	.getattr = fwb_getattr,
	.setattr = fwb_setattr,
	.create = fwb_create,
	.open = fwb_open,
	.read = fwb_read,
	.write_buf = fwb_write_buf,
	.flush = fwb_flush,
	.fsync = fwb_fsync,
	.release = fwb_release,
	.unlink = fwb_unlink,
	.mkdir = fwb_mkdir,
	.rmdir = fwb_rmdir,
	.rename = fwb_rename,
	.symlink = fwb_symlink,
	.readlink = fwb_readlink,
	.readdir = fwb_readdir,
	.statfs = fwb_statfs,
};

/* ---- options ---- */

enum { KEY_STALL, KEY_HELP };

#define FWB_OPT(t, p) { t, offsetof(struct fwb, p), 1 }
static const struct fuse_opt fwb_opts[] = {
	FWB_OPT("--log=%s", log_path),
	FWB_OPT("--threads=%u", threads),
	FWB_OPT("--max-write=%u", max_write),
	FWB_OPT("--max-background=%u", max_background),
	FWB_OPT("--delay=%s", delay_name),
	FWB_OPT("--delay-ns=%lld", delay_ns),
	FWB_OPT("--delay-page-ns=%lld", delay_page_ns),
	FWB_OPT("--sigma=%lf", sigma),
	FWB_OPT("--seed=%llu", seed),
	FWB_OPT("--epoch=%lld", epoch_ns),
	FWB_OPT("--parent=%d", parent),
	{ "--no-writeback-cache", offsetof(struct fwb, no_writeback_cache), 1 },
	FUSE_OPT_KEY("--stall=", KEY_STALL),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_END
};

static void usage(const char *prog)
{
	printf("usage: %s MOUNTPOINT [options]\n\n"
	       "fwb options:\n"
	       "    --log=PATH             binary log of WRITE/READ/FSYNC requests\n"
	       "    --threads=N            worker threads (default 16; keep above max-background)\n"
	       "    --max-write=BYTES      largest WRITE request (default 131072 = 32 pages)\n"
	       "    --max-background=N     kernel background request limit (default 12)\n"
	       "    --delay=DIST           WRITE service time: fixed, exponential, lognormal (default fixed)\n"
	       "    --delay-ns=NS          mean service time per WRITE, fixed part (default 0)\n"
	       "    --delay-page-ns=NS     mean service time per page carried (default 0)\n"
	       "    --sigma=S              lognormal sigma (default 0.5)\n"
	       "    --seed=N               seed of the service times (default 0)\n"
	       "    --epoch=NS             CLOCK_MONOTONIC origin of stall windows (default: mount time)\n"
	       "    --no-writeback-cache   write-through: every write(2) is a WRITE at once\n"
	       "    --parent=PID           unmount and end when PID (our parent) is gone, even\n"
	       "                           after SIGKILL of it: no mount outlives its owner\n"
	       "    --stall=START:LEN      hold WRITEs during [START, START+LEN) ns after the epoch;\n"
	       "                           repeatable, up to %d windows\n\n",
	       prog, FWB_MAX_STALLS);
}

static int fwb_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct fwb *fs = data;
	long long start, len;
	char tail;

	(void)outargs;
	switch (key) {
	case KEY_STALL:
		if (fs->n_stalls == FWB_MAX_STALLS) {
			fuse_log(FUSE_LOG_ERR, "fwb: at most %d --stall windows\n", FWB_MAX_STALLS);
			return -1;
		}
		if (sscanf(arg, "--stall=%lld:%lld%c", &start, &len, &tail) != 2 || start < 0 ||
		    len < 0) {
			fuse_log(FUSE_LOG_ERR, "fwb: bad %s (want --stall=START_NS:LEN_NS)\n", arg);
			return -1;
		}
		fs->stall_start[fs->n_stalls] = start;
		fs->stall_len[fs->n_stalls++] = len;
		return 0;
	case KEY_HELP:
		fs->show_help = 1;
		return 1;	/* keep it: fuse_parse_cmdline prints its own part */
	default:
		return 1;
	}
}

static int check_options(struct fwb *fs)
{
	static const char *const names[] = { "fixed", "exponential", "lognormal" };
	int i;

	fs->delay_dist = -1;
	for (i = 0; i < 3; i++)
		if (strcmp(fs->delay_name ? fs->delay_name : "fixed", names[i]) == 0)
			fs->delay_dist = i;
	if (fs->delay_dist < 0) {
		fuse_log(FUSE_LOG_ERR, "fwb: --delay must be fixed, exponential or lognormal\n");
		return -1;
	}
	if (fs->threads < 1 || fs->max_write < 4096 || fs->max_write > (1u << 20) ||
	    fs->max_background < 1 || fs->max_background > 65535 || fs->delay_ns < 0 ||
	    fs->delay_page_ns < 0 || fs->sigma < 0 || fs->sigma > 4) {
		fuse_log(FUSE_LOG_ERR, "fwb: an option is out of range (threads >= 1, "
			 "4096 <= max-write <= 1048576, 1 <= max-background <= 65535, "
			 "delays >= 0, 0 <= sigma <= 4)\n");
		return -1;
	}
	return 0;
}

/*
 * The parent watch: the server runs in a session of its own (a Ctrl-C reaches the Python side,
 * which unmounts), so nothing ends it when its owner is killed with SIGKILL.  A thread polls
 * getppid(): once the owner is gone (we were reparented), it detaches the mount and aborts
 * the connection through fusectl, so every waiter fails at once instead of hanging; the
 * session loop then ends with ENODEV and main() cleans up as on any other end.
 */
struct parent_watch {
	pid_t parent;
	unsigned long conn;		/* /sys/fs/fuse/connections/<conn>: the kernel's dev_t */
	const char *mountpoint;
};

/*
 * The connection number of the mount at `mnt`, from /proc/self/mountinfo (major:minor of its
 * superblock, as the kernel's dev_t, major << 20 | minor); 0 if it is not there.  Not stat(2):
 * before the session loop runs, nobody would answer the GETATTR.
 */
static unsigned long mount_conn(const char *mnt)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], point[4096];
	unsigned major, minor;
	unsigned long conn = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &major, &minor, point) == 3 &&
		    strcmp(point, mnt) == 0)
			conn = ((unsigned long)major << 20) | minor;	/* the last one is on top */
	fclose(f);
	return conn;
}

static void *parent_watch(void *arg)
{
	const struct parent_watch *w = arg;
	const struct timespec period = { 0, 100 * 1000 * 1000 };
	char path[96];
	int fd;

	while (getppid() == w->parent)
		nanosleep(&period, NULL);
	/* Detach first: once the connection is aborted, the session loop ends and main() exits,
	 * and libfuse's own unmount skips an aborted connection (POLLERR), so the detach must
	 * already be done by then. */
	if (umount2(w->mountpoint, MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
		fprintf(stderr, "fwb: cannot detach %s: %s\n", w->mountpoint, strerror(errno));
	fprintf(stderr, "fwb: parent %d is gone: mount detached, connection aborted\n",
		(int)w->parent);
	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%lu/abort", w->conn);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			fprintf(stderr, "fwb: cannot abort %s: %s\n", path, strerror(errno));
		close(fd);
	}
	return NULL;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts = { 0 };
	struct fuse_loop_config *config = NULL;
	struct fwb fs = {
		.threads = 16, .max_write = 131072, .max_background = 12, .sigma = 0.5,
		.log_fd = -1,
	};
	struct node *root;
	fuse_ino_t root_ino;
	struct parent_watch watch;
	pthread_t watch_tid;
	int64_t epoch;
	int ret = 1, i;

	pthread_mutex_init(&fs.lock, NULL);
	pthread_mutex_init(&fs.log_lock, NULL);
	pthread_mutex_init(&fs.write_lock, NULL);
	pthread_mutex_init(&fs.pool_lock, NULL);
	pthread_mutex_init(&fs.rng_lock, NULL);

	if (fuse_opt_parse(&args, &fs, fwb_opts, fwb_opt_proc) == -1)
		goto out_args;
	if (fuse_parse_cmdline(&args, &opts) != 0)
		goto out_args;
	if (opts.show_help || fs.show_help) {
		usage(argv[0]);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out_opts;
	}
	if (opts.show_version) {
		printf("FUSE library version %s\n", fuse_pkgversion());
		fuse_lowlevel_version();
		ret = 0;
		goto out_opts;
	}
	if (opts.mountpoint == NULL) {
		fprintf(stderr, "usage: %s MOUNTPOINT [options] (--help for more)\n", argv[0]);
		goto out_opts;
	}
	if (check_options(&fs) != 0)
		goto out_opts;
	fs.rng = fs.seed;

	pthread_mutex_lock(&fs.lock);
	root = node_new(&fs, &root_ino);
	if (root != NULL)
		root->mode = S_IFDIR | 0755;
	pthread_mutex_unlock(&fs.lock);
	if (root == NULL || root_ino != FUSE_ROOT_ID)
		goto out_nodes;

	fs.se = fuse_session_new(&args, &fwb_ops, sizeof(fwb_ops), &fs);
	if (fs.se == NULL)
		goto out_nodes;
	if (fuse_set_signal_handlers(fs.se) != 0)
		goto out_session;
	if (fuse_session_mount(fs.se, opts.mountpoint) != 0)
		goto out_signals;
	fs.t_mount_ns = now_ns();
	if (fs.log_path != NULL && log_open(&fs) != 0) {
		fprintf(stderr, "fwb: cannot write log %s: %s\n", fs.log_path, strerror(errno));
		goto out_unmount;
	}
	epoch = fs.epoch_ns > 0 ? fs.epoch_ns : fs.t_mount_ns;
	for (i = 0; i < fs.n_stalls; i++) {
		fs.stall_from[i] = epoch + fs.stall_start[i];
		fs.stall_until[i] = fs.stall_from[i] + fs.stall_len[i];
	}
	fuse_daemonize(opts.foreground);
	if (fs.parent > 0) {
		/* Started by a parent that is already gone: do not serve at all. */
		if (getppid() != fs.parent) {
			fprintf(stderr, "fwb: parent %d is gone before the loop started\n", fs.parent);
			goto out_log;
		}
		watch.parent = fs.parent;
		watch.conn = mount_conn(opts.mountpoint);
		watch.mountpoint = opts.mountpoint;
		if (pthread_create(&watch_tid, NULL, parent_watch, &watch) != 0 ||
		    pthread_detach(watch_tid) != 0) {
			fprintf(stderr, "fwb: cannot start the parent watch\n");
			goto out_log;
		}
	}

	config = fuse_loop_cfg_create();
	if (config == NULL)
		goto out_log;
	fuse_loop_cfg_set_clone_fd(config, opts.clone_fd);
	fuse_loop_cfg_set_max_threads(config, fs.threads);
	fuse_loop_cfg_set_idle_threads(config, fs.threads);	/* no thread churn */
	ret = opts.singlethread ? fuse_session_loop(fs.se) : fuse_session_loop_mt(fs.se, config);
	ret = ret < 0 ? 1 : 0;	/* a signal (> 0) is a normal end */

	fuse_loop_cfg_destroy(config);
out_log:
	if (fs.log_fd >= 0) {
		pthread_mutex_lock(&fs.log_lock);
		pthread_mutex_lock(&fs.write_lock);
		log_write_out(&fs, fs.log_buf, fs.log_n);
		fs.log_n = 0;
		pthread_mutex_unlock(&fs.write_lock);
		pthread_mutex_unlock(&fs.log_lock);
		if (close(fs.log_fd) != 0 || fs.log_failed)
			ret = 1;
	}
	free(fs.log_buf);
	free(fs.log_spare);
out_unmount:
	fuse_session_unmount(fs.se);
out_signals:
	fuse_remove_signal_handlers(fs.se);
out_session:
	fuse_session_destroy(fs.se);
out_nodes:
	for (i = 0; i < (int)fs.n_nodes; i++) {
		free(fs.nodes[i]->name);
		node_free_data(&fs, fs.nodes[i]);
		pthread_cond_destroy(&fs.nodes[i]->idle);
		pthread_mutex_destroy(&fs.nodes[i]->lock);
		free(fs.nodes[i]);
	}
	free(fs.nodes);
	while (fs.pool != NULL) {
		char *mem = fs.pool;

		memcpy(&fs.pool, mem, sizeof(fs.pool));
		munmap(mem, FWB_CHUNK);
	}
out_opts:
	free(opts.mountpoint);
out_args:
	fuse_opt_free_args(&args);
	free(fs.log_path);
	free(fs.delay_name);
	return ret;
}
