/* SPDX-License-Identifier: MIT */
/* sched/config.c - defaults, and the whole-config check that decides what pel_create() starts. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "sysfs.h"

static bool allowed_overridden;
static cpu_set_t allowed_override;

void
pel_config_default(struct pel_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->idle = PEL_IDLE_BACKOFF;
}

void
pel__set_allowed_cpus_override(const cpu_set_t *set)
{
	allowed_overridden = set != NULL;
	if (set)
		allowed_override = *set;
}

/*
 * What limits where a thread may be pinned is the cgroup's cpuset, not the mask of whichever thread
 * calls pel_create() (a program may well have pinned its main thread to the producer's CPU first).
 * cgroup v2: <mount>/<path>/cpuset.cpus.effective; v1: <mount>/cpuset/<path>/cpuset.effective_cpus.
 */
static int
cgroup_cpus(cpu_set_t *set)
{
	char line[1024], rel[1200];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (err && fgets(line, sizeof(line), f)) {
		char *ctl = strchr(line, ':'), *path;

		if (!ctl || !(path = strchr(ctl + 1, ':')))
			continue;
		*path++ = '\0';
		path[strcspn(path, "\n")] = '\0';
		if (!strcmp(path, "/"))
			path = "";
		if (!strcmp(ctl + 1, "")) {
			snprintf(rel, sizeof(rel), "sys/fs/cgroup%s/cpuset.cpus.effective", path);
			err = pel__topo_read_cpus("", rel, set);
		} else if (strstr(ctl + 1, "cpuset")) {
			snprintf(rel, sizeof(rel), "sys/fs/cgroup/cpuset%s/cpuset.effective_cpus", path);
			err = pel__topo_read_cpus("", rel, set);
		}
		if (!err && CPU_COUNT(set) == 0)
			err = -ENOENT;
	}
	fclose(f);
	return err;
}

int
pel__allowed_cpus(cpu_set_t *set)
{
	if (allowed_overridden) {
		*set = allowed_override;
		return 0;
	}
	return cgroup_cpus(set);
}

static const char *
idle_name(enum pel_idle idle)
{
	return idle == PEL_IDLE_SPIN ? "PEL_IDLE_SPIN" :
	       idle == PEL_IDLE_BACKOFF ? "PEL_IDLE_BACKOFF" : "PEL_IDLE_PARK";
}

static int
check_fields(struct pel_config *c)
{
	for (size_t i = 0; i < sizeof(c->reserved) / sizeof(c->reserved[0]); i++)
		if (c->reserved[i])
			return pel__fail(-EINVAL, "reserved[%zu] is not zero: start from "
					 "pel_config_default()", i);
	if (c->flags & ~PEL_F_ALL)
		return pel__fail(-EINVAL, "flags 0x%x hold bits this version does not know (0x%x)",
				 c->flags, c->flags & ~PEL_F_ALL);
	if ((unsigned)c->idle > PEL_IDLE_PARK)
		return pel__fail(-EINVAL, "idle %d is not one of PEL_IDLE_SPIN, PEL_IDLE_BACKOFF, "
				 "PEL_IDLE_PARK", (int)c->idle);
	if (c->ring_slots == 0)
		c->ring_slots = PEL__DEFAULT_SLOTS;
	if (c->ring_slots & (c->ring_slots - 1))
		return pel__fail(-EINVAL, "ring_slots %u is not a power of two", c->ring_slots);
	if (c->ring_slots > PEL_RING_MAX_SLOTS)
		return pel__fail(-EINVAL, "ring_slots %u is beyond the largest ring, %u slots",
				 c->ring_slots, PEL_RING_MAX_SLOTS);
	if (c->max_producers == 0)
		c->max_producers = PEL__DEFAULT_PRODUCERS;
	if (c->max_producers > PEL__MAX_PRODUCERS)
		return pel__fail(-EINVAL, "max_producers %u is beyond the limit, %u",
				 c->max_producers, PEL__MAX_PRODUCERS);
	if (c->rt_priority < 0 || c->rt_priority > 99)
		return pel__fail(-EINVAL, "rt_priority %d is outside 0..99 (0 leaves the scheduling "
				 "policy alone, 1..99 asks for SCHED_FIFO)", c->rt_priority);
	if (c->idle_park_ns == 0)
		c->idle_park_ns = PEL__DEFAULT_PARK_NS;
	if (c->idle_spin_ns == 0)
		c->idle_spin_ns = PEL__DEFAULT_SPIN_NS;
	if (c->idle_spin_ns > c->idle_park_ns)
		c->idle_spin_ns = c->idle_park_ns;
	if (c->idle_park_ns > 60 * PEL_NS_PER_S)
		return pel__fail(-EINVAL, "idle_park_ns %llu is over a minute",
				 (unsigned long long)c->idle_park_ns);
	return 0;
}

