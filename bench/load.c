/* SPDX-License-Identifier: MIT */
/*
 * bench/load.c - pel-load: an open-loop UDP load generator for the feed format of
 * examples/feed.h (see bench/README.md, "pel-load").
 *
 *   pel-load --port P [--host A] [--rate R] [--arrivals poisson|fixed|bursty[:B]]
 *            [--seconds S] [--warmup S] [--seed N] [--mode feed|spin] [--service SPEC]
 *            [--instruments N] [--sockets N] [--timeout S] [--json FILE] [--cpu C]
 *            [--rx-cpu C|any] [--ideal-servers K] [--ideal-service SPEC] [--record FILE]
 *            [--cdf FILE] [--cdf-ideal FILE]
 *
 * Open loop: the send times come from the seeded arrival trace of trace_gen.c (the service times
 * too, in spin mode), fixed before the run; the sender never waits for a reply, so a slow server
 * makes latency grow instead of slowing the load down (no coordinated omission). The sender
 * sleeps (timer slack 1 ns) until 50 us before a message's planned time, spins the rest, and
 * sends every message whose planned time has passed: one at a time while it keeps up, all of
 * them when it fell behind (up to 64, one sendmmsg() per socket). Each message's lateness is
 * the time of its send call - its planned time (schedule adherence).
 *
 * A receiver thread waits in epoll_wait() on the sockets, takes replies with recvmmsg() and
 * records latency = receive time - planned send time (the time echoed in the reply). The
 * receive time is the kernel's software RX stamp (SO_TIMESTAMPNS, taken when the reply entered
 * the stack: netif_rx on loopback), not the time recvmmsg() returned: the receiver shares a CPU
 * with the sender (pinned there by --cpu, or --rx-cpu), and its wake-up behind a spinning
 * sender added tens of us to every reply (p50 47 us against a 1 us server at 2000/s). The stamp
 * is CLOCK_REALTIME; it becomes CLOCK_MONOTONIC by an offset realtime - monotonic sampled
 * between two monotonic reads per receive batch (so a step of the wall clock costs one batch at
 * most). A reply without a stamp falls back to the user-space time and is counted
 * (rx_stamp_missing). What the stamp keeps out, the time from it to recvmmsg() returning, is
 * reported apart (rx_stamp_to_user).
 *
 * --ideal-servers K (default 1, 0 off) replays the trace sent (the planned times of the messages
 * that went out and their service times) through sim.c's c-FCFS with K servers: the latency of
 * an ideal zero-overhead FCFS server on the same arrivals, over the same measured window, beside
 * the measured one (ratios measured/ideal in the JSON). In feed mode there is no service time
 * unless --ideal-service SPEC gives one (drawn from the trace's service stream); without it the
 * ideal is skipped there.
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
 *
 * --record FILE writes every request sent, warm-up included, in send order: its 56 bytes as sent,
 * a status byte (0 answered, 1 late, 2 rejected, 255 no reply), zeros to 64 bytes (docs/feed.md,
 * "Recorded feed"). --cdf FILE and --cdf-ideal FILE write the measured and the ideal latency
 * distributions as "latency_ns cumulative_fraction" lines, one per non-empty histogram bucket.
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
#include "sim.h"
#include "trace_gen.h"

#define SPIN_NS		50000u		/* spin, not sleep, the last 50 us before a send */
#define RX_BATCH	64u
#define RX_NAP_NS	100000u		/* receiver's pause after taking stamped replies */
#define STAMP_SLACK_NS	10000u		/* a kernel stamp this far after the user time is fine */
#define TX_BATCH	64u		/* due messages sent in one go when behind plan */
#define RX_BUF_BYTES	(4 << 20)	/* replies held while the receiver waits for its CPU */
#define REC_SIZE	64u		/* --record: bytes per request */
#define REC_NO_REPLY	255u
#define MAX_SOCKETS	64u
#define CONTENT_SALT	UINT64_C(0xfeedfeedfeedfeed)	/* instrument/side/price stream */
#define FEED_TICK	10	/* price step between book levels: 0.0010 */

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
	"  --cpu C                pin the sender to CPU C\n"
	"  --rx-cpu C|any         pin the receiver to CPU C (default: --cpu's CPU; any: no pin)\n"
	"  --ideal-servers K      ideal zero-overhead FCFS on K servers over the same trace,\n"
	"                         0 .. 64, 0 off (default 1)\n"
	"  --ideal-service SPEC   feed mode: service times for the ideal FCFS (default: none,\n"
	"                         no ideal in feed mode)\n"
	"  --record FILE          write every request sent and its outcome (docs/feed.md)\n"
	"  --cdf FILE             write the latency distribution: latency_ns cumulative_fraction\n"
	"  --cdf-ideal FILE       the same for the ideal FCFS\n";

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
	int rx_cpu;		/* -1: no pin */
	unsigned ideal_servers;	/* 0: no ideal FCFS */
	int ideal_svc;		/* feed mode: --ideal-service given (in svc) */
	const char *record, *cdf, *cdf_ideal;
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
	uint8_t *sent_id;	/* sent_id[id]: id went out */
	/* [id]: its planned send time, stored before it is sent, read by the receiver (relaxed:
	 * a reply can only come after its request left): a reply must echo it */
	_Atomic uint64_t *planned;
	struct pel_req *trace;	/* [id]: planned time - t0 and service, for the ideal FCFS */
	uint8_t (*msg)[PEL_FEED_REQ_SIZE];	/* --record: [id] the bytes sent */
	uint64_t *order;	/* --record: ids in send order, sent_total of them */
	/* receiver only, read by main after the join */
	uint8_t *reply;		/* reply[id]: 0 none yet, else 1 + the reply's status */
	uint64_t answered, late, rejected, malformed, stamp_missing, stamp_rejected;
	struct pel_hist latency;
	struct pel_hist rx_delay;	/* kernel stamp to recvmmsg() return, not in latency */
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
	       O_SOCK, O_TIMEOUT, O_JSON, O_CPU, O_RX_CPU, O_IDEAL, O_IDEAL_SVC, O_RECORD, O_CDF,
	       O_CDF_IDEAL, O_HELP };
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
		{ "rx-cpu", required_argument, NULL, O_RX_CPU },
		{ "ideal-servers", required_argument, NULL, O_IDEAL },
		{ "ideal-service", required_argument, NULL, O_IDEAL_SVC },
		{ "record", required_argument, NULL, O_RECORD },
		{ "cdf", required_argument, NULL, O_CDF },
		{ "cdf-ideal", required_argument, NULL, O_CDF_IDEAL },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1", *service = NULL, *ideal_service = NULL;
	char err[160];
	uint64_t v, port = 0;
	int c, rx_given = 0;

	*o = (struct opts){ .rate = 10000, .seconds = 5, .warmup = 1, .timeout = 1, .seed = 1,
			    .spin = 1, .instruments = 1000, .sockets = 1, .cpu = -1, .rx_cpu = -1,
			    .ideal_servers = 1 };
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
		case O_RX_CPU:
			rx_given = 1;
			if (!strcmp(optarg, "any"))
				o->rx_cpu = -1;
			else if (pel_cli_count(optarg, 0, CPU_SETSIZE - 1, &v) &&
				 !strpbrk(optarg, "kMG"))
				o->rx_cpu = (int)v;
			else
				bad("--rx-cpu wants a CPU number or 'any', not '%s'", optarg);
			break;
		case O_IDEAL:
			if (!pel_cli_count(optarg, 0, PEL_SIM_MAX_WORKERS, &v) ||
			    strpbrk(optarg, "kMG"))
				bad("--ideal-servers wants 0 .. %d, not '%s'", PEL_SIM_MAX_WORKERS,
				    optarg);
			o->ideal_servers = (unsigned)v;
			break;
		case O_IDEAL_SVC:
			ideal_service = optarg;
			break;
		case O_RECORD:
			o->record = optarg;
			break;
		case O_CDF:
			o->cdf = optarg;
			break;
		case O_CDF_IDEAL:
			o->cdf_ideal = optarg;
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
	if (ideal_service && o->spin)
		bad("--ideal-service is for --mode feed (spin uses the service times sent)");
	if (pel_service_parse(service ? service : "fixed:1us", &o->svc, err, sizeof(err)))
		bad("--service: %s", err);
	if (pel_service_mean(&o->svc) * 2 > PEL_FEED_SPIN_MAX_NS)
		bad("--service: mean over 0.5 s is no service time");
	if (ideal_service) {
		if (pel_service_parse(ideal_service, &o->svc, err, sizeof(err)))
			bad("--ideal-service: %s", err);
		o->ideal_svc = 1;
	}
	if (!o->spin && !o->ideal_svc)
		o->ideal_servers = 0;	/* feed mode: no service time to simulate */
	if (o->cdf_ideal && !o->ideal_servers)
		bad("--cdf-ideal wants the ideal FCFS: --ideal-servers 1 or more%s",
		    o->spin ? "" : " and --ideal-service in feed mode");
	if (!rx_given)
		o->rx_cpu = o->cpu;
}

