/* SPDX-License-Identifier: MIT */
/*
 * tests/test_config.c - CPU-list parsing, topology reads and pel__config_resolve() against sysfs
 * fixture trees, and every config error pel_create() reports. No worker is started here.
 */
#include "helpers.h"
#include "internal.h"

static void
test_parse_rejects(void **state)
{
	static const struct {
		const char *list;
		const char *why;
	} bad[] = {
		{ "", "is empty" },
		{ "   \n", "is empty" },
		{ "abc", "malformed" },
		{ "1-", "has no end" },
		{ "-1", "malformed" },
		{ "3-1", "reversed" },
		{ "0,0", "twice" },
		{ "0-3,2", "twice" },
		{ "1,,2", "malformed" },
		{ "1,", "ends with ','" },
		{ "1;2", "expected ','" },
		{ "4096", "beyond the largest" },
		{ "0-99999999999999999999", "beyond the largest" },
		{ "2 3", "expected ','" },
	};
	cpu_set_t s;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = pel__topo_parse_cpus(bad[i].list, &s);

		if (err != -EINVAL)
			fail_msg("\"%s\" gave %d, expected -EINVAL", bad[i].list, err);
		assert_error_contains(bad[i].why);
	}
	assert_int_equal(pel__topo_parse_cpus(NULL, &s), -EINVAL);
	assert_error_contains("NULL");
}

static void
test_parse_accepts_and_formats(void **state)
{
	static const struct {
		const char *list;
		int count;
		const char *formatted;
	} good[] = {
		{ "0", 1, "0" },
		{ "2-5,8", 5, "2-5,8" },
		{ " 3 \n", 1, "3" },
		{ "7,1,3-4", 4, "1,3-4,7" },
		{ "0-1023", 1024, "0-1023" },
		{ "007", 1, "7" },
	};
	char buf[256];
	cpu_set_t s, again;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(pel__topo_parse_cpus(good[i].list, &s), 0);
		assert_int_equal(CPU_COUNT(&s), good[i].count);
		assert_string_equal(pel__topo_format_cpus(&s, buf, sizeof(buf)), good[i].formatted);
		assert_int_equal(pel__topo_parse_cpus(buf, &again), 0);
		assert_true(CPU_EQUAL(&s, &again));
	}
	CPU_ZERO(&s);
	assert_string_equal(pel__topo_format_cpus(&s, buf, sizeof(buf)), "none");
	/* every other CPU: a long list is cut with "..." rather than overflowing */
	for (int c = 0; c < 1024; c += 2)
		CPU_SET(c, &s);
	pel__topo_format_cpus(&s, buf, 32);
	assert_int_equal(strlen(buf), 31);
	assert_string_equal(buf + 28, "...");
}

static void
test_read_sysfs(void **state)
{
	cpu_set_t s;

	(void)state;
	assert_int_equal(pel__topo_read_cpus(FIXTURE("sysfs-8cpu-iso"),
					     "sys/devices/system/cpu/isolated", &s), 0);
	assert_int_equal(CPU_COUNT(&s), 6);
	assert_false(CPU_ISSET(1, &s));
	/* an empty "isolated" file is an empty set, not an error */
	assert_int_equal(pel__topo_read_cpus(FIXTURE("sysfs-2cpu"),
					     "sys/devices/system/cpu/isolated", &s), 0);
	assert_int_equal(CPU_COUNT(&s), 0);
	assert_int_equal(pel__topo_read_cpus(FIXTURE("sysfs-noisofile"),
					     "sys/devices/system/cpu/isolated", &s), -ENOENT);
	assert_error_contains("cannot open");
	assert_int_equal(pel__topo_read_cpus(FIXTURE("sysfs-bad"),
					     "sys/devices/system/cpu/online", &s), -EINVAL);
	assert_error_contains("not a CPU list");
	/* the real host */
	assert_int_equal(pel__topo_read_cpus("", "sys/devices/system/cpu/online", &s), 0);
	assert_int_equal(CPU_COUNT(&s), online_cpus());
}

static int
resolve(const char *root, const char *cpus, enum pel_idle idle, unsigned flags,
	struct pel__plan *pl)
{
	struct pel_config c;

