/*
 * asan_driver.c - run the C engine outside Python, for the sanitizers.
 *
 * Built by tests/test_c_sanitizers.py from every .c file in csrc/ and this one:
 *   cc -std=c99 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
 *      -ffp-contract=off -Icsrc csrc/<all>.c tests/c/asan_driver.c -lm
 *
 * Input file: the raw bytes of one fwb_config, then int64 n_ops, int64 n_files,
 * uint64 seed, then n_ops fwb_op rows and n_files int64 sizes (native layout, as
 * tests/test_c_sanitizers.py writes it).  Prints every counter as "name value"
 * (bench.refsim.COUNTERS), the non-zero histogram buckets as "hist_<pages> count",
 * "lat_<name>_n" / "lat_<name>_sum" for each latency set, "series_n" and
 * "series_sum" (sums modulo 2**64, unsigned), and "bare_loop" (fwb_bare_loop's
 * checksum on the same input).  Then the same rows as a stream (fwb_run_stream, a
 * fill that hands out each thread's rows STREAM_CHUNK at a time): "stream_same 1" if
 * its result is fwb_run's, "stream_fold_same 1" if with latency_exact = 1 every
 * latency set holds the same count and max in its histogram, and the error codes of
 * a chunk of another thread's rows ("stream_einval") and of a failing fill
 * ("stream_efill").
 * With a second argument, a fwb_layout number, it runs fwb_run_layout in that
 * layout instead of fwb_run.
 * Exit status 0 on success, 1 on a bad input file, 2 if fwb_run fails (its error
 * code on stderr as "fwb_run: error N").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwb.h"

static const char *const COUNTERS[FWB_N_COUNTERS] = {
	"requests", "reads", "fsync_requests", "secondaries", "inplace_updates", "redirty_skips",
	"writeback_skips", "writepages_waits", "temp_alloc_failures", "temp_pages_peak",
	"temp_bytes_copied", "temp_page_ns", "pinned_pages_peak", "lost_updates", "out_of_order",
	"max_copies_in_flight", "hangs", "deadlocks", "reclaim_gaveup", "compaction_unmovable",
	"bytes_dirtied", "bytes_written", "t_first", "t_app_end", "t_wb_end", "t_end", "stuck",
	"events", "aborted_calls", "folios", "folio_pages", "folio_waits",
};
static const char *const LATENCIES[FWB_N_LATENCIES] = {
	"write", "fault", "fsync", "sync", "throttle", "reclaim", "compaction",
};

#define STREAM_CHUNK 3

/* A stream over an op array: each thread's rows in array order, from its cursor on. */
struct feed {
	const fwb_op *ops;
	int64_t n_ops;
	int64_t at[64];
	int bad;	/* 1: a chunk's first row says another thread; 2: fail */
};

static int64_t feed_fill(void *ctx, int32_t thread, fwb_op *buf, int64_t cap)
{
	struct feed *fd = ctx;
	int64_t n = 0;
	if (fd->bad == 2)
		return -1;
	for (; fd->at[thread] < fd->n_ops && n < cap; fd->at[thread]++)
		if (fd->ops[fd->at[thread]].thread == thread)
			buf[n++] = fd->ops[fd->at[thread]];
	if (fd->bad == 1 && n)
		buf[0].thread = thread + 1;
	return n;
}

static int same_result(const fwb_result *a, const fwb_result *b)
{
	int64_t i, j;
	if (memcmp(a->counters, b->counters, sizeof a->counters) ||
	    a->pages_per_request_n != b->pages_per_request_n || a->series_n != b->series_n ||
	    memcmp(a->series, b->series, (size_t)(6 * a->series_n) * sizeof(int64_t)))
		return 0;
	for (i = 0; i < a->pages_per_request_n; i++)
		if (a->pages_per_request[i] != b->pages_per_request[i])
			return 0;
	for (i = 0; i < FWB_N_LATENCIES; i++) {
		if (a->latency_n[i] != b->latency_n[i])
			return 0;
		for (j = 0; j < a->latency_n[i]; j++)
			if (a->latency[i][j] != b->latency[i][j])
				return 0;
	}
	return 1;
}

