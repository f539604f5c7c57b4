/* large-folio (strategies/large_folio.py): iomap-blocks with folios sized by the write,
 * up to what one request holds; order 0 when a large allocation would need reclaim. */
#include "fwb_internal.h"

static enum fwb_action on_busy_page(int sync_all, int from_reclaim, const fwb_config *cfg)
{
	(void)cfg;
	if (sync_all && !from_reclaim)
		return FWB_WAIT;
	return FWB_SKIP;
}

const struct fwb_strategy fwb_strategy_large_folio = {
	.name = "large-folio",
	.code = 6,
	.temp_pages = 0,
	.merges = 0,
	.iomap = 1,
	.large_folios = 1,
	.on_busy_page = on_busy_page,
};
