/* SPDX-License-Identifier: MIT */
/*
 * examples/feed-handler.c - pel-feed, the demo service: a UDP market-data feed (examples/feed.h)
 * into per-instrument order books on pel's workers, a risk rule and, one request in N, a fan-out
 * to scoring models; every request answered, late or refused. See docs/demo.md.
 *
 *   pel-feed --port 9000 --cpus 1 [--idle spin] [--deadline-us 1000] [--fanout-every 64]
 *   taskset -c 0 pel-load --port 9000 --mode feed --rate 50k --seconds 10
 *
 * The path of one request:
 *   1. Each worker owns a UDP socket bound to the port (SO_REUSEPORT: the kernel spreads the
 *      senders' flows) with one multishot recvmsg armed into its provided buffers (io_uring, the
 *      worker's own ring; or the dedicated I/O thread's with --io dedicated).
 *   2. The datagram's callback, on that worker, decodes it (malformed: counted, never answered),
 *      copies it into a request object from the worker's pool and gives the buffer back at once.
 *   3. The request becomes a real-time task on the worker that owns its instrument (a hash of the
 *      id; order within an instrument is kept: one flow, one ring, FIFO), with a deadline of
 *      --deadline-us after its planned send time. EDF runs the most urgent first; one whose
 *      deadline has passed when the worker comes to it is dropped by the late-work policy
 *      (PEL_LATE_DROP): on_late() answers it 'late' and advances the book's sequence.
 *   4. On the owner: the book (pool memory of the owner's NUMA node, allocated on first use)
 *      takes the update, sequence gaps are counted, the risk rule runs; one update in
 *      --fanout-every snapshots the book and scores it with --models models through
 *      pel_parallel_for(), whose reduce adds the scores and whose completion answers.
 *   5. The reply goes out through the owner's ring (sendmsg to the sender's address, from the
 *      request object); its completion frees the object, back to the pool of the worker that
 *      received it (a cross-core free when the owner is another worker).
 * A synthetic SPIN request busy-spins its service time on the owner instead of step 4.
 *
 * Nothing on this path locks, allocates from the heap or makes a syscall of its own: the
 * receive, the handoff, the book and the reply are ring operations and pool objects; the
 * worker's ring makes the syscalls (io_uring_enter) for all of them.
 */
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>	/* io_uring_recvmsg_*(): the layout of a multishot recvmsg buffer */

#include <pel/par.h>
#include <pel/pool.h>
#include <pel/rt.h>
#include <pel/trace.h>

#include "echo.h"
#include "feed_opts.h"

#define BUF_COUNT	4096u	/* provided buffers per worker */
#define BUF_SIZE	256u	/* recvmsg header + address + a datagram; longer ones are truncated */
#define REQS		16384u	/* requests in flight per receiving worker */
#define FANS		1024u	/* fan-outs in flight per owner */
#define PRIO_STOP	0	/* real-time classes: the stop's cancels before every request */
#define PRIO_REQUEST	1
#define DEADLINE_MIN_NS	2000u	/* a deadline this far ahead at least (pel_spawn_rt() refuses a
				 * past one) */

struct fworker {
	unsigned id;
	int fd;
	struct msghdr rmsg;	/* the multishot's layout: room for an IPv4 name, no control */
	uint64_t handle;	/* of the multishot recvmsg, to cancel it at the end */
};

/* One request, from its receipt to its reply's completion. */
struct req {
	struct pel_feed_req r;
	struct sockaddr_in peer;
	struct msghdr msg;	/* the reply */
	struct iovec iov;
	uint8_t out[PEL_FEED_REPLY_SIZE];
	uint16_t owner;		/* worker that owns the instrument */
	uint8_t late;		/* past its deadline on arrival: answer 'late' in its turn */
};

/* One fan-out: the models score the snapshot; the reduce adds; fan_done() answers. */
struct fan {
	struct feed_snapshot snap;
	struct req *q;
};

