/* SPDX-License-Identifier: MIT */
/*
 * pel/group.h - fork/join task groups: spawn members on any workers, run a completion task on a
 * home worker when the last one has returned. One atomic counter per group, on its own cache line;
 * no allocation. Parallel work is on in every runtime from pel_create() (pel/par.h).
 * docs/parallel.md describes the model; every call returns 0 or a negative errno and keeps the
 * detail for pel_last_error().
 */
#ifndef PEL_GROUP_H
#define PEL_GROUP_H

#include <stdint.h>

#include <pel/task.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pel_producer;
struct pel__par;

/** Worker argument of pel_group_spawn(): let the runtime's placement policy choose. */
#define PEL_ANY_WORKER		0xffffffffu

/**
 * A task group, in memory of yours that lives until on_done has run (static, the heap, a request
 * object; not the stack of a task that returns before its members do). pel never allocates it or
 * keeps it past the completion task. Do not pel_group_init() a group still open. Fields are
 * private.
 */
#ifdef __cplusplus
#define PEL__GROUP_LINE		alignas(64)
#define PEL__GROUP_ATOMIC(t)	t	/* same size and layout; C++ code never touches it */
#else
#define PEL__GROUP_LINE		_Alignas(64)
#define PEL__GROUP_ATOMIC(t)	_Atomic t
#endif

struct pel_group {
	/* Members' references (low bits), closed (bit 63): every member's return touches it. */
	PEL__GROUP_LINE PEL__GROUP_ATOMIC(uint64_t) count;
	/* Fixed from pel_group_init() to the completion. */
	PEL__GROUP_LINE pel_task_fn on_done;
	void *arg;
	struct pel__par *par;
	struct pel_producer *producer;
	unsigned home;
	unsigned magic;
};

/**
 * Open @p g from inside a task: its members may then be spawned, and once pel_group_close() was
 * called and every member has returned, @p on_done(@p arg) runs once, as a task on @p home.
 * @param home  0 .. pel_worker_count() - 1, or PEL_ANY_WORKER: the calling worker
 * @return 0; -EINVAL @p g or @p on_done NULL, bad @p home; -EPERM not called from a task (use
 *         pel_group_init_producer()); -ENODEV parallel work did not start on this runtime
 *         (pel_par_enable()).
 * Threads: a task. No lock, no allocation.
 */
int pel_group_init(struct pel_group *g, pel_task_fn on_done, void *arg, unsigned home);

/**
 * Open @p g from a producer thread: spawns and the close from that thread go through @p p (tasks
 * may still spawn members into it). As pel_group_init() otherwise; @p home may not be
 * PEL_ANY_WORKER.
 * @return as pel_group_init(), and -EINVAL @p p NULL or closed; -ESHUTDOWN runtime stopping.
 * Threads: the thread that uses @p p.
 */
int pel_group_init_producer(struct pel_group *g, struct pel_producer *p, pel_task_fn on_done,
			    void *arg, unsigned home);

/**
 * Add a member: @p fn(@p arg) runs once, on @p worker or, when another worker is idle and the
 * runtime has PEL_F_STEAL, on that one (members are stealable; order among them is not kept).
 * A member may spawn into its own group, also after pel_group_close(): the group cannot complete
 * while a member runs.
 * @param worker  0 .. pel_worker_count() - 1, or PEL_ANY_WORKER (the placement policy)
 * @return 0; -EINVAL NULL @p g or @p fn, bad worker, a group not initialised, or closed (spawned
 *         into by anyone but its own members); -EAGAIN the worker's stealable queue is full
 *         (nothing added); -EPERM a group opened in a task, spawned into from a thread that is
 *         not a worker; -ESHUTDOWN runtime stopping (from a producer thread).
 * Threads: a task, or the producer thread of pel_group_init_producer(). No lock, no allocation.
 */
int pel_group_spawn(struct pel_group *g, unsigned worker, pel_task_fn fn, void *arg);

/**
 * Close @p g: no more spawns from outside it; when the last member has returned (now, if none
 * is left) on_done runs as a task on the home worker.
 * @return 0; -EINVAL NULL, not initialised or closed already; -ESHUTDOWN runtime stopped before
 *         on_done could be queued (it will not run).
 * Threads: as pel_group_spawn().
 */
int pel_group_close(struct pel_group *g);

/**
 * Say @p g's memory may go: it must be complete (closed, every member returned).
 * @return 0; -EBUSY still open or members still running (nothing changed; close it, or wait for
 *         on_done); -EINVAL NULL or not initialised.
 * Threads: any.
 */
int pel_group_destroy(struct pel_group *g);

#ifdef __cplusplus
}
#endif

#endif /* PEL_GROUP_H */
