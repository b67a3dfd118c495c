/* SPDX-License-Identifier: MIT */
/*
 * bench/main.c - pel-bench: command line, CPU choice, the --json report.
 *
 *   pel-bench SUITE [--json FILE] [--cpus A,B] [options]
 *   pel-bench all [--json FILE] [--cpus A,B] [options]
 *
 * Exit status: 0 ran (whatever the figures); 1 could not run or a correctness check failed;
 * 2 bad usage; 77 this host cannot run it (fewer than two CPUs).
 *
 * "all" runs ring, handoff, pool, jitter, io, parallel and rt in turn, each in a child process
 * (a suite may exit(77) when the host or the build cannot run it, or exit(1)): a skip or a
 * failure is noted and the next suite runs. Each child leaves its report in a shared mapping;
 * --json writes one file holding every report that came back. Exit 1 if a suite failed.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

static const char usage_text[] =
	"usage: pel-bench SUITE [--json FILE] [--cpus A,B] [options]\n"
	"\n"
	"suites:\n"
	"  all       ring, handoff, pool, jitter, io, parallel and rt in turn, each in its own\n"
	"            process; one --json FILE holds every suite's report ({\"bench\": \"all\",\n"
	"            \"suites\": [...], \"skipped\": [...], \"failed\": [...]}); a suite the host\n"
	"            cannot run (exit 77) is skipped; each option goes to every suite taking it\n"
	"  ring      cross-core throughput of 16-byte tasks: pel's ring, ck_ring, rte_ring,\n"
	"            a mutex+condvar queue; one item per op and bursts of 32\n"
	"  handoff   open-loop latency from pel_submit() to the task's first instruction,\n"
	"            beside a cache-line handoff (the floor) and a mutex+condvar thread pool\n"
	"  pool      ns per alloc+free pair of 64-byte objects: pel_alloc/pel_free (local, and\n"
	"            freed on another worker), glibc malloc/free, rte_mempool with its cache\n"
	"  trace     tasks/s with tracepoints compiled out, idle and recording; ns per recorded\n"
	"            event against a bare LTTng-UST tracepoint (--items N tasks, --reps N)\n"
	"  jitter    TSC gaps of a thread spinning on B while a PEL_IDLE_PARK worker on A parks\n"
	"            and wakes at 1 and 10 kHz (none, as built, fence fallback, a bare\n"
	"            membarrier); then pel_submit tasks/s as built and with the fence fallback\n"
	"  io        pel's io_uring layer: nop round trips beside a plain liburing loop (same\n"
	"            flags, and flags 0), on B and A->B; UDP echo RTT over loopback with\n"
	"            DEFER_TASKRUN and PEL_IO_CF_PLAIN beside an epoll busy-poll server\n"
	"  parallel  fork/join of 1..64 members (pel groups, a mutex+condvar pool, OpenMP) and\n"
	"            p99 sojourn under a skewed load: fixed hash, P2C, stealing (--reps N)\n"
	"  rt        a stream of short urgent tasks on a worker loaded with bimodal background\n"
	"            tasks (0.5 us, 0.5% 500 us with yield points): p99 latency as class-0\n"
	"            real-time tasks against the same load in plain FIFO, same run; timer\n"
	"            lateness; ns per pel_should_yield()\n"
	"\n"
	"common options:\n"
	"  --json FILE         also write the figures as JSON to FILE\n"
	"  --cpus A,B          producer on CPU A, consumer/worker on CPU B\n"
	"                      (default: the last two CPUs this process may run on)\n"
	"ring options:\n"
	"  --slots N           ring slots, a power of two (default 1024)\n"
	"  --items N           items per run, both modes (default 3M single, 12M burst)\n"
	"  --reps N            runs of each variant, interleaved; prints the median (default 5)\n"
	"handoff options:\n"
	"  --samples N         tasks submitted per variant (default 200000)\n"
	"  --interval-ns N     planned time between two submits (default 10000)\n"
	"  --rounds N          the variants take turns, N rounds of samples/N each (default 10)\n"
	"pool options:\n"
	"  --items N           alloc+free pairs per run (default 4M)\n"
	"  --reps N            runs of each row, interleaved; prints the median (default 5)\n"
	"jitter options:\n"
	"  --seconds N         spinning time of each run (default 1)\n"
	"  --reps N            runs of each variant, interleaved; prints the median (default 5)\n"
	"  --items N           tasks per submit-cost run (default 2M)\n"
	"rt options:\n"
	"  --samples N         stream tasks per mode (default 20000)\n"
	"  --interval-ns N     time between two background tasks (default 6000)\n"
	"  --rounds N          the modes take turns, N rounds each (default 10)\n"
	"io options:\n"
	"  --items N           nop round trips per run (default 1M; A->B rows N/4)\n"
	"  --samples N         UDP echoes per run (default 20000)\n"
	"  --reps N            runs of each variant, interleaved; prints the median (default 5)\n"
	"\n"
	"N takes a k, M or G suffix (x1000).\n";

int
pel_bench_runtime(const char *cpus, enum pel_idle idle, unsigned flags, struct pel_runtime **rt)
{
	struct pel_config cfg;
	int err;

	pel_config_default(&cfg);
	cfg.cpus = cpus;
	cfg.idle = idle;
	cfg.flags = flags;
	cfg.log = pel_bench_log_once;
	err = pel_create(&cfg, rt);
	if (err)
		fprintf(stderr, "pel-bench: pel_create(cpus \"%s\", idle %d): %s: %s\n", cpus,
			(int)idle, pel_strerror(err), pel_last_error());
	return err ? 1 : 0;
}

void
pel_bench_log_once(enum pel_log_level level, const char *msg, void *arg)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char seen[8][256];
	static unsigned nseen;
	unsigned i;

	(void)level;
	(void)arg;
	pthread_mutex_lock(&lock);
	for (i = 0; i < nseen; i++)
		if (!strncmp(seen[i], msg, sizeof(seen[i]) - 1))
			break;
	if (i == nseen) {
		if (nseen < 8)
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", msg);
		fprintf(stderr, "pel: %s\n", msg);
	}
	pthread_mutex_unlock(&lock);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct pel_bench_figure
pel_bench_summarise(double *v, unsigned n)
{
	struct pel_bench_figure f;

	qsort(v, n, sizeof(*v), cmp_double);
	f.min = v[0];
	f.max = v[n - 1];
	f.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return f;
}

#define usage_exit(...)	pel_cli_usage_exit("pel-bench", usage_text, __VA_ARGS__)

void
pel_bench_perror(const char *what, int err)
{
	fprintf(stderr, "pel-bench: %s: %s\n", what, strerror(err));
}

void
pel_bench_metric(struct pel_bench_report *rep, const char *name, double value, const char *unit)
{
	struct pel_bench_metric *m;

	if (rep->nmetrics == PEL_BENCH_MAX_METRICS)
		return;
	m = &rep->metric[rep->nmetrics++];
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->value = value;
	m->unit = unit;
}

void
pel_bench_ratio(struct pel_bench_report *rep, const char *name, double value)
{
	struct pel_bench_ratio *r;

	if (rep->nratios == PEL_BENCH_MAX_RATIOS)
		return;
	r = &rep->ratio[rep->nratios++];
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->value = value;
}

int
pel_bench_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int
pel_bench_thread_on(pthread_t *t, int cpu, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	cpu_set_t set;
	int err;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	err = pthread_attr_init(&attr);
	if (err)
		return err;
	err = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	if (!err)
		err = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return err;
}

void
pel_bench_print_cpu(void)
{
	char line[256], model[200] = "unknown";
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *c = strchr(line, ':');

			if (!strncmp(line, "model name", 10) && c) {
				snprintf(model, sizeof(model), "%s", c + 2);
				model[strcspn(model, "\n")] = 0;
				break;
			}
		}
		fclose(f);
	}
	printf("cpu: %s, %ld online\n", model, sysconf(_SC_NPROCESSORS_ONLN));
}

/* Parse a count with an optional k/M/G suffix; 0 on garbage or 0. */
static uint64_t
parse_count(const char *s, uint64_t max)
{
	uint64_t v;

	return pel_cli_count(s, 1, max, &v) ? v : 0;	/* 0: refused */
}

