/* redirty-and-skip (strategies/redirty_and_skip.py): WB_SYNC_NONE leaves a page in
 * flight dirty for a later pass, WB_SYNC_ALL waits; reclaim always skips. */
#include "fwb_internal.h"

static enum fwb_action on_busy_page(int sync_all, int from_reclaim, const fwb_config *cfg)
{
	(void)cfg;
	if (sync_all && !from_reclaim)
		return FWB_WAIT;
	return FWB_SKIP;
}

const struct fwb_strategy fwb_strategy_redirty_and_skip = {
	.name = "redirty-and-skip",
	.code = 2,
	.temp_pages = 1,
	.merges = 0,
	.on_busy_page = on_busy_page,
};
