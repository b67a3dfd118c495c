// SPDX-License-Identifier: MIT
// tests/test_cxx.cc - pel.h and par.h compile and link from C++ (no C11 _Atomic leaks into them).
#include <pel/par.h>
#include <pel/pel.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

static std::atomic<int> ran{0};

static void
task(void *)
{
	ran++;
}

int
main()
{
	pel_config cfg;
	pel_runtime *rt = nullptr;
	pel_producer *p = nullptr;

	pel_config_default(&cfg);
	cfg.cpus = "0";
	cfg.idle = PEL_IDLE_PARK;
	if (pel_create(&cfg, &rt) || pel_producer_open(rt, &p) || pel_submit(p, 0, task, nullptr) ||
	    pel_par_enable(rt, 0) || pel_submit_any(p, task, nullptr) ||
	    pel_drain(rt, 5 * PEL_NS_PER_S)) {
		std::fprintf(stderr, "failed: %s\n", pel_last_error());
		return 1;
	}
	pel_destroy(rt);
	/* a handle outlives destroy: it refuses work, and closing it frees the rest */
	if (pel_submit(p, 0, task, nullptr) != -ESHUTDOWN)
		return 1;
	pel_producer_close(p);
	static_assert(sizeof(pel_group) == 128, "pel_group keeps its C layout");
	return ran == 2 ? 0 : 1;
}
