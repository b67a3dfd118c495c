/* SPDX-License-Identifier: MIT */
/*
 * sched/worker.c - the worker: set-up on its own CPU, the polling loop, idle strategies, parking.
 *
 * Loop: take up to PEL__BURST tasks from each inbound ring (mesh rings first, then producers), run
 * them, publish the ring's head (so head counts completed tasks), run the pollers; if nothing was
 * found apply the idle strategy. Nothing in the loop locks, allocates or makes a syscall except
 * the idle strategy's yield and park, which only run when there is no work.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "stamps.h"
#include "trace/trace.h"

#define HUGE_2M (2u << 20)

PEL__TLS struct pel_worker *pel__self;
__thread struct pel__tls pel__tls_worker;	/* pool.h's inline fast paths read it */

static long
futex(_Atomic uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static int
start_fail(struct pel_worker *w, int err, const char *fmt, ...) pel__printf(3, 4);

static int
start_fail(struct pel_worker *w, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->start_msg, sizeof(w->start_msg), fmt, ap);
	va_end(ap);
	w->start_err = err;
	return err;
}

int
pel__worker_rings_alloc(struct pel_worker *w)
{
	struct pel_runtime *rt = w->rt;
	unsigned nrings = rt->nworkers + rt->nslots;
	/* each ring, then its enqueue stamps when tracing is compiled in (trace/trace.h) */
	size_t stride = pel_ring_memsize(rt->slots) + pel__stamps_size(rt->slots);
	size_t len = stride * nrings;
	void *mem = MAP_FAILED;

	if (rt->plan->cfg.flags & PEL_F_HUGEPAGES) {
		size_t hlen = (len + HUGE_2M - 1) & ~(size_t)(HUGE_2M - 1);

		mem = mmap(NULL, hlen, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (mem == MAP_FAILED)
			pel__log(rt->log, rt->log_arg, PEL_LOG_WARNING,
				 "worker %u: no 2 MiB hugepage for its %zu KiB of rings (%s); using "
				 "normal pages. Reserve some: echo N > /proc/sys/vm/nr_hugepages",
				 w->id, len >> 10, strerror(errno));
		else
			len = hlen;
	}
	if (mem == MAP_FAILED)
		mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return start_fail(w, -ENOMEM, "worker %u: cannot map %zu bytes of rings: %s", w->id,
				  len, strerror(errno));
	w->mem = mem;
	w->mem_len = len;
	/* First touch from this thread, on this CPU: the pages come from the worker's node. */
	for (unsigned i = 0; i < nrings; i++) {
		w->in[i] = (struct pel_ring *)((char *)mem + (size_t)i * stride);
		pel_ring_init(w->in[i], rt->slots);
	}
	w->nin = rt->nworkers;
	if (rt->plan->cfg.flags & PEL_F_MLOCK) {
		if (mlock(mem, len) || mlock(w, sizeof(*w))) {
			struct rlimit rl = { 0, 0 };
			int err = errno == EPERM ? -EPERM : -ENOMEM;

			getrlimit(RLIMIT_MEMLOCK, &rl);
			return start_fail(w, err, "worker %u: mlock of %zu bytes refused (%s); "
					  "RLIMIT_MEMLOCK is %llu bytes: raise it (ulimit -l) or grant "
					  "CAP_IPC_LOCK", w->id, len, strerror(errno),
					  (unsigned long long)rl.rlim_cur);
		}
	}
	return 0;
}

static int
setup(struct pel_worker *w)
{
	struct pel_runtime *rt = w->rt;
	int prio = rt->plan->cfg.rt_priority;
	char name[16];

	snprintf(name, sizeof(name), "pel-w%u", w->id);
	pthread_setname_np(pthread_self(), name);
	if (sched_getcpu() != w->cpu)
		return start_fail(w, -EINVAL, "worker %u runs on cpu %d, not on cpu %d it was "
				  "pinned to", w->id, sched_getcpu(), w->cpu);
	if (prio > 0) {
		struct sched_param sp = { .sched_priority = prio };
		int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);

		if (err) {
			struct rlimit rl = { 0, 0 };

			getrlimit(RLIMIT_RTPRIO, &rl);
			return start_fail(w, -err, "SCHED_FIFO priority %d refused for worker %u "
					  "(cpu %d): %s; it needs CAP_SYS_NICE or RLIMIT_RTPRIO >= %d "
					  "(now %llu)", prio, w->id, w->cpu, strerror(err), prio,
					  (unsigned long long)rl.rlim_cur);
		}
	}
	return pel__worker_rings_alloc(w);
}

