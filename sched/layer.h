/* SPDX-License-Identifier: MIT */
/*
 * sched/layer.h - the small API the layers above the core use (mem/ pools today; io/, real time
 * and parallel work next). A layer enters the worker loop through one door: a per-worker poller,
 * added from a task on that worker. It keeps its per-runtime state in a slot registered with
 * pel__layer_add(), which pel_destroy() stops after the workers have left. The runtime itself is
 * opaque here: layers read it through the calls below, never its fields, so sched/ can change
 * without reopening them. Nothing here is exported from libpel.so.
 */
#ifndef PEL_SCHED_LAYER_H
#define PEL_SCHED_LAYER_H

#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pel/pel.h>
#include <pel/self.h>

/* Thread-locals read on hot paths: initial-exec, no __tls_get_addr call (and no allocation). */
#define PEL__TLS		__thread __attribute__((tls_model("initial-exec")))

#if defined(__GNUC__)
#define pel__printf(a, b)	__attribute__((format(printf, a, b)))
#define pel__cold		__attribute__((cold))
#else
#define pel__printf(a, b)
#define pel__cold
#endif

/* ---- errors and logging (sched/error.c) ---- */

/** Keep "fmt" as this thread's last error and return @p err (a negative errno). */
int pel__fail(int err, const char *fmt, ...) pel__printf(2, 3) pel__cold;

/** Hot-path failures keep only their numbers; pel_last_error() words them when asked. */
enum pel__lazy {
	PEL__LAZY_RING_FULL = 1,	/* a = worker, b = slots */
	PEL__LAZY_BAD_WORKER,		/* a = worker, b = worker count */
	PEL__LAZY_BAD_FN,		/* a = worker */
	PEL__LAZY_SHUTDOWN,
	PEL__LAZY_NOT_TASK,		/* a = call: 0 spawn */
	PEL__LAZY_BAD_PRODUCER,		/* a = 0 NULL, 1 closed */
	PEL__LAZY_STORE_FULL,		/* a = worker, b = records: a layer's fixed store */
	PEL__LAZY_PAST_DEADLINE,	/* a = us past (capped) */
};
int pel__fail_lazy(int err, enum pel__lazy what, unsigned a, unsigned b);

/** Log one line through @p fn (NULL: stderr). */
void pel__logv(pel_log_fn fn, void *arg, enum pel_log_level level, const char *fmt, va_list ap)
	pel__printf(4, 0);
void pel__log(pel_log_fn fn, void *arg, enum pel_log_level level, const char *fmt, ...)
	pel__printf(4, 5);

/** Log one line through @p rt's log callback (cfg.log). */
void pel__rt_log(const struct pel_runtime *rt, enum pel_log_level level, const char *fmt, ...)
	pel__printf(3, 4) pel__cold;

/* ---- time (sched/clock.c) ---- */

uint64_t pel__clock_cycles(void);
uint64_t pel__cycles_to_ns(uint64_t cycles);
uint64_t pel__ns_to_cycles(uint64_t ns);
void pel__clock_init(void);
/** CLOCK_MONOTONIC in ns (a syscall-free vDSO read; cold paths: waits and timeouts). */
uint64_t pel__mono_ns(void);

static inline uint64_t
pel__tsc(void)
{
#if defined(__x86_64__)
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
#elif defined(__aarch64__)
	uint64_t v;

	__asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
	return v;
#else
	return pel__clock_cycles();
#endif
}

static inline void
pel__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/*
 * A full barrier, store-load order included, on this CPU only: both sides of the park/wake pair.
 * On x86-64 a locked no-op RMW on the stack's top line, as gcc emits for a seq_cst fence and Linux
 * for smp_mb(): clang emits mfence, 17 ns against 2 ns on Zen 4 (bench/README.md). Elsewhere the
 * C11 fence.
 */
static inline void
pel__fence(void)
{
#if defined(__x86_64__)
	__asm__ __volatile__("lock orq $0, (%%rsp)" ::: "memory", "cc");
#else
	atomic_thread_fence(memory_order_seq_cst);
#endif
}

/**
 * A cold wait's back-off: sleeps 1 us, doubling up to 1 ms, never past @p deadline_ns
 * (pel__mono_ns(); 0: none). Start with nap = 0.
 */
void pel__nap(uint64_t *nap, uint64_t deadline_ns);

/* ---- memory (sched/map.c) ---- */

/**
 * Map @p len bytes of private anonymous memory, on 2 MiB hugepages when @p want_huge (length
 * rounded up to 2 MiB), falling back to normal pages with a warning through @p rt's log naming
 * @p what. *@p mapped gets the mapped length, *@p huge whether hugepages back it.
 * @return the mapping, or NULL with -ENOMEM kept by pel__fail().
 */
