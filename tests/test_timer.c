/* SPDX-License-Identifier: MIT */
/*
 * tests/test_timer.c - per-worker timers (pel/rt.h): bad input first, then never early and in due
 * order across the wheel's levels, cancel (pending, fired, unknown, from the callback itself),
 * periodic timers, timers on another worker, a parked worker woken by its timer, the store's
 * capacity and pel_destroy() with timers pending. "--races": cancels racing the firing on
 * another worker (suite concurrency). No test asserts how late a timer is, only that it is not
 * early and that it fires.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "helpers.h"
#include "on_worker.h"

#include <pel/io.h>
#include <pel/rt.h>

#include "pel_config.h"

#include "rt/rt_layer.h"

static struct pel_runtime *
start_rt(unsigned workers, struct captured *log, const struct pel_rt_config *rc)
{
	struct pel_runtime *rt = start_quiet(workers, log);

	assert_int_equal(pel_rt_init(rt, rc), 0);
	return rt;
}

/* ---- bad input ---- */

static void
nop(void *arg)
{
	(void)arg;
}

static _Atomic int r_nodev, r_worker, r_fn, r_period, r_unknown, r_zero, r_bogus;

static void
refusals_task(void *arg)
{
	uint64_t id = 0;

	atomic_store(&r_worker, pel_timer_after(5, 1000, nop, NULL, &id));
	atomic_store(&r_fn, pel_timer_after(0, 1000, NULL, NULL, &id));
	atomic_store(&r_period, pel_timer_every(0, 0, nop, NULL, &id));
	atomic_store(&r_zero, pel_timer_cancel(0));
	atomic_store(&r_unknown, pel_timer_cancel((uint64_t)77 << 32 | 3));	/* never armed */
	atomic_store(&r_bogus, pel_timer_cancel((uint64_t)1 << 32 | (uint64_t)9 << 20));
	(void)arg;
}

static void
nodev_task(void *arg)
{
	uint64_t id;

	(void)arg;
	atomic_store(&r_nodev, pel_timer_after(0, 1000, nop, NULL, &id));
}

static void
test_refusals(void **state)
{
	struct captured log;
	struct pel_runtime *rt = start_quiet(1, &log);

	(void)state;
	/* not from a task */
	assert_int_equal(pel_timer_after(0, 1000, nop, NULL, NULL), -EPERM);
	assert_error_contains("from inside a task");
	assert_int_equal(pel_timer_cancel(1), -EPERM);
	/* no set-up call: the real-time layer runs from pel_create() */
	on_worker(rt, 0, nodev_task, NULL);
	assert_int_equal(atomic_load(&r_nodev), 0);
	assert_int_equal(pel_rt_init(rt, NULL), 0);
	on_worker(rt, 0, refusals_task, NULL);
	assert_int_equal(atomic_load(&r_worker), -EINVAL);
	assert_int_equal(atomic_load(&r_fn), -EINVAL);
	assert_int_equal(atomic_load(&r_period), -EINVAL);
	assert_int_equal(atomic_load(&r_zero), -ENOENT);
	assert_int_equal(atomic_load(&r_unknown), -ENOENT);
	assert_int_equal(atomic_load(&r_bogus), -ENOENT);
	pel_destroy(rt);
}

/* ---- never early, in due order ---- */

#define N_DUE	14
static const uint64_t due_after[N_DUE] = {
	0, 1, 999, 1000, 1001, 50000, 63000, 64000, 65000, 700000, 4100000, 9000000, 30000000,
	270000000,	/* level 3: past 64^3 us */
};
static uint64_t due_at[N_DUE];
static _Atomic uint64_t fired_at[N_DUE];
static _Atomic int fired_worker[N_DUE];
static _Atomic int fire_seq_n, fire_done;
static int fire_seq[N_DUE];

static void
record_fire(void *arg)
{
	int i = (int)(intptr_t)arg;

	atomic_store(&fired_at[i], pel_now_ns());
	atomic_store(&fired_worker[i], pel_worker_self());
	fire_seq[atomic_fetch_add(&fire_seq_n, 1)] = i;
	atomic_fetch_add(&fire_done, 1);	/* after the write above: the reader waits on it */
}

