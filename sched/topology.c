/* SPDX-License-Identifier: MIT */
/*
 * sched/topology.c - CPU lists, the host's CPU sets and topology (SMT, caches, NUMA nodes) read from
 * sysfs under a root, and the kernel command line's isolation parameters.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "sysfs.h"

/* Parse one decimal CPU number at *p; advance *p. Returns the number, -1 if none, -2 if too big. */
static long
parse_num(const char **p)
{
	const char *s = *p;
	long v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	while (isdigit((unsigned char)*s)) {
		if (v < CPU_SETSIZE)
			v = v * 10 + (*s - '0');
		s++;
	}
	*p = s;
	return v >= CPU_SETSIZE ? -2 : v;
}

static int
parse_list(const char *list, cpu_set_t *set, bool allow_empty)
{
	const char *p = list, *end;
	char shown[72];

	CPU_ZERO(set);
	if (!list)
		return pel__fail(-EINVAL, "cpu list is NULL");
	snprintf(shown, sizeof(shown), "%.64s%s", list, strlen(list) > 64 ? "..." : "");
	while (isspace((unsigned char)*p))
		p++;
	end = p + strlen(p);
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	if (p == end) {
		if (allow_empty)
			return 0;
		return pel__fail(-EINVAL, "cpu list \"%s\" is empty: name at least one CPU, e.g. \"2-5,8\"",
				 shown);
	}
	for (;;) {
		const char *item = p;
		long lo, hi;

		lo = parse_num(&p);
		if (lo == -2)
			return pel__fail(-EINVAL, "cpu list \"%s\": cpu \"%.12s\" is beyond the largest "
					 "supported, %d", shown, item, CPU_SETSIZE - 1);
		if (lo < 0)
			return pel__fail(-EINVAL, "cpu list \"%s\" is malformed at \"%.16s\": expected a "
					 "CPU number", shown, item);
		hi = lo;
		if (p < end && *p == '-') {
			const char *h = ++p;

			hi = parse_num(&p);
			if (hi == -2)
				return pel__fail(-EINVAL, "cpu list \"%s\": cpu \"%.12s\" is beyond the "
						 "largest supported, %d", shown, h, CPU_SETSIZE - 1);
			if (hi < 0)
				return pel__fail(-EINVAL, "cpu list \"%s\" is malformed: range \"%.16s\" "
						 "has no end", shown, item);
			if (hi < lo)
				return pel__fail(-EINVAL, "cpu list \"%s\": range %ld-%ld is reversed "
						 "(write %ld-%ld)", shown, lo, hi, hi, lo);
		}
		for (long c = lo; c <= hi; c++) {
			if (CPU_ISSET(c, set))
				return pel__fail(-EINVAL, "cpu list \"%s\" names cpu %ld twice", shown, c);
			CPU_SET(c, set);
		}
		if (p == end)
			return 0;
		if (*p != ',')
			return pel__fail(-EINVAL, "cpu list \"%s\" is malformed at \"%.16s\": expected "
					 "',' or '-'", shown, p);
		p++;
		if (p == end)
			return pel__fail(-EINVAL, "cpu list \"%s\" ends with ','", shown);
	}
}

int
pel__topo_parse_cpus(const char *list, cpu_set_t *set)
{
	return parse_list(list, set, false);
}

