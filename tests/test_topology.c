/* SPDX-License-Identifier: MIT */
/*
 * tests/test_topology.c - pel__topo_load() against sysfs trees of real layouts (tests/fixtures/:
 * a 2-socket 2x16-core SMT Intel host, a 1-socket 8-core host, a 4-node AMD EPYC), its error
 * paths on broken trees written here, the SMT-pair finder, and the kernel command line parsers.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "helpers.h"
#include "internal.h"

static struct pel__topo *
topo_new(void)
{
	struct pel__topo *t = malloc(sizeof(*t));

	assert_non_null(t);
	return t;
}

static const char *
fmt(const cpu_set_t *s)
{
	static char buf[512];

	return pel__topo_format_cpus(s, buf, sizeof(buf));
}

#define assert_cpus(set, text) assert_string_equal(fmt(set), (text))

/* ---- broken trees, written into a temporary directory ---- */

static char tmp_root[64];

static void
put(const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp_root, rel);
	for (char *p = path + strlen(tmp_root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", text);
	fclose(f);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
tree_setup(void **state)
{
	(void)state;
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/pel-topo-XXXXXX");
	if (!mkdtemp(tmp_root))
		return -1;
	return 0;
}

static int
tree_teardown(void **state)
{
	(void)state;
	nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* A fresh tree holding a 2-CPU host with complete, well-formed files. */
static void
good_tree(void)
{
	tree_teardown(NULL);
	mkdir(tmp_root, 0755);
	put("sys/devices/system/cpu/online", "0-1");
	for (int c = 0; c < 2; c++) {
		char rel[128];

		snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/topology/core_cpus_list", c);
		put(rel, "0-1");
		snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/topology/core_id", c);
		put(rel, "0");
		snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/topology/physical_package_id",
			 c);
		put(rel, "0");
		snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/cache/index0/level", c);
		put(rel, "1");
		snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/cache/index0/type", c);
		put(rel, "Data");
		snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/cache/index0/shared_cpu_list",
			 c);
		put(rel, "0-1");
	}
	put("sys/devices/system/node/node0/cpulist", "0-1");
}

static void
test_load_errors(void **state)
{
	static const struct {
		const char *rel, *text, *why;
	} bad[] = {
		{ "sys/devices/system/cpu/online", "", "no CPU is online" },
		{ "sys/devices/system/cpu/online", "0-x", "cpu/online holds \"0-x\", not a CPU list" },
		{ "sys/devices/system/cpu/isolated", "1-", "cpu/isolated holds \"1-\"" },
		{ "sys/devices/system/cpu/nohz_full", "junk", "cpu/nohz_full holds \"junk\"" },
		{ "sys/devices/system/cpu/cpu1/topology/core_cpus_list", "0,,1",
		  "cpu1/topology/core_cpus_list holds \"0,,1\", not a CPU list" },
		{ "sys/devices/system/cpu/cpu0/topology/core_id", "abc",
		  "cpu0/topology/core_id holds \"abc\", not a number" },
		{ "sys/devices/system/cpu/cpu1/topology/physical_package_id", "1x",
		  "cpu1/topology/physical_package_id holds \"1x\"" },
		{ "sys/devices/system/cpu/cpu0/cache/index0/level", "L1",
		  "cpu0/cache/index0/level holds \"L1\", not a number" },
		{ "sys/devices/system/cpu/cpu0/cache/index0/type", "Mixed",
		  "cpu0/cache/index0/type holds \"Mixed\", not Data, Instruction or Unified" },
		{ "sys/devices/system/cpu/cpu1/cache/index0/shared_cpu_list", "3-1",
		  "cpu1/cache/index0/shared_cpu_list holds \"3-1\"" },
		{ "sys/devices/system/node/node0/cpulist", "zero", "node0/cpulist holds \"zero\"" },
	};
	struct pel__topo *t = topo_new();

	(void)state;
	assert_int_equal(pel__topo_load("/nonexistent/pel", t), -ENOENT);
	assert_error_contains("cannot open /nonexistent/pel/sys/devices/system/cpu/online");
	assert_int_equal(pel__topo_load("", NULL), -EINVAL);
	assert_int_equal(pel__topo_load(FIXTURE("sysfs-bad"), t), -EINVAL);
	assert_error_contains("not a CPU list");

	good_tree();
	assert_int_equal(pel__topo_load(tmp_root, t), 0);
	assert_true(pel__topo_smt_siblings(t, 0, 1));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err;

		good_tree();
		put(bad[i].rel, bad[i].text);
		err = pel__topo_load(tmp_root, t);
		if (err != -EINVAL)
			fail_msg("%s = \"%s\" gave %d, expected -EINVAL", bad[i].rel, bad[i].text,
				 err);
		assert_error_contains(bad[i].why);
		assert_error_contains(tmp_root);
	}
	free(t);
}

