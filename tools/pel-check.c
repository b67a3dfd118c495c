/* SPDX-License-Identifier: MIT */
/*
 * tools/pel-check.c - is this host ready to run pel workers on these CPUs? Reads what the kernel
 * exposes under /proc and /sys (or a copy of them under --root) and prints, item by item, ok /
 * warn / fail with how to fix it. docs/pel-check.md describes every check.
 *
 *	pel-check [--cpus LIST] [--root DIR] [--json]
 *
 * Exit 0: no check failed for these CPUs; 1: at least one did; 2: bad usage or unreadable root.
 * Links pel's static library for the CPU-list parser, pel_create()'s default CPU choice and the
 * topology reader (sched/internal.h).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"
#include "sysfs.h"

#define MEMLOCK_OK	(64ull << 20)	/* bytes: rings, pools and stacks of a few workers */
#define IDLE_MAX_US	10		/* deeper C-states than this wake too slowly */
#define LIST_MAX	8		/* items named in a detail before "and N more" */
#define PF_KTHREAD_FLAG	0x00200000u	/* /proc/PID/stat flags: a kernel thread */
#define KTHREAD_BUSY_S	1		/* CPU seconds since boot that make a kernel thread busy */

enum status { ST_OK, ST_WARN, ST_FAIL };
static const char *const status_name[] = { "ok", "warn", "fail" };

struct check {
	const char *id;
	enum status status;
	char detail[2048];
	char fix[2048];
};

#ifdef PEL_CHECK_TABLE_SIZE		/* tools/meson.build: too small, to test the overflow path */
#define NCHECKS PEL_CHECK_TABLE_SIZE
#else
#define NCHECKS 17
#endif
/* One slot more than NCHECKS: the "internal" entry, when a check did not fit (check_new()). */
static struct check checks[NCHECKS + 1];
static unsigned nchecks;
static struct check spill;		/* where a check that does not fit writes; never printed */
static unsigned nspilled;
static const char *first_spilled;

struct host {
	const char *root;		/* "" for the live host */
	struct pel__topo *t;
	struct pel__cmdline cmd;
	int cmd_err;			/* pel__topo_cmdline()'s result */
	char cmd_why[256];
	cpu_set_t w;			/* worker CPUs */
	char wtext[4096];
	char hk[4096];			/* housekeeping CPUs: online but not workers ("0" if none) */
};

static void addf(char *buf, size_t len, const char *fmt, ...) pel__printf(3, 4);

static void
addf(char *buf, size_t len, const char *fmt, ...)
{
	size_t off = strlen(buf);
	va_list ap;

	if (off + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + off, len - off, fmt, ap);
	va_end(ap);
}

/* The next entry of checks[]; past NCHECKS, a scratch entry that is counted and not printed. */
static struct check *
check_new(const char *id)
{
	struct check *c;

	if (nchecks < NCHECKS) {
		c = &checks[nchecks++];
	} else {
		c = &spill;
		if (!nspilled++)
			first_spilled = id;
	}
	c->id = id;
	c->status = ST_OK;
	c->detail[0] = c->fix[0] = '\0';
	return c;
}

static const char *
cpus(const cpu_set_t *s, char *buf, size_t len)
{
	return pel__topo_format_cpus(s, buf, len);
}

/* Read <root>/<rel>; 0, or -errno (the message in pel_last_error()). */
static int
rd(const struct host *h, const char *rel, char *buf, size_t len)
{
	return pel__topo_read_file(h->root, rel, buf, len);
}

/* Read a decimal number; -ENOENT missing, -EINVAL not a number. */
static int
rd_long(const struct host *h, const char *rel, long *v)
{
	char buf[64], *end;
	int err = rd(h, rel, buf, sizeof(buf));

	if (err)
		return err;
	errno = 0;
	*v = strtol(buf, &end, 10);
	return end == buf || *end || errno ? -EINVAL : 0;
}

/* A CPU-list file; -ENOENT missing, -EINVAL unparsable. */
static int
rd_cpus(const struct host *h, const char *rel, cpu_set_t *s)
{
	return pel__topo_read_cpus(h->root, rel, s);
}

/* ---- the checks ---- */

static void
check_isolcpus(const struct host *h)
{
	struct check *c = check_new("isolcpus");
	cpu_set_t iso, miss;
	char a[4096], b[4096];

	iso = h->t->isolated;
	if (!h->t->has_isolated && h->cmd.has_isolcpus && (h->cmd.isol_flags & PEL__ISOL_DOMAIN))
		iso = h->cmd.isolcpus;
	CPU_ZERO(&miss);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &h->w) && !CPU_ISSET(i, &iso))
			CPU_SET(i, &miss);
	if (CPU_COUNT(&miss)) {
		c->status = ST_FAIL;
		addf(c->detail, sizeof(c->detail), "cpus %s are not isolated (isolated: %s): the "
		     "scheduler may run other threads and kworkers there",
		     cpus(&miss, a, sizeof(a)), cpus(&iso, b, sizeof(b)));
		addf(c->fix, sizeof(c->fix), "boot with isolcpus=managed_irq,domain,%s (add it to "
		     "GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub, reboot)", h->wtext);
		return;
	}
	addf(c->detail, sizeof(c->detail), "cpus %s are isolated", h->wtext);
	if (h->cmd.has_isolcpus && !(h->cmd.isol_flags & PEL__ISOL_MANAGED_IRQ)) {
		c->status = ST_WARN;
		addf(c->detail, sizeof(c->detail), ", but isolcpus= has no managed_irq flag: managed "
		     "device interrupts (NVMe, NIC queues) can still fire on them");
		addf(c->fix, sizeof(c->fix), "boot with isolcpus=managed_irq,domain,%s",
		     cpus(&h->cmd.isolcpus, a, sizeof(a)));
	}
}

