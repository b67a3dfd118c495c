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
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "stamps.h"
#include "trace/trace.h"

/* Which worker the calling thread is (pel/self.h): the runtime's one thread-local. */
__thread struct pel__tls pel__tls_worker;
/* When the task this thread runs should yield (pel/self.h); never, until a layer asks. */
__thread _Atomic uint64_t pel__yield_at = UINT64_MAX;

static long
futex(_Atomic uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static long
futex_wait_ns(_Atomic uint32_t *uaddr, uint32_t val, uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / PEL_NS_PER_S), (long)(ns % PEL_NS_PER_S) };

	return syscall(SYS_futex, uaddr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
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
	/* each ring, then its enqueue stamps when tracing is compiled in (sched/stamps.h); both
	 * multiples of PEL_CACHE_GUARD, so every ring starts aligned */
	size_t stride = pel_ring_memsize(rt->slots) + pel__stamps_size(rt->slots);
	char what[64];
	bool huge;
	void *mem;

	snprintf(what, sizeof(what), "worker %u's rings", w->id);
	mem = pel__map(rt, stride * nrings, rt->plan->cfg.flags & PEL_F_HUGEPAGES, what,
		       &w->mem_len, &huge);
	if (!mem)
		return start_fail(w, -ENOMEM, "%s", pel_last_error());
	w->mem = mem;
	/* First touch from this thread, on this CPU: the pages come from the worker's node. */
	for (unsigned i = 0; i < nrings; i++) {
		int err;

		w->in[i] = (struct pel_ring *)((char *)mem + (size_t)i * stride);
		err = pel_ring_init(w->in[i], rt->slots);
		if (err)
			return start_fail(w, err, "worker %u: ring %u of %u slots at offset %zu cannot "
					  "be laid out (%s)", w->id, i, rt->slots, (size_t)i * stride,
					  strerror(-err));
	}
	w->nin = rt->nworkers;
	if (rt->plan->cfg.flags & PEL_F_MLOCK) {
		if (mlock(mem, w->mem_len) || mlock(w, sizeof(*w))) {
			struct rlimit rl = { 0, 0 };
			int err = errno == EPERM ? -EPERM : -ENOMEM;

			getrlimit(RLIMIT_MEMLOCK, &rl);
			return start_fail(w, err, "worker %u: mlock of %zu bytes refused (%s); "
					  "RLIMIT_MEMLOCK is %llu bytes: raise it (ulimit -l) or grant "
					  "CAP_IPC_LOCK", w->id, w->mem_len, strerror(errno),
					  (unsigned long long)rl.rlim_cur);
		}
	}
	return 0;
}

/* Touch the top PEL__STACK_TOUCH bytes of the stack: the loop and its tasks do not fault there. */
static __attribute__((noinline)) void
stack_prefault(void)
{
	char buf[PEL__STACK_TOUCH];

	memset(buf, 0, sizeof(buf));
	/* buf escapes: the compiler must lay it out whole and keep the writes */
	__asm__ __volatile__("" : : "r"(buf) : "memory");
}

/*
 * The worker's stack, before it runs a task: its top PEL__STACK_TOUCH bytes touched, and under
 * PEL_F_MLOCK its top PEL__STACK_LOCK bytes locked (which faults them in too).
 */
static int
stack_ready(struct pel_worker *w)
{
	pthread_attr_t a;
	size_t size, len;
	void *addr;
	char *top;

	stack_prefault();
	if (!(w->rt->plan->cfg.flags & PEL_F_MLOCK) || pthread_getattr_np(pthread_self(), &a))
		return 0;
	if (pthread_attr_getstack(&a, &addr, &size)) {
		pthread_attr_destroy(&a);
		return 0;
	}
	pthread_attr_destroy(&a);
	top = (char *)addr + size;
	len = size < PEL__STACK_LOCK ? size : PEL__STACK_LOCK;
	if (mlock(top - len, len)) {
		struct rlimit rl = { 0, 0 };
		int err = errno == EPERM ? -EPERM : -ENOMEM;

		getrlimit(RLIMIT_MEMLOCK, &rl);
		return start_fail(w, err, "worker %u: mlock of the top %zu bytes of its stack "
				  "refused (%s); RLIMIT_MEMLOCK is %llu bytes: raise it (ulimit -l) or "
				  "grant CAP_IPC_LOCK", w->id, len, strerror(errno),
				  (unsigned long long)rl.rlim_cur);
	}
	w->stack_locked = top - len;
	w->stack_locked_len = len;
	return 0;
}

