/* SPDX-License-Identifier: MIT */
/*
 * bench/io.c - "pel-bench io": what pel's io_uring layer (per-worker mode) costs over a plain
 * liburing or epoll loop doing the same work on the same CPU, in the same run.
 *
 * Part 1, nop round trip: one operation in flight, its completion starts the next.
 *   pel            a task on a PEL_IDLE_SPIN worker on B submits a nop with
 *                  pel_io_submit(io, NULL, 0, ...); the callback submits the next, N times
 *   pel plain      the same with PEL_IO_CF_PLAIN (no DEFER_TASKRUN, no COOP_TASKRUN)
 *   liburing       a thread on B: get_sqe, prep_nop, submit_and_wait(1), peek_cqe, cqe_seen;
 *                  its ring has the flags pel's ring got (pel_io_stats().setup_flags)
 *   liburing dflt  the same loop on a ring with no setup flags
 *   pel xcore      a producer on A submits with pel_io_submit(io, producer, 0, ...) and waits
 *                  for the callback on B to bump an atomic, N/4 times
 *   liburing xcore A bumps a flag; a liburing loop on B sees it, does one nop round trip as
 *                  above and bumps an ack that A waits for, N/4 times
 *   pel dedicated  PEL_IO_DEDICATED: the I/O thread spins on A and owns the ring; a task on
 *                  the B worker submits a nop, its callback (on B) the next, N/4 times: each
 *                  round trip crosses B->A->B, as "liburing xcore" does A->B->A
 * ns per round trip = time of the run / N; the row is the median (min, max) of --reps runs.
 *
 * Part 2, UDP echo over loopback: a client on A sends a 64-byte datagram carrying its sequence
 * number on a connected, non-blocking socket and busy-polls recv() for the echo; RTT per sample
 * from CLOCK_MONOTONIC around the two. The server on B is
 *   epoll          a thread: epoll_wait(timeout 0) in a loop, then recv/send, non-blocking
 *   pel defer      a PEL_IDLE_SPIN worker whose recv callback submits the send and the next recv
 *                  (default config: SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG)
 *   pel plain      the same with PEL_IO_CF_PLAIN (task work runs at interrupts)
 *   pel coop       the same with PEL_IO_CF_COOP (COOP_TASKRUN | TASKRUN_FLAG: no IPI, the task
 *                  work waits for the worker's next enter, which the flag asks for)
 * p50/p99 are nearest-rank over the samples of every rep, the first 1% of each run dropped.
 *
 * Every variant runs once per rep, in turn (interleaved), with a rest after each run
 * (pel_bench_rest()). Checks, never on a figure: every callback ran once with the right result,
 * pel_io_stats() counts what was submitted, every echo carried its own sequence number.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#ifndef PEL_BENCH_HAVE_LIBURING

int
pel_bench_io(const struct pel_bench_opts *o, struct pel_bench_report *rep)
{
	(void)o;
	(void)rep;
	fprintf(stderr, "pel-bench: skip: built without liburing (liburing-dev, pkg-config "
		"liburing): no io_uring layer to measure\n");
	exit(77);
}

#else

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include <pel/io.h>

#define DEFAULT_NOPS		1000000ull
#define DEFAULT_ECHOS		20000ull
#define DEFAULT_REPS		5
#define ECHO_LEN		64
/* an echo this late is lost: long, since a SCHED_FIFO spinner of someone else's can hold a CPU
 * for up to 0.95 s a second (RT throttling), and that is not a lost datagram */
#define ECHO_TIMEOUT_NS		(10ull * 1000 * 1000 * 1000)
#define DONE_TIMEOUT_NS		(60ull * 1000 * 1000 * 1000)

/* ---- part 1: nop round trips ---- */

enum nkind {
	N_PEL,
	N_PEL_PLAIN,
	N_URING,
	N_URING_DEFAULT,
	N_PEL_XCORE,
	N_URING_XCORE,
	N_PEL_DED,
	N_COUNT,
};

static const struct {
	const char *role;
	const char *label;
	const char *name;	/* in metric names */
} ninfo[N_COUNT] = {
	[N_PEL] = { "pel", "pel_io nop", "pel" },
	[N_PEL_PLAIN] = { "pel", "pel_io nop plain", "pel_plain" },
	[N_URING] = { "baseline", "liburing pel flags", "liburing" },
	[N_URING_DEFAULT] = { "baseline", "liburing flags=0", "liburing_default" },
	[N_PEL_XCORE] = { "pel", "pel_io nop A->B", "pel_xcore" },
	[N_URING_XCORE] = { "baseline", "liburing A->B", "liburing_xcore" },
	[N_PEL_DED] = { "pel", "pel_io dedicated B->A", "pel_dedicated" },
};

struct nop_run {
	struct pel_io *io;
	uint64_t n;
	uint64_t cbs;			/* callbacks run (worker writes) */
	uint64_t bad;			/* callbacks with res != 0 */
	int submit_err;			/* a refused pel_io_submit() in a callback */
	uint64_t t0, t1;
	_Atomic int finished;
	/* the uring threads */
	unsigned flags;			/* ring setup flags */
	bool req_xcore;			/* B waits for A's request before each nop */
	int cpu;
	int err;			/* positive errno, or a negative from liburing */
	const char *what;
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t req;	/* cross-core: A writes */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t ack;	/* cross-core: B writes */
	alignas(PEL_CACHE_GUARD) _Atomic int ready;
};

