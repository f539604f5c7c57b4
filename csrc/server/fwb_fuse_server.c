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
 * Log format (little-endian, read by bench/mount.py with numpy):
 *   header, 32 bytes: char magic[8] = "FWBWLOG\0", uint32 version = 2,
 *                     uint32 header_size = 32, uint32 record_size = 48,
 *                     uint32 reserved, int64 t_mount_ns
 *   records, 48 bytes: int64 t_recv_ns, int64 t_reply_ns, uint64 ino,
 *                     int64 offset, uint32 size, uint16 kind (0 WRITE, 1 READ,
 *                     2 FSYNC, 3 FLUSH), uint16 flags (bit 0: FUSE_WRITE_CACHE),
 *                     uint32 pid, uint32 reserved
 *   Version 1 had 40-byte records without pid and reserved, and no FLUSH.
 * Records are buffered under one mutex and written in 1 MiB chunks, so logging
 * costs a memcpy per request; the log is complete once the server has exited.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FWB_LOG_MAGIC "FWBWLOG"
#define FWB_LOG_VERSION 2
#define FWB_LOG_CHUNK (1 << 20)
#define FWB_MAX_STALLS 16
#define FWB_NAME_MAX 255
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)	/* <linux/fs.h>; glibc has it only with _GNU_SOURCE */
#endif

enum { LOG_WRITE = 0, LOG_READ = 1, LOG_FSYNC = 2, LOG_FLUSH = 3 };
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

/* One inode.  Index 0 of the table is the root directory (FUSE_ROOT_ID = 1). */
struct node {
	int used;
	char *name;			/* NULL once unlinked (or for the root) */
	fuse_ino_t parent;		/* directory holding `name` */
	mode_t mode;
	uint64_t nlookup;		/* kernel references (lookup/create minus forget) */
	pthread_rwlock_t lock;		/* data, size, times */
	char *data;			/* file bytes, or a symlink's target */
	size_t size, cap;
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

	/* the request log */
	pthread_mutex_t log_lock;
	int log_fd;
	int log_failed;
	struct log_record *log_buf;
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

static void log_flush_locked(struct fwb *fs)
{
	const char *p = (const char *)fs->log_buf;
	size_t left = fs->log_n * sizeof(struct log_record);

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
	fs->log_n = 0;
}

static void log_request(struct fwb *fs, int kind, fuse_ino_t ino, off_t off, size_t size,
			int cache, pid_t pid, int64_t t_recv)
{
	struct log_record r = {
		.t_recv_ns = t_recv, .t_reply_ns = now_ns(), .ino = ino, .offset = off,
		.size = (uint32_t)size, .kind = (uint16_t)kind, .flags = cache ? 1 : 0,
		.pid = (uint32_t)pid,
	};

	if (fs->log_fd < 0)
		return;
	pthread_mutex_lock(&fs->log_lock);
	fs->log_buf[fs->log_n++] = r;
	if (fs->log_n == fs->log_cap)
		log_flush_locked(fs);
	pthread_mutex_unlock(&fs->log_lock);
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
	if (fs->log_buf == NULL)
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
	pthread_rwlock_init(&n->lock, NULL);
	fs->nodes[fs->n_nodes++] = n;
	n->used = 1;
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	n->atime = n->ctime = n->mtime;
	*ino = i + 1;
	return n;
}

/* Called with fs->lock held: drop an unlinked inode nobody references. */
static void node_maybe_free(struct node *n)
{
	if (n->name == NULL && n->nlookup == 0) {
		free(n->data);
		n->data = NULL;
		n->size = n->cap = 0;
		n->used = 0;
	}
}

/* Called with the node's write lock held. */
static int node_resize(struct node *n, size_t size)
{
	if (size > n->cap) {
		size_t cap = n->cap ? n->cap : 65536;
		char *p;

		while (cap < size)
			cap *= 2;
		p = realloc(n->data, cap);
		if (p == NULL)
			return ENOMEM;
		n->data = p;
		n->cap = cap;
	}
	if (size > n->size)
		memset(n->data + n->size, 0, size - n->size);
	n->size = size;
	return 0;
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

	pthread_rwlock_rdlock(&n->lock);
	node_stat(n, ino, &e.attr);
	pthread_rwlock_unlock(&n->lock);
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
		node_maybe_free(n);
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
	pthread_rwlock_rdlock(&n->lock);
	node_stat(n, ino, &st);
	pthread_rwlock_unlock(&n->lock);
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
	struct node *n = node_get(fwb_of(req), ino);
	struct stat st;
	int err = 0;

	(void)fi;
	if (n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	pthread_rwlock_wrlock(&n->lock);
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (S_ISDIR(n->mode))
			err = EISDIR;
		else if (attr->st_size < 0)
			err = EINVAL;
		else
			err = node_resize(n, (size_t)attr->st_size);
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
	pthread_rwlock_unlock(&n->lock);
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
		pthread_rwlock_wrlock(&n->lock);
		node_resize(n, 0);
		pthread_rwlock_unlock(&n->lock);
	}
	fi->keep_cache = 1;	/* only the kernel changes these files */
	reply_entry(req, n, ino, fi);
}

static void fwb_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = node_get(fwb_of(req), ino);

