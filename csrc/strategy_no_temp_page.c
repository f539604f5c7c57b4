/* no-temp-page (strategies/no_temp_page.py): the page itself stays PG_writeback until
 * the reply; WB_SYNC_ALL waits for it, everything else (reclaim too) skips it. */
#include "fwb_internal.h"

static enum fwb_action on_busy_page(int sync_all, int from_reclaim, const fwb_config *cfg)
{
	(void)cfg;
	if (sync_all && !from_reclaim)
		return FWB_WAIT;
	return FWB_SKIP;
}

const struct fwb_strategy fwb_strategy_no_temp_page = {
	.name = "no-temp-page",
	.code = 4,
	.temp_pages = 0,
	.merges = 0,
	.on_busy_page = on_busy_page,
};
