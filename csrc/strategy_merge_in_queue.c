/* merge-in-queue (strategies/merge_in_queue.py): fold the data into a copy the server
 * has not read, else chain a held secondary; reclaim's ->writepage skips. */
#include "fwb_internal.h"

static enum fwb_action on_busy_page(int sync_all, int from_reclaim, const fwb_config *cfg)
{
	(void)sync_all;
	(void)cfg;
	if (from_reclaim)
		return FWB_SKIP;
	return FWB_MERGE;
}

const struct fwb_strategy fwb_strategy_merge_in_queue = {
	.name = "merge-in-queue",
	.code = 3,
	.temp_pages = 1,
	.merges = 1,
	.on_busy_page = on_busy_page,
};