static void
test_missing_files_degrade(void **state)
{
	struct pel__topo *t = topo_new();

	(void)state;
	/* only "online": every fact unknown, no error, all CPUs on node 0 */
	tree_teardown(NULL);
	mkdir(tmp_root, 0755);
	put("sys/devices/system/cpu/online", "0-3");
	assert_int_equal(pel__topo_load(tmp_root, t), 0);
	assert_false(t->has_isolated);
	assert_false(t->has_nohz_full);
	assert_false(t->has_nodes);
	assert_int_equal(t->nnodes, 1);
	assert_cpus(&t->node_cpus[0], "0-3");
	for (int c = 0; c < 4; c++) {
		assert_int_equal(pel__topo_cpu_node(t, c), 0);
		assert_int_equal(t->smt[c], -1);
		assert_int_equal(t->llc[c], -1);
		assert_int_equal(t->core[c], -1);
		assert_int_equal(t->package[c], -1);
	}
	assert_false(pel__topo_smt_siblings(t, 0, 1));
	assert_false(pel__topo_same_llc(t, 0, 1));
	assert_int_equal(pel__topo_cpu_node(t, 4), -1);

	/* the older thread_siblings_list is read when core_cpus_list is missing; an old kernel's
	 * "(null)" nohz_full is an empty set; a CPU in no node's list has no node */
	put("sys/devices/system/cpu/cpu2/topology/thread_siblings_list", "2-3");
	put("sys/devices/system/cpu/cpu3/topology/thread_siblings_list", "2-3");
	put("sys/devices/system/cpu/nohz_full", "(null)");
	put("sys/devices/system/node/node1/cpulist", "0-2");
	put("sys/devices/system/node/node1/distance", "10");
	put("sys/devices/system/node/possible", "1");
	assert_int_equal(pel__topo_load(tmp_root, t), 0);
	assert_true(pel__topo_smt_siblings(t, 2, 3));
	assert_false(pel__topo_smt_siblings(t, 3, 3));
	assert_true(t->has_nohz_full);
	assert_int_equal(CPU_COUNT(&t->nohz_full), 0);
	assert_true(t->has_nodes);
	assert_int_equal(t->nnodes, 2);
	assert_int_equal(CPU_COUNT(&t->node_cpus[0]), 0);
	assert_int_equal(pel__topo_cpu_node(t, 2), 1);
	assert_int_equal(pel__topo_cpu_node(t, 3), -1);

	/* the trees test_config.c uses, which hold only the CPU sets */
	assert_int_equal(pel__topo_load(FIXTURE("sysfs-noisofile"), t), 0);
	assert_false(t->has_isolated);
	assert_int_equal(pel__topo_load(FIXTURE("sysfs-8cpu-iso"), t), 0);
	assert_cpus(&t->isolated, "2-7");
	assert_int_equal(pel__topo_cpu_node(t, 7), 0);
	free(t);
}

/* ---- the fixture hosts ---- */

