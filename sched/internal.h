/* SPDX-License-Identifier: MIT */
/*
 * sched/internal.h - the core's private parts: the runtime, worker and producer structs, the plan,
 * topology, barriers. Layers above the core (mem/, io/, ...) include sched/layer.h instead. Nothing
 * here is exported from libpel.so; tests reach it through the static library.
 */
#ifndef PEL_SCHED_INTERNAL_H
#define PEL_SCHED_INTERNAL_H

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <pel/pel.h>

#include "layer.h"

#define PEL__BURST		32	/* tasks taken from one ring per pass */
#define PEL__MAX_POLLERS	8	/* pollers per worker */
#define PEL__MAX_PRODUCERS	4096
#define PEL__DEFAULT_SLOTS	1024
#define PEL__DEFAULT_PRODUCERS	16
#define PEL__DEFAULT_SPIN_NS	(20 * PEL_NS_PER_US)
#define PEL__DEFAULT_PARK_NS	(200 * PEL_NS_PER_US)
#define PEL__STACK_TOUCH	(64 * 1024)	/* worker stack touched at start */
#define PEL__STACK_LOCK		(256 * 1024)	/* and locked, under PEL_F_MLOCK */

/* ---- topology (sched/topology.c) ---- */

/**
 * Parse a CPU list as users write it: "2-5,8". Refuses, with a message: empty, malformed ("abc",
 * "1-", "-1", "1,,2"), reversed ("3-1"), a CPU twice ("0,0", "0-3,2"), a CPU >= CPU_SETSIZE.
 * Surrounding white space and one trailing newline are accepted.
 * @return 0 with @p set filled; -EINVAL.
 */
int pel__topo_parse_cpus(const char *list, cpu_set_t *set);

/**
 * Read a CPU list file the kernel writes (may be empty) under @p root, e.g.
 * "sys/devices/system/cpu/online".
 * @return 0; -ENOENT file missing; -EINVAL unparsable (message kept); -errno from open/read.
 */
int pel__topo_read_cpus(const char *root, const char *rel, cpu_set_t *set);

/** Read a small file under @p root into @p buf (NUL-terminated, trailing newline removed). */
int pel__topo_read_file(const char *root, const char *rel, char *buf, size_t len);

/** Format @p set as a CPU list ("0-1,4") into @p buf, "none" when empty. Returns @p buf. */
char *pel__topo_format_cpus(const cpu_set_t *set, char *buf, size_t len);

#define PEL__TOPO_MAX_NODES	64	/* NUMA node ids 0 .. 63 */

/**
 * The host's CPUs as sysfs describes them (pel__topo_load()). Per-CPU entries of CPUs that are not
 * online, and facts whose file is missing, are -1 ("unknown"). Large (about 30 KiB): allocate it.
 */
struct pel__topo {
	cpu_set_t online;
	cpu_set_t isolated;		/* sys/devices/system/cpu/isolated; empty when missing */
	cpu_set_t nohz_full;		/* sys/devices/system/cpu/nohz_full; empty when missing */
	bool has_isolated;		/* the file exists (kernels since 4.x) */
	bool has_nohz_full;		/* the file exists (CONFIG_NO_HZ_FULL) */
	bool has_nodes;			/* sys/devices/system/node/node* exist; else all CPUs node 0 */
	int nnodes;			/* highest node id + 1 (ids may have gaps: empty node_cpus) */
	cpu_set_t node_cpus[PEL__TOPO_MAX_NODES];
	short node[CPU_SETSIZE];	/* NUMA node of each CPU */
	short smt[CPU_SETSIZE];		/* lowest CPU of its SMT sibling set (itself when alone) */
	short llc[CPU_SETSIZE];		/* lowest CPU sharing its last-level cache */
	short llc_level[CPU_SETSIZE];	/* that cache's level (3 usually) */
	int core[CPU_SETSIZE];		/* topology/core_id */
	int package[CPU_SETSIZE];	/* topology/physical_package_id */
};

/**
 * Read the topology under @p root ("" for the host; like pel__topo_read_cpus()): the online,
 * isolated and nohz_full sets, each online CPU's SMT siblings (core_cpus_list, or the older
 * thread_siblings_list), core and package ids, last-level cache (highest level of type Unified or
 * Data), and the NUMA node of each CPU (sys/devices/system/node/node<K>/cpulist). Optional files
 * that are missing leave -1 (or an empty set) without an error; with no node directory at all
 * every online CPU is on node 0.
 * @return 0; -ENOENT when sys/devices/system/cpu/online cannot be read; -EINVAL a file holds
 *         something else than its format (pel_last_error() names the file); -errno from reads.
 */
