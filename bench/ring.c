/* SPDX-License-Identifier: MIT */
/*
 * bench/ring.c - "pel-bench ring": cross-core throughput of 16-byte tasks through an SPSC queue.
 *
 * A producer pinned to CPU A pushes items 1..N, {item_fn, (void *)seq}, into one queue; a consumer
 * pinned to CPU B pops them and checks each one's fn and sequence number. The queues: pel's ring
 * (include/pel/ring.h), Concurrency Kit's ck_ring (SPSC, the struct by value), DPDK's rte_ring
 * (SP/SC, 16-byte elements) and the baseline, a mutex+condvar bounded queue. Every queue has the
 * same number of slots (ck_ring and rte_ring hold one fewer item: they keep a slot free to tell
 * full from empty). Ring producers spin with pause while full, ring consumers while empty; the
 * mutex queue blocks on its condition variables. Two modes: one item per op, and bursts of 32
 * (ck_ring has no burst call: its burst is a loop of single ops, as a user would write it).
 * Each variant runs --reps times, interleaved, and the median throughput is reported. After each
 * run the program sleeps four times as long as the run took (pel_bench_rest()).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "mutexq.h"

#ifdef PEL_BENCH_HAVE_CK
#include <ck_ring.h>
CK_RING_PROTOTYPE(pel_task, pel_task)
#endif
#ifdef PEL_BENCH_HAVE_DPDK
#include <rte_ring.h>
#include <rte_ring_elem.h>
#endif

#define DEFAULT_SLOTS		1024
#define DEFAULT_ITEMS_SINGLE	3000000ull
#define DEFAULT_ITEMS_BURST	12000000ull
#define DEFAULT_REPS		5

#if defined(__GNUC__)
#define always_inline		inline __attribute__((always_inline))
#else
#define always_inline		inline
#endif

enum kind {
	K_MUTEX,
	K_CK,
	K_RTE,
	K_PEL,
	K_COUNT,
};

enum mode {
	M_SINGLE,
	M_BURST,
	M_COUNT,
};

static const char *const mode_name[M_COUNT] = { "single", "burst32" };

/* One run: one queue, one producer, one consumer. */
struct run {
	enum kind kind;
	enum mode mode;
	uint64_t items;
	unsigned slots;
	int cpu_a;
	int cpu_b;
	void *mem;			/* the queue's memory */
	struct pel_ring *pel;
#ifdef PEL_BENCH_HAVE_CK
	struct ck_ring *ck;
	struct pel_task *ck_buf;
#endif
#ifdef PEL_BENCH_HAVE_DPDK
	struct rte_ring *rte;
#endif
	struct pel_bench_mq mq;
	/* Start line: each thread adds one, then waits for two. */
	alignas(PEL_CACHE_GUARD) _Atomic unsigned ready;
	/* Set by the consumer when a check fails: the producer gives up. */
	alignas(PEL_CACHE_GUARD) _Atomic bool stop;
	/* Written by the producer. */
	alignas(PEL_CACHE_GUARD) uint64_t t0;
	int prod_err;			/* pinning failed: a positive errno */
	/* Written by the consumer. */
	alignas(PEL_CACHE_GUARD) uint64_t t1;
	int cons_err;
	bool failed;
	char why[160];
};

/* What every item carries; never called. */
static void
item_fn(void *arg)
{
	(void)arg;
}

static always_inline unsigned
q_push(struct run *r, enum kind k, const struct pel_task *t, unsigned n)
{
	unsigned i = 0;

	switch (k) {
	case K_PEL:
		if (n == 1)
			return pel_ring_push(r->pel, t->fn, t->arg) == 0;
		return pel_ring_push_burst(r->pel, t, n);
	case K_CK:
#ifdef PEL_BENCH_HAVE_CK
		for (i = 0; i < n; i++)
			/* ck's prototype takes a non-const pointer; it only reads it */
			if (!ck_ring_enqueue_spsc_pel_task(r->ck, r->ck_buf,
							   (struct pel_task *)&t[i]))
				break;
#endif
		return i;
	case K_RTE:
#ifdef PEL_BENCH_HAVE_DPDK
		if (n == 1)
			return rte_ring_enqueue_elem(r->rte, (void *)t, sizeof(*t)) == 0;
		return rte_ring_enqueue_burst_elem(r->rte, t, sizeof(*t), n, NULL);
#else
		return i;
#endif
	case K_MUTEX:
		return pel_bench_mq_push(&r->mq, t, n);
	default:
		return i;
	}
}