/*
 * Connected, non-blocking UDP sockets, each on its own source port, all in one epoll set, with
 * software RX stamps on and a receive buffer for a few ms of replies (capped by rmem_max; a
 * smaller one is no error, replies it drops are counted lost).
 */
static int
open_sockets(struct run *r)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int on = 1, buf = RX_BUF_BYTES;

	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		return -errno;
	for (uint64_t i = 0; i < r->o->sockets; i++) {
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		r->fd[i] = fd;
		if (fd < 0 || connect(fd, (const struct sockaddr *)&r->o->addr, sizeof(r->o->addr)))
			return -errno;
		if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)))
			return -errno;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev))
			return -errno;
	}
	return 0;
}

/*
 * CLOCK_REALTIME - CLOCK_MONOTONIC, ns: the realtime read between two monotonic ones, the
 * closest pair of three tries (a preemption between the reads makes a pair wide).
 */
static int64_t
realtime_offset(void)
{
	uint64_t best = UINT64_MAX;
	int64_t off = 0;

	for (int i = 0; i < 3; i++) {
		struct timespec ts;
		uint64_t m0 = pel_cli_mono_ns(), m1, real;

		clock_gettime(CLOCK_REALTIME, &ts);
		m1 = pel_cli_mono_ns();
		real = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		if (m1 - m0 < best) {
			best = m1 - m0;
			off = (int64_t)(real - (m0 + (m1 - m0) / 2));
		}
	}
	return off;
}

