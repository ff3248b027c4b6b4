/* shmkit(1) — record a topic's messages to a file and replay them: record, replay.
 *
 * The file (documented in shmkit(1), RECORD FILES), all integers little-endian:
 *   header, 32 bytes:
 *     0  magic "SHMKITRC" (8 bytes)
 *     8  u32 version, 1
 *     12 u32 header size, 32
 *     16 i64 when the recording started, CLOCK_REALTIME ns (for people; replay
 *        ignores it)
 *     24 u64 reserved, 0
 *   then one record per message, back to back to the end of the file:
 *     0  u64 receive time, ns since the recording started (CLOCK_MONOTONIC, so never
 *        going back), non-decreasing from record to record
 *     8  u32 payload length, 1 .. REC_MAX_MSG
 *     12 u32 reserved, 0
 *     16 the payload
 * A file is data from anywhere: replay checks every field of every record, and the
 * whole file before it publishes anything, so that a hostile or truncated file gives
 * a clear error, never a half replay or a crash; the file is read again for the
 * replay itself, as carefully, since it may change meanwhile. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <shmkit/shmkit.h>
#include "cmd.h"

#define REC_MAGIC "SHMKITRC"
#define REC_VERSION 1u
#define REC_HEADER 32u
#define REC_RECORD 16u
/* The largest message a topic takes: a quarter of its largest ring (1 GiB). */
#define REC_MAX_MSG (UINT32_C(1) << 28)
/* Receive times stay far below INT64_MAX ns, so replay's deadlines cannot overflow. */
#define REC_MAX_TIME (UINT64_C(1) << 62)
/* How long one wait lasts at most, so that SIGINT and SIGTERM are seen at once:
 * the library's waits resume after a signal. */
#define SLICE_NS (100 * 1000 * 1000)

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ---- reading a record file ---- */

struct reader {
	FILE *f;
	const char *path;
	uint64_t size;   /* the file's size when opened */
	uint64_t off;    /* where the next record starts */
	uint64_t index;  /* records read */
	uint64_t last_t; /* the last record's time */
};

/* Opens path and checks its header. Returns 0, or 1 after saying what is wrong. */
static int reader_open(struct reader *r, const char *cmd, const char *path)
{
	unsigned char h[REC_HEADER];
	struct stat st;
	memset(r, 0, sizeof *r);
	r->path = path;
	r->f = fopen(path, "rbe");
	if (!r->f || fstat(fileno(r->f), &st) < 0) {
		fprintf(stderr, "shmkit %s: %s: %s\n", cmd, path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "shmkit %s: %s: not a regular file\n", cmd, path);
		goto fail;
	}
	r->size = (uint64_t)st.st_size;
	size_t got = fread(h, 1, sizeof h, r->f);
	if (got >= 8 && memcmp(h, REC_MAGIC, 8)) {
		fprintf(stderr, "shmkit %s: %s: not a shmkit record file (bad magic)\n", cmd, path);
		goto fail;
	}
	if (got < sizeof h) {
		fprintf(stderr, "shmkit %s: %s: truncated header (%zu of %u bytes)\n", cmd, path,
			got, REC_HEADER);
		goto fail;
	}
	if (get_u32(h + 8) != REC_VERSION) {
		fprintf(stderr, "shmkit %s: %s: record format version %" PRIu32 "; this shmkit "
				"reads version %u\n", cmd, path, get_u32(h + 8), REC_VERSION);
		goto fail;
	}
	if (get_u32(h + 12) != REC_HEADER || get_u64(h + 24) != 0) {
		fprintf(stderr, "shmkit %s: %s: bad header (size %" PRIu32 ", reserved %" PRIu64
				"; expected %u and 0)\n", cmd, path, get_u32(h + 12), get_u64(h + 24),
			REC_HEADER);
		goto fail;
	}
	r->off = REC_HEADER;
	return 0;
fail:
	if (r->f)
		fclose(r->f);
	r->f = NULL;
	return 1;
}

static void reader_close(struct reader *r)
{
	if (r->f)
		fclose(r->f);
	r->f = NULL;
}

