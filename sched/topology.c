/* SPDX-License-Identifier: MIT */
/* sched/topology.c - CPU lists and the host's CPU sets, read from sysfs under a root. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

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

int
pel__topo_read_file(const char *root, const char *rel, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd, err;

	if (len == 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s", root ? root : "", rel);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		return pel__fail(err, "cannot open %s: %s", path, strerror(-err));
	}
	n = read(fd, buf, len - 1);
	err = n < 0 ? -errno : 0;
	close(fd);
	if (err)
		return pel__fail(err, "cannot read %s: %s", path, strerror(-err));
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
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
