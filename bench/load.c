/* SPDX-License-Identifier: MIT */
/*
 * bench/load.c - pel-load: an open-loop UDP load generator for the feed format of
 * examples/feed.h (see bench/README.md, "pel-load").
 *
 *   pel-load --port P [--host A] [--rate R] [--arrivals poisson|fixed|bursty[:B]]
 *            [--seconds S] [--warmup S] [--seed N] [--mode feed|spin] [--service SPEC]
 *            [--instruments N] [--sockets N] [--timeout S] [--json FILE] [--cpu C]
 *
 * Open loop: the send times come from the seeded arrival trace of trace_gen.c (the service times
 * too, in spin mode), fixed before the run; the sender never waits for a reply, so a slow server
 * makes latency grow instead of slowing the load down (no coordinated omission). The sender
 * sleeps (timer slack 1 ns) until 50 us before a message's planned time, spins the rest, sends,
 * and records how late it was against the plan (schedule adherence). A receiver thread waits
 * in epoll_wait() on the sockets, takes replies with recvmmsg() and records latency = receive
 * time - planned send time (the time echoed in the reply; the receive time is read when
 * recvmmsg() returns).
 *
 * Messages whose planned time falls in the first --warmup seconds are sent and answered but not
 * counted. After the last send it waits up to --timeout seconds for the replies still out; a
 * request without one is lost. sent = answered + late + rejected + lost, where late and rejected
 * are replies with status PEL_FEED_LATE and PEL_FEED_MALFORMED. A reply that does not decode,
 * names an id never sent or one already answered is a malformed reply, counted apart.
 *
 * Each instrument's messages go out on one of --sockets sockets (instrument % sockets), each
 * with its own source port: the server's flow hashing spreads the instruments, and an
 * instrument's sequence stays in order.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "feed.h"
#include "hist.h"
#include "trace_gen.h"

#define SPIN_NS		50000u		/* spin, not sleep, the last 50 us before a send */
#define RX_BATCH	64u
#define MAX_SOCKETS	64u
#define CONTENT_SALT	UINT64_C(0xfeedfeedfeedfeed)	/* instrument/side/price stream */

static const char usage[] =
	"usage: pel-load --port P [options]\n"
	"  --port P               UDP port of the server, 1 .. 65535\n"
	"  --host A               its IPv4 address (default 127.0.0.1)\n"
	"  --rate R               messages per second, >= 1, k/M suffix (default 10k)\n"
	"  --arrivals A           poisson, fixed, bursty or bursty:B (default poisson)\n"
	"  --seconds S            measured run time, > 0 (default 5)\n"
	"  --warmup S             sent first, not counted, >= 0 (default 1)\n"
	"  --seed N               of the arrival, service and content streams (default 1)\n"
	"  --mode M               feed (order-book updates) or spin (synthetic work; default)\n"
	"  --service SPEC         spin mode: fixed:1us, exp:10us, bimodal:90:5us:55us (default\n"
	"                         fixed:1us)\n"
	"  --instruments N        instrument ids 0 .. N-1, 1 .. 1M (default 1000)\n"
	"  --sockets N            source sockets (ports), 1 .. 64 (default 1)\n"
	"  --timeout S            wait for the last replies, >= 0 (default 1)\n"
	"  --json FILE            also write the figures as JSON to FILE\n"
	"  --cpu C                pin the sender to CPU C\n";

/* Bad input: the message, the usage, exit 2. */
#define bad(...)	pel_cli_usage_exit("pel-load", usage, __VA_ARGS__)

struct opts {
	struct sockaddr_in addr;
	uint64_t rate;
	struct pel_arrival arr;
	struct pel_service svc;
	double seconds, warmup, timeout;
	uint64_t seed;
	int spin;
	uint64_t instruments;
	uint64_t sockets;
	const char *json;
	int cpu;
};

struct run {
	const struct opts *o;
	int fd[MAX_SOCKETS];
	int epfd;
	uint64_t t0;		/* planned time of trace time 0 */
	uint64_t t_measure;	/* t0 + warm-up: planned times from here on count */
	uint64_t cap;		/* request ids 0 .. cap - 1 */
	/* sender only */
	uint64_t sent, send_errors, sent_total, last_send;
	struct pel_hist lateness;
	/* receiver only, read by main after the join */
	uint8_t *done;		/* done[id]: a reply for id came back */
	uint64_t answered, late, rejected, malformed;
	struct pel_hist latency;
	/* relaxed: main polls it to stop waiting early; the join orders the final read */
	_Atomic uint64_t replies_total;
	/* release by main, acquire by the receiver: no reply is waited for after it */
	atomic_bool stop;
};

