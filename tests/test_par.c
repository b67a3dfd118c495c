/* SPDX-License-Identifier: MIT */
/*
 * tests/test_par.c - parallel work: task groups, parallel-for, placement, stealing (pel/par.h).
 * Error paths first; then exactly-once under stress, parallel-for against sequential loops on one
 * and two workers, placement under a skewed load, stealing, and races with pel_destroy().
 * "--stress" runs the concurrency part (suite concurrency, also under ASan and TSan).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include <pel/par.h>

#include "helpers.h"
#include "on_worker.h"

static unsigned
ncpu_workers(unsigned want)
{
	return want == 2 && online_cpus() >= 2 ? 2 : 1;
}

static struct pel_runtime *
start(unsigned workers, enum pel_idle idle, unsigned flags, struct captured *log, bool enable)
{
	static struct captured quiet;
	struct pel_runtime *rt = NULL;
	struct pel_config c;

	quiet_config(&c, ncpu_workers(workers) == 2 ? "0-1" : "0", log ? log : &quiet);
	c.idle = idle;
	c.flags |= flags;
	assert_int_equal(pel_create(&c, &rt), 0);
	if (enable)
		assert_int_equal(pel_par_enable(rt, 0), 0);
	return rt;
}

static void
nop(void *arg)
{
	(void)arg;
}

static uint64_t
sum_body(uint64_t lo, uint64_t hi, void *arg)
{
	uint64_t s = 0;

	(void)arg;
	for (uint64_t i = lo; i < hi; i++)
		s += i * i + 1;
	return s;
}

static uint64_t
add(uint64_t a, uint64_t b, void *arg)
{
	(void)arg;
	return a + b;
}

struct result {
	_Atomic int done;
	_Atomic int runs;
	uint64_t value;
	int worker;
};

static void
result_done(uint64_t v, void *arg)
{
	struct result *r = arg;

	r->value = v;
	r->worker = pel_worker_self();
	atomic_fetch_add(&r->runs, 1);
	atomic_store(&r->done, 1);
}

/* ---- errors ---- */

struct on_ctx {
	int group, close, any;
	struct pel_group g;
	struct call done;
};

static void
on_task(void *arg)
{
	struct on_ctx *c = arg;

	c->group = pel_group_init(&c->g, call_task, &c->done, 0);
	c->any = pel_submit_any(NULL, nop, NULL);
	if (!c->group)
		c->close = pel_group_close(&c->g);
}

/* Every runtime has parallel work from pel_create(): no set-up call before the API works. */
static void
test_on_from_create(void **state)
{
	struct pel_runtime *rt = start(1, PEL_IDLE_PARK, 0, NULL, false);
	struct on_ctx c = { .done = { nop, NULL, 0 } };
	struct call pd = { nop, NULL, 0 };
	struct pel_par_stats st;
	struct pel_producer *p;
	struct pel_group g;

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_submit_any(p, nop, NULL), 0);
	assert_int_equal(pel_set_placement(rt, PEL_PLACE_JSQ), 0);
	assert_int_equal(pel_group_init_producer(&g, p, call_task, &pd, 0), 0);
	assert_int_equal(pel_group_spawn(&g, 0, nop, NULL), 0);
	assert_int_equal(pel_group_close(&g), 0);
	on_worker(rt, 0, on_task, &c);
	assert_int_equal(c.group, 0);
	assert_int_equal(c.any, 0);
	assert_int_equal(c.close, 0);
	assert_true(WAIT_UNTIL(atomic_load(&pd.done) && atomic_load(&c.done.done), 10000));
	assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(pel_par_stats(rt, 0, &st), 0);
	/* pel_par_enable(): nothing to do, and no resizing of live queues */
	assert_int_equal(pel_par_enable(rt, 0), 0);
	assert_int_equal(pel_par_enable(rt, 4096), 0);
	assert_int_equal(pel_par_enable(rt, 2), -EBUSY);
	assert_error_contains("on already");
	assert_int_equal(pel_group_destroy(&g), 0);
	assert_int_equal(pel_group_destroy(&c.g), 0);
	pel_producer_close(p);
	pel_destroy(rt);
}

struct pfor_errs {
	int r[8];
	struct result empty;
	struct pel_runtime *rt;
	struct pel_group g;		/* opened in a task, left for the producer thread to misuse */
	int enable, bad_home, cross_close;
};

static void
pfor_errors_task(void *arg)
{
	struct pfor_errs *e = arg;

	e->r[0] = pel_parallel_for(0, 10, 1, NULL, add, 0, result_done, NULL);
	e->r[1] = pel_parallel_for(0, 10, 1, sum_body, NULL, 0, result_done, NULL);
	e->r[2] = pel_parallel_for(0, 10, 1, sum_body, add, 0, NULL, NULL);
	e->r[3] = pel_parallel_for(10, 9, 1, sum_body, add, 0, result_done, NULL);
	e->r[4] = pel_parallel_for(0, 10, 0, sum_body, add, 0, result_done, NULL);
	/* hi == lo: on_done(identity) on this worker */
	e->r[5] = pel_parallel_for(7, 7, 1, sum_body, add, 4242, result_done, &e->empty);
	e->enable = pel_par_enable(e->rt, 0);		/* waits for every worker: refused */
	e->bad_home = pel_group_init(&e->g, nop, NULL, 99);
	e->r[6] = pel_group_init(&e->g, nop, NULL, PEL_ANY_WORKER);
}