static void
check_nohz_full(const struct host *h)
{
	struct check *c = check_new("nohz_full");
	const cpu_set_t *nz = h->t->has_nohz_full ? &h->t->nohz_full : &h->cmd.nohz_full;
	cpu_set_t miss;
	char a[4096], b[4096];

	CPU_ZERO(&miss);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &h->w) && !CPU_ISSET(i, nz))
			CPU_SET(i, &miss);
	if (!CPU_COUNT(&miss)) {
		addf(c->detail, sizeof(c->detail), "cpus %s run tickless (nohz_full: %s)", h->wtext,
		     cpus(nz, a, sizeof(a)));
		return;
	}
	c->status = ST_FAIL;
	addf(c->detail, sizeof(c->detail), "cpus %s are not in nohz_full (%s%s): the scheduler "
	     "tick interrupts them every 1-4 ms", cpus(&miss, a, sizeof(a)), cpus(nz, b, sizeof(b)),
	     h->t->has_nohz_full ? "" : "; the kernel exposes no nohz_full file, "
	     "CONFIG_NO_HZ_FULL may be off");
	addf(c->fix, sizeof(c->fix), "boot with nohz_full=%s (a kernel built with "
	     "CONFIG_NO_HZ_FULL=y)", h->wtext);
}

static void
check_rcu_nocbs(const struct host *h)
{
	struct check *c = check_new("rcu_nocbs");
	cpu_set_t cover, miss;
	char a[4096];

	if (h->cmd_err) {
		c->status = ST_WARN;
		addf(c->detail, sizeof(c->detail), "cannot tell: %s", h->cmd_why);
		addf(c->fix, sizeof(c->fix), "boot with rcu_nocbs=%s", h->wtext);
		return;
	}
	/* nohz_full CPUs have their RCU callbacks offloaded as well */
	CPU_OR(&cover, &h->cmd.rcu_nocbs, &h->cmd.nohz_full);
	if (h->t->has_nohz_full)
		CPU_OR(&cover, &cover, &h->t->nohz_full);
	CPU_ZERO(&miss);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &h->w) && !CPU_ISSET(i, &cover) && !h->cmd.rcu_nocbs_all)
			CPU_SET(i, &miss);
	if (!CPU_COUNT(&miss)) {
		if (h->cmd.rcu_nocbs_all)
			snprintf(a, sizeof(a), "all");
		else
			cpus(&h->cmd.rcu_nocbs, a, sizeof(a));
		addf(c->detail, sizeof(c->detail), "RCU callbacks of cpus %s run elsewhere (%s%s)",
		     h->wtext, h->cmd.has_rcu_nocbs ? "rcu_nocbs=" : "implied by nohz_full",
		     h->cmd.has_rcu_nocbs ? a : "");
		return;
	}
	c->status = ST_WARN;
	addf(c->detail, sizeof(c->detail), "cpus %s run their own RCU callbacks (softirq work "
	     "after every grace period)", cpus(&miss, a, sizeof(a)));
	addf(c->fix, sizeof(c->fix), "boot with rcu_nocbs=%s (and rcu_nocb_poll)", h->wtext);
}

static bool
meets(const cpu_set_t *a, const cpu_set_t *b)
{
	cpu_set_t x;

	CPU_AND(&x, a, b);
	return CPU_COUNT(&x) != 0;
}

static int
cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* Open <root>/<rel> for listing; NULL after marking @p c "warn: cannot list". */
static DIR *
open_proc_dir(const struct host *h, struct check *c, const char *rel)
{
	char path[PATH_MAX];
	DIR *dir;

	snprintf(path, sizeof(path), "%s/%s", h->root, rel);
	dir = opendir(path);
	if (!dir) {
		c->status = ST_WARN;
		addf(c->detail, sizeof(c->detail), "cannot list %s: %s", path, strerror(errno));
		addf(c->fix, sizeof(c->fix), "run pel-check where /proc is mounted");
	}
	return dir;
}

