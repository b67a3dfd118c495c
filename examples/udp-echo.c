/* SPDX-License-Identifier: MIT */
/*
 * examples/udp-echo.c - a sockperf server over UDP on pel's io_uring layer: it answers
 * `sockperf ping-pong` and `sockperf under-load`.
 *
 *   udp-echo --port 11111 --cpus 1 --idle spin
 *   taskset -c 0 sockperf ping-pong -i 127.0.0.1 -p 11111 -t 10 --msg-size 64
 *
 * One UDP socket per worker, all bound to the port with SO_REUSEPORT: the kernel spreads the
 * flows over the sockets by their address hash, so each worker receives and answers on its own
 * socket, from its own ring, and no datagram crosses a core. (One socket on worker 0 would
 * serialise every flow on one core and leave the other workers idle.) A flow stays on one
 * socket, so sockperf sees its answers in order.
 *
 * Each worker keeps one multishot recvmsg armed, into its provided buffers. An answer is sent
 * from the buffer the request landed in, with a msghdr from a pel pool; the send's callback
 * releases both. Malformed datagrams (shorter than the header, a length field that is not the
 * datagram's size, or truncated by the buffer) are counted and dropped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>	/* io_uring_recvmsg_*(): the layout of a multishot recvmsg buffer */

#include <pel/pool.h>

#include "echo.h"

#define BUF_COUNT	1024u	/* provided buffers per worker: datagrams waiting for an answer */
#define BUF_SIZE	4096u	/* each holds the recvmsg header, the address, and the datagram */

struct uworker {
	unsigned id;
	int fd;
	struct msghdr rmsg;	/* the multishot's layout: room for an IPv4 name, no control */
	uint64_t handle;	/* of the multishot recvmsg, to cancel it at the end */
	_Atomic uint64_t messages, replies, malformed, dropped, errors;
};

/* One answer in flight: what sendmsg reads until its callback. */
struct reply {
	struct msghdr msg;
	struct iovec iov;
	void *buf;		/* the provided buffer holding the address and the message */
	struct uworker *w;
};

static struct pel_io *io;
static struct pel_pool *replies;
static struct uworker *all;	/* all[w]: worker w's socket and counters */
static atomic_bool stopping;

static void on_recv(const struct pel_io_result *r, void *arg);

static int
arm(struct uworker *w, struct pel_producer *p)
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

static void
on_sent(const struct pel_io_result *r, void *arg)
{
	struct reply *rp = arg;

	echo_count(r->res >= 0 ? &rp->w->replies : &rp->w->errors, 1);
	pel_io_buf_release(io, rp->buf);
	pel_free(replies, rp);
}

/* One datagram of @p w's socket in @p buf (@p len bytes as the kernel laid it out), on worker
 * @p me (w's own, unless the dedicated I/O thread steered it elsewhere): answer it or let it go. */
static void
on_datagram(struct uworker *w, struct uworker *me, void *buf, int len)
{
	struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, len, &w->rmsg);
	struct pel_io_req req;
	struct reply *rp;
	uint8_t *m;
	unsigned n;

	echo_count(&me->messages, 1);
	if (!o || (o->flags & MSG_TRUNC) || o->namelen > w->rmsg.msg_namelen)
		goto malformed;
	m = io_uring_recvmsg_payload(o, &w->rmsg);
	n = io_uring_recvmsg_payload_length(o, len, &w->rmsg);
	if (n < SP_HDR || sp_len(m) != n)
		goto malformed;
	if (!sp_wants_reply(m))
		goto release;
	rp = pel_alloc(replies);
	if (!rp)
		goto dropped;	/* cannot happen: a reply per buffer; counted if it does */
	sp_make_reply(m);
	rp->iov.iov_base = m;
	rp->iov.iov_len = n;
	memset(&rp->msg, 0, sizeof(rp->msg));
	rp->msg.msg_name = io_uring_recvmsg_name(o);
	rp->msg.msg_namelen = o->namelen;
	rp->msg.msg_iov = &rp->iov;
	rp->msg.msg_iovlen = 1;
	rp->buf = buf;
	rp->w = me;
	req = pel_io_req_sendmsg(w->fd, &rp->msg, 0, on_sent, rp);
	if (pel_io_submit(io, NULL, me->id, &req, NULL) == 0)
		return;		/* on_sent() releases the buffer */
	pel_free(replies, rp);
dropped:
	echo_count(&me->dropped, 1);
	goto release;
malformed:
	echo_count(&me->malformed, 1);
release:
	pel_io_buf_release(io, buf);
}

