/* SPDX-License-Identifier: MIT */
/*
 * sched/drain.c - waiting for quiescence.
 *
 * A ring's tail counts tasks pushed, its head tasks that have returned (workers publish head after
 * running a burst). Both only grow. Read every tail (T1), then every head (H), then every tail
 * again (T2). If, for every ring, H >= T1 and T2 == T1, then at an instant between the last head
 * read and the first second tail read, every task pushed so far had returned: tail <= T2 = T1 <= H
 * <= head on each ring. A task running then would have been pushed and not returned, and a task
 * it spawned is pushed before it returns, so nothing accepted before that instant, and nothing
 * it spawned, is left. No lock and no cooperation from the workers is needed.
 *
 * Layers that keep tasks outside the rings (stealable queues) count them the same way: an accepted
 * count read with the tails, a returned count read with the heads (struct pel__layer_ops). The
 * argument holds for the sums as for each ring, since every counter only grows.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

static unsigned
nrings(struct pel_runtime *rt)
{
	return rt->nworkers + rt->nslots;
}

/*
 * Every layer that holds tasks outside the rings (layer ops quiet) is empty; *stamp sums their
 * activity counts. Lock-free: layers are only added until the stop, which follows every drain.
 */
static bool
layers_quiet(struct pel_runtime *rt, uint64_t *stamp)
{
	/* acquire: pairs with the release in pel__layer_add(); entries below n are written */
	unsigned n = atomic_load_explicit(&rt->nlayers_pub, memory_order_acquire);

	*stamp = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t s = 0;

		if (rt->layer[i].ops->quiet && !rt->layer[i].ops->quiet(rt, rt->layer[i].state, &s))
			return false;
		*stamp += s;
	}
	return true;
}

static bool rings_quiescent(struct pel_runtime *rt);

/*
 * The rings are quiescent and no layer holds a task, at one instant: the layers are quiet before
 * and after the rings' check with the same stamp, so none accepted or ran a task in between (a
 * task that ran could have pushed to a ring already checked).
 */
bool
pel__quiescent(struct pel_runtime *rt)
{
	uint64_t s1, s2;

	return layers_quiet(rt, &s1) && rings_quiescent(rt) && layers_quiet(rt, &s2) && s1 == s2;
}

static bool
rings_quiescent(struct pel_runtime *rt)
{
	unsigned n = nrings(rt), nw = rt->nworkers;
	uint64_t *t1 = rt->drain_scratch;
	bool ok = true;

	/* acquire (T1 and T2): orders these reads before the head reads that follow; the producers'
	 * tails are bookkeeping stores (relaxed in pel_ring_push()), the slot words carry the data */
	for (unsigned w = 0; w < nw; w++)
		for (unsigned r = 0; r < n; r++)
			t1[w * n + r] = atomic_load_explicit(&rt->workers[w]->in[r]->prod.tail,
							     memory_order_acquire);
	for (unsigned w = 0; ok && w < nw; w++)
		for (unsigned r = 0; ok && r < n; r++)
			/* acquire: pairs with the release of cons.head in pel_ring_consume(), which
			 * the worker calls after running the burst; what those tasks did is visible */
			ok = atomic_load_explicit(&rt->workers[w]->in[r]->cons.head,
						  memory_order_acquire) >= t1[w * n + r];
	for (unsigned w = 0; ok && w < nw; w++)
		for (unsigned r = 0; ok && r < n; r++)
			ok = atomic_load_explicit(&rt->workers[w]->in[r]->prod.tail,
						  memory_order_acquire) == t1[w * n + r];
	return ok;
}

int
pel__drain(struct pel_runtime *rt, int64_t timeout_ns)
{
	uint64_t start = pel__mono_ns(), nap = 0;
	uint64_t deadline = timeout_ns >= 0 ? start + (uint64_t)timeout_ns : 0;

	for (unsigned spins = 0;; spins++) {
		bool quiet;

		pthread_mutex_lock(&rt->drain_lock);
		quiet = pel__quiescent(rt);
		pthread_mutex_unlock(&rt->drain_lock);
		if (quiet)
			return 0;
		if (timeout_ns >= 0 && pel__mono_ns() - start >= (uint64_t)timeout_ns)
			return pel__fail(-ETIMEDOUT, "tasks still queued or running after %lld ns",
					 (long long)timeout_ns);
		if (spins < 64)
			pel__cpu_relax();
		else
			pel__nap(&nap, deadline);	/* 1 us growing to 1 ms, never past the deadline */
	}
}