static void nop_cb(const struct pel_io_result *r, void *arg);

static void
nop_next(struct nop_run *nr)
{
	struct pel_io_req req = pel_io_req_nop(nop_cb, nr);
	int err = pel_io_submit(nr->io, NULL, 0, &req, NULL);

	if (err) {
		nr->submit_err = err;
		nr->t1 = pel_bench_mono_ns();
		/* release: pairs with the acquire in wait_finished(); the counts are final */
		atomic_store_explicit(&nr->finished, 1, memory_order_release);
	}
}

static void
nop_cb(const struct pel_io_result *r, void *arg)
{
	struct nop_run *nr = arg;

	nr->bad += r->res != 0;
	if (++nr->cbs < nr->n) {
		nop_next(nr);
		return;
	}
	nr->t1 = pel_bench_mono_ns();
	/* release: pairs with the acquire in wait_finished(); t1 and the counts are final */
	atomic_store_explicit(&nr->finished, 1, memory_order_release);
}

/* The task that starts the chain on the worker. */
static void
nop_start(void *arg)
{
	struct nop_run *nr = arg;

	nr->t0 = pel_bench_mono_ns();
	nop_next(nr);
}

/* Cross-core: the callback runs on B and tells A. */
static void
xnop_cb(const struct pel_io_result *r, void *arg)
{
	struct nop_run *nr = arg;

	nr->bad += r->res != 0;
	nr->cbs++;
	/* release: pairs with the acquire in run_pel_xcore(); cbs and bad are this one's */
	atomic_store_explicit(&nr->ack, nr->cbs, memory_order_release);
}