struct arm_args {
	unsigned worker;
	int err;
};

static void
arm_all_task(void *arg)
{
	struct arm_args *a = arg;
	uint64_t now = pel_now_ns();

	/* reversed: insertion order must not matter */
	for (int i = N_DUE - 1; i >= 0; i--) {
		due_at[i] = now + due_after[i];
		a->err |= pel_timer_at(a->worker, due_at[i], record_fire, (void *)(intptr_t)i,
				       NULL);
	}
}

static void
never_early_on(unsigned workers, unsigned target)
{
	struct captured log;
	struct pel_runtime *rt = start_rt(workers, &log, NULL);
	struct arm_args a = { .worker = target };
	struct pel_rt_stats st;

	atomic_store(&fire_seq_n, 0);
	atomic_store(&fire_done, 0);
	for (int i = 0; i < N_DUE; i++)
		atomic_store(&fired_at[i], 0);
	on_worker(rt, 0, arm_all_task, &a);
	assert_int_equal(a.err, 0);
	assert_true(WAIT_UNTIL(atomic_load(&fire_done) == N_DUE, 20000));
	for (int i = 0; i < N_DUE; i++) {
		if (atomic_load(&fired_at[i]) < due_at[i])
			fail_msg("timer %d (+%llu ns) fired %llu ns early", i,
				 (unsigned long long)due_after[i],
				 (unsigned long long)(due_at[i] - atomic_load(&fired_at[i])));
		assert_int_equal(atomic_load(&fired_worker[i]), (int)target);
	}
	/*
	 * Due order, except within one tick (1 us). Only when the arming task ran on the owner: all
	 * timers are in its wheel before any fires. Armed from another worker, each arrives by a
	 * mesh message, and one due at once may arrive after a later one has fired (under TSan).
	 */
	for (int k = 1; target == 0 && k < N_DUE; k++)
		if (due_at[fire_seq[k]] / 1000 + 1 < due_at[fire_seq[k - 1]] / 1000)
			fail_msg("timer %d (+%llu) fired before timer %d (+%llu)", fire_seq[k - 1],
				 (unsigned long long)due_after[fire_seq[k - 1]], fire_seq[k],
				 (unsigned long long)due_after[fire_seq[k]]);
	assert_int_equal(pel_rt_stats(rt, target, &st), 0);
	assert_int_equal(st.timers_fired, N_DUE);
	assert_true(st.timer_late_sum_ns >= st.timer_late_max_ns);
	pel_destroy(rt);
}

static void
test_never_early_in_order(void **state)
{
	(void)state;
	never_early_on(1, 0);
}

static void
test_armed_for_another_worker(void **state)
{
	(void)state;
	if (online_cpus() < 2)
		skip();
	never_early_on(2, 1);
}

/* ---- cancel ---- */

static _Atomic int cancel_fired[8];
static _Atomic int c_res[8], c_again, c_fired_res, c_fired_ok;

static void
mark(void *arg)
{
	atomic_fetch_add(&cancel_fired[(intptr_t)arg], 1);
}

static uint64_t cancel_ids[8];

static void
cancel_arm_task(void *arg)
{
	unsigned target = (unsigned)(uintptr_t)arg;

	for (int i = 0; i < 8; i++)
		assert_int_equal(pel_timer_after(target, (i == 7 ? 1 : 30) * PEL_NS_PER_MS, mark,
						 (void *)(intptr_t)i, &cancel_ids[i]), 0);
	for (int i = 0; i < 8; i += 2)
		atomic_store(&c_res[i], pel_timer_cancel(cancel_ids[i]));
	atomic_store(&c_again, pel_timer_cancel(cancel_ids[0]));
}

static void
cancel_fired_task(void *arg)
{
	(void)arg;
	atomic_store(&c_fired_res, pel_timer_cancel(cancel_ids[7]));
	atomic_store(&c_fired_ok, 1);
}

