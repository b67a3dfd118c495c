/* SPDX-License-Identifier: MIT */
/*
 * tests/test_runtime.c - the runtime through its public API: workers, producers, submit, spawn,
 * stats, idle strategies, drain, destroy, and every error they return.
 * Workers use PEL_IDLE_PARK or BACKOFF (this host has 2 CPUs, shared with the test thread).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "helpers.h"
#include "destroy_close.h"
#include "internal.h"

static struct pel_runtime *
start(const char *cpus, enum pel_idle idle, unsigned slots, struct captured *log)
{
	struct pel_runtime *rt = NULL;
	struct pel_config c;
	int err;

	quiet_config(&c, cpus, log);
	c.idle = idle;
	c.ring_slots = slots;
	c.idle_spin_ns = 5 * PEL_NS_PER_US;
	c.idle_park_ns = 50 * PEL_NS_PER_US;
	err = pel_create(&c, &rt);
	if (err)
		fail_msg("pel_create(%s): %d %s", cpus, err, pel_last_error());
	return rt;
}

static const char *
two_cpus(void)
{
	return online_cpus() >= 2 ? "0-1" : "0";
}

/* ---- a gate: a task that holds its worker until the test opens it ---- */

struct gate {
	_Atomic int entered;
	_Atomic int open;
};

static void
gate_task(void *arg)
{
	struct gate *g = arg;

	atomic_store(&g->entered, 1);
	while (!atomic_load(&g->open))
		usleep(20);
}

/* ---- tasks that record where and in which order they ran ---- */

#define LOG_MAX 4096
struct order_log {
	_Atomic unsigned n;
	uintptr_t seq[LOG_MAX];
	int worker[LOG_MAX];
	int cpu[LOG_MAX];
	char name[LOG_MAX < 64 ? 1 : 16];
};

static struct order_log olog;

static void
record_task(void *arg)
{
	unsigned i = atomic_fetch_add(&olog.n, 1);

	if (i < LOG_MAX) {
		olog.seq[i] = (uintptr_t)arg;
		olog.worker[i] = pel_worker_self();
		olog.cpu[i] = sched_getcpu();
	}
	if (i == 0)
		pthread_getname_np(pthread_self(), olog.name, sizeof(olog.name));
}

static void
reset_log(void)
{
	memset(&olog, 0, sizeof(olog));
}

static void
test_create_destroy_and_identity(void **state)
{
	struct pel_runtime *rt = start(two_cpus(), PEL_IDLE_PARK, 0, NULL);
	struct pel_producer *p;
	struct pel_worker_stats st;
	unsigned n = pel_worker_count(rt);

	(void)state;
	assert_int_equal(n, (unsigned)(online_cpus() >= 2 ? 2 : 1));
	assert_int_equal(pel_worker_self(), -1);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	for (unsigned w = 0; w < n; w++) {
		reset_log();
		assert_int_equal(pel_submit(p, w, record_task, (void *)(uintptr_t)w), 0);
		assert_int_equal(pel_drain(rt, 5 * PEL_NS_PER_S), 0);
		assert_int_equal(atomic_load(&olog.n), 1);
		assert_int_equal(olog.worker[0], (int)w);
		assert_int_equal(olog.cpu[0], pel_worker_cpu(rt, w));
		char want[16];

		snprintf(want, sizeof(want), "pel-w%u", w);
		assert_string_equal(olog.name, want);
		assert_int_equal(pel_stats(rt, w, &st), 0);
		assert_int_equal(st.tasks_run, 1);
		assert_int_equal(st.cpu, pel_worker_cpu(rt, w));
	}
	assert_int_equal(pel_worker_cpu(rt, n), -EINVAL);
	assert_int_equal(pel_worker_cpu(NULL, 0), -EINVAL);
	pel_producer_close(p);
	destroy_and_close(rt);
	pel_destroy(NULL);
	pel_producer_close(NULL);
	assert_int_equal(pel_worker_count(NULL), 0);
}

