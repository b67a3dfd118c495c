/* SPDX-License-Identifier: MIT */
/*
 * bench/echo-load.c - the load generator of bench/io-sockperf.sh's throughput part: many
 * connections, several sockperf ping requests in flight on each, answers counted per second.
 *
 *   pel-echo-load --port P --proto udp|tcp [--conns 64] [--depth 4] [--seconds 5] [--cpu 0]
 *
 * One thread. It opens --conns TCP connections (TCP_NODELAY) or connected UDP sockets to
 * 127.0.0.1:P, puts --depth 64-byte requests (sockperf's header: client and pong bits) in flight
 * on each, and for every answer sends a new request on the same socket: UDP with one recvmmsg()
 * and one sendmmsg() per readable socket, TCP with one recv() and one send(). It waits in
 * epoll_wait(), so its CPU share says whether the client or the server was the bottleneck.
 * After 0.5 s of warm-up it counts answers for --seconds. A UDP socket silent for 20 ms with fewer
 * than --depth requests in flight (the kernel dropped some) is topped up; those are counted.
 * A UDP request sendmmsg() did not take is counted in "unsent" and topped up the same way; an
 * ECONNREFUSED on a UDP socket (an ICMP port unreachable came back) is counted in "refused".
 * Prints one line: "echo-load: proto udp conns 64 depth 4 seconds 5.000 answers N msgs/s X
 * topped_up N unsent N refused N client_cpu P%". Exit 1 if nothing was answered.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG	64u
#define BATCH	64u

struct sock {
	int fd;
	unsigned inflight;
	unsigned owed;		/* UDP requests sendmmsg() did not take: sent at the next scan */
	uint32_t in_len;
	int64_t last_ns;
	uint64_t seq;
	uint8_t in[MSG * BATCH * 4];
};

static int64_t
now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void
make_req(uint8_t *m, uint64_t seq)
{
	int i;

	memset(m, 0xab, MSG);
	for (i = 0; i < 8; i++)
		m[i] = (uint8_t)(seq >> (56 - 8 * i));
	m[8] = 0;
	m[9] = 3;	/* client | pong request */
	m[10] = 0;
	m[11] = 0;
	m[12] = 0;
	m[13] = MSG;
}

static uint64_t unsent;	/* UDP requests the kernel did not take (sendmmsg short) */
static uint64_t refused;	/* UDP: ECONNREFUSED reported on a socket (ICMP port unreachable) */

