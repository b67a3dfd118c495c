/* SPDX-License-Identifier: MIT */
/*
 * examples/feed-replay.c - feed-replay: the demo service's books computed again from a recorded
 * feed, one request after another in send order, to check what a server's threads did
 * (docs/demo.md, "Replay").
 *
 *   feed-replay [--instruments N] [--fanout-every N] [--models M] [--rounds R] [--out FILE] FILE
 *
 * FILE is what pel-load --record writes: a FEED_RECORD_SIZE-byte record per request sent, in
 * send order: the PEL_FEED_REQ_SIZE bytes of the request as sent, the status of its reply (0
 * answered, 1 late, 2 refused, 255 none), padding. An answered book update is applied with the
 * rule and the fan-out's scoring (feed_book_process()); a late one only advances its
 * instrument's sequence (feed_book_skip()); refused and unanswered requests and spin requests
 * change no book. The books are written in feed_book_dump()'s format: given the server's
 * options, a diff against the server's --books file is empty when the server applied each
 * instrument's updates in send order, none twice, and answered every one it applied.
 *
 * Exit: 0; 1 FILE cannot be read or is not a recording, or the books cannot be written; 2 bad
 * command line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed_book.h"

#define FEED_RECORD_SIZE	64u	/* request, status, padding */
#define FEED_RECORD_NONE	255u	/* the status of a request never answered */
#define INSTRUMENTS_MAX		1000000u	/* as the servers' --instruments */

static const char prog[] = "feed-replay";

struct replay_opts {
	unsigned instruments, fanout_every, models, rounds;
	const char *in, *out;
};

/* What the records said, for the summary line. */
struct replay_counts {
	uint64_t records, answered, late, refused, none, book_updates;
};

static void
usage(void)
{
	fprintf(stderr,
		"usage: %s [options] FILE\n"
		"  FILE                a recording of pel-load --record: 64 bytes a request sent\n"
		"  --instruments N     instrument ids 0 .. N-1, 1 .. 1000000 (default 1000)\n"
		"  --fanout-every N    one book update in N is scored by every model; 0: never\n"
		"                      (default 64)\n"
		"  --models M          scoring models, 1 .. 64 (default 8)\n"
		"  --rounds R          mixing passes per model, 1 .. 1000 (default 4)\n"
		"  --out FILE          write the books here (default: standard output)\n"
		"Give the options the server ran with; the books come out as its --books file.\n",
		prog);
}

/* @return 0 and *v; -1 after a message. */
static int
number(const char *opt, const char *s, unsigned min, unsigned max, unsigned *v)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || x < min || x > max) {
		fprintf(stderr, "%s: %s %s: not a number %u .. %u\n", prog, opt, s, min, max);
		return -1;
	}
	*v = (unsigned)x;
	return 0;
}

