/*
 * fwb_guest_runner.c - runs an operation array on a FUSE mount inside a qemu guest,
 * where there is no Python: the guest-side twin of bench/real/mount.py's execute().
 *
 * Usage: fwb_guest_runner OPS_FILE RESULT_FILE MOUNT_DIR [DIO_DIR [T0_NS]]
 *
 * OPS_FILE (little-endian, written by bench/real/kernels/guest.py):
 *   header, 48 bytes: char magic[8] = "FWBOPS1\0", uint32 n_threads, uint32 n_files,
 *                     int64 n_ops, int64 dio_len, int64 sample_interval_ns,
 *                     int64 reserved
 *   int64 file_size[n_files], int64 map_len[n_files]
 *   n_ops rows of 40 bytes: bench.sim.ops.OP_DTYPE (struct fwb_drv_op)
 *
 * The files MOUNT_DIR/f<i> are created and truncated to max(file_size, map_len),
 * as the host's runner does; with DIO_READ rows a source file of dio_len random
 * bytes is written to DIO_DIR (default /tmp) first, or, when DIO_DIR is a block device
 * (a RAM disk, for kernels whose tmpfs has no O_DIRECT), to the device itself.  A sampler thread reads
 * /proc/meminfo, the FUSE connection's `waiting` count and the mount's bdi limits
 * every sample_interval_ns while the driver (csrc/driver/fwb_driver.c) runs.  T0_NS, when
 * given and > 0, is the CLOCK_MONOTONIC time of the run's time 0 (the server's --epoch, so
 * that its stall windows are times of the run); by default time 0 is when the driver starts.
 *
 * RESULT_FILE:
 *   header, 64 bytes: char magic[8] = "FWBRES1\0", int32 rc, int32 err_row,
 *                     int32 err_errno, int32 failed, int64 n_ops, int64 n_samples,
 *                     int64 t0_ns, int64 compact_skipped, int64 t_end_ns
 *   int64 start_ns[n_ops], int64 latency_ns[n_ops], int64 faults[n_ops]
 *   n_samples rows of 9 int64 (bench/real/mount.py SAMPLE_DTYPE): time_ns (CLOCK_MONOTONIC),
 *   Dirty, Writeback, WritebackTmp, Cached, AnonPages (kB), waiting, bdi max_ratio,
 *   bdi strict_limit; -1 where a source is missing.
 * Exit status: 0 when the result file was written (the driver's own error is in rc),
 * 1 otherwise, with one line on stderr.
 *
 * A lost connection (for runs on a FUSE request timeout): when the environment holds
 * FWB_GO_ON_OUT, the runner keeps one descriptor of every file open over the run, and when the
 * driver stops at a call that failed with ENOTCONN, ECONNABORTED or EIO (what calls on an
 * aborted FUSE connection return), it goes on by itself: the rows not run yet, in time order on
 * one thread (each at max(its time, the end of the previous one); WRITE, FSYNC and SYNC rows,
 * any other row is left not run), on those descriptors, as an application holding its files
 * open would.  Every failed call, the driver's included, is a line "row errno start_ns end_ns"
 * (times from time 0) in FWB_GO_ON_OUT and has latency -1; the header's rc is then 0, its
 * err_row / err_errno name the first failed call and `failed` (the otherwise reserved field)
 * counts them.
 *
 * Tracing (optional, for measuring the kernel's writeback state over a run): when the
 * environment holds FWB_TRACE and FWB_TRACE_OUT, every sample also reads the files FWB_TRACE
 * names and appends one text line to FWB_TRACE_OUT: "<time_ns> key=value key=value ...".
 * FWB_TRACE is a comma-separated list of "PATH" or "PATH:PREFIX|PREFIX...", where "{bdi}" in
 * PATH becomes the mount's MAJ:MIN and only lines starting with a PREFIX are kept; of each
 * line, the key is its first word (a trailing ':' dropped) and the value the integer after it
 * (so /proc/vmstat's "nr_dirtied 5" and debugfs bdi stats' "BdiWriteback:  8 kB" both work).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "fwb_driver.h"

#define OPS_MAGIC "FWBOPS1"
#define RES_MAGIC "FWBRES1"
#define MAX_FILES 1024
#define SAMPLE_FIELDS 9
#define MAX_TRACE 8

struct ops_header {
	char magic[8];
	uint32_t n_threads;
	uint32_t n_files;
	int64_t n_ops;
	int64_t dio_len;
	int64_t sample_interval_ns;
	int64_t reserved;
};

struct res_header {
	char magic[8];
	int32_t rc;
	int32_t err_row;
	int32_t err_errno;
	int32_t failed;			/* calls failed on a lost connection (FWB_GO_ON_OUT) */
	int64_t n_ops;
	int64_t n_samples;
	int64_t t0_ns;
	int64_t compact_skipped;
	int64_t t_end_ns;
};