static always_inline unsigned
q_pop(struct run *r, enum kind k, struct pel_task *t, unsigned n)
{
	unsigned i = 0;

	switch (k) {
	case K_PEL:
		if (n == 1)
			return pel_ring_pop(r->pel, t) == 0;
		return pel_ring_pop_burst(r->pel, t, n);
	case K_CK:
#ifdef PEL_BENCH_HAVE_CK
		for (i = 0; i < n; i++)
			if (!ck_ring_dequeue_spsc_pel_task(r->ck, r->ck_buf, &t[i]))
				break;
#endif
		return i;
	case K_RTE:
#ifdef PEL_BENCH_HAVE_DPDK
		if (n == 1)
			return rte_ring_dequeue_elem(r->rte, t, sizeof(*t)) == 0;
		return rte_ring_dequeue_burst_elem(r->rte, t, sizeof(*t), n, NULL);
#else
		return i;
#endif
	case K_MUTEX:
		return pel_bench_mq_pop(&r->mq, t, n);
	default:
		return i;
	}
}

/* Push items 1..r->items, @p burst at a time; spins while the ring is full. */
static always_inline void
produce(struct run *r, enum kind k, unsigned burst)
{
	struct pel_task t[PEL_BENCH_BURST];
	uint64_t seq = 1, n = r->items;

	while (seq <= n) {
		unsigned i, done = 0, want = burst;

		if (n - seq + 1 < want)
			want = (unsigned)(n - seq + 1);
		for (i = 0; i < want; i++) {
			t[i].fn = item_fn;
			t[i].arg = (void *)(uintptr_t)(seq + i);
		}
		while (done < want) {
			unsigned got = q_push(r, k, t + done, burst == 1 ? 1 : want - done);

			if (pel_likely(got)) {
				done += got;
				continue;
			}
			/* full; the mutex queue returns 0 only once closed */
			if (k == K_MUTEX || atomic_load_explicit(&r->stop, memory_order_relaxed))
				return;
			pel_bench_relax();
		}
		seq += want;
	}
}

static void
fail(struct run *r, uint64_t want, const struct pel_task *got)
{
	r->failed = true;
	snprintf(r->why, sizeof(r->why),
		 "item %llu arrived as {fn %p, arg %llu}, expected {fn %p, arg %llu}",
		 (unsigned long long)want, (void *)(uintptr_t)got->fn,
		 (unsigned long long)(uintptr_t)got->arg, (void *)(uintptr_t)item_fn,
		 (unsigned long long)want);
	atomic_store_explicit(&r->stop, true, memory_order_relaxed);
	if (r->kind == K_MUTEX)
		pel_bench_mq_close(&r->mq);
}

/* Pop until item r->items has arrived, checking each; spins while the ring is empty. */
static always_inline void
consume(struct run *r, enum kind k, unsigned burst)
{
	struct pel_task t[PEL_BENCH_BURST];
	uint64_t next = 1, n = r->items;

	while (next <= n) {
		unsigned i, got = q_pop(r, k, t, burst);

		if (!got) {
			if (k == K_MUTEX) {
				r->failed = true;
				snprintf(r->why, sizeof(r->why), "queue closed before item %llu",
					 (unsigned long long)next);
				return;
			}
			/* the producer only stops early when it could not start */
			if (atomic_load_explicit(&r->stop, memory_order_relaxed))
				return;
			pel_bench_relax();
			continue;
		}
		for (i = 0; i < got; i++) {
			if (pel_unlikely(t[i].fn != item_fn ||
					 (uintptr_t)t[i].arg != (uintptr_t)(next + i))) {
				fail(r, next + i, &t[i]);
				return;
			}
		}
		next += got;
	}
	r->t1 = pel_bench_mono_ns();
}

