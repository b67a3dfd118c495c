/* SPDX-License-Identifier: MIT */
/* sched/stamps.h - enqueue stamps behind pel:dequeue's queue_wait_ns (sched/ uses them only). */
#ifndef PEL_SCHED_STAMPS_H
#define PEL_SCHED_STAMPS_H

#include "internal.h"
#include "trace/trace.h"

/*
 * Enqueue stamps for pel:dequeue's queue_wait_ns: with tracing compiled in, every ring is followed
 * in memory by one stamp per slot. A producer writes (tsc, position) there before it publishes the
 * slot, only while a session records pel:dequeue; the worker reads it back at dequeue and reports
 * -1 when the position does not match (the stamp was not written for this task).
 */
struct pel__stamp {
	_Atomic uint64_t tsc;
	_Atomic uint64_t pos;
};

#if PEL_HAVE_LTTNG && !defined(PEL_NO_TRACE)
#define PEL__STAMPS	1
#else
#define PEL__STAMPS	0
#endif

/*
 * Bytes of stamps after a ring of @p slots (0 without tracing): a multiple of PEL_CACHE_GUARD, so
 * the next ring of an array of (ring, stamps) pairs stays aligned as pel_ring_init() requires.
 */
static inline size_t
pel__stamps_size(unsigned slots)
{
	size_t b = (size_t)slots * sizeof(struct pel__stamp);

	return PEL__STAMPS ? (b + PEL_CACHE_GUARD - 1) & ~(size_t)(PEL_CACHE_GUARD - 1) : 0;
}

static inline struct pel__stamp *
pel__stamps(struct pel_ring *r, unsigned slots)
{
	return (struct pel__stamp *)((char *)r + pel_ring_memsize(slots));
}

/*
 * Before pushing @p n tasks at the ring's tail (the tasks @p t of a burst, NULL for one already
 * checked): stamp those that will go in, if pel:dequeue is being recorded. @return how many the
 * caller may push: those stamped (all n when not recording). The caller pushes no more: the room
 * it would see a moment later may be larger (the consumer moves on), and a task pushed past its
 * stamp would report no wait. Only positions with room are stamped: on a full ring position tail
 * shares its slot with head, the oldest queued task, whose stamp must survive a refused push.
 * (Only this producer pushes, so the room seen here is there for the push that follows.) A
 * seqlock per stamp: pos holds
 * position + 1 (0: never stamped, as fresh memory reads), cleared before the tsc changes and set
 * after, so a reader that races a rewrite sees a mismatch and reports -1 rather than another
 * task's wait.
 */
static inline unsigned
pel__stamp_push(struct pel_ring *r, unsigned slots, const struct pel_task *t, unsigned n)
{
	if (PEL__STAMPS && pel_unlikely(pel__trace_on(dequeue))) {
		uint64_t tail = atomic_load_explicit(&r->prod.tail, memory_order_relaxed);
		uint64_t room = pel__ring_free(r, tail, n);
		uint64_t now = pel__tsc();
		struct pel__stamp *st = pel__stamps(r, slots);

		if (room < n)
			n = (unsigned)room;
		if (t)	/* a burst stops at a NULL fn: no stamp past it */
			n = pel__ring_valid_prefix(t, n);
		for (unsigned i = 0; i < n; i++) {
			struct pel__stamp *e = &st[(tail + i) & (slots - 1)];

			atomic_store_explicit(&e->pos, 0, memory_order_relaxed);
			/* release: the cleared pos is visible before the new tsc (pairs with the
			 * acquire fence in pel__stamp_wait()) */
			atomic_thread_fence(memory_order_release);
			atomic_store_explicit(&e->tsc, now, memory_order_relaxed);
			/* release: pairs with the acquire of pos in pel__stamp_wait(); tsc is
			 * visible with it */
			atomic_store_explicit(&e->pos, tail + i + 1, memory_order_release);
		}
	}
	return n;
}

/* The queue wait of the task at @p pos, in ns, or -1 when it was not stamped for this task. */
static inline int64_t
pel__stamp_wait(struct pel_ring *r, unsigned slots, uint64_t pos, uint64_t now)
{
	struct pel__stamp *e = pel__stamps(r, slots) + (pos & (slots - 1));
	uint64_t p1, p2, tsc;

	if (!PEL__STAMPS)
		return -1;
	/* acquire: pairs with the release of pos in pel__stamp_push(); tsc belongs to that position */
	p1 = atomic_load_explicit(&e->pos, memory_order_acquire);
	tsc = atomic_load_explicit(&e->tsc, memory_order_relaxed);
	/* acquire: tsc is read before pos is read again (pairs with the release fence in
	 * pel__stamp_push(): a rewrite under way shows as a changed pos) */
	atomic_thread_fence(memory_order_acquire);
	p2 = atomic_load_explicit(&e->pos, memory_order_relaxed);
	if (p1 != pos + 1 || p2 != p1)
		return -1;
	/* the stamp is this task's; a TSC read on the producer's CPU a little ahead of ours is the
	 * CPUs' clock skew (seen under KVM), not a negative wait */
	return tsc > now ? 0 : (int64_t)pel__cycles_to_ns(now - tsc);
}

#endif
