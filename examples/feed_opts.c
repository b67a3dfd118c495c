/* SPDX-License-Identifier: MIT */
/*
 * examples/feed_opts.c - the command line, signals, socket and report the demo's two servers
 * share (feed_opts.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "feed_opts.h"

static int sigfd = -1;

static void
usage(const struct feed_opts *o)
{
	fprintf(stderr,
		"usage: %s --port P [options]\n"
		"  --port P            UDP port to serve the feed on, 0 .. 65535 (0: any, printed)\n"
		"  --cpus LIST         %s\n"
		"  --instruments N     instrument ids 0 .. N-1, 1 .. 1000000 (default 1000); others\n"
		"                      are answered 'refused'\n"
		"  --deadline-us D     drop (answer 'late') a request still queued D us after its\n"
		"                      planned send time; 0: never (default 1000)\n"
		"  --fanout-every N    one book update in N is scored by every model, fanned out;\n"
		"                      0: never (default 64)\n"
		"  --models M          scoring models, 1 .. 64 (default 8)\n"
		"  --rounds R          mixing passes per model, 1 .. 1000 (default 4)\n"
		"  --seconds S         stop after S seconds (default: at SIGINT or SIGTERM)\n"
		"  --books FILE        write every instrument's book here at exit\n"
		"  --stats FILE        write the counters here as JSON at exit\n", o->prog,
		o->server == FEED_SERVER_PEL ?
		"worker CPUs, e.g. \"1\" (default: the isolated CPUs, else all but CPU 0)" :
		"CPUs of the epoll thread and the pool, e.g. \"1\" (default: all)");
	if (o->server == FEED_SERVER_PEL)
		fputs("  --idle MODE         spin, backoff or park (default spin)\n"
		      "  --io MODE           per-worker (default) or dedicated\n"
		      "  --io-cpu N          dedicated: the I/O thread's CPU\n"
		      "  --rt-priority N     run the workers SCHED_FIFO at N, 1 .. 99 (default: leave\n"
		      "                      the policy)\n"
		      "  --rt-batch N        ready requests a worker runs before it looks at its rings\n"
		      "                      and ring again, 1 .. 256 (default 8)\n"
		      "  --max-ops N         I/O operations in flight per worker, 4 .. 1048576 (default:\n"
		      "                      room for every reply; fewer: replies wait their turn)\n"
		      "  --mlock             lock the process's memory\n", stderr);
	else
		fputs("  --threads N         pool threads, 1 .. 256 (default: one per CPU of --cpus)\n",
		      stderr);
}

/* @return 0 and *v; -1 after a message. */
static int
number(const struct feed_opts *o, const char *opt, const char *s, uint64_t min, uint64_t max,
       uint64_t *v)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || x < min || x > max) {
		fprintf(stderr, "%s: %s %s: not a number %llu .. %llu\n", o->prog, opt, s,
			(unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*v = x;
	return 0;
}

static void
not_here(const struct feed_opts *o, const char *opt)
{
	fprintf(stderr, "%s: %s is an option of %s only\n", o->prog, opt,
		o->server == FEED_SERVER_PEL ? "feed-pool" : "pel-feed");
}

int
feed_parse(int argc, char **argv, struct feed_opts *o)
{
	enum { O_PORT = 256, O_CPUS, O_INSTR, O_DEADLINE, O_FANOUT, O_MODELS, O_ROUNDS, O_SECONDS,
	       O_BOOKS, O_STATS, O_IDLE, O_IO, O_IOCPU, O_RTPRIO, O_RTBATCH, O_MAXOPS, O_MLOCK, O_THREADS, O_HELP };
	static const struct option longs[] = {
		{ "port", required_argument, NULL, O_PORT },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "instruments", required_argument, NULL, O_INSTR },
		{ "deadline-us", required_argument, NULL, O_DEADLINE },
		{ "fanout-every", required_argument, NULL, O_FANOUT },
		{ "models", required_argument, NULL, O_MODELS },
		{ "rounds", required_argument, NULL, O_ROUNDS },
		{ "seconds", required_argument, NULL, O_SECONDS },
		{ "books", required_argument, NULL, O_BOOKS },
		{ "stats", required_argument, NULL, O_STATS },
		{ "idle", required_argument, NULL, O_IDLE },
		{ "io", required_argument, NULL, O_IO },
		{ "io-cpu", required_argument, NULL, O_IOCPU },
		{ "rt-priority", required_argument, NULL, O_RTPRIO },
		{ "rt-batch", required_argument, NULL, O_RTBATCH },
		{ "max-ops", required_argument, NULL, O_MAXOPS },
		{ "mlock", no_argument, NULL, O_MLOCK },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool have_port = false, pel = o->server == FEED_SERVER_PEL;
	uint64_t v;
	int c;

	o->port = 0;
	o->cpus = NULL;
	o->instruments = 1000;
	o->deadline_ns = 1000000;
	o->fanout_every = 64;
	o->models = 8;
	o->rounds = 4;
	o->seconds = 0;
	o->books = o->stats = NULL;
	o->idle = 0;		/* PEL_IDLE_SPIN */
	o->io_mode = 0;		/* PEL_IO_PER_WORKER */
	o->io_cpu = -1;
	o->rt_priority = 0;
	o->rt_batch = 8;
	o->max_ops = 0;
	o->mlock = false;
	o->threads = 0;
	opterr = 0;
	/* the leading ':' makes a missing value ':' rather than '?' */
	while ((c = getopt_long(argc, argv, ":", longs, NULL)) != -1) {
		switch (c) {
		case O_PORT:
			if (number(o, "--port", optarg, 0, 65535, &v))
				goto bad;
			o->port = (unsigned)v;
			have_port = true;
			break;
		case O_CPUS:
			o->cpus = optarg;
			break;
		case O_INSTR:
			if (number(o, "--instruments", optarg, 1, FEED_INSTRUMENTS_MAX, &v))
				goto bad;
			o->instruments = (unsigned)v;
			break;
		case O_DEADLINE:
			if (number(o, "--deadline-us", optarg, 0, 60000000, &v))
				goto bad;
			o->deadline_ns = v * 1000;
			break;
		case O_FANOUT:
			if (number(o, "--fanout-every", optarg, 0, 1u << 30, &v))
				goto bad;
			o->fanout_every = (unsigned)v;
			break;
		case O_MODELS:
			if (number(o, "--models", optarg, 1, FEED_MODELS_MAX, &v))
				goto bad;
			o->models = (unsigned)v;
			break;
		case O_ROUNDS:
			if (number(o, "--rounds", optarg, 1, 1000, &v))
				goto bad;
			o->rounds = (unsigned)v;
			break;
		case O_SECONDS: {
			char *end;

			errno = 0;
			o->seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(o->seconds) ||
			    o->seconds <= 0 || o->seconds > 86400) {
				fprintf(stderr, "%s: --seconds %s: not a time in seconds, > 0 .. 86400\n",
					o->prog, optarg);
				goto bad;
			}
			break;
		}
		case O_BOOKS:
			o->books = optarg;
			break;
		case O_STATS:
			o->stats = optarg;
			break;
		case O_IDLE:
			if (!pel) {
				not_here(o, "--idle");
				goto bad;
			}
			if (!strcmp(optarg, "spin")) {
				o->idle = 0;
			} else if (!strcmp(optarg, "backoff")) {
				o->idle = 1;
			} else if (!strcmp(optarg, "park")) {
				o->idle = 2;
			} else {
				fprintf(stderr, "%s: --idle %s: use spin, backoff or park\n", o->prog,
					optarg);
				goto bad;
			}
			break;
		case O_IO:
			if (!pel) {
				not_here(o, "--io");
				goto bad;
			}
			if (!strcmp(optarg, "per-worker")) {
				o->io_mode = 0;
			} else if (!strcmp(optarg, "dedicated")) {
				o->io_mode = 1;
			} else {
				fprintf(stderr, "%s: --io %s: use per-worker or dedicated\n", o->prog,
					optarg);
				goto bad;
			}
			break;
		case O_IOCPU:
			if (!pel) {
				not_here(o, "--io-cpu");
				goto bad;
			}
			if (number(o, "--io-cpu", optarg, 0, 4095, &v))
				goto bad;
			o->io_cpu = (int)v;
			break;
		case O_RTPRIO:
			if (!pel) {
				not_here(o, "--rt-priority");
				goto bad;
			}
			if (number(o, "--rt-priority", optarg, 1, 99, &v))
				goto bad;
			o->rt_priority = (int)v;
			break;
		case O_RTBATCH:
			if (!pel) {
				not_here(o, "--rt-batch");
				goto bad;
			}
			if (number(o, "--rt-batch", optarg, 1, 256, &v))
				goto bad;
			o->rt_batch = (unsigned)v;
			break;
		case O_MAXOPS:
			if (!pel) {
				not_here(o, "--max-ops");
				goto bad;
			}
			/* the receive holds one; a cancel and a reply need room too */
			if (number(o, "--max-ops", optarg, 4, 1u << 20, &v))
				goto bad;
			o->max_ops = (unsigned)v;
			break;
		case O_MLOCK:
			if (!pel) {
				not_here(o, "--mlock");
				goto bad;
			}
			o->mlock = true;
			break;
		case O_THREADS:
			if (pel) {
				not_here(o, "--threads");
				goto bad;
			}
			if (number(o, "--threads", optarg, 1, 256, &v))
				goto bad;
			o->threads = (unsigned)v;
			break;
		case O_HELP:
			usage(o);
			exit(0);
		case ':':
			fprintf(stderr, "%s: %s wants a value\n", o->prog, argv[optind - 1]);
			goto bad;
		default:
			fprintf(stderr, "%s: unknown option %s\n", o->prog, argv[optind - 1]);
			goto bad;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument %s\n", o->prog, argv[optind]);
		goto bad;
	}
	if (!have_port) {
		fprintf(stderr, "%s: --port is required\n", o->prog);
		goto bad;
	}
	if (o->io_cpu >= 0 && o->io_mode != 1) {
		fprintf(stderr, "%s: --io-cpu goes with --io dedicated\n", o->prog);
		goto bad;
	}
	return 0;
bad:
	usage(o);
	return 2;
}

int
feed_signals(const struct feed_opts *o)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	/* before any thread starts: they inherit the mask, so only the signalfd sees them */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sigfd < 0) {
		fprintf(stderr, "%s: signalfd: %s\n", o->prog, strerror(errno));
		return 1;
	}
	return 0;
}

