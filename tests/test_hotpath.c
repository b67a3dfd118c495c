/* SPDX-License-Identifier: MIT */
/*
 * tests/test_hotpath.c - proof that the submit / spawn / run path makes no syscall, takes no lock
 * and allocates nothing; the same for the real-time path (pel/rt.h: submits, spawns, timers,
 * cancels, yields, with the quantum and the stall monitor on).
 *
 * Syscalls: the producer thread and the worker thread each install a seccomp filter (per thread)
 * that traps every syscall except those made from one instruction in raw_syscall() below. The
 * SIGSYS handler counts the trapped call while the test is armed and then performs it through
 * raw_syscall(), so the threads keep working normally once the measured phase is over.
 * Locks and allocation: libpel is linked with -Wl,--wrap for the allocator and pthread lock calls;
 * the wrappers count calls made while armed.
 *
 * One SPIN worker on CPU 1, the producer on CPU 0: never two busy loops on one CPU.
 */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>

#include <pel/io.h>
#include <pel/par.h>
#include <pel/pool.h>
#include <pel/rt.h>

#include "helpers.h"
#include "internal.h"
#include "pel_config.h"

#if !defined(__x86_64__)
int
main(void)
{
	printf("skip: the seccomp syscall trap here is written for x86-64\n");
	return 77;
}
#else

static _Atomic int armed;
static _Atomic unsigned trapped, trapped_nr;
static _Atomic unsigned allocs, locks;

/* ---- wrappers (-Wl,--wrap=...): count, then call the real function ---- */

#define WRAP(ret, name, params, args)                                                              \
	ret __real_##name params;                                                                  \
	ret __wrap_##name params;                                                                  \
	ret __wrap_##name params                                                                   \
	{                                                                                          \
		if (atomic_load_explicit(&armed, memory_order_relaxed))                            \
			atomic_fetch_add(COUNTER, 1);                                              \
		return __real_##name args;                                                         \
	}

#define COUNTER &allocs
WRAP(void *, malloc, (size_t n), (n))
WRAP(void *, calloc, (size_t a, size_t b), (a, b))
WRAP(void *, realloc, (void *p, size_t n), (p, n))
WRAP(void *, aligned_alloc, (size_t a, size_t n), (a, n))
WRAP(int, posix_memalign, (void **p, size_t a, size_t n), (p, a, n))
#undef COUNTER
#define COUNTER &locks
WRAP(int, pthread_mutex_lock, (pthread_mutex_t *m), (m))
WRAP(int, pthread_mutex_trylock, (pthread_mutex_t *m), (m))
WRAP(int, pthread_spin_lock, (pthread_spinlock_t *l), (l))
WRAP(int, pthread_rwlock_rdlock, (pthread_rwlock_t *l), (l))
WRAP(int, pthread_rwlock_wrlock, (pthread_rwlock_t *l), (l))
WRAP(int, pthread_cond_wait, (pthread_cond_t *c, pthread_mutex_t *m), (c, m))
#undef COUNTER

/* ---- the one allowed syscall instruction ---- */

long raw_syscall(long nr, long a, long b, long c, long d, long e, long f);
extern char raw_syscall_after[];
__asm__(".text\n"
	".globl raw_syscall\n"
	".type raw_syscall,@function\n"
	"raw_syscall:\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rdi\n"
	"	mov %rdx, %rsi\n"
	"	mov %rcx, %rdx\n"
	"	mov %r8, %r10\n"
	"	mov %r9, %r8\n"
	"	mov 8(%rsp), %r9\n"
	"	syscall\n"
	".globl raw_syscall_after\n"
	"raw_syscall_after:\n"
	"	ret\n");

static void
on_sigsys(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	greg_t *g = uc->uc_mcontext.gregs;

	(void)sig;
	if (atomic_load_explicit(&armed, memory_order_relaxed)) {
		atomic_fetch_add(&trapped, 1);
		atomic_store(&trapped_nr, (unsigned)si->si_syscall);
	}
	g[REG_RAX] = raw_syscall(si->si_syscall, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10],
				 g[REG_R8], g[REG_R9]);
}