void *pel__map(const struct pel_runtime *rt, size_t len, bool want_huge, const char *what,
	       size_t *mapped, bool *huge);

/**
 * pel__map() at @p at (MAP_FIXED; NULL: anywhere), which must lie in a reservation of the caller
 * (PROT_NONE), aligned to 2 MiB when @p want_huge; the mapping replaces that part of it.
 */
void *pel__map_at(const struct pel_runtime *rt, void *at, size_t len, bool want_huge,
		  const char *what, size_t *mapped, bool *huge);

/* ---- the runtime, as layers see it (sched/runtime.c) ---- */

/** The calling thread's worker id, or -1 when it is not a worker of @p rt. */
static inline int
pel__self_id(const struct pel_runtime *rt)
{
	return pel__tls_worker.rt == rt && rt ? (int)pel__tls_worker.id : -1;
}

/** pel_config.flags of @p rt (PEL_F_MLOCK, PEL_F_HUGEPAGES, ...). */
unsigned pel__rt_flags(const struct pel_runtime *rt);

/** pel_config.idle of @p rt: how a layer's own thread (the dedicated I/O thread) idles. */
enum pel_idle pel__rt_idle(const struct pel_runtime *rt);

/** Producer slots of @p rt (slot 0 the runtime's own, then max_producers): a layer's per-producer
 * rings are indexed by pel__producer_slot(), below this. */
unsigned pel__rt_producer_slots(const struct pel_runtime *rt);

/** @p p's slot, 1 .. pel__rt_producer_slots() - 1; stable while @p p is open. */
unsigned pel__producer_slot(const struct pel_producer *p);

/** NUMA node of worker @p w's CPU, -1 when unknown: layers place its memory there. */
int pel__worker_node(const struct pel_runtime *rt, unsigned w);

/** Wake worker @p w if it is parked, so that its pollers run (a FUTEX_WAKE only then). */
void pel__worker_wake(struct pel_runtime *rt, unsigned w);

/**
 * Whether @p cpu is online now (sys/devices/system/cpu/online); the online list ("0-3") goes
 * into @p list for a message. @return 1 online; 0 not; -errno the file could not be read.
 */
int pel__cpu_online(int cpu, char *list, size_t len);

/** True once pel_destroy() has begun. */
bool pel__rt_stopping(const struct pel_runtime *rt);

/**
 * Keep @p rt's handle table alive (the struct, its stopping flag, its layer lock) past
 * pel_destroy(), as an open producer handle does; pel__rt_unref() drops it, the last frees.
 */
void pel__rt_ref(struct pel_runtime *rt);
void pel__rt_unref(struct pel_runtime *rt);

/** The runtime @p p belongs to (p not NULL). */
struct pel_runtime *pel__producer_rt(const struct pel_producer *p);

/* ---- pollers: the one door into the worker loop (sched/worker.c) ---- */

/** A poller: called by its worker on every pass; returns how much work it found (0: none). */
typedef int (*pel__poll_fn)(void *ctx);

/** The poller never needs waking: work for it only arises from this worker's own tasks, or the
 * layer wakes the worker with pel__worker_wake() when it asks it for something; so the worker may
 * park (its pass before parking runs the poller). Without it the worker never parks. */
#define PEL__POLL_PARK_OK	(1u << 0)

/**
 * Register a poller on the calling worker. Layers call it from a task running on the worker they
 * poll for (see pel__run_on_each_worker()), so no lock is needed.
 * @param flags  0 or PEL__POLL_PARK_OK
 * @return 0; -EPERM not on a worker; -ENOSPC PEL__MAX_POLLERS reached; -EINVAL NULL fn.
 */
int pel__poller_add(pel__poll_fn fn, void *ctx, unsigned flags);

/**
 * How a worker sleeps when it parks: @p fn(ctx, word) instead of a futex wait on @p word (the
 * worker's parked flag, 1 while parked). It must return once a producer has cleared *word and
 * made a FUTEX_WAKE on it, and may return earlier (the I/O layer sleeps in io_uring_enter() on a
 * futex-wait operation of that word, so a completion wakes the worker too). The worker clears
 * *word itself when fn returns. Set from a task on the worker (see pel__poller_add()); with it, a
 * poller whose work fn waits for may be registered with PEL__POLL_PARK_OK.
 * @return 0; -EPERM not on a worker; -EBUSY the worker has a park hook already.
 */
