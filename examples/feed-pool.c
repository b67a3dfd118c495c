/* SPDX-License-Identifier: MIT */
/*
 * examples/feed-pool.c - feed-pool: the demo's market-data service written the way a user
 * writes it without pel, the baseline pel-feed is measured against (docs/demo.md).
 *
 *   feed-pool --port P [--cpus LIST] [--threads N] [the options of feed_opts.h]
 *
 * One reader thread waits in epoll_wait() on the UDP socket, takes datagrams with recvmmsg(),
 * decodes them, answers an unknown instrument itself (refused) and queues every other request
 * on the pool thread that owns its instrument (a hash of the id modulo the threads: one thread
 * an instrument keeps its updates in order). Each pool thread has a bounded FIFO guarded by a
 * pthread mutex and a condition variable; a full queue drops the request (counted, no reply).
 *
 * A pool thread takes what its queue holds in batches and, for each request, checks the
 * deadline, applies the update, runs the risk rule and, for one update in --fanout-every, every
 * scoring model in turn on the same thread (feed_book_process()): what such a service typically
 * does, since handing the models to the other pool threads would queue them behind other
 * instruments' updates and need a condvar to join them. It answers with sendto() on the socket
 * the request came in on.
 *
 * Every thread may run on any CPU of --cpus (default: those of the process), placed by the
 * kernel's scheduler. SIGINT, SIGTERM or --seconds: the reader stops reading, the pool answers
 * what is queued, and the counters and books are reported (feed_report()).
 */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "feed_opts.h"

#define QUEUE_SLOTS	65536u	/* requests a pool thread's queue holds; a power of two */
#define RX_BATCH	64u	/* datagrams per recvmmsg() */
#define RX_ROUNDS	16u	/* recvmmsg() calls between two looks at the stop event */
#define TAKE_BATCH	64u	/* requests a pool thread takes off its queue per lock */

/* A request on its way to the pool thread that owns its instrument. */
struct item {
	struct pel_feed_req req;
	struct sockaddr_in from;	/* where the reply goes */
	uint64_t deadline;		/* feed_deadline(), from its arrival; 0: none */
};

struct server;

/* A pool thread and its queue; the reader and the thread meet under @lock. */
struct pool_thread {
	alignas(64) pthread_mutex_t lock;
	pthread_cond_t nonempty;	/* signalled by the reader after queueing */
	uint32_t head, count;		/* under lock */
	bool stop;			/* under lock: no more requests, answer the rest and exit */
	struct item *slot;		/* QUEUE_SLOTS, a ring */
	pthread_t tid;
	struct server *srv;
	struct feed_counters *c;	/* this thread's */
};

struct server {
	struct feed_opts o;
	int fd;				/* the socket: the reader receives, everyone sends */
	int stopfd;			/* eventfd: main tells the reader to stop */
	unsigned nthreads;
	struct pool_thread *pool;
	struct feed_counters *counters;	/* [0] the reader's, [1 + i] pool thread i's */
	struct feed_book **books;	/* [instrument]: allocated by its owner on first use */
	bool reader_failed;		/* written by the reader, read by main after the join */
};

/* @p list ("2-5,8") into @p set. @return 0; -1 after a message. */
static int
parse_cpus(const struct feed_opts *o, const char *list, cpu_set_t *set)
{
	const char *p = list;

	CPU_ZERO(set);
	for (;;) {
		unsigned long lo, hi;
		char *end;

		if (!isdigit((unsigned char)*p))
			break;
		lo = hi = strtoul(p, &end, 10);
		if (*end == '-') {
			p = end + 1;
			if (!isdigit((unsigned char)*p))
				break;
			hi = strtoul(p, &end, 10);
		}
		if (lo > hi || hi >= CPU_SETSIZE)
			break;
		for (unsigned long c = lo; c <= hi; c++)
			CPU_SET(c, set);
		if (!*end)
			return 0;
		if (*end != ',')
			break;
		p = end + 1;
	}
	fprintf(stderr,
		"%s: --cpus %s: not a CPU list such as \"1\" or \"0-3,6\" (CPUs below %d)\n",
		o->prog, list, CPU_SETSIZE);
	return -1;
}

/* --cpus, each CPU one this process may run on; without it, all of those. @return 0; 1 or 2
 * (the exit code) after a message. */
