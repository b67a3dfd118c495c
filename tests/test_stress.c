/* SPDX-License-Identifier: MIT */
/*
 * tests/test_stress.c - concurrency: several producers x PEL_STRESS_TASKS tasks over 2 workers.
 * Every task marks its own (producer, sequence) slot; afterwards each slot must be marked exactly
 * once, and each worker must have seen each producer's tasks in submission order. The runtime is
 * destroyed right after the last submit, without a drain: destroy itself must run everything.
 * Also: a two-thread ring stress (pel/ring.h alone), for the TSan build.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "helpers.h"
#include "internal.h"

#ifndef PEL_STRESS_TASKS
#define PEL_STRESS_TASKS 1000000
#endif
#define PRODUCERS 4
#define MAX_WORKERS 2

static unsigned ntasks = PEL_STRESS_TASKS;
static _Atomic uint8_t *marks;			/* [producer][seq] */
/* last[worker][producer]: written only by that worker's thread */
static uint64_t last[MAX_WORKERS][PRODUCERS];
static _Atomic unsigned order_errors, wrong_worker;
static unsigned nworkers;

/* Tasks go to workers in blocks of 8 sequence numbers, so a block can be one burst. */
static unsigned
worker_of(uint64_t seq)
{
	return (unsigned)((seq / 8) % nworkers);
}

static void
mark_task(void *arg)
{
	uintptr_t v = (uintptr_t)arg;
	unsigned prod = (unsigned)(v >> 40);
	uint64_t seq = v & ((1ull << 40) - 1);
	int w = pel_worker_self();

	if (w < 0 || w >= MAX_WORKERS || worker_of(seq) != (unsigned)w) {
		atomic_fetch_add_explicit(&wrong_worker, 1, memory_order_relaxed);
		return;
	}
	/* sequence numbers start at 1 so 0 means "none seen yet" */
	if (seq + 1 <= last[w][prod])
		atomic_fetch_add_explicit(&order_errors, 1, memory_order_relaxed);
	last[w][prod] = seq + 1;
	atomic_fetch_add_explicit(&marks[(size_t)prod * ntasks + seq], 1, memory_order_relaxed);
}

struct producer_arg {
	struct pel_runtime *rt;
	unsigned id;
	unsigned nworkers;
	uint64_t retries;
	int err;
};

static void *
producer_main(void *arg)
{
	struct producer_arg *a = arg;
	struct pel_producer *p;

	a->err = pel_producer_open(a->rt, &p);
	if (a->err)
		return NULL;
	for (uint64_t seq = 0; seq < ntasks; seq++) {
		unsigned w = worker_of(seq);
		void *v = (void *)(((uintptr_t)a->id << 40) | seq);
		int err;

		/* one block in four goes as a burst: pel_submit_burst() keeps order too */
		if ((seq % 32) == 0 && seq + 8 <= ntasks) {
			struct pel_task t[8];

			for (unsigned k = 0; k < 8; k++)
				t[k] = (struct pel_task){ mark_task,
							  (void *)(((uintptr_t)a->id << 40) |
								   (seq + k)) };
			unsigned done = 0;

			while (done < 8) {
				unsigned n = pel_submit_burst(p, w, t + done, 8 - done);

				if (!n) {
					a->retries++;
					sched_yield();
				}
				done += n;
			}
			seq += 7;
			continue;
		}
		while ((err = pel_submit(p, w, mark_task, v)) == -EAGAIN) {
			a->retries++;
			sched_yield();
		}
		if (err) {
			a->err = err;
			break;
		}
	}
	pel_producer_close(p);
	return NULL;
}

static void
run_stress(enum pel_idle idle, unsigned slots)
{
	struct producer_arg args[PRODUCERS];
	pthread_t th[PRODUCERS];
	struct pel_runtime *rt;
	struct pel_config c;
	uint64_t retries = 0, t0 = now_ns();
	unsigned nw, missing = 0, twice = 0;

	marks = calloc((size_t)PRODUCERS * ntasks, 1);
	assert_non_null(marks);
	memset(last, 0, sizeof(last));
	atomic_store(&order_errors, 0);
	atomic_store(&wrong_worker, 0);
	quiet_config(&c, online_cpus() >= 2 ? "0-1" : "0", NULL);
	c.idle = idle;
	c.ring_slots = slots;
	c.idle_spin_ns = 2 * PEL_NS_PER_US;
	c.idle_park_ns = 20 * PEL_NS_PER_US;
	assert_int_equal(pel_create(&c, &rt), 0);
	nw = pel_worker_count(rt);
	nworkers = nw;
	for (unsigned i = 0; i < PRODUCERS; i++) {
		args[i] = (struct producer_arg){ .rt = rt, .id = i, .nworkers = nw };
		assert_int_equal(pthread_create(&th[i], NULL, producer_main, &args[i]), 0);
	}
	for (unsigned i = 0; i < PRODUCERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].err, 0);
		retries += args[i].retries;
	}
	pel_destroy(rt);	/* no drain: destroy must run every accepted task */
	for (size_t i = 0; i < (size_t)PRODUCERS * ntasks; i++) {
		uint8_t m = atomic_load_explicit(&marks[i], memory_order_relaxed);

		missing += m == 0;
		twice += m > 1;
	}
	print_message("%s slots=%u: %u producers x %u tasks on %u workers in %.2f s, %llu retries "
		      "on a full ring\n", idle == PEL_IDLE_PARK ? "PARK" : "BACKOFF", slots, PRODUCERS,
		      ntasks, nw, (double)(now_ns() - t0) / 1e9, (unsigned long long)retries);
	assert_int_equal(missing, 0);
	assert_int_equal(twice, 0);
	assert_int_equal(atomic_load(&order_errors), 0);
	assert_int_equal(atomic_load(&wrong_worker), 0);
	free((void *)marks);
}