static int
parse_cpu(const char *s, char **end)
{
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, end, 10);
	if (errno || v >= CPU_SETSIZE)
		return -1;
	return (int)v;
}

static void
parse_cpus(const char *arg, struct pel_bench_opts *o)
{
	char *end;

	o->cpu_a = parse_cpu(arg, &end);
	if (o->cpu_a < 0 || *end != ',')
		usage_exit("--cpus wants two CPU numbers A,B, got \"%s\"", arg);
	o->cpu_b = parse_cpu(end + 1, &end);
	if (o->cpu_b < 0 || *end)
		usage_exit("--cpus wants two CPU numbers A,B, got \"%s\"", arg);
	if (o->cpu_a == o->cpu_b)
		usage_exit("--cpus %s: A and B must differ", arg);
}

/* Default CPUs: the last two of the affinity mask; checks --cpus against it. 0, or exits. */
static void
pick_cpus(struct pel_bench_opts *o, bool given)
{
	cpu_set_t set;
	int i, n = 0, last[2] = { -1, -1 };

	if (sched_getaffinity(0, sizeof(set), &set)) {
		pel_bench_perror("sched_getaffinity", errno);
		exit(1);
	}
	if (given) {
		if (!CPU_ISSET(o->cpu_a, &set) || !CPU_ISSET(o->cpu_b, &set)) {
			fprintf(stderr, "pel-bench: --cpus %d,%d: outside our CPU affinity\n",
				o->cpu_a, o->cpu_b);
			exit(2);
		}
		return;
	}
	for (i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &set))
			continue;
		last[0] = last[1];
		last[1] = i;
		n++;
	}
	if (n < 2) {
		fprintf(stderr, "pel-bench: skip: needs two CPUs, this process may run on %d\n", n);
		exit(77);
	}
	o->cpu_a = last[0];
	o->cpu_b = last[1];
}

