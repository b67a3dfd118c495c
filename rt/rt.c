/* SPDX-License-Identifier: MIT */
/*
 * rt/rt.c - the real-time layer: priority classes with EDF inside each, the late-work policy,
 * cooperative yield, the stall monitor. A layer above sched/ (sched/layer.h only).
 *
 * A real-time task is a record from its target worker's store (fixed capacity, a lock-free
 * stack). The submitter fills it and pushes an intake task through the usual ring; the intake,
 * run by the worker, moves the record into the worker's ready queue (a binary heap ordered by
 * class, deadline, intake order) and sets the loop's gate PEL__GATE_URGENT, so that the burst stops
 * before the next plain task. The layer's poller then runs the most urgent task, one per pass, so
 * that an intake newly arrived in a ring is seen before the next real-time task starts. With an
 * empty queue the gate is 0 and plain tasks take the loop's fast path untouched.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "rt_layer.h"
#include "trace/trace.h"

static void rt_stop(struct pel_runtime *rt, void *state);
static bool rt_quiet(struct pel_runtime *rt, void *state, uint64_t *stamp);

static const struct pel__layer_ops rt_ops = {
	.name = "real-time",
	.stop = rt_stop,
	.quiet = rt_quiet,
};

/* ---- the ready queue: a binary min-heap of record indexes ---- */

/* a before b: lower class, then earlier deadline (none is latest), then earlier intake */
static inline bool
rec_before(const struct rt_rec *a, const struct rt_rec *b)
{
	if (a->t.prio != b->t.prio)
		return a->t.prio < b->t.prio;
	if (a->t.deadline_ns != b->t.deadline_ns)
		return a->t.deadline_ns < b->t.deadline_ns;
	return a->seq < b->seq;
}

static void
heap_push(struct rt_worker *w, uint32_t idx)
{
	unsigned i = w->nheap++;

	while (i) {
		unsigned up = (i - 1) / 2;

		if (!rec_before(&w->rec[idx], &w->rec[w->heap[up]]))
			break;
		w->heap[i] = w->heap[up];
		i = up;
	}
	w->heap[i] = idx;
}

static uint32_t
heap_pop(struct rt_worker *w)
{
	uint32_t top = w->heap[0], last = w->heap[--w->nheap];
	unsigned i = 0, n = w->nheap;

	for (;;) {
		unsigned c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && rec_before(&w->rec[w->heap[c + 1]], &w->rec[w->heap[c]]))
			c++;
		if (!rec_before(&w->rec[w->heap[c]], &w->rec[last]))
			break;
		w->heap[i] = w->heap[c];
		i = c;
	}
	if (n)
		w->heap[i] = last;
	return top;
}

static inline void
gate_set(struct rt_worker *w, uint32_t bit, bool on)
{
	/* relaxed: the worker's own word (sched/layer.h); only this worker writes it */
	uint32_t g = atomic_load_explicit(&w->beat->gate, memory_order_relaxed);

	atomic_store_explicit(&w->beat->gate, on ? g | bit : g & ~bit, memory_order_relaxed);
}

/* On the owner: record @p rec joins the ready queue. */
static void
ready(struct rt_worker *w, struct rt_rec *rec)
{
	rec->seq = w->seq++;
	heap_push(w, rec->idx);
	/* relaxed: a counter for pel_rt_stats() */
	atomic_store_explicit(&w->queued, w->nheap, memory_order_relaxed);
	if (w->nheap == 1)
		gate_set(w, PEL__GATE_URGENT, true);
}

/* The task the rings carry for a real-time task: runs on the owner. */
static void
intake(void *arg)
{
	struct rt_rec *rec = arg;

	ready(rec->owner, rec);
}

/* Done with a record: back to the store; the task counts as returned for pel_drain(). */
static void
rec_done(struct rt_worker *w, struct rt_rec *rec)
{
	rt_store_put(&w->store, rec->idx);
	/* release: pairs with the acquire in rt_quiet(); what the task did is visible to a drain */
	atomic_fetch_add_explicit(&w->done, 1, memory_order_release);
}