static void
close_in_task(void *arg)
{
	struct pfor_errs *e = arg;

	e->cross_close = pel_group_close(&e->g);
}

static void
test_errors(void **state)
{
	struct pel_runtime *rt = start(2, PEL_IDLE_PARK, 0, NULL, false);
	struct pel_producer *p;
	struct pel_group g, z;
	struct pfor_errs e;
	struct result r = { 0 };
	unsigned n = pel_worker_count(rt);

	(void)state;
	memset(&e, 0, sizeof(e));
	memset(&z, 0, sizeof(z));
	assert_int_equal(pel_par_enable(NULL, 0), -EINVAL);
	assert_int_equal(pel_par_enable(rt, 3), -EINVAL);
	assert_error_contains("power of two");
	assert_int_equal(pel_par_enable(rt, 1u << 21), -EINVAL);
	assert_int_equal(pel_par_enable(rt, 1), -EINVAL);
	assert_int_equal(pel_par_enable(rt, 2), -EBUSY);	/* on since pel_create() */
	assert_int_equal(pel_par_enable(rt, 0), 0);	/* again: nothing */
	assert_int_equal(pel_set_placement(rt, (enum pel_placement)7), -EINVAL);
	assert_error_contains("placement policy 7");
	assert_int_equal(pel_set_placement(NULL, PEL_PLACE_RR), -EINVAL);
	assert_int_equal(pel_par_stats(rt, n, &(struct pel_par_stats){ 0 }), -EINVAL);
	assert_int_equal(pel_par_stats(rt, 0, NULL), -EINVAL);

	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_submit_any(p, NULL, NULL), -EINVAL);
	assert_error_contains("NULL");
	assert_int_equal(pel_submit_any(NULL, nop, NULL), -EINVAL);

	/* groups */
	assert_int_equal(pel_group_init(&g, nop, NULL, 0), -EPERM);
	assert_error_contains("pel_group_init_producer()");
	assert_int_equal(pel_group_init_producer(NULL, p, nop, NULL, 0), -EINVAL);
	assert_int_equal(pel_group_init_producer(&g, p, NULL, NULL, 0), -EINVAL);
	assert_int_equal(pel_group_init_producer(&g, NULL, nop, NULL, 0), -EINVAL);
	assert_int_equal(pel_group_init_producer(&g, p, nop, NULL, n), -EINVAL);
	assert_error_contains("does not exist");
	assert_int_equal(pel_group_spawn(&z, 0, nop, NULL), -EINVAL);
	assert_error_contains("not initialised");
	assert_int_equal(pel_group_spawn(NULL, 0, nop, NULL), -EINVAL);
	assert_int_equal(pel_group_close(&z), -EINVAL);
	assert_int_equal(pel_group_destroy(&z), -EINVAL);

	assert_int_equal(pel_group_init_producer(&g, p, nop, NULL, 0), 0);
	assert_int_equal(pel_group_spawn(&g, 0, NULL, NULL), -EINVAL);
	assert_int_equal(pel_group_spawn(&g, n, nop, NULL), -EINVAL);
	assert_error_contains("does not exist");
	assert_int_equal(pel_group_destroy(&g), -EBUSY);
	assert_error_contains("still open");
	assert_int_equal(pel_group_close(&g), 0);
	assert_int_equal(pel_group_close(&g), -EINVAL);
	assert_error_contains("closed already");
	assert_int_equal(pel_group_spawn(&g, 0, nop, NULL), -EINVAL);
	assert_error_contains("closed");
	assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(pel_group_destroy(&g), 0);
	assert_int_equal(pel_group_destroy(&g), -EINVAL);

	/* a full queue (its worker held busy): -EAGAIN, nothing added, the group completes */
	{
		struct pel_group g2;
		struct call c = { nop, NULL, 0 };
		struct spin_arg sp = { 0 };
		int full = 0, i;

		assert_int_equal(pel_group_init_producer(&g2, p, call_task, &c, 0), 0);
		(void)r;
		spin_on_worker(rt, 0, &sp);
		for (i = 0; i < 10000 && !full; i++) {
			int err = pel_group_spawn(&g2, 0, nop, NULL);

			assert_true(err == 0 || err == -EAGAIN);
			full = err == -EAGAIN;
		}
		spin_release(&sp);
		assert_true(full);
		print_message("the queue took %d members before -EAGAIN\n", i - 1);
		assert_int_equal(pel_group_close(&g2), 0);
		assert_true(WAIT_UNTIL(atomic_load(&c.done), 10000));
	}

	e.rt = rt;
	on_worker(rt, 0, pfor_errors_task, &e);
	for (int i = 0; i < 5; i++)
		assert_int_equal(e.r[i], -EINVAL);
	assert_int_equal(e.r[5], 0);
	assert_int_equal(e.enable, -EDEADLK);
	assert_int_equal(e.bad_home, -EINVAL);
	assert_int_equal(e.r[6], 0);
	/* a group opened in a task: a producer thread may not spawn into it or close it */
	assert_int_equal(pel_group_spawn(&e.g, 0, nop, NULL), -EPERM);
	assert_error_contains("pel_group_init_producer()");
	assert_int_equal(pel_group_close(&e.g), -EPERM);
	on_worker(rt, 0, close_in_task, &e);
	assert_int_equal(e.cross_close, 0);
	assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(pel_group_destroy(&e.g), 0);
	assert_true(WAIT_UNTIL(atomic_load(&e.empty.done), 10000));
	assert_int_equal(e.empty.value, 4242);
	assert_int_equal(e.empty.worker, 0);
	assert_int_equal(pel_parallel_for(0, 1, 1, sum_body, add, 0, result_done, &r), -EPERM);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* ---- groups from a producer ---- */