static struct feed_opts opts;
static struct pel_io *io;
static struct pel_pool *reqs, *bookpool, *fans;
static struct fworker *ws;
static struct feed_counters *cnt;	/* cnt[w]: written by worker w only */
static struct feed_book **books;	/* books[i]: instrument i's, written by its owner only */
static _Atomic uint64_t *last_deadline;	/* [i]: of instrument i's last update, on arrival */
static unsigned nworkers;
static atomic_bool stopping;

static void on_recv(const struct pel_io_result *r, void *arg);

static unsigned
owner_of(uint32_t instrument)
{
	return (unsigned)(feed_mix(instrument) % nworkers);
}

static int
arm(struct fworker *w, struct pel_producer *p)
{
	struct pel_io_req req = pel_io_req_recvmsg(w->fd, &w->rmsg, 0, on_recv, w);

	req.flags = PEL_IO_REQ_MULTISHOT | PEL_IO_REQ_BUFSEL;
	return pel_io_submit(io, p, w->id, &req, &w->handle);
}

static void
on_cancelled(const struct pel_io_result *r, void *arg)
{
	(void)r;
	(void)arg;
}

/* On worker w: cancel its multishot receive (its last callback does not re-arm). */
static void
stop_receiving(void *arg)
{
	struct fworker *w = arg;
	struct pel_io_req req = pel_io_req_cancel(w->handle, on_cancelled, NULL);

	if (pel_io_submit(io, NULL, w->id, &req, NULL))
		fprintf(stderr, "pel-feed: cancel of worker %u's receive: %s\n", w->id,
			pel_last_error());
}

static void
on_sent(const struct pel_io_result *r, void *arg)
{
	struct req *q = arg;

	if (r->res < 0)
		feed_count(&cnt[r->worker].send_errors, 1);
	pel_free(reqs, q);
}

static void resend(void *arg);

/* Submit @p q's reply from worker @p w (its owner, or its receiver for a refusal). A full ring
 * or max_ops in flight: again from a task of its own, after what is queued (the reply waits, it
 * is not lost). Another error: counted, the request freed. */
static void
send_reply(struct req *q, unsigned w)
{
	struct pel_io_req io_req = pel_io_req_sendmsg(ws[w].fd, &q->msg, 0, on_sent, q);
	int err = pel_io_submit(io, NULL, w, &io_req, NULL);

	if (!err)
		return;
	if (err == -EAGAIN && pel_spawn(w, resend, q) == 0) {
		feed_count(&cnt[w].send_retries, 1);
		return;
	}
	feed_count(&cnt[w].send_errors, 1);
	pel_free(reqs, q);
}

static void
resend(void *arg)
{
	struct req *q = arg;

	send_reply(q, (unsigned)pel_worker_self());
}

/* Answer @p q with @p status from the calling worker @p w; the completion frees it. The request
 * is counted by its status here: a reply the kernel then refuses is a send error as well. */
static void
reply(struct req *q, unsigned w, uint8_t status)
{
	pel_feed_reply_encode(q->out, status, q->r.req_id, q->r.send_ns);
	q->iov.iov_base = q->out;
	q->iov.iov_len = sizeof(q->out);
	memset(&q->msg, 0, sizeof(q->msg));
	q->msg.msg_name = &q->peer;
	q->msg.msg_namelen = sizeof(q->peer);
	q->msg.msg_iov = &q->iov;
	q->msg.msg_iovlen = 1;
	switch (status) {
	case PEL_FEED_ANSWERED:
		feed_count(&cnt[w].answered, 1);
		break;
	case PEL_FEED_LATE:
		feed_count(&cnt[w].late, 1);
		break;
	default:
		feed_count(&cnt[w].rejected, 1);
		break;
	}
	send_reply(q, w);
}

