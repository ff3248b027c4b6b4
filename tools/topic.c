/* shmkit(1) — topics from the shell: pub, sub, and a topic's figures for stat. Over the
 * public API only (<shmkit/topic.h>), with send and recv's conventions: a NAME is POSIX
 * unless --sysv, both commands create the topic when it is missing, exit 0 success,
 * 1 failure (a timeout included), 2 usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmkit/shmkit.h>
#include "cmd.h"

/* Returns 0, or the exit code after saying what is wrong. */
static int topic_args(int argc, char **argv, struct topic_opts *o, int sub, const char *usage)
{
	const char *cmd = sub ? "sub" : "pub";
	memset(o, 0, sizeof *o);
	o->flags = SHMKIT_SEG_CREATE;
	o->count = -1;
	o->timeout = -1;
	for (int i = 1; i < argc; i++) {
		char *end;
		if (!strcmp(argv[i], "--sysv")) {
			o->flags |= SHMKIT_SEG_SYSV;
		} else if (!strcmp(argv[i], "--reliable")) {
			o->flags |= SHMKIT_TOPIC_RELIABLE;
		} else if (!strcmp(argv[i], "--capacity") && i + 1 < argc) {
			errno = 0;
			unsigned long long c = strtoull(argv[++i], &end, 0);
			if (errno || *end || c == 0 || argv[i][0] == '-' || c > SIZE_MAX)
				return shmkit__usage_error(usage);
			o->capacity = (size_t)c;
		} else if (sub && !strcmp(argv[i], "--from-oldest")) {
			o->flags |= SHMKIT_TOPIC_OLDEST;
		} else if (sub && !strcmp(argv[i], "-n") && i + 1 < argc) {
			errno = 0;
			o->count = strtol(argv[++i], &end, 10);
			if (errno || *end || o->count < 0 || argv[i][0] == '\0')
				return shmkit__usage_error(usage);
		} else if (sub && !strcmp(argv[i], "--timeout") && i + 1 < argc) {
			o->timeout = strtod(argv[++i], &end);
			/* !(x >= 0) also refuses NaN. */
			if (*end || argv[i][0] == '\0' || !(o->timeout >= 0))
				return shmkit__usage_error(usage);
		} else if (argv[i][0] == '-' || o->name) {
			return shmkit__usage_error(usage);
		} else {
			o->name = argv[i];
		}
	}
	if (!o->name)
		return shmkit__usage_error(usage);
	/* As for create: every command that finds a segment by name reads these forms as a
	 * System V id or key, so a POSIX topic so named could not be looked at later. */
	if (!(o->flags & SHMKIT_SEG_SYSV) &&
	    (!strncmp(o->name, "id:", 3) ||
	     (o->name[0] == '0' && (o->name[1] == 'x' || o->name[1] == 'X')))) {
		fprintf(stderr, "shmkit %s: %s: names of the form id:N and 0x... reach System V "
				"segments by id or key; give another name (or /%s)\n", cmd, o->name,
			o->name);
		return SHMKIT_EXIT_USAGE;
	}
	return 0;
}

shmkit_topic *shmkit__topic_open_cmd(const char *cmd, const struct topic_opts *o, unsigned role)
{
	shmkit_topic *t;
	int r = -ENOENT;
	/* An existing topic is opened as it is, whatever its capacity and slot counts:
	 * create-or-open with capacity 0 asks for the default geometry, which refuses
	 * (-EINVAL) a topic made with another. A creator racing with us makes one open
	 * or the other succeed. */
	for (int i = 0; i < 3 && r == -ENOENT; i++) {
		r = shmkit_topic_open(o->name, role, o->capacity, 0600,
				      o->flags & ~SHMKIT_SEG_CREATE, &t);
		if (r == -ENOENT)
			r = shmkit_topic_open(o->name, role, o->capacity, 0600, o->flags, &t);
		if (r == -EINVAL && !o->capacity)
			r = -ENOENT; /* made meanwhile with another geometry: open it */
	}
	struct shmkit_topic_stats st;
	if (r == 0 && (o->flags & SHMKIT_TOPIC_RELIABLE) &&
	    (shmkit_topic_stats(t, &st) < 0 || !st.reliable)) {
		/* The mode is the creator's: going on would lose silently what the user
		 * asked to have delivered reliably. */
		fprintf(stderr, "shmkit %s: %s: the topic exists and is lossy; --reliable cannot "
				"apply\n", cmd, o->name);
		shmkit_topic_close(t);
		return NULL;
	}
	if (r == 0)
		return t;
	const char *hint = "";
	struct shmkit_seg_info in;
	if (r == -EPROTO && shmkit_seg_inspect(o->name, o->flags & SHMKIT_SEG_SYSV, &in) == 0 &&
	    in.kind != SHMKIT_KIND_TOPIC &&
	    !(in.layout && in.layout != shmkit_seg_layout(SHMKIT_KIND_ANY))) {
		/* Another kind, not a corrupt topic: say which, as cat and recv do. */
		fprintf(stderr, "shmkit %s: %s is %s, not a topic%s\n", cmd, o->name,
			shmkit__kind_noun(in.kind),
			in.kind == SHMKIT_KIND_CHAN ? " (use send and recv)" : "");
		return NULL;
	} else if (r == -EINVAL && o->capacity)
		hint = " (does the topic exist with another capacity?)";
	else if (r == -EUSERS)
		hint = role == SHMKIT_TOPIC_PUBLISHER ? " (every publisher slot is held)"
						      : " (every subscriber slot is held)";
	char why[128];
	fprintf(stderr, "shmkit %s: %s: %s%s\n", cmd, o->name,
		shmkit__strerror_at(r, o->name, o->flags, why, sizeof why), hint);
	return NULL;
}

