/* SPDX-License-Identifier: MIT */
/* tests/test_ring.c - pel/ring.h: init errors, single and burst, wrap-around, full and empty. */
#include <stdlib.h>

#include "helpers.h"

static void
fn_a(void *arg)
{
	(void)arg;
}

static void
fn_b(void *arg)
{
	(void)arg;
}

static struct pel_ring *
ring_new(unsigned slots)
{
	struct pel_ring *r = aligned_alloc(PEL_CACHE_GUARD, pel_ring_memsize(slots));

	assert_non_null(r);
	assert_int_equal(pel_ring_init(r, slots), 0);
	return r;
}

static void
test_memsize_and_init_errors(void **state)
{
	char buf[4096] __attribute__((aligned(128)));

	(void)state;
	assert_int_equal(pel_ring_memsize(0), 0);
	assert_int_equal(pel_ring_memsize(3), 0);
	assert_int_equal(pel_ring_memsize(PEL_RING_MAX_SLOTS * 2u), 0);
	assert_int_equal(pel_ring_memsize(1u << 31), 0);
	assert_true(pel_ring_memsize(1) >= sizeof(struct pel_ring) + 16);
	assert_int_equal(pel_ring_memsize(64), sizeof(struct pel_ring) + 64 * 16);
	assert_int_equal(pel_ring_memsize(4) % PEL_CACHE_GUARD, 0);
	assert_int_equal(pel_ring_init(NULL, 8), -EINVAL);
	assert_int_equal(pel_ring_init((struct pel_ring *)buf, 6), -EINVAL);
	assert_int_equal(pel_ring_init((struct pel_ring *)(buf + 64), 8), -EINVAL);
	assert_int_equal(pel_ring_init((struct pel_ring *)buf, 8), 0);
}

static void
test_layout(void **state)
{
	(void)state;
	/* producer and consumer state on different 128-byte blocks, slots after both */
	assert_true(offsetof(struct pel_ring, cons) - offsetof(struct pel_ring, prod) >= 128);
	assert_true(offsetof(struct pel_ring, slot) - offsetof(struct pel_ring, cons) >= 128);
	assert_int_equal(sizeof(struct pel_task), 16);
}

static void
test_empty_and_null_fn(void **state)
{
	struct pel_ring *r = ring_new(8);
	struct pel_task t[4];

	(void)state;
	assert_int_equal(pel_ring_pop(r, &t[0]), -EAGAIN);
	assert_int_equal(pel_ring_pop_burst(r, t, 4), 0);
	assert_int_equal(pel_ring_push(r, NULL, NULL), -EINVAL);
	assert_int_equal(pel_ring_push(r, (pel_task_fn)(~(uintptr_t)0), NULL), -EINVAL);
	assert_int_equal(pel_ring_count(r), 0);
	free(r);
}

static void
test_single_fifo_and_full(void **state)
{
	struct pel_ring *r = ring_new(8);
	struct pel_task t;

	(void)state;
	for (uintptr_t i = 0; i < 8; i++)
		assert_int_equal(pel_ring_push(r, i & 1 ? fn_b : fn_a, (void *)(i + 100)), 0);
	assert_int_equal(pel_ring_count(r), 8);
	assert_int_equal(pel_ring_push(r, fn_a, (void *)999), -EAGAIN);
	assert_int_equal(pel_ring_full_count(r), 1);
	/* the refused push changed nothing */
	for (uintptr_t i = 0; i < 8; i++) {
		assert_int_equal(pel_ring_pop(r, &t), 0);
		assert_ptr_equal(t.fn, i & 1 ? fn_b : fn_a);
		assert_ptr_equal(t.arg, (void *)(i + 100));
	}
	assert_int_equal(pel_ring_pop(r, &t), -EAGAIN);
	free(r);
}

static void
test_wraparound_many_laps(void **state)
{
	struct pel_ring *r = ring_new(4);
	uintptr_t next_in = 0, next_out = 0;
	struct pel_task t[3];

	(void)state;
	/* uneven push/pop so every slot index sees every lap parity */
	for (int round = 0; round < 10000; round++) {
		unsigned push = 1 + round % 3, got;

		for (unsigned k = 0; k < push; k++)
			if (pel_ring_push(r, fn_a, (void *)next_in) == 0)
				next_in++;
		got = pel_ring_pop_burst(r, t, 1 + (round * 7) % 3);
		for (unsigned k = 0; k < got; k++)
			assert_ptr_equal(t[k].arg, (void *)next_out++);
	}
	while (pel_ring_pop(r, &t[0]) == 0)
		assert_ptr_equal(t[0].arg, (void *)next_out++);
	assert_int_equal(next_in, next_out);
	assert_true(next_in > 10000);
	free(r);
}

static void
test_one_slot_ring(void **state)
{
	struct pel_ring *r = ring_new(1);
	struct pel_task t;

	(void)state;
	for (uintptr_t i = 0; i < 100; i++) {
		assert_int_equal(pel_ring_push(r, fn_a, (void *)i), 0);
		assert_int_equal(pel_ring_push(r, fn_a, (void *)i), -EAGAIN);
		assert_int_equal(pel_ring_pop(r, &t), 0);
		assert_ptr_equal(t.arg, (void *)i);
		assert_int_equal(pel_ring_pop(r, &t), -EAGAIN);
	}
	free(r);
}