/* The SO_TIMESTAMPNS stamp of @p h as CLOCK_MONOTONIC ns, or 0 if it has none. */
static uint64_t
rx_stamp(struct msghdr *h, int64_t offset)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
		struct timespec ts;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS)
			continue;
		memcpy(&ts, CMSG_DATA(c), sizeof(ts));
		return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec - (uint64_t)offset;
	}
	return 0;
}

/* A reply taken at @p now (user space), stamped by the kernel at @p stamp (0: no stamp). */
static void
take_reply(struct run *r, const uint8_t *buf, size_t len, uint64_t now, uint64_t stamp)
{
	struct pel_feed_reply rep;
	uint64_t t;

	/* not a reply to a request of ours: undecodable, an id never planned, one answered
	 * already, or a send time that is not the one this id was planned at */
	if (pel_feed_reply_decode(buf, len, &rep) || rep.req_id >= r->cap || r->reply[rep.req_id] ||
	    rep.send_ns != atomic_load_explicit(&r->planned[rep.req_id], memory_order_relaxed) ||
	    rep.send_ns < r->t0 || rep.send_ns > now) {
		r->malformed++;
		return;
	}
	r->reply[rep.req_id] = (uint8_t)(1 + rep.status);
	atomic_fetch_add_explicit(&r->replies_total, 1, memory_order_relaxed);
	if (rep.send_ns < r->t_measure)
		return;
	if (rep.status == PEL_FEED_ANSWERED) {
		r->answered++;
		/* A stamp must lie between the planned send time and now (the offset is good to
		 * tens of ns: a hair after now passes). One outside, a clock step between the
		 * stamp and the offset's sample, is not used: the user-space time is. */
		t = now;
		if (!stamp)
			r->stamp_missing++;
		else if (stamp < rep.send_ns || stamp > now + STAMP_SLACK_NS)
			r->stamp_rejected++;
		else
			t = stamp < now ? stamp : now;
		if (stamp && t != now)
			pel_hist_record(&r->rx_delay, now - t);
		pel_hist_record(&r->latency, t > rep.send_ns ? t - rep.send_ns : 0);
	} else if (rep.status == PEL_FEED_LATE) {
		r->late++;
	} else {
		r->rejected++;
	}
}

/* Take every reply waiting on @p fd. @return how many; *@p unstamped: those without a stamp. */
static unsigned
drain(struct run *r, int fd, unsigned *unstamped)
{
	static uint8_t bufs[RX_BATCH][256];
	static uint8_t ctl[RX_BATCH][CMSG_SPACE(sizeof(struct timespec)) + 64];
	struct mmsghdr m[RX_BATCH];
	struct iovec iov[RX_BATCH];
	unsigned took = 0;
	int got;

	do {
		memset(m, 0, sizeof(m));
		for (unsigned i = 0; i < RX_BATCH; i++) {
			iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
			m[i].msg_hdr.msg_iov = &iov[i];
			m[i].msg_hdr.msg_iovlen = 1;
			m[i].msg_hdr.msg_control = ctl[i];
			m[i].msg_hdr.msg_controllen = sizeof(ctl[i]);
		}
		got = recvmmsg(fd, m, RX_BATCH, MSG_DONTWAIT, NULL);
		uint64_t now = pel_cli_mono_ns();
		int64_t offset = got > 0 ? realtime_offset() : 0;

		for (int i = 0; i < got; i++) {
			size_t len = m[i].msg_hdr.msg_flags & MSG_TRUNC ? sizeof(bufs[i]) + 1 :
				     m[i].msg_len;
			uint64_t stamp = rx_stamp(&m[i].msg_hdr, offset);

			*unstamped += !stamp;
			take_reply(r, bufs[i], len, now, stamp);
		}
		took += got > 0 ? (unsigned)got : 0;
	} while (got == (int)RX_BATCH);
	return took;
}

