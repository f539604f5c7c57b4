/*
 * pagespace.c - where the C engine keeps each file page's state: its page space.
 *
 * The engine's per-page arrays (page state, in-flight lookups, folios, the dirty bitmap)
 * are indexed by a page id, base[file] + slot.  Dense, a page's slot is its index in the
 * file and the arrays span every page of every file.  A few ops over a big file touch
 * few of those pages, yet each array's memory page that they touch costs a first-touch
 * page fault: 4,096 random page writes over 64 GiB spend most of their run in faults.
 * Compact, the slots are the pages the ops touch, and nothing else: the page ranges of
 * the WRITE, MMAP_STORE and DIO_READ ops, merged where they overlap or touch into extents,
 * which are laid out one after another in file order with one unused slot between two
 * extents of a file.
 *
 * The layout is the engine's representation only; results are the same either way:
 *   - a page outside every extent is never looked at: ops touch their own pages, and
 *     every other access (writepages, reclaim, replies) is to a page that one of them
 *     made dirty, cached or in flight, or to a page of such a page's folio.  A large
 *     folio lies inside the write that made it: made at page idx for `want` bytes of
 *     the write from pos = max(offset, idx * 4096) on, its 2**order pages hold at most
 *     want bytes (order <= log2(want) - 12), so it ends by pos + want <= offset + length;
 *   - slots keep the file's order, so writepages' and reclaim's ascending walks meet the
 *     same pages in the same order, and a file's range of pages is a range of slots
 *     (fwb_slot_of);
 *   - two neighbouring slots hold neighbouring file pages unless one of them is the
 *     unused slot between two extents, which is never dirty: "does this dirty page follow
 *     the batch's last one" has the same answer in slots as in file indices;
 *   - where a file index itself matters (i_size, a folio's alignment, the file's size in
 *     pages) the engine uses the op's own index, or fwb_index_of.
 * The ops must be known before the run; a caller that streams them uses the dense layout.
 */
#include <stdlib.h>
#include <string.h>

#include "fwb_internal.h"

#define RADIX_BITS 8
#define WEXT_SHIFT 3		/* wext: an entry per 8 page ids (at most 8 extents start there) */
#define KEY_SHIFT 32		/* a sort key: (the range's first dense page id) << 32 | op index */

static int is_page_op(int32_t code)
{
	return code == FWB_OP_WRITE || code == FWB_OP_MMAP_STORE || code == FWB_OP_DIO_READ;
}

/* The pages [*lo, *hi) of its file that op touches. */
static void reach(const fwb_op *op, int64_t *lo, int64_t *hi)
{
	*lo = op->offset / FWB_PAGE;
	*hi = (op->offset + op->length - 1) / FWB_PAGE + 1;
}

/* Stable LSD radix sort of keys[0..m) on bits KEY_SHIFT..KEY_SHIFT+key_bits (tmp: m more). */
static void radix_sort(uint64_t *keys, uint64_t *tmp, int64_t m, int key_bits)
{
	int64_t count[1 << RADIX_BITS], i;
	int shift;
	for (shift = KEY_SHIFT; shift < KEY_SHIFT + key_bits; shift += RADIX_BITS) {
		int64_t sum = 0;
		uint64_t *t;
		memset(count, 0, sizeof count);
		for (i = 0; i < m; i++)
			count[(keys[i] >> shift) & ((1 << RADIX_BITS) - 1)]++;
		for (i = 0; i < (1 << RADIX_BITS); i++) {
			int64_t c = count[i];
			count[i] = sum;
			sum += c;
		}
		for (i = 0; i < m; i++)
			tmp[count[(keys[i] >> shift) & ((1 << RADIX_BITS) - 1)]++] = keys[i];
		t = keys;
		keys = tmp;
		tmp = t;
	}
	if ((key_bits + RADIX_BITS - 1) / RADIX_BITS % 2)	/* the result is in the other buffer */
		memcpy(tmp, keys, (size_t)m * sizeof *keys);
}

static void dense(int32_t nf, const int64_t *fpages, int64_t *base, int64_t *nslots)
{
	int32_t f;
	for (f = 0; f < nf; f++) {
		base[f] = f ? base[f - 1] + nslots[f - 1] : 0;
		nslots[f] = fpages[f];
	}
}

/* Lay out the extents of the sorted ranges; each op's extent into ps->opbase. */
static void merge_ranges(struct fwb_pagespace *ps, const uint64_t *keys, int64_t m,
			 const fwb_op *ops)
{
	int64_t j, nx = 0;
	for (j = 0; j < m; j++) {
		int64_t i = (int64_t)(keys[j] & 0xFFFFFFFFu), lo, hi;
		struct fwb_extent *e = nx ? &ps->ext[nx - 1] : NULL;
		reach(&ops[i], &lo, &hi);
		if (e && e->file == ops[i].file && lo <= e->f0 + e->len) {
			if (hi - e->f0 > e->len)
				e->len = hi - e->f0;
		} else {
			int same = e && e->file == ops[i].file;
			e = &ps->ext[nx++];
			e->file = ops[i].file;
			e->f0 = lo;
			e->len = hi - lo;
			e->c0 = same ? e[-1].c0 + e[-1].len + 1 : 0;	/* an unused slot between */
			e->g0 = 0;
		}
		ps->opbase[i] = nx - 1;
	}
	ps->n_ext = nx;
}