int pel__topo_load(const char *root, struct pel__topo *t);

/** NUMA node of @p cpu: 0 .. nnodes - 1, or -1 when @p cpu is not online or out of range. */
int pel__topo_cpu_node(const struct pel__topo *t, int cpu);

/** True when @p a and @p b are different online CPUs of the same core (hyper-threads). */
bool pel__topo_smt_siblings(const struct pel__topo *t, int a, int b);

/** True when @p a and @p b share their last-level cache (a == b included). */
bool pel__topo_same_llc(const struct pel__topo *t, int a, int b);

/**
 * Pairs of CPUs of @p workers that are SMT siblings of each other, ascending ({2, 34}, {3, 35},
 * ...): busy workers there share one core's execution units. Writes at most @p max pairs.
 * @return the number of pairs there are (may exceed @p max).
 */
unsigned pel__topo_smt_pairs(const struct pel__topo *t, const cpu_set_t *workers, int (*pairs)[2],
			     unsigned max);

/** What the kernel command line asks for in CPU isolation (pel__topo_cmdline()). */
#define PEL__ISOL_DOMAIN	(1u << 0)	/* isolcpus "domain" (also implied with no flag) */
#define PEL__ISOL_NOHZ		(1u << 1)	/* isolcpus "nohz" */
#define PEL__ISOL_MANAGED_IRQ	(1u << 2)	/* isolcpus "managed_irq" */

struct pel__cmdline {
	bool has_isolcpus, has_nohz_full, has_rcu_nocbs, has_irqaffinity;
	unsigned isol_flags;		/* PEL__ISOL_* */
	bool rcu_nocbs_all;		/* rcu_nocbs=all */
	cpu_set_t isolcpus, nohz_full, rcu_nocbs, irqaffinity;
};

/**
 * Find kernel parameter @p name in @p cmdline (as /proc/cmdline holds it; parameters after a lone
 * "--" belong to init and are ignored). The last occurrence wins, as in the kernel.
 * @return 0 with its value in @p val ("" for a bare "name"); -ENOENT absent; -ENAMETOOLONG.
 */
int pel__cmdline_param(const char *cmdline, const char *name, char *val, size_t len);

/**
 * Parse an isolcpus= value: "[flag,...,]cpulist", flags nohz, domain, managed_irq.
 * @return 0 with @p set and @p flags (PEL__ISOL_*; DOMAIN when none given) filled; -EINVAL.
 */
int pel__cmdline_isolcpus(const char *val, cpu_set_t *set, unsigned *flags);

/**
 * Read <root>/proc/cmdline and parse isolcpus=, nohz_full=, rcu_nocbs= and irqaffinity=.
 * @return 0; -ENOENT no cmdline file; -EINVAL a value that is not what the kernel accepts.
 */
int pel__topo_cmdline(const char *root, struct pel__cmdline *c);

/* ---- configuration (sched/config.c) ---- */

/** What pel_create() will start, decided from a config and the host, before any thread exists. */
struct pel__plan {
	struct pel_config cfg;		/* defaults filled in; cpus points at cpus_text */
	char cpus_text[4096];		/* the worker CPU list, formatted: fits any CPU_SETSIZE set */
	char root[512];			/* sysfs_root, "" for the host */
	unsigned nworkers;
	int cpu[CPU_SETSIZE];		/* worker i runs on cpu[i], ascending */
	cpu_set_t workers;		/* the same CPUs as a set */
	cpu_set_t online;
	cpu_set_t isolated;
	cpu_set_t not_isolated;		/* worker CPUs outside the isolated set */
	bool busy;			/* workers poll without sleeping (PEL_IDLE_SPIN) */
	bool poll_some;			/* workers poll at all before sleeping (SPIN, BACKOFF) */
	long rt_runtime_us;		/* /proc/sys/kernel/sched_rt_runtime_us, or LONG_MIN unread */
};

/**
 * Validate @p cfg against the host described under cfg->sysfs_root and decide the plan. Starts no
 * thread, changes nothing. Also the libFuzzer target's entry.
 * @return 0; -EINVAL with pel_last_error() naming the field.
 */
int pel__config_resolve(const struct pel_config *cfg, struct pel__plan *plan);