static void *
receiver(void *arg)
{
	struct run *r = arg;
	struct epoll_event ev[MAX_SOCKETS];
	unsigned unstamped = 0;

	/* acquire: pairs with the release in main(); every send and wait is over */
	while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
		int n = epoll_wait(r->epfd, ev, MAX_SOCKETS, 10);
		unsigned took = 0;

		unstamped = 0;
		for (int e = 0; e < n; e++)
			took += drain(r, r->fd[ev[e].data.u32], &unstamped);
		/*
		 * Stamped replies keep their time in the queue: let the next ones gather for a
		 * while rather than take a wake-up (off the sender's CPU) per reply.
		 */
		if (took && !unstamped)
			sleep_until(pel_cli_mono_ns() + RX_NAP_NS);
	}
	/* what arrived before the stop but was not read yet (this thread was napping or kept
	 * off its CPU) is an answer all the same */
	for (uint64_t i = 0; i < r->o->sockets; i++)
		drain(r, r->fd[i], &unstamped);
	return NULL;
}

/* A message encoded and waiting for its planned time. */
struct out {
	uint8_t msg[PEL_FEED_REQ_SIZE];
	uint64_t id;
	uint64_t send_ns;
	uint64_t sock;
};

/* What the sender keeps while it builds the trace's messages one by one. */
struct plan {
	struct pel_gen g;
	struct pel_rng content;
	uint64_t *seq;		/* [instrument]: the last sequence number */
	int64_t *price;		/* [instrument]: the last price, feed mode */
	double end;		/* ns of trace time: nothing planned at or after it */
	uint64_t next_id;
};

/*
 * The next message of the trace into @p out, and its trace entry into r->trace if kept.
 * @return false once the trace is over (or the ids ran out).
 */
static bool
plan_next(struct run *r, struct plan *p, struct out *out)
{
	const struct opts *o = r->o;
	struct pel_req q = pel_gen_next(&p->g);
	struct pel_feed_req f = { .req_id = p->next_id };

	if (q.arrival >= p->end || p->next_id >= r->cap)
		return false;
	p->next_id++;
	f.send_ns = r->t0 + (uint64_t)llround(q.arrival);
	f.instrument = pel_rng_below(&p->content, (uint32_t)o->instruments);
	f.seq = ++p->seq[f.instrument];
	if (o->spin) {
		f.kind = PEL_FEED_SPIN;
		f.service_ns = (uint64_t)llround(q.service);
	} else {
		f.kind = PEL_FEED_BOOK;
		/* a level 1 .. 16 ticks from a mid that walks a unit a step: bids below, asks
		 * above; one update in 8 removes its level (quantity 0) */
		int64_t *mid = &p->price[f.instrument];
		int64_t off = (int64_t)(1 + pel_rng_below(&p->content, 16)) * FEED_TICK;

		f.side = (uint8_t)pel_rng_below(&p->content, 2);
		f.quantity = pel_rng_below(&p->content, 8) ? 1 + pel_rng_below(&p->content, 1000) : 0;
		*mid += (int64_t)pel_rng_below(&p->content, 3) - 1;
		if (*mid < 20 * FEED_TICK)
			*mid = 20 * FEED_TICK;
		f.price = f.side == PEL_FEED_BID ? *mid - off : *mid + off;
	}
	pel_feed_req_encode(out->msg, &f);
	atomic_store_explicit(&r->planned[f.req_id], f.send_ns, memory_order_relaxed);
	out->id = f.req_id;
	out->send_ns = f.send_ns;
	out->sock = f.instrument % o->sockets;
	if (r->trace)	/* the ideal FCFS sees the planned time and the service sent */
		r->trace[f.req_id] = (struct pel_req){
			(double)(f.send_ns - r->t0), o->spin ? (double)f.service_ns : q.service };
	return true;
}

/* Book message @p b as sent (@p ok) or not, its send call made at @p now. */
static void
account(struct run *r, const struct out *b, uint64_t now, bool ok)
{
	if (!ok) {
		if (b->send_ns >= r->t_measure)
			r->send_errors++;
		return;
	}
	r->sent_id[b->id] = 1;
	if (r->order) {
		memcpy(r->msg[b->id], b->msg, sizeof(b->msg));
		r->order[r->sent_total] = b->id;
	}
	r->sent_total++;
	if (b->send_ns < r->t_measure)
		return;
	r->sent++;
	r->last_send = now;
	pel_hist_record(&r->lateness, now - b->send_ns);
}

/*
 * Send @p n due messages: those of one socket together, in one sendmmsg(), in their order (an
 * instrument's sequence stays in order: it has one socket). A message the kernel refuses is a
 * send error; the ones after it are still tried.
 */