static void
sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000u),
			       .tv_nsec = (long)(t % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* Sleep while far from @p t, spin when close. @return the time it left at, >= @p t. */
static uint64_t
wait_until(uint64_t t)
{
	uint64_t now = pel_cli_mono_ns();

	if (now + SPIN_NS < t) {
		sleep_until(t - SPIN_NS);
		now = pel_cli_mono_ns();
	}
	while (now < t)
		now = pel_cli_mono_ns();
	return now;
}

static double
parse_seconds(const char *opt, const char *s, double min)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min || v > 86400)
		bad("%s wants seconds, %g .. 86400, not '%s'", opt, min, s);
	return v;
}

static void
parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_PORT = 256, O_HOST, O_RATE, O_ARR, O_SEC, O_WARM, O_SEED, O_MODE, O_SVC, O_INSTR,
	       O_SOCK, O_TIMEOUT, O_JSON, O_CPU, O_HELP };
	static const struct option lopts[] = {
		{ "port", required_argument, NULL, O_PORT },
		{ "host", required_argument, NULL, O_HOST },
		{ "rate", required_argument, NULL, O_RATE },
		{ "arrivals", required_argument, NULL, O_ARR },
		{ "seconds", required_argument, NULL, O_SEC },
		{ "warmup", required_argument, NULL, O_WARM },
		{ "seed", required_argument, NULL, O_SEED },
		{ "mode", required_argument, NULL, O_MODE },
		{ "service", required_argument, NULL, O_SVC },
		{ "instruments", required_argument, NULL, O_INSTR },
		{ "sockets", required_argument, NULL, O_SOCK },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "json", required_argument, NULL, O_JSON },
		{ "cpu", required_argument, NULL, O_CPU },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1", *service = NULL;
	char err[160];
	uint64_t v, port = 0;
	int c;

	*o = (struct opts){ .rate = 10000, .seconds = 5, .warmup = 1, .timeout = 1, .seed = 1,
			    .spin = 1, .instruments = 1000, .sockets = 1, .cpu = -1 };
	o->arr.kind = PEL_ARRIVAL_POISSON;
	opterr = 0;
	/* the leading ':' makes a missing value ':' rather than '?' */
	while ((c = getopt_long(argc, argv, ":", lopts, NULL)) != -1) {
		switch (c) {
		case O_PORT:
			if (!pel_cli_count(optarg, 1, 65535, &port) || strpbrk(optarg, "kMG"))
				bad("--port wants 1 .. 65535, not '%s'", optarg);
			break;
		case O_HOST:
			host = optarg;
			break;
		case O_RATE:
			if (!pel_cli_count(optarg, 1, 100000000, &o->rate))
				bad("--rate wants msgs/s, 1 .. 100M, not '%s'", optarg);
			break;
		case O_ARR:
			if (pel_arrival_parse(optarg, &o->arr, err, sizeof(err)))
				bad("--arrivals: %s", err);
			break;
		case O_SEC:
			o->seconds = parse_seconds("--seconds", optarg, 0.001);
			break;
		case O_WARM:
			o->warmup = parse_seconds("--warmup", optarg, 0);
			break;
		case O_TIMEOUT:
			o->timeout = parse_seconds("--timeout", optarg, 0);
			break;
		case O_SEED:
			if (!pel_cli_count(optarg, 0, UINT64_MAX, &o->seed))
				bad("--seed wants a number, not '%s'", optarg);
			break;
		case O_MODE:
			if (!strcmp(optarg, "feed") || !strcmp(optarg, "spin"))
				o->spin = optarg[0] == 's';
			else
				bad("--mode wants feed or spin, not '%s'", optarg);
			break;
		case O_SVC:
			service = optarg;
			break;
		case O_INSTR:
			if (!pel_cli_count(optarg, 1, 1000000, &o->instruments))
				bad("--instruments wants 1 .. 1M, not '%s'", optarg);
			break;
		case O_SOCK:
			if (!pel_cli_count(optarg, 1, MAX_SOCKETS, &o->sockets))
				bad("--sockets wants 1 .. 64, not '%s'", optarg);
			break;
		case O_JSON:
			o->json = optarg;
			break;
		case O_CPU:
			if (!pel_cli_count(optarg, 0, CPU_SETSIZE - 1, &v))
				bad("--cpu wants a CPU number, not '%s'", optarg);
			o->cpu = (int)v;
			break;
		case O_HELP:
			fputs(usage, stdout);
			exit(0);
		case ':':
			bad("%s wants a value", argv[optind - 1]);
		default:
			bad("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		bad("unexpected argument '%s'", argv[optind]);
	if (!port)
		bad("--port is required");
	o->addr.sin_family = AF_INET;
	o->addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &o->addr.sin_addr) != 1)
		bad("--host wants an IPv4 address, not '%s'", host);
	if (service && !o->spin)
		bad("--service is for --mode spin only");
	if (pel_service_parse(service ? service : "fixed:1us", &o->svc, err, sizeof(err)))
		bad("--service: %s", err);
	if (pel_service_mean(&o->svc) * 2 > PEL_FEED_SPIN_MAX_NS)
		bad("--service: mean over 0.5 s is no service time");
}

