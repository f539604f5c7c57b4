/* temp-naive (strategies/temp_naive.py): copy the page again and send it, however
 * many copies are already in flight.  The reference point of the hazard. */
#include "fwb_internal.h"

static enum fwb_action on_busy_page(int sync_all, int from_reclaim, const fwb_config *cfg)
{
	(void)sync_all;
	(void)from_reclaim;
	(void)cfg;
	return FWB_COPY;
}

const struct fwb_strategy fwb_strategy_temp_naive = {
	.name = "temp-naive",
	.code = 0,
	.temp_pages = 1,
	.merges = 0,
	.on_busy_page = on_busy_page,
};