/**
 * The CPUs this process's cgroup cpuset allows (where any of its threads may be pinned); a test may
 * override it.
 * @return 0; -ENOENT when no cpuset can be read (no restriction known); -errno.
 */
int pel__allowed_cpus(cpu_set_t *set);
void pel__set_allowed_cpus_override(const cpu_set_t *set);	/* NULL: the real affinity */

/* ---- the barriers of pel's two Dekker pairs (sched/barrier.c) ----
 *
 * In each pair one side stores its flag then reads the other's, the other side the same the other
 * way round; with a full barrier between the store and the load on both sides, at least one of
 * them sees the other's store.
 *
 * Park/wake: "a producer (or a spawning worker) stores a slot, then reads the worker's parked
 * flag" (pel__wake()) against "the worker sets parked, then re-reads its rings" (park()). Both
 * sides are pel__fence(): one per pel_submit(), pel_submit_burst() or pel_spawn() (not per task),
 * one per park. Parking is frequent on a lightly loaded BACKOFF or PARK worker: a membarrier() on
 * that side would interrupt every CPU running a thread of the process at each park, the spinning
 * workers on isolated cores included (bench/README.md, "Parking and jitter").
 *
 * Stop/enter: "a producer marks itself active, then reads stopping" (producer_enter()) against
 * "pel_destroy() sets stopping, then reads every producer's active flag". The producer's side runs
 * on every submit, the other once per runtime: that rare side pays for the full barrier on every
 * CPU with membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) (pel__barrier_heavy()) and the producer's
 * side is a compiler barrier (pel__barrier_light()). Where membarrier is missing both sides use a
 * seq_cst fence.
 */
extern _Atomic bool pel__light_needs_fence;

/** Set up membarrier once per process; safe to call again. */
void pel__barrier_init(void);
/** pel_destroy()'s side of the stop/enter pair; pairs with pel__barrier_light(). */
void pel__barrier_heavy(void);
/** Tests: force the fence fallback (true) or go back to what the host supports (false). */
void pel__barrier_force_fence(bool on);
/** Tests: membarrier() calls pel has made in this process (only pel__barrier_heavy() makes any). */
uint64_t pel__barrier_membarrier_calls(void);

/** producer_enter()'s side of the stop/enter pair; pairs with pel__barrier_heavy(). */
static inline void
pel__barrier_light(void)
{
	if (pel_unlikely(atomic_load_explicit(&pel__light_needs_fence, memory_order_relaxed)))
		atomic_thread_fence(memory_order_seq_cst);
	else
		atomic_signal_fence(memory_order_seq_cst);
}


/* ---- runtime ---- */

struct pel__poller {
	pel__poll_fn fn;
	void *ctx;
	unsigned flags;
};

struct pel__worker_stats {
	_Atomic uint64_t tasks_run;
	_Atomic uint64_t idle_loops;
	_Atomic uint64_t parks;
	_Atomic uint64_t busy_ns;
	_Atomic uint64_t idle_ns;
	_Atomic uint64_t spawns;
};

struct pel_worker {
	/* Read by every producer on each submit; written by the worker only when it parks. */
	alignas(PEL_CACHE_GUARD) _Atomic uint32_t parked;	/* futex word */
	/* Written by wakers, rarely. */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t wakeups;
	/* Written by the worker after each burst; read by pel_stats(). */
	alignas(PEL_CACHE_GUARD) struct pel__worker_stats stats;
	/* The gate read before each ring task, the heartbeat (sched/layer.h). */
	struct pel__beat beat;
	/* The worker's own state. */
	alignas(PEL_CACHE_GUARD) struct pel_runtime *rt;
	unsigned id;
	int cpu;
	int node;			/* NUMA node of cpu, -1 unknown: layers place memory there */
	unsigned nin;			/* inbound rings: nworkers mesh rings, then producers */
	struct pel_ring **in;		/* in[j], j < nworkers: from worker j; then producer j - N */
	struct pel_ring **mesh_out;	/* mesh_out[j]: this worker's ring to worker j */
	unsigned npollers;
	unsigned npollers_wake;		/* pollers without PEL__POLL_PARK_OK: no parking */
	void (*park_fn)(void *ctx, _Atomic uint32_t *word);	/* a layer's sleep, or NULL */
	void *park_ctx;
	uint64_t wake_ns;		/* pel__park_until() of this pass's pollers; 0 none */
	struct pel__poller pollers[PEL__MAX_POLLERS];
	void *mem;			/* the inbound rings, allocated by this worker's thread */
	void *stack_locked;		/* the part of its stack locked under PEL_F_MLOCK */
	size_t stack_locked_len;
	size_t mem_len;
	pthread_t thread;
	int start_err;
	char start_msg[256];
};

