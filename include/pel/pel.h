/* SPDX-License-Identifier: MIT */
/*
 * pel/pel.h - pel's runtime: workers pinned one per CPU, busy-polling SPSC task rings.
 *
 * Every call returns 0 (or a count) on success and a negative errno on failure; the failing call's
 * detail, in words, is kept per thread for pel_last_error(). A call that fails leaves nothing
 * behind: no task half-queued, nothing leaked. docs/api.md documents each call at length.
 */
#ifndef PEL_PEL_H
#define PEL_PEL_H

#include <stdint.h>

#include <pel/pool.h>
#include <pel/task.h>
#ifndef __cplusplus
#include <pel/ring.h>	/* the inline ring; C only (it uses C11 _Atomic) */
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define PEL_VERSION_MAJOR	0
#define PEL_VERSION_MINOR	1
#define PEL_VERSION_PATCH	0

#define PEL_NS_PER_US		1000ll
#define PEL_NS_PER_MS		1000000ll
#define PEL_NS_PER_S		1000000000ll

struct pel_runtime;	/* opaque */
struct pel_producer;	/* opaque */

/** What a worker does when a pass over its rings found nothing. */
enum pel_idle {
	PEL_IDLE_SPIN,		/* poll forever with the CPU's pause hint: lowest latency, 100% CPU */
	PEL_IDLE_BACKOFF,	/* poll, then poll and yield, then park on a futex */
	PEL_IDLE_PARK,		/* park on a futex as soon as the rings are empty */
};

/**
 * Lock the runtime's memory into RAM with mlock(2), which also faults it in: rings, worker state,
 * the top 256 KiB of each worker's stack (every worker touches the top 64 KiB at start anyway).
 */
#define PEL_F_MLOCK		(1u << 0)
/** Back ring memory with 2 MiB hugepages; falls back to normal pages with a logged reason. */
#define PEL_F_HUGEPAGES		(1u << 1)
/** Refuse any worker CPU that is not in the kernel's isolated set. */
#define PEL_F_REQUIRE_ISOLATED	(1u << 2)
/** Allow busy-polling workers to oversubscribe CPUs (no CPU left, or CPUs another runtime spins on). */
#define PEL_F_SHARE_CPUS	(1u << 3)
/** Idle workers take stealable tasks (pel_submit_any(), group members, parallel-for chunks) from
 * busy ones (include/pel/group.h); tasks queued on a named worker never move. */
#define PEL_F_STEAL		(1u << 5)
/** Every flag this version knows. */
#define PEL_F_ALL		(PEL_F_MLOCK | PEL_F_HUGEPAGES | PEL_F_REQUIRE_ISOLATED | \
				 PEL_F_SHARE_CPUS | PEL_F_STEAL)

enum pel_log_level {
	PEL_LOG_ERROR,
	PEL_LOG_WARNING,
	PEL_LOG_INFO,
};

/** Receives pel's log lines (one line, no newline). Called from the thread that logs. */
typedef void (*pel_log_fn)(enum pel_log_level level, const char *msg, void *arg);

struct pel_config {
	const char *cpus;		/* worker CPUs, "2-5,8"; NULL: the isolated CPUs, else all
					 * online but CPU 0 (at least one) */
	unsigned ring_slots;		/* slots per SPSC ring, power of two; 0: default 1024 */
	enum pel_idle idle;		/* default PEL_IDLE_BACKOFF */
	unsigned max_producers;		/* external producer handles; 0: default 16; at most 4096 */
	int rt_priority;		/* 0: leave the policy; 1..99: SCHED_FIFO at that priority */
	unsigned flags;			/* PEL_F_* */
	uint64_t idle_spin_ns;		/* BACKOFF: pure polling before polling with yields; 0: 20 us;
					 * lowered to idle_park_ns when larger */
	uint64_t idle_park_ns;		/* BACKOFF: idle time before parking; 0: 200 us */
	const char *sysfs_root;		/* prefix of /sys and /proc for topology reads; NULL: "" */
	pel_log_fn log;			/* NULL: lines go to stderr prefixed "pel: " */
	void *log_arg;			/* passed to log */
	uint64_t reserved[8];		/* zero (pel_config_default()): room for later fields */
};

/** Fill @p cfg with the defaults (every field zero or NULL but idle = PEL_IDLE_BACKOFF). */
void pel_config_default(struct pel_config *cfg);

/**
 * Validate @p cfg whole, then start one worker per CPU: a thread pinned to it, named pel-w<N>,
 * SCHED_FIFO when cfg->rt_priority > 0.
 * @param cfg  configuration; not NULL
 * @param out  receives the runtime; not NULL; stays NULL on failure
 * @return 0; -EINVAL a config field is wrong (pel_last_error() names it); -EPERM SCHED_FIFO or
 *         mlock refused; -ENOMEM; -EBUSY a CPU is already busy-polled by another runtime;
 *         other -errno from thread creation.
 * Threads: any thread but a worker's.
 */