static void
check_irq_affinity(const struct host *h)
{
	struct check *c = check_new("irq_affinity");
	char rel[128], a[4096], on[2048] = "", may[2048] = "", fixirqs[512] = "";
	unsigned nirq = 0, non = 0, nmay = 0;
	size_t nids = 0, cap = 0;
	int *ids = NULL;
	struct dirent *d;
	DIR *dir;

	dir = open_proc_dir(h, c, "proc/irq");
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		char *end;
		long irq = strtol(d->d_name, &end, 10);

		if (!isdigit((unsigned char)d->d_name[0]) || *end || irq > INT_MAX)
			continue;
		if (nids == cap) {
			int *more = realloc(ids, (cap = cap ? 2 * cap : 256) * sizeof(*ids));

			if (!more)
				break;
			ids = more;
		}
		ids[nids++] = (int)irq;
	}
	closedir(dir);
	if (nids)
		qsort(ids, nids, sizeof(*ids), cmp_int);
	for (size_t i = 0; i < nids; i++) {
		cpu_set_t allowed, eff;
		bool has_eff;
		int irq = ids[i];

		snprintf(rel, sizeof(rel), "proc/irq/%d/smp_affinity_list", irq);
		if (rd_cpus(h, rel, &allowed))
			continue;
		nirq++;
		snprintf(rel, sizeof(rel), "proc/irq/%d/effective_affinity_list", irq);
		has_eff = rd_cpus(h, rel, &eff) == 0 && CPU_COUNT(&eff);
		if (!has_eff)
			eff = allowed;
		if (meets(&eff, &h->w)) {
			if (non++ < LIST_MAX)
				addf(on, sizeof(on), "%s%d (on %s)", non > 1 ? ", " : "", irq,
				     cpus(&eff, a, sizeof(a)));
			if (non <= LIST_MAX)
				addf(fixirqs, sizeof(fixirqs), " %d", irq);
		} else if (meets(&allowed, &h->w)) {
			if (nmay++ < LIST_MAX)
				addf(may, sizeof(may), "%s%d (allowed %s)", nmay > 1 ? ", " : "", irq,
				     cpus(&allowed, a, sizeof(a)));
		}
	}
	free(ids);
	if (non) {
		c->status = ST_FAIL;
		addf(c->detail, sizeof(c->detail), "%u of %u IRQs are delivered to worker CPUs: %s%s",
		     non, nirq, on, non > LIST_MAX ? ", ..." : "");
		addf(c->fix, sizeof(c->fix), "for i in%s; do echo %s > /proc/irq/$i/"
		     "smp_affinity_list; done; boot with irqaffinity=%s; keep irqbalance off the "
		     "workers (IRQBALANCE_BANNED_CPULIST=%s) or stop it", fixirqs, h->hk, h->hk,
		     h->wtext);
	} else if (nmay) {
		c->status = ST_WARN;
		addf(c->detail, sizeof(c->detail), "no IRQ is delivered to worker CPUs now, but %u "
		     "of %u may move there: %s%s", nmay, nirq, may, nmay > LIST_MAX ? ", ..." : "");
		addf(c->fix, sizeof(c->fix), "echo %s > /proc/irq/<N>/smp_affinity_list for each "
		     "(managed IRQs: boot with isolcpus=managed_irq,...)", h->hk);
	} else {
		addf(c->detail, sizeof(c->detail), "none of %u IRQs may fire on worker CPUs", nirq);
	}
}

static void
check_governor(const struct host *h)
{
	struct check *c = check_new("governor");
	char rel[128], gov[64], a[4096], slow[2048] = "";
	char names[LIST_MAX][64];
	cpu_set_t bad, by[LIST_MAX];
	unsigned nfreq = 0, ngov = 0;

	CPU_ZERO(&bad);
	for (int i = 0; i < CPU_SETSIZE; i++) {
		unsigned g;

		if (!CPU_ISSET(i, &h->w))
			continue;
		snprintf(rel, sizeof(rel), PEL__CPU_DIR "/cpu%d/cpufreq/scaling_governor", i);
		if (rd(h, rel, gov, sizeof(gov)))
			continue;
		nfreq++;
		if (!strcmp(gov, "performance"))
			continue;
		CPU_SET(i, &bad);
		for (g = 0; g < ngov && strcmp(names[g], gov); g++)
			;
		if (g == ngov && ngov < LIST_MAX) {
			snprintf(names[ngov], sizeof(names[ngov]), "%s", gov);
			CPU_ZERO(&by[ngov]);
			ngov++;
		}
		if (g < ngov)
			CPU_SET(i, &by[g]);
	}
	if (!nfreq) {
		addf(c->detail, sizeof(c->detail), "no cpufreq governor on cpus %s: the kernel does "
		     "not scale their frequency", h->wtext);
	} else if (!CPU_COUNT(&bad)) {
		addf(c->detail, sizeof(c->detail), "governor performance on cpus %s", h->wtext);
	} else {
		c->status = ST_FAIL;
		for (unsigned g = 0; g < ngov; g++)
			addf(slow, sizeof(slow), "%s%s on %s", g ? ", " : "", names[g],
			     cpus(&by[g], a, sizeof(a)));
		addf(c->detail, sizeof(c->detail), "cpus %s do not run the performance governor (%s):"
		     " frequency ramps add microseconds after every quiet spell",
		     cpus(&bad, a, sizeof(a)), slow);
		addf(c->fix, sizeof(c->fix), "cpupower -c %s frequency-set -g performance", a);
	}
}