/* @p rep as one JSON object, no newline. */
static void
write_report(FILE *f, const struct pel_bench_report *rep)
{
	unsigned i;

	fputs("{\"bench\": ", f);
	pel_cli_json_string(f, rep->bench);
	fputs(", \"cpu\": ", f);
	pel_cli_json_string(f, rep->cpu);
	fputs(", \"metrics\": [", f);
	for (i = 0; i < rep->nmetrics; i++) {
		fputs(i ? ", {\"name\": " : "{\"name\": ", f);
		pel_cli_json_string(f, rep->metric[i].name);
		fputs(", \"value\": ", f);
		pel_cli_json_number(f, rep->metric[i].value, 6);
		fputs(", \"unit\": ", f);
		pel_cli_json_string(f, rep->metric[i].unit);
		fputc('}', f);
	}
	fputs("], \"ratios\": [", f);
	for (i = 0; i < rep->nratios; i++) {
		fputs(i ? ", {\"name\": " : "{\"name\": ", f);
		pel_cli_json_string(f, rep->ratio[i].name);
		fputs(", \"value\": ", f);
		pel_cli_json_number(f, rep->ratio[i].value, 6);
		fputc('}', f);
	}
	fputs("]}", f);
}

static int
write_json(const char *path, const struct pel_bench_report *rep)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		pel_bench_perror(path, errno);
		return 1;
	}
	write_report(f, rep);
	fputc('\n', f);
	if (fclose(f)) {
		pel_bench_perror(path, errno);
		return 1;
	}
	return 0;
}

typedef int (*suite_fn)(const struct pel_bench_opts *o, struct pel_bench_report *rep);

static const struct {
	const char *name;
	suite_fn run;
	bool in_all;
} suites[] = {
	{ "ring", pel_bench_ring, true },
	{ "handoff", pel_bench_handoff, true },
	{ "pool", pel_bench_pool, true },
	{ "trace", pel_bench_trace, false },	/* its own binaries and an LTTng session */
	{ "jitter", pel_bench_jitter, true },
	{ "io", pel_bench_io, true },
	{ "parallel", pel_bench_parallel, true },
	{ "rt", pel_bench_rt, true },
};

#define NSUITES	(sizeof(suites) / sizeof(suites[0]))

/* What a child of "all" hands back: its report, the units its metrics point to copied in. */
struct shared_report {
	struct pel_bench_report rep;
	char unit[PEL_BENCH_MAX_METRICS][32];
};

/*
 * Run suite @p i in a child process. @return its exit status (0 ran, 77 skipped, else failed),
 * with its report in @p out (units pointing into @p sh) when 0.
 */
static int
run_child(unsigned i, struct pel_bench_opts o, struct shared_report *sh,
	  struct pel_bench_report *out)
{
	int status;
	pid_t pid;