/* The next record's time and length, its payload read into *buf (grown as needed)
 * when buf is not NULL, else skipped. Returns 1 for a record, 0 at the end of the
 * file, or -1 after saying what is wrong with the file. */
static int reader_next(struct reader *r, const char *cmd, uint64_t *t, uint32_t *len,
		       unsigned char **buf, size_t *cap)
{
	unsigned char h[REC_RECORD];
	uint64_t at = r->off, n = r->index + 1;
	size_t got = fread(h, 1, sizeof h, r->f);
	if (got == 0 && !ferror(r->f))
		return 0;
	if (ferror(r->f)) {
		fprintf(stderr, "shmkit %s: %s: reading record %" PRIu64 ": %s\n", cmd, r->path, n,
			strerror(errno));
		return -1;
	}
	if (got < sizeof h) {
		fprintf(stderr, "shmkit %s: %s: truncated record %" PRIu64 " at byte %" PRIu64
				" (the file ends inside its %u-byte header)\n", cmd, r->path, n, at,
			REC_RECORD);
		return -1;
	}
	*t = get_u64(h);
	*len = get_u32(h + 8);
	if (*len == 0 || *len > REC_MAX_MSG) {
		fprintf(stderr, "shmkit %s: %s: record %" PRIu64 " at byte %" PRIu64 ": bad length "
				"%" PRIu32 " (1 to %" PRIu32 ")\n", cmd, r->path, n, at, *len,
			REC_MAX_MSG);
		return -1;
	}
	if (get_u32(h + 12) != 0) {
		fprintf(stderr, "shmkit %s: %s: record %" PRIu64 " at byte %" PRIu64 ": reserved "
				"field not zero\n", cmd, r->path, n, at);
		return -1;
	}
	if (*t >= REC_MAX_TIME || *t < r->last_t) {
		fprintf(stderr, "shmkit %s: %s: record %" PRIu64 " at byte %" PRIu64 ": time %" PRIu64
				" ns %s\n", cmd, r->path, n, at, *t,
			*t >= REC_MAX_TIME ? "out of range" : "before the previous record's");
		return -1;
	}
	/* Against the size at open: a length is checked before anything is allocated. */
	uint64_t left = r->size > at + REC_RECORD ? r->size - at - REC_RECORD : 0;
	if (*len > left) {
		fprintf(stderr, "shmkit %s: %s: truncated record %" PRIu64 " at byte %" PRIu64
				" (%" PRIu32 " bytes of message, %" PRIu64 " left in the file)\n",
			cmd, r->path, n, at, *len, left);
		return -1;
	}
	if (buf) {
		if (*len > *cap) {
			unsigned char *b = realloc(*buf, *len);
			if (!b) {
				fprintf(stderr, "shmkit %s: out of memory\n", cmd);
				return -1;
			}
			*buf = b;
			*cap = *len;
		}
		if (fread(*buf, 1, *len, r->f) != *len) {
			fprintf(stderr, "shmkit %s: %s: truncated record %" PRIu64 " at byte %" PRIu64
					" (the file changed while it was read)\n", cmd, r->path, n, at);
			return -1;
		}
	} else if (fseeko(r->f, (off_t)*len, SEEK_CUR) < 0) {
		fprintf(stderr, "shmkit %s: %s: %s\n", cmd, r->path, strerror(errno));
		return -1;
	}
	r->off = at + REC_RECORD + *len;
	r->index = n;
	r->last_t = *t;
	return 1;
}

/* What a whole file holds, every record checked. */
struct summary {
	uint64_t msgs, bytes, duration_ns;
	uint32_t largest;
};

/* Returns 0, or 1 after saying what is wrong. */
static int check_file(const char *cmd, const char *path, struct summary *s)
{
	struct reader r;
	uint64_t t;
	uint32_t len;
	int k;
	memset(s, 0, sizeof *s);
	if (reader_open(&r, cmd, path))
		return 1;
	while ((k = reader_next(&r, cmd, &t, &len, NULL, NULL)) == 1) {
		s->msgs++;
		s->bytes += len;
		s->largest = len > s->largest ? len : s->largest;
		s->duration_ns = t;
	}
	reader_close(&r);
	return k < 0;
}

