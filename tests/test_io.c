/* SPDX-License-Identifier: MIT */
/*
 * tests/test_io.c - pel/io.h against real fds: config and submit errors first, then every
 * operation (pipes, a temporary file, loopback UDP and TCP), error completions, cancel and
 * timeouts, multishot accept and receive with provided buffers (exhaustion and re-arm, nothing
 * lost), SQ-full backpressure with exact accounting, shutdown with operations pending (each
 * callback runs once, with -ECANCELED, before pel_destroy() returns), an idle worker that
 * enters the kernel no more, and the set-up options (SQPOLL).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/io_uring.h>	/* IORING_SETUP_* to read pel_io_stats().setup_flags */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <pel/io.h>

#include "helpers.h"
#include "on_worker.h"

#define MAXR 256

/* What callbacks saw, in order. */
struct seen {
	_Atomic unsigned n;
	int res[MAXR];
	unsigned flags[MAXR];
	int worker[MAXR];
	void *buf[MAXR];
	char data[MAXR][64];
	uint64_t t[MAXR];
	struct pel_io *release_io;	/* release provided buffers at once (else keep them) */
};

static void
record(const struct pel_io_result *r, void *arg)
{
	struct seen *s = arg;
	unsigned i = atomic_load(&s->n);

	if (i < MAXR) {
		s->res[i] = r->res;
		s->flags[i] = r->flags;
		s->worker[i] = pel_worker_self();
		s->buf[i] = r->buf;
		s->t[i] = now_ns();
		if (r->buf && r->res > 0)
			memcpy(s->data[i], r->buf, r->res < 63 ? (size_t)r->res : 63);
		if (r->buf && s->release_io)
			assert_int_equal(pel_io_buf_release(s->release_io, r->buf), 0);
	}
	atomic_store(&s->n, i + 1);
}

/* 1 when the first @p n results are all @p v. */
static int
s_res_all(const struct seen *s, unsigned n, int v)
{
	for (unsigned i = 0; i < n; i++)
		if (s->res[i] != v)
			return 0;
	return 1;
}

static struct pel_runtime *
rt_on(const char *cpus, enum pel_idle idle)
{
	struct pel_runtime *rt = NULL;
	struct pel_config c;

	quiet_config(&c, cpus, NULL);
	c.idle = idle;
	c.flags = PEL_F_SHARE_CPUS;
	assert_int_equal(pel_create(&c, &rt), 0);
	return rt;
}

/* One worker on the last CPU, BACKOFF; this thread elsewhere when there are two CPUs. */
static struct pel_runtime *
rt_one(void)
{
	return rt_on(online_cpus() >= 2 ? "1" : "0", PEL_IDLE_BACKOFF);
}

/* The mode the tests run in: per-worker, or dedicated with --dedicated (a second test). */
static enum pel_io_mode g_mode = PEL_IO_PER_WORKER;

static void
io_config(struct pel_io_config *ic)
{
	pel_io_config_default(ic);
	ic->mode = g_mode;
}

/* The I/O layer of @p rt as @p ic says; a skip (runtime destroyed) where io_uring or the
 * probed feature is missing here: -ENOSYS, -EPERM, -EOPNOTSUPP. */
static struct pel_io *
io_with(struct pel_runtime *rt, const struct pel_io_config *ic)
{
	struct pel_io *io = NULL;
	int err = pel_io_create(rt, ic, &io);

	if (err == -ENOSYS || err == -EPERM || err == -EOPNOTSUPP) {
		print_message("skip: %s\n", pel_last_error());
		pel_destroy(rt);
		skip();
	}
	if (err)
		fail_msg("pel_io_create: %d %s", err, pel_last_error());
	return io;
}

static struct pel_io *
io_on(struct pel_runtime *rt, unsigned bufs, unsigned buf_size)
{
	struct pel_io_config ic;

	io_config(&ic);
	ic.buf_count = bufs;
	ic.buf_size = buf_size;
	return io_with(rt, &ic);
}

static void
submit_ok(struct pel_io *io, struct pel_producer *p, unsigned w, struct pel_io_req r, uint64_t *h)
{
	int err = pel_io_submit(io, p, w, &r, h);

	if (err)
		fail_msg("pel_io_submit: %d %s", err, pel_last_error());
}

static void
wait_n(struct seen *s, unsigned n)
{
	if (!WAIT_UNTIL(atomic_load(&s->n) >= n, 10000))
		fail_msg("%u callbacks, waited for %u", atomic_load(&s->n), n);
}

/*
 * A nop through @p p to @p w, waited for: every request @p p sent to @p w before it has been handed
 * to the kernel (the ring from p to w is FIFO, and the worker submits in order) and the worker has
 * made at least one pass since. What the tests wait on instead of a sleep.
 */
static void
io_barrier(struct pel_io *io, struct pel_producer *p, unsigned w)
{
	struct seen b = { 0 };
	struct pel_io_req r = pel_io_req_nop(record, &b);
	int err = pel_io_submit(io, p, w, &r, NULL);

	if (err)
		fail_msg("pel_io_submit(nop): %d %s", err, pel_last_error());
	wait_n(&b, 1);
}

/* Wait until worker 0 of @p rt has parked more than @p parks times. */
static void
wait_parks(struct pel_runtime *rt, uint64_t parks)
{
	struct pel_worker_stats ws;

	if (!WAIT_UNTIL(pel_stats(rt, 0, &ws) == 0 && ws.parks > parks, 10000))
		fail_msg("worker 0 parked %llu times, waited for more than %llu",
			 (unsigned long long)ws.parks, (unsigned long long)parks);
}

/* ---- errors ---- */

/* Configs refused with -EINVAL, and what the message names: one field (and a second). */
#define CFG(f)	offsetof(struct pel_io_config, f)
static const struct bad_config {
	enum pel_io_mode mode;
	size_t off;
	int val;
	size_t off2;		/* 0: none */
	int val2;
	const char *msg;
} bad_configs[] = {
	{ PEL_IO_PER_WORKER, CFG(sq_entries), 3, 0, 0, "sq_entries 3" },
	{ PEL_IO_PER_WORKER, CFG(sq_entries), 65536, 0, 0, "sq_entries 65536" },
	{ PEL_IO_PER_WORKER, CFG(cq_entries), 8, 0, 0, "cq_entries 8" },	/* below sq's 256 */
	{ PEL_IO_PER_WORKER, CFG(buf_count), 6, 0, 0, "buf_count 6" },
	{ PEL_IO_PER_WORKER, CFG(buf_size), 100, 0, 0, "with buf_count set" },
	{ PEL_IO_PER_WORKER, CFG(buf_count), 4, CFG(buf_size), (1 << 20) + 1, "buf_size 1048577" },
	{ PEL_IO_PER_WORKER, CFG(flags), 0x80, 0, 0, "unknown bits" },
	{ PEL_IO_PER_WORKER, CFG(reserved[1]), 1, 0, 0, "reserved[1]" },
	{ PEL_IO_PER_WORKER, CFG(napi_busy_poll_us), 1000001, 0, 0, "napi_busy_poll_us" },
	{ PEL_IO_PER_WORKER, CFG(flags), PEL_IO_CF_BUF_INC, 0, 0, "needs provided buffers" },
	{ PEL_IO_PER_WORKER, CFG(flags), PEL_IO_CF_BUF_INC | PEL_IO_CF_RECV_BUNDLE, CFG(buf_count),
	  4, "one or the other" },
	/* the dedicated mode's fields: only with it, and in range */
	{ PEL_IO_PER_WORKER, CFG(io_cpu), 1, 0, 0, "PEL_IO_DEDICATED" },
	{ PEL_IO_PER_WORKER, CFG(steer), PEL_IO_STEER_RR, 0, 0, "PEL_IO_DEDICATED" },
	{ PEL_IO_DEDICATED, CFG(steer), PEL_IO_STEER_JSQ + 1, 0, 0, "pel_io_steer" },
	{ PEL_IO_DEDICATED, CFG(io_cpu), -2, 0, 0, "io_cpu -2" },
	{ PEL_IO_DEDICATED, CFG(io_cpu), 4096, 0, 0, "not online" },
	{ PEL_IO_DEDICATED, CFG(files), 4, 0, 0, "PEL_IO_PER_WORKER" },
	{ (enum pel_io_mode)7, CFG(files), 0, 0, 0, "not a pel_io_mode" },
};
#undef CFG

static void
test_config_errors(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io_config ic;
	struct pel_io *io = (struct pel_io *)1;

	(void)state;
	assert_int_equal(pel_io_create(rt, NULL, NULL), -EINVAL);
	assert_int_equal(pel_io_create(NULL, NULL, &io), -EINVAL);
	assert_null(io);
	for (unsigned i = 0; i < sizeof(bad_configs) / sizeof(bad_configs[0]); i++) {
		const struct bad_config *b = &bad_configs[i];

		pel_io_config_default(&ic);
		ic.mode = b->mode;
		memcpy((char *)&ic + b->off, &b->val, sizeof(b->val));
		if (b->off2)
			memcpy((char *)&ic + b->off2, &b->val2, sizeof(b->val2));
		io = NULL;
		if (pel_io_create(rt, &ic, &io) != -EINVAL || io)
			fail_msg("bad config %u (%s) was not refused with -EINVAL", i, b->msg);
		assert_error_contains(b->msg);
	}
	/* the smallest legal rings work; a second layer is refused */
	pel_io_config_default(&ic);
	ic.sq_entries = 1;
	ic.cq_entries = 1;
	ic.max_ops = 1;
	ic.buf_count = 1;
	ic.buf_size = 1;
	assert_int_equal(pel_io_create(rt, &ic, &io), 0);
	assert_non_null(io);
	assert_int_equal(pel_io_create(rt, NULL, &io), -EEXIST);
	pel_destroy(rt);
}


static _Atomic int task_err;

static void
create_from_task(void *arg)
{
	struct pel_io *io;

	(void)arg;
	atomic_store(&task_err, pel_io_create((struct pel_runtime *)arg, NULL, &io));
}