struct pgroup {
	struct pel_group g;
	_Atomic int accepted;		/* spawns that returned 0 (test_destroy_race) */
	_Atomic int members;
	_Atomic int done;
	int home_seen;
	unsigned home;
};

static void
pmember(void *arg)
{
	struct pgroup *pg = arg;

	atomic_fetch_add(&pg->members, 1);
}

static void
pdone(void *arg)
{
	struct pgroup *pg = arg;

	pg->home_seen = pel_worker_self();
	atomic_fetch_add(&pg->done, 1);
}

static void
test_group_producer(void **state)
{
	struct pel_runtime *rt = start(2, PEL_IDLE_PARK, 0, NULL, true);
	unsigned n = pel_worker_count(rt);
	struct pel_par_stats st;
	struct pel_producer *p;
	uint64_t done = 0;

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	for (unsigned k = 0; k < 20; k++) {
		struct pgroup pg = { .home = k % n };

		assert_int_equal(pel_group_init_producer(&pg.g, p, pdone, &pg, pg.home), 0);
		for (unsigned i = 0; i < 100; i++) {
			unsigned w = i % 3 == 2 ? PEL_ANY_WORKER : i % n;
			int err;

			while ((err = pel_group_spawn(&pg.g, w, pmember, &pg)) == -EAGAIN)
				usleep(10);
			assert_int_equal(err, 0);
		}
		/* an empty group: on_done at close */
		assert_int_equal(pel_group_close(&pg.g), 0);
		assert_true(WAIT_UNTIL(atomic_load(&pg.done), 10000));
		assert_int_equal(atomic_load(&pg.members), 100);
		assert_int_equal(pg.home_seen, (int)pg.home);
		assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
		assert_int_equal(atomic_load(&pg.done), 1);
		assert_int_equal(pel_group_destroy(&pg.g), 0);
	}
	{
		struct pgroup pg = { .home = n - 1 };

		assert_int_equal(pel_group_init_producer(&pg.g, p, pdone, &pg, pg.home), 0);
		assert_int_equal(pel_group_close(&pg.g), 0);
		assert_true(WAIT_UNTIL(atomic_load(&pg.done), 10000));
		assert_int_equal(pg.home_seen, (int)pg.home);
		assert_int_equal(atomic_load(&pg.members), 0);
	}
	for (unsigned w = 0; w < n; w++) {
		assert_int_equal(pel_par_stats(rt, w, &st), 0);
		done += st.groups_done;
	}
	assert_int_equal(done, 21);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* ---- exactly once, nesting depth 8, random placement ---- */

#define DEPTH		8
#define TREE		((1u << (DEPTH + 1)) - 1)	/* members of one group: 511 */

struct tree {
	struct pel_group g;
	unsigned n;			/* workers */
	_Atomic unsigned char hits[TREE];
	_Atomic int done, bad;
	_Atomic uint64_t *seed;
};

struct tnode {
	struct tree *t;
	unsigned idx;
};

static struct tnode *nodes_of(struct tree *t);

static unsigned
pick(struct tree *t, unsigned idx)
{
	uint64_t x = (uint64_t)idx * 0x9e3779b97f4a7c15ull + (uintptr_t)t;

	x ^= x >> 29;
	return x % 3 == 0 ? PEL_ANY_WORKER : (unsigned)(x % t->n);
}

/* Member idx: spawns children 2 idx + 1 and 2 idx + 2 into its own group (closed by now). */
static void
tmember(void *arg)
{
	struct tnode *nd = arg;
	struct tree *t = nd->t;
	struct tnode *all = nodes_of(t);

	atomic_fetch_add(&t->hits[nd->idx], 1);
	for (unsigned c = 2 * nd->idx + 1; c <= 2 * nd->idx + 2 && c < TREE; c++) {
		int err = pel_group_spawn(&t->g, pick(t, c), tmember, &all[c]);

		if (err == -EAGAIN)
			tmember(&all[c]);	/* queue full: nothing was added, run it here */
		else if (err)
			atomic_fetch_add(&t->bad, 1);
	}
}

static void
tdone(void *arg)
{
	struct tree *t = arg;

	/* every member ran once, before this */
	for (unsigned i = 0; i < TREE; i++)
		if (atomic_load(&t->hits[i]) != 1)
			atomic_fetch_add(&t->bad, 1);
	atomic_fetch_add(&t->done, 1);
}

#define NTREES	64

static struct tree trees[NTREES];
static struct tnode tnodes[NTREES][TREE];

static struct tnode *
nodes_of(struct tree *t)
{
	return tnodes[t - trees];
}

static void
run_trees(unsigned workers, unsigned flags, enum pel_placement pol)
{
	struct pel_runtime *rt = start(workers, PEL_IDLE_BACKOFF, flags, NULL, true);
	struct pel_producer *p;

	assert_int_equal(pel_set_placement(rt, pol), 0);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	memset(trees, 0, sizeof(trees));
	for (unsigned k = 0; k < NTREES; k++) {
		struct tree *t = &trees[k];

		t->n = pel_worker_count(rt);
		for (unsigned i = 0; i < TREE; i++)
			tnodes[k][i] = (struct tnode){ t, i };
		assert_int_equal(pel_group_init_producer(&t->g, p, tdone, t, k % t->n), 0);
		assert_int_equal(pel_group_spawn(&t->g, pick(t, 0), tmember, &tnodes[k][0]), 0);
		assert_int_equal(pel_group_close(&t->g), 0);	/* members keep spawning */
	}
	assert_int_equal(pel_drain(rt, 60 * PEL_NS_PER_S), 0);
	for (unsigned k = 0; k < NTREES; k++) {
		assert_int_equal(atomic_load(&trees[k].done), 1);
		assert_int_equal(atomic_load(&trees[k].bad), 0);
		assert_int_equal(pel_group_destroy(&trees[k].g), 0);
	}
	pel_producer_close(p);
	pel_destroy(rt);
}

static void
test_group_tree(void **state)
{
	(void)state;
	run_trees(1, 0, PEL_PLACE_RR);
	run_trees(2, 0, PEL_PLACE_P2C);
}

static void
test_group_tree_steal(void **state)
{
	(void)state;
	run_trees(2, PEL_F_STEAL, PEL_PLACE_JSQ);
	run_trees(2, PEL_F_STEAL, PEL_PLACE_RR);
}

/* Groups of groups: each on_done (a task) opens the next level's group, 8 levels. */
struct chain {
	struct pel_group g[DEPTH];
	_Atomic int members[DEPTH];
	_Atomic int levels;
	_Atomic int bad;
	unsigned n;
};

static void chain_open(struct chain *c, int level);

static void
chain_member(void *arg)
{
	struct chain *c = arg;

	atomic_fetch_add(&c->members[atomic_load(&c->levels)], 1);
}

static void
chain_done(void *arg)
{
	struct chain *c = arg;
	int level = atomic_load(&c->levels);

	if (atomic_load(&c->members[level]) != 4 || pel_worker_self() != (int)((unsigned)level % c->n))
		atomic_fetch_add(&c->bad, 1);
	if (level + 1 < DEPTH)
		chain_open(c, level + 1);
	else
		atomic_store(&c->levels, DEPTH);
}

static void
chain_open(struct chain *c, int level)
{
	atomic_store(&c->levels, level);
	if (pel_group_init(&c->g[level], chain_done, c, (unsigned)level % c->n))
		atomic_fetch_add(&c->bad, 1);
	for (unsigned i = 0; i < 4; i++)
		if (pel_group_spawn(&c->g[level], PEL_ANY_WORKER, chain_member, c))
			atomic_fetch_add(&c->bad, 1);
	if (pel_group_close(&c->g[level]))
		atomic_fetch_add(&c->bad, 1);
}

static void
chain_start(void *arg)
{
	chain_open(arg, 0);
}

static void
test_group_chain(void **state)
{
	struct pel_runtime *rt = start(2, PEL_IDLE_PARK, 0, NULL, true);
	struct chain c = { .n = pel_worker_count(rt) };

	(void)state;
	on_worker(rt, 0, chain_start, &c);
	assert_true(WAIT_UNTIL(atomic_load(&c.levels) == DEPTH, 10000));
	assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&c.bad), 0);
	pel_destroy(rt);
}