	pel_config_default(&c);
	c.sysfs_root = root;
	c.cpus = cpus;
	c.idle = idle;
	c.flags = flags;
	return pel__config_resolve(&c, pl);
}

static void
test_default_cpu_choice(void **state)
{
	static struct pel__plan pl;

	(void)state;
	/* isolated CPUs win */
	assert_int_equal(resolve(FIXTURE("sysfs-8cpu-iso"), NULL, PEL_IDLE_BACKOFF, 0, &pl), 0);
	assert_string_equal(pl.cpus_text, "2-7");
	assert_int_equal(pl.nworkers, 6);
	assert_int_equal(pl.cpu[0], 2);
	assert_int_equal(pl.cpu[5], 7);
	assert_int_equal(CPU_COUNT(&pl.not_isolated), 0);
	/* none isolated: every online CPU but 0 */
	assert_int_equal(resolve(FIXTURE("sysfs-4cpu"), NULL, PEL_IDLE_BACKOFF, 0, &pl), 0);
	assert_string_equal(pl.cpus_text, "1-3");
	assert_int_equal(CPU_COUNT(&pl.not_isolated), 3);
	/* no isolated file: the same */
	assert_int_equal(resolve(FIXTURE("sysfs-noisofile"), NULL, PEL_IDLE_PARK, 0, &pl), 0);
	assert_string_equal(pl.cpus_text, "1-3");
	/* a single CPU: it is used, at least one worker */
	assert_int_equal(resolve(FIXTURE("sysfs-1cpu"), NULL, PEL_IDLE_PARK, 0, &pl), 0);
	assert_string_equal(pl.cpus_text, "0");
	assert_int_equal(pl.nworkers, 1);
	/* defaults filled in */
	assert_int_equal(pl.cfg.ring_slots, 1024);
	assert_int_equal(pl.cfg.max_producers, 16);
	assert_int_equal(pl.cfg.idle_park_ns, 200 * PEL_NS_PER_US);
	assert_int_equal(pl.rt_runtime_us, 950000);
}

/* The worst case for the formatted worker list: every other CPU of CPU_SETSIZE, all online. */
static void
test_long_sparse_cpu_list(void **state)
{
	static struct pel__plan pl;
	static char list[8192];
	cpu_set_t again;
	size_t off = 0;

	(void)state;
	for (int c = 0; c < CPU_SETSIZE; c += 2)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%d", off ? "," : "", c);
	assert_int_equal(resolve(FIXTURE("sysfs-1024cpu"), list, PEL_IDLE_PARK, 0, &pl), 0);
	assert_int_equal(pl.nworkers, CPU_SETSIZE / 2);
	assert_int_equal(pel__topo_parse_cpus(pl.cpus_text, &again), 0);
	assert_true(CPU_EQUAL(&again, &pl.workers));
}

/* Rings are written through at create: a config whose rings RAM cannot hold is refused. */
static void
test_ring_memory_budget(void **state)
{
	static struct pel__plan pl;
	struct pel_config c;

	(void)state;
	pel_config_default(&c);
	c.sysfs_root = FIXTURE("sysfs-1024cpu");
	c.cpus = "0-1023";
	c.idle = PEL_IDLE_PARK;
	c.ring_slots = 1u << 24;	/* 1024 x 1041 rings of 256 MiB: no host holds that */
	assert_int_equal(pel__config_resolve(&c, &pl), -EINVAL);
	assert_error_contains("rings would take ");
	assert_error_contains("GiB (1024 workers x 1041 rings of 16777216 slots), over half of");
	assert_error_contains("lower ring_slots or max_producers");
	c.cpus = "0-63";
	c.ring_slots = 1024;	/* 64 x 81 rings of 16 KiB: 85 MiB */
	assert_int_equal(pel__config_resolve(&c, &pl), 0);
}

