/* wait-in-writepages (strategies/wait_in_writepages.py): sleep until the in-flight
 * copy is done, also from reclaim, where a stuck server makes it a deadlock. */
#include "fwb_internal.h"

static enum fwb_action on_busy_page(int sync_all, int from_reclaim, const fwb_config *cfg)
{
	(void)sync_all;
	(void)from_reclaim;
	(void)cfg;
	return FWB_WAIT;
}

const struct fwb_strategy fwb_strategy_wait_in_writepages = {
	.name = "wait-in-writepages",
	.code = 1,
	.temp_pages = 1,
	.merges = 0,
	.on_busy_page = on_busy_page,
};
