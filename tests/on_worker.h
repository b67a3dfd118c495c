/* SPDX-License-Identifier: MIT */
/* tests/on_worker.h - a quiet runtime of one or two workers, and running a function on a worker. */
#ifndef PEL_TESTS_ON_WORKER_H
#define PEL_TESTS_ON_WORKER_H

#include <sched.h>
#include <stdatomic.h>

#include "helpers.h"

/* One worker on CPU 0, or two on CPUs 0-1 where there are two; PEL_IDLE_PARK. */
static inline struct pel_runtime *
start_quiet(unsigned workers, struct captured *log)
{
	struct pel_runtime *rt = NULL;
	struct pel_config c;

	quiet_config(&c, workers == 2 && online_cpus() >= 2 ? "0-1" : "0", log);
	assert_int_equal(pel_create(&c, &rt), 0);
	return rt;
}

/* Run fn(arg) on worker w and wait for it. */
struct call {
	void (*fn)(void *);
	void *arg;
	_Atomic int done;
};

static inline void
call_task(void *arg)
{
	struct call *c = arg;

	c->fn(c->arg);
	atomic_store(&c->done, 1);
}

static inline void
on_worker(struct pel_runtime *rt, unsigned w, void (*fn)(void *), void *arg)
{
	struct call c = { .fn = fn, .arg = arg };
	struct pel_producer *p;

	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_submit(p, w, call_task, &c), 0);
	assert_true(WAIT_UNTIL(atomic_load(&c.done), 10000));
	pel_producer_close(p);
}

/* Hold worker @p w busy in a task until spin_release(): what waits for it queues up. */
struct spin_arg {
	_Atomic int started, stop;
};

static inline void
spin_task(void *arg)
{
	struct spin_arg *a = arg;

	atomic_store(&a->started, 1);
	while (!atomic_load(&a->stop))
		sched_yield();
}

static inline void
spin_on_worker(struct pel_runtime *rt, unsigned w, struct spin_arg *a)
{
	struct pel_producer *p;

	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_submit(p, w, spin_task, a), 0);
	assert_true(WAIT_UNTIL(atomic_load(&a->started), 10000));
	pel_producer_close(p);
}

static inline void
spin_release(struct spin_arg *a)
{
	atomic_store(&a->stop, 1);
}

#endif
