/* SPDX-License-Identifier: MIT */
/* sched/barrier.c - the heavy side of pel's asymmetric barriers (see internal.h). */
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

_Atomic bool pel__light_needs_fence = true;
static bool have_membarrier;
static bool forced_fence;
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

void
pel__barrier_heavy(void)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (pel__light_needs_fence)
		return;
	/* Every thread of this process running now executes a full barrier before this returns;
	 * one not running passes through the scheduler, which is one. */
	if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) != 0) {
		/* Cannot happen once registered; stay correct if it does: fence on both sides. */
		pel__light_needs_fence = true;
		atomic_thread_fence(memory_order_seq_cst);
	}
}