int pel__park_hook_set(void (*fn)(void *ctx, _Atomic uint32_t *word), void *ctx);

/**
 * From a poller, on its worker: the worker must be running again by @p ns (pel_now_ns() time), so
 * it may park only until then. Asked afresh on every pass: park() clears it and runs the pollers
 * once more before it sleeps, and the earliest time asked then bounds the futex wait. With a park
 * hook (pel__park_hook_set()) the worker cannot bound its sleep: it then yields instead of parking.
 */
void pel__park_until(uint64_t ns);

/* ---- the running task: the gate and the heartbeat (sched/worker.c) ---- */

/** A layer has work that outranks ring tasks: the burst stops before the next task whose fn is
 * not the intake fn (struct pel__beat), so the layer's poller runs first. */
#define PEL__GATE_URGENT	(1u << 0)
/** Publish each ring task's start and fn (the heartbeat) and its yield time. */
#define PEL__GATE_BEAT		(1u << 1)

/*
 * What the worker loop shares about the task it runs. The gate is read (relaxed, one load) before
 * each ring task; while it is 0 nothing else here is touched, so a runtime whose layers never set
 * it pays that one load. Layers set gate, intake and budget from tasks on the worker (single
 * writer); a monitor thread reads start and fn.
 */
struct pel__beat {
	alignas(PEL_CACHE_GUARD) _Atomic uint32_t gate;	/* PEL__GATE_* */
	pel_task_fn intake;		/* a task that only moves work into a layer's queue */
	uint64_t budget;		/* cycles before pel_should_yield() turns true; 0 none */
	_Atomic uint64_t *yield_at;	/* the worker thread's pel__yield_at */
	/* Written at each task's start (PEL__GATE_BEAT), cleared after; read by a monitor. */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t start;	/* TSC at the start, 0 between */
	_Atomic uintptr_t fn;		/* the running task's fn */
};

/** Worker @p w's beat. */
struct pel__beat *pel__worker_beat(struct pel_runtime *rt, unsigned w);

/** On the beat's worker: task @p fn starts at TSC @p now; publish it and its yield time. */
static inline void
pel__beat_begin(struct pel__beat *b, const void *fn, uint64_t now)
{
	atomic_store_explicit(b->yield_at, b->budget ? now + b->budget : UINT64_MAX,
			      memory_order_relaxed);
	/* the seqlock's write side: start = 0, fn, start = now. The release fence pairs with the
	 * acquire fence in a reader (pel__beat_read()): a reader that sees this fn sees start
	 * changed from the value it read first. */
	atomic_store_explicit(&b->start, 0, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&b->fn, (uintptr_t)fn, memory_order_relaxed);
	/* release: pairs with the acquire in pel__beat_read(); fn is visible with start */
	atomic_store_explicit(&b->start, now, memory_order_release);
}

/** On the beat's worker: the task has returned. */
static inline void
pel__beat_end(struct pel__beat *b)
{
	atomic_store_explicit(&b->start, 0, memory_order_relaxed);
	atomic_store_explicit(b->yield_at, UINT64_MAX, memory_order_relaxed);
}

/**
 * Any thread: the task running on the beat's worker, if any: its start TSC (0 none) and fn.
 * @return true with a consistent pair; false when the worker moved on while we read (retry).
 */
static inline bool
pel__beat_read(struct pel__beat *b, uint64_t *start, uintptr_t *fn)
{
	/* acquire: pairs with the release store of start in pel__beat_begin() */
	uint64_t s1 = atomic_load_explicit(&b->start, memory_order_acquire);

	*fn = atomic_load_explicit(&b->fn, memory_order_relaxed);
	/* acquire fence: pairs with the release fence in pel__beat_begin() */
	atomic_thread_fence(memory_order_acquire);
	*start = s1;
	return atomic_load_explicit(&b->start, memory_order_relaxed) == s1;
}

/**
 * Run fn(worker id, arg) once on every worker, through the runtime's own producer slot, and wait
 * until all have returned. For layers' set-up and tear-down (cold: takes a mutex, may sleep).
 * @return 0; -EDEADLK called from a task; -ESHUTDOWN runtime stopping (fn then ran on none or
 *         some workers: those it was queued to before the refusal).
 */
int pel__run_on_each_worker(struct pel_runtime *rt, void (*fn)(unsigned worker, void *arg),
			    void *arg);

/* ---- a producer's section: a layer's call from a producer thread (sched/runtime.c) ---- */

/**
 * Enter @p p's active section, the handshake pel_submit() makes with pel_destroy(): while it is
 * held, pel_destroy() waits, so the workers and every layer's state stay. Leave it soon.
 * @return 0; -EINVAL @p p NULL or closed; -ESHUTDOWN the runtime is stopping (not entered).
 */