/* The loops, specialised per queue and mode so each queue's calls are inlined. */
#define RING_LOOPS(name, k)							\
	static void prod_##name##_1(struct run *r) { produce(r, k, 1); }		\
	static void prod_##name##_b(struct run *r) { produce(r, k, PEL_BENCH_BURST); }	\
	static void cons_##name##_1(struct run *r) { consume(r, k, 1); }		\
	static void cons_##name##_b(struct run *r) { consume(r, k, PEL_BENCH_BURST); }

RING_LOOPS(mutex, K_MUTEX)
RING_LOOPS(pel, K_PEL)
#ifdef PEL_BENCH_HAVE_CK
RING_LOOPS(ck, K_CK)
#endif
#ifdef PEL_BENCH_HAVE_DPDK
RING_LOOPS(rte, K_RTE)
#endif

static size_t
round_up(size_t n, size_t align)
{
	return (n + align - 1) / align * align;
}

/* Lay out the queue of r->kind; 0, or 1 after saying why. */
static int
setup(struct run *r)
{
	size_t bytes = 0;
	int err;

	switch (r->kind) {
	case K_MUTEX:
		err = pel_bench_mq_init(&r->mq, r->slots);
		if (err) {
			pel_bench_perror("mutex queue", err);
			return 1;
		}
		return 0;
	case K_PEL:
		bytes = pel_ring_memsize(r->slots);
		break;
	case K_CK:
#ifdef PEL_BENCH_HAVE_CK
		bytes = round_up(sizeof(struct ck_ring), PEL_CACHE_GUARD) +
			(size_t)r->slots * sizeof(struct pel_task);
#endif
		break;
	case K_RTE:
#ifdef PEL_BENCH_HAVE_DPDK
		{
			ssize_t sz = rte_ring_get_memsize_elem(sizeof(struct pel_task), r->slots);

			if (sz < 0) {
				pel_bench_perror("rte_ring_get_memsize_elem", (int)-sz);
				return 1;
			}
			bytes = (size_t)sz;
		}
#endif
		break;
	default:
		break;
	}
	bytes = round_up(bytes, PEL_CACHE_GUARD);
	r->mem = aligned_alloc(PEL_CACHE_GUARD, bytes);
	if (!r->mem) {
		pel_bench_perror("aligned_alloc", ENOMEM);
		return 1;
	}
	/* fault every page in now, not on the first lap */
	memset(r->mem, 0, bytes);
	switch (r->kind) {
	case K_PEL:
		r->pel = r->mem;
		err = pel_ring_init(r->pel, r->slots);
		if (err) {
			pel_bench_perror("pel_ring_init", -err);
			return 1;
		}
		break;
	case K_CK:
#ifdef PEL_BENCH_HAVE_CK
		r->ck = r->mem;
		r->ck_buf = (struct pel_task *)((char *)r->mem +
						round_up(sizeof(struct ck_ring), PEL_CACHE_GUARD));
		ck_ring_init(r->ck, r->slots);
#endif
		break;
	case K_RTE:
#ifdef PEL_BENCH_HAVE_DPDK
		r->rte = r->mem;
		err = rte_ring_init(r->rte, "pel-bench", r->slots, RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (err) {
			pel_bench_perror("rte_ring_init", -err);
			return 1;
		}
#endif
		break;
	default:
		break;
	}
	return 0;
}

static void
teardown(struct run *r)
{
	if (r->kind == K_MUTEX)
		pel_bench_mq_destroy(&r->mq);
	free(r->mem);
	r->mem = NULL;
}

struct variant {
	enum kind kind;
	const char *name;		/* in metric names */
	const char *role;		/* first column */
	const char *label;		/* second column */
	void (*prod[M_COUNT])(struct run *r);
	void (*cons[M_COUNT])(struct run *r);
};

/* Print order: the baseline first, pel last. */
static const struct variant variants[] = {
	{ K_MUTEX, "mutex_queue", "baseline", "mutex queue",
	  { prod_mutex_1, prod_mutex_b }, { cons_mutex_1, cons_mutex_b } },
#ifdef PEL_BENCH_HAVE_CK
	{ K_CK, "ck_ring", "peer", "ck_ring spsc",
	  { prod_ck_1, prod_ck_b }, { cons_ck_1, cons_ck_b } },
#endif
#ifdef PEL_BENCH_HAVE_DPDK
	{ K_RTE, "rte_ring", "peer", "rte_ring sp/sc",
	  { prod_rte_1, prod_rte_b }, { cons_rte_1, cons_rte_b } },
#endif
	{ K_PEL, "pel_ring", "pel", "pel ring",
	  { prod_pel_1, prod_pel_b }, { cons_pel_1, cons_pel_b } },
};
#define NVARIANTS	(sizeof(variants) / sizeof(variants[0]))

struct thread_arg {
	struct run *run;
	const struct variant *v;
};

/* Wait for the other side; false when either side could not pin itself. */
static bool
start_line(struct run *r)
{
	/* acq_rel: publishes this side's pinning result, sees the other's */
	atomic_fetch_add_explicit(&r->ready, 1, memory_order_acq_rel);
	while (atomic_load_explicit(&r->ready, memory_order_acquire) < 2)
		pel_bench_relax();
	return !r->prod_err && !r->cons_err && !atomic_load(&r->stop);
}

static void *
producer_main(void *p)
{
	struct thread_arg *a = p;
	struct run *r = a->run;

	r->prod_err = pel_bench_pin(r->cpu_a);
	if (!start_line(r))
		return NULL;
	r->t0 = pel_bench_mono_ns();
	a->v->prod[r->mode](r);
	return NULL;
}

static void *
consumer_main(void *p)
{
	struct thread_arg *a = p;
	struct run *r = a->run;

	r->cons_err = pel_bench_pin(r->cpu_b);
	if (!start_line(r))
		return NULL;
	a->v->cons[r->mode](r);
	return NULL;
}

/* One timed run; @p mtps receives million items per second. 0, or 1 after saying why. */
static int
run_one(const struct pel_bench_opts *o, const struct variant *v, enum mode m, uint64_t items,
	double *mtps)
{
	static struct run r;	/* big alignment: keep it off the stack */
	struct thread_arg a = { &r, v };
	pthread_t prod, cons;
	int err;

	memset(&r, 0, sizeof(r));
	r.kind = v->kind;
	r.mode = m;
	r.items = items;
	r.slots = o->slots;
	r.cpu_a = o->cpu_a;
	r.cpu_b = o->cpu_b;
	if (setup(&r))
		return 1;
	err = pel_bench_thread_on(&cons, r.cpu_b, consumer_main, &a);
	if (err) {
		pel_bench_perror("pthread_create", err);
		teardown(&r);
		return 1;
	}
	err = pel_bench_thread_on(&prod, r.cpu_a, producer_main, &a);
	if (err) {
		pel_bench_perror("pthread_create", err);
		/* let the consumer past the start line, to give up there */
		atomic_store(&r.stop, true);
		atomic_fetch_add(&r.ready, 1);
		pthread_join(cons, NULL);
		teardown(&r);
		return 1;
	}
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);
	teardown(&r);
	if (r.prod_err || r.cons_err) {
		fprintf(stderr, "pel-bench: cannot pin the %s to CPU %d: %s\n",
			r.prod_err ? "producer" : "consumer", r.prod_err ? r.cpu_a : r.cpu_b,
			strerror(r.prod_err ? r.prod_err : r.cons_err));
		return 1;
	}
	if (r.failed) {
		fprintf(stderr, "pel-bench: ring: %s %s: %s\n", v->name, mode_name[m], r.why);
		return 1;
	}
	*mtps = (double)items * 1e3 / (double)(r.t1 - r.t0);
	return 0;
}

