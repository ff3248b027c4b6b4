/* chan_demo — a producer process and a consumer process exchange messages through a
 * shmkit channel, then the demo prints what was sent, what was received and how fast.
 *
 *   chan_demo [NAME [COUNT]]     defaults: /shmkit_chan_demo-<pid>, 1000000 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmkit/chan.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The consumer: receive until end-of-stream, check every message's sequence number. */
static int consume(const char *name, long count)
{
	shmkit_chan *ch;
	char buf[256];
	uint64_t sum = 0;
	long got = 0;
	int r = shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, 0, 0, 0, &ch);
	if (r < 0) {
		fprintf(stderr, "consumer: %s: %s\n", name, shmkit_strerror(r));
		return 1;
	}
	for (;;) {
		ssize_t n = shmkit_chan_recv(ch, buf, sizeof buf, 5 * SHMKIT_SEC);
		if (n == 0)
			break; /* end-of-stream: the producer closed and we drained it all */
		if (n < 0) {
			fprintf(stderr, "consumer: %s: %s\n", name, shmkit_strerror((int)n));
			shmkit_chan_close(ch);
			return 1;
		}
		long seq;
		memcpy(&seq, buf, sizeof seq);
		if (seq != got) {
			fprintf(stderr, "consumer: message %ld arrived as %ld\n", got, seq);
			shmkit_chan_close(ch);
			return 1;
		}
		if (got < 3 || got == count - 1)
			printf("  consumer got  #%ld: \"%s\"\n", seq, buf + sizeof seq);
		sum += (uint64_t)n;
		got++;
	}
	printf("  consumer: %ld messages, %llu bytes, all in order, then end-of-stream\n", got,
	       (unsigned long long)sum);
	shmkit_chan_close(ch);
	fflush(stdout); /* the child leaves with _exit(), which does not flush */
	return got == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	char defname[64];
	snprintf(defname, sizeof defname, "/shmkit_chan_demo-%d", (int)getpid());
	const char *name = argc > 1 ? argv[1] : defname;
	setvbuf(stdout, NULL, _IOLBF, 0); /* both processes' lines appear as they happen */
	long count = argc > 2 ? atol(argv[2]) : 1000000;
	shmkit_chan *ch;
	char msg[256];

	/* The producer creates the channel (64 KiB ring), then forks the consumer. */
	int r = shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, 1 << 16, 0600,
				 SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &ch);
	if (r < 0) {
		fprintf(stderr, "producer: %s: %s\n", name, shmkit_strerror(r));
		return 1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		shmkit_chan_close(ch); /* the child is only the consumer */
		_exit(consume(name, count));
	}
	printf("channel %s: producer pid %d sends %ld messages to consumer pid %d\n", name,
	       (int)getpid(), count, (int)pid);
	double t0 = now();
	for (long i = 0; i < count; i++) {
		memcpy(msg, &i, sizeof i);
		int len = snprintf(msg + sizeof i, sizeof msg - sizeof i, "message %ld", i);
		if (i < 3 || i == count - 1)
			printf("  producer sent #%ld: \"%s\"\n", i, msg + sizeof i);
		r = shmkit_chan_send(ch, msg, sizeof i + (size_t)len + 1, 5 * SHMKIT_SEC);
		if (r < 0) {
			fprintf(stderr, "producer: %s: %s\n", name, shmkit_strerror(r));
			break;
		}
	}
	shmkit_chan_close(ch); /* end-of-stream for the consumer, after it drains */
	int status;
	waitpid(pid, &status, 0);
	double secs = now() - t0;
	/* The counters live in the channel: any process may read them, without a role. */
	struct shmkit_chan_stats st = {0};
	if (shmkit_chan_open(name, SHMKIT_CHAN_OBSERVER, 0, 0, 0, &ch) == 0) {
		shmkit_chan_stats(ch, &st);
		shmkit_chan_close(ch);
	}
	shmkit_seg_unlink(name, 0);
	int ok = r == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	printf("%s: %ld messages in %.3f s = %.2f M messages/s, %.0f MB/s (%llu sleeps, %llu wakes)\n",
	       ok ? "ok" : "FAILED", count, secs, (double)count / secs / 1e6,
	       (double)st.bytes_sent / secs / 1e6,
	       (unsigned long long)(st.producer_sleeps + st.consumer_sleeps),
	       (unsigned long long)st.wakes);
	return ok ? 0 : 1;
}