/* The instrument's book, on its owner; allocated there (its node) on first use. */
static struct feed_book *
book_of(uint32_t instrument)
{
	struct feed_book *b = books[instrument];

	if (!b) {
		b = pel_alloc(bookpool);	/* sized for every instrument the worker owns */
		if (!b)
			return NULL;
		feed_book_init(b);
		books[instrument] = b;
	}
	return b;
}

static uint64_t
fan_body(uint64_t lo, uint64_t hi, void *arg)
{
	const struct fan *f = arg;
	uint64_t sum = 0;

	PEL_TIMER_START("score");
	for (uint64_t m = lo; m < hi; m++)
		sum += feed_score(&f->snap, (unsigned)m, opts.rounds);
	PEL_TIMER_STOP("score");
	return sum;
}

static uint64_t
fan_reduce(uint64_t left, uint64_t right, void *arg)
{
	(void)arg;
	return left + right;
}

/* On the owner (parallel-for's completion runs on the calling worker). */
static void
fan_done(uint64_t aggregate, void *arg)
{
	struct fan *f = arg;
	struct req *q = f->q;
	unsigned w = q->owner;

	feed_book_scored(books[q->r.instrument], aggregate);
	feed_count(&cnt[w].fanouts, 1);
	pel_free(fans, f);
	reply(q, w, PEL_FEED_ANSWERED);
}

/* Score the book after update @p q; @return 1 when fan_done() will answer, 0 answer now. */
static int
fan_out(struct req *q, struct feed_book *b)
{
	struct fan *f = pel_alloc(fans);

	if (f) {
		feed_snapshot_take(b, &q->r, &f->snap);
		f->q = q;
		if (pel_parallel_for(0, opts.models, 1, fan_body, fan_reduce, 0, fan_done, f) == 0)
			return 1;
		pel_free(fans, f);
	}
	/* no room to fan out: score here, the same result */
	{
		struct feed_snapshot s;

		feed_snapshot_take(b, &q->r, &s);
		feed_book_scored(b, feed_score_all(&s, opts.models, opts.rounds));
		feed_count(&cnt[q->owner].fanouts, 1);
	}
	return 0;
}

/* Answer @p q 'late' on its owner; its sequence was received all the same. */
static void
drop_late(struct req *q)
{
	if (q->r.kind == PEL_FEED_BOOK) {
		struct feed_book *b = book_of(q->r.instrument);

		if (b)
			feed_book_skip(b, q->r.seq);
	}
	reply(q, q->owner, PEL_FEED_LATE);
}

/* A request's real-time task, on the instrument's owner. */
static void
process(void *arg)
{
	struct req *q = arg;
	struct feed_book *b;

	if (q->late) {
		drop_late(q);
		return;
	}
	if (q->r.kind == PEL_FEED_SPIN) {
		PEL_TIMER_START("spin");
		feed_spin(q->r.service_ns);
		PEL_TIMER_STOP("spin");
		reply(q, q->owner, PEL_FEED_ANSWERED);
		return;
	}
	b = book_of(q->r.instrument);
	if (!b) {
		feed_count(&cnt[q->owner].dropped, 1);
		pel_free(reqs, q);
		return;
	}
	PEL_TIMER_START("book");
	if (feed_book_apply(b, &q->r) == FEED_APPLIED) {
		feed_rule(b, &q->r);
		PEL_TIMER_STOP("book");
		if (feed_fans_out(q->r.req_id, opts.fanout_every) && fan_out(q, b))
			return;
	} else {
		PEL_TIMER_STOP("book");
	}
	reply(q, q->owner, PEL_FEED_ANSWERED);
}

/* The late-work policy dropped a request queued past its deadline. */
static void
on_late(const struct pel_rt_task *t, uint64_t lateness_ns)
{
	(void)lateness_ns;
	drop_late(t->arg);
}

