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

/* Bytes of stamps after a ring of @p slots (0 without tracing). */
static inline size_t
pel__stamps_size(unsigned slots)
{
	return PEL__STAMPS ? (size_t)slots * sizeof(struct pel__stamp) : 0;
}

static inline struct pel__stamp *
pel__stamps(struct pel_ring *r, unsigned slots)
{
	return (struct pel__stamp *)((char *)r + pel_ring_memsize(slots));
}

/* Before pushing @p n tasks at the ring's tail: stamp them, if pel:dequeue is being recorded. */
static inline void
pel__stamp_push(struct pel_ring *r, unsigned slots, unsigned n)
{
	if (PEL__STAMPS && pel_unlikely(pel__trace_on(dequeue))) {
		uint64_t tail = atomic_load_explicit(&r->prod.tail, memory_order_relaxed);
		uint64_t now = pel__tsc();
		struct pel__stamp *st = pel__stamps(r, slots);

		for (unsigned i = 0; i < n; i++) {
			atomic_store_explicit(&st[(tail + i) & (slots - 1)].tsc, now,
					      memory_order_relaxed);
			atomic_store_explicit(&st[(tail + i) & (slots - 1)].pos, tail + i,
					      memory_order_relaxed);
		}
	}
}

/* The queue wait of the task at @p pos, in ns, or -1 when it was not stamped. */
static inline int64_t
pel__stamp_wait(struct pel_ring *r, unsigned slots, uint64_t pos, uint64_t now)
{
	struct pel__stamp *st = pel__stamps(r, slots) + (pos & (slots - 1));

	if (!PEL__STAMPS || atomic_load_explicit(&st->pos, memory_order_relaxed) != pos)
		return -1;
	return (int64_t)pel__cycles_to_ns(now - atomic_load_explicit(&st->tsc, memory_order_relaxed));
}

#endif
