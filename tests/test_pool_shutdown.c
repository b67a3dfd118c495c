/* SPDX-License-Identifier: MIT */
/*
 * tests/test_pool_shutdown.c - pools and the end of their runtime: a pool left open at
 * pel_destroy() is reclaimed and its handle answers NULL / -ESHUTDOWN until pel_pool_destroy();
 * pel_pool_create() and pel_pool_destroy() racing pel_destroy() fail cleanly; pel_pool_destroy()
 * from a task is refused; a non-worker retrying on an exhausted pool wakes nobody. The races run
 * in suite concurrency, under ASan and TSan too.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <pel/pool.h>

#include "helpers.h"
#include "on_worker.h"
#include "internal.h"

static uint64_t
wakeups(struct pel_runtime *rt, unsigned w)
{
	struct pel_worker_stats st;

	assert_int_equal(pel_stats(rt, w, &st), 0);
	return st.wakeups;
}

/* ---- a pool left open at pel_destroy() ---- */

static void
test_pool_open_at_destroy(void **state)
{
	struct captured log;
	struct pel_runtime *rt = start_quiet(1, &log);
	struct pel_pool_stats st;
	struct pel_pool *pool;
	void *obj;

	(void)state;
	assert_int_equal(pel_pool_create(rt, 64, 32, 0, &pool), 0);
	obj = pel_alloc(pool);
	assert_non_null(obj);
	pel_destroy(rt);
	assert_non_null(strstr(log.all, "1 pool was still open"));
	/* the handle is alive and refuses: NULL / -ESHUTDOWN, nothing touched */
	assert_null(pel_alloc(pool));
	assert_error_contains("shutting down");
	assert_int_equal(pel_pool_stats(pool, 0, &st), -ESHUTDOWN);
	pel_free(pool, obj);	/* its memory is gone: ignored, no crash */
	pel_free(pool, NULL);
	pel_pool_destroy(pool);	/* frees the handle and the runtime's last table (LSan checks) */
}

/* ---- pel_pool_destroy() from a task ---- */

static struct pel_pool *task_pool;

static void
destroy_from_task(void *arg)
{
	(void)arg;
	pel_pool_destroy(task_pool);
}

static void
test_pool_destroy_from_task_refused(void **state)
{
	struct captured log;
	struct pel_runtime *rt = start_quiet(1, &log);
	void *obj;

	(void)state;
	assert_int_equal(pel_pool_create(rt, 64, 32, 0, &task_pool), 0);
	on_worker(rt, 0, destroy_from_task, NULL);
	assert_int_equal(log.errors, 1);
	assert_non_null(strstr(log.last, "called from a task"));
	/* nothing was done: the pool still works */
	obj = pel_alloc(task_pool);
	assert_non_null(obj);
	pel_free(task_pool, obj);
	pel_pool_destroy(task_pool);
	assert_int_equal(log.errors, 1);
	pel_destroy(rt);
}

/* ---- pel_pool_create()/pel_pool_destroy() racing pel_destroy() ---- */

struct racer {
	struct pel_runtime *rt;
	int last_err;
	unsigned created;
};

static void *
create_loop(void *arg)
{
	struct racer *r = arg;

	for (;;) {
		struct pel_pool *pool;
		int err = pel_pool_create(r->rt, 64, 16, 0, &pool);
		void *obj;

		if (err) {
			r->last_err = err;
			return NULL;
		}
		r->created++;
		obj = pel_alloc(pool);
		pel_free(pool, obj);
		pel_pool_destroy(pool);	/* may come after pel_destroy() began: never a crash */
	}
}

static void
test_pool_create_races_destroy(void **state)
{
	unsigned shutdown = 0;

	(void)state;
	for (unsigned i = 0; i < 200; i++) {
		struct racer r = { 0 };
		struct pel_producer *p;
		pthread_t t;

		r.rt = start_quiet(2, NULL);
		/* another handle keeps the runtime's table alive after pel_destroy() */
		assert_int_equal(pel_producer_open(r.rt, &p), 0);
		assert_int_equal(pthread_create(&t, NULL, create_loop, &r), 0);
		for (volatile unsigned spin = 0; spin < (i % 20) * 5000; spin++)
			;
		pel_destroy(r.rt);
		pthread_join(t, NULL);
		assert_int_equal(r.last_err, -ESHUTDOWN);
		shutdown++;
		assert_int_equal(pel_submit(p, 0, (pel_task_fn)abort, NULL), -ESHUTDOWN);
		pel_producer_close(p);
	}
	assert_int_equal(shutdown, 200);
}

/* ---- non-worker alloc/free racing pel_destroy() ---- */

struct user {
	struct pel_pool *pool;
	_Atomic int stop;
	_Atomic unsigned long got;
};

static void *
alloc_loop(void *arg)
{
	struct user *u = arg;

	while (!atomic_load(&u->stop)) {
		void *obj = pel_alloc(u->pool);

		/* an object held across pel_destroy() loses its contents, never its address */
		if (obj) {
			((volatile char *)obj)[0] = 1;
			u->got++;
			pel_free(u->pool, obj);
		}
	}
	return NULL;
}