/*
 * Trap every syscall of the calling thread but those from raw_syscall() and the few glibc makes
 * with every signal blocked when a thread exits (a SIGSYS then would kill the process):
 * rt_sigreturn, rt_sigprocmask, madvise, munmap, exit. None of them belongs on a hot path; futex,
 * the one a park or a lock would make, stays trapped.
 */
static int
trap_my_syscalls(void)
{
	uint64_t ip = (uint64_t)(uintptr_t)raw_syscall_after;
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigreturn, 5, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigprocmask, 4, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_madvise, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_munmap, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit, 1, 0),
		BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)ip, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, instruction_pointer) + 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(ip >> 32), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
		return -errno;
	return 0;
}

/* ---- the measured work ---- */

static _Atomic unsigned long ran;
static _Atomic int filter_err = 1;
static _Atomic int spawn_errs, pool_errs;
static struct pel_pool *hot_pool;

static void
install_filter_task(void *arg)
{
	(void)arg;
	atomic_store(&filter_err, trap_my_syscalls());
}

static void
leaf_task(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
}

/* Every task allocates and frees a pool object (several at once now and then, so the owner
 * cache refills and spills), every 8th 32 more with the bulk calls (300 now and then); every 4th
 * spawns a leaf through the mesh (to its own worker). */
static void
work_task(void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	void *o[300];
	unsigned n = (i & 1023) == 0 ? 300 : 1;

	atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
	for (unsigned k = 0; k < n; k++)
		if (!(o[k] = pel_alloc(hot_pool)))
			atomic_fetch_add(&pool_errs, 1);
	for (unsigned k = 0; k < n; k++)
		pel_free(hot_pool, o[k]);
	/* bulk calls: 32 at a time (the cache's copy), and now and then 300 (refill, spill) */
	if ((i & 7) == 0) {
		n = (i & 2047) == 8 ? 300 : 32;
		if (pel_alloc_bulk(hot_pool, o, n) || pel_free_bulk(hot_pool, o, n))
			atomic_fetch_add(&pool_errs, 1);
	}
	if ((i & 3) == 0 && pel_spawn(0, leaf_task, NULL))
		atomic_fetch_add(&spawn_errs, 1);
}

/* After a measured phase: 0 when it made no syscall, lock call or allocation, else a check. */
static int
armed_counts(void)
{
	if (atomic_load(&trapped))
		return 10;
	if (atomic_load(&locks))
		return 11;
	if (atomic_load(&allocs))
		return 12;
	return 0;
}

/* In a child: the SIGSYS handler, and one PEL_IDLE_SPIN worker on CPU 1 with a producer. */
static int
spin_child_setup(struct pel_runtime **rt, struct pel_producer **p)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	struct pel_config c;

	if (sigaction(SIGSYS, &sa, NULL))
		return 1;
	quiet_config(&c, "1", NULL);
	c.idle = PEL_IDLE_SPIN;
	c.log = NULL;
	return pel_create(&c, rt) || pel_producer_open(*rt, p);
}

/*
 * The measured scenario, in a child process: the seccomp filters die with it, and nothing (cmocka
 * resets signal handlers between tests) can take the SIGSYS handler away while they are in place.
 * Returns 0, or the number of the check that failed.
 */