int pel__producer_enter(struct pel_producer *p);
void pel__producer_leave(struct pel_producer *p);

/**
 * Inside the section: push one task to @p worker through @p p's ring and wake it if parked.
 * @return 0; -EAGAIN ring full (nothing pushed).
 */
int pel__producer_push(struct pel_producer *p, unsigned worker, pel_task_fn fn, void *arg);

/**
 * Tasks queued in @p p's ring to @p worker and not yet returned: a load-aware placement's view of
 * its own ring (one line read: the worker's head). Lock-free; the thread using @p p.
 */
unsigned pel__producer_backlog(const struct pel_producer *p, unsigned worker);

/* ---- layers every runtime has (sched/runtime.c) ---- */

/**
 * A layer that every runtime starts with: pel_create() calls start(rt) once its workers run (from
 * the creating thread, as a user's pel_pool_create() would be), so the layer's calls work without
 * a set-up call of their own. A start that fails is logged and the runtime stands without the
 * layer. Register from a constructor of the layer's file; @p a must live for ever.
 */
struct pel__autostart {
	const char *name;
	int (*start)(struct pel_runtime *rt);
	struct pel__autostart *next;	/* the core's */
};
void pel__autostart_register(struct pel__autostart *a);

/* ---- layer state and the handshake with pel_destroy() (sched/runtime.c) ---- */

#define PEL__MAX_LAYERS		8

struct pel__layer_ops {
	const char *name;
	/*
	 * pel_destroy(), after every accepted task has run and every worker has left its loop,
	 * under the layer lock: reclaim what the layer holds; handles the user still has must then
	 * answer -ESHUTDOWN (or NULL) until they are closed. Frees @p state unless handles keep
	 * it. May be NULL.
	 */
	void (*stop)(struct pel_runtime *rt, void *state);
	/*
	 * pel_destroy(), once it refuses new work and before the workers leave: true while the
	 * layer still has work that will come back as tasks or callbacks (I/O in flight). The
	 * layer's pollers see pel__rt_stopping() and wind it down (cancel); pel_destroy() drains
	 * the rings and asks again until every layer says false. May be NULL. Any thread.
	 */
	bool (*busy)(struct pel_runtime *rt, void *state);
	/*
	 * When the runtime's handle table goes (the last of pel_destroy() and the open handles):
	 * free what stop() left for handles to read (the layer's own handle struct). May be NULL.
	 */
	void (*release)(void *state);
	/*
	 * pel_drain() (and pel_destroy()'s drain): false while a task the layer accepted waits in
	 * the layer rather than in a ring (a real-time queue); *stamp gets a count that grows each
	 * time such a task is accepted or returns. The drain asks before and after its check of the
	 * rings and trusts them only with both quiet and equal stamps. Any thread, no lock. May be
	 * NULL (the layer holds no tasks).
	 */
	bool (*quiet)(struct pel_runtime *rt, void *state, uint64_t *stamp);
};

/**
 * Begin a cold layer operation (create or destroy of a layer object): takes @p rt's layer lock,
 * which pel_destroy() takes before it stops the layers, so while it is held the workers, the
 * plan and every layer's state stay alive. Fails while the runtime is stopping.
 * @return 0 with the lock held; -ESHUTDOWN (lock not held); -EDEADLK called from a task.
 */
int pel__layer_enter(struct pel_runtime *rt);

/** Like pel__layer_enter() but also while stopping: for closing handles. Returns stopping. */
bool pel__layer_lock(struct pel_runtime *rt);

/** End what pel__layer_enter() or pel__layer_lock() began. */
void pel__layer_leave(struct pel_runtime *rt);

/** Under the layer lock: the state registered for @p ops, or NULL. */
void *pel__layer_get(struct pel_runtime *rt, const struct pel__layer_ops *ops);

/**
 * Without the lock, from any thread that keeps @p rt's layers alive (a task, a producer inside
 * its section): the state registered for @p ops, or NULL. Layers are only added until the stop;
 * once pel_destroy() stops them it finds none.
 */
void *pel__layer_find(const struct pel_runtime *rt, const struct pel__layer_ops *ops);

/**
 * Under the layer lock (pel__layer_enter()): register @p state for @p ops.
 * @return 0; -ENOSPC PEL__MAX_LAYERS already registered; -EEXIST @p ops has state.
 */
int pel__layer_add(struct pel_runtime *rt, const struct pel__layer_ops *ops, void *state);

#endif /* PEL_SCHED_LAYER_H */
