/* SPDX-License-Identifier: MIT */
/*
 * tests/test_pool_bulk.c - pel_alloc_bulk() and pel_free_bulk(): errors first, then all or none
 * at the edges (n = 0, 1, the cache, one past it, exactly the objects left, one more), from a
 * worker and from a thread that is not one, with pel_pool_stats() exact after each step; a bulk
 * free refused whole for one foreign pointer; bulk frees from other workers (return rings),
 * mixed arrays of several owners, and every object back home afterwards; the O(1) owner lookup
 * (one reservation for every slab) refusing addresses around and between the slabs.
 * Run twice, as tests/test_pool.c: out of line (checked builds), then on pool.h's inline paths.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <pel/pool.h>

#include "helpers.h"
#include "on_worker.h"
#include "destroy_close.h"
#include "internal.h"

#define COUNT	300	/* more than the owner cache (PEL__POOL_CACHE_MAX 256) */
#define CAP	PEL__POOL_CACHE_MAX

static int force_fast;

static int
create_pool(struct pel_runtime *rt, size_t size, unsigned count, struct pel_pool **out)
{
	int err = pel_pool_create(rt, size, count, 0, out);

	if (!err && force_fast)
		((struct pel__pool_pub *)*out)->fast = 1;
	return err;
}

static unsigned
workers_here(void)
{
	return online_cpus() >= 2 ? 2 : 1;
}

/* One bulk call, made where the test says, and what it answered. */
struct bulk {
	struct pel_pool *pool;
	void **objs;
	unsigned n;
	bool free;
	int ret;
};

static void
bulk_call(void *arg)
{
	struct bulk *b = arg;

	b->ret = b->free ? pel_free_bulk(b->pool, b->objs, b->n) :
			   pel_alloc_bulk(b->pool, b->objs, b->n);
}

static int
bulk_on(struct pel_runtime *rt, int w, struct pel_pool *pool, void **objs, unsigned n, bool free)
{
	struct bulk b = { .pool = pool, .objs = objs, .n = n, .free = free };

	if (w < 0)
		bulk_call(&b);
	else
		on_worker(rt, (unsigned)w, bulk_call, &b);
	return b.ret;
}

static void
assert_stats(struct pel_pool *pool, unsigned w, uint64_t allocs, uint64_t frees,
	     uint64_t remote_frees, uint64_t failures)
{
	struct pel_pool_stats st;

	assert_int_equal(pel_pool_stats(pool, w, &st), 0);
	assert_int_equal(st.allocs, allocs);
	assert_int_equal(st.frees, frees);
	assert_int_equal(st.remote_frees, remote_frees);
	assert_int_equal(st.failures, failures);
}

static int
cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

/* n distinct objects, 16-byte aligned, at least @p stride apart */
static void
assert_distinct(void **obj, unsigned n, size_t stride)
{
	uintptr_t *v = malloc(n * sizeof(*v));

	for (unsigned i = 0; i < n; i++) {
		v[i] = (uintptr_t)obj[i];
		assert_int_equal(v[i] % 16, 0);
	}
	qsort(v, n, sizeof(*v), cmp_ptr);
	for (unsigned i = 1; i < n; i++)
		assert_true(v[i] - v[i - 1] >= stride);
	free(v);
}

static void
test_errors(void **state)
{
	struct pel_runtime *rt = start_quiet(1, NULL);
	struct pel_pool *pool;
	void *objs[2] = { (void *)0x1, (void *)0x2 };

	(void)state;
	assert_int_equal(create_pool(rt, 64, 8, &pool), 0);
	for (int w = -1; w <= 0; w++) {
		assert_int_equal(bulk_on(rt, w, NULL, objs, 1, false), -EINVAL);
		assert_int_equal(bulk_on(rt, w, NULL, objs, 1, true), -EINVAL);
		assert_int_equal(bulk_on(rt, w, pool, NULL, 1, false), -EINVAL);
		assert_int_equal(bulk_on(rt, w, pool, NULL, 0, false), -EINVAL);
		assert_int_equal(bulk_on(rt, w, pool, NULL, 0, true), -EINVAL);
		/* n == 0: nothing, 0, objs untouched */
		assert_int_equal(bulk_on(rt, w, pool, objs, 0, false), 0);
		assert_int_equal(bulk_on(rt, w, pool, objs, 0, true), 0);
		assert_ptr_equal(objs[0], (void *)0x1);
	}
	assert_int_equal(pel_alloc_bulk(pool, NULL, 1), -EINVAL);
	assert_error_contains("objs is NULL");
	assert_int_equal(pel_free_bulk(NULL, objs, 1), -EINVAL);
	assert_error_contains("pool is NULL");
	assert_stats(pool, 0, 0, 0, 0, 0);
	pel_pool_destroy(pool);
	destroy_and_close(rt);
}

