/*
 * fwb_internal.h - declarations shared by the C files of the engine (not by Python).
 *
 * The public API is fwb.h; this adds the op codes, the strategy interface and the
 * strategies' tables.  Keep the numbers in step with bench/sim/ops.py and strategies/.
 */
#ifndef FWB_INTERNAL_H
#define FWB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "fwb.h"

#define FWB_PAGE 4096

/* bench.ops op codes. */
enum fwb_opcode {
	FWB_OP_WRITE = 0, FWB_OP_MMAP_STORE = 1, FWB_OP_DIO_READ = 2, FWB_OP_FSYNC = 3,
	FWB_OP_MSYNC = 4, FWB_OP_SYNC = 5, FWB_OP_ALLOC = 6, FWB_OP_FREE = 7, FWB_OP_COMPACT = 8,
	FWB_N_OPS = 9
};

/* strategies.Action: what writeback does with a dirty page already in flight. */
enum fwb_action { FWB_COPY = 0, FWB_WAIT = 1, FWB_SKIP = 2, FWB_MERGE = 3 };

/*
 * One writeback strategy (strategies/<name>.py).  The engine owns pages, requests and
 * invariants; the strategy answers one question, as in the Python modules.
 */
struct fwb_strategy {
	const char *name;
	int code;		/* STRATEGY.code */
	int temp_pages;		/* copies into temp pages, ends PG_writeback at once */
	int merges;		/* may answer FWB_MERGE: the engine keeps the in-flight lookup */
	int iomap;		/* per-block dirty state in a folio, PG_writeback per folio */
	int large_folios;	/* write(2) creates folios sized by the write (needs iomap) */
	enum fwb_action (*on_busy_page)(int sync_all, int from_reclaim, const fwb_config *cfg);
};

extern const struct fwb_strategy fwb_strategy_temp_naive;
extern const struct fwb_strategy fwb_strategy_wait_in_writepages;
extern const struct fwb_strategy fwb_strategy_redirty_and_skip;
extern const struct fwb_strategy fwb_strategy_merge_in_queue;
extern const struct fwb_strategy fwb_strategy_no_temp_page;
extern const struct fwb_strategy fwb_strategy_iomap_blocks;
extern const struct fwb_strategy fwb_strategy_large_folio;

/* The page space (pagespace.c): file f's page with slot c has page id base[f] + c. */
#define FWB_COMPACT_SHARE 4	/* auto: compact when the ops reach at most 1/4 of the pages */

struct fwb_extent {
	int32_t file;
	int64_t f0;		/* its first page's index in the file */
	int64_t c0;		/* ... its slot */
	int64_t g0;		/* ... its page id */
	int64_t len;		/* pages */
};

struct fwb_pagespace {
	int compact;		/* 0: dense, slot = file index, and nothing below is set */
	const fwb_op *ops;	/* the ops opbase is indexed by */
	int64_t *opbase;	/* per WRITE, MMAP_STORE or DIO_READ: its page idx has id opbase + idx */
	struct fwb_extent *ext;	/* by file, then file index */
	int64_t n_ext;
	int64_t *fext;		/* n_files + 1: file f's extents are ext[fext[f] .. fext[f + 1]) */
	int32_t *wext;		/* per 8 page ids: the extent holding the first (or the one before) */
};

/* Lay out the pages (fpages: each file's pages): fills base and nslots (n_files each), and
 * returns the slots in all, or FWB_ENOMEM (*ps then holds nothing to free). */
int64_t fwb_pagespace_build(struct fwb_pagespace *ps, const fwb_op *ops, int64_t n_ops,
			    int32_t nf, const int64_t *fpages, int layout, int64_t *base,
			    int64_t *nslots);
/* Compact only: the slot of file f's page idx, else of the first page after it that has one
 * (the file's slot count past the last); and the index in its file of page p (p must be
 * in an extent). */
int64_t fwb_slot_of(const struct fwb_pagespace *ps, int32_t f, int64_t idx);
int64_t fwb_index_of(const struct fwb_pagespace *ps, int64_t p);
void fwb_pagespace_free(struct fwb_pagespace *ps);

#endif
