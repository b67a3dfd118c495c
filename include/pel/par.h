/* SPDX-License-Identifier: MIT */
/*
 * pel/par.h - parallel work on a runtime: stealable per-worker queues, load-aware placement
 * (pel_submit_any()), parallel-for with an ordered reduction, task groups (pel/group.h) and, with
 * PEL_F_STEAL, work stealing between idle and busy workers. docs/parallel.md has the model.
 */
#ifndef PEL_PAR_H
#define PEL_PAR_H

#include <stdint.h>

#include <pel/group.h>
#include <pel/task.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pel_runtime;
struct pel_producer;

/**
 * Parallel work is on in every runtime from pel_create(): a bounded stealable queue (and a pinned
 * one) of 4096 entries per worker and a poller on each worker that runs them (and steals, with
 * PEL_F_STEAL). This call checks it, or starts it where pel_create() could not (logged: at most
 * 16 runtimes have it at once). On a runtime that has it: 0 for @p queue_slots 0 or the size in
 * use, -EBUSY for another (live queues are not resized).
 * @param queue_slots  entries per queue, a power of two, 2 .. 2^20; 0: 4096
 * @return 0; -EINVAL bad @p queue_slots or NULL @p rt; -EBUSY on already with another size;
 *         -ENOMEM; -EDEADLK called from a task; -ESHUTDOWN runtime stopping; -ENOSPC no poller,
 *         layer or runtime slot left.
 * Threads: any but a worker's (it runs a set-up step on each worker and waits for it).
 */
int pel_par_enable(struct pel_runtime *rt, unsigned queue_slots);

/** Placement policies of pel_submit_any(), PEL_ANY_WORKER spawns and parallel-for halves. */
enum pel_placement {
	PEL_PLACE_RR,	/* round robin (per thread) */
	PEL_PLACE_JSQ,	/* join the shortest queue: every worker's load read */
	PEL_PLACE_P2C,	/* the shorter of two random workers' */
};

/**
 * Choose the placement policy (default PEL_PLACE_RR). A worker's load is its stealable queue's
 * length, plus one while it runs a stealable task, plus the calling producer's ring backlog to it.
 * @return 0; -EINVAL bad @p policy or NULL; -ENODEV parallel work did not start on
 *         this runtime (see pel_par_enable()).
 * Threads: any; takes effect for placements that begin after it.
 */
int pel_set_placement(struct pel_runtime *rt, enum pel_placement policy);

/**
 * Queue @p fn(@p arg) on the worker the placement policy chooses, as a stealable task: it runs
 * once, there or (PEL_F_STEAL) on an idle worker; no order is kept among such tasks.
 * @param p  producer handle of the calling thread; NULL from a task
 * @return 0; -EINVAL NULL @p fn, or @p p NULL outside a task or closed; -EAGAIN the chosen
 *         worker's queue is full (nothing queued); -ENODEV parallel work did not start (pel_par_enable()); -ESHUTDOWN stopping.
 * Threads: the thread that uses @p p, or a task. No lock, no allocation.
 */
int pel_submit_any(struct pel_producer *p, pel_task_fn fn, void *arg);

/** Partial of the chunk [lo, hi): parallel-for's body. */
typedef uint64_t (*pel_pfor_body)(uint64_t lo, uint64_t hi, void *arg);
/** Combine two partials; @p left covers the lower indices. */
typedef uint64_t (*pel_pfor_reduce)(uint64_t left, uint64_t right, void *arg);
/** Receives the result. */
typedef void (*pel_pfor_done)(uint64_t result, void *arg);

/**
 * From a task: split [lo, hi) recursively into chunks of grain to 2 * grain - 1 indices (one
 * chunk when hi - lo < grain), run body on each, on any workers (halves are stealable), and
 * combine the partials in a fixed tree in ascending index order, so the result does not depend on
 * where chunks ran, even for a non-commutative @p reduce. Then on_done(result, arg) runs as a task
 * on the calling worker; for hi == lo, on_done(identity, arg). The call returns at once.
 * @return 0; -EINVAL NULL body, reduce or on_done, hi < lo, grain 0; -EPERM not from a task;
 *         -ENODEV parallel work did not start (pel_par_enable()); -EAGAIN the calling worker's parallel-for nodes or queue are
 *         exhausted (nothing started).
 * Threads: a task. No lock, no allocation (nodes come from a per-worker arena).
 */
int pel_parallel_for(uint64_t lo, uint64_t hi, uint64_t grain, pel_pfor_body body,
		     pel_pfor_reduce reduce, uint64_t identity, pel_pfor_done on_done, void *arg);

struct pel_par_stats {
	uint64_t placed[3];	/* placements onto this worker, by enum pel_placement */
	uint64_t tasks_run;	/* stealable and pinned entries this worker ran */
	uint64_t groups_done;	/* groups whose last reference this worker (or a producer closing
				 * a group homed here) dropped */
	uint64_t steal_attempts;	/* probes of another worker's queue */
	uint64_t steal_successes;	/* probes that took a task */
	uint64_t steal_failures;	/* probes that found none (or lost the race) */
	uint64_t stolen_by;	/* tasks this worker stole */
	uint64_t stolen_from;	/* tasks other workers stole from this one */
	uint64_t queue_full;	/* pushes refused because this worker's queue was full */
	uint64_t reserved[6];
};

/**
 * Copy @p worker's parallel-work counters.
 * @return 0; -EINVAL bad worker or NULL; -ENODEV parallel work did not start (pel_par_enable()).
 * Threads: any; no lock (counters trail by a task or so).
 */
int pel_par_stats(const struct pel_runtime *rt, unsigned worker, struct pel_par_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* PEL_PAR_H */
