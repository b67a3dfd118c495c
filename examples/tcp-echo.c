/* SPDX-License-Identifier: MIT */
/*
 * examples/tcp-echo.c - a sockperf server over TCP on pel's io_uring layer: it answers
 * `sockperf ping-pong --tcp` and `sockperf under-load --tcp`.
 *
 *   tcp-echo --port 11111 --cpus 1 --idle spin
 *   taskset -c 0 sockperf ping-pong --tcp -i 127.0.0.1 -p 11111 -t 10 --msg-size 64
 *
 * Worker 0 keeps a multishot accept armed on the listening socket and hands each connection
 * (TCP_NODELAY) to the workers in turn. A connection lives on its worker: a multishot receive
 * into that worker's provided buffers, sockperf's messages framed by their length field across
 * reads (a message split between reads waits in the connection's reassembly buffer; several in
 * one read are answered in one send), and one send in flight at a time, so answers leave in
 * order. Answers are copied out of the provided buffer, which goes back at once; those made while
 * a send is in flight gather in a second output buffer, sent when the first is done.
 *
 * A peer that sends a length below 14 or above 64 KiB, or goes away in the middle of a message,
 * is counted as malformed and loses its connection; nobody else's is touched.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo.h"

#define BUF_COUNT	1024u		/* provided buffers per worker */
#define BUF_SIZE	16384u		/* each: one read of a connection */
#define OUT_CAP		(256u * 1024)	/* answers waiting for a send, per output buffer */

struct conn;

struct tworker {
	unsigned id;
	struct conn *conns;	/* the connections living here (a list only this worker walks) */
	_Atomic uint64_t messages, replies, malformed, overruns, errors, connections, closed;
};

struct conn {
	struct conn *prev, *next;	/* on its worker's list */
	struct tworker *w;
	int fd;
	bool closing;		/* shut down: waiting for the final callbacks */
	bool recv_armed;	/* the multishot receive has not given its final result yet */
	bool sending;		/* a send of out[cur ^ 1] is in flight */
	unsigned cur;		/* out[cur] gathers answers */
	uint32_t out_len[2], sent;
	uint32_t have;		/* bytes of a split message in asm[] */
	uint8_t *out[2];
	uint8_t asm_buf[SP_MAX];
};

static struct pel_io *io;
static struct tworker *ws;
static unsigned nworkers;
static int lfd = -1;
static uint64_t accept_handle;
static bool steered;	/* the dedicated I/O thread steers accepts: a connection stays there */
static atomic_bool stopping;

static void on_recv(const struct pel_io_result *r, void *arg);
static void on_accept(const struct pel_io_result *r, void *arg);

static void
conn_free_if_done(struct conn *c)
{
	if (!c->closing || c->recv_armed || c->sending)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->fd);
	echo_count(&c->w->closed, 1);
	free(c->out[0]);
	free(c);
}

/* Cut the connection: shutdown() ends its receive and any send. It is freed by whoever calls
 * conn_free_if_done() last: each callback and task of a connection does, once, at its end. */
static void
conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	shutdown(c->fd, SHUT_RDWR);
}

static void on_sent(const struct pel_io_result *r, void *arg);

static void
send_part(struct conn *c)
{
	unsigned s = c->cur ^ 1;
	struct pel_io_req req = pel_io_req_send(c->fd, c->out[s] + c->sent, c->out_len[s] - c->sent,
						MSG_NOSIGNAL, on_sent, c);

	c->sending = true;
	if (pel_io_submit(io, NULL, c->w->id, &req, NULL)) {
		c->sending = false;
		echo_count(&c->w->errors, 1);
		conn_close(c);
	}
}

/* No send in flight and answers waiting: send them, and gather the next ones in the other. */
static void
flush(struct conn *c)
{
	if (c->sending || c->closing || !c->out_len[c->cur])
		return;
	c->cur ^= 1;
	c->sent = 0;
	send_part(c);
}

static void
on_sent(const struct pel_io_result *r, void *arg)
{
	struct conn *c = arg;
	unsigned s = c->cur ^ 1;

	c->sending = false;
	if (r->res < 0) {
		if (!c->closing)
			echo_count(&c->w->errors, 1);
		conn_close(c);
	} else {
		c->sent += (uint32_t)r->res;
		if (c->sent < c->out_len[s] && !c->closing) {
			send_part(c);	/* a short send: the rest, before anything newer */
		} else {
			c->out_len[s] = 0;
			flush(c);
		}
	}
	conn_free_if_done(c);
}

