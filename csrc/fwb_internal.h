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

#endif