static int
hot_child(void)
{
	const unsigned long n = 200000, spawned = n / 4;
	struct pel_runtime *rt;
	struct pel_producer *p;
	struct pel_worker_stats st;
	struct pel_task burst[16];
	cpu_set_t zero;
	unsigned long sent = 0;
	uint64_t spins = 0;

	if (spin_child_setup(&rt, &p))
		return 2;
	if (pel_pool_create(rt, 64, 1024, 0, &hot_pool))
		return 2;
	/* after create: pinned first, this thread's affinity would forbid cpu 1 */
	CPU_ZERO(&zero);
	CPU_SET(0, &zero);
	if (pthread_setaffinity_np(pthread_self(), sizeof(zero), &zero))
		return 3;
	/* warm up: every line touched once, the worker past its first passes */
	for (unsigned i = 0; i < 1000; i++)
		while (pel_submit(p, 0, leaf_task, NULL) == -EAGAIN)
			;
	if (pel_submit(p, 0, install_filter_task, NULL) || pel_drain(rt, 5 * PEL_NS_PER_S))
		return 4;
	if (atomic_load(&filter_err) || trap_my_syscalls())
		return 5;
	atomic_store(&ran, 0);

	atomic_store(&armed, 1);
	while (sent < n) {
		if ((sent & 63) == 0 && n - sent >= 16) {
			for (unsigned k = 0; k < 16; k++)
				burst[k] = (struct pel_task){ work_task, (void *)(uintptr_t)(sent + k) };
			sent += pel_submit_burst(p, 0, burst, 16);
			continue;
		}
		if (pel_submit(p, 0, work_task, (void *)(uintptr_t)sent) == 0)
			sent++;
		else
			spins++;
		if ((sent & 4095) == 0)
			pel_stats(rt, 0, &st);	/* readers are lock-free too */
		if ((sent & 63) == 1) {
			/* a non-worker thread's alloc and free: the shared stack */
			void *o = pel_alloc(hot_pool);

			if (!o)
				atomic_fetch_add(&pool_errs, 1);
			pel_free(hot_pool, o);
		}
		if ((sent & 1023) == 2) {
			/* and in bulk: the shared stacks, one CAS chain each way */
			void *o[16];

			if (pel_alloc_bulk(hot_pool, o, 16) || pel_free_bulk(hot_pool, o, 16))
				atomic_fetch_add(&pool_errs, 1);
		}
	}
	/* wait for the worker by spinning: no syscall on our side either */
	while (atomic_load(&ran) < n + spawned)
		pel__cpu_relax();
	atomic_store(&armed, 0);

	printf("%lu tasks submitted (%lu full-ring retries) and %lu spawned, run on a SPIN worker, "
	       "each with pool allocs and frees, single and bulk: %u syscalls (last nr %u), %u lock calls, %u "
	       "allocations\n", n, (unsigned long)spins, spawned, atomic_load(&trapped),
	       atomic_load(&trapped_nr), atomic_load(&locks), atomic_load(&allocs));
	fflush(stdout);
	if (armed_counts())
		return armed_counts();
	if (atomic_load(&spawn_errs))
		return 13;
	if (atomic_load(&pool_errs))
		return 15;
	if (pel_stats(rt, 0, &st) || st.parks)
		return 14;
	pel_pool_destroy(hot_pool);
	pel_destroy(rt);	/* syscalls again, through the handler */
	return 0;
}

/* The trap and the wrappers see what they should: the test above can fail. */
static int
trap_child(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	struct pel_runtime *rt;
	struct pel_config c;

	/* libpel's own allocations and locks reach the wrappers: pel_create() makes both */
	quiet_config(&c, "0", NULL);
	atomic_store(&armed, 1);
	if (pel_create(&c, &rt))
		return 1;
	atomic_store(&armed, 0);
	pel_destroy(rt);
	if (atomic_load(&allocs) < 1 || atomic_load(&locks) < 1)
		return 2;
	/* a syscall made while armed is trapped and counted */
	if (sigaction(SIGSYS, &sa, NULL) || trap_my_syscalls())
		return 3;
	atomic_store(&armed, 1);
	(void)syscall(__NR_getppid);
	atomic_store(&armed, 0);
	if (atomic_load(&trapped) != 1 || atomic_load(&trapped_nr) != __NR_getppid)
		return 4;
	/* and, made through the handler, it still works */
	return syscall(__NR_getppid) == getppid() ? 0 : 5;
}

/* ---- the real-time path ---- */

static _Atomic int rt_errs;
static _Atomic unsigned long rt_ran;

static void
rt_leaf(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&rt_ran, 1, memory_order_relaxed);
}

/* A real-time task: every 4th spawns a real-time leaf, arms a timer and cancels every other
 * one, every 8th yields its rest; each asks pel_should_yield(). */
static void
rt_work(void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	struct pel_rt_task t = { rt_leaf, NULL, PEL_NO_DEADLINE, 3 };
	uint64_t id;

	atomic_fetch_add_explicit(&rt_ran, 1, memory_order_relaxed);
	(void)pel_should_yield();
	if ((i & 3) == 0) {
		if (pel_spawn_rt(0, &t) ||
		    pel_timer_after(0, (i & 63) * PEL_NS_PER_US, rt_leaf, NULL, &id))
			atomic_fetch_add(&rt_errs, 1);
		else if ((i & 7) == 0 && pel_timer_cancel(id))
			atomic_fetch_add(&rt_errs, 1);
	}
	if ((i & 7) == 4 && pel_yield_to(rt_leaf, NULL))
		atomic_fetch_add(&rt_errs, 1);
}