/* Any inbound ring with a task ready? (Used only before parking.) */
static bool
rings_ready(struct pel_worker *w, unsigned nin)
{
	struct pel_task t;

	for (unsigned r = 0; r < nin; r++)
		if (pel_ring_peek_burst(w->in[r], &t, 1))
			return true;
	return false;
}

static void
park(struct pel_worker *w, unsigned nin, uint64_t *parks)
{
	struct pel_runtime *rt = w->rt;

	atomic_store_explicit(&w->parked, 1, memory_order_relaxed);
	/* Dekker with pel__wake(): our parked store before the re-scan below, on every CPU */
	pel__barrier_heavy();
	nin = rt->nworkers + atomic_load_explicit(&rt->producer_hwm, memory_order_acquire);
	/* park-safe pollers too: work asked of them just before our parked store is not lost */
	for (unsigned p = 0; p < w->npollers; p++)
		if (w->pollers[p].fn(w->pollers[p].ctx) > 0)
			nin = UINT_MAX;
	if (nin == UINT_MAX || rings_ready(w, nin) ||
	    atomic_load_explicit(&rt->exit, memory_order_acquire)) {
		atomic_store_explicit(&w->parked, 0, memory_order_relaxed);
		return;
	}
	(*parks)++;
	atomic_store_explicit(&w->stats.parks, *parks, memory_order_relaxed);
	pel__trace(park, w->id);
	/* acquire: pairs with the exchange in pel__wake_slow(); the waker's push is visible */
	while (atomic_load_explicit(&w->parked, memory_order_acquire))
		futex(&w->parked, FUTEX_WAIT_PRIVATE, 1);
	pel__trace(unpark, w->id);
}

void
pel__wake_slow(struct pel_worker *w)
{
	if (atomic_exchange_explicit(&w->parked, 0, memory_order_acq_rel)) {
		atomic_fetch_add_explicit(&w->wakeups, 1, memory_order_relaxed);
		futex(&w->parked, FUTEX_WAKE_PRIVATE, 1);
	}
}

void
pel__wake_force(struct pel_worker *w)
{
	atomic_store_explicit(&w->parked, 0, memory_order_release);
	futex(&w->parked, FUTEX_WAKE_PRIVATE, 1);
}

int
pel__poller_add(pel__poll_fn fn, void *ctx, unsigned flags)
{
	struct pel_worker *w = pel__self;

	if (!w)
		return pel__fail(-EPERM, "pollers are added from a task running on their worker");
	if (!fn)
		return pel__fail(-EINVAL, "poller function is NULL");
	if (w->npollers == PEL__MAX_POLLERS)
		return pel__fail(-ENOSPC, "worker %u has all %d pollers in use", w->id,
				 PEL__MAX_POLLERS);
	w->pollers[w->npollers].fn = fn;
	w->pollers[w->npollers].ctx = ctx;
	w->pollers[w->npollers].flags = flags;
	w->npollers++;
	if (!(flags & PEL__POLL_PARK_OK))
		w->npollers_wake++;
	return 0;
}

/* A burst with tracing on: each task's dequeue, start and end, identified by (worker, src, seq). */
static void
run_traced(struct pel_worker *w, unsigned r, struct pel_ring *ring, struct pel_task *buf, unsigned n)
{
	unsigned src = r < w->rt->nworkers ? PEL__TRACE_SRC_WORKER + r : r - w->rt->nworkers;
	uint64_t head = atomic_load_explicit(&ring->cons.head, memory_order_relaxed);

	uint64_t now = pel__tsc();

	for (unsigned i = 0; i < n; i++)
		pel__trace(dequeue, w->id, src, head + i, n,
			   pel__stamp_wait(ring, w->rt->slots, head + i, now));
	for (unsigned i = 0; i < n; i++) {
		pel__trace(task_start, w->id, (const void *)buf[i].fn, src, head + i);
		buf[i].fn(buf[i].arg);
		pel__trace(task_end, w->id, (const void *)buf[i].fn, src, head + i);
	}
}