static void
test_host_errors(void **state)
{
	static struct pel__plan pl;

	(void)state;
	assert_int_equal(resolve(FIXTURE("sysfs-4cpu"), "2-5", PEL_IDLE_PARK, 0, &pl), -EINVAL);
	assert_error_contains("cpu 4 is not online (online: 0-3)");
	assert_int_equal(resolve(FIXTURE("sysfs-8cpu-iso"), "1-3", PEL_IDLE_PARK,
				 PEL_F_REQUIRE_ISOLATED, &pl), -EINVAL);
	assert_error_contains("cpu 1 is not isolated (isolated: 2-7)");
	assert_int_equal(resolve(FIXTURE("sysfs-8cpu-iso"), "2-3", PEL_IDLE_PARK,
				 PEL_F_REQUIRE_ISOLATED, &pl), 0);
	assert_int_equal(resolve(FIXTURE("sysfs-4cpu"), NULL, PEL_IDLE_PARK,
				 PEL_F_REQUIRE_ISOLATED, &pl), -EINVAL);
	assert_error_contains("is not isolated (isolated: none)");
	assert_int_equal(resolve(FIXTURE("sysfs-bad"), NULL, PEL_IDLE_PARK, 0, &pl), -EINVAL);
	assert_error_contains("cannot learn the online CPUs");
	assert_int_equal(resolve("/nonexistent-pel-root", NULL, PEL_IDLE_PARK, 0, &pl), -ENOENT);
	assert_error_contains("/nonexistent-pel-root/sys/devices/system/cpu/online");
}

static void
test_busy_oversubscription(void **state)
{
	static struct pel__plan pl;

	(void)state;
	/* SPIN on every CPU leaves nothing for the producer threads */
	assert_int_equal(resolve(FIXTURE("sysfs-4cpu"), "0-3", PEL_IDLE_SPIN, 0, &pl), -EINVAL);
	assert_error_contains("4 busy-polling workers");
	assert_error_contains("PEL_F_SHARE_CPUS");
	assert_int_equal(resolve(FIXTURE("sysfs-4cpu"), "0-3", PEL_IDLE_SPIN, PEL_F_SHARE_CPUS, &pl),
			 0);
	assert_int_equal(resolve(FIXTURE("sysfs-4cpu"), "1-3", PEL_IDLE_SPIN, 0, &pl), 0);
	assert_true(pl.busy);
	/* BACKOFF and PARK sleep when idle: not busy */
	assert_int_equal(resolve(FIXTURE("sysfs-4cpu"), "0-3", PEL_IDLE_BACKOFF, 0, &pl), 0);
	assert_false(pl.busy);
	assert_true(pl.poll_some);
	assert_int_equal(resolve(FIXTURE("sysfs-4cpu"), "0-3", PEL_IDLE_PARK, 0, &pl), 0);
	assert_false(pl.poll_some);
}

static void
test_affinity_limits(void **state)
{
	static struct pel__plan pl;
	cpu_set_t only0;
	char want[64];

	(void)state;
	CPU_ZERO(&only0);
	CPU_SET(0, &only0);
	pel__set_allowed_cpus_override(&only0);
	assert_int_equal(resolve(FIXTURE("sysfs-4cpu"), "1", PEL_IDLE_PARK, 0, &pl), -EINVAL);
	assert_error_contains("cpu 1 is outside the CPUs this process's cgroup allows (cpuset: 0)");
	/* default choice stays inside the affinity */
	assert_int_equal(resolve(FIXTURE("sysfs-4cpu"), NULL, PEL_IDLE_PARK, 0, &pl), 0);
	assert_string_equal(pl.cpus_text, "0");
	/* SPIN on the only allowed CPU is oversubscription */
	assert_int_equal(resolve(FIXTURE("sysfs-4cpu"), "0", PEL_IDLE_SPIN, 0, &pl), -EINVAL);
	snprintf(want, sizeof(want), "process may use (0)");
	assert_error_contains(want);
	pel__set_allowed_cpus_override(NULL);
	/* the calling thread's own mask does not matter: pin it to CPU 0, then resolve CPU 1 */
	if (online_cpus() >= 2) {
		cpu_set_t mine, saved;

		sched_getaffinity(0, sizeof(saved), &saved);
		sched_setaffinity(0, sizeof(only0), &only0);
		assert_int_equal(resolve("", "1", PEL_IDLE_PARK, 0, &pl), 0);
		sched_getaffinity(0, sizeof(mine), &mine);
		assert_true(CPU_EQUAL(&mine, &only0));
		sched_setaffinity(0, sizeof(saved), &saved);
	}
	/* the real cgroup cpuset is read: it holds at least this host's CPU 0 */
	assert_int_equal(pel__allowed_cpus(&only0) == 0 ? CPU_COUNT(&only0) > 0 : 1, 1);
}