static void
test_submit_errors(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io *io = io_on(rt, 0, 0);
	struct pel_producer *p;
	struct pel_io_req r;
	struct seen s = { 0 };
	char b[8];

	(void)state;
	on_worker(rt, 0, create_from_task, rt);
	assert_int_equal(atomic_load(&task_err), -EDEADLK);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	r = pel_io_req_nop(record, &s);
	assert_int_equal(pel_io_submit(NULL, p, 0, &r, NULL), -EINVAL);
	assert_int_equal(pel_io_submit(io, p, 0, NULL, NULL), -EINVAL);
	assert_int_equal(pel_io_submit(io, p, 1, &r, NULL), -EINVAL);
	assert_int_equal(pel_io_submit(io, NULL, 0, &r, NULL), -EPERM);
	r = pel_io_req_nop(NULL, &s);
	assert_int_equal(pel_io_submit(io, p, 0, &r, NULL), -EINVAL);
	assert_error_contains("callback is NULL");
	r = pel_io_req_nop(record, &s);
	r.opcode = PEL__IO_OPS;
	assert_int_equal(pel_io_submit(io, p, 0, &r, NULL), -EINVAL);
	r = pel_io_req_read(0, b, sizeof(b), 0, record, &s);
	r.flags = PEL_IO_REQ_MULTISHOT;
	assert_int_equal(pel_io_submit(io, p, 0, &r, NULL), -EINVAL);
	r.flags = 0x40;
	assert_int_equal(pel_io_submit(io, p, 0, &r, NULL), -EINVAL);
	r = pel_io_req_recv_multishot(0, 0, record, &s);
	assert_int_equal(pel_io_submit(io, p, 0, &r, NULL), -ENOBUFS);
	assert_error_contains("buf_count");
	r = pel_io_req_connect(0, NULL, 0, record, &s);
	assert_int_equal(pel_io_submit(io, p, 0, &r, NULL), -EINVAL);
	assert_int_equal(pel_io_buf_release(io, b), -EINVAL);
	{
		/* a closed producer handle is refused, nothing queued */
		struct pel_producer *q;

		assert_int_equal(pel_producer_open(rt, &q), 0);
		pel_producer_close(q);
		r = pel_io_req_nop(record, &s);
		assert_int_equal(pel_io_submit(io, q, 0, &r, NULL), -EINVAL);
	}
	/* nothing refused ever calls back (a pass of the worker later) */
	io_barrier(io, p, 0);
	assert_int_equal(atomic_load(&s.n), 0);
	pel_destroy(rt);
	/* after destroy a producer still holding both gets -ESHUTDOWN, nothing touched */
	r = pel_io_req_nop(record, &s);
	assert_int_equal(pel_io_submit(io, p, 0, &r, NULL), -ESHUTDOWN);
	assert_int_equal(atomic_load(&s.n), 0);
	pel_producer_close(p);
}

/* ---- operations ---- */

static void
test_nop_from_producer_and_task(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io *io = io_on(rt, 0, 0);
	struct pel_producer *p;
	struct pel_io_stats st;
	struct seen s = { 0 };
	uint64_t h1 = 0, h2 = 0;

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	submit_ok(io, p, 0, pel_io_req_nop(record, &s), &h1);
	submit_ok(io, p, 0, pel_io_req_nop(record, &s), &h2);
	assert_true(h1 != 0 && h2 != 0 && h1 != h2);
	wait_n(&s, 2);
	assert_int_equal(s.res[0], 0);
	assert_int_equal(s.worker[0], 0);
	assert_int_equal(s.flags[0], 0);
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	assert_int_equal(st.completed, 2);
	assert_true(st.submitted >= 2);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(pel_io_stats(io, 1, &st), -EINVAL);
	print_message("ring set up with flags 0x%x, features 0x%x\n", st.setup_flags, st.features);
	pel_producer_close(p);
	pel_destroy(rt);
}

static void
test_pipe_and_file(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io *io = io_on(rt, 0, 0);
	struct pel_producer *p;
	struct seen s = { 0 };
	char out[16] = { 0 }, in2[16] = { 0 };
	char path[] = "/tmp/pel-io-test-XXXXXX";
	int fds[2], f;

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	assert_int_equal(pipe(fds), 0);
	/* a read first: it completes when the write lands */
	submit_ok(io, p, 0, pel_io_req_read(fds[0], out, sizeof(out), (uint64_t)-1, record, &s),
		  NULL);
	submit_ok(io, p, 0, pel_io_req_write(fds[1], "hello", 5, (uint64_t)-1, record, &s), NULL);
	wait_n(&s, 2);
	assert_int_equal(s.res[0] + s.res[1], 10);
	assert_memory_equal(out, "hello", 5);
	/* a file, at offsets */
	f = mkstemp(path);
	assert_true(f >= 0);
	unlink(path);
	submit_ok(io, p, 0, pel_io_req_write(f, "abcdefgh", 8, 100, record, &s), NULL);
	wait_n(&s, 3);
	assert_int_equal(s.res[2], 8);
	submit_ok(io, p, 0, pel_io_req_read(f, in2, 4, 102, record, &s), NULL);
	wait_n(&s, 4);
	assert_int_equal(s.res[3], 4);
	assert_memory_equal(in2, "cdef", 4);
	/* poll: readable once written */
	submit_ok(io, p, 0, pel_io_req_poll(fds[0], POLLIN, 0, record, &s), NULL);
	io_barrier(io, p, 0);	/* the poll is armed, and has not fired */
	assert_int_equal(atomic_load(&s.n), 4);
	assert_int_equal(write(fds[1], "x", 1), 1);
	wait_n(&s, 5);
	assert_true(s.res[4] & POLLIN);
	/* close through the ring; then a read of the closed fd fails with -EBADF */
	submit_ok(io, p, 0, pel_io_req_close(f, record, &s), NULL);
	wait_n(&s, 6);
	assert_int_equal(s.res[5], 0);
	submit_ok(io, p, 0, pel_io_req_read(f, in2, 4, 0, record, &s), NULL);
	wait_n(&s, 7);
	assert_int_equal(s.res[6], -EBADF);
	close(fds[0]);
	close(fds[1]);
	pel_producer_close(p);
	pel_destroy(rt);
}

static int
udp_socket(struct sockaddr_in *a)
{
	socklen_t len = sizeof(*a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)a, sizeof(*a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)a, &len), 0);
	return fd;
}

static void
test_udp_msg(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io *io = io_on(rt, 0, 0);
	struct pel_producer *p;
	struct seen s = { 0 };
	struct sockaddr_in a, b, from;
	char rbuf[32] = { 0 }, sbuf[] = "datagram";
	struct iovec riov = { rbuf, sizeof(rbuf) }, siov = { sbuf, 8 };
	struct msghdr rm = { 0 }, sm = { 0 };
	int fa = udp_socket(&a), fb = udp_socket(&b);

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	rm.msg_name = &from;
	rm.msg_namelen = sizeof(from);
	rm.msg_iov = &riov;
	rm.msg_iovlen = 1;
	sm.msg_name = &b;
	sm.msg_namelen = sizeof(b);
	sm.msg_iov = &siov;
	sm.msg_iovlen = 1;
	submit_ok(io, p, 0, pel_io_req_recvmsg(fb, &rm, 0, record, &s), NULL);
	submit_ok(io, p, 0, pel_io_req_sendmsg(fa, &sm, 0, record, &s), NULL);
	wait_n(&s, 2);
	assert_int_equal(s.res[0], 8);
	assert_int_equal(s.res[1], 8);
	assert_memory_equal(rbuf, "datagram", 8);
	assert_int_equal(from.sin_port, a.sin_port);
	/* connected: plain send and recv */
	assert_int_equal(connect(fa, (struct sockaddr *)&b, sizeof(b)), 0);
	submit_ok(io, p, 0, pel_io_req_recv(fb, rbuf, sizeof(rbuf), 0, record, &s), NULL);
	submit_ok(io, p, 0, pel_io_req_send(fa, "two", 3, 0, record, &s), NULL);
	wait_n(&s, 4);
	assert_int_equal(s.res[2] + s.res[3], 6);
	assert_memory_equal(rbuf, "two", 3);
	close(fa);
	close(fb);
	pel_producer_close(p);
	pel_destroy(rt);
}

static int
tcp_listener(struct sockaddr_in *a)
{
	socklen_t len = sizeof(*a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)a, sizeof(*a)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)a, &len), 0);
	return fd;
}

static void
test_tcp_accept_connect_multishot(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io *io = io_on(rt, 16, 64);
	struct pel_producer *p;
	struct seen acc = { 0 }, con = { 0 }, rx = { 0 };
	struct sockaddr_in a, none;
	int lfd = tcp_listener(&a), c[3], refused;
	uint64_t h;

	(void)state;
	rx.release_io = io;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	submit_ok(io, p, 0, pel_io_req_accept(lfd, PEL_IO_REQ_MULTISHOT, record, &acc), &h);
	for (unsigned i = 0; i < 3; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		submit_ok(io, p, 0, pel_io_req_connect(c[i], (struct sockaddr *)&a, sizeof(a), record,
						       &con), NULL);
	}
	wait_n(&con, 3);
	wait_n(&acc, 3);
	for (unsigned i = 0; i < 3; i++) {
		if (con.res[i])
			print_message("connect %u: %d (port %u)\n", i, con.res[i], ntohs(a.sin_port));
		assert_int_equal(con.res[i], 0);
		assert_true(acc.res[i] >= 0);
		assert_true(acc.flags[i] & PEL_IO_F_MORE);
	}
	/* a multishot receive on the first accepted connection, into provided buffers */
	submit_ok(io, p, 0, pel_io_req_recv_multishot(acc.res[0], 0, record, &rx), NULL);
	for (unsigned i = 0; i < 20; i++) {
		char m[8];

		snprintf(m, sizeof(m), "m%02u", i);
		assert_int_equal(write(c[0], m, 3), 3);
		WAIT_UNTIL(atomic_load(&rx.n) > i, 1000);
	}
	wait_n(&rx, 20);
	for (unsigned i = 0; i < 20; i++) {
		assert_true(rx.flags[i] & PEL_IO_F_BUFFER);
		assert_true(rx.flags[i] & PEL_IO_F_MORE);
	}
	/* the peer goes: a 0 without MORE ends the stream */
	close(c[0]);
	wait_n(&rx, 21);
	assert_int_equal(rx.res[20], 0);
	assert_false(rx.flags[20] & PEL_IO_F_MORE);
	/* cancel the multishot accept: a final -ECANCELED, never a silent end */
	submit_ok(io, p, 0, pel_io_req_cancel(h, record, &con), NULL);
	wait_n(&acc, 4);
	assert_int_equal(acc.res[3], -ECANCELED);
	assert_false(acc.flags[3] & PEL_IO_F_MORE);
	wait_n(&con, 4);
	assert_int_equal(con.res[3], 0);
	/* a refused connect is an error completion (the ring held the listener until then) */
	close(lfd);
	refused = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	none = a;
	submit_ok(io, p, 0, pel_io_req_connect(refused, (struct sockaddr *)&none, sizeof(none),
					       record, &con), NULL);
	wait_n(&con, 5);
	assert_int_equal(con.res[4], -ECONNREFUSED);
	for (unsigned i = 0; i < 3; i++) {
		close(acc.res[i]);
		close(c[i]);
	}
	close(refused);
	pel_producer_close(p);
	pel_destroy(rt);
}