/*
 * The deadline of @p q on pel_now_ns()'s clock: --deadline-us after its planned send time
 * (CLOCK_MONOTONIC of the sender: this host), at least DEADLINE_MIN_NS from now, and after the
 * deadline of the instrument's previous update. A request already past it on arrival is marked
 * late and queued all the same, to be answered 'late' by its owner in its turn. Deadlines that
 * grow with an instrument's arrival order keep EDF from reordering its updates, late or not,
 * whatever the two clock reads below were delayed by.
 */
static uint64_t
deadline_of(struct req *q)
{
	_Atomic uint64_t *last = &last_deadline[q->r.instrument];
	uint64_t due, mono, now, d, prev;

	q->late = 0;
	if (!opts.deadline_ns)
		return PEL_NO_DEADLINE;
	mono = feed_mono_ns();
	now = pel_now_ns();
	/* a send time from the future counts as now: it must not postpone the instrument's next
	 * deadlines (they follow this one), nor overflow */
	due = feed_deadline(&opts, q->r.send_ns, mono);
	if (due <= mono)
		q->late = 1;
	d = now + (due > mono + DEADLINE_MIN_NS ? due - mono : DEADLINE_MIN_NS);
	/* relaxed: one flow, one receiving worker per instrument (another flow's order is not
	 * defined anyway) */
	prev = atomic_load_explicit(last, memory_order_relaxed);
	if (d <= prev)
		d = prev + 1;
	atomic_store_explicit(last, d, memory_order_relaxed);
	return d;
}

/* One datagram of @p w's socket in @p buf (@p len bytes as the kernel laid it out), on worker
 * @p me (w's own, unless the dedicated I/O thread steered it elsewhere). */
static void
on_datagram(struct fworker *w, unsigned me, void *buf, int len)
{
	struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, len, &w->rmsg);
	struct pel_feed_req r;
	struct pel_rt_task t;
	struct req *q;
	int err;

	feed_count(&cnt[me].received, 1);
	if (!o || (o->flags & MSG_TRUNC) || o->namelen != sizeof(struct sockaddr_in) ||
	    pel_feed_req_decode(io_uring_recvmsg_payload(o, &w->rmsg),
				io_uring_recvmsg_payload_length(o, len, &w->rmsg), &r)) {
		feed_count(&cnt[me].malformed, 1);
		pel_io_buf_release(io, buf);
		return;
	}
	q = pel_alloc(reqs);
	if (!q) {
		feed_count(&cnt[me].dropped, 1);
		pel_io_buf_release(io, buf);
		return;
	}
	q->r = r;
	memcpy(&q->peer, io_uring_recvmsg_name(o), sizeof(q->peer));
	pel_io_buf_release(io, buf);
	if (r.instrument >= opts.instruments) {
		q->owner = (uint16_t)me;
		reply(q, me, PEL_FEED_MALFORMED);
		return;
	}
	q->owner = (uint16_t)owner_of(r.instrument);
	t = (struct pel_rt_task){ .fn = process, .arg = q, .deadline_ns = deadline_of(q),
				  .prio = PRIO_REQUEST };
	err = pel_spawn_rt(q->owner, &t);
	/* -ETIME: the deadline passed since it was computed (this thread was preempted): it is
	 * late now, and queued as such */
	for (int again = 0; err == -ETIME && again < 3; again++) {
		t.deadline_ns = deadline_of(q);
		q->late = 1;
		err = pel_spawn_rt(q->owner, &t);
	}
	if (err) {
		/* the owner's store or ring is full: dropped unanswered, counted */
		feed_count(&cnt[me].dropped, 1);
		pel_free(reqs, q);
	}
}

static void
on_recv(const struct pel_io_result *r, void *arg)
{
	struct fworker *w = arg;

	if (r->flags & PEL_IO_F_BUFFER)
		on_datagram(w, r->worker, r->buf, r->res);
	else if (r->res < 0 && r->res != -ECANCELED && r->res != -ENOBUFS)
		feed_count(&cnt[r->worker].send_errors, 1);
	if (r->flags & PEL_IO_F_MORE)
		return;
	/* the stream ended (an error the layer does not re-arm): in again, unless we stop */
	if (!atomic_load_explicit(&stopping, memory_order_relaxed) && r->res != -ECANCELED &&
	    arm(w, NULL))
		feed_count(&cnt[r->worker].send_errors, 1);
}