static void
test_2s32c_smt(void **state)
{
	struct pel__topo *t = topo_new();
	int pairs[16][2];

	(void)state;
	assert_int_equal(pel__topo_load(FIXTURE("sysfs-2s32c-smt"), t), 0);
	assert_cpus(&t->online, "0-63");
	assert_cpus(&t->isolated, "2-15,34-47");
	assert_cpus(&t->nohz_full, "2-15,34-47");
	assert_true(t->has_isolated && t->has_nohz_full && t->has_nodes);

	/* nodes are the sockets: thread 0 of socket 1 is 16-31, its thread 1 is 48-63 */
	assert_int_equal(t->nnodes, 2);
	assert_cpus(&t->node_cpus[0], "0-15,32-47");
	assert_cpus(&t->node_cpus[1], "16-31,48-63");
	assert_int_equal(pel__topo_cpu_node(t, 0), 0);
	assert_int_equal(pel__topo_cpu_node(t, 15), 0);
	assert_int_equal(pel__topo_cpu_node(t, 16), 1);
	assert_int_equal(pel__topo_cpu_node(t, 32), 0);
	assert_int_equal(pel__topo_cpu_node(t, 47), 0);
	assert_int_equal(pel__topo_cpu_node(t, 48), 1);
	assert_int_equal(pel__topo_cpu_node(t, 63), 1);
	assert_int_equal(pel__topo_cpu_node(t, 64), -1);
	assert_int_equal(pel__topo_cpu_node(t, -1), -1);

	/* hyper-threads are N and N+32 */
	assert_true(pel__topo_smt_siblings(t, 2, 34));
	assert_true(pel__topo_smt_siblings(t, 34, 2));
	assert_true(pel__topo_smt_siblings(t, 16, 48));
	assert_false(pel__topo_smt_siblings(t, 2, 3));
	assert_false(pel__topo_smt_siblings(t, 2, 18));
	assert_false(pel__topo_smt_siblings(t, 2, 2));
	assert_false(pel__topo_smt_siblings(t, 2, 99));
	assert_int_equal(t->smt[34], 2);
	assert_int_equal(t->core[34], 2);
	assert_int_equal(t->core[63], 15);
	assert_int_equal(t->package[34], 0);
	assert_int_equal(t->package[48], 1);

	/* one L3 per socket, named by its lowest CPU */
	for (int c = 0; c < 64; c++) {
		assert_int_equal(t->llc_level[c], 3);
		assert_int_equal(t->llc[c], t->package[c] ? 16 : 0);
	}
	assert_true(pel__topo_same_llc(t, 0, 47));
	assert_true(pel__topo_same_llc(t, 20, 63));
	assert_false(pel__topo_same_llc(t, 15, 16));

	/* busy workers on every isolated CPU: 14 cores, each with both threads busy */
	assert_int_equal(pel__topo_smt_pairs(t, &t->isolated, pairs, 16), 14);
	assert_int_equal(pairs[0][0], 2);
	assert_int_equal(pairs[0][1], 34);
	assert_int_equal(pairs[13][0], 15);
	assert_int_equal(pairs[13][1], 47);
	/* more pairs than room: the count is still the total, only the first are written */
	pairs[2][0] = -7;
	assert_int_equal(pel__topo_smt_pairs(t, &t->isolated, pairs, 2), 14);
	assert_int_equal(pairs[1][0], 3);
	assert_int_equal(pairs[2][0], -7);
	free(t);
}

static void
test_1s8c(void **state)
{
	struct pel__topo *t = topo_new();
	cpu_set_t all;

	(void)state;
	assert_int_equal(pel__topo_load(FIXTURE("sysfs-1s8c"), t), 0);
	assert_cpus(&t->online, "0-7");
	assert_true(t->has_isolated);
	assert_int_equal(CPU_COUNT(&t->isolated), 0);
	assert_int_equal(CPU_COUNT(&t->nohz_full), 0);
	assert_int_equal(t->nnodes, 1);
	assert_cpus(&t->node_cpus[0], "0-7");
	for (int c = 0; c < 8; c++) {
		assert_int_equal(pel__topo_cpu_node(t, c), 0);
		assert_int_equal(t->smt[c], c);
		assert_int_equal(t->core[c], c);
		assert_int_equal(t->package[c], 0);
		assert_int_equal(t->llc[c], 0);
		for (int d = 0; d < 8; d++)
			assert_false(pel__topo_smt_siblings(t, c, d));
	}
	all = t->online;
	assert_int_equal(pel__topo_smt_pairs(t, &all, NULL, 0), 0);
	free(t);
}