/*
 * The edges, on caller @p w (a worker id, or -1: this thread) of a one-worker runtime: 1, the
 * cache, one past it, exactly what is left, one more than is left; stats exact throughout.
 */
static void
edges(int w)
{
	struct pel_runtime *rt = start_quiet(1, NULL);
	static void *a[COUNT + 1], *b[COUNT + 1];
	struct pel_pool *pool;
	uint64_t allocs = 0, frees = 0, remote = 0, fails = 0;
	/* frees by the owner count as frees, by anyone else as remote frees */
	uint64_t *freed = w >= 0 ? &frees : &remote;

	assert_int_equal(create_pool(rt, 64, COUNT, &pool), 0);

	assert_int_equal(bulk_on(rt, w, pool, a, 1, false), 0);
	allocs += 1;
	assert_non_null(a[0]);
	assert_stats(pool, 0, allocs, frees, remote, fails);
	assert_int_equal(bulk_on(rt, w, pool, a, 1, true), 0);
	*freed += 1;
	assert_stats(pool, 0, allocs, frees, remote, fails);

	/* the cache's worth, then one past it */
	assert_int_equal(bulk_on(rt, w, pool, a, CAP, false), 0);
	allocs += CAP;
	assert_distinct(a, CAP, 64);
	assert_int_equal(bulk_on(rt, w, pool, a, CAP, true), 0);
	*freed += CAP;
	assert_int_equal(bulk_on(rt, w, pool, a, CAP + 1, false), 0);
	allocs += CAP + 1;
	assert_distinct(a, CAP + 1, 64);
	assert_stats(pool, 0, allocs, frees, remote, fails);

	/* COUNT - CAP - 1 left: one more than that is refused and takes nothing */
	assert_int_equal(bulk_on(rt, w, pool, b, COUNT - CAP, false), -ENOBUFS);
	fails++;
	assert_stats(pool, 0, allocs, frees, remote, fails);
	/* exactly what is left */
	assert_int_equal(bulk_on(rt, w, pool, b, COUNT - CAP - 1, false), 0);
	allocs += COUNT - CAP - 1;
	memcpy(a + CAP + 1, b, (COUNT - CAP - 1) * sizeof(*a));
	assert_distinct(a, COUNT, 64);
	assert_int_equal(bulk_on(rt, w, pool, b, 1, false), -ENOBUFS);
	fails++;
	assert_stats(pool, 0, allocs, frees, remote, fails);

	/* all back at once, then all out at once, then more than the slab */
	assert_int_equal(bulk_on(rt, w, pool, a, COUNT, true), 0);
	*freed += COUNT;
	assert_stats(pool, 0, allocs, frees, remote, fails);
	assert_int_equal(bulk_on(rt, w, pool, b, COUNT + 1, false), -ENOBUFS);
	fails++;
	assert_int_equal(bulk_on(rt, w, pool, a, COUNT, false), 0);
	allocs += COUNT;
	assert_distinct(a, COUNT, 64);
	assert_stats(pool, 0, allocs, frees, remote, fails);

	/* one foreign pointer refuses the whole call: nothing freed */
	char on_stack[64];

	a[COUNT] = on_stack;
	assert_int_equal(bulk_on(rt, w, pool, a + 1, COUNT, true), -EINVAL);
	assert_stats(pool, 0, allocs, frees, remote, fails);
	/* NULL entries are skipped */
	a[COUNT] = NULL;
	assert_int_equal(bulk_on(rt, w, pool, a, COUNT + 1, true), 0);
	*freed += COUNT;
	assert_stats(pool, 0, allocs, frees, remote, fails);
	pel_pool_destroy(pool);
	destroy_and_close(rt);
}

