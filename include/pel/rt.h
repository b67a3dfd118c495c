/* SPDX-License-Identifier: MIT */
/*
 * pel/rt.h - real-time scheduling on pel's workers: priority classes and deadlines, the late-work
 * policy, per-worker timer wheels, cooperative yield points and the stall detector.
 *
 * A layer above the runtime (rt/): real-time tasks travel through the same SPSC rings as plain
 * tasks, as a record taken from the target worker's fixed store; the worker moves them into its
 * ready queue and runs them before any plain task. docs/rt.md documents each call at length.
 */
#ifndef PEL_RT_H
#define PEL_RT_H

#include <stdbool.h>
#include <stdint.h>

#include <pel/pel.h>
#include <pel/self.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Priority classes: 0 is the most urgent, PEL_PRIO_CLASSES - 1 the least; all above plain. */
#define PEL_PRIO_CLASSES	4
/** deadline_ns of a real-time task that has none: FIFO after the deadline tasks of its class. */
#define PEL_NO_DEADLINE		UINT64_MAX

/** A real-time task: @p fn(@p arg) by @p deadline_ns (pel_now_ns() time) in class @p prio. */
struct pel_rt_task {
	pel_task_fn fn;
	void *arg;
	uint64_t deadline_ns;	/* absolute, pel_now_ns(); PEL_NO_DEADLINE: none; never 0 */
	uint8_t prio;		/* 0 .. PEL_PRIO_CLASSES - 1 */
};

/** What the real-time layer holds per worker (pel_rt_init()); 0 fields take the defaults. */
struct pel_rt_config {
	unsigned tasks;		/* real-time tasks queued per worker at most; 0: 1024 */
	unsigned timers;	/* timers pending per worker at most; 0: 1024 */
	uint64_t stall_ns;	/* stall detector threshold; 0: off */
	unsigned batch;		/* ready real-time tasks a worker runs per loop pass, 1 .. 256;
				 * 0: 1 (see docs/rt.md, "When a task is ready") */
	unsigned pad_;		/* zero */
	uint64_t reserved[3];	/* zero */
};

/**
 * Configure the real-time layer of @p rt. Optional: every runtime has it from pel_create(), with
 * the defaults (per worker a task store, a ready queue and a timer wheel, preallocated on the
 * worker's node; no stall monitor). New store sizes apply before the runtime's first real-time
 * task or timer; cfg->stall_ns starts (> 0), changes or stops (0) the stall monitor, and
 * cfg->batch takes effect, at any time.
 * Where the layer could not start at pel_create() (logged), this sets it up.
 * @param cfg  NULL: the defaults
 * @return 0; -EBUSY new sizes after the first real-time task or timer; -EINVAL a bad field; -ENOMEM;
 *         -ENOSPC a worker has no poller slot left (its real-time calls then answer -ENODEV);
 *         -ESHUTDOWN stopping; -EDEADLK called from a task.
 * Threads: any but a worker's. Cold (allocates, waits for every worker).
 */
int pel_rt_init(struct pel_runtime *rt, const struct pel_rt_config *cfg);

/**
 * Queue a real-time task on @p worker. Deadline, then FIFO, order within its class; classes in
 * order; every class before plain tasks.
 * @param p       producer handle owned by the calling thread
 * @param worker  0 .. pel_worker_count() - 1
 * @param t       copied; t->fn not NULL, t->prio < PEL_PRIO_CLASSES, t->deadline_ns not 0
 * @return 0 queued; -ETIME deadline already past, nothing queued; -EAGAIN the worker's store or
 *         the ring is full; -EINVAL bad worker, task or handle; -ESHUTDOWN runtime stopping;
 *         -ENOMEM the layer could not be set up (first call); -ENODEV its set-up failed on
 *         that worker.
 * Threads: the thread that uses @p p; no lock, no syscall unless the worker is parked (the first
 * call sets the layer up when pel_rt_init() was not called: cold).
 */
int pel_submit_rt(struct pel_producer *p, unsigned worker, const struct pel_rt_task *t);

/**
 * From inside a task: queue a real-time task on @p worker (itself included), through the worker
 * mesh. Accepted also while the runtime shuts down: pel_destroy() runs it.
 * @return 0; -ETIME; -EAGAIN; -EINVAL as pel_submit_rt(); -EPERM not called from a task;
 *         -ENODEV the real-time layer did not start (pel_rt_init()).
 */
int pel_spawn_rt(unsigned worker, const struct pel_rt_task *t);

/** Late-work policies: what a worker does with a real-time task whose deadline has passed. */
enum pel_late_policy {
	PEL_LATE_RUN,		/* run it anyway and count a miss (the default) */
	PEL_LATE_DROP,		/* do not run it: count a miss and a drop, call on_late */
};

/** Told about a dropped task once: @p t as submitted, @p lateness_ns past its deadline. */
typedef void (*pel_late_fn)(const struct pel_rt_task *t, uint64_t lateness_ns);

/**
 * Choose the late-work policy of every worker. PEL_LATE_DROP needs @p on_late: nothing is
 * dropped silently. on_late runs on the worker, in place of the task.
 * @return 0; -EINVAL bad policy, or DROP without on_late; -ESHUTDOWN; -ENOMEM (set-up).
 * Threads: any but a worker's; takes effect for tasks started after it returns.
 */