static void
test_buffers_exhausted_then_rearmed(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io *io = io_on(rt, 4, 32);
	struct pel_producer *p;
	struct pel_io_stats st;
	struct seen rx = { 0 };
	struct sockaddr_in a, b;
	int fa = udp_socket(&a), fb = udp_socket(&b);
	bool got[40] = { 0 };

	(void)state;
	/* keep the buffers: after 4 datagrams the ring is dry */
	assert_int_equal(pel_producer_open(rt, &p), 0);
	submit_ok(io, p, 0, pel_io_req_recv_multishot(fb, 0, record, &rx), NULL);
	io_barrier(io, p, 0);	/* the receive is armed */
	for (unsigned i = 0; i < 40; i++) {
		char m[8];

		snprintf(m, sizeof(m), "d%02u", i);
		assert_int_equal(sendto(fa, m, 4, 0, (struct sockaddr *)&b, sizeof(b)), 4);
	}
	wait_n(&rx, 4);
	assert_true(WAIT_UNTIL(pel_io_stats(io, 0, &st) == 0 && st.nobufs >= 1, 5000));
	io_barrier(io, p, 0);	/* passes later, still no buffer: nothing more arrived */
	assert_int_equal(atomic_load(&rx.n), 4);
	/* give them back from this thread (the worker's release stack): the receive re-arms and
	 * the rest, queued in the socket, arrive; nothing is lost */
	rx.release_io = io;
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(pel_io_buf_release(io, rx.buf[i]), 0);
	if (!WAIT_UNTIL(atomic_load(&rx.n) >= 40, 5000)) {
		pel_io_stats(io, 0, &st);
		fail_msg("%u of 40 datagrams; nobufs %llu rearms %llu inflight %llu", atomic_load(&rx.n),
			 (unsigned long long)st.nobufs, (unsigned long long)st.rearms,
			 (unsigned long long)st.inflight);
	}
	for (unsigned i = 0; i < 40; i++) {
		unsigned k;

		assert_int_equal(rx.res[i], 4);
		assert_int_equal(sscanf(rx.data[i], "d%02u", &k), 1);
		assert_false(got[k]);
		got[k] = true;
	}
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	assert_true(st.rearms >= 1);
	print_message("40 datagrams through 4 buffers: %llu stops for want of buffers, %llu "
		      "re-arms\n", (unsigned long long)st.nobufs, (unsigned long long)st.rearms);
	close(fa);
	close(fb);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* A multishot receive stopped for buffers is not in the kernel: its cancel is pel's. */
static void
test_cancel_receive_waiting_for_buffers(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io *io = io_on(rt, 1, 32);
	struct pel_producer *p;
	struct pel_io_stats st;
	struct seen rx = { 0 }, c = { 0 };
	struct sockaddr_in a, b;
	int fa = udp_socket(&a), fb = udp_socket(&b);
	uint64_t h;

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	submit_ok(io, p, 0, pel_io_req_recv_multishot(fb, 0, record, &rx), &h);
	io_barrier(io, p, 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(sendto(fa, "abc", 3, 0, (struct sockaddr *)&b, sizeof(b)), 3);
	wait_n(&rx, 1);
	assert_true(WAIT_UNTIL(pel_io_stats(io, 0, &st) == 0 && st.nobufs >= 1, 5000));
	submit_ok(io, p, 0, pel_io_req_cancel(h, record, &c), NULL);
	wait_n(&c, 1);
	wait_n(&rx, 2);
	assert_int_equal(c.res[0], 0);
	assert_int_equal(rx.res[1], -ECANCELED);
	assert_false(rx.flags[1] & PEL_IO_F_MORE);
	assert_int_equal(pel_io_buf_release(io, rx.buf[0]), 0);
	assert_true(WAIT_UNTIL(pel_io_stats(io, 0, &st) == 0 && st.inflight == 0, 5000));
	close(fa);
	close(fb);
	pel_producer_close(p);
	pel_destroy(rt);
}

static void
test_timeouts_and_cancel(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io *io = io_on(rt, 0, 0);
	struct pel_producer *p;
	struct seen t = { 0 }, c = { 0 };
	struct timespec ts;
	uint64_t h_long, start = now_ns(), abs_at;

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	abs_at = (uint64_t)ts.tv_sec * PEL_NS_PER_S + (uint64_t)ts.tv_nsec + 30 * PEL_NS_PER_MS;
	submit_ok(io, p, 0, pel_io_req_timeout(50 * PEL_NS_PER_MS, 0, record, &t), NULL);
	submit_ok(io, p, 0, pel_io_req_timeout(5 * PEL_NS_PER_MS, 0, record, &t), NULL);
	submit_ok(io, p, 0, pel_io_req_timeout(abs_at, PEL_IO_REQ_ABS, record, &t), NULL);
	submit_ok(io, p, 0, pel_io_req_timeout(60 * PEL_NS_PER_S, 0, record, &t), &h_long);
	wait_n(&t, 3);
	/* in deadline order, never early */
	assert_int_equal(s_res_all(&t, 3, -ETIME), 1);
	assert_true(t.t[0] - start >= 5 * PEL_NS_PER_MS);
	assert_true(t.t[1] >= t.t[0] && t.t[2] >= t.t[1]);
	assert_true(t.t[2] - start >= 50 * PEL_NS_PER_MS);
	/* cancel the long one by its handle */
	submit_ok(io, p, 0, pel_io_req_cancel(h_long, record, &c), NULL);
	wait_n(&t, 4);
	wait_n(&c, 1);
	assert_int_equal(t.res[3], -ECANCELED);
	assert_int_equal(c.res[0], 0);
	/* a handle that finished, or a made-up one: -ENOENT */
	submit_ok(io, p, 0, pel_io_req_cancel(h_long, record, &c), NULL);
	submit_ok(io, p, 0, pel_io_req_cancel(12345, record, &c), NULL);
	wait_n(&c, 3);
	assert_int_equal(c.res[1], -ENOENT);
	assert_int_equal(c.res[2], -ENOENT);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* ---- backpressure ---- */

struct burst {
	struct pel_io *io;
	struct seen *s;
	unsigned n;
	_Atomic int err;
};

static void
nops_from_task(void *arg)
{
	struct burst *b = arg;

	for (unsigned i = 0; i < b->n; i++) {
		struct pel_io_req r = pel_io_req_nop(record, b->s);
		int err = pel_io_submit(b->io, NULL, 0, &r, NULL);

		if (err)
			atomic_store(&b->err, err);
	}
}

static void
test_sq_full_keeps_order(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io_config ic;
	struct pel_io *io;
	struct pel_io_stats st;
	struct seen s = { 0 };
	struct burst b = { .s = &s, .n = 200 };
	int err;

	(void)state;
	io_config(&ic);
	ic.sq_entries = 2;
	ic.cq_entries = 4;
	err = pel_io_create(rt, &ic, &io);
	if (err == -ENOSYS || err == -EPERM)
		skip();
	assert_int_equal(err, 0);
	b.io = io;
	/* 200 nops in one task, on a ring of 2 SQ and 4 CQ entries: every one completes */
	on_worker(rt, 0, nops_from_task, &b);
	assert_int_equal(atomic_load(&b.err), 0);
	wait_n(&s, 200);
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	assert_int_equal(st.completed, 200);
	assert_true(st.sq_full > 0);
	assert_int_equal(st.inflight, 0);
	print_message("200 nops through a 2-entry SQ: %llu waited for room, %llu enters, %llu CQ "
		      "overflow flushes\n", (unsigned long long)st.sq_full,
		      (unsigned long long)st.enters, (unsigned long long)st.cq_overflow);
	pel_destroy(rt);
}

/* ---- shutdown ---- */

static void
test_destroy_cancels_pending(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io *io = io_on(rt, 8, 64);
	struct pel_producer *p;
	struct seen s = { 0 };
	struct sockaddr_in a;
	char buf[16];
	int fd = udp_socket(&a), fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	submit_ok(io, p, 0, pel_io_req_recv(fd, buf, sizeof(buf), 0, record, &s), NULL);
	submit_ok(io, p, 0, pel_io_req_recv_multishot(fd, 0, record, &s), NULL);
	submit_ok(io, p, 0, pel_io_req_read(fds[0], buf, sizeof(buf), (uint64_t)-1, record, &s),
		  NULL);
	submit_ok(io, p, 0, pel_io_req_timeout(3600 * PEL_NS_PER_S, 0, record, &s), NULL);
	io_barrier(io, p, 0);	/* all four are in the kernel, none has completed */
	assert_int_equal(atomic_load(&s.n), 0);
	pel_producer_close(p);
	pel_destroy(rt);
	/* every callback ran, once, with -ECANCELED (the read of a pipe may say -EINTR) */
	assert_int_equal(atomic_load(&s.n), 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_true(s.res[i] == -ECANCELED || s.res[i] == -EINTR);
		assert_false(s.flags[i] & PEL_IO_F_MORE);
	}
	close(fd);
	close(fds[0]);
	close(fds[1]);
}

/* ---- idle ---- */

static void
test_idle_worker_enters_no_more(void **state)
{
	struct pel_runtime *rt = rt_on(online_cpus() >= 2 ? "1" : "0",
				       online_cpus() >= 2 ? PEL_IDLE_SPIN : PEL_IDLE_BACKOFF);
	struct pel_io *io = io_on(rt, 0, 0);
	struct pel_producer *p;
	struct pel_io_stats st1, st2;
	struct seen s = { 0 };

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	submit_ok(io, p, 0, pel_io_req_nop(record, &s), NULL);
	wait_n(&s, 1);
	usleep(10000);	/* the rest of the pass that ran the callback */
	assert_int_equal(pel_io_stats(io, 0, &st1), 0);
	usleep(200000);	/* the window measured */
	assert_int_equal(pel_io_stats(io, 0, &st2), 0);
	/* 200 ms of polling its CQ: not one io_uring_enter() */
	assert_int_equal(st2.enters, st1.enters);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* ---- a PARK worker with I/O sleeps in its ring ---- */

static _Atomic int plain_ran;

static void
plain_task(void *arg)
{
	(void)arg;
	atomic_store(&plain_ran, 1);
}

static void
test_park_worker_sleeps_in_ring(void **state)
{
	struct pel_runtime *rt = rt_on(online_cpus() >= 2 ? "1" : "0", PEL_IDLE_PARK);
	struct pel_io *io = io_on(rt, 0, 0);
	struct pel_producer *p;
	struct pel_io_stats st;
	struct pel_worker_stats ws0, ws1;
	struct seen s = { 0 };
	uint64_t start;

	(void)state;
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	if (!st.parks_in_ring) {
		print_message("skip: this kernel has no IORING_OP_FUTEX_WAIT (Linux 6.7): a worker "
			      "with I/O yields instead of parking\n");
		pel_destroy(rt);
		skip();
	}
	assert_int_equal(pel_producer_open(rt, &p), 0);
	wait_parks(rt, 0);
	assert_int_equal(pel_stats(rt, 0, &ws0), 0);
	/* parked: a completion wakes it (the timeout), never early */
	start = now_ns();
	submit_ok(io, p, 0, pel_io_req_timeout(30 * PEL_NS_PER_MS, 0, record, &s), NULL);
	wait_n(&s, 1);
	assert_int_equal(s.res[0], -ETIME);
	assert_true(s.t[0] - start >= 30 * PEL_NS_PER_MS);
	/* it parked again after the timeout; a plain task wakes it too (the producer's futex
	 * wake completes the ring's wait) */
	wait_parks(rt, ws0.parks);
	assert_int_equal(pel_stats(rt, 0, &ws1), 0);
	assert_int_equal(pel_submit(p, 0, plain_task, NULL), 0);
	assert_true(WAIT_UNTIL(atomic_load(&plain_ran), 5000));
	wait_parks(rt, ws1.parks);
	/* asleep, not spinning: 100 ms idle take a handful of loop passes, not millions */
	assert_int_equal(pel_stats(rt, 0, &ws0), 0);
	usleep(100000);	/* the window measured */
	assert_int_equal(pel_stats(rt, 0, &ws1), 0);
	assert_true(ws1.idle_loops - ws0.idle_loops < 1000);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* ---- set-up options: SQPOLL ---- */

/* The SQ thread spins too: on the CPU this thread naps on (0), the worker on the last one. */
#define SQ_CPU		0
#define SQ_IDLE_MS	50u

static void
test_sqpoll_config_errors(void **state)
{
	struct pel_runtime *rt = rt_one(), *own = NULL;
	struct pel_io_config ic;
	struct pel_io *io = NULL;
	struct pel_config c;

	(void)state;
	pel_io_config_default(&ic);
	assert_int_equal(ic.sqpoll_cpu, -1);
	ic.sqpoll_idle_ms = 10;		/* without the flag */
	assert_int_equal(pel_io_create(rt, &ic, &io), -EINVAL);
	assert_error_contains("only with PEL_IO_CF_SQPOLL");
	pel_io_config_default(&ic);
	ic.sqpoll_cpu = 1;
	assert_int_equal(pel_io_create(rt, &ic, &io), -EINVAL);
	assert_error_contains("sqpoll_cpu 1");
	pel_io_config_default(&ic);
	ic.flags = PEL_IO_CF_SQPOLL;
	ic.sqpoll_cpu = 4000;
	assert_int_equal(pel_io_create(rt, &ic, &io), -EINVAL);
	assert_error_contains("sqpoll_cpu 4000 is not online (online: ");
	ic.sqpoll_cpu = -2;
	assert_int_equal(pel_io_create(rt, &ic, &io), -EINVAL);
	assert_error_contains("sqpoll_cpu -2");
	ic.sqpoll_cpu = -1;
	ic.sqpoll_idle_ms = 60001;
	assert_int_equal(pel_io_create(rt, &ic, &io), -EINVAL);
	assert_error_contains("sqpoll_idle_ms 60001");
	assert_null(io);
	pel_destroy(rt);
	/* pinned to a spinning worker's CPU, without PEL_F_SHARE_CPUS: refused */
	quiet_config(&c, online_cpus() >= 2 ? "1" : "0", NULL);
	assert_int_equal(pel_create(&c, &own), 0);
	pel_io_config_default(&ic);
	ic.flags = PEL_IO_CF_SQPOLL;
	ic.sqpoll_cpu = pel_worker_cpu(own, 0);
	assert_int_equal(pel_io_create(own, &ic, &io), -EINVAL);
	assert_error_contains("is worker 0's CPU");
	pel_destroy(own);
}

/* A runtime with SQPOLL on its one worker, the SQ thread on SQ_CPU; skips where it cannot be. */
static struct pel_io *
io_sqpoll(struct pel_runtime *rt)
{
	struct pel_io_config ic;
	struct pel_io *io = NULL;
	int err;

	if (online_cpus() < 2) {
		print_message("skip: SQPOLL's thread spins: it needs a CPU besides the worker's\n");
		pel_destroy(rt);
		skip();
	}
	pel_io_config_default(&ic);
	ic.flags = PEL_IO_CF_SQPOLL;
	ic.sqpoll_cpu = SQ_CPU;
	ic.sqpoll_idle_ms = SQ_IDLE_MS;
	err = pel_io_create(rt, &ic, &io);
	if (err == -ENOSYS || err == -EPERM) {
		print_message("skip: %s\n", pel_last_error());
		pel_destroy(rt);
		skip();
	}
	if (err)
		fail_msg("pel_io_create: %d %s", err, pel_last_error());
	return io;
}

static void
test_sqpoll_nop_and_udp(void **state)
{
	/* SPIN: a parking worker's enter would wake the SQ thread itself (liburing does it) */
	struct pel_runtime *rt = rt_on(online_cpus() >= 2 ? "1" : "0", PEL_IDLE_SPIN);
	struct pel_io *io = io_sqpoll(rt);
	struct pel_producer *p;
	struct pel_io_stats st, st1, st2;
	struct seen s = { 0 }, u = { 0 };
	struct sockaddr_in a, b;
	char rbuf[32] = { 0 };
	int fa = udp_socket(&a), fb = udp_socket(&b);

	(void)state;
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	print_message("SQPOLL ring: setup flags 0x%x\n", st.setup_flags);
	assert_true(st.setup_flags & IORING_SETUP_SQPOLL);
	assert_true(st.setup_flags & IORING_SETUP_SQ_AFF);
	assert_false(st.setup_flags & (IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN |
				       IORING_SETUP_TASKRUN_FLAG));
	assert_int_equal(st.sqpoll_cpu, SQ_CPU);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	/* a nop round trip */
	submit_ok(io, p, 0, pel_io_req_nop(record, &s), NULL);
	wait_n(&s, 1);
	assert_int_equal(s.res[0], 0);
	/* the SQ thread is awake now: 50 round trips, no enter to submit them */
	assert_int_equal(pel_io_stats(io, 0, &st1), 0);
	for (unsigned i = 1; i <= 50; i++) {
		submit_ok(io, p, 0, pel_io_req_nop(record, &s), NULL);
		wait_n(&s, 1 + i);
	}
	assert_int_equal(pel_io_stats(io, 0, &st2), 0);
	print_message("50 nop round trips with the SQ thread awake: %llu enters, %llu submitted\n",
		      (unsigned long long)(st2.enters - st1.enters),
		      (unsigned long long)(st2.submitted - st1.submitted));
	assert_int_equal(st2.submitted - st1.submitted, 50);
	assert_true(st2.enters - st1.enters <= 2);	/* a stall past SQ_IDLE_MS may wake it */
	/* asleep after its idle time: the next submit wakes it with one enter */
	usleep(3 * SQ_IDLE_MS * 1000);
	assert_int_equal(pel_io_stats(io, 0, &st1), 0);
	submit_ok(io, p, 0, pel_io_req_nop(record, &s), NULL);
	wait_n(&s, 52);
	assert_int_equal(pel_io_stats(io, 0, &st2), 0);
	assert_int_equal(st2.sq_wakeups - st1.sq_wakeups, 1);
	assert_int_equal(st2.enters - st1.enters, 1);
	/* UDP: a receive armed first, then the send, both through the SQ thread */
	assert_int_equal(connect(fa, (struct sockaddr *)&b, sizeof(b)), 0);
	submit_ok(io, p, 0, pel_io_req_recv(fb, rbuf, sizeof(rbuf), 0, record, &u), NULL);
	io_barrier(io, p, 0);	/* the receive is in the kernel, and waits */
	assert_int_equal(atomic_load(&u.n), 0);
	submit_ok(io, p, 0, pel_io_req_send(fa, "sqpoll", 6, 0, record, &u), NULL);
	wait_n(&u, 2);
	assert_int_equal(u.res[0] + u.res[1], 12);
	assert_memory_equal(rbuf, "sqpoll", 6);
	/* and a receive that waits while the SQ thread sleeps: its datagram still completes it */
	submit_ok(io, p, 0, pel_io_req_recv(fb, rbuf, sizeof(rbuf), 0, record, &u), NULL);
	usleep(3 * SQ_IDLE_MS * 1000);
	assert_int_equal(send(fa, "late", 4, 0), 4);
	wait_n(&u, 3);
	assert_int_equal(u.res[2], 4);
	assert_memory_equal(rbuf, "late", 4);
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	assert_int_equal(st.inflight, 0);
	close(fa);
	close(fb);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* A PARK worker sleeps in its SQPOLL ring: a timeout wakes it, a pending op is cancelled. */
static void
test_sqpoll_park_and_destroy(void **state)
{
	struct pel_runtime *rt = rt_on(online_cpus() >= 2 ? "1" : "0", PEL_IDLE_PARK);
	struct pel_io *io = io_sqpoll(rt);
	struct pel_producer *p;
	struct seen s = { 0 };
	struct sockaddr_in a;
	char buf[8];
	int fd = udp_socket(&a);
	struct pel_io_stats st;
	uint64_t start;

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	if (pel_io_stats(io, 0, &st) == 0 && st.parks_in_ring)
		wait_parks(rt, 0);	/* asleep in its ring when the timeout is submitted */
	start = now_ns();
	submit_ok(io, p, 0, pel_io_req_timeout(20 * PEL_NS_PER_MS, 0, record, &s), NULL);
	wait_n(&s, 1);
	assert_int_equal(s.res[0], -ETIME);
	assert_true(s.t[0] - start >= 20 * PEL_NS_PER_MS);
	submit_ok(io, p, 0, pel_io_req_recv(fd, buf, sizeof(buf), 0, record, &s), NULL);
	io_barrier(io, p, 0);	/* the receive is in the kernel when destroy comes */
	pel_producer_close(p);
	pel_destroy(rt);
	assert_int_equal(atomic_load(&s.n), 2);
	assert_int_equal(s.res[1], -ECANCELED);
	close(fd);
}

/* ---- set-up options: registered files ---- */

struct files_ctx {
	struct pel_io *io;
	int fd[4];
	int idx[4];
	int err_full, err_unreg, err_bad, err_twice;
};

static void
register_files_task(void *arg)
{
	struct files_ctx *f = arg;

	for (unsigned i = 0; i < 4; i++)
		f->idx[i] = pel_io_file_register(f->io, 0, f->fd[i]);
	f->err_full = pel_io_file_register(f->io, 0, f->fd[0]);	/* 4 slots, all used */
	f->err_bad = pel_io_file_register(f->io, 0, -1);
}

static void
unregister_file_task(void *arg)
{
	struct files_ctx *f = arg;

	f->err_unreg = pel_io_file_unregister(f->io, 0, (unsigned)f->idx[3]);
	f->err_twice = pel_io_file_unregister(f->io, 0, (unsigned)f->idx[3]);
}

static void
test_fixed_files(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io_config ic;
	struct pel_io *io = NULL;
	struct pel_producer *p;
	struct pel_io_stats st;
	struct pel_io_req r;
	struct seen s = { 0 };
	struct files_ctx f = { 0 };
	struct sockaddr_in a, b;
	char out[16] = { 0 }, rbuf[16] = { 0 };
	int fds[2], ua, ub, err;

	(void)state;
	pel_io_config_default(&ic);
	ic.files = 32769;
	assert_int_equal(pel_io_create(rt, &ic, &io), -EINVAL);
	assert_error_contains("files 32769");
	ic.files = 4;
	err = pel_io_create(rt, &ic, &io);
	if (err == -ENOSYS || err == -EPERM) {
		print_message("skip: %s\n", pel_last_error());
		pel_destroy(rt);
		skip();
	}
	if (err == -EINVAL) {
		print_message("skip: %s\n", pel_last_error());	/* a kernel without file tables */
		pel_destroy(rt);
		skip();
	}
	assert_int_equal(err, 0);
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	assert_int_equal(st.files, 4);
	assert_int_equal(st.files_used, 0);
	/* only the ring's owner registers */
	assert_int_equal(pel_io_file_register(io, 0, 0), -EPERM);
	assert_error_contains("from a task on worker 0");
	assert_int_equal(pel_io_file_register(io, 1, 0), -EINVAL);
	assert_int_equal(pel_io_file_register(NULL, 0, 0), -EINVAL);
	assert_int_equal(pipe(fds), 0);
	ua = udp_socket(&a);
	ub = udp_socket(&b);
	assert_int_equal(connect(ua, (struct sockaddr *)&b, sizeof(b)), 0);
	f.io = io;
	f.fd[0] = fds[0];
	f.fd[1] = fds[1];
	f.fd[2] = ub;
	f.fd[3] = ua;
	on_worker(rt, 0, register_files_task, &f);
	for (unsigned i = 0; i < 4; i++)
		assert_true(f.idx[i] >= 0 && f.idx[i] < 4);
	assert_true(f.idx[0] != f.idx[1] && f.idx[2] != f.idx[3]);
	assert_int_equal(f.err_full, -ENOSPC);
	assert_int_equal(f.err_bad, -EBADF);
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	assert_int_equal(st.files_used, 4);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	/* submit checks: an index out of range, an opcode without an fd */
	r = pel_io_req_read(4, out, sizeof(out), (uint64_t)-1, record, &s);
	r.flags = PEL_IO_REQ_FIXED_FILE;
	assert_int_equal(pel_io_submit(io, p, 0, &r, NULL), -EINVAL);
	assert_error_contains("index 4 is outside 0..3");
	r = pel_io_req_close(0, record, &s);
	r.flags = PEL_IO_REQ_FIXED_FILE;
	assert_int_equal(pel_io_submit(io, p, 0, &r, NULL), -EINVAL);
	/* a pipe through its slots: the read first, the write completes it */
	r = pel_io_req_read(f.idx[0], out, sizeof(out), (uint64_t)-1, record, &s);
	r.flags = PEL_IO_REQ_FIXED_FILE;
	submit_ok(io, p, 0, r, NULL);
	r = pel_io_req_write(f.idx[1], "fixed", 5, (uint64_t)-1, record, &s);
	r.flags = PEL_IO_REQ_FIXED_FILE;
	submit_ok(io, p, 0, r, NULL);
	wait_n(&s, 2);
	assert_int_equal(s.res[0] + s.res[1], 10);
	assert_memory_equal(out, "fixed", 5);
	/* UDP recv and send through slots; the ring holds its own reference to the fds */
	r = pel_io_req_recv(f.idx[2], rbuf, sizeof(rbuf), 0, record, &s);
	r.flags = PEL_IO_REQ_FIXED_FILE;
	submit_ok(io, p, 0, r, NULL);
	r = pel_io_req_send(f.idx[3], "slot", 4, 0, record, &s);
	r.flags = PEL_IO_REQ_FIXED_FILE;
	submit_ok(io, p, 0, r, NULL);
	wait_n(&s, 4);
	assert_int_equal(s.res[2] + s.res[3], 8);
	assert_memory_equal(rbuf, "slot", 4);
	/* an emptied slot: -EBADF from the kernel; a slot twice: -EINVAL */
	on_worker(rt, 0, unregister_file_task, &f);
	assert_int_equal(f.err_unreg, 0);
	assert_int_equal(f.err_twice, -EINVAL);
	r = pel_io_req_send(f.idx[3], "gone", 4, 0, record, &s);
	r.flags = PEL_IO_REQ_FIXED_FILE;
	submit_ok(io, p, 0, r, NULL);
	wait_n(&s, 5);
	assert_int_equal(s.res[4], -EBADF);
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	assert_int_equal(st.files_used, 3);
	/* without slots configured FIXED_FILE is refused */
	pel_producer_close(p);
	pel_destroy(rt);
	rt = rt_one();
	io = io_on(rt, 0, 0);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	r = pel_io_req_read(0, out, sizeof(out), 0, record, &s);
	r.flags = PEL_IO_REQ_FIXED_FILE;
	assert_int_equal(pel_io_submit(io, p, 0, &r, NULL), -EINVAL);
	assert_error_contains("no registered file slots");
	pel_producer_close(p);
	pel_destroy(rt);
	close(fds[0]);
	close(fds[1]);
	close(ua);
	close(ub);
}


/* ---- registered buffers ---- */

struct fixed_call {
	struct pel_io *io;
	const struct iovec *iov;
	unsigned n;
	int reg, again, unreg, unreg_none;
};

static void
fixed_register(void *arg)
{
	struct fixed_call *f = arg;

	f->reg = pel_io_buffers_register(f->io, 0, f->iov, f->n);
	f->again = pel_io_buffers_register(f->io, 0, f->iov, f->n);
}

static void
fixed_unregister(void *arg)
{
	struct fixed_call *f = arg;

	f->unreg = pel_io_buffers_unregister(f->io, 0);
	f->unreg_none = pel_io_buffers_unregister(f->io, 0);
}

static void
test_fixed_buffers(void **state)
{
	static char b0[8192], b1[8192];
	struct pel_runtime *rt = rt_one();
	struct pel_io *io = io_on(rt, 0, 0);
	struct iovec iov[2] = { { b0, sizeof(b0) }, { b1, sizeof(b1) } };
	struct fixed_call f = { .io = io, .iov = iov, .n = 2 };
	struct pel_producer *p;
	struct pel_io_stats st;
	struct pel_io_req r;
	struct seen s = { 0 };
	char path[] = "/tmp/pel-io-fixed-XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	/* from outside the worker: refused; bad arguments */
	assert_int_equal(pel_io_buffers_register(io, 0, iov, 2), -EPERM);
	assert_int_equal(pel_io_buffers_register(io, 1, iov, 2), -EINVAL);
	assert_int_equal(pel_io_buffers_register(NULL, 0, iov, 2), -EINVAL);
	f.n = 0;
	on_worker(rt, 0, fixed_register, &f);
	assert_int_equal(f.reg, -EINVAL);
	f.n = 2;
	on_worker(rt, 0, fixed_register, &f);
	assert_int_equal(f.reg, 0);
	assert_int_equal(f.again, -EBUSY);
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	assert_int_equal(st.fixed_bufs, 2);
	/* FIXED_BUF is for read and write */
	r = pel_io_req_recv(fd, b0, 16, 0, record, &s);
	r.flags = PEL_IO_REQ_FIXED_BUF;
	assert_int_equal(pel_io_submit(io, p, 0, &r, NULL), -EINVAL);
	/* write from buffer 0, read back into buffer 1, both through the registered pages */
	memset(b0, 'x', 4096);
	memcpy(b0 + 100, "fixed", 5);
	r = pel_io_req_write(fd, b0, 4096, 0, record, &s);
	r.flags = PEL_IO_REQ_FIXED_BUF;
	r.buf_index = 0;
	submit_ok(io, p, 0, r, NULL);
	wait_n(&s, 1);
	assert_int_equal(s.res[0], 4096);
	r = pel_io_req_read(fd, b1 + 10, 4096, 0, record, &s);
	r.flags = PEL_IO_REQ_FIXED_BUF;
	r.buf_index = 1;
	submit_ok(io, p, 0, r, NULL);
	wait_n(&s, 2);
	assert_int_equal(s.res[1], 4096);
	assert_memory_equal(b1 + 110, "fixed", 5);
	/* an address outside the buffer named: the kernel's -EFAULT, in the callback */
	r = pel_io_req_read(fd, b0, 64, 0, record, &s);
	r.flags = PEL_IO_REQ_FIXED_BUF;
	r.buf_index = 1;
	submit_ok(io, p, 0, r, NULL);
	wait_n(&s, 3);
	assert_int_equal(s.res[2], -EFAULT);
	on_worker(rt, 0, fixed_unregister, &f);
	assert_int_equal(f.unreg, 0);
	assert_int_equal(f.unreg_none, -EINVAL);
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	assert_int_equal(st.fixed_bufs, 0);
	close(fd);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* ---- NAPI busy poll ---- */

static void
test_napi_busy_poll(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io_config ic;
	struct pel_io *io;
	struct pel_io_stats st;
	struct pel_producer *p;
	struct seen s = { 0 };
	struct sockaddr_in a, b;
	char rbuf[16] = { 0 };
	int fa, fb;

	(void)state;
	io_config(&ic);
	ic.napi_busy_poll_us = 50;
	io = io_with(rt, &ic);	/* a kernel without NAPI for io_uring: -EOPNOTSUPP, a skip */
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	assert_int_equal(st.napi_busy_poll_us, 50);
	/* loopback has no NAPI queue to poll: receives work as before */
	fa = udp_socket(&a);
	fb = udp_socket(&b);
	assert_int_equal(connect(fa, (struct sockaddr *)&b, sizeof(b)), 0);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	submit_ok(io, p, 0, pel_io_req_recv(fb, rbuf, sizeof(rbuf), 0, record, &s), NULL);
	io_barrier(io, p, 0);
	assert_int_equal(send(fa, "napi", 4, 0), 4);
	wait_n(&s, 1);
	assert_int_equal(s.res[0], 4);
	close(fa);
	close(fb);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* PEL_IO_CF_COOP: the ring takes COOP_TASKRUN | TASKRUN_FLAG instead of DEFER_TASKRUN. */
static void
test_coop_ring(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io_config ic;
	struct pel_io *io;
	struct pel_io_stats st;
	struct pel_producer *p;
	struct seen s = { 0 };

	(void)state;
	io_config(&ic);
	ic.flags = PEL_IO_CF_COOP;
	io = io_with(rt, &ic);
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	assert_true(st.setup_flags & IORING_SETUP_COOP_TASKRUN);
	assert_true(st.setup_flags & IORING_SETUP_TASKRUN_FLAG);
	assert_false(st.setup_flags & (IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER));
	assert_int_equal(pel_producer_open(rt, &p), 0);
	submit_ok(io, p, 0, pel_io_req_nop(record, &s), NULL);
	wait_n(&s, 1);
	assert_int_equal(s.res[0], 0);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* ---- recv bundles ---- */

/* A TCP stream's bytes, put back together from the callbacks (one a buffer, in order). */
struct stream_rx {
	struct pel_io *io;
	_Atomic unsigned calls, bytes;
	unsigned bad;			/* a buffer bigger than its size, or no buffer */
	_Atomic int ended;
	char data[16384];
};

static void
stream_cb(const struct pel_io_result *r, void *arg)
{
	struct stream_rx *x = arg;
	unsigned have = atomic_load(&x->bytes);

	if (r->res > 0) {
		if (!(r->flags & PEL_IO_F_BUFFER) || (uint32_t)r->res > r->buf_size ||
		    have + (unsigned)r->res > sizeof(x->data))
			x->bad++;
		else
			memcpy(x->data + have, r->buf, (size_t)r->res);
		atomic_store(&x->bytes, have + (unsigned)r->res);
	}
	if (r->flags & PEL_IO_F_BUFFER)
		assert_int_equal(pel_io_buf_release(x->io, r->buf), 0);
	atomic_fetch_add(&x->calls, 1);
	if (!(r->flags & PEL_IO_F_MORE))
		atomic_store(&x->ended, 1);
}

static void
test_recv_bundle(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io_config ic;
	struct pel_io *io;
	struct pel_io_stats st0, st1;
	struct pel_producer *p;
	struct stream_rx *x;
	struct sockaddr_in a;
	char out[12000];
	int lfd, cfd, sfd;

	(void)state;
	io_config(&ic);
	ic.buf_count = 64;
	ic.buf_size = 256;
	ic.flags = PEL_IO_CF_RECV_BUNDLE;
	io = io_with(rt, &ic);
	lfd = tcp_listener(&a);
	x = calloc(1, sizeof(*x));
	assert_non_null(x);
	x->io = io;
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	sfd = accept(lfd, NULL, NULL);
	assert_true(sfd >= 0);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	submit_ok(io, p, 0, pel_io_req_recv_multishot(sfd, 0, stream_cb, x), NULL);
	io_barrier(io, p, 0);		/* armed, nothing received */
	assert_int_equal(pel_io_stats(io, 0, &st0), 0);
	for (unsigned i = 0; i < sizeof(out); i++)
		out[i] = (char)('a' + i % 23);
	/* 3 KiB writes: each arrives as one skb run, several buffers' worth */
	for (unsigned off = 0; off < sizeof(out); off += 3000) {
		assert_int_equal(write(cfd, out + off, 3000), 3000);
		if (!WAIT_UNTIL(atomic_load(&x->bytes) >= off + 3000, 10000))
			fail_msg("%u of %u bytes", atomic_load(&x->bytes), off + 3000);
	}
	assert_int_equal(x->bad, 0);
	assert_memory_equal(x->data, out, sizeof(out));
	assert_int_equal(pel_io_stats(io, 0, &st1), 0);
	print_message("12000 bytes through 256-byte buffers: %u callbacks from %llu CQEs, "
		      "recv_bundle %u\n", atomic_load(&x->calls),
		      (unsigned long long)(st1.completed - st0.completed),
		      !!(st1.uses & PEL_IO_USES_RECV_BUNDLE));
	if (st1.uses & PEL_IO_USES_RECV_BUNDLE)	/* runs of buffers: fewer completions than buffers */
		assert_true(st1.completed - st0.completed < atomic_load(&x->calls));
	else
		print_message("skip: this kernel has no recv bundles (IORING_FEAT_RECVSEND_BUNDLE, "
			      "Linux 6.10): one CQE a buffer\n");
	assert_true(atomic_load(&x->calls) >= sizeof(out) / 256);
	close(cfd);		/* the peer's end: the stream ends, told */
	if (!WAIT_UNTIL(atomic_load(&x->ended), 10000))
		fail_msg("the stream's end never reached the callback");
	pel_producer_close(p);
	pel_destroy(rt);
	close(sfd);
	close(lfd);
	free(x);
}

/* ---- incremental buffer rings ---- */

/* Pieces of a stream: every third kept and released by the test thread (the remote path). */
struct inc_rx {
	struct pel_io *io;
	_Atomic unsigned bytes, pieces, inner;	/* inner: pieces not at a buffer's start */
	void *held[512];
	_Atomic unsigned nheld;
	unsigned bad;
	char data[16384];
};

static void
inc_cb(const struct pel_io_result *r, void *arg)
{
	struct inc_rx *x = arg;
	unsigned have = atomic_load(&x->bytes), k = atomic_fetch_add(&x->pieces, 1);

	if (r->res > 0 && (r->flags & PEL_IO_F_BUFFER)) {
		if ((uint32_t)r->res > r->buf_size || have + (unsigned)r->res > sizeof(x->data))
			x->bad++;
		else
			memcpy(x->data + have, r->buf, (size_t)r->res);
		if (((uintptr_t)r->buf & 1023) != 0)
			atomic_fetch_add(&x->inner, 1);
		atomic_store(&x->bytes, have + (unsigned)r->res);
	}
	if (!(r->flags & PEL_IO_F_BUFFER))
		return;
	if (k % 3 == 2 && atomic_load(&x->nheld) < 512) {
		unsigned h = atomic_load(&x->nheld);

		x->held[h] = r->buf;
		atomic_store(&x->nheld, h + 1);
	} else {
		assert_int_equal(pel_io_buf_release(x->io, r->buf), 0);
	}
}

static void
test_buf_inc(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io_config ic;
	struct pel_io *io = NULL;
	struct pel_io_stats st;
	struct pel_producer *p;
	struct inc_rx *x;
	struct sockaddr_in a;
	char out[10000];
	unsigned released = 0;
	int lfd, cfd, sfd, one = 1;

	(void)state;
	io_config(&ic);
	ic.flags = PEL_IO_CF_BUF_INC | PEL_IO_CF_RECV_BUNDLE;
	ic.buf_count = 4;
	assert_int_equal(pel_io_create(rt, &ic, &io), -EINVAL);	/* one or the other */
	ic.flags = PEL_IO_CF_BUF_INC;
	ic.buf_count = 0;
	assert_int_equal(pel_io_create(rt, &ic, &io), -EINVAL);	/* needs buffers */
	ic.buf_count = 4;		/* 4 KiB in all, for a 10000-byte stream */
	ic.buf_size = 1024;
	io = io_with(rt, &ic);
	lfd = tcp_listener(&a);
	x = calloc(1, sizeof(*x));
	assert_non_null(x);
	x->io = io;
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	if (!(st.uses & PEL_IO_USES_BUF_INC))
		print_message("skip: this kernel has no incremental buffer rings (IOU_PBUF_RING_INC, "
			      "Linux 6.12): whole buffers; the stream is still checked\n");
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sfd = accept(lfd, NULL, NULL);
	assert_true(sfd >= 0);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	{
		struct pel_io_req m = pel_io_req_recvmsg(sfd, NULL, 0, inc_cb, x);

		m.flags = PEL_IO_REQ_MULTISHOT | PEL_IO_REQ_BUFSEL;
		assert_int_equal(pel_io_submit(io, p, 0, &m, NULL), -EINVAL);	/* streams only */
	}
	submit_ok(io, p, 0, pel_io_req_recv_multishot(sfd, 0, inc_cb, x), NULL);
	io_barrier(io, p, 0);
	for (unsigned i = 0; i < sizeof(out); i++)
		out[i] = (char)('A' + i % 29);
	/* 100 writes of 100 bytes; the held pieces are given back from here as they come, so
	 * the buffers fill, wait for their pieces, and go round again */
	for (unsigned off = 0; off < sizeof(out); off += 100) {
		assert_int_equal(write(cfd, out + off, 100), 100);
		if (!WAIT_UNTIL(atomic_load(&x->bytes) >= off + 100 ||
				atomic_load(&x->nheld) > released, 10000))
			fail_msg("stalled at %u bytes", atomic_load(&x->bytes));
		while (released < atomic_load(&x->nheld))
			assert_int_equal(pel_io_buf_release(io, x->held[released++]), 0);
	}
	for (unsigned t = 0; atomic_load(&x->bytes) < sizeof(out) && t < 10000; t++) {
		while (released < atomic_load(&x->nheld))
			assert_int_equal(pel_io_buf_release(io, x->held[released++]), 0);
		usleep(1000);
	}
	if (atomic_load(&x->bytes) < sizeof(out))
		fail_msg("%u of %zu bytes", atomic_load(&x->bytes), sizeof(out));
	while (released < atomic_load(&x->nheld))
		assert_int_equal(pel_io_buf_release(io, x->held[released++]), 0);
	assert_int_equal(x->bad, 0);
	assert_memory_equal(x->data, out, sizeof(out));
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	print_message("10000 bytes in 100-byte writes through 4 buffers of 1 KiB: %u pieces, %u "
		      "inside a buffer, %u released from this thread, %llu stops for want of "
		      "buffers\n", atomic_load(&x->pieces), atomic_load(&x->inner), released,
		      (unsigned long long)st.nobufs);
	if (st.uses & PEL_IO_USES_BUF_INC)
		assert_true(atomic_load(&x->inner) > 0);	/* pieces after the first */
	close(cfd);
	pel_producer_close(p);
	pel_destroy(rt);
	close(sfd);
	close(lfd);
	free(x);
}

/* ---- dedicated mode: the I/O thread, its lanes, steering ---- */

/* What callbacks on several workers saw: each claims its own index. */
struct seen_mt {
	_Atomic unsigned n;
	int res[MAXR];
	int worker[MAXR];
	unsigned tag[MAXR];		/* the datagram's first byte, or the nop's number */
	struct pel_io *io;		/* release provided buffers */
};

static void
record_mt(const struct pel_io_result *r, void *arg)
{
	struct seen_mt *s = arg;
	unsigned i = atomic_fetch_add(&s->n, 1);

	if (i >= MAXR)
		return;
	s->res[i] = r->res;
	s->worker[i] = pel_worker_self();
	assert_int_equal(s->worker[i], (int)r->worker);
	if (r->buf) {
		struct io_uring_recvmsg_out *o = r->buf;
		const unsigned char *data = r->buf;

		/* multishot recvmsg: header, name, then the payload */
		if (r->res > (int)(sizeof(*o) + sizeof(struct sockaddr_in)))
			data += sizeof(*o) + sizeof(struct sockaddr_in);
		s->tag[i] = data[0];
		assert_int_equal(pel_io_buf_release(s->io, r->buf), 0);
	}
}

static struct pel_io *
io_ded(struct pel_runtime *rt, unsigned steer, unsigned bufs, unsigned cq)
{
	struct pel_io_config ic;

	pel_io_config_default(&ic);
	ic.mode = PEL_IO_DEDICATED;
	ic.steer = steer;
	ic.io_cpu = 0;
	ic.buf_count = bufs;
	ic.buf_size = bufs ? 256 : 0;
	if (cq) {
		ic.sq_entries = cq / 2;
		ic.cq_entries = cq;
	}
	return io_with(rt, &ic);
}

static struct pel_runtime *
rt_two(void)
{
	if (online_cpus() < 2)
		skip();
	return rt_on("0-1", PEL_IDLE_BACKOFF);
}

static void
test_dedicated_config(void **state)
{
	struct pel_runtime *rt = rt_on(online_cpus() >= 2 ? "1" : "0", PEL_IDLE_SPIN);
	struct pel_io_config ic;
	struct pel_io *io = NULL;
	struct pel_io_stats st;
	struct pel_config c;
	struct pel_runtime *strict = NULL;

	(void)state;
	/* a spinning worker and the I/O thread on one CPU: refused without PEL_F_SHARE_CPUS */
	quiet_config(&c, online_cpus() >= 2 ? "1" : "0", NULL);
	c.idle = PEL_IDLE_SPIN;
	assert_int_equal(pel_create(&c, &strict), 0);
	pel_io_config_default(&ic);
	ic.mode = PEL_IO_DEDICATED;
	ic.io_cpu = pel_worker_cpu(strict, 0);
	assert_int_equal(pel_io_create(strict, &ic, &io), -EINVAL);
	assert_error_contains("both spin");
	assert_null(io);
	/* the I/O thread and the SQ thread on one CPU (not the worker's): two busy pollers */
	if (online_cpus() >= 2) {
		pel_io_config_default(&ic);
		ic.mode = PEL_IO_DEDICATED;
		ic.flags = PEL_IO_CF_SQPOLL;
		ic.io_cpu = 0;
		ic.sqpoll_cpu = 0;
		assert_int_equal(pel_io_create(strict, &ic, &io), -EINVAL);
		assert_error_contains("also sqpoll_cpu");
		assert_null(io);
	}
	pel_destroy(strict);
	/* accepted, pinned to CPU 0; the stats say so, a bad worker is refused */
	pel_io_config_default(&ic);
	ic.mode = PEL_IO_DEDICATED;
	ic.io_cpu = 0;
	assert_int_equal(pel_io_create(rt, &ic, &io), 0);
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	assert_int_equal(st.io_cpu, 0);
	assert_int_equal(st.delivered, 0);
	assert_int_equal(pel_io_stats(io, 1, &st), -EINVAL);
	/* registered files are the per-worker mode's */
	assert_int_equal(pel_io_file_register(io, 0, 0), -EINVAL);
	pel_destroy(rt);
}

/* Single-shot operations complete on the worker named; the stats count them per worker. */
static void
test_dedicated_named_workers(void **state)
{
	struct pel_runtime *rt = rt_two();
	struct pel_io *io = io_ded(rt, PEL_IO_STEER_RR, 0, 0);
	struct pel_producer *p;
	struct pel_io_stats st0, st1;
	struct seen_mt s = { 0 };

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	for (unsigned i = 0; i < 40; i++)
		submit_ok(io, p, i % 2, pel_io_req_nop(record_mt, &s), NULL);
	if (!WAIT_UNTIL(atomic_load(&s.n) >= 40, 10000))
		fail_msg("%u of 40 nops", atomic_load(&s.n));
	/* nops are single-shot: RR steering leaves them where they were sent */
	for (unsigned w = 0; w < 2; w++) {
		unsigned on_w = 0;

		for (unsigned i = 0; i < 40; i++)
			on_w += s.worker[i] == (int)w;
		assert_int_equal(on_w, 20);
	}
	assert_int_equal(pel_io_stats(io, 0, &st0), 0);
	assert_int_equal(pel_io_stats(io, 1, &st1), 0);
	assert_int_equal(st0.delivered, 20);
	assert_int_equal(st1.delivered, 20);
	assert_int_equal(st0.completed, 40);		/* the one ring's */
	assert_int_equal(st0.inflight, 0);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* Multishot receives steered round robin, by flow hash, and to the shortest queue. */
/* Results handed to workers 0 and 1 (their lanes), whether or not their callbacks ran yet. */
static uint64_t
delivered(struct pel_io *io, uint64_t *d0)
{
	struct pel_io_stats st0, st1;

	assert_int_equal(pel_io_stats(io, 0, &st0), 0);
	assert_int_equal(pel_io_stats(io, 1, &st1), 0);
	*d0 = st0.delivered;
	return st0.delivered + st1.delivered;
}

static void
steer_udp(unsigned steer, unsigned senders, unsigned per, struct seen_mt *s, bool block0,
	  uint64_t *to0)
{
	struct pel_runtime *rt = rt_two();
	struct pel_io *io = io_ded(rt, steer, 64, 0);
	struct pel_producer *p;
	struct sockaddr_in a[8], b, from;
	struct msghdr mh = { 0 };
	int fa[8], fb = udp_socket(&b);
	struct spin_arg sp = { 0 };

	assert_true(senders <= 8 && senders * per <= MAXR);
	s->io = io;
	for (unsigned k = 0; k < senders; k++)
		fa[k] = udp_socket(&a[k]);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	mh.msg_name = &from;
	mh.msg_namelen = sizeof(from);
	submit_ok(io, p, 0, (struct pel_io_req){ PEL_IO_RECVMSG,
		  PEL_IO_REQ_MULTISHOT | PEL_IO_REQ_BUFSEL, 0, fb, &mh, 0, 0, 0, record_mt, s }, NULL);
	io_barrier(io, p, 0);	/* armed */
	uint64_t base0, base = delivered(io, &base0), d0 = 0;

	if (block0)
		spin_on_worker(rt, 0, &sp);
	for (unsigned i = 0; i < per; i++)
		for (unsigned k = 0; k < senders; k++) {
			unsigned char m[4] = { (unsigned char)k, (unsigned char)i, 0, 0 };

			assert_int_equal(sendto(fa[k], m, 4, 0, (struct sockaddr *)&b, sizeof(b)), 4);
			if (block0)
				usleep(200);	/* each its own completion: a queue to compare */
		}
	if (block0) {
		/* worker 0 is busy: what was steered to it waits in its lane */
		bool all = WAIT_UNTIL(delivered(io, &d0) - base >= senders * per, 10000);

		spin_release(&sp);
		if (!all)
			fail_msg("%llu of %u datagrams handed out with worker 0 busy",
				 (unsigned long long)(delivered(io, &d0) - base), senders * per);
		*to0 = d0 - base0;
	}
	if (!WAIT_UNTIL(atomic_load(&s->n) >= senders * per, 10000))
		fail_msg("%u of %u datagrams", atomic_load(&s->n), senders * per);
	for (unsigned k = 0; k < senders; k++)
		close(fa[k]);
	pel_producer_close(p);
	pel_destroy(rt);	/* the multishot receive ends with -ECANCELED */
	assert_int_equal(atomic_load(&s->n), senders * per + 1);
	close(fb);
}


/* pel_destroy() on another thread, waited for with a limit: a hang is a failure, not a stall. */
static void *
destroy_thread(void *arg)
{
	pel_destroy(arg);
	return NULL;
}

static void
join_within(pthread_t t, int seconds, const char *what)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	if (pthread_timedjoin_np(t, NULL, &ts))
		fail_msg("pel_destroy() not back %d s after %s", seconds, what);
}

struct flood {
	struct pel_io *io;
	struct seen_mt *s;
	_Atomic unsigned accepted;
	_Atomic int started, hold;
};

static void
flood_task(void *arg)
{
	struct flood *f = arg;
	struct pel_io_req n = pel_io_req_nop(record_mt, f->s);

	for (int i = 0; i < 100; i++)
		if (pel_io_submit(f->io, NULL, 0, &n, NULL) == 0)
			atomic_fetch_add(&f->accepted, 1);
	atomic_store(&f->started, 1);
	while (atomic_load(&f->hold))
		usleep(1000);
}

/* Found in review: while the runtime stops, requests taken from a lane become -ECANCELED results
 * without a CQE, beyond what the full lane and its overflow list held: the list grows, none is
 * lost. */
static void
test_dedicated_stop_floods_full_lane(void **state)
{
	struct pel_runtime *rt = rt_two();
	struct pel_io *io = io_ded(rt, PEL_IO_STEER_FIXED, 0, 4);
	struct seen_mt s = { 0 };
	struct flood f = { .io = io, .s = &s, .hold = 1 };
	struct spin_arg sp = { 0 };
	struct pel_producer *p;
	unsigned accepted = 0;
	pthread_t t;

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	spin_on_worker(rt, 0, &sp);
	for (int i = 0; i < 8; i++) {	/* lane 0: ring 4 + list 4; the thread stops reaping */
		struct pel_io_req n = pel_io_req_nop(record_mt, &s);

		while (pel_io_submit(io, p, 0, &n, NULL))
			usleep(100);
		accepted++;
	}
	assert_int_equal(pel_submit(p, 1, flood_task, &f), 0);	/* worker 1: 100 more for 0 */
	assert_true(WAIT_UNTIL(atomic_load(&f.started), 10000));
	pel_producer_close(p);
	assert_int_equal(pthread_create(&t, NULL, destroy_thread, rt), 0);
	usleep(50000);			/* the I/O thread sees the stop */
	atomic_store(&f.hold, 0);	/* worker 1's waiting requests go to the thread */
	usleep(100000);
	spin_release(&sp);
	join_within(t, 10, "the lanes were flooded");
	accepted += atomic_load(&f.accepted);
	print_message("%u accepted, %u callbacks\n", accepted, atomic_load(&s.n));
	assert_int_equal(atomic_load(&s.n), accepted);
}

static _Atomic int enobufs_final;

static void
enobufs_rx(const struct pel_io_result *r, void *arg)
{
	(void)arg;
	/* a buffer is kept: the only one, so the next datagram finds none */
	if (!(r->flags & PEL_IO_F_MORE))
		atomic_store(&enobufs_final, r->res);
}

/* Found in review: a multishot receive's -ENOBUFS waits in the CQ (the lane is full) while the
 * runtime stops; the cancel-all has gone by: it must end, told, not wait for buffers for ever. */
static void
test_dedicated_enobufs_at_stop(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io *io = io_ded(rt, PEL_IO_STEER_FIXED, 1, 4);
	struct seen s = { 0 };
	struct spin_arg sp = { 0 };
	struct pel_producer *p;
	struct sockaddr_in a, b;
	int fa = udp_socket(&a), fb = udp_socket(&b);
	pthread_t t;

	(void)state;
	atomic_store(&enobufs_final, 1);
	assert_int_equal(pel_producer_open(rt, &p), 0);
	submit_ok(io, p, 0, pel_io_req_recv_multishot(fb, 0, enobufs_rx, NULL), NULL);
	io_barrier(io, p, 0);
	spin_on_worker(rt, 0, &sp);
	for (int i = 0; i < 8; i++) {
		struct pel_io_req n = pel_io_req_nop(record, &s);

		while (pel_io_submit(io, p, 0, &n, NULL))
			usleep(100);
	}
	usleep(20000);
	assert_int_equal(sendto(fa, "abc", 3, 0, (struct sockaddr *)&b, sizeof(b)), 3);
	assert_int_equal(sendto(fa, "def", 3, 0, (struct sockaddr *)&b, sizeof(b)), 3);
	usleep(5000);
	{
		struct pel_io_req n = pel_io_req_nop(record, &s);	/* an enter: CQEs posted */

		while (pel_io_submit(io, p, 0, &n, NULL))
			usleep(100);
	}
	usleep(20000);
	pel_producer_close(p);
	assert_int_equal(pthread_create(&t, NULL, destroy_thread, rt), 0);
	usleep(50000);
	spin_release(&sp);
	join_within(t, 10, "a receive stopped for buffers");
	assert_int_equal(atomic_load(&s.n), 9);
	assert_int_equal(atomic_load(&enobufs_final), -ECANCELED);
	close(fa);
	close(fb);
}

static void
test_dedicated_steer_rr(void **state)
{
	struct seen_mt s = { 0 };
	unsigned on0 = 0;

	(void)state;
	steer_udp(PEL_IO_STEER_RR, 1, 40, &s, false, NULL);
	for (unsigned i = 0; i < 40; i++) {
		assert_int_equal(s.res[i] > 0, 1);
		on0 += s.worker[i] == 0;
	}
	assert_int_equal(on0, 20);	/* strictly alternating */
}

static void
test_dedicated_steer_hash(void **state)
{
	struct seen_mt s = { 0 };
	int flow_worker[8] = { -1, -1, -1, -1, -1, -1, -1, -1 };

	(void)state;
	steer_udp(PEL_IO_STEER_HASH, 8, 10, &s, false, NULL);
	/* every datagram of one sender on one worker */
	for (unsigned i = 0; i < 80; i++) {
		unsigned k = s.tag[i];

		assert_true(k < 8);
		if (flow_worker[k] < 0)
			flow_worker[k] = s.worker[i];
		assert_int_equal(s.worker[i], flow_worker[k]);
	}
	print_message("8 flows over 2 workers: %d %d %d %d %d %d %d %d\n", flow_worker[0],
		      flow_worker[1], flow_worker[2], flow_worker[3], flow_worker[4],
		      flow_worker[5], flow_worker[6], flow_worker[7]);
}

static void
test_dedicated_steer_jsq(void **state)
{
	struct seen_mt s = { 0 };
	uint64_t on0 = 0;

	(void)state;
	steer_udp(PEL_IO_STEER_JSQ, 1, 20, &s, true, &on0);
	/* worker 0 was busy, its queue grew: JSQ sent it a datagram only when worker 1's queue was
	 * as long (a slow worker 1 under a sanitizer); fixed steering would send it all 20, round
	 * robin 10 */
	print_message("JSQ with worker 0 busy: %llu of 20 handed to worker 0\n",
		      (unsigned long long)on0);
	assert_true(on0 < 10);
}

/* A worker too busy to take its results: they wait in its lane, then its overflow list, then
 * the CQ (and the kernel's overflow): nothing lost, in order, counted. */
static void
test_dedicated_lane_full(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io *io = io_ded(rt, PEL_IO_STEER_FIXED, 0, 4);
	struct pel_producer *p;
	struct pel_io_stats st;
	struct seen s = { 0 };
	struct spin_arg sp = { 0 };
	unsigned sent = 0;

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	spin_on_worker(rt, 0, &sp);
	while (sent < 100) {
		struct pel_io_req r = pel_io_req_nop(record, &s);
		int err = pel_io_submit(io, p, 0, &r, NULL);

		if (err == -EAGAIN) {	/* the producer's ring of 4 to the I/O thread */
			usleep(100);
			continue;
		}
		assert_int_equal(err, 0);
		sent++;
	}
	usleep(20000);
	assert_int_equal(atomic_load(&s.n), 0);	/* the worker is still busy */
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	print_message("100 nops, worker busy: %llu completed by the ring, %llu delivered, "
		      "%llu CQ overflows\n", (unsigned long long)st.completed,
		      (unsigned long long)st.delivered, (unsigned long long)st.cq_overflow);
	assert_true(st.delivered <= 8);		/* a lane of 4 and an overflow list of 4 */
	spin_release(&sp);
	wait_n(&s, 100);
	assert_true(s_res_all(&s, 100, 0));
	assert_int_equal(pel_io_stats(io, 0, &st), 0);
	assert_int_equal(st.completed, 100);
	assert_int_equal(st.delivered, 100);
	assert_int_equal(st.inflight, 0);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* pel_drain() waits for the results a lane holds: a callback that takes 100 ms keeps the worker
 * while the next nop's result waits in its lane; the drain returns after both callbacks. */
struct slow_cb {
	atomic_int started, done_a, done_b;
};

static void
slow_a(const struct pel_io_result *r, void *arg)
{
	struct slow_cb *c = arg;

	(void)r;
	atomic_store(&c->started, 1);
	usleep(100000);
	atomic_store(&c->done_a, 1);
}

static void
slow_b(const struct pel_io_result *r, void *arg)
{
	(void)r;
	atomic_store(&((struct slow_cb *)arg)->done_b, 1);
}

static void
test_dedicated_drain_waits_for_lane(void **state)
{
	struct pel_runtime *rt = rt_one();
	struct pel_io *io = io_ded(rt, PEL_IO_STEER_FIXED, 0, 0);
	struct pel_producer *p;
	struct pel_io_stats st;
	struct slow_cb c = { 0 };

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	submit_ok(io, p, 0, pel_io_req_nop(slow_a, &c), NULL);
	if (!WAIT_UNTIL(atomic_load(&c.started), 10000))
		fail_msg("the first callback never started");
	submit_ok(io, p, 0, pel_io_req_nop(slow_b, &c), NULL);
	/* the I/O thread completes the second nop and hands it over (no longer in flight) */
	if (!WAIT_UNTIL(pel_io_stats(io, 0, &st) == 0 && st.delivered == 2, 10000))
		fail_msg("the second result was not handed to the worker");
	assert_int_equal(atomic_load(&c.done_a), 0);	/* the worker is still in the first */
	assert_int_equal(pel_drain(rt, 5 * PEL_NS_PER_S), 0);
	assert_int_equal(atomic_load(&c.done_a), 1);
	assert_int_equal(atomic_load(&c.done_b), 1);
	pel_producer_close(p);
	pel_destroy(rt);
}

/* A parking runtime: the idle I/O thread sleeps in its ring (no enter while idle); a submit and
 * a completion each wake it. */
static void
test_dedicated_thread_parks(void **state)
{
	struct pel_runtime *rt = rt_on(online_cpus() >= 2 ? "1" : "0", PEL_IDLE_PARK);
	struct pel_io *io = io_ded(rt, PEL_IO_STEER_FIXED, 0, 0);
	struct pel_producer *p;
	struct pel_io_stats st1, st2;
	struct seen s = { 0 };

	(void)state;
	assert_int_equal(pel_producer_open(rt, &p), 0);
	submit_ok(io, p, 0, pel_io_req_nop(record, &s), NULL);
	wait_n(&s, 1);
	usleep(20000);
	assert_int_equal(pel_io_stats(io, 0, &st1), 0);
	usleep(200000);
	assert_int_equal(pel_io_stats(io, 0, &st2), 0);
	assert_int_equal(st2.enters, st1.enters);	/* asleep: not one enter in 200 ms */
	/* a timeout completes while it sleeps: the completion wakes it */
	submit_ok(io, p, 0, pel_io_req_timeout(30 * 1000 * 1000, 0, record, &s), NULL);
	wait_n(&s, 2);
	assert_int_equal(s.res[1], -ETIME);
	assert_true(s.t[1] - s.t[0] >= 30 * 1000 * 1000);
	pel_producer_close(p);
	pel_destroy(rt);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_submit_errors),
		cmocka_unit_test(test_nop_from_producer_and_task),
		cmocka_unit_test(test_pipe_and_file),
		cmocka_unit_test(test_udp_msg),
		cmocka_unit_test(test_tcp_accept_connect_multishot),
		cmocka_unit_test(test_buffers_exhausted_then_rearmed),
		cmocka_unit_test(test_timeouts_and_cancel),
		cmocka_unit_test(test_cancel_receive_waiting_for_buffers),
		cmocka_unit_test(test_sq_full_keeps_order),
		cmocka_unit_test(test_destroy_cancels_pending),
		cmocka_unit_test(test_idle_worker_enters_no_more),
		cmocka_unit_test(test_park_worker_sleeps_in_ring),
		cmocka_unit_test(test_sqpoll_config_errors),
		cmocka_unit_test(test_sqpoll_nop_and_udp),
		cmocka_unit_test(test_sqpoll_park_and_destroy),
		cmocka_unit_test(test_fixed_files),
		cmocka_unit_test(test_fixed_buffers),
		cmocka_unit_test(test_napi_busy_poll),
		cmocka_unit_test(test_recv_bundle),
		cmocka_unit_test(test_coop_ring),
		cmocka_unit_test(test_buf_inc),
	};
	/* --dedicated: the tests that hold in either mode, through the I/O thread, then the
	 * dedicated mode's own */
	const struct CMUnitTest ded[] = {
		cmocka_unit_test(test_nop_from_producer_and_task),
		cmocka_unit_test(test_pipe_and_file),
		cmocka_unit_test(test_udp_msg),
		cmocka_unit_test(test_tcp_accept_connect_multishot),
		cmocka_unit_test(test_buffers_exhausted_then_rearmed),
		cmocka_unit_test(test_timeouts_and_cancel),
		cmocka_unit_test(test_cancel_receive_waiting_for_buffers),
		cmocka_unit_test(test_sq_full_keeps_order),
		cmocka_unit_test(test_destroy_cancels_pending),
		cmocka_unit_test(test_napi_busy_poll),
		cmocka_unit_test(test_dedicated_config),
		cmocka_unit_test(test_dedicated_named_workers),
		cmocka_unit_test(test_dedicated_steer_rr),
		cmocka_unit_test(test_dedicated_steer_hash),
		cmocka_unit_test(test_dedicated_steer_jsq),
		cmocka_unit_test(test_dedicated_lane_full),
		cmocka_unit_test(test_dedicated_thread_parks),
		cmocka_unit_test(test_dedicated_stop_floods_full_lane),
		cmocka_unit_test(test_dedicated_enobufs_at_stop),
		cmocka_unit_test(test_dedicated_drain_waits_for_lane),
	};
	cpu_set_t zero;

	/* this thread on CPU 0, the worker on the last CPU */
	CPU_ZERO(&zero);
	CPU_SET(0, &zero);
	pthread_setaffinity_np(pthread_self(), sizeof(zero), &zero);
	if (getenv("PEL_TEST_FILTER"))	/* e.g. PEL_TEST_FILTER='test_tcp*' */
		cmocka_set_test_filter(getenv("PEL_TEST_FILTER"));
	if (argc > 1 && strcmp(argv[1], "--dedicated") == 0) {
		g_mode = PEL_IO_DEDICATED;
		return cmocka_run_group_tests_name("io_dedicated", ded, NULL, NULL);
	}
	return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