/* Read <root>/<rel> into buf without keeping an error text; *how says which call failed. */
static int
read_small(const char *root, const char *rel, char *buf, size_t len, const char **how)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd, err;

	*how = "open";
	if (len == 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s", root ? root : "", rel);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	err = n < 0 ? -errno : 0;
	close(fd);
	*how = "read";
	if (err)
		return err;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

int
pel__topo_read_file(const char *root, const char *rel, char *buf, size_t len)
{
	const char *how;
	int err = read_small(root, rel, buf, len, &how);

	if (err)
		return pel__fail(err, "cannot %s %s/%s: %s", how, root ? root : "", rel,
				 strerror(-err));
	return 0;
}

int
pel__topo_read_cpus(const char *root, const char *rel, cpu_set_t *set)
{
	char buf[4096];
	int err;

	CPU_ZERO(set);
	err = pel__topo_read_file(root, rel, buf, sizeof(buf));
	if (err)
		return err;
	err = parse_list(buf, set, true);
	if (err)
		return pel__fail(err, "%s/%s holds \"%.64s\", not a CPU list", root ? root : "", rel,
				 buf);
	return 0;
}

char *
pel__topo_format_cpus(const cpu_set_t *set, char *buf, size_t len)
{
	size_t off = 0;
	int c = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	while (c < CPU_SETSIZE) {
		int lo, hi, n;

		if (!CPU_ISSET(c, set)) {
			c++;
			continue;
		}
		lo = hi = c;
		while (hi + 1 < CPU_SETSIZE && CPU_ISSET(hi + 1, set))
			hi++;
		if (lo == hi)
			n = snprintf(buf + off, len - off, "%s%d", off ? "," : "", lo);
		else
			n = snprintf(buf + off, len - off, "%s%d-%d", off ? "," : "", lo, hi);
		if (n < 0 || (size_t)n >= len - off) {
			/* truncated: end with "..." when there is room */
			if (len >= 4)
				strcpy(buf + len - 4, "...");
			return buf;
		}
		off += n;
		c = hi + 1;
	}
	if (off == 0)
		snprintf(buf, len, "none");
	return buf;
}

int
pel__cpu_online(int cpu, char *list, size_t len)
{
	cpu_set_t online;
	int err = pel__topo_read_cpus("", PEL__CPU_DIR "/online", &online);

	if (err)
		return err;
	pel__topo_format_cpus(&online, list, len);
	return cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET(cpu, &online);
}

/* ---- the host's topology ---- */

/* An optional CPU-list file: missing is an empty set (*has false); "(null)" is how older kernels
 * print an unallocated mask. */
static int
read_cpus_opt(const char *root, const char *rel, cpu_set_t *set, bool *has)
{
	char buf[4096];
	const char *how;
	int err;

	CPU_ZERO(set);
	if (has)
		*has = false;
	err = read_small(root, rel, buf, sizeof(buf), &how);
	if (err == -ENOENT)
		return 0;
	if (err)
		return pel__fail(err, "cannot %s %s/%s: %s", how, root, rel, strerror(-err));
	if (has)
		*has = true;
	if (!strcmp(buf, "(null)"))
		return 0;
	err = parse_list(buf, set, true);
	if (err)
		return pel__fail(err, "%s/%s holds \"%.64s\", not a CPU list", root, rel, buf);
	return 0;
}

/* An optional integer file: missing leaves *v alone. */
static int
read_int_opt(const char *root, const char *rel, int *v)
{
	char buf[64], *end;
	const char *how;
	long n;
	int err;

	err = read_small(root, rel, buf, sizeof(buf), &how);
	if (err == -ENOENT)
		return 0;
	if (err)
		return pel__fail(err, "cannot %s %s/%s: %s", how, root, rel, strerror(-err));
	errno = 0;
	n = strtol(buf, &end, 10);
	if (end == buf || *end != '\0' || errno || n < INT_MIN || n > INT_MAX)
		return pel__fail(-EINVAL, "%s/%s holds \"%.32s\", not a number", root, rel, buf);
	*v = (int)n;
	return 0;
}

static int
first_cpu(const cpu_set_t *set)
{
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, set))
			return c;
	return -1;
}

static int
load_cpu(const char *root, struct pel__topo *t, int c)
{
	char rel[128];
	cpu_set_t set;
	bool has;
	int err, best = -1;

	snprintf(rel, sizeof(rel), PEL__CPU_DIR "/cpu%d/topology/core_cpus_list", c);
	err = read_cpus_opt(root, rel, &set, &has);
	if (!err && !has) {
		snprintf(rel, sizeof(rel), PEL__CPU_DIR "/cpu%d/topology/thread_siblings_list", c);
		err = read_cpus_opt(root, rel, &set, &has);
	}
	if (err)
		return err;
	if (has) {
		CPU_SET(c, &set);
		t->smt[c] = (short)first_cpu(&set);
	}
	snprintf(rel, sizeof(rel), PEL__CPU_DIR "/cpu%d/topology/core_id", c);
	err = read_int_opt(root, rel, &t->core[c]);
	if (err)
		return err;
	snprintf(rel, sizeof(rel), PEL__CPU_DIR "/cpu%d/topology/physical_package_id", c);
	err = read_int_opt(root, rel, &t->package[c]);
	if (err)
		return err;

	/* index0 .. indexN until one is missing; the highest level holding data wins */
	for (int i = 0; i < 32; i++) {
		char type[32];
		const char *how;
		int level = -1;

		snprintf(rel, sizeof(rel), PEL__CPU_DIR "/cpu%d/cache/index%d/level", c, i);
		err = read_int_opt(root, rel, &level);
		if (err)
			return err;
		if (level < 0)
			break;
		snprintf(rel, sizeof(rel), PEL__CPU_DIR "/cpu%d/cache/index%d/type", c, i);
		err = read_small(root, rel, type, sizeof(type), &how);
		if (err == -ENOENT)
			continue;
		if (err)
			return pel__fail(err, "cannot %s %s/%s: %s", how, root, rel,
					 strerror(-err));
		if (strcmp(type, "Unified") && strcmp(type, "Data")) {
			if (strcmp(type, "Instruction"))
				return pel__fail(-EINVAL, "%s/%s holds \"%.31s\", not Data, "
						 "Instruction or Unified", root, rel, type);
			continue;
		}
		if (level <= best)
			continue;
		snprintf(rel, sizeof(rel), PEL__CPU_DIR "/cpu%d/cache/index%d/shared_cpu_list",
			 c, i);
		err = read_cpus_opt(root, rel, &set, &has);
		if (err)
			return err;
		if (!has)
			continue;
		CPU_SET(c, &set);
		best = level;
		t->llc[c] = (short)first_cpu(&set);
		t->llc_level[c] = (short)level;
	}
	return 0;
}