_Static_assert(sizeof(struct ops_header) == 48, "ops header layout");
_Static_assert(sizeof(struct res_header) == 64, "result header layout");

struct sampler {
	pthread_t tid;
	int64_t interval_ns;
	char bdi[128];			/* /sys/class/bdi/MAJ:MIN */
	char waiting[300];		/* /sys/fs/fuse/connections/N/waiting, or "" */
	int64_t *rows;			/* SAMPLE_FIELDS per sample */
	int64_t n, cap;
	int done;			/* set by the main thread under `lock` */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int failed;
	FILE *trace_out;		/* FWB_TRACE_OUT, or NULL */
	int n_trace;
	char trace_path[MAX_TRACE][256];
	char trace_keep[MAX_TRACE][256];	/* "PREFIX|PREFIX", or "" for every line */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int die(const char *what, const char *arg)
{
	fprintf(stderr, "fwb_guest_runner: %s%s%s%s%s\n", what, arg ? " " : "", arg ? arg : "",
		errno ? ": " : "", errno ? strerror(errno) : "");
	return 1;
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t r = read(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = 0;
			return -1;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t r = write(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int64_t read_int(const char *path)
{
	char buf[64];
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return -1;
	buf[r] = '\0';
	return strtoll(buf, NULL, 10);
}

/* Dirty, Writeback, WritebackTmp, Cached, AnonPages in kB (-1: missing). */
static void read_meminfo(int64_t out[5])
{
	static const char *const keys[5] = { "Dirty:", "Writeback:", "WritebackTmp:", "Cached:",
					     "AnonPages:" };
	char buf[8192];
	ssize_t r;
	int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC), i;

	for (i = 0; i < 5; i++)
		out[i] = -1;
	if (fd < 0)
		return;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return;
	buf[r] = '\0';
	for (i = 0; i < 5; i++) {
		size_t k = strlen(keys[i]);
		const char *p = buf;

		while (p != NULL && *p != '\0') {
			if (strncmp(p, keys[i], k) == 0) {
				out[i] = strtoll(p + k, NULL, 10);
				break;
			}
			p = strchr(p, '\n');
			if (p != NULL)
				p++;
		}
	}
}

static int trace_keeps(const char *keep, const char *line)
{
	const char *p = keep;

	if (*keep == '\0')
		return 1;
	while (*p != '\0') {
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t)(bar - p) : strlen(p);

		if (n > 0 && strncmp(line, p, n) == 0)
			return 1;
		p += n + (bar != NULL);
	}
	return 0;
}

/* One line of FWB_TRACE_OUT: the time, then key=value of every kept line of every file. */
static void trace_once(struct sampler *s, int64_t t)
{
	static char buf[65536];
	int i;

	fprintf(s->trace_out, "%lld", (long long)t);
	for (i = 0; i < s->n_trace; i++) {
		ssize_t r;
		char *line, *next;
		int fd = open(s->trace_path[i], O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			continue;
		r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		for (line = buf; line != NULL && *line != '\0'; line = next) {
			char *end, *colon;
			long long v;
			size_t k;

			next = strchr(line, '\n');
			if (next != NULL)
				*next++ = '\0';
			if (!trace_keeps(s->trace_keep[i], line))
				continue;
			k = strcspn(line, " \t");
			if (k == 0 || line[k] == '\0')
				continue;
			line[k] = '\0';
			colon = line + k - 1;
			if (*colon == ':')
				*colon = '\0';
			v = strtoll(line + k + 1, &end, 10);
			if (end != line + k + 1)
				fprintf(s->trace_out, " %s=%lld", line, v);
		}
	}
	fputc('\n', s->trace_out);
}

/* FWB_TRACE / FWB_TRACE_OUT (see the top of this file); 0 when absent or set up. */
static int trace_setup(struct sampler *s, dev_t dev)
{
	const char *spec = getenv("FWB_TRACE"), *out = getenv("FWB_TRACE_OUT");
	char devname[32];

	if (spec == NULL || out == NULL || *spec == '\0')
		return 0;
	snprintf(devname, sizeof(devname), "%u:%u", major(dev), minor(dev));
	while (*spec != '\0') {
		size_t n = strcspn(spec, ","), j = 0, k;
		const char *colon = memchr(spec, ':', n), *p;
		size_t plen = colon ? (size_t)(colon - spec) : n;

		if (s->n_trace == MAX_TRACE)
			return -1;
		for (p = spec; p < spec + plen && j + sizeof(devname) < sizeof(s->trace_path[0]); p++) {
			if (strncmp(p, "{bdi}", 5) == 0 && p + 5 <= spec + plen) {
				j += (size_t)snprintf(s->trace_path[s->n_trace] + j,
						      sizeof(s->trace_path[0]) - j, "%s", devname);
				p += 4;
			} else {
				s->trace_path[s->n_trace][j++] = *p;
			}
		}
		s->trace_path[s->n_trace][j] = '\0';
		k = colon ? n - plen - 1 : 0;
		if (k >= sizeof(s->trace_keep[0]))
			return -1;
		if (colon)
			memcpy(s->trace_keep[s->n_trace], colon + 1, k);
		s->trace_keep[s->n_trace][k] = '\0';
		s->n_trace++;
		spec += n + (spec[n] == ',');
	}
	s->trace_out = fopen(out, "we");
	return s->trace_out == NULL ? -1 : 0;
}

static void sample_once(struct sampler *s)
{
	int64_t row[SAMPLE_FIELDS];
	char path[192];

	row[0] = now_ns();
	read_meminfo(row + 1);
	row[6] = s->waiting[0] ? read_int(s->waiting) : -1;
	snprintf(path, sizeof(path), "%s/max_ratio", s->bdi);
	row[7] = read_int(path);
	snprintf(path, sizeof(path), "%s/strict_limit", s->bdi);
	row[8] = read_int(path);
	if (s->trace_out != NULL)
		trace_once(s, row[0]);
	if (s->n == s->cap) {
		int64_t cap = s->cap ? s->cap * 2 : 4096;
		int64_t *rows = realloc(s->rows, (size_t)cap * SAMPLE_FIELDS * sizeof(int64_t));

		if (rows == NULL) {
			s->failed = 1;
			return;
		}
		s->rows = rows;
		s->cap = cap;
	}
	memcpy(s->rows + s->n * SAMPLE_FIELDS, row, sizeof(row));
	s->n++;
}

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;
	int64_t next = now_ns();

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct timespec ts;

		pthread_mutex_unlock(&s->lock);
		sample_once(s);
		pthread_mutex_lock(&s->lock);
		if (s->done)
			break;
		next += s->interval_ns;
		if (next < now_ns())
			next = now_ns();
		ts.tv_sec = next / 1000000000;
		ts.tv_nsec = next % 1000000000;
		while (!s->done && pthread_cond_timedwait(&s->cond, &s->lock, &ts) == 0)
			;
		if (s->done) {
			pthread_mutex_unlock(&s->lock);
			sample_once(s);
			return NULL;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* The fusectl `waiting` file of the mount's connection (its number is the device minor). */
static void find_waiting(struct sampler *s, dev_t dev)
{
	snprintf(s->waiting, sizeof(s->waiting), "/sys/fs/fuse/connections/%u/waiting", minor(dev));
	if (access(s->waiting, R_OK) != 0)
		s->waiting[0] = '\0';
}

static int make_dio_source(const char *dir, int64_t len, char *path, size_t path_len)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	char buf[65536];
	int64_t done = 0;
	struct stat st;
	int fd;

	if (stat(dir, &st) == 0 && S_ISBLK(st.st_mode)) {
		snprintf(path, path_len, "%s", dir);
		fd = open(path, O_WRONLY | O_CLOEXEC);
	} else {
		snprintf(path, path_len, "%s/fwb-dio-source", dir);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return -1;
	while (done < len) {
		size_t i, n = (size_t)(len - done) < sizeof(buf) ? (size_t)(len - done) : sizeof(buf);

		for (i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = (char)(x >> 24);
		}
		if (write_all(fd, buf, n) != 0) {
			close(fd);
			return -1;
		}
		done += (int64_t)n;
	}
	if (fsync(fd) != 0 && errno != EINVAL) {
		close(fd);
		return -1;
	}
	return close(fd);
}

/* ---- going on after the connection is lost (FWB_GO_ON_OUT) ---- */

/* Op codes of bench.sim.ops (csrc/driver/fwb_driver.c keeps the same list). */
enum { GO_WRITE = 0, GO_FSYNC = 3, GO_SYNC = 5 };

static int connection_lost(int err)
{
	return err == ENOTCONN || err == ECONNABORTED || err == EIO;
}

/*
 * The driver stopped at row `bad` (errno `err`, returned at t_bad, absolute): record it, then
 * run the rows not run yet on `fds`, each at max(its time, the end of its thread's last row).
 * Returns the number of failed calls, or -1 when the list cannot be written.
 */
static int go_on(FILE *list, const fwb_drv_op *ops, int64_t n_ops, uint32_t n_threads,
		 const int *fds, int64_t t0, int64_t *start, int64_t *lat, int32_t bad, int err,
		 int64_t t_bad)
{
	static char buf[1 << 20];
	int64_t *thread_end = calloc(n_threads, sizeof(int64_t)), row;
	int failed = 0;

	if (thread_end == NULL)
		return -1;
	memset(buf, 0x5a, sizeof(buf));
	for (row = 0; row < n_ops; row++)		/* rows run in index order per thread */
		if (start[row] >= 0 && lat[row] >= 0)
			thread_end[ops[row].thread] = start[row] + lat[row];
	start[bad] = ops[bad].time > thread_end[ops[bad].thread] ? ops[bad].time
								 : thread_end[ops[bad].thread];
	lat[bad] = -1;
	thread_end[ops[bad].thread] = t_bad - t0;
	fprintf(list, "%d %d %lld %lld\n", bad, err, (long long)start[bad], (long long)(t_bad - t0));
	failed++;
	for (row = 0; row < n_ops; row++) {
		const fwb_drv_op *op = &ops[row];
		int64_t at, t1, t2;
		int e = 0;

		if (start[row] >= 0 || (op->op != GO_WRITE && op->op != GO_FSYNC && op->op != GO_SYNC))
			continue;
		at = t0 + (op->time > thread_end[op->thread] ? op->time : thread_end[op->thread]);
		while ((t1 = now_ns()) < at) {
			struct timespec ts = { (at - t1) / 1000000000, (at - t1) % 1000000000 };

			nanosleep(&ts, NULL);
		}
		if (op->op == GO_WRITE)
			e = fwb_drv_write_row(fds[op->file], op, buf, (int64_t)sizeof(buf));
		else if (op->op == GO_FSYNC)
			e = fsync(fds[op->file]) ? errno : 0;
		else
			sync();
		t2 = now_ns();
		start[row] = t1 - t0;
		lat[row] = e ? -1 : t2 - t1;
		thread_end[op->thread] = t2 - t0;
		if (e) {
			fprintf(list, "%lld %d %lld %lld\n", (long long)row, e, (long long)(t1 - t0),
				(long long)(t2 - t0));
			failed++;
		}
	}
	free(thread_end);
	return ferror(list) ? -1 : failed;
}

int main(int argc, char **argv)
{
	struct ops_header h;
	struct res_header r;
	struct sampler s;
	struct stat st;
	pthread_condattr_t ca;
	fwb_drv_run run;
	int64_t *sizes = NULL, *map_len = NULL, *start = NULL, *lat = NULL, *faults = NULL;
	fwb_drv_op *ops = NULL;
	char **paths = NULL, dio_path[512];
	const char *go_on_path = getenv("FWB_GO_ON_OUT");
	FILE *go_list = NULL;
	int *held = NULL;		/* FWB_GO_ON_OUT: a descriptor of each file, kept open */
	int32_t stop = 0;
	int fd, out, ret = 1;
	uint32_t i;

	if (argc < 4 || argc > 6) {
		fprintf(stderr, "usage: %s OPS_FILE RESULT_FILE MOUNT_DIR [DIO_DIR [T0_NS]]\n",
			argv[0]);
		return 1;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return die("cannot open", argv[1]);
	errno = 0;
	if (read_all(fd, &h, sizeof(h)) != 0 || memcmp(h.magic, OPS_MAGIC, 8) != 0 ||
	    h.n_files < 1 || h.n_files > MAX_FILES || h.n_ops < 1 || h.n_ops > ((int64_t)1 << 30) ||
	    h.n_threads < 1 || h.sample_interval_ns < 100000) {
		close(fd);
		return die("not an op file:", argv[1]);
	}
	sizes = calloc(h.n_files, sizeof(int64_t));
	map_len = calloc(h.n_files, sizeof(int64_t));
	paths = calloc(h.n_files, sizeof(char *));
	ops = calloc((size_t)h.n_ops, sizeof(fwb_drv_op));
	start = calloc((size_t)h.n_ops, sizeof(int64_t));
	lat = calloc((size_t)h.n_ops, sizeof(int64_t));
	faults = calloc((size_t)h.n_ops, sizeof(int64_t));
	held = calloc(h.n_files, sizeof(int));
	if (!sizes || !map_len || !paths || !ops || !start || !lat || !faults || !held) {
		close(fd);
		die("out of memory", NULL);
		goto out_free;
	}
	errno = 0;
	if (read_all(fd, sizes, h.n_files * sizeof(int64_t)) != 0 ||
	    read_all(fd, map_len, h.n_files * sizeof(int64_t)) != 0 ||
	    read_all(fd, ops, (size_t)h.n_ops * sizeof(fwb_drv_op)) != 0) {
		close(fd);
		die("short op file:", argv[1]);
		goto out_free;
	}
	close(fd);
	for (i = 0; i < h.n_files; i++)
		held[i] = -1;

	for (i = 0; i < h.n_files; i++) {
		size_t len = strlen(argv[3]) + 16;
		int64_t size = sizes[i] > map_len[i] ? sizes[i] : map_len[i];

		paths[i] = malloc(len);
		if (paths[i] == NULL) {
			die("out of memory", NULL);
			goto out_free;
		}
		snprintf(paths[i], len, "%s/f%u", argv[3], i);
		fd = open(paths[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || ftruncate(fd, size) != 0) {
			die("cannot create", paths[i]);
			if (fd >= 0)
				close(fd);
			goto out_free;
		}
		if (go_on_path != NULL)
			held[i] = fd;
		else
			close(fd);
	}
	if (go_on_path != NULL && (go_list = fopen(go_on_path, "we")) == NULL) {
		die("cannot write", go_on_path);
		goto out_free;
	}
	dio_path[0] = '\0';
	if (h.dio_len > 0 &&
	    make_dio_source(argc >= 5 ? argv[4] : "/tmp", h.dio_len, dio_path, sizeof(dio_path)) != 0) {
		die("cannot write the O_DIRECT source", dio_path);
		goto out_free;
	}

	memset(&s, 0, sizeof(s));
	s.interval_ns = h.sample_interval_ns;
	if (stat(argv[3], &st) != 0) {
		die("cannot stat", argv[3]);
		goto out_free;
	}
	snprintf(s.bdi, sizeof(s.bdi), "/sys/class/bdi/%u:%u", major(st.st_dev), minor(st.st_dev));
	find_waiting(&s, st.st_dev);
	errno = 0;
	if (trace_setup(&s, st.st_dev) != 0) {
		die("bad FWB_TRACE or cannot write FWB_TRACE_OUT", getenv("FWB_TRACE_OUT"));
		goto out_free;
	}
	pthread_mutex_init(&s.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);	/* the deadlines are monotonic */
	pthread_cond_init(&s.cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&s.tid, NULL, sampler_main, &s) != 0) {
		die("cannot start the sampler", NULL);
		if (s.trace_out != NULL)
			fclose(s.trace_out);
		goto out_free;
	}

	memset(&run, 0, sizeof(run));
	run.ops = ops;
	run.n_ops = h.n_ops;
	run.n_threads = (int32_t)h.n_threads;
	run.n_files = (int32_t)h.n_files;
	run.paths = paths;
	run.map_len = map_len;
	run.dio_path = dio_path[0] ? dio_path : NULL;
	run.dio_len = h.dio_len;
	run.t0_ns = argc == 6 ? strtoll(argv[5], NULL, 10) : 0;
	run.stop = &stop;
	run.start_ns = start;
	run.latency_ns = lat;
	run.faults = faults;
	memset(&r, 0, sizeof(r));
	r.rc = fwb_drive(&run);
	r.t_end_ns = now_ns();
	if (go_list != NULL && r.rc == FWB_DRV_ESYSCALL && connection_lost(run.err_errno)) {
		r.failed = go_on(go_list, ops, h.n_ops, h.n_threads, held, run.t0_used_ns, start, lat,
				 run.err_row, run.err_errno, r.t_end_ns);
		r.rc = r.failed < 0 ? FWB_DRV_ENOMEM : FWB_DRV_OK;
		r.t_end_ns = now_ns();
	}

	pthread_mutex_lock(&s.lock);
	s.done = 1;
	pthread_cond_signal(&s.cond);
	pthread_mutex_unlock(&s.lock);
	pthread_join(s.tid, NULL);

	memcpy(r.magic, RES_MAGIC, 8);
	r.err_row = run.err_row;
	r.err_errno = run.err_errno;
	r.n_ops = h.n_ops;
	r.n_samples = s.n;
	r.t0_ns = run.t0_used_ns;
	r.compact_skipped = run.compact_skipped;
	if (r.rc != 0)
		fprintf(stderr, "fwb_guest_runner: driver: %s (row %d, errno %d)\n",
			fwb_drv_strerror(r.rc), run.err_row, run.err_errno);
	out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		die("cannot write", argv[2]);
		goto out_samples;
	}
	if (s.failed || write_all(out, &r, sizeof(r)) != 0 ||
	    write_all(out, start, (size_t)h.n_ops * sizeof(int64_t)) != 0 ||
	    write_all(out, lat, (size_t)h.n_ops * sizeof(int64_t)) != 0 ||
	    write_all(out, faults, (size_t)h.n_ops * sizeof(int64_t)) != 0 ||
	    write_all(out, s.rows, (size_t)s.n * SAMPLE_FIELDS * sizeof(int64_t)) != 0 ||
	    fsync(out) != 0) {
		die(s.failed ? "sampler out of memory for" : "cannot write", argv[2]);
		close(out);
		goto out_samples;
	}
	ret = close(out) == 0 ? 0 : die("cannot close", argv[2]);
out_samples:
	if (s.trace_out != NULL && fclose(s.trace_out) != 0 && ret == 0)
		ret = die("cannot write", getenv("FWB_TRACE_OUT"));
	free(s.rows);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
out_free:
	if (go_list != NULL && fclose(go_list) != 0 && ret == 0)
		ret = die("cannot write", go_on_path);
	for (i = 0; held != NULL && i < h.n_files; i++)
		if (held[i] >= 0)
			close(held[i]);
	free(held);
	if (paths != NULL)
		for (i = 0; i < h.n_files; i++)
			free(paths[i]);
	free(paths);
	free(sizes);
	free(map_len);
	free(ops);
	free(start);
	free(lat);
	free(faults);
	return ret;
}
