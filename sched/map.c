/* SPDX-License-Identifier: MIT */
/* sched/map.c - anonymous memory on 2 MiB hugepages when asked, normal pages otherwise. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define HUGE_2M		((size_t)2 << 20)

void *
pel__map(const struct pel_runtime *rt, size_t len, bool want_huge, const char *what,
	 size_t *mapped, bool *huge)
{
	return pel__map_at(rt, NULL, len, want_huge, what, mapped, huge);
}

void *
pel__map_at(const struct pel_runtime *rt, void *at, size_t len, bool want_huge, const char *what,
	    size_t *mapped, bool *huge)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int fixed = at ? MAP_FIXED : 0;
	void *mem = MAP_FAILED;

	len = (len + page - 1) & ~(page - 1);
	*huge = false;
	if (want_huge) {
		size_t hlen = (len + HUGE_2M - 1) & ~(HUGE_2M - 1);

		/* at: the kernel reserves the hugepages before it touches the range, so a refusal
		 * leaves the caller's reservation there for the fallback below */
		mem = mmap(at, hlen, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | fixed, -1, 0);
		if (mem == MAP_FAILED) {
			pel__rt_log(rt, PEL_LOG_WARNING, "%s: no 2 MiB hugepage for %zu KiB (%s); "
				    "using normal pages. Reserve some: echo N > "
				    "/proc/sys/vm/nr_hugepages", what, len >> 10, strerror(errno));
		} else {
			len = hlen;
			*huge = true;
		}
	}
	if (mem == MAP_FAILED)
		mem = mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | fixed, -1,
			   0);
	if (mem == MAP_FAILED) {
		pel__fail(-ENOMEM, "%s: cannot map %zu bytes: %s", what, len, strerror(errno));
		return NULL;
	}
	*mapped = len;
	return mem;
}