static void
test_submit_errors(void **state)
{
	struct pel_runtime *rt = start("0", PEL_IDLE_PARK, 0, NULL);
	struct pel_producer *p;
	struct pel_task t[2] = { { record_task, NULL }, { NULL, NULL } };
	struct pel_worker_stats st;

	(void)state;
	reset_log();
	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_submit(p, 1, record_task, NULL), -EINVAL);
	assert_error_contains("worker 1 does not exist: this runtime has workers 0..0");
	assert_int_equal(pel_submit(p, 0, NULL, NULL), -EINVAL);
	assert_error_contains("NULL function");
	assert_int_equal(pel_submit_burst(p, 3, t, 1), 0);
	assert_error_contains("worker 3 does not exist");
	assert_int_equal(pel_submit_burst(p, 0, NULL, 1), 0);
	assert_error_contains("task array is NULL");
	assert_int_equal(pel_submit_burst(p, 0, t, 0), 0);
	/* a NULL fn stops a burst: the task before it is queued, nothing after */
	assert_int_equal(pel_submit_burst(p, 0, t, 2), 1);
	assert_error_contains("NULL function");
	assert_int_equal(pel_drain(rt, 5 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&olog.n), 1);
	assert_int_equal(pel_stats(rt, 0, NULL), -EINVAL);
	assert_int_equal(pel_stats(NULL, 0, &st), -EINVAL);
	assert_int_equal(pel_stats(rt, 1, &st), -EINVAL);
	assert_int_equal(pel_spawn(0, record_task, NULL), -EPERM);
	assert_error_contains("outside a task");
	assert_int_equal(pel_drain(NULL, 0), -EINVAL);
	assert_int_equal(pel_submit(NULL, 0, record_task, NULL), -EINVAL);
	assert_error_contains("producer handle is NULL");
	assert_int_equal(pel_submit_burst(NULL, 0, t, 1), 0);
	assert_error_contains("producer handle is NULL");
	pel_producer_close(p);
	assert_int_equal(pel_submit(p, 0, record_task, NULL), -EINVAL);
	assert_error_contains("producer handle is closed");
	assert_int_equal(pel_submit_burst(p, 0, t, 1), 0);
	assert_error_contains("producer handle is closed");
	assert_int_equal(pel_producer_open(rt, NULL), -EINVAL);
	assert_int_equal(pel_producer_open(NULL, &p), -EINVAL);
	assert_null(p);
	destroy_and_close(rt);
}

static void
test_full_ring_keeps_content(void **state)
{
	struct pel_runtime *rt = start("0", PEL_IDLE_PARK, 8, NULL);
	struct pel_producer *p;
	struct pel_worker_stats st;
	struct gate g = { 0, 0 };
	unsigned accepted = 0;
	int err;

	(void)state;
	reset_log();
	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_submit(p, 0, gate_task, &g), 0);
	assert_true(WAIT_UNTIL(atomic_load(&g.entered), 5000));
	/* the running gate still holds its slot: 7 more fit in 8 slots (at least slots - 1) */
	while ((err = pel_submit(p, 0, record_task, (void *)(uintptr_t)accepted)) == 0)
		accepted++;
	assert_int_equal(err, -EAGAIN);
	assert_int_equal(accepted, 7);
	assert_error_contains("ring to worker 0 is full (8 slots)");
	assert_int_equal(pel_submit(p, 0, record_task, (void *)999), -EAGAIN);
	assert_int_equal(pel_stats(rt, 0, &st), 0);
	assert_int_equal(st.ring_full, 2);
	atomic_store(&g.open, 1);
	assert_int_equal(pel_drain(rt, 5 * PEL_NS_PER_S), 0);
	/* every accepted task ran once, in order; the refused ones never ran */
	assert_int_equal(atomic_load(&olog.n), 7);
	for (unsigned i = 0; i < 7; i++)
		assert_int_equal(olog.seq[i], i);
	destroy_and_close(rt);
}