static inline void
bump(_Atomic uint64_t *c)
{
	/* relaxed: a counter of the worker's own, read by pel_rt_stats() */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Run a record's task as the running task: its heartbeat, its yield time, its class. */
static void
run_rec(struct rt_worker *w, const struct pel_rt_task *t, bool rt)
{
	/* relaxed: the worker's own word */
	uint32_t gate = atomic_load_explicit(&w->beat->gate, memory_order_relaxed);

	if (rt) {
		w->in_rt = true;
		w->cur_prio = t->prio;
		w->cur_deadline = t->deadline_ns;
		/* relaxed, both: hints for submitters (whether to ask this task to yield) */
		atomic_store_explicit(&w->cur_dl, t->deadline_ns, memory_order_relaxed);
		atomic_store_explicit(&w->cur_class, t->prio, memory_order_relaxed);
	}
	if (gate & PEL__GATE_BEAT)
		pel__beat_begin(w->beat, (const void *)t->fn, pel__tsc());
	else	/* relaxed: a hint read by this thread's pel_should_yield() */
		atomic_store_explicit(w->yield_at, UINT64_MAX, memory_order_relaxed);
	pel__trace(task_start, w->id, (const void *)t->fn, PEL__TRACE_SRC_RT, w->traced);
	t->fn(t->arg);
	pel__trace(task_end, w->id, (const void *)t->fn, PEL__TRACE_SRC_RT, w->traced);
	w->traced++;
	if (gate & PEL__GATE_BEAT)
		pel__beat_end(w->beat);
	else
		atomic_store_explicit(w->yield_at, UINT64_MAX, memory_order_relaxed);
	if (rt) {
		atomic_store_explicit(&w->cur_class, PEL_PRIO_CLASSES, memory_order_relaxed);
		w->in_rt = false;
	}
}

/* Run (or drop) the most urgent ready task. */
static void
run_one(struct rt_worker *w)
{
	struct rt_layer *L = w->layer;
	struct rt_rec *rec = &w->rec[heap_pop(w)];
	struct pel_rt_task t = rec->t;

	/* relaxed: a counter for pel_rt_stats() */
	atomic_store_explicit(&w->queued, w->nheap, memory_order_relaxed);
	if (t.deadline_ns != PEL_NO_DEADLINE) {
		uint64_t now = pel_now_ns();

		if (pel_unlikely(now > t.deadline_ns)) {
			/* acquire: pairs with the release in pel_rt_set_late_policy() */
			int policy = atomic_load_explicit(&L->policy, memory_order_acquire);

			bump(&w->missed[t.prio]);
			pel__trace(rt_late, w->id, t.prio, now - t.deadline_ns,
				   policy == PEL_LATE_DROP);
			if (policy == PEL_LATE_DROP) {
				pel_late_fn fn = atomic_load_explicit(&L->on_late,
								      memory_order_relaxed);

				bump(&w->dropped[t.prio]);
				fn(&t, now - t.deadline_ns);
				rec_done(w, rec);
				goto out;
			}
		}
	}
	run_rec(w, &t, true);
	bump(&w->ran[t.prio]);
	rec_done(w, rec);
out:
	if (!w->nheap)
		gate_set(w, PEL__GATE_URGENT, false);
}

/* Queue a plain task's remainder: it runs once the worker has made a full pass since. */
static void
yq_push(struct rt_worker *w, struct rt_rec *rec)
{
	rec->seq = w->polls;
	rec->next = -1;
	if (w->yq_tail >= 0)
		w->rec[w->yq_tail].next = (int32_t)rec->idx;
	else
		w->yq_head = (int32_t)rec->idx;
	w->yq_tail = (int32_t)rec->idx;
}

/* The oldest remainder, when a pass over the rings has followed its yield. */
static bool
yq_run(struct rt_worker *w)
{
	struct rt_rec *rec;
	struct pel_rt_task t;

	if (w->yq_head < 0 || w->rec[w->yq_head].seq + 1 >= w->polls)
		return false;
	rec = &w->rec[w->yq_head];
	w->yq_head = rec->next;
	if (w->yq_head < 0)
		w->yq_tail = -1;
	t = rec->t;
	run_rec(w, &t, false);
	rec_done(w, rec);
	return true;
}

/* The layer's poller: due timers, then the most urgent ready task, else a plain remainder. */
static int
rt_poll(void *ctx)
{
	struct rt_worker *w = ctx;
	unsigned found = 0;

	w->polls++;
	if (w->wheel.count)
		found += pel__rt_wheel_poll(w);
	if (w->nheap) {
		/* relaxed: a setting; pel_rt_init() may change it while we run */
		unsigned batch = atomic_load_explicit(&w->layer->batch, memory_order_relaxed), k = 0;

		do {
			run_one(w);
			found++;
		} while (w->nheap && ++k < batch);
	} else if (w->yq_head >= 0) {
		found++;	/* a remainder waiting for its pass counts as work: no parking */
		yq_run(w);
	} else if (pel_unlikely(!atomic_load_explicit(w->yield_at, memory_order_relaxed)) &&
		   atomic_load_explicit(&w->accepted, memory_order_acquire) ==
		   atomic_load_explicit(&w->done, memory_order_relaxed)) {
		/* an urge that landed after its task ran: nothing outranks plain work now */
		atomic_store_explicit(w->yield_at, UINT64_MAX, memory_order_relaxed);
	}
	return (int)found;
}

/* ---- set-up and tear-down ---- */

struct install {
	struct rt_layer *L;
	bool mlock;
};

static uint32_t
beat_gate(const struct rt_layer *L, const struct pel__beat *b)
{
	return (L->stall_ns || b->budget) ? PEL__GATE_BEAT : 0;
}

static void
install(unsigned id, void *arg)
{
	struct install *in = arg;
	struct rt_worker *w = in->L->w[id];
	int err;

	/* first touch from the worker: the pages come from its node */
	memset(w->rec, 0, sizeof(*w->rec) * w->store.cap);
	memset(w->tm, 0, sizeof(*w->tm) * w->tstore.cap);
	memset(w->heap, 0, sizeof(*w->heap) * w->store.cap);
	for (unsigned i = 0; i < w->store.cap; i++) {
		w->rec[i].owner = w;
		w->rec[i].idx = i;
	}
	for (unsigned i = 0; i < w->tstore.cap; i++) {
		w->tm[i].owner = w;
		w->tm[i].idx = i;
		w->tm[i].prev = w->tm[i].next = -1;
	}
	if (in->mlock && (mlock(w->rec, sizeof(*w->rec) * w->store.cap) ||
			  mlock(w->tm, sizeof(*w->tm) * w->tstore.cap) ||
			  mlock(w->heap, sizeof(*w->heap) * w->store.cap)))
		pel__rt_log(in->L->rt, PEL_LOG_WARNING, "real-time layer: mlock of worker %u's "
			    "stores refused; they may fault on first use (raise ulimit -l)", id);
	pel__rt_wheel_init(w);
	w->beat = pel__worker_beat(in->L->rt, id);
	w->yield_at = w->beat->yield_at;
	w->beat->intake = intake;
	gate_set(w, PEL__GATE_BEAT, beat_gate(in->L, w->beat));
	err = pel__poller_add(rt_poll, w, PEL__POLL_PARK_OK);
	if (err) {
		/* the words are this thread's: keep them for the caller (who reads them after
		 * pel__run_on_each_worker() returns, which orders it) */
		w->setup_err = err;
		snprintf(w->setup_msg, sizeof(w->setup_msg), "%s", pel_last_error());
		return;
	}
	/* release: pairs with the acquire in pel__rt_worker_check(); the set-up above (beat,
	 * yield word, records) is visible to a submitter that sees ok */
	atomic_store_explicit(&w->ok, true, memory_order_release);
}

static void
store_init(struct rt_store *s, unsigned cap)
{
	s->cap = cap;
	for (unsigned i = 0; i + 1 < cap; i++)
		atomic_init(&s->next[i], i + 2);
	atomic_init(&s->next[cap - 1], 0);
	atomic_init(&s->top, 1);
}

static void
worker_free(struct rt_worker *w)
{
	if (!w)
		return;
	free(w->rec);
	free(w->tm);
	free(w->heap);
	free(w->store.next);
	free(w->tstore.next);
	free(w);
}

static void
layer_free(struct rt_layer *L)
{
	for (unsigned i = 0; i < L->nworkers; i++)
		worker_free(L->w[i]);
	free(L->w);
	free(L);
}

static struct rt_worker *
worker_alloc(struct rt_layer *L, unsigned id)
{
	struct rt_worker *w = aligned_alloc(PEL_CACHE_GUARD, sizeof(*w));

	if (!w)
		return NULL;
	memset(w, 0, sizeof(*w));
	w->layer = L;
	w->id = id;
	w->yq_head = w->yq_tail = -1;
	atomic_init(&w->cur_class, PEL_PRIO_CLASSES);
	w->rec = malloc(sizeof(*w->rec) * L->tasks);
	w->heap = malloc(sizeof(*w->heap) * L->tasks);
	w->tm = malloc(sizeof(*w->tm) * L->timers);
	w->store.next = malloc(sizeof(*w->store.next) * L->tasks);
	w->tstore.next = malloc(sizeof(*w->tstore.next) * L->timers);
	if (!w->rec || !w->heap || !w->tm || !w->store.next || !w->tstore.next) {
		worker_free(w);
		return NULL;
	}
	store_init(&w->store, L->tasks);
	store_init(&w->tstore, L->timers);
	return w;
}

static void *monitor_main(void *arg);

static int
monitor_start(struct rt_layer *L)
{
	int err = pthread_create(&L->monitor, NULL, monitor_main, L);

	if (err)
		return pel__fail(-err, "real-time layer: the stall monitor thread could not start "
				 "(%s)", strerror(err));
	L->monitor_on = true;
	return 0;
}

static void
monitor_stop(struct rt_layer *L)
{
	if (!L->monitor_on)
		return;
	/* relaxed: a stop flag; pthread_join() orders what the monitor did */
	atomic_store_explicit(&L->monitor_stop, true, memory_order_relaxed);
	pthread_join(L->monitor, NULL);
	L->monitor_on = false;
}

static int
config_check(const struct pel_rt_config *cfg)
{
	if (cfg->tasks > RT_MAX_RECORDS)
		return pel__fail(-EINVAL, "rt config: tasks %u is beyond %u per worker", cfg->tasks,
				 RT_MAX_RECORDS);
	if (cfg->timers > RT_MAX_RECORDS)
		return pel__fail(-EINVAL, "rt config: timers %u is beyond %u per worker",
				 cfg->timers, RT_MAX_RECORDS);
	if (cfg->batch > RT_MAX_BATCH)
		return pel__fail(-EINVAL, "rt config: batch %u is beyond %u ready tasks a pass",
				 cfg->batch, RT_MAX_BATCH);
	for (unsigned i = 0; i < sizeof(cfg->reserved) / sizeof(cfg->reserved[0]); i++)
		if (cfg->reserved[i])
			return pel__fail(-EINVAL, "rt config: reserved[%u] is not zero (start from "
					 "a zeroed struct)", i);
	if (cfg->pad_)
		return pel__fail(-EINVAL, "rt config: pad_ is not zero (start from a zeroed struct)");
	return 0;
}

/* Under the layer lock: build the layer and put it on every worker. */
static int
setup_locked(struct pel_runtime *rt, const struct pel_rt_config *cfg, struct rt_layer **out)
{
	struct install in = { .mlock = pel__rt_flags(rt) & PEL_F_MLOCK };
	unsigned n = pel_worker_count(rt);
	struct rt_layer *L;
	int err, add;

	if (n > RT_MAX_WORKERS)
		return pel__fail(-EINVAL, "real-time layer: %u workers, at most %u", n,
				 RT_MAX_WORKERS);
	L = calloc(1, sizeof(*L));
	if (!L)
		return pel__fail(-ENOMEM, "real-time layer: out of memory");
	L->rt = rt;
	L->nworkers = n;
	L->tasks = cfg->tasks ? cfg->tasks : RT_DEFAULT_TASKS;
	L->timers = cfg->timers ? cfg->timers : RT_DEFAULT_TIMERS;
	L->stall_ns = cfg->stall_ns;
	atomic_init(&L->batch, cfg->batch ? cfg->batch : 1);
	atomic_init(&L->policy, PEL_LATE_RUN);
	L->w = calloc(n, sizeof(*L->w));
	if (!L->w) {
		free(L);
		return pel__fail(-ENOMEM, "real-time layer: out of memory");
	}
	for (unsigned i = 0; i < n; i++) {
		L->w[i] = worker_alloc(L, i);
		if (!L->w[i]) {
			unsigned tasks = L->tasks, timers = L->timers;

			layer_free(L);	/* the message reads what it freed: copied first */
			return pel__fail(-ENOMEM, "real-time layer: out of memory for worker %u's "
					 "%u tasks and %u timers", i, tasks, timers);
		}
	}
	/* put it on every worker first, then register it: a submitter never finds a layer half
	 * set up (it finds none, and waits for us on the layer lock to set one up) */
	in.L = L;
	err = pel__run_on_each_worker(rt, install, &in);
	/* registered even when that failed: pollers may be in place, pel_destroy() stops it */
	add = pel__layer_add(rt, &rt_ops, L);
	if (add) {
		/* its pollers may hold it: it cannot be freed; say so (PEL__MAX_LAYERS taken) */
		pel__rt_log(rt, PEL_LOG_ERROR, "real-time layer: %s; its memory stays allocated",
			    pel_last_error());
		return add;
	}
	for (unsigned i = 0; !err && i < n; i++)
		if (L->w[i]->setup_err)
			err = pel__fail(L->w[i]->setup_err, "real-time layer on worker %u: %s", i,
					L->w[i]->setup_msg);
	if (!err && L->stall_ns)
		err = monitor_start(L);
	if (err)
		return err;
	*out = L;
	return 0;
}

static int
setup(struct pel_runtime *rt, const struct pel_rt_config *cfg, struct rt_layer **out)
{
	static const struct pel_rt_config defaults;
	struct rt_layer *L;
	int err;

	if (!rt)
		return pel__fail(-EINVAL, "runtime is NULL");
	if (!cfg)
		cfg = &defaults;
	err = config_check(cfg);
	if (err)
		return err;
	err = pel__layer_enter(rt);
	if (err)
		return err;
	L = pel__layer_get(rt, &rt_ops);
	if (L) {
		pel__layer_leave(rt);
		*out = L;
		return -EEXIST;
	}
	err = setup_locked(rt, cfg, out);
	pel__layer_leave(rt);
	return err;
}

static bool rt_quiet(struct pel_runtime *rt, void *state, uint64_t *stamp);

/* On each worker, for pel_rt_init() on a layer that runs: new stores of the sizes asked, when
 * none of the old ones' records is in use (no task queued, no timer pending). */
struct resize {
	struct rt_layer *L;
	unsigned tasks, timers;
	bool mlock;
	_Atomic int err;
};

static void
resize_on(unsigned id, void *arg)
{
	struct resize *rz = arg;
	struct rt_worker *w = rz->L->w[id];
	struct rt_rec *rec;
	struct rt_timer *tm;
	uint32_t *heap;
	_Atomic uint32_t *next, *tnext;

	/* relaxed: this worker's own counters, and submitters' counts it must not race */
	if (w->wheel.count || w->nheap || w->yq_head >= 0 ||
	    atomic_load_explicit(&w->accepted, memory_order_acquire) !=
	    atomic_load_explicit(&w->done, memory_order_relaxed)) {
		atomic_store_explicit(&rz->err, -EBUSY, memory_order_relaxed);
		return;
	}
	rec = calloc(rz->tasks, sizeof(*rec));
	heap = calloc(rz->tasks, sizeof(*heap));
	tm = calloc(rz->timers, sizeof(*tm));
	next = malloc(sizeof(*next) * rz->tasks);
	tnext = malloc(sizeof(*tnext) * rz->timers);
	if (!rec || !heap || !tm || !next || !tnext) {
		free(rec);
		free(heap);
		free(tm);
		free((void *)next);
		free((void *)tnext);
		atomic_store_explicit(&rz->err, -ENOMEM, memory_order_relaxed);
		return;
	}
	for (unsigned i = 0; i < rz->tasks; i++) {
		rec[i].owner = w;
		rec[i].idx = i;
	}
	for (unsigned i = 0; i < rz->timers; i++) {
		tm[i].owner = w;
		tm[i].idx = i;
		tm[i].prev = tm[i].next = -1;
	}
	if (rz->mlock)
		munlock(w->rec, sizeof(*w->rec) * w->store.cap);
	free(w->rec);
	free(w->heap);
	free(w->tm);
	free((void *)w->store.next);
	free((void *)w->tstore.next);
	w->rec = rec;
	w->heap = heap;
	w->tm = tm;
	w->store.next = next;
	w->tstore.next = tnext;
	store_init(&w->store, rz->tasks);
	store_init(&w->tstore, rz->timers);
	if (rz->mlock && (mlock(rec, sizeof(*rec) * rz->tasks) ||
			  mlock(tm, sizeof(*tm) * rz->timers) ||
			  mlock(heap, sizeof(*heap) * rz->tasks)))
		pel__rt_log(rz->L->rt, PEL_LOG_WARNING, "real-time layer: mlock of worker %u's "
			    "stores refused; they may fault on first use (raise ulimit -l)", id);
}

static void
stall_gate_on(unsigned id, void *arg)
{
	struct rt_layer *L = arg;
	struct rt_worker *w = L->w[id];

	gate_set(w, PEL__GATE_BEAT, beat_gate(L, w->beat));
}

/* pel_rt_init() on a layer that runs (every runtime has one from pel_create()): new sizes while
 * nothing is in use, and the stall threshold at any time. Under the layer lock. */
static int
reconfigure(struct pel_runtime *rt, struct rt_layer *L, const struct pel_rt_config *cfg)
{
	unsigned tasks = cfg->tasks ? cfg->tasks : RT_DEFAULT_TASKS;
	unsigned timers = cfg->timers ? cfg->timers : RT_DEFAULT_TIMERS;
	int err;

	if (tasks != L->tasks || timers != L->timers) {
		struct resize rz = { L, tasks, timers, pel__rt_flags(rt) & PEL_F_MLOCK, 0 };
		uint64_t stamp;

		/* records or timers ever taken (some may still travel in rings): refused here,
		 * without waiting for a busy worker (each worker looks again before it swaps) */
		err = rt_quiet(rt, L, &stamp) &&
		      !atomic_load_explicit(&L->used, memory_order_relaxed) ?
		      pel__run_on_each_worker(rt, resize_on, &rz) : -EBUSY;
		if (!err)
			err = atomic_load_explicit(&rz.err, memory_order_relaxed);
		if (err == -EBUSY)
			return pel__fail(-EBUSY, "pel_rt_init(): real-time tasks or timers have been "
					 "used: the stores (%u tasks, %u timers a worker) change only "
					 "before the first", L->tasks, L->timers);
		if (err == -ENOMEM)
			return pel__fail(-ENOMEM, "pel_rt_init(): out of memory for %u tasks and %u "
					 "timers a worker (some workers may have the new sizes)",
					 tasks, timers);
		if (err)
			return err;
		L->tasks = tasks;
		L->timers = timers;
	}
	/* relaxed: each worker reads it at its next pass */
	atomic_store_explicit(&L->batch, cfg->batch ? cfg->batch : 1, memory_order_relaxed);
	if (cfg->stall_ns != L->stall_ns) {
		monitor_stop(L);
		atomic_store_explicit(&L->monitor_stop, false, memory_order_relaxed);
		L->stall_ns = cfg->stall_ns;
		err = pel__run_on_each_worker(rt, stall_gate_on, L);
		if (!err && L->stall_ns)
			err = monitor_start(L);
		if (err)
			return err;
	}
	return 0;
}

int
pel_rt_init(struct pel_runtime *rt, const struct pel_rt_config *cfg)
{
	static const struct pel_rt_config defaults;
	struct rt_layer *L;
	int err = setup(rt, cfg, &L);

	if (err != -EEXIST)
		return err;
	/* it runs (from pel_create()): change what may change */
	err = pel__layer_enter(rt);
	if (err)
		return err;
	L = pel__layer_get(rt, &rt_ops);
	err = L ? reconfigure(rt, L, cfg ? cfg : &defaults) : -ENODEV;
	pel__layer_leave(rt);
	return err;
}

/* Every runtime has the real-time layer from pel_create(), with the defaults: timers and
 * pel_spawn_rt() work from tasks without a set-up call. */
static int
rt_autostart(struct pel_runtime *rt)
{
	return pel_rt_init(rt, NULL);
}

static struct pel__autostart rt_start = { .name = "real-time", .start = rt_autostart };

__attribute__((constructor)) static void
rt_register(void)
{
	pel__autostart_register(&rt_start);
}

/* The layer of @p rt, set up with the defaults when missing. From a non-worker thread. */
static int
layer_of(struct pel_runtime *rt, struct rt_layer **out)
{
	int err;

	if (!rt)
		return pel__fail(-EINVAL, "runtime is NULL");
	*out = pel__layer_find(rt, &rt_ops);
	if (*out)
		return 0;
	err = setup(rt, NULL, out);
	return err == -EEXIST ? 0 : err;
}

static const char timers_left_fmt[] =
	"pel_destroy(): %u timer%s pending on worker %u cancelled, not run";

static void
rt_stop(struct pel_runtime *rt, void *state)
{
	struct rt_layer *L = state;

	monitor_stop(L);
	for (unsigned i = 0; i < L->nworkers; i++) {
		struct rt_worker *w = L->w[i];
		unsigned left = w->timers_at_stop + pel__rt_wheel_drop_all(w);

		if (left)
			pel__rt_log(rt, PEL_LOG_INFO, timers_left_fmt, left, left == 1 ? "" : "s",
				    i);
		if (w->nheap)	/* cannot happen: the drain ran them; say so if it does */
			pel__rt_log(rt, PEL_LOG_ERROR, "pel_destroy(): %u real-time tasks left on "
				    "worker %u", w->nheap, i);
	}
	layer_free(L);
}

/*
 * pel_drain(): no real-time task waits in a ready queue. All accepted counts, then all done
 * counts, then accepted again: unchanged and done >= accepted means none was outstanding at an
 * instant between the reads.
 */
static bool
rt_quiet(struct pel_runtime *rt, void *state, uint64_t *stamp)
{
	struct rt_layer *L = state;
	uint64_t a1 = 0, d = 0, a2 = 0;

	(void)rt;
	for (unsigned i = 0; i < L->nworkers; i++)
		/* acquire: a submitter's count, bumped before its push */
		a1 += atomic_load_explicit(&L->w[i]->accepted, memory_order_acquire);
	for (unsigned i = 0; i < L->nworkers; i++)
		/* acquire: pairs with the release in rec_done(); the task's effects are visible */
		d += atomic_load_explicit(&L->w[i]->done, memory_order_acquire);
	for (unsigned i = 0; i < L->nworkers; i++)
		a2 += atomic_load_explicit(&L->w[i]->accepted, memory_order_acquire);
	*stamp = a1 + d;
	return d >= a1 && a1 == a2;
}

/* ---- submitting ---- */

static int
task_check(const struct pel_rt_task *t)
{
	if (!t)
		return pel__fail(-EINVAL, "real-time task is NULL");
	if (!t->fn)
		return pel__fail(-EINVAL, "real-time task's fn is NULL");
	if (t->prio >= PEL_PRIO_CLASSES)
		return pel__fail(-EINVAL, "real-time task's prio %u is out of range 0..%d (0 most "
				 "urgent)", t->prio, PEL_PRIO_CLASSES - 1);
	if (!t->deadline_ns)
		return pel__fail(-EINVAL, "real-time task's deadline_ns is 0; give an absolute "
				 "pel_now_ns() time, or PEL_NO_DEADLINE");
	return 0;
}

static int
deadline_check(const struct pel_rt_task *t)
{
	uint64_t now;

	if (t->deadline_ns == PEL_NO_DEADLINE)
		return 0;
	now = pel_now_ns();
	if (pel_unlikely(t->deadline_ns <= now)) {
		uint64_t us = (now - t->deadline_ns) / 1000;

		/* lazy: an overloaded producer may see this often; worded when asked */
		return pel__fail_lazy(-ETIME, PEL__LAZY_PAST_DEADLINE,
				      us > UINT32_MAX ? UINT32_MAX : (unsigned)us, 0);
	}
	return 0;
}

int
pel__rt_worker_check(const struct rt_layer *L, unsigned worker)
{
	if (worker >= L->nworkers)
		return pel__fail(-EINVAL, "worker %u does not exist (%u workers)", worker,
				 L->nworkers);
	/* acquire: pairs with the release in install() */
	if (!atomic_load_explicit(&L->w[worker]->ok, memory_order_acquire))
		return pel__fail(-ENODEV, "the real-time layer is not working on worker %u: its "
				 "set-up failed there (pel_rt_init() said why)", worker);
	return 0;
}

/* A record of @p w's store, filled with @p t and counted as accepted; NULL when full. */
static struct rt_rec *
rec_take(struct rt_worker *w, const struct pel_rt_task *t)
{
	int64_t i = rt_store_get(&w->store);
	struct rt_rec *rec;

	pel__rt_mark_used(w->layer);
	if (pel_unlikely(i < 0)) {
		/* lazy, as a full ring: worded when asked (raise pel_rt_config.tasks) */
		pel__fail_lazy(-EAGAIN, PEL__LAZY_STORE_FULL, w->id, w->store.cap);
		return NULL;
	}
	rec = &w->rec[i];
	rec->t = *t;
	/* relaxed: ordered before the record's push, which is a release (pel_drain()) */
	atomic_fetch_add_explicit(&w->accepted, 1, memory_order_relaxed);
	return rec;
}

/* The push failed: the record goes back and counts as done. */
static void
rec_abandon(struct rt_worker *w, struct rt_rec *rec)
{
	rt_store_put(&w->store, rec->idx);
	/* release: pairs with the acquire in rt_quiet(), as in rec_done() */
	atomic_fetch_add_explicit(&w->done, 1, memory_order_release);
}

/* Ask the task running on @p w to yield when @p t outranks it: a more urgent class, or the same
 * class and an earlier deadline. */
static inline void
urge(struct rt_worker *w, const struct pel_rt_task *t)
{
	/* relaxed, all: hints; a torn pair (class of one task, deadline of the next) costs at
	 * worst a needless yield or one that waits for the quantum */
	unsigned c = atomic_load_explicit(&w->cur_class, memory_order_relaxed);
	bool first;

	first = t->prio < c ||
		(t->prio == c && t->deadline_ns < atomic_load_explicit(&w->cur_dl,
									 memory_order_relaxed));
	if (first)
		atomic_store_explicit(w->yield_at, 0, memory_order_relaxed);
}

int
pel_submit_rt(struct pel_producer *p, unsigned worker, const struct pel_rt_task *t)
{
	struct rt_layer *L;
	struct rt_worker *w;
	struct rt_rec *rec;
	int err = task_check(t);

	if (err)
		return err;
	err = pel__producer_enter(p);
	if (err)
		return err;
	L = pel__layer_find(pel__producer_rt(p), &rt_ops);
	if (pel_unlikely(!L)) {
		/* first use: set the layer up (cold), outside the section */
		pel__producer_leave(p);
		err = layer_of(pel__producer_rt(p), &L);
		if (err)
			return err;
		err = pel__producer_enter(p);
		if (err)
			return err;
	}
	err = pel__rt_worker_check(L, worker);
	if (err)
		goto out;
	err = deadline_check(t);
	if (err)
		goto out;
	w = L->w[worker];
	rec = rec_take(w, t);
	if (!rec) {
		err = -EAGAIN;
		goto out;
	}
	urge(w, t);	/* before the push: the worker's reset at the task's start comes after */
	err = pel__producer_push(p, worker, intake, rec);
	if (err) {
		rec_abandon(w, rec);
		goto out;
	}
out:
	pel__producer_leave(p);
	return err;
}

struct rt_layer *
pel__rt_self_layer(unsigned *self)
{
	const struct pel_runtime *rt = pel__tls_worker.rt;

	if (!rt || !pel__tls_worker.w)
		return NULL;
	*self = pel__tls_worker.id;
	return pel__layer_find(rt, &rt_ops);
}

/* From a task: queue @p t on @p worker; @p check_deadline false for a yield's remainder. */
static int
spawn_rt(struct rt_layer *L, unsigned self, unsigned worker, const struct pel_rt_task *t,
	 bool check_deadline)
{
	struct rt_worker *w;
	struct rt_rec *rec;
	int err;

	err = pel__rt_worker_check(L, worker);
	if (err)
		return err;
	if (check_deadline) {
		err = deadline_check(t);
		if (err)
			return err;
	}
	w = L->w[worker];
	rec = rec_take(w, t);
	if (!rec)
		return -EAGAIN;
	if (worker == self) {
		ready(w, rec);
		return 0;
	}
	urge(w, t);
	err = pel_spawn(worker, intake, rec);
	if (err) {
		rec_abandon(w, rec);
		return err;
	}
	return 0;
}

int
pel_spawn_rt(unsigned worker, const struct pel_rt_task *t)
{
	unsigned self;
	struct rt_layer *L;
	int err;

	if (!pel__tls_worker.w)
		return pel__fail(-EPERM, "pel_spawn_rt() is called from a task; from another "
				 "thread use pel_submit_rt()");
	err = task_check(t);
	if (err)
		return err;
	L = pel__rt_self_layer(&self);
	if (!L)
		return pel__fail(-ENODEV, "the real-time layer did not start on this runtime (logged at "
				 "pel_create()); pel_rt_init() sets it up");
	return spawn_rt(L, self, worker, t, true);
}

int
pel_yield_to(pel_task_fn fn, void *arg)
{
	unsigned self;
	struct rt_layer *L;

	if (!pel__tls_worker.w)
		return pel__fail(-EPERM, "pel_yield_to() is called from inside a task");
	if (!fn)
		return pel__fail(-EINVAL, "pel_yield_to(): fn is NULL");
	L = pel__rt_self_layer(&self);
	if (L && L->w[self]->in_rt) {
		struct rt_worker *w = L->w[self];
		struct pel_rt_task t = {
			.fn = fn, .arg = arg, .deadline_ns = w->cur_deadline, .prio = w->cur_prio
		};

		return spawn_rt(L, self, self, &t, false);
	}
	if (L) {
		struct rt_worker *w = L->w[self];
		struct pel_rt_task t = { .fn = fn, .arg = arg, .deadline_ns = PEL_NO_DEADLINE,
					 .prio = PEL_PRIO_CLASSES };
		struct rt_rec *rec = rec_take(w, &t);

		if (!rec)
			return -EAGAIN;
		yq_push(w, rec);
		return 0;
	}
	return pel_spawn((unsigned)pel__tls_worker.id, fn, arg);
}

bool
pel__should_yield(void)
{
	/* relaxed: a hint, as in the inline pel_should_yield() */
	return pel__tsc() >= atomic_load_explicit(&pel__yield_at, memory_order_relaxed);
}

/* ---- policy, quantum, stats ---- */

/*
 * A cold call on the layer of @p rt (set up when missing), from a thread that is not a worker:
 * returns 0 with the layer lock held (pel__layer_leave()), so pel_destroy() cannot stop it.
 */
static int
cold_enter(struct pel_runtime *rt, const char *call, struct rt_layer **L)
{
	int err;

	if (pel__tls_worker.w)
		return pel__fail(-EDEADLK, "%s() called from a task: it waits for the workers; "
				 "call it from a thread that is not a worker", call);
	err = layer_of(rt, L);
	return err ? err : pel__layer_enter(rt);
}

int
pel_rt_set_late_policy(struct pel_runtime *rt, enum pel_late_policy policy, pel_late_fn on_late)
{
	struct rt_layer *L;
	int err;

	if (policy != PEL_LATE_RUN && policy != PEL_LATE_DROP)
		return pel__fail(-EINVAL, "late policy %d is neither PEL_LATE_RUN nor "
				 "PEL_LATE_DROP", (int)policy);
	if (policy == PEL_LATE_DROP && !on_late)
		return pel__fail(-EINVAL, "PEL_LATE_DROP needs an on_late callback: dropped tasks "
				 "are reported, never lost silently");
	/* under the layer lock: pel_destroy() cannot stop the layer while we write to it */
	err = cold_enter(rt, "pel_rt_set_late_policy", &L);
	if (err)
		return err;
	/* relaxed: published by the release store of policy below */
	atomic_store_explicit(&L->on_late, on_late, memory_order_relaxed);
	/* release: pairs with the acquire in run_one(); on_late is set before DROP shows */
	atomic_store_explicit(&L->policy, (int)policy, memory_order_release);
	pel__layer_leave(rt);
	return 0;
}

static void
set_budget(unsigned id, void *arg)
{
	struct rt_layer *L = arg;
	struct rt_worker *w = L->w[id];

	w->beat->budget = L->quantum_ns ? pel__ns_to_cycles(L->quantum_ns) : 0;
	if (!w->beat->budget)	/* relaxed: this worker's own hint word */
		atomic_store_explicit(w->yield_at, UINT64_MAX, memory_order_relaxed);
	gate_set(w, PEL__GATE_BEAT, beat_gate(L, w->beat));
}

int
pel_rt_set_quantum(struct pel_runtime *rt, uint64_t ns)
{
	struct rt_layer *L;
	int err;

	err = cold_enter(rt, "pel_rt_set_quantum", &L);
	if (err)
		return err;
	L->quantum_ns = ns;
	err = pel__run_on_each_worker(rt, set_budget, L);
	pel__layer_leave(rt);
	return err;
}

int
pel_rt_stats(struct pel_runtime *rt, unsigned worker, struct pel_rt_stats *out)
{
	struct rt_layer *L;
	struct rt_worker *w;

	if (!rt || !out)
		return pel__fail(-EINVAL, "pel_rt_stats(): NULL argument");
	L = pel__layer_find(rt, &rt_ops);
	if (!L)
		return pel__fail(-ENODEV, "the real-time layer did not start on this runtime "
				 "(logged at pel_create())");
	if (worker >= L->nworkers)
		return pel__fail(-EINVAL, "worker %u does not exist (%u workers)", worker,
				 L->nworkers);
	w = L->w[worker];
	memset(out, 0, sizeof(*out));
	for (unsigned c = 0; c < PEL_PRIO_CLASSES; c++) {
		/* relaxed, all: counters, no data hangs on them */
		out->ran[c] = atomic_load_explicit(&w->ran[c], memory_order_relaxed);
		out->missed[c] = atomic_load_explicit(&w->missed[c], memory_order_relaxed);
		out->dropped[c] = atomic_load_explicit(&w->dropped[c], memory_order_relaxed);
	}
	out->queued = atomic_load_explicit(&w->queued, memory_order_relaxed);
	out->timers_fired = atomic_load_explicit(&w->timers_fired, memory_order_relaxed);
	out->timers_cancelled = atomic_load_explicit(&w->timers_cancelled, memory_order_relaxed);
	out->timer_late_max_ns = atomic_load_explicit(&w->timer_late_max, memory_order_relaxed);
	out->timer_late_sum_ns = atomic_load_explicit(&w->timer_late_sum, memory_order_relaxed);
	out->stalls = atomic_load_explicit(&w->stalls, memory_order_relaxed);
	return 0;
}

/* ---- the stall monitor ---- */

/* Keep the monitor off the workers' CPUs when another CPU is allowed, and at low priority. */
static void
monitor_place(struct rt_layer *L)
{
	cpu_set_t set;

	if (!sched_getaffinity(0, sizeof(set), &set)) {
		cpu_set_t off = set;

		for (unsigned i = 0; i < L->nworkers; i++) {
			int cpu = pel_worker_cpu(L->rt, i);

			if (cpu >= 0)
				CPU_CLR(cpu, &off);
		}
		if (CPU_COUNT(&off))
			pthread_setaffinity_np(pthread_self(), sizeof(off), &off);
	}
	setpriority(PRIO_PROCESS, 0, 10);	/* this thread only (Linux: per thread) */
	pthread_setname_np(pthread_self(), "pel-stall");
}

static void
monitor_check(struct rt_layer *L, struct rt_worker *w, uint64_t limit)
{
	uint64_t start, now;
	uintptr_t fn;

	if (!pel__beat_read(w->beat, &start, &fn) || !start || start == w->stall_seen)
		return;
	now = pel__tsc();
	if (now < start || now - start < limit)
		return;
	w->stall_seen = start;
	/* relaxed: a counter for pel_rt_stats() */
	atomic_fetch_add_explicit(&w->stalls, 1, memory_order_relaxed);
	pel__trace(rt_stall, w->id, (const void *)fn, pel__cycles_to_ns(now - start));
	pel__rt_log(L->rt, PEL_LOG_WARNING, "stall: worker %u (cpu %d) has been running task "
		    "%p for %llu us (threshold %llu us)", w->id, pel_worker_cpu(L->rt, w->id),
		    (void *)fn, (unsigned long long)(pel__cycles_to_ns(now - start) / 1000),
		    (unsigned long long)(L->stall_ns / 1000));
}

static void *
monitor_main(void *arg)
{
	struct rt_layer *L = arg;
	uint64_t limit = pel__ns_to_cycles(L->stall_ns);
	uint64_t period = L->stall_ns / 4;
	struct timespec ts;

	if (period < 50 * PEL_NS_PER_US)
		period = 50 * PEL_NS_PER_US;
	if (period > 10 * PEL_NS_PER_MS)
		period = 10 * PEL_NS_PER_MS;
	ts.tv_sec = (time_t)(period / PEL_NS_PER_S);
	ts.tv_nsec = (long)(period % PEL_NS_PER_S);
	monitor_place(L);
	/* relaxed: a stop flag (monitor_stop() joins us) */
	while (!atomic_load_explicit(&L->monitor_stop, memory_order_relaxed)) {
		nanosleep(&ts, NULL);
		for (unsigned i = 0; i < L->nworkers; i++)
			/* acquire: as in pel__rt_worker_check() */
			if (atomic_load_explicit(&L->w[i]->ok, memory_order_acquire))
				monitor_check(L, L->w[i], limit);
	}
	return NULL;
}