/* Real-time submits, spawns, timers, yields, with the quantum and the stall monitor on. */
static int
rt_child(void)
{
	const unsigned long n = 20000;
	/* n tasks; n/4 spawned leaves, n/4 timers of which n/8 cancelled; n/8 yielded rests */
	const unsigned long want = n + n / 4 + n / 8 + n / 8;
	struct pel_rt_config rc = { .tasks = 4096, .timers = 4096, .stall_ns = PEL_NS_PER_S };
	struct pel_runtime *rt;
	struct pel_producer *p;
	struct pel_rt_stats st;
	cpu_set_t zero;
	unsigned long sent = 0;

	if (spin_child_setup(&rt, &p))
		return 2;
	if (pel_rt_init(rt, &rc) || pel_rt_set_quantum(rt, 20 * PEL_NS_PER_US))
		return 2;
	CPU_ZERO(&zero);
	CPU_SET(0, &zero);
	if (pthread_setaffinity_np(pthread_self(), sizeof(zero), &zero))
		return 3;
	for (unsigned i = 0; i < 1000; i++) {
		struct pel_rt_task t = { leaf_task, NULL, PEL_NO_DEADLINE, 1 };

		while (pel_submit_rt(p, 0, &t) == -EAGAIN)
			;
	}
	if (pel_submit(p, 0, install_filter_task, NULL) || pel_drain(rt, 5 * PEL_NS_PER_S))
		return 4;
	if (atomic_load(&filter_err) || trap_my_syscalls())
		return 5;

	atomic_store(&armed, 1);
	while (sent < n) {
		struct pel_rt_task t = { rt_work, (void *)(uintptr_t)sent,
					 (sent & 1) ? PEL_NO_DEADLINE : pel_now_ns() + PEL_NS_PER_S,
					 (uint8_t)(sent % PEL_PRIO_CLASSES) };
		int err = pel_submit_rt(p, 0, &t);

		if (!err)
			sent++;
		else if (err != -EAGAIN)
			atomic_fetch_add(&rt_errs, 1);
		if ((sent & 7) == 3)	/* plain tasks mixed in, below every class */
			(void)pel_submit(p, 0, leaf_task, NULL);
		if ((sent & 4095) == 0)
			pel_rt_stats(rt, 0, &st);
	}
	while (atomic_load(&rt_ran) < want && !atomic_load(&rt_errs))
		pel__cpu_relax();
	atomic_store(&armed, 0);

	printf("%lu real-time tasks submitted, with spawns, timers, cancels and yields, on a SPIN "
	       "worker: %u syscalls (last nr %u), %u lock calls, %u allocations\n", n,
	       atomic_load(&trapped), atomic_load(&trapped_nr), atomic_load(&locks),
	       atomic_load(&allocs));
	fflush(stdout);
	if (atomic_load(&rt_errs))
		return 13;
	if (atomic_load(&trapped))
		return 10;
	if (atomic_load(&locks))
		return 11;
	if (atomic_load(&allocs))
		return 12;
	pel_destroy(rt);
	return 0;
}

static void run_child(int (*fn)(void));

/* ---- parallel work: groups, parallel-for, pel_submit_any, from a producer and from tasks ---- */

#define PAR_GROUPS	256

static _Atomic unsigned long par_leaves, par_groups_done, par_pfors;
static _Atomic int par_errs;
static struct pel_group par_group[PAR_GROUPS];

static void
par_leaf(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&par_leaves, 1, memory_order_relaxed);
}

static void
par_group_done(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&par_groups_done, 1, memory_order_release);
}

static uint64_t
par_body(uint64_t lo, uint64_t hi, void *arg)
{
	(void)arg;
	return hi - lo;
}

static uint64_t
par_add(uint64_t a, uint64_t b, void *arg)
{
	(void)arg;
	return a + b;
}

static void
par_pfor_done(uint64_t v, void *arg)
{
	(void)arg;
	if (v != 64)
		atomic_fetch_add(&par_errs, 1);
	atomic_fetch_add_explicit(&par_pfors, 1, memory_order_release);
}