static void
test_burst_order(void **state)
{
	struct pel_runtime *rt = start("0", PEL_IDLE_PARK, 64, NULL);
	struct pel_producer *p;
	struct pel_task t[100];
	struct gate g = { 0, 0 };
	unsigned sent = 0;

	(void)state;
	reset_log();
	for (uintptr_t i = 0; i < 100; i++)
		t[i] = (struct pel_task){ record_task, (void *)i };
	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_submit(p, 0, gate_task, &g), 0);
	assert_true(WAIT_UNTIL(atomic_load(&g.entered), 5000));
	sent = pel_submit_burst(p, 0, t, 100);
	assert_int_equal(sent, 63);
	assert_error_contains("is full");
	atomic_store(&g.open, 1);
	while (sent < 100) {
		unsigned n = pel_submit_burst(p, 0, t + sent, 100 - sent);

		if (!n)
			sched_yield();
		sent += n;
	}
	assert_int_equal(pel_drain(rt, 5 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&olog.n), 100);
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(olog.seq[i], i);
	destroy_and_close(rt);
}

static void
test_producer_handles_exhausted(void **state)
{
	struct pel_runtime *rt;
	struct pel_producer *p[3];
	struct pel_config c;

	(void)state;
	reset_log();
	quiet_config(&c, "0", NULL);
	c.max_producers = 2;
	assert_int_equal(pel_create(&c, &rt), 0);
	assert_int_equal(pel_producer_open(rt, &p[0]), 0);
	assert_int_equal(pel_producer_open(rt, &p[1]), 0);
	assert_int_equal(pel_producer_open(rt, &p[2]), -EMFILE);
	assert_null(p[2]);
	assert_error_contains("all 2 producer handles are open (max_producers = 2)");
	/* a closed handle's queued tasks still run, and its slot is reusable */
	assert_int_equal(pel_submit(p[1], 0, record_task, (void *)1), 0);
	pel_producer_close(p[1]);
	assert_int_equal(pel_producer_open(rt, &p[2]), 0);
	assert_int_equal(pel_submit(p[2], 0, record_task, (void *)2), 0);
	assert_int_equal(pel_drain(rt, 5 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&olog.n), 2);
	assert_int_equal(olog.seq[0], 1);
	assert_int_equal(olog.seq[1], 2);
	destroy_and_close(rt);
}

/* ---- spawn ---- */

struct hop {
	_Atomic unsigned hops;
	unsigned limit;
	unsigned nworkers;
	_Atomic unsigned wrong_worker;
	_Atomic int spawn_err;
};

static void
hop_task(void *arg)
{
	struct hop *h = arg;
	unsigned n = atomic_fetch_add(&h->hops, 1) + 1;
	int self = pel_worker_self();

	if (self != (int)((n - 1) % h->nworkers))
		atomic_fetch_add(&h->wrong_worker, 1);
	if (n < h->limit) {
		int err = pel_spawn(n % h->nworkers, hop_task, h);

		if (err)
			atomic_store(&h->spawn_err, err);
	}
}

static void
test_spawn_chain_and_drain(void **state)
{
	struct pel_runtime *rt = start(two_cpus(), PEL_IDLE_PARK, 0, NULL);
	struct pel_producer *p;
	struct hop h = { .limit = 2000, .nworkers = pel_worker_count(rt) };
	struct pel_worker_stats s0;

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_submit(p, 0, hop_task, &h), 0);
	/* drain waits for the spawned descendants too */
	assert_int_equal(pel_drain(rt, 10 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&h.hops), 2000);
	assert_int_equal(atomic_load(&h.wrong_worker), 0);
	assert_int_equal(atomic_load(&h.spawn_err), 0);
	assert_int_equal(pel_stats(rt, 0, &s0), 0);
	assert_true(s0.spawns >= 999);
	destroy_and_close(rt);
}

static _Atomic int inner_err[4];
static struct pel_runtime *inner_rt;