int pel_create(const struct pel_config *cfg, struct pel_runtime **out);

/** Detail of this thread's last failed call, e.g. "cpu 9 is not online (online: 0-1)". */
const char *pel_last_error(void);

/** Text for a negative errno returned by pel, e.g. pel_strerror(-EAGAIN). */
const char *pel_strerror(int err);

/** Number of workers. */
unsigned pel_worker_count(const struct pel_runtime *rt);

/** CPU that @p worker is pinned to, or -EINVAL. */
int pel_worker_cpu(const struct pel_runtime *rt, unsigned worker);

/**
 * Open a producer handle: its own SPSC ring to every worker.
 * @return 0; -EMFILE all max_producers handles are open; -ESHUTDOWN runtime stopping;
 *         -EINVAL NULL argument.
 * Threads: any. The handle is then used by one thread at a time.
 */
int pel_producer_open(struct pel_runtime *rt, struct pel_producer **out);

/**
 * Close a producer handle. Tasks it queued still run. NULL is ignored. A handle may be closed after
 * pel_destroy() (it answers -ESHUTDOWN until then); the last close frees what was left of the
 * runtime. Using a handle after closing it is undefined: its slot may belong to another thread.
 * Threads: the thread using @p p.
 */
void pel_producer_close(struct pel_producer *p);

/**
 * Queue one task on @p worker.
 * @param p       producer handle owned by the calling thread
 * @param worker  0 .. pel_worker_count() - 1
 * @param fn      runs once on that worker; not NULL
 * @return 0 queued; -EAGAIN ring full, nothing queued; -EINVAL bad worker or NULL fn;
 *         -ESHUTDOWN runtime stopping.
 * Threads: only the thread that uses @p p; no lock, no syscall unless the worker is parked.
 * From a task: no, use pel_spawn().
 */
int pel_submit(struct pel_producer *p, unsigned worker, pel_task_fn fn, void *arg);

/**
 * Queue up to @p n tasks on @p worker, in order, as many as fit.
 * @return how many were queued (the first that many of @p t); 0 with pel_last_error() set when
 *         none could be (ring full, bad worker, NULL fn, stopping).
 * Threads: as pel_submit().
 */
unsigned pel_submit_burst(struct pel_producer *p, unsigned worker, const struct pel_task *t,
			  unsigned n);

/**
 * From inside a task: queue a task on @p worker through the worker mesh (its own SPSC ring).
 * Accepted also while the runtime shuts down: pel_destroy() runs it.
 * @return 0; -EAGAIN ring full; -EINVAL bad worker or NULL fn; -EPERM not called from a task.
 */
int pel_spawn(unsigned worker, pel_task_fn fn, void *arg);

/** Worker id when called inside a task, -1 elsewhere. */
int pel_worker_self(void);

struct pel_worker_stats {
	uint64_t tasks_run;	/* tasks that have returned */
	uint64_t ring_full;	/* submits and spawns refused because this worker's ring was full */
	uint64_t idle_loops;	/* passes over the rings that found nothing */
	uint64_t parks;		/* times the worker slept on its futex */
	uint64_t busy_ns;	/* time spent on passes that found work */
	uint64_t idle_ns;	/* time spent on passes that found nothing, parked included */
	uint64_t wakeups;	/* futex wakes sent to this worker by producers and spawners */
	uint64_t spawns;	/* tasks this worker queued with pel_spawn() */
	int cpu;		/* CPU the worker is pinned to */
	uint64_t reserved[8];	/* zero: room for later counters */
};

/**
 * Copy @p worker's counters. They are updated after each burst of tasks, so they may trail what
 * the worker is doing by one burst.
 * @return 0; -EINVAL bad worker or NULL argument.
 * Threads: any, at any time; no lock.
 */
int pel_stats(const struct pel_runtime *rt, unsigned worker, struct pel_worker_stats *out);

/**
 * Wait until every task accepted before the call, and every task those spawned, has run.
 * @param timeout_ns  < 0 waits as long as it takes; 0 checks once
 * @return 0; -ETIMEDOUT; -EDEADLK called from a task; -EINVAL NULL runtime.
 * Threads: any but a worker's.
 */
int pel_drain(struct pel_runtime *rt, int64_t timeout_ns);

/**
 * Stop the runtime: refuse new submits (-ESHUTDOWN), run every accepted task (and what they spawn),
 * join the workers and free everything but the producer handles still open: those keep answering
 * -ESHUTDOWN until pel_producer_close(), and the last close frees them. NULL is ignored. No call
 * but pel_submit(), pel_submit_burst() and pel_producer_close() on open handles is valid after it.
 * Threads: any but a worker's (from a task it logs an error and does nothing).
 */
void pel_destroy(struct pel_runtime *rt);

/** Monotonic time in ns, from the TSC where it is invariant, else CLOCK_MONOTONIC. */
uint64_t pel_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif /* PEL_PEL_H */
