/* SPDX-License-Identifier: MIT */
/*
 * tests/test_pool.c - pel/pool.h: errors, exact capacity per worker, alignment, remote frees back
 * on their owner within one pass, non-worker threads, double-free and foreign-pointer detection,
 * stats, and a concurrency stress (suite concurrency) where objects cross workers and threads.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <pel/pool.h>

#include "helpers.h"
#include "on_worker.h"
#include "destroy_close.h"
#include "internal.h"

#define COUNT 300	/* more than the owner cache (256): refill and spill both happen */

/* Checked builds send every call out of line; the second pass forces pool.h's inline paths on. */
static int force_fast;

static int
create_pool(struct pel_runtime *rt, size_t size, unsigned count, unsigned flags,
	    struct pel_pool **out)
{
	int err = pel_pool_create(rt, size, count, flags, out);

	if (!err && force_fast)
		((struct pel__pool_pub *)*out)->fast = 1;
	return err;
}

struct batch {
	struct pel_pool *pool;
	void *obj[1024];
	unsigned want, got;
	bool nulls_after;
};

static void
alloc_n(void *arg)
{
	struct batch *b = arg;

	b->got = 0;
	for (unsigned i = 0; i < b->want; i++) {
		b->obj[b->got] = pel_alloc(b->pool);
		if (b->obj[b->got])
			b->got++;
	}
}

static void
free_all(void *arg)
{
	struct batch *b = arg;

	for (unsigned i = 0; i < b->got; i++)
		pel_free(b->pool, b->obj[i]);
	b->got = 0;
}

static int
cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

static void
assert_distinct_aligned(void **obj, unsigned n, size_t align, size_t stride_min)
{
	uintptr_t *v = malloc(n * sizeof(*v));

	for (unsigned i = 0; i < n; i++) {
		v[i] = (uintptr_t)obj[i];
		assert_int_equal(v[i] % align, 0);
	}
	qsort(v, n, sizeof(*v), cmp_ptr);
	for (unsigned i = 1; i < n; i++)
		assert_true(v[i] - v[i - 1] >= stride_min);
	free(v);
}

static void
test_create_errors(void **state)
{
	struct pel_runtime *rt = start_quiet(1, NULL);
	struct pel_pool *pool = (struct pel_pool *)0x1;
	struct pel_pool_stats st;

	(void)state;
	assert_int_equal(pel_pool_create(rt, 64, 10, 0, NULL), -EINVAL);
	assert_error_contains("out pointer is NULL");
	assert_int_equal(pel_pool_create(NULL, 64, 10, 0, &pool), -EINVAL);
	assert_null(pool);
	assert_error_contains("runtime is NULL");
	assert_int_equal(pel_pool_create(rt, 0, 10, 0, &pool), -EINVAL);
	assert_error_contains("obj_size 0 is outside 1..");
	assert_int_equal(pel_pool_create(rt, (size_t)PEL_POOL_MAX_OBJ + 1, 10, 0, &pool), -EINVAL);
	assert_error_contains("is outside 1..");
	assert_int_equal(pel_pool_create(rt, 64, 0, 0, &pool), -EINVAL);
	assert_error_contains("per_worker_count 0 is outside");
	assert_int_equal(pel_pool_create(rt, 64, 10, 1u << 7, &pool), -EINVAL);
	assert_error_contains("flags 0x80");
	assert_null(pool);
	assert_int_equal(create_pool(rt, 64, 10, 0, &pool), 0);
	assert_int_equal(pel_pool_stats(pool, 1, &st), -EINVAL);
	assert_int_equal(pel_pool_stats(pool, 0, NULL), -EINVAL);
	assert_int_equal(pel_pool_stats(NULL, 0, &st), -EINVAL);
	assert_null(pel_alloc(NULL));
	pel_free(pool, NULL);
	pel_free(NULL, (void *)0x10);
	pel_pool_destroy(pool);
	pel_pool_destroy(NULL);
	destroy_and_close(rt);
}