static void
test_partial_bursts(void **state)
{
	struct pel_ring *r = ring_new(16);
	struct pel_task in[40], out[40];

	(void)state;
	for (uintptr_t i = 0; i < 40; i++)
		in[i] = (struct pel_task){ fn_a, (void *)i };
	assert_int_equal(pel_ring_push_burst(r, in, 10), 10);
	/* only 6 fit: a partial burst takes the first 6, counts one refusal */
	assert_int_equal(pel_ring_push_burst(r, in + 10, 30), 6);
	assert_int_equal(pel_ring_full_count(r), 1);
	assert_int_equal(pel_ring_push_burst(r, in + 16, 5), 0);
	assert_int_equal(pel_ring_pop_burst(r, out, 5), 5);
	assert_int_equal(pel_ring_pop_burst(r, out + 5, 40), 11);
	for (uintptr_t i = 0; i < 16; i++)
		assert_ptr_equal(out[i].arg, (void *)i);
	/* a NULL fn stops a burst there */
	in[3].fn = NULL;
	assert_int_equal(pel_ring_push_burst(r, in, 8), 3);
	assert_int_equal(pel_ring_pop_burst(r, out, 8), 3);
	free(r);
}

static void
test_bulk_all_or_nothing(void **state)
{
	struct pel_ring *r = ring_new(8);
	struct pel_task in[8], out[8];

	(void)state;
	for (uintptr_t i = 0; i < 8; i++)
		in[i] = (struct pel_task){ fn_b, (void *)i };
	assert_int_equal(pel_ring_push_bulk(r, in, 5), 0);
	assert_int_equal(pel_ring_push_bulk(r, in, 4), -EAGAIN);
	assert_int_equal(pel_ring_count(r), 5);
	in[1].fn = NULL;
	assert_int_equal(pel_ring_push_bulk(r, in, 2), -EINVAL);
	assert_int_equal(pel_ring_count(r), 5);
	assert_int_equal(pel_ring_pop_burst(r, out, 8), 5);
	free(r);
}

static void
test_peek_then_consume(void **state)
{
	struct pel_ring *r = ring_new(4);
	struct pel_task out[4];

	(void)state;
	for (uintptr_t i = 0; i < 4; i++)
		assert_int_equal(pel_ring_push(r, fn_a, (void *)i), 0);
	assert_int_equal(pel_ring_peek_burst(r, out, 4), 4);
	/* peeked but not consumed: still no room, and peeking again sees the same tasks */
	assert_int_equal(pel_ring_push(r, fn_a, NULL), -EAGAIN);
	assert_int_equal(pel_ring_peek_burst(r, out, 2), 2);
	assert_ptr_equal(out[0].arg, (void *)0);
	pel_ring_consume(r, 2);
	assert_int_equal(pel_ring_push(r, fn_a, (void *)4), 0);
	assert_int_equal(pel_ring_pop_burst(r, out, 4), 3);
	assert_ptr_equal(out[0].arg, (void *)2);
	assert_ptr_equal(out[2].arg, (void *)4);
	free(r);
}

/* A window whose last slot is ready is copied whole: across the wrap, with the lap bits dropped. */
static void
test_window_fast_path(void **state)
{
	struct pel_ring *r = ring_new(8);
	struct pel_task out[16];
	uintptr_t next = 0, want = 0;

	(void)state;
	for (int lap = 0; lap < 50; lap++) {
		unsigned push = 3 + lap % 6, take = 1 + lap % 8;

		while (push-- && pel_ring_push(r, lap & 1 ? fn_b : fn_a, (void *)next) == 0)
			next++;
		unsigned got = pel_ring_pop_burst(r, out, take);

		assert_true(got <= take);
		for (unsigned k = 0; k < got; k++, want++) {
			assert_ptr_equal(out[k].arg, (void *)want);
			assert_true(out[k].fn == fn_a || out[k].fn == fn_b);
		}
	}
	/* drain; then an empty ring whose slots all hold older laps reads as empty, any window */
	while (pel_ring_pop_burst(r, out, 16))
		;
	for (unsigned w = 1; w <= 16; w++)
		assert_int_equal(pel_ring_peek_burst(r, out, w), 0);
	/* a full ring, asked for more than it holds: exactly its 8, in order */
	for (uintptr_t i = 0; i < 8; i++)
		assert_int_equal(pel_ring_push(r, fn_b, (void *)(1000 + i)), 0);
	assert_int_equal(pel_ring_pop_burst(r, out, 16), 8);
	for (uintptr_t i = 0; i < 8; i++) {
		assert_ptr_equal(out[i].arg, (void *)(1000 + i));
		assert_ptr_equal(out[i].fn, fn_b);
	}
	free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memsize_and_init_errors),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_empty_and_null_fn),
		cmocka_unit_test(test_single_fifo_and_full),
		cmocka_unit_test(test_wraparound_many_laps),
		cmocka_unit_test(test_one_slot_ring),
		cmocka_unit_test(test_partial_bursts),
		cmocka_unit_test(test_bulk_all_or_nothing),
		cmocka_unit_test(test_peek_then_consume),
		cmocka_unit_test(test_window_fast_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