static void
errors_from_task(void *arg)
{
	(void)arg;
	atomic_store(&inner_err[0], pel_spawn(9, record_task, NULL));
	atomic_store(&inner_err[1], pel_spawn(0, NULL, NULL));
	atomic_store(&inner_err[2], pel_drain(inner_rt, 0));
	atomic_store(&inner_err[3], pel_worker_self());
	pel_destroy(inner_rt);	/* refused with a logged error, does nothing */
}

static void
test_calls_refused_inside_tasks(void **state)
{
	struct captured log;
	struct pel_runtime *rt = start("0", PEL_IDLE_PARK, 0, &log);
	struct pel_producer *p;

	(void)state;
	inner_rt = rt;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_submit(p, 0, errors_from_task, NULL), 0);
	assert_int_equal(pel_drain(rt, 5 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&inner_err[0]), -EINVAL);
	assert_int_equal(atomic_load(&inner_err[1]), -EINVAL);
	assert_int_equal(atomic_load(&inner_err[2]), -EDEADLK);
	assert_int_equal(atomic_load(&inner_err[3]), 0);
	assert_int_equal(log.errors, 1);
	assert_non_null(strstr(log.last, "pel_destroy() called from a task on worker 0"));
	destroy_and_close(rt);
}

static void
test_drain_timeout(void **state)
{
	struct pel_runtime *rt = start("0", PEL_IDLE_PARK, 0, NULL);
	struct pel_producer *p;
	struct gate g = { 0, 0 };
	uint64_t t0;

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_submit(p, 0, gate_task, &g), 0);
	assert_int_equal(pel_drain(rt, 0), -ETIMEDOUT);
	t0 = now_ns();
	assert_int_equal(pel_drain(rt, 20 * PEL_NS_PER_MS), -ETIMEDOUT);
	assert_true(now_ns() - t0 >= 20 * PEL_NS_PER_MS);
	assert_true(now_ns() - t0 < 2 * PEL_NS_PER_S);
	assert_error_contains("still queued or running");
	atomic_store(&g.open, 1);
	assert_int_equal(pel_drain(rt, 5 * PEL_NS_PER_S), 0);
	destroy_and_close(rt);
}

/* ---- idle strategies ---- */

static _Atomic unsigned counter;

static void
count_task(void *arg)
{
	(void)arg;
	atomic_fetch_add(&counter, 1);
}

static void
check_park_and_wake(enum pel_idle idle)
{
	struct pel_runtime *rt = start("0", idle, 0, NULL);
	struct pel_producer *p;
	struct pel_worker_stats st;

	atomic_store(&counter, 0);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	for (int round = 0; round < 20; round++) {
		/* wait for the worker to sleep, then a submit must wake it */
		assert_true(WAIT_UNTIL(atomic_load(&rt->workers[0]->parked) == 1, 5000));
		assert_int_equal(pel_submit(p, 0, count_task, NULL), 0);
		assert_true(WAIT_UNTIL(atomic_load(&counter) == (unsigned)round + 1, 5000));
	}
	assert_int_equal(pel_stats(rt, 0, &st), 0);
	assert_true(st.parks >= 20);
	assert_true(st.wakeups >= 20);
	assert_true(st.idle_ns > 0);
	assert_true(st.idle_loops > 0);
	assert_int_equal(st.tasks_run, 20);
	destroy_and_close(rt);
}

static void
test_park_wakes_on_submit(void **state)
{
	(void)state;
	check_park_and_wake(PEL_IDLE_PARK);
}

static void
test_backoff_parks_then_wakes(void **state)
{
	(void)state;
	check_park_and_wake(PEL_IDLE_BACKOFF);
}

static void
test_park_wake_with_fence_fallback(void **state)
{
	(void)state;
	pel__barrier_force_fence(true);
	check_park_and_wake(PEL_IDLE_PARK);
	pel__barrier_force_fence(false);
}

/*
 * Issue 8: a park must not interrupt the other CPUs. membarrier() IPIs every CPU running a thread
 * of the process, spinning workers on isolated cores included; parking makes none, only
 * pel_destroy() does (once).
 */