static int
load_nodes(const char *root, struct pel__topo *t)
{
	char path[PATH_MAX], rel[128];
	struct dirent *d;
	DIR *dir;
	int err = 0;

	snprintf(path, sizeof(path), "%s/" PEL__NODE_DIR, root);
	dir = opendir(path);
	if (!dir && errno != ENOENT && errno != ENOTDIR)
		return pel__fail(-errno, "cannot open %s: %s", path, strerror(errno));
	while (dir && (d = readdir(dir))) {
		const char *p = d->d_name + 4;
		cpu_set_t set;
		bool has;
		long id;

		if (strncmp(d->d_name, "node", 4) || !isdigit((unsigned char)*p))
			continue;
		id = parse_num(&p);
		if (*p != '\0' || id < 0 || id >= PEL__TOPO_MAX_NODES)
			continue;
		snprintf(rel, sizeof(rel), PEL__NODE_DIR "/node%ld/cpulist", id);
		err = read_cpus_opt(root, rel, &set, &has);
		if (err)
			break;
		t->has_nodes = true;
		if (id + 1 > t->nnodes)
			t->nnodes = (int)id + 1;
		CPU_AND(&t->node_cpus[id], &set, &t->online);
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &t->node_cpus[id]))
				t->node[c] = (short)id;
	}
	if (dir)
		closedir(dir);
	if (err)
		return err;
	if (!t->has_nodes) {
		t->nnodes = 1;
		t->node_cpus[0] = t->online;
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &t->online))
				t->node[c] = 0;
	}
	return 0;
}

int
pel__topo_load(const char *root, struct pel__topo *t)
{
	int err;

	if (!t)
		return pel__fail(-EINVAL, "topology is NULL");
	if (!root)
		root = "";
	memset(t, 0, sizeof(*t));
	for (int c = 0; c < CPU_SETSIZE; c++) {
		t->node[c] = t->smt[c] = t->llc[c] = t->llc_level[c] = -1;
		t->core[c] = t->package[c] = -1;
	}
	err = pel__topo_read_cpus(root, PEL__CPU_DIR "/online", &t->online);
	if (err)
		return err;
	if (CPU_COUNT(&t->online) == 0)
		return pel__fail(-EINVAL, "%s/" PEL__CPU_DIR "/online is empty: no CPU is online",
				 root);
	err = read_cpus_opt(root, PEL__CPU_DIR "/isolated", &t->isolated, &t->has_isolated);
	if (err)
		return err;
	err = read_cpus_opt(root, PEL__CPU_DIR "/nohz_full", &t->nohz_full, &t->has_nohz_full);
	if (err)
		return err;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &t->online))
			continue;
		err = load_cpu(root, t, c);
		if (err)
			return err;
	}
	return load_nodes(root, t);
}

static bool
online(const struct pel__topo *t, int cpu)
{
	return cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET(cpu, &t->online);
}

int
pel__topo_cpu_node(const struct pel__topo *t, int cpu)
{
	return online(t, cpu) ? t->node[cpu] : -1;
}

bool
pel__topo_smt_siblings(const struct pel__topo *t, int a, int b)
{
	return a != b && online(t, a) && online(t, b) && t->smt[a] >= 0 && t->smt[a] == t->smt[b];
}

bool
pel__topo_same_llc(const struct pel__topo *t, int a, int b)
{
	return online(t, a) && online(t, b) && t->llc[a] >= 0 && t->llc[a] == t->llc[b];
}

unsigned
pel__topo_smt_pairs(const struct pel__topo *t, const cpu_set_t *workers, int (*pairs)[2],
		    unsigned max)
{
	unsigned n = 0;

	for (int a = 0; a < CPU_SETSIZE; a++) {
		if (!CPU_ISSET(a, workers) || !online(t, a) || t->smt[a] < 0)
			continue;
		for (int b = a + 1; b < CPU_SETSIZE; b++) {
			if (!CPU_ISSET(b, workers) || !pel__topo_smt_siblings(t, a, b))
				continue;
			if (n < max) {
				pairs[n][0] = a;
				pairs[n][1] = b;
			}
			n++;
		}
	}
	return n;
}