int
feed_wait(const struct feed_opts *o)
{
	struct pollfd pfd = { .fd = sigfd, .events = POLLIN };
	struct signalfd_siginfo si;
	uint64_t end = o->seconds > 0 ? feed_mono_ns() + (uint64_t)(o->seconds * 1e9 + 0.5) : 0;

	for (;;) {
		int ms = -1, n;

		if (end) {
			uint64_t now = feed_mono_ns();

			if (now >= end)
				return 0;
			ms = (int)((end - now + 999999) / 1000000);
		}
		n = poll(&pfd, 1, ms);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "%s: poll: %s\n", o->prog, strerror(errno));
			return SIGTERM;
		}
		if (n > 0 && read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			return (int)si.ssi_signo;
	}
}

/*
 * Make sure no other socket holds o->port, and choose one for port 0, with a socket bound
 * without SO_REUSEPORT (then closed): a reuseport group would let another process's group share
 * the port without an error, and the kernel's choice for port 0 may be a port another reuseport
 * group of the same user holds. @return 0; -1 after a message.
 */
static int
reserve_port(struct feed_opts *o)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port),
				 .sin_addr.s_addr = htonl(INADDR_ANY) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		fprintf(stderr, "%s: socket: %s\n", o->prog, strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &alen)) {
		fprintf(stderr, "%s: UDP port %u: %s%s\n", o->prog, o->port, strerror(errno),
			errno == EADDRINUSE ? " (another program serves it)" : "");
		close(fd);
		return -1;
	}
	o->port = ntohs(a.sin_port);
	close(fd);
	return 0;
}