int pel_rt_set_late_policy(struct pel_runtime *rt, enum pel_late_policy policy,
			   pel_late_fn on_late);

/**
 * A task's quantum: pel_should_yield() turns true once the running task has had @p ns.
 * @param ns  0: no quantum (pel_should_yield() then only reports more urgent work)
 * @return 0; -ESHUTDOWN; -ENOMEM (set-up); -EDEADLK from a task.
 * Threads: any but a worker's. With a quantum, each task's start is stamped (one TSC read).
 */
int pel_rt_set_quantum(struct pel_runtime *rt, uint64_t ns);

/** @internal the slow path of pel_should_yield() for C++ and TSC-less builds. */
bool pel__should_yield(void);

/**
 * True when the running task should return soon: real-time work that outranks it (a more urgent
 * class, or its class and an earlier deadline) waits for its worker, or its quantum
 * (pel_rt_set_quantum()) is spent. Always false outside a task. A long
 * task checks it and queues its remainder with pel_yield_to(). One thread-local load, a TSC read
 * and a compare.
 */
#if !defined(__cplusplus) && (defined(__x86_64__) || defined(__aarch64__))
static inline bool
pel_should_yield(void)
{
	uint64_t now;

#if defined(__x86_64__)
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	now = ((uint64_t)hi << 32) | lo;
#else
	__asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(now));
#endif
	/* relaxed: a hint; a producer's store of 0 shows up a little later at worst */
	return now >= atomic_load_explicit(&pel__yield_at, memory_order_relaxed);
}
#else
static inline bool
pel_should_yield(void)
{
	return pel__should_yield();
}
#endif

/**
 * From inside a task: queue @p fn(@p arg), the rest of the running task, where the running
 * task ranks: a real-time task's remainder keeps its class and deadline (it runs after what is
 * more urgent), a plain task's goes behind the plain tasks queued on this worker.
 * @return 0; -EPERM not called from a task; -EINVAL NULL fn; -EAGAIN no room (store or ring).
 */
int pel_yield_to(pel_task_fn fn, void *arg);

/**
 * Arm a timer on @p worker: @p fn(@p arg) runs as a task on that worker once pel_now_ns() has
 * reached the due time, never before (about 1 us resolution).
 * @param id  receives the timer's id for pel_timer_cancel(); may be NULL
 * @return 0; -EINVAL bad worker or NULL fn; -EAGAIN the worker's timer store or the mesh ring is
 *         full; -EPERM not called from a task; -ENODEV the real-time layer did not start on this runtime (logged).
 * From a task only (any worker may arm a timer on any worker; another worker's wheel is armed
 * through the worker mesh). O(1).
 */
int pel_timer_after(unsigned worker, uint64_t delay_ns, pel_task_fn fn, void *arg, uint64_t *id);

/** As pel_timer_after(), due at @p at_ns (pel_now_ns() time; a past time fires at once). */
int pel_timer_at(unsigned worker, uint64_t at_ns, pel_task_fn fn, void *arg, uint64_t *id);

/**
 * A periodic timer: first due @p period_ns from now, then every @p period_ns after the previous
 * due time (periods missed while late are skipped, not run in a burst). -EINVAL period 0.
 */
int pel_timer_every(unsigned worker, uint64_t period_ns, pel_task_fn fn, void *arg, uint64_t *id);

/**
 * Cancel timer @p id.
 * @return 0 it was pending and will not fire (a periodic timer: not again); -EALREADY it fired
 *         (one-shot) or was cancelled already; -ENOENT no such timer (never armed, or its slot has
 *         since been reused); -EPERM not called from a task.
 * From a task on any worker. O(1).
 */
int pel_timer_cancel(uint64_t id);

/** Real-time counters of one worker. */
struct pel_rt_stats {
	uint64_t ran[PEL_PRIO_CLASSES];		/* real-time tasks run, per class */
	uint64_t missed[PEL_PRIO_CLASSES];	/* of those ran or dropped, past their deadline */
	uint64_t dropped[PEL_PRIO_CLASSES];	/* dropped by PEL_LATE_DROP (on_late called) */
	uint64_t queued;			/* real-time tasks waiting in the ready queue now */
	uint64_t timers_fired;			/* timer callbacks run */
	uint64_t timers_cancelled;		/* pel_timer_cancel() calls that returned 0 */
	uint64_t timer_late_max_ns;		/* the latest firing, past its due time */
	uint64_t timer_late_sum_ns;		/* sum over firings: / timers_fired for the mean */
	uint64_t stalls;			/* tasks the stall detector reported */
	uint64_t reserved[8];
};

/**
 * Copy @p worker's real-time counters.
 * @return 0; -EINVAL bad worker or NULL; -ENODEV the real-time layer did not start on this runtime (logged).
 * Threads: any but a worker's, not racing pel_destroy() (after it: -ENODEV); no lock.
 */
int pel_rt_stats(struct pel_runtime *rt, unsigned worker, struct pel_rt_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* PEL_RT_H */