static int
pick_cpus(struct pel__plan *pl, const cpu_set_t *allowed, bool check_allowed)
{
	const struct pel_config *c = &pl->cfg;
	char a[256], b[256];
	cpu_set_t s;
	int err;

	if (c->cpus) {
		err = pel__topo_parse_cpus(c->cpus, &pl->workers);
		if (err)
			return err;
		for (int i = 0; i < CPU_SETSIZE; i++) {
			if (!CPU_ISSET(i, &pl->workers))
				continue;
			if (!CPU_ISSET(i, &pl->online))
				return pel__fail(-EINVAL, "cpu %d is not online (online: %s)", i,
						 pel__topo_format_cpus(&pl->online, a, sizeof(a)));
			if (check_allowed && !CPU_ISSET(i, allowed))
				return pel__fail(-EINVAL, "cpu %d is outside the CPUs this process's "
						 "cgroup allows (cpuset: %s)", i,
						 pel__topo_format_cpus(allowed, b, sizeof(b)));
		}
		return 0;
	}
	/* Default: the isolated CPUs, else every online CPU but CPU 0, else CPU 0. */
	CPU_AND(&s, &pl->isolated, &pl->online);
	if (check_allowed)
		CPU_AND(&s, &s, allowed);
	if (CPU_COUNT(&s) == 0) {
		s = pl->online;
		if (check_allowed)
			CPU_AND(&s, &s, allowed);
		if (CPU_COUNT(&s) > 1)
			CPU_CLR(0, &s);
	}
	if (CPU_COUNT(&s) == 0)
		return pel__fail(-EINVAL, "no CPU to run workers on: online %s, allowed %s",
				 pel__topo_format_cpus(&pl->online, a, sizeof(a)),
				 pel__topo_format_cpus(allowed, b, sizeof(b)));
	pl->workers = s;
	return 0;
}