static void
cancel_on(unsigned workers, unsigned target)
{
	struct captured log;
	struct pel_runtime *rt = start_rt(workers, &log, NULL);
	struct pel_rt_stats st;

	for (int i = 0; i < 8; i++)
		atomic_store(&cancel_fired[i], 0);
	on_worker(rt, 0, cancel_arm_task, (void *)(uintptr_t)target);
	for (int i = 0; i < 8; i += 2)
		assert_int_equal(atomic_load(&c_res[i]), 0);
	assert_int_equal(atomic_load(&c_again), -EALREADY);
	/* timer 7 (1 ms, not cancelled) fires; then cancelling it is refused */
	assert_true(WAIT_UNTIL(atomic_load(&cancel_fired[7]) == 1, 10000));
	on_worker(rt, 0, cancel_fired_task, NULL);
	assert_int_equal(atomic_load(&c_fired_res), -EALREADY);
	/* the others not cancelled fire, once; the cancelled never */
	assert_true(WAIT_UNTIL(atomic_load(&cancel_fired[1]) && atomic_load(&cancel_fired[3]) &&
			       atomic_load(&cancel_fired[5]), 10000));
	usleep(40000);	/* past every due time */
	for (int i = 0; i < 8; i++)
		assert_int_equal(atomic_load(&cancel_fired[i]), i % 2);
	assert_int_equal(pel_rt_stats(rt, target, &st), 0);
	assert_int_equal(st.timers_cancelled, 4);
	assert_int_equal(st.timers_fired, 4);
	pel_destroy(rt);
}

static void
test_cancel_same_worker(void **state)
{
	(void)state;
	cancel_on(1, 0);
}

static void
test_cancel_other_worker(void **state)
{
	(void)state;
	if (online_cpus() < 2)
		skip();
	cancel_on(2, 1);
}

/* ---- periodic ---- */

static _Atomic int ticks;
static _Atomic int early;
static _Atomic int self_cancel_res = 1;
static uint64_t periodic_id, periodic_first;
static const uint64_t period = 2 * PEL_NS_PER_MS;

static void
tick_task(void *arg)
{
	int n = atomic_fetch_add(&ticks, 1) + 1;

	(void)arg;
	/* firing n is due at first + (k - 1) periods for some k >= n (missed ones are skipped) */
	if (pel_now_ns() < periodic_first + (uint64_t)(n - 1) * period)
		atomic_store(&early, 1);
	if (n == 5)
		atomic_store(&self_cancel_res, pel_timer_cancel(periodic_id));
}

static void
every_task(void *arg)
{
	(void)arg;
	periodic_first = pel_now_ns() + period;
	assert_int_equal(pel_timer_every(0, period, tick_task, NULL, &periodic_id), 0);
}

static void
test_periodic_then_cancel_from_callback(void **state)
{
	struct captured log;
	struct pel_runtime *rt = start_rt(1, &log, NULL);

	(void)state;
	atomic_store(&ticks, 0);
	on_worker(rt, 0, every_task, NULL);
	assert_true(WAIT_UNTIL(atomic_load(&ticks) >= 5, 10000));
	usleep(20000);	/* ten more periods */
	assert_int_equal(atomic_load(&ticks), 5);
	assert_int_equal(atomic_load(&self_cancel_res), 0);
	assert_int_equal(atomic_load(&early), 0);
	pel_destroy(rt);
}

/* ---- capacity, destroy ---- */

static _Atomic int cap_first, cap_second, cap_third;

static void
capacity_task(void *arg)
{
	uint64_t id;

	(void)arg;
	atomic_store(&cap_first, pel_timer_after(0, 10 * PEL_NS_PER_MS, nop, NULL, &id));
	atomic_store(&cap_second, pel_timer_after(0, 10 * PEL_NS_PER_MS, nop, NULL, NULL));
	atomic_store(&cap_third, pel_timer_cancel(id));
}

