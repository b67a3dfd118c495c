/* SPDX-License-Identifier: MIT */
/*
 * rt/rt_layer.h - the real-time layer's private parts, shared by rt/rt.c (tasks, policy, yield,
 * stall monitor) and rt/timer.c (timer wheels). A layer above sched/: it reaches the runtime only
 * through sched/layer.h.
 */
#ifndef PEL_RT_LAYER_H
#define PEL_RT_LAYER_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <pel/rt.h>

#include "sched/layer.h"

#define RT_DEFAULT_TASKS	1024u
#define RT_DEFAULT_TIMERS	1024u
#define RT_MAX_RECORDS		(1u << 20)	/* a timer id holds 20 bits of index */
#define RT_MAX_BATCH		256u		/* pel_rt_config.batch at most */
#define RT_MAX_WORKERS		4096u		/* and 12 bits of worker */

/*
 * A fixed store of record indexes, a lock-free stack (Treiber) with a tag against ABA: any thread
 * takes (a submitter for the target worker), any thread gives back (the worker, or a submitter
 * whose push failed). top = tag << 32 | (index + 1), 0 when empty.
 */
struct rt_store {
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t top;
	_Atomic uint32_t *next;		/* next[i]: index + 1 of the record under i, 0 none */
	unsigned cap;
};

/** Take a record. @return its index, or -1 when the store is empty. */
static inline int64_t
rt_store_get(struct rt_store *s)
{
	/* acquire: pairs with the release in rt_store_put(); next[] and the record are visible */
	uint64_t old = atomic_load_explicit(&s->top, memory_order_acquire), nu;
	uint32_t i1;

	do {
		i1 = (uint32_t)old;
		if (!i1)
			return -1;
		nu = ((old >> 32) + 1) << 32 |
		     atomic_load_explicit(&s->next[i1 - 1], memory_order_relaxed);
		/* acquire on both: as the load above */
	} while (!atomic_compare_exchange_weak_explicit(&s->top, &old, nu, memory_order_acquire,
							memory_order_acquire));
	return (int64_t)i1 - 1;
}

/** Give record @p i back. */
static inline void
rt_store_put(struct rt_store *s, uint32_t i)
{
	uint64_t old = atomic_load_explicit(&s->top, memory_order_relaxed), nu;

	do {
		atomic_store_explicit(&s->next[i], (uint32_t)old, memory_order_relaxed);
		nu = ((old >> 32) + 1) << 32 | (i + 1);
		/* release: pairs with the acquire in rt_store_get(); our use of the record and
		 * next[i] happen before the next taker's */
	} while (!atomic_compare_exchange_weak_explicit(&s->top, &old, nu, memory_order_release,
							memory_order_relaxed));
}

struct rt_worker;

/* A queued real-time task. */
struct rt_rec {
	struct pel_rt_task t;
	uint64_t seq;			/* intake order on its worker: FIFO among equals; for a
					 * plain task's rest, the poll count when it was queued */
	struct rt_worker *owner;
	uint32_t idx;
	int32_t next;			/* in the remainder FIFO */
};

/* Timer states, in the low byte of rt_timer.state (the generation above). */
/* RUNNING: a periodic timer's callback runs (a cancel then stops the next firings). */
enum { RT_TM_FREE, RT_TM_PENDING, RT_TM_FIRED, RT_TM_CANCELLED, RT_TM_RUNNING };

struct rt_timer {
	/* Read by any worker that cancels: the generation and the state. */
	_Atomic uint64_t state;		/* gen << 8 | RT_TM_* */
	pel_task_fn fn;
	void *arg;
	uint64_t at_ns;			/* due, pel_now_ns() time */
	uint64_t period_ns;		/* 0: one-shot */
	uint64_t tick;			/* due tick (us): ceil(at_ns / 1000) */
	int32_t prev, next;		/* in its wheel list; the owner's only */
	uint16_t list;			/* level * 64 + slot */
	bool linked;
	struct rt_worker *owner;
	uint32_t idx;
};

#define RT_WHEEL_BITS		6
#define RT_WHEEL_SLOTS		(1u << RT_WHEEL_BITS)
#define RT_WHEEL_LEVELS		7	/* 64^7 us: about 51 days; later timers re-cascade */

/* A hierarchical timing wheel of 1 us ticks, the owner worker's only. */
struct rt_wheel {
	uint64_t now;			/* the next tick to process */
	unsigned count;			/* timers linked */
	uint64_t bitmap[RT_WHEEL_LEVELS];	/* non-empty slots */
	int32_t head[RT_WHEEL_LEVELS][RT_WHEEL_SLOTS];
};