static int
pick_cpus(const struct feed_opts *o, cpu_set_t *set)
{
	cpu_set_t allowed;

	if (sched_getaffinity(0, sizeof(allowed), &allowed)) {
		fprintf(stderr, "%s: sched_getaffinity: %s\n", o->prog, strerror(errno));
		return 1;
	}
	if (!o->cpus) {
		*set = allowed;
		return 0;
	}
	if (parse_cpus(o, o->cpus, set))
		return 2;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, set) && !CPU_ISSET(c, &allowed)) {
			fprintf(stderr, "%s: --cpus %s: CPU %d is offline or outside this "
				"process's affinity (see taskset -cp %d)\n", o->prog, o->cpus, c,
				(int)getpid());
			return 2;
		}
	}
	return 0;
}

static void
reply(int fd, struct feed_counters *c, const struct sockaddr_in *to, uint8_t status,
      const struct pel_feed_req *r)
{
	uint8_t buf[PEL_FEED_REPLY_SIZE];

	pel_feed_reply_encode(buf, status, r->req_id, r->send_ns);
	if (sendto(fd, buf, sizeof(buf), 0, (const struct sockaddr *)to, sizeof(*to)) !=
	    (ssize_t)sizeof(buf))
		feed_count(&c->send_errors, 1);
}

/* Instrument @p id's book, allocated on first use. Only its owner calls this. */
static struct feed_book *
book_of(struct server *s, uint32_t id)
{
	struct feed_book *b = s->books[id];

	if (!b) {
		b = malloc(sizeof(*b));
		if (!b)
			return NULL;
		feed_book_init(b);
		s->books[id] = b;
	}
	return b;
}

/* One request, on the pool thread that owns its instrument. */
static void
serve(struct pool_thread *t, const struct item *it)
{
	struct server *s = t->srv;
	const struct feed_opts *o = &s->o;
	const struct pel_feed_req *r = &it->req;
	uint64_t deadline = it->deadline;
	struct feed_book *b = NULL;

	if (r->kind == PEL_FEED_BOOK) {
		b = book_of(s, r->instrument);
		if (!b) {
			feed_count(&t->c->dropped, 1);	/* out of memory: no room, no reply */
			return;
		}
	}
	if (deadline && feed_mono_ns() > deadline) {
		if (b)
			feed_book_skip(b, r->seq);
		reply(s->fd, t->c, &it->from, PEL_FEED_LATE, r);
		feed_count(&t->c->late, 1);
		return;
	}
	if (b) {
		if (feed_book_process(b, r, o->fanout_every, o->models, o->rounds))
			feed_count(&t->c->fanouts, 1);
	} else {
		feed_spin(r->service_ns);
	}
	reply(s->fd, t->c, &it->from, PEL_FEED_ANSWERED, r);
	feed_count(&t->c->answered, 1);
}

static void *
pool_main(void *arg)
{
	struct pool_thread *t = arg;
	struct item batch[TAKE_BATCH];
	unsigned n;

	do {
		pthread_mutex_lock(&t->lock);
		while (!t->count && !t->stop)
			pthread_cond_wait(&t->nonempty, &t->lock);
		for (n = 0; n < TAKE_BATCH && t->count; n++) {
			batch[n] = t->slot[t->head];
			t->head = (t->head + 1) & (QUEUE_SLOTS - 1);
			t->count--;
		}
		pthread_mutex_unlock(&t->lock);
		for (unsigned i = 0; i < n; i++)
			serve(t, &batch[i]);
	} while (n);	/* none taken: stopped with an empty queue */
	return NULL;
}

/*
 * Queue the @p n requests of a batch on their owners: one lock and one signal per owner and
 * batch, each owner's requests in the order they came. @p owner[i]: request i's pool thread,
 * set to -1 once queued (or dropped, its queue full).
 */
static void
dispatch(struct server *s, const struct item *it, int *owner, unsigned n)
{
	struct feed_counters *c = &s->counters[0];

	for (unsigned i = 0; i < n; i++) {
		struct pool_thread *t;
		int w = owner[i];

		if (w < 0)
			continue;
		t = &s->pool[w];
		pthread_mutex_lock(&t->lock);
		for (unsigned j = i; j < n; j++) {
			if (owner[j] != w)
				continue;
			owner[j] = -1;
			if (t->count == QUEUE_SLOTS) {
				feed_count(&c->dropped, 1);
				continue;
			}
			t->slot[(t->head + t->count) & (QUEUE_SLOTS - 1)] = it[j];
			t->count++;
		}
		pthread_mutex_unlock(&t->lock);
		pthread_cond_signal(&t->nonempty);
	}
}