static int
setup(struct pel_worker *w)
{
	struct pel_runtime *rt = w->rt;
	int prio = rt->plan->cfg.rt_priority;
	char name[16];
	int ret;

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
	ret = pel__worker_rings_alloc(w);
	return ret ? ret : stack_ready(w);
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
park(struct pel_worker *w, uint64_t *parks)
{
	struct pel_runtime *rt = w->rt;
	unsigned nin;

	/* relaxed: ordered before the re-scan by the fence below */
	atomic_store_explicit(&w->parked, 1, memory_order_relaxed);
	/* full barrier: pairs with pel__fence() in pel__wake(), and with the seq_cst fence after
	 * exit's store in pel_destroy(); our parked store before the re-scan and the exit load
	 * below, so either a waker sees parked or we see its slot (or exit). A plain fence on this
	 * CPU: no membarrier, which would interrupt every CPU running a thread of ours. */
	pel__fence();
	nin = rt->nworkers + atomic_load_explicit(&rt->producer_hwm, memory_order_acquire);
	/* park-safe pollers too: work asked of them just before our parked store is not lost;
	 * each says again how long we may sleep (pel__park_until()) */
	w->wake_ns = 0;
	for (unsigned p = 0; p < w->npollers; p++)
		if (w->pollers[p].fn(w->pollers[p].ctx) > 0)
			nin = UINT_MAX;
	if (nin == UINT_MAX || rings_ready(w, nin) ||
	    atomic_load_explicit(&rt->exit, memory_order_acquire)) {
		atomic_store_explicit(&w->parked, 0, memory_order_relaxed);
		return;
	}
	if (w->wake_ns) {
		uint64_t now = pel_now_ns();

		if (w->park_fn || w->wake_ns <= now) {
			/* a layer's sleep cannot be bounded: poll on, yielding the CPU */
			atomic_store_explicit(&w->parked, 0, memory_order_relaxed);
			if (w->wake_ns > now)
				sched_yield();
			return;
		}
		(*parks)++;
		atomic_store_explicit(&w->stats.parks, *parks, memory_order_relaxed);
		pel__trace(park, w->id);
		futex_wait_ns(&w->parked, 1, w->wake_ns - now);
		/* acq_rel: pairs with the exchange in pel__wake_slow(), as after a park hook */
		atomic_exchange_explicit(&w->parked, 0, memory_order_acq_rel);
		pel__trace(unpark, w->id);
		return;
	}
	(*parks)++;
	atomic_store_explicit(&w->stats.parks, *parks, memory_order_relaxed);
	pel__trace(park, w->id);
	if (w->park_fn) {
		/* a layer's sleep (I/O): it returns on a wake, or on the layer's own events */
		w->park_fn(w->park_ctx, &w->parked);
		/* release: pairs with the exchange in pel__wake_slow(), which then sees 0 and makes
		 * no wake; a waker that cleared it first made its push visible (its acq_rel) */
		atomic_exchange_explicit(&w->parked, 0, memory_order_acq_rel);
	} else {
		/* acquire: pairs with the exchange in pel__wake_slow(); the waker's push is
		 * visible */
		while (atomic_load_explicit(&w->parked, memory_order_acquire))
			futex(&w->parked, FUTEX_WAIT_PRIVATE, 1);
	}
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
pel__park_hook_set(void (*fn)(void *ctx, _Atomic uint32_t *word), void *ctx)
{
	struct pel_worker *w = pel__self;

	if (!w)
		return pel__fail(-EPERM, "a park hook is set from a task running on its worker");
	if (w->park_fn && fn)
		return pel__fail(-EBUSY, "worker %u has a park hook already", w->id);
	w->park_fn = fn;
	w->park_ctx = ctx;
	return 0;
}

void
pel__park_until(uint64_t ns)
{
	struct pel_worker *w = pel__self;

	if (w && ns && (!w->wake_ns || ns < w->wake_ns))
		w->wake_ns = ns;
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

static bool gate_slow(struct pel_worker *w, const struct pel_task *t);

/* A burst with tracing on: each task's dequeue, start and end, identified by (worker, src, seq).
 * Stops where the gate says, as run_burst(). @return how many ran. */
static unsigned
run_traced(struct pel_worker *w, unsigned r, struct pel_ring *ring, struct pel_task *buf,
	   unsigned n)
{
	unsigned src = r < w->rt->nworkers ? PEL__TRACE_SRC_WORKER + r : r - w->rt->nworkers;
	uint64_t head = atomic_load_explicit(&ring->cons.head, memory_order_relaxed);

	uint64_t now = pel__tsc();

	for (unsigned i = 0; i < n; i++)
		pel__trace(dequeue, w->id, src, head + i, n,
			   pel__stamp_wait(ring, w->rt->slots, head + i, now));
	for (unsigned i = 0; i < n; i++) {
		if (atomic_load_explicit(&w->beat.gate, memory_order_relaxed) &&
		    gate_slow(w, &buf[i]))
			return i;
		pel__trace(task_start, w->id, (const void *)buf[i].fn, src, head + i);
		buf[i].fn(buf[i].arg);
		pel__trace(task_end, w->id, (const void *)buf[i].fn, src, head + i);
	}
	return n;
}

/*
 * The gate, when a layer has set it: false to run task @p t, with its heartbeat published under
 * PEL__GATE_BEAT; true to stop the burst before it (PEL__GATE_URGENT, @p t not the intake).
 */
static bool
gate_slow(struct pel_worker *w, const struct pel_task *t)
{
	/* relaxed: the worker's own word */
	uint32_t g = atomic_load_explicit(&w->beat.gate, memory_order_relaxed);

	if ((g & PEL__GATE_URGENT) && t->fn != w->beat.intake)
		return true;
	if (g & PEL__GATE_BEAT)
		pel__beat_begin(&w->beat, (const void *)t->fn, pel__tsc());
	return false;
}

/* Run a burst of @p n tasks, stopping where the gate says. @return how many ran. */
static unsigned
run_burst(struct pel_worker *w, struct pel_task *buf, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		/* relaxed: the worker's own word; one load per task, 0 unless a layer set it */
		if (pel_unlikely(atomic_load_explicit(&w->beat.gate, memory_order_relaxed)) &&
		    gate_slow(w, &buf[i]))
			return i;
		buf[i].fn(buf[i].arg);
	}
	return n;
}

/* What one worker's loop keeps between passes: its counters, published to w->stats. */
struct loop_state {
	uint64_t tasks, idle_loops, parks;
	uint64_t busy, idle;		/* cycles */
	uint64_t mark;			/* the TSC when the current busy or idle stretch began */
	uint64_t idle_since;		/* the TSC when this idle period began; 0 while busy */
	struct pel_task buf[PEL__BURST];
};

/*
 * Phase 1: take up to PEL__BURST tasks from each inbound ring (mesh rings first, then the
 * producers' rings in use), run them and publish each ring's head after its burst, so that head
 * counts tasks that have returned (pel_drain() relies on it).
 * @return how many tasks ran.
 */
static unsigned
run_rings(struct pel_worker *w, struct loop_state *ls)
{
	struct pel_runtime *rt = w->rt;
	/* acquire: pairs with the release in pel_producer_open(); rings below hwm are wired */
	unsigned nin = rt->nworkers + atomic_load_explicit(&rt->producer_hwm, memory_order_acquire);
	unsigned ran = 0;

	for (unsigned r = 0; r < nin; r++) {
		struct pel_ring *ring = w->in[r];
		unsigned n = pel_ring_peek_burst(ring, ls->buf, PEL__BURST);

		if (!n)
			continue;
		if (pel_unlikely(pel__trace_on(dequeue) || pel__trace_on(task_start)))
			n = run_traced(w, r, ring, ls->buf, n);
		else
			n = run_burst(w, ls->buf, n);
		if (!n)
			continue;
		pel_ring_consume(ring, n);
		ran += n;
	}
	/* relaxed: the worker's own word; the last task of the pass has returned */
	if (pel_unlikely(atomic_load_explicit(&w->beat.gate, memory_order_relaxed) &
			 PEL__GATE_BEAT))
		pel__beat_end(&w->beat);
	return ran;
}

/* Phase 2: the layers' pollers (the one door into the loop). @return the work they found. */
static unsigned
run_pollers(struct pel_worker *w)
{
	unsigned found = 0;

	for (unsigned p = 0; p < w->npollers; p++) {
		int got = w->pollers[p].fn(w->pollers[p].ctx);

		if (got > 0)
			found += (unsigned)got;
	}
	return found;
}

/* Phase 3a: a pass that found work; the busy time and task count go out to pel_stats(). */
static void
account_busy(struct pel_worker *w, struct loop_state *ls, unsigned ran)
{
	uint64_t now = pel__tsc();

	if (ls->idle_since)
		pel__trace(idle_exit, w->id);
	ls->tasks += ran;
	ls->busy += now - ls->mark;
	ls->mark = now;
	ls->idle_since = 0;
	/* relaxed: counters for pel_stats(), which reads them relaxed; no data hangs on them */
	atomic_store_explicit(&w->stats.tasks_run, ls->tasks, memory_order_relaxed);
	atomic_store_explicit(&w->stats.busy_ns, pel__cycles_to_ns(ls->busy), memory_order_relaxed);
}

static void
publish_idle(struct pel_worker *w, const struct loop_state *ls)
{
	/* relaxed: counters for pel_stats(), as in account_busy() */
	atomic_store_explicit(&w->stats.idle_loops, ls->idle_loops, memory_order_relaxed);
	atomic_store_explicit(&w->stats.idle_ns, pel__cycles_to_ns(ls->idle), memory_order_relaxed);
}

/*
 * Phase 3b: a pass that found nothing: account the idle time and apply the idle strategy (spin,
 * yield, park). The clock is read every 8th pass only, so a polling pass stays short (the
 * busy/idle split is exact to 8 passes per idle period, well under a microsecond).
 * @return true when the runtime is exiting: leave the loop.
 */
static bool
idle(struct pel_worker *w, struct loop_state *ls)
{
	struct pel_runtime *rt = w->rt;
	const enum pel_idle mode = rt->idle;
	uint64_t now;

	ls->idle_loops++;
	if ((ls->idle_loops & 7) && ls->idle_since && mode != PEL_IDLE_PARK) {
		pel__cpu_relax();	/* exit and the idle strategy: on the 8th pass */
		return false;
	}
	now = pel__tsc();
	ls->idle += now - ls->mark;
	ls->mark = now;
	if (!ls->idle_since) {
		pel__trace(idle_enter, w->id);
		ls->idle_since = now;
		publish_idle(w, ls);
	} else if (!(ls->idle_loops & 1023)) {
		publish_idle(w, ls);
	}
	/* acquire: pairs with the seq_cst store of exit in pel_destroy(); the drain is complete */
	if (atomic_load_explicit(&rt->exit, memory_order_acquire))
		return true;
	if (mode == PEL_IDLE_SPIN) {
		pel__cpu_relax();
	} else if (mode == PEL_IDLE_BACKOFF && now - ls->idle_since < rt->spin_cycles) {
		pel__cpu_relax();
	} else if (w->npollers_wake ||
		   (mode == PEL_IDLE_BACKOFF && now - ls->idle_since < rt->park_cycles)) {
		/* pollers cannot wake a parked worker: they keep it at the yield stage */
		sched_yield();
	} else {
		park(w, &ls->parks);
		now = pel__tsc();
		ls->idle += now - ls->mark;
		ls->mark = now;
		ls->idle_since = now;
	}
	return false;
}

/* The loop, as libuv's uv_run: run rings, run pollers, account; idle when neither found work. */
static void
loop(struct pel_worker *w)
{
	struct loop_state ls = { .mark = pel__tsc() };

	for (;;) {
		unsigned ran = run_rings(w, &ls);
		unsigned found = ran + run_pollers(w);

		if (found) {
			account_busy(w, &ls, ran);
			/* a poller that always reports work must not hold the worker at exit
			 * (acquire: pairs with the store of exit in pel_destroy()) */
			if (!ran && atomic_load_explicit(&w->rt->exit, memory_order_acquire))
				break;
			continue;
		}
		if (idle(w, &ls))
			break;
	}
	atomic_store_explicit(&w->stats.tasks_run, ls.tasks, memory_order_relaxed);
	atomic_store_explicit(&w->stats.busy_ns, pel__cycles_to_ns(ls.busy), memory_order_relaxed);
	publish_idle(w, &ls);
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
	if (!run) {
		if (w->stack_locked)
			munlock(w->stack_locked, w->stack_locked_len);
		return NULL;
	}
	pel__tls_worker.rt = rt;
	pel__tls_worker.id = w->id;
	pel__tls_worker.w = w;
	w->beat.yield_at = &pel__yield_at;
	pel__trace(worker_start, w->id, w->cpu);
	loop(w);
	pel__trace(worker_stop, w->id, atomic_load_explicit(&w->stats.tasks_run, memory_order_relaxed));
	pel__tls_worker = (struct pel__tls){ NULL, 0, NULL };
	if (w->stack_locked)	/* glibc may cache the stack for another thread */
		munlock(w->stack_locked, w->stack_locked_len);
	return NULL;
}