/* A task: a group of four members, a parallel-for of 8 chunks, one pel_submit_any(). */
static void
par_task(void *arg)
{
	struct pel_group *g = &par_group[(uintptr_t)arg % PAR_GROUPS];
	int err = pel_group_init(g, par_group_done, NULL, 0);

	for (unsigned k = 0; k < 4; k++)
		err |= pel_group_spawn(g, PEL_ANY_WORKER, par_leaf, NULL);
	err |= pel_group_close(g);
	err |= pel_parallel_for(0, 64, 8, par_body, par_add, 0, par_pfor_done, NULL);
	err |= pel_submit_any(NULL, par_leaf, NULL);
	if (err)
		atomic_fetch_add(&par_errs, 1);
}

static int
par_child(void)
{
	const unsigned long n = 20000;
	struct pel_runtime *rt;
	struct pel_producer *p;
	struct pel_par_stats st;
	struct pel_group pg;
	unsigned long pgroups = 0;
	cpu_set_t zero;

	if (spin_child_setup(&rt, &p) || pel_par_enable(rt, 0) ||
	    pel_set_placement(rt, PEL_PLACE_P2C))
		return 2;
	CPU_ZERO(&zero);
	CPU_SET(0, &zero);
	if (pthread_setaffinity_np(pthread_self(), sizeof(zero), &zero))
		return 3;
	if (pel_submit(p, 0, install_filter_task, NULL) || pel_drain(rt, 5 * PEL_NS_PER_S))
		return 4;
	if (atomic_load(&filter_err) || trap_my_syscalls())
		return 5;
	atomic_store(&armed, 1);
	for (unsigned long i = 0; i < n; i++) {
		/* a group slot is reused only once its on_done has run */
		while (i >= PAR_GROUPS && i - PAR_GROUPS >=
		       atomic_load_explicit(&par_groups_done, memory_order_acquire) - pgroups)
			pel__cpu_relax();
		while (pel_submit_any(p, par_task, (void *)(uintptr_t)i) == -EAGAIN)
			pel__cpu_relax();
		if ((i & 63) == 0) {
			unsigned long before = atomic_load(&par_groups_done);

			/* a producer's group: eight members, closed, waited for */
			if (pel_group_init_producer(&pg, p, par_group_done, NULL, 0))
				atomic_fetch_add(&par_errs, 1);
			for (unsigned k = 0; k < 8; k++)
				while (pel_group_spawn(&pg, k & 1 ? PEL_ANY_WORKER : 0, par_leaf,
						       NULL) == -EAGAIN)
					pel__cpu_relax();
			if (pel_group_close(&pg))
				atomic_fetch_add(&par_errs, 1);
			while (atomic_load(&par_groups_done) == before ||
			       pel_group_destroy(&pg) == -EBUSY)
				pel__cpu_relax();
			pgroups++;
			pel_par_stats(rt, 0, &st);	/* lock-free */
		}
	}
	while (atomic_load(&par_groups_done) < n + pgroups || atomic_load(&par_pfors) < n ||
	       atomic_load(&par_leaves) < 5 * n + 8 * pgroups)
		pel__cpu_relax();
	atomic_store(&armed, 0);
	printf("%lu tasks each with a group of 4, a parallel-for of 8 chunks and a pel_submit_any(), "
	       "%lu producer groups of 8: %u syscalls (last nr %u), %u lock calls, %u allocations\n",
	       n, pgroups, atomic_load(&trapped), atomic_load(&trapped_nr), atomic_load(&locks),
	       atomic_load(&allocs));
	fflush(stdout);
	if (armed_counts())
		return armed_counts();
	if (atomic_load(&par_errs))
		return 13;
	pel_producer_close(p);
	pel_destroy(rt);
	return 0;
}

static void
test_parallel_work_no_syscall_lock_alloc(void **state)
{
	(void)state;
	if (online_cpus() < 2) {
		print_message("skip: needs 2 CPUs (a spinning worker and the producer)\n");
		skip();
	}
	run_child(par_child);
}

#if PEL_HAVE_LIBURING
static _Atomic int nops_done;