static void
send_due(struct run *r, const struct out *b, unsigned n)
{
	struct mmsghdr h[TX_BATCH];
	struct iovec iov[TX_BATCH];
	unsigned idx[TX_BATCH];
	bool taken[TX_BATCH] = { false };

	for (unsigned i = 0; i < n; i++) {
		unsigned m = 0, off = 0;

		if (taken[i])
			continue;
		for (unsigned j = i; j < n; j++) {
			if (taken[j] || b[j].sock != b[i].sock)
				continue;
			taken[j] = true;
			idx[m] = j;
			iov[m] = (struct iovec){ (void *)b[j].msg, sizeof(b[j].msg) };
			h[m] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[m],
							      .msg_iovlen = 1 } };
			m++;
		}
		if (m == 1) {		/* on plan: one message, the plain call */
			uint64_t now = pel_cli_mono_ns();
			ssize_t len = send(r->fd[b[i].sock], b[i].msg, sizeof(b[i].msg), 0);

			account(r, &b[i], now, len == (ssize_t)sizeof(b[i].msg));
			continue;
		}
		while (off < m) {
			uint64_t now = pel_cli_mono_ns();
			int got = sendmmsg(r->fd[b[i].sock], h + off, m - off, 0);

			if (got <= 0) {	/* the first one failed: book it, try the rest */
				account(r, &b[idx[off++]], now, false);
				continue;
			}
			for (int k = 0; k < got; k++, off++)
				account(r, &b[idx[off]], now,
					h[off].msg_len == sizeof(b[idx[off]].msg));
		}
	}
}

/* Send the whole trace at its planned times; the calling thread is the sender. */
static void
send_all(struct run *r)
{
	const struct opts *o = r->o;
	static struct out b[TX_BATCH];
	struct plan p = { .end = (o->warmup + o->seconds) * 1e9 };
	struct out cur, next;
	bool more, ahead;

	p.seq = calloc(o->instruments, sizeof(*p.seq));
	p.price = malloc(o->instruments * sizeof(*p.price));
	if (!p.seq || !p.price) {
		fprintf(stderr, "pel-load: out of memory for %llu instruments\n",
			(unsigned long long)o->instruments);
		exit(1);
	}
	for (uint64_t i = 0; i < o->instruments; i++)
		p.price[i] = 100 * PEL_FEED_PRICE_SCALE;
	pel_rng_seed(&p.content, o->seed ^ CONTENT_SALT);
	pel_gen_init(&p.g, &o->arr, &o->svc, (double)o->rate / 1e9, o->seed);
	/* one message built ahead: on plan, nothing is built between the wait and the send */
	more = plan_next(r, &p, &cur);
	ahead = more && plan_next(r, &p, &next);
	while (more) {
		uint64_t now = wait_until(cur.send_ns);
		unsigned n = 1;

		/* every message due by now goes in this batch: behind plan, they go out together */
		b[0] = cur;
		while (ahead && n < TX_BATCH && next.send_ns <= now) {
			b[n++] = next;
			ahead = plan_next(r, &p, &next);
		}
		send_due(r, b, n);
		more = ahead;
		cur = next;
		ahead = more && plan_next(r, &p, &next);
	}
	free(p.seq);
	free(p.price);
}

struct metric {
	const char *name;
	double value;
	const char *unit;
};

/* @p m as a JSON array of {name, value[, unit]} (no unit when NULL). */
static void
json_metrics(FILE *f, const struct metric *m, unsigned n)
{
	fputc('[', f);
	for (unsigned i = 0; i < n; i++) {
		fputs(i ? ", {\"name\": " : "{\"name\": ", f);
		pel_cli_json_string(f, m[i].name);
		fputs(", \"value\": ", f);
		pel_cli_json_number(f, m[i].value, 9);
		if (m[i].unit) {
			fputs(", \"unit\": ", f);
			pel_cli_json_string(f, m[i].unit);
		}
		fputc('}', f);
	}
	fputc(']', f);
}

/*
 * pel-bench's form: {"bench", "cpu", "metrics": [{name, value, unit}], "ratios": [{name, value}]}
 * and the run's "params".
 */