/* Wait, asleep between looks, for a run on the worker to finish. 0, or 1 on a timeout. */
static int
wait_finished(_Atomic int *flag)
{
	struct timespec ts = { 0, 100 * 1000 };
	uint64_t end = pel_bench_mono_ns() + DONE_TIMEOUT_NS;

	/* acquire: pairs with the release in nop_cb() / nop_next() */
	while (!atomic_load_explicit(flag, memory_order_acquire)) {
		if (pel_bench_mono_ns() > end)
			return 1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* A runtime of one PEL_IDLE_SPIN worker on B with an I/O layer; the caller is pinned to A. */
static int
start_pel(int cpu_b, unsigned io_flags, int io_cpu, struct pel_runtime **rt,
	  struct pel_producer **prod, struct pel_io **io)
{
	struct pel_io_config ic;
	char cpus[16];
	int err;

	snprintf(cpus, sizeof(cpus), "%d", cpu_b);
	if (pel_bench_runtime(cpus, PEL_IDLE_SPIN, 0, rt))
		return 1;
	pel_io_config_default(&ic);
	ic.flags = io_flags;
	if (io_cpu >= 0) {
		ic.mode = PEL_IO_DEDICATED;	/* the I/O thread on io_cpu */
		ic.io_cpu = io_cpu;
	}
	err = pel_io_create(*rt, &ic, io);
	if (!err)
		err = pel_producer_open(*rt, prod);
	if (err) {
		fprintf(stderr, "pel-bench: pel_io_create/pel_producer_open: %s: %s\n",
			pel_strerror(err), pel_last_error());
		pel_destroy(*rt);
		return 1;
	}
	return 0;
}

/* pel_io_stats() must show exactly @p ops submitted and completed. 0, or 1 after saying why. */
static int
check_io_stats(struct pel_io *io, const char *what, uint64_t ops, struct pel_io_stats *st)
{
	int err = pel_io_stats(io, 0, st);

	if (err) {
		fprintf(stderr, "pel-bench: io: %s: pel_io_stats: %s\n", what, pel_strerror(err));
		return 1;
	}
	if (st->submitted != ops || st->completed != ops || st->inflight != 0) {
		fprintf(stderr, "pel-bench: io: %s: pel_io_stats says submitted %llu, completed "
			"%llu, in flight %llu; expected %llu, %llu, 0\n", what,
			(unsigned long long)st->submitted, (unsigned long long)st->completed,
			(unsigned long long)st->inflight, (unsigned long long)ops,
			(unsigned long long)ops);
		return 1;
	}
	return 0;
}

struct nop_out {
	double ns;			/* per round trip */
	uint32_t setup_flags;		/* pel's ring */
	double enters;			/* pel: io_uring_enter() per round trip */
};

static int
run_pel_nop(const struct pel_bench_opts *o, uint64_t n, bool plain, bool ded, struct nop_out *out)
{
	static struct nop_run nr;
	struct pel_runtime *rt;
	struct pel_producer *prod;
	struct pel_io_stats st;
	const char *what = ded ? "pel nop dedicated" : plain ? "pel nop plain" : "pel nop";
	int err, ret = 1;

	if (start_pel(o->cpu_b, plain ? PEL_IO_CF_PLAIN : 0, ded ? o->cpu_a : -1, &rt, &prod,
		      &nr.io))
		return 1;
	nr.n = n;
	nr.cbs = nr.bad = 0;
	nr.submit_err = 0;
	atomic_store(&nr.finished, 0);
	err = pel_submit(prod, 0, nop_start, &nr);
	if (err) {
		fprintf(stderr, "pel-bench: io: pel_submit: %s\n", pel_strerror(err));
		goto out;
	}
	if (wait_finished(&nr.finished)) {
		fprintf(stderr, "pel-bench: io: %s: %llu of %llu callbacks after %llu s\n", what,
			(unsigned long long)nr.cbs, (unsigned long long)n,
			DONE_TIMEOUT_NS / 1000000000ull);
		goto out;
	}
	if (nr.submit_err || nr.bad || nr.cbs != n) {
		fprintf(stderr, "pel-bench: io: %s: %llu callbacks of %llu, %llu with res != 0, "
			"submit error %s\n", what, (unsigned long long)nr.cbs,
			(unsigned long long)n, (unsigned long long)nr.bad,
			nr.submit_err ? pel_strerror(nr.submit_err) : "none");
		goto out;
	}
	if (check_io_stats(nr.io, what, n, &st))
		goto out;
	out->ns = (double)(nr.t1 - nr.t0) / (double)n;
	out->setup_flags = st.setup_flags;
	out->enters = (double)st.enters / (double)n;
	ret = 0;
out:
	pel_producer_close(prod);
	pel_destroy(rt);
	return ret;
}

static int
run_pel_xcore(const struct pel_bench_opts *o, uint64_t n, struct nop_out *out)
{
	static struct nop_run nr;
	struct pel_runtime *rt;
	struct pel_producer *prod;
	struct pel_io_stats st;
	struct pel_io_req req = pel_io_req_nop(xnop_cb, &nr);
	uint64_t i, deadline;
	int err, ret = 1;

	if (start_pel(o->cpu_b, 0, -1, &rt, &prod, &nr.io))
		return 1;
	nr.cbs = nr.bad = 0;
	atomic_store(&nr.ack, 0);
	nr.t0 = pel_bench_mono_ns();
	deadline = nr.t0 + DONE_TIMEOUT_NS;
	for (i = 0; i < n; i++) {
		while ((err = pel_io_submit(nr.io, prod, 0, &req, NULL)) == -EAGAIN)
			pel_bench_relax();
		if (err) {
			fprintf(stderr, "pel-bench: io: pel xcore: pel_io_submit: %s: %s\n",
				pel_strerror(err), pel_last_error());
			goto out;
		}
		/* acquire: pairs with the release in xnop_cb(); the callback has run */
		while (atomic_load_explicit(&nr.ack, memory_order_acquire) != i + 1) {
			pel_bench_relax();
			if (!(i & 1023) && pel_bench_mono_ns() > deadline) {
				fprintf(stderr, "pel-bench: io: pel xcore: callback %llu never ran\n",
					(unsigned long long)i + 1);
				goto out;
			}
		}
	}
	nr.t1 = pel_bench_mono_ns();
	if (nr.bad || nr.cbs != n) {
		fprintf(stderr, "pel-bench: io: pel xcore: %llu callbacks of %llu, %llu with res "
			"!= 0\n", (unsigned long long)nr.cbs, (unsigned long long)n,
			(unsigned long long)nr.bad);
		goto out;
	}
	if (check_io_stats(nr.io, "pel xcore", n, &st))
		goto out;
	out->ns = (double)(nr.t1 - nr.t0) / (double)n;
	out->setup_flags = st.setup_flags;
	out->enters = (double)st.enters / (double)n;
	ret = 0;
out:
	pel_producer_close(prod);
	pel_destroy(rt);
	return ret;
}

static int
uring_init(struct io_uring *ring, unsigned flags)
{
	struct io_uring_params p;
	int err;

	memset(&p, 0, sizeof(p));
	p.flags = flags;
	p.cq_entries = 1024;	/* what pel asks for with CQSIZE (4 x 256 SQ entries) */
	err = io_uring_queue_init_params(256, ring, &p);
	if (err)
		return err;
	/* as pel does: saves the fd lookup on every enter */
	io_uring_register_ring_fd(ring);
	return 0;
}

/* One nop round trip, written the way a liburing user would. 0, or a negative errno. */
static inline int
uring_nop(struct io_uring *ring, uint64_t tag)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int ret;

	if (!sqe)
		return -EBUSY;
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, tag);
	ret = io_uring_submit_and_wait(ring, 1);
	if (ret < 0)
		return ret;
	ret = io_uring_peek_cqe(ring, &cqe);
	if (ret)
		return ret;
	ret = cqe->user_data != tag ? -EPROTO : cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

/* The liburing loop on B: the ring is created on this thread (SINGLE_ISSUER, DEFER_TASKRUN). */
static void *
uring_main(void *arg)
{
	struct nop_run *nr = arg;
	struct io_uring ring;
	uint64_t i;
	int err;

	nr->err = pel_bench_pin(nr->cpu);
	if (nr->err) {
		nr->what = "pin";
		/* release: pairs with the acquire in run_uring(); err is set */
		atomic_store_explicit(&nr->ready, -1, memory_order_release);
		return NULL;
	}
	err = uring_init(&ring, nr->flags);
	if (err) {
		nr->err = err;
		nr->what = "io_uring_queue_init_params";
		/* release: pairs with the acquire in run_uring(); err is set */
		atomic_store_explicit(&nr->ready, -1, memory_order_release);
		return NULL;
	}
	atomic_store_explicit(&nr->ready, 1, memory_order_release);
	nr->t0 = pel_bench_mono_ns();
	for (i = 0; i < nr->n; i++) {
		if (nr->req_xcore) {
			/* acquire: pairs with the release in run_uring(); request i + 1 is in */
			while (atomic_load_explicit(&nr->req, memory_order_acquire) != i + 1)
				pel_bench_relax();
		}
		err = uring_nop(&ring, i + 1);
		if (err) {
			nr->err = err;
			nr->what = "nop round trip";
			break;
		}
		nr->cbs++;
		/* release: pairs with the acquire in run_uring(); round trip i + 1 is done */
		atomic_store_explicit(&nr->ack, i + 1, memory_order_release);
	}
	nr->t1 = pel_bench_mono_ns();
	io_uring_queue_exit(&ring);
	/* release: pairs with the acquire in wait_finished(); the counts are final */
	atomic_store_explicit(&nr->finished, 1, memory_order_release);
	return NULL;
}

static int
run_uring(const struct pel_bench_opts *o, uint64_t n, unsigned flags, bool xcore,
	  struct nop_out *out)
{
	static struct nop_run nr;
	const char *what = xcore ? "liburing xcore" : flags ? "liburing" : "liburing flags=0";
	uint64_t i = 0, t0 = 0, deadline;
	pthread_t t;
	int err, ret = 1;

	memset(&nr, 0, sizeof(nr));
	nr.n = n;
	nr.flags = flags;
	nr.cpu = o->cpu_b;
	nr.req_xcore = xcore;
	err = pel_bench_thread_on(&t, o->cpu_b, uring_main, &nr);
	if (err) {
		pel_bench_perror("pthread_create", err);
		return 1;
	}
	if (xcore) {
		/* acquire: pairs with the release in uring_main(); its ring is up, or err set */
		while (!atomic_load_explicit(&nr.ready, memory_order_acquire))
			pel_bench_relax();
		t0 = pel_bench_mono_ns();
		deadline = t0 + DONE_TIMEOUT_NS;
		for (i = 0; nr.ready > 0 && i < n; i++) {
			/* release: pairs with the acquire in uring_main(); request i + 1 */
			atomic_store_explicit(&nr.req, i + 1, memory_order_release);
			/* acquire: pairs with the release in uring_main(); round trip i + 1 done */
			while (atomic_load_explicit(&nr.ack, memory_order_acquire) != i + 1) {
				pel_bench_relax();
				if (atomic_load_explicit(&nr.finished, memory_order_acquire) ||
				    (!(i & 1023) && pel_bench_mono_ns() > deadline))
					goto joined;
			}
		}
		nr.t1 = pel_bench_mono_ns();
	}
joined:
	if (xcore && i < n && !nr.finished) {
		/* B is stuck waiting for a request that will not come: let it out */
		fprintf(stderr, "pel-bench: io: %s: round trip %llu never finished\n", what,
			(unsigned long long)i + 1);
		atomic_store_explicit(&nr.req, i + 1, memory_order_release);
	}
	if (xcore) {
		uint64_t t1 = nr.t1;

		/* A's clock, not B's: the round trip is A's request to A seeing the ack */
		pthread_join(t, NULL);
		nr.t0 = t0;
		nr.t1 = t1;
	} else {
		pthread_join(t, NULL);
	}
	if (nr.err) {
		fprintf(stderr, "pel-bench: io: %s (flags 0x%x): %s: %s\n", what, flags, nr.what,
			strerror(nr.err < 0 ? -nr.err : nr.err));
		return 1;
	}
	if (nr.cbs != n) {
		fprintf(stderr, "pel-bench: io: %s: %llu round trips of %llu\n", what,
			(unsigned long long)nr.cbs, (unsigned long long)n);
		return 1;
	}
	out->ns = (double)(nr.t1 - nr.t0) / (double)n;
	out->setup_flags = flags;
	out->enters = 1;
	ret = 0;
	return ret;
}

/* ---- part 2: UDP echo ---- */

enum ekind {
	E_EPOLL,
	E_PEL_DEFER,
	E_PEL_PLAIN,
	E_PEL_COOP,
	E_COUNT,
};

static const struct {
	const char *role;
	const char *label;
	const char *name;
} einfo[E_COUNT] = {
	[E_EPOLL] = { "baseline", "epoll busy-poll", "epoll" },
	[E_PEL_DEFER] = { "pel", "pel_io defer", "pel_defer" },
	[E_PEL_PLAIN] = { "pel", "pel_io plain", "pel_plain" },
	[E_PEL_COOP] = { "pel", "pel_io coop", "pel_coop" },
};

struct echo_srv {
	struct pel_io *io;
	int fd;
	char buf[2][ECHO_LEN * 2];
	unsigned cur;			/* the buffer the pending recv fills */
	uint64_t recvs, sends, cancelled, bad;
	int res_bad;			/* the first unexpected result */
	int submit_err;
	/* epoll thread */
	int cpu;
	int err;
	alignas(PEL_CACHE_GUARD) _Atomic int stop;
	alignas(PEL_CACHE_GUARD) _Atomic int ready;
};

static void echo_recv_cb(const struct pel_io_result *r, void *arg);

static void
echo_send_cb(const struct pel_io_result *r, void *arg)
{
	struct echo_srv *s = arg;

	s->sends++;
	if (r->res != ECHO_LEN) {
		s->bad++;
		if (!s->res_bad)
			s->res_bad = r->res;
	}
}

static void
echo_recv(struct echo_srv *s)
{
	struct pel_io_req req = pel_io_req_recv(s->fd, s->buf[s->cur], sizeof(s->buf[0]), 0,
						 echo_recv_cb, s);
	int err = pel_io_submit(s->io, NULL, 0, &req, NULL);

	if (err && !s->submit_err)
		s->submit_err = err;
}

/* A datagram came: echo it, and have the next recv in, in the same pass (one enter). */
static void
echo_recv_cb(const struct pel_io_result *r, void *arg)
{
	struct echo_srv *s = arg;
	struct pel_io_req req;
	int err;

	if (r->res < 0) {
		/* relaxed: stop was set before pel_destroy(), which cancels this recv */
		if (r->res == -ECANCELED && atomic_load_explicit(&s->stop, memory_order_relaxed)) {
			s->cancelled++;
			return;
		}
		s->bad++;
		if (!s->res_bad)
			s->res_bad = r->res;
		return;
	}
	s->recvs++;
	req = pel_io_req_send(s->fd, s->buf[s->cur], (uint32_t)r->res, 0, echo_send_cb, s);
	err = pel_io_submit(s->io, NULL, 0, &req, NULL);
	if (err && !s->submit_err)
		s->submit_err = err;
	s->cur ^= 1;
	echo_recv(s);
}

static void
echo_start(void *arg)
{
	echo_recv(arg);
}

/* The epoll server on B: non-blocking socket, epoll_wait() with timeout 0 in a loop. */
static void *
epoll_main(void *arg)
{
	struct echo_srv *s = arg;
	struct epoll_event ev = { .events = EPOLLIN };
	int ep;

	s->err = pel_bench_pin(s->cpu);
	ep = s->err ? -1 : epoll_create1(EPOLL_CLOEXEC);
	if (!s->err && ep < 0)
		s->err = errno;
	if (!s->err && epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev))
		s->err = errno;
	/* release: pairs with the acquire in run_echo(); err is set or the loop runs */
	atomic_store_explicit(&s->ready, s->err ? -1 : 1, memory_order_release);
	if (s->err) {
		if (ep >= 0)
			close(ep);
		return NULL;
	}
	/* relaxed: stop is a request to end, nothing is read after it */
	while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
		struct epoll_event got;
		ssize_t len;

		if (epoll_wait(ep, &got, 1, 0) <= 0)
			continue;
		while ((len = recv(s->fd, s->buf[0], sizeof(s->buf[0]), MSG_DONTWAIT)) > 0) {
			s->recvs++;
			if (send(s->fd, s->buf[0], (size_t)len, 0) == len) {
				s->sends++;
			} else {
				s->bad++;
				if (!s->res_bad)
					s->res_bad = -errno;
			}
		}
		if (len < 0 && errno != EAGAIN && !s->res_bad)
			s->res_bad = -errno;
	}
	close(ep);
	return NULL;
}