static void
on_recv(const struct pel_io_result *r, void *arg)
{
	struct uworker *w = arg, *me = &all[r->worker];

	if (r->flags & PEL_IO_F_BUFFER)
		on_datagram(w, me, r->buf, r->res);
	else if (r->res < 0 && r->res != -ECANCELED)
		echo_count(&me->errors, 1);
	if (r->flags & PEL_IO_F_MORE)
		return;
	/* the stream ended (an error the layer does not re-arm): in again, unless we stop */
	if (!atomic_load_explicit(&stopping, memory_order_relaxed) && r->res != -ECANCELED &&
	    arm(w, NULL))
		echo_count(&me->errors, 1);
}

static int
udp_socket(unsigned *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(*port),
				 .sin_addr.s_addr = htonl(INADDR_ANY) };
	socklen_t alen = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("udp-echo: socket");
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &alen)) {
		fprintf(stderr, "udp-echo: UDP port %u: %s\n", *port, strerror(errno));
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);	/* port 0: the first socket's, for the others */
	return fd;
}

int
main(int argc, char **argv)
{
	struct echo_opts o = { .prog = "udp-echo" };
	struct pel_producer *p = NULL;
	struct uworker *ws = NULL;
	struct echo_rt e;
	uint64_t t[5] = { 0 };
	char iostats[256];
	unsigned nw = 0;
	int err, sig, ret = 1;
	bool drained = false;

	err = echo_parse(argc, argv, &o);
	if (err)
		return err;
	if (echo_start(&o, BUF_COUNT, BUF_SIZE, &e))
		return 1;
	nw = pel_worker_count(e.rt);
	io = e.io;
	err = pel_pool_create(e.rt, sizeof(struct reply), BUF_COUNT, 0, &replies);
	if (err) {
		fprintf(stderr, "udp-echo: pel_pool_create: %s\n", pel_last_error());
		goto out;
	}
	err = pel_producer_open(e.rt, &p);
	if (err) {
		fprintf(stderr, "udp-echo: pel_producer_open: %s\n", pel_last_error());
		goto out;
	}
	ws = calloc(nw, sizeof(*ws));
	all = ws;
	if (!ws)
		goto out;
	for (unsigned w = 0; w < nw; w++)
		ws[w].fd = -1;
	for (unsigned w = 0; w < nw; w++) {
		ws[w].id = w;
		ws[w].fd = udp_socket(&o.port);
		if (ws[w].fd < 0)
			goto out;
		ws[w].rmsg.msg_namelen = sizeof(struct sockaddr_in);
		err = arm(&ws[w], p);
		if (err) {
			fprintf(stderr, "udp-echo: pel_io_submit: %s\n", pel_last_error());
			goto out;
		}
	}
	printf("udp-echo: serving UDP port %u on %u worker%s\n", o.port, nw, nw > 1 ? "s" : "");
	fflush(stdout);
	sig = echo_wait(&e);
	ret = 0;
	(void)sig;
	/* Quiesce before the summary: cancel the receives (their final callbacks do not re-arm),
	 * then wait until the answers in flight are sent, so the counters are final and the pool
	 * is empty when it goes. */
	atomic_store_explicit(&stopping, true, memory_order_relaxed);
	for (unsigned w = 0; w < nw; w++) {
		struct pel_io_req req = pel_io_req_cancel(ws[w].handle, on_cancelled, NULL);

		while (pel_io_submit(io, p, w, &req, NULL) == -EAGAIN)
			sched_yield();
	}
	err = echo_quiesce(&e, 2 * PEL_NS_PER_S);
	if (err)
		fprintf(stderr, "udp-echo: operations still in flight 2 s after the stop\n");
	drained = !err;
	echo_io_stats(&e, iostats, sizeof(iostats));	/* before pel_destroy() frees them */
out:
	atomic_store_explicit(&stopping, true, memory_order_relaxed);
	if (p)
		pel_producer_close(p);
	if (drained) {
		pel_pool_destroy(replies);	/* empty now */
		replies = NULL;
	}
	pel_destroy(e.rt);
	pel_pool_destroy(replies);	/* not drained: pel_destroy() reclaimed it; the handle */
	for (unsigned w = 0; ws && w < nw; w++) {
		t[0] += echo_get(&ws[w].messages);
		t[1] += echo_get(&ws[w].replies);
		t[2] += echo_get(&ws[w].malformed);
		t[3] += echo_get(&ws[w].dropped);
		t[4] += echo_get(&ws[w].errors);
		if (ws[w].fd >= 0)
			close(ws[w].fd);
	}
	free(ws);
	close(e.sigfd);
	if (ret == 0)
		printf("udp-echo: messages %llu replies %llu malformed %llu dropped %llu errors %llu "
		       "| io %s\n", (unsigned long long)t[0], (unsigned long long)t[1],
		       (unsigned long long)t[2], (unsigned long long)t[3], (unsigned long long)t[4],
		       iostats);
	return ret;
}
