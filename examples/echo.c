/* SPDX-License-Identifier: MIT */
/*
 * examples/echo.c - the command line, set-up and signal handling udp-echo and tcp-echo share.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "echo.h"

static void
usage(const char *prog)
{
	fprintf(stderr, "usage: %s --port P [--cpus LIST] [--idle spin|backoff|park] "
		"[--io per-worker|dedicated [--io-cpu N] [--steer fixed|hash|rr|jsq]]\n"
		"  --port P      UDP/TCP port to serve sockperf on (0: any free port, printed)\n"
		"  --cpus LIST   worker CPUs, e.g. \"1\" or \"2-5\" (default: the isolated CPUs, "
		"else all but CPU 0)\n"
		"  --idle MODE   what an idle worker does (default backoff)\n"
		"  --io MODE     per-worker: each worker owns an io_uring (default); dedicated: one\n"
		"                I/O thread owns it and hands completions to the workers\n"
		"  --io-cpu N    dedicated: the CPU the I/O thread is pinned to (default: none)\n"
		"  --steer HOW   dedicated: which worker gets each received message (default\n"
		"                fixed: the socket's worker)\n", prog);
}

int
echo_parse(int argc, char **argv, struct echo_opts *o)
{
	static const struct option longs[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "idle", required_argument, NULL, 'i' },
		{ "io", required_argument, NULL, 'o' },
		{ "io-cpu", required_argument, NULL, 'C' },
		{ "steer", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_port = false;
	int c;

	o->port = 0;
	o->cpus = NULL;
	o->idle = PEL_IDLE_BACKOFF;
	o->io_mode = PEL_IO_PER_WORKER;
	o->io_cpu = -1;
	o->steer = PEL_IO_STEER_FIXED;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		char *end;
		unsigned long v;

		switch (c) {
		case 'p':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v > 65535 || optarg[0] == '-') {
				fprintf(stderr, "%s: --port %s: not a port number 0..65535\n",
					o->prog, optarg);
				goto bad;
			}
			o->port = (unsigned)v;
			have_port = true;
			break;
		case 'c':
			o->cpus = optarg;
			break;
		case 'i':
			if (!strcmp(optarg, "spin")) {
				o->idle = PEL_IDLE_SPIN;
			} else if (!strcmp(optarg, "backoff")) {
				o->idle = PEL_IDLE_BACKOFF;
			} else if (!strcmp(optarg, "park")) {
				o->idle = PEL_IDLE_PARK;
			} else {
				fprintf(stderr, "%s: --idle %s: use spin, backoff or park\n", o->prog,
					optarg);
				goto bad;
			}
			break;
		case 'o':
			if (!strcmp(optarg, "dedicated")) {
				o->io_mode = PEL_IO_DEDICATED;
			} else if (!strcmp(optarg, "per-worker")) {
				o->io_mode = PEL_IO_PER_WORKER;
			} else {
				fprintf(stderr, "%s: --io %s: use per-worker or dedicated\n", o->prog,
					optarg);
				goto bad;
			}
			break;
		case 'C':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v > 4095 || optarg[0] == '-') {
				fprintf(stderr, "%s: --io-cpu %s: not a CPU number\n", o->prog, optarg);
				goto bad;
			}
			o->io_cpu = (int)v;
			break;
		case 's': {
			static const char *const names[] = { "fixed", "hash", "rr", "jsq" };

			o->steer = 4;
			for (unsigned k = 0; k < 4; k++)
				if (!strcmp(optarg, names[k]))
					o->steer = k;
			if (o->steer == 4) {
				fprintf(stderr, "%s: --steer %s: use fixed, hash, rr or jsq\n", o->prog,
					optarg);
				goto bad;
			}
			break;
		}
		case 'h':
			usage(o->prog);
			exit(0);
		default:
			fprintf(stderr, "%s: unknown option or missing value: %s\n", o->prog,
				argv[optind - 1]);
			goto bad;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument: %s\n", o->prog, argv[optind]);
		goto bad;
	}
	if (!have_port) {
		fprintf(stderr, "%s: --port is required\n", o->prog);
		goto bad;
	}
	if (o->io_mode != PEL_IO_DEDICATED && (o->io_cpu >= 0 || o->steer)) {
		fprintf(stderr, "%s: --io-cpu and --steer go with --io dedicated\n", o->prog);
		goto bad;
	}
	return 0;
bad:
	usage(o->prog);
	return 2;
}

int
echo_start(const struct echo_opts *o, unsigned buf_count, unsigned buf_size, struct echo_rt *e)
{
	struct pel_io_config ic;
	struct pel_config cfg;
	sigset_t set;
	int err;

	e->rt = NULL;
	e->io = NULL;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	/* before pel_create(): the workers inherit the mask, so only the signalfd sees them */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	e->sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (e->sigfd < 0) {
		perror("signalfd");
		return 1;
	}
	pel_config_default(&cfg);
	cfg.cpus = o->cpus;
	cfg.idle = o->idle;
	err = pel_create(&cfg, &e->rt);
	if (err) {
		fprintf(stderr, "%s: pel_create: %s: %s\n", o->prog, pel_strerror(err),
			pel_last_error());
		goto out_sig;
	}
	pel_io_config_default(&ic);
	ic.mode = o->io_mode;
	ic.io_cpu = o->io_cpu;
	ic.steer = o->steer;
	ic.buf_count = buf_count;
	ic.buf_size = buf_size;
	err = pel_io_create(e->rt, &ic, &e->io);
	if (err) {
		fprintf(stderr, "%s: pel_io_create: %s: %s\n", o->prog, pel_strerror(err),
			pel_last_error());
		goto out_rt;
	}
	return 0;