/* ---- the kernel command line ---- */

int
pel__cmdline_param(const char *cmdline, const char *name, char *val, size_t len)
{
	size_t nlen = strlen(name);
	const char *p = cmdline;
	int found = -ENOENT;

	while (p && *p) {
		const char *tok, *eq, *v;
		bool quoted = false;
		size_t vlen;

		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		/* a token runs to white space outside double quotes, as the kernel's next_arg() */
		tok = p;
		while (*p && (quoted || !isspace((unsigned char)*p))) {
			if (*p == '"')
				quoted = !quoted;
			p++;
		}
		if (p - tok == 2 && !strncmp(tok, "--", 2))
			break;
		if ((size_t)(p - tok) < nlen || strncmp(tok, name, nlen))
			continue;
		eq = tok + nlen;
		if (eq == p) {
			v = eq;
		} else if (*eq == '=') {
			v = eq + 1;
		} else {
			continue;
		}
		vlen = p - v;
		if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
			v++;
			vlen -= 2;
		}
		if (vlen >= len)
			return -ENAMETOOLONG;
		memcpy(val, v, vlen);
		val[vlen] = '\0';
		found = 0;
	}
	return found;
}

int
pel__cmdline_isolcpus(const char *val, cpu_set_t *set, unsigned *flags)
{
	static const struct {
		const char *name;
		unsigned flag;
	} known[] = {
		{ "domain", PEL__ISOL_DOMAIN },
		{ "nohz", PEL__ISOL_NOHZ },
		{ "managed_irq", PEL__ISOL_MANAGED_IRQ },
	};
	const char *p = val;
	int err;

	*flags = 0;
	CPU_ZERO(set);
	while (isalpha((unsigned char)*p)) {
		size_t n = strcspn(p, ",");
		unsigned f = 0;

		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strlen(known[i].name) == n && !strncmp(p, known[i].name, n))
				f = known[i].flag;
		if (!f)
			return pel__fail(-EINVAL, "isolcpus=%.64s: unknown flag \"%.*s\" (known: "
					 "nohz, domain, managed_irq)", val,
					 (int)(n > 32 ? 32 : n), p);
		*flags |= f;
		p += n;
		if (*p != ',')
			return pel__fail(-EINVAL, "isolcpus=%.64s names no CPU", val);
		p++;
	}
	if (!*flags)
		*flags = PEL__ISOL_DOMAIN;
	err = pel__topo_parse_cpus(p, set);
	if (err)
		return pel__fail(err, "isolcpus=%.64s: the CPU list \"%.64s\" is not one pel reads",
				 val, p);
	return 0;
}

static int
cmdline_cpus(const char *cmd, const char *name, cpu_set_t *set, bool *has)
{
	char val[4096];
	int err;

	CPU_ZERO(set);
	*has = false;
	err = pel__cmdline_param(cmd, name, val, sizeof(val));
	if (err == -ENOENT)
		return 0;
	if (err)
		return pel__fail(-EINVAL, "%s= on the kernel command line is too long", name);
	*has = true;
	if (!val[0])
		return 0;
	err = pel__topo_parse_cpus(val, set);
	if (err)
		return pel__fail(err, "%s=%.64s: the CPU list is not one pel reads", name, val);
	return 0;
}

int
pel__topo_cmdline(const char *root, struct pel__cmdline *c)
{
	char cmd[8192], val[4096];
	int err;

	memset(c, 0, sizeof(*c));
	err = pel__topo_read_file(root ? root : "", "proc/cmdline", cmd, sizeof(cmd));
	if (err)
		return err;
	err = pel__cmdline_param(cmd, "isolcpus", val, sizeof(val));
	if (err == 0) {
		c->has_isolcpus = true;
		err = pel__cmdline_isolcpus(val, &c->isolcpus, &c->isol_flags);
		if (err)
			return err;
	} else if (err != -ENOENT) {
		return pel__fail(-EINVAL, "isolcpus= on the kernel command line is too long");
	}
	err = cmdline_cpus(cmd, "nohz_full", &c->nohz_full, &c->has_nohz_full);
	if (err)
		return err;
	if (!pel__cmdline_param(cmd, "rcu_nocbs", val, sizeof(val)) && !strcmp(val, "all")) {
		c->has_rcu_nocbs = c->rcu_nocbs_all = true;
	} else {
		err = cmdline_cpus(cmd, "rcu_nocbs", &c->rcu_nocbs, &c->has_rcu_nocbs);
		if (err)
			return err;
	}
	return cmdline_cpus(cmd, "irqaffinity", &c->irqaffinity, &c->has_irqaffinity);
}