/* Send @p n requests on @p s in one call. */
static int
send_reqs(struct sock *s, unsigned n, int tcp)
{
	static uint8_t out[MSG * BATCH * 4];
	struct mmsghdr mm[BATCH * 4];
	struct iovec iov[BATCH * 4];
	unsigned i;
	int k;

	for (i = 0; i < n; i++)
		make_req(out + i * MSG, s->seq++);
	if (tcp) {
		if (send(s->fd, out, n * MSG, MSG_NOSIGNAL) != (ssize_t)(n * MSG))
			return -1;
	} else {
		memset(mm, 0, n * sizeof(mm[0]));
		for (i = 0; i < n; i++) {
			iov[i].iov_base = out + i * MSG;
			iov[i].iov_len = MSG;
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		/* A short count: a later datagram failed (the error comes with the next call). The
		 * kernel may refuse a datagram (ENOBUFS) as it may drop one; both are topped up. */
		k = sendmmsg(s->fd, mm, n, 0);
		if (k < 0 && errno == ECONNREFUSED)
			refused++;
		if (k < 0 && errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED)
			return -1;
		if (k < 0)
			k = 0;
		unsent += n - (unsigned)k;
		s->owed += n - (unsigned)k;
		s->inflight += (unsigned)k;
		return 0;
	}
	s->inflight += n;
	return 0;
}

/* Read what @p s has; @return the answers it held, -1 and errno on error (EBADMSG: a wrong
 * answer or more answers than requests; EPIPE: the server closed the connection). */
static int
recv_answers(struct sock *s, int tcp)
{
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	unsigned i, n = 0;
	ssize_t r;
	int k;

	if (tcp) {
		r = recv(s->fd, s->in + s->in_len, sizeof(s->in) - s->in_len, MSG_DONTWAIT);
		if (r == 0)
			return errno = EPIPE, -1;	/* the server closed the connection */
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		s->in_len += (uint32_t)r;
		n = s->in_len / MSG;
		for (i = 0; i < n; i++)
			if (s->in[i * MSG + 9] != 2)	/* not an answer to a request of ours */
				return errno = EBADMSG, -1;
		memmove(s->in, s->in + n * MSG, s->in_len - n * MSG);
		s->in_len -= n * MSG;
	} else {
		memset(mm, 0, sizeof(mm));
		for (i = 0; i < BATCH; i++) {
			iov[i].iov_base = s->in + i * MSG;
			iov[i].iov_len = MSG;
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		k = recvmmsg(s->fd, mm, BATCH, MSG_DONTWAIT, NULL);
		if (k < 0 && errno == ECONNREFUSED) {
			refused++;	/* an ICMP port unreachable came back: counted, go on */
			return 0;
		}
		if (k < 0)
			return errno == EAGAIN ? 0 : -1;
		for (i = 0; i < (unsigned)k; i++)
			if (mm[i].msg_len != MSG || s->in[i * MSG + 9] != 2)
				return errno = EBADMSG, -1;
		n = (unsigned)k;
	}
	if (n > s->inflight)
		return errno = EBADMSG, -1;	/* more answers than requests: duplicates */
	s->inflight -= n;
	return (int)n;
}

static double
cpu_s(void)
{
	struct rusage u;

	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
	       u.ru_stime.tv_usec / 1e6;
}

/* "tcp" 1, "udp" 0, anything else -1. */
static int
proto(const char *s)
{
	if (!strcmp(s, "tcp"))
		return 1;
	return !strcmp(s, "udp") ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	unsigned conns = 64, depth = 4, c;
	int port = -1, tcp = -1, cpu = 0, i, k, ep, one = 1, n;
	double secs = 5, cpu0 = 0;
	uint64_t answers = 0, topped = 0;
	int64_t t_start, t_end, t0, t, last_scan;
	struct epoll_event ev, evs[64];
	struct sock *socks;
	cpu_set_t set;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--proto"))
			tcp = proto(argv[i + 1]);
		else if (!strcmp(argv[i], "--conns"))
			conns = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--depth"))
			depth = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seconds"))
			secs = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--cpu"))
			cpu = atoi(argv[i + 1]);
		else
			break;
	}
	if (i != argc || port <= 0 || port > 65535 || tcp < 0 || !conns || conns > 4096 || !depth ||
	    depth > BATCH || secs <= 0) {
		fprintf(stderr, "usage: %s --port P --proto udp|tcp [--conns N] [--depth D] "
			"[--seconds S] [--cpu C]\n"
			"  defaults: 64 connections, depth 4 (max %u), 5 s, CPU 0\n",
			argv[0], BATCH);
		return 2;
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("echo-load: sched_setaffinity");
		return 1;
	}
	a.sin_port = htons((uint16_t)port);
	socks = calloc(conns, sizeof(*socks));
	ep = epoll_create1(0);
	if (!socks || ep < 0) {
		perror("echo-load");
		return 1;
	}
	for (c = 0; c < conns; c++) {
		struct sock *s = &socks[c];

		s->fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
		if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&a, sizeof(a))) {
			perror("echo-load: connect");
			return 1;
		}
		if (tcp)
			setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ev.events = EPOLLIN;
		ev.data.ptr = s;
		epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
	}
	t_start = now_ns();
	for (c = 0; c < conns; c++) {
		socks[c].last_ns = t_start;
		if (send_reqs(&socks[c], depth, tcp)) {
			perror("echo-load: send");
			return 1;
		}
	}
	t0 = t_start + 500000000;	/* warm-up */
	t_end = t0 + (int64_t)(secs * 1e9);
	last_scan = t_start;
	for (t = t_start; t < t_end; ) {
		k = epoll_wait(ep, evs, 64, 10);
		t = now_ns();
		if (!cpu0 && t >= t0) {
			cpu0 = cpu_s();
			answers = 0;
			topped = 0;
			unsent = 0;
			refused = 0;
			t0 = t;
			t_end = t0 + (int64_t)(secs * 1e9);
		}
		for (i = 0; i < k; i++) {
			struct sock *s = evs[i].data.ptr;

			n = recv_answers(s, tcp);
			if (n < 0) {
				/* EBADMSG: not an answer, or more than were asked for */
				fprintf(stderr, "echo-load: recv: %s\n", strerror(errno));
				return 1;
			}
			if (!n)
				continue;
			answers += (uint64_t)n;
			s->last_ns = t;
			if (send_reqs(s, (unsigned)n, tcp)) {
				perror("echo-load: send");
				return 1;
			}
		}
		if (!tcp && t - last_scan > 10000000) {
			last_scan = t;
			for (c = 0; c < conns; c++) {
				struct sock *s = &socks[c];

				if (s->owed) {
					n = (int)s->owed;
					s->owed = 0;
					if (send_reqs(s, (unsigned)n, tcp))
						return 1;
				}
				if (s->inflight < depth && t - s->last_ns > 20000000) {
					topped += depth - s->inflight;
					s->last_ns = t;
					if (send_reqs(s, depth - s->inflight, tcp))
						return 1;
				}
			}
		}
	}
	t = now_ns();
	printf("echo-load: proto %s conns %u depth %u seconds %.3f answers %llu msgs/s %.0f "
	       "topped_up %llu unsent %llu refused %llu client_cpu %.0f%%\n", tcp ? "tcp" : "udp",
	       conns, depth, (t - t0) / 1e9, (unsigned long long)answers,
	       answers / ((t - t0) / 1e9), (unsigned long long)topped, (unsigned long long)unsent,
	       (unsigned long long)refused,
	       100 * (cpu_s() - cpu0) / ((t - t0) / 1e9));
	return answers ? 0 : 1;
}