static void
again_task(void *arg)
{
	(void)arg;
	atomic_store(&cap_second, pel_timer_after(0, 60 * PEL_NS_PER_S, mark, (void *)0, NULL));
}

static void
test_capacity_and_destroy_reports(void **state)
{
	struct captured log;
	struct pel_rt_config rc = { .timers = 1 };
	struct pel_runtime *rt = start_rt(1, &log, &rc);

	(void)state;
	atomic_store(&cancel_fired[0], 0);
	on_worker(rt, 0, capacity_task, NULL);
	assert_int_equal(atomic_load(&cap_first), 0);
	assert_int_equal(atomic_load(&cap_second), -EAGAIN);
	assert_int_equal(atomic_load(&cap_third), 0);
	/* the cancelled one gave its slot back */
	on_worker(rt, 0, again_task, NULL);
	assert_int_equal(atomic_load(&cap_second), 0);
	pel_destroy(rt);	/* a minute early: cancelled, reported, never run */
	assert_int_equal(atomic_load(&cancel_fired[0]), 0);
	if (!strstr(log.all, "1 timer pending on worker 0 cancelled"))
		fail_msg("log lacks the pending timer: \"%s\"", log.all);
}

/* A PEL_IDLE_PARK worker with nothing but a timer parks and is woken by it. */
static _Atomic int woke;

static void
wake_mark(void *arg)
{
	(void)arg;
	atomic_store(&woke, 1);
}

static void
arm_50ms(void *arg)
{
	(void)arg;
	assert_int_equal(pel_timer_after(0, 50 * PEL_NS_PER_MS, wake_mark, NULL, NULL), 0);
}

static void
test_parked_worker_wakes_for_timer(void **state)
{
	struct captured log;
	struct pel_runtime *rt = start_rt(1, &log, NULL);
	struct pel_worker_stats ws0, ws1;

	(void)state;
	atomic_store(&woke, 0);
	assert_int_equal(pel_stats(rt, 0, &ws0), 0);
	on_worker(rt, 0, arm_50ms, NULL);
	assert_true(WAIT_UNTIL(atomic_load(&woke), 10000));
	assert_int_equal(pel_stats(rt, 0, &ws1), 0);
	assert_true(ws1.parks > ws0.parks);	/* it slept while waiting, it did not spin */
	pel_destroy(rt);
}

/* ---- a timer callback running as pel_destroy() begins ---- */

static _Atomic int td_started, td_ran_rt, td_ran_plain, td_spawned_rt, td_spawned_plain;
static unsigned td_target;

static void
td_rt(void *arg)
{
	(void)arg;
	atomic_fetch_add(&td_ran_rt, 1);
}

static void
td_plain(void *arg)
{
	(void)arg;
	atomic_fetch_add(&td_ran_plain, 1);
}

static void
td_cb(void *arg)
{
	struct pel_rt_task t = { td_rt, NULL, PEL_NO_DEADLINE, 0 };

	(void)arg;
	atomic_store(&td_started, 1);
	usleep(200000);		/* a long callback: pel_destroy() begins meanwhile */
	for (int i = 0; i < 3; i++)
		if (pel_spawn_rt(td_target, &t) == 0)
			atomic_fetch_add(&td_spawned_rt, 1);
	if (pel_spawn(td_target, td_plain, NULL) == 0)
		atomic_fetch_add(&td_spawned_plain, 1);
}

static void
td_arm(void *arg)
{
	(void)arg;
	assert_int_equal(pel_timer_after(0, 1000, td_cb, NULL, NULL), 0);
}

/* Found in review: what a timer callback spawns while pel_destroy() drains is run, on its own
 * worker and on another (a callback counts as a task in flight). */