/* ---- parallel-for against sequential loops ---- */

struct pf {
	uint64_t lo, hi, grain;
	int kind;			/* 0 sum, 1 min, 2 max, 3 concat */
	struct result r;
	_Atomic int bad_chunk;
	_Atomic unsigned char *seen;
	uint64_t total;
};

static uint64_t
mix(uint64_t i)
{
	i ^= i >> 31;
	i *= 0x7fb5d329728ea185ull;
	i ^= i >> 27;
	return i;
}

static void
check_chunk(struct pf *f, uint64_t lo, uint64_t hi)
{
	uint64_t n = hi - lo;

	if (lo < f->lo || hi > f->hi || hi <= lo ||
	    (f->total >= f->grain && (n < f->grain || n >= 2 * f->grain)) ||
	    (f->total < f->grain && n != f->total))
		atomic_fetch_add(&f->bad_chunk, 1);
	for (uint64_t i = lo; i < hi && i >= f->lo && i < f->hi; i++)
		atomic_fetch_add(&f->seen[i - f->lo], 1);
}

static uint64_t
pf_body(uint64_t lo, uint64_t hi, void *arg)
{
	struct pf *f = arg;
	uint64_t v = f->kind == 1 ? UINT64_MAX : 0;
	char *s;
	size_t len = 0;

	check_chunk(f, lo, hi);
	if (f->kind == 0)
		return sum_body(lo, hi, NULL);
	if (f->kind == 1 || f->kind == 2) {
		for (uint64_t i = lo; i < hi; i++)
			v = f->kind == 1 ? (mix(i) < v ? mix(i) : v) : (mix(i) > v ? mix(i) : v);
		return v;
	}
	s = malloc((hi - lo) * 21 + 1);
	s[0] = 0;
	for (uint64_t i = lo; i < hi; i++)
		len += (size_t)sprintf(s + len, "%llu,", (unsigned long long)i);
	return (uint64_t)(uintptr_t)s;
}

static uint64_t
pf_reduce(uint64_t a, uint64_t b, void *arg)
{
	struct pf *f = arg;
	char *l, *r, *s;

	if (f->kind == 0)
		return a + b;
	if (f->kind == 1)
		return a < b ? a : b;
	if (f->kind == 2)
		return a > b ? a : b;
	l = (char *)(uintptr_t)a;
	r = (char *)(uintptr_t)b;
	s = malloc(strlen(l) + strlen(r) + 1);
	strcpy(s, l);
	strcat(s, r);
	free(l);
	free(r);
	return (uint64_t)(uintptr_t)s;
}