static void
nop_done(const struct pel_io_result *r, void *arg)
{
	(void)r;
	(void)arg;
	atomic_fetch_add(&nops_done, 1);
}

/*
 * An idle worker with an I/O layer: a SPIN worker polls its CQ ring for 200 ms under the trap and
 * makes no syscall. Then one nop, still under the trap, makes its io_uring_enter: the trap sees
 * the I/O layer's syscalls, so the zero above can fail.
 */
static int
io_idle_child(void)
{
	struct pel_runtime *rt;
	struct pel_producer *p;
	struct pel_io *io;
	struct pel_io_req r = pel_io_req_nop(nop_done, NULL);
	uint64_t end;

	if (spin_child_setup(&rt, &p))
		return 2;
	if (pel_io_create(rt, NULL, &io)) {
		printf("pel_io_create: %s\n", pel_last_error());
		fflush(stdout);
		return 77;	/* no io_uring here: a skip */
	}
	/* warm: the ring has done one round trip */
	if (pel_io_submit(io, p, 0, &r, NULL))
		return 3;
	while (atomic_load(&nops_done) < 1)
		pel__cpu_relax();
	if (pel_submit(p, 0, install_filter_task, NULL) || pel_drain(rt, 5 * PEL_NS_PER_S) ||
	    atomic_load(&filter_err))
		return 4;
	atomic_store(&trapped, 0);
	atomic_store(&armed, 1);
	end = now_ns() + 200 * 1000000ull;
	while (now_ns() < end)
		usleep(1000);	/* this thread is not trapped; the worker is */
	atomic_store(&armed, 0);
	printf("an idle SPIN worker with an I/O layer, 200 ms: %u syscalls (last nr %u)\n",
	       atomic_load(&trapped), atomic_load(&trapped_nr));
	fflush(stdout);
	if (atomic_load(&trapped))
		return 10;
	atomic_store(&armed, 1);
	if (pel_io_submit(io, p, 0, &r, NULL))
		return 5;
	while (atomic_load(&nops_done) < 2)
		pel__cpu_relax();
	atomic_store(&armed, 0);
	printf("then one nop: %u syscall(s) (last nr %u, io_uring_enter is %d)\n",
	       atomic_load(&trapped), atomic_load(&trapped_nr), __NR_io_uring_enter);
	fflush(stdout);	/* the child leaves through _exit() */
	if (atomic_load(&trapped) < 1 || atomic_load(&trapped_nr) != __NR_io_uring_enter)
		return 11;
	pel_producer_close(p);
	pel_destroy(rt);
	return 0;
}

static void
test_idle_io_worker_no_syscall(void **state)
{
	(void)state;
	if (online_cpus() < 2) {
		print_message("skip: needs 2 CPUs (a spinning worker and this thread)\n");
		skip();
	}
	run_child(io_idle_child);
}
#endif

static void
run_child(int (*fn)(void))
{
	pid_t pid;
	int status;

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(fn());
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("child killed by signal %d", WTERMSIG(status));
	if (WEXITSTATUS(status) == 77) {
		print_message("skip: the child could not set up what it measures (io_uring)\n");
		skip();
	}
	if (WEXITSTATUS(status))
		fail_msg("child failed check %d", WEXITSTATUS(status));
}

static void
test_submit_run_spawn_no_syscall_lock_alloc(void **state)
{
	(void)state;
	if (online_cpus() < 2) {
		print_message("skip: needs 2 CPUs (a spinning worker and the producer)\n");
		skip();
	}
	run_child(hot_child);
}

static void
test_rt_path_no_syscall_lock_alloc(void **state)
{
	(void)state;
	if (online_cpus() < 2) {
		print_message("skip: needs 2 CPUs (a spinning worker and the producer)\n");
		skip();
	}
	run_child(rt_child);
}

static void
test_trap_catches_a_syscall(void **state)
{
	(void)state;
	run_child(trap_child);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trap_catches_a_syscall),
		cmocka_unit_test(test_submit_run_spawn_no_syscall_lock_alloc),
		cmocka_unit_test(test_parallel_work_no_syscall_lock_alloc),
		cmocka_unit_test(test_rt_path_no_syscall_lock_alloc),
#if PEL_HAVE_LIBURING
		cmocka_unit_test(test_idle_io_worker_no_syscall),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