static void
test_edges_on_worker(void **state)
{
	(void)state;
	edges(0);
}

static void
test_edges_on_non_worker(void **state)
{
	(void)state;
	edges(-1);
}

/* A non-worker takes every slab's objects in one call, slab after slab; all or none. */
static void
test_non_worker_across_slabs(void **state)
{
	struct pel_runtime *rt = start_quiet(workers_here(), NULL);
	unsigned n = pel_worker_count(rt);
	static void *a[2 * 40 + 1];
	struct pel_pool *pool;
	struct pel_pool_stats st;
	uint64_t fails = 0;

	(void)state;
	assert_int_equal(create_pool(rt, 128, 40, &pool), 0);
	assert_int_equal(pel_alloc_bulk(pool, a, 40 * n + 1), -ENOBUFS);
	assert_int_equal(pel_alloc_bulk(pool, a, 40 * n), 0);
	assert_distinct(a, 40 * n, 128);
	assert_int_equal(pel_alloc_bulk(pool, a + 40 * n, 1), -ENOBUFS);
	for (unsigned w = 0; w < n; w++) {
		assert_int_equal(pel_pool_stats(pool, w, &st), 0);
		assert_int_equal(st.allocs, 40);
		fails += st.failures;
	}
	assert_int_equal(fails, 2);
	assert_int_equal(pel_free_bulk(pool, a, 40 * n), 0);
	for (unsigned w = 0; w < n; w++) {
		assert_int_equal(pel_pool_stats(pool, w, &st), 0);
		assert_int_equal(st.remote_frees, 40);
	}
	/* and the owners can take all of theirs again */
	for (unsigned w = 0; w < n; w++)
		assert_int_equal(bulk_on(rt, (int)w, pool, a, 40, false), 0);
	pel_pool_destroy(pool);
	destroy_and_close(rt);
}

/*
 * Worker 0 allocates; worker 1 frees them in bulk (its return ring to worker 0, then chains when
 * the ring is full); a mixed array of both workers' objects is freed by each worker in turn.
 */
static void
test_remote_bulk_free(void **state)
{
	struct pel_runtime *rt;
	static void *a[2 * COUNT], *m[2 * COUNT];
	struct pel_pool *pool;

	(void)state;
	if (workers_here() < 2) {
		print_message("skip: one online CPU, no second worker\n");
		skip();
	}
	rt = start_quiet(2, NULL);
	assert_int_equal(create_pool(rt, 64, COUNT, &pool), 0);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(bulk_on(rt, 0, pool, a, COUNT, false), 0);
		assert_int_equal(bulk_on(rt, 1, pool, a, COUNT, true), 0);
		assert_stats(pool, 0, (uint64_t)COUNT * (round + 1), 0,
			     (uint64_t)COUNT * (round + 1), 0);
	}
	assert_stats(pool, 1, 0, 0, 0, 0);
	/* everything came home: worker 0 can take its whole slab again, in one call */
	assert_int_equal(bulk_on(rt, 0, pool, a, COUNT, false), 0);
	assert_int_equal(bulk_on(rt, 1, pool, a + COUNT, COUNT, false), 0);
	assert_distinct(a, 2 * COUNT, 64);
	/* interleave the owners, 0, 1, 0, 1, ...: each worker frees half of each slab's objects */
	for (unsigned i = 0; i < COUNT; i++) {
		m[2 * i] = a[i];
		m[2 * i + 1] = a[COUNT + i];
	}
	assert_int_equal(bulk_on(rt, 1, pool, m, COUNT, true), 0);
	assert_int_equal(bulk_on(rt, 0, pool, m + COUNT, COUNT, true), 0);
	assert_stats(pool, 0, 4 * COUNT, COUNT / 2, 3 * COUNT + COUNT / 2, 0);
	assert_stats(pool, 1, COUNT, COUNT / 2, COUNT / 2, 0);
	/* and each owner has its whole slab again */
	assert_int_equal(bulk_on(rt, 0, pool, a, COUNT, false), 0);
	assert_int_equal(bulk_on(rt, 1, pool, a + COUNT, COUNT, false), 0);
	assert_distinct(a, 2 * COUNT, 64);
	pel_pool_destroy(pool);
	destroy_and_close(rt);
}