/* fwb_run's result res against streams of the same rows; prints the stream_* lines. */
static void check_stream(const fwb_config *cfg, const fwb_op *ops, int64_t n_ops,
			 const int64_t *sizes, int32_t n_files, uint64_t seed, const fwb_result *res)
{
	struct feed fd;
	fwb_stream st;
	fwb_result sres;
	int64_t *pages = calloc((size_t)n_files, sizeof(int64_t)), i, j, n;
	int32_t threads = 0, f;
	int same;
	if (!pages) {
		printf("stream_same 0\n");
		return;
	}
	for (f = 0; f < n_files; f++)
		pages[f] = (sizes[f] + 4095) / 4096;
	for (i = 0; i < n_ops; i++) {
		const fwb_op *op = &ops[i];
		if (op->thread + 1 > threads)
			threads = op->thread + 1;
		if (op->op <= 2 || op->op == 4)	/* write, mmap_store, dio_read, msync */
			if ((op->offset + op->length + 4095) / 4096 > pages[op->file])
				pages[op->file] = (op->offset + op->length + 4095) / 4096;
	}
	memset(&st, 0, sizeof st);
	st.threads = threads;
	st.n_files = n_files;
	st.file_sizes = sizes;
	st.file_pages = pages;
	st.chunk = STREAM_CHUNK;
	st.fill = feed_fill;
	st.ctx = &fd;
	memset(&fd, 0, sizeof fd);
	fd.ops = ops;
	fd.n_ops = n_ops;
	same = fwb_run_stream(cfg, &st, seed, &sres) == FWB_OK && same_result(res, &sres);
	if (same)
		fwb_result_free(&sres);
	printf("stream_same %d\n", same);

	memset(&fd, 0, sizeof fd);
	fd.ops = ops;
	fd.n_ops = n_ops;
	st.latency_exact = 1;
	same = fwb_run_stream(cfg, &st, seed, &sres) == FWB_OK;
	for (i = 0; same && i < FWB_N_LATENCIES; i++) {
		int64_t top = 0;
		for (j = 0; j < res->latency_n[i]; j++)
			top = j ? (res->latency[i][j] > top ? res->latency[i][j] : top) : res->latency[i][j];
		same = sres.latency_n[i] == res->latency_n[i] &&
		       (!sres.latency_hist[i] || sres.latency_max[i] == top) &&
		       (res->latency_n[i] > 1) == (sres.latency_hist[i] != NULL);
		for (j = 0, n = 0; same && sres.latency_hist[i] && j < FWB_LAT_BUCKETS; j++)
			n += sres.latency_hist[i][j];
		same = same && (!sres.latency_hist[i] || n == res->latency_n[i]);
	}
	fwb_result_free(&sres);
	printf("stream_fold_same %d\n", same);

	st.latency_exact = 0;
	for (i = 1; i <= 2; i++) {
		memset(&fd, 0, sizeof fd);
		fd.ops = ops;
		fd.n_ops = n_ops;
		fd.bad = (int)i;
		printf("%s %d\n", i == 1 ? "stream_einval" : "stream_efill",
		       fwb_run_stream(cfg, &st, seed, &sres));
	}
	free(pages);
}

static int read_all(FILE *fp, void *buf, size_t size, size_t n)
{
	return fread(buf, size, n, fp) == n;
}

int main(int argc, char **argv)
{
	fwb_config cfg;
	fwb_result res;
	fwb_op *ops = NULL;
	int64_t n_ops, n_files, *sizes = NULL, i;
	uint64_t seed;
	FILE *fp;
	int rc, status = 1, layout = -1;

	if (argc == 3 && argv[2][0] >= '0' && argv[2][0] <= '2' && !argv[2][1])
		layout = argv[2][0] - '0';
	if (argc != 2 && layout < 0) {
		fprintf(stderr, "usage: %s INPUT [LAYOUT]\n", argv[0]);
		return 1;
	}
	fp = fopen(argv[1], "rb");
	if (!fp) {
		perror(argv[1]);
		return 1;
	}
	if (!read_all(fp, &cfg, sizeof cfg, 1) || !read_all(fp, &n_ops, sizeof n_ops, 1) ||
	    !read_all(fp, &n_files, sizeof n_files, 1) || !read_all(fp, &seed, sizeof seed, 1) ||
	    n_ops <= 0 || n_ops > ((int64_t)1 << 30) || n_files <= 0 || n_files > INT32_MAX) {
		fprintf(stderr, "%s: bad header\n", argv[1]);
		goto out;
	}
	ops = malloc((size_t)n_ops * sizeof *ops);
	sizes = malloc((size_t)n_files * sizeof *sizes);
	if (!ops || !sizes || !read_all(fp, ops, sizeof *ops, (size_t)n_ops) ||
	    !read_all(fp, sizes, sizeof *sizes, (size_t)n_files)) {
		fprintf(stderr, "%s: short file\n", argv[1]);
		goto out;
	}
	if (layout < 0)
		rc = fwb_run(&cfg, ops, n_ops, sizes, (int32_t)n_files, seed, &res);
	else
		rc = fwb_run_layout(&cfg, ops, n_ops, sizes, (int32_t)n_files, seed, layout, &res);
	if (rc != FWB_OK) {
		fprintf(stderr, "fwb_run: error %d\n", rc);
		status = 2;
		goto out;
	}
	for (i = 0; i < FWB_N_COUNTERS; i++)
		printf("%s %lld\n", COUNTERS[i], (long long)res.counters[i]);
	for (i = 0; i < res.pages_per_request_n; i++)
		if (res.pages_per_request[i])
			printf("hist_%lld %lld\n", (long long)i, (long long)res.pages_per_request[i]);
	for (i = 0; i < FWB_N_LATENCIES; i++) {
		int64_t j;
		uint64_t sum = 0;	/* modulo 2**64: saturated samples must not overflow it */
		for (j = 0; j < res.latency_n[i]; j++)
			sum += (uint64_t)res.latency[i][j];
		printf("lat_%s_n %lld\nlat_%s_sum %llu\n", LATENCIES[i], (long long)res.latency_n[i],
		       LATENCIES[i], (unsigned long long)sum);
	}
	{
		uint64_t sum = 0;
		for (i = 0; i < 6 * res.series_n; i++)
			sum += (uint64_t)res.series[i];
		printf("series_n %lld\nseries_sum %llu\n", (long long)res.series_n,
		       (unsigned long long)sum);
	}
	check_stream(&cfg, ops, n_ops, sizes, (int32_t)n_files, seed, &res);
	fwb_result_free(&res);
	printf("bare_loop %lld\n", (long long)fwb_bare_loop(ops, n_ops, sizes, (int32_t)n_files));
	status = 0;
out:
	free(ops);
	free(sizes);
	fclose(fp);
	return status;
}