static void
pf_done(uint64_t v, void *arg)
{
	struct pf *f = arg;

	result_done(v, &f->r);
}

static void
pf_start(void *arg)
{
	struct pf *f = arg;
	int err;

	while ((err = pel_parallel_for(f->lo, f->hi, f->grain, pf_body, pf_reduce,
				       f->kind == 1 ? UINT64_MAX : 0, pf_done, f)) == -EAGAIN)
		;
	if (err)
		atomic_fetch_add(&f->bad_chunk, 1000);
}

static void
check_pfor(struct pel_runtime *rt, uint64_t lo, uint64_t hi, uint64_t grain, int kind)
{
	struct pf f = { .lo = lo, .hi = hi, .grain = grain, .kind = kind, .total = hi - lo };
	uint64_t want = kind == 1 ? UINT64_MAX : 0;

	f.seen = calloc(hi - lo + 1, 1);
	on_worker(rt, 0, pf_start, &f);
	assert_true(WAIT_UNTIL(atomic_load(&f.r.done), 30000));
	assert_int_equal(f.r.worker, 0);
	assert_int_equal(atomic_load(&f.bad_chunk), 0);
	for (uint64_t i = 0; i < hi - lo; i++)
		assert_int_equal(atomic_load(&f.seen[i]), 1);
	if (kind == 3) {
		char *s = (char *)(uintptr_t)f.r.value, *w = malloc((hi - lo) * 21 + 1);
		size_t len = 0;

		w[0] = 0;
		for (uint64_t i = lo; i < hi; i++)
			len += (size_t)sprintf(w + len, "%llu,", (unsigned long long)i);
		assert_string_equal(s, w);
		free(s);
		free(w);
	} else {
		for (uint64_t i = lo; i < hi; i++)
			want = kind == 0 ? want + i * i + 1 :
			       kind == 1 ? (mix(i) < want ? mix(i) : want) :
					   (mix(i) > want ? mix(i) : want);
		assert_true(f.r.value == want);
	}
	assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&f.r.runs), 1);
	free((void *)f.seen);
}

static void
pfor_suite(unsigned workers, unsigned flags, enum pel_placement pol)
{
	struct pel_runtime *rt = start(workers, PEL_IDLE_BACKOFF, flags, NULL, true);
	static const uint64_t cases[][3] = {
		{ 0, 1, 1 }, { 5, 6, 3 }, { 10, 17, 100 }, { 0, 1000, 7 }, { 3, 1003, 1 },
		{ 0, 4096, 64 }, { 1000000, 1000999, 10 },
		{ 0, 10, 1ull << 63 },	/* 2 * grain would wrap to 0 */
	};

	assert_int_equal(pel_set_placement(rt, pol), 0);
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
		for (int kind = 0; kind < 4; kind++)
			check_pfor(rt, cases[c][0], cases[c][1], cases[c][2], kind);
	/* more chunks than nodes and queue slots: the fallbacks keep the same tree */
	check_pfor(rt, 0, 30000, 1, 0);
	check_pfor(rt, 0, 6000, 1, 3);
	pel_destroy(rt);
}

static void
test_pfor(void **state)
{
	(void)state;
	pfor_suite(1, 0, PEL_PLACE_RR);
	pfor_suite(2, 0, PEL_PLACE_RR);
	pfor_suite(2, 0, PEL_PLACE_JSQ);
}

static void
test_pfor_steal(void **state)
{
	(void)state;
	pfor_suite(2, PEL_F_STEAL, PEL_PLACE_P2C);
	pfor_suite(1, PEL_F_STEAL, PEL_PLACE_RR);
}

/* ---- placement and stealing ---- */

struct spin {
	_Atomic int go;
	_Atomic int ran[2];
	_Atomic int wrong;
	_Atomic int held;
	int want;
};

static void
hold(void *arg)
{
	struct spin *s = arg;

	atomic_store(&s->held, 1);
	while (!atomic_load(&s->go))
		usleep(10);
}

static void
where(void *arg)
{
	struct spin *s = arg;
	int w = pel_worker_self();

	atomic_fetch_add(&s->ran[w], 1);
	if (s->want >= 0 && w != s->want)
		atomic_fetch_add(&s->wrong, 1);
}

