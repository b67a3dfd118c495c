// SPDX-License-Identifier: MIT
// tests/test_cxx.cc - pel.h, par.h and rt.h compile and link from C++ (no C11 _Atomic leaks).
#include <pel/par.h>
#include <pel/pel.h>
#include <pel/rt.h>

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
	pel_rt_task t = { task, nullptr, PEL_NO_DEADLINE, 1 };

	if (pel_should_yield())	/* false outside a task */
		return 1;
	if (pel_create(&cfg, &rt) || pel_producer_open(rt, &p) || pel_submit(p, 0, task, nullptr) ||
	    pel_par_enable(rt, 0) || pel_submit_any(p, task, nullptr) ||
	    pel_submit_rt(p, 0, &t) || pel_drain(rt, 5 * PEL_NS_PER_S)) {
		std::fprintf(stderr, "failed: %s\n", pel_last_error());
		return 1;
	}
	pel_destroy(rt);
	/* a handle outlives destroy: it refuses work, and closing it frees the rest */
	if (pel_submit(p, 0, task, nullptr) != -ESHUTDOWN)
		return 1;
	pel_producer_close(p);
	static_assert(sizeof(pel_group) == 128, "pel_group keeps its C layout");
	return ran == 3 ? 0 : 1;
}