static void
test_destroy_waits_for_timer_callback(void **state)
{
	(void)state;
	for (td_target = 0; td_target < (online_cpus() >= 2 ? 2u : 1u); td_target++) {
		struct captured log;
		struct pel_runtime *rt = start_quiet(td_target + 1, &log);

		atomic_store(&td_started, 0);
		atomic_store(&td_ran_rt, 0);
		atomic_store(&td_ran_plain, 0);
		atomic_store(&td_spawned_rt, 0);
		atomic_store(&td_spawned_plain, 0);
		on_worker(rt, 0, td_arm, NULL);
		assert_true(WAIT_UNTIL(atomic_load(&td_started), 10000));
		pel_destroy(rt);
		print_message("to worker %u: rt %d of %d ran, plain %d of %d\n", td_target,
			      atomic_load(&td_ran_rt), atomic_load(&td_spawned_rt),
			      atomic_load(&td_ran_plain), atomic_load(&td_spawned_plain));
		assert_int_equal(atomic_load(&td_spawned_rt), 3);
		assert_int_equal(atomic_load(&td_ran_rt), 3);
		assert_int_equal(atomic_load(&td_ran_plain), atomic_load(&td_spawned_plain));
		assert_int_equal(atomic_load(&td_spawned_plain), 1);
	}
}

/* ---- the wheel alone, on a fake clock ---- */

#define WB_TIMERS	700
static uint64_t fake_now;
static uint64_t wb_at[WB_TIMERS];
static uint64_t wb_fired_at[WB_TIMERS];
static int wb_count[WB_TIMERS];
static int wb_early;

static uint64_t
fake_clock(void)
{
	return fake_now;
}

static void
wb_fire(void *arg)
{
	int i = (int)(intptr_t)arg;

	wb_count[i]++;
	wb_fired_at[i] = fake_now;
	if (fake_now < wb_at[i])
		wb_early++;
}

static uint64_t
lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static int
by_due(const void *a, const void *b)
{
	uint64_t x = wb_at[*(const int *)a], y = wb_at[*(const int *)b];

	return x < y ? -1 : x > y;
}

/* A worker's wheel alone, with a store of @p n timers, for the fake clock (free with
 * wheel_free()). */
static struct rt_worker *
wheel_alone(struct rt_layer *L, unsigned n)
{
	struct rt_worker *w = aligned_alloc(PEL_CACHE_GUARD, sizeof(*w));
	static struct pel__beat beat;
	static _Atomic uint64_t yield_word;

	assert_non_null(w);
	memset(w, 0, sizeof(*w));
	w->layer = L;
	w->beat = &beat;
	beat.yield_at = &yield_word;
	w->tm = calloc(n, sizeof(*w->tm));
	w->tstore.next = calloc(n, sizeof(*w->tstore.next));
	assert_non_null(w->tm);
	assert_non_null(w->tstore.next);
	for (unsigned i = 0; i < n; i++) {
		w->tm[i].owner = w;
		w->tm[i].idx = i;
		w->tm[i].prev = w->tm[i].next = -1;
		atomic_init(&w->tstore.next[i], i + 1 < n ? i + 2 : 0);
	}
	w->tstore.cap = n;
	atomic_init(&w->tstore.top, 1);
	pel__rt_wheel_init(w);
	return w;
}

static void
wheel_free(struct rt_worker *w)
{
	free(w->tm);
	free((void *)w->tstore.next);
	free(w);
}

static int near_fired;

static void
near_fire(void *arg)
{
	(void)arg;
	near_fired++;
}

/*
 * Found in review: with a far timer linked, a poll moved the wheel past the tick it was polled
 * for (to the next occupied slot or the next 64), so a timer armed right after, due a few ticks
 * on, waited for that point (up to 63 us late). Armed 3 us on, it fires at the poll 3 us on.
 */