/* Two UDP sockets on 127.0.0.1 connected to each other; the client's is non-blocking. */
static int
udp_pair(int *cli, int *srv)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, b;
	socklen_t len = sizeof(b);
	int fd[2] = { -1, -1 };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < 2; i++) {
		fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (i ? SOCK_NONBLOCK : 0), 0);
		if (fd[i] < 0 || bind(fd[i], (struct sockaddr *)&a, sizeof(a)))
			goto fail;
	}
	for (int i = 0; i < 2; i++) {
		len = sizeof(b);
		if (getsockname(fd[!i], (struct sockaddr *)&b, &len) ||
		    connect(fd[i], (struct sockaddr *)&b, len))
			goto fail;
	}
	*srv = fd[0];
	*cli = fd[1];
	return 0;
fail:
	pel_bench_perror("udp socket pair", errno);
	for (int i = 0; i < 2; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	return 1;
}

/* The client on A: n echoes, one at a time. 0, or 1 after saying why. */
static int
echo_client(int fd, uint64_t n, uint64_t *lat, const char *what)
{
	char out[ECHO_LEN], in[ECHO_LEN * 2];

	memset(out, 0x5a, sizeof(out));
	for (uint64_t i = 0; i < n; i++) {
		uint64_t t0, t1, seq;
		ssize_t len;

		memcpy(out, &i, sizeof(i));
		t0 = pel_bench_mono_ns();
		if (send(fd, out, sizeof(out), 0) != (ssize_t)sizeof(out)) {
			fprintf(stderr, "pel-bench: io: %s: send: %s\n", what, strerror(errno));
			return 1;
		}
		for (;;) {
			len = recv(fd, in, sizeof(in), MSG_DONTWAIT);
			t1 = pel_bench_mono_ns();
			if (len >= 0)
				break;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				fprintf(stderr, "pel-bench: io: %s: recv: %s\n", what,
					strerror(errno));
				return 1;
			}
			if (t1 - t0 > ECHO_TIMEOUT_NS) {
				fprintf(stderr, "pel-bench: io: %s: echo %llu lost (no reply in 10 s)\n",
					what, (unsigned long long)i);
				return 1;
			}
			pel_bench_relax();
		}
		memcpy(&seq, in, sizeof(seq));
		if (len != ECHO_LEN || seq != i || memcmp(in + 8, out + 8, ECHO_LEN - 8)) {
			fprintf(stderr, "pel-bench: io: %s: echo %llu came back as %zd bytes, seq "
				"%llu\n", what, (unsigned long long)i, len, (unsigned long long)seq);
			return 1;
		}
		lat[i] = t1 - t0;
	}
	return 0;
}