int
pel_bench_ring(const struct pel_bench_opts *opts, struct pel_bench_report *rep)
{
	struct pel_bench_opts o = *opts;
	uint64_t items[M_COUNT];
	struct pel_bench_figure fig[NVARIANTS][M_COUNT];
	double *thr;
	unsigned rep_i, vi, m, pel_vi = NVARIANTS - 1;
	char name[64];

	if (!o.slots)
		o.slots = DEFAULT_SLOTS;
	if (!o.reps)
		o.reps = DEFAULT_REPS;
	items[M_SINGLE] = o.items ? o.items : DEFAULT_ITEMS_SINGLE;
	items[M_BURST] = o.items ? o.items : DEFAULT_ITEMS_BURST;

	printf("ring cpus=%d,%d slots=%u burst=%u items_single=%llu items_burst=%llu reps=%u\n",
	       o.cpu_a, o.cpu_b, o.slots, PEL_BENCH_BURST, (unsigned long long)items[M_SINGLE],
	       (unsigned long long)items[M_BURST], o.reps);
#ifndef PEL_BENCH_HAVE_CK
	printf("note: built without Concurrency Kit (ck): no ck_ring rows or ratios\n");
#endif
#ifndef PEL_BENCH_HAVE_DPDK
	printf("note: built without DPDK: no rte_ring rows, no pel_vs_rte_ring ratios\n");
#endif
	printf("note: million tasks/s, median of %u interleaved runs; ns/task from the median\n",
	       o.reps);
	printf("note: same slots for all; ck_ring and rte_ring hold one item fewer (%u)\n",
	       o.slots - 1);
	fflush(stdout);

	thr = calloc((size_t)NVARIANTS * M_COUNT * o.reps, sizeof(*thr));
	if (!thr) {
		pel_bench_perror("calloc", ENOMEM);
		return 1;
	}
#define THR(v, m, i)	thr[((v) * M_COUNT + (m)) * o.reps + (i)]
	for (rep_i = 0; rep_i < o.reps; rep_i++) {
		for (m = 0; m < M_COUNT; m++) {
			for (vi = 0; vi < NVARIANTS; vi++) {
				double *x = &THR(vi, m, rep_i);

				if (run_one(&o, &variants[vi], m, items[m], x)) {
					free(thr);
					return 1;
				}
				pel_bench_rest((uint64_t)((double)items[m] * 1e3 / *x));
			}
		}
	}
	for (vi = 0; vi < NVARIANTS; vi++)
		for (m = 0; m < M_COUNT; m++)
			fig[vi][m] = pel_bench_summarise(&THR(vi, m, 0), o.reps);
#undef THR
	free(thr);

	for (m = 0; m < M_COUNT; m++) {
		for (vi = 0; vi < NVARIANTS; vi++) {
			const struct variant *v = &variants[vi];
			const struct pel_bench_figure *f = &fig[vi][m];

			printf("%-9s %-15s %-8s ", v->role, v->label, mode_name[m]);
			printf("Mtask/s median=%-7.2f min=%-7.2f max=%-7.2f ns/task=%.2f\n",
			       f->median, f->min, f->max, 1e3 / f->median);
			snprintf(name, sizeof(name), "%s_%s_throughput", v->name, mode_name[m]);
			pel_bench_metric(rep, name, f->median, "Mtask/s");
			snprintf(name, sizeof(name), "%s_%s_ns_per_task", v->name, mode_name[m]);
			pel_bench_metric(rep, name, 1e3 / f->median, "ns");
		}
	}
	for (m = 0; m < M_COUNT; m++) {
		for (vi = 0; vi < pel_vi; vi++) {
			const struct variant *v = &variants[vi];
			double x = fig[pel_vi][m].median / fig[vi][m].median;

			snprintf(name, sizeof(name), "pel/%s", v->name);
			printf("%-9s %-15s %-8s Mtask/s x=%.2f (pel_vs_%s_%s, higher is better)\n",
			       "ratio", name, mode_name[m], x, v->name, mode_name[m]);
			snprintf(name, sizeof(name), "pel_vs_%s_%s", v->name, mode_name[m]);
			pel_bench_ratio(rep, name, x);
		}
	}
	return 0;
}
