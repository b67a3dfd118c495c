/* SPDX-License-Identifier: MIT */
/*
 * tests/destroy_close.h - destroy a runtime, then close the producer handles still open: the
 * order a program that loses track of its handles ends up using. Handles outlive pel_destroy()
 * (they answer -ESHUTDOWN) and the last close frees what is left, so nothing leaks (LSan checks).
 */
#ifndef PEL_TESTS_DESTROY_CLOSE_H
#define PEL_TESTS_DESTROY_CLOSE_H

#include <stdlib.h>

#include "internal.h"

static inline void
destroy_and_close(struct pel_runtime *rt)
{
	struct pel_producer *open[PEL__MAX_PRODUCERS + 1];
	unsigned n = 0;

	if (!rt)
		return;
	for (unsigned i = 1; i < rt->nslots; i++)
		if (atomic_load(&rt->producers[i].in_use))
			open[n++] = &rt->producers[i];
	pel_destroy(rt);
	for (unsigned i = 0; i < n; i++) {
		/* after destroy a handle is still valid memory, and refuses work */
		if (pel_submit(open[i], 0, (pel_task_fn)abort, NULL) != -ESHUTDOWN)
			abort();
		pel_producer_close(open[i]);
	}
}

#endif