/* Take up to RX_BATCH datagrams, answer or count what is not the pool's, queue the rest.
 * @return how many were taken, -1 when the socket failed (after a message). */
static int
receive(struct server *s)
{
	struct feed_counters *c = &s->counters[0];
	uint8_t buf[RX_BATCH][PEL_FEED_REQ_SIZE + 8];	/* room to see a longer datagram */
	struct sockaddr_in from[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct mmsghdr msg[RX_BATCH];
	struct item it[RX_BATCH];
	int owner[RX_BATCH];
	unsigned k = 0;
	uint64_t arrival;
	int n;

	for (unsigned i = 0; i < RX_BATCH; i++) {
		iov[i] = (struct iovec){ .iov_base = buf[i], .iov_len = sizeof(buf[i]) };
		msg[i].msg_hdr = (struct msghdr){ .msg_name = &from[i],
						  .msg_namelen = sizeof(from[i]),
						  .msg_iov = &iov[i], .msg_iovlen = 1 };
	}
	do
		n = recvmmsg(s->fd, msg, RX_BATCH, 0, NULL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		fprintf(stderr, "%s: recvmmsg: %s\n", s->o.prog, strerror(errno));
		return -1;
	}
	feed_count(&c->received, (uint64_t)n);
	arrival = feed_mono_ns();
	for (int i = 0; i < n; i++) {
		struct pel_feed_req *r = &it[k].req;

		/* MSG_TRUNC: longer than the buffer, so not PEL_FEED_REQ_SIZE either */
		if ((msg[i].msg_hdr.msg_flags & MSG_TRUNC) ||
		    pel_feed_req_decode(buf[i], msg[i].msg_len, r)) {
			feed_count(&c->malformed, 1);
			continue;
		}
		if (r->instrument >= s->o.instruments) {
			reply(s->fd, c, &from[i], PEL_FEED_MALFORMED, r);
			feed_count(&c->rejected, 1);
			continue;
		}
		it[k].from = from[i];
		it[k].deadline = feed_deadline(&s->o, r->send_ns, arrival);
		owner[k++] = (int)(feed_mix(r->instrument) % s->nthreads);
	}
	dispatch(s, it, owner, k);
	return n;
}

/* The reader cannot go on: make feed_wait() in main return (SIGTERM reaches its signalfd). */
static void *
reader_give_up(struct server *s)
{
	s->reader_failed = true;
	kill(getpid(), SIGTERM);
	return NULL;
}

static void *
reader_main(void *arg)
{
	struct server *s = arg;
	struct epoll_event ev[2];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0) {
		fprintf(stderr, "%s: epoll_create1: %s\n", s->o.prog, strerror(errno));
		return reader_give_up(s);
	}
	ev[0] = (struct epoll_event){ .events = EPOLLIN, .data.fd = s->fd };
	ev[1] = (struct epoll_event){ .events = EPOLLIN, .data.fd = s->stopfd };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev[0]) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, s->stopfd, &ev[1])) {
		fprintf(stderr, "%s: epoll_ctl: %s\n", s->o.prog, strerror(errno));
		goto out_failed;
	}
	for (;;) {
		int n = epoll_wait(ep, ev, 2, -1);

		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "%s: epoll_wait: %s\n", s->o.prog, strerror(errno));
			goto out_failed;
		}
		for (int i = 0; i < n; i++)
			if (ev[i].data.fd == s->stopfd)
				goto out_close;
		if (n <= 0)
			continue;
		/* what the socket holds, a bounded number of batches at a time */
		for (unsigned r = 0; r < RX_ROUNDS; r++) {
			int got = receive(s);

			if (got < 0)
				goto out_failed;
			if (got < (int)RX_BATCH)
				break;
		}
	}
out_close:
	close(ep);
	return NULL;
out_failed:
	close(ep);
	return reader_give_up(s);
}

/* Tell the first @p n pool threads to answer what they hold and exit; join them. */
static void
stop_pool(struct server *s, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct pool_thread *t = &s->pool[i];

		pthread_mutex_lock(&t->lock);
		t->stop = true;
		pthread_mutex_unlock(&t->lock);
		pthread_cond_signal(&t->nonempty);
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(s->pool[i].tid, NULL);
}