static int publish_one(void *t, const char *msg, size_t len)
{
	return shmkit_topic_publish(t, msg, len, SHMKIT_FOREVER);
}

int shmkit_cmd_pub(int argc, char **argv)
{
	static const char usage[] =
	    "shmkit pub [--sysv] [--reliable] [--capacity BYTES] NAME < LINES";
	struct topic_opts o;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nPublish each line of standard input (without its newline) as\n"
		       "one message on topic NAME, creating the topic if needed: lossy unless\n"
		       "--reliable, with a ring of BYTES (default 1 MiB; a message may take up\n"
		       "to a quarter of it). Empty lines are skipped: a message has at least\n"
		       "one byte. Other publishers may publish at the same time. A lossy topic\n"
		       "never waits for subscribers; a reliable one waits for the slowest.\n"
		       "Closing at end of input is end-of-stream for the subscribers once every\n"
		       "publisher closed. --reliable on an existing lossy topic is an error.\n",
		       usage);
		return SHMKIT_EXIT_OK;
	}
	int r = topic_args(argc, argv, &o, 0, usage);
	if (r)
		return r;
	shmkit_topic *t = shmkit__topic_open_cmd("pub", &o, SHMKIT_TOPIC_PUBLISHER);
	if (!t)
		return SHMKIT_EXIT_FAIL;
	int status = shmkit__send_lines(stdin, "pub", o.name, publish_one, t);
	shmkit_topic_close(t);
	return status;
}

ssize_t shmkit__topic_next(shmkit_topic *t, const char *cmd, const char *name, char **buf,
			   size_t *cap, int64_t timeout)
{
	for (;;) {
		ssize_t n = shmkit_topic_receive(t, *buf, *cap, timeout);
		if (n == -EMSGSIZE) {
			/* The message stays next: grow to the largest the ring takes. */
			struct shmkit_topic_stats st;
			char *bigger = NULL;
			if (shmkit_topic_stats(t, &st) == 0 && st.max_msg > *cap &&
			    st.max_msg <= SIZE_MAX)
				bigger = realloc(*buf, (size_t)st.max_msg);
			if (!bigger)
				return n;
			*buf = bigger;
			*cap = (size_t)st.max_msg;
			continue;
		}
		if (n == -EOVERFLOW) {
			/* Lossy mode: the gap is reported, the next receive is the oldest
			 * message still intact. */
			unsigned long long lost = shmkit_topic_lost(t);
			fprintf(stderr, "shmkit %s: %s: lost %llu message%s\n", cmd, name, lost,
				lost == 1 ? "" : "s");
			continue;
		}
		return n;
	}
}

/* Seconds as a timeout in nanoseconds: < 0 forever; no overflow for huge values. */
static int64_t timeout_ns(double s)
{
	if (s < 0)
		return SHMKIT_FOREVER;
	if (s >= 9.2e9) /* INT64_MAX ns is 292 years */
		return INT64_MAX;
	return (int64_t)(s * 1e9);
}