	memset(sh, 0, sizeof(*sh));
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		pel_bench_perror("fork", errno);
		return 1;
	}
	if (pid == 0) {
		int err;

		o.suite = suites[i].name;
		o.json = NULL;
		sh->rep.bench = suites[i].name;
		err = suites[i].run(&o, &sh->rep);
		for (unsigned m = 0; m < sh->rep.nmetrics; m++) {
			snprintf(sh->unit[m], sizeof(sh->unit[m]), "%s", sh->rep.metric[m].unit);
			/* the parent points it at sh->unit[m] */
			sh->rep.metric[m].unit = NULL;
		}
		fflush(NULL);
		_exit(err ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			pel_bench_perror("waitpid", errno);
			return 1;
		}
	}
	if (!WIFEXITED(status))
		return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	if (WEXITSTATUS(status))
		return WEXITSTATUS(status);
	*out = sh->rep;
	for (unsigned m = 0; m < out->nmetrics; m++)
		out->metric[m].unit = sh->unit[m];
	return 0;
}

/* pel-bench all: every suite in turn; one JSON file of every report. */
static int
run_all(const struct pel_bench_opts *o, const char *model)
{
	static struct pel_bench_report reps[NSUITES];
	static char units[NSUITES][PEL_BENCH_MAX_METRICS][32];
	const char *skipped[NSUITES], *failed[NSUITES];
	unsigned nrep = 0, nskip = 0, nfail = 0, i, k;
	struct shared_report *sh;
	uint64_t t0 = pel_bench_mono_ns();
	FILE *f = NULL;

	/* a file that cannot be written fails now, not after every suite ran */
	if (o->json && !(f = fopen(o->json, "w"))) {
		pel_bench_perror(o->json, errno);
		return 1;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		pel_bench_perror("mmap", errno);
		if (f)
			fclose(f);
		return 1;
	}
	for (i = 0; i < NSUITES; i++) {
		uint64_t t = pel_bench_mono_ns();
		int st;

		if (!suites[i].in_all)
			continue;
		printf("\n== pel-bench %s\n", suites[i].name);
		st = run_child(i, *o, sh, &reps[nrep]);
		if (st == 0) {
			/* the mapping is reused by the next child: keep the units */
			for (k = 0; k < reps[nrep].nmetrics; k++) {
				memcpy(units[nrep][k], sh->unit[k], sizeof(units[nrep][k]));
				reps[nrep].metric[k].unit = units[nrep][k];
			}
			reps[nrep].bench = suites[i].name;
			reps[nrep].cpu = model;
			nrep++;
		} else if (st == 77) {
			skipped[nskip++] = suites[i].name;
		} else {
			failed[nfail++] = suites[i].name;
		}
		printf("== pel-bench %s: %s, %.1f s\n", suites[i].name,
		       st == 0 ? "ran" : st == 77 ? "skipped" : "FAILED",
		       (double)(pel_bench_mono_ns() - t) / 1e9);
	}
	munmap(sh, sizeof(*sh));
	printf("\nall: %u ran, %u skipped, %u failed in %.1f s\n", nrep, nskip, nfail,
	       (double)(pel_bench_mono_ns() - t0) / 1e9);
	if (!f)
		return nfail ? 1 : 0;
	fputs("{\"bench\": \"all\", \"cpu\": ", f);
	pel_cli_json_string(f, model);
	fputs(", \"suites\": [", f);
	for (i = 0; i < nrep; i++) {
		if (i)
			fputs(", ", f);
		write_report(f, &reps[i]);
	}
	fputs("], \"skipped\": [", f);
	for (i = 0; i < nskip; i++) {
		if (i)
			fputs(", ", f);
		pel_cli_json_string(f, skipped[i]);
	}
	fputs("], \"failed\": [", f);
	for (i = 0; i < nfail; i++) {
		if (i)
			fputs(", ", f);
		pel_cli_json_string(f, failed[i]);
	}
	fputs("]}\n", f);
	if (fclose(f)) {
		pel_bench_perror(o->json, errno);
		return 1;
	}
	return nfail ? 1 : 0;
}

enum {
	OPT_JSON = 256,
	OPT_CPUS,
	OPT_SLOTS,
	OPT_ITEMS,
	OPT_REPS,
	OPT_SAMPLES,
	OPT_INTERVAL,
	OPT_ROUNDS,
	OPT_SECONDS,
	OPT_HELP,
};

static const struct option long_opts[] = {
	{ "json", required_argument, NULL, OPT_JSON },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "slots", required_argument, NULL, OPT_SLOTS },
	{ "items", required_argument, NULL, OPT_ITEMS },
	{ "reps", required_argument, NULL, OPT_REPS },
	{ "samples", required_argument, NULL, OPT_SAMPLES },
	{ "interval-ns", required_argument, NULL, OPT_INTERVAL },
	{ "rounds", required_argument, NULL, OPT_ROUNDS },
	{ "seconds", required_argument, NULL, OPT_SECONDS },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