static void
check_smt(const struct host *h)
{
	struct check *c = check_new("smt");
	int pairs[LIST_MAX][2];
	unsigned npairs = pel__topo_smt_pairs(h->t, &h->w, pairs, LIST_MAX);
	cpu_set_t one, busy_sib;
	char a[4096], b[4096], list[1024] = "";
	bool known = false;

	CPU_ZERO(&busy_sib);
	one = h->w;
	for (int i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &h->w) || h->t->smt[i] < 0)
			continue;
		known = true;
		for (int s = 0; s < CPU_SETSIZE; s++) {
			if (!pel__topo_smt_siblings(h->t, i, s))
				continue;
			if (CPU_ISSET(s, &h->w) && s > i)
				CPU_CLR(s, &one);
			/* an idle isolated sibling is harmless; one running other work is not */
			if (!CPU_ISSET(s, &h->w) && !CPU_ISSET(s, &h->t->isolated))
				CPU_SET(s, &busy_sib);
		}
	}
	if (!known) {
		addf(c->detail, sizeof(c->detail), "SMT layout of cpus %s unknown (no topology "
		     "files)", h->wtext);
		return;
	}
	if (!npairs && !CPU_COUNT(&busy_sib)) {
		addf(c->detail, sizeof(c->detail), "no worker CPU shares its core with a busy "
		     "thread");
		return;
	}
	c->status = ST_WARN;
	for (unsigned i = 0; i < npairs && i < LIST_MAX; i++)
		addf(list, sizeof(list), "%s%d/%d", i ? ", " : "", pairs[i][0], pairs[i][1]);
	if (npairs)
		addf(c->detail, sizeof(c->detail), "%u pairs of worker CPUs are hyper-threads of one "
		     "core (%s%s): busy workers there share its execution units", npairs, list,
		     npairs > LIST_MAX ? ", ..." : "");
	if (CPU_COUNT(&busy_sib))
		addf(c->detail, sizeof(c->detail), "%ssiblings %s of worker CPUs are neither workers "
		     "nor isolated: other threads run on those cores", npairs ? "; " : "",
		     cpus(&busy_sib, a, sizeof(a)));
	addf(c->fix, sizeof(c->fix), "use one thread per core (--cpus %s) and leave the siblings "
	     "idle and isolated, or turn SMT off (echo off > /sys/devices/system/cpu/smt/control, "
	     "or boot with nosmt)", cpus(&one, b, sizeof(b)));
}

