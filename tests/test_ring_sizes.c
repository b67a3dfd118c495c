/* SPDX-License-Identifier: MIT */
/*
 * tests/test_ring_sizes.c - every legal ring size, 1 .. 4096 slots, in a real runtime: a ring of N
 * slots takes at least N - 1 tasks before -EAGAIN (DESIGN.md section 3), from a producer and from
 * a task (pel_spawn), every accepted task runs once, and a pool can be created (it sets up every
 * worker through the runtime's own ring). Built twice: against libpel with the LTTng provider
 * (enqueue stamps after every ring) and against the copy without tracepoints.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <pel/pool.h>

#include "helpers.h"

static _Atomic int gate_open, gate_running;
static _Atomic unsigned long leaves, gates;
static _Atomic long spawned;

static void
leaf(void *arg)
{
	(void)arg;
	atomic_fetch_add(&leaves, 1);
}

static void
gate(void *arg)
{
	(void)arg;
	atomic_fetch_add(&gates, 1);
	atomic_store(&gate_running, 1);
	while (!atomic_load(&gate_open))
		sched_yield();
}

/* On the worker: spawn to itself until its own mesh ring refuses; nothing runs meanwhile. */
static void
spawner(void *arg)
{
	long n = 0;
	int err;

	(void)arg;
	while ((err = pel_spawn(0, leaf, NULL)) == 0)
		n++;
	atomic_store(&spawned, err == -EAGAIN ? n : -1000 + err);
}

static void
check_size(unsigned slots)
{
	struct pel_runtime *rt = NULL;
	struct pel_producer *p;
	struct pel_pool *pool;
	struct pel_config c;
	unsigned long accepted = 0;
	int err;

	print_message("ring_slots %u\n", slots);
	atomic_store(&gate_open, 0);
	atomic_store(&gate_running, 0);
	atomic_store(&leaves, 0);
	atomic_store(&gates, 0);
	atomic_store(&spawned, 0);
	quiet_config(&c, "0", NULL);
	c.ring_slots = slots;
	assert_int_equal(pel_create(&c, &rt), 0);
	assert_int_equal(pel_producer_open(rt, &p), 0);

	/* the producer's ring: hold the worker in the gate (its slot stays taken until the gate
	 * returns), then fill the ring */
	assert_int_equal(pel_submit(p, 0, gate, NULL), 0);
	accepted++;
	assert_true(WAIT_UNTIL(atomic_load(&gate_running), 10000));
	while ((err = pel_submit(p, 0, leaf, NULL)) == 0)
		accepted++;
	assert_int_equal(err, -EAGAIN);
	assert_true(accepted >= slots - 1);
	assert_true(accepted <= slots);
	atomic_store(&gate_open, 1);
	assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&gates), 1);
	assert_int_equal(atomic_load(&leaves), accepted - 1);

	/* the worker mesh: a task spawns to its own worker until the ring refuses */
	atomic_store(&leaves, 0);
	assert_int_equal(pel_submit(p, 0, spawner, NULL), 0);
	assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
	assert_true(atomic_load(&spawned) >= (long)slots - 1);
	assert_int_equal(atomic_load(&leaves), (unsigned long)atomic_load(&spawned));

	/* a layer's set-up goes through the runtime's own ring of the same size */
	assert_int_equal(pel_pool_create(rt, 64, 16, 0, &pool), 0);
	pel_pool_destroy(pool);
	pel_producer_close(p);
	pel_destroy(rt);
}

static void
test_every_power_of_two(void **state)
{
	(void)state;
	for (unsigned slots = 1; slots <= 4096; slots *= 2)
		check_size(slots);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_power_of_two),
	};

	return cmocka_run_group_tests_name(PEL_RING_SIZES_BUILD, tests, NULL, NULL);
}