struct echo_out {
	uint32_t setup_flags;
	double enters;			/* pel: io_uring_enter() per echo */
	uint64_t irqs;			/* interrupts on B during the runs, summed over reps */
	uint64_t echos;			/* echoes of those runs */
};

static uint64_t irqs_on(int cpu);

/* The client's run, with the interrupts B took meanwhile. */
static int
echo_counted(const struct pel_bench_opts *o, int cli, uint64_t n, uint64_t *lat,
	     const char *what, struct echo_out *out)
{
	uint64_t irq0 = irqs_on(o->cpu_b);
	int ret = echo_client(cli, n, lat, what);

	out->irqs += irqs_on(o->cpu_b) - irq0;
	return ret;
}

static int
run_echo(const struct pel_bench_opts *o, enum ekind k, uint64_t n, uint64_t *lat,
	 struct echo_out *out)
{
	static struct echo_srv s;
	struct pel_runtime *rt = NULL;
	struct pel_producer *prod = NULL;
	struct pel_io_stats st = { 0 };
	pthread_t t;
	int cli, err, ret = 1;

	memset(&s, 0, sizeof(s));
	if (udp_pair(&cli, &s.fd))
		return 1;
	if (k == E_EPOLL) {
		s.cpu = o->cpu_b;
		if (fcntl(s.fd, F_SETFL, O_NONBLOCK)) {
			pel_bench_perror("fcntl O_NONBLOCK", errno);
			goto out_close;
		}
		err = pel_bench_thread_on(&t, o->cpu_b, epoll_main, &s);
		if (err) {
			pel_bench_perror("pthread_create", err);
			goto out_close;
		}
		/* acquire: pairs with the release in epoll_main() */
		while (!atomic_load_explicit(&s.ready, memory_order_acquire))
			pel_bench_relax();
		ret = s.err ? 1 : echo_counted(o, cli, n, lat, einfo[k].name, out);
		atomic_store_explicit(&s.stop, 1, memory_order_relaxed);
		pthread_join(t, NULL);
		if (ret)
			fprintf(stderr, "pel-bench: io: epoll server: %llu recvs, %llu sends, first "
				"error %s\n", (unsigned long long)s.recvs,
				(unsigned long long)s.sends,
				s.res_bad ? strerror(-s.res_bad) : "none");
		if (s.err) {
			pel_bench_perror("epoll server", s.err);
			ret = 1;
		}
	} else {
		if (start_pel(o->cpu_b, k == E_PEL_PLAIN ? PEL_IO_CF_PLAIN :
			      k == E_PEL_COOP ? PEL_IO_CF_COOP : 0, -1, &rt, &prod, &s.io))
			goto out_close;
		err = pel_submit(prod, 0, echo_start, &s);
		if (err) {
			fprintf(stderr, "pel-bench: io: pel_submit: %s\n", pel_strerror(err));
			goto out_pel;
		}
		ret = echo_counted(o, cli, n, lat, einfo[k].name, out);
		/* the sends' callbacks may still be on their way: wait for the stats to settle */
		for (uint64_t end = pel_bench_mono_ns() + DONE_TIMEOUT_NS;
		     !pel_io_stats(s.io, 0, &st) && st.completed < 2 * n &&
		     pel_bench_mono_ns() < end;)
			pel_bench_relax();
		out->setup_flags = st.setup_flags;
		out->enters = (double)st.enters / (double)n;
		/* relaxed: the worker reads it in the cancelled recv's callback, which
		 * pel_destroy() runs after this store */
		atomic_store_explicit(&s.stop, 1, memory_order_relaxed);
out_pel:
		pel_producer_close(prod);
		pel_destroy(rt);
		if (!ret && (s.cancelled != 1 || st.submitted != 2 * n + 1 ||
			     st.completed != 2 * n)) {
			fprintf(stderr, "pel-bench: io: %s: %llu recvs cancelled at the end (1 "
				"expected); pel_io_stats: %llu submitted, %llu completed (%llu, "
				"%llu expected)\n", einfo[k].name,
				(unsigned long long)s.cancelled, (unsigned long long)st.submitted,
				(unsigned long long)st.completed, (unsigned long long)2 * n + 1,
				(unsigned long long)2 * n);
			ret = 1;
		}
	}
	if (!ret && (s.recvs != n || s.sends != n || s.bad || s.submit_err)) {
		fprintf(stderr, "pel-bench: io: %s: %llu recvs, %llu sends of %llu; %llu bad "
			"(first res %d); submit error %s\n", einfo[k].name,
			(unsigned long long)s.recvs, (unsigned long long)s.sends,
			(unsigned long long)n, (unsigned long long)s.bad, s.res_bad,
			s.submit_err ? pel_strerror(s.submit_err) : "none");
		ret = 1;
	}
out_close:
	close(cli);
	close(s.fd);
	return ret;
}