/* A runtime holds at most 64 pools: the 65th is refused, and a freed place is reusable. */
static void
test_too_many_pools(void **state)
{
	struct pel_runtime *rt = start_quiet(1, NULL);
	struct pel_pool *pools[64], *extra = (struct pel_pool *)0x1;

	(void)state;
	for (unsigned i = 0; i < 64; i++)
		assert_int_equal(pel_pool_create(rt, 16, 1, 0, &pools[i]), 0);
	assert_int_equal(pel_pool_create(rt, 16, 1, 0, &extra), -ENOSPC);
	assert_null(extra);
	assert_error_contains("this runtime already has 64 pools");
	pel_pool_destroy(pools[10]);
	assert_int_equal(pel_pool_create(rt, 16, 1, 0, &pools[10]), 0);
	for (unsigned i = 0; i < 64; i++)
		pel_pool_destroy(pools[i]);
	destroy_and_close(rt);
}

static struct pel_runtime *task_rt;
static _Atomic int task_err;

static void
create_from_task(void *arg)
{
	struct pel_pool *pool;

	(void)arg;
	atomic_store(&task_err, pel_pool_create(task_rt, 64, 10, 0, &pool));
}

static void
test_create_from_task_refused(void **state)
{
	struct pel_runtime *rt = start_quiet(1, NULL);

	(void)state;
	task_rt = rt;
	on_worker(rt, 0, create_from_task, NULL);
	assert_int_equal(atomic_load(&task_err), -EDEADLK);
	destroy_and_close(rt);
}

static void
check_capacity(unsigned flags, size_t obj_size, size_t align)
{
	struct pel_runtime *rt = start_quiet(1, NULL);
	static struct batch b;
	struct pel_pool_stats st;

	assert_int_equal(create_pool(rt, obj_size, COUNT, flags, &b.pool), 0);
	/* exactly COUNT live at once on the owner, then NULL (counted), never blocking */
	b.want = COUNT + 1;
	on_worker(rt, 0, alloc_n, &b);
	assert_int_equal(b.got, COUNT);
	assert_distinct_aligned(b.obj, COUNT, align, obj_size);
	assert_int_equal(pel_pool_stats(b.pool, 0, &st), 0);
	assert_int_equal(st.allocs, COUNT);
	assert_int_equal(st.failures, 1);
	assert_int_equal(st.high_water, COUNT);
	/* objects are writable whole */
	for (unsigned i = 0; i < COUNT; i++)
		memset(b.obj[i], 0xa5, obj_size);
	on_worker(rt, 0, free_all, &b);
	b.want = COUNT;
	on_worker(rt, 0, alloc_n, &b);
	assert_int_equal(b.got, COUNT);
	on_worker(rt, 0, free_all, &b);
	assert_int_equal(pel_pool_stats(b.pool, 0, &st), 0);
	assert_int_equal(st.frees, 2 * COUNT);
	assert_int_equal(st.remote_frees, 0);
	/* placed on the worker's node as sysfs tells it (this host: one node, 0) */
	assert_int_equal(st.node, rt->workers[0]->node);
	assert_true(st.node >= 0);
	pel_pool_destroy(b.pool);
	destroy_and_close(rt);
}

static void
test_capacity_and_alignment(void **state)
{
	(void)state;
	check_capacity(0, 40, 16);
	check_capacity(PEL_POOL_F_CACHE_ALIGN, 40, 64);
	check_capacity(0, 1, 16);
	check_capacity(0, 4096, 16);
}