/* The counters, the books' table and the pool with its queues. @return 0; 1 after a message. */
static int
alloc_server(struct server *s)
{
	size_t nc = s->nthreads + 1u;

	s->counters = aligned_alloc(64, nc * sizeof(*s->counters));
	s->pool = aligned_alloc(64, s->nthreads * sizeof(*s->pool));
	s->books = calloc(s->o.instruments, sizeof(*s->books));
	if (s->counters)
		memset(s->counters, 0, nc * sizeof(*s->counters));
	if (s->pool)
		memset(s->pool, 0, s->nthreads * sizeof(*s->pool));
	if (!s->counters || !s->pool || !s->books)
		goto fail;
	for (unsigned i = 0; i < s->nthreads; i++) {
		struct pool_thread *t = &s->pool[i];

		t->slot = malloc(QUEUE_SLOTS * sizeof(*t->slot));
		if (!t->slot)
			goto fail;
		pthread_mutex_init(&t->lock, NULL);
		pthread_cond_init(&t->nonempty, NULL);
		t->srv = s;
		t->c = &s->counters[1 + i];
	}
	return 0;
fail:
	fprintf(stderr, "%s: out of memory for %u threads and %u instruments\n", s->o.prog,
		s->nthreads, s->o.instruments);
	return 1;
}

static void
free_server(struct server *s)
{
	for (unsigned i = 0; s->books && i < s->o.instruments; i++)
		free(s->books[i]);
	for (unsigned i = 0; s->pool && i < s->nthreads; i++) {
		if (!s->pool[i].slot)
			continue;
		pthread_mutex_destroy(&s->pool[i].lock);
		pthread_cond_destroy(&s->pool[i].nonempty);
		free(s->pool[i].slot);
	}
	free(s->books);
	free(s->pool);
	free(s->counters);
}

int
main(int argc, char **argv)
{
	struct server s = { .o = { .prog = "feed-pool", .server = FEED_SERVER_POOL }, .fd = -1,
			    .stopfd = -1 };
	uint64_t one = 1;
	pthread_t reader;
	unsigned started = 0;
	cpu_set_t cpus;
	int rc, err;

	rc = feed_parse(argc, argv, &s.o);
	if (rc)
		return rc;
	rc = pick_cpus(&s.o, &cpus);
	if (rc)
		return rc;
	s.nthreads = s.o.threads ? s.o.threads : (unsigned)CPU_COUNT(&cpus);
	rc = 1;
	/* the threads started below inherit both the CPU set and the blocked signals */
	if (sched_setaffinity(0, sizeof(cpus), &cpus)) {
		fprintf(stderr, "%s: sched_setaffinity --cpus %s: %s\n", s.o.prog,
			s.o.cpus ? s.o.cpus : "(all)", strerror(errno));
		return 1;
	}
	if (feed_signals(&s.o))
		return 1;
	s.fd = feed_udp_socket(&s.o, true);
	if (s.fd < 0)
		return 1;
	s.stopfd = eventfd(0, EFD_CLOEXEC);
	if (s.stopfd < 0) {
		fprintf(stderr, "%s: eventfd: %s\n", s.o.prog, strerror(errno));
		goto out_close;
	}
	if (alloc_server(&s))
		goto out_free;
	for (; started < s.nthreads; started++) {
		err = pthread_create(&s.pool[started].tid, NULL, pool_main, &s.pool[started]);
		if (err) {
			fprintf(stderr, "%s: pool thread %u: %s\n", s.o.prog, started,
				strerror(err));
			goto out_stop_pool;
		}
	}
	err = pthread_create(&reader, NULL, reader_main, &s);
	if (err) {
		fprintf(stderr, "%s: reader thread: %s\n", s.o.prog, strerror(err));
		goto out_stop_pool;
	}
	printf("%s: serving UDP port %u on %u threads\n", s.o.prog, s.o.port, s.nthreads);
	fflush(stdout);

	feed_wait(&s.o);
	if (write(s.stopfd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		fprintf(stderr, "%s: eventfd write: %s\n", s.o.prog, strerror(errno));
	pthread_join(reader, NULL);
	stop_pool(&s, started);
	rc = feed_report(&s.o, s.counters, s.nthreads + 1, s.books);
	if (s.reader_failed)
		rc = 1;
	goto out_free;

out_stop_pool:
	stop_pool(&s, started);
out_free:
	free_server(&s);
out_close:
	if (s.stopfd >= 0)
		close(s.stopfd);
	close(s.fd);
	return rc;
}
