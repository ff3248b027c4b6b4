/* topic_demo — two publisher processes and three subscriber processes share one shmkit
 * topic in reliable mode; a fourth subscriber joins late and reads the history the
 * ring still holds. Each subscriber checks that it got every message of both
 * publishers, each publisher's in order.
 *
 *   topic_demo [NAME [COUNT]]     defaults: /shmkit_topic_demo-<pid>, 200000 per publisher */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmkit/topic.h>

#define NPUB 2
#define NSUB 3

struct msg {
	uint32_t pub;  /* which publisher */
	uint32_t pad;
	uint64_t seq;  /* its own count */
	char text[48];
};

static int publish(const char *name, uint32_t id, long count)
{
	shmkit_topic *t;
	int r = shmkit_topic_open(name, SHMKIT_TOPIC_PUBLISHER, 0, 0, 0, &t);
	if (r < 0) {
		fprintf(stderr, "publisher %u: %s\n", id, shmkit_strerror(r));
		return 1;
	}
	struct msg m = {.pub = id};
	for (long i = 0; i < count; i++) {
		m.seq = (uint64_t)i;
		snprintf(m.text, sizeof m.text, "publisher %u, message %ld", id, i);
		r = shmkit_topic_publish(t, &m, sizeof m, 5 * SHMKIT_SEC);
		if (r < 0) {
			fprintf(stderr, "publisher %u: %s\n", id, shmkit_strerror(r));
			break;
		}
	}
	shmkit_topic_close(t); /* the last publisher to close ends the stream */
	return r < 0;
}

/* Receive until end-of-stream; check every publisher's messages arrive in order. */
static int subscribe(shmkit_topic *t, const char *who, long count)
{
	uint64_t next[NPUB] = {0};
	long got = 0;
	struct msg m;
	for (;;) {
		ssize_t n = shmkit_topic_receive(t, &m, sizeof m, 5 * SHMKIT_SEC);
		if (n == 0)
			break;
		if (n < 0) {
			fprintf(stderr, "%s: %s\n", who, shmkit_strerror((int)n));
			return 1;
		}
		if (m.pub >= NPUB || m.seq != next[m.pub]) {
			fprintf(stderr, "%s: out of order: publisher %u message %llu\n", who, m.pub,
				(unsigned long long)m.seq);
			return 1;
		}
		next[m.pub]++;
		got++;
	}
	struct shmkit_topic_stats st;
	shmkit_topic_stats(t, &st);
	printf("  %s: %ld messages, both publishers in order, lost %llu, then end-of-stream\n",
	       who, got, (unsigned long long)st.lost);
	return got == NPUB * count ? 0 : 1;
}

int main(int argc, char **argv)
{
	char defname[64];
	snprintf(defname, sizeof defname, "/shmkit_topic_demo-%d", (int)getpid());
	const char *name = argc > 1 ? argv[1] : defname;
	long count = argc > 2 ? atol(argv[2]) : 200000;
	setvbuf(stdout, NULL, _IOLBF, 0);
	int fails = 0;

	/* Reliable: publishers wait for the slowest subscriber, so nobody loses anything.
	 * The topic is made here; each subscriber opens it in its own process (a handle
	 * belongs to the process that opened it) and says so before any publisher starts. */
	shmkit_topic *t;
	int r = shmkit_topic_open(name, SHMKIT_TOPIC_OBSERVER, 1 << 20, 0600,
				  SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL | SHMKIT_TOPIC_RELIABLE, &t);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", name, shmkit_strerror(r));
		return 1;
	}
	shmkit_topic_close(t);
	printf("  %d publishers x %ld messages -> %d subscribers (reliable mode)\n", NPUB, count,
	       NSUB);
	int ready[2];
	if (pipe(ready) < 0)
		return 1;
	pid_t kids[NPUB + NSUB];
	int nk = 0;
	for (int i = 0; i < NSUB; i++) {
		pid_t p = fork();
		if (p == 0) {
			char who[32];
			snprintf(who, sizeof who, "subscriber %d", i);
			r = shmkit_topic_open(name, SHMKIT_TOPIC_SUBSCRIBER, 0, 0, 0, &t);
			if (write(ready[1], r == 0 ? "y" : "n", 1) != 1 || r < 0)
				_exit(1);
			r = subscribe(t, who, count);
			shmkit_topic_close(t);
			fflush(stdout);
			_exit(r);
		}
		kids[nk++] = p;
	}
	for (int i = 0; i < NSUB; i++) {
		char c = 'n';
		if (read(ready[0], &c, 1) != 1 || c != 'y')
			fails++;
	}
	for (uint32_t i = 0; i < NPUB; i++) {
		pid_t p = fork();
		if (p == 0)
			_exit(publish(name, i, count));
		kids[nk++] = p;
	}
	for (int i = 0; i < nk; i++) {
		int st;
		if (waitpid(kids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fails++;
	}

	/* A late joiner reads the history the ring still holds, then end-of-stream. */
	shmkit_topic *late;
	r = shmkit_topic_open(name, SHMKIT_TOPIC_SUBSCRIBER, 0, 0, SHMKIT_TOPIC_OLDEST, &late);
	if (r == 0) {
		long got = 0;
		struct msg m;
		ssize_t n;
		while ((n = shmkit_topic_receive(late, &m, sizeof m, SHMKIT_SEC)) > 0)
			got++;
		printf("  late joiner (from the oldest retained): %ld messages of history, last \"%s\"\n",
		       got, got ? m.text : "");
		fails += n != 0;
		shmkit_topic_close(late);
	} else {
		fails++;
	}
	shmkit_seg_unlink(name, 0);
	printf("  topic demo: %s\n", fails ? "FAILED" : "ok");
	return fails != 0;
}