int64_t fwb_pagespace_build(struct fwb_pagespace *ps, const fwb_op *ops, int64_t n_ops,
			    int32_t nf, const int64_t *fpages, int layout, int64_t *base,
			    int64_t *nslots)
{
	int64_t i, j, m = 0, bound = 0, n_dense = 0, total = 0;
	uint64_t *keys, *tmp;
	int32_t f;
	int bits = 1;
	memset(ps, 0, sizeof *ps);
	dense(nf, fpages, base, nslots);
	for (f = 0; f < nf; f++)
		n_dense += fpages[f];
	if (layout == FWB_LAYOUT_DENSE)
		return n_dense;
	/* Auto: compact when the ops' ranges (and a slot between each two) are a small share of
	 * the pages: a dense run's first touches of its arrays are then most of its cost.  The
	 * count stops past that share (n_dense / 8 ops at most: a many-op run pays little). */
	for (i = 0; i < n_ops; i++) {
		int64_t lo, hi;
		if (!is_page_op(ops[i].op))
			continue;
		reach(&ops[i], &lo, &hi);
		bound += hi - lo + 1;
		m++;
		if (layout == FWB_LAYOUT_AUTO && bound > n_dense / FWB_COMPACT_SHARE)
			return n_dense;
	}
	while (bits < 63 && ((int64_t)1 << bits) < n_dense)
		bits++;
	keys = malloc((size_t)(m ? m : 1) * sizeof *keys);
	tmp = malloc((size_t)(m ? m : 1) * sizeof *tmp);
	ps->opbase = malloc((size_t)n_ops * sizeof *ps->opbase);
	ps->ext = malloc((size_t)(m ? m : 1) * sizeof *ps->ext);
	ps->fext = malloc(((size_t)nf + 1) * sizeof *ps->fext);
	if (!keys || !tmp || !ps->opbase || !ps->ext || !ps->fext) {
		free(keys);
		free(tmp);
		fwb_pagespace_free(ps);
		return FWB_ENOMEM;
	}
	for (i = 0, j = 0; i < n_ops; i++) {
		int64_t lo, hi;
		if (!is_page_op(ops[i].op))
			continue;
		reach(&ops[i], &lo, &hi);
		/* dense page ids < 2**31 (MAX_TOTAL_PAGES), op indices < 2**30 (MAX_OPS) */
		keys[j++] = (uint64_t)(base[ops[i].file] + lo) << KEY_SHIFT | (uint64_t)i;
	}
	radix_sort(keys, tmp, m, bits);
	merge_ranges(ps, keys, m, ops);
	free(keys);
	free(tmp);
	/* the files' extents, slots and bases, in file order */
	for (f = 0, j = 0; f < nf; f++) {
		ps->fext[f] = j;
		while (j < ps->n_ext && ps->ext[j].file == f)
			j++;
		base[f] = total;
		nslots[f] = j > ps->fext[f] ? ps->ext[j - 1].c0 + ps->ext[j - 1].len : 0;
		total += nslots[f];
	}
	ps->fext[nf] = j;
	for (j = 0; j < ps->n_ext; j++)
		ps->ext[j].g0 = base[ps->ext[j].file] + ps->ext[j].c0;
	ps->wext = malloc(((size_t)(total >> WEXT_SHIFT) + 1) * sizeof *ps->wext);
	if (!ps->wext) {
		fwb_pagespace_free(ps);
		return FWB_ENOMEM;
	}
	for (i = 0, j = 0; i <= total >> WEXT_SHIFT; i++) {	/* for fwb_index_of */
		while (j + 1 < ps->n_ext && ps->ext[j + 1].g0 <= i << WEXT_SHIFT)
			j++;
		ps->wext[i] = (int32_t)j;
	}
	for (i = 0; i < n_ops; i++)
		if (is_page_op(ops[i].op)) {
			const struct fwb_extent *e = &ps->ext[ps->opbase[i]];
			ps->opbase[i] = base[e->file] + e->c0 - e->f0;
		}
	ps->ops = ops;
	ps->compact = 1;
	return total;
}

int64_t fwb_slot_of(const struct fwb_pagespace *ps, int32_t f, int64_t idx)
{
	int64_t lo = ps->fext[f], hi = ps->fext[f + 1] - 1, k;
	if (lo > hi || ps->ext[lo].f0 > idx)
		return 0;
	while (lo < hi) {	/* the last extent of f starting at or before idx */
		int64_t mid = lo + (hi - lo + 1) / 2;
		if (ps->ext[mid].f0 <= idx)
			lo = mid;
		else
			hi = mid - 1;
	}
	k = idx - ps->ext[lo].f0;
	return ps->ext[lo].c0 + (k < ps->ext[lo].len ? k : ps->ext[lo].len);
}

int64_t fwb_index_of(const struct fwb_pagespace *ps, int64_t p)
{
	int64_t e = ps->wext[p >> WEXT_SHIFT];	/* the extent of the group's first page, or before */
	while (e + 1 < ps->n_ext && ps->ext[e + 1].g0 <= p)
		e++;
	return ps->ext[e].f0 + (p - ps->ext[e].g0);
}

void fwb_pagespace_free(struct fwb_pagespace *ps)
{
	free(ps->opbase);
	free(ps->ext);
	free(ps->fext);
	free(ps->wext);
	memset(ps, 0, sizeof *ps);
}
