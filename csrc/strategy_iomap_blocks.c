/* iomap-blocks (strategies/iomap_blocks.py): no copy; dirty state per block, PG_writeback
 * per folio; WB_SYNC_ALL waits for a folio under writeback, everything else skips it. */
#include "fwb_internal.h"

static enum fwb_action on_busy_page(int sync_all, int from_reclaim, const fwb_config *cfg)
{
	(void)cfg;
	if (sync_all && !from_reclaim)
		return FWB_WAIT;
	return FWB_SKIP;
}

const struct fwb_strategy fwb_strategy_iomap_blocks = {
	.name = "iomap-blocks",
	.code = 5,
	.temp_pages = 0,
	.merges = 0,
	.iomap = 1,
	.large_folios = 0,
	.on_busy_page = on_busy_page,
};
