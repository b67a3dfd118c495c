/* SPDX-License-Identifier: MIT */
/* mem/pool_layer.h - what other layers may ask of the pool layer beyond pel/pool.h. */
#ifndef PEL_MEM_POOL_LAYER_H
#define PEL_MEM_POOL_LAYER_H

#include <stdbool.h>

struct pel_pool;

/**
 * From another layer's stop hook (under the runtime's layer lock, which pel_pool_destroy() would
 * take again): that layer, which created @p pool for itself, gives it up. The pool layer's own
 * stop, which runs after (layers stop in the reverse order of their set-up, and the pool layer
 * was set up by that pool's creation), frees it whole and without the "still open" warning.
 */
void pel__pool_release_at_stop(struct pel_pool *pool);

/** True when @p p is an object of @p pool (in O(1); any thread; never faults). */
bool pel__pool_owns(const struct pel_pool *pool, const void *p);

#endif