	if (n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (S_ISDIR(n->mode)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (fi->flags & O_TRUNC) {
		pthread_rwlock_wrlock(&n->lock);
		node_resize(n, 0);
		pthread_rwlock_unlock(&n->lock);
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
	size_t len = 0;
	pid_t pid;

	(void)fi;
	if (n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	pthread_rwlock_rdlock(&n->lock);
	if ((size_t)off < n->size)
		len = n->size - (size_t)off < size ? n->size - (size_t)off : size;
	pid = fuse_req_ctx(req)->pid;	/* before the reply, which frees req */
	fuse_reply_buf(req, len ? n->data + off : NULL, len);
	pthread_rwlock_unlock(&n->lock);
	log_request(fs, LOG_READ, ino, off, size, 0, pid, t);
}

static void fwb_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct fwb *fs = fwb_of(req);
	struct node *n = node_get(fs, ino);
	int64_t t = now_ns(), svc;
	int cache = fi->writepage;	/* FUSE_WRITE_CACHE: sent by page-cache writeback */
	pid_t pid = fuse_req_ctx(req)->pid;
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
	pthread_rwlock_wrlock(&n->lock);
	if ((size_t)off + size > n->size)
		err = node_resize(n, (size_t)off + size);
	if (!err) {
		memcpy(n->data + off, buf, size);
		clock_gettime(CLOCK_REALTIME, &n->mtime);
	}
	pthread_rwlock_unlock(&n->lock);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, size);
	log_request(fs, LOG_WRITE, ino, off, size, cache, pid, t);
}

static void fwb_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fwb *fs = fwb_of(req);
	pid_t pid = fuse_req_ctx(req)->pid;
	int64_t t = now_ns();

	(void)fi;
	fuse_reply_err(req, 0);	/* close(2): the kernel has written back and waited already */
	log_request(fs, LOG_FLUSH, ino, 0, 0, 0, pid, t);
}

static void fwb_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fwb *fs = fwb_of(req);	/* before the reply, which frees req */
	pid_t pid = fuse_req_ctx(req)->pid;
	int64_t t = now_ns();

	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);	/* the data is in memory already: nothing to make durable */
	log_request(fs, LOG_FSYNC, ino, 0, 0, 0, pid, t);
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
static void entry_drop(struct node *n)
{
	free(n->name);
	n->name = NULL;
	node_maybe_free(n);
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
		entry_drop(n);
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
		n->size = n->cap = strlen(target);
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
	pthread_rwlock_rdlock(&n->lock);
	target = strndup(n->data, n->size);
	pthread_rwlock_unlock(&n->lock);
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
			entry_drop(old);
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
	.write = fwb_write,
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
	int64_t epoch;
	int ret = 1, i;

	pthread_mutex_init(&fs.lock, NULL);
	pthread_mutex_init(&fs.log_lock, NULL);
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
		log_flush_locked(&fs);
		pthread_mutex_unlock(&fs.log_lock);
		if (close(fs.log_fd) != 0 || fs.log_failed)
			ret = 1;
	}
	free(fs.log_buf);
out_unmount:
	fuse_session_unmount(fs.se);
out_signals:
	fuse_remove_signal_handlers(fs.se);
out_session:
	fuse_session_destroy(fs.se);
out_nodes:
	for (i = 0; i < (int)fs.n_nodes; i++) {
		free(fs.nodes[i]->name);
		free(fs.nodes[i]->data);
		pthread_rwlock_destroy(&fs.nodes[i]->lock);
		free(fs.nodes[i]);
	}
	free(fs.nodes);
out_opts:
	free(opts.mountpoint);
out_args:
	fuse_opt_free_args(&args);
	free(fs.log_path);
	free(fs.delay_name);
	return ret;
}
