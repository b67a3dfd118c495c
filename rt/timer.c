/* SPDX-License-Identifier: MIT */
/*
 * rt/timer.c - per-worker timers: a hierarchical timing wheel of 1 us ticks, 7 levels of 64 slots
 * (level l holds timers due within 64^(l+1) ticks; a slot of level l >= 1 cascades into the
 * levels below when the wheel reaches it), a bitmap of non-empty slots per level to skip empty
 * stretches. Insert and cancel are O(1); the wheel belongs to its worker alone: another worker
 * arms it by sending the timer through the worker mesh (pel_spawn()), and cancels by a state
 * change on the timer (a CAS), the unlink following as a message.
 *
 * Never early: a timer due at t ns sits at tick ceil(t / 1000), and tick k is processed only once
 * pel_now_ns() / 1000 >= k, i.e. at a time >= k * 1000 >= t; the firing checks the clock again.
 *
 * Idle: the poller is park-safe and asks the loop (pel__park_until()) to be woken by the next
 * tick where something is due or cascades, so a parked worker sleeps in a futex wait bounded by
 * it (with an I/O park hook it yields instead; sched/layer.h).
 */
#include <errno.h>
#include <string.h>

#include "rt_layer.h"
#include "trace/trace.h"

#define ID_IDX_BITS	20
#define ID_W_BITS	12

/* The wheels' clock: pel_now_ns(), or a test's fake one (pel__rt_timer_clock()). */
static uint64_t (*clock_ns)(void) = pel_now_ns;

void
pel__rt_timer_clock(uint64_t (*fn)(void))
{
	clock_ns = fn ? fn : pel_now_ns;
}

static inline uint64_t
state_of(uint64_t gen, unsigned st)
{
	return gen << 8 | st;
}

static inline uint64_t
tick_of(uint64_t ns)
{
	return ns / 1000 + (ns % 1000 != 0);
}

void
pel__rt_wheel_init(struct rt_worker *w)
{
	struct rt_wheel *wh = &w->wheel;

	memset(wh->bitmap, 0, sizeof(wh->bitmap));
	for (unsigned l = 0; l < RT_WHEEL_LEVELS; l++)
		for (unsigned s = 0; s < RT_WHEEL_SLOTS; s++)
			wh->head[l][s] = -1;
	wh->count = 0;
	wh->now = clock_ns() / 1000;
}

static void
link_in(struct rt_worker *w, struct rt_timer *t)
{
	struct rt_wheel *wh = &w->wheel;
	uint64_t tick = t->tick < wh->now ? wh->now : t->tick;
	uint64_t delta = tick - wh->now;
	unsigned l = 0, s;
	int32_t *head;

	while (l < RT_WHEEL_LEVELS - 1 && delta >= (1ull << (RT_WHEEL_BITS * (l + 1))))
		l++;
	if (l == RT_WHEEL_LEVELS - 1 && delta >= (1ull << (RT_WHEEL_BITS * RT_WHEEL_LEVELS)))
		/* beyond the wheel: park it in the top level's furthest slot; it cascades again */
		tick = wh->now + (1ull << (RT_WHEEL_BITS * RT_WHEEL_LEVELS)) - 1;
	s = (unsigned)(tick >> (RT_WHEEL_BITS * l)) & (RT_WHEEL_SLOTS - 1);
	head = &wh->head[l][s];
	t->list = (uint16_t)(l * RT_WHEEL_SLOTS + s);
	t->prev = -1;
	t->next = *head;
	if (*head >= 0)
		w->tm[*head].prev = (int32_t)t->idx;
	*head = (int32_t)t->idx;
	wh->bitmap[l] |= 1ull << s;
	t->linked = true;
	wh->count++;
}

static void
unlink_from(struct rt_worker *w, struct rt_timer *t)
{
	struct rt_wheel *wh = &w->wheel;
	unsigned l = t->list / RT_WHEEL_SLOTS, s = t->list % RT_WHEEL_SLOTS;

	if (t->prev >= 0)
		w->tm[t->prev].next = t->next;
	else
		wh->head[l][s] = t->next;
	if (t->next >= 0)
		w->tm[t->next].prev = t->prev;
	if (wh->head[l][s] < 0)
		wh->bitmap[l] &= ~(1ull << s);
	t->linked = false;
	t->prev = t->next = -1;
	wh->count--;
}