static void
test_parking_makes_no_membarrier_call(void **state)
{
	struct pel_runtime *rt = start("0", PEL_IDLE_PARK, 0, NULL);
	struct pel_producer *p;
	struct pel_worker_stats st;
	bool membarrier = !atomic_load(&pel__light_needs_fence);
	uint64_t before, parked;

	(void)state;
	atomic_store(&counter, 0);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	before = pel__barrier_membarrier_calls();
	for (unsigned i = 0; i < 1000; i++) {
		/* park number i + 1 is counted once the worker has decided to sleep */
		assert_true(WAIT_UNTIL(atomic_load(&rt->workers[0]->stats.parks) > i, 5000));
		assert_int_equal(pel_submit(p, 0, count_task, NULL), 0);
		assert_true(WAIT_UNTIL(atomic_load(&counter) == i + 1, 5000));
	}
	assert_int_equal(pel_stats(rt, 0, &st), 0);
	assert_true(st.parks >= 1000);
	parked = pel__barrier_membarrier_calls() - before;
	if (parked)
		fail_msg("%llu parks made %llu membarrier calls: each interrupts every CPU running "
			 "a thread of ours", (unsigned long long)st.parks, (unsigned long long)parked);
	destroy_and_close(rt);
	/* the counter counts: pel_destroy()'s side of the stop/enter pair makes exactly one */
	assert_int_equal(pel__barrier_membarrier_calls() - before, membarrier ? 1 : 0);
	if (!membarrier)
		print_message("note: no membarrier here: pel_destroy() used the fence fallback\n");
}

/* One spinning worker on CPU 1 (never more than one busy loop in tests), CPU 0 for us. */
static void
test_spin_worker_and_busy_claims(void **state)
{
	struct pel_runtime *a, *b;
	struct pel_producer *p;
	struct pel_config c;
	struct pel_worker_stats st;

	(void)state;
	if (online_cpus() < 2)
		skip();
	atomic_store(&counter, 0);
	quiet_config(&c, "1", NULL);
	c.idle = PEL_IDLE_SPIN;
	assert_int_equal(pel_create(&c, &a), 0);
	assert_int_equal(pel_producer_open(a, &p), 0);
	for (int i = 0; i < 1000; i++)
		while (pel_submit(p, 0, count_task, NULL) == -EAGAIN)
			sched_yield();
	assert_int_equal(pel_drain(a, 5 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&counter), 1000);
	/* a second runtime may not spin on the same CPU, but may sleep there */
	b = (struct pel_runtime *)0x1;
	assert_int_equal(pel_create(&c, &b), -EBUSY);
	assert_null(b);
	assert_error_contains("cpus 1 are already busy-polled by another pel runtime");
	c.idle = PEL_IDLE_PARK;
	assert_int_equal(pel_create(&c, &b), 0);
	destroy_and_close(b);
	assert_int_equal(pel_stats(a, 0, &st), 0);
	assert_int_equal(st.parks, 0);
	assert_int_equal(st.wakeups, 0);
	destroy_and_close(a);
	/* the claim went with it */
	c.idle = PEL_IDLE_SPIN;
	assert_int_equal(pel_create(&c, &b), 0);
	destroy_and_close(b);
}

static void
test_share_cpus_allows_oversubscription(void **state)
{
	struct pel_runtime *rt = NULL;
	struct pel_config c;

	(void)state;
	if (online_cpus() != 2)
		skip();
	quiet_config(&c, "0-1", NULL);
	c.idle = PEL_IDLE_SPIN;
	assert_int_equal(pel_create(&c, &rt), -EINVAL);
	assert_error_contains("2 busy-polling workers");
	/* allowed with the flag; destroyed at once so two spinners share the CPUs only briefly */
	c.flags = PEL_F_SHARE_CPUS;
	assert_int_equal(pel_create(&c, &rt), 0);
	destroy_and_close(rt);
}