static void
test_epyc_4n(void **state)
{
	struct pel__topo *t = topo_new();
	static const char *const node_list[4] = {
		"0-7,32-39", "8-15,40-47", "16-23,48-55", "24-31,56-63",
	};
	int pairs[8][2];
	cpu_set_t w;

	(void)state;
	assert_int_equal(pel__topo_load(FIXTURE("sysfs-epyc-4n"), t), 0);
	assert_cpus(&t->online, "0-63");
	assert_cpus(&t->isolated, "4-31,36-63");
	assert_cpus(&t->nohz_full, "4-31,36-63");

	/* NPS4: four nodes of 8 cores, each with its SMT threads (N, N+32) */
	assert_int_equal(t->nnodes, 4);
	for (int k = 0; k < 4; k++)
		assert_cpus(&t->node_cpus[k], node_list[k]);
	assert_int_equal(pel__topo_cpu_node(t, 7), 0);
	assert_int_equal(pel__topo_cpu_node(t, 8), 1);
	assert_int_equal(pel__topo_cpu_node(t, 40), 1);
	assert_int_equal(pel__topo_cpu_node(t, 23), 2);
	assert_int_equal(pel__topo_cpu_node(t, 31), 3);
	assert_int_equal(pel__topo_cpu_node(t, 63), 3);

	assert_true(pel__topo_smt_siblings(t, 5, 37));
	assert_true(pel__topo_smt_siblings(t, 63, 31));
	assert_false(pel__topo_smt_siblings(t, 5, 6));
	assert_int_equal(t->package[63], 0);

	/* an L3 per 4-core CCX: 0-3,32-35 / 4-7,36-39 / ... */
	assert_int_equal(t->llc[0], 0);
	assert_int_equal(t->llc[35], 0);
	assert_int_equal(t->llc[37], 4);
	assert_int_equal(t->llc[63], 28);
	assert_int_equal(t->llc_level[63], 3);
	assert_true(pel__topo_same_llc(t, 4, 39));
	assert_false(pel__topo_same_llc(t, 3, 4));
	assert_false(pel__topo_same_llc(t, 7, 8));

	/* one CCX's thread 0 only: no pair; both threads: four */
	assert_int_equal(pel__topo_parse_cpus("4-7", &w), 0);
	assert_int_equal(pel__topo_smt_pairs(t, &w, pairs, 8), 0);
	assert_int_equal(pel__topo_parse_cpus("4-7,36-39", &w), 0);
	assert_int_equal(pel__topo_smt_pairs(t, &w, pairs, 8), 4);
	assert_int_equal(pairs[3][0], 7);
	assert_int_equal(pairs[3][1], 39);
	free(t);
}

/* Default CPU choice and each worker's node, as the runtime will place worker memory. */
static void
test_default_cpus_and_nodes(void **state)
{
	static const struct {
		const char *tree, *cpus;
		int per_node[4];
	} cases[] = {
		{ "sysfs-2s32c-smt", "2-15,34-47", { 28, 0, 0, 0 } },
		{ "sysfs-1s8c", "1-7", { 7, 0, 0, 0 } },
		{ "sysfs-epyc-4n", "4-31,36-63", { 8, 16, 16, 16 } },
	};
	static struct pel__plan pl;
	struct pel__topo *t = topo_new();

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pel_config c;
		int per_node[4] = { 0 };
		char root[PATH_MAX];

		snprintf(root, sizeof(root), "%s/%s", PEL_FIXTURE_DIR, cases[i].tree);
		assert_int_equal(pel__topo_load(root, t), 0);
		pel_config_default(&c);
		c.sysfs_root = root;
		c.idle = PEL_IDLE_PARK;
		assert_int_equal(pel__config_resolve(&c, &pl), 0);
		assert_string_equal(pl.cpus_text, cases[i].cpus);
		for (unsigned w = 0; w < pl.nworkers; w++) {
			int node = pel__topo_cpu_node(t, pl.cpu[w]);

			assert_in_range(node, 0, 3);
			per_node[node]++;
		}
		for (int k = 0; k < 4; k++)
			assert_int_equal(per_node[k], cases[i].per_node[k]);
	}
	free(t);
}

static void
test_host(void **state)
{
	struct pel__topo *t = topo_new();

	(void)state;
	assert_int_equal(pel__topo_load("", t), 0);
	assert_int_equal(CPU_COUNT(&t->online), online_cpus());
	assert_true(t->nnodes >= 1);
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &t->online))
			continue;
		assert_true(pel__topo_cpu_node(t, c) >= 0);
		assert_false(pel__topo_smt_siblings(t, c, c));
	}
	free(t);
}

/* ---- the kernel command line ---- */

static void
test_cmdline_param(void **state)
{
	static const char cmd[] = "BOOT_IMAGE=/vmlinuz ro isolcpusx=9 isolcpus=1 quiet "
				  "isolcpus=managed_irq,2-3 dyndbg=\"file a.c +p\" nohz_full "
				  "-- isolcpus=7 init-arg";
	char v[64];

	(void)state;
	assert_int_equal(pel__cmdline_param(cmd, "isolcpus", v, sizeof(v)), 0);
	assert_string_equal(v, "managed_irq,2-3");	/* the last before "--" */
	assert_int_equal(pel__cmdline_param(cmd, "dyndbg", v, sizeof(v)), 0);
	assert_string_equal(v, "file a.c +p");
	assert_int_equal(pel__cmdline_param(cmd, "nohz_full", v, sizeof(v)), 0);
	assert_string_equal(v, "");
	assert_int_equal(pel__cmdline_param(cmd, "quiet", v, sizeof(v)), 0);
	assert_int_equal(pel__cmdline_param(cmd, "rcu_nocbs", v, sizeof(v)), -ENOENT);
	assert_int_equal(pel__cmdline_param(cmd, "init-arg", v, sizeof(v)), -ENOENT);
	assert_int_equal(pel__cmdline_param(cmd, "isolcpus", v, 4), -ENAMETOOLONG);
	assert_int_equal(pel__cmdline_param("", "isolcpus", v, sizeof(v)), -ENOENT);
}