static void
check_thp(const struct host *h)
{
	struct check *c = check_new("thp");
	char buf[128];

	if (rd(h, "sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof(buf))) {
		addf(c->detail, sizeof(c->detail), "no transparent hugepages in this kernel");
		return;
	}
	if (strstr(buf, "[always]")) {
		c->status = ST_WARN;
		addf(c->detail, sizeof(c->detail), "transparent hugepages \"always\": page faults "
		     "may compact memory and khugepaged collapses pages under running workers");
		addf(c->fix, sizeof(c->fix), "echo madvise > /sys/kernel/mm/transparent_hugepage/"
		     "enabled (boot: transparent_hugepage=madvise)");
		return;
	}
	addf(c->detail, sizeof(c->detail), "transparent hugepages: %s", buf);
}

static void
check_hugepages(const struct host *h)
{
	struct check *c = check_new("hugepages");
	char rel[160], zero[256] = "", counts[1024] = "";
	bool seen[PEL__TOPO_MAX_NODES] = { false };
	unsigned nzero = 0, nread = 0;

	for (int i = 0; i < CPU_SETSIZE; i++) {
		int n = CPU_ISSET(i, &h->w) ? pel__topo_cpu_node(h->t, i) : -1;

		if (n >= 0)
			seen[n] = true;
	}
	for (int n = 0; n < PEL__TOPO_MAX_NODES; n++) {
		long v;

		if (!seen[n])
			continue;
		if (h->t->has_nodes)
			snprintf(rel, sizeof(rel),
				 PEL__NODE_DIR "/node%d/hugepages/hugepages-2048kB/nr_hugepages", n);
		else
			snprintf(rel, sizeof(rel), "sys/kernel/mm/hugepages/hugepages-2048kB/"
				 "nr_hugepages");
		if (rd_long(h, rel, &v))
			continue;
		nread++;
		addf(counts, sizeof(counts), "%snode %d: %ld", nread > 1 ? ", " : "", n, v);
		if (v <= 0 && nzero++ < LIST_MAX)
			addf(zero, sizeof(zero), "%s%d", nzero > 1 ? "," : "", n);
	}
	if (!nread) {
		c->status = ST_WARN;
		addf(c->detail, sizeof(c->detail), "cannot read the 2 MiB hugepage pool: %s",
		     pel_last_error());
		addf(c->fix, sizeof(c->fix), "boot with hugepagesz=2M hugepages=1024");
		return;
	}
	if (!nzero) {
		addf(c->detail, sizeof(c->detail), "2 MiB hugepages reserved on the workers' nodes "
		     "(%s)", counts);
		return;
	}
	c->status = ST_WARN;
	addf(c->detail, sizeof(c->detail), "no 2 MiB hugepage reserved on node %s of the workers "
	     "(%s): PEL_F_HUGEPAGES falls back to 4 KiB pages and their TLB misses", zero, counts);
	if (h->t->has_nodes)
		addf(c->fix, sizeof(c->fix), "for n in %s; do echo 512 > /sys/devices/system/node/"
		     "node$n/hugepages/hugepages-2048kB/nr_hugepages; done", zero);
	else
		addf(c->fix, sizeof(c->fix), "echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/"
		     "nr_hugepages");
	addf(c->fix, sizeof(c->fix), " (or boot with hugepagesz=2M hugepages=N)");
}

static void
check_swap(const struct host *h)
{
	struct check *c = check_new("swap");
	char path[PATH_MAX], line[512], names[512] = "";
	unsigned n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/swaps", h->root);
	f = fopen(path, "re");
	if (!f) {
		addf(c->detail, sizeof(c->detail), "no %s: no swap in this kernel", path);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char name[256];

		if (!strncmp(line, "Filename", 8) || sscanf(line, "%255s", name) != 1)
			continue;
		if (n++ < LIST_MAX)
			addf(names, sizeof(names), "%s%s", n > 1 ? ", " : "", name);
	}
	fclose(f);
	if (!n) {
		addf(c->detail, sizeof(c->detail), "no swap area is active");
		return;
	}
	c->status = ST_WARN;
	addf(c->detail, sizeof(c->detail), "%u swap area%s active (%s): a page of a worker's "
	     "memory swapped out costs a disk read to fault back", n, n > 1 ? "s" : "", names);
	addf(c->fix, sizeof(c->fix), "swapoff -a (and drop swap from /etc/fstab), or create the "
	     "runtime with PEL_F_MLOCK");
}

static void
check_rt_runtime(const struct host *h)
{
	struct check *c = check_new("rt_runtime");
	long v, period = 1000000;

	if (rd_long(h, "proc/sys/kernel/sched_rt_runtime_us", &v)) {
		c->status = ST_WARN;
		addf(c->detail, sizeof(c->detail), "cannot read sched_rt_runtime_us: %s",
		     pel_last_error());
		addf(c->fix, sizeof(c->fix), "sysctl -w kernel.sched_rt_runtime_us=-1");
		return;
	}
	if (v == -1) {
		addf(c->detail, sizeof(c->detail), "sched_rt_runtime_us = -1: no RT throttling");
		return;
	}
	rd_long(h, "proc/sys/kernel/sched_rt_period_us", &period);
	c->status = ST_FAIL;
	addf(c->detail, sizeof(c->detail), "sched_rt_runtime_us = %ld: SCHED_FIFO workers are "
	     "stopped for %ld ms of every %ld ms", v, period > v ? (period - v) / 1000 : 0,
	     period / 1000);
	addf(c->fix, sizeof(c->fix), "sysctl -w kernel.sched_rt_runtime_us=-1 (persist it in "
	     "/etc/sysctl.d/)");
}

/* A sysctl that should be 0 (or at least @p want): warn otherwise, ok when the file is absent. */
static void
check_sysctl(const struct host *h, const char *id, const char *rel, const char *name, long want,
	     bool at_least, const char *why, const char *fix)
{
	struct check *c = check_new(id);
	long v;
	int err = rd_long(h, rel, &v);

	if (err == -ENOENT) {
		addf(c->detail, sizeof(c->detail), "%s is not in this kernel", name);
		return;
	}
	if (err) {
		c->status = ST_WARN;
		addf(c->detail, sizeof(c->detail), "cannot read %s: %s", name,
		     err == -EINVAL ? "not a number" : pel_last_error());
		addf(c->fix, sizeof(c->fix), "%s", fix);
		return;
	}
	if (at_least ? v >= want : v == want) {
		addf(c->detail, sizeof(c->detail), "%s = %ld", name, v);
		return;
	}
	c->status = ST_WARN;
	addf(c->detail, sizeof(c->detail), "%s = %ld: %s", name, v, why);
	addf(c->fix, sizeof(c->fix), "%s", fix);
}

static void
check_io_uring(const struct host *h)
{
	struct check *c = check_new("io_uring");
	long v;
	int err = rd_long(h, "proc/sys/kernel/io_uring_disabled", &v);

	if (err) {
		addf(c->detail, sizeof(c->detail), "kernel.io_uring_disabled %s: io_uring is not "
		     "restricted", err == -ENOENT ? "is not in this kernel" : "unreadable");
		return;
	}
	if (v == 0) {
		addf(c->detail, sizeof(c->detail), "kernel.io_uring_disabled = 0: every process "
		     "may create rings");
		return;
	}
	c->status = ST_WARN;
	addf(c->detail, sizeof(c->detail), "kernel.io_uring_disabled = %ld: %s", v,
	     v == 1 ? "only processes in kernel.io_uring_group (or with CAP_SYS_ADMIN) may create "
	     "rings; pel's I/O layer fails elsewhere" : "io_uring is off; pel's I/O layer cannot "
	     "start");
	addf(c->fix, sizeof(c->fix), "sysctl -w kernel.io_uring_disabled=0%s",
	     v == 1 ? " (or add the service's group to kernel.io_uring_group)" : "");
}

static void
check_cpuidle(const struct host *h)
{
	struct check *c = check_new("cpuidle");
	char rel[160], name[64], deep[1024] = "", a[4096];
	cpu_set_t bad;
	unsigned ndeep = 0;
	bool any = false;

	CPU_ZERO(&bad);
	for (int i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &h->w))
			continue;
		for (int s = 0; s < 16; s++) {
			long lat, dis = 0;

			snprintf(rel, sizeof(rel), PEL__CPU_DIR "/cpu%d/cpuidle/state%d/latency",
				 i, s);
			if (rd_long(h, rel, &lat))
				break;
			any = true;
			snprintf(rel, sizeof(rel), PEL__CPU_DIR "/cpu%d/cpuidle/state%d/disable",
				 i, s);
			rd_long(h, rel, &dis);
			if (lat <= IDLE_MAX_US || dis)
				continue;
			CPU_SET(i, &bad);
			snprintf(rel, sizeof(rel), PEL__CPU_DIR "/cpu%d/cpuidle/state%d/name",
				 i, s);
			if (rd(h, rel, name, sizeof(name)))
				snprintf(name, sizeof(name), "state%d", s);
			/* name each state once */
			{
				char item[128];

				snprintf(item, sizeof(item), "%s (%ld us)", name, lat);
				if (!strstr(deep, item) && ndeep++ < LIST_MAX)
					addf(deep, sizeof(deep), "%s%s", ndeep > 1 ? ", " : "", item);
			}
		}
	}
	if (!any) {
		addf(c->detail, sizeof(c->detail), "no cpuidle states on cpus %s", h->wtext);
		return;
	}
	if (!CPU_COUNT(&bad)) {
		addf(c->detail, sizeof(c->detail), "no idle state deeper than %d us is enabled on "
		     "cpus %s", IDLE_MAX_US, h->wtext);
		return;
	}
	c->status = ST_WARN;
	addf(c->detail, sizeof(c->detail), "cpus %s may enter %s: a parked or backing-off worker "
	     "wakes that much later", cpus(&bad, a, sizeof(a)), deep);
	addf(c->fix, sizeof(c->fix), "cpupower -c %s idle-set -D %d (or boot with "
	     "processor.max_cstate=1, and intel_idle.max_cstate=1 on Intel)", a, IDLE_MAX_US);
}