/* ---- host warnings and isolation ---- */

static void
test_isolation_warning_once(void **state)
{
	struct captured log;
	struct pel_runtime *rt;
	struct pel_config c;

	(void)state;
	/* polling workers on non-isolated CPUs: one warning naming them all */
	quiet_config(&c, two_cpus(), &log);
	c.idle = PEL_IDLE_BACKOFF;
	c.sysfs_root = FIXTURE("sysfs-2cpu");
	assert_int_equal(pel_create(&c, &rt), 0);
	destroy_and_close(rt);
	assert_int_equal(log.warnings, 1);
	assert_non_null(strstr(log.last, "not isolated"));
	assert_non_null(strstr(log.last, "isolcpus="));
	/* workers that only sleep when idle: no warning */
	quiet_config(&c, two_cpus(), &log);
	c.sysfs_root = FIXTURE("sysfs-2cpu");
	assert_int_equal(pel_create(&c, &rt), 0);
	destroy_and_close(rt);
	assert_int_equal(log.lines, 0);
	if (online_cpus() != 2)
		return;
	/* a host (fixture) with CPU 1 isolated: the default picks it, no warning */
	quiet_config(&c, NULL, &log);
	c.idle = PEL_IDLE_BACKOFF;
	c.sysfs_root = FIXTURE("sysfs-iso1");
	c.flags = PEL_F_REQUIRE_ISOLATED;
	assert_int_equal(pel_create(&c, &rt), 0);
	assert_int_equal(pel_worker_count(rt), 1);
	assert_int_equal(pel_worker_cpu(rt, 0), 1);
	destroy_and_close(rt);
	assert_int_equal(log.lines, 0);
	c.cpus = "0-1";
	assert_int_equal(pel_create(&c, &rt), -EINVAL);
	assert_error_contains("cpu 0 is not isolated (isolated: 1)");
}

/* Polling workers that are hyper-threads of one core: one warning naming them. */
static void
test_smt_sibling_warning(void **state)
{
	struct captured log;
	struct pel_runtime *rt;
	struct pel_config c;

	(void)state;
	if (online_cpus() != 2)
		skip();
	quiet_config(&c, "0-1", &log);
	c.idle = PEL_IDLE_BACKOFF;
	c.sysfs_root = FIXTURE("sysfs-2cpu-smt");
	assert_int_equal(pel_create(&c, &rt), 0);
	destroy_and_close(rt);
	assert_int_equal(log.warnings, 2);	/* not isolated, and the SMT pair */
	assert_non_null(strstr(log.all, "1 pair of polling workers are SMT siblings of one core "
				       "(cpus 0 and 1)"));
	/* sleeping workers do not compete for the core: no warning */
	quiet_config(&c, "0-1", &log);
	c.sysfs_root = FIXTURE("sysfs-2cpu-smt");
	assert_int_equal(pel_create(&c, &rt), 0);
	destroy_and_close(rt);
	assert_int_equal(log.warnings, 0);
	/* one worker per core: no warning */
	quiet_config(&c, "0-1", &log);
	c.idle = PEL_IDLE_BACKOFF;
	c.sysfs_root = FIXTURE("sysfs-1s8c");
	assert_int_equal(pel__topo_parse_cpus("0-1", &(cpu_set_t){ 0 }), 0);
	assert_int_equal(pel_create(&c, &rt), 0);
	destroy_and_close(rt);
	assert_null(strstr(log.all, "SMT siblings"));
}

static void
test_default_stderr_log(void **state)
{
	struct pel_runtime *rt;
	struct pel_config c;
	char buf[1024] = "";
	int fds[2], saved;
	ssize_t n;

	(void)state;
	/* no log callback: the warning goes to stderr prefixed "pel: warning: " */
	assert_int_equal(pipe(fds), 0);
	saved = dup(2);
	dup2(fds[1], 2);
	quiet_config(&c, "0", NULL);
	c.idle = PEL_IDLE_BACKOFF;
	c.sysfs_root = FIXTURE("sysfs-2cpu");
	assert_int_equal(pel_create(&c, &rt), 0);
	destroy_and_close(rt);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "pel: warning: workers poll on cpus 0"));
}