static void
loop(struct pel_worker *w)
{
	struct pel_runtime *rt = w->rt;
	struct pel__worker_stats *st = &w->stats;
	struct pel_task buf[PEL__BURST];
	uint64_t tasks = 0, idle_loops = 0, parks = 0, busy = 0, idle = 0;
	uint64_t mark = pel__tsc(), idle_since = 0;
	const enum pel_idle mode = rt->idle;

	for (;;) {
		unsigned nin = rt->nworkers +
			       atomic_load_explicit(&rt->producer_hwm, memory_order_acquire);
		unsigned found = 0, ran = 0;
		uint64_t now;

		for (unsigned r = 0; r < nin; r++) {
			struct pel_ring *ring = w->in[r];
			unsigned n = pel_ring_peek_burst(ring, buf, PEL__BURST);

			if (!n)
				continue;
			if (pel_unlikely(pel__trace_on(dequeue) || pel__trace_on(task_start)))
				run_traced(w, r, ring, buf, n);
			else
				for (unsigned i = 0; i < n; i++)
					buf[i].fn(buf[i].arg);
			/* head counts tasks that have returned: pel_drain() relies on it */
			pel_ring_consume(ring, n);
			ran += n;
		}
		found = ran;
		for (unsigned p = 0; p < w->npollers; p++) {
			int got = w->pollers[p].fn(w->pollers[p].ctx);

			if (got > 0)
				found += (unsigned)got;
		}

		if (found) {
			if (idle_since)
				pel__trace(idle_exit, w->id);
			now = pel__tsc();
			tasks += ran;
			busy += now - mark;
			mark = now;
			idle_since = 0;
			atomic_store_explicit(&st->tasks_run, tasks, memory_order_relaxed);
			atomic_store_explicit(&st->busy_ns, pel__cycles_to_ns(busy),
					      memory_order_relaxed);
			/* a poller that always reports work must not hold the worker at exit */
			if (!ran && atomic_load_explicit(&rt->exit, memory_order_acquire))
				break;
			continue;
		}
		/* idle: the clock every 8th pass only, so a polling pass stays short (the busy/idle
		 * split is exact to 8 passes per idle period, well under a microsecond) */
		idle_loops++;
		if ((idle_loops & 7) && idle_since && mode != PEL_IDLE_PARK) {
			pel__cpu_relax();	/* exit and the idle strategy: on the 8th pass */
			continue;
		}
		now = pel__tsc();
		idle += now - mark;
		mark = now;
		if (!idle_since) {
			pel__trace(idle_enter, w->id);
			idle_since = now;
			atomic_store_explicit(&st->idle_loops, idle_loops, memory_order_relaxed);
			atomic_store_explicit(&st->idle_ns, pel__cycles_to_ns(idle),
					      memory_order_relaxed);
		} else if (!(idle_loops & 1023)) {
			atomic_store_explicit(&st->idle_loops, idle_loops, memory_order_relaxed);
			atomic_store_explicit(&st->idle_ns, pel__cycles_to_ns(idle),
					      memory_order_relaxed);
		}
		if (atomic_load_explicit(&rt->exit, memory_order_acquire))
			break;
		if (mode == PEL_IDLE_SPIN) {
			pel__cpu_relax();
		} else if (mode == PEL_IDLE_BACKOFF && now - idle_since < rt->spin_cycles) {
			pel__cpu_relax();
		} else if (w->npollers_wake ||
			   (mode == PEL_IDLE_BACKOFF && now - idle_since < rt->park_cycles)) {
			/* pollers cannot wake a parked worker: they keep it at the yield stage */
			sched_yield();
		} else {
			park(w, nin, &parks);
			now = pel__tsc();
			idle += now - mark;
			mark = now;
			idle_since = now;
		}
	}
	atomic_store_explicit(&st->tasks_run, tasks, memory_order_relaxed);
	atomic_store_explicit(&st->idle_loops, idle_loops, memory_order_relaxed);
	atomic_store_explicit(&st->busy_ns, pel__cycles_to_ns(busy), memory_order_relaxed);
	atomic_store_explicit(&st->idle_ns, pel__cycles_to_ns(idle), memory_order_relaxed);
}

void *
pel__worker_main(void *arg)
{
	struct pel_worker *w = arg;
	struct pel_runtime *rt = w->rt;
	int err = setup(w);
	bool run;

	pthread_mutex_lock(&rt->start_lock);
	rt->nstarted++;
	pthread_cond_broadcast(&rt->start_cond);
	while (!rt->go && !rt->abort)
		pthread_cond_wait(&rt->start_cond, &rt->start_lock);
	run = rt->go && !err;
	pthread_mutex_unlock(&rt->start_lock);
	if (!run)
		return NULL;
	pel__self = w;
	pel__tls_worker.rt = rt;
	pel__tls_worker.id = w->id;
	pel__trace(worker_start, w->id, w->cpu);
	loop(w);
	pel__trace(worker_stop, w->id, atomic_load_explicit(&w->stats.tasks_run, memory_order_relaxed));
	pel__tls_worker.rt = NULL;
	pel__self = NULL;
	return NULL;
}