static void
test_foreign_alloc_races_destroy(void **state)
{
	(void)state;
	for (unsigned i = 0; i < 50; i++) {
		struct user u = { 0 };
		struct pel_runtime *rt = start_quiet(2, NULL);
		pthread_t t;

		assert_int_equal(pel_pool_create(rt, 64, 64, 0, &u.pool), 0);
		assert_int_equal(pthread_create(&t, NULL, alloc_loop, &u), 0);
		assert_true(WAIT_UNTIL(u.got > 0, 10000));
		pel_destroy(rt);
		/* after destroy the handle refuses */
		assert_null(pel_alloc(u.pool));
		atomic_store(&u.stop, 1);
		pthread_join(t, NULL);
		pel_pool_destroy(u.pool);
	}
}

/* ---- misses from a non-worker: bounded wakes ---- */

static void
test_exhausted_pool_wakes_nobody(void **state)
{
	struct pel_runtime *rt = start_quiet(1, NULL);
	struct pel_pool *pool;
	void *obj[8];
	uint64_t w0;

	(void)state;
	assert_int_equal(pel_pool_create(rt, 64, 8, 0, &pool), 0);
	for (unsigned i = 0; i < 8; i++)
		assert_non_null(obj[i] = pel_alloc(pool));
	assert_true(WAIT_UNTIL(atomic_load(&rt->workers[0]->parked), 10000));
	w0 = wakeups(rt, 0);
	/* every object is held by this thread: nobody has one to give back, nobody is woken */
	for (unsigned i = 0; i < 10000; i++)
		assert_null(pel_alloc(pool));
	assert_int_equal(wakeups(rt, 0), w0);
	for (unsigned i = 0; i < 8; i++)
		pel_free(pool, obj[i]);
	pel_pool_destroy(pool);
	pel_destroy(rt);
}

static struct pel_pool *cache_pool;

/* The owner takes all 64 objects and frees them: all in its cache, its shared stack empty. */
static void
fill_owner_cache(void *arg)
{
	void *o[64];

	(void)arg;
	for (unsigned i = 0; i < 64; i++)
		o[i] = pel_alloc(cache_pool);
	for (unsigned i = 0; i < 64; i++)
		pel_free(cache_pool, o[i]);
}

static void
test_owner_cache_answers_a_miss(void **state)
{
	struct pel_runtime *rt = start_quiet(1, NULL);
	unsigned long misses = 0;
	void *obj = NULL;
	uint64_t w0, end;

	(void)state;
	assert_int_equal(pel_pool_create(rt, 64, 64, 0, &cache_pool), 0);
	on_worker(rt, 0, fill_owner_cache, NULL);
	assert_true(WAIT_UNTIL(atomic_load(&rt->workers[0]->parked), 10000));
	w0 = wakeups(rt, 0);
	/* the first miss asks the parked owner once; its answer puts objects back */
	end = now_ns() + 10ull * 1000000000ull;
	while (!(obj = pel_alloc(cache_pool)) && now_ns() < end)
		misses++;
	assert_non_null(obj);
	assert_true(misses >= 1);
	assert_in_range(wakeups(rt, 0) - w0, 1, 2);
	pel_free(cache_pool, obj);
	pel_pool_destroy(cache_pool);
	pel_destroy(rt);
}

/* ---- a worker with no poller left ---- */

static int
idle_poller(void *ctx)
{
	(void)ctx;
	return 0;
}

static void
fill_pollers(void *arg)
{
	(void)arg;
	while (pel__poller_add(idle_poller, NULL, PEL__POLL_PARK_OK) == 0)
		;
}

static void
test_no_poller_left(void **state)
{
	struct pel_runtime *rt = start_quiet(1, NULL);
	struct pel_pool *pool = (struct pel_pool *)1;

	(void)state;
	on_worker(rt, 0, fill_pollers, NULL);
	assert_int_equal(pel_pool_create(rt, 64, 8, 0, &pool), -ENOSPC);
	assert_null(pool);
	assert_error_contains("pool poller");
	/* and again: the half-set-up layer is not taken for a working one */
	assert_int_equal(pel_pool_create(rt, 64, 8, 0, &pool), -ENOSPC);
	assert_error_contains("pool poller");
	pel_destroy(rt);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_pool_open_at_destroy),
		cmocka_unit_test(test_pool_destroy_from_task_refused),
		cmocka_unit_test(test_exhausted_pool_wakes_nobody),
		cmocka_unit_test(test_owner_cache_answers_a_miss),
		cmocka_unit_test(test_no_poller_left),
	};
	const struct CMUnitTest races[] = {
		cmocka_unit_test(test_pool_create_races_destroy),
		cmocka_unit_test(test_foreign_alloc_races_destroy),
	};

	if (argc > 1 && !strcmp(argv[1], "--races"))
		return cmocka_run_group_tests_name("pool shutdown races", races, NULL, NULL);
	return cmocka_run_group_tests_name("pool shutdown", unit, NULL, NULL);
}
