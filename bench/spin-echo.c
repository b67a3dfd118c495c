/* SPDX-License-Identifier: MIT */
/*
 * bench/spin-echo.c - pel-spin-echo: the synthetic server pel-load is tested against, and the
 * "ideal" single-server reference (one FCFS server, no queue but the socket's, no pel).
 *
 *   pel-spin-echo [--port P] [--host A] [--cpu C]
 *
 * One thread, one UDP socket bound to A:P (127.0.0.1, port 0 picks a free one). It prints
 * "pel-spin-echo: port N" once bound, then answers requests in the format of examples/feed.h:
 * a SPIN request after busy-spinning its service_ns (from the moment it was taken from the
 * batch), a BOOK update at once; each reply goes to the sender's address. A datagram
 * pel_feed_req_decode() refuses is counted as malformed and not answered. It takes datagrams
 * with a blocking recvmmsg() (up to 32 at a time). On SIGINT or SIGTERM it answers what is still
 * queued on the socket, prints one summary line and exits 0:
 *   pel-spin-echo: recv N answered N spin N book N malformed N errors N
 * (errors: replies sendto() refused). recvmmsg() waits at most 100 ms, so a signal that lands
 * just before it is seen within 100 ms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "feed.h"
#include "cli.h"

#define BATCH	32u
#define DGRAM	2048u	/* larger than any request, so a long datagram is seen as such */

static volatile sig_atomic_t stopping;

static uint64_t received, answered, spins, books, malformed, send_errors;

static const char summary[] =
	"pel-spin-echo: recv %llu answered %llu spin %llu book %llu malformed %llu errors %llu\n";

static const char usage[] =
	"usage: pel-spin-echo [--port P] [--host A] [--cpu C]\n"
	"  --port P   UDP port to listen on, 0 .. 65535 (0: any free one; default 0)\n"
	"  --host A   IPv4 address to bind (default 127.0.0.1)\n"
	"  --cpu C    pin the thread to CPU C\n";

static void
usage_exit(const char *msg, const char *arg)
{
	fprintf(stderr, "pel-spin-echo: %s '%s'\n\n%s", msg, arg, usage);
	exit(2);
}

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
spin_for(uint64_t ns)
{
	uint64_t end = pel_cli_mono_ns() + ns;

	while (pel_cli_mono_ns() < end)
		;
}

static void
serve_one(int fd, const uint8_t *buf, size_t len, const struct sockaddr_in *from)
{
	struct pel_feed_req r;
	uint8_t out[PEL_FEED_REPLY_SIZE];

	received++;
	if (pel_feed_req_decode(buf, len, &r)) {
		malformed++;
		return;
	}
	if (r.kind == PEL_FEED_SPIN) {
		spin_for(r.service_ns);
		spins++;
	} else {
		books++;
	}
	pel_feed_reply_encode(out, PEL_FEED_ANSWERED, r.req_id, r.send_ns);
	if (sendto(fd, out, sizeof(out), 0, (const struct sockaddr *)from, sizeof(*from)) < 0)
		send_errors++;
	else
		answered++;
}

/* One recvmmsg() and its answers. @return the datagrams taken, 0 none, -1 on a real error. */
static int
serve_batch(int fd, int flags)
{
	static uint8_t bufs[BATCH][DGRAM];
	static struct sockaddr_in from[BATCH];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	int n;

	memset(m, 0, sizeof(m));
	for (unsigned i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = DGRAM;
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
		m[i].msg_hdr.msg_name = &from[i];
		m[i].msg_hdr.msg_namelen = sizeof(from[i]);
	}
	n = recvmmsg(fd, m, BATCH, flags, NULL);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	for (int i = 0; i < n; i++) {
		/* MSG_TRUNC: longer than DGRAM; its length says so and the decoder refuses it */
		size_t len = m[i].msg_hdr.msg_flags & MSG_TRUNC ? DGRAM + 1 : m[i].msg_len;

		serve_one(fd, bufs[i], len, &from[i]);
	}
	return n;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'h' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t alen = sizeof(addr);
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART: EINTR stops */
	const struct timeval tick = { .tv_usec = 100000 };
	const char *host = "127.0.0.1";
	long port = 0, cpu = -1;
	char *end;
	int c, fd;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			port = strtol(optarg, &end, 10);
			if (!*optarg || *end || port < 0 || port > 65535)
				usage_exit("--port wants 0 .. 65535, not", optarg);
			break;
		case 'h':
			host = optarg;
			break;
		case 'c':
			cpu = strtol(optarg, &end, 10);
			if (!*optarg || *end || cpu < 0 || cpu >= CPU_SETSIZE)
				usage_exit("--cpu wants a CPU number, not", optarg);
			break;
		case 'H':
			fputs(usage, stdout);
			return 0;
		default:
			fprintf(stderr, "\n%s", usage);
			return 2;
		}
	}
	if (optind < argc)
		usage_exit("unexpected argument", argv[optind]);
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		usage_exit("--host wants an IPv4 address, not", host);
	addr.sin_port = htons((uint16_t)port);
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET((int)cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			fprintf(stderr, "pel-spin-echo: CPU %ld: %s\n", cpu, strerror(errno));
			return 1;
		}
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    getsockname(fd, (struct sockaddr *)&addr, &alen)) {
		fprintf(stderr, "pel-spin-echo: %s:%ld: %s\n", host, port, strerror(errno));
		return 1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick))) {
		fprintf(stderr, "pel-spin-echo: SO_RCVTIMEO: %s\n", strerror(errno));
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	printf("pel-spin-echo: port %u\n", ntohs(addr.sin_port));
	fflush(stdout);

	while (!stopping)
		if (serve_batch(fd, MSG_WAITFORONE) < 0) {
			fprintf(stderr, "pel-spin-echo: recvmmsg: %s\n", strerror(errno));
			return 1;
		}
	/* what arrived before the signal is still answered and counted */
	while (serve_batch(fd, MSG_DONTWAIT) > 0)
		;
	printf(summary, (unsigned long long)received, (unsigned long long)answered,
	       (unsigned long long)spins, (unsigned long long)books,
	       (unsigned long long)malformed, (unsigned long long)send_errors);
	close(fd);
	return 0;
}