/* One whole message: answer it if sockperf asks. @return false when the connection must go. */
static bool
message(struct conn *c, uint8_t *m, uint32_t len)
{
	uint8_t *o;

	echo_count(&c->w->messages, 1);
	if (!sp_wants_reply(m))
		return true;
	if (c->out_len[c->cur] + len > OUT_CAP) {
		echo_count(&c->w->overruns, 1);	/* the peer does not read its answers */
		return false;
	}
	o = c->out[c->cur] + c->out_len[c->cur];
	memcpy(o, m, len);
	sp_make_reply(o);
	c->out_len[c->cur] += len;
	echo_count(&c->w->replies, 1);
	return true;
}

/* A length field sockperf could have sent. */
static bool
len_ok(uint32_t len)
{
	return len >= SP_HDR && len <= SP_MAX;
}

/* @p n bytes the peer sent: frame them into messages. @return false when it sent garbage. */
static bool
input(struct conn *c, uint8_t *d, uint32_t n)
{
	while (n) {
		uint32_t len, take;

		if (!c->have && n >= SP_HDR) {
			/* the usual case: a message starts here; answer it from the buffer */
			len = sp_len(d);
			if (!len_ok(len))
				return false;
			if (len <= n) {
				if (!message(c, d, len))
					return false;
				d += len;
				n -= len;
				continue;
			}
		}
		/* a message split between reads: gather it in asm_buf */
		if (c->have < SP_HDR) {
			take = SP_HDR - c->have < n ? SP_HDR - c->have : n;
			memcpy(c->asm_buf + c->have, d, take);
			c->have += take;
			d += take;
			n -= take;
			if (c->have < SP_HDR)
				break;
			if (!len_ok(sp_len(c->asm_buf)))
				return false;
		}
		len = sp_len(c->asm_buf);
		take = len - c->have < n ? len - c->have : n;
		memcpy(c->asm_buf + c->have, d, take);
		c->have += take;
		d += take;
		n -= take;
		if (c->have == len) {
			c->have = 0;
			if (!message(c, c->asm_buf, len))
				return false;
		}
	}
	return true;
}

static void
on_recv(const struct pel_io_result *r, void *arg)
{
	struct conn *c = arg;

	if (r->flags & PEL_IO_F_BUFFER) {
		bool ok = c->closing || input(c, r->buf, (uint32_t)r->res);

		pel_io_buf_release(io, r->buf);
		if (!ok) {
			echo_count(&c->w->malformed, 1);
			conn_close(c);
		} else {
			flush(c);
		}
	}
	if (r->flags & PEL_IO_F_MORE)
		return;
	/* the end of the stream: the peer closed (0), reset, or we shut it down */
	c->recv_armed = false;
	if (c->have && !c->closing)
		echo_count(&c->w->malformed, 1);	/* gone in the middle of a message */
	else if (r->res < 0 && !c->closing && r->res != -ECONNRESET && r->res != -ECANCELED)
		echo_count(&c->w->errors, 1);
	conn_close(c);
	conn_free_if_done(c);
}

/* On the connection's worker: put it on the list and start receiving. */
static void
conn_start(void *arg)
{
	struct conn *c = arg;
	struct pel_io_req req = pel_io_req_recv_multishot(c->fd, 0, on_recv, c);

	req.flags |= PEL_IO_REQ_NO_STEER;	/* a stream: its bytes in order, on its worker */

	c->next = c->w->conns;
	if (c->next)
		c->next->prev = c;
	c->w->conns = c;
	if (atomic_load_explicit(&stopping, memory_order_relaxed)) {
		conn_close(c);
	} else {
		c->recv_armed = true;
		if (pel_io_submit(io, NULL, c->w->id, &req, NULL)) {
			c->recv_armed = false;
			echo_count(&c->w->errors, 1);
			conn_close(c);
		}
	}
	conn_free_if_done(c);
}

/* A new connection, on worker @p self: for the next worker in turn (accepts complete on worker
 * 0), or for @p self when the dedicated I/O thread steers accepts (--steer: it chose). */
static void
accepted(int fd, unsigned self)
{
	static unsigned next;	/* only worker 0 runs this, when accepts are not steered */
	struct tworker *w = steered ? &ws[self] : &ws[next++ % nworkers];
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	echo_count(&ws[self].connections, 1);
	if (c)
		c->out[0] = malloc(2 * (size_t)OUT_CAP);
	if (!c || !c->out[0]) {
		free(c);
		close(fd);
		echo_count(&ws[self].errors, 1);
		return;
	}
	c->out[1] = c->out[0] + OUT_CAP;
	c->fd = fd;
	c->w = w;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (w->id == self) {
		conn_start(c);
	} else if (pel_spawn(w->id, conn_start, c)) {
		close(fd);
		free(c->out[0]);
		free(c);
		echo_count(&ws[self].errors, 1);
	}
}

static int
arm_accept(struct pel_producer *p)
{
	struct pel_io_req req = pel_io_req_accept(lfd, PEL_IO_REQ_MULTISHOT, on_accept, NULL);

	return pel_io_submit(io, p, 0, &req, &accept_handle);
}