static void
check_memlock(const struct host *h)
{
	struct check *c = check_new("memlock");
	char path[PATH_MAX], line[256], soft[64] = "";
	unsigned long long v = 0;
	bool unlimited = false, found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/self/limits", h->root);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Max locked memory", 17) || sscanf(line + 17, "%63s", soft) != 1)
			continue;
		found = true;
		unlimited = !strcmp(soft, "unlimited");
		v = strtoull(soft, NULL, 10);
	}
	if (f)
		fclose(f);
	if (!found && !h->root[0]) {
		struct rlimit rl;

		if (!getrlimit(RLIMIT_MEMLOCK, &rl)) {
			found = true;
			unlimited = rl.rlim_cur == RLIM_INFINITY;
			v = rl.rlim_cur;
		}
	}
	if (!found) {
		c->status = ST_WARN;
		addf(c->detail, sizeof(c->detail), "cannot read \"Max locked memory\" from %s", path);
		addf(c->fix, sizeof(c->fix), "LimitMEMLOCK=infinity in the service's unit");
		return;
	}
	if (unlimited || v >= MEMLOCK_OK) {
		addf(c->detail, sizeof(c->detail), "RLIMIT_MEMLOCK %s%s", unlimited ? "unlimited" :
		     soft, unlimited ? "" : " bytes");
		return;
	}
	c->status = ST_WARN;
	addf(c->detail, sizeof(c->detail), "RLIMIT_MEMLOCK is %llu KiB: PEL_F_MLOCK cannot lock "
	     "rings and pools beyond it (processes with CAP_IPC_LOCK are exempt)", v >> 10);
	addf(c->fix, sizeof(c->fix), "LimitMEMLOCK=infinity in the service's unit, or \"<user> - "
	     "memlock unlimited\" in /etc/security/limits.conf, or ulimit -l unlimited");
}

/* ---- output ---- */

static void
json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", stdout);
		else if (ch == '\t')
			fputs("\\t", stdout);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void
print_json(const struct host *h, bool ready)
{
	printf("{\"ready\": %s, \"cpus\": ", ready ? "true" : "false");
	json_str(h->wtext);
	printf(", \"checks\": [");
	for (unsigned i = 0; i < nchecks; i++) {
		printf("%s\n  {\"id\": ", i ? "," : "");
		json_str(checks[i].id);
		printf(", \"status\": \"%s\", \"detail\": ", status_name[checks[i].status]);
		json_str(checks[i].detail);
		printf(", \"fix\": ");
		json_str(checks[i].fix);
		putchar('}');
	}
	printf("\n]}\n");
}

static void
print_text(const struct host *h, bool ready, const char *why)
{
	unsigned nfail = 0, nwarn = 0;

	printf("pel-check: worker CPUs %s (%s), host %s\n", h->wtext, why,
	       h->root[0] ? h->root : "/");
	for (unsigned i = 0; i < nchecks; i++) {
		const struct check *c = &checks[i];

		nfail += c->status == ST_FAIL;
		nwarn += c->status == ST_WARN;
		printf("%-5s %-16s %s\n", status_name[c->status], c->id, c->detail);
		if (c->status != ST_OK && c->fix[0])
			printf("%-22s fix: %s\n", "", c->fix);
	}
	printf("ready: %s (%u failed, %u warned, %u ok)\n", ready ? "yes" : "no", nfail, nwarn,
	       nchecks - nfail - nwarn);
}

static void
check_timer_migration(const struct host *h)
{
	check_sysctl(h, "timer_migration", "proc/sys/kernel/timer_migration",
		     "kernel.timer_migration", 0, false, "timers armed on a worker CPU may be "
		     "moved and fire on another, and other CPUs' timers may come to it",
		     "sysctl -w kernel.timer_migration=0");
}

static void
check_nmi_watchdog(const struct host *h)
{
	check_sysctl(h, "nmi_watchdog", "proc/sys/kernel/nmi_watchdog", "kernel.nmi_watchdog", 0,
		     false, "a perf NMI interrupts every CPU every few seconds",
		     "sysctl -w kernel.nmi_watchdog=0 (or boot with nmi_watchdog=0)");
}

static void
check_stat_interval(const struct host *h)
{
	check_sysctl(h, "stat_interval", "proc/sys/vm/stat_interval", "vm.stat_interval", 10,
		     true, "the vmstat worker wakes on CPUs with changed counters every second",
		     "sysctl -w vm.stat_interval=10");
}

