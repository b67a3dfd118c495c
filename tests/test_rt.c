/* SPDX-License-Identifier: MIT */
/*
 * tests/test_rt.c - real-time set-up: SCHED_FIFO workers, its refusal, the RT-throttling warning,
 * PEL_F_MLOCK and PEL_F_HUGEPAGES with their fallbacks and refusals. Refusals are provoked in a
 * forked child that drops root and lowers its rlimits.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "helpers.h"
#include "destroy_close.h"

static _Atomic int seen_policy = -1, seen_prio = -1;

static void
policy_task(void *arg)
{
	struct sched_param sp;
	int policy;

	(void)arg;
	pthread_getschedparam(pthread_self(), &policy, &sp);
	atomic_store(&seen_policy, policy);
	atomic_store(&seen_prio, sp.sched_priority);
}

static int
run_one(struct pel_runtime *rt, pel_task_fn fn)
{
	struct pel_producer *p;
	int err = pel_producer_open(rt, &p);

	if (!err)
		err = pel_submit(p, 0, fn, NULL);
	if (!err)
		err = pel_drain(rt, 5 * PEL_NS_PER_S);
	return err;
}

static void
test_sched_fifo_worker(void **state)
{
	struct captured log;
	struct pel_runtime *rt;
	struct pel_config c;
	struct sched_param sp = { .sched_priority = 1 };
	int err;

	(void)state;
	/* can this process use SCHED_FIFO at all? */
	err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	if (err) {
		print_message("skip: SCHED_FIFO refused to this process (%s)\n", strerror(err));
		skip();
	}
	sp.sched_priority = 0;
	pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);

	quiet_config(&c, "0", &log);
	c.rt_priority = 10;
	c.sysfs_root = FIXTURE("sysfs-iso1");	/* sched_rt_runtime_us 950000 there */
	assert_int_equal(pel_create(&c, &rt), 0);
	assert_int_equal(run_one(rt, policy_task), 0);
	assert_int_equal(atomic_load(&seen_policy), SCHED_FIFO);
	assert_int_equal(atomic_load(&seen_prio), 10);
	destroy_and_close(rt);
	/* RT throttling on: one warning saying what it does and the fix */
	assert_int_equal(log.warnings, 1);
	assert_non_null(strstr(log.last, "sched_rt_runtime_us is 950000, not -1"));
	assert_non_null(strstr(log.last, "up to 50 ms"));
	assert_non_null(strstr(log.last, "sysctl -w kernel.sched_rt_runtime_us=-1"));

	/* throttling off: no warning */
	quiet_config(&c, "0", &log);
	c.rt_priority = 10;
	c.sysfs_root = FIXTURE("sysfs-iso1-rtok");
	assert_int_equal(pel_create(&c, &rt), 0);
	destroy_and_close(rt);
	assert_int_equal(log.warnings, 0);

	/* rt_priority 0 leaves the policy alone */
	quiet_config(&c, "0", NULL);
	assert_int_equal(pel_create(&c, &rt), 0);
	assert_int_equal(run_one(rt, policy_task), 0);
	assert_int_equal(atomic_load(&seen_policy), SCHED_OTHER);
	destroy_and_close(rt);
}

/* In a child: become an unprivileged user with the given rlimit at 0, then try to create. */
static int
child_create(int resource, struct pel_config *c, const char *want_text, int want_err)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		struct rlimit rl = { 0, 0 };
		struct pel_runtime *rt = (struct pel_runtime *)0x1;
		int err;

		if (setrlimit(resource, &rl))
			_exit(10);
		if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
			_exit(11);
		err = pel_create(c, &rt);
		if (err != want_err) {
			fprintf(stderr, "child: pel_create gave %d (%s), expected %d\n", err,
				pel_last_error(), want_err);
			_exit(12);
		}
		if (rt != NULL)
			_exit(13);
		if (!strstr(pel_last_error(), want_text)) {
			fprintf(stderr, "child: \"%s\" lacks \"%s\"\n", pel_last_error(), want_text);
			_exit(14);
		}
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
test_sched_fifo_refused(void **state)
{
	struct pel_config c;

	(void)state;
	quiet_config(&c, "0", NULL);
	c.rt_priority = 20;
	assert_int_equal(child_create(RLIMIT_RTPRIO, &c, "SCHED_FIFO priority 20 refused for "
				      "worker 0 (cpu 0)", -EPERM), 0);
}

static void
test_mlock(void **state)
{
	struct pel_runtime *rt;
	struct pel_config c;

	(void)state;
	quiet_config(&c, "0", NULL);
	c.flags = PEL_F_MLOCK;
	if (geteuid() == 0) {
		assert_int_equal(pel_create(&c, &rt), 0);
		assert_int_equal(run_one(rt, policy_task), 0);
		destroy_and_close(rt);
	}
#if PEL_HAS_ASAN
	/* ASan intercepts mlock() as a no-op: the refusal cannot be provoked here */
	print_message("ASan build: mlock() is a no-op under ASan, refusal not checked here\n");
	return;
#endif
	/* no memlock allowance: refused with the limit and the fix named */
	assert_int_equal(child_create(RLIMIT_MEMLOCK, &c, "RLIMIT_MEMLOCK is 0 bytes", -EPERM), 0);
}