/* Worker 1 frees worker 0's objects: a partial batch, then worker 1 goes idle (parks). */
static void
test_remote_free_back_within_a_pass(void **state)
{
	struct pel_runtime *rt;
	static struct batch b, part;
	struct pel_pool_stats st;

	(void)state;
	if (online_cpus() < 2)
		skip();
	rt = start_quiet(2, NULL);
	assert_int_equal(create_pool(rt, 64, COUNT, 0, &b.pool), 0);
	b.want = COUNT;
	on_worker(rt, 0, alloc_n, &b);
	assert_int_equal(b.got, COUNT);
	/* 5 of them freed on worker 1: fewer than a batch */
	part.pool = b.pool;
	part.got = 5;
	memcpy(part.obj, b.obj, 5 * sizeof(void *));
	on_worker(rt, 1, free_all, &part);
	/* worker 1 parks; its partial chain must not be stranded */
	assert_true(WAIT_UNTIL(atomic_load(&rt->workers[1]->parked) == 1, 5000));
	assert_int_equal(pel_pool_stats(b.pool, 0, &st), 0);
	assert_int_equal(st.remote_frees, 5);
	part.want = 6;
	on_worker(rt, 0, alloc_n, &part);
	assert_int_equal(part.got, 5);	/* the 5 are back on their owner, and nothing more */
	/* a full batch and more from worker 1: 295 - everything left */
	memcpy(part.obj + 5, b.obj + 5, (COUNT - 5) * sizeof(void *));
	part.got = COUNT;
	on_worker(rt, 1, free_all, &part);
	part.want = COUNT;
	on_worker(rt, 0, alloc_n, &part);
	assert_int_equal(part.got, COUNT);
	on_worker(rt, 0, free_all, &part);
	assert_int_equal(pel_pool_stats(b.pool, 0, &st), 0);
	assert_int_equal(st.remote_frees, COUNT + 5);
	assert_int_equal(st.frees, COUNT);
	assert_int_equal(pel_pool_stats(b.pool, 1, &st), 0);
	assert_int_equal(st.allocs, 0);
	pel_pool_destroy(b.pool);
	destroy_and_close(rt);
}

/* More remote frees than a return ring holds (512): the rest take the chains, none is lost. */
#define OVER 1500
struct many {
	struct pel_pool *pool;
	void *obj[OVER];
	unsigned got;
};

static void
alloc_many(void *arg)
{
	struct many *m = arg;

	m->got = 0;
	for (unsigned i = 0; i < OVER + 1; i++) {
		void *o = pel_alloc(m->pool);

		if (o && m->got < OVER)
			m->obj[m->got++] = o;
		else if (o)
			m->got = OVER + 1;	/* more than the slab holds: a bug */
	}
}

static void
free_many(void *arg)
{
	struct many *m = arg;

	for (unsigned i = 0; i < m->got; i++)
		pel_free(m->pool, m->obj[i]);
}

static void
test_remote_frees_past_the_return_ring(void **state)
{
	static struct many m;
	struct pel_runtime *rt;
	struct pel_pool_stats st;

	(void)state;
	if (online_cpus() < 2)
		skip();
	rt = start_quiet(2, NULL);
	assert_int_equal(create_pool(rt, 32, OVER, 0, &m.pool), 0);
	for (int round = 0; round < 3; round++) {
		on_worker(rt, 0, alloc_many, &m);
		assert_int_equal(m.got, OVER);
		assert_distinct_aligned(m.obj, OVER, 16, 32);
		on_worker(rt, 1, free_many, &m);	/* 512 by the ring, 988 by chains */
		assert_true(WAIT_UNTIL(atomic_load(&rt->workers[1]->parked) == 1, 5000));
	}
	on_worker(rt, 0, alloc_many, &m);
	assert_int_equal(m.got, OVER);
	on_worker(rt, 0, free_many, &m);
	assert_int_equal(pel_pool_stats(m.pool, 0, &st), 0);
	assert_int_equal(st.remote_frees, 3 * OVER);
	assert_int_equal(st.frees, OVER);
	assert_int_equal(st.allocs, 4 * OVER);
	pel_pool_destroy(m.pool);
	destroy_and_close(rt);
}

/*
 * The common pattern: a producer thread allocates, a task frees (on the owner, or on another
 * worker). The freed objects land where only their owners look; a miss makes the owners put them
 * back on the shared stack within a pass, so the producer never runs dry while nearly nothing is
 * live.
 */
static void
free_task(void *arg)
{
	struct pel_pool *pool = ((void **)arg)[0];

	pel_free(pool, ((void **)arg)[1]);
	free(arg);
}