/* Interrupts CPU @p cpu has taken, every kind summed (/proc/interrupts); 0 if unreadable. */
static uint64_t
irqs_on(int cpu)
{
	FILE *f = fopen("/proc/interrupts", "r");
	char line[4096];
	uint64_t sum = 0;

	if (!f)
		return 0;
	if (!fgets(line, sizeof(line), f)) {	/* the CPU0 CPU1 ... header */
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':'), *end;
		unsigned long long v = 0;

		if (!p)
			continue;
		p++;
		for (int c = 0; c <= cpu; c++) {
			v = strtoull(p, &end, 10);
			if (end == p) {	/* a row with fewer columns (ERR, MIS) */
				v = 0;
				break;
			}
			p = end;
		}
		sum += v;
	}
	fclose(f);
	return sum;
}

/* ---- the suite ---- */

/* The nop ratios: pel's row over its baseline's. */
static const struct {
	const char *name;
	const char *label;
	unsigned a, b;
} npair[] = {
	{ "nop_rtt_vs_liburing", "pel/liburing", N_PEL, N_URING },
	{ "nop_rtt_plain_vs_liburing_default", "plain/liburing0", N_PEL_PLAIN, N_URING_DEFAULT },
	{ "nop_rtt_xcore_vs_liburing_xcore", "A->B pel/liburing", N_PEL_XCORE, N_URING_XCORE },
	{ "nop_rtt_dedicated_vs_liburing_xcore", "dedicated/liburing", N_PEL_DED, N_URING_XCORE },
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted @p v. */
static double
pctl(const uint64_t *v, uint64_t m, double p)
{
	uint64_t rank = (uint64_t)(p / 100.0 * (double)m + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > m)
		rank = m;
	return (double)v[rank - 1];
}

static void
flags_text(uint32_t f, char *buf, size_t len)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{ IORING_SETUP_SQPOLL, "SQPOLL" },
		{ IORING_SETUP_CQSIZE, "CQSIZE" },
		{ IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL" },
		{ IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN" },
		{ IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG" },
		{ IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER" },
		{ IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN" },
	};
	size_t at = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((f & names[i].bit) && at < len)
			at += (size_t)snprintf(buf + at, len - at, "%s%s", at ? "|" : "",
					       names[i].name);
	if (!at)
		snprintf(buf, len, "0");
}

int
pel_bench_io(const struct pel_bench_opts *o, struct pel_bench_report *rep)
{
	uint64_t nops = o->items ? o->items : DEFAULT_NOPS;
	uint64_t nx = nops / 4 ? nops / 4 : 1;
	uint64_t nechos = o->samples ? o->samples : DEFAULT_ECHOS;
	unsigned reps = o->reps ? o->reps : DEFAULT_REPS;
	uint64_t warm = nechos / 100, kept = nechos - warm;
	double *nv[N_COUNT] = { 0 };
	uint64_t *ev[E_COUNT] = { 0 }, *lat = NULL;
	struct pel_bench_figure nf[N_COUNT];
	struct nop_out nout[N_COUNT] = { 0 };
	struct echo_out eout[E_COUNT] = { 0 };
	double ep50[E_COUNT], ep99[E_COUNT];
	double *pv = NULL, paired[sizeof(npair) / sizeof(npair[0])];
	uint32_t pel_flags = 0;
	char name[64], ftext[160];
	int err, ret = 1;
	unsigned r, k;

	err = pel_bench_pin(o->cpu_a);
	if (err) {
		fprintf(stderr, "pel-bench: cannot pin to CPU %d: %s\n", o->cpu_a, strerror(err));
		return 1;
	}
	for (k = 0; k < N_COUNT; k++)
		if (!(nv[k] = calloc(reps, sizeof(double))))
			goto out_nomem;
	for (k = 0; k < E_COUNT; k++)
		if (!(ev[k] = calloc(reps * kept, sizeof(uint64_t))))
			goto out_nomem;
	if (!(lat = calloc(nechos, sizeof(uint64_t))) || !(pv = calloc(reps, sizeof(double))))
		goto out_nomem;

	printf("io cpus=%d,%d nops=%llu nops_xcore=%llu echos=%llu reps=%u\n", o->cpu_a, o->cpu_b,
	       (unsigned long long)nops, (unsigned long long)nx, (unsigned long long)nechos, reps);
	printf("note: nop rows: ns per round trip (submit -> completion seen), median of reps; "
	       "A->B rows: submit on CPU %d, ring and callback on CPU %d\n", o->cpu_a, o->cpu_b);
	printf("note: echo rows: UDP 64-byte echo RTT on 127.0.0.1, client busy-polls on CPU %d, "
	       "server on CPU %d; first 1%% of each run dropped\n", o->cpu_a, o->cpu_b);
	fflush(stdout);

	for (r = 0; r < reps; r++) {
		/* pel first: its ring's flags are the same-flags baseline's */
		for (k = 0; k < N_COUNT; k++) {
			uint64_t n = k >= N_PEL_XCORE ? nx : nops;
			uint64_t t0 = pel_bench_mono_ns();

			switch (k) {
			case N_PEL:
			case N_PEL_PLAIN:
				err = run_pel_nop(o, n, k == N_PEL_PLAIN, false, &nout[k]);
				if (!err && k == N_PEL)
					pel_flags = nout[k].setup_flags &
						    ~(uint32_t)IORING_SETUP_CQSIZE;
				break;
			case N_URING:
				err = run_uring(o, n, pel_flags | IORING_SETUP_CQSIZE, false,
						&nout[k]);
				break;
			case N_URING_DEFAULT:
				err = run_uring(o, n, 0, false, &nout[k]);
				break;
			case N_PEL_XCORE:
				err = run_pel_xcore(o, n, &nout[k]);
				break;
			case N_PEL_DED:
				err = run_pel_nop(o, n, false, true, &nout[k]);
				break;
			default:
				err = run_uring(o, n, pel_flags | IORING_SETUP_CQSIZE, true,
						&nout[k]);
				break;
			}
			if (err)
				goto out_free;
			nv[k][r] = nout[k].ns;
			pel_bench_rest(pel_bench_mono_ns() - t0);
		}
		for (k = 0; k < E_COUNT; k++) {
			uint64_t t0 = pel_bench_mono_ns();

			if (run_echo(o, k, nechos, lat, &eout[k]))
				goto out_free;
			eout[k].echos += nechos;
			memcpy(ev[k] + r * kept, lat + warm, kept * sizeof(*lat));
			pel_bench_rest(pel_bench_mono_ns() - t0);
		}
	}

	/* per-rep ratios first (summarise sorts): the two runs of a rep are seconds apart, the
	 * reps minutes, so the median of these is the steadier reading on a shared host */
	for (k = 0; k < sizeof(npair) / sizeof(npair[0]); k++) {
		for (r = 0; r < reps; r++)
			pv[r] = nv[npair[k].a][r] / nv[npair[k].b][r];
		paired[k] = pel_bench_summarise(pv, reps).median;
	}
	for (k = 0; k < N_COUNT; k++) {
		nf[k] = pel_bench_summarise(nv[k], reps);
		flags_text(nout[k].setup_flags, ftext, sizeof(ftext));
		printf("%-9s %-19s nop ns/rtt median=%-8.1f min=%-8.1f max=%-8.1f enters/rtt=%.2f "
		       "flags=%s\n", ninfo[k].role, ninfo[k].label, nf[k].median, nf[k].min,
		       nf[k].max, nout[k].enters, ftext);
		snprintf(name, sizeof(name), "nop_%s_ns_per_rtt", ninfo[k].name);
		pel_bench_metric(rep, name, nf[k].median, "ns");
	}
	for (k = 0; k < E_COUNT; k++) {
		qsort(ev[k], reps * kept, sizeof(uint64_t), cmp_u64);
		ep50[k] = pctl(ev[k], reps * kept, 50);
		ep99[k] = pctl(ev[k], reps * kept, 99);
		if (k == E_EPOLL)
			snprintf(ftext, sizeof(ftext), "epoll_wait(0)+recv+send");
		else
			flags_text(eout[k].setup_flags, ftext, sizeof(ftext));
		printf("%-9s %-19s echo ns p50=%-7.0f p99=%-7.0f p99.9=%-7.0f enters/echo=%.2f "
		       "irqs_b/echo=%.2f flags=%s\n", einfo[k].role, einfo[k].label, ep50[k],
		       ep99[k], pctl(ev[k], reps * kept, 99.9), k == E_EPOLL ? 0.0 : eout[k].enters,
		       (double)eout[k].irqs / (double)eout[k].echos, ftext);
		snprintf(name, sizeof(name), "echo_%s_p50", einfo[k].name);
		pel_bench_metric(rep, name, ep50[k], "ns");
		snprintf(name, sizeof(name), "echo_%s_p99", einfo[k].name);
		pel_bench_metric(rep, name, ep99[k], "ns");
	}

	{
		static const struct {
			const char *name;
			const char *label;
			unsigned k;
		} er[] = {
			{ "echo_defer_vs_epoll", "defer/epoll", E_PEL_DEFER },
			{ "echo_plain_vs_epoll", "plain/epoll", E_PEL_PLAIN },
			{ "echo_coop_vs_epoll", "coop/epoll", E_PEL_COOP },
		};

		for (k = 0; k < sizeof(npair) / sizeof(npair[0]); k++) {
			double x = nf[npair[k].a].median / nf[npair[k].b].median;

			printf("%-9s %-19s nop ns/rtt x=%.2f per-rep median=%.2f (%s, lower is "
			       "better)\n", "ratio", npair[k].label, x, paired[k], npair[k].name);
			pel_bench_ratio(rep, npair[k].name, x);
			snprintf(name, sizeof(name), "%s_per_rep", npair[k].name);
			pel_bench_ratio(rep, name, paired[k]);
		}
		for (k = 0; k < sizeof(er) / sizeof(er[0]); k++) {
			double p50 = ep50[er[k].k] / ep50[E_EPOLL];
			double p99 = ep99[er[k].k] / ep99[E_EPOLL];

			printf("%-9s %-19s echo p50=%.2f p99=%.2f (%s_p50/_p99, lower is better)\n",
			       "ratio", er[k].label, p50, p99, er[k].name);
			snprintf(name, sizeof(name), "%s_p50", er[k].name);
			pel_bench_ratio(rep, name, p50);
			snprintf(name, sizeof(name), "%s_p99", er[k].name);
			pel_bench_ratio(rep, name, p99);
		}
	}
	printf("note: liburing rows register the ring fd as pel does; 'pel flags' = pel's "
	       "setup_flags as pel_io_stats() gave them\n");
	printf("note: irqs_b/echo: interrupts of every kind CPU %d took during the echo runs "
	       "(/proc/interrupts, around the client's loop) per echo\n", o->cpu_b);
	ret = 0;
	goto out_free;

out_nomem:
	pel_bench_perror("calloc", ENOMEM);
out_free:
	for (k = 0; k < N_COUNT; k++)
		free(nv[k]);
	for (k = 0; k < E_COUNT; k++)
		free(ev[k]);
	free(lat);
	free(pv);
	return ret;
}

#endif /* PEL_BENCH_HAVE_LIBURING */