struct rt_layer;

struct rt_worker {
	/* Taken from by submitters, given back to by the worker. */
	struct rt_store store;
	struct rt_store tstore;		/* timers */
	/* Bumped by submitters before they push (pel_drain()'s count of accepted tasks). */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t accepted;
	/* Written by the worker at each real-time task, read by submitters. */
	alignas(PEL_CACHE_GUARD) _Atomic uint32_t cur_class;	/* PEL_PRIO_CLASSES: plain */
	_Atomic uint64_t cur_dl;	/* the running real-time task's deadline */
	_Atomic uint64_t *yield_at;	/* the worker thread's pel__yield_at */
	/* Cross-thread counters: cancels (any worker), stalls (the monitor). */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t timers_cancelled;
	_Atomic uint64_t stalls;
	uint64_t stall_seen;		/* the monitor's: start TSC of the task reported last */
	/* The worker's own. */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t done;	/* tasks run or dropped: pel_drain() */
	_Atomic uint64_t ran[PEL_PRIO_CLASSES];
	_Atomic uint64_t missed[PEL_PRIO_CLASSES];
	_Atomic uint64_t dropped[PEL_PRIO_CLASSES];
	_Atomic uint64_t queued;
	_Atomic uint64_t timers_fired;
	_Atomic uint64_t timer_late_max;
	_Atomic uint64_t timer_late_sum;
	struct rt_layer *layer;
	struct pel__beat *beat;
	unsigned id;
	_Atomic bool ok;		/* its poller is in place (set last by the set-up) */
	int setup_err;			/* else why not */
	char setup_msg[128];
	uint64_t seq;
	unsigned nheap;
	uint32_t *heap;			/* ready queue: record indexes, a binary min-heap */
	int32_t yq_head, yq_tail;	/* plain tasks' remainders (pel_yield_to()), FIFO */
	uint64_t polls;			/* poller calls */
	uint64_t traced;		/* tasks run here: the seq of their pel:task_start (PEL__TRACE_SRC_RT) */
	struct rt_rec *rec;
	bool in_rt;			/* running a real-time task (for pel_yield_to()) */
	uint8_t cur_prio;
	uint64_t cur_deadline;
	struct rt_timer *tm;
	struct rt_wheel wheel;
	unsigned timers_at_stop;	/* pending timers cancelled by pel_destroy() */
};

struct rt_layer {
	struct pel_runtime *rt;
	unsigned nworkers;
	unsigned tasks, timers;
	_Atomic int policy;		/* enum pel_late_policy */
	_Atomic(pel_late_fn) on_late;
	uint64_t quantum_ns;
	uint64_t stall_ns;
	_Atomic unsigned batch;		/* ready tasks run per poller pass (pel_rt_config.batch) */
	_Atomic bool used;		/* a record or a timer was ever taken: stores stay */
	pthread_t monitor;
	bool monitor_on;
	_Atomic bool monitor_stop;
	struct rt_worker **w;
};

/** 0 when real-time work can go to @p worker; -EINVAL no such worker; -ENODEV its set-up failed. */
int pel__rt_worker_check(const struct rt_layer *L, unsigned worker);

/** The layer of the calling task's runtime, or NULL (no task, or not set up). */
struct rt_layer *pel__rt_self_layer(unsigned *self);

/** A record or a timer of @p L is being taken: its stores may no longer be replaced. */
static inline void
pel__rt_mark_used(struct rt_layer *L)
{
	/* relaxed: a hint for pel_rt_init(); loaded first, so it is written once */
	if (pel_unlikely(!atomic_load_explicit(&L->used, memory_order_relaxed)))
		atomic_store_explicit(&L->used, true, memory_order_relaxed);
}

/* rt/timer.c */
void pel__rt_wheel_init(struct rt_worker *w);
/** The wheel's part of the poller: fire what is due. @return callbacks run. */
unsigned pel__rt_wheel_poll(struct rt_worker *w);
/** At the layer's stop: timers still linked, freed. */
unsigned pel__rt_wheel_drop_all(struct rt_worker *w);
/** On @p w's worker (or a test owning @p w): arm a timer in its wheel. */
int pel__rt_timer_arm_local(struct rt_worker *w, uint64_t at_ns, uint64_t period_ns, pel_task_fn fn,
			    void *arg, uint64_t *id);
/** Tests: the wheels' clock (NULL: pel_now_ns()). */
void pel__rt_timer_clock(uint64_t (*fn)(void));

#endif /* PEL_RT_LAYER_H */