static void
on_accept(const struct pel_io_result *r, void *arg)
{
	(void)arg;
	if (r->res >= 0)
		accepted(r->res, r->worker);
	else if (r->res != -ECANCELED)
		echo_count(&ws[r->worker].errors, 1);
	if (!(r->flags & PEL_IO_F_MORE) && r->res != -ECANCELED &&
	    !atomic_load_explicit(&stopping, memory_order_relaxed) && arm_accept(NULL))
		echo_count(&ws[r->worker].errors, 1);
}

/* At the end, on each worker: cut every connection it has. */
static void
close_all(void *arg)
{
	struct tworker *w = arg;

	for (struct conn *c = w->conns, *next; c; c = next) {
		next = c->next;
		conn_close(c);
		conn_free_if_done(c);
	}
}

static void
on_cancelled(const struct pel_io_result *r, void *arg)
{
	(void)r;
	(void)arg;
}

static int
listener(unsigned *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(*port),
				 .sin_addr.s_addr = htonl(INADDR_ANY) };
	socklen_t alen = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("tcp-echo: socket");
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&a, &alen)) {
		fprintf(stderr, "tcp-echo: TCP port %u: %s\n", *port, strerror(errno));
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

int
main(int argc, char **argv)
{
	struct echo_opts o = { .prog = "tcp-echo" };
	struct pel_producer *p = NULL;
	struct echo_rt e;
	uint64_t t[7] = { 0 };
	char iostats[256];
	int err, ret = 1;

	err = echo_parse(argc, argv, &o);
	if (err)
		return err;
	steered = o.io_mode == PEL_IO_DEDICATED && o.steer != PEL_IO_STEER_FIXED;
	if (echo_start(&o, BUF_COUNT, BUF_SIZE, &e))
		return 1;
	io = e.io;
	nworkers = pel_worker_count(e.rt);
	ws = calloc(nworkers, sizeof(*ws));
	if (!ws)
		goto out;
	for (unsigned w = 0; w < nworkers; w++)
		ws[w].id = w;
	err = pel_producer_open(e.rt, &p);
	if (err) {
		fprintf(stderr, "tcp-echo: pel_producer_open: %s\n", pel_last_error());
		goto out;
	}
	lfd = listener(&o.port);
	if (lfd < 0)
		goto out;
	err = arm_accept(p);
	if (err) {
		fprintf(stderr, "tcp-echo: pel_io_submit: %s\n", pel_last_error());
		goto out;
	}
	printf("tcp-echo: serving TCP port %u on %u worker%s\n", o.port, nworkers,
	       nworkers > 1 ? "s" : "");
	fflush(stdout);
	echo_wait(&e);
	ret = 0;
	/* Quiesce before the summary: no more accepts, every connection cut on its worker, then
	 * wait until their last callbacks ran, so the counters are final. */
	atomic_store_explicit(&stopping, true, memory_order_relaxed);
	{
		struct pel_io_req req = pel_io_req_cancel(accept_handle, on_cancelled, NULL);

		while (pel_io_submit(io, p, 0, &req, NULL) == -EAGAIN)
			sched_yield();
	}
	for (unsigned w = 0; w < nworkers; w++)
		while (pel_submit(p, w, close_all, &ws[w]) == -EAGAIN)
			sched_yield();
	err = echo_quiesce(&e, 2 * PEL_NS_PER_S);
	if (err)
		fprintf(stderr, "tcp-echo: operations still in flight 2 s after the stop\n");
	echo_io_stats(&e, iostats, sizeof(iostats));	/* before pel_destroy() frees them */
out:
	atomic_store_explicit(&stopping, true, memory_order_relaxed);
	if (p)
		pel_producer_close(p);
	pel_destroy(e.rt);	/* cancels whatever is left and runs its callbacks; joins */
	for (unsigned w = 0; ws && w < nworkers; w++) {
		t[0] += echo_get(&ws[w].messages);
		t[1] += echo_get(&ws[w].replies);
		t[2] += echo_get(&ws[w].malformed);
		t[3] += echo_get(&ws[w].overruns);
		t[4] += echo_get(&ws[w].errors);
		t[5] += echo_get(&ws[w].connections);
		t[6] += echo_get(&ws[w].closed);
	}
	free(ws);
	if (lfd >= 0)
		close(lfd);
	close(e.sigfd);
	if (ret == 0)
		printf("tcp-echo: messages %llu replies %llu malformed %llu overruns %llu errors %llu "
		       "connections %llu closed %llu | io %s\n", (unsigned long long)t[0],
		       (unsigned long long)t[1], (unsigned long long)t[2], (unsigned long long)t[3],
		       (unsigned long long)t[4], (unsigned long long)t[5], (unsigned long long)t[6],
		       iostats);
	return ret;
}