/* ---- options ---- */

struct rec_opts {
	struct topic_opts topic;
	const char *file;
	long count;      /* record: messages; -1 all */
	double duration; /* record: seconds; < 0 no limit */
	int fast;        /* replay: no pacing */
	int check;       /* replay: check and summarize only */
};

/* Returns 0, or the exit code after saying what is wrong. record: NAME FILE;
 * replay: FILE NAME (NAME not with --check). */
static int rec_args(int argc, char **argv, struct rec_opts *o, int replay, const char *usage)
{
	const char *cmd = replay ? "replay" : "record";
	const char *pos[2] = {NULL, NULL};
	int npos = 0;
	memset(o, 0, sizeof *o);
	o->topic.flags = SHMKIT_SEG_CREATE;
	o->topic.count = -1;
	o->topic.timeout = -1;
	o->count = -1;
	o->duration = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *end;
		if (!strcmp(a, "--sysv")) {
			o->topic.flags |= SHMKIT_SEG_SYSV;
		} else if (!strcmp(a, "--reliable")) {
			o->topic.flags |= SHMKIT_TOPIC_RELIABLE;
		} else if (!strcmp(a, "--capacity") && i + 1 < argc) {
			errno = 0;
			unsigned long long c = strtoull(argv[++i], &end, 0);
			if (errno || *end || c == 0 || argv[i][0] == '-' || c > SIZE_MAX) {
				fprintf(stderr, "shmkit %s: --capacity %s: a number of bytes "
						"expected\n", cmd, argv[i]);
				return SHMKIT_EXIT_USAGE;
			}
			o->topic.capacity = (size_t)c;
		} else if (!replay && !strcmp(a, "--from-oldest")) {
			o->topic.flags |= SHMKIT_TOPIC_OLDEST;
		} else if (!replay && !strcmp(a, "--count") && i + 1 < argc) {
			errno = 0;
			o->count = strtol(argv[++i], &end, 10);
			if (errno || *end || o->count <= 0 || !argv[i][0]) {
				fprintf(stderr, "shmkit record: --count %s: a positive number of "
						"messages expected\n", argv[i]);
				return SHMKIT_EXIT_USAGE;
			}
		} else if (!replay && !strcmp(a, "--duration") && i + 1 < argc) {
			o->duration = strtod(argv[++i], &end);
			/* !(x > 0) also refuses NaN; a century is plenty. */
			if (*end || !argv[i][0] || !(o->duration > 0) || o->duration > 3.2e9) {
				fprintf(stderr, "shmkit record: --duration %s: seconds (> 0) "
						"expected\n", argv[i]);
				return SHMKIT_EXIT_USAGE;
			}
		} else if (replay && !strcmp(a, "--fast")) {
			o->fast = 1;
		} else if (replay && !strcmp(a, "--check")) {
			o->check = 1;
		} else if ((a[0] == '-' && a[1]) || npos == 2) {
			return shmkit__usage_error(usage);
		} else {
			pos[npos++] = a;
		}
	}
	if (npos != (replay && o->check ? 1 : 2))
		return shmkit__usage_error(usage);
	o->file = replay ? pos[0] : pos[1];
	o->topic.name = replay ? pos[1] : pos[0];
	return 0;
}

/* ---- record ---- */

/* Writes n bytes; returns 0 or -errno. */
static int put(FILE *f, const void *p, size_t n)
{
	return fwrite(p, 1, n, f) == n ? 0 : (errno ? -errno : -EIO);
}