static void
test_stress_park(void **state)
{
	(void)state;
	run_stress(PEL_IDLE_PARK, 1024);
}

static void
test_stress_backoff_small_rings(void **state)
{
	(void)state;
	run_stress(PEL_IDLE_BACKOFF, 64);
}

static void
test_stress_fence_fallback(void **state)
{
	unsigned saved = ntasks;

	(void)state;
	pel__barrier_force_fence(true);
	ntasks = saved / 4 > 1000 ? saved / 4 : saved;
	run_stress(PEL_IDLE_PARK, 256);
	ntasks = saved;
	pel__barrier_force_fence(false);
}

/* ---- park/wake race: submits land while the worker is going to sleep ---- */

static _Atomic unsigned long woke;

static void
woke_task(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&woke, 1, memory_order_relaxed);
}

static void
race_park_wake(unsigned long rounds)
{
	struct pel_runtime *rt;
	struct pel_producer *p;
	struct pel_config c;
	struct pel_worker_stats st;
	uint64_t seed = 0x9e3779b97f4a7c15ull, t0 = now_ns(), mb;

	quiet_config(&c, online_cpus() >= 2 ? "1" : "0", NULL);
	c.idle = PEL_IDLE_PARK;	/* parks as soon as its rings are empty: every round races */
	assert_int_equal(pel_create(&c, &rt), 0);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	atomic_store(&woke, 0);
	mb = pel__barrier_membarrier_calls();
	for (unsigned long i = 0; i < rounds; i++) {
		uint64_t until;

		/* 0-4 us of delay: the submit lands before, during or after the worker's park */
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		until = now_ns() + seed % 4000;
		while (now_ns() < until)
			;
		assert_int_equal(pel_submit(p, 0, woke_task, NULL), 0);
		/* a lost wake-up leaves the task queued forever: 2 s is "forever" here */
		if (!WAIT_UNTIL(atomic_load_explicit(&woke, memory_order_relaxed) == i + 1, 2000))
			fail_msg("round %lu: task not run within 2 s: lost wake-up", i);
	}
	assert_int_equal(pel_stats(rt, 0, &st), 0);
	print_message("%lu park/wake rounds in %.2f s: %llu parks, %llu wake-ups sent\n", rounds,
		      (double)(now_ns() - t0) / 1e9, (unsigned long long)st.parks,
		      (unsigned long long)st.wakeups);
	assert_true(st.parks > 0 && st.wakeups > 0);
	/* issue 8: parking interrupts no other CPU */
	assert_int_equal(pel__barrier_membarrier_calls() - mb, 0);
	pel_producer_close(p);
	pel_destroy(rt);
}

static void
test_park_wake_race(void **state)
{
	(void)state;
	race_park_wake(ntasks / 20 > 2000 ? ntasks / 20 : 2000);
}

static void
test_park_wake_race_fence_fallback(void **state)
{
	(void)state;
	pel__barrier_force_fence(true);
	race_park_wake(ntasks / 80 > 1000 ? ntasks / 80 : 1000);
	pel__barrier_force_fence(false);
}

/* ---- destroy while producers submit flat out ---- */

struct racer {
	struct pel_runtime *rt;
	unsigned id;
	uint64_t accepted;
	int last_err;
};

static _Atomic uint64_t race_accepted_total;

static void *
racer_main(void *arg)
{
	struct racer *r = arg;
	struct pel_producer *p;

	if (pel_producer_open(r->rt, &p))
		return NULL;
	for (uint64_t seq = 0; seq < ntasks; seq++) {
		int err;

		while ((err = pel_submit(p, worker_of(seq), mark_task,
					 (void *)(((uintptr_t)r->id << 40) | seq))) == -EAGAIN)
			sched_yield();
		if (err) {
			r->last_err = err;
			break;
		}
		r->accepted++;
		atomic_fetch_add_explicit(&race_accepted_total, 1, memory_order_relaxed);
	}
	/* after destroy: the handle still answers -ESHUTDOWN, then closing frees the table */
	if (r->last_err == -ESHUTDOWN && pel_submit(p, 0, mark_task, NULL) != -ESHUTDOWN)
		r->last_err = -EPROTO;
	pel_producer_close(p);
	return NULL;
}