struct pel_producer {
	/* Written by the producer's thread on each submit; read by pel_destroy(). */
	alignas(PEL_CACHE_GUARD) _Atomic uint32_t active;
	_Atomic uint32_t in_use;
	struct pel_runtime *rt;
	unsigned id;
	unsigned nworkers;
	struct pel_ring **ring;		/* ring[w]: to worker w */
};

struct pel_runtime {
	/* Read on every submit; written once, at destroy. */
	alignas(PEL_CACHE_GUARD) _Atomic uint32_t stopping;
	bool may_park;			/* not PEL_IDLE_SPIN: a push must check for a parked worker */
	unsigned nworkers;
	unsigned slots;
	unsigned max_producers;
	unsigned nslots;		/* producer slots: the runtime's own (0), then max_producers */
	struct pel_worker **workers;
	/* Written when a producer slot is first used; read by workers each pass. */
	alignas(PEL_CACHE_GUARD) _Atomic uint32_t producer_hwm;
	/* Set once the drain at destroy is complete: workers leave their loops. */
	alignas(PEL_CACHE_GUARD) _Atomic uint32_t exit;
	/* Cold. */
	alignas(PEL_CACHE_GUARD) struct pel__plan *plan;
	_Atomic uint32_t refs;		/* pel_destroy's + one per open handle: the last frees rt */
	struct pel_producer *producers;
	pel_log_fn log;
	void *log_arg;
	enum pel_idle idle;
	uint64_t spin_cycles;
	uint64_t park_cycles;
	pthread_mutex_t start_lock;
	pthread_cond_t start_cond;
	unsigned nstarted;		/* workers that finished setting up (or failed to) */
	bool go;			/* every worker set up: run */
	bool abort;			/* set-up failed: leave */
	bool claimed;			/* busy CPUs registered in the process-wide claim set */
	pthread_mutex_t own_lock;	/* the runtime's own producer slot (pel__run_on_each_worker) */
	uint64_t *drain_scratch;	/* pel__quiescent()'s tail snapshot, allocated at create */
	pthread_mutex_t drain_lock;	/* drain_scratch has one user at a time */
	/* Layers: their state, registered under layer_lock, stopped by pel_destroy() under it. The
	 * lock lives as long as the handle table (refs), so late handles can still take it. */
	pthread_mutex_t layer_lock;
	bool layers_stopped;		/* pel_destroy() ran every layer's stop */
	unsigned nlayers;
	_Atomic unsigned nlayers_pub;	/* nlayers for lock-free readers (pel__layer_find()) */
	struct {
		const struct pel__layer_ops *ops;
		void *state;		/* sched/ never reads it */
	} layer[PEL__MAX_LAYERS];
};

/** The worker running the calling thread, NULL elsewhere (pel/self.h's one thread-local). */
#define pel__self	(pel__tls_worker.w)

/** Worker thread body (sched/worker.c). */
void *pel__worker_main(void *arg);

/** Allocate and lay out @p w's inbound rings; called on the worker's own thread. */
int pel__worker_rings_alloc(struct pel_worker *w);

/** Wake @p w if it is parked (after a push). */
void pel__wake_slow(struct pel_worker *w);

static inline void
pel__wake(struct pel_worker *w)
{
	/* full barrier: pairs with pel__fence() in park(); our slot store before this load of
	 * parked, so either we see parked or the worker's re-scan sees our slot */
	pel__fence();
	/* relaxed: ordered by the fence above; pel__wake_slow()'s exchange decides */
	if (pel_unlikely(atomic_load_explicit(&w->parked, memory_order_relaxed)))
		pel__wake_slow(w);
}

/**
 * Wait for quiescence: an instant at which every task accepted so far, and every task those
 * spawned, has run (sched/drain.c).
 * @return 0; -ETIMEDOUT.
 */
int pel__drain(struct pel_runtime *rt, int64_t timeout_ns);

/** One check of the above, no waiting: true when quiescent. */
bool pel__quiescent(struct pel_runtime *rt);

/** Wake @p w whether or not a task is waiting (shutdown). */
void pel__wake_force(struct pel_worker *w);

#endif /* PEL_SCHED_INTERNAL_H */