/* Detach the list of (level, slot): its timers, unlinked, chained through next. */
static int32_t
take_slot(struct rt_worker *w, unsigned l, unsigned s)
{
	struct rt_wheel *wh = &w->wheel;
	int32_t first = wh->head[l][s];

	wh->head[l][s] = -1;
	wh->bitmap[l] &= ~(1ull << s);
	for (int32_t i = first; i >= 0; i = w->tm[i].next) {
		w->tm[i].linked = false;
		wh->count--;
	}
	return first;
}

static void
timer_free(struct rt_worker *w, struct rt_timer *t)
{
	t->fn = NULL;
	rt_store_put(&w->tstore, t->idx);
}

static void
record_late(struct rt_worker *w, uint64_t late)
{
	/* relaxed, all: the worker's own counters, read by pel_rt_stats() */
	uint64_t max = atomic_load_explicit(&w->timer_late_max, memory_order_relaxed);

	if (late > max)
		atomic_store_explicit(&w->timer_late_max, late, memory_order_relaxed);
	atomic_store_explicit(&w->timer_late_sum,
			      atomic_load_explicit(&w->timer_late_sum, memory_order_relaxed) + late,
			      memory_order_relaxed);
	atomic_store_explicit(&w->timers_fired,
			      atomic_load_explicit(&w->timers_fired, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* A timer whose tick came: fire it, re-arm it (periodic) or free it (cancelled). */
static unsigned
expire(struct rt_worker *w, struct rt_timer *t)
{
	/* acquire: pairs with the release of a cancel's CAS (nothing hangs on it but the state) */
	uint64_t st = atomic_load_explicit(&t->state, memory_order_acquire);
	uint64_t gen = st >> 8, now;

	if ((st & 0xff) != RT_TM_PENDING) {
		timer_free(w, t);
		return 0;
	}
	now = clock_ns();
	if (pel_unlikely(now < t->at_ns)) {
		/* the clock has not reached it (never happens with ticks rounded up): wait */
		link_in(w, t);
		return 0;
	}
	/* the callback counts as a task in flight for pel_drain() (it may spawn); full barrier:
	 * our count before our look at stopping, pel_destroy()'s stopping store before its drain's
	 * look at the counts: either it waits for this callback, or we see it stop and do not run */
	atomic_fetch_add_explicit(&w->accepted, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (pel_unlikely(pel__rt_stopping(w->layer->rt))) {
		/* acq_rel: against a canceller's CAS: cancelled either way, counted once */
		if (atomic_compare_exchange_strong_explicit(&t->state, &st,
							    state_of(gen, RT_TM_CANCELLED),
							    memory_order_acq_rel,
							    memory_order_acquire))
			w->timers_at_stop++;
		timer_free(w, t);
		atomic_fetch_add_explicit(&w->done, 1, memory_order_release);
		return 0;
	}
	/* acq_rel: against a canceller's CAS (pel_timer_cancel()): one of the two wins. A periodic
	 * timer goes RUNNING for its callback, so a cancel that returns 0 means no callback starts
	 * after it (one under way may finish) */
	if (!atomic_compare_exchange_strong_explicit(&t->state, &st,
						     state_of(gen, t->period_ns ? RT_TM_RUNNING :
							      RT_TM_FIRED),
						     memory_order_acq_rel, memory_order_acquire)) {
		timer_free(w, t);	/* cancelled just now */
		atomic_fetch_add_explicit(&w->done, 1, memory_order_release);
		return 0;
	}
	record_late(w, now - t->at_ns);
	pel__trace(timer_fire, w->id, gen << 32 | (uint64_t)w->id << ID_IDX_BITS | t->idx,
		   now - t->at_ns);
	/* relaxed: the worker's own word */
	if (atomic_load_explicit(&w->beat->gate, memory_order_relaxed) & PEL__GATE_BEAT) {
		pel__beat_begin(w->beat, (const void *)t->fn, pel__tsc());
		t->fn(t->arg);
		pel__beat_end(w->beat);
	} else {
		t->fn(t->arg);
	}
	atomic_fetch_add_explicit(&w->done, 1, memory_order_release);
	if (!t->period_ns) {
		timer_free(w, t);
		return 1;
	}
	/* acq_rel: against a canceller's CAS; RUNNING -> PENDING, unless it was cancelled meanwhile
	 * (maybe by its own callback) */
	st = state_of(gen, RT_TM_RUNNING);
	if (!atomic_compare_exchange_strong_explicit(&t->state, &st, state_of(gen, RT_TM_PENDING),
						     memory_order_acq_rel, memory_order_acquire)) {
		timer_free(w, t);
		return 1;
	}
	/* next due time: one period after the last due time; periods already past are skipped */
	now = clock_ns();
	t->at_ns += t->period_ns;
	if (t->at_ns <= now)
		t->at_ns += ((now - t->at_ns) / t->period_ns + 1) * t->period_ns;
	t->tick = tick_of(t->at_ns);
	link_in(w, t);
	return 1;
}

/* The cascade of level @p l at the wheel's current tick: its slot moves to the levels below. */
static void
cascade(struct rt_worker *w, unsigned l)
{
	unsigned s = (unsigned)(w->wheel.now >> (RT_WHEEL_BITS * l)) & (RT_WHEEL_SLOTS - 1);
	int32_t i = take_slot(w, l, s);

	while (i >= 0) {
		struct rt_timer *t = &w->tm[i];

		i = t->next;
		link_in(w, t);
	}
}

/* Process ticks up to @p to included. @return callbacks run. */
static unsigned
advance(struct rt_worker *w, uint64_t to)
{
	struct rt_wheel *wh = &w->wheel;
	unsigned fired = 0;

	while (wh->now <= to && wh->count) {
		unsigned idx = (unsigned)wh->now & (RT_WHEEL_SLOTS - 1);
		uint64_t next, m;

		if (!idx)
			for (unsigned l = 1; l < RT_WHEEL_LEVELS; l++) {
				cascade(w, l);
				if ((wh->now >> (RT_WHEEL_BITS * l)) & (RT_WHEEL_SLOTS - 1))
					break;
			}
		/* a callback may arm a timer due now: it lands in this slot; take it too (a few
		 * rounds, so a callback that re-arms itself at once cannot hold the worker) */
		for (unsigned round = 0; round < 4 && (wh->bitmap[0] & (1ull << idx)); round++) {
			int32_t i = take_slot(w, 0, idx);

			while (i >= 0) {
				struct rt_timer *t = &w->tm[i];

				i = t->next;
				fired += expire(w, t);
			}
		}
		/* skip to the next occupied slot of level 0, or to the next cascade */
		m = idx == RT_WHEEL_SLOTS - 1 ? 0 : wh->bitmap[0] >> (idx + 1);
		next = m ? wh->now + 1 + (uint64_t)__builtin_ctzll(m) : (wh->now | 63) + 1;
		/* never past to + 1: a timer armed before the next poll may be due in between */
		wh->now = next > to + 1 ? to + 1 : next;
	}
	if (!wh->count && wh->now <= to)
		wh->now = to + 1;
	return fired;
}

/* The next tick at which something is due or cascades (a bound: never later than due). */
static uint64_t
next_tick(const struct rt_wheel *wh)
{
	uint64_t best = UINT64_MAX;

	for (unsigned l = 0; l < RT_WHEEL_LEVELS; l++) {
		unsigned sh = RT_WHEEL_BITS * l, start;
		uint64_t base, rot;

		if (!wh->bitmap[l])
			continue;
		/* the first tick >= now at which level l's slots are visited */
		base = l ? ((wh->now + (1ull << sh) - 1) >> sh) << sh : wh->now;
		start = (unsigned)(base >> sh) & (RT_WHEEL_SLOTS - 1);
		rot = start ? (wh->bitmap[l] >> start) | (wh->bitmap[l] << (64 - start))
			    : wh->bitmap[l];
		base += (uint64_t)__builtin_ctzll(rot) << sh;
		if (base < best)
			best = base;
	}
	return best;
}

static void
cancel_all(struct rt_worker *w)
{
	for (unsigned l = 0; l < RT_WHEEL_LEVELS; l++)
		for (unsigned s = 0; s < RT_WHEEL_SLOTS; s++) {
			int32_t i;

			if (!(w->wheel.bitmap[l] & (1ull << s)))
				continue;
			i = take_slot(w, l, s);
			while (i >= 0) {
				struct rt_timer *t = &w->tm[i];
				/* acquire: pairs with a canceller's CAS */
				uint64_t st = atomic_load_explicit(&t->state, memory_order_acquire);

				i = t->next;
				if ((st & 0xff) == RT_TM_PENDING)
					w->timers_at_stop++;
				/* release: a later cancel answers -EALREADY; one racing this
				 * store may still win its CAS: the timer is cancelled either way */
				atomic_store_explicit(&t->state, state_of(st >> 8, RT_TM_CANCELLED),
						      memory_order_release);
				timer_free(w, t);
			}
		}
}

unsigned
pel__rt_wheel_poll(struct rt_worker *w)
{
	unsigned fired;
	uint64_t nt;

	if (pel_unlikely(pel__rt_stopping(w->layer->rt))) {
		/* pel_destroy(): pending timers are cancelled, counted and reported at the stop */
		cancel_all(w);
		return 0;
	}
	fired = advance(w, clock_ns() / 1000);
	if (w->wheel.count) {
		nt = next_tick(&w->wheel);
		pel__park_until(nt < UINT64_MAX / 1000 ? nt * 1000 : UINT64_MAX);
	}
	return fired;
}

unsigned
pel__rt_wheel_drop_all(struct rt_worker *w)
{
	unsigned before = w->timers_at_stop, n;

	cancel_all(w);
	n = w->timers_at_stop - before;
	w->timers_at_stop = before;
	return n;
}

/* ---- arming and cancelling ---- */

/* On the owner: a timer armed by another worker arrives. */
static void
arm_task(void *arg)
{
	struct rt_timer *t = arg;
	struct rt_worker *w = t->owner;
	/* acquire: pairs with the release in timer_take() and a canceller's CAS */
	uint64_t st = atomic_load_explicit(&t->state, memory_order_acquire);

	if ((st & 0xff) != RT_TM_PENDING) {
		timer_free(w, t);
		return;
	}
	if (pel__rt_stopping(w->layer->rt)) {
		w->timers_at_stop++;
		/* release: as in cancel_all() */
		atomic_store_explicit(&t->state, state_of(st >> 8, RT_TM_CANCELLED),
				      memory_order_release);
		timer_free(w, t);
		return;
	}
	link_in(w, t);
}

/* A fresh generation for timer @p t (never 0: an id is never 0). */
static uint64_t
next_gen(struct rt_timer *t)
{
	/* relaxed: the record came from rt_store_get(), whose acquire ordered its last state */
	uint32_t gen = (uint32_t)(atomic_load_explicit(&t->state, memory_order_relaxed) >> 8) + 1;

	return gen ? gen : 1;
}

/* A timer of @p w's store, filled and pending; NULL when the store is empty. */
static struct rt_timer *
timer_take(struct rt_worker *w, uint64_t at_ns, uint64_t period_ns, pel_task_fn fn, void *arg,
	   uint64_t *id)
{
	int64_t i = rt_store_get(&w->tstore);
	struct rt_timer *t;
	uint64_t gen;

	pel__rt_mark_used(w->layer);
	if (i < 0) {
		pel__fail(-EAGAIN, "worker %u has all %u timers pending (raise "
			  "pel_rt_config.timers)", w->id, w->tstore.cap);
		return NULL;
	}
	t = &w->tm[i];
	gen = next_gen(t);
	t->fn = fn;
	t->arg = arg;
	t->at_ns = at_ns;
	t->period_ns = period_ns;
	t->tick = tick_of(at_ns);
	/* release: the fields above before the state a canceller reads */
	atomic_store_explicit(&t->state, state_of(gen, RT_TM_PENDING), memory_order_release);
	*id = gen << 32 | (uint64_t)w->id << ID_IDX_BITS | (uint64_t)i;
	return t;
}

int
pel__rt_timer_arm_local(struct rt_worker *w, uint64_t at_ns, uint64_t period_ns, pel_task_fn fn,
			void *arg, uint64_t *id)
{
	uint64_t tid;
	struct rt_timer *t = timer_take(w, at_ns, period_ns, fn, arg, &tid);

	if (!t)
		return -EAGAIN;
	link_in(w, t);
	if (id)
		*id = tid;
	return 0;
}

static int
arm(unsigned worker, uint64_t at_ns, uint64_t period_ns, pel_task_fn fn, void *arg, uint64_t *id)
{
	struct rt_layer *L;
	struct rt_worker *w;
	struct rt_timer *t;
	unsigned self;
	uint64_t tid;
	int err;

	if (!pel__tls_worker.w)
		return pel__fail(-EPERM, "timers are armed from inside a task");
	L = pel__rt_self_layer(&self);
	if (!L)
		return pel__fail(-ENODEV, "the real-time layer did not start on this runtime (logged at "
				 "pel_create()); pel_rt_init() sets it up");
	err = pel__rt_worker_check(L, worker);
	if (err)
		return err;
	if (!fn)
		return pel__fail(-EINVAL, "timer fn is NULL");
	if (pel__rt_stopping(L->rt))
		return pel__fail(-ESHUTDOWN, "the runtime is stopping: no new timers");
	w = L->w[worker];
	if (worker == self)
		return pel__rt_timer_arm_local(w, at_ns, period_ns, fn, arg, id);
	t = timer_take(w, at_ns, period_ns, fn, arg, &tid);
	if (!t)
		return -EAGAIN;
	err = pel_spawn(worker, arm_task, t);
	if (err) {
		/* relaxed: the id was never given out; rt_store_put() releases it */
		atomic_store_explicit(&t->state, state_of(tid >> 32, RT_TM_CANCELLED),
				      memory_order_relaxed);
		timer_free(w, t);
		return err;
	}
	if (id)
		*id = tid;
	return 0;
}

int
pel_timer_at(unsigned worker, uint64_t at_ns, pel_task_fn fn, void *arg, uint64_t *id)
{
	return arm(worker, at_ns, 0, fn, arg, id);
}

int
pel_timer_after(unsigned worker, uint64_t delay_ns, pel_task_fn fn, void *arg, uint64_t *id)
{
	uint64_t now = clock_ns();

	return arm(worker, delay_ns > UINT64_MAX - now ? UINT64_MAX : now + delay_ns, 0, fn, arg,
		   id);
}

int
pel_timer_every(unsigned worker, uint64_t period_ns, pel_task_fn fn, void *arg, uint64_t *id)
{
	if (!period_ns)
		return pel__fail(-EINVAL, "periodic timer with a period of 0 ns");
	return arm(worker, clock_ns() + period_ns, period_ns, fn, arg, id);
}

/* On the owner: unlink a timer another worker cancelled, if it is still the same one. */
static void
unlink_task(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	struct rt_layer *L;
	struct rt_worker *w;
	struct rt_timer *t;
	unsigned self;
	uint64_t st;

	L = pel__rt_self_layer(&self);
	w = L->w[self];
	if ((id & ((1u << ID_IDX_BITS) - 1)) >= w->tstore.cap)
		return;		/* a slot of stores pel_rt_init() replaced */
	t = &w->tm[id & ((1u << ID_IDX_BITS) - 1)];
	/* acquire: pairs with the canceller's CAS */
	st = atomic_load_explicit(&t->state, memory_order_acquire);
	if (st == state_of(id >> 32, RT_TM_CANCELLED) && t->linked) {
		unlink_from(w, t);
		timer_free(w, t);
	}
}

int
pel_timer_cancel(uint64_t id)
{
	unsigned self, worker = (unsigned)(id >> ID_IDX_BITS) & ((1u << ID_W_BITS) - 1);
	uint32_t idx = (uint32_t)id & ((1u << ID_IDX_BITS) - 1);
	uint64_t gen = id >> 32, st;
	struct rt_layer *L;
	struct rt_worker *w;
	struct rt_timer *t;

	if (!pel__tls_worker.w)
		return pel__fail(-EPERM, "timers are cancelled from inside a task");
	L = pel__rt_self_layer(&self);
	if (!L || !gen || worker >= L->nworkers || idx >= L->w[worker]->tstore.cap)
		return pel__fail(-ENOENT, "timer id %#llx is not one pel_timer_*() gave",
				 (unsigned long long)id);
	w = L->w[worker];
	t = &w->tm[idx];
	/* acquire: pairs with the release in timer_take(); a fresh id's state is visible */
	st = atomic_load_explicit(&t->state, memory_order_acquire);
	for (;;) {
		if (st >> 8 != gen)
			return pel__fail(-ENOENT, "timer id %#llx is unknown (fired or cancelled "
					 "long ago, its slot reused)", (unsigned long long)id);
		if ((st & 0xff) != RT_TM_PENDING && (st & 0xff) != RT_TM_RUNNING)
			return pel__fail(-EALREADY, "timer id %#llx has fired or was cancelled "
					 "already", (unsigned long long)id);
		/* acq_rel: against the owner's CAS to FIRED or RUNNING (and back) in expire():
		 * one of them wins */
		if (atomic_compare_exchange_weak_explicit(&t->state, &st,
							  state_of(gen, RT_TM_CANCELLED),
							  memory_order_acq_rel,
							  memory_order_acquire))
			break;
	}
	/* relaxed: a counter for pel_rt_stats() */
	atomic_fetch_add_explicit(&w->timers_cancelled, 1, memory_order_relaxed);
	if (worker == self) {
		if (t->linked) {
			unlink_from(w, t);
			timer_free(w, t);
		}
	} else {
		/* the owner unlinks it now; if the mesh is full it goes at its due tick */
		(void)pel_spawn(worker, unlink_task, (void *)(uintptr_t)id);
	}
	return 0;
}