static void
test_producer_allocates_tasks_free(void **state)
{
	struct pel_runtime *rt = start_quiet(online_cpus() >= 2 ? 2 : 1, NULL);
	unsigned n = pel_worker_count(rt);
	struct pel_producer *p;
	struct pel_pool *pool;
	struct pel_pool_stats st;
	unsigned long misses = 0;

	(void)state;
	assert_int_equal(create_pool(rt, 64, 100, 0, &pool), 0);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	for (unsigned i = 0; i < 3000; i++) {
		void **arg = malloc(2 * sizeof(void *));
		void *o;
		uint64_t end = now_ns() + 2000000000ull;

		while (!(o = pel_alloc(pool))) {
			misses++;
			if (now_ns() > end)
				fail_msg("allocation %u: no object within 2 s, with at most a few live", i);
			sched_yield();
		}
		arg[0] = pool;
		arg[1] = o;
		while (pel_submit(p, i % n, free_task, arg) == -EAGAIN)
			sched_yield();
		if (i % 50 == 49)	/* at most 50 in flight: far fewer than the 100 x n objects */
			assert_int_equal(pel_drain(rt, 5 * PEL_NS_PER_S), 0);
	}
	assert_int_equal(pel_drain(rt, 5 * PEL_NS_PER_S), 0);
	print_message("3000 producer allocations freed by tasks: %lu misses on the way\n", misses);
	for (unsigned w = 0; w < n; w++) {
		assert_int_equal(pel_pool_stats(pool, w, &st), 0);
		assert_true(st.high_water <= 100);
	}
	pel_producer_close(p);
	pel_pool_destroy(pool);
	destroy_and_close(rt);
}

static void
test_non_worker_threads(void **state)
{
	struct pel_runtime *rt = start_quiet(online_cpus() >= 2 ? 2 : 1, NULL);
	unsigned n = pel_worker_count(rt), total = 0;
	static void *obj[2 * 40 + 1];
	struct pel_pool *pool;
	struct pel_pool_stats st;

	(void)state;
	assert_int_equal(create_pool(rt, 128, 40, 0, &pool), 0);
	/* a producer thread can take every object of every slab, then gets NULL */
	while (total <= 40 * n && (obj[total] = pel_alloc(pool)) != NULL)
		total++;
	assert_int_equal(total, 40 * n);
	assert_distinct_aligned(obj, total, 16, 128);
	for (unsigned w = 0, sum = 0; w < n; w++) {
		assert_int_equal(pel_pool_stats(pool, w, &st), 0);
		sum += st.allocs;
		if (w == n - 1)
			assert_int_equal(sum, 40 * n);
	}
	unsigned long failures = 0;

	for (unsigned i = 0; i < total; i++)
		pel_free(pool, obj[i]);
	for (unsigned w = 0; w < n; w++) {
		assert_int_equal(pel_pool_stats(pool, w, &st), 0);
		assert_int_equal(st.remote_frees, 40);
		failures += st.failures;
	}
	assert_int_equal(failures, 1);	/* the one NULL that ended the loop */
	pel_pool_destroy(pool);
	destroy_and_close(rt);
}

static void
test_double_free_and_foreign_pointer(void **state)
{
	struct captured log;
	struct pel_runtime *rt = start_quiet(1, &log);
	static struct batch b;
	struct pel_pool *other;
	char on_stack[64];

	(void)state;
#ifdef NDEBUG
	print_message("skip: double-free detection is in builds without NDEBUG\n");
	destroy_and_close(rt);
	skip();
#endif
	if (force_fast) {
		print_message("skip: a fast (unchecked) pool does not look for double frees\n");
		destroy_and_close(rt);
		skip();
	}
	assert_int_equal(create_pool(rt, 48, COUNT, 0, &b.pool), 0);
	assert_int_equal(create_pool(rt, 48, COUNT, 0, &other), 0);
	b.want = 3;
	on_worker(rt, 0, alloc_n, &b);
	assert_int_equal(b.got, 3);
	/* a non-worker double free */
	pel_free(b.pool, b.obj[2]);
	pel_free(b.pool, b.obj[2]);
	assert_int_equal(log.errors, 1);
	assert_non_null(strstr(log.last, "double free of"));
	/* pointers that are not this pool's objects */
	pel_free(b.pool, on_stack);
	assert_int_equal(log.errors, 2);
	assert_non_null(strstr(log.last, "is not an object of this pool (48-byte objects"));
	pel_free(b.pool, (char *)b.obj[0] + 8);
	assert_int_equal(log.errors, 3);
	void *o = pel_alloc(other);

	pel_free(b.pool, o);
	assert_int_equal(log.errors, 4);
	pel_free(other, o);
	/* an owner double free too */
	b.got = 2;
	on_worker(rt, 0, free_all, &b);
	b.got = 1;
	on_worker(rt, 0, free_all, &b);
	assert_int_equal(log.errors, 5);
	/* the pool is intact: exactly COUNT distinct objects */
	b.want = COUNT + 1;
	on_worker(rt, 0, alloc_n, &b);
	assert_int_equal(b.got, COUNT);
	assert_distinct_aligned(b.obj, COUNT, 16, 48);
	on_worker(rt, 0, free_all, &b);
	pel_pool_destroy(b.pool);
	pel_pool_destroy(other);
	assert_int_equal(log.warnings, 0);
	destroy_and_close(rt);
}