int shmkit_cmd_record(int argc, char **argv)
{
	static const char usage[] = "shmkit record [--sysv] [--reliable] [--capacity BYTES] "
				    "[--from-oldest] [--count N] [--duration SECONDS] NAME FILE";
	struct rec_opts o;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nSubscribe to topic NAME (creating it as sub does) and write each\n"
		       "message, with the time it was received, to FILE (a shmkit record file:\n"
		       "see shmkit(1), RECORD FILES). Stops at end-of-stream (every publisher\n"
		       "closed), after N messages (--count), after SECONDS (--duration), or on\n"
		       "SIGINT or SIGTERM; the file is complete in every case. Messages a lossy\n"
		       "topic overwrote before they were read are reported on standard error,\n"
		       "as sub does. Ends with a summary on standard error. A last publisher\n"
		       "that died is an error (exit 1, the file complete up to then).\n", usage);
		return SHMKIT_EXIT_OK;
	}
	int r = rec_args(argc, argv, &o, 0, usage);
	if (r)
		return r;
	shmkit__catch_stop();
	shmkit_topic *t = shmkit__topic_open_cmd("record", &o.topic, SHMKIT_TOPIC_SUBSCRIBER);
	if (!t)
		return SHMKIT_EXIT_FAIL;
	int status = SHMKIT_EXIT_FAIL;
	size_t cap = 1 << 16;
	char *buf = malloc(cap);
	unsigned char hdr[REC_HEADER] = REC_MAGIC, rec[REC_RECORD] = {0};
	uint64_t msgs = 0, bytes = 0;
	const char *why = NULL; /* what stopped the recording early, as an error */
	FILE *f = fopen(o.file, "wbe");
	if (!f || !buf) {
		fprintf(stderr, "shmkit record: %s: %s\n", o.file, !buf ? "out of memory"
									 : strerror(errno));
		goto out;
	}
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	const int64_t start = shmkit__mono_ns();
	const int64_t end = o.duration < 0 ? INT64_MAX : start + (int64_t)(o.duration * 1e9);
	put_u32(hdr + 8, REC_VERSION);
	put_u32(hdr + 12, REC_HEADER);
	put_u64(hdr + 16, (uint64_t)((int64_t)wall.tv_sec * SHMKIT_SEC + wall.tv_nsec));
	put_u64(hdr + 24, 0);
	r = put(f, hdr, sizeof hdr);
	while (r == 0 && !shmkit__stop && (o.count < 0 || (long)msgs < o.count)) {
		int64_t now = shmkit__mono_ns();
		if (now >= end)
			break;
		int64_t wait = end - now < SLICE_NS ? end - now : SLICE_NS;
		ssize_t n = shmkit__topic_next(t, "record", o.topic.name, &buf, &cap, wait);
		int64_t at = shmkit__mono_ns();
		if (n == -ETIMEDOUT || n == -EAGAIN)
			continue;
		if (n == 0)
			break; /* end-of-stream */
		if (n < 0) {
			why = n == -EPIPE ? "the last publisher died" : shmkit_strerror((int)n);
			break;
		}
		if ((uint64_t)n > REC_MAX_MSG) { /* larger than any topic makes today */
			why = "a message larger than a record file holds";
			break;
		}
		put_u64(rec, (uint64_t)(at - start));
		put_u32(rec + 8, (uint32_t)n);
		r = put(f, rec, sizeof rec);
		if (r == 0)
			r = put(f, buf, (size_t)n);
		msgs++;
		bytes += (uint64_t)n;
	}
	/* Flushed whatever ended the recording, a signal included. */
	if (fflush(f) != 0 && r == 0)
		r = -errno;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	f = NULL;
	if (r < 0) {
		fprintf(stderr, "shmkit record: %s: %s\n", o.file, strerror(-r));
	} else if (why) {
		fprintf(stderr, "shmkit record: %s: %s\n", o.topic.name, why);
	} else {
		status = SHMKIT_EXIT_OK;
	}
	fprintf(stderr, "shmkit record: %" PRIu64 " message%s, %" PRIu64 " bytes to %s\n", msgs,
		msgs == 1 ? "" : "s", bytes, o.file);
out:
	if (f)
		fclose(f);
	free(buf);
	shmkit_topic_close(t);
	return status;
}

/* ---- replay ---- */