int shmkit_cmd_sub(int argc, char **argv)
{
	static const char usage[] = "shmkit sub [--sysv] [-n COUNT] [--timeout SECONDS] "
				    "[--from-oldest] [--reliable] [--capacity BYTES] NAME";
	struct topic_opts o;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nSubscribe to topic NAME and print each message on its own\n"
		       "line, creating the topic if needed (--reliable and --capacity as for\n"
		       "pub; --reliable on an existing lossy topic is an error). Starts with\n"
		       "the next message published, or with --from-oldest with the oldest one\n"
		       "the ring still holds. Stops at end-of-stream (every publisher closed),\n"
		       "after COUNT messages, or when no message came for SECONDS (exit 1\n"
		       "then). Messages a lossy topic overwrote before they were read are\n"
		       "reported on standard error as 'lost N messages', and printing goes on.\n"
		       "A last publisher that died is an error.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	int r = topic_args(argc, argv, &o, 1, usage);
	if (r)
		return r;
	shmkit_topic *t = shmkit__topic_open_cmd("sub", &o, SHMKIT_TOPIC_SUBSCRIBER);
	if (!t)
		return SHMKIT_EXIT_FAIL;
	const int64_t timeout = timeout_ns(o.timeout);
	size_t cap = 1 << 16;
	char *buf = malloc(cap);
	int status = SHMKIT_EXIT_OK;
	for (long got = 0; buf && (o.count < 0 || got < o.count);) {
		/* Output is flushed only before a wait, so a burst costs one write. */
		ssize_t n = shmkit__topic_next(t, "sub", o.name, &buf, &cap, 0);
		if (n == -EAGAIN) {
			if (fflush(stdout) != 0)
				break;
			n = timeout == 0 ? -ETIMEDOUT
					 : shmkit__topic_next(t, "sub", o.name, &buf, &cap, timeout);
		}
		if (n == 0)
			break; /* end-of-stream */
		if (n < 0) {
			fprintf(stderr, "shmkit sub: %s: %s\n", o.name,
				n == -ETIMEDOUT ? "no message before the timeout"
				: n == -EPIPE	? "the last publisher died"
						: shmkit_strerror((int)n));
			status = SHMKIT_EXIT_FAIL;
			break;
		}
		fwrite(buf, 1, (size_t)n, stdout);
		putchar('\n');
		got++;
	}
	if (!buf) {
		fprintf(stderr, "shmkit sub: out of memory\n");
		status = SHMKIT_EXIT_FAIL;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "shmkit sub: writing output: %s\n", strerror(errno));
		status = SHMKIT_EXIT_FAIL;
	}
	free(buf);
	shmkit_topic_close(t);
	return status;
}

/* ---- stat: a topic's figures ---- */

static const char *alive_word(int alive, int json)
{
	if (json)
		return alive == 1 ? "true" : alive == 0 ? "false" : "null";
	return alive == 1 ? "yes" : alive == 0 ? "no" : "unknown";
}

char *shmkit__topic_describe(const char *name, unsigned flags, int json)
{
	struct shmkit__figures fig;
	char *text = NULL;
	size_t size = 0;
	FILE *f = NULL;
	if (shmkit__figures_read(name, flags, SHMKIT_KIND_TOPIC, &fig) < 0)
		goto out;
	const struct shmkit_topic_stats st = fig.topic;
	const struct shmkit_topic_sub_info *subs = fig.subs;
	const int n = fig.nsubs;
	f = open_memstream(&text, &size);
	if (!f)
		goto out;
	const char *mode = st.reliable ? "reliable" : "lossy";
	if (json) {
		fprintf(f, ", \"topic\": {\"delivery\": \"%s\", \"capacity\": %llu, "
			   "\"max_msg\": %llu, "
			   "\"max_publishers\": %u, \"max_subscribers\": %u, \"publishers\": %u, "
			   "\"subscribers\": %u, \"published\": %llu, \"bytes_published\": %llu, "
			   "\"next_seq\": %llu, \"evicted\": %llu, \"abandoned\": %llu, "
			   "\"subscriber_list\": [",
			mode, (unsigned long long)st.capacity, (unsigned long long)st.max_msg,
			st.max_publishers, st.max_subscribers, st.publishers, st.subscribers,
			(unsigned long long)st.published, (unsigned long long)st.bytes_published,
			(unsigned long long)st.next_seq, (unsigned long long)st.evicted,
			(unsigned long long)st.abandoned);
		for (int i = 0; i < n; i++)
			fprintf(f, "%s{\"pid\": %d, \"alive\": %s, \"received\": %llu, "
				   "\"lost\": %llu, \"lag\": %llu}",
				i ? ", " : "", subs[i].pid, alive_word(subs[i].alive, 1),
				(unsigned long long)subs[i].received,
				(unsigned long long)subs[i].lost, (unsigned long long)subs[i].lag);
		fprintf(f, "]}");
	} else {
		fprintf(f, "delivery:     %s\ncapacity:     %llu bytes\nmax message:  %llu bytes\n"
			   "publishers:   %u (of %u slots)\nsubscribers:  %u (of %u slots)\n"
			   "published:    %llu messages, %llu bytes\nnext seq:     %llu\n"
			   "evicted:      %llu\nabandoned:    %llu\n",
			mode, (unsigned long long)st.capacity, (unsigned long long)st.max_msg,
			st.publishers, st.max_publishers, st.subscribers, st.max_subscribers,
			(unsigned long long)st.published, (unsigned long long)st.bytes_published,
			(unsigned long long)st.next_seq, (unsigned long long)st.evicted,
			(unsigned long long)st.abandoned);
		if (n > 0)
			fprintf(f, "  %-10s %-7s %12s %12s %12s\n", "PID", "ALIVE", "RECEIVED",
				"LOST", "LAG");
		for (int i = 0; i < n; i++)
			fprintf(f, "  %-10d %-7s %12llu %12llu %12llu\n", subs[i].pid,
				alive_word(subs[i].alive, 0), (unsigned long long)subs[i].received,
				(unsigned long long)subs[i].lost, (unsigned long long)subs[i].lag);
	}
	if (fclose(f) != 0) {
		free(text);
		text = NULL;
	}
out:
	shmkit__figures_free(&fig);
	return text;
}
