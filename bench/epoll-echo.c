/* SPDX-License-Identifier: MIT */
/*
 * bench/epoll-echo.c - the baseline of bench/io-sockperf.sh's throughput part: a sockperf echo
 * server written the way a user would, one thread, level-triggered epoll, one syscall per receive
 * and one per send.
 *
 *   pel-epoll-echo --port P --proto udp|tcp --cpu N
 *
 * It answers what examples/udp-echo and examples/tcp-echo answer (echo.h: client and pong bits
 * set, warm-up bit clear; the answer is the same bytes with the client bit cleared), prints
 * "epoll-echo: serving UDP port N on cpu C" when ready and a summary line after SIGTERM/SIGINT.
 * UDP: one socket, a readable event is one recvfrom() and, if it asks for one, one sendto().
 * TCP: a readable event is one recv() into the connection's buffer; every whole message in it is
 * answered by one send() (as tcp-echo answers everything one read brought); an answer the socket
 * would not take waits for EPOLLOUT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SP_HDR		14u
#define SP_MAX		65536u
#define BUF		(256u * 1024)

struct conn {
	int fd;
	uint32_t in_len, out_len;
	uint8_t in[BUF], out[BUF];
};

static volatile sig_atomic_t stop;
static unsigned long long messages, replies, malformed, errors, conns;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint32_t
sp_len(const uint8_t *m)
{
	return (uint32_t)m[10] << 24 | (uint32_t)m[11] << 16 | (uint32_t)m[12] << 8 | m[13];
}

static int
sp_wants_reply(const uint8_t *m)
{
	unsigned f = (unsigned)m[8] << 8 | m[9];

	return (f & 3u) == 3u && !(f & 4u);
}

static void
conn_close(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* Send what waits in c->out; wait for EPOLLOUT if the socket does not take all of it. */
static int
conn_flush(int ep, struct conn *c)
{
	struct epoll_event ev = { .data.ptr = c };
	ssize_t n;

	if (!c->out_len)
		return 0;
	n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
	if (n < 0 && errno != EAGAIN)
		return -1;
	if (n < 0)
		n = 0;
	memmove(c->out, c->out + n, c->out_len - (size_t)n);
	c->out_len -= (uint32_t)n;
	ev.events = c->out_len ? EPOLLIN | EPOLLOUT : EPOLLIN;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	return 0;
}

static int
conn_read(int ep, struct conn *c)
{
	uint32_t off = 0, len;
	ssize_t n;

	if (c->in_len == BUF || c->out_len > BUF - BUF / 4)
		return 0;	/* answers back up: wait for EPOLLOUT */
	n = recv(c->fd, c->in + c->in_len, BUF - c->in_len, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN))
		return -1;
	if (n < 0)
		return 0;
	c->in_len += (uint32_t)n;
	while (c->in_len - off >= SP_HDR) {
		len = sp_len(c->in + off);
		if (len < SP_HDR || len > SP_MAX) {
			malformed++;
			return -1;
		}
		if (c->in_len - off < len || c->out_len + len > BUF)
			break;
		messages++;
		if (sp_wants_reply(c->in + off)) {
			memcpy(c->out + c->out_len, c->in + off, len);
			c->out[c->out_len + 9] &= (uint8_t)~1u;
			c->out_len += len;
			replies++;
		}
		off += len;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return conn_flush(ep, c);
}

static void
serve_udp(int ep, int fd)
{
	static uint8_t buf[SP_MAX];
	struct epoll_event evs[16];
	struct sockaddr_in from;
	socklen_t fl;
	ssize_t n;
	int i, k;

	while (!stop) {
		k = epoll_wait(ep, evs, 16, -1);
		for (i = 0; i < k; i++) {
			fl = sizeof(from);
			n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
			if (n < 0)
				continue;
			if ((size_t)n < SP_HDR || sp_len(buf) != (uint32_t)n) {
				malformed++;
				continue;
			}
			messages++;
			if (!sp_wants_reply(buf))
				continue;
			buf[9] &= (uint8_t)~1u;
			if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl) == n)
				replies++;
			else
				errors++;
		}
	}
}

static void
serve_tcp(int ep, int lfd)
{
	struct epoll_event evs[64], ev;
	struct conn *c;
	int i, k, fd, one = 1;

	while (!stop) {
		k = epoll_wait(ep, evs, 64, -1);
		for (i = 0; i < k; i++) {
			if (!evs[i].data.ptr) {
				fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
				if (fd < 0)
					continue;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				c = calloc(1, sizeof(*c));
				if (!c) {
					close(fd);
					continue;
				}
				c->fd = fd;
				ev.events = EPOLLIN;
				ev.data.ptr = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				conns++;
				continue;
			}
			c = evs[i].data.ptr;
			if ((evs[i].events & EPOLLOUT) && conn_flush(ep, c)) {
				conn_close(ep, c);
				continue;
			}
			if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && conn_read(ep, c))
				conn_close(ep, c);
		}
	}
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
	struct epoll_event ev = { .events = EPOLLIN };
	struct sigaction sa = { .sa_handler = on_signal };
	int port = -1, cpu = -1, tcp = -1, i, fd, ep, one = 1;
	socklen_t al = sizeof(a);
	cpu_set_t set;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--cpu"))
			cpu = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--proto"))
			tcp = proto(argv[i + 1]);
		else
			break;
	}
	if (i != argc || port < 0 || port > 65535 || tcp < 0) {
		fprintf(stderr, "usage: %s --port P --proto udp|tcp [--cpu N]\n", argv[0]);
		return 2;
	}
	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			perror("epoll-echo: sched_setaffinity");
			return 1;
		}
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_port = htons((uint16_t)port);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || (tcp && listen(fd, 1024)) ||
	    getsockname(fd, (struct sockaddr *)&a, &al)) {
		perror("epoll-echo: socket");
		return 1;
	}
	ep = epoll_create1(0);
	ev.data.ptr = NULL;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		perror("epoll-echo: epoll");
		return 1;
	}
	printf("epoll-echo: serving %s port %u on cpu %d\n", tcp ? "TCP" : "UDP", ntohs(a.sin_port),
	       cpu);
	fflush(stdout);
	if (tcp)
		serve_tcp(ep, fd);
	else
		serve_udp(ep, fd);
	printf("epoll-echo: messages %llu replies %llu malformed %llu errors %llu "
	       "connections %llu\n", messages, replies, malformed, errors, conns);
	return 0;
}