static void
test_wheel_arm_after_poll(void **state)
{
	struct captured log;
	struct pel_runtime *rt = start_quiet(1, &log);
	struct rt_layer L = { .rt = rt, .nworkers = 1 };
	struct rt_worker *w;

	(void)state;
	fake_now = 5 * PEL_NS_PER_S + 777;	/* tick 5000000: a multiple of 64 */
	pel__rt_timer_clock(fake_clock);
	w = wheel_alone(&L, 4);
	assert_int_equal(pel__rt_timer_arm_local(w, fake_now + 10 * PEL_NS_PER_S, 0, near_fire,
						 NULL, NULL), 0);
	pel__rt_wheel_poll(w);
	assert_int_equal(pel__rt_timer_arm_local(w, fake_now + 3000, 0, near_fire, NULL, NULL), 0);
	fake_now += 2000;
	pel__rt_wheel_poll(w);
	assert_int_equal(near_fired, 0);	/* never early */
	fake_now += 2000;			/* its due tick, ceil(at / 1 us), has come */
	pel__rt_wheel_poll(w);
	assert_int_equal(near_fired, 1);	/* on time, not at the next multiple of 64 us */
	pel__rt_timer_clock(NULL);
	wheel_free(w);
	pel_destroy(rt);
}

/*
 * Every level of the wheel, cascades and skips, stepped through on a fake clock by random steps
 * of 1 ns to 50 us and jumps of a few ms: after each poll at time T, a timer has fired iff its
 * due tick ceil(at / 1000) <= floor(T / 1000), and none fired before its due time.
 */
static void
test_wheel_fake_clock(void **state)
{
	struct captured log;
	struct pel_runtime *rt = start_quiet(1, &log);
	struct rt_layer L = { .rt = rt, .nworkers = 1 };
	struct rt_worker *w;
	static int order[WB_TIMERS];
	uint64_t seed = 12345, start, end = 0;
	unsigned k = 0;

	(void)state;
	fake_now = 5 * PEL_NS_PER_S + 777;
	pel__rt_timer_clock(fake_clock);
	w = wheel_alone(&L, WB_TIMERS);
	start = fake_now;
	for (int i = 0; i < WB_TIMERS; i++) {
		uint64_t r = lcg(&seed), span;

		switch (i % 5) {
		case 0: span = 300; break;			/* within a tick or two */
		case 1: span = 64 * 1000; break;		/* level 0 and 1 */
		case 2: span = 5 * PEL_NS_PER_MS; break;	/* level 1 and 2 */
		case 3: span = 400 * PEL_NS_PER_MS; break;	/* level 2 and 3 */
		default: span = 3 * PEL_NS_PER_S; break;	/* level 3 */
		}
		wb_at[i] = start + r % span;
		if (i == 13)
			wb_at[i] = start - 5000;		/* already past: fires at once */
		if (wb_at[i] > end)
			end = wb_at[i];
		order[i] = i;
		assert_int_equal(pel__rt_timer_arm_local(w, wb_at[i], 0, wb_fire,
							 (void *)(intptr_t)i, NULL), 0);
	}
	/* the store is exactly full now */
	assert_int_equal(pel__rt_timer_arm_local(w, start, 0, wb_fire, NULL, NULL), -EAGAIN);
	qsort(order, WB_TIMERS, sizeof(order[0]), by_due);
	while (fake_now <= end + 2000) {
		uint64_t r = lcg(&seed);

		fake_now += r % 64 == 0 ? r % (3 * PEL_NS_PER_MS) : 1 + r % (50 * 1000);
		pel__rt_wheel_poll(w);
		/* due tick passed: fired */
		while (k < WB_TIMERS && (wb_at[order[k]] + 999) / 1000 <= fake_now / 1000) {
			if (wb_count[order[k]] != 1)
				fail_msg("timer %d due %llu not fired once (%d) at %llu", order[k],
					 (unsigned long long)wb_at[order[k]], wb_count[order[k]],
					 (unsigned long long)fake_now);
			k++;
		}
		/* not yet due: not fired */
		if (k < WB_TIMERS && wb_count[order[k]])
			fail_msg("timer %d due %llu fired at %llu, before its tick", order[k],
				 (unsigned long long)wb_at[order[k]],
				 (unsigned long long)wb_fired_at[order[k]]);
	}
	assert_int_equal(k, WB_TIMERS);
	assert_int_equal(wb_early, 0);
	assert_int_equal(w->wheel.count, 0);
	assert_int_equal(atomic_load(&w->timers_fired), WB_TIMERS);
	pel__rt_timer_clock(NULL);
	wheel_free(w);
	pel_destroy(rt);
}