/* ---- pollers (the hook io/ and the pools plug into) ---- */

static _Atomic unsigned poll_calls;
static _Atomic int poll_add_err[2];

static int
test_poller(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&poll_calls, 1);
	return 0;
}

static void
add_pollers_task(void *arg)
{
	(void)arg;
	atomic_store(&poll_add_err[0], pel__poller_add(NULL, NULL, 0));
	for (int i = 0; i < PEL__MAX_POLLERS; i++)
		pel__poller_add(test_poller, NULL, 0);
	atomic_store(&poll_add_err[1], pel__poller_add(test_poller, NULL, 0));
}

static void
test_pollers(void **state)
{
	struct pel_runtime *rt = start("0", PEL_IDLE_PARK, 0, NULL);
	struct pel_producer *p;

	(void)state;
	assert_int_equal(pel__poller_add(test_poller, NULL, 0), -EPERM);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_submit(p, 0, add_pollers_task, NULL), 0);
	assert_int_equal(pel_drain(rt, 5 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&poll_add_err[0]), -EINVAL);
	assert_int_equal(atomic_load(&poll_add_err[1]), -ENOSPC);
	/* a worker with pollers keeps polling them while idle (it yields instead of parking) */
	unsigned before = atomic_load(&poll_calls);

	assert_true(WAIT_UNTIL(atomic_load(&poll_calls) > before + 10 * PEL__MAX_POLLERS, 5000));
	destroy_and_close(rt);
}

/* ---- the runtime's own slot, and pollers that let the worker park ---- */

static _Atomic unsigned each_mask;
static _Atomic unsigned parkok_calls;

static int
parkok_poller(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&parkok_calls, 1);
	return 0;
}

static void
on_each(unsigned worker, void *arg)
{
	(void)arg;
	if ((int)worker == pel_worker_self())
		atomic_fetch_or(&each_mask, 1u << worker);
	pel__poller_add(parkok_poller, NULL, PEL__POLL_PARK_OK);
}

static void
test_run_on_each_worker(void **state)
{
	struct pel_runtime *rt = start(two_cpus(), PEL_IDLE_PARK, 0, NULL);
	unsigned n = pel_worker_count(rt);
	struct pel_producer *p[16];

	(void)state;
	/* works with every user producer handle taken: it has a slot of its own */
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(pel_producer_open(rt, &p[i]), 0);
	assert_int_equal(pel__run_on_each_worker(rt, on_each, NULL), 0);
	assert_int_equal(atomic_load(&each_mask), (1u << n) - 1);
	/* a park-ok poller does not keep its worker awake */
	for (unsigned w = 0; w < n; w++)
		assert_true(WAIT_UNTIL(atomic_load(&rt->workers[w]->parked) == 1, 5000));
	atomic_store(&counter, 0);
	assert_int_equal(pel_submit(p[3], 0, count_task, NULL), 0);
	assert_true(WAIT_UNTIL(atomic_load(&counter) == 1, 5000));
	assert_true(atomic_load(&parkok_calls) > 0);
	destroy_and_close(rt);
}

/* ---- shutdown ---- */

struct destroyer {
	pthread_t thread;
	struct pel_runtime *rt;
	_Atomic int done;
};

static void *
destroy_thread(void *arg)
{
	struct destroyer *d = arg;

	pel_destroy(d->rt);
	atomic_store(&d->done, 1);
	return NULL;
}