static void
test_placement_skew(void **state)
{
	struct pel_runtime *rt;
	struct pel_par_stats s0, s1;
	struct pel_producer *p;
	struct pel_group g;
	struct spin hot = { .want = -1 };
	static const enum pel_placement pols[] = { PEL_PLACE_JSQ, PEL_PLACE_P2C };

	(void)state;
	if (online_cpus() < 2)
		skip();
	rt = start(2, PEL_IDLE_PARK, 0, NULL, true);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	for (unsigned k = 0; k < 2; k++) {
		memset(&hot, 0, sizeof(hot));
		hot.want = -1;
		assert_int_equal(pel_set_placement(rt, pols[k]), 0);
		/* worker 0 is hot: a long stealable task runs there */
		assert_int_equal(pel_group_init_producer(&g, p, nop, NULL, 1), 0);
		assert_int_equal(pel_group_spawn(&g, 0, hold, &hot), 0);
		/* worker 0 took it: its queue is empty, its load 1 */
		assert_true(WAIT_UNTIL(atomic_load(&hot.held), 10000));
		for (unsigned i = 0; i < 200; i++) {
			assert_int_equal(pel_submit_any(p, where, &hot), 0);
			if (i % 16 == 15)
				usleep(100);
		}
		/* every task placed on worker 0 waits behind the hot one; worker 1 runs its own */
		assert_int_equal(pel_par_stats(rt, 0, &s0), 0);
		assert_int_equal(pel_par_stats(rt, 1, &s1), 0);
		assert_true(WAIT_UNTIL(atomic_load(&hot.ran[1]) >= (int)s1.placed[pols[k]], 10000));
		print_message("%s: placed on hot worker %llu, on idle one %llu\n",
			      k ? "p2c" : "jsq", (unsigned long long)s0.placed[pols[k]],
			      (unsigned long long)s1.placed[pols[k]]);
		assert_int_equal(s0.placed[pols[k]] + s1.placed[pols[k]], 200);
		/* mostly the idle one (a loaded host may hold worker 1 back for a while) */
		assert_true(s1.placed[pols[k]] > 2 * s0.placed[pols[k]]);
		atomic_store(&hot.go, 1);
		assert_int_equal(pel_group_close(&g), 0);
		assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
		assert_int_equal(atomic_load(&hot.ran[0]) + atomic_load(&hot.ran[1]), 200);
	}
	/* round robin ignores load: half each */
	memset(&hot, 0, sizeof(hot));
	assert_int_equal(pel_set_placement(rt, PEL_PLACE_RR), 0);
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(pel_submit_any(p, where, &hot), 0);
	assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(pel_par_stats(rt, 0, &s0), 0);
	assert_int_equal(pel_par_stats(rt, 1, &s1), 0);
	assert_int_equal(s0.placed[PEL_PLACE_RR], 50);
	assert_int_equal(s1.placed[PEL_PLACE_RR], 50);
	pel_producer_close(p);
	pel_destroy(rt);
}

static void
slow(void *arg)
{
	uint64_t end = pel_now_ns() + 20000;

	where(arg);
	while (pel_now_ns() < end)
		;
}

/* Stealable tasks queued on worker 0 move to idle worker 1; named ones never do. */
static void
run_steal(unsigned flags)
{
	struct pel_runtime *rt = start(2, PEL_IDLE_BACKOFF, flags, NULL, true);
	struct spin named = { .want = 0 }, any = { .want = -1 };
	struct pel_par_stats s0, s1;
	struct pel_producer *p;
	struct pel_group g;
	struct pgroup pg = { 0 };

	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_group_init_producer(&g, p, pdone, &pg, 0), 0);
	for (unsigned i = 0; i < 1000; i++) {
		int err;

		while ((err = pel_group_spawn(&g, 0, slow, &any)) == -EAGAIN)
			usleep(50);
		assert_int_equal(err, 0);
		if (i % 4 == 0)
			assert_int_equal(pel_submit(p, 0, where, &named), 0);
	}
	assert_int_equal(pel_group_close(&g), 0);
	assert_int_equal(pel_drain(rt, 60 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&pg.done), 1);
	assert_int_equal(atomic_load(&any.ran[0]) + atomic_load(&any.ran[1]), 1000);
	assert_int_equal(atomic_load(&named.ran[0]), 250);
	assert_int_equal(atomic_load(&named.wrong), 0);
	assert_int_equal(pel_par_stats(rt, 0, &s0), 0);
	assert_int_equal(pel_par_stats(rt, 1, &s1), 0);
	assert_int_equal(s1.stolen_by, (uint64_t)atomic_load(&any.ran[1]));
	assert_int_equal(s0.stolen_from, s1.stolen_by);
	assert_int_equal(s1.steal_successes + s1.steal_failures, s1.steal_attempts);
	print_message("steal %s: worker 1 stole %llu of 1000 (attempts %llu)\n",
		      flags ? "on" : "off", (unsigned long long)s1.stolen_by,
		      (unsigned long long)s1.steal_attempts);
	if (flags)
		assert_true(s1.stolen_by > 0);
	else
		assert_int_equal(s1.steal_attempts + s0.steal_attempts, 0);
	pel_producer_close(p);
	pel_destroy(rt);
}

static void
test_steal(void **state)
{
	(void)state;
	if (online_cpus() < 2)
		skip();
	run_steal(0);
	run_steal(PEL_F_STEAL);
}

/* ---- pel_drain() waits for tasks in the layer's queues ---- */

static void
test_drain_waits(void **state)
{
	struct pel_runtime *rt = start(1, PEL_IDLE_PARK, 0, NULL, true);
	struct spin s = { .want = -1 };
	struct pel_producer *p;

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	/* a stealable task that runs until released, and one queued behind it: no ring holds
	 * either, only the layer's counts tell pel_drain() about them */
	assert_int_equal(pel_submit_any(p, hold, &s), 0);
	assert_int_equal(pel_submit_any(p, where, &s), 0);
	assert_true(WAIT_UNTIL(atomic_load(&s.held), 10000));
	assert_int_equal(pel_drain(rt, 2 * PEL_NS_PER_MS), -ETIMEDOUT);
	assert_int_equal(atomic_load(&s.ran[0]), 0);
	atomic_store(&s.go, 1);
	assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&s.ran[0]), 1);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* ---- at most 16 runtimes with parallel work ---- */