/* Periodic timers on the fake clock: each firing at the first poll past its due tick, never
 * before; the next due one period after the last, periods already past skipped. */
#define WB_PERIODIC	4
static const uint64_t wb_period[WB_PERIODIC] = { 700, 7000, 1300000, 45000000 };
static uint64_t wb_due[WB_PERIODIC];
static int wb_fires[WB_PERIODIC];
static int wb_bad;

static void
wb_periodic(void *arg)
{
	int i = (int)(intptr_t)arg;
	uint64_t next = wb_due[i] + wb_period[i];

	if (fake_now < wb_due[i])
		wb_bad++;
	wb_fires[i]++;
	if (next <= fake_now)
		next += ((fake_now - next) / wb_period[i] + 1) * wb_period[i];
	wb_due[i] = next;
}

static void
test_wheel_periodic_fake_clock(void **state)
{
	struct captured log;
	struct pel_runtime *rt = start_quiet(1, &log);
	struct rt_layer L = { .rt = rt, .nworkers = 1 };
	struct rt_worker *w = aligned_alloc(PEL_CACHE_GUARD, sizeof(*w));
	static struct pel__beat beat;
	static _Atomic uint64_t yield_word;
	uint64_t seed = 777, start;

	(void)state;
	assert_non_null(w);
	memset(w, 0, sizeof(*w));
	w->layer = &L;
	w->beat = &beat;
	beat.yield_at = &yield_word;
	w->tm = calloc(WB_PERIODIC, sizeof(*w->tm));
	w->tstore.next = calloc(WB_PERIODIC, sizeof(*w->tstore.next));
	assert_non_null(w->tm);
	assert_non_null(w->tstore.next);
	for (unsigned i = 0; i < WB_PERIODIC; i++) {
		w->tm[i].owner = w;
		w->tm[i].idx = i;
		w->tm[i].prev = w->tm[i].next = -1;
		atomic_init(&w->tstore.next[i], i + 1 < WB_PERIODIC ? i + 2 : 0);
	}
	w->tstore.cap = WB_PERIODIC;
	atomic_init(&w->tstore.top, 1);
	fake_now = 3 * PEL_NS_PER_S + 5;
	pel__rt_timer_clock(fake_clock);
	pel__rt_wheel_init(w);
	start = fake_now;
	for (int i = 0; i < WB_PERIODIC; i++) {
		wb_due[i] = start + wb_period[i];
		assert_int_equal(pel__rt_timer_arm_local(w, wb_due[i], wb_period[i], wb_periodic,
							 (void *)(intptr_t)i, NULL), 0);
	}
	while (fake_now < start + 500 * PEL_NS_PER_MS) {
		uint64_t r = lcg(&seed);

		fake_now += r % 128 == 0 ? r % (2 * PEL_NS_PER_MS) : 1 + r % (20 * 1000);
		pel__rt_wheel_poll(w);
		for (int i = 0; i < WB_PERIODIC; i++)
			if ((wb_due[i] + 999) / 1000 <= fake_now / 1000)
				fail_msg("periodic timer %d due %llu not fired at %llu", i,
					 (unsigned long long)wb_due[i],
					 (unsigned long long)fake_now);
	}
	assert_int_equal(wb_bad, 0);
	/* the 45 ms timer fired 11 times in 500 ms; the faster ones many times, periods skipped */
	assert_int_equal(wb_fires[3], (int)((fake_now - start) / wb_period[3]));
	assert_true(wb_fires[2] >= 300);
	assert_true(wb_fires[0] > 1000);
	assert_int_equal(w->wheel.count, WB_PERIODIC);
	pel__rt_timer_clock(NULL);
	free(w->tm);
	free(w->tstore.next);
	free(w);
	pel_destroy(rt);
}

#if PEL_HAVE_LIBURING
/*
 * A worker whose park is the I/O layer's (io_uring_enter) cannot bound its sleep: with a timer
 * pending it yields instead of parking, and the timer still fires.
 */