int
pel__config_resolve(const struct pel_config *cfg, struct pel__plan *pl)
{
	cpu_set_t allowed, avail;
	bool check_allowed;
	char a[256], b[256], buf[64];
	int err;

	if (!cfg)
		return pel__fail(-EINVAL, "config is NULL: fill one with pel_config_default()");
	if (!pl)
		return pel__fail(-EINVAL, "plan is NULL");
	memset(pl, 0, sizeof(*pl));
	pl->cfg = *cfg;
	err = check_fields(&pl->cfg);
	if (err)
		return err;
	if (cfg->sysfs_root && strlen(cfg->sysfs_root) >= sizeof(pl->root))
		return pel__fail(-EINVAL, "sysfs_root is longer than %zu bytes", sizeof(pl->root) - 1);
	snprintf(pl->root, sizeof(pl->root), "%s", cfg->sysfs_root ? cfg->sysfs_root : "");
	pl->cfg.sysfs_root = pl->root;

	err = pel__topo_read_cpus(pl->root, PEL__CPU_DIR "/online", &pl->online);
	if (err) {
		char why[256];

		snprintf(why, sizeof(why), "%s", pel_last_error());
		return pel__fail(err, "cannot learn the online CPUs: %s", why);
	}
	err = pel__topo_read_cpus(pl->root, PEL__CPU_DIR "/isolated", &pl->isolated);
	if (err == -ENOENT)
		CPU_ZERO(&pl->isolated);
	else if (err)
		return err;

	/* The cgroup's cpuset describes this host, not a fixture tree (unless a test says so); when
	 * it cannot be read, pinning itself reports a forbidden CPU. */
	check_allowed = pl->root[0] == '\0' || allowed_overridden;
	if (pel__allowed_cpus(&allowed))
		CPU_ZERO(&allowed);
	if (CPU_COUNT(&allowed) == 0)
		check_allowed = false;
	err = pick_cpus(pl, &allowed, check_allowed);
	if (err)
		return err;

	pl->nworkers = 0;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &pl->workers))
			pl->cpu[pl->nworkers++] = i;
	pel__topo_format_cpus(&pl->workers, pl->cpus_text, sizeof(pl->cpus_text));
	pl->cfg.cpus = pl->cpus_text;

	CPU_XOR(&pl->not_isolated, &pl->workers, &pl->isolated);
	CPU_AND(&pl->not_isolated, &pl->not_isolated, &pl->workers);
	if (pl->cfg.flags & PEL_F_REQUIRE_ISOLATED) {
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &pl->not_isolated))
				return pel__fail(-EINVAL, "cpu %d is not isolated (isolated: %s) and "
						 "PEL_F_REQUIRE_ISOLATED is set; boot with isolcpus= and "
						 "nohz_full= naming it, or drop the flag", i,
						 pel__topo_format_cpus(&pl->isolated, a, sizeof(a)));
	}

	pl->busy = pl->cfg.idle == PEL_IDLE_SPIN;
	pl->poll_some = pl->cfg.idle != PEL_IDLE_PARK;
	avail = pl->online;
	if (check_allowed)
		CPU_AND(&avail, &avail, &allowed);
	if (pl->busy && !(pl->cfg.flags & PEL_F_SHARE_CPUS) &&
	    pl->nworkers >= (unsigned)CPU_COUNT(&avail))
		return pel__fail(-EINVAL, "%u busy-polling workers (%s, on %s) would take every CPU "
				 "this process may use (%s), leaving none for its other threads; use "
				 "fewer CPUs, PEL_IDLE_BACKOFF or PEL_IDLE_PARK, or PEL_F_SHARE_CPUS",
				 pl->nworkers, idle_name(pl->cfg.idle), pl->cpus_text,
				 pel__topo_format_cpus(&avail, b, sizeof(b)));

	/* Rings are written through at create (no page fault later): refuse what RAM cannot hold
	 * rather than let the OOM killer answer. Half the host's memory is the ceiling. */
	{
		unsigned long long rings = (unsigned long long)pl->nworkers *
					   (pl->nworkers + pl->cfg.max_producers + 1);
		unsigned long long bytes = rings * pel_ring_memsize(pl->cfg.ring_slots);
		unsigned long long ram = (unsigned long long)sysconf(_SC_PHYS_PAGES) *
					 (unsigned long long)sysconf(_SC_PAGESIZE);

		if (ram && bytes > ram / 2)
			return pel__fail(-EINVAL, "rings would take %.1f GiB (%u workers x %llu rings "
					 "of %u slots), over half of this host's %.1f GiB; lower "
					 "ring_slots or max_producers", (double)bytes / (1 << 30),
					 pl->nworkers, rings / pl->nworkers, pl->cfg.ring_slots,
					 (double)ram / (1 << 30));
	}

	pl->rt_runtime_us = LONG_MIN;
	if (!pel__topo_read_file(pl->root, "proc/sys/kernel/sched_rt_runtime_us", buf,
				 sizeof(buf))) {
		char *end;
		long v = strtol(buf, &end, 10);

		if (end != buf && *end == '\0')
			pl->rt_runtime_us = v;
	}
	return 0;
}