/* Per-worker counts of the instruments each owns: the book pool's slab size. */
static unsigned
books_per_worker(void)
{
	unsigned *n = calloc(nworkers, sizeof(*n)), most = 1;

	if (!n)
		return opts.instruments;
	for (unsigned i = 0; i < opts.instruments; i++)
		n[owner_of(i)]++;
	for (unsigned w = 0; w < nworkers; w++)
		if (n[w] > most)
			most = n[w];
	free(n);
	return most;
}

static int
pool(size_t size, unsigned count, struct pel_pool **out, struct pel_runtime *rt)
{
	int err = pel_pool_create(rt, size, count, PEL_POOL_F_CACHE_ALIGN, out);

	if (err)
		fprintf(stderr, "pel-feed: pel_pool_create: %s\n", pel_last_error());
	return err;
}

int
main(int argc, char **argv)
{
	struct pel_producer *p = NULL;
	struct pel_io_config ic;
	struct pel_config cfg;
	struct echo_rt e = { .sigfd = -1 };
	char iostats[256] = "";
	int err, ret = 1;
	bool drained = false;

	opts.prog = "pel-feed";
	opts.server = FEED_SERVER_PEL;
	err = feed_parse(argc, argv, &opts);
	if (err)
		return err;
	if (feed_signals(&opts))
		return 1;
	books = calloc(opts.instruments, sizeof(*books));
	last_deadline = calloc(opts.instruments, sizeof(*last_deadline));
	if (!books || !last_deadline) {
		fprintf(stderr, "pel-feed: out of memory for %u instruments\n", opts.instruments);
		return 1;
	}
	pel_config_default(&cfg);
	cfg.cpus = opts.cpus;
	/* a worker's rings hold as many requests as its pool and real-time store: a burst to one
	 * owner waits rather than being dropped at 1024 */
	cfg.ring_slots = REQS;
	cfg.max_producers = 1;	/* the main thread's, for the stop */
	cfg.idle = (enum pel_idle)opts.idle;
	cfg.rt_priority = opts.rt_priority;
	if (opts.mlock)
		cfg.flags |= PEL_F_MLOCK;
	err = pel_create(&cfg, &e.rt);
	if (err) {
		fprintf(stderr, "pel-feed: pel_create: %s: %s\n", pel_strerror(err), pel_last_error());
		return err == -EINVAL ? 2 : 1;	/* a bad --cpus: bad usage */
	}
	nworkers = pel_worker_count(e.rt);
	if (nworkers > UINT16_MAX) {
		fprintf(stderr, "pel-feed: %u workers: at most %u\n", nworkers, UINT16_MAX);
		goto out;
	}
	pel_io_config_default(&ic);
	ic.mode = (enum pel_io_mode)opts.io_mode;
	ic.io_cpu = opts.io_cpu;
	ic.buf_count = BUF_COUNT;
	ic.buf_size = BUF_SIZE;
	/* an operation for every reply that may be out at once (any worker's requests may be
	 * answered from one owner), and the receives */
	ic.max_ops = opts.max_ops ? opts.max_ops : nworkers * REQS + 64;
	err = pel_io_create(e.rt, &ic, &io);
	if (err) {
		fprintf(stderr, "pel-feed: pel_io_create: %s: %s\n", pel_strerror(err),
			pel_last_error());
		ret = err == -EINVAL ? 2 : 1;	/* a bad --io-cpu */
		goto out;
	}
	e.io = io;
	/* a batch of ready requests per pass: under a backlog their replies go out in one enter,
	 * and the queue drains faster (docs/demo.md) */
	err = pel_rt_init(e.rt, &(struct pel_rt_config){ .tasks = REQS, .batch = opts.rt_batch });
	if (!err)
		err = pel_rt_set_late_policy(e.rt, PEL_LATE_DROP, on_late);
	if (err) {
		fprintf(stderr, "pel-feed: real-time layer: %s: %s\n", pel_strerror(err),
			pel_last_error());
		goto out;
	}
	if (pool(sizeof(struct req), REQS, &reqs, e.rt) ||
	    pool(sizeof(struct feed_book), books_per_worker(), &bookpool, e.rt) ||
	    pool(sizeof(struct fan), FANS, &fans, e.rt))
		goto out;
	cnt = aligned_alloc(64, nworkers * sizeof(*cnt));
	ws = calloc(nworkers, sizeof(*ws));
	if (!cnt || !ws) {
		fprintf(stderr, "pel-feed: out of memory\n");
		goto out;
	}
	memset(cnt, 0, nworkers * sizeof(*cnt));
	for (unsigned w = 0; w < nworkers; w++)
		ws[w].fd = -1;
	err = pel_producer_open(e.rt, &p);
	if (err) {
		fprintf(stderr, "pel-feed: pel_producer_open: %s\n", pel_last_error());
		goto out;
	}
	for (unsigned w = 0; w < nworkers; w++) {
		ws[w].id = w;
		ws[w].fd = feed_udp_socket(&opts, false);
		if (ws[w].fd < 0)
			goto out;
		ws[w].rmsg.msg_namelen = sizeof(struct sockaddr_in);
		err = arm(&ws[w], p);
		if (err) {
			fprintf(stderr, "pel-feed: pel_io_submit: %s\n", pel_last_error());
			goto out;
		}
	}
	printf("pel-feed: serving UDP port %u on %u worker%s\n", opts.port, nworkers,
	       nworkers > 1 ? "s" : "");
	fflush(stdout);
	feed_wait(&opts);
	/* Quiesce: cancel the receives (their last callbacks do not re-arm), then wait until every
	 * request queued has run and every reply is sent, so the counters and books are final. */
	atomic_store_explicit(&stopping, true, memory_order_relaxed);
	for (unsigned w = 0; w < nworkers; w++) {
		/* a real-time task of the class above the requests: a plain task would wait behind
		 * every request queued, and under overload the queue never empties */
		struct pel_rt_task t = { .fn = stop_receiving, .arg = &ws[w],
					 .deadline_ns = PEL_NO_DEADLINE, .prio = PRIO_STOP };

		while (pel_submit_rt(p, w, &t) == -EAGAIN)
			sched_yield();
	}
	err = echo_quiesce(&e, 5 * PEL_NS_PER_S);
	if (err)
		fprintf(stderr, "pel-feed: requests still in flight 5 s after the stop\n");
	drained = !err;
	echo_io_stats(&e, iostats, sizeof(iostats));
	ret = feed_report(&opts, cnt, nworkers, drained ? books : NULL);
	printf("pel-feed: io %s\n", iostats);
	if (!drained)
		ret = 1;
out:
	atomic_store_explicit(&stopping, true, memory_order_relaxed);
	if (p)
		pel_producer_close(p);
	if (drained) {		/* every object is back: the pools can go before the runtime */
		for (unsigned i = 0; i < opts.instruments; i++)
			if (books[i])
				pel_free(bookpool, books[i]);
		pel_pool_destroy(reqs);
		pel_pool_destroy(fans);
		pel_pool_destroy(bookpool);
		reqs = fans = bookpool = NULL;
	}
	pel_destroy(e.rt);
	pel_pool_destroy(reqs);	/* not drained: pel_destroy() reclaimed them; the handles */
	pel_pool_destroy(fans);
	pel_pool_destroy(bookpool);
	for (unsigned w = 0; ws && w < nworkers; w++)
		if (ws[w].fd >= 0)
			close(ws[w].fd);
	free(ws);
	free(cnt);
	free(books);
	free(last_deadline);
	return ret;
}