static void
test_registry_full(void **state)
{
	struct pel_runtime *rt[17];
	unsigned n = 0;
	int err = 0;

	struct captured log = { 0 };
	struct pel_producer *p;

	(void)state;
	/* pel_create() starts parallel work on each: the 17th goes without, logged */
	for (; n < 17; n++)
		rt[n] = start(1, PEL_IDLE_PARK, 0, n == 16 ? &log : NULL, false);
	assert_non_null(strstr(log.all, "parallel-work layer did not start"));
	err = pel_par_enable(rt[16], 0);
	assert_int_equal(err, -ENOSPC);
	assert_error_contains("16 runtimes");
	assert_int_equal(pel_producer_open(rt[16], &p), 0);
	assert_int_equal(pel_submit_any(p, nop, NULL), -ENODEV);
	assert_error_contains("did not start at pel_create()");
	/* a slot comes free when its runtime goes; pel_par_enable() starts it then */
	pel_destroy(rt[0]);
	assert_int_equal(pel_par_enable(rt[16], 0), 0);
	assert_int_equal(pel_submit_any(p, nop, NULL), 0);
	pel_producer_close(p);
	for (unsigned i = 1; i <= 16; i++)
		pel_destroy(rt[i]);
}

/* ---- two runtimes at once ---- */

struct two {
	struct pel_group g;
	int spawn_other;
};

static struct pel_group other_group;

static void
two_task(void *arg)
{
	struct two *t = arg;

	/* a group of the other runtime, from a task of this one */
	t->spawn_other = pel_group_spawn(&other_group, 0, nop, NULL);
}