static void
test_destroy_while_submitting(void **state)
{
	struct racer r[PRODUCERS];
	pthread_t th[PRODUCERS];
	struct pel_runtime *rt;
	struct pel_config c;
	uint64_t accepted = 0;
	unsigned ran = 0, twice = 0, refused = 0;

	(void)state;
	marks = calloc((size_t)PRODUCERS * ntasks, 1);
	assert_non_null(marks);
	memset(last, 0, sizeof(last));
	atomic_store(&order_errors, 0);
	atomic_store(&wrong_worker, 0);
	atomic_store(&race_accepted_total, 0);
	quiet_config(&c, online_cpus() >= 2 ? "0-1" : "0", NULL);
	assert_int_equal(pel_create(&c, &rt), 0);
	nworkers = pel_worker_count(rt);
	for (unsigned i = 0; i < PRODUCERS; i++) {
		r[i] = (struct racer){ .rt = rt, .id = i };
		assert_int_equal(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
	}
	/* destroy in the middle of the flood */
	assert_true(WAIT_UNTIL(atomic_load(&race_accepted_total) >= ntasks / 2, 30000));
	pel_destroy(rt);
	for (unsigned i = 0; i < PRODUCERS; i++) {
		pthread_join(th[i], NULL);
		accepted += r[i].accepted;
		refused += r[i].last_err == -ESHUTDOWN;
		assert_true(r[i].last_err == 0 || r[i].last_err == -ESHUTDOWN);
	}
	for (unsigned pr = 0; pr < PRODUCERS; pr++)
		for (uint64_t seq = 0; seq < ntasks; seq++) {
			uint8_t m = atomic_load_explicit(&marks[(size_t)pr * ntasks + seq],
							 memory_order_relaxed);

			ran += m;
			twice += m > 1;
			/* exactly the accepted prefix ran: nothing refused ran, nothing accepted lost */
			if ((m != 0) != (seq < r[pr].accepted))
				fail_msg("producer %u task %llu: accepted %d, ran %u times", pr,
					 (unsigned long long)seq, seq < r[pr].accepted, m);
		}
	print_message("destroy during a flood: %llu tasks accepted, %u run, %u of %d producers "
		      "refused with -ESHUTDOWN\n", (unsigned long long)accepted, ran, refused,
		      PRODUCERS);
	assert_int_equal(twice, 0);
	assert_int_equal(ran, accepted);
	assert_int_equal(atomic_load(&order_errors), 0);
	assert_int_equal(atomic_load(&wrong_worker), 0);
	free((void *)marks);
}

/* ---- the ring alone, two threads ---- */

static struct pel_ring *sring;

static void
nop(void *arg)
{
	(void)arg;
}

static void *
ring_producer(void *arg)
{
	uintptr_t n = (uintptr_t)arg, i = 0;
	struct pel_task t[16];

	while (i < n) {
		if (i % 3 == 0) {
			unsigned k = n - i < 16 ? (unsigned)(n - i) : 16;

			for (unsigned j = 0; j < k; j++)
				t[j] = (struct pel_task){ nop, (void *)(i + j) };
			i += pel_ring_push_burst(sring, t, k);
		} else if (pel_ring_push(sring, nop, (void *)i) == 0) {
			i++;
		}
		if (pel_ring_full_count(sring) % 64 == 63)
			sched_yield();
	}
	return NULL;
}

static void
test_ring_two_threads(void **state)
{
	uintptr_t n = ntasks * 2, next = 0;
	struct pel_task out[32];
	pthread_t th;

	(void)state;
	sring = aligned_alloc(PEL_CACHE_GUARD, pel_ring_memsize(128));
	assert_non_null(sring);
	assert_int_equal(pel_ring_init(sring, 128), 0);
	assert_int_equal(pthread_create(&th, NULL, ring_producer, (void *)n), 0);
	while (next < n) {
		unsigned got = pel_ring_pop_burst(sring, out, (next & 7) + 1);

		for (unsigned j = 0; j < got; j++) {
			if (out[j].arg != (void *)next || out[j].fn != nop)
				fail_msg("item %lu: got %p", (unsigned long)next, out[j].arg);
			next++;
		}
		if (!got)
			sched_yield();
	}
	pthread_join(th, NULL);
	assert_int_equal(pel_ring_count(sring), 0);
	free(sring);
}

int
main(void)
{
	const char *env = getenv("PEL_STRESS_TASKS");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_two_threads),
		cmocka_unit_test(test_stress_park),
		cmocka_unit_test(test_stress_backoff_small_rings),
		cmocka_unit_test(test_stress_fence_fallback),
		cmocka_unit_test(test_park_wake_race),
		cmocka_unit_test(test_park_wake_race_fence_fallback),
		cmocka_unit_test(test_destroy_while_submitting),
	};

	if (env && atoi(env) > 0)
		ntasks = (unsigned)atoi(env);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
