/* SPDX-License-Identifier: MIT */
/*
 * sched/barrier.c - pel_destroy()'s side of the stop/enter pair: membarrier, or a fence where it is
 * missing (see internal.h). The park/wake pair uses pel__fence() on both sides and no membarrier:
 * membarrier interrupts every CPU running a thread of the process, isolated spinning workers
 * included, and parking is frequent.
 */
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

_Atomic bool pel__light_needs_fence = true;
static bool have_membarrier;
static bool forced_fence;
static _Atomic uint64_t membarrier_calls;	/* PRIVATE_EXPEDITED calls: tests read it */
static pthread_once_t barrier_once = PTHREAD_ONCE_INIT;

static long
membarrier(int cmd, unsigned flags)
{
	return syscall(__NR_membarrier, cmd, flags, 0);
}

static void
barrier_setup(void)
{
	long cmds = membarrier(MEMBARRIER_CMD_QUERY, 0);

	if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
	    membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0)
		have_membarrier = true;
	pel__light_needs_fence = !have_membarrier || forced_fence;
}

void
pel__barrier_init(void)
{
	pthread_once(&barrier_once, barrier_setup);
}

void
pel__barrier_force_fence(bool on)
{
	pel__barrier_init();
	forced_fence = on;
	pel__light_needs_fence = !have_membarrier || forced_fence;
}

uint64_t
pel__barrier_membarrier_calls(void)
{
	return atomic_load_explicit(&membarrier_calls, memory_order_relaxed);
}

void
pel__barrier_heavy(void)
{
	/* seq_cst fence: pairs with the fence of pel__barrier_light() in the fallback */
	atomic_thread_fence(memory_order_seq_cst);
	if (pel__light_needs_fence)
		return;
	atomic_fetch_add_explicit(&membarrier_calls, 1, memory_order_relaxed);
	/* Pairs with pel__barrier_light()'s compiler barrier: every thread of this process running
	 * now executes a full barrier before this returns; one not running passes through the
	 * scheduler, which is one. */
	if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) != 0) {
		/* Cannot happen once registered; stay correct if it does: fence on both sides. */
		pel__light_needs_fence = true;
		atomic_thread_fence(memory_order_seq_cst);
	}
}