int
main(int argc, char **argv)
{
	static struct pel_bench_report rep;
	static char model[256];
	struct pel_bench_opts o = { 0 };
	bool ring, handoff, jitter, io, rtb, all, cpus_given = false;
	unsigned i;
	int c, err;

	if (argc < 2)
		usage_exit("no SUITE given");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, stdout);
		return 0;
	}
	o.suite = argv[1];
	ring = !strcmp(o.suite, "ring");
	handoff = !strcmp(o.suite, "handoff");
	jitter = !strcmp(o.suite, "jitter");
	io = !strcmp(o.suite, "io");
	rtb = !strcmp(o.suite, "rt");
	all = !strcmp(o.suite, "all");
	for (i = 0; i < NSUITES && strcmp(o.suite, suites[i].name); i++)
		;
	if (i == NSUITES && !all)
		usage_exit("unknown SUITE \"%s\"", o.suite);

	/* getopt sees argv[1], the suite, as the program name */
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			o.json = optarg;
			break;
		case OPT_CPUS:
			parse_cpus(optarg, &o);
			cpus_given = true;
			break;
		case OPT_SLOTS:
			if (!ring && !all)
				usage_exit("--slots is a ring option");
			o.slots = (unsigned)parse_count(optarg, PEL_RING_MAX_SLOTS);
			if (!o.slots || (o.slots & (o.slots - 1)) || o.slots < 2 * PEL_BENCH_BURST)
				usage_exit("--slots wants a power of two in 64 .. 16M, got \"%s\"",
					   optarg);
			break;
		case OPT_ITEMS:
			if (handoff)
				usage_exit("--items is a ring, pool, jitter and io option");
			o.items = parse_count(optarg, UINT64_C(1) << 40);
			if (!o.items)
				usage_exit("--items wants a positive count, got \"%s\"", optarg);
			break;
		case OPT_REPS:
			if (handoff)
				usage_exit("--reps is a ring, pool, jitter and io option");
			o.reps = (unsigned)parse_count(optarg, 1000);
			if (!o.reps)
				usage_exit("--reps wants a count in 1 .. 1000, got \"%s\"", optarg);
			break;
		case OPT_SAMPLES:
			if (!handoff && !io && !rtb && !all)
				usage_exit("--samples is a handoff, io and rt option");
			o.samples = parse_count(optarg, UINT64_C(100000000));
			if (o.samples < 100)
				usage_exit("--samples wants a count in 100 .. 100M, got \"%s\"",
					   optarg);
			break;
		case OPT_INTERVAL:
			if (!handoff && !rtb && !all)
				usage_exit("--interval-ns is a handoff and rt option");
			o.interval_ns = parse_count(optarg, 1000000000ull);
			if (o.interval_ns < 100)
				usage_exit("--interval-ns wants 100 .. 1000000000, got \"%s\"",
					   optarg);
			break;
		case OPT_ROUNDS:
			if (!handoff && !rtb && !all)
				usage_exit("--rounds is a handoff and rt option");
			o.rounds = (unsigned)parse_count(optarg, 1000);
			if (!o.rounds)
				usage_exit("--rounds wants a count in 1 .. 1000, got \"%s\"",
					   optarg);
			break;
		case OPT_SECONDS:
			if (!jitter && !all)
				usage_exit("--seconds is a jitter option");
			o.seconds = parse_count(optarg, 3600);
			if (!o.seconds)
				usage_exit("--seconds wants a count in 1 .. 3600, got \"%s\"",
					   optarg);
			break;
		case OPT_HELP:
			fputs(usage_text, stdout);
			return 0;
		case ':':
			usage_exit("%s needs a value", argv[optind]);
			break;
		default:
			usage_exit("unknown option \"%s\"", argv[optind]);
			break;
		}
	}
	if (optind < argc - 1)
		usage_exit("unexpected argument \"%s\"", argv[optind + 1]);
	pick_cpus(&o, cpus_given);

	rep.bench = o.suite;
	pel_bench_cpu_model(model, sizeof(model));
	rep.cpu = model;
	/* every figure is of one CPU model: say which, before anything else */
	printf("cpu: %s\n", model);
	if (all)
		return run_all(&o, model);
	err = suites[i].run(&o, &rep);
	if (err)
		return 1;
	if (o.json && write_json(o.json, &rep))
		return 1;
	return 0;
}