int
feed_udp_socket(struct feed_opts *o, bool nonblock)
{
	static bool reserved;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port),
				 .sin_addr.s_addr = htonl(INADDR_ANY) };
	socklen_t alen = sizeof(a);
	int one = 1, rcvbuf = 4 << 20;
	int fd;

	if (!reserved) {	/* the first socket: the port is ours alone, or chosen */
		if (reserve_port(o))
			return -1;
		reserved = true;
		a.sin_port = htons((uint16_t)o->port);
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0) {
		fprintf(stderr, "%s: socket: %s\n", o->prog, strerror(errno));
		return -1;
	}
	/* a deep receive queue: a burst waits in it rather than being dropped (best effort: the
	 * kernel caps it at net.core.rmem_max) */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &alen)) {
		fprintf(stderr, "%s: UDP port %u: %s\n", o->prog, o->port, strerror(errno));
		close(fd);
		return -1;
	}
	o->port = ntohs(a.sin_port);	/* port 0: the first socket's, for the others */
	return fd;
}

int
feed_report(const struct feed_opts *o, const struct feed_counters *c, unsigned n,
	    struct feed_book *const *books)
{
	static const char *const names[] = { "received", "answered", "late", "rejected",
					     "malformed", "dropped", "fanouts", "send_errors",
					     "send_retries" };
	enum { N = sizeof(names) / sizeof(names[0]) };
	uint64_t t[N] = { 0 }, gaps = 0, stale = 0, flagged = 0, updates = 0;
	int ret = 0;
	FILE *f;