/* Connected, non-blocking UDP sockets, each on its own source port, all in one epoll set. */
static int
open_sockets(struct run *r)
{
	struct epoll_event ev = { .events = EPOLLIN };

	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		return -errno;
	for (uint64_t i = 0; i < r->o->sockets; i++) {
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		r->fd[i] = fd;
		if (fd < 0 || connect(fd, (const struct sockaddr *)&r->o->addr, sizeof(r->o->addr)))
			return -errno;
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev))
			return -errno;
	}
	return 0;
}

static void
take_reply(struct run *r, const uint8_t *buf, size_t len, uint64_t now)
{
	struct pel_feed_reply rep;

	if (pel_feed_reply_decode(buf, len, &rep) || rep.req_id >= r->cap || r->done[rep.req_id] ||
	    rep.send_ns < r->t0 || rep.send_ns > now) {
		r->malformed++;
		return;
	}
	r->done[rep.req_id] = 1;
	atomic_fetch_add_explicit(&r->replies_total, 1, memory_order_relaxed);
	if (rep.send_ns < r->t_measure)
		return;
	if (rep.status == PEL_FEED_ANSWERED) {
		r->answered++;
		pel_hist_record(&r->latency, now - rep.send_ns);
	} else if (rep.status == PEL_FEED_LATE) {
		r->late++;
	} else {
		r->rejected++;
	}
}

static void *
receiver(void *arg)
{
	struct run *r = arg;
	static uint8_t bufs[RX_BATCH][256];
	struct mmsghdr m[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct epoll_event ev[MAX_SOCKETS];

	/* acquire: pairs with the release in main(); every send and wait is over */
	while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
		int n = epoll_wait(r->epfd, ev, MAX_SOCKETS, 10);

		for (int e = 0; e < n; e++) {
			int fd = r->fd[ev[e].data.u32], got;

			do {
				memset(m, 0, sizeof(m));
				for (unsigned i = 0; i < RX_BATCH; i++) {
					iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
					m[i].msg_hdr.msg_iov = &iov[i];
					m[i].msg_hdr.msg_iovlen = 1;
				}
				got = recvmmsg(fd, m, RX_BATCH, MSG_DONTWAIT, NULL);
				uint64_t now = pel_cli_mono_ns();

				for (int i = 0; i < got; i++) {
					size_t len = m[i].msg_hdr.msg_flags & MSG_TRUNC ?
						     sizeof(bufs[i]) + 1 : m[i].msg_len;

					take_reply(r, bufs[i], len, now);
				}
			} while (got == (int)RX_BATCH);
		}
	}
	return NULL;
}

/* Send the whole trace at its planned times; the calling thread is the sender. */
static void
send_all(struct run *r)
{
	const struct opts *o = r->o;
	uint64_t *seq = calloc(o->instruments, sizeof(*seq));
	int64_t *price = malloc(o->instruments * sizeof(*price));
	double end = (o->warmup + o->seconds) * 1e9;
	struct pel_rng content;
	struct pel_gen g;
	uint8_t msg[PEL_FEED_REQ_SIZE];

	if (!seq || !price) {
		fprintf(stderr, "pel-load: out of memory for %llu instruments\n",
			(unsigned long long)o->instruments);
		exit(1);
	}
	for (uint64_t i = 0; i < o->instruments; i++)
		price[i] = 100 * PEL_FEED_PRICE_SCALE;
	pel_rng_seed(&content, o->seed ^ CONTENT_SALT);
	pel_gen_init(&g, &o->arr, &o->svc, (double)o->rate / 1e9, o->seed);
	for (uint64_t id = 0; id < r->cap; id++) {
		struct pel_req q = pel_gen_next(&g);
		struct pel_feed_req f = { .req_id = id };
		uint64_t now;

		if (q.arrival >= end)
			break;
		f.send_ns = r->t0 + (uint64_t)llround(q.arrival);
		f.instrument = pel_rng_below(&content, (uint32_t)o->instruments);
		f.seq = ++seq[f.instrument];
		if (o->spin) {
			f.kind = PEL_FEED_SPIN;
			f.service_ns = (uint64_t)llround(q.service);
		} else {
			f.kind = PEL_FEED_BOOK;
			f.side = (uint8_t)pel_rng_below(&content, 2);
			f.quantity = 1 + pel_rng_below(&content, 1000);
			price[f.instrument] += (int64_t)pel_rng_below(&content, 21) - 10;
			if (price[f.instrument] < 1)
				price[f.instrument] = 1;
			f.price = price[f.instrument];
		}
		pel_feed_req_encode(msg, &f);
		now = wait_until(f.send_ns);
		if (send(r->fd[f.instrument % o->sockets], msg, sizeof(msg), 0) != sizeof(msg)) {
			if (f.send_ns >= r->t_measure)
				r->send_errors++;
			continue;
		}
		r->sent_total++;
		if (f.send_ns < r->t_measure)
			continue;
		r->sent++;
		r->last_send = now;
		pel_hist_record(&r->lateness, now - f.send_ns);
	}
	free(seq);
	free(price);
}

