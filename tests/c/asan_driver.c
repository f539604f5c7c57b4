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
 * checksum on the same input).  With a second argument, a fwb_layout number, it runs
 * fwb_run_layout in that layout instead of fwb_run.
 * Exit status 0 on success, 1 on a bad input file, 2 if fwb_run fails (its error
 * code on stderr as "fwb_run: error N").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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
	fwb_result_free(&res);
	printf("bare_loop %lld\n", (long long)fwb_bare_loop(ops, n_ops, sizes, (int32_t)n_files));
	status = 0;
out:
	free(ops);
	free(sizes);
	fclose(fp);
	return status;
}