	for (unsigned i = 0; i < n; i++) {
		const _Atomic uint64_t *v[N] = { &c[i].received, &c[i].answered, &c[i].late,
						 &c[i].rejected, &c[i].malformed, &c[i].dropped,
						 &c[i].fanouts, &c[i].send_errors,
						 &c[i].send_retries };

		for (unsigned k = 0; k < N; k++)
			t[k] += atomic_load_explicit(v[k], memory_order_relaxed);
	}
	for (unsigned i = 0; books && i < o->instruments; i++) {
		if (!books[i])
			continue;
		gaps += books[i]->gaps;
		stale += books[i]->stale;
		flagged += books[i]->flagged;
		updates += books[i]->updates;
	}
	printf("%s:", o->prog);
	for (unsigned k = 0; k < N; k++)
		printf(" %s %llu", names[k], (unsigned long long)t[k]);
	printf(" | books: updates %llu gaps %llu stale %llu flagged %llu\n",
	       (unsigned long long)updates, (unsigned long long)gaps, (unsigned long long)stale,
	       (unsigned long long)flagged);
	fflush(stdout);
	if (o->stats) {
		f = fopen(o->stats, "w");
		if (!f) {
			fprintf(stderr, "%s: %s: %s\n", o->prog, o->stats, strerror(errno));
			ret = 1;
		} else {
			fprintf(f, "{\"server\": \"%s\"", o->prog);
			for (unsigned k = 0; k < N; k++)
				fprintf(f, ", \"%s\": %llu", names[k], (unsigned long long)t[k]);
			fprintf(f, ", \"updates\": %llu, \"gaps\": %llu, \"stale\": %llu, "
				"\"flagged\": %llu}\n", (unsigned long long)updates,
				(unsigned long long)gaps, (unsigned long long)stale,
				(unsigned long long)flagged);
			if (fclose(f)) {
				fprintf(stderr, "%s: %s: %s\n", o->prog, o->stats, strerror(errno));
				ret = 1;
			}
		}
	}
	if (o->books) {
		f = fopen(o->books, "w");
		if (!f) {
			fprintf(stderr, "%s: %s: %s\n", o->prog, o->books, strerror(errno));
			return 1;
		}
		for (unsigned i = 0; books && i < o->instruments; i++)
			if (books[i])
				feed_book_dump(f, i, books[i]);
		if (fclose(f)) {
			fprintf(stderr, "%s: %s: %s\n", o->prog, o->books, strerror(errno));
			ret = 1;
		}
	}
	return ret;
}