/* Publishes one message, waiting in slices so that a signal is seen. */
static int publish(shmkit_topic *t, const void *p, size_t n)
{
	int r;
	do
		r = shmkit_topic_publish(t, p, n, SLICE_NS);
	while ((r == -ETIMEDOUT || r == -EAGAIN) && !shmkit__stop);
	return r;
}

int shmkit_cmd_replay(int argc, char **argv)
{
	static const char usage[] = "shmkit replay [--sysv] [--reliable] [--capacity BYTES] "
				    "[--fast] FILE NAME\n       shmkit replay --check FILE";
	struct rec_opts o;
	struct summary s;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nPublish the messages of a record file (made by 'shmkit record')\n"
		       "on topic NAME (creating it as pub does), in order, at the pace they\n"
		       "were received, or as fast as the topic takes them with --fast. The\n"
		       "whole file is checked first: a damaged file publishes nothing and\n"
		       "says which record is wrong and why. Closing at the end is\n"
		       "end-of-stream, as for pub. --check only checks the file and prints\n"
		       "what it holds. SIGINT or SIGTERM stops the replay (exit 1).\n", usage);
		return SHMKIT_EXIT_OK;
	}
	int r = rec_args(argc, argv, &o, 1, usage);
	if (r)
		return r;
	if (check_file("replay", o.file, &s))
		return SHMKIT_EXIT_FAIL;
	if (o.check) {
		printf("%s: %" PRIu64 " message%s, %" PRIu64 " bytes over %.3f s, largest %" PRIu32
		       " bytes\n", o.file, s.msgs, s.msgs == 1 ? "" : "s", s.bytes,
		       (double)s.duration_ns / 1e9, s.largest);
		return SHMKIT_EXIT_OK;
	}
	shmkit__catch_stop();
	shmkit_topic *t = shmkit__topic_open_cmd("replay", &o.topic, SHMKIT_TOPIC_PUBLISHER);
	if (!t)
		return SHMKIT_EXIT_FAIL;
	struct shmkit_topic_stats st;
	struct reader rd = {0};
	unsigned char *buf = NULL;
	size_t cap = 0;
	uint64_t sent = 0, tm;
	uint32_t len;
	int status = SHMKIT_EXIT_FAIL, k = 0;
	r = shmkit_topic_stats(t, &st);
	if (r < 0) {
		fprintf(stderr, "shmkit replay: %s: %s\n", o.topic.name, shmkit_strerror(r));
		goto out;
	}
	if (s.largest > st.max_msg) {
		fprintf(stderr, "shmkit replay: %s: holds a message of %" PRIu32 " bytes; topic %s "
				"takes %llu at most\n", o.file, s.largest, o.topic.name,
			(unsigned long long)st.max_msg);
		goto out;
	}
	if (reader_open(&rd, "replay", o.file))
		goto out;
	const int64_t start = shmkit__mono_ns();
	while (!shmkit__stop && (k = reader_next(&rd, "replay", &tm, &len, &buf, &cap)) == 1) {
		if (!o.fast) {
			struct timespec at;
			int64_t when = start + (int64_t)tm;
			at.tv_sec = (time_t)(when / SHMKIT_SEC);
			at.tv_nsec = (long)(when % SHMKIT_SEC);
			/* A signal ends the sleep (EINTR): the loop then stops. */
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
			if (shmkit__stop)
				break;
		}
		r = publish(t, buf, len);
		if (r < 0 && !shmkit__stop) {
			fprintf(stderr, "shmkit replay: %s: message %" PRIu64 ": %s\n", o.topic.name,
				sent + 1, shmkit_strerror(r));
			goto out;
		}
		if (r == 0)
			sent++;
	}
	if (k < 0)
		goto out;
	if (shmkit__stop) {
		fprintf(stderr, "shmkit replay: stopped by a signal after %" PRIu64 " of %" PRIu64
				" messages\n", sent, s.msgs);
		goto out;
	}
	status = SHMKIT_EXIT_OK;
out:
	reader_close(&rd);
	free(buf);
	shmkit_topic_close(t);
	return status;
}