/*
 * The owner of an address is found in O(1) (the slabs lie a power-of-two span apart in one
 * reservation): addresses around and between the slabs are no objects, freed one by one or in
 * bulk, from a worker or not; the pool is untouched.
 */
static void
test_addresses_around_the_slabs(void **state)
{
	struct pel_runtime *rt = start_quiet(workers_here(), NULL);
	unsigned n = pel_worker_count(rt);
	static void *a[2][COUNT];
	struct pel_pool *pool;
	struct pel_pool_stats st;
	char *base[2] = { NULL, NULL }, *end[2] = { NULL, NULL }, *bad[8];
	unsigned nbad = 0;

	(void)state;
	assert_int_equal(create_pool(rt, 64, COUNT, &pool), 0);
	for (unsigned w = 0; w < n; w++) {
		assert_int_equal(bulk_on(rt, (int)w, pool, a[w], COUNT, false), 0);
		base[w] = end[w] = a[w][0];
		for (unsigned i = 0; i < COUNT; i++) {
			base[w] = (char *)a[w][i] < base[w] ? a[w][i] : base[w];
			end[w] = (char *)a[w][i] + 64 > end[w] ? (char *)a[w][i] + 64 : end[w];
		}
		assert_int_equal(end[w] - base[w], COUNT * 64);
		assert_int_equal(pel_pool_stats(pool, w, &st), 0);
		assert_int_equal(st.hugepages, 0);
		assert_true(st.node >= -1);
	}
	bad[nbad++] = base[0] - 64;
	bad[nbad++] = base[0] + 8;		/* inside, not on an object */
	bad[nbad++] = end[0];			/* just past the objects */
	bad[nbad++] = end[n - 1] + 4096;
	if (n > 1) {
		/* the slabs are a power of two apart, the second after the first */
		size_t span = (size_t)(base[1] - base[0]);

		assert_true(base[1] > base[0] && (span & (span - 1)) == 0);
		assert_int_equal((uintptr_t)base[0] % span, 0);
		bad[nbad++] = base[1] - 64;	/* the gap at the end of worker 0's span */
		bad[nbad++] = base[1] + 16;
		bad[nbad++] = end[1];
	}
	for (unsigned i = 0; i < nbad; i++) {
		void *one[2] = { a[0][0], bad[i] };

		assert_int_equal(bulk_on(rt, -1, pool, one, 2, true), -EINVAL);
		assert_error_contains("is not an object of this pool");
		assert_int_equal(bulk_on(rt, (int)(n - 1), pool, one, 2, true), -EINVAL);
		pel_free(pool, bad[i]);		/* logged, ignored */
	}
	for (unsigned w = 0; w < n; w++)
		assert_stats(pool, w, COUNT, 0, 0, 0);
	for (unsigned w = 0; w < n; w++)
		assert_int_equal(bulk_on(rt, (int)w, pool, a[w], COUNT, true), 0);
	for (unsigned w = 0; w < n; w++)
		assert_stats(pool, w, COUNT, COUNT, 0, 0);
	pel_pool_destroy(pool);
	destroy_and_close(rt);
}

int
main(void)
{
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_edges_on_worker),
		cmocka_unit_test(test_edges_on_non_worker),
		cmocka_unit_test(test_non_worker_across_slabs),
		cmocka_unit_test(test_remote_bulk_free),
		cmocka_unit_test(test_addresses_around_the_slabs),
	};
	int failed;

	failed = cmocka_run_group_tests_name("pool bulk, out of line", unit, NULL, NULL);
	force_fast = 1;
	return failed + cmocka_run_group_tests_name("pool bulk, inline fast paths", unit, NULL,
						    NULL);
}