out_rt:
	pel_destroy(e->rt);
	e->rt = NULL;
out_sig:
	close(e->sigfd);
	return 1;
}

int
echo_wait(struct echo_rt *e)
{
	struct signalfd_siginfo si;

	for (;;) {
		ssize_t n = read(e->sigfd, &si, sizeof(si));

		if (n == (ssize_t)sizeof(si))
			return (int)si.ssi_signo;
		if (n < 0 && errno != EINTR) {
			perror("read signalfd");
			return SIGTERM;
		}
	}
}

int
echo_quiesce(const struct echo_rt *e, int64_t timeout_ns)
{
	struct timespec nap = { 0, 1000000 }, t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		uint64_t inflight = 0;

		/* tasks first: a request from a producer counts as in flight once its task ran */
		if (pel_drain(e->rt, timeout_ns))
			return -ETIMEDOUT;
		for (unsigned w = 0; w < pel_worker_count(e->rt); w++) {
			struct pel_io_stats s;

			if (pel_io_stats(e->io, w, &s) == 0)
				inflight += s.inflight;
		}
		/* none in flight: a last drain, for the tasks and callbacks of results that came in
		 * between the drain above and the look at inflight (the last of an operation's
		 * results leaves inflight when it is handed to its worker, not when its callback
		 * has run) */
		if (!inflight)
			return pel_drain(e->rt, timeout_ns) ? -ETIMEDOUT : 0;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * PEL_NS_PER_S + (t.tv_nsec - t0.tv_nsec) > timeout_ns)
			return -ETIMEDOUT;
		nanosleep(&nap, NULL);
	}
}

void
echo_io_stats(const struct echo_rt *e, char *line, unsigned len)
{
	struct pel_io_stats t = { 0 };

	for (unsigned w = 0; w < pel_worker_count(e->rt); w++) {
		struct pel_io_stats s;

		if (pel_io_stats(e->io, w, &s))
			continue;
		t.submitted += s.submitted;
		t.completed += s.completed;
		t.enters += s.enters;
		t.sq_full += s.sq_full;
		t.cq_overflow += s.cq_overflow;
		t.rearms += s.rearms;
		t.nobufs += s.nobufs;
		t.inflight += s.inflight;
	}
	snprintf(line, len, "submitted %llu completed %llu enters %llu sq_full %llu "
		 "cq_overflow %llu rearms %llu nobufs %llu inflight %llu",
		 (unsigned long long)t.submitted, (unsigned long long)t.completed,
		 (unsigned long long)t.enters, (unsigned long long)t.sq_full,
		 (unsigned long long)t.cq_overflow, (unsigned long long)t.rearms,
		 (unsigned long long)t.nobufs, (unsigned long long)t.inflight);
}