static void
test_destroy_warns_on_live_objects(void **state)
{
	struct captured log;
	struct pel_runtime *rt = start_quiet(1, &log);
	struct pel_pool *pool;

	(void)state;
	assert_int_equal(create_pool(rt, 32, 8, 0, &pool), 0);
	assert_non_null(pel_alloc(pool));
	assert_non_null(pel_alloc(pool));
	pel_pool_destroy(pool);
	assert_int_equal(log.warnings, 1);
	assert_non_null(strstr(log.last, "2 objects of this pool are still allocated"));
	destroy_and_close(rt);
}

static long
free_hugepages(void)
{
	return read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
}

static void
test_hugepages_fallback_logged(void **state)
{
	struct captured log;
	struct pel_runtime *rt = start_quiet(1, &log);
	struct pel_pool *pool;
	struct pel_pool_stats st;

	(void)state;
	assert_int_equal(create_pool(rt, 64, 1000, PEL_POOL_F_HUGEPAGES, &pool), 0);
	assert_int_equal(pel_pool_stats(pool, 0, &st), 0);
	if (free_hugepages() > 0) {
		assert_int_equal(st.hugepages, 1);
	} else {
		assert_int_equal(st.hugepages, 0);
		assert_int_equal(log.warnings, 1);
		assert_non_null(strstr(log.last, "no 2 MiB hugepage"));
	}
	void *o = pel_alloc(pool);

	assert_non_null(o);
	pel_free(pool, o);
	pel_pool_destroy(pool);
	destroy_and_close(rt);
}

static long
vm_locked_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* The runtime's PEL_F_MLOCK locks the slabs too. */
static void
test_mlock_locks_slabs(void **state)
{
	struct pel_runtime *rt;
	struct pel_pool *pool;
	struct pel_config c;
	long before, after;

	(void)state;
	if (geteuid() != 0) {
		print_message("skip: locking 4 MiB needs root or a large RLIMIT_MEMLOCK\n");
		skip();
	}
	if (PEL_HAS_ASAN || PEL_HAS_TSAN) {
		print_message("skip: the sanitizer runtimes make mlock() a no-op\n");
		skip();
	}
	quiet_config(&c, "0", NULL);
	c.flags = PEL_F_MLOCK;
	assert_int_equal(pel_create(&c, &rt), 0);
	before = vm_locked_kb();
	assert_int_equal(create_pool(rt, 64, 65536, 0, &pool), 0);	/* 4 MiB of objects */
	after = vm_locked_kb();
	print_message("VmLck %ld kB -> %ld kB\n", before, after);
	assert_true(after - before >= 4096);
	pel_pool_destroy(pool);
	destroy_and_close(rt);
}

/* ---- concurrency: objects cross workers and threads ---- */

#define STRESS_OBJS 512
static struct pel_pool *spool;
static _Atomic unsigned long stress_done, stress_bad, stress_null;

struct obj {
	_Atomic int holder;	/* 0 free, 1 held: two holders at once is a bug */
	uint64_t pattern;
};

static void
freer_task(void *arg)
{
	struct obj *o = arg;

	if (o->pattern != (uint64_t)(uintptr_t)o)
		atomic_fetch_add(&stress_bad, 1);
	atomic_store(&o->holder, 0);
	pel_free(spool, o);
	atomic_fetch_add(&stress_done, 1);
}