/* @return 0; 2 after a message and the usage; exits 0 on --help. */
static int
parse(int argc, char **argv, struct replay_opts *o)
{
	enum { O_INSTR = 256, O_FANOUT, O_MODELS, O_ROUNDS, O_OUT, O_HELP };
	static const struct option longs[] = {
		{ "instruments", required_argument, NULL, O_INSTR },
		{ "fanout-every", required_argument, NULL, O_FANOUT },
		{ "models", required_argument, NULL, O_MODELS },
		{ "rounds", required_argument, NULL, O_ROUNDS },
		{ "out", required_argument, NULL, O_OUT },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c, err = 0;

	*o = (struct replay_opts){ .instruments = 1000, .fanout_every = 64, .models = 8,
				   .rounds = 4 };
	opterr = 0;
	while (!err && (c = getopt_long(argc, argv, ":", longs, NULL)) != -1) {
		switch (c) {
		case O_INSTR:
			err = number("--instruments", optarg, 1, INSTRUMENTS_MAX, &o->instruments);
			break;
		case O_FANOUT:
			err = number("--fanout-every", optarg, 0, 1u << 30, &o->fanout_every);
			break;
		case O_MODELS:
			err = number("--models", optarg, 1, FEED_MODELS_MAX, &o->models);
			break;
		case O_ROUNDS:
			err = number("--rounds", optarg, 1, 1000, &o->rounds);
			break;
		case O_OUT:
			o->out = optarg;
			break;
		case O_HELP:
			usage();
			exit(0);
		case ':':
			fprintf(stderr, "%s: %s wants a value\n", prog, argv[optind - 1]);
			err = -1;
			break;
		default:
			fprintf(stderr, "%s: unknown option %s\n", prog, argv[optind - 1]);
			err = -1;
			break;
		}
	}
	if (!err && optind == argc) {
		fprintf(stderr, "%s: which recording? Name the file pel-load --record wrote\n",
			prog);
		err = -1;
	} else if (!err && optind + 1 < argc) {
		fprintf(stderr, "%s: unexpected argument %s\n", prog, argv[optind + 1]);
		err = -1;
	}
	if (err) {
		usage();
		return 2;
	}
	o->in = argv[optind];
	return 0;
}

/* Apply record @p k. @return 0; 1 after a message when it is not a record of a sent request. */
static int
apply(const struct replay_opts *o, uint64_t k, const uint8_t *rec, struct feed_book **books,
      struct replay_counts *n)
{
	struct pel_feed_req r;
	uint8_t status = rec[PEL_FEED_REQ_SIZE];
	struct feed_book *b;

	if (pel_feed_req_decode(rec, PEL_FEED_REQ_SIZE, &r)) {
		fprintf(stderr, "%s: %s: record %llu: not a feed request (is this a recording of "
			"pel-load --record?)\n", prog, o->in, (unsigned long long)k);
		return 1;
	}
	switch (status) {
	case PEL_FEED_ANSWERED:
		n->answered++;
		break;
	case PEL_FEED_LATE:
		n->late++;
		break;
	case PEL_FEED_MALFORMED:
		n->refused++;
		return 0;
	case FEED_RECORD_NONE:
		n->none++;
		return 0;
	default:
		fprintf(stderr, "%s: %s: record %llu: status %u is none of 0 answered, 1 late, "
			"2 refused, 255 no reply\n", prog, o->in, (unsigned long long)k, status);
		return 1;
	}
	if (r.kind != PEL_FEED_BOOK)
		return 0;
	if (r.instrument >= o->instruments) {
		fprintf(stderr, "%s: %s: record %llu: instrument %u was served, but --instruments "
			"is %u: give the server's\n", prog, o->in, (unsigned long long)k,
			r.instrument, o->instruments);
		return 1;
	}
	b = books[r.instrument];
	if (!b) {
		b = malloc(sizeof(*b));
		if (!b) {
			fprintf(stderr, "%s: out of memory for instrument %u's book\n", prog,
				r.instrument);
			return 1;
		}
		feed_book_init(b);
		books[r.instrument] = b;
	}
	if (status == PEL_FEED_LATE) {
		feed_book_skip(b, r.seq);
	} else {
		feed_book_process(b, &r, o->fanout_every, o->models, o->rounds);
		n->book_updates++;
	}
	return 0;
}

/* Every record of o->in, in order. @return 0; 1 after a message. */
static int
replay(const struct replay_opts *o, struct feed_book **books, struct replay_counts *n)
{
	uint8_t rec[FEED_RECORD_SIZE];
	FILE *f = fopen(o->in, "rb");
	size_t got = 0;
	int ret = 0;

	if (!f) {
		fprintf(stderr, "%s: %s: %s\n", prog, o->in, strerror(errno));
		return 1;
	}
	while (!ret && (got = fread(rec, 1, sizeof(rec), f)) == sizeof(rec))
		ret = apply(o, n->records++, rec, books, n);
	if (!ret && ferror(f)) {
		fprintf(stderr, "%s: %s: %s\n", prog, o->in, strerror(errno));
		ret = 1;
	} else if (!ret && got) {
		unsigned long long size = n->records * FEED_RECORD_SIZE + got;

		fprintf(stderr, "%s: %s: %llu bytes, not a whole number of %u-byte records "
			"(cut short?)\n", prog, o->in, size, FEED_RECORD_SIZE);
		ret = 1;
	}
	fclose(f);
	return ret;
}

/* The books in feed_book_dump()'s format. @return 0; 1 after a message. */
static int
write_books(const struct replay_opts *o, struct feed_book *const *books)
{
	const char *name = o->out ? o->out : "standard output";
	FILE *f = o->out ? fopen(o->out, "w") : stdout;

	if (!f) {
		fprintf(stderr, "%s: %s: %s\n", prog, o->out, strerror(errno));
		return 1;
	}
	for (unsigned i = 0; i < o->instruments; i++)
		if (books[i])
			feed_book_dump(f, i, books[i]);
	if (o->out ? fclose(f) : fflush(f)) {
		fprintf(stderr, "%s: %s: %s\n", prog, name, strerror(errno));
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct replay_counts n = { 0 };
	struct feed_book **books;
	struct replay_opts o;
	int rc = parse(argc, argv, &o);

	if (rc)
		return rc;
	books = calloc(o.instruments, sizeof(*books));
	if (!books) {
		fprintf(stderr, "%s: out of memory for %u instruments\n", prog, o.instruments);
		return 1;
	}
	rc = replay(&o, books, &n);
	if (!rc)
		rc = write_books(&o, books);
	if (!rc)
		fprintf(stderr, "%s: %llu records: answered %llu (book updates %llu) late "
			"%llu refused %llu no reply %llu\n", prog, (unsigned long long)n.records,
			(unsigned long long)n.answered, (unsigned long long)n.book_updates,
			(unsigned long long)n.late, (unsigned long long)n.refused,
			(unsigned long long)n.none);
	for (unsigned i = 0; i < o.instruments; i++)
		free(books[i]);
	free(books);
	return rc;
}