/* Pages resident among the top @p from .. @p to bytes of the calling thread's stack, and pages. */
static _Atomic int stack_res_near, stack_res_far;

static int
stack_resident(size_t from, size_t to)
{
	unsigned char vec[512];
	pthread_attr_t a;
	size_t size, pg = (size_t)sysconf(_SC_PAGESIZE);
	void *addr;
	char *top;
	int n = 0;

	if (pthread_getattr_np(pthread_self(), &a))
		return -1;
	pthread_attr_getstack(&a, &addr, &size);
	pthread_attr_destroy(&a);
	top = (char *)addr + size;
	if ((to - from) / pg > sizeof(vec) || mincore(top - to, to - from, vec))
		return -1;
	for (size_t i = 0; i < (to - from) / pg; i++)
		n += vec[i] & 1;
	return n;
}

static void
stack_task(void *arg)
{
	(void)arg;
	atomic_store(&stack_res_near, stack_resident(0, 64 * 1024));
	atomic_store(&stack_res_far, stack_resident(64 * 1024, 256 * 1024));
}

/* A worker's stack is touched at start (its top 64 KiB), and locked under PEL_F_MLOCK (256 KiB). */
static void
test_worker_stack_ready(void **state)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	struct pel_runtime *rt;
	struct pel_config c;

	(void)state;
	quiet_config(&c, "0", NULL);
	assert_int_equal(pel_create(&c, &rt), 0);
	assert_int_equal(run_one(rt, stack_task), 0);
	assert_int_equal(atomic_load(&stack_res_near), (int)(64 * 1024 / pg));
	destroy_and_close(rt);
	if (geteuid() != 0 || PEL_HAS_ASAN || PEL_HAS_TSAN) {
		print_message("skip: the locked part needs mlock() (root, no sanitizer)\n");
		return;
	}
	c.flags = PEL_F_MLOCK;
	assert_int_equal(pel_create(&c, &rt), 0);
	assert_int_equal(run_one(rt, stack_task), 0);
	assert_int_equal(atomic_load(&stack_res_near), (int)(64 * 1024 / pg));
	assert_int_equal(atomic_load(&stack_res_far), (int)(192 * 1024 / pg));
	destroy_and_close(rt);
}

static void
test_hugepages_or_fallback(void **state)
{
	struct captured log;
	struct pel_runtime *rt;
	struct pel_config c;
	long free_huge = read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");

	(void)state;
	quiet_config(&c, "0", &log);
	c.flags = PEL_F_HUGEPAGES;
	assert_int_equal(pel_create(&c, &rt), 0);
	assert_int_equal(run_one(rt, policy_task), 0);
	destroy_and_close(rt);
	if (free_huge > 0) {
		print_message("%ld free 2 MiB hugepages: rings on hugepages\n", free_huge);
		assert_int_equal(log.warnings, 0);
	} else {
		print_message("no free 2 MiB hugepage: the fallback must be logged\n");
		assert_int_equal(log.warnings, 1);
		assert_non_null(strstr(log.last, "no 2 MiB hugepage"));
		assert_non_null(strstr(log.last, "nr_hugepages"));
	}
}

static int
write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -1;
	ok = fprintf(f, "%ld\n", v) > 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* As root, reserve hugepages for the test and give them back: the hugepage path itself. */
static void
test_hugepages_reserved(void **state)
{
	const char *nr = "/proc/sys/vm/nr_hugepages";
	const char *freep = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages";
	long before = read_long(nr);
	struct captured log;
	struct pel_runtime *rt;
	struct pel_config c;

	(void)state;
	if (geteuid() != 0 || before < 0 || write_long(nr, before + 4) || read_long(freep) < 1) {
		if (before >= 0 && geteuid() == 0)
			write_long(nr, before);
		print_message("skip: cannot reserve 2 MiB hugepages here\n");
		skip();
	}
	quiet_config(&c, "0", &log);
	c.flags = PEL_F_HUGEPAGES | (geteuid() == 0 ? PEL_F_MLOCK : 0);
	long free_before = read_long(freep);

	assert_int_equal(pel_create(&c, &rt), 0);
	/* the worker's rings took a hugepage */
	assert_true(read_long(freep) < free_before);
	assert_int_equal(run_one(rt, policy_task), 0);
	destroy_and_close(rt);
	assert_int_equal(log.warnings, 0);
	assert_int_equal(read_long(freep), free_before);
	assert_int_equal(write_long(nr, before), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sched_fifo_worker),
		cmocka_unit_test(test_sched_fifo_refused),
		cmocka_unit_test(test_mlock),
		cmocka_unit_test(test_worker_stack_ready),
		cmocka_unit_test(test_hugepages_or_fallback),
		cmocka_unit_test(test_hugepages_reserved),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