static void
test_config_field_errors(void **state)
{
	struct pel_runtime *rt = (struct pel_runtime *)0x1;
	struct pel_config c;
	static const struct {
		unsigned slots;
		const char *why;
	} slots[] = {
		{ 3, "ring_slots 3 is not a power of two" },
		{ 1000, "not a power of two" },
		{ 1u << 31, "ring_slots 2147483648 is beyond the largest ring" },
		{ 1u << 25, "beyond the largest ring" },
	};

	(void)state;
	assert_int_equal(pel_create(NULL, &rt), -EINVAL);
	assert_null(rt);
	assert_error_contains("config is NULL");
	pel_config_default(&c);
	assert_int_equal(c.idle, PEL_IDLE_BACKOFF);
	assert_null(c.cpus);
	assert_int_equal(pel_create(&c, NULL), -EINVAL);
	assert_error_contains("out pointer is NULL");
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		pel_config_default(&c);
		c.ring_slots = slots[i].slots;
		rt = (struct pel_runtime *)0x1;
		assert_int_equal(pel_create(&c, &rt), -EINVAL);
		assert_null(rt);
		assert_error_contains(slots[i].why);
	}
	pel_config_default(&c);
	c.rt_priority = 100;
	assert_int_equal(pel_create(&c, &rt), -EINVAL);
	assert_error_contains("rt_priority 100 is outside 0..99");
	c.rt_priority = -1;
	assert_int_equal(pel_create(&c, &rt), -EINVAL);
	assert_error_contains("rt_priority -1");
	pel_config_default(&c);
	c.idle = (enum pel_idle)7;
	assert_int_equal(pel_create(&c, &rt), -EINVAL);
	assert_error_contains("idle 7 is not one of");
	pel_config_default(&c);
	c.flags = 1u << 20;
	assert_int_equal(pel_create(&c, &rt), -EINVAL);
	assert_error_contains("bits this version does not know");
	pel_config_default(&c);
	c.max_producers = 5000;
	assert_int_equal(pel_create(&c, &rt), -EINVAL);
	assert_error_contains("max_producers 5000 is beyond the limit");
	pel_config_default(&c);
	c.idle_park_ns = 61 * PEL_NS_PER_S;
	assert_int_equal(pel_create(&c, &rt), -EINVAL);
	assert_error_contains("over a minute");
	pel_config_default(&c);
	c.reserved[3] = 1;
	assert_int_equal(pel_create(&c, &rt), -EINVAL);
	assert_error_contains("reserved[3] is not zero");
}

static void
test_cpu_list_errors_through_create(void **state)
{
	static const struct {
		const char *cpus;
		const char *why;
	} bad[] = {
		{ "", "is empty" },
		{ "abc", "malformed" },
		{ "1-", "has no end" },
		{ "3-1", "reversed" },
		{ "0,0", "names cpu 0 twice" },
		{ "1000", "is not online" },
	};
	struct pel_runtime *rt;
	struct pel_config c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pel_config_default(&c);
		c.cpus = bad[i].cpus;
		rt = (struct pel_runtime *)0x1;
		assert_int_equal(pel_create(&c, &rt), -EINVAL);
		assert_null(rt);
		assert_error_contains(bad[i].why);
	}
}

static void
test_strerror(void **state)
{
	(void)state;
	assert_string_equal(pel_strerror(-EAGAIN), "ring full, nothing queued");
	assert_string_equal(pel_strerror(-ESHUTDOWN), "runtime is shutting down");
	assert_string_equal(pel_strerror(0), "success");
	assert_string_equal(pel_strerror(-12345), "unknown error");
	assert_string_equal(pel_strerror(5), "not an error code");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_accepts_and_formats),
		cmocka_unit_test(test_read_sysfs),
		cmocka_unit_test(test_default_cpu_choice),
		cmocka_unit_test(test_long_sparse_cpu_list),
		cmocka_unit_test(test_ring_memory_budget),
		cmocka_unit_test(test_host_errors),
		cmocka_unit_test(test_busy_oversubscription),
		cmocka_unit_test(test_affinity_limits),
		cmocka_unit_test(test_config_field_errors),
		cmocka_unit_test(test_cpu_list_errors_through_create),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