static int
write_json(const char *path, const char *cpu, const char *params, const struct metric *m,
	   unsigned n, const struct metric *ratio, unsigned nratios)
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
	fputs(", \"metrics\": ", f);
	json_metrics(f, m, n);
	fputs(", \"ratios\": ", f);
	json_metrics(f, ratio, nratios);
	fputs("}\n", f);
	if (fclose(f)) {
		fprintf(stderr, "pel-load: %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

/*
 * @p h as "latency_ns cumulative_fraction" lines into @p path, one per non-empty bucket: the
 * fraction of values <= the bucket's top (clamped to the largest value recorded), so the last
 * line is "max 1". An empty histogram gives the comment line only.
 */
static int
write_cdf(const char *path, const struct pel_hist *h, const char *what)
{
	FILE *f = fopen(path, "w");
	uint64_t cum = 0;

	if (!f) {
		fprintf(stderr, "pel-load: %s: %s\n", path, strerror(errno));
		return 1;
	}
	fprintf(f, "# pel-load %s latency: latency_ns cumulative_fraction (%llu values)\n", what,
		(unsigned long long)h->n);
	for (unsigned b = 0; b < PEL_HIST_BUCKETS && cum < h->n; b++) {
		uint64_t width, top;

		if (!h->count[b])
			continue;
		cum += h->count[b];
		top = pel_hist_bucket_low(b, &width) + (width - 1);
		fprintf(f, "%llu %.9g\n", (unsigned long long)(top < h->max ? top : h->max),
			cum == h->n ? 1.0 : (double)cum / (double)h->n);
	}
	if (fclose(f)) {
		fprintf(stderr, "pel-load: %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

/*
 * --record: every request sent, in send order, 64 bytes each: the 56 bytes sent, the outcome
 * (0 answered, 1 late, 2 rejected: the reply's status; 255 no reply), 7 zero bytes.
 */
static int
write_record(const struct run *r, const char *path, uint64_t *by_status)
{
	FILE *f = fopen(path, "wb");
	uint8_t rec[REC_SIZE];

	if (!f) {
		fprintf(stderr, "pel-load: %s: %s\n", path, strerror(errno));
		return 1;
	}
	for (uint64_t i = 0; i < r->sent_total; i++) {
		uint64_t id = r->order[i];

		memset(rec, 0, sizeof(rec));
		memcpy(rec, r->msg[id], PEL_FEED_REQ_SIZE);
		rec[PEL_FEED_REQ_SIZE] = r->reply[id] ? (uint8_t)(r->reply[id] - 1) : REC_NO_REPLY;
		by_status[r->reply[id] ? r->reply[id] - 1 : PEL_FEED_STATUS_MAX + 1]++;
		if (fwrite(rec, sizeof(rec), 1, f) != 1)
			break;
	}
	if (ferror(f) | fclose(f)) {
		fprintf(stderr, "pel-load: %s: write failed: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

/*
 * The ideal FCFS: c-FCFS on o->ideal_servers servers over the requests that went out, at their
 * planned times with their service times; the ones planned in the warm-up are left out of
 * @p h. @return 0, 1 on an error (said), or -1 when nothing was measured.
 */
static int
run_ideal(const struct run *r, struct pel_hist *h)
{
	struct pel_sim_cfg cfg = { .policy = PEL_SIM_CFCFS, .workers = r->o->ideal_servers,
				   .seed = r->o->seed };
	struct pel_req *tr = malloc((r->sent_total ? r->sent_total : 1) * sizeof(*tr));
	double warm = (double)(r->t_measure - r->t0);
	uint64_t n = 0;
	int err;

	if (!tr) {
		fprintf(stderr, "pel-load: out of memory for the ideal FCFS\n");
		return 1;
	}
	for (uint64_t id = 0; id < r->cap; id++) {	/* ids are in planned order */
		if (!r->sent_id[id])
			continue;
		tr[n] = r->trace[id];
		cfg.warmup += tr[n].arrival < warm;
		n++;
	}
	cfg.requests = n;
	if (cfg.warmup >= n) {
		free(tr);
		return -1;
	}
	cfg.trace = tr;
	err = pel_sim_run(&cfg, h, NULL, NULL, NULL);
	free(tr);
	if (err) {
		fprintf(stderr, "pel-load: ideal FCFS: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}

static double
ratio_of(uint64_t measured, uint64_t ideal)
{
	return ideal ? (double)measured / (double)ideal : NAN;
}

static int
report(struct run *r)
{
	const struct opts *o = r->o;
	static const double qs[] = { 0.5, 0.9, 0.99, 0.999, 0.9999 };
	static const char *const qn[] = { "p50", "p90", "p99", "p99.9", "p99.99" };
	uint64_t replied = r->answered + r->late + r->rejected;
	uint64_t lost = r->sent > replied ? r->sent - replied : 0;
	double span = r->last_send > r->t_measure ? (double)(r->last_send - r->t_measure) : 0;
	double achieved = span > 0 ? (double)r->sent * 1e9 / span : NAN;
	char cpu[200], svc[64], arr[64], params[400], name[16][32];
	struct metric m[44], ratio[2];
	struct pel_hist ideal = { 0 };
	uint64_t by_status[PEL_FEED_STATUS_MAX + 2] = { 0 };
	unsigned n = 0, nratios = 0;
	int err = 0, have_ideal = 0;

	pel_bench_cpu_model(cpu, sizeof(cpu));
	pel_service_format(&o->svc, svc, sizeof(svc));
	pel_arrival_format(&o->arr, arr, sizeof(arr));
	snprintf(params, sizeof(params),
		 "mode %s%s%s arrivals %s rate %llu/s seconds %g warmup %g seed %llu "
		 "instruments %llu sockets %llu -> %s:%u", o->spin ? "spin" : "feed",
		 o->spin ? " service " : o->ideal_svc ? " ideal-service " : "",
		 o->spin || o->ideal_svc ? svc : "", arr,
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
	printf("%-12s kernel %llu  missing %llu  rejected %llu  stamp_to_user_ns p50 %llu  "
	       "p99 %llu\n", "rx stamps",
	       (unsigned long long)(r->answered - r->stamp_missing - r->stamp_rejected),
	       (unsigned long long)r->stamp_missing, (unsigned long long)r->stamp_rejected,
	       (unsigned long long)pel_hist_quantile(&r->rx_delay, 0.5),
	       (unsigned long long)pel_hist_quantile(&r->rx_delay, 0.99));
	printf("%-12s", "latency ns");
	if (r->latency.n) {
		for (unsigned i = 0; i < 5; i++)
			printf(" %s %llu ", qn[i],
			       (unsigned long long)pel_hist_quantile(&r->latency, qs[i]));
		printf(" max %llu\n", (unsigned long long)r->latency.max);
	} else {
		printf(" none: no request of the measured window was answered\n");
	}
	if (r->sent && !r->answered)
		fprintf(stderr, "pel-load: warning: no reply to any of the %llu requests sent: is a "
			"server listening on %s:%u?\n", (unsigned long long)r->sent,
			inet_ntoa(o->addr.sin_addr), ntohs(o->addr.sin_port));
	if (o->ideal_servers) {
		int got = pel_hist_init(&ideal) ? 1 : run_ideal(r, &ideal);

		if (got > 0)
			err = 1;
		have_ideal = got == 0;
	}
	if (have_ideal) {
		printf("%-12s", "ideal fcfs");
		for (unsigned i = 0; i < 5; i++)
			printf(" %s %llu ", qn[i],
			       (unsigned long long)pel_hist_quantile(&ideal, qs[i]));
		printf(" max %llu  servers %u\n", (unsigned long long)ideal.max,
		       o->ideal_servers);
	}
	if (o->record) {
		err |= write_record(r, o->record, by_status);
		printf("%-12s %s records %llu  answered %llu  late %llu  rejected %llu  "
		       "no_reply %llu  (warm-up included)\n", "record", o->record,
		       (unsigned long long)r->sent_total, (unsigned long long)by_status[0],
		       (unsigned long long)by_status[1], (unsigned long long)by_status[2],
		       (unsigned long long)by_status[3]);
	}
	if (o->cdf)
		err |= write_cdf(o->cdf, &r->latency, "measured");
	if (o->cdf_ideal) {
		if (have_ideal) {
			err |= write_cdf(o->cdf_ideal, &ideal, "ideal fcfs");
		} else {
			fprintf(stderr, "pel-load: %s: no ideal FCFS figures to write\n",
				o->cdf_ideal);
			err = 1;
		}
	}

	m[n++] = (struct metric){ "sent", (double)r->sent, "msgs" };
	m[n++] = (struct metric){ "answered", (double)r->answered, "msgs" };
	m[n++] = (struct metric){ "late_dropped", (double)r->late, "msgs" };
	m[n++] = (struct metric){ "rejected", (double)r->rejected, "msgs" };
	m[n++] = (struct metric){ "lost", (double)lost, "msgs" };
	m[n++] = (struct metric){ "malformed_replies", (double)r->malformed, "msgs" };
	m[n++] = (struct metric){ "send_errors", (double)r->send_errors, "msgs" };
	m[n++] = (struct metric){ "sent_total", (double)r->sent_total, "msgs" };
	m[n++] = (struct metric){ "rx_stamp_missing", (double)r->stamp_missing, "msgs" };
	m[n++] = (struct metric){ "rx_stamp_rejected", (double)r->stamp_rejected, "msgs" };
	m[n++] = (struct metric){ "rx_stamp_to_user_p50",
				  (double)pel_hist_quantile(&r->rx_delay, 0.5), "ns" };
	m[n++] = (struct metric){ "rx_stamp_to_user_p99",
				  (double)pel_hist_quantile(&r->rx_delay, 0.99), "ns" };
	m[n++] = (struct metric){ "offered_rate", (double)o->rate, "msgs/s" };
	m[n++] = (struct metric){ "achieved_rate", achieved, "msgs/s" };
	m[n++] = (struct metric){ "send_late_p50",
				  (double)pel_hist_quantile(&r->lateness, 0.5), "ns" };
	m[n++] = (struct metric){ "send_late_p99",
				  (double)pel_hist_quantile(&r->lateness, 0.99), "ns" };
	m[n++] = (struct metric){ "send_late_max", (double)r->lateness.max, "ns" };
	/* no answered request: no latency (null in the JSON), not 0 */
	for (unsigned i = 0; i < 5; i++) {
		snprintf(name[i], sizeof(name[i]), "latency_%s", qn[i]);
		m[n++] = (struct metric){ name[i], r->latency.n ?
					  (double)pel_hist_quantile(&r->latency, qs[i]) : NAN, "ns" };
	}
	m[n++] = (struct metric){ "latency_max", r->latency.n ? (double)r->latency.max : NAN,
				  "ns" };
	if (have_ideal) {
		for (unsigned i = 0; i < 4; i++) {	/* p50 .. p99.9 */
			snprintf(name[5 + i], sizeof(name[5 + i]), "ideal_latency_%s", qn[i]);
			m[n++] = (struct metric){ name[5 + i],
						  (double)pel_hist_quantile(&ideal, qs[i]), "ns" };
		}
		m[n++] = (struct metric){ "ideal_latency_max", (double)ideal.max, "ns" };
		m[n++] = (struct metric){ "ideal_servers", (double)o->ideal_servers, "servers" };
		ratio[nratios++] = (struct metric){ "p50_vs_ideal_fcfs",
			ratio_of(pel_hist_quantile(&r->latency, 0.5),
				 pel_hist_quantile(&ideal, 0.5)),
			NULL };
		ratio[nratios++] = (struct metric){ "p99_vs_ideal_fcfs",
			ratio_of(pel_hist_quantile(&r->latency, 0.99),
				 pel_hist_quantile(&ideal, 0.99)), NULL };
	}
	pel_hist_fini(&ideal);
	if (o->json)
		err |= write_json(o->json, cpu, params, m, n, ratio, nratios);
	return err;
}

/* How many messages the seeded trace of @p o holds: the same generator, dry. */
static uint64_t
trace_length(const struct opts *o)
{
	double end = (o->warmup + o->seconds) * 1e9;
	struct pel_gen g;
	uint64_t n = 0;

	pel_gen_init(&g, &o->arr, &o->svc, (double)o->rate / 1e9, o->seed);
	while (pel_gen_next(&g).arrival < end)
		n++;
	return n;
}

int
main(int argc, char **argv)
{
	static struct run r;
	static struct opts o;
	pthread_attr_t attr;
	pthread_t rx;
	uint64_t deadline;
	int err;

	parse_args(argc, argv, &o);
	r.o = &o;
	/* room for exactly the trace's ids: the seeded trace counted in a dry pass (a bound from
	 * its mean would cut a bursty trace short) */
	r.cap = trace_length(&o) + 1;
	r.reply = calloc(r.cap, 1);
	r.sent_id = calloc(r.cap, 1);
	r.planned = calloc(r.cap, sizeof(*r.planned));
	if (o.ideal_servers)
		r.trace = malloc(r.cap * sizeof(*r.trace));
	if (o.record) {
		r.msg = malloc(r.cap * sizeof(*r.msg));
		r.order = malloc(r.cap * sizeof(*r.order));
	}
	if (!r.reply || !r.sent_id || !r.planned || (o.ideal_servers && !r.trace) ||
	    (o.record && (!r.msg || !r.order)) || pel_hist_init(&r.latency) ||
	    pel_hist_init(&r.rx_delay) ||
	    pel_hist_init(&r.lateness)) {
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
	/* set before the receiver starts, which reads them: the plan starts 10 ms from now */
	r.t0 = pel_cli_mono_ns() + 10000000;
	r.t_measure = r.t0 + (uint64_t)llround(o.warmup * 1e9);
	/* the default 50 us timer slack would make every wake-up up to 50 us late: set before the
	 * receiver starts, which inherits it (its naps too) */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	err = pthread_attr_init(&attr);
	if (!err && o.rx_cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(o.rx_cpu, &set);
		err = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	}
	if (!err)
		err = pthread_create(&rx, &attr, receiver, &r);
	if (err) {
		fprintf(stderr, "pel-load: receiver thread (CPU %d): %s\n", o.rx_cpu,
			strerror(err));
		return 1;
	}
	pthread_attr_destroy(&attr);
	if (o.cpu >= 0) {	/* after the receiver started: it keeps its own mask */
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(o.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			fprintf(stderr, "pel-load: CPU %d: %s\n", o.cpu, strerror(errno));
			return 1;
		}
	}
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
	free(r.reply);
	free(r.sent_id);
	free((void *)r.planned);
	free(r.trace);
	free(r.msg);
	free(r.order);
	pel_hist_fini(&r.latency);
	pel_hist_fini(&r.rx_delay);
	pel_hist_fini(&r.lateness);
	return err;
}