static void
test_timer_beside_io_park_hook(void **state)
{
	struct captured log;
	struct pel_runtime *rt = start_rt(1, &log, NULL);
	struct pel_io *io;

	(void)state;
	if (pel_io_create(rt, NULL, &io)) {
		print_message("skip: no io_uring here (%s)\n", pel_last_error());
		pel_destroy(rt);
		skip();
	}
	atomic_store(&woke, 0);
	on_worker(rt, 0, arm_50ms, NULL);
	assert_true(WAIT_UNTIL(atomic_load(&woke), 10000));
	pel_destroy(rt);
}
#endif

/* ---- races (suite concurrency) ---- */

#define RACE_TIMERS	2000

static _Atomic int race_fired[RACE_TIMERS];
static int race_cancel[RACE_TIMERS];

static void
race_fire(void *arg)
{
	atomic_fetch_add(&race_fired[(intptr_t)arg], 1);
}

static void
race_task(void *arg)
{
	(void)arg;
	for (int i = 0; i < RACE_TIMERS; i++) {
		uint64_t id;
		int err;

		while ((err = pel_timer_after(1, (uint64_t)(i % 40) * PEL_NS_PER_US, race_fire,
					      (void *)(intptr_t)i, &id)) == -EAGAIN)
			;
		assert_int_equal(err, 0);
		/* wait a varying while, so the cancel lands before, at and after the firing */
		uint64_t until = pel_now_ns() + (uint64_t)(i % 80) * PEL_NS_PER_US;

		while (pel_now_ns() < until)
			;
		race_cancel[i] = pel_timer_cancel(id);
	}
}

static void
test_cancel_races_firing(void **state)
{
	struct captured log;
	struct pel_runtime *rt;
	int cancelled = 0;

	(void)state;
	if (online_cpus() < 2)
		skip();
	rt = start_rt(2, &log, NULL);
	for (int i = 0; i < RACE_TIMERS; i++)
		atomic_store(&race_fired[i], 0);
	on_worker(rt, 0, race_task, NULL);
	usleep(50000);
	assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
	for (int i = 0; i < RACE_TIMERS; i++) {
		int f = atomic_load(&race_fired[i]);

		if (race_cancel[i] == 0) {
			cancelled++;
			if (f)
				fail_msg("timer %d was cancelled (0) and fired", i);
		} else {
			assert_int_equal(race_cancel[i], -EALREADY);
			assert_true(WAIT_UNTIL(atomic_load(&race_fired[i]) == 1, 5000));
		}
	}
	print_message("%d of %d cancelled in time\n", cancelled, RACE_TIMERS);
	pel_destroy(rt);
	for (int i = 0; i < RACE_TIMERS; i++)
		assert_true(atomic_load(&race_fired[i]) <= 1);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_wheel_fake_clock),
		cmocka_unit_test(test_wheel_arm_after_poll),
		cmocka_unit_test(test_destroy_waits_for_timer_callback),
		cmocka_unit_test(test_wheel_periodic_fake_clock),
		cmocka_unit_test(test_never_early_in_order),
		cmocka_unit_test(test_armed_for_another_worker),
		cmocka_unit_test(test_cancel_same_worker),
		cmocka_unit_test(test_cancel_other_worker),
		cmocka_unit_test(test_periodic_then_cancel_from_callback),
		cmocka_unit_test(test_capacity_and_destroy_reports),
		cmocka_unit_test(test_parked_worker_wakes_for_timer),
#if PEL_HAVE_LIBURING
		cmocka_unit_test(test_timer_beside_io_park_hook),
#endif
	};
	const struct CMUnitTest races[] = {
		cmocka_unit_test(test_cancel_races_firing),
	};

	if (argc > 1 && !strcmp(argv[1], "--races"))
		return cmocka_run_group_tests_name("timer races", races, NULL, NULL);
	return cmocka_run_group_tests_name("timer", unit, NULL, NULL);
}