static void
test_submit_during_destroy(void **state)
{
	struct pel_runtime *rt = start("0", PEL_IDLE_PARK, 0, NULL);
	struct pel_producer *p, *late;
	struct gate g = { 0, 0 };
	struct destroyer d = { .rt = rt };
	unsigned accepted = 0;
	int err;

	(void)state;
	reset_log();
	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pel_submit(p, 0, gate_task, &g), 0);
	assert_true(WAIT_UNTIL(atomic_load(&g.entered), 5000));
	assert_int_equal(pthread_create(&d.thread, NULL, destroy_thread, &d), 0);
	/* submits succeed until destroy has begun, then -ESHUTDOWN; destroy waits on the gate */
	for (;;) {
		err = pel_submit(p, 0, record_task, (void *)(uintptr_t)accepted);
		if (err == -ESHUTDOWN)
			break;
		assert_true(err == 0 || err == -EAGAIN);
		if (err == 0)
			accepted++;
		else
			usleep(10);
	}
	assert_error_contains("shutting down");
	assert_int_equal(pel_producer_open(rt, &late), -ESHUTDOWN);
	assert_int_equal(atomic_load(&d.done), 0);
	atomic_store(&g.open, 1);
	pthread_join(d.thread, NULL);
	/* destroy has returned: the open handle still answers, from live memory, until closed */
	assert_int_equal(pel_submit(p, 0, record_task, NULL), -ESHUTDOWN);
	assert_int_equal(pel_submit_burst(p, 0, &(struct pel_task){ record_task, NULL }, 1), 0);
	pel_producer_close(p);
	/* every accepted task ran exactly once, in order; the refused one did not */
	assert_int_equal(atomic_load(&olog.n), accepted);
	for (unsigned i = 0; i < accepted && i < LOG_MAX; i++)
		assert_int_equal(olog.seq[i], i);
}

/* Tasks that keep spawning while destroy runs: all of them run before it returns. */
static _Atomic unsigned chain_done;

static void
chain_task(void *arg)
{
	uintptr_t left = (uintptr_t)arg;
	int self = pel_worker_self();

	if (left == 0) {
		atomic_fetch_add(&chain_done, 1);
		return;
	}
	usleep(left % 7 == 0 ? 100 : 0);
	while (pel_spawn((unsigned)(self + 1) % 2 < (unsigned)online_cpus() ?
				 (unsigned)(self + 1) % 2 : 0,
			 chain_task, (void *)(left - 1)) == -EAGAIN)
		sched_yield();
}

static void
test_spawns_during_destroy_all_run(void **state)
{
	struct pel_runtime *rt = start(two_cpus(), PEL_IDLE_PARK, 0, NULL);
	struct pel_producer *p;

	(void)state;
	atomic_store(&chain_done, 0);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	for (uintptr_t i = 0; i < 50; i++)
		assert_int_equal(pel_submit(p, i % pel_worker_count(rt), chain_task,
					    (void *)(200 + i)), 0);
	destroy_and_close(rt);	/* at once: the chains are mostly still to run */
	assert_int_equal(atomic_load(&chain_done), 50);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_destroy_and_identity),
		cmocka_unit_test(test_submit_errors),
		cmocka_unit_test(test_full_ring_keeps_content),
		cmocka_unit_test(test_burst_order),
		cmocka_unit_test(test_producer_handles_exhausted),
		cmocka_unit_test(test_spawn_chain_and_drain),
		cmocka_unit_test(test_calls_refused_inside_tasks),
		cmocka_unit_test(test_drain_timeout),
		cmocka_unit_test(test_park_wakes_on_submit),
		cmocka_unit_test(test_backoff_parks_then_wakes),
		cmocka_unit_test(test_park_wake_with_fence_fallback),
		cmocka_unit_test(test_parking_makes_no_membarrier_call),
		cmocka_unit_test(test_spin_worker_and_busy_claims),
		cmocka_unit_test(test_share_cpus_allows_oversubscription),
		cmocka_unit_test(test_isolation_warning_once),
		cmocka_unit_test(test_smt_sibling_warning),
		cmocka_unit_test(test_default_stderr_log),
		cmocka_unit_test(test_pollers),
		cmocka_unit_test(test_run_on_each_worker),
		cmocka_unit_test(test_submit_during_destroy),
		cmocka_unit_test(test_spawns_during_destroy_all_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