/* Every check, in the order printed; each adds exactly one entry to checks[]. */
/* One unbound kernel thread that may run on the workers. */
struct kthread {
	long pid;
	unsigned long long ticks;	/* utime + stime since it started */
	char comm[32];
};

/* Read /proc/PID/stat's comm, flags and CPU ticks; -1 when it is not a readable process. */
static int
kthread_stat(const struct host *h, long pid, struct kthread *k, unsigned long *flags)
{
	char rel[64], buf[1024], *open_, *close_, *f;
	unsigned long long utime, stime;

	snprintf(rel, sizeof(rel), "proc/%ld/stat", pid);
	if (rd(h, rel, buf, sizeof(buf)))
		return -1;
	open_ = strchr(buf, '(');
	close_ = strrchr(buf, ')');	/* comm may hold ')' itself: the last one ends it */
	if (!open_ || !close_ || close_ < open_)
		return -1;
	snprintf(k->comm, sizeof(k->comm), "%.*s", (int)(close_ - open_ - 1), open_ + 1);
	/* after ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
	 * utime stime */
	f = close_ + 1;
	if (sscanf(f, " %*c %*d %*d %*d %*d %*d %lu %*u %*u %*u %*u %llu %llu", flags, &utime,
		   &stime) != 3)
		return -1;
	k->pid = pid;
	k->ticks = utime + stime;
	return 0;
}

/* Its Cpus_allowed_list from /proc/PID/status; -1 unreadable. */
static int
kthread_allowed(const struct host *h, long pid, cpu_set_t *s)
{
	char rel[64], buf[4096], *line, *end;

	snprintf(rel, sizeof(rel), "proc/%ld/status", pid);
	if (rd(h, rel, buf, sizeof(buf)))
		return -1;
	line = strstr(buf, "Cpus_allowed_list:");
	if (!line)
		return -1;
	line += strlen("Cpus_allowed_list:");
	while (*line == ' ' || *line == '\t')
		line++;
	end = strchr(line, '\n');
	if (end)
		*end = '\0';
	return pel__topo_parse_cpus(line, s) ? -1 : 0;
}

static int
cmp_kthread(const void *a, const void *b)
{
	const struct kthread *x = a, *y = b;

	return (x->ticks < y->ticks) - (x->ticks > y->ticks);	/* busiest first */
}

/*
 * Kernel threads that are not bound to one CPU (kdamond, kswapd, kcompactd, khugepaged, RCU's
 * grace-period threads, unbound kworkers) and may run on a worker CPU: the scheduler puts them
 * there between two of the worker's timeslices, for as long as they run (kdamond.0 was measured
 * running 0.9 ms at a time on a worker's CPU). Per-CPU ones (ksoftirqd/N, kworker/N:M) are the
 * other checks' business. Fails when one of them has run KTHREAD_BUSY_S seconds since boot.
 */
static void
check_kthreads(const struct host *h)
{
	struct check *c = check_new("kthreads");
	char pids[512] = "";
	struct kthread *ks = NULL, k;
	size_t n = 0, cap = 0, busy = 0;
	long hz = sysconf(_SC_CLK_TCK);
	struct dirent *d;
	DIR *dir;

	if (hz <= 0)
		hz = 100;
	dir = open_proc_dir(h, c, "proc");
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		unsigned long flags;
		cpu_set_t allowed;
		char *end;
		long pid = strtol(d->d_name, &end, 10);

		if (!isdigit((unsigned char)d->d_name[0]) || *end ||
		    kthread_stat(h, pid, &k, &flags) || !(flags & PF_KTHREAD_FLAG) ||
		    kthread_allowed(h, pid, &allowed) || CPU_COUNT(&allowed) < 2 ||
		    !meets(&allowed, &h->w))
			continue;
		if (n == cap) {
			struct kthread *more = realloc(ks, (cap = cap ? 2 * cap : 64) * sizeof(*ks));

			if (!more)
				break;
			ks = more;
		}
		ks[n++] = k;
	}
	closedir(dir);
	if (!n) {
		addf(c->detail, sizeof(c->detail), "no unbound kernel thread may run on cpus %s",
		     h->wtext);
		free(ks);
		return;
	}
	qsort(ks, n, sizeof(*ks), cmp_kthread);
	addf(c->detail, sizeof(c->detail), "%zu unbound kernel threads may run on cpus %s; the "
	     "busiest, with the CPU seconds each has used:", n, h->wtext);
	for (size_t i = 0; i < n && i < LIST_MAX; i++) {
		addf(c->detail, sizeof(c->detail), "%s %s (pid %ld) %.1f", i ? "," : "", ks[i].comm,
		     ks[i].pid, (double)ks[i].ticks / (double)hz);
		if (ks[i].ticks >= (unsigned long long)(KTHREAD_BUSY_S * hz)) {
			busy++;
			addf(pids, sizeof(pids), " %ld", ks[i].pid);
		}
	}
	if (n > LIST_MAX)
		addf(c->detail, sizeof(c->detail), ", and %zu more", n - LIST_MAX);
	c->status = busy ? ST_FAIL : ST_WARN;
	addf(c->fix, sizeof(c->fix), "boot with isolcpus=domain,%s (unbound kernel threads then stay "
	     "on the housekeeping CPUs %s)", h->wtext, h->hk);
	if (busy)
		addf(c->fix, sizeof(c->fix), "; now: for p in%s; do taskset -pc %s $p; done", pids,
		     h->hk);
	free(ks);
}