static void
allocer_task(void *arg)
{
	unsigned other = (unsigned)(uintptr_t)arg;
	struct obj *o = pel_alloc(spool);
	int zero = 0;

	if (!o) {
		atomic_fetch_add(&stress_null, 1);
		atomic_fetch_add(&stress_done, 1);
		return;
	}
	if (!atomic_compare_exchange_strong(&o->holder, &zero, 1))
		atomic_fetch_add(&stress_bad, 1);
	o->pattern = (uint64_t)(uintptr_t)o;
	/* freed on the other worker: a remote free */
	while (pel_spawn(other, freer_task, o) == -EAGAIN)
		sched_yield();
}

static void *
foreign_thread(void *arg)
{
	unsigned long n = (unsigned long)(uintptr_t)arg;

	for (unsigned long i = 0; i < n; i++) {
		struct obj *o = pel_alloc(spool);
		int zero = 0;

		if (!o) {
			sched_yield();
			continue;
		}
		if (!atomic_compare_exchange_strong(&o->holder, &zero, 1))
			atomic_fetch_add(&stress_bad, 1);
		atomic_store(&o->holder, 0);
		pel_free(spool, o);
	}
	return NULL;
}

static void
test_stress_cross_worker(void **state)
{
	struct pel_runtime *rt;
	struct pel_producer *p;
	pthread_t th[2];
	unsigned long rounds = PEL_STRESS_TASKS / 10, sent = 0;
	static struct batch b;

	(void)state;
	if (online_cpus() < 2)
		skip();
	rt = start_quiet(2, NULL);
	assert_int_equal(create_pool(rt, sizeof(struct obj), STRESS_OBJS, 0, &spool), 0);
	atomic_store(&stress_done, 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, foreign_thread,
						(void *)(uintptr_t)(rounds / 4)), 0);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	for (; sent < rounds; sent++) {
		unsigned w = sent & 1;

		while (pel_submit(p, w, allocer_task, (void *)(uintptr_t)(1 - w)) == -EAGAIN)
			sched_yield();
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(pel_drain(rt, 30 * PEL_NS_PER_S), 0);
	print_message("%lu cross-worker alloc/remote-free rounds (%lu found the slab empty), 2 "
		      "threads x %lu foreign alloc/free\n", rounds, atomic_load(&stress_null),
		      rounds / 4);
	assert_int_equal(atomic_load(&stress_done), rounds);
	assert_int_equal(atomic_load(&stress_bad), 0);
	/* everything came home: each owner can take its whole slab again */
	for (unsigned w = 0; w < 2; w++) {
		b.pool = spool;
		b.want = STRESS_OBJS + 1;
		on_worker(rt, w, alloc_n, &b);
		assert_int_equal(b.got, STRESS_OBJS);
		on_worker(rt, w, free_all, &b);
	}
	pel_pool_destroy(spool);
	destroy_and_close(rt);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_create_errors),
		cmocka_unit_test(test_create_from_task_refused),
		cmocka_unit_test(test_too_many_pools),
		cmocka_unit_test(test_capacity_and_alignment),
		cmocka_unit_test(test_remote_free_back_within_a_pass),
		cmocka_unit_test(test_remote_frees_past_the_return_ring),
		cmocka_unit_test(test_producer_allocates_tasks_free),
		cmocka_unit_test(test_non_worker_threads),
		cmocka_unit_test(test_double_free_and_foreign_pointer),
		cmocka_unit_test(test_destroy_warns_on_live_objects),
		cmocka_unit_test(test_hugepages_fallback_logged),
		cmocka_unit_test(test_mlock_locks_slabs),
	};
	const struct CMUnitTest stress[] = {
		cmocka_unit_test(test_stress_cross_worker),
	};

	int failed;

	if (argc > 1 && !strcmp(argv[1], "--stress")) {
		failed = cmocka_run_group_tests_name("pool stress, out of line", stress, NULL, NULL);
		force_fast = 1;
		return failed + cmocka_run_group_tests_name("pool stress, inline fast paths", stress,
							    NULL, NULL);
	}
	failed = cmocka_run_group_tests_name("pool, out of line", unit, NULL, NULL);
	force_fast = 1;
	return failed + cmocka_run_group_tests_name("pool, inline fast paths", unit, NULL, NULL);
}