struct metric {
	const char *name;
	double value;
	const char *unit;
};

/* pel-bench's form: {"bench", "cpu", "metrics": [{name, value, unit}], "ratios": []}. */
static int
write_json(const char *path, const char *cpu, const char *params, const struct metric *m,
	   unsigned n)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		fprintf(stderr, "pel-load: %s: %s\n", path, strerror(errno));
		return 1;
	}
	fputs("{\"bench\": \"load\", \"cpu\": ", f);
	pel_cli_json_string(f, cpu);
	fputs(", \"params\": ", f);
	pel_cli_json_string(f, params);
	fputs(", \"metrics\": [", f);
	for (unsigned i = 0; i < n; i++) {
		fputs(i ? ", {\"name\": " : "{\"name\": ", f);
		pel_cli_json_string(f, m[i].name);
		if (isfinite(m[i].value))
			fprintf(f, ", \"value\": %.9g, \"unit\": ", m[i].value);
		else
			fputs(", \"value\": null, \"unit\": ", f);
		pel_cli_json_string(f, m[i].unit);
		fputc('}', f);
	}
	fputs("], \"ratios\": []}\n", f);
	if (fclose(f)) {
		fprintf(stderr, "pel-load: %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

static int
report(const struct run *r)
{
	const struct opts *o = r->o;
	static const double qs[] = { 0.5, 0.9, 0.99, 0.999, 0.9999 };
	static const char *const qn[] = { "p50", "p90", "p99", "p99.9", "p99.99" };
	uint64_t lost = r->sent - r->answered - r->late - r->rejected;
	double span = r->last_send > r->t_measure ? (double)(r->last_send - r->t_measure) : 0;
	double achieved = span > 0 ? (double)r->sent * 1e9 / span : NAN;
	char cpu[200], svc[64], arr[64], params[400], name[12][32];
	struct metric m[32];
	unsigned n = 0;

	pel_bench_cpu_model(cpu, sizeof(cpu));
	pel_service_format(&o->svc, svc, sizeof(svc));
	pel_arrival_format(&o->arr, arr, sizeof(arr));
	snprintf(params, sizeof(params),
		 "mode %s%s%s arrivals %s rate %llu/s seconds %g warmup %g seed %llu "
		 "instruments %llu sockets %llu -> %s:%u", o->spin ? "spin" : "feed",
		 o->spin ? " service " : "", o->spin ? svc : "", arr,
		 (unsigned long long)o->rate, o->seconds, o->warmup, (unsigned long long)o->seed,
		 (unsigned long long)o->instruments, (unsigned long long)o->sockets,
		 inet_ntoa(o->addr.sin_addr), ntohs(o->addr.sin_port));
	printf("pel-load: %s\n", params);
	printf("cpu: %s, %ld online\n", cpu, sysconf(_SC_NPROCESSORS_ONLN));
	printf("%-12s sent %llu  answered %llu  late %llu  rejected %llu  lost %llu  "
	       "malformed_replies %llu  send_errors %llu\n", "counts",
	       (unsigned long long)r->sent, (unsigned long long)r->answered,
	       (unsigned long long)r->late, (unsigned long long)r->rejected,
	       (unsigned long long)lost, (unsigned long long)r->malformed,
	       (unsigned long long)r->send_errors);
	printf("%-12s offered %llu/s  achieved %.1f/s\n", "rate", (unsigned long long)o->rate,
	       achieved);
	printf("%-12s p50 %llu  p99 %llu  max %llu\n", "send late ns",
	       (unsigned long long)pel_hist_quantile(&r->lateness, 0.5),
	       (unsigned long long)pel_hist_quantile(&r->lateness, 0.99),
	       (unsigned long long)r->lateness.max);
	printf("%-12s", "latency ns");
	for (unsigned i = 0; i < 5; i++)
		printf(" %s %llu ", qn[i],
		       (unsigned long long)pel_hist_quantile(&r->latency, qs[i]));
	printf(" max %llu\n", (unsigned long long)(r->latency.n ? r->latency.max : 0));

	m[n++] = (struct metric){ "sent", (double)r->sent, "msgs" };
	m[n++] = (struct metric){ "answered", (double)r->answered, "msgs" };
	m[n++] = (struct metric){ "late_dropped", (double)r->late, "msgs" };
	m[n++] = (struct metric){ "rejected", (double)r->rejected, "msgs" };
	m[n++] = (struct metric){ "lost", (double)lost, "msgs" };
	m[n++] = (struct metric){ "malformed_replies", (double)r->malformed, "msgs" };
	m[n++] = (struct metric){ "send_errors", (double)r->send_errors, "msgs" };
	m[n++] = (struct metric){ "offered_rate", (double)o->rate, "msgs/s" };
	m[n++] = (struct metric){ "achieved_rate", achieved, "msgs/s" };
	m[n++] = (struct metric){ "send_late_p50",
				  (double)pel_hist_quantile(&r->lateness, 0.5), "ns" };
	m[n++] = (struct metric){ "send_late_p99",
				  (double)pel_hist_quantile(&r->lateness, 0.99), "ns" };
	m[n++] = (struct metric){ "send_late_max", (double)r->lateness.max, "ns" };
	for (unsigned i = 0; i < 5; i++) {
		snprintf(name[i], sizeof(name[i]), "latency_%s", qn[i]);
		m[n++] = (struct metric){ name[i], (double)pel_hist_quantile(&r->latency, qs[i]),
					  "ns" };
	}
	m[n++] = (struct metric){ "latency_max", (double)(r->latency.n ? r->latency.max : 0),
				  "ns" };
	return o->json ? write_json(o->json, cpu, params, m, n) : 0;
}

int
main(int argc, char **argv)
{
	static struct run r;
	static struct opts o;
	double expect;
	pthread_t rx;
	uint64_t deadline;
	int err;

	parse_args(argc, argv, &o);
	r.o = &o;
	/* room for the trace's ids: its mean count plus far more than any Poisson excursion */
	expect = (double)o.rate * (o.warmup + o.seconds);
	r.cap = (uint64_t)(expect * 1.1 + 10 * sqrt(expect) + 1024);
	r.done = calloc(r.cap, 1);
	if (!r.done || pel_hist_init(&r.latency) || pel_hist_init(&r.lateness)) {
		fprintf(stderr, "pel-load: out of memory for %llu requests\n",
			(unsigned long long)r.cap);
		return 1;
	}
	err = open_sockets(&r);
	if (err) {
		fprintf(stderr, "pel-load: socket to %s:%u: %s\n", inet_ntoa(o.addr.sin_addr),
			ntohs(o.addr.sin_port), strerror(-err));
		return 1;
	}
	err = pthread_create(&rx, NULL, receiver, &r);
	if (err) {
		fprintf(stderr, "pel-load: receiver thread: %s\n", strerror(err));
		return 1;
	}
	if (o.cpu >= 0) {	/* after the receiver started: it keeps the wider mask */
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(o.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			fprintf(stderr, "pel-load: CPU %d: %s\n", o.cpu, strerror(errno));
			return 1;
		}
	}
	/* the default 50 us timer slack would make every wake-up up to 50 us late */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	r.t0 = pel_cli_mono_ns() + 10000000;	/* the plan starts 10 ms from now */
	r.t_measure = r.t0 + (uint64_t)llround(o.warmup * 1e9);
	send_all(&r);

	deadline = pel_cli_mono_ns() + (uint64_t)llround(o.timeout * 1e9);
	/* relaxed: a hint to stop early; the join below orders everything the receiver wrote */
	while (atomic_load_explicit(&r.replies_total, memory_order_relaxed) < r.sent_total &&
	       pel_cli_mono_ns() < deadline)
		sleep_until(pel_cli_mono_ns() + 1000000);
	/* release: pairs with the acquire in receiver() */
	atomic_store_explicit(&r.stop, true, memory_order_release);
	pthread_join(rx, NULL);
	err = report(&r);
	for (uint64_t i = 0; i < o.sockets; i++)
		close(r.fd[i]);
	close(r.epfd);
	free(r.done);
	pel_hist_fini(&r.latency);
	pel_hist_fini(&r.lateness);
	return err;
}