static void (*const check_fns[])(const struct host *) = {
	check_isolcpus, check_nohz_full, check_rcu_nocbs, check_irq_affinity, check_governor,
	check_smt, check_thp, check_hugepages, check_swap, check_rt_runtime,
	check_timer_migration, check_nmi_watchdog, check_cpuidle, check_stat_interval,
	check_io_uring, check_memlock, check_kthreads,
};

#ifndef PEL_CHECK_TABLE_SIZE
_Static_assert(sizeof(check_fns) / sizeof(check_fns[0]) <= NCHECKS,
	       "checks[] cannot hold every check: raise NCHECKS");
#endif

/* Checks that did not fit in checks[] (a bug in pel-check): one failed "internal" entry, in the
 * slot kept for it, so the verdict is not "ready" on a partial report. */
static void
check_spilled(void)
{
	struct check *c;

	if (!nspilled)
		return;
	c = &checks[nchecks++];
	c->id = "internal";
	c->status = ST_FAIL;
	snprintf(c->detail, sizeof(c->detail), "%u check(s) from %s on did not fit in pel-check's "
		 "table of %d and are not reported", nspilled, first_spilled, NCHECKS);
	snprintf(c->fix, sizeof(c->fix), "a bug in pel-check: raise NCHECKS in tools/pel-check.c "
		 "and report it");
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: pel-check [--cpus LIST] [--root DIR] [--json]\n"
		"  --cpus LIST  worker CPUs, e.g. 2-7 (default: as pel_create: the isolated CPUs,\n"
		"               else every online CPU but 0)\n"
		"  --root DIR   read DIR/proc and DIR/sys instead of the live host's\n"
		"  --json       one JSON object: {\"ready\", \"cpus\", \"checks\": [{\"id\", \"status\",\n"
		"               \"detail\", \"fix\"}]}\n"
		"exit: 0 ready, 1 not ready, 2 bad usage\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cpus", required_argument, NULL, 'c' },
		{ "root", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct pel__plan plan;
	static struct host h;
	const char *list = NULL, *root = "", *why;
	struct pel_config cfg;
	bool json = false, ready = true;
	cpu_set_t hk;
	char rootbuf[PATH_MAX];
	int opt, err;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			list = optarg;
			break;
		case 'r':
			root = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			if (optopt)
				fprintf(stderr, "pel-check: option --%s needs an argument\n",
					optopt == 'c' ? "cpus" : "root");
			else
				fprintf(stderr, "pel-check: unknown option %s\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pel-check: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	/* "/" and "" are both the live host; drop trailing slashes */
	snprintf(rootbuf, sizeof(rootbuf), "%s", root);
	for (size_t n = strlen(rootbuf); n > 0 && rootbuf[n - 1] == '/'; n--)
		rootbuf[n - 1] = '\0';
	h.root = rootbuf;

	h.t = malloc(sizeof(*h.t));
	if (!h.t) {
		fprintf(stderr, "pel-check: out of memory\n");
		return 2;
	}
	err = pel__topo_load(h.root, h.t);
	if (err) {
		fprintf(stderr, "pel-check: cannot read the host's CPUs under %s: %s\n",
			h.root[0] ? h.root : "/", pel_last_error());
		return 2;
	}

	/* The worker CPUs, chosen and checked as pel_create() does (any CPU given is taken as
	 * meant: pel-check may run in another cgroup than the program it checks for). */
	pel_config_default(&cfg);
	cfg.cpus = list;
	cfg.idle = PEL_IDLE_PARK;
	cfg.sysfs_root = h.root;
	if (list)
		pel__set_allowed_cpus_override(&h.t->online);
	err = pel__config_resolve(&cfg, &plan);
	if (err) {
		if (list)
			fprintf(stderr, "pel-check: --cpus %s: %s\n", list, pel_last_error());
		else
			fprintf(stderr, "pel-check: %s\n", pel_last_error());
		return 2;
	}
	h.w = plan.workers;
	snprintf(h.wtext, sizeof(h.wtext), "%s", plan.cpus_text);
	why = list ? "--cpus" : CPU_EQUAL(&plan.workers, &h.t->isolated) ?
	      "default: the isolated CPUs" : "default: online CPUs but CPU 0";
	CPU_XOR(&hk, &h.t->online, &h.w);
	CPU_AND(&hk, &hk, &h.t->online);
	if (!CPU_COUNT(&hk))
		CPU_SET(0, &hk);
	pel__topo_format_cpus(&hk, h.hk, sizeof(h.hk));

	h.cmd_err = pel__topo_cmdline(h.root, &h.cmd);
	if (h.cmd_err) {
		snprintf(h.cmd_why, sizeof(h.cmd_why), "%s", pel_last_error());
		memset(&h.cmd, 0, sizeof(h.cmd));
	}

	for (size_t i = 0; i < sizeof(check_fns) / sizeof(check_fns[0]); i++)
		check_fns[i](&h);
	check_spilled();

	for (unsigned i = 0; i < nchecks; i++)
		if (checks[i].status == ST_FAIL)
			ready = false;
	if (json)
		print_json(&h, ready);
	else
		print_text(&h, ready, why);
	free(h.t);
	return ready ? 0 : 1;
}