static void
test_cmdline_isolcpus(void **state)
{
	static const struct {
		const char *val, *cpus;
		unsigned flags;
	} good[] = {
		{ "2-7", "2-7", PEL__ISOL_DOMAIN },
		{ "managed_irq,domain,2-15,34-47", "2-15,34-47",
		  PEL__ISOL_MANAGED_IRQ | PEL__ISOL_DOMAIN },
		{ "nohz,3", "3", PEL__ISOL_NOHZ },
		{ "nohz,domain,managed_irq,1,4-5", "1,4-5",
		  PEL__ISOL_NOHZ | PEL__ISOL_DOMAIN | PEL__ISOL_MANAGED_IRQ },
	};
	static const struct {
		const char *val, *why;
	} bad[] = {
		{ "tick,2-3", "unknown flag \"tick\"" },
		{ "domain", "names no CPU" },
		{ "domain,", "is not one pel reads" },
		{ "domain,3-1", "is not one pel reads" },
		{ "", "is not one pel reads" },
	};
	cpu_set_t s;
	unsigned flags;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(pel__cmdline_isolcpus(good[i].val, &s, &flags), 0);
		assert_cpus(&s, good[i].cpus);
		assert_int_equal(flags, good[i].flags);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(pel__cmdline_isolcpus(bad[i].val, &s, &flags), -EINVAL);
		assert_error_contains(bad[i].why);
	}
}

static void
test_cmdline_fixtures(void **state)
{
	struct pel__cmdline c;

	(void)state;
	assert_int_equal(pel__topo_cmdline(FIXTURE("sysfs-2s32c-smt"), &c), 0);
	assert_true(c.has_isolcpus && c.has_nohz_full && c.has_rcu_nocbs && c.has_irqaffinity);
	assert_int_equal(c.isol_flags, PEL__ISOL_MANAGED_IRQ | PEL__ISOL_DOMAIN);
	assert_cpus(&c.isolcpus, "2-15,34-47");
	assert_cpus(&c.nohz_full, "2-15,34-47");
	assert_cpus(&c.rcu_nocbs, "2-15,34-47");
	assert_cpus(&c.irqaffinity, "0-1,16-33,48-63");

	assert_int_equal(pel__topo_cmdline(FIXTURE("sysfs-1s8c"), &c), 0);
	assert_false(c.has_isolcpus || c.has_nohz_full || c.has_rcu_nocbs || c.has_irqaffinity);

	assert_int_equal(pel__topo_cmdline(FIXTURE("sysfs-epyc-4n"), &c), 0);
	assert_int_equal(c.isol_flags, PEL__ISOL_DOMAIN);
	assert_cpus(&c.isolcpus, "4-31,36-63");
	assert_false(c.rcu_nocbs_all);

	assert_int_equal(pel__topo_cmdline(FIXTURE("sysfs-2cpu"), &c), -ENOENT);
	assert_error_contains("proc/cmdline");

	good_tree();
	put("proc/cmdline", "ro rcu_nocbs=all nohz_full=1");
	assert_int_equal(pel__topo_cmdline(tmp_root, &c), 0);
	assert_true(c.has_rcu_nocbs && c.rcu_nocbs_all);
	put("proc/cmdline", "ro nohz_full=1-");
	assert_int_equal(pel__topo_cmdline(tmp_root, &c), -EINVAL);
	assert_error_contains("nohz_full=1-");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_missing_files_degrade),
		cmocka_unit_test(test_2s32c_smt),
		cmocka_unit_test(test_1s8c),
		cmocka_unit_test(test_epyc_4n),
		cmocka_unit_test(test_default_cpus_and_nodes),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_cmdline_param),
		cmocka_unit_test(test_cmdline_isolcpus),
		cmocka_unit_test(test_cmdline_fixtures),
	};

	return cmocka_run_group_tests(tests, tree_setup, tree_teardown);
}