static void
test_two_runtimes(void **state)
{
	struct pel_runtime *a = start(1, PEL_IDLE_PARK, 0, NULL, true);
	struct pel_runtime *b = start(1, PEL_IDLE_PARK, 0, NULL, true);
	struct pel_producer *pa, *pb;
	struct pel_par_stats sa, sb;
	struct two t = { 0 };
	struct spin s = { .want = -1 };

	(void)state;
	assert_int_equal(pel_producer_open(a, &pa), 0);
	assert_int_equal(pel_producer_open(b, &pb), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(pel_submit_any(pa, where, &s), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pel_submit_any(pb, where, &s), 0);
	assert_int_equal(pel_drain(a, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(pel_drain(b, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(pel_par_stats(a, 0, &sa), 0);
	assert_int_equal(pel_par_stats(b, 0, &sb), 0);
	assert_int_equal(sa.tasks_run, 10);
	assert_int_equal(sb.tasks_run, 3);
	assert_int_equal(pel_group_init_producer(&other_group, pb, nop, NULL, 0), 0);
	on_worker(a, 0, two_task, &t);
	assert_int_equal(t.spawn_other, -EINVAL);
	assert_int_equal(pel_group_close(&other_group), 0);
	assert_int_equal(pel_drain(b, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(pel_group_destroy(&other_group), 0);
	pel_producer_close(pa);
	pel_producer_close(pb);
	pel_destroy(a);
	pel_destroy(b);
}


/* ---- found in review ---- */

static _Atomic int rv_ran_on = -1, rv_hold;

static void
rv_long(void *arg)
{
	(void)arg;
	while (atomic_load(&rv_hold))
		usleep(100);
}

static void
rv_quick(void *arg)
{
	(void)arg;
	atomic_store(&rv_ran_on, pel_worker_self());
}

/* With PEL_F_STEAL, a stealable task placed on a worker busy with a plain pel_submit() task is
 * taken by the idle one (it was left there until the plain task ended: the layer cannot see it). */
static void
test_steal_from_worker_busy_with_plain_task(void **state)
{
	struct pel_runtime *rt;
	struct pel_producer *p, *p2;
	struct pel_par_stats st;

	(void)state;
	if (online_cpus() < 2)
		skip();
	rt = start(2, PEL_IDLE_PARK, PEL_F_STEAL, NULL, false);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	atomic_store(&rv_hold, 1);
	atomic_store(&rv_ran_on, -1);
	assert_int_equal(pel_submit(p, 0, rv_long, NULL), 0);
	usleep(20000);				/* worker 1 parks */
	assert_int_equal(pel_producer_open(rt, &p2), 0);
	assert_int_equal(pel_set_placement(rt, PEL_PLACE_RR), 0);
	assert_int_equal(pel_submit_any(p2, rv_quick, NULL), 0);	/* RR, a new thread: 0 */
	assert_true(WAIT_UNTIL(atomic_load(&rv_ran_on) >= 0, 10000) || (atomic_store(&rv_hold, 0),
									   false));
	atomic_store(&rv_hold, 0);
	assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&rv_ran_on), 1);
	assert_int_equal(pel_par_stats(rt, 1, &st), 0);
	assert_true(st.steal_successes >= 1);
	pel_producer_close(p2);
	pel_producer_close(p);
	pel_destroy(rt);
}

static struct pel_producer *rv_pb;
static _Atomic int rv_fed = 99, rv_work_ran;

static void
rv_work(void *arg)
{
	(void)arg;
	atomic_store(&rv_work_ran, 1);
}

static void
rv_feeder(void *arg)
{
	(void)arg;
	atomic_store(&rv_fed, pel_submit_any(rv_pb, rv_work, NULL));
}

/* A task of runtime A feeds runtime B through B's producer handle: B's worker 0 is woken (it was
 * taken for the feeder's own worker, same number, and left parked). */
static void
test_task_feeds_another_runtime(void **state)
{
	struct pel_runtime *a = start(1, PEL_IDLE_PARK, 0, NULL, false);
	struct pel_runtime *b = start(1, PEL_IDLE_PARK, 0, NULL, false);
	struct pel_producer *pa;

	(void)state;
	assert_int_equal(pel_producer_open(a, &pa), 0);
	assert_int_equal(pel_producer_open(b, &rv_pb), 0);
	usleep(20000);				/* b's worker parks */
	assert_int_equal(pel_submit(pa, 0, rv_feeder, NULL), 0);
	assert_int_equal(pel_drain(a, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&rv_fed), 0);
	assert_int_equal(pel_drain(b, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&rv_work_ran), 1);
	pel_producer_close(pa);
	pel_producer_close(rv_pb);
	pel_destroy(a);
	pel_destroy(b);
}

/* A producer's group after pel_destroy(): -ESHUTDOWN, and nothing of the freed layer is read
 * (ASan: it was a use after free). */
static void
test_group_after_destroy(void **state)
{
	struct pel_runtime *rt = start(1, PEL_IDLE_PARK, 0, NULL, false);
	struct pel_producer *p;
	struct pel_group g;

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_group_init_producer(&g, p, nop, NULL, 0), 0);
	pel_destroy(rt);	/* the handle keeps the runtime's table, not the layer */
	assert_int_equal(pel_group_spawn(&g, 0, nop, NULL), -ESHUTDOWN);
	assert_int_equal(pel_group_spawn(&g, 5, nop, NULL), -ESHUTDOWN);
	assert_int_equal(pel_group_close(&g), -ESHUTDOWN);
	pel_producer_close(p);
}

/* ---- racing pel_destroy() ---- */

struct racer {
	struct pel_runtime *rt;
	struct pgroup pg[256];
	int closed[256];
	_Atomic int started;
	int ngroups;
	int any_ok;			/* pel_submit_any() calls that returned 0 */
	_Atomic int any_ran;
};

static void
racer_any(void *arg)
{
	struct racer *r = arg;

	atomic_fetch_add(&r->any_ran, 1);
}

static void
racer_member(void *arg)
{
	struct pgroup *pg = arg;

	atomic_fetch_add(&pg->members, 1);
	/* nested: a few members spawn one more into their own group */
	if (atomic_load(&pg->members) % 3 == 0 &&
	    pel_group_spawn(&pg->g, PEL_ANY_WORKER, pmember, pg) == 0)
		atomic_fetch_add(&pg->accepted, 1);
}

static void *
racer_thread(void *arg)
{
	struct racer *r = arg;
	struct pel_producer *p;

	if (pel_producer_open(r->rt, &p))
		return NULL;
	for (int k = 0; k < 256; k++) {
		struct pgroup *pg = &r->pg[k];

		if (pel_group_init_producer(&pg->g, p, pdone, pg, (unsigned)k % 2 ?
					    pel_worker_count(r->rt) - 1 : 0))
			break;
		r->ngroups = k + 1;
		atomic_store(&r->started, 1);
		for (int i = 0; i < 20; i++) {
			if (pel_group_spawn(&pg->g, PEL_ANY_WORKER, racer_member, pg))
				break;
			atomic_fetch_add(&pg->accepted, 1);
		}
		if (pel_submit_any(p, racer_any, r) == 0)
			r->any_ok++;
		if (k % 17 == 16)
			continue;	/* left open: reported at destroy */
		r->closed[k] = pel_group_close(&pg->g) == 0;
	}
	pel_producer_close(p);
	return NULL;
}

static void
test_destroy_race(void **state)
{
	for (int round = 0; round < 20; round++) {
		struct racer *r = calloc(1, sizeof(*r));
		struct captured log;
		pthread_t th;

		(void)state;
		r->rt = start(2, PEL_IDLE_PARK, round % 2 ? PEL_F_STEAL : 0, &log, true);
		assert_int_equal(pthread_create(&th, NULL, racer_thread, r), 0);
		assert_true(WAIT_UNTIL(atomic_load(&r->started), 10000));
		usleep((useconds_t)(round * 50));
		pel_destroy(r->rt);
		pthread_join(th, NULL);
		for (int k = 0; k < r->ngroups; k++) {
			/* closed: completed, exactly once; open: never */
			assert_int_equal(atomic_load(&r->pg[k].done), r->closed[k] ? 1 : 0);
			/* every member accepted ran, once */
			assert_int_equal(atomic_load(&r->pg[k].members),
					 atomic_load(&r->pg[k].accepted));
		}
		assert_int_equal(atomic_load(&r->any_ran), r->any_ok);
		if (r->ngroups > 16 || (r->ngroups && !r->closed[r->ngroups - 1]))
			assert_non_null(strstr(log.all, "never closed"));
		free(r);
	}
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_on_from_create),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_group_producer),
		cmocka_unit_test(test_group_chain),
		cmocka_unit_test(test_group_tree),
		cmocka_unit_test(test_pfor),
		cmocka_unit_test(test_placement_skew),
		cmocka_unit_test(test_two_runtimes),
		cmocka_unit_test(test_steal_from_worker_busy_with_plain_task),
		cmocka_unit_test(test_task_feeds_another_runtime),
		cmocka_unit_test(test_group_after_destroy),
		cmocka_unit_test(test_registry_full),
		cmocka_unit_test(test_drain_waits),
	};
	const struct CMUnitTest stress[] = {
		cmocka_unit_test(test_group_tree_steal),
		cmocka_unit_test(test_pfor_steal),
		cmocka_unit_test(test_steal),
		cmocka_unit_test(test_destroy_race),
	};

	if (argc > 1 && !strcmp(argv[1], "--stress"))
		return cmocka_run_group_tests_name("par stress", stress, NULL, NULL);
	return cmocka_run_group_tests_name("par", unit, NULL, NULL);
}
